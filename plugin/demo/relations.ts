import type { DemoDirectory, HostApi } from '../host';
import { addDays, todayUtc } from '../services/dates';

/**
 * A7/A8 demo: linked accounts in both wordings, an internal relation with a commission, a task with a primary account
 * (due some three months after the day the demo is seeded).
 */
export async function seedRelationsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const account = async (name: string) => (await knex('crm_accounts').where({ name }).first('id'))?.id as number | undefined;
  const type = async (name: string) => (await knex('crm_relation_types').where({ name }).first('id'))?.id as number | undefined;
  const acme = await account('Acme Manufacturing');
  const service = await account('Acme Service Center');
  const supplier = await account('Parts & Bolts Supply');
  const nordic = await account('Nordic Retail Group');
  const supplierOf = await type('Supplier of');
  const partnerOf = await type('Partner of');
  if (!acme || !service || !supplier || !nordic || !supplierOf || !partnerOf) return;
  const { director, rep1 } = demo.users;
  await knex('crm_account_links').insert([
    { account_id: supplier, related_account_id: acme, relation_type_id: supplierOf },
    { account_id: nordic, related_account_id: acme, relation_type_id: partnerOf },
  ]);
  const category = (await knex('crm_internal_relation_categories').where({ name: 'Sales support' }).first('id'))?.id;
  if (category) await knex('crm_internal_relations').insert({ account_id: acme, user_id: director.id, category_id: category, since: '2025-01-01', commission_bp: 250 });
  const europe = demo.projects['crm-europe'];
  if (!europe) return;
  const task = await host.createTask({ projectId: europe.id, subject: 'Prepare the Acme renewal offer', assigneeId: rep1.id, dueDate: addDays(todayUtc(), 83) });
  await knex('crm_task_accounts').insert([
    { task_id: task.id, account_id: acme, is_primary: true },
    { task_id: task.id, account_id: service, is_primary: false },
  ]);
}
