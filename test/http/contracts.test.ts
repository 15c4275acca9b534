import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';

/** Issue #6, C3 through HTTP: contract lists (global, project, account tab), filters, saved filters, detail, upsell. */
let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const idOf = async (table: string, where: Record<string, unknown>) => Number((await knex()(table).where(where).first('id')).id);
let counter = 0;

const today = () => new Date().toISOString().slice(0, 10);
const plusDays = (days: number) => { const d = new Date(`${today()}T00:00:00Z`); d.setUTCDate(d.getUTCDate() + days); return d.toISOString().slice(0, 10); };

/** An opportunity in `project` owned by `owner`, with contracts stored as a sale stores them. */
async function soldDeal(opts: { project: string; owner: string; account: string; contracts: Array<{ name: string; kind?: 'time_based' | 'one_time'; category?: string; starts?: string; ends?: string | null; amount?: number; status?: string; currency?: string }> }) {
  const db = knex();
  const owner = host.demo.users[opts.owner].id;
  const account = await idOf('crm_accounts', { name: opts.account });
  const [o] = await db('crm_opportunities').insert({
    project_id: host.demo.projects[opts.project].id, name: `Contract test ${++counter}`, account_id: account, owner_id: owner, author_id: owner,
    status_id: await idOf('crm_opportunity_statuses', { name: 'Won' }), currency: 'EUR', is_locked: true,
  }).returning('id');
  const opp = Number(o.id ?? o);
  const ids: number[] = [];
  for (const [i, c] of opts.contracts.entries()) {
    const kind = c.kind ?? 'time_based';
    const [row] = await db('crm_contracts').insert({
      source_key: `test:${opp}:${i}`, opportunity_id: opp, quote_id: null, quote_item_id: null, account_id: account, project_id: host.demo.projects[opts.project].id,
      owner_id: owner, product_id: null, category_id: c.category ? await idOf('crm_product_categories', { name: c.category }) : null, kind, name: c.name, code: '',
      quantity_milli: 1000, amount_minor: c.amount ?? 100_000, currency: c.currency ?? 'EUR', starts_on: c.starts ?? '2026-01-01',
      ends_on: c.ends === undefined ? (kind === 'time_based' ? '2027-01-01' : null) : c.ends, renewal: kind === 'time_based', status: c.status ?? 'active',
      author_id: owner, lock_version: 0, created_at: new Date().toISOString(), updated_at: new Date().toISOString(),
    }).returning('id');
    ids.push(Number(row.id ?? row));
  }
  return { opp, ids };
}

const names = (html: string) => [...html.matchAll(/<tr data-contract="\d+"[^>]*>\s*<td><a href="\/crm\/contracts\/\d+">([^<]+)<\/a>/g)].map((m) => m[1]);

