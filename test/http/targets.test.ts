import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const BASE = '/crm/settings/targets';
const uid = (login: string) => String(host.demo.users[login].id);

describe('user targets and user types (D5, S2)', () => {
  test('only holders of the global manage_user_targets permission reach the page (404 otherwise)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get(BASE);
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).toContain('User targets');
    for (const login of ['rep1', 'pm']) {
      const s = await Session.signIn(host.app, login);
      expect((await s.get(BASE)).status).toBe(404);
      expect((await s.post(BASE, { user_id: uid('rep1'), period_kind: 'month', period_start: '2031-01-01', measure: 'won_count', target: '3' })).status).toBe(404);
    }
    expect(await knex()('crm_user_targets').where({ period_start: '2031-01-01', measure: 'won_count' }).first()).toBeUndefined();
  });

  test('a target is set per user, period and measure (any day of the period), replaced when saved again, journaled, deleted', async () => {
    const director = await Session.signIn(host.app, 'director');
    const saved = await director.post(BASE, { user_id: uid('rep1'), period_kind: 'quarter', period_start: '2031-02-15', measure: 'won_amount', target: '1 000,50' });
    expect(saved.status).toBe(303);
    let rows = await knex()('crm_user_targets').where({ user_id: host.demo.users.rep1.id, measure: 'won_amount', period_kind: 'quarter' }).where('period_start', '>=', '2031-01-01');
    expect(rows).toHaveLength(1);
    expect(Number(rows[0].target_value)).toBe(100_050);
    expect(rows[0].currency).toBe('EUR');
    const again = await director.htmxPost(BASE, { user_id: uid('rep1'), period_kind: 'quarter', period_start: '2031-03-31', measure: 'won_amount', target: '2000' });
    expect(again.status).toBe(200);
    expect(again.headers['hx-trigger']).toBe('crm:targetsChanged');
    expect(visibleText(again.text)).toContain('2031 Q1');
    rows = await knex()('crm_user_targets').where({ user_id: host.demo.users.rep1.id, measure: 'won_amount', period_kind: 'quarter' }).where('period_start', '>=', '2031-01-01');
    expect(rows).toHaveLength(1);
    expect(Number(rows[0].target_value)).toBe(200_000);
    const journal = await knex()('crm_journals').where({ journalized_type: 'user_target', journalized_id: host.demo.users.rep1.id }).orderBy('id');
    const details = await knex()('crm_journal_details').whereIn('journal_id', journal.map((j) => j.id)).orderBy('id');
    expect(details.slice(-2).map((d) => [d.field, d.old_value, d.new_value])).toEqual([
      ['Won amount 2031 Q1', null, '1\u202f000.50 EUR'], ['Won amount 2031 Q1', '1\u202f000.50 EUR', '2\u202f000.00 EUR'],
    ]);
    const json = (await director.get(`${BASE}.json`)).body;
    expect(json.targets.find((t: { id: number }) => t.id === rows[0].id)).toMatchObject({ period_start: '2031-01-01', target_value: 200_000 });
    expect((await director.post(`${BASE}/${rows[0].id}/delete`)).status).toBe(303);
    expect(await knex()('crm_user_targets').where({ id: rows[0].id }).first()).toBeUndefined();
    expect((await director.post(`${BASE}/${rows[0].id}/delete`)).status).toBe(404);
  });

  test('bad input is refused with 422 naming the fields, the input kept and escaped', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.post(BASE, { user_id: '99999', period_kind: 'week', period_start: '2031-02-30', measure: 'smiles', target: '<b>lots</b>' });
    expect(res.status).toBe(422);
    for (const field of ['user_id', 'period_kind', 'period_start', 'measure']) expect(res.text).toContain(`data-field="${field}"`);
    expect(res.text).toContain('value="&lt;b&gt;lots&lt;/b&gt;"');
    const count = await director.agent.post(BASE).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ user_id: uid('rep2'), period_kind: 'month', period_start: '2031-01-01', measure: 'won_count', target: '1.5' });
    expect(count.status).toBe(422);
    expect(count.body.fields).toEqual({ target: 'Target must be a whole number' });
    const negative = await director.post(BASE, { user_id: uid('rep2'), period_kind: 'month', period_start: '2031-01-01', measure: 'won_amount', target: '-5' });
    expect(negative.status).toBe(422);
    expect(await knex()('crm_user_targets').where({ user_id: host.demo.users.rep2.id, period_start: '2031-01-01' }).first()).toBeUndefined();
  });

  test('user types: set, change, clear; an unknown type is refused', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await knex()('crm_user_types').where({ user_id: host.demo.users.rep2.id }).first()).type).toBe('sales_rep');
    expect((await director.post(`${BASE}/types`, { user_id: uid('pm'), type: 'sales_director' })).status).toBe(303);
    expect((await knex()('crm_user_types').where({ user_id: host.demo.users.pm.id }).first()).type).toBe('sales_director');
    expect((await director.post(`${BASE}/types`, { user_id: uid('pm'), type: '' })).status).toBe(303);
    expect(await knex()('crm_user_types').where({ user_id: host.demo.users.pm.id }).first()).toBeUndefined();
    const bad = await director.post(`${BASE}/types`, { user_id: uid('pm'), type: 'emperor' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="type"');
  });
});

