import request from 'supertest';
import { lockVersionIn, Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';
import { OPPORTUNITY_STATUS_ORDER_INDEX } from '../../migrations/20261124_029_opportunity_status_order_index';
import { OPPORTUNITY_STATUS_INDEX, opportunityStatusScopeIndex } from '../../migrations/20261124_031_opportunity_status_scope_index';
import { addDays, todayUtc } from '../../plugin/services/dates';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const statusId = async (name: string) => Number((await host.db.knex('crm_opportunity_statuses').where({ name }).first()).id);
const oppId = async (name: string) => Number((await host.db.knex('crm_opportunities').where({ name }).first()).id);
const listed = (html: string) => [...html.matchAll(/<tr data-opportunity="\d+">\s*<td><a href="\/crm\/opportunities\/\d+">([^<]+)<\/a>/g)].map((m) => visibleText(m[1]));
/** The markup of one kanban card on a board page. */
const cardOn = (board: string, id: number) => new RegExp(`<article class="card"[^>]*data-opportunity="${id}"[^>]*>[\\s\\S]*?</article>`).exec(board)![0];

describe('opportunity list (O2)', () => {
  test('the list shows the visible opportunities with status tags, totals and weighted totals per currency', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.get('/crm/opportunities.json');
    expect(res.status).toBe(200);
    const eur = res.body.totals.find((t: { currency: string }) => t.currency === 'EUR');
    // 125 000 × 75 % + 18 000 × 50 % + 42 000 × 25 % + 8 000 × 100 % (all in cents)
    expect(eur).toEqual({ currency: 'EUR', count: 4, amount_minor: 12_500_000 + 1_800_000 + 4_200_000 + 800_000, weighted_minor: 9_375_000 + 900_000 + 1_050_000 + 800_000 });
    const jpy = res.body.totals.find((t: { currency: string }) => t.currency === 'JPY');
    expect(jpy).toEqual({ currency: 'JPY', count: 1, amount_minor: 3_000_000, weighted_minor: 750_000 });
    const html = await director.get('/crm/opportunities');
    expect(visibleText(html.text)).toContain('125 000.00 EUR');
    // Each row's status carries its colour, as the status tags above the list do.
    const statusColors = new Map((await host.db.knex('crm_opportunity_statuses').select('name', 'color')).map((s) => [s.name as string, s.color as string]));
    const row = /<tr data-opportunity="\d+">[\s\S]*?<\/tr>/.exec(html.text)![0];
    const [, color, name] = /<span class="swatch" style="background: ([^"]+)"><\/span>([^<]+)<\/span>/.exec(row)!;
    expect(color).toBe(statusColors.get(name.trim()));
  });

  test('a rep sees only the opportunities of their projects; others answer 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const names = listed((await rep1.get('/crm/opportunities')).text);
    expect(names).toContain('Acme – ERP rollout');
    expect(names).not.toContain('Globex – data platform');
    expect((await rep1.get(`/crm/opportunities/${await oppId('Globex – data platform')}`)).status).toBe(404);
  });

  test('status tags and filters narrow the list; bad dates and amounts are refused with the field named', async () => {
    const director = await Session.signIn(host.app, 'director');
    const won = await statusId('Won');
    const lost = await statusId('Lost');
    expect(listed((await director.get(`/crm/opportunities?status=${won}&status=${lost}`)).text).sort()).toEqual(['Initech – licences', 'Initech – printers', 'Webshop – integration']);
    // The demo's open deals close from three weeks to five months after the day it was seeded: two of them in this window.
    const closing = `close_from=${addDays(todayUtc(), 60)}&close_to=${addDays(todayUtc(), 100)}`;
    expect(listed((await director.get(`/crm/opportunities?${closing}`)).text).sort()).toEqual(['Acme – support renewal', 'Nordic Retail – POS upgrade']);
    expect(listed((await director.get('/crm/opportunities?currency=USD&amount_min=5000&amount_max=50000')).text).sort()).toEqual(['Initech – licences']);
    const badDate = await director.get('/crm/opportunities?close_from=tomorrow');
    expect(badDate.status).toBe(422);
    expect(badDate.text).toContain('data-field="close_from"');
    const badAmount = await director.get('/crm/opportunities.json?currency=EUR&amount_min=1.999');
    expect(badAmount.status).toBe(422);
    expect(badAmount.body.fields.amount_min).toBe('Amount from has at most 2 decimals in EUR');
  });

  test('the list numbers and kanban columns are kept between views, and follow every write and the viewer’s reach', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const proposal = await statusId('Proposal');
    const numbers = async () => {
      const list = (await director.get('/crm/opportunities.json')).body;
      const board = (await director.get('/crm/opportunities/kanban.json')).body;
      const column = board.columns.find((c: { status: { id: number } }) => c.status.id === proposal);
      const page = visibleText((await director.get('/crm/opportunities/kanban')).text);
      return { total: list.pagination.total as number, totals: JSON.stringify(list.totals), proposals: column.count as number, firstCard: column.cards[0]?.name as string, page };
    };
    const before = await numbers();
    expect(await numbers()).toEqual(before);
    const [row] = await knex('crm_opportunities').insert({
      project_id: host.demo.projects['crm-europe'].id, name: 'Cache probe', status_id: proposal, amount_minor: 1_234, currency: 'EUR',
      expected_close_on: '2000-01-01', owner_id: host.demo.users.rep1.id, author_id: host.demo.users.rep1.id, account_id: (await knex('crm_accounts').where({ name: 'Acme Manufacturing' }).first()).id,
    }).returning('id');
    const id = Number(row.id ?? row);
    const afterInsert = await numbers();
    expect(afterInsert.total).toBe(before.total + 1);
    expect(afterInsert.totals).not.toBe(before.totals);
    expect(afterInsert.proposals).toBe(before.proposals + 1);
    // The earliest close date: the probe is the column's first card, shown with its account's name.
    expect(afterInsert.firstCard).toBe('Cache probe');
    expect(afterInsert.page).toContain('Cache probe Acme Manufacturing');
    await knex('crm_accounts').where({ name: 'Acme Manufacturing' }).update({ name: 'Acme Renamed' });
    try {
      expect((await numbers()).page).toContain('Cache probe Acme Renamed');
    } finally {
      await knex('crm_accounts').where({ name: 'Acme Renamed' }).update({ name: 'Acme Manufacturing' });
    }
    // Leaving the project takes its opportunities out of the director's numbers at once.
    const membership = { user_id: host.demo.users.director.id, project_id: host.demo.projects['crm-europe'].id };
    const saved = await knex('members').where(membership);
    await knex('members').where(membership).delete();
    try {
      const outside = await numbers();
      expect(outside.total).toBeLessThan(afterInsert.total);
      expect(outside.page).not.toContain('Cache probe');
    } finally {
      await knex('members').insert(saved);
      await knex('crm_opportunities').where({ id }).delete();
    }
    expect(await numbers()).toEqual(before);
  });
});

test('a page of the list filtered by status comes from an index in list order, not from sorting every match', async () => {
  const admin = await Session.signIn(host.app, 'admin');
  const knex = host.db.knex;
  const status = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const { result: res, statements } = await statementsDuring(knex, () => admin.get(`/crm/opportunities?status=${status}`));
  expect(res.status).toBe(200);
  const page = statements.find((q) => /order by o\.expected_close_on asc nulls first, o\.id asc limit/i.test(q.sql))!;
  expect(page).toBeDefined();
  // The demo data is small enough for any plan; with sorting (and full scans) priced out, the planner sorts only if
  // no index gives the order.
  const plan = host.db.kind === 'postgres'
    ? await knex.transaction(async (trx) => {
      for (const off of ['enable_sort', 'enable_seqscan', 'enable_bitmapscan']) await trx.raw(`set local ${off} = off`);
      return (await trx.raw(`explain ${page.sql.replace(/\$\d+/g, '?')}`, page.bindings as never)).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    })
    : (await knex.raw(`explain query plan ${page.sql}`, page.bindings as never)).map((r: { detail: string }) => r.detail).join('\n');
  expect(plan).not.toMatch(/Sort Key: o\.expected_close_on|TEMP B-TREE FOR ORDER BY/i);
  if (host.db.kind === 'postgres') expect(plan).toContain(OPPORTUNITY_STATUS_ORDER_INDEX);
});

