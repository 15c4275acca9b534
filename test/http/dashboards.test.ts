import { Session, lockVersionIn, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';
import { dateText } from '../../plugin/services/accounts';
import { monthStart, quarterStart } from '../../plugin/services/dashboard-config';
import { todayUtc } from '../../plugin/services/dates';
import { convertMinor, rateOn } from '../../plugin/services/exchange-rates';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const statusId = async (name: string) => Number((await knex()('crm_opportunity_statuses').where({ name }).first()).id);
const projectId = (identifier: string) => host.demo.projects[identifier].id;

async function opportunity(row: { project: string; name: string; status: string; amount: number | null; currency: string; close: string; owner: string }): Promise<number> {
  const owner = host.demo.users[row.owner].id;
  const [r] = await knex()('crm_opportunities').insert({
    project_id: projectId(row.project), name: row.name, status_id: await statusId(row.status), amount_minor: row.amount, currency: row.currency,
    expected_close_on: row.close, owner_id: owner, author_id: owner,
  }).returning('id');
  return Number(r.id ?? r);
}

let contractSeq = 0;
async function contract(row: { project: string; owner: string; kind: string; status?: string; amount: number; currency: string; starts: string; ends: string | null; category?: number | null; opportunity?: number | null; name?: string }) {
  await knex()('crm_contracts').insert({
    source_key: `test:${++contractSeq}`, opportunity_id: row.opportunity ?? null, project_id: projectId(row.project), owner_id: host.demo.users[row.owner].id,
    kind: row.kind, name: row.name ?? `Contract ${contractSeq}`, amount_minor: row.amount, currency: row.currency, starts_on: row.starts, ends_on: row.ends,
    status: row.status ?? 'active', category_id: row.category ?? null, quantity_milli: 1000, code: '', renewal: false, lock_version: 0,
  });
}

/** A new global overview page made through the routes, with one module of `type` on it (the caller deletes the page). */
async function globalPageWithModule(s: Session, name: string, type: string): Promise<{ pageId: number; module: { id: number; config: string; lock_version: number; title: string; position: number } }> {
  const created = await s.post('/crm/pages', { name });
  expect(created.status).toBe(303);
  const pageId = Number(/\/crm\/pages\/(\d+)\/customize/.exec(created.headers.location)![1]);
  expect((await s.post(`/crm/pages/${pageId}/modules`, { type })).status).toBe(303);
  return { pageId, module: await knex()('crm_dashboard_modules').where({ page_id: pageId }).first() };
}

async function rate(from: string, to: string, rateMicro: number, validOn: string) {
  await knex()('crm_exchange_rates').insert({ from_currency: from, to_currency: to, rate_micro: rateMicro, valid_on: validOn });
}

/** The first page of a project's overview (created on first view) and a module of `type` added to it, configured by `config`. */
async function moduleOn(s: Session, project: string | null, type: string, config: Record<string, string>): Promise<{ base: string; pageId: number; moduleId: number; url: string }> {
  const base = project ? `/projects/${project}/crm` : '/crm';
  const overview = await s.get(`${base}.json`);
  expect(overview.status).toBe(200);
  const pageId = overview.body.page.id as number;
  const added = await s.agent.post(`${base}/pages/${pageId}/modules`).set('Accept', 'application/json').set('X-CSRF-Token', s.csrf).send({ type });
  expect(added.status).toBe(200);
  const moduleId = (added.body.modules as { id: number }[]).map((m) => m.id).sort((a, b) => b - a)[0];
  const lock = (added.body.modules as { id: number; lock_version: number }[]).find((m) => m.id === moduleId)!.lock_version;
  const saved = await s.post(`${base}/modules/${moduleId}`, { lock_version: String(lock), ...config });
  expect(saved.status).toBe(303);
  return { base, pageId, moduleId, url: `${base}/modules/${moduleId}` };
}

const row = (data: { rows: { key: string; label: string; values: Record<string, number | null>; link?: string | null }[] }, label: string) => data.rows.find((r) => r.label === label)!;

describe('the demo overview (D1, D5 at npm start)', () => {
  test('the demo’s won deals closed in this quarter, so its targets vs actual show rep2’s progress on the day it is seeded', async () => {
    const closeOf = async (name: string) => dateText((await knex()('crm_opportunities').where({ name }).first('expected_close_on')).expected_close_on) ?? '';
    const today = todayUtc();
    const initech = await closeOf('Initech – licences');
    expect(initech >= quarterStart(today) && initech <= today).toBe(true);
    const webshop = await closeOf('Webshop – integration');
    expect(webshop >= monthStart(today) && webshop <= today).toBe(true);

    const director = await Session.signIn(host.app, 'director');
    const overview = (await director.get('/crm.json')).body;
    const targets = overview.modules.find((m: { type: string }) => m.type === 'targets');
    expect(targets).toBeDefined();
    const module = (await director.get(`/crm/modules/${targets.id}.json`)).body;
    const values = (label: string) => module.rows.find((r: { label: string }) => r.label === label)?.values;
    const rate = await rateOn(knex(), 'USD', 'EUR', today);
    expect(rate).not.toBeNull();
    // rep2 (Rita) won Initech – licences, 36 000.00 USD, against a quarter target of 90 000.00 EUR; rep1 won nothing yet.
    const won = convertMinor(3_600_000, 'USD', 'EUR', rate!.rate_micro);
    expect(values('Rita Rep')).toMatchObject({ target: 9_000_000, actual: won });
    expect(values('Rita Rep').progress).toBeGreaterThan(0);
    expect(values('Rick Rep')).toMatchObject({ target: 12_000_000, actual: 0 });
  });
});

describe('overview pages of modules (D1)', () => {
  test('the global overview has the four seeded pages as tabs, each with modules, and still lists the CRM projects', async () => {
    const director = await Session.signIn(host.app, 'director');
    const json = (await director.get('/crm.json')).body;
    expect(json.pages.map((p: { name: string }) => p.name)).toEqual(['Results', 'Statistics & data', 'Pending payments', 'Product details']);
    expect(json.modules.map((m: { type: string }) => m.type)).toEqual(['funnel', 'revenue', 'team', 'targets']);
    expect(json.projects.map((p: { identifier: string }) => p.identifier)).toContain('crm-europe');
    const page = await director.get('/crm');
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    for (const name of ['Results', 'Statistics & data', 'Pending payments', 'Product details', 'Sales funnel', 'Revenue over time', 'Customize this page']) expect(text).toContain(name);
    expect(page.text).toContain('<svg class="chart');
    const stats = await director.get(json.pages[1].url);
    expect(visibleText(stats.text)).toContain('Top performers');
    const fragment = await director.htmxGet('/crm');
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
  });

  test('a project with CRM but no page yet gets the default page on its first view', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect(await knex()('crm_dashboard_pages').where({ project_id: projectId('crm-asia') }).first()).toBeUndefined();
    const json = (await director.get('/projects/crm-asia/crm.json')).body;
    expect(json.pages.map((p: { name: string }) => p.name)).toEqual(['Overview']);
    expect(json.modules.map((m: { type: string }) => m.type)).toEqual(['funnel', 'forecast', 'won_by_person', 'activities', 'targets']);
    expect((await knex()('crm_dashboard_pages').where({ project_id: projectId('crm-asia') })).length).toBe(1);
    await director.get('/projects/crm-asia/crm');
    expect((await knex()('crm_dashboard_pages').where({ project_id: projectId('crm-asia') })).length).toBe(1);
  });

  test('customize: add (htmx and plain form), edit, reorder and remove modules; rename, add and delete pages', async () => {
    const pm = await Session.signIn(host.app, 'pm');
    const base = '/projects/crm/crm';
    const pageId = (await pm.get(`${base}.json`)).body.page.id;
    const customize = await pm.get(`${base}/pages/${pageId}/customize`);
    expect(customize.status).toBe(200);
    expect(visibleText(customize.text)).toContain('Add module');

    const added = await pm.htmxPost(`${base}/pages/${pageId}/modules`, { type: 'leaderboard', title: 'Best of <b>2026</b>' });
    expect(added.status).toBe(200);
    expect(added.headers['hx-trigger']).toBe('crm:overviewChanged');
    expect(added.text).toContain('Best of &lt;b&gt;2026&lt;/b&gt;');
    expect(added.text).not.toContain('<b>2026</b>');
    const plain = await pm.post(`${base}/pages/${pageId}/modules`, { type: 'contracts' });
    expect(plain.status).toBe(303);
    expect(plain.headers.location).toMatch(new RegExp(`^${base}/pages/${pageId}/customize#module-\\d+$`));

    let modules = (await pm.get(`${base}.json`)).body.modules as { id: number; type: string; title: string; lock_version: number }[];
    expect(modules.slice(-2).map((m) => m.type)).toEqual(['leaderboard', 'contracts']);
    const [leader, contracts] = modules.slice(-2);

    const moved = await pm.post(`${base}/modules/${contracts.id}/move`, { direction: 'up' });
    expect(moved.status).toBe(303);
    modules = (await pm.get(`${base}.json`)).body.modules;
    expect(modules.slice(-2).map((m) => m.id)).toEqual([contracts.id, leader.id]);

    const form = await pm.get(`${base}/modules/${leader.id}/edit`);
    expect(form.status).toBe(200);
    const edited = await pm.post(`${base}/modules/${leader.id}`, { lock_version: String(leader.lock_version), title: 'Top three', period: 'last_days', days: '30', chart: 'table', people: 'all', limit: '3' });
    expect(edited.status).toBe(303);
    const stored = await knex()('crm_dashboard_modules').where({ id: leader.id }).first();
    expect(stored.title).toBe('Top three');
    expect(JSON.parse(stored.config)).toMatchObject({ period: { kind: 'last_days', days: 30 }, chart: 'table', people: 'all', limit: 3 });
    const stale = await pm.post(`${base}/modules/${leader.id}`, { lock_version: String(leader.lock_version), title: 'Stale' });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('changed by someone else');
    expect((await knex()('crm_dashboard_modules').where({ id: leader.id }).first()).title).toBe('Top three');

    const removed = await pm.htmxPost(`${base}/modules/${contracts.id}/delete`);
    expect(removed.status).toBe(200);
    expect(await knex()('crm_dashboard_modules').where({ id: contracts.id }).first()).toBeUndefined();

    const page = await knex()('crm_dashboard_pages').where({ id: pageId }).first();
    expect((await pm.post(`${base}/pages/${pageId}`, { name: 'Pipeline', lock_version: String(page.lock_version) })).status).toBe(303);
    expect((await pm.get(`${base}.json`)).body.pages[0].name).toBe('Pipeline');
    const newPage = await pm.post(`${base}/pages`, { name: 'Renewals' });
    expect(newPage.status).toBe(303);
    const pages = (await pm.get(`${base}.json`)).body.pages as { id: number; name: string }[];
    expect(pages.map((p) => p.name)).toEqual(['Pipeline', 'Renewals']);
    expect((await pm.post(`${base}/pages/${pages[1].id}/delete`)).status).toBe(303);
    const last = await pm.post(`${base}/pages/${pageId}/delete`);
    expect(last.status).toBe(422);
    expect(visibleText(last.text)).toContain('keeps at least one page');
    const journal = await knex()('crm_journals').where({ journalized_type: 'dashboard_page', journalized_id: pageId });
    expect(journal.length).toBeGreaterThan(3);
  });

  test('bad input: unknown module type, end before start, unknown filter field, missing page name (422 naming the field)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { base, moduleId } = await moduleOn(director, 'crm-americas', 'funnel', { period: 'this_year' });
    const lock = String((await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).lock_version);
    const backwards = await director.post(`${base}/modules/${moduleId}`, { lock_version: lock, period: 'custom', from: '2031-12-31', to: '2031-01-01' });
    expect(backwards.status).toBe(422);
    expect(backwards.text).toContain('data-field="to"');
    expect(visibleText(backwards.text)).toContain('The period ends before it starts');
    const json = await director.agent.post(`${base}/modules/${moduleId}`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ lock_version: lock, filter_nonexistent: '1', filter_owner_id: '<script>' });
    expect(json.status).toBe(422);
    expect(Object.keys(json.body.fields).sort()).toEqual(['filter_nonexistent', 'filter_owner_id']);
    const html = await director.post(`${base}/modules/${moduleId}`, { lock_version: lock, 'filter_x"><script>alert(1)</script>': '1' });
    expect(html.status).toBe(422);
    expect(html.text).not.toContain('<script>alert(1)</script>');
    const pageId = (await director.get(`${base}.json`)).body.page.id;
    expect((await director.post(`${base}/pages/${pageId}/modules`, { type: 'crystal_ball' })).status).toBe(422);
    expect((await director.post(`${base}/pages`, { name: '' })).status).toBe(422);
    const viewer = await director.get(`${base}/modules/${moduleId}?period=custom&from=2031-05-01&to=2031-04-01`);
    expect(viewer.status).toBe(422);
    expect(viewer.text).toContain('data-field="to"');
  });

  test('without manage_crm_page every change answers 404 and changes nothing; modules of other levels are 404 too', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { base, pageId, moduleId } = await moduleOn(director, 'crm-europe', 'won_by_person', { period: 'this_year' });
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.get(`${base}/pages/${pageId}/customize`)).status).toBe(404);
    expect((await rep.get(`${base}/modules/${moduleId}/edit`)).status).toBe(404);
    expect((await rep.post(`${base}/pages/${pageId}/modules`, { type: 'funnel' })).status).toBe(404);
    expect((await rep.post(`${base}/modules/${moduleId}/delete`)).status).toBe(404);
    expect((await rep.post(`${base}/modules/${moduleId}`, { lock_version: '1', title: 'Mine now' })).status).toBe(404);
    expect((await rep.post(`${base}/pages/${pageId}`, { name: 'Mine', lock_version: '0' })).status).toBe(404);
    expect(await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).toBeDefined();
    // The rep may look at it, though, and sees no customize link.
    const view = await rep.get(`${base}/pages/${pageId}`);
    expect(view.status).toBe(200);
    expect(visibleText(view.text)).not.toContain('Customize this page');
    // A module belongs to its level: not reachable through another project or the global overview.
    expect((await director.get(`/projects/crm-americas/crm/modules/${moduleId}`)).status).toBe(404);
    expect((await director.get(`/crm/modules/${moduleId}`)).status).toBe(404);
    expect((await director.post(`/crm/modules/${moduleId}/delete`)).status).toBe(404);
    // rep2 is not in Europe at all.
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`${base}/modules/${moduleId}`)).status).toBe(404);
  });
});

