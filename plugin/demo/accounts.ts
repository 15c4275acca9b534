import type { DemoDirectory, HostApi } from '../host';
import { addDays, todayUtc } from '../services/dates';

/**
 * Demo accounts across the CRM projects: customers, a key account, a supplier, a global and a private one. The key
 * account's service expires some four months after the day the demo is seeded, so it is always still ahead.
 */
export async function seedAccountsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const type = async (name: string) => Number((await knex('crm_account_types').where({ name }).first()).id);
  const industry = async (name: string) => Number((await knex('crm_industries').where({ name }).first()).id);
  const [company, personal, shop] = [await type('Company'), await type('Personal'), await type('Account')];
  const [groupEu, groupTop] = await Promise.all(['Nordics', 'Top 10 customers'].map(async (name, i) => {
    const [row] = await knex('crm_account_groups').insert({ name, position: i + 1 }).returning('id');
    return Number(row.id ?? row);
  }));
  const [tier] = await knex('crm_custom_fields').insert({
    entity: 'account', account_type_id: company, name: 'Customer tier', field_format: 'list', possible_values: JSON.stringify(['Gold', 'Silver', 'Bronze']), is_required: false, position: 1,
  }).returning('id');
  await knex('crm_custom_fields').insert({ entity: 'account', account_type_id: company, name: 'IBAN', field_format: 'text', is_required: false, position: 2 });

  const { director, rep1, rep2, admin } = demo.users;
  const p = demo.projects;
  const accounts: { row: Record<string, unknown>; projects: string[]; groups?: number[]; tier?: string }[] = [
    { row: { account_type_id: company, name: 'Acme Manufacturing', organization: 'Acme Manufacturing AB', email: 'info@acme.example', phone: '+46 8 123 45 67', street: 'Sveavägen 1', city: 'Stockholm', postcode: '111 57', country: 'Sweden', customer_number: 'C-1001', is_key_account: true, industry_id: await industry('Manufacturing'), account_manager_id: rep1.id, author_id: rep1.id, vat_number: 'SE556677889901', service_expires_on: addDays(todayUtc(), 127) }, projects: ['crm-europe'], groups: [groupEu, groupTop], tier: 'Gold' },
    { row: { account_type_id: company, name: 'Nordic Retail Group', organization: 'Nordic Retail Group Oy', email: 'contact@nordicretail.example', city: 'Helsinki', country: 'Finland', customer_number: 'C-1002', industry_id: await industry('Retail'), account_manager_id: rep1.id, author_id: director.id }, projects: ['crm-europe'], groups: [groupEu], tier: 'Silver' },
    { row: { account_type_id: company, name: 'Globex Corporation', email: 'sales@globex.example', city: 'Chicago', country: 'USA', customer_number: 'C-2001', is_key_account: true, industry_id: await industry('Software'), account_manager_id: rep2.id, author_id: rep2.id }, projects: ['crm-americas'], groups: [groupTop], tier: 'Gold' },
    { row: { account_type_id: company, name: 'Initech', email: 'hello@initech.example', city: 'Austin', country: 'USA', industry_id: await industry('Software'), account_manager_id: rep2.id, author_id: rep2.id }, projects: ['crm-americas'] },
    { row: { account_type_id: company, name: 'Sakura Health', city: 'Osaka', country: 'Japan', industry_id: await industry('Healthcare'), account_manager_id: director.id, author_id: director.id }, projects: ['crm-asia'] },
    { row: { account_type_id: company, name: 'Parts & Bolts Supply', city: 'Gothenburg', country: 'Sweden', is_supplier: true, industry_id: await industry('Manufacturing'), author_id: director.id }, projects: ['crm'] },
    { row: { account_type_id: shop, name: 'webshop.example', email: 'orders@webshop.example', author_id: admin.id, is_global: true }, projects: [] },
    { row: { account_type_id: personal, name: 'Eva Lind', first_name: 'Eva', last_name: 'Lind', email: 'eva.lind@example.com', city: 'Uppsala', country: 'Sweden', customer_number: 'P-0001', author_id: rep1.id, account_manager_id: rep1.id }, projects: ['crm-europe'] },
    { row: { account_type_id: company, name: 'Rick’s private prospect', city: 'Malmö', country: 'Sweden', author_id: rep1.id, is_private: true, note: 'Only Rick sees this one — not even admins.' }, projects: ['crm-europe'] },
  ];
  for (const a of accounts) {
    const [row] = await knex('crm_accounts').insert(a.row).returning('id');
    const id = Number(row.id ?? row);
    for (const key of a.projects) await knex('crm_account_projects').insert({ account_id: id, project_id: p[key].id });
    for (const groupId of a.groups ?? []) await knex('crm_account_group_members').insert({ account_id: id, group_id: groupId });
    if (a.tier) await knex('crm_custom_values').insert({ custom_field_id: Number(tier.id ?? tier), record_type: 'account', record_id: id, value: a.tier });
    await knex('crm_journals').insert({ journalized_type: 'account', journalized_id: id, user_id: a.row.author_id as number, action: 'create', notes: 'Demo data' });
  }
  const acme = await knex('crm_accounts').where({ name: 'Acme Manufacturing' }).first();
  const [sub] = await knex('crm_accounts').insert({ account_type_id: company, name: 'Acme Service Center', city: 'Västerås', country: 'Sweden', parent_id: acme.id, author_id: rep1.id, account_manager_id: rep1.id }).returning('id');
  await knex('crm_account_projects').insert({ account_id: Number(sub.id ?? sub), project_id: p['crm-europe'].id });
  await knex('crm_favorite_accounts').insert({ user_id: rep1.id, account_id: acme.id });
}