test('a sales rep’s page of a status and its count test the scope from the status index (SQLite, migration 031); rollback undoes it', async () => {
  const knex = host.db.knex;
  const columns = async (): Promise<string[]> => (host.db.kind === 'sqlite'
    ? (await knex.raw(`pragma index_info('${OPPORTUNITY_STATUS_INDEX}')`)).map((r: { name: string }) => r.name)
    : /\(([^)]*)\)/.exec((await knex.raw('select indexdef from pg_indexes where indexname = ?', [OPPORTUNITY_STATUS_INDEX])).rows[0].indexdef)![1].split(', '));
  const order = ['status_id', 'expected_close_on'];
  const widened = host.db.kind === 'sqlite' ? [...order, 'id', 'deleted_at', 'project_id', 'owner_id', 'author_id', 'partner_id'] : order;
  expect(await columns()).toEqual(widened);

  const role = await knex('roles').where({ name: 'Sales rep' }).first();
  await knex('crm_role_visibility').insert({ role_id: role.id, entity: 'opportunities', level: 'own' });
  const status = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const rep1 = await Session.signIn(host.app, 'rep1');
  const listed = async () => visibleText((await rep1.get(`/crm/opportunities?status=${status}`)).text);
  let read;
  try {
    read = await statementsDuring(knex, () => rep1.get(`/crm/opportunities?status=${status}`));
    expect(read.result.status).toBe(200);
    const before = await listed();
    await opportunityStatusScopeIndex.down(knex);
    expect(await columns()).toEqual(order);
    expect(await listed()).toEqual(before);
    await opportunityStatusScopeIndex.up(knex);
    expect(await columns()).toEqual(widened);
  } finally {
    await knex('crm_role_visibility').where({ role_id: role.id, entity: 'opportunities' }).delete();
  }
  if (host.db.kind !== 'sqlite') return;
  const planOf = async (pattern: RegExp) => {
    const statement = read.statements.find((q) => pattern.test(q.sql) && q.sql.includes('`o`.`owner_id` = ?'))!;
    expect(statement).toBeDefined();
    return (await knex.raw(`explain query plan ${statement.sql}`, statement.bindings as never)).map((r: { detail: string }) => r.detail).join('\n');
  };
  // The page walks the index in order (reading the rows of the page only); the count reads no table row at all.
  expect(await planOf(/order by o\.expected_close_on asc nulls first, o\.id asc limit/i)).toContain(`SEARCH o USING INDEX ${OPPORTUNITY_STATUS_INDEX} (status_id=?)`);
  expect(await planOf(/^select count\(\*\) as `total`/i)).toContain(`SEARCH o USING COVERING INDEX ${OPPORTUNITY_STATUS_INDEX} (status_id=?)`);
});

