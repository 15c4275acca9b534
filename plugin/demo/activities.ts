import type { DemoDirectory, HostApi } from '../host';
import { addDays, todayUtc } from '../services/dates';

/**
 * O5: sales activities on the demo pipeline and accounts, dated from the day the demo is seeded so the to-do
 * page always has something due today, something overdue and one follow-up nobody is down to make.
 */
export async function seedActivitiesDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const category = async (name: string) => Number((await knex('crm_activity_categories').where({ name }).first()).id);
  const opportunity = async (name: string) => knex('crm_opportunities').where({ name }).first('id', 'account_id', 'project_id');
  const account = async (name: string) => knex('crm_accounts').where({ name }).first('id');
  const day = (offset: number) => addDays(todayUtc(), offset);
  const at = (offset: number, hour: number) => new Date(`${day(offset)}T${String(hour).padStart(2, '0')}:00:00Z`).toISOString();
  const { rep1, rep2, director } = demo.users;
  const onOpportunity = [
    { opp: 'Acme – ERP rollout', category: 'Meeting', subject: 'Workshop: ERP scope', notes: 'Went through modules, finance wants a phased rollout.\nSend the phase plan.', occurred: at(-3, 9), duration: 90, next: day(0), responsible: rep1.id, author: rep1.id },
    { opp: 'Acme – support renewal', category: 'Call', subject: 'Renewal terms', notes: 'Asked for a 3-year option.', occurred: at(-10, 14), duration: 20, next: day(-2), responsible: rep1.id, author: rep1.id },
    { opp: 'Nordic Retail – POS upgrade', category: 'Email', subject: 'Sent the POS brochure', notes: '', occurred: at(-1, 11), duration: null, next: day(4), responsible: null, author: director.id },
    { opp: 'Globex – data platform', category: 'Call', subject: 'Budget check with CFO', notes: 'Budget approved for Q1; legal review pending.', occurred: at(-5, 16), duration: 30, next: day(0), responsible: rep2.id, author: rep2.id },
    { opp: 'Sakura Health – telemedicine', category: 'Meeting', subject: 'Demo for the clinic board', notes: '', occurred: at(-20, 8), duration: 60, next: day(-7), responsible: director.id, author: director.id },
  ];
  for (const a of onOpportunity) {
    const opp = await opportunity(a.opp);
    if (!opp) continue;
    await knex('crm_sales_activities').insert({
      record_type: 'opportunity', record_id: opp.id, account_id: opp.account_id, project_id: opp.project_id, category_id: await category(a.category),
      subject: a.subject, notes: a.notes, occurred_at: a.occurred, duration_minutes: a.duration, next_contact_on: a.next, responsible_id: a.responsible,
      is_personal: false, author_id: a.author,
    });
  }
  const onAccount = [
    { account: 'Acme Manufacturing', category: 'Note', subject: 'New purchasing manager', notes: 'Anna Berg replaces Lars from January.', next: null, responsible: null, personal: false, author: rep1.id },
    { account: 'Nordic Retail Group', category: 'Call', subject: 'Check in after the store pilot', notes: '', next: day(1), responsible: rep1.id, personal: true, author: rep1.id },
  ];
  for (const a of onAccount) {
    const row = await account(a.account);
    if (!row) continue;
    await knex('crm_sales_activities').insert({
      record_type: 'account', record_id: row.id, account_id: row.id, project_id: null, category_id: await category(a.category), subject: a.subject,
      notes: a.notes, occurred_at: at(-2, 10), duration_minutes: null, next_contact_on: a.next, responsible_id: a.responsible, is_personal: a.personal, author_id: a.author,
    });
  }
}
