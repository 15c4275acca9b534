import type { Knex } from 'knex';
import request from 'supertest';
import { everyPage, lockVersionIn, Session, startTestHost, statementsDuring, visibleText, withPageSize, type TestHost } from '../helpers/app';
import { accountSearch } from '../../migrations/20261123_025_account_search';
import { ACCOUNT_NAME_INDEX } from '../../migrations/20261123_026_account_list_index';
import { accountFilterIndex, LIVE_NAME_INDEX } from '../../migrations/20261124_027_account_filter_index';
import { ACCOUNT_STREAM_INDEXES, accountStreamIndexes } from '../../migrations/20261124_028_account_stream_indexes';
import { accountStreamCovering } from '../../migrations/20261124_030_account_stream_covering';

let host: TestHost;
let companyType: number;
let requiredField: number;
let numberField: number;

beforeAll(async () => {
  host = await startTestHost();
  const knex = host.db.knex;
  companyType = Number((await knex('crm_account_types').where({ name: 'Company' }).first()).id);
  [requiredField] = (await knex('crm_custom_fields').insert({ entity: 'account', account_type_id: companyType, name: 'Contract region', field_format: 'text', is_required: true, position: 10 }).returning('id')).map((r) => Number(r.id ?? r));
  [numberField] = (await knex('crm_custom_fields').insert({ entity: 'account', account_type_id: companyType, name: 'Employees', field_format: 'number', is_required: false, position: 11 }).returning('id')).map((r) => Number(r.id ?? r));
});
afterAll(async () => { await host.close(); });
// The demo narrows sales reps to their own accounts and gives them a supervisor; each test here starts from
// "all" with no supervisors and sets what it needs.
beforeEach(async () => {
  await host.db.knex('crm_role_visibility').delete();
  await host.db.knex('crm_user_supervisors').delete();
});

const accountId = async (name: string) => Number((await host.db.knex('crm_accounts').where({ name }).first()).id);
const listedNames = (html: string) => [...html.matchAll(/<tr data-account="\d+">\s*<td><a href="\/crm\/accounts\/\d+">([^<]+)<\/a>/g)].map((m) => visibleText(m[1]));

/** Every name of a filtered account list, page by page, as `session` reads it. */
const allPagesOf = async (session: Session, filter: string) => everyPage(session, `/crm/accounts.json?${filter}`, 'accounts', 'name') as Promise<string[]>;

/**
 * Each filtered list read whole (one page of 500 holds every match: fetched and sorted) and then in pages of 2
 * (few among many: walked, on SQLite), with the statements of the second reading.
 */
async function wholeAndInPairs(session: Session, filters: string[]) {
  const knex = host.db.knex;
  const whole = new Map<string, string[]>();
  const inPairs = new Map<string, string[]>();
  await withPageSize(knex, 500, async () => {
    for (const f of filters) whole.set(f, await allPagesOf(session, f));
  });
  const { statements } = await statementsDuring(knex, () => withPageSize(knex, 2, async () => {
    for (const f of filters) inPairs.set(f, await allPagesOf(session, f));
  }));
  return { whole, inPairs, statements };
}

function companyForm(extra: Record<string, string | string[]> = {}) {
  return { account_type_id: String(companyType), name: 'Umbrella Corp', city: 'Raccoon City', [`custom_field_${requiredField}`]: 'North', ...extra };
}

describe('creating accounts (A1–A3)', () => {
  test('a rep creates a company account in a project: stored, linked, custom values saved, journaled, shown', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    await rep.refreshCsrf('/projects/crm-europe/crm/accounts/new');
    const res = await rep.post('/projects/crm-europe/crm/accounts', companyForm({ name: 'Umbrella Europe', [`custom_field_${numberField}`]: '250', email: 'ops@umbrella.example', favorite: '1' }));
    expect(res.status).toBe(303);
    const id = await accountId('Umbrella Europe');
    expect(res.headers.location).toBe(`/crm/accounts/${id}`);
    const links = await host.db.knex('crm_account_projects').where({ account_id: id }).pluck('project_id');
    expect(links).toEqual([host.demo.projects['crm-europe'].id]);
    const values = await host.db.knex('crm_custom_values').where({ record_type: 'account', record_id: id }).orderBy('custom_field_id').pluck('value');
    expect(values).toEqual(['North', '250']);
    const page = await rep.get(`/crm/accounts/${id}`);
    const text = visibleText(page.text);
    expect(text).toContain('Umbrella Europe');
    expect(text).toContain('Contract region North');
    expect(text).toContain('Employees 250');
    expect(text).toContain('Remove from my accounts');
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'account', journalized_id: id });
    expect(journal.map((j) => j.action)).toEqual(['create']);
    const list = await rep.get('/projects/crm-europe/crm/accounts');
    expect(listedNames(list.text)).toContain('Umbrella Europe');
  });

  test('a required custom field missing → 422 naming it, input kept, nothing stored', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const res = await rep.post('/crm/accounts', companyForm({ name: 'No Region Ltd', [`custom_field_${requiredField}`]: '', [`custom_field_${numberField}`]: 'lots' }));
    expect(res.status).toBe(422);
    expect(res.text).toContain(`data-field="custom_field_${requiredField}"`);
    expect(visibleText(res.text)).toContain('Contract region is required');
    expect(visibleText(res.text)).toContain('Employees must be a number');
    expect(res.text).toContain('value="No Region Ltd"');
    expect(await host.db.knex('crm_accounts').where({ name: 'No Region Ltd' }).first()).toBeUndefined();
  });

  test('personal accounts use first and last name; the name is built from them', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const personal = Number((await host.db.knex('crm_account_types').where({ name: 'Personal' }).first()).id);
    const missing = await rep.post('/crm/accounts', { account_type_id: String(personal), first_name: 'Ola' });
    expect(missing.status).toBe(422);
    expect(visibleText(missing.text)).toContain('Last name is required');
    const ok = await rep.post('/crm/accounts', { account_type_id: String(personal), first_name: 'Ola', last_name: 'Nordmann' });
    expect(ok.status).toBe(303);
    expect(await host.db.knex('crm_accounts').where({ name: 'Ola Nordmann', first_name: 'Ola', last_name: 'Nordmann' }).first()).toBeDefined();
  });

  test('bad input: over-long text, bad email and date, unknown industry, script in text rendered escaped', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const bad = await rep.post('/crm/accounts', companyForm({ name: 'x'.repeat(201), email: 'not-an-email', service_expires_on: '2026-02-30', industry_id: '999999' }));
    expect(bad.status).toBe(422);
    for (const field of ['name', 'email', 'service_expires_on', 'industry_id']) expect(bad.text).toContain(`data-field="${field}"`);
    const xss = await rep.post('/projects/crm-europe/crm/accounts', companyForm({ name: '<script>alert(1)</script> Ltd', note: '<img src=x onerror=alert(1)>' }));
    expect(xss.status).toBe(303);
    const page = await rep.get(xss.headers.location);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Ltd');
    expect(page.text).not.toContain('<img src=x');
  });

  test('JSON: create and read with an API key', async () => {
    const s = await Session.signIn(host.app, 'director');
    await s.post('/my/api_key');
    const key = /<code id="api-key">([0-9a-f]+)<\/code>/.exec((await s.get('/my/account')).text)![1];
    const created = await request(host.app).post('/projects/crm-asia/crm/accounts').set('X-API-Key', key).set('Accept', 'application/json')
      .send(companyForm({ name: 'Tokyo Trading' }));
    expect(created.status).toBe(201);
    expect(created.body.account).toMatchObject({ name: 'Tokyo Trading', city: 'Raccoon City', is_private: false });
    const invalid = await request(host.app).post('/crm/accounts').set('X-API-Key', key).set('Accept', 'application/json').send({ account_type_id: String(companyType) });
    expect(invalid.status).toBe(422);
    expect(invalid.body.fields).toHaveProperty('name');
    const read = await request(host.app).get(`/crm/accounts/${created.body.account.id}.json`).set('X-API-Key', key);
    expect(read.body.account.name).toBe('Tokyo Trading');
  });
});

/**
 * The request the account type select sends when it changes (views/accounts/form.ejs), built from its own htmx
 * attributes: a GET to its hx-get URL carrying the fields of the form it includes (`fields`: what the user has
 * typed, as the browser would send it), without the parameters hx-params leaves out.
 */
function typeSwitchRequest(session: Session, formHtml: string, fields: Record<string, string | string[]>) {
  const select = /<select name="account_type_id"([^>]*)>/.exec(formHtml)![1];
  const attr = (name: string) => new RegExp(`${name}="([^"]*)"`).exec(select)?.[1];
  // The select sits in the account form: the request carries that whole form.
  expect(['closest form', '#account-form']).toContain(attr('hx-include'));
  expect(attr('hx-trigger')).toBe('change');
  const left = (attr('hx-params') ?? '').replace(/^not /, '').split(',').map((p) => p.trim()).filter(Boolean);
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries({ _csrf: session.csrf, ...fields })) {
    if (!left.includes(name)) for (const v of [value].flat()) query.append(name, v);
  }
  return session.agent.get(`${attr('hx-get')}?${query}`).set('HX-Request', 'true');
}