describe('module numbers (D2, D3): SQL aggregates, currencies, periods, visibility', () => {
  // Rates used on the reporting date: 1 USD = 0.9 EUR, 1 SEK = 0.1 EUR (the latest before today); JPY has none.
  beforeAll(async () => {
    await rate('USD', 'EUR', 900_000, '2026-06-01');
    await rate('SEK', 'EUR', 100_000, '2026-06-01');
    const o = (status: string, amount: number | null, currency: string, close: string, owner: string, project = 'crm-europe') =>
      opportunity({ project, name: `2031 ${status} ${currency} ${owner}`, status, amount, currency, close, owner });
    await o('Qualification', 100_000, 'EUR', '2031-02-10', 'rep1');
    await o('Needs analysis', null, 'EUR', '2031-05-01', 'rep1');
    await o('Proposal', 200_000, 'EUR', '2031-05-20', 'rep1');
    await o('Proposal', 100_000, 'USD', '2031-08-15', 'rep2');
    await o('Negotiation', 100_000, 'JPY', '2031-11-30', 'rep1');
    const won = await o('Won', 50_000, 'USD', '2031-03-01', 'rep1');
    await o('Won', 1_000_000, 'SEK', '2031-07-01', 'director');
    await o('Lost', 30_000, 'EUR', '2031-04-01', 'rep1');
    // Outside the period, and in another project that the Europe page does not include.
    await o('Proposal', 999_999, 'EUR', '2032-01-01', 'rep1');
    await o('Proposal', 777_777, 'EUR', '2031-06-01', 'rep2', 'crm-americas');
    const category = Number((await knex()('crm_product_categories').first('id')).id);
    await contract({ project: 'crm-europe', owner: 'rep1', kind: 'time_based', amount: 365_000, currency: 'EUR', starts: '2031-01-01', ends: '2031-12-31', category, opportunity: won, name: 'Support 2031' });
    await contract({ project: 'crm-europe', owner: 'director', kind: 'time_based', amount: 10_000, currency: 'USD', starts: '2031-01-15', ends: '2031-02-13', category });
    await contract({ project: 'crm-europe', owner: 'rep1', kind: 'time_based', status: 'cancelled', amount: 50_000, currency: 'EUR', starts: '2031-01-01', ends: '2031-12-31', category });
    await contract({ project: 'crm-europe', owner: 'rep1', kind: 'one_time', amount: 120_000, currency: 'EUR', starts: '2031-03-15', ends: null, category, opportunity: won, name: 'Installation' });
    await contract({ project: 'crm-europe', owner: 'rep1', kind: 'time_based', amount: 99_000, currency: 'EUR', starts: '2030-01-01', ends: '2030-12-31', category });
  });

  const custom2031 = { period: 'custom', from: '2031-01-01', to: '2031-12-31', people: 'all' };

  test('the funnel per status: count, amount and weighted amount converted to EUR, saying which rates it used', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm-europe', 'funnel', custom2031);
    const data = (await director.get(`${url}.json`)).body;
    expect(data.currency).toBe('EUR');
    expect(data.period).toMatchObject({ from: '2031-01-01', to: '2031-12-31' });
    expect(row(data, 'Qualification').values).toEqual({ count: 1, amount: 100_000, weighted: 10_000 });
    expect(row(data, 'Needs analysis').values).toEqual({ count: 1, amount: 0, weighted: 0 });
    expect(row(data, 'Proposal').values).toEqual({ count: 2, amount: 290_000, weighted: 145_000 });
    expect(row(data, 'Negotiation').values).toEqual({ count: 1, amount: 0, weighted: 0 });
    expect(row(data, 'Won').values).toEqual({ count: 2, amount: 145_000, weighted: 145_000 });
    expect(row(data, 'Lost').values).toEqual({ count: 1, amount: 30_000, weighted: 0 });
    expect(data.totals).toEqual({ count: 8, amount: 565_000, weighted: 300_000 });
    expect(data.conversion.rates.map((r: { from: string; rate: string }) => `${r.from} ${r.rate}`).sort()).toEqual(['SEK 0.1', 'USD 0.9']);
    expect(data.conversion.missing).toEqual([{ currency: 'JPY', amount_minor: 100_000 }]);
    const page = visibleText((await director.get(url)).text);
    expect(page).toContain('Amounts in EUR, converted at the rates valid on');
    expect(page).toContain('1 USD = 0.9 EUR');
    expect(page).toContain('No exchange rate for JPY');
  });

  test('the funnel title and rows link to the opportunity list with the same filters, whose totals are the module numbers', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm-europe', 'funnel', custom2031);
    const data = (await director.get(`${url}.json`)).body;
    expect(data.link).toBe('/projects/crm-europe/crm/opportunities?close_from=2031-01-01&close_to=2031-12-31');
    const all = (await director.get(data.link.replace('/opportunities?', '/opportunities.json?'))).body;
    expect(all.pagination.total).toBe(data.totals.count);
    for (const r of data.rows as { label: string; link: string; values: { count: number }; currencies: unknown[] }[]) {
      expect(r.link).toContain('status=');
      const list = (await director.get(r.link.replace('/opportunities?', '/opportunities.json?'))).body;
      expect(list.pagination.total).toBe(r.values.count);
      expect(list.totals).toEqual(r.currencies);
    }
  });

  test('a period picker choice changes the numbers for the viewer only; periods cut by expected close date', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url, moduleId } = await moduleOn(director, 'crm-europe', 'funnel', custom2031);
    const q1 = (await director.get(`${url}.json?period=custom&from=2031-01-01&to=2031-03-31`)).body;
    expect(q1.totals).toEqual({ count: 2, amount: 145_000, weighted: 55_000 });
    const card = await director.agent.get(`${url}?period=custom&from=2031-01-01&to=2031-03-31`).set('HX-Request', 'true').set('HX-Target', `module-${moduleId}`);
    expect(card.text.trim().startsWith(`<article class="module module-funnel" id="module-${moduleId}"`)).toBe(true);
    expect(JSON.parse((await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).config).period).toEqual({ kind: 'custom', from: '2031-01-01', to: '2031-12-31' });
  });

  test('the weighted forecast by expected close quarter, open opportunities only', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm-europe', 'forecast', custom2031);
    const data = (await director.get(`${url}.json`)).body;
    expect(data.rows.map((r: { label: string; values: { weighted: number } }) => [r.label, r.values.weighted])).toEqual([
      ['2031 Q1', 10_000], ['2031 Q2', 100_000], ['2031 Q3', 45_000], ['2031 Q4', 0],
    ]);
    expect(data.rows[1].values.count).toBe(2);
    expect(data.rows[1].link).toContain('close_from=2031-04-01&close_to=2031-06-30');
  });

  test('won deals per person, leaderboard and team performance', async () => {
    const director = await Session.signIn(host.app, 'director');
    const won = (await director.get(`${(await moduleOn(director, 'crm-europe', 'won_by_person', custom2031)).url}.json`)).body;
    expect(won.rows.map((r: { label: string; values: unknown }) => [r.label, r.values])).toEqual([
      ['Diane Director', { count: 1, amount: 100_000 }], ['Rick Rep', { count: 1, amount: 45_000 }],
    ]);
    const board = (await director.get(`${(await moduleOn(director, 'crm-europe', 'leaderboard', { ...custom2031, limit: '1' })).url}.json`)).body;
    expect(board.rows.map((r: { label: string }) => r.label)).toEqual(['1. Diane Director']);
    const team = (await director.get(`${(await moduleOn(director, 'crm-europe', 'team', custom2031)).url}.json`)).body;
    expect(row(team, 'Rick Rep').values).toMatchObject({ amount: 45_000, won: 1, lost: 1, win_rate: 5000 });
  });

  test('revenue per month from won deals and contracts; active contracts with monthly value and expiring soon', async () => {
    const director = await Session.signIn(host.app, 'director');
    const revenue = (await director.get(`${(await moduleOn(director, 'crm-europe', 'revenue', custom2031)).url}.json`)).body;
    expect(revenue.rows).toHaveLength(12);
    expect(row(revenue, '2031-01').values).toEqual({ won: 0, contracts: 365_000 + 9_000 });
    expect(row(revenue, '2031-03').values).toEqual({ won: 45_000, contracts: 120_000 });
    expect(row(revenue, '2031-07').values).toEqual({ won: 100_000, contracts: 0 });
    const contracts = (await director.get(`${(await moduleOn(director, 'crm-europe', 'contracts', custom2031)).url}.json`)).body;
    // 365 000 × 30 / 365 = 30 000 EUR; 10 000 USD × 30 / 30 = 10 000 USD = 9 000 EUR; the cancelled, one-time and 2030 ones do not count.
    expect(contracts.totals).toEqual({ count: 2, mrr: 39_000, expiring: 1 });
    // Drill-down: the title and each row link to the contracts list with the same window, whose count is the module's.
    const listTotal = async (link: string) => {
      const [path, query] = link.split('?');
      const res = await director.get(`${path}.json?${query}`);
      expect(res.status).toBe(200);
      return res.body.pagination.total as number;
    };
    expect(contracts.link).toBe('/projects/crm-europe/crm/contracts?kind=time_based&running_from=2031-01-01&running_to=2031-12-31');
    expect(await listTotal(contracts.link)).toBe(contracts.totals.count);
    for (const r of contracts.rows) expect(await listTotal(r.link)).toBe(r.values.count);
    const products = (await director.get(`${(await moduleOn(director, 'crm-europe', 'won_by_product', custom2031)).url}.json`)).body;
    expect(products.totals).toEqual({ amount: 365_000 + 9_000 + 120_000 });
    // Won per product counts contracts not removed that started in the period: the list says the same.
    expect(await listTotal(products.link)).toBe(3);
    expect((await director.get('/projects/crm-europe/crm/contracts?running_from=2031-02-01&running_to=2031-01-01')).status).toBe(422);
  });

  test('sales activities by category, by person and per month', async () => {
    const director = await Session.signIn(host.app, 'director');
    const opp = await opportunity({ project: 'crm-europe', name: 'Activities 2031', status: 'Proposal', amount: 0, currency: 'EUR', close: '2033-01-01', owner: 'rep1' });
    const cat = async (name: string) => Number((await knex()('crm_activity_categories').where({ name }).first()).id);
    const activity = async (category: string, at: string, responsible: string) => knex()('crm_sales_activities').insert({
      record_type: 'opportunity', record_id: opp, project_id: projectId('crm-europe'), category_id: await cat(category), subject: `${category} ${at}`, notes: '',
      occurred_at: at, responsible_id: host.demo.users[responsible].id, author_id: host.demo.users[responsible].id, is_personal: false, lock_version: 0,
    });
    await activity('Call', '2031-01-05T10:00:00.000Z', 'rep1');
    await activity('Call', '2031-02-07T10:00:00.000Z', 'rep1');
    await activity('Meeting', '2031-02-09T10:00:00.000Z', 'rep2');
    await activity('Call', '2032-02-09T10:00:00.000Z', 'rep2');
    const byCategory = (await director.get(`${(await moduleOn(director, 'crm-europe', 'activities', { ...custom2031, group: 'category' })).url}.json`)).body;
    expect(byCategory.rows.filter((r: { values: { count: number } }) => r.values.count > 0).map((r: { label: string; values: { count: number } }) => [r.label, r.values.count])).toEqual([['Call', 2], ['Meeting', 1]]);
    const byPerson = (await director.get(`${(await moduleOn(director, 'crm-europe', 'activities', { ...custom2031, group: 'person' })).url}.json`)).body;
    expect(byPerson.rows.map((r: { label: string; values: { count: number } }) => [r.label, r.values.count])).toEqual([['Rick Rep', 2], ['Rita Rep', 1]]);
    // Drill-down: each row links to the activities list with the same period and row filter, whose total is the row's number.
    type ActivityRow = { label: string; values: { count: number }; link: string };
    for (const r of [...byCategory.rows, ...byPerson.rows].filter((x: ActivityRow) => x.values.count > 0) as ActivityRow[]) {
      expect(r.link).toContain('from=2031-01-01');
      const [path, query] = r.link.split('?');
      const list = await director.get(`${path}.json?${query}`);
      expect(list.status).toBe(200);
      expect([r.label, list.body.pagination.total]).toEqual([r.label, r.values.count]);
    }
    expect((await director.get('/projects/crm-europe/crm/activities?from=2031-02-01&to=2031-01-01')).status).toBe(422);
    const byMonth = (await director.get(`${(await moduleOn(director, 'crm-europe', 'activities', { ...custom2031, group: 'month', chart: 'line' })).url}.json`)).body;
    expect(byMonth.rows.slice(0, 3).map((r: { values: { count: number } }) => r.values.count)).toEqual([1, 2, 0]);
    expect((await director.get(`${(await moduleOn(director, 'crm-europe', 'activities', { ...custom2031, group: 'month', chart: 'line' })).url}`)).text).toContain('<svg class="chart line"');
  });

  test('visibility: a rep with "own" opportunity visibility sees only their numbers, a partner user only their partner’s', async () => {
    const director = await Session.signIn(host.app, 'director');
    const funnel = await moduleOn(director, 'crm-europe', 'funnel', custom2031);
    const contracts = await moduleOn(director, 'crm-europe', 'contracts', custom2031);
    const role = await knex()('roles').where({ name: 'Sales rep' }).first();
    await knex()('crm_role_visibility').insert({ role_id: role.id, entity: 'opportunities', level: 'own' }).onConflict(['role_id', 'entity']).merge({ level: 'own' });
    try {
      const rep = await Session.signIn(host.app, 'rep1');
      const data = (await rep.get(`${funnel.url}.json`)).body;
      // rep2's USD proposal and the director's SEK deal are not rep1's.
      expect(row(data, 'Proposal').values).toEqual({ count: 1, amount: 200_000, weighted: 100_000 });
      expect(row(data, 'Won').values).toEqual({ count: 1, amount: 45_000, weighted: 45_000 });
      expect(data.totals.count).toBe(6);
      const list = (await rep.get(row(data, 'Proposal').link!.replace('/opportunities?', '/opportunities.json?'))).body;
      expect(list.pagination.total).toBe(1);
      const c = (await rep.get(`${contracts.url}.json`)).body;
      expect(c.totals).toEqual({ count: 1, mrr: 30_000, expiring: 0 });
    } finally {
      await knex()('crm_role_visibility').where({ role_id: role.id, entity: 'opportunities' }).delete();
    }
    // Partner users see only their partner's opportunities.
    const partner = await knex()('crm_partners').first('id');
    const partnerOpp = await opportunity({ project: 'crm-europe', name: 'Via partner 2031', status: 'Qualification', amount: 5_000, currency: 'EUR', close: '2031-09-09', owner: 'rep2' });
    await knex()('crm_opportunities').where({ id: partnerOpp }).update({ partner_id: partner.id });
    await knex()('crm_partner_users').insert({ partner_id: partner.id, user_id: host.demo.users.rep1.id });
    try {
      const rep = await Session.signIn(host.app, 'rep1');
      const data = (await rep.get(`${funnel.url}.json`)).body;
      expect(data.totals).toEqual({ count: 1, amount: 5_000, weighted: 500 });
    } finally {
      await knex()('crm_partner_users').where({ partner_id: partner.id, user_id: host.demo.users.rep1.id }).delete();
      await knex()('crm_opportunities').where({ id: partnerOpp }).delete();
    }
  });

  test('"auto" modules show a sales rep their own numbers and a sales director the whole team', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm-europe', 'won_by_person', { period: 'custom', from: '2031-01-01', to: '2031-12-31', people: 'auto' });
    const all = (await director.get(`${url}.json`)).body;
    expect(all.people).toBe('all');
    expect(all.rows).toHaveLength(2);
    const rep = await Session.signIn(host.app, 'rep1');
    const mine = (await rep.get(`${url}.json`)).body;
    expect(mine.people).toBe('me');
    expect(mine.rows.map((r: { label: string }) => r.label)).toEqual(['Rick Rep']);
    expect(mine.link).toContain(`owner=${host.demo.users.rep1.id}`);
  });

  test('CSV download and table view of a module', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm-europe', 'funnel', custom2031);
    const csv = await director.get(`${url}/data.csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toMatch(/^attachment; filename="sales-funnel-2031-01-01-2031-12-31\.csv"$/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).toBe('Label,Opportunities,Amount (EUR),Weighted (EUR)');
    expect(lines).toContain('Proposal,2,2900.00,1450.00');
    expect(lines[lines.length - 1]).toBe('Total,8,5650.00,3000.00');
    const page = await director.get(url);
    expect(page.text).toMatch(/<table class="list module-data">/);
    expect(visibleText(page.text)).toContain('Proposal 2 2 900.00 EUR 1 450.00 EUR');
  });

  test('a project overview reads the viewer’s grants, the modules, the project tree, its settings and the table versions once', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    await rep1.get('/projects/crm/crm');
    const { result: page, statements } = await statementsDuring(knex(), () => rep1.get('/projects/crm/crm'));
    expect(page.status).toBe(200);
    const count = (pattern: RegExp) => statements.filter((q) => pattern.test(q.sql)).length;
    expect({
      grants: count(/^select distinct ["`]members["`]\.["`]project_id["`], ["`]role_permissions["`]/),
      modules: count(/^select ["`]project_id["`], ["`]module["`] from ["`]project_modules["`]$/),
      tree: count(/^with recursive ["`]tree["`]/),
      versions: count(/from ["`]crm_table_versions["`]/),
      projectSettings: count(/from ["`]crm_project_settings["`]/),
    }).toEqual({ grants: 1, modules: 1, tree: 1, versions: 1, projectSettings: 1 });
  });

  test('the global overview page is a bounded number of queries, whatever the number of records', async () => {
    const director = await Session.signIn(host.app, 'director');
    await director.get('/crm');
    const count = async () => {
      let n = 0;
      const listener = () => { n += 1; };
      knex().on('query', listener);
      try {
        expect((await director.get('/crm')).status).toBe(200);
      } finally {
        knex().removeListener('query', listener);
      }
      return n;
    };
    // Each count follows a write, so every module is computed afresh (not taken from the result cache).
    await opportunity({ project: 'crm-asia', name: 'Bulk first', status: 'Won', amount: 999, currency: 'EUR', close: todayUtc(), owner: 'rep1' });
    const before = await count();
    for (let i = 0; i < 25; i++) await opportunity({ project: 'crm-asia', name: `Bulk ${i}`, status: i % 2 ? 'Won' : 'Proposal', amount: 1000 + i, currency: i % 3 ? 'EUR' : 'USD', close: todayUtc(), owner: i % 2 ? 'rep1' : 'rep2' });
    const after = await count();
    expect(after).toBe(before);
    expect(before).toBeLessThan(150);
    // Unchanged data: the modules come from the cache; no query reads the records they aggregate.
    const { result: page, statements } = await statementsDuring(knex(), () => director.get('/crm'));
    expect(page.status).toBe(200);
    const sql = statements.map((q) => q.sql);
    expect(sql.length).toBeLessThan(before);
    expect(sql.filter((q) => /crm_opportunities|crm_sales_activities|crm_contracts/.test(q))).toEqual([]);
    // The page resolves four scopes; the viewer's partner links are kept from the page before (they did not change).
    expect(sql.filter((q) => /crm_partner_users/.test(q))).toEqual([]);
  });

  test('cached module numbers follow every change of the data and of what the viewer may see', async () => {
    const director = await Session.signIn(host.app, 'director');
    const funnelTotals = async () => {
      const json = (await director.get('/crm.json')).body;
      return JSON.stringify(json.modules.find((m: { type: string }) => m.type === 'funnel').totals);
    };
    const first = await funnelTotals();
    expect(await funnelTotals()).toBe(first);
    await opportunity({ project: 'crm-asia', name: 'Cache probe', status: 'Proposal', amount: 77_700, currency: 'EUR', close: todayUtc(), owner: 'rep1' });
    const afterWrite = await funnelTotals();
    expect(afterWrite).not.toBe(first);
    // The host's memberships are not CRM tables: the viewer's scope is part of the cache key instead.
    const membership = { user_id: host.demo.users.director.id, project_id: projectId('crm-asia') };
    const saved = await knex()('members').where(membership);
    expect(saved.length).toBeGreaterThan(0);
    await knex()('members').where(membership).delete();
    try {
      expect(await funnelTotals()).not.toBe(afterWrite);
    } finally {
      await knex()('members').insert(saved);
    }
    expect(await funnelTotals()).toBe(afterWrite);
  });
});