describe('contract lists (C3)', () => {
  test('global list: each user sees the contracts of the opportunities they see; the placeholder is gone', async () => {
    const europe = await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: [{ name: 'Visibility Europe licence', category: 'Software licences' }] });
    await soldDeal({ project: 'crm-americas', owner: 'rep2', account: 'Globex Corporation', contracts: [{ name: 'Visibility Americas licence', category: 'Software licences' }] });
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get('/crm/contracts?q=visibility');
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).not.toContain('Not built yet');
    expect(names(page.text)).toEqual(['Visibility Europe licence']);
    const director = await Session.signIn(host.app, 'director');
    expect(names((await director.get('/crm/contracts?q=visibility&sort=name&dir=asc')).text)).toEqual(['Visibility Americas licence', 'Visibility Europe licence']);
    // Someone who may not see the contract: 404 on its page, JSON too.
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/contracts/${europe.ids[0]}`)).status).toBe(404);
    expect((await rep2.get(`/crm/contracts/${europe.ids[0]}.json`)).status).toBe(404);
    expect((await rep2.get('/crm/contracts/99999999')).status).toBe(404);
    const overview = (await rep1.get('/crm.json')).body;
    expect(overview.sections.find((s: { id: string }) => s.id === 'contracts')).toMatchObject({ available: true, url: '/crm/contracts' });
  });

  test('filters: type (category), kind, status, account, start dates, expiring within N days; malformed ones are a 422', async () => {
    const { ids } = await soldDeal({
      project: 'crm-europe', owner: 'rep1', account: 'Nordic Retail Group', contracts: [
        { name: 'Filter licence soon', category: 'Software licences', starts: '2026-02-01', ends: plusDays(10) },
        { name: 'Filter licence later', category: 'Software licences', starts: '2026-03-01', ends: plusDays(200) },
        { name: 'Filter licence expired', category: 'Software licences', starts: '2025-01-01', ends: plusDays(-3) },
        { name: 'Filter consulting', kind: 'one_time', category: 'Implementation services', starts: '2026-04-01' },
        { name: 'Filter removed', category: 'Support services', status: 'cancelled' },
      ],
    });
    const director = await Session.signIn(host.app, 'director');
    const list = async (query: string) => names((await director.get(`/crm/contracts?q=filter&sort=name&dir=asc&${query}`)).text);
    const software = await idOf('crm_product_categories', { name: 'Software licences' });
    expect(await list(`category=${software}`)).toEqual(['Filter licence expired', 'Filter licence later', 'Filter licence soon']);
    expect(await list('kind=one_time')).toEqual(['Filter consulting']);
    expect(await list('status=cancelled')).toEqual(['Filter removed']);
    expect(await list('status=expired')).toEqual(['Filter licence expired']);
    expect(await list('status=active')).toEqual(['Filter consulting', 'Filter licence later', 'Filter licence soon']);
    expect(await list('expiring=30')).toEqual(['Filter licence soon']);
    expect(await list('from=2026-02-15&to=2026-03-31')).toEqual(['Filter licence later']);
    const account = await idOf('crm_accounts', { name: 'Nordic Retail Group' });
    expect(await list(`account=${account}`)).toHaveLength(5);
    // The type tags count the other filters' matches per category.
    const page = await director.get('/crm/contracts?q=filter');
    expect(visibleText(page.text)).toMatch(/Software licences 3/);
    const json = (await director.get(`/crm/contracts.json?q=filter&category=${software}`)).body;
    expect(json.contracts.map((c: { id: number }) => c.id).sort()).toEqual(ids.slice(0, 3).sort());
    expect(json.pagination).toMatchObject({ page: 1, total: 3 });
    expect(json.totals).toEqual([{ currency: 'EUR', count: 3, amount_minor: 300_000 }]);
    // Bad input: 422 with the field named; SQL metacharacters are just text.
    const bad = await director.get('/crm/contracts?from=2026-13-45&expiring=soon&status=weird');
    expect(bad.status).toBe(422);
    expect(visibleText(bad.text)).toContain('Start from must be a date (YYYY-MM-DD)');
    expect(visibleText(bad.text)).toContain('Expiring within must be a number of days');
    expect((await director.get('/crm/contracts?q=%27%3B%20drop%20table%20crm_contracts%3B--%25_')).status).toBe(200);
    expect(Number((await knex()('crm_contracts').count({ n: '*' }))[0].n)).toBeGreaterThan(0);
  });

  test('paginated: a page size of rows, the rest on the next page', async () => {
    await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: Array.from({ length: 30 }, (_, i) => ({ name: `Paged ${String(i).padStart(2, '0')}` })) });
    const rep1 = await Session.signIn(host.app, 'rep1');
    const first = await rep1.get('/crm/contracts.json?q=paged&sort=name&dir=asc');
    expect(first.body.contracts).toHaveLength(25);
    expect(first.body.pagination).toMatchObject({ page: 1, pages: 2, total: 30 });
    const second = await rep1.get('/crm/contracts.json?q=paged&sort=name&dir=asc&page=2');
    expect(second.body.contracts.map((c: { name: string }) => c.name)).toEqual(['Paged 25', 'Paged 26', 'Paged 27', 'Paged 28', 'Paged 29']);
  });

  test('project pages show the contracts of that project’s opportunities (and its subprojects where the setting says so)', async () => {
    await soldDeal({ project: 'crm-europe', owner: 'director', account: 'Acme Manufacturing', contracts: [{ name: 'Project Europe contract' }] });
    await soldDeal({ project: 'crm-asia', owner: 'director', account: 'Sakura Health', contracts: [{ name: 'Project Asia contract' }] });
    const director = await Session.signIn(host.app, 'director');
    expect(names((await director.get('/projects/crm-europe/crm/contracts?q=project')).text)).toEqual(['Project Europe contract']);
    // The CRM project includes its regions' records (demo setting).
    expect(names((await director.get('/projects/crm/crm/contracts?q=project&sort=name&dir=asc')).text)).toEqual(['Project Asia contract', 'Project Europe contract']);
    const fragment = await director.htmxGet('/projects/crm-europe/crm/contracts');
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    // No CRM in Internal tools: 404.
    expect((await director.get('/projects/internal/crm/contracts')).status).toBe(404);
  });

  test('saved filters: save, reuse, delete only one’s own', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const saved = await rep1.post('/crm/contracts/filters', { filter_name: 'Expiring soon <b>', expiring: '60', status: 'active', is_shared: '1' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe('/crm/contracts?status=active&expiring=60');
    const page = await rep1.get('/crm/contracts');
    expect(page.text).toContain('Expiring soon &lt;b&gt;');
    expect(page.text).toContain('href="/crm/contracts?status=active&amp;expiring=60"');
    const filter = await knex()('crm_saved_filters').where({ entity: 'contracts', name: 'Expiring soon <b>' }).first();
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get('/crm/contracts')).text).toContain('Expiring soon &lt;b&gt;');
    expect((await rep2.post(`/crm/contracts/filters/${filter.id}/delete`)).status).toBe(404);
    expect((await rep1.post(`/crm/contracts/filters/${filter.id}/delete`)).status).toBe(303);
    expect(await knex()('crm_saved_filters').where({ id: filter.id }).first()).toBeUndefined();
    expect((await rep1.post('/crm/contracts/filters', { filter_name: '' })).status).toBe(422);
  });
  test('the count, type tabs and totals are kept between views, and follow every write and the viewer’s reach', async () => {
    const director = await Session.signIn(host.app, 'director');
    const numbers = async () => {
      const body = (await director.get('/crm/contracts.json')).body;
      return { total: body.pagination.total as number, types: JSON.stringify(body.types), totals: JSON.stringify(body.totals) };
    };
    const before = await numbers();
    expect(await numbers()).toEqual(before);
    const { opp } = await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: [{ name: 'Cache probe licence', category: 'Software licences', amount: 4_321 }] });
    const afterInsert = await numbers();
    expect(afterInsert.total).toBe(before.total + 1);
    expect(afterInsert.types).not.toBe(before.types);
    expect(afterInsert.totals).not.toBe(before.totals);
    const membership = { user_id: host.demo.users.director.id, project_id: host.demo.projects['crm-europe'].id };
    const saved = await knex()('members').where(membership);
    await knex()('members').where(membership).delete();
    try {
      expect((await numbers()).total).toBeLessThan(afterInsert.total);
    } finally {
      await knex()('members').insert(saved);
      await knex()('crm_contracts').where({ opportunity_id: opp }).delete();
      await knex()('crm_opportunities').where({ id: opp }).delete();
    }
    expect(await numbers()).toEqual(before);
  });
});

describe('contract detail, account tab and upsell (C3)', () => {
  test('detail: account, opportunity, amounts, dates, history; the account’s Contracts tab lists it', async () => {
    const { opp, ids } = await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: [{ name: 'Detail <script>x</script> licence', category: 'Software licences', amount: 123_456, starts: '2026-05-01', ends: '2027-05-01' }] });
    await knex()('crm_journals').insert({ journalized_type: 'contract', journalized_id: ids[0], user_id: host.demo.users.rep1.id, action: 'create', notes: 'Sold (test)' });
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/contracts/${ids[0]}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('<script>x</script>');
    expect(page.text).toContain('Detail &lt;script&gt;x&lt;/script&gt; licence');
    const text = visibleText(page.text);
    expect(text).toContain('Acme Manufacturing');
    expect(text).toContain('1 234.56 EUR');
    expect(text).toContain('2027-05-01');
    expect(text).toContain('Sold (test)');
    expect(page.text).toContain(`href="/crm/opportunities/${opp}"`);
    const json = (await rep1.get(`/crm/contracts/${ids[0]}.json`)).body;
    expect(json.contract).toMatchObject({ id: ids[0], amount_minor: 123_456, amount: '1234.56', kind: 'time_based', starts_on: '2026-05-01', ends_on: '2027-05-01', renewal: true });
    const account = await idOf('crm_accounts', { name: 'Acme Manufacturing' });
    const tab = await rep1.get(`/crm/accounts/${account}?tab=contracts`);
    expect(tab.status).toBe(200);
    expect(tab.text).toContain(`href="/crm/contracts/${ids[0]}"`);
    expect(visibleText(tab.text)).not.toContain('arrive with');
  });

  test('the JSON gives a contract’s account_id only to those who may see the account: to others the list and the contract say null and account_hidden, as their pages name no account', async () => {
    // Parts & Bolts Supply is the CRM project's, neither managed nor written by rep2: sales reps see their own accounts
    // (the demo's visibility), so rep2 may not see it, though they see the contract of their own opportunity.
    expect(await knex()('crm_role_visibility as v').join('roles as r', 'r.id', 'v.role_id').where({ 'r.name': 'Sales rep', 'v.entity': 'accounts' }).first('v.level')).toEqual({ level: 'own' });
    const parts = await idOf('crm_accounts', { name: 'Parts & Bolts Supply' });
    const { ids } = await soldDeal({ project: 'crm', owner: 'rep2', account: 'Parts & Bolts Supply', contracts: [{ name: 'Boltwatch maintenance' }] });
    const [id] = ids;
    const namesAccount = new RegExp(`/crm/accounts/${parts}\\b|account=${parts}\\b`);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/accounts/${parts}`)).status).toBe(404);
    for (const url of ['/crm/contracts.json?q=boltwatch', '/projects/crm/crm/contracts.json?q=boltwatch']) {
      expect((await rep2.get(url)).body.contracts).toEqual([expect.objectContaining({ id, account_id: null, account_name: null, account_hidden: true })]);
    }
    const detail = await rep2.get(`/crm/contracts/${id}.json`);
    expect(detail.status).toBe(200);
    expect(detail.body.contract).toMatchObject({ id, account_id: null, account_name: null, account_hidden: true });
    for (const url of ['/crm/contracts?q=boltwatch', `/crm/contracts/${id}`]) {
      const page = await rep2.get(url);
      expect(visibleText(page.text)).toContain('an account you cannot see');
      expect(visibleText(page.text)).not.toContain('Parts & Bolts');
      expect(page.text).not.toMatch(namesAccount);
    }

    const director = await Session.signIn(host.app, 'director');
    expect((await director.get('/crm/contracts.json?q=boltwatch')).body.contracts)
      .toEqual([expect.objectContaining({ id, account_id: parts, account_name: 'Parts & Bolts Supply', account_hidden: false })]);
    expect((await director.get(`/crm/contracts/${id}.json`)).body.contract).toMatchObject({ id, account_id: parts, account_hidden: false });
    expect((await director.get(`/crm/contracts/${id}`)).text).toContain(`href="/crm/contracts?account=${parts}"`);
  });

  test('the JSON gives a contract’s opportunity_id and quote_id only to those who may see the opportunity: to others the list and the contract say null and opportunity_hidden, and the pages name no opportunity', async () => {
    // The project manager sees every contract of the CRM project (view_contracts, every record); without
    // view_opportunities there, they see none of its opportunities.
    const { opp, ids } = await soldDeal({ project: 'crm', owner: 'rep2', account: 'Acme Manufacturing', contracts: [{ name: 'Hiddendeal licence' }, { name: 'Hiddendeal support' }] });
    const quote = Number((await knex()('crm_quotes').first('id')).id);
    await knex()('crm_contracts').whereIn('id', ids).update({ quote_id: quote });
    const oppName = (await knex()('crm_opportunities').where({ id: opp }).first('name')).name as string;
    const namesOpportunity = new RegExp(`/crm/opportunities/${opp}\\b|/crm/quotes/${quote}\\b`);
    const pmRole = (await knex()('roles').where({ name: 'Project manager' }).first('id')).id;
    await knex()('role_permissions').where({ role_id: pmRole, permission: 'view_opportunities' }).delete();
    try {
      const pm = await Session.signIn(host.app, 'pm');
      expect((await pm.get(`/crm/opportunities/${opp}`)).status).toBe(404);
      for (const url of ['/crm/contracts.json?q=hiddendeal', '/projects/crm/crm/contracts.json?q=hiddendeal']) {
        const rows = (await pm.get(url)).body.contracts;
        expect(rows).toHaveLength(2);
        for (const row of rows) expect(row).toMatchObject({ opportunity_id: null, opportunity_name: null, quote_id: null, opportunity_hidden: true });
      }
      const detail = await pm.get(`/crm/contracts/${ids[0]}.json`);
      expect(detail.status).toBe(200);
      expect(detail.body.contract).toMatchObject({ id: ids[0], opportunity_id: null, opportunity_name: null, quote_id: null, opportunity_hidden: true });
      for (const url of ['/crm/contracts?q=hiddendeal', `/crm/contracts/${ids[0]}`]) {
        const page = await pm.get(url);
        expect(page.status).toBe(200);
        expect(visibleText(page.text)).toContain('an opportunity you cannot see');
        expect(visibleText(page.text)).not.toContain(oppName);
        expect(page.text).not.toMatch(namesOpportunity);
      }
    } finally {
      await knex()('role_permissions').insert({ role_id: pmRole, permission: 'view_opportunities' });
    }
    const pm = await Session.signIn(host.app, 'pm');
    expect((await pm.get('/crm/contracts.json?q=hiddendeal')).body.contracts).toEqual(ids.map(() => expect.objectContaining({ opportunity_id: opp, quote_id: quote, opportunity_hidden: false })));
    expect((await pm.get(`/crm/contracts/${ids[0]}.json`)).body.contract).toMatchObject({ opportunity_id: opp, quote_id: quote, opportunity_hidden: false });
    const list = await pm.get('/crm/contracts?q=hiddendeal');
    expect(list.text).toContain(`href="/crm/opportunities/${opp}"`);
    expect(visibleText(list.text)).not.toContain('an opportunity you cannot see');
  });

  test('the contract list checks its opportunities in the statement that names its accounts: a page of many opportunities reads no more statements than one of one', async () => {
    await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: [{ name: 'Statementcount single' }] });
    for (const account of ['Acme Manufacturing', 'Nordic Retail Group', 'Globex Corporation']) {
      await soldDeal({ project: 'crm-europe', owner: 'rep1', account, contracts: [{ name: 'Statementmany licence' }] });
    }
    const rep1 = await Session.signIn(host.app, 'rep1');
    // Warmed first: the list's count and totals are kept between views (listNumbers).
    for (const q of ['statementcount', 'statementmany']) await rep1.get(`/crm/contracts?q=${q}`);
    const count = async (q: string) => (await statementsDuring(knex(), () => rep1.get(`/crm/contracts?q=${q}`))).statements.length;
    const one = await count('statementcount');
    const many = await count('statementmany');
    expect(many).toBe(one);
    const { statements } = await statementsDuring(knex(), () => rep1.get('/crm/contracts?q=statementmany'));
    expect(statements.filter((s) => /from ["`]crm_opportunities["`] as ["`]o["`]/.test(s.sql) && /union all/i.test(s.sql))).toHaveLength(1);
  });

  test('upsell from a time-based contract: prefilled with account, product and renewal dates; saved as a new opportunity', async () => {
    const { ids } = await soldDeal({ project: 'crm-europe', owner: 'rep1', account: 'Acme Manufacturing', contracts: [
      { name: 'Upsell licence', category: 'Software licences', starts: '2026-06-01', ends: '2027-06-01', amount: 480_000 },
      { name: 'Upsell consulting', kind: 'one_time', category: 'Implementation services' },
    ] });
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/contracts/${ids[0]}`)).text).toContain('id="create-upsell"');
    expect((await rep1.get(`/crm/contracts/${ids[1]}`)).text).not.toContain('id="create-upsell"');
    expect((await rep1.get(`/crm/contracts/${ids[1]}/upsell`)).status).toBe(404);
    const form = await rep1.get(`/crm/contracts/${ids[0]}/upsell`);
    expect(form.status).toBe(200);
    expect(form.text).toContain('value="Upsell: Upsell licence"');
    expect(form.text).toContain('name="expected_close_on" value="2027-06-01"');
    expect(form.text).toContain('value="4800.00"');
    expect(visibleText(form.text)).toContain('renewal from 2027-06-01');
    // Bad input comes back with the field named.
    const bad = await rep1.post(`/crm/contracts/${ids[0]}/upsell`, { name: '', amount: 'lots', expected_close_on: '2027-06-01' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="name"');
    expect(bad.text).toContain('data-field="amount"');
    const res = await rep1.post(`/crm/contracts/${ids[0]}/upsell`, { name: 'Acme – renewal 2027', amount: '5000', currency: 'EUR', expected_close_on: '2027-06-01', description: 'More seats' });
    expect(res.status).toBe(303);
    const created = await knex()('crm_opportunities').where({ name: 'Acme – renewal 2027' }).first();
    expect(res.headers.location).toBe(`/crm/opportunities/${created.id}`);
    expect(created).toMatchObject({ account_id: await idOf('crm_accounts', { name: 'Acme Manufacturing' }), project_id: host.demo.projects['crm-europe'].id, owner_id: host.demo.users.rep1.id });
    expect(Number(created.amount_minor)).toBe(500_000);
    const history = visibleText((await rep1.get(`/crm/contracts/${ids[0]}`)).text);
    expect(history).toContain(`Upsell opportunity : (empty) → Acme – renewal 2027 (#${created.id})`);
    // pm may view contracts but not add opportunities: no upsell for them.
    const pm = await Session.signIn(host.app, 'pm');
    expect((await pm.get(`/crm/contracts/${ids[0]}/upsell`)).status).toBe(404);
    expect((await pm.post(`/crm/contracts/${ids[0]}/upsell`, { name: 'x' })).status).toBe(404);
  });

  test('the upsell of a contract whose account the user may not see is made without it, and its form says so; those who may see it get it', async () => {
    // As in the JSON test above: rep2 sees the contract of their own opportunity, not the account (sales reps see their own).
    const parts = await idOf('crm_accounts', { name: 'Parts & Bolts Supply' });
    const { ids: [id] } = await soldDeal({ project: 'crm', owner: 'rep2', account: 'Parts & Bolts Supply', contracts: [{ name: 'Boltwatch renewal', ends: '2027-09-01' }] });
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/accounts/${parts}`)).status).toBe(404);
    const form = await rep2.get(`/crm/contracts/${id}/upsell`);
    expect(form.status).toBe(200);
    const text = visibleText(form.text);
    expect(text).toContain('The contract’s account is one you cannot see: the upsell opportunity is made without an account.');
    expect(text).not.toContain('Parts & Bolts');
    const json = (await rep2.get(`/crm/contracts/${id}/upsell.json`)).body;
    expect(json.values.account_id ?? '').toBe('');
    expect(json).toMatchObject({ account_hidden: true });
    const res = await rep2.post(`/crm/contracts/${id}/upsell`, { name: 'Boltwatch – renewal 2027', amount: '1000', currency: 'EUR', expected_close_on: '2027-09-01' });
    expect(res.status).toBe(303);
    const created = await knex()('crm_opportunities').where({ name: 'Boltwatch – renewal 2027' }).first();
    expect(res.headers.location).toBe(`/crm/opportunities/${created.id}`);
    expect(created).toMatchObject({ account_id: null, project_id: host.demo.projects.crm.id, owner_id: host.demo.users.rep2.id });
    expect((await rep2.get(res.headers.location)).status).toBe(200);
    // A JSON client is told too: the answer says the account was left out.
    const api = await rep2.agent.post(`/crm/contracts/${id}/upsell`).set('Accept', 'application/json').set('X-CSRF-Token', rep2.csrf)
      .send({ name: 'Boltwatch – renewal 2028', amount: '1000', currency: 'EUR' });
    expect(api.status).toBe(201);
    const apiCreated = await knex()('crm_opportunities').where({ name: 'Boltwatch – renewal 2028' }).first();
    expect(api.body).toEqual({ opportunity: { id: apiCreated.id, url: `/crm/opportunities/${apiCreated.id}` }, account_hidden: true });
    expect(apiCreated.account_id).toBeNull();

    const director = await Session.signIn(host.app, 'director');
    const directorForm = await director.get(`/crm/contracts/${id}/upsell`);
    expect(visibleText(directorForm.text)).toContain('For Parts & Bolts Supply');
    expect(visibleText(directorForm.text)).not.toContain('one you cannot see');
    expect((await director.get(`/crm/contracts/${id}/upsell.json`)).body).toMatchObject({ values: { account_id: String(parts) }, account_hidden: false });
    expect((await director.post(`/crm/contracts/${id}/upsell`, { name: 'Boltwatch – director’s renewal', amount: '1000', currency: 'EUR' })).status).toBe(303);
    expect(await knex()('crm_opportunities').where({ name: 'Boltwatch – director’s renewal' }).first()).toMatchObject({ account_id: parts });
    const directorApi = await director.agent.post(`/crm/contracts/${id}/upsell`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ name: 'Boltwatch – director’s renewal 2028', amount: '1000', currency: 'EUR' });
    expect(directorApi.status).toBe(201);
    expect(directorApi.body).toMatchObject({ account_hidden: false });
  });
});