describe('switching the account type on the form (A1)', () => {
  test('a new account’s form keeps everything typed so far and shows the new type’s fields', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const form = await rep.get('/projects/crm-europe/crm/accounts/new');
    const industry = String((await host.db.knex('crm_industries').first()).id);
    const res = await typeSwitchRequest(rep, form.text, {
      account_type_id: String(companyType), name: 'Typed & Kept AB', city: 'Malmö', industry_id: industry, is_key_account: '1',
      note: 'Met at the fair', [`custom_field_${numberField}`]: '40',
    });
    expect(res.status).toBe(200);
    expect(res.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(res.text).toContain('name="name" value="Typed &amp; Kept AB"');
    expect(res.text).toContain('name="city" value="Malmö"');
    expect(res.text).toContain(`<option value="${industry}" selected>`);
    expect(res.text).toMatch(/name="is_key_account" value="1" checked/);
    expect(visibleText(res.text)).toContain('Met at the fair');
    expect(res.text).toContain(`name="custom_field_${numberField}" value="40"`);
    expect(visibleText(res.text)).toContain('Contract region');
    expect(res.text).toContain(`<option value="${companyType}" selected>`);
    // The form still posts to the project's accounts, and the token never travels in the address.
    expect(res.text).toContain('action="/projects/crm-europe/crm/accounts"');
    expect(res.request.url).not.toContain('_csrf');
  });

  test('an account’s edit form keeps what was typed (and the version it was loaded at) when the type changes', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Initech');
    const edit = await director.get(`/crm/accounts/${id}/edit`);
    const account = (await host.db.knex('crm_account_types').where({ name: 'Account' }).first()).id;
    const res = await typeSwitchRequest(director, edit.text, { account_type_id: String(account), name: 'Initech Renamed', lock_version: lockVersionIn(edit.text), city: 'Austin' });
    expect(res.status).toBe(200);
    expect(res.text).toContain(`<option value="${account}" selected>`);
    expect(res.text).toContain('name="name" value="Initech Renamed"');
    expect(res.text).toContain('name="city" value="Austin"');
    expect(lockVersionIn(res.text)).toBe(lockVersionIn(edit.text));
    // Nothing is saved by switching.
    expect((await host.db.knex('crm_accounts').where({ id }).first()).name).toBe('Initech');
  });
});

describe('switching between a personal and a company account type keeps the name typed (A1)', () => {
  const typeId = async (name: string) => String((await host.db.knex('crm_account_types').where({ name }).first()).id);

  test('Personal → Company: the first and last name typed become the company name', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const form = await rep.get('/crm/accounts/new');
    expect(form.text).toContain(`<option value="${await typeId('Personal')}" selected>`);
    const res = await typeSwitchRequest(rep, form.text, { account_type_id: String(companyType), first_name: 'Ola', last_name: 'Nordmann', city: 'Oslo' });
    expect(res.status).toBe(200);
    expect(res.text).toContain('name="name" value="Ola Nordmann"');
    expect(res.text).not.toContain('name="first_name"');
    expect(res.text).toContain('name="city" value="Oslo"');
    // A name already typed for the company is not overwritten; a last name alone carries across too.
    const named = await typeSwitchRequest(rep, form.text, { account_type_id: String(companyType), name: 'Nordmann Consulting', first_name: 'Ola', last_name: 'Nordmann' });
    expect(named.text).toContain('name="name" value="Nordmann Consulting"');
    const lastOnly = await typeSwitchRequest(rep, form.text, { account_type_id: String(companyType), first_name: ' ', last_name: 'Nordmann' });
    expect(lastOnly.text).toContain('name="name" value="Nordmann"');
  });

  test('Company → Personal: a name of two words is split into first and last name, any other stays whole in the last name', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const form = await rep.get('/crm/accounts/new');
    const personal = await typeId('Personal');
    const split = await typeSwitchRequest(rep, form.text, { account_type_id: personal, name: 'Kari  Nordmann' });
    expect(split.status).toBe(200);
    expect(split.text).toContain('name="first_name" value="Kari"');
    expect(split.text).toContain('name="last_name" value="Nordmann"');
    expect(split.text).not.toContain('name="name"');
    for (const name of ['Jan van der Berg', 'Madonna']) {
      const whole = await typeSwitchRequest(rep, form.text, { account_type_id: personal, name });
      expect(whole.text).toContain('name="first_name" value=""');
      expect(whole.text).toContain(`name="last_name" value="${name}"`);
    }
    // First and last names already typed are kept as they are.
    const typed = await typeSwitchRequest(rep, form.text, { account_type_id: personal, name: 'Kari Nordmann', first_name: 'K.', last_name: '' });
    expect(typed.text).toContain('name="first_name" value="K."');
    expect(typed.text).toContain('name="last_name" value=""');
    // The round trip back and forth, then saving, gives the name typed first.
    const back = await typeSwitchRequest(rep, split.text, { account_type_id: String(companyType), first_name: 'Kari', last_name: 'Nordmann' });
    expect(back.text).toContain('name="name" value="Kari Nordmann"');
    const saved = await rep.post('/crm/accounts', { account_type_id: personal, first_name: 'Kari', last_name: 'Nordmann' });
    expect(saved.status).toBe(303);
    const row = await host.db.knex('crm_accounts').where({ name: 'Kari Nordmann' }).first();
    expect(row).toMatchObject({ first_name: 'Kari', last_name: 'Nordmann' });
    await host.db.knex('crm_accounts').where({ id: row.id }).delete();
  });
});

describe('accounts of partner users (A10)', () => {
  test('a partner user’s new account is their partner’s (they see only those): filled in with one partner, chosen with several, never cleared', async () => {
    const knex = host.db.knex;
    const pacific = Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id);
    const [atlantic] = (await knex('crm_partners').insert({ name: 'Atlantic Partners', project_id: host.demo.projects['crm-americas'].id, author_id: host.demo.users.director.id }).returning('id')).map((r) => Number(r.id ?? r));
    await knex('crm_partner_users').insert({ partner_id: pacific, user_id: host.demo.users.rep2.id });
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      const res = await rep2.post('/projects/crm-americas/crm/accounts', companyForm({ name: 'Partnered Ltd' }));
      expect(res.status).toBe(303);
      const id = await accountId('Partnered Ltd');
      expect((await knex('crm_accounts').where({ id }).first()).partner_id).toBe(pacific);
      const page = await rep2.get(res.headers.location);
      expect(page.status).toBe(200);
      expect(visibleText(page.text)).toContain('Partnered Ltd');
      const journal = await knex('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
        .where({ 'j.journalized_type': 'account', 'j.journalized_id': id, 'd.field': 'partner_id' }).first('d.new_value');
      expect(Number(journal.new_value)).toBe(pacific);
      // Clearing the partner would hide the account from its editor: refused, naming the field.
      const form = await rep2.get(`/crm/accounts/${id}/partner`);
      const cleared = await rep2.post(`/crm/accounts/${id}/partner`, { partner_id: '', lock_version: lockVersionIn(form.text) });
      expect(cleared.status).toBe(422);
      expect(cleared.text).toContain('data-field="partner_id"');
      expect(visibleText(cleared.text)).toContain('Choose your partner');
      expect((await knex('crm_accounts').where({ id }).first()).partner_id).toBe(pacific);

      // With two partners the form offers them and asks for one.
      await knex('crm_partner_users').insert({ partner_id: atlantic, user_id: host.demo.users.rep2.id });
      const newForm = visibleText((await rep2.get('/projects/crm-americas/crm/accounts/new')).text);
      expect(newForm).toContain('Atlantic Partners');
      expect(newForm).toContain('Pacific Partners');
      const unchosen = await rep2.post('/projects/crm-americas/crm/accounts', companyForm({ name: 'Unpartnered Ltd' }));
      expect(unchosen.status).toBe(422);
      expect(unchosen.text).toContain('data-field="partner_id"');
      expect(await knex('crm_accounts').where({ name: 'Unpartnered Ltd' })).toEqual([]);
      const chosen = await rep2.post('/projects/crm-americas/crm/accounts', companyForm({ name: 'Unpartnered Ltd', partner_id: String(atlantic) }));
      expect(chosen.status).toBe(303);
      expect((await knex('crm_accounts').where({ name: 'Unpartnered Ltd' }).first()).partner_id).toBe(atlantic);
      // Other users' form has no partner field.
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get('/projects/crm-europe/crm/accounts/new')).text).not.toContain('name="partner_id"');
    } finally {
      await knex('crm_partner_users').where({ user_id: host.demo.users.rep2.id }).delete();
      await knex('crm_accounts').whereIn('name', ['Partnered Ltd', 'Unpartnered Ltd']).delete();
      await knex('crm_partners').where({ id: atlantic }).delete();
    }
  });
});