describe('targets vs actual module (D2, D5)', () => {
  test('per person: the targets whose period lies in the module period beside what they won; reps see their own', async () => {
    const director = await Session.signIn(host.app, 'director');
    const set = (login: string, kind: string, start: string, measure: string, target: string) =>
      director.post(BASE, { user_id: uid(login), period_kind: kind, period_start: start, measure, target });
    expect((await set('rep1', 'quarter', '2035-01-01', 'won_amount', '1000')).status).toBe(303);
    expect((await set('rep1', 'month', '2035-03-01', 'won_count', '2')).status).toBe(303);
    expect((await set('rep1', 'year', '2035-01-01', 'won_amount', '9999')).status).toBe(303);
    expect((await set('rep2', 'quarter', '2035-01-01', 'won_amount', '500')).status).toBe(303);
    const won = Number((await knex()('crm_opportunity_statuses').where({ name: 'Won' }).first()).id);
    const europe = host.demo.projects['crm-europe'].id;
    await knex()('crm_opportunities').insert({ project_id: europe, name: 'Won 2035', status_id: won, amount_minor: 45_000, currency: 'EUR', expected_close_on: '2035-03-01', owner_id: host.demo.users.rep1.id, author_id: host.demo.users.rep1.id });

    const base = '/projects/crm/crm';
    const pageId = (await director.get(`${base}.json`)).body.page.id;
    expect((await director.post(`${base}/pages/${pageId}/modules`, { type: 'targets' })).status).toBe(303);
    const module = await knex()('crm_dashboard_modules').where({ page_id: pageId, type: 'targets' }).orderBy('id', 'desc').first();
    const url = `${base}/modules/${module.id}`;
    expect((await director.post(url, { lock_version: String(module.lock_version), period: 'custom', from: '2035-01-01', to: '2035-03-31', measure: 'won_amount' })).status).toBe(303);

    const data = (await director.get(`${url}.json`)).body;
    expect(data.rows.map((r: { label: string; values: unknown }) => [r.label, r.values])).toEqual([
      ['Rick Rep', { target: 100_000, actual: 45_000, progress: 4500 }],
      ['Rita Rep', { target: 50_000, actual: 0, progress: 0 }],
    ]);
    const year = (await director.get(`${url}.json?period=custom&from=2035-01-01&to=2035-12-31`)).body;
    expect(year.rows[0].values).toEqual({ target: 100_000 + 999_900, actual: 45_000, progress: 409 });

    const rep = await Session.signIn(host.app, 'rep1');
    const mine = (await rep.get(`${url}.json`)).body;
    expect(mine.rows.map((r: { label: string }) => r.label)).toEqual(['Rick Rep']);

    const lock = (await knex()('crm_dashboard_modules').where({ id: module.id }).first()).lock_version;
    expect((await director.post(url, { lock_version: String(lock), period: 'custom', from: '2035-01-01', to: '2035-03-31', measure: 'won_count', chart: 'bars' })).status).toBe(303);
    const counts = (await director.get(`${url}.json`)).body;
    expect(counts.rows.map((r: { label: string; values: unknown }) => [r.label, r.values])).toEqual([['Rick Rep', { target: 2, actual: 1, progress: 5000 }]]);
    const page = await director.get(url);
    expect(page.text).toContain('<svg class="chart bars"');
    expect(visibleText(page.text)).toContain('Rick Rep 2 1 50.0 %');
  });
});
