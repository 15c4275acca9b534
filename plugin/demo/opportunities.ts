import type { DemoDirectory, HostApi } from '../host';

/** A pipeline to look at: opportunities in every status, several currencies, across the regions. */
export async function seedOpportunitiesDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const status = async (name: string) => Number((await knex('crm_opportunity_statuses').where({ name }).first()).id);
  const account = async (name: string) => (await knex('crm_accounts').where({ name }).first())?.id ?? null;
  const { rep1, rep2, director } = demo.users;
  const p = demo.projects;
  const rows = [
    { name: 'Acme – ERP rollout', project: 'crm-europe', account: 'Acme Manufacturing', owner: rep1.id, status: 'Negotiation', amount: 12_500_000, currency: 'EUR', close: '2026-12-15' },
    { name: 'Acme – support renewal', project: 'crm-europe', account: 'Acme Manufacturing', owner: rep1.id, status: 'Proposal', amount: 1_800_000, currency: 'EUR', close: '2027-01-31' },
    { name: 'Nordic Retail – POS upgrade', project: 'crm-europe', account: 'Nordic Retail Group', owner: rep1.id, status: 'Needs analysis', amount: 4_200_000, currency: 'EUR', close: '2027-02-28' },
    { name: 'Eva Lind – consulting', project: 'crm-europe', account: 'Eva Lind', owner: rep1.id, status: 'Qualification', amount: 9_500_000, currency: 'SEK', close: '2027-03-15' },
    { name: 'Globex – data platform', project: 'crm-americas', account: 'Globex Corporation', owner: rep2.id, status: 'Proposal', amount: 25_000_000, currency: 'USD', close: '2026-12-20' },
    { name: 'Initech – licences', project: 'crm-americas', account: 'Initech', owner: rep2.id, status: 'Won', amount: 3_600_000, currency: 'USD', close: '2026-10-30' },
    { name: 'Initech – printers', project: 'crm-americas', account: 'Initech', owner: rep2.id, status: 'Lost', amount: 450_000, currency: 'USD', close: '2026-09-15' },
    { name: 'Sakura Health – telemedicine', project: 'crm-asia', account: 'Sakura Health', owner: director.id, status: 'Needs analysis', amount: 3_000_000, currency: 'JPY', close: '2027-04-30' },
    { name: 'Webshop – integration', project: 'crm', account: 'webshop.example', owner: director.id, status: 'Won', amount: 800_000, currency: 'EUR', close: '2026-11-10' },
  ];
  for (const r of rows) {
    const [row] = await knex('crm_opportunities').insert({
      project_id: p[r.project].id, name: r.name, account_id: await account(r.account), owner_id: r.owner, status_id: await status(r.status),
      amount_minor: r.amount, currency: r.currency, expected_close_on: r.close, author_id: r.owner,
    }).returning('id');
    await knex('crm_journals').insert({ journalized_type: 'opportunity', journalized_id: Number(row.id ?? row), user_id: r.owner, action: 'create', notes: 'Demo data' });
  }
}
