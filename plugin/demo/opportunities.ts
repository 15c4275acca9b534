import type { DemoDirectory, HostApi } from '../host';
import { monthStart, quarterStart } from '../services/dashboard-config';
import { addDays, todayUtc } from '../services/dates';

/** `daysAgo` days before `today`, but not before `earliest` (so a deal won "three weeks ago" stays in this quarter). */
const recentDay = (today: string, daysAgo: number, earliest: string): string => {
  const day = addDays(today, -daysAgo);
  return day < earliest ? earliest : day;
};

/**
 * The demo pipeline's expected close days, counted from `today` (the day the demo is seeded) so the overview never
 * goes stale: the won deals closed in the last weeks yet inside this quarter (Webshop inside this month), so targets
 * vs actual and "this month" show them even on a quarter's first day; the lost deal some ten weeks ago; the open
 * deals close in the coming weeks and months.
 */
export function demoCloseDays(today: string): Record<string, string> {
  return {
    'Acme – ERP rollout': addDays(today, 21),
    'Acme – support renewal': addDays(today, 68),
    'Nordic Retail – POS upgrade': addDays(today, 96),
    'Eva Lind – consulting': addDays(today, 111),
    'Globex – data platform': addDays(today, 26),
    'Initech – licences': recentDay(today, 21, quarterStart(today)),
    'Initech – printers': addDays(today, -70),
    'Sakura Health – telemedicine': addDays(today, 157),
    'Webshop – integration': recentDay(today, 14, monthStart(today)),
  };
}

/** A pipeline to look at: opportunities in every status, several currencies, across the regions. */
export async function seedOpportunitiesDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const status = async (name: string) => Number((await knex('crm_opportunity_statuses').where({ name }).first()).id);
  const account = async (name: string) => (await knex('crm_accounts').where({ name }).first())?.id ?? null;
  const { rep1, rep2, director } = demo.users;
  const p = demo.projects;
  const close = demoCloseDays(todayUtc());
  const rows = [
    { name: 'Acme – ERP rollout', project: 'crm-europe', account: 'Acme Manufacturing', owner: rep1.id, status: 'Negotiation', amount: 12_500_000, currency: 'EUR' },
    { name: 'Acme – support renewal', project: 'crm-europe', account: 'Acme Manufacturing', owner: rep1.id, status: 'Proposal', amount: 1_800_000, currency: 'EUR' },
    { name: 'Nordic Retail – POS upgrade', project: 'crm-europe', account: 'Nordic Retail Group', owner: rep1.id, status: 'Needs analysis', amount: 4_200_000, currency: 'EUR' },
    { name: 'Eva Lind – consulting', project: 'crm-europe', account: 'Eva Lind', owner: rep1.id, status: 'Qualification', amount: 9_500_000, currency: 'SEK' },
    { name: 'Globex – data platform', project: 'crm-americas', account: 'Globex Corporation', owner: rep2.id, status: 'Proposal', amount: 25_000_000, currency: 'USD' },
    { name: 'Initech – licences', project: 'crm-americas', account: 'Initech', owner: rep2.id, status: 'Won', amount: 3_600_000, currency: 'USD' },
    { name: 'Initech – printers', project: 'crm-americas', account: 'Initech', owner: rep2.id, status: 'Lost', amount: 450_000, currency: 'USD' },
    { name: 'Sakura Health – telemedicine', project: 'crm-asia', account: 'Sakura Health', owner: director.id, status: 'Needs analysis', amount: 3_000_000, currency: 'JPY' },
    { name: 'Webshop – integration', project: 'crm', account: 'webshop.example', owner: director.id, status: 'Won', amount: 800_000, currency: 'EUR' },
  ];
  for (const r of rows) {
    const [row] = await knex('crm_opportunities').insert({
      project_id: p[r.project].id, name: r.name, account_id: await account(r.account), owner_id: r.owner, status_id: await status(r.status),
      amount_minor: r.amount, currency: r.currency, expected_close_on: close[r.name], author_id: r.owner,
    }).returning('id');
    await knex('crm_journals').insert({ journalized_type: 'opportunity', journalized_id: Number(row.id ?? row), user_id: r.owner, action: 'create', notes: 'Demo data' });
  }
}