describe('baselines (D4)', () => {
  test('a baseline freezes the module data: later changes to the data do not touch it; several per module; delete', async () => {
    const director = await Session.signIn(host.app, 'director');
    const period = { period: 'custom', from: '2034-01-01', to: '2034-12-31', people: 'all' };
    await opportunity({ project: 'crm-europe', name: 'Baseline A', status: 'Proposal', amount: 10_000, currency: 'EUR', close: '2034-03-01', owner: 'rep1' });
    const { url, moduleId } = await moduleOn(director, 'crm-europe', 'funnel', period);
    const taken = await director.post(`${url}/baselines`, { name: 'Start <of> year' });
    expect(taken.status).toBe(303);
    const first = await knex()('crm_baselines').where({ module_id: moduleId }).first();
    expect(taken.headers.location).toBe(`${url}?baseline=${first.id}`);
    const stored = first.data;

    await opportunity({ project: 'crm-europe', name: 'Baseline B', status: 'Proposal', amount: 5_000, currency: 'EUR', close: '2034-04-01', owner: 'rep1' });
    await knex()('crm_opportunities').where({ name: 'Baseline A' }).update({ amount_minor: 1 });
    const now = (await director.get(`${url}.json?baseline=${first.id}`)).body;
    expect(row(now, 'Proposal').values.amount).toBe(5_001);
    expect(now.baseline.name).toBe('Start <of> year');
    expect(now.baseline.rows.find((r: { label: string }) => r.label === 'Proposal').values).toEqual({ count: 1, amount: 10_000, weighted: 5_000 });
    expect((await knex()('crm_baselines').where({ id: first.id }).first()).data).toBe(stored);

    const page = await director.get(`${url}?baseline=${first.id}`);
    // Like every page, the module's page starts with its title (the module's title), then the way back.
    const title = (await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).title as string;
    expect(page.text).toMatch(new RegExp(`<section class="content">\\s*<h2>${title}</h2>\\s*<p class="breadcrumb">`));
    expect(page.text).toContain('Start &lt;of&gt; year');
    expect(page.text).not.toContain('Start <of> year');
    expect(page.text).toContain('class="series-0 baseline"');
    const csv = await director.get(`${url}/data.csv?baseline=${first.id}`);
    expect(csv.text.split('\r\n')[0]).toContain('Amount (Start <of> year)');

    expect((await director.htmxPost(`${url}/baselines`, { name: 'Second' })).status).toBe(200);
    expect((await director.get(`${url}.json`)).body.baselines.map((b: { name: string }) => b.name)).toEqual(['Start <of> year', 'Second']);
    expect((await director.post(`${url}/baselines`, { name: '' })).status).toBe(422);
    expect((await director.post(`${url}/baselines/${first.id}/delete`)).status).toBe(303);
    expect((await director.get(`${url}.json`)).body.baselines.map((b: { name: string }) => b.name)).toEqual(['Second']);
    expect((await director.post(`${url}/baselines/${first.id}/delete`)).status).toBe(404);
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(`${url}/baselines`, { name: 'Rep' })).status).toBe(404);
  });
  test('a baseline is shown only to the user who took it: its numbers were counted under their visibility, not the reader’s (S3)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const period = { period: 'custom', from: '2036-01-01', to: '2036-12-31', people: 'all' };
    await opportunity({ project: 'crm-americas', name: 'Hidden baseline deal', status: 'Proposal', amount: 70_000, currency: 'EUR', close: '2036-05-01', owner: 'rep2' });
    const { url, moduleId } = await moduleOn(director, null, 'funnel', period);
    expect((await director.post(`${url}/baselines`, { name: 'Americas included' })).status).toBe(303);
    const baseline = await knex()('crm_baselines').where({ module_id: moduleId }).first();
    const mine = (await director.get(`${url}.json?baseline=${baseline.id}`)).body;
    expect(mine.baselines.map((b: { name: string }) => b.name)).toEqual(['Americas included']);
    expect(mine.baseline.rows.find((r: { label: string }) => r.label === 'Proposal').values.count).toBe(1);

    // rep1 may read the global overview but not crm-americas: its deal counts nowhere in what rep1 sees.
    const rep = await Session.signIn(host.app, 'rep1');
    const theirs = await rep.get(`${url}.json?baseline=${baseline.id}`);
    expect(theirs.status).toBe(200);
    expect(row(theirs.body, 'Proposal').values.count).toBe(0);
    expect(theirs.body.baselines).toEqual([]);
    expect(theirs.body.baseline).toBeNull();
    const page = await rep.get(`${url}?baseline=${baseline.id}`);
    expect(visibleText(page.text)).not.toContain('Americas included');
    const csv = await rep.get(`${url}/data.csv?baseline=${baseline.id}`);
    expect(csv.text).not.toContain('Americas included');
    const overview = await rep.get('/crm.json');
    expect(JSON.stringify(overview.body)).not.toContain('Americas included');
    // Another customizer of the global overview neither sees nor deletes it.
    const admin = await Session.signIn(host.app, 'admin');
    expect((await admin.get(`${url}.json`)).body.baselines).toEqual([]);
    expect((await admin.post(`${url}/baselines/${baseline.id}/delete`)).status).toBe(404);
    expect(await knex()('crm_baselines').where({ id: baseline.id }).first()).toBeDefined();
  });
});