describe('create, edit, move (O1, O3, O7)', () => {
  test('create in a project: amount parsed to minor units; three decimals refused; journal written', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const account = (await host.db.knex('crm_accounts').where({ name: 'Acme Manufacturing' }).first()).id;
    const bad = await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Acme – training', amount: '1500.505', currency: 'EUR', expected_close_on: '2027-13-01', account_id: String(account) });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="amount"');
    expect(bad.text).toContain('data-field="expected_close_on"');
    expect(bad.text).toContain('value="Acme – training"');
    const ok = await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Acme – training', amount: '1 500,50', currency: 'EUR', expected_close_on: '2027-01-15', account_id: String(account) });
    expect(ok.status).toBe(303);
    const row = await host.db.knex('crm_opportunities').where({ name: 'Acme – training' }).first();
    expect(Number(row.amount_minor)).toBe(150050);
    expect(row.project_id).toBe(host.demo.projects['crm-europe'].id);
    expect(row.owner_id).toBe(host.demo.users.rep1.id);
    const page = await rep1.get(ok.headers.location);
    expect(visibleText(page.text)).toContain('1 500.50 EUR');
    expect(await host.db.knex('crm_journals').where({ journalized_type: 'opportunity', journalized_id: row.id, action: 'create' }).first()).toBeDefined();
  });

  test('text limits count characters, not UTF-16 units: a name of 200 characters outside the BMP is stored, 201 refused', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const name = '𝒳'.repeat(199) + 'y'; // 200 characters, 399 UTF-16 units
    expect((await rep1.post('/projects/crm-europe/crm/opportunities', { name, currency: 'EUR' })).status).toBe(303);
    expect((await host.db.knex('crm_opportunities').where({ name }).first())?.name).toBe(name);
    const tooLong = await rep1.post('/projects/crm-europe/crm/opportunities', { name: `${name}z`, currency: 'EUR' });
    expect(tooLong.status).toBe(422);
    expect(visibleText(tooLong.text)).toContain('Name is at most 200 characters');
  });

  test('an account the user cannot see is refused as the opportunity’s account', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const privateOther = (await host.db.knex('crm_accounts').where({ name: 'Globex Corporation' }).first()).id;
    const res = await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Sneaky', account_id: String(privateOther), currency: 'EUR' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="account_id"');
    // The form comes back with the id typed in, and without the name of an account the user cannot see.
    expect(res.text).toContain(`name="account_id" value="${privateOther}"`);
    expect(res.text).not.toContain('Globex');
  });

  test('a kanban move changes the status, journals it, and a stale move answers 409', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Nordic Retail – POS upgrade');
    const row = await host.db.knex('crm_opportunities').where({ id }).first();
    const proposal = await statusId('Proposal');
    const moved = await rep1.htmxPost(`/crm/opportunities/${id}/status`, { status_id: String(proposal), lock_version: String(row.lock_version), back: 'kanban', board: '/projects/crm-europe/crm/opportunities' });
    expect(moved.status).toBe(200);
    expect(moved.headers['hx-trigger']).toBe('crm:opportunitySaved');
    expect(moved.text).toContain('id="kanban"');
    expect((await host.db.knex('crm_opportunities').where({ id }).first()).status_id).toBe(proposal);
    const stale = await rep1.post(`/crm/opportunities/${id}/status`, { status_id: String(await statusId('Negotiation')), lock_version: String(row.lock_version) });
    expect(stale.status).toBe(409);
    // Without a lock version the move is refused as such, not taken as version 0.
    const unversioned = await rep1.post(`/crm/opportunities/${id}/status`, { status_id: String(await statusId('Negotiation')) });
    expect(unversioned.status).toBe(422);
    expect(visibleText(unversioned.text)).toContain('missing its lock version');
    expect((await host.db.knex('crm_opportunities').where({ id }).first()).status_id).toBe(proposal);
    const history = visibleText((await rep1.get(`/crm/opportunities/${id}`)).text);
    expect(history).toContain('Status : Needs analysis → Proposal');
  });

  test('a stale edit answers 409 keeping the input; the form carries the current version, so saving it again stores it', async () => {
    const knex = host.db.knex;
    const id = await oppId('Nordic Retail – POS upgrade');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const row = await knex('crm_opportunities').where({ id }).first();
    const form = (description: string, lock: string) => ({ name: row.name, status_id: String(row.status_id), currency: row.currency, description, lock_version: lock });
    expect((await rep1.post(`/crm/opportunities/${id}`, form('first edit', String(row.lock_version)))).status).toBe(303);
    const stale = await rep1.post(`/crm/opportunities/${id}`, form('second edit', String(row.lock_version)));
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('second edit');
    expect((await knex('crm_opportunities').where({ id }).first()).description).toBe('first edit');
    expect(lockVersionIn(stale.text)).toBe(String(row.lock_version + 1));
    expect((await rep1.post(`/crm/opportunities/${id}`, form('second edit', lockVersionIn(stale.text)))).status).toBe(303);
    expect((await knex('crm_opportunities').where({ id }).first()).description).toBe('second edit');
  });

  test('field rules per status: a required field blocks the move and names the field; read-only fields keep their value', async () => {
    const rep = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    const negotiation = await statusId('Negotiation');
    const qualification = await statusId('Qualification');
    await host.db.knex('crm_field_permissions').insert([
      { role_id: rep.id, status_id: negotiation, field: 'expected_close_on', rule: 'required' },
      { role_id: rep.id, status_id: negotiation, field: 'partner_id', rule: 'required' },
      { role_id: rep.id, status_id: qualification, field: 'amount_minor', rule: 'read_only' },
      { role_id: rep.id, status_id: qualification, field: 'description', rule: 'hidden' },
    ]);
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const id = await oppId('Eva Lind – consulting');
      const row = await host.db.knex('crm_opportunities').where({ id }).first();
      const refused = await rep1.post(`/crm/opportunities/${id}/status`, { status_id: String(negotiation), lock_version: String(row.lock_version) });
      expect(refused.status).toBe(422);
      expect(visibleText(refused.text)).toContain('Cannot move to Negotiation: Partner are required there.'.replace('Partner are', 'Partner is'));
      const edit = await rep1.get(`/crm/opportunities/${id}/edit`);
      expect(edit.text).toMatch(/name="amount" value="95000.00" inputmode="decimal" disabled/);
      expect(edit.text).not.toContain('name="description"');
      const saved = await rep1.post(`/crm/opportunities/${id}`, { name: 'Eva Lind – consulting', status_id: String(qualification), amount: '1', currency: 'SEK', description: 'overwritten?', lock_version: String(row.lock_version) });
      expect(saved.status).toBe(303);
      const after = await host.db.knex('crm_opportunities').where({ id }).first();
      expect(Number(after.amount_minor)).toBe(9_500_000);
      expect(after.description).toBe(row.description);
      const json = await rep1.get(`/crm/opportunities/${id}.json`);
      expect(json.body.opportunity).not.toHaveProperty('description');
      // The admin has no role, so no rules: the same move goes through.
      const admin = await Session.signIn(host.app, 'admin');
      expect((await admin.post(`/crm/opportunities/${id}/status`, { status_id: String(negotiation), lock_version: String(after.lock_version) })).status).toBe(303);
    } finally {
      await host.db.knex('crm_field_permissions').delete();
    }
  });

  test('move to another project: only CRM projects where the user may add; journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Sakura Health – telemedicine');
    const row = await host.db.knex('crm_opportunities').where({ id }).first();
    const internal = host.demo.projects.internal;
    const refused = await director.post(`/crm/opportunities/${id}/project`, { project_id: String(internal.id), lock_version: String(row.lock_version) });
    expect(refused.status).toBe(422);
    const unversioned = await director.post(`/crm/opportunities/${id}/project`, { project_id: String(host.demo.projects['crm-europe'].id) });
    expect(unversioned.status).toBe(422);
    expect(visibleText(unversioned.text)).toContain('missing its lock version');
    const ok = await director.post(`/crm/opportunities/${id}/project`, { project_id: String(host.demo.projects['crm-europe'].id), lock_version: String(row.lock_version) });
    expect(ok.status).toBe(303);
    expect((await host.db.knex('crm_opportunities').where({ id }).first()).project_id).toBe(host.demo.projects['crm-europe'].id);
  });

  test('a kanban card’s move menu is its own page: a form without JavaScript, a fragment for htmx', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Kanban – menu', currency: 'EUR' })).status).toBe(303);
    const id = await oppId('Kanban – menu');
    const row = await host.db.knex('crm_opportunities').where({ id }).first();
    // The card carries what a drag needs and links to the menu; the board has no form per card.
    const board = (await rep1.get('/projects/crm-europe/crm/opportunities/kanban')).text;
    const card = cardOn(board, id);
    expect(card).toContain(`data-lock="${row.lock_version}"`);
    expect(card).toContain(`href="/crm/opportunities/${id}/move?board=%2Fprojects%2Fcrm-europe%2Fcrm%2Fopportunities"`);
    expect(card).not.toContain('<form');
    expect(board).toContain('data-board="/projects/crm-europe/crm/opportunities"');

    const page = await rep1.get(`/crm/opportunities/${id}/move?board=%2Fprojects%2Fcrm-europe%2Fcrm%2Fopportunities`);
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).toContain('Move Kanban – menu');
    expect(page.text).toContain('<html');
    const options = [...page.text.matchAll(/<option value="(\d+)"/g)].map((m) => Number(m[1]));
    const active = (await host.db.knex('crm_opportunity_statuses').where({ active: true })).map((s) => Number(s.id));
    expect(options.sort()).toEqual(active.sort());
    expect(page.text).toContain(`<option value="${row.status_id}" selected>`);
    expect(page.text).toContain(`name="lock_version" value="${row.lock_version}"`);
    expect(page.text).toContain('name="board" value="/projects/crm-europe/crm/opportunities"');
    const fragment = await rep1.htmxGet(`/crm/opportunities/${id}/move?board=%2Fcrm%2Fopportunities`);
    expect(fragment.status).toBe(200);
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text).toMatch(/^\s*<form[^>]*class="move"/);
    // Submitted without JavaScript, the form goes back to the board it came from.
    const proposal = await statusId('Proposal');
    const moved = await rep1.post(`/crm/opportunities/${id}/status`, { status_id: String(proposal), lock_version: String(row.lock_version), back: 'kanban', board: '/projects/crm-europe/crm/opportunities' });
    expect(moved.status).toBe(303);
    expect(moved.headers.location).toBe('/projects/crm-europe/crm/opportunities/kanban');
    expect(Number((await host.db.knex('crm_opportunities').where({ id }).first()).status_id)).toBe(proposal);
    // An opportunity the user may not see has no menu.
    expect((await rep1.get(`/crm/opportunities/${await oppId('Globex – data platform')}/move`)).status).toBe(404);
  });

  test('the kanban has the opportunity list’s sidebar of actions: New opportunity only for who may add', async () => {
    const sidebarOf = (html: string) => /<aside class="sidebar">([\s\S]*?)<\/aside>/.exec(html)?.[1] ?? '';
    const rep1 = await Session.signIn(host.app, 'rep1');
    for (const board of [await rep1.get('/projects/crm-europe/crm/opportunities/kanban'), await rep1.htmxGet('/projects/crm-europe/crm/opportunities/kanban')]) {
      const sidebar = sidebarOf(board.text);
      expect(visibleText(sidebar)).toContain('Actions New opportunity');
      expect(sidebar).toContain('href="/projects/crm-europe/crm/opportunities/new"');
      expect(sidebar).toContain('href="/projects/crm-europe/crm/opportunities"');
    }
    const list = sidebarOf((await rep1.get('/projects/crm-europe/crm/opportunities')).text);
    expect(list).toContain('href="/projects/crm-europe/crm/opportunities/kanban"');
    // The project manager may see the pipeline but not add to it.
    const pm = await Session.signIn(host.app, 'pm');
    const pmBoard = await pm.get('/projects/crm/crm/opportunities/kanban');
    expect(pmBoard.status).toBe(200);
    const pmSidebar = visibleText(sidebarOf(pmBoard.text));
    expect(pmSidebar).toContain('Actions');
    expect(pmSidebar).not.toContain('New opportunity');
  });

  test('a kanban move goes back only to a board of this site, never to an address given in the form', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Kanban – way back', currency: 'EUR' })).status).toBe(303);
    const id = await oppId('Kanban – way back');
    for (const board of ['https://evil.example', '//evil.example', '/crm/accounts', '/projects/no-such-project/crm/opportunities']) {
      const row = await host.db.knex('crm_opportunities').where({ id }).first();
      const target = row.status_id === await statusId('Proposal') ? await statusId('Negotiation') : await statusId('Proposal');
      const moved = await rep1.post(`/crm/opportunities/${id}/status`, { status_id: String(target), lock_version: String(row.lock_version), back: 'kanban', board });
      expect(moved.status).toBe(303);
      expect(moved.headers.location).toBe('/crm/opportunities/kanban');
      expect(Number((await host.db.knex('crm_opportunities').where({ id }).first()).status_id)).toBe(target);
    }
    // The menu page does not carry such an address into its form either.
    const page = await rep1.get(`/crm/opportunities/${id}/move?board=https%3A%2F%2Fevil.example`);
    expect(page.text).toContain('name="board" value="/crm/opportunities"');
  });

  test('kanban cards name their account as it is now, and only where the viewer may see it', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Acme – ERP rollout');
    const account = await host.db.knex('crm_accounts').where({ name: 'Acme Manufacturing' }).first();
    const admin = await host.db.knex('users').where({ login: 'admin' }).first();
    const cardText = async () => visibleText(cardOn((await director.get('/crm/opportunities/kanban')).text, id));
    try {
      expect(await cardText()).toContain('Acme Manufacturing');
      await host.db.knex('crm_accounts').where({ id: account.id }).update({ name: 'Acme Manufacturing AB' });
      expect(await cardText()).toContain('Acme Manufacturing AB');
      // Private to someone else: the card keeps the opportunity and drops the name.
      await host.db.knex('crm_accounts').where({ id: account.id }).update({ is_private: true, author_id: admin.id });
      expect(await cardText()).toContain('Acme – ERP rollout');
      expect(await cardText()).not.toContain('Acme Manufacturing');
    } finally {
      await host.db.knex('crm_accounts').where({ id: account.id }).update({ name: account.name, is_private: account.is_private, author_id: account.author_id });
    }
  });

  test('kanban: open statuses as columns, won/lost folded; JSON too', async () => {
    const director = await Session.signIn(host.app, 'director');
    const board = await director.get('/crm/opportunities/kanban.json');
    expect(board.body.columns.map((c: { status: { name: string } }) => c.status.name)).toEqual(['Qualification', 'Needs analysis', 'Proposal', 'Negotiation']);
    expect(board.body.folded.map((c: { status: { name: string } }) => c.status.name)).toEqual(['Won', 'Lost']);
    // Every column's count and totals are the list's for that status; its cards are the first by close date.
    type Column = { status: { id: number }; count: number; totals: unknown[]; cards: { id: number }[] };
    for (const column of board.body.columns as Column[]) {
      const list = (await director.get(`/crm/opportunities.json?status=${column.status.id}&sort=expected_close_on&dir=asc`)).body;
      expect(column.count).toBe(list.pagination.total);
      expect(column.totals).toEqual(list.totals);
      // The cards: this status's first (at most 25) by close date, undated last, then by id.
      const rows = await host.db.knex('crm_opportunities').whereIn('id', column.cards.map((c) => c.id)).select('id', 'status_id', 'expected_close_on');
      const byId = new Map(rows.map((r) => [Number(r.id), r]));
      expect(column.cards.every((c) => Number(byId.get(c.id)?.status_id) === column.status.id)).toBe(true);
      expect(column.cards.length).toBe(Math.min(column.count, 25));
      const key = (id: number) => { const d = byId.get(id)?.expected_close_on; return `${d ? new Date(d).toISOString().slice(0, 10) : '9999-99-99'} ${String(id).padStart(10, '0')}`; };
      const keys = column.cards.map((c) => key(c.id));
      expect(keys).toEqual([...keys].sort());
    }
    expect((board.body.columns as Column[]).reduce((n, c) => n + c.count, 0)).toBeGreaterThan(3);
    const html = await director.get('/projects/crm-americas/crm/opportunities/kanban');
    expect(html.status).toBe(200);
    expect(visibleText(html.text)).toContain('Globex – data platform');
  });

  test('delete needs confirmation and is soft; JSON create with API key', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Initech – printers');
    expect((await director.post(`/crm/opportunities/${id}/delete`, {})).status).toBe(422);
    expect((await director.post(`/crm/opportunities/${id}/delete`, { confirm: '1' })).status).toBe(303);
    expect((await director.get(`/crm/opportunities/${id}`)).status).toBe(404);
    await director.post('/my/api_key');
    const key = /<code id="api-key">([0-9a-f]+)<\/code>/.exec((await director.get('/my/account')).text)![1];
    const created = await request(host.app).post('/projects/crm-asia/crm/opportunities').set('X-API-Key', key).set('Accept', 'application/json').send({ name: 'API deal', amount: '100', currency: 'JPY' });
    expect(created.status).toBe(201);
    expect(created.body.opportunity).toMatchObject({ name: 'API deal', amount_minor: 100, currency: 'JPY' });
  });
});