describe('visibility (A4, S3)', () => {
  test('a private account is seen only by its creator — not even by admins — everywhere', async () => {
    const privateId = await accountId('Rick’s private prospect');
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/accounts/${privateId}`)).status).toBe(200);
    expect(listedNames((await rep1.get('/crm/accounts?q=private')).text)).toEqual(['Rick’s private prospect']);
    const admin = await Session.signIn(host.app, 'admin');
    for (const url of [`/crm/accounts/${privateId}`, `/crm/accounts/${privateId}.json`, `/crm/accounts/${privateId}/edit`]) {
      expect((await admin.get(url)).status).toBe(404);
    }
    expect(listedNames((await admin.get('/crm/accounts?q=private')).text)).toEqual([]);
    expect((await admin.post(`/crm/accounts/${privateId}`, companyForm({ lock_version: '0' }))).status).toBe(404);
    expect((await admin.post(`/crm/accounts/${privateId}/delete`, { confirm: '1' })).status).toBe(404);
    expect((await admin.post(`/crm/accounts/${privateId}/favorite`, { favorite: '1' })).status).toBe(404);
    const asParent = await admin.post('/crm/accounts', companyForm({ name: 'Child of private', parent_id: String(privateId) }));
    expect(asParent.status).toBe(422);
    expect(asParent.text).toContain('data-field="parent_id"');
  });

  test('only the creator may make an account private', async () => {
    const id = await accountId('Nordic Retail Group'); // created by the director
    const rep1 = await Session.signIn(host.app, 'rep1');
    const edit = await rep1.get(`/crm/accounts/${id}/edit`);
    expect(edit.status).toBe(200);
    expect(edit.text).not.toContain('name="is_private"');
    const lock = (await host.db.knex('crm_accounts').where({ id }).first()).lock_version;
    const res = await rep1.post(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Nordic Retail Group', is_private: '1', lock_version: String(lock), [`custom_field_${requiredField}`]: 'North' });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('Only the creator of an account can make it private or public');
    expect(Boolean((await host.db.knex('crm_accounts').where({ id }).first()).is_private)).toBe(false);
  });

  test('users see the accounts of their projects; other projects answer 404; global accounts are seen by all', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const names = listedNames((await rep1.get('/crm/accounts')).text);
    expect(names).toEqual(expect.arrayContaining(['Acme Manufacturing', 'Nordic Retail Group', 'webshop.example', 'Parts & Bolts Supply']));
    expect(names).not.toContain('Globex Corporation');
    expect((await rep1.get(`/crm/accounts/${await accountId('Globex Corporation')}`)).status).toBe(404);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect(listedNames((await rep2.get('/crm/accounts')).text)).toEqual(expect.arrayContaining(['Globex Corporation', 'webshop.example']));
    expect(listedNames((await rep2.get('/crm/accounts')).text)).not.toContain('Acme Manufacturing');
  });

  test("'own' visibility for a role limits reps to the accounts they manage or created", async () => {
    const role = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    await host.db.knex('crm_role_visibility').insert({ role_id: role.id, entity: 'accounts', level: 'own' });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const names = listedNames((await rep1.get('/crm/accounts')).text);
      expect(names).toContain('Acme Manufacturing'); // managed by rep1
      expect(names).not.toContain('Parts & Bolts Supply'); // created by the director, in the CRM project
      expect((await rep1.get(`/crm/accounts/${await accountId('Parts & Bolts Supply')}`)).status).toBe(404);
    } finally {
      await host.db.knex('crm_role_visibility').where({ role_id: role.id }).delete();
    }
  });

  test("a supervisor with 'own + subordinates' sees a subordinate's accounts but cannot edit them", async () => {
    const role = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    await host.db.knex('crm_role_visibility').insert({ role_id: role.id, entity: 'accounts', level: 'subordinates' });
    await host.db.knex('crm_user_supervisors').insert({ user_id: host.demo.users.rep2.id, supervisor_id: host.demo.users.rep1.id });
    // rep1 joins Americas so Globex (managed by rep2) is in a project of theirs.
    await host.db.knex('members').insert({ project_id: host.demo.projects['crm-americas'].id, user_id: host.demo.users.rep1.id, role_id: role.id });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const globex = await accountId('Globex Corporation');
      expect((await rep1.get(`/crm/accounts/${globex}`)).status).toBe(200);
      expect((await rep1.get(`/crm/accounts/${globex}`)).text).not.toContain('id="edit-account"');
      expect((await rep1.get(`/crm/accounts/${globex}/edit`)).status).toBe(403);
      const initech = await accountId('Initech'); // also rep2's
      expect(listedNames((await rep1.get('/crm/accounts?q=initech')).text)).toEqual(['Initech']);
      expect((await rep1.post(`/crm/accounts/${initech}`, { account_type_id: String(companyType), name: 'Hijacked', lock_version: '0' })).status).toBe(403);
      expect((await host.db.knex('crm_accounts').where({ id: initech }).first()).name).toBe('Initech');
    } finally {
      await host.db.knex('crm_role_visibility').where({ role_id: role.id }).delete();
      await host.db.knex('crm_user_supervisors').delete();
      await host.db.knex('members').where({ project_id: host.demo.projects['crm-americas'].id, user_id: host.demo.users.rep1.id }).delete();
    }
  });

  test('a supervisor’s team is read once per request, however many kinds of records the page scopes by it', async () => {
    const role = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    await host.db.knex('crm_role_visibility').insert(['accounts', 'partners', 'opportunities'].map((entity) => ({ role_id: role.id, entity, level: 'subordinates' })));
    await host.db.knex('crm_user_supervisors').insert({ user_id: host.demo.users.rep2.id, supervisor_id: host.demo.users.rep1.id });
    await host.db.knex('members').insert({ project_id: host.demo.projects['crm-americas'].id, user_id: host.demo.users.rep1.id, role_id: role.id });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const globex = await accountId('Globex Corporation'); // rep2's: seen through the team
      const { result, statements } = await statementsDuring(host.db.knex, () => rep1.get(`/crm/accounts/${globex}`));
      expect(result.status).toBe(200);
      expect(visibleText(result.text)).toContain('Globex Corporation');
      expect(statements.filter((s) => /crm_user_supervisors/.test(s.sql))).toHaveLength(1);
    } finally {
      await host.db.knex('crm_role_visibility').where({ role_id: role.id }).delete();
      await host.db.knex('crm_user_supervisors').delete();
      await host.db.knex('members').where({ project_id: host.demo.projects['crm-americas'].id, user_id: host.demo.users.rep1.id }).delete();
    }
  });
});

describe('list: search, filters, sorting, pagination, saved filters (A5)', () => {
  test('search is case-insensitive and treats % and _ literally; SQL metacharacters are harmless', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect(listedNames((await director.get('/crm/accounts?q=ACME')).text)).toEqual(['Acme Manufacturing', 'Acme Service Center']);
    expect(listedNames((await director.get('/crm/accounts?q=%25')).text)).toEqual([]);
    const sql = await director.get("/crm/accounts?q=%27%20OR%201%3D1%20--&type=1%20OR%201=1&sort=name;DROP%20TABLE%20crm_accounts");
    expect(sql.status).toBe(200);
    expect(listedNames(sql.text)).toEqual([]);
    expect(await host.db.knex.schema.hasTable('crm_accounts')).toBe(true);
  });

  test('filters by industry, key account, customers, suppliers, group and manager; sorting by city both ways', async () => {
    const director = await Session.signIn(host.app, 'director');
    const software = (await host.db.knex('crm_industries').where({ name: 'Software' }).first()).id;
    expect(listedNames((await director.get(`/crm/accounts?industry=${software}`)).text).sort()).toEqual(['Globex Corporation', 'Initech']);
    expect(listedNames((await director.get('/crm/accounts?key_account=1')).text)).toEqual(['Acme Manufacturing', 'Globex Corporation']);
    expect(listedNames((await director.get('/crm/accounts?suppliers=1')).text)).toEqual(['Parts & Bolts Supply']);
    expect(listedNames((await director.get('/crm/accounts?customers=1&q=c')).text)).toEqual(expect.arrayContaining(['Acme Manufacturing', 'Globex Corporation']));
    // A customer has a customer number: neither an empty one nor none counts.
    const type = (await host.db.knex('crm_account_types').where({ name: 'Company' }).first()).id;
    const admin = host.demo.users.admin.id;
    await host.db.knex('crm_accounts').insert(['CN-77', '', null].map((number, i) => ({ account_type_id: type, name: `Numbered ${i} ${number ?? 'none'}`, customer_number: number, author_id: admin })));
    expect(listedNames((await (await Session.signIn(host.app, 'admin')).get('/crm/accounts?customers=1&q=numbered')).text)).toEqual(['Numbered 0 CN-77']);
    const top = (await host.db.knex('crm_account_groups').where({ name: 'Top 10 customers' }).first()).id;
    expect(listedNames((await director.get(`/crm/accounts?group=${top}`)).text)).toEqual(['Acme Manufacturing', 'Globex Corporation']);
    expect(listedNames((await director.get(`/crm/accounts?manager=${host.demo.users.rep2.id}`)).text)).toEqual(['Globex Corporation', 'Initech']);
    const asc = listedNames((await director.get('/crm/accounts?sort=city&q=o')).text);
    const desc = listedNames((await director.get('/crm/accounts?sort=city&dir=desc&q=o')).text);
    expect(desc).toEqual([...asc].reverse());
  });

  test('the list paginates with the page size setting, and the JSON says so', async () => {
    const director = await Session.signIn(host.app, 'director');
    await withPageSize(host.db.knex, 3, async () => {
      const page1 = await director.get('/crm/accounts.json');
      expect(page1.body.accounts).toHaveLength(3);
      expect(page1.body.pagination.per_page).toBe(3);
      const page2 = await director.get('/crm/accounts.json?page=2');
      expect(page2.body.accounts.map((a: { id: number }) => a.id)).not.toContain(page1.body.accounts[0].id);
      const html = await director.get('/crm/accounts');
      expect(html.text).toContain('rel="next"');
      const beyond = await director.get('/crm/accounts.json?page=9999');
      expect(beyond.body.pagination.page).toBe(beyond.body.pagination.pages);
    });
  });

  test('paging by name starts each page where the list was last seen to start it, and forgets that on every write', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const walk = async (dir: 'asc' | 'desc' = 'asc') => {
      const names: string[] = [];
      const first = (await director.get(`/crm/accounts.json?dir=${dir}`)).body;
      for (let page = 1; page <= first.pagination.pages; page++) {
        const body = (await director.get(`/crm/accounts.json?dir=${dir}&page=${page}`)).body;
        names.push(...body.accounts.map((a: { name: string }) => a.name));
      }
      return { names, total: first.pagination.total as number };
    };
    const ordered = (names: string[]) => [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    await withPageSize(knex, 3, async () => {
      const byOffset = await walk();
      expect(byOffset.names).toHaveLength(byOffset.total);
      expect(byOffset.names).toEqual(ordered(byOffset.names));
      expect(new Set(byOffset.names).size).toBe(byOffset.names.length);
      // The second walk starts every page from what the first one saw; the pages must be the same.
      expect((await walk()).names).toEqual(byOffset.names);
      expect((await walk('desc')).names).toEqual([...byOffset.names].reverse());

      const moved = byOffset.names[0];
      await knex('crm_accounts').where({ name: moved }).update({ name: 'zzz moved to the end' });
      const afterRename = await walk();
      expect(afterRename.names).toEqual([...byOffset.names.slice(1), 'zzz moved to the end']);

      const type = await knex('crm_account_types').where({ name: 'Company' }).first('id');
      const [row] = await knex('crm_accounts').insert({ account_type_id: type.id, name: 'AAA new at the front', author_id: host.demo.users.admin.id }).returning('id');
      await knex('crm_account_projects').insert({ account_id: Number(row.id ?? row), project_id: host.demo.projects['crm-europe'].id });
      const afterInsert = await walk();
      expect(afterInsert.total).toBe(byOffset.total + 1);
      expect(afterInsert.names).toEqual(['AAA new at the front', ...afterRename.names]);
      await knex('crm_accounts').where({ name: 'zzz moved to the end' }).update({ name: moved });
    });
  });

  test('a filtered list has the same pages whether it walks the name order or fetches the matches and sorts them', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const software = (await knex('crm_industries').where({ name: 'Software' }).first()).id;
    const filters = ['q=o', 'q=a', 'customers=1', `industry=${software}`, 'q=e&customers=1', 'q=zzzz-nothing'];
    const { whole, inPairs, statements } = await wholeAndInPairs(director, filters);
    expect(whole.get('q=o')!.length).toBeGreaterThan(3);
    expect(whole.get('q=zzzz-nothing')).toEqual([]);
    expect(inPairs).toEqual(whole);
    const walked = statements.filter(({ sql }) => /indexed by/i.test(sql));
    if (host.db.kind === 'sqlite') expect(walked.length).toBeGreaterThan(0);
    else expect(walked).toEqual([]);
  });

  test('a sales rep’s filtered list has the same pages whether it walks their own accounts’ streams or fetches the matches', async () => {
    const knex = host.db.knex;
    const role = await knex('roles').where({ name: 'Sales rep' }).first();
    await knex('crm_role_visibility').insert({ role_id: role.id, entity: 'accounts', level: 'own' });
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep1Id = (await knex('users').where({ login: 'rep1' }).first()).id;
    const europe = host.demo.projects['crm-europe'].id;
    // Enough accounts of rep1's own (managed, created, global) among others' for pages of 2 to walk.
    const made: number[] = [];
    const type = (await knex('crm_account_types').first()).id;
    for (let i = 0; i < 12; i++) {
      const [row] = await knex('crm_accounts').insert({
        name: `Stream ${['Alder', 'Birch', 'Cedar', 'Elm'][i % 4]} ${i}`, account_type_id: type, organization: i % 3 ? 'Stream works' : 'Other works',
        account_manager_id: i % 4 === 0 ? rep1Id : null, author_id: i % 4 === 1 ? rep1Id : null, is_global: i % 4 === 2, lock_version: 0,
      }).returning('id');
      const id = Number(typeof row === 'object' ? row.id : row);
      made.push(id);
      await knex('crm_account_projects').insert({ account_id: id, project_id: europe });
    }
    const filters = ['q=stream', 'q=works', 'q=stream%20a', 'q=o', 'customers=1', 'q=zzzz-nothing', `q=stream&type=${type}&key_account=1`, 'q=o&suppliers=1&expiring_days=30']
      .flatMap((f) => [`${f}&sort=name&dir=asc`, `${f}&sort=name&dir=desc`]);
    let read;
    try {
      read = await wholeAndInPairs(rep1, filters);
    } finally {
      await knex('crm_account_projects').whereIn('account_id', made).delete();
      await knex('crm_accounts').whereIn('id', made).delete();
    }
    const { whole, inPairs, statements } = read;
    // Managed, created and global: all three streams are in the answer; another's account is not.
    const found = whole.get('q=stream&sort=name&dir=asc');
    expect(found).toEqual(expect.arrayContaining(['Stream Alder 0', 'Stream Birch 1', 'Stream Cedar 2']));
    expect(found).not.toContain('Stream Elm 3');
    expect(whole.get('q=stream&sort=name&dir=desc')).toEqual([...found!].reverse());
    expect(inPairs).toEqual(whole);
    const streamed = statements.filter(({ sql }) => /indexed by crm_accounts_manager_name_index/i.test(sql) && / union /i.test(sql));
    if (host.db.kind === 'sqlite') expect(streamed.length).toBeGreaterThan(0);
    else expect(streamed).toEqual([]);
    // PostgreSQL: a few matches among many accounts are fetched whole and sorted (see fetchThenSort), never walked.
    const fetched = statements.filter(({ sql }) => /^with "matches" as materialized/i.test(sql));
    if (host.db.kind === 'postgres') expect(fetched.length).toBeGreaterThan(0);
    else expect(fetched).toEqual([]);
    // Migration 030: each stream tests the scope, the filters and the search from its index, and reads an account's
    // row only for the page (SQLite says COVERING when a walk needs nothing else from the table).
    const streamReads = new Set<string>();
    for (const { sql, bindings } of streamed) {
      const plan: { detail: string }[] = await knex.raw(`explain query plan ${sql}`, bindings as Knex.Value[]);
      for (const { detail } of plan) if (/_name_index/.test(detail) && /crm_accounts_(manager|author|global)_/.test(detail)) streamReads.add(detail.replace(/ \(.*$/, ''));
    }
    if (host.db.kind === 'sqlite') {
      expect([...streamReads].sort()).toEqual(['author', 'global', 'manager'].map((s) => `SEARCH a USING COVERING INDEX crm_accounts_${s}_name_index`));
    }
  });

  test('migration 027: SQLite’s name index carries the filter columns, PostgreSQL gets a live-accounts name index; rollback undoes it', async () => {
    const knex = host.db.knex;
    const columns = async (): Promise<string[]> => (host.db.kind === 'sqlite'
      ? (await knex.raw(`pragma index_info('${ACCOUNT_NAME_INDEX}')`)).map((r: { name: string }) => r.name)
      : /\(([^)]*)\)/.exec((await knex.raw('select indexdef from pg_indexes where indexname = ?', [ACCOUNT_NAME_INDEX])).rows[0].indexdef)![1].split(', '));
    const scope = ['deleted_at', 'name', 'id', 'is_private', 'author_id', 'is_global', 'account_manager_id'];
    const director = await Session.signIn(host.app, 'director');
    const listed = async () => listedNames((await director.get('/crm/accounts?customers=1')).text);
    const before = await listed();
    // PostgreSQL also gets a partial index of the live accounts by name, to walk in name order.
    const liveIndex = async (): Promise<string[]> => (host.db.kind === 'sqlite' ? [] : (await knex.raw(
      'select indexdef from pg_indexes where indexname = ?', [LIVE_NAME_INDEX])).rows.map((r: { indexdef: string }) => r.indexdef.replace(/^.* USING btree /, '')));
    const live = host.db.kind === 'sqlite' ? [] : ['(name, id) WHERE (deleted_at IS NULL)'];
    const widened = host.db.kind === 'sqlite' ? [...scope, 'industry_id', 'account_type_id', 'is_key_account', 'is_supplier', 'customer_number'] : scope;
    expect(await columns()).toEqual(widened);
    expect(await liveIndex()).toEqual(live);
    await accountFilterIndex.down(knex);
    expect(await columns()).toEqual(scope);
    expect(await liveIndex()).toEqual([]);
    await accountFilterIndex.up(knex);
    expect(await columns()).toEqual(widened);
    expect(await liveIndex()).toEqual(live);
    expect(before.length).toBeGreaterThan(0);
    expect(await listed()).toEqual(before);
  });

  test('migrations 028 and 030: SQLite gets the three stream indexes of live accounts in name order, carrying every column a walk tests; PostgreSQL none; rollback undoes each', async () => {
    const knex = host.db.knex;
    const streams = async (): Promise<string[]> => (host.db.kind === 'sqlite'
      ? (await knex('sqlite_master').where({ type: 'index', tbl_name: 'crm_accounts' }).whereIn('name', Object.values(ACCOUNT_STREAM_INDEXES)).orderBy('name').pluck('sql'))
        .map((sql: string) => sql.replace(/^.* on crm_accounts /i, ''))
      : (await knex.raw('select indexname from pg_indexes where indexname = any(?)', [Object.values(ACCOUNT_STREAM_INDEXES)])).rows);
    const shape = (leading: string, trailing: string[]) => `(${[leading, 'name', 'id', ...trailing].join(', ')}) where deleted_at is null`;
    const narrow = host.db.kind === 'sqlite' ? [shape('author_id', []), shape('is_global', []), shape('account_manager_id', [])] : [];
    const tested = ['deleted_at', 'is_private', 'author_id', 'account_manager_id', 'is_global', 'partner_id', 'industry_id', 'account_type_id', 'is_key_account',
      'is_supplier', 'customer_number', 'service_expires_on', 'organization', 'email', 'city'];
    const without = (column: string) => tested.filter((c) => c !== column);
    const covering = host.db.kind === 'sqlite'
      ? [shape('author_id', without('author_id')), shape('is_global', without('is_global')), shape('account_manager_id', without('account_manager_id'))]
      : [];
    const rep2 = await Session.signIn(host.app, 'rep2');
    const listed = async () => listedNames((await rep2.get('/crm/accounts?q=o&customers=1')).text);
    const before = await listed();
    expect(await streams()).toEqual(covering);
    await accountStreamCovering.down(knex);
    expect(await streams()).toEqual(narrow);
    await accountStreamIndexes.down(knex);
    expect(await streams()).toEqual([]);
    await accountStreamIndexes.up(knex);
    expect(await streams()).toEqual(narrow);
    await accountStreamCovering.up(knex);
    expect(await streams()).toEqual(covering);
    expect(before.length).toBeGreaterThan(0);
    expect(await listed()).toEqual(before);
  });

  test('saved filters: mine, shared with everyone, and only the owner deletes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const saved = await rep1.post('/crm/accounts/filters', { filter_name: 'My key accounts', key_account: '1', is_shared: '1' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe('/crm/accounts?key_account=1');
    const mine = await rep1.get('/crm/accounts');
    expect(mine.text).toContain('href="/crm/accounts?key_account=1">My key accounts</a>');
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get('/crm/accounts')).text).toContain('My key accounts');
    const id = (await host.db.knex('crm_saved_filters').where({ name: 'My key accounts' }).first()).id;
    expect((await rep2.post(`/crm/accounts/filters/${id}/delete`)).status).toBe(404);
    expect((await rep1.post(`/crm/accounts/filters/${id}/delete`)).status).toBe(303);
    const nameless = await rep1.post('/crm/accounts/filters', { filter_name: ' ' });
    expect(nameless.status).toBe(422);
  });

  test('a saved filter’s switched-off industry still filters and stays selected; deleted types, industries, groups and managers are left out, and the list says so', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const [{ industry_id: industryId }] = await knex('crm_accounts').whereNotNull('industry_id').groupBy('industry_id').orderBy('industry_id').select('industry_id').limit(1);
    const before = listedNames((await director.get(`/crm/accounts?industry=${industryId}`)).text);
    expect(before.length).toBeGreaterThan(0);
    await knex('crm_industries').where({ id: industryId }).update({ active: false });
    try {
      const page = await director.get(`/crm/accounts?industry=${industryId}`);
      expect(listedNames(page.text)).toEqual(before);
      expect(page.text).toMatch(new RegExp(`<option value="${industryId}" selected>[^<]+ \\(switched off\\)</option>`));
      expect(visibleText(page.text)).not.toContain('left out');
      // Not offered when no filter uses it.
      const industrySelect = /<select name="industry"[\s\S]*?<\/select>/.exec((await director.get('/crm/accounts')).text)![0];
      expect(industrySelect).toContain('All industries');
      expect(industrySelect).not.toContain(`<option value="${industryId}"`);
    } finally {
      await knex('crm_industries').where({ id: industryId }).update({ active: true });
    }
    const all = listedNames((await director.get('/crm/accounts')).text);
    const gone = await director.get('/crm/accounts?type=999999&industry=999999&manager=999999&group=999999');
    expect(gone.status).toBe(200);
    expect(visibleText(gone.text)).toContain('Part of this filter no longer applies and was left out: a type that no longer exists, an industry that no longer exists, a group that no longer exists, an account manager who no longer exists.');
    expect(listedNames(gone.text)).toEqual(all);
    const json = await director.get('/crm/accounts.json?group=999999');
    expect(json.body.left_out_of_filter).toEqual(['a group that no longer exists']);
    expect(json.body.filters).toEqual({});
  });

  test('a second saved filter under a name one already uses is refused, naming it; another user may use the name', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/crm/accounts/filters', { filter_name: 'Öresund customers', q: 'acme' })).status).toBe(303);
    const again = await rep1.post('/crm/accounts/filters', { filter_name: ' öresund CUSTOMERS ', q: 'globex' });
    expect(again.status).toBe(422);
    expect(visibleText(again.text)).toContain('You already have a saved filter named “Öresund customers”');
    const stored = await host.db.knex('crm_saved_filters').where({ entity: 'accounts' }).whereIn('name', ['Öresund customers', 'öresund CUSTOMERS']);
    expect(stored.map((f) => JSON.parse(f.params))).toEqual([{ q: 'acme' }]);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.post('/crm/accounts/filters', { filter_name: 'Öresund customers', q: 'initech' })).status).toBe(303);
    await host.db.knex('crm_saved_filters').where({ name: 'Öresund customers' }).delete();
  });
});

describe('editing, locking, deleting (A6, O7, P6)', () => {
  test('an edit is journaled field by field and shown on the History tab', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Sakura Health');
    const edit = await director.get(`/crm/accounts/${id}/edit`);
    const lock = /name="lock_version" value="(\d+)"/.exec(edit.text)![1];
    const res = await director.post(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Sakura Health KK', city: 'Kyoto', country: 'Japan', lock_version: lock, [`custom_field_${requiredField}`]: 'Kansai' });
    expect(res.status).toBe(303);
    const history = visibleText((await director.get(`/crm/accounts/${id}?tab=history`)).text);
    expect(history).toContain('Name : Sakura Health → Sakura Health KK');
    expect(history).toContain('City : Osaka → Kyoto');
    expect(history).toContain('Contract region : (empty) → Kansai');
    expect(history).toContain('Diane Director');
  });

  test('a stale save answers 409 with a message and the user’s input kept; nothing changes', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Initech');
    const lock = (await host.db.knex('crm_accounts').where({ id }).first()).lock_version;
    const first = await director.post(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Initech Inc', lock_version: String(lock), [`custom_field_${requiredField}`]: 'South' });
    expect(first.status).toBe(303);
    const second = await director.htmxPost(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Initech Global', city: 'Dallas', lock_version: String(lock), [`custom_field_${requiredField}`]: 'South', _csrf: director.csrf });
    expect(second.status).toBe(409);
    expect(visibleText(second.text)).toContain('was changed by someone else');
    expect(second.text).toContain('value="Initech Global"');
    expect(second.text).toContain('value="Dallas"');
    expect((await host.db.knex('crm_accounts').where({ id }).first()).name).toBe('Initech Inc');
    // The form shown again carries the current version: saving the reviewed input again is possible.
    expect(lockVersionIn(second.text)).toBe(String(lock + 1));
    const again = await director.post(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Initech Global', city: 'Dallas', lock_version: lockVersionIn(second.text), [`custom_field_${requiredField}`]: 'South' });
    expect(again.status).toBe(303);
    expect((await host.db.knex('crm_accounts').where({ id }).first()).name).toBe('Initech Global');
  });

  test('delete is soft and needs confirmation; admins list and restore deleted accounts', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Parts & Bolts Supply');
    expect((await director.post(`/crm/accounts/${id}/delete`, {})).status).toBe(422);
    const res = await director.post(`/crm/accounts/${id}/delete`, { confirm: '1' });
    expect(res.status).toBe(303);
    expect((await host.db.knex('crm_accounts').where({ id }).first()).deleted_at).not.toBeNull();
    expect((await director.get(`/crm/accounts/${id}`)).status).toBe(404);
    expect((await director.get('/crm/accounts/deleted')).status).toBe(404);
    const admin = await Session.signIn(host.app, 'admin');
    expect(visibleText((await admin.get('/crm/accounts/deleted')).text)).toContain('Parts & Bolts Supply');
    expect((await admin.post(`/crm/accounts/${id}/restore`)).status).toBe(303);
    expect((await director.get(`/crm/accounts/${id}`)).status).toBe(200);
    const actions = await host.db.knex('crm_journals').where({ journalized_type: 'account', journalized_id: id }).orderBy('id').pluck('action');
    expect(actions.slice(-2)).toEqual(['delete', 'restore']);
  });

  test('sidebar actions through htmx: favourite, add to project, add to group — fragments with HX-Trigger', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Acme Manufacturing');
    const fav = await director.htmxPost(`/crm/accounts/${id}/favorite`, { favorite: '1' });
    expect(fav.status).toBe(200);
    expect(fav.headers['hx-trigger']).toBe('crm:accountSaved');
    expect(fav.text).not.toContain('<html');
    expect(visibleText(fav.text)).toContain('Remove from my accounts');
    const asia = host.demo.projects['crm-asia'];
    const added = await director.htmxPost(`/crm/accounts/${id}/projects`, { project_id: String(asia.id) });
    expect(added.status).toBe(200);
    expect(await host.db.knex('crm_account_projects').where({ account_id: id, project_id: asia.id }).first()).toBeDefined();
    const nordics = (await host.db.knex('crm_account_groups').where({ name: 'Nordics' }).first()).id;
    const internalProject = host.demo.projects.internal;
    expect((await director.htmxPost(`/crm/accounts/${id}/projects`, { project_id: String(internalProject.id) })).status).toBe(404);
    const grouped = await director.post(`/crm/accounts/${id}/groups`, { group_id: String(nordics) });
    expect(grouped.status).toBe(303);
    const page = await director.get(`/crm/accounts/${id}?tab=projects`);
    expect(visibleText(page.text)).toContain('Asia');
    expect(page.text).toContain('https://www.openstreetmap.org/search?query=Sveav%C3%A4gen%201%2C%20111%2057%2C%20Stockholm%2C%20Sweden');
  });

  test('adding an account to a project or group it is already in changes nothing, journals nothing, and says so', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const [row] = await knex('crm_accounts').insert({ account_type_id: companyType, name: 'Twice Linked Ltd', author_id: host.demo.users.director.id, account_manager_id: host.demo.users.director.id }).returning('id');
    const id = Number(row.id ?? row);
    const asia = host.demo.projects['crm-asia'];
    const nordics = (await knex('crm_account_groups').where({ name: 'Nordics' }).first()).id;
    const entries = (field: string) => knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'account', 'j.journalized_id': id, 'd.field': field }).select('d.new_value');
    for (let i = 0; i < 2; i++) {
      expect((await director.htmxPost(`/crm/accounts/${id}/projects`, { project_id: String(asia.id) })).status).toBe(200);
      expect((await director.htmxPost(`/crm/accounts/${id}/groups`, { group_id: String(nordics) })).status).toBe(200);
    }
    expect(await entries('projects')).toEqual([{ new_value: asia.identifier }]);
    expect(await entries('groups')).toEqual([{ new_value: '+Nordics' }]);
    const again = await director.htmxPost(`/crm/accounts/${id}/projects`, { project_id: String(asia.id) });
    expect(visibleText(again.text)).toContain(`Already in ${asia.name}.`);
    expect(await knex('crm_account_projects').where({ account_id: id })).toHaveLength(1);
  });

  test('the Projects tab lists only the projects whose CRM the reader may open', async () => {
    const knex = host.db.knex;
    const [row] = await knex('crm_accounts').insert({ account_type_id: companyType, name: 'Two Regions Trading', author_id: host.demo.users.rep2.id, account_manager_id: host.demo.users.rep2.id }).returning('id');
    const id = Number(row.id ?? row);
    await knex('crm_account_projects').insert(['crm-americas', 'crm-europe'].map((p) => ({ account_id: id, project_id: host.demo.projects[p].id })));
    const rep2 = await Session.signIn(host.app, 'rep2');
    const tab = await rep2.get(`/crm/accounts/${id}?tab=projects`);
    expect(tab.status).toBe(200);
    expect(tab.text).toContain('href="/projects/crm-americas/crm"');
    expect(tab.text).not.toContain('crm-europe');
    expect(visibleText(tab.text)).not.toContain('Europe');
    const director = await Session.signIn(host.app, 'director');
    expect((await director.get(`/crm/accounts/${id}?tab=projects`)).text).toContain('href="/projects/crm-europe/crm"');
  });

  test('the History tab names the projects an account was created in and added to only where the reader may open their CRM', async () => {
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.post('/projects/crm-americas/crm/accounts', companyForm({ name: 'Two Coasts Trading' }))).status).toBe(303);
    const id = await accountId('Two Coasts Trading');
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post(`/crm/accounts/${id}/projects`, { project_id: String(host.demo.projects['crm-europe'].id) })).status).toBe(303);
    const historyOf = async (session: Session) => {
      const page = await session.get(`/crm/accounts/${id}?tab=history`);
      expect(page.status).toBe(200);
      return page.text;
    };
    // rep1 works in Europe, not in the Americas, where the account was created.
    const byRep1 = await historyOf(await Session.signIn(host.app, 'rep1'));
    expect(visibleText(byRep1)).toContain('Projects : (empty) → crm-europe');
    expect(visibleText(byRep1)).toContain('Projects : (empty) → a project you cannot see');
    expect(byRep1).not.toContain('crm-americas');
    expect(byRep1).not.toContain('Americas');
    const byDirector = visibleText(await historyOf(director));
    expect(byDirector).toContain('Projects : (empty) → crm-americas');
    expect(byDirector).toContain('Projects : (empty) → crm-europe');
    expect(byDirector).not.toContain('a project you cannot see');
  });

  test('values an admin switched off stay on the accounts that have them, and cannot be newly chosen', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const id = await accountId('Nordic Retail Group');
    const retail = (await knex('crm_industries').where({ name: 'Retail' }).first()).id;
    const nordics = (await knex('crm_account_groups').where({ name: 'Nordics' }).first()).id;
    await knex('crm_industries').where({ id: retail }).update({ active: false });
    await knex('crm_account_groups').where({ id: nordics }).update({ active: false });
    try {
      const edit = await director.get(`/crm/accounts/${id}/edit`);
      expect(edit.text).toMatch(new RegExp(`<option value="${retail}" selected>Retail</option>`));
      expect(edit.text).toMatch(new RegExp(`name="group_ids" value="${nordics}" checked`));
      const lock = (await knex('crm_accounts').where({ id }).first()).lock_version;
      const saved = await director.post(`/crm/accounts/${id}`, { account_type_id: String(companyType), name: 'Nordic Retail Group', industry_id: String(retail), group_ids: [String(nordics)], lock_version: String(lock), [`custom_field_${requiredField}`]: 'North' });
      expect(saved.status).toBe(303);
      expect((await knex('crm_accounts').where({ id }).first()).industry_id).toBe(retail);
      const other = await director.post('/crm/accounts', companyForm({ name: 'New Retailer', industry_id: String(retail), group_ids: [String(nordics)] }));
      expect(other.status).toBe(422);
      expect(other.text).toContain('data-field="industry_id"');
      expect(other.text).toContain('data-field="group_ids"');
    } finally {
      await knex('crm_industries').where({ id: retail }).update({ active: true });
      await knex('crm_account_groups').where({ id: nordics }).update({ active: true });
    }
  });

  test('a sub-account cannot become the parent of its own parent (no cycles)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const acme = await accountId('Acme Manufacturing');
    const center = await accountId('Acme Service Center');
    const lock = (await host.db.knex('crm_accounts').where({ id: acme }).first()).lock_version;
    const res = await director.post(`/crm/accounts/${acme}`, { account_type_id: String(companyType), name: 'Acme Manufacturing', parent_id: String(center), lock_version: String(lock), [`custom_field_${requiredField}`]: 'North' });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('An account cannot be placed under itself or one of its sub-accounts');
    const self = await director.post(`/crm/accounts/${acme}`, { account_type_id: String(companyType), name: 'Acme Manufacturing', parent_id: String(acme), lock_version: String(lock), [`custom_field_${requiredField}`]: 'North' });
    expect(self.status).toBe(422);
    const relations = visibleText((await director.get(`/crm/accounts/${acme}?tab=relations`)).text);
    expect(relations).toContain('Acme Service Center');
  });
});

describe('an account’s parent and partner the reader may not see (A6, A10)', () => {
  test('the account’s JSON gives their ids only to those who may see them, else null and parent_hidden / partner_hidden, as the page names neither; the edit form keeps them, and saving too', async () => {
    const knex = host.db.knex;
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/projects/crm-europe/crm/accounts', companyForm({ name: 'Kinship Traders' }))).status).toBe(303);
    const id = await accountId('Kinship Traders');
    const globex = await accountId('Globex Corporation'); // crm-americas: rep1 is not there
    const pacific = Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id); // crm-americas too
    await knex('crm_accounts').where({ id }).update({ parent_id: globex, partner_id: pacific });
    try {
      expect((await rep1.get(`/crm/accounts/${globex}`)).status).toBe(404);
      expect((await rep1.get(`/crm/partners/${pacific}`)).status).toBe(404);
      for (const tab of ['data', 'relations']) {
        const json = await rep1.get(`/crm/accounts/${id}.json?tab=${tab}`);
        expect(json.body.account).toMatchObject({ id, parent_id: null, parent_hidden: true, partner_id: null, partner_hidden: true });
        expect(JSON.stringify(json.body)).not.toContain('Globex');
      }
      const relations = visibleText((await rep1.get(`/crm/accounts/${id}?tab=relations`)).text);
      expect(relations).toContain('Parent account An account you cannot see');
      expect(relations).not.toContain('Globex');
      // The list's JSON gives neither.
      const [listed] = (await rep1.get('/crm/accounts.json?q=kinship')).body.accounts;
      expect(listed).toMatchObject({ id, name: 'Kinship Traders' });
      expect(listed).not.toHaveProperty('parent_id');
      expect(listed).not.toHaveProperty('partner_id');

      // The edit form holds the stored parent, so saving another field keeps it (and the partner, which "Assign to partner" sets).
      const form = await rep1.get(`/crm/accounts/${id}/edit`);
      expect(form.text).toContain(`name="parent_id" value="${globex}"`);
      const saved = await rep1.post(`/crm/accounts/${id}`, companyForm({ name: 'Kinship Traders', city: 'Riga', parent_id: String(globex), lock_version: lockVersionIn(form.text) }));
      expect(saved.status).toBe(303);
      expect(await knex('crm_accounts').where({ id }).first()).toMatchObject({ city: 'Riga', parent_id: globex, partner_id: pacific });

      const director = await Session.signIn(host.app, 'director');
      expect((await director.get(`/crm/accounts/${id}.json`)).body.account)
        .toMatchObject({ id, parent_id: globex, parent_hidden: false, partner_id: pacific, partner_hidden: false });
      expect(visibleText((await director.get(`/crm/accounts/${id}?tab=relations`)).text)).toContain('Parent account Globex Corporation');
      await knex('crm_accounts').where({ id }).update({ parent_id: null, partner_id: null });
      expect((await rep1.get(`/crm/accounts/${id}.json`)).body.account).toMatchObject({ id, parent_id: null, parent_hidden: false, partner_id: null, partner_hidden: false });
    } finally {
      await knex('crm_account_projects').where({ account_id: id }).delete();
      await knex('crm_accounts').where({ id }).update({ deleted_at: new Date().toISOString() });
    }
  });

  test('the account page reads as many statements for an account with a parent and a partner as for one without', async () => {
    const knex = host.db.knex;
    const rep1 = await Session.signIn(host.app, 'rep1');
    for (const name of ['Kinless Traders', 'Kinful Traders']) expect((await rep1.post('/projects/crm-europe/crm/accounts', companyForm({ name }))).status).toBe(303);
    const kinless = await accountId('Kinless Traders');
    const kinful = await accountId('Kinful Traders');
    await knex('crm_accounts').where({ id: kinful }).update({ parent_id: await accountId('Globex Corporation'), partner_id: Number((await knex('crm_partners').where({ name: 'Pacific Partners' }).first()).id) });
    try {
      const statementsOf = async (url: string) => {
        await rep1.get(url); // the small tables' caches are filled by the first reading
        return (await statementsDuring(knex, () => rep1.get(url))).statements.length;
      };
      expect(await statementsOf(`/crm/accounts/${kinful}.json`)).toBe(await statementsOf(`/crm/accounts/${kinless}.json`));
      expect(await statementsOf(`/crm/accounts/${kinful}`)).toBe(await statementsOf(`/crm/accounts/${kinless}`));
    } finally {
      await knex('crm_account_projects').whereIn('account_id', [kinless, kinful]).delete();
      await knex('crm_accounts').whereIn('id', [kinless, kinful]).update({ deleted_at: new Date().toISOString() });
    }
  });
});

describe('what every account page reads', () => {
  const SMALL_TABLES = /from ["`](crm_settings|crm_role_visibility|crm_partner_users|crm_account_types|crm_industries|crm_account_groups)["`]/;

  async function smallTableReads(load: () => Promise<unknown>): Promise<string[]> {
    const { statements } = await statementsDuring(host.db.knex, load);
    return statements.map((q) => q.sql).filter((sql) => SMALL_TABLES.test(sql));
  }

  test('settings, role levels, partner links and the form’s lookups are read again only after they change', async () => {
    const knex = host.db.knex;
    const role = await knex('roles').where({ name: 'Sales rep' }).first();
    const rep1 = await Session.signIn(host.app, 'rep1');
    await rep1.get('/crm/accounts/new');
    await rep1.get('/crm/accounts');
    expect(await smallTableReads(() => rep1.get('/crm/accounts/new'))).toEqual([]);
    expect(await smallTableReads(() => rep1.get('/crm/accounts'))).toEqual([]);

    // Each change, by any writer, is seen at the next page.
    const industry = await knex('crm_industries').where({ active: true }).orderBy('position').first();
    await knex('crm_industries').where({ id: industry.id }).update({ name: 'Renamed industry' });
    expect(visibleText((await rep1.get('/crm/accounts/new')).text)).toContain('Renamed industry');
    await knex('crm_role_visibility').insert({ role_id: role.id, entity: 'accounts', level: 'own' });
    await knex('crm_settings').insert({ name: 'page_size', value: '2', lock_version: 0 }).onConflict('name').merge();
    try {
      const names = listedNames((await rep1.get('/crm/accounts')).text);
      expect(names).toHaveLength(2);
      expect(names).not.toContain('Parts & Bolts Supply'); // the director's, hidden by "own"
    } finally {
      await knex('crm_industries').where({ id: industry.id }).update({ name: industry.name });
      await knex('crm_settings').where({ name: 'page_size' }).delete();
    }
  });
});

describe('a long account list', () => {
  test('is counted up to 10 000 rows: beyond, the page says "10000+" and the pages stop there', async () => {
    const knex = host.db.knex;
    const type = await knex('crm_account_types').where({ name: 'Company' }).first('id');
    const project = host.demo.projects['crm-asia'].id;
    const admin = host.demo.users.admin.id;
    for (let start = 0; start < 10_050; start += 450) {
      const batch = Array.from({ length: Math.min(450, 10_050 - start) }, (_, i) => ({ account_type_id: type.id, name: `Bulk ${String(start + i).padStart(5, '0')}`, author_id: admin }));
      const ids = (await knex('crm_accounts').insert(batch).returning('id')).map((r: { id: number } | number) => Number(typeof r === 'object' ? r.id : r));
      await knex('crm_account_projects').insert(ids.map((id) => ({ account_id: id, project_id: project })));
    }
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/projects/crm-asia/crm/accounts');
    expect(visibleText(page.text)).toContain('10000+ accounts');
    const json = await director.get('/projects/crm-asia/crm/accounts.json?page=999');
    expect(json.body.pagination).toEqual({ page: 400, pages: 400, total: 10_000, per_page: 25, capped: true });
    const narrowed = await director.get('/projects/crm-asia/crm/accounts.json?q=bulk%20100');
    expect(narrowed.body.pagination).toMatchObject({ total: 50, pages: 2 });
    expect(narrowed.body.pagination.capped).toBeUndefined();
  });
});

describe('text search on name, organization, email, city and customer number', () => {
  // Values no demo account (nor the long list's "Bulk 00000" rows) shares, so every expected list is exact.
  const searchable = {
    name: 'Zephyrquill Trading', organization: 'Quillmark Holdings', email: 'orders@vantablue.example', city: 'Trondheimsfjord', customer_number: 'CN-48213-XQ',
  };
  const symbols = '100% under_score "quoted" *star* OR NEAR(caret^) col:umn';
  // What a wildcard `%` or `_` (or FTS syntax) would wrongly match.
  const decoy = 'Decoy 1007 under-score quoted star';
  const search = async (s: Session, term: string) => listedNames((await s.get(`/crm/accounts?q=${encodeURIComponent(term)}`)).text);
  // SQLite's trigram index itself (the list re-checks every candidate, so a stale index shows only as a miss).
  const indexed = async (term: string): Promise<number[]> => (await host.db.knex.raw('select rowid as id from crm_accounts_search where crm_accounts_search match ?', [`"${term}"`]))
    .map((r: { id: number }) => Number(r.id));
  let director: Session;

  async function create(fields: Record<string, string>): Promise<number> {
    const res = await director.post('/projects/crm-asia/crm/accounts', companyForm(fields));
    expect(res.status).toBe(303);
    return Number(/\/crm\/accounts\/(\d+)$/.exec(res.headers.location)![1]);
  }

  async function edit(id: number, fields: Record<string, string>) {
    const lock = (await host.db.knex('crm_accounts').where({ id }).first()).lock_version;
    return director.post(`/crm/accounts/${id}`, companyForm({ lock_version: String(lock), ...fields }));
  }

  beforeAll(async () => {
    director = await Session.signIn(host.app, 'director');
    await create(searchable);
    await create({ name: symbols, city: 'Bergen' });
    await create({ name: decoy, city: 'Bergen' });
    await create({ name: 'Ärgerlich Oy', city: 'Turku' });
    await create({ name: 'Smørrebrød ApS', city: 'Odense' });
  });

  test('finds a substring from the middle of any of the five columns, whatever its case', async () => {
    expect(await search(director, 'yrqui')).toEqual([searchable.name]);
    expect(await search(director, 'YRQUI')).toEqual([searchable.name]);
    expect(await search(director, 'mark hold')).toEqual([searchable.name]);
    expect(await search(director, 'ntablu')).toEqual([searchable.name]);
    expect(await search(director, 'ondheimsF')).toEqual([searchable.name]);
    expect(await search(director, '-4821')).toEqual([searchable.name]);
    expect(await search(director, 'yrquix')).toEqual([]);
  });

  test('one or two characters still search every column', async () => {
    expect(await search(director, 'xQ')).toEqual([searchable.name]);
    const z = await search(director, 'z');
    expect(z).toContain(searchable.name);
    expect(z).not.toContain(decoy);
    expect(await search(director, '"')).toEqual([symbols]);
  });

  test('% _ " * and FTS keywords are plain characters, and no term can inject FTS syntax', async () => {
    expect(await search(director, '100%')).toEqual([symbols]);
    expect(await search(director, 'under_score')).toEqual([symbols]);
    expect(await search(director, '"quoted"')).toEqual([symbols]);
    expect(await search(director, '*star*')).toEqual([symbols]);
    expect(await search(director, 'OR NEAR(')).toEqual([symbols]);
    expect(await search(director, 'NEAR')).toEqual([symbols]);
    expect(await search(director, 'caret^) col:umn')).toEqual([symbols]);
    // Each of these, read as FTS5 syntax, would find Zephyrquill or the decoy.
    for (const injection of ['zephyrquill OR decoy', 'zephyr*', 'NEAR(zephyrquill trading)', 'name:zephyrquill', '"zephyrquill" OR "decoy"', 'zephyrquill"']) {
      const res = await director.get(`/crm/accounts?q=${encodeURIComponent(injection)}`);
      expect(res.status).toBe(200);
      expect(listedNames(res.text)).toEqual([]);
    }
    // A NUL means nothing in typed text (and PostgreSQL refuses it in any text parameter): it is dropped as
    // the form is read, so the term is the letters either side of it.
    const nul = await director.get('/crm/accounts?q=zephyr%00quill');
    expect(nul.status).toBe(200);
    expect(listedNames(nul.text)).toEqual([searchable.name]);
  });

  test('a NUL typed into a field is dropped before it is stored', async () => {
    const id = await create({ name: 'Nul\u0000bright Oy', city: 'Vaasa\u0000' });
    const row = await host.db.knex('crm_accounts').where({ id }).first('name', 'city');
    expect(row).toEqual({ name: 'Nulbright Oy', city: 'Vaasa' });
    expect(await search(director, 'nulbright')).toEqual(['Nulbright Oy']);
  });

  test('letters outside ASCII ignore case too, on both databases', async () => {
    expect(await search(director, 'rgerlich o')).toEqual(['Ärgerlich Oy']);
    expect(await search(director, 'SMØRREBRØD')).toEqual(['Smørrebrød ApS']);
    expect(await search(director, 'ørre')).toEqual(['Smørrebrød ApS']);
    // SQLite's LIKE and lower() fold ASCII letters only: there a typed "ä" finds a stored "Ä" through GLOB (text-search.ts).
    expect(await search(director, 'ärger')).toEqual(['Ärgerlich Oy']);
    expect(await search(director, 'ÄRGERLICH')).toEqual(['Ärgerlich Oy']);
  });

  test('after a rename the new name is found and the old one is not', async () => {
    const id = await create({ name: 'Oldenwick Brothers', city: 'Stavanger' });
    expect(await search(director, 'denwick')).toEqual(['Oldenwick Brothers']);
    expect((await edit(id, { name: 'Newharrow Brothers', city: 'Stavanger' })).status).toBe(303);
    expect(await search(director, 'wharro')).toEqual(['Newharrow Brothers']);
    expect(await search(director, 'denwick')).toEqual([]);
    // A change to other columns leaves the index as it was; one to a searched column replaces the entry.
    expect((await edit(id, { name: 'Newharrow Brothers', city: 'Stavanger', phone: '+47 5100 0000' })).status).toBe(303);
    expect((await edit(id, { name: 'Newharrow Brothers', city: 'Haugesund' })).status).toBe(303);
    expect(await search(director, 'augesun')).toEqual(['Newharrow Brothers']);
    expect(await search(director, 'tavange')).toEqual([]);
    if (host.db.kind === 'sqlite') {
      expect(await indexed('wharro')).toEqual([id]);
      expect(await indexed('denwick')).toEqual([]);
      expect(await indexed('tavange')).toEqual([]);
    }
  });

  test('a deleted account is not found', async () => {
    const id = await create({ name: 'Gonebyfield Partners', city: 'Tromsø' });
    expect(await search(director, 'nebyfiel')).toEqual(['Gonebyfield Partners']);
    expect((await director.post(`/crm/accounts/${id}/delete`, { confirm: '1' })).status).toBe(303);
    expect(await search(director, 'nebyfiel')).toEqual([]);
    // Removed for good (a purge, or a script), it leaves the index too.
    await host.db.knex('crm_accounts').where({ id }).delete();
    if (host.db.kind === 'sqlite') expect(await indexed('nebyfiel')).toEqual([]);
  });

  test('the migration indexes the accounts already there, and its rollback removes what it made', async () => {
    const knex = host.db.knex;
    const made = async (): Promise<string[]> => (host.db.kind === 'sqlite'
      ? (await knex.raw("select name from sqlite_master where name like 'crm_accounts_search%' and type in ('table', 'trigger') order by name")).map((r: { name: string }) => r.name)
      : (await knex.raw("select indexname from pg_indexes where tablename = 'crm_accounts' and indexname like '%trgm%' order by indexname")).rows.map((r: { indexname: string }) => r.indexname));
    const before = await made();
    expect(before.length).toBeGreaterThanOrEqual(5);
    await accountSearch.down(knex);
    expect(await made()).toEqual([]);
    await accountSearch.up(knex);
    expect(await made()).toEqual(before);
    expect(await search(director, 'yrqui')).toEqual([searchable.name]);
    expect(await search(director, 'denwick')).toEqual([]);
    expect(await search(director, 'lobex corp')).toEqual(['Globex Corporation']);
  });
});