/** An account only its author (the director) and roles with "all" visibility may see, linked to `project`. */
async function directorsAccount(name: string, project: string): Promise<number> {
  const type = await knex()('crm_account_types').first('id');
  const director = host.demo.users.director.id;
  const [r] = await knex()('crm_accounts').insert({ account_type_id: type.id, name, author_id: director, account_manager_id: director }).returning('id');
  const id = Number(r.id ?? r);
  await knex()('crm_account_projects').insert({ account_id: id, project_id: projectId(project) });
  return id;
}

/** Runs `during` with the accounts of `role` limited to its members' own (S3). */
async function withOwnAccounts(role: string, during: () => Promise<void>): Promise<void> {
  const { id } = await knex()('roles').where({ name: role }).first('id');
  await knex()('crm_role_visibility').insert({ role_id: id, entity: 'accounts', level: 'own' }).onConflict(['role_id', 'entity']).merge({ level: 'own' });
  try {
    await during();
  } finally {
    await knex()('crm_role_visibility').where({ role_id: id, entity: 'accounts' }).delete();
  }
}

/** The links of a module's JSON (its title's and its rows'). */
const linksOf = (data: { link: string | null; rows: { link?: string | null }[] }) => [data.link, ...data.rows.map((r) => r.link)].filter((l): l is string => Boolean(l));