describe('opportunities on the account page', () => {
  test('the Opportunities tab lists the account’s visible opportunities; New opportunity is prefilled with the account', async () => {
    const director = await Session.signIn(host.app, 'director');
    const acme = (await host.db.knex('crm_accounts').where({ name: 'Acme Manufacturing' }).first()).id;
    const tab = await director.get(`/crm/accounts/${acme}?tab=opportunities`);
    expect(listed(tab.text).sort()).toEqual(expect.arrayContaining(['Acme – ERP rollout', 'Acme – support renewal']));
    expect(listed(tab.text)).not.toContain('Globex – data platform');
    expect(tab.text).toContain(`href="/crm/opportunities/new?account_id=${acme}" id="new-opportunity"`);
    const form = await director.get(`/crm/opportunities/new?account_id=${acme}`);
    expect(form.text).toContain(`name="account_id" value="${acme}"`);
    expect(visibleText(form.text)).toContain('Acme Manufacturing');
  });
});

describe('opportunities on the partner page (A10)', () => {
  test('the partner overview lists the opportunities assigned to it that the user can see', async () => {
    const knex = host.db.knex;
    const baltic = (await knex('crm_partners').where({ name: 'Baltic Consulting' }).first()).id;
    await knex('crm_opportunities').where({ name: 'Acme – support renewal' }).update({ partner_id: baltic });
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get(`/crm/partners/${baltic}`);
    expect(page.text).toContain('id="partner-opportunities"');
    expect(visibleText(page.text)).toContain('Acme – support renewal · Proposal');
    const json = await director.get(`/crm/partners/${baltic}.json`);
    expect(json.body.opportunities.map((o: { name: string }) => o.name)).toEqual(['Acme – support renewal']);
  });
});

describe('saved filters and the default filter per role (O2)', () => {
  test('a shared filter set as the Sales rep default opens the list for reps; explicit filters still win', async () => {
    const director = await Session.signIn(host.app, 'director');
    const won = await statusId('Won');
    const saved = await director.post('/crm/opportunities/filters', { filter_name: 'Won deals', status: String(won), is_shared: '1' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe(`/crm/opportunities?status=${won}`);
    const manage = await director.get('/crm/opportunities/filters');
    expect(visibleText(manage.text)).toContain('Won deals');
    const filter = (await host.db.knex('crm_saved_filters').where({ name: 'Won deals' }).first()).id;
    const rep = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    const forged = await director.post('/crm/opportunities/filters/defaults', { [`role_${rep.id}`]: '999999' });
    expect(forged.status).toBe(422);
    expect((await director.post('/crm/opportunities/filters/defaults', { [`role_${rep.id}`]: String(filter) })).status).toBe(303);
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      expect(listed((await rep2.get('/crm/opportunities')).text)).toEqual(['Initech – licences', 'Webshop – integration']);
      expect(listed((await rep2.get('/crm/opportunities?q=globex')).text)).toEqual(['Globex – data platform']);
      // Only managers of CRM settings set defaults.
      expect((await rep2.post('/crm/opportunities/filters/defaults', { [`role_${rep.id}`]: '' })).status).toBe(404);
    } finally {
      await host.db.knex('crm_role_default_filters').delete();
    }
  });

  test('setting the default filters is journaled, role by role, and shown on the saved filters page', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Big deals', amount_min: '10000', is_shared: '1' })).status).toBe(303);
    const filter = Number((await knex('crm_saved_filters').where({ name: 'Big deals' }).first()).id);
    const rep = await knex('roles').where({ name: 'Sales rep' }).first();
    const admin = await Session.signIn(host.app, 'admin');
    // The defaults left by the test before were removed directly; what this test saves starts from none.
    await knex('crm_role_default_filters').delete();
    const since = Number((await knex('crm_journals').max({ id: 'id' }).first())?.id ?? 0);
    try {
      expect((await admin.post('/crm/opportunities/filters/defaults', { [`role_${rep.id}`]: String(filter) })).status).toBe(303);
      // Saving the same again changes nothing and journals nothing.
      expect((await admin.post('/crm/opportunities/filters/defaults', { [`role_${rep.id}`]: String(filter) })).status).toBe(303);
      expect((await admin.post('/crm/opportunities/filters/defaults', {})).status).toBe(303);
      const details = await knex('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
        .where({ 'j.journalized_type': 'role_default_filters' }).where('j.id', '>', since).orderBy('j.id').select('d.field', 'd.old_value', 'd.new_value', 'j.user_id');
      expect(details.map((d) => [d.field, d.old_value, d.new_value, Number(d.user_id)])).toEqual([
        ['Sales rep', null, 'Big deals', host.demo.users.admin.id],
        ['Sales rep', 'Big deals', null, host.demo.users.admin.id],
      ]);
      const page = visibleText((await admin.get('/crm/opportunities/filters')).text);
      expect(page).toContain('Sales rep : (empty) → Big deals');
      expect(page).toContain('Sales rep : Big deals → (empty)');
    } finally {
      await knex('crm_role_default_filters').delete();
    }
  });
});

describe('overriding the role’s default filter (O2)', () => {
  test('the list names the default filter it applied; “Clear” shows every opportunity, and so do the pages after the first', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const won = await statusId('Won');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Won for reps', status: String(won), is_shared: '1' })).status).toBe(303);
    const filter = await knex('crm_saved_filters').where({ name: 'Won for reps' }).first();
    const rep = await knex('roles').where({ name: 'Sales rep' }).first();
    await knex('crm_role_default_filters').insert({ role_id: rep.id, entity: 'opportunities', saved_filter_id: filter.id });
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      const all = listed((await rep2.get('/crm/opportunities?q=')).text).sort();
      expect(all.length).toBeGreaterThan(2);
      const opened = await rep2.get('/crm/opportunities');
      expect(listed(opened.text).sort()).toEqual(['Initech – licences', 'Webshop – integration']);
      expect(visibleText(opened.text)).toContain('Showing “Won for reps”, the default filter of your role Sales rep.');
      const clear = /<a href="([^"]*)">Clear<\/a>/.exec(opened.text)![1].replace(/&amp;/g, '&');
      const cleared = await rep2.get(clear);
      expect(listed(cleared.text).sort()).toEqual(all);
      expect(visibleText(cleared.text)).not.toContain('default filter');
      // Page by page, the cleared list stays cleared.
      await knex('crm_settings').insert({ name: 'page_size', value: '1', lock_version: 0 }).onConflict('name').merge();
      const paged: string[] = [];
      let url: string | undefined = clear;
      while (url) {
        const page = await rep2.get(url);
        paged.push(...listed(page.text));
        url = /<a href="([^"]*)" rel="next">/.exec(page.text)?.[1].replace(/&amp;/g, '&');
      }
      expect(paged.sort()).toEqual(all);
      const board = await rep2.get('/crm/opportunities/kanban');
      expect(visibleText(board.text)).toContain('Showing “Won for reps”, the default filter of your role Sales rep.');
      expect(board.text).toContain('href="/crm/opportunities/kanban?q=">Show all</a>');
    } finally {
      await knex('crm_settings').where({ name: 'page_size' }).delete();
      await knex('crm_role_default_filters').delete();
      await knex('crm_saved_filters').where({ id: filter.id }).delete();
    }
  });
});

