import type { DemoDirectory, HostApi } from '../host';

/**
 * Demo personal contacts and partners (A9, A10): employees of Acme and Globex, a consultant of Baltic
 * Consulting, and Nordic Retail Group assigned to that partner. No partner users: the plugin cannot create
 * host users, and linking a demo user would hide most of the demo from them.
 */
export async function seedContactsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const { director, rep1, rep2 } = demo.users;
  const p = demo.projects;
  const insertId = async (table: string, row: Record<string, unknown>) => {
    const [r] = await knex(table).insert(row).returning('id');
    return Number(r.id ?? r);
  };
  const note = (type: string, id: number, userId: number) =>
    knex('crm_journals').insert({ journalized_type: type, journalized_id: id, user_id: userId, action: 'create', notes: 'Demo data' });
  const typeId = async (name: string) => Number((await knex('crm_contact_types').where({ name }).first()).id);
  const accountId = async (name: string) => Number((await knex('crm_accounts').where({ name }).first()).id);
  const [employee, consultant] = [await typeId('Employee'), await typeId('Consultant')];

  const baltic = await insertId('crm_partners', {
    name: 'Baltic Consulting', email: 'hello@balticconsulting.example', phone: '+371 6700 1234', website: 'https://balticconsulting.example',
    city: 'Riga', country: 'Latvia', project_id: p['crm-europe'].id, manager_id: rep1.id, author_id: director.id,
  });
  const pacific = await insertId('crm_partners', {
    name: 'Pacific Partners', email: 'team@pacificpartners.example', city: 'San Diego', country: 'USA',
    project_id: p['crm-americas'].id, manager_id: rep2.id, author_id: rep2.id,
  });
  await note('partner', baltic, director.id);
  await note('partner', pacific, rep2.id);

  const contacts: { row: Record<string, unknown>; account?: string; role?: string }[] = [
    { row: { contact_type_id: employee, first_name: 'Sven', last_name: 'Holm', job_title: 'Head of purchasing', email: 'sven.holm@acme.example', phone: '+46 8 123 45 70', city: 'Stockholm', country: 'Sweden', project_id: p['crm-europe'].id, owner_id: rep1.id, author_id: rep1.id }, account: 'Acme Manufacturing', role: 'Decision maker' },
    { row: { contact_type_id: employee, first_name: 'Karin', last_name: 'Ek', job_title: 'IT manager', email: 'karin.ek@acme.example', city: 'Stockholm', country: 'Sweden', project_id: p['crm-europe'].id, owner_id: rep1.id, author_id: rep1.id }, account: 'Acme Manufacturing', role: 'Technical contact' },
    { row: { contact_type_id: employee, first_name: 'Hank', last_name: 'Scorpio', job_title: 'CEO', email: 'hank@globex.example', city: 'Chicago', country: 'USA', project_id: p['crm-americas'].id, owner_id: rep2.id, author_id: rep2.id }, account: 'Globex Corporation', role: 'Sponsor' },
    { row: { contact_type_id: consultant, first_name: 'Liga', last_name: 'Ozola', job_title: 'Senior consultant', email: 'liga.ozola@balticconsulting.example', city: 'Riga', country: 'Latvia', partner_id: baltic, project_id: p['crm-europe'].id, owner_id: rep1.id, author_id: director.id } },
  ];
  for (const c of contacts) {
    const id = await insertId('crm_personal_contacts', c.row);
    if (c.account) await knex('crm_account_contacts').insert({ account_id: await accountId(c.account), contact_id: id, role: c.role ?? '' });
    await note('personal_contact', id, c.row.author_id as number);
  }
  await knex('crm_accounts').where({ id: await accountId('Nordic Retail Group') }).update({ partner_id: baltic });
}