describe('module filters on records the viewer may not see (S3)', () => {
  const period2038 = { period: 'custom', from: '2038-01-01', to: '2038-12-31', people: 'all' };

  test('a module filtered on an account the viewer may not see is counted without that filter and says so, never naming the account', async () => {
    const account = await directorsAccount('Harbourline Holdings', 'crm-europe');
    const onAccount = await opportunity({ project: 'crm-europe', name: 'Dock cranes 2038', status: 'Proposal', amount: 40_000, currency: 'EUR', close: '2038-03-01', owner: 'director' });
    await knex()('crm_opportunities').where({ id: onAccount }).update({ account_id: account });
    await opportunity({ project: 'crm-europe', name: 'Shop fittings 2038', status: 'Proposal', amount: 15_000, currency: 'EUR', close: '2038-04-01', owner: 'rep1' });
    const director = await Session.signIn(host.app, 'director');
    const { url, moduleId, base } = await moduleOn(director, 'crm-europe', 'funnel', { ...period2038, filter_account_id: String(account) });

    await withOwnAccounts('Sales rep', async () => {
      // The author (and an admin) still count the account's deals alone, as before.
      for (const login of ['director', 'admin']) {
        const s = login === 'director' ? director : await Session.signIn(host.app, login);
        const theirs = (await s.get(`${url}.json`)).body;
        expect([login, theirs.totals]).toEqual([login, { count: 1, amount: 40_000, weighted: 20_000 }]);
        expect(theirs.config.filters).toEqual({ account_id: account });
        expect(theirs.left_out_of_filter).toBeUndefined();
        expect(theirs.link).toContain(`account=${account}`);
        expect(visibleText((await s.get(url)).text)).not.toContain('you cannot see');
      }

      // rep1 may see both deals but not the account: the module counts both, as the list a link to it shows.
      const rep = await Session.signIn(host.app, 'rep1');
      expect((await rep.get(`/crm/accounts/${account}`)).status).toBe(404);
      const data = (await rep.get(`${url}.json`)).body;
      expect(data.totals).toEqual({ count: 2, amount: 55_000, weighted: 27_500 });
      expect(data.left_out_of_filter).toEqual(['an account you cannot see']);
      expect(data.config.filters).toEqual({});
      expect(JSON.stringify(data)).not.toMatch(/account_id|account=/);
      const list = (await rep.get(data.link.replace('/opportunities?', '/opportunities.json?'))).body;
      expect(list.pagination.total).toBe(data.totals.count);
      for (const link of linksOf(data)) expect(link).not.toMatch(/[?&]account=/);

      const overview = await rep.get(`${base}.json`);
      const listed = (overview.body.modules as { id: number; config: { filters: object }; left_out_of_filter?: string[] }[]).find((m) => m.id === moduleId)!;
      expect(listed.config.filters).toEqual({});
      expect(listed.left_out_of_filter).toEqual(['an account you cannot see']);
      expect(JSON.stringify(listed)).not.toContain('account_id');

      for (const page of [await rep.get(url), await rep.get(base), await rep.htmxGet(base)]) {
        expect(visibleText(page.text)).toContain('Part of this module’s filter was left out: an account you cannot see. Its numbers are counted without it.');
        expect(page.text).not.toContain('Harbourline');
        expect(page.text).not.toMatch(new RegExp(`[?&;]account=${account}\\b`));
      }
      const csv = await rep.get(`${url}/data.csv`);
      expect(csv.text).toContain('Total,2,');

      // A second module on another hidden account: the page asks which accounts rep1 may see once, for both.
      const pier = await directorsAccount('Pierhead Logistics', 'crm-europe');
      const second = await moduleOn(director, 'crm-europe', 'forecast', { ...period2038, filter_account_id: String(pier) });
      const { result: page, statements } = await statementsDuring(knex(), () => rep.get(`${base}.json`));
      const modules = page.body.modules as { id: number; left_out_of_filter?: string[] }[];
      expect([moduleId, second.moduleId].map((id) => modules.find((m) => m.id === id)?.left_out_of_filter)).toEqual([['an account you cannot see'], ['an account you cannot see']]);
      expect(statements.filter((q) => /^select "a"\."id", "a"\."name" from "crm_accounts"/.test(q.sql.replace(/`/g, '"'))).length).toBe(1);
      expect((await director.get(`${url}.json`)).body.totals).toEqual({ count: 1, amount: 40_000, weighted: 20_000 });
    });
  });

  test('the edit form of a module filtered on an account the editor may not see keeps that filter without naming it; a new one must be visible', async () => {
    const account = await directorsAccount('Quayside Ventures', 'crm');
    const other = await directorsAccount('Slipway Partners', 'crm');
    const director = await Session.signIn(host.app, 'director');
    const { url } = await moduleOn(director, 'crm', 'forecast', { ...period2038, filter_account_id: String(account), filter_currency: 'EUR' });
    const accountField = (html: string) => /<label>Account[\s\S]*?<\/label>/.exec(html)?.[0] ?? '';
    expect(accountField((await director.get(`${url}/edit`)).text)).toContain(`value="${account}"`);
    const stored = async () => JSON.parse((await knex()('crm_dashboard_modules').where({ id: Number(url.split('/').pop()) }).first()).config).filters;

    await withOwnAccounts('Project manager', async () => {
      const pm = await Session.signIn(host.app, 'pm');
      const form = await pm.get(`${url}/edit`);
      expect(form.status).toBe(200);
      expect(visibleText(accountField(form.text))).toContain('an account you cannot see');
      expect(accountField(form.text)).not.toContain(String(account));
      expect(form.text).not.toContain('Quayside');
      const json = (await pm.get(`${url}/edit.json`)).body;
      expect(json.module.config.filters).toEqual({ currency: 'EUR' });

      // Saving the form as it was shown keeps the author's filter.
      const kept = await pm.post(url, { lock_version: lockVersionIn(form.text), title: 'Harbour forecast', period: 'custom', from: '2038-01-01', to: '2038-12-31', chart: 'bars', people: 'all', filter_account_id: 'kept', filter_currency: 'EUR' });
      expect(kept.status).toBe(303);
      expect(await stored()).toEqual({ account_id: account, currency: 'EUR' });

      // Another account the editor may not see is not taken, and nothing is saved.
      const again = await pm.get(`${url}/edit`);
      const refused = await pm.post(url, { lock_version: lockVersionIn(again.text), filter_account_id: String(other) });
      expect(refused.status).toBe(422);
      expect(visibleText(refused.text)).toContain('Choose an account you can see');
      expect(refused.text).not.toContain('Slipway');
      expect(accountField(refused.text)).not.toContain(String(account));
      expect(await stored()).toEqual({ account_id: account, currency: 'EUR' });

      // A template made from the page carries the filter, but does not name it to another customizer either.
      const pageId = (await director.get('/projects/crm/crm.json')).body.page.id as number;
      expect((await director.post(`/projects/crm/crm/pages/${pageId}/template`, { name: 'Quayside pages' })).status).toBe(303);
      const templateOf = async (s: Session) => ((await s.get('/crm/overview-templates.json')).body.templates as { name: string; modules: { config: { filters: object } }[] }[])
        .find((t) => t.name === 'Quayside pages')!;
      expect((await templateOf(director)).modules.map((m) => m.config.filters)).toContainEqual({ account_id: account, currency: 'EUR' });
      const theirs = await templateOf(pm);
      expect(theirs.modules.map((m) => m.config.filters)).toContainEqual({ currency: 'EUR' });
      expect(JSON.stringify(theirs)).not.toContain('account_id');

      // "Any" removes it.
      const cleared = await pm.post(url, { lock_version: lockVersionIn(again.text), filter_account_id: '', filter_currency: 'EUR' });
      expect(cleared.status).toBe(303);
      expect(await stored()).toEqual({ currency: 'EUR' });
    });
  });

  test('a module filtered on a project the viewer may not open is counted without that filter and says so, as the lists do; its edit form keeps it unnamed', async () => {
    await opportunity({ project: 'crm-americas', name: 'Americas 2039', status: 'Proposal', amount: 70_000, currency: 'EUR', close: '2039-02-01', owner: 'rep2' });
    await opportunity({ project: 'crm-europe', name: 'Europe 2039', status: 'Proposal', amount: 30_000, currency: 'EUR', close: '2039-03-01', owner: 'rep1' });
    const director = await Session.signIn(host.app, 'director');
    const americas = String(projectId('crm-americas'));
    const { url, moduleId } = await moduleOn(director, null, 'funnel', { period: 'custom', from: '2039-01-01', to: '2039-12-31', people: 'all', filter_project_id: americas });
    const mine = (await director.get(`${url}.json`)).body;
    expect(mine.totals).toMatchObject({ count: 1, amount: 70_000 });
    expect(mine.config.filters).toEqual({ project_id: Number(americas) });

    // rep1 is not in crm-americas: the filter is left out, not a funnel of zeros that names the project's id.
    const rep = await Session.signIn(host.app, 'rep1');
    const data = (await rep.get(`${url}.json`)).body;
    expect(data.totals).toMatchObject({ count: 1, amount: 30_000 });
    expect(data.left_out_of_filter).toEqual(['a project you cannot see']);
    expect(data.config.filters).toEqual({});
    for (const link of linksOf(data)) expect(link).not.toMatch(/[?&]project=/);
    const page = await rep.get(url);
    expect(visibleText(page.text)).toContain('Part of this module’s filter was left out: a project you cannot see.');
    expect(page.text).not.toMatch(new RegExp(`project=${americas}\\b`));
    const listed = ((await rep.get('/crm.json')).body.modules as { id: number }[]).find((m) => m.id === moduleId);
    expect(JSON.stringify(listed)).not.toContain('project_id');
    expect((await director.get(`${url}.json`)).body.totals).toMatchObject({ count: 1, amount: 70_000 });

    // pm customizes the CRM project's overview but is in none of its subprojects: the edit form keeps the filter unnamed.
    const onCrm = await moduleOn(director, 'crm', 'won_by_person', { period: 'this_year', filter_project_id: americas });
    const pm = await Session.signIn(host.app, 'pm');
    const form = await pm.get(`${onCrm.url}/edit`);
    const projectField = /<label>Project[\s\S]*?<\/label>/.exec(form.text)?.[0] ?? '';
    expect(visibleText(projectField)).toContain('a project you cannot see');
    expect(projectField).not.toContain(`value="${americas}"`);
    expect(visibleText(form.text)).not.toContain('Americas');
    const stored = async () => JSON.parse((await knex()('crm_dashboard_modules').where({ id: onCrm.moduleId }).first()).config).filters;
    const kept = await pm.post(onCrm.url, { lock_version: lockVersionIn(form.text), title: 'Won per person', filter_project_id: 'kept' });
    expect(kept.status).toBe(303);
    expect(await stored()).toEqual({ project_id: Number(americas) });
    const again = await pm.get(`${onCrm.url}/edit`);
    const refused = await pm.post(onCrm.url, { lock_version: lockVersionIn(again.text), filter_project_id: String(projectId('crm-asia')) });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('Choose a project you can see');
    expect(await stored()).toEqual({ project_id: Number(americas) });
  });
  test('saving the title of a module filtered on a project the form does not list keeps the filter: the project select shows it as kept instead of falling back to “Any”', async () => {
    // The director may open crm-americas, but the form on crm-europe’s overview lists only crm-europe’s projects.
    const director = await Session.signIn(host.app, 'director');
    const americas = projectId('crm-americas');
    const { url, moduleId } = await moduleOn(director, 'crm-europe', 'won_by_person', { period: 'this_year', filter_project_id: String(americas) });
    const stored = async () => JSON.parse((await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).config).filters;
    expect(await stored()).toEqual({ project_id: americas });

    const form = await director.get(`${url}/edit`);
    const projectField = /<label>Project[\s\S]*?<\/label>/.exec(form.text)?.[0] ?? '';
    // What a browser sends for the select: its selected option, else its first.
    const options = [...projectField.matchAll(/<option value="([^"]*)"( selected)?/g)];
    const sent = (options.find((o) => o[2]) ?? options[0])[1];
    expect(visibleText(projectField)).toContain('kept');
    const saved = await director.post(url, { lock_version: lockVersionIn(form.text), title: 'Won in the Americas', period: 'this_year', filter_project_id: sent });
    expect(saved.status).toBe(303);
    expect(await stored()).toEqual({ project_id: americas });
    expect((await knex()('crm_dashboard_modules').where({ id: moduleId }).first()).title).toBe('Won in the Americas');
  });
});

describe('page templates (D1)', () => {
  test('save a page as template and apply it to another project (new page with the same modules); never to a project without CRM', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { base, pageId } = await moduleOn(director, 'crm-europe', 'leaderboard', { period: 'this_year', filter_project_id: String(projectId('crm-europe')) });
    const saved = await director.post(`${base}/pages/${pageId}/template`, { name: 'Regional pipeline' });
    expect(saved.status).toBe(303);
    const template = await knex()('crm_dashboard_templates').where({ name: 'Regional pipeline' }).first();
    const specs = JSON.parse(template.modules) as { type: string; config: { filters: Record<string, unknown> } }[];
    expect(specs.length).toBe((await knex()('crm_dashboard_modules').where({ page_id: pageId })).length);
    // Project filters name one project: they are not carried over.
    expect(specs.every((m) => !('project_id' in m.config.filters))).toBe(true);
    expect((await director.post(`${base}/pages/${pageId}/template`, { name: 'Regional pipeline' })).status).toBe(422);

    const list = await director.get('/crm/overview-templates');
    expect(visibleText(list.text)).toContain('Regional pipeline');
    const applied = await director.post(`/crm/overview-templates/${template.id}/apply`, { project_id: String(projectId('crm-americas')) });
    expect(applied.status).toBe(303);
    expect(applied.headers.location).toMatch(/^\/projects\/crm-americas\/crm\/pages\/\d+$/);
    const americas = (await director.get(`${applied.headers.location}.json`)).body;
    expect(americas.page.name).toBe('Regional pipeline');
    expect(americas.modules.map((m: { type: string }) => m.type)).toEqual(specs.map((m) => m.type));

    const viaProject = await director.post('/projects/crm-asia/crm/templates/apply', { template_id: String(template.id) });
    expect(viaProject.status).toBe(303);
    expect((await director.get('/projects/crm-asia/crm.json')).body.pages.map((p: { name: string }) => p.name)).toContain('Regional pipeline');

    const admin = await Session.signIn(host.app, 'admin');
    const refused = await admin.post(`/crm/overview-templates/${template.id}/apply`, { project_id: String(projectId('internal')) });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('CRM is not enabled in Internal tools');
    expect(await knex()('crm_dashboard_pages').where({ project_id: projectId('internal') }).first()).toBeUndefined();
    expect((await admin.post('/projects/internal/crm/templates/apply', { template_id: String(template.id) })).status).toBe(404);
    // A project the user is not in is not found, not refused.
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(`/crm/overview-templates/${template.id}/apply`, { project_id: String(projectId('crm-americas')) })).status).toBe(404);
  });
});

/** The seeded global module of `type` (on the global overview's pages), as the overview lists it. */
async function globalModule(s: Session, type: string): Promise<{ id: number; url: string; lock_version: number; config: unknown }> {
  const pages = (await s.get('/crm.json')).body.pages as { url: string }[];
  for (const page of pages) {
    const found = ((await s.get(`${page.url}.json`)).body.modules as { id: number; type: string; url: string; lock_version: number; config: unknown }[]).find((m) => m.type === type);
    if (found) return found;
  }
  throw new Error(`No global ${type} module`);
}

describe('periods a module cannot draw (D3)', () => {
  const farFuture = { period: 'custom', from: '9999-01-01', to: '9999-12-31' };

  test('a period outside the years 1900–2999 is refused with a 422 naming the field, on the picker and on the module, and nothing is stored', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    for (const type of ['revenue', 'forecast']) {
      const module = await globalModule(admin, type);
      const picked = await admin.get(`${module.url}?period=custom&from=9999-01-01&to=9999-12-31`);
      expect([type, picked.status]).toEqual([type, 422]);
      expect(picked.text).toContain('data-field="from"');
      expect(visibleText(picked.text)).toContain('From must be between 1900-01-01 and 2999-12-31');
      const json = await admin.get(`${module.url}.json?period=custom&from=1899-12-31&to=1900-01-31`);
      expect(json.status).toBe(422);
      expect(Object.keys(json.body.fields)).toEqual(['from']);
      const before = (await knex()('crm_dashboard_modules').where({ id: module.id }).first()).config;
      const saved = await admin.post(`/crm/modules/${module.id}`, { ...farFuture, chart: 'line', people: 'auto', lock_version: String(module.lock_version) });
      expect(saved.status).toBe(422);
      expect(saved.text).toContain('data-field="to"');
      expect((await knex()('crm_dashboard_modules').where({ id: module.id }).first()).config).toBe(before);
    }
    // The ends of the range are accepted.
    const revenue = await globalModule(admin, 'revenue');
    expect((await admin.get(`${revenue.url}.json?period=custom&from=2990-01-01&to=2999-12-31`)).status).toBe(200);
    expect((await admin.get(`${revenue.url}.json?period=custom&from=1900-01-01&to=1909-12-31`)).status).toBe(200);
  });

  test('a stored period that cannot be drawn shows the module with a message: its page, the customize view, the module and its CSV never answer 500', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const { pageId, module } = await globalPageWithModule(admin, 'Far future', 'revenue');
    try {
      // As stored before periods were checked against the years a day can be counted in.
      await knex()('crm_dashboard_modules').where({ id: module.id }).update({ config: JSON.stringify({ ...JSON.parse(module.config), period: { kind: 'custom', from: '9999-01-01', to: '9999-12-31' } }) });
      const director = await Session.signIn(host.app, 'director');
      for (const s of [admin, director]) {
        const page = await s.get(`/crm/pages/${pageId}`);
        expect(page.status).toBe(200);
        expect(visibleText(page.text)).toContain('This module’s period cannot be shown (From must be between 1900-01-01 and 2999-12-31): edit the module to choose another one.');
        expect((await s.get(`/crm/pages/${pageId}/customize`)).status).toBe(200);
      }
      const json = (await admin.get(`/crm/modules/${module.id}.json`)).body;
      expect(json.rows).toEqual([]);
      expect(json.notes[0]).toContain('cannot be shown');
      expect((await admin.get(`/crm/modules/${module.id}`)).status).toBe(200);
      expect((await admin.get(`/crm/modules/${module.id}/data.csv`)).status).toBe(200);
      const form = await admin.get(`/crm/modules/${module.id}/edit`);
      expect(form.status).toBe(200);
      expect(form.text).toContain('value="9999-01-01"');
      // The viewer's own period still draws the module.
      expect((await admin.get(`/crm/modules/${module.id}.json?period=this_year`)).body.rows.length).toBe(12);
    } finally {
      await knex()('crm_dashboard_pages').where({ id: pageId }).delete();
    }
  });
});

describe('long periods (D2, D3)', () => {
  test('revenue over more than 60 months is drawn per quarter over the whole period: its totals are those of the list it links to', async () => {
    const won = async (name: string, amount: number, close: string) => opportunity({ project: 'crm-americas', name, status: 'Won', amount, currency: 'EUR', close, owner: 'rep2' });
    await won('Long period first', 11_000, '2041-01-15');
    await won('Long period middle', 22_000, '2043-08-31');
    await won('Long period last', 33_000, '2046-12-31');
    const admin = await Session.signIn(host.app, 'admin');
    const revenue = await globalModule(admin, 'revenue');
    const data = (await admin.get(`${revenue.url}.json?period=custom&from=2041-01-01&to=2046-12-31`)).body;
    expect(data.rows).toHaveLength(24);
    expect([data.rows[0].label, data.rows[23].label]).toEqual(['2041 Q1', '2046 Q4']);
    expect(row(data, '2043 Q3').values.won).toBe(22_000);
    expect(row(data, '2043 Q3').link).toContain('close_from=2043-07-01&close_to=2043-09-30');
    expect(data.totals.won).toBe(66_000);
    expect(data.notes.join(' ')).toContain('quarter');
    const [path, query] = (data.link as string).split('?');
    const list = (await admin.get(`${path}.json?${query}`)).body;
    expect(list.pagination.total).toBe(3);
    expect(list.totals).toEqual([expect.objectContaining({ currency: 'EUR', amount_minor: data.totals.won })]);
  });

  test('activities per month over a long period are counted per quarter too, none left out', async () => {
    const director = await Session.signIn(host.app, 'director');
    const opp = await opportunity({ project: 'crm-europe', name: 'Activities 2050s', status: 'Proposal', amount: 0, currency: 'EUR', close: '2058-01-01', owner: 'rep1' });
    const category = Number((await knex()('crm_activity_categories').first('id')).id);
    for (const at of ['2050-01-10T10:00:00.000Z', '2054-06-30T23:59:59.000Z', '2055-12-31T12:00:00.000Z']) {
      await knex()('crm_sales_activities').insert({
        record_type: 'opportunity', record_id: opp, project_id: projectId('crm-europe'), category_id: category, subject: `Long ${at}`, notes: '',
        occurred_at: at, responsible_id: host.demo.users.rep1.id, author_id: host.demo.users.rep1.id, is_personal: false, lock_version: 0,
      });
    }
    const { url } = await moduleOn(director, 'crm-europe', 'activities', { period: 'custom', from: '2050-01-01', to: '2055-12-31', group: 'month', chart: 'line', people: 'all' });
    const data = (await director.get(`${url}.json`)).body;
    expect(data.rows).toHaveLength(24);
    expect(row(data, '2054 Q2').values.count).toBe(1);
    expect(data.totals.count).toBe(3);
  });
});

describe('who customizes the global overview (D1, S2)', () => {
  test('manage_crm_page in one project does not reach the global overview: a project manager gets 404 on every change there and nothing changes', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const { pageId, module } = await globalPageWithModule(admin, 'Admin only', 'funnel');
    try {
      const template = (await knex()('crm_dashboard_templates').insert({ name: 'PM probe', modules: JSON.stringify([{ type: 'funnel' }]), author_id: null, created_at: new Date().toISOString() }).returning('id'))[0];
      const templateId = Number(template.id ?? template);
      const pagesBefore = (await knex()('crm_dashboard_pages').whereNull('project_id')).length;

      const pm = await Session.signIn(host.app, 'pm');
      // pm may look at the global overview, without a way to customize it.
      const view = await pm.get(`/crm/pages/${pageId}`);
      expect(view.status).toBe(200);
      expect(visibleText(view.text)).not.toContain('Customize this page');
      expect((await pm.get(`/crm/pages/${pageId}/customize`)).status).toBe(404);
      expect((await pm.get(`/crm/modules/${module.id}/edit`)).status).toBe(404);
      expect((await pm.post('/crm/pages', { name: 'Mine' })).status).toBe(404);
      expect((await pm.post(`/crm/pages/${pageId}`, { name: 'Mine', lock_version: '0' })).status).toBe(404);
      expect((await pm.post(`/crm/pages/${pageId}/modules`, { type: 'funnel' })).status).toBe(404);
      expect((await pm.post(`/crm/pages/${pageId}/template`, { name: 'Copied' })).status).toBe(404);
      expect((await pm.post(`/crm/modules/${module.id}`, { lock_version: String(module.lock_version), title: 'Mine now' })).status).toBe(404);
      expect((await pm.post(`/crm/modules/${module.id}/move`, { direction: 'up' })).status).toBe(404);
      expect((await pm.post(`/crm/modules/${module.id}/baselines`, { name: 'Mine' })).status).toBe(404);
      expect((await pm.post(`/crm/modules/${module.id}/delete`)).status).toBe(404);
      expect((await pm.post('/crm/templates/apply', { template_id: String(templateId) })).status).toBe(404);
      expect((await pm.post(`/crm/pages/${pageId}/delete`)).status).toBe(404);
      // The templates page serves pm's own project; the global overview is not theirs to add a page to.
      const templates = await pm.get('/crm/overview-templates');
      expect(templates.status).toBe(200);
      expect(visibleText(templates.text)).not.toContain('The global overview');
      expect((await pm.post(`/crm/overview-templates/${templateId}/apply`, { project_id: '' })).status).toBe(403);
      expect((await knex()('crm_dashboard_pages').whereNull('project_id')).length).toBe(pagesBefore);
      expect(await knex()('crm_dashboard_modules').where({ id: module.id }).first()).toMatchObject({ title: module.title, position: module.position });
      expect(await knex()('crm_baselines').where({ module_id: module.id }).first()).toBeUndefined();
      expect((await knex()('crm_dashboard_pages').where({ id: pageId }).first()).name).toBe('Admin only');
      // …while their own project's overview stays theirs to customize, templates included.
      const projectPage = (await pm.get('/projects/crm/crm.json')).body.page.id;
      expect((await pm.get(`/projects/crm/crm/pages/${projectPage}/customize`)).status).toBe(200);
      const applied = await pm.post(`/crm/overview-templates/${templateId}/apply`, { project_id: String(projectId('crm')) });
      expect(applied.status).toBe(303);
      await knex()('crm_dashboard_pages').where({ id: Number(/pages\/(\d+)$/.exec(applied.headers.location)![1]) }).delete();

      // The global right (CRM settings, held by the sales director's role) customizes the global overview.
      const director = await Session.signIn(host.app, 'director');
      expect((await director.get(`/crm/pages/${pageId}/customize`)).status).toBe(200);
      expect(visibleText((await director.get(`/crm/pages/${pageId}`)).text)).toContain('Customize this page');
      expect(visibleText((await director.get('/crm/overview-templates')).text)).toContain('The global overview');
      const lock = (await knex()('crm_dashboard_modules').where({ id: module.id }).first()).lock_version;
      expect((await director.post(`/crm/modules/${module.id}`, { lock_version: String(lock), title: 'Directors’ funnel' })).status).toBe(303);
      await knex()('crm_dashboard_templates').where({ id: templateId }).delete();
    } finally {
      await knex()('crm_dashboard_pages').where({ id: pageId }).delete();
    }
  });
});