describe('a saved filter whose references are gone or hidden (O2)', () => {
  test('a deleted status, a removed owner or project and an account the user cannot see are left out, and the list says so', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const [parked] = await knex('crm_opportunity_statuses').insert({ name: 'Parked', color: '#888888', probability: 0, kind: 'open', position: 99, active: true, is_default: false }).returning('id');
    const parkedId = Number(parked.id ?? parked);
    const won = await statusId('Won');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Parked and won', status: `${parkedId},${won}`, is_shared: '1' })).status).toBe(303);
    await knex('crm_opportunity_statuses').where({ id: parkedId }).delete();
    const filter = await knex('crm_saved_filters').where({ name: 'Parked and won' }).first();
    try {
      const page = await director.get(`/crm/opportunities${`?${new URLSearchParams(JSON.parse(filter.params))}`}`);
      expect(page.status).toBe(200);
      expect(visibleText(page.text)).toContain('Part of this filter no longer applies and was left out: a status that no longer exists.');
      expect(listed(page.text).sort()).toEqual(['Initech – licences', 'Webshop – integration']);
      // Applied as the role's default, the same.
      const rep = await knex('roles').where({ name: 'Sales rep' }).first();
      await knex('crm_role_default_filters').insert({ role_id: rep.id, entity: 'opportunities', saved_filter_id: filter.id });
      const rep2 = await Session.signIn(host.app, 'rep2');
      const json = await rep2.get('/crm/opportunities.json');
      expect(json.status).toBe(200);
      expect(json.body.left_out_of_filter).toEqual(['a status that no longer exists']);
      expect(json.body.opportunities.map((o: { name: string }) => o.name).sort()).toEqual(['Initech – licences', 'Webshop – integration']);
      // The stored filter is kept as it was: the owner decides what to do with it.
      expect(JSON.parse((await knex('crm_saved_filters').where({ id: filter.id }).first()).params)).toEqual({ status: `${parkedId},${won}` });

      const globex = (await knex('crm_accounts').where({ name: 'Globex Corporation' }).first()).id;
      const rep1 = await Session.signIn(host.app, 'rep1');
      const hidden = await rep1.get(`/crm/opportunities?account=${globex}&owner=999999&project=999999`);
      expect(hidden.status).toBe(200);
      expect(visibleText(hidden.text)).toContain('Part of this filter no longer applies and was left out: an account you cannot see, an owner who no longer exists, a project you cannot see.');
      expect(hidden.text).not.toContain('Globex');
      expect(listed(hidden.text)).toContain('Acme – ERP rollout');
    } finally {
      await knex('crm_role_default_filters').delete();
      await knex('crm_saved_filters').where({ id: filter.id }).delete();
    }
  });
});

describe('the "show sales activities on opportunities" switch (S6)', () => {
  test('off: the opportunity page has no activities panel or add form; on: both are back', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Acme – ERP rollout');
    expect((await director.get(`/crm/opportunities/${id}`)).text).toContain(`id="activities-opportunity-${id}"`);
    await host.db.knex('crm_settings').insert({ name: 'show_sales_activities_on_opportunities', value: 'false', lock_version: 0 }).onConflict('name').merge();
    try {
      const page = await director.get(`/crm/opportunities/${id}`);
      expect(page.text).not.toContain(`id="activities-opportunity-${id}"`);
      expect(page.text).not.toContain(`id="activity-add-opportunity-${id}"`);
    } finally {
      await host.db.knex('crm_settings').where({ name: 'show_sales_activities_on_opportunities' }).delete();
    }
  });
});

