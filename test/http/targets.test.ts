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

describe('targets vs actual: whose targets a viewer sees and what the actuals count (D5, S3)', () => {
  interface ModuleJson { rows: { label: string; values: Record<string, number | null> }[]; columns: { key: string; label: string }[]; notes: string[] }
  const labels = (data: ModuleJson) => data.rows.map((r) => r.label);
  const actualOf = (data: ModuleJson, label: string) => data.rows.find((r) => r.label === label)?.values.actual;
  const actualColumn = (data: ModuleJson) => data.columns.find((c) => c.key === 'actual')?.label;
  const roleId = async (name: string) => Number((await knex()('roles').where({ name }).first()).id);

  /** A targets module for `year`'s first quarter on the first overview page of `base` (made by the director), for everyone. */
  async function targetsModule(base: string, year: number, measure = 'won_amount'): Promise<string> {
    const director = await Session.signIn(host.app, 'director');
    const pageId = (await director.get(`${base}.json`)).body.page.id;
    expect((await director.post(`${base}/pages/${pageId}/modules`, { type: 'targets' })).status).toBe(303);
    const module = await knex()('crm_dashboard_modules').where({ page_id: pageId, type: 'targets' }).orderBy('id', 'desc').first();
    const url = `${base}/modules/${module.id}`;
    const saved = await director.post(url, { lock_version: String(module.lock_version), period: 'custom', from: `${year}-01-01`, to: `${year}-03-31`, measure, people: 'all' });
    expect(saved.status).toBe(303);
    return url;
  }

  /** Quarter targets for `year` (won amount: 1000 EUR each) and won deals of rep2 in the CRM project (200 EUR) and in Americas (400 EUR). */
  async function targetsAndDeals(year: number, logins: string[]): Promise<void> {
    const director = await Session.signIn(host.app, 'director');
    for (const login of logins) {
      expect((await director.post(BASE, { user_id: uid(login), period_kind: 'quarter', period_start: `${year}-01-01`, measure: 'won_amount', target: '1000' })).status).toBe(303);
    }
    const won = Number((await knex()('crm_opportunity_statuses').where({ name: 'Won' }).first()).id);
    const rep2 = host.demo.users.rep2.id;
    await knex()('crm_opportunities').insert([
      { project_id: host.demo.projects.crm.id, name: `Won in CRM ${year}`, status_id: won, amount_minor: 20_000, currency: 'EUR', expected_close_on: `${year}-02-01`, owner_id: rep2, author_id: rep2 },
      { project_id: host.demo.projects['crm-americas'].id, name: `Won in Americas ${year}`, status_id: won, amount_minor: 40_000, currency: 'EUR', expected_close_on: `${year}-02-10`, owner_id: rep2, author_id: rep2 },
    ]);
  }

  async function withVisibility<T>(role: string, level: string, run: () => Promise<T>): Promise<T> {
    const id = await roleId(role);
    await knex()('crm_role_visibility').insert({ role_id: id, entity: 'opportunities', level }).onConflict(['role_id', 'entity']).merge({ level });
    try {
      return await run();
    } finally {
      await knex()('crm_role_visibility').where({ role_id: id, entity: 'opportunities' }).delete();
    }
  }

  test('without the targets permission a viewer sees the targets of those whose opportunities they may see: “all” everyone’s, “own” only theirs, “own + subordinates” their team’s, a partner’s user only theirs', async () => {
    await targetsAndDeals(2036, ['rep1', 'rep2', 'pm']);
    const url = await targetsModule('/projects/crm/crm', 2036);
    const pm = await Session.signIn(host.app, 'pm');
    expect(labels((await pm.get(`${url}.json`)).body)).toEqual(['Paul Manager', 'Rick Rep', 'Rita Rep']);

    await withVisibility('Project manager', 'own', async () => {
      const data = (await pm.get(`${url}.json`)).body;
      expect(labels(data)).toEqual(['Paul Manager']);
      expect(visibleText((await pm.get(url)).text)).not.toContain('Rita Rep');
    });
    const supervisor = await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).first();
    await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).update({ supervisor_id: host.demo.users.pm.id });
    try {
      await withVisibility('Project manager', 'subordinates', async () => {
        expect(labels((await pm.get(`${url}.json`)).body)).toEqual(['Paul Manager', 'Rita Rep']);
      });
    } finally {
      await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).update({ supervisor_id: supervisor.supervisor_id });
    }

    const rep1 = await Session.signIn(host.app, 'rep1');
    await withVisibility('Sales rep', 'own', async () => {
      expect(labels((await rep1.get(`${url}.json`)).body)).toEqual(['Rick Rep']);
    });
    // A partner's user sees only the opportunities assigned to the partner, not anybody's sales: only their own target.
    const partner = await knex()('crm_partners').first('id');
    await knex()('crm_partner_users').insert({ partner_id: partner.id, user_id: host.demo.users.rep1.id });
    try {
      const data = (await rep1.get(`${url}.json`)).body;
      expect(labels(data)).toEqual(['Rick Rep']);
      expect(visibleText((await rep1.get(url)).text)).not.toContain('Rita Rep');
    } finally {
      await knex()('crm_partner_users').where({ partner_id: partner.id, user_id: host.demo.users.rep1.id }).delete();
    }
  });

  test('who manages user targets (or is an admin) sees every target, told when the actuals count only what they may see', async () => {
    await targetsAndDeals(2037, ['rep1', 'rep2', 'pm']);
    const url = await targetsModule('/projects/crm/crm', 2037);
    const director = await Session.signIn(host.app, 'director');
    await withVisibility('Sales director', 'subordinates', async () => {
      const data = (await director.get(`${url}.json`)).body;
      expect(labels(data)).toEqual(['Paul Manager', 'Rick Rep', 'Rita Rep']);
      expect(actualOf(data, 'Rita Rep')).toBe(60_000);
      expect(visibleText((await director.get(url)).text)).toContain('the actuals count only what you may see');
    });
    const admin = await Session.signIn(host.app, 'admin');
    expect(labels((await admin.get(`${url}.json`)).body)).toEqual(['Paul Manager', 'Rick Rep', 'Rita Rep']);

    // The permission is part of what the cached numbers depend on: granting it shows pm every target at once.
    const pm = await Session.signIn(host.app, 'pm');
    const pmRole = await roleId('Project manager');
    await withVisibility('Project manager', 'own', async () => {
      expect(labels((await pm.get(`${url}.json`)).body)).toEqual(['Paul Manager']);
      await knex()('role_permissions').insert({ role_id: pmRole, permission: 'manage_user_targets' });
      try {
        const data = (await pm.get(`${url}.json`)).body;
        expect(labels(data)).toEqual(['Paul Manager', 'Rick Rep', 'Rita Rep']);
        expect(actualOf(data, 'Rita Rep')).toBe(0);
        expect(data.notes.join(' ')).toContain('the actuals count only what you may see');
      } finally {
        await knex()('role_permissions').where({ role_id: pmRole, permission: 'manage_user_targets' }).delete();
      }
      expect(labels((await pm.get(`${url}.json`)).body)).toEqual(['Paul Manager']);
    });
  });

  test('the actuals count what the overview covers and say so: this project, the subprojects the viewer may see, all the viewer’s projects', async () => {
    await targetsAndDeals(2038, ['rep1', 'rep2']);
    const url = await targetsModule('/projects/crm/crm', 2038);
    // The CRM project's overview includes its subprojects: the director sees all three regions, pm none of them.
    const director = await Session.signIn(host.app, 'director');
    const all = (await director.get(`${url}.json`)).body;
    expect(actualColumn(all)).toBe('Won in this project and 3 subprojects');
    expect(actualOf(all, 'Rita Rep')).toBe(60_000);
    const pm = await Session.signIn(host.app, 'pm');
    const mine = (await pm.get(`${url}.json`)).body;
    expect(mine.rows.map((r: { label: string; values: unknown }) => [r.label, r.values])).toEqual([
      ['Rick Rep', { target: 100_000, actual: 0, progress: 0 }],
      ['Rita Rep', { target: 100_000, actual: 20_000, progress: 2000 }],
    ]);
    const page = visibleText((await pm.get(url)).text);
    expect(page).toContain('Won in this project');
    expect(page).not.toContain('Won in this project and');
    expect(page).toContain('Rita Rep 1 000.00 EUR 200.00 EUR 20.0 %');
    expect(page).toContain('Results in other projects are not counted here');
    // rep2 is in the CRM project and Americas, not in Europe or Asia.
    const rep2 = await Session.signIn(host.app, 'rep2');
    const some = (await rep2.get(`${url}.json`)).body;
    expect(actualColumn(some)).toBe('Won in this project and 1 subproject');
    expect(actualOf(some, 'Rita Rep')).toBe(60_000);
    const csv = await director.get(`${url}/data.csv`);
    expect(csv.text.split('\r\n')[0]).toBe('Label,Target (won amount) (EUR),Won in this project and 3 subprojects (EUR),Reached');

    const global = await targetsModule('/crm', 2038);
    const everywhere = (await pm.get(`${global}.json`)).body;
    expect(actualColumn(everywhere)).toBe('Won in all your projects');
    expect(actualOf(everywhere, 'Rita Rep')).toBe(20_000);
    expect(actualOf((await director.get(`${global}.json`)).body, 'Rita Rep')).toBe(60_000);

    const deals = (await pm.get(`${await targetsModule('/projects/crm/crm', 2038, 'won_count')}.json`)).body;
    expect(actualColumn(deals)).toBe('Deals won in this project');
    const calls = (await director.get(`${await targetsModule('/crm', 2038, 'activities')}.json`)).body;
    expect(actualColumn(calls)).toBe('Activities in all your projects');
  });
});