describe('readable history (P6)', () => {
  test('names an account in the history only to those who may see it', async () => {
    const director = await Session.signIn(host.app, 'director');
    const globex = (await host.db.knex('crm_accounts').where({ name: 'Globex Corporation' }).first()).id;
    const pacific = (await host.db.knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id;
    const created = await director.post('/projects/crm/crm/opportunities', { name: 'Group-wide renewal', account_id: String(globex), partner_id: String(pacific), currency: 'EUR' });
    expect(created.status).toBe(303);
    const id = await oppId('Group-wide renewal');
    expect(visibleText((await director.get(`/crm/opportunities/${id}`)).text)).toContain('Account : (empty) → Globex Corporation');
    // rep1 sees the CRM project's opportunities but not Globex (an Americas account).
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = visibleText((await rep1.get(`/crm/opportunities/${id}`)).text);
    expect(page).toContain(`Account : (empty) → #${globex}`);
    expect(page).toContain('an account you cannot see');
    expect(page).toContain('a partner you cannot see');
    expect(page).not.toContain('Globex');
    expect(page).not.toContain('Pacific');
    // Nor in the list, the kanban or their JSON.
    for (const url of ['/projects/crm/crm/opportunities?q=group-wide', '/projects/crm/crm/opportunities/kanban', '/projects/crm/crm/opportunities.json?q=group-wide']) {
      const res = await rep1.get(url);
      expect(res.text).toContain('Group-wide renewal');
      expect(res.text).not.toContain('Globex');
    }
    expect(visibleText((await director.get('/projects/crm/crm/opportunities?q=group-wide')).text)).toContain('Globex Corporation');
  });

  test('names the project an opportunity and its contract were created in or moved from only to those who may see it — for old entries too, without a query per entry', async () => {
    const knex = host.db.knex;
    const QUIET = 'Quiet Launch Programme';
    const [p] = await knex('projects').insert({ identifier: 'quiet-launch', name: QUIET, parent_id: null, is_template: false }).returning('id');
    const quiet = Number(p.id ?? p);
    await knex('project_modules').insert(['tasks', 'crm'].map((module) => ({ project_id: quiet, module })));
    const europe = host.demo.projects['crm-europe'];
    const admin = await Session.signIn(host.app, 'admin');
    expect((await admin.post('/projects/quiet-launch/crm/opportunities', { name: 'Hushed expansion', currency: 'EUR' })).status).toBe(303);
    const id = await oppId('Hushed expansion');
    const model = await knex('crm_contracts').where({ kind: 'time_based' }).first();
    const [c] = await knex('crm_contracts').insert({
      ...model, id: undefined, source_key: 'test:hushed-expansion', opportunity_id: id, quote_id: null, quote_item_id: null, account_id: null, project_id: quiet,
      owner_id: host.demo.users.admin.id, name: 'Hushed expansion licence', status: 'active', lock_version: 0,
    }).returning('id');
    const contract = Number(c.id ?? c);
    const row = await knex('crm_opportunities').where({ id }).first();
    // Moved to a project rep1 works in: rep1 now reads the opportunity and its contract, never the project it came from.
    expect((await admin.post(`/crm/opportunities/${id}/project`, { project_id: String(europe.id), lock_version: String(row.lock_version) })).status).toBe(303);
    expect((await knex('crm_contracts').where({ id: contract }).first()).project_id).toBe(europe.id);
    // Entries as journaled before: the move's note named both projects.
    const oldEntry = async (type: string, recordId: number, entry: { notes?: string; field?: string; value?: string }) => {
      const [j] = await knex('crm_journals').insert({ journalized_type: type, journalized_id: recordId, user_id: host.demo.users.admin.id, action: 'update', notes: entry.notes ?? '' }).returning('id');
      if (entry.field) await knex('crm_journal_details').insert({ journal_id: Number(j.id ?? j), field: entry.field, old_value: null, new_value: entry.value ?? null });
    };
    await oldEntry('opportunity', id, { notes: `Moved from ${QUIET} to ${europe.name}` });
    await oldEntry('contract', contract, { notes: `Moved from ${QUIET} to ${europe.name} with its opportunity #${id}` });

    const rep1 = await Session.signIn(host.app, 'rep1');
    const pages = { opportunity: `/crm/opportunities/${id}`, contract: `/crm/contracts/${contract}` };
    /** The visible text of both pages; for a reader who may not see the project, neither they nor their JSON name it. */
    const seenBy = async (session: Session, mayNotSee: boolean) => {
      const seen: Record<string, string> = {};
      for (const [kind, url] of Object.entries(pages)) {
        const [page, json] = [await session.get(url), await session.get(`${url}.json`)];
        expect({ url, status: page.status, json: json.status }).toEqual({ url, status: 200, json: 200 });
        if (mayNotSee) for (const text of [page.text, JSON.stringify(json.body)]) expect(text).not.toMatch(/quiet[ -]launch/i);
        seen[kind] = visibleText(page.text);
      }
      return seen;
    };
    const hidden = 'a project you cannot see';
    const byRep = await seenBy(rep1, true);
    expect(byRep.opportunity).toContain(`Project : (empty) → ${hidden}`);
    expect(byRep.opportunity).toContain(`Project : ${hidden} → ${europe.name}`);
    expect(byRep.opportunity).toContain(`Moved from ${hidden} to ${europe.name}`);
    expect(byRep.contract).toContain(`Project : ${hidden} → ${europe.name}`);
    expect(byRep.contract).toContain(`Moved from ${hidden} to ${europe.name} with its opportunity #${id}`);

    const byAdmin = await seenBy(admin, false);
    expect(byAdmin.opportunity).toContain('Project : (empty) → quiet-launch');
    expect(byAdmin.opportunity).toContain(`Project : ${QUIET} → ${europe.name}`);
    expect(byAdmin.opportunity).toContain(`Moved from ${QUIET} to ${europe.name}`);
    expect(byAdmin.contract).toContain(`Project : ${QUIET} → ${europe.name}`);
    expect(byAdmin.contract).not.toContain(hidden);

    // Entries naming more projects, by id, identifier and name: no more statements on the host's projects.
    const projectQueries = async () => (await statementsDuring(knex, () => rep1.get(pages.opportunity))).statements.filter((q) => /\bprojects\b/.test(q.sql)).length;
    const before = await projectQueries();
    for (const other of ['crm', 'crm-americas', 'crm-asia', 'internal']) {
      const project = host.demo.projects[other];
      await oldEntry('opportunity', id, { field: 'project_id', value: String(project.id) });
      await oldEntry('opportunity', id, { field: 'project', value: project.identifier });
      await oldEntry('opportunity', id, { notes: `Moved from ${project.name} to ${europe.name}` });
    }
    expect(await projectQueries()).toBe(before);
    const more = visibleText((await rep1.get(pages.opportunity)).text);
    expect(more).toContain('Project : (empty) → CRM');
    expect(more).toContain('Project : (empty) → crm');
    expect(more).toContain(`Moved from CRM to ${europe.name}`);
    for (const other of ['crm-americas', 'crm-asia', 'internal']) {
      const { identifier, name } = host.demo.projects[other];
      expect(more).not.toContain(identifier);
      expect(more).not.toContain(`→ ${name}`);
      expect(more).not.toContain(`Moved from ${name}`);
    }
  });
});

describe('an account, contact or partner the reader may not see', () => {
  /** An opportunity in the CRM project (rep1 and rep2 are there) with Globex, a contact and Pacific Partners, all of crm-americas. */
  async function crossRegionDeal(name: string): Promise<{ id: number; globex: number; contact: number; pacific: number }> {
    const knex = host.db.knex;
    const { director, rep2 } = host.demo.users;
    const globex = Number((await knex('crm_accounts').where({ name: 'Globex Corporation' }).first()).id);
    const pacific = Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id);
    const [c] = await knex('crm_personal_contacts').insert({ last_name: `${name} buyer`, project_id: host.demo.projects['crm-americas'].id, author_id: rep2.id, owner_id: rep2.id }).returning('id');
    const contact = Number(c.id ?? c);
    const [o] = await knex('crm_opportunities').insert({
      project_id: host.demo.projects.crm.id, name, account_id: globex, contact_id: contact, partner_id: pacific, owner_id: director.id, author_id: director.id,
      status_id: await statusId('Proposal'), amount_minor: 100_000, currency: 'EUR',
    }).returning('id');
    return { id: Number(o.id ?? o), globex, contact, pacific };
  }

  async function removeDeal(deal: { id: number; contact: number }): Promise<void> {
    await host.db.knex('crm_opportunities').where({ id: deal.id }).delete();
    await host.db.knex('crm_personal_contacts').where({ id: deal.contact }).delete();
  }

  test('a kanban card says “an account you cannot see” where its account is one the reader may not see, as the list’s row does, and names it to those who may', async () => {
    const deal = await crossRegionDeal('Kanbanregion deal');
    const cardOn = (html: string) => new RegExp(`<article class="card"[^>]*data-opportunity="${deal.id}"[\\s\\S]*?</article>`).exec(html)?.[0] ?? '';
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      for (const page of [await rep1.get('/crm/opportunities/kanban?q=kanbanregion'), await rep1.htmxGet('/crm/opportunities/kanban?q=kanbanregion')]) {
        const card = cardOn(page.text);
        expect(visibleText(card)).toContain('Kanbanregion deal');
        expect(visibleText(card)).toContain('an account you cannot see');
        expect(card).toContain('<span class="empty">an account you cannot see</span>');
        expect(card).not.toContain('Globex');
        expect(card).not.toMatch(new RegExp(`/crm/accounts/${deal.globex}\\b`));
      }
      const director = await Session.signIn(host.app, 'director');
      const theirs = visibleText(cardOn((await director.get('/crm/opportunities/kanban?q=kanbanregion')).text));
      expect(theirs).toContain('Globex Corporation');
      expect(theirs).not.toContain('you cannot see');
    } finally {
      await removeDeal(deal);
    }
  });

  test('the list’s and the opportunity’s JSON give the ids of its account, contact and partner only to those who may see them: to others null and *_hidden, as the pages name none', async () => {
    const deal = await crossRegionDeal('Crossregion deal');
    const { id, globex, contact, pacific } = deal;
    const rowOn = (html: string) => new RegExp(`<tr data-opportunity="${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
    try {
      // rep1 sees the CRM project's opportunities, but not Globex, the contact or Pacific Partners (crm-americas).
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get(`/crm/accounts/${globex}`)).status).toBe(404);
      for (const url of ['/crm/opportunities.json?q=crossregion', '/projects/crm/crm/opportunities.json?q=crossregion']) {
        expect((await rep1.get(url)).body.opportunities)
          .toEqual([expect.objectContaining({ id, account_id: null, account_name: null, account_hidden: true, partner_id: null, partner_hidden: true })]);
      }
      // The list reads the accounts and partners of its page in one statement, as it read their accounts before.
      const { statements } = await statementsDuring(host.db.knex, () => rep1.get('/projects/crm/crm/opportunities.json?q=crossregion'));
      expect(statements.filter((q) => /from ["`]crm_(accounts|partners)["`]/.test(q.sql))).toEqual([
        expect.objectContaining({ sql: expect.stringMatching(/from ["`]crm_accounts["`][\s\S]*union all[\s\S]*from ["`]crm_partners["`]/) }),
      ]);
      const page = await rep1.get('/crm/opportunities?q=crossregion');
      expect(visibleText(rowOn(page.text))).toContain('an account you cannot see');
      expect(rowOn(page.text)).not.toMatch(new RegExp(`/crm/accounts/${globex}\\b`));
      const detail = await rep1.get(`/crm/opportunities/${id}.json`);
      expect(detail.status).toBe(200);
      expect(detail.body.opportunity).toMatchObject({
        id, account_id: null, account_hidden: true, contact_id: null, contact_hidden: true, partner_id: null, partner_hidden: true,
      });
      expect(visibleText((await rep1.get(`/crm/opportunities/${id}`)).text)).toContain('an account you cannot see');
      // The edit form still holds what is stored, so that saving keeps it.
      const form = await rep1.get(`/crm/opportunities/${id}/edit`);
      expect(form.text).toContain(`name="account_id" value="${globex}"`);
      expect(form.text).toContain(`name="contact_id" value="${contact}"`);

      // The director may see all three.
      const director = await Session.signIn(host.app, 'director');
      expect((await director.get('/crm/opportunities.json?q=crossregion')).body.opportunities)
        .toEqual([expect.objectContaining({ id, account_id: globex, account_name: 'Globex Corporation', account_hidden: false, partner_id: pacific, partner_hidden: false })]);
      expect(rowOn((await director.get('/crm/opportunities?q=crossregion')).text)).toContain(`href="/crm/accounts/${globex}"`);
      expect((await director.get(`/crm/opportunities/${id}.json`)).body.opportunity).toMatchObject({
        id, account_id: globex, account_hidden: false, contact_id: contact, contact_hidden: false, partner_id: pacific, partner_hidden: false,
      });
    } finally {
      await removeDeal(deal);
    }
  });

  test('a copy leaves out the account, contact and partner the user may not see: a new opportunity could not be saved with them', async () => {
    const deal = await crossRegionDeal('Crossregion copy');
    const { id, globex, contact, pacific } = deal;
    const field = (html: string, name: string) => new RegExp(`name="${name}" value="(\\d*)"`).exec(html)?.[1];
    const partnerChosen = (html: string) => /<select name="partner_id"[^>]*>[\s\S]*?<option value="(\d+)" selected/.exec(html)?.[1] ?? '';
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const copy = await rep1.get(`/crm/opportunities/${id}/copy`);
      expect(copy.status).toBe(200);
      expect([field(copy.text, 'account_id'), field(copy.text, 'contact_id'), partnerChosen(copy.text)]).toEqual(['', '', '']);
      expect(copy.text).toContain('value="Crossregion copy (copy)"');
      expect(visibleText(copy.text)).not.toContain('a partner you cannot see');
      // Those who may see them get them copied.
      const director = await Session.signIn(host.app, 'director');
      const theirs = await director.get(`/crm/opportunities/${id}/copy`);
      expect([field(theirs.text, 'account_id'), field(theirs.text, 'contact_id'), partnerChosen(theirs.text)]).toEqual([String(globex), String(contact), String(pacific)]);
    } finally {
      await removeDeal(deal);
    }
  });

  test('saving an opportunity keeps an account the editor may not see, as it keeps such a contact or partner; a newly chosen one must be one they may see', async () => {
    const deal = await crossRegionDeal('Crossregion edit');
    const { id, globex, contact, pacific } = deal;
    const initech = Number((await host.db.knex('crm_accounts').where({ name: 'Initech' }).first()).id); // crm-americas too
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const form = await rep1.get(`/crm/opportunities/${id}/edit`);
      expect(form.status).toBe(200);
      expect(form.text).not.toContain('Globex');
      const sent = (field: string) => new RegExp(`name="${field}" value="(\\d*)"`).exec(form.text)![1];
      const row = await host.db.knex('crm_opportunities').where({ id }).first();
      const values = {
        name: row.name, status_id: String(row.status_id), currency: row.currency, amount: '1500', account_id: sent('account_id'), contact_id: sent('contact_id'),
        partner_id: String(pacific), lock_version: lockVersionIn(form.text),
      };
      const saved = await rep1.post(`/crm/opportunities/${id}`, values);
      expect([saved.status, saved.headers.location]).toEqual([303, `/crm/opportunities/${id}`]);
      expect(await host.db.knex('crm_opportunities').where({ id }).first()).toMatchObject({ account_id: globex, contact_id: contact, partner_id: pacific });
      expect(Number((await host.db.knex('crm_opportunities').where({ id }).first()).amount_minor)).toBe(150_000);

      const refused = await rep1.post(`/crm/opportunities/${id}`, { ...values, account_id: String(initech), lock_version: String(Number(values.lock_version) + 1) });
      expect(refused.status).toBe(422);
      expect(refused.text).toContain('data-field="account_id"');
      expect(visibleText(refused.text)).toContain('Choose an account you can see');
      expect((await host.db.knex('crm_opportunities').where({ id }).first()).account_id).toBe(globex);
    } finally {
      await removeDeal(deal);
    }
  });
});

describe('partner pickers (O1, A10)', () => {
  /** What the edit form would send back for its partner: the selected option, or the id typed in. */
  const partnerSent = (html: string): string => {
    const select = /<select name="partner_id"[^>]*>([\s\S]*?)<\/select>/.exec(html);
    if (select) return /<option value="(\d*)" selected/.exec(select[1])?.[1] ?? '';
    return /<input name="partner_id" value="(\d*)"/.exec(html)?.[1] ?? 'no partner field';
  };

  test('list only partners the user may see, and keep a partner the user cannot see when the form is saved', async () => {
    const knex = host.db.knex;
    const pacific = (await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id;
    const id = await oppId('Nordic Retail – POS upgrade');
    await knex('crm_opportunities').where({ id }).update({ partner_id: pacific });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get('/crm/opportunities')).text).not.toContain('Pacific');
      const edit = await rep1.get(`/crm/opportunities/${id}/edit`);
      expect(edit.status).toBe(200);
      expect(edit.text).not.toContain('Pacific');
      expect(visibleText(edit.text)).toContain('a partner you cannot see');
      expect(partnerSent(edit.text)).toBe(String(pacific));
      const row = await knex('crm_opportunities').where({ id }).first();
      const saved = await rep1.post(`/crm/opportunities/${id}`, {
        name: row.name, status_id: String(row.status_id), currency: row.currency, partner_id: partnerSent(edit.text), lock_version: String(row.lock_version),
      });
      expect(saved.status).toBe(303);
      expect((await knex('crm_opportunities').where({ id }).first()).partner_id).toBe(pacific);
      // Choosing a partner one cannot see is refused, with the field named.
      const other = await knex('crm_partners').insert({ name: 'Hidden Partner Ltd', project_id: host.demo.projects['crm-americas'].id }).returning('id');
      const refused = await rep1.post(`/crm/opportunities/${id}`, {
        name: row.name, status_id: String(row.status_id), currency: row.currency, partner_id: String(Number((other[0] as { id: number }).id ?? other[0])), lock_version: String(row.lock_version + 1),
      });
      expect(refused.status).toBe(422);
      expect(refused.text).toContain('data-field="partner_id"');
      await knex('crm_partners').where({ name: 'Hidden Partner Ltd' }).delete();
    } finally {
      await knex('crm_opportunities').where({ id }).update({ partner_id: null });
    }
  });

  test('a filter on a partner the reader may not see is left out, and the list says so — list, JSON and kanban — so it reveals none of its opportunities', async () => {
    const knex = host.db.knex;
    const pacific = Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id); // crm-americas: rep1 is not there
    const id = await oppId('Nordic Retail – POS upgrade');
    await knex('crm_opportunities').where({ id }).update({ partner_id: pacific });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const all = listed((await rep1.get('/crm/opportunities')).text);
      expect(all).toContain('Nordic Retail – POS upgrade');
      expect(all.length).toBeGreaterThan(1);
      const page = await rep1.get(`/crm/opportunities?partner=${pacific}`);
      expect(listed(page.text)).toEqual(all);
      expect(visibleText(page.text)).toContain('Part of this filter no longer applies and was left out: a partner you cannot see.');
      expect(visibleText(page.text)).not.toContain('Pacific');
      const json = (await rep1.get(`/crm/opportunities.json?partner=${pacific}`)).body;
      expect(json.pagination.total).toBe(all.length);
      expect(json.left_out_of_filter).toEqual(['a partner you cannot see']);
      const board = (await rep1.get(`/projects/crm-europe/crm/opportunities/kanban?partner=${pacific}`)).text;
      expect(board).toContain(`data-opportunity="${id}"`);
      expect(visibleText(board)).toContain('a partner you cannot see');
      // Those who may see the partner filter by it.
      const director = await Session.signIn(host.app, 'director');
      const theirs = listed((await director.get(`/crm/opportunities?partner=${pacific}`)).text);
      expect(theirs).toContain('Nordic Retail – POS upgrade');
      expect(theirs).not.toContain('Acme – ERP rollout');
    } finally {
      await knex('crm_opportunities').where({ id }).update({ partner_id: null });
    }
  });

  test('a filter on an account the reader may not see is left out of the opportunity and contract lists, which say so, so it reveals none of them', async () => {
    const knex = host.db.knex;
    const initech = Number((await knex('crm_accounts').where({ name: 'Initech' }).first()).id); // crm-americas: rep1 is not there
    const id = await oppId('Nordic Retail – POS upgrade');
    const before = (await knex('crm_opportunities').where({ id }).first()).account_id;
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/accounts/${initech}`)).status).toBe(404);
    const allContracts = (await rep1.get('/crm/contracts.json')).body;
    const contract = (allContracts.contracts as { id: number; account_id: number | null }[])[0];
    expect(contract).toBeDefined();
    await knex('crm_opportunities').where({ id }).update({ account_id: initech });
    await knex('crm_contracts').where({ id: contract.id }).update({ account_id: initech });
    try {
      const all = listed((await rep1.get('/crm/opportunities')).text);
      expect(all).toContain('Nordic Retail – POS upgrade');
      expect(all.length).toBeGreaterThan(1);
      const page = await rep1.get(`/crm/opportunities?account=${initech}`);
      expect(listed(page.text)).toEqual(all);
      expect(visibleText(page.text)).toContain('Part of this filter no longer applies and was left out: an account you cannot see.');
      expect((await rep1.get(`/crm/opportunities.json?account=${initech}`)).body.pagination.total).toBe(all.length);

      const contracts = await rep1.get(`/crm/contracts?account=${initech}`);
      expect(visibleText(contracts.text)).toContain('Part of this filter no longer applies and was left out: an account you cannot see.');
      expect(visibleText(contracts.text)).not.toContain('Initech');
      const json = (await rep1.get(`/crm/contracts.json?account=${initech}`)).body;
      expect(json.pagination.total).toBe(allContracts.pagination.total);
      expect(json.left_out_of_filter).toEqual(['an account you cannot see']);
      // Those who may see the account filter by it.
      const director = await Session.signIn(host.app, 'director');
      expect(listed((await director.get(`/crm/opportunities?account=${initech}`)).text)).toContain('Nordic Retail – POS upgrade');
      const directorContracts = (await director.get(`/crm/contracts.json?account=${initech}`)).body;
      expect((directorContracts.contracts as { id: number }[]).map((c) => c.id)).toContain(contract.id);
      expect(directorContracts.left_out_of_filter).toBeUndefined();
    } finally {
      await knex('crm_opportunities').where({ id }).update({ account_id: before });
      await knex('crm_contracts').where({ id: contract.id }).update({ account_id: contract.account_id });
    }
  });

  test('a partner user’s new opportunity is their partner’s (they see only those): the partner is filled in, clearing it is refused', async () => {
    const knex = host.db.knex;
    const pacific = Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id);
    await knex('crm_partner_users').insert({ partner_id: pacific, user_id: host.demo.users.rep2.id });
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      const res = await rep2.post('/projects/crm-americas/crm/opportunities', { name: 'Partner-sourced deal', currency: 'USD' });
      expect(res.status).toBe(303);
      const id = await oppId('Partner-sourced deal');
      expect((await knex('crm_opportunities').where({ id }).first()).partner_id).toBe(pacific);
      const page = await rep2.get(res.headers.location);
      expect(page.status).toBe(200);
      expect(visibleText(page.text)).toContain('Partner-sourced deal');
      const row = await knex('crm_opportunities').where({ id }).first();
      const cleared = await rep2.post(`/crm/opportunities/${id}`, { name: row.name, status_id: String(row.status_id), currency: row.currency, partner_id: '', lock_version: String(row.lock_version) });
      expect(cleared.status).toBe(422);
      expect(cleared.text).toContain('data-field="partner_id"');
      expect(visibleText(cleared.text)).toContain('Choose your partner');
      expect((await knex('crm_opportunities').where({ id }).first()).partner_id).toBe(pacific);
    } finally {
      await knex('crm_partner_users').where({ partner_id: pacific }).delete();
      await knex('crm_opportunities').where({ name: 'Partner-sourced deal' }).delete();
    }
  });

  test('the partner list is read again only when partners change, and follows each change and the viewer’s reach', async () => {
    const knex = host.db.knex;
    const europe = host.demo.projects['crm-europe'].id;
    const americas = host.demo.projects['crm-americas'].id;
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    await rep1.get('/crm/opportunities');
    const { result: list, statements } = await statementsDuring(knex, () => rep1.get('/crm/opportunities'));
    expect(list.status).toBe(200);
    // (The page's partners are checked for visibility with its accounts, in the one statement that names them; the
    // picker's list of partners, in name order, is not read again.)
    expect(statements.filter((q) => /from ["`]crm_partners["`][\s\S]*order by/.test(q.sql))).toEqual([]);

    const [row] = await knex('crm_partners').insert({ name: 'Fresh Europe Partner', project_id: europe }).returning('id');
    const fresh = Number((row as { id?: number }).id ?? row);
    try {
      expect((await rep1.get('/crm/opportunities')).text).toContain('Fresh Europe Partner');
      await knex('crm_partners').where({ id: fresh }).update({ name: 'Renamed Europe Partner' });
      const renamed = (await rep1.get('/crm/opportunities')).text;
      expect(renamed).toContain('Renamed Europe Partner');
      expect(renamed).not.toContain('Fresh Europe Partner');
      // Moved to a project rep1 is not in: gone from rep1's list, still in the director's.
      await knex('crm_partners').where({ id: fresh }).update({ project_id: americas });
      expect((await rep1.get('/crm/opportunities')).text).not.toContain('Renamed Europe Partner');
      expect((await director.get('/crm/opportunities')).text).toContain('Renamed Europe Partner');
    } finally {
      await knex('crm_partners').where({ id: fresh }).delete();
    }
  });

  test('a newly chosen contact must be one the user may see; a contact kept as it was passes', async () => {
    const knex = host.db.knex;
    const [row] = await knex('crm_personal_contacts').insert({ last_name: 'Hiddencontact', project_id: host.demo.projects['crm-americas'].id, author_id: host.demo.users.rep2.id, owner_id: host.demo.users.rep2.id }).returning('id');
    const hidden = Number((row as { id?: number }).id ?? row);
    const id = await oppId('Nordic Retail – POS upgrade');
    const opp = await knex('crm_opportunities').where({ id }).first();
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get(`/crm/personal-contacts/${hidden}`)).status).toBe(404);
      const form = { name: opp.name, status_id: String(opp.status_id), currency: opp.currency, contact_id: String(hidden) };
      const refused = await rep1.post(`/crm/opportunities/${id}`, { ...form, lock_version: String(opp.lock_version) });
      expect(refused.status).toBe(422);
      expect(refused.text).toContain('data-field="contact_id"');
      expect((await knex('crm_opportunities').where({ id }).first()).contact_id).toBe(opp.contact_id);
      await knex('crm_opportunities').where({ id }).update({ contact_id: hidden });
      const kept = await rep1.post(`/crm/opportunities/${id}`, { ...form, lock_version: String(opp.lock_version) });
      expect(kept.status).toBe(303);
      expect((await knex('crm_opportunities').where({ id }).first()).contact_id).toBe(hidden);
    } finally {
      await knex('crm_opportunities').where({ id }).update({ contact_id: opp.contact_id });
      await knex('crm_personal_contacts').where({ id: hidden }).delete();
    }
  });

  test('with more partners than a list holds, the form and the filter take a partner’s id, and saving keeps the stored partner', async () => {
    const knex = host.db.knex;
    const names = Array.from({ length: 240 }, (_, i) => `Zz Picker Partner ${String(i + 1).padStart(3, '0')}`);
    const europe = host.demo.projects['crm-europe'].id;
    for (let i = 0; i < names.length; i += 60) await knex('crm_partners').insert(names.slice(i, i + 60).map((name) => ({ name, project_id: europe })));
    const last = (await knex('crm_partners').where({ name: names[names.length - 1] }).first()).id;
    const id = await oppId('Acme – support renewal');
    try {
      await knex('crm_opportunities').where({ id }).update({ partner_id: last });
      const director = await Session.signIn(host.app, 'director');
      const edit = await director.get(`/crm/opportunities/${id}/edit`);
      expect(edit.text).not.toContain(names[0]);
      expect(partnerSent(edit.text)).toBe(String(last));
      expect(visibleText(edit.text)).toContain(names[names.length - 1]);
      const row = await knex('crm_opportunities').where({ id }).first();
      const saved = await director.post(`/crm/opportunities/${id}`, {
        name: row.name, status_id: String(row.status_id), currency: row.currency, partner_id: partnerSent(edit.text), lock_version: String(row.lock_version),
      });
      expect(saved.status).toBe(303);
      expect((await knex('crm_opportunities').where({ id }).first()).partner_id).toBe(last);
      const filtered = await director.get(`/crm/opportunities?partner=${last}`);
      expect(listed(filtered.text)).toEqual(['Acme – support renewal']);
      expect(filtered.text).toMatch(new RegExp(`<input name="partner" value="${last}"`));
      expect(visibleText(filtered.text)).toContain(names[names.length - 1]);
      expect(filtered.text).not.toContain(names[0]);
    } finally {
      await knex('crm_opportunities').where({ id }).update({ partner_id: null });
      await knex('crm_partners').whereIn('name', names).delete();
    }
  });
});
