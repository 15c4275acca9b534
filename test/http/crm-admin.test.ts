import { Session, expectLinkedPage, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const idOf = async (table: string, name: string) => Number((await knex()(table).where({ name }).first()).id);
/** The options of a select on a page, as the user reads them. */
const options = (html: string, name: string) => {
  const select = new RegExp(`<select name="${name}"[^>]*>([\\s\\S]*?)</select>`).exec(html);
  return select ? [...select[1].matchAll(/<option[^>]*>([^<]*)<\/option>/g)].map((m) => visibleText(m[1])) : [];
};
const listedNames = (html: string) => [...html.matchAll(/<tr data-account="\d+">\s*<td><a href="\/crm\/accounts\/\d+">([^<]+)<\/a>/g)].map((m) => visibleText(m[1]));

describe('lookup lists (S4)', () => {
  test('the settings sidebar links every list and admin page; each renders as a page and as an htmx fragment', async () => {
    const director = await Session.signIn(host.app, 'director');
    const settings = await director.get('/crm/settings');
    const pages = ['account-types', 'industries', 'account-groups', 'contact-types', 'relation-types', 'internal-relation-categories']
      .map((k) => `/crm/settings/lists/${k}`).concat(['/crm/settings/custom-fields', '/crm/settings/visibility', '/crm/settings/supervisors']);
    for (const url of pages) await expectLinkedPage(director, settings.text, url);
    const json = await director.get('/crm/settings/lists/relation-types.json');
    expect(json.body.items.map((i: { name: string; extra: { inverse_name: string } }) => [i.name, i.extra.inverse_name]))
      .toContainEqual(['Subsidiary of', 'Parent company of']);
  });

  test('add, rename, deactivate and activate an industry: the account form offers it only while active; journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const added = await director.post('/crm/settings/lists/industries', { name: 'Biotech' });
    expect(added.status).toBe(303);
    expect(added.headers.location).toBe('/crm/settings/lists/industries');
    const id = await idOf('crm_industries', 'Biotech');
    expect(options((await director.get('/crm/accounts/new')).text, 'industry_id')).toContain('Biotech');

    const renamed = await director.htmxPost(`/crm/settings/lists/industries/${id}`, { name: 'Biotechnology' });
    expect(renamed.status).toBe(200);
    expect(renamed.headers['hx-trigger']).toBe('crm:settingsListChanged');
    expect(renamed.text).toContain('value="Biotechnology"');
    expect(options((await director.get('/crm/accounts/new')).text, 'industry_id')).toContain('Biotechnology');

    expect((await director.post(`/crm/settings/lists/industries/${id}/active`, { active: '0' })).status).toBe(303);
    const form = options((await director.get('/crm/accounts/new')).text, 'industry_id');
    expect(form).not.toContain('Biotechnology');
    expect(form).toContain('Software');
    expect(visibleText((await director.get('/crm/settings/lists/industries')).text)).toContain('Activate');

    expect((await director.post(`/crm/settings/lists/industries/${id}/active`, { active: '1' })).status).toBe(303);
    expect(options((await director.get('/crm/accounts/new')).text, 'industry_id')).toContain('Biotechnology');

    const journal = await knex()('crm_journals').where({ journalized_type: 'settings_industries', journalized_id: id }).orderBy('id');
    expect(journal.map((j) => j.action)).toEqual(['create', 'update', 'update', 'update']);
    const details = await knex()('crm_journal_details').whereIn('journal_id', journal.map((j) => j.id)).orderBy('id');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual(expect.arrayContaining([
      ['name', 'Biotech', 'Biotechnology'], ['active', 'true', 'false'], ['active', 'false', 'true'],
    ]));
    const history = visibleText((await director.get('/crm/settings/lists/industries')).text);
    expect(history).toContain('Name : Biotech → Biotechnology');
    expect(history).toContain('Diane Director');
  });

  test('reorder with up and down: positions renumbered, the form lists them in that order', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = options((await director.get('/crm/accounts/new')).text, 'industry_id');
    const retail = await idOf('crm_industries', 'Retail');
    expect((await director.post(`/crm/settings/lists/industries/${retail}/move`, { direction: 'up' })).status).toBe(303);
    const after = options((await director.get('/crm/accounts/new')).text, 'industry_id');
    const i = before.indexOf('Retail');
    expect(after.indexOf('Retail')).toBe(i - 1);
    expect(after[i]).toBe(before[i - 1]);
    expect((await director.post(`/crm/settings/lists/industries/${retail}/move`, { direction: 'sideways' })).status).toBe(422);
  });

  test('duplicate names (any case), blank or over-long names → 422 with a clear message, nothing saved; names are escaped', async () => {
    const director = await Session.signIn(host.app, 'director');
    const count = async () => Number((await knex()('crm_industries').count({ n: '*' }))[0].n);
    const n = await count();
    const dup = await director.post('/crm/settings/lists/industries', { name: 'software' });
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('There is already an industry named "software": names must be unique.');
    expect(dup.text).toContain('data-field="name"');
    expect(dup.text).toContain('value="software"');
    const retail = await idOf('crm_industries', 'Retail');
    const renameDup = await director.post(`/crm/settings/lists/industries/${retail}`, { name: 'Finance' });
    expect(renameDup.status).toBe(422);
    expect(visibleText(renameDup.text)).toContain('names must be unique');
    expect((await knex()('crm_industries').where({ id: retail }).first()).name).toBe('Retail');
    for (const name of ['', '   ', 'x'.repeat(101)]) {
      const bad = await director.post('/crm/settings/lists/industries', { name });
      expect(bad.status).toBe(422);
      expect(visibleText(bad.text)).toContain('Name must be 1–100 characters');
    }
    const json = await director.agent.post('/crm/settings/lists/industries.json').set('X-CSRF-Token', director.csrf).send({ name: 'SOFTWARE' });
    expect(json.status).toBe(422);
    expect(json.body.fields.name).toBe('Name is already taken');
    expect(await count()).toBe(n);

    const xss = await director.post('/crm/settings/lists/account-groups', { name: '<script>alert(1)</script>' });
    expect(xss.status).toBe(303);
    const page = await director.get('/crm/settings/lists/account-groups');
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  test('a value in use is never deleted (deactivate instead); an unused one is', async () => {
    const director = await Session.signIn(host.app, 'director');
    const manufacturing = await idOf('crm_industries', 'Manufacturing');
    const refused = await director.post(`/crm/settings/lists/industries/${manufacturing}/delete`);
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('"Manufacturing" is in use (accounts) and cannot be deleted: deactivate it instead.');
    expect(await knex()('crm_industries').where({ id: manufacturing }).first()).toBeDefined();
    const company = await idOf('crm_account_types', 'Company');
    expect((await director.post(`/crm/settings/lists/account-types/${company}/delete`)).status).toBe(422);

    expect((await director.post('/crm/settings/lists/contact-types', { name: 'Temporary' })).status).toBe(303);
    const temp = await idOf('crm_contact_types', 'Temporary');
    expect((await director.post(`/crm/settings/lists/contact-types/${temp}/delete`)).status).toBe(303);
    expect(await knex()('crm_contact_types').where({ id: temp }).first()).toBeUndefined();
    expect((await knex()('crm_journals').where({ journalized_type: 'settings_contact_types', journalized_id: temp }).pluck('action'))).toEqual(['create', 'delete']);
    expect((await director.post('/crm/settings/lists/contact-types/999999/delete')).status).toBe(404);
    expect((await director.get('/crm/settings/lists/no-such-list')).status).toBe(404);
  });

  test('relation types need an inverse name', async () => {
    const director = await Session.signIn(host.app, 'director');
    const bad = await director.post('/crm/settings/lists/relation-types', { name: 'Reseller of' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="inverse_name"');
    expect((await director.post('/crm/settings/lists/relation-types', { name: 'Reseller of', inverse_name: 'Resold by' })).status).toBe(303);
    expect((await knex()('crm_relation_types').where({ name: 'Reseller of' }).first()).inverse_name).toBe('Resold by');
  });
});

describe('account types: name fields (A1)', () => {
  test('both name options off → 422 with the message; first + last only → the account form asks for first and last name', async () => {
    const director = await Session.signIn(host.app, 'director');
    const off = await director.post('/crm/settings/lists/account-types', { name: 'Freelancer', use_first_last_name: '0', use_name: '0' });
    expect(off.status).toBe(422);
    expect(visibleText(off.text)).toContain('An account type needs first + last name or name: they cannot both be off');
    expect(await knex()('crm_account_types').where({ name: 'Freelancer' }).first()).toBeUndefined();

    expect((await director.post('/crm/settings/lists/account-types', { name: 'Freelancer', use_first_last_name: ['0', '1'], use_name: '0' })).status).toBe(303);
    const id = await idOf('crm_account_types', 'Freelancer');
    const form = await director.get(`/crm/accounts/new?account_type_id=${id}`);
    expect(form.text).toContain('name="first_name"');
    expect(form.text).toContain('name="last_name"');
    expect(form.text).not.toContain('name="name"');

    const company = await idOf('crm_account_types', 'Company');
    const editOff = await director.post(`/crm/settings/lists/account-types/${company}`, { name: 'Company', use_first_last_name: '0', use_name: '0' });
    expect(editOff.status).toBe(422);
    expect(visibleText(editOff.text)).toContain('they cannot both be off');
    const stored = await knex()('crm_account_types').where({ id: company }).first();
    expect(Boolean(stored.use_name)).toBe(true);
  });
  test('the last active account type cannot be switched off', async () => {
    const director = await Session.signIn(host.app, 'director');
    const company = await idOf('crm_account_types', 'Company');
    const others = await knex()('crm_account_types').whereNot({ id: company }).where({ active: true }).pluck('id');
    await knex()('crm_account_types').whereIn('id', others).update({ active: false });
    try {
      const res = await director.post(`/crm/settings/lists/account-types/${company}/active`, { active: '0' });
      expect(res.status).toBe(422);
      expect(visibleText(res.text)).toContain('At least one account type must stay active');
      expect(Boolean((await knex()('crm_account_types').where({ id: company }).first()).active)).toBe(true);
    } finally {
      await knex()('crm_account_types').whereIn('id', others).update({ active: true });
    }
  });
});

describe('custom fields per account type (A3)', () => {
  let typeId: number;
  beforeAll(async () => {
    const [row] = await knex()('crm_account_types').insert({ name: 'Reseller', position: 50, use_name: true, use_first_last_name: false }).returning('id');
    typeId = Number(row.id ?? row);
  });
  const resellerForm = (extra: Record<string, string> = {}) => ({ account_type_id: String(typeId), project_id: String(host.demo.projects.crm.id), ...extra });

  test('a list field with values: the account form shows it; required → enforced on create and on edit', async () => {
    const director = await Session.signIn(host.app, 'director');
    const empty = await director.post('/crm/settings/custom-fields', { account_type_id: String(typeId), name: 'Region', field_format: 'list', possible_values: ' \n ' });
    expect(empty.status).toBe(422);
    expect(empty.text).toContain('data-field="possible_values"');

    const created = await director.post('/crm/settings/custom-fields', {
      account_type_id: String(typeId), name: 'Region', field_format: 'list', possible_values: 'North\r\nSouth\n\nNorth\n', is_required: ['0', '1'],
    });
    expect(created.status).toBe(303);
    const field = await knex()('crm_custom_fields').where({ name: 'Region', account_type_id: typeId }).first();
    expect(JSON.parse(field.possible_values)).toEqual(['North', 'South']);
    expect(Boolean(field.is_required)).toBe(true);
    const key = `custom_field_${field.id}`;

    const form = await director.get(`/crm/accounts/new?account_type_id=${typeId}`);
    expect(options(form.text, key)).toEqual(['—', 'North', 'South']);
    expect(visibleText(form.text)).toContain('Region *');

    const missing = await director.post('/crm/accounts', resellerForm({ name: 'No Region Reseller' }));
    expect(missing.status).toBe(422);
    expect(missing.text).toContain(`data-field="${key}"`);
    expect(visibleText(missing.text)).toContain('Region is required');
    const forged = await director.post('/crm/accounts', resellerForm({ name: 'Forged Reseller', [key]: 'East' }));
    expect(forged.status).toBe(422);
    expect(visibleText(forged.text)).toContain('Region must be one of: North, South');

    const ok = await director.post('/crm/accounts', resellerForm({ name: 'Good Reseller', [key]: 'South' }));
    expect(ok.status).toBe(303);
    const account = await knex()('crm_accounts').where({ name: 'Good Reseller' }).first();
    const edit = await director.post(`/crm/accounts/${account.id}`, { account_type_id: String(typeId), name: 'Good Reseller', lock_version: String(account.lock_version), [key]: '' });
    expect(edit.status).toBe(422);
    expect(visibleText(edit.text)).toContain('Region is required');
    expect((await knex()('crm_custom_values').where({ record_id: account.id, custom_field_id: field.id }).first()).value).toBe('South');

    // Rename, then disable: the form follows, stored values stay.
    const renamed = await director.post(`/crm/settings/custom-fields/${field.id}`, { name: 'Sales region', possible_values: 'North\nSouth\nWest', is_required: ['0', '1'], active: ['0', '1'], position: '1' });
    expect(renamed.status).toBe(303);
    const form2 = await director.get(`/crm/accounts/new?account_type_id=${typeId}`);
    expect(visibleText(form2.text)).toContain('Sales region *');
    expect(options(form2.text, key)).toEqual(['—', 'North', 'South', 'West']);
    expect((await director.post(`/crm/settings/custom-fields/${field.id}/active`, { active: '0' })).status).toBe(303);
    expect((await director.get(`/crm/accounts/new?account_type_id=${typeId}`)).text).not.toContain(`name="${key}"`);
    expect((await director.post('/crm/accounts', resellerForm({ name: 'Regionless Reseller' }))).status).toBe(303);
    expect((await knex()('crm_custom_values').where({ record_id: account.id, custom_field_id: field.id }).first()).value).toBe('South');
    const journal = await knex()('crm_journals').where({ journalized_type: 'settings_custom_fields', journalized_id: field.id }).pluck('action');
    expect(journal).toEqual(['create', 'update', 'update']);
  });

  test('a number field refuses text (422 naming it); bad field definitions → 422', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/settings/custom-fields', { account_type_id: String(typeId), name: 'Employees', field_format: 'number' })).status).toBe(303);
    const field = await knex()('crm_custom_fields').where({ name: 'Employees', account_type_id: typeId }).first();
    const key = `custom_field_${field.id}`;
    const bad = await director.post('/crm/accounts', resellerForm({ name: 'Counting Reseller', [key]: 'lots', custom_field_0: 'x' }));
    expect(bad.status).toBe(422);
    expect(bad.text).toContain(`data-field="${key}"`);
    expect(visibleText(bad.text)).toContain('Employees must be a number');
    expect(await knex()('crm_accounts').where({ name: 'Counting Reseller' }).first()).toBeUndefined();

    const dup = await director.post('/crm/settings/custom-fields', { account_type_id: String(typeId), name: 'EMPLOYEES', field_format: 'text' });
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('already has a custom field named "EMPLOYEES"');
    const badFormat = await director.post('/crm/settings/custom-fields', { account_type_id: String(typeId), name: 'Colour', field_format: 'colour' });
    expect(badFormat.status).toBe(422);
    expect(badFormat.text).toContain('data-field="field_format"');
    const badType = await director.post('/crm/settings/custom-fields', { account_type_id: '999999', name: 'Colour', field_format: 'text' });
    expect(badType.status).toBe(422);
    expect(badType.text).toContain('data-field="account_type_id"');
    const badRename = await director.post(`/crm/settings/custom-fields/${field.id}`, { name: '', active: '1' });
    expect(badRename.status).toBe(422);
    expect(badRename.text).toContain('data-field="name"');
    expect((await director.get('/crm/settings/custom-fields/999999/edit')).status).toBe(404);
    const edit = await director.get(`/crm/settings/custom-fields/${field.id}/edit`);
    expect(edit.status).toBe(200);
    expect(edit.text).toContain('value="Employees"');
  });
});

describe('visibility per role and supervisors (S3)', () => {
  const matrixUrl = '/crm/settings/visibility';
  const repRole = async () => Number((await knex()('roles').where({ name: 'Sales rep' }).first()).id);

  test("the demo gives reps 'own' on accounts; the matrix switches it, and a rep with 'own' loses another user's account (404 on its detail)", async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep = await repRole();
    const page = await director.get(matrixUrl);
    expect(page.text).toMatch(new RegExp(`<select name="level_${rep}_accounts"[^>]*>[\\s\\S]*?<option value="own" selected>`));
    const json = await director.get(`${matrixUrl}.json`);
    expect(json.body.visibility.find((r: { role: string }) => r.role === 'Sales rep')).toMatchObject({ accounts: 'own', partners: 'all', personal_contacts: 'all' });

    const supplier = Number((await knex()('crm_accounts').where({ name: 'Parts & Bolts Supply' }).first()).id); // the director's, in the CRM project
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect(listedNames((await rep1.get('/crm/accounts')).text)).not.toContain('Parts & Bolts Supply');
    expect((await rep1.get(`/crm/accounts/${supplier}`)).status).toBe(404);

    const all = await director.htmxPost(matrixUrl, { [`level_${rep}_accounts`]: 'all' });
    expect(all.status).toBe(200);
    expect(all.headers['hx-trigger']).toBe('crm:visibilitySaved');
    expect(listedNames((await rep1.get('/crm/accounts')).text)).toContain('Parts & Bolts Supply');
    expect((await rep1.get(`/crm/accounts/${supplier}`)).status).toBe(200);

    expect((await director.post(matrixUrl, { [`level_${rep}_accounts`]: 'own', [`level_${rep}_partners`]: 'subordinates' })).status).toBe(303);
    const names = listedNames((await rep1.get('/crm/accounts')).text);
    expect(names).not.toContain('Parts & Bolts Supply');
    expect(names).toContain('Acme Manufacturing'); // managed by rep1
    expect((await rep1.get(`/crm/accounts/${supplier}`)).status).toBe(404);
    const stored = await knex()('crm_role_visibility').where({ role_id: rep }).orderBy('entity');
    expect(stored.map((r) => [r.entity, r.level])).toEqual([['accounts', 'own'], ['partners', 'subordinates']]);
    const details = await knex()('crm_journal_details').join('crm_journals', 'crm_journals.id', 'crm_journal_details.journal_id')
      .where('crm_journals.journalized_type', 'settings_visibility').select('field', 'old_value', 'new_value');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual(expect.arrayContaining([
      ['Sales rep: accounts', 'own', 'all'], ['Sales rep: accounts', 'all', 'own'], ['Sales rep: partners', 'all', 'subordinates'],
    ]));
  });

  test('forged levels, roles or entities → 422 and nothing saved', async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep = await repRole();
    const before = await knex()('crm_role_visibility').orderBy(['role_id', 'entity']);
    for (const form of [
      { [`level_${rep}_accounts`]: 'everything', [`level_${rep}_partners`]: 'all' },
      { [`level_${rep}_partners`]: 'all', level_999999_accounts: 'all' },
      { [`level_${rep}_opportunities_x`]: 'all' },
      { [`level_${rep}_accounts`]: 'all', role_id: '1' },
    ]) {
      const res = await director.post(matrixUrl, form);
      expect(res.status).toBe(422);
      expect(visibleText(res.text)).toContain('Visibility was not saved');
    }
    expect(await knex()('crm_role_visibility').orderBy(['role_id', 'entity'])).toEqual(before);
  });

  test('supervisors: the demo director supervises both reps; loops and self-supervision → 422, nothing saved', async () => {
    const director = await Session.signIn(host.app, 'director');
    const { director: d, rep1, rep2, pm } = host.demo.users;
    const stored = async () => (await knex()('crm_user_supervisors').orderBy('user_id')).map((r) => [Number(r.user_id), Number(r.supervisor_id)]);
    const demo = await stored();
    expect(demo).toEqual(expect.arrayContaining([[rep1.id, d.id], [rep2.id, d.id]]));
    const page = await director.get('/crm/settings/supervisors');
    expect(page.text).toMatch(new RegExp(`<select name="supervisor_${rep1.id}"[^>]*>[\\s\\S]*?<option value="${d.id}" selected>`));

    const loop = await director.post('/crm/settings/supervisors', { [`supervisor_${d.id}`]: String(rep1.id) });
    expect(loop.status).toBe(422);
    expect(visibleText(loop.text)).toContain('Supervisors cannot form a loop');
    expect(loop.text).toContain(`data-field="supervisor_${d.id}"`);
    const longLoop = await director.post('/crm/settings/supervisors', { [`supervisor_${pm.id}`]: String(rep2.id), [`supervisor_${d.id}`]: String(pm.id) });
    expect(longLoop.status).toBe(422);
    const self = await director.post('/crm/settings/supervisors', { [`supervisor_${pm.id}`]: String(pm.id) });
    expect(self.status).toBe(422);
    expect(visibleText(self.text)).toContain('Paul Manager cannot supervise themselves');
    for (const forged of [{ [`supervisor_${pm.id}`]: '999999' }, { supervisor_999999: String(d.id) }, { [`supervisor_${pm.id}`]: 'x' }]) {
      expect((await director.post('/crm/settings/supervisors', forged)).status).toBe(422);
    }
    expect(await stored()).toEqual(demo);

    const ok = await director.post('/crm/settings/supervisors', { [`supervisor_${pm.id}`]: String(d.id), [`supervisor_${rep2.id}`]: '' });
    expect(ok.status).toBe(303);
    expect(await stored()).toEqual(expect.arrayContaining([[rep1.id, d.id], [pm.id, d.id]]));
    expect((await stored()).find(([u]) => u === rep2.id)).toBeUndefined();
    const history = visibleText((await director.get('/crm/settings/supervisors')).text);
    expect(history).toContain('Supervisor of Rita Rep : Diane Director → (empty)');
    expect(history).toContain('Supervisor of Paul Manager : (empty) → Diane Director');
  });
});

describe('the settings pages’ history', () => {
  /** The History section of a settings page, as the user reads it. */
  const historyOn = (html: string) => visibleText(/<h3>History<\/h3>([\s\S]*?)<\/section>/.exec(html)![1]);
  const columnName = /\b[a-z]+(_[a-z0-9]+)+\b/;

  test('names each changed field by a label and each account type by its name, never a column or an id', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/settings/lists/account-types', { name: 'Agency', use_first_last_name: ['0', '1'], use_name: ['0', '1'] })).status).toBe(303);
    const agency = await idOf('crm_account_types', 'Agency');
    const types = historyOn((await director.get('/crm/settings/lists/account-types')).text);
    expect(types).toContain('Name : (empty) → Agency');
    expect(types).toContain('First + last name fields : (empty) → yes');
    expect(types).toContain('Name field : (empty) → yes');
    expect(types).not.toMatch(columnName);
    expect((await director.post('/crm/settings/custom-fields', { account_type_id: String(agency), name: 'Agency size', field_format: 'number', is_required: '1' })).status).toBe(303);
    const fields = historyOn((await director.get('/crm/settings/custom-fields')).text);
    expect(fields).toContain('Account type : (empty) → Agency');
    expect(fields).toContain('Format : (empty) → number');
    expect(fields).toContain('Required : (empty) → yes');
    expect(fields).not.toMatch(columnName);
  });
});

describe('permission: manage_crm_settings', () => {
  test('users without it get 404 on every settings URL, for reading and for changes', async () => {
    const industry = await idOf('crm_industries', 'Software');
    const field = Number((await knex()('crm_custom_fields').first()).id);
    const gets = [
      '/crm/settings/lists/industries', '/crm/settings/lists/industries.json', '/crm/settings/lists/account-types', '/crm/settings/custom-fields',
      `/crm/settings/custom-fields/${field}/edit`, '/crm/settings/visibility', '/crm/settings/visibility.json', '/crm/settings/supervisors',
    ];
    const posts: [string, Record<string, string>][] = [
      ['/crm/settings/lists/industries', { name: 'Hacked' }], [`/crm/settings/lists/industries/${industry}`, { name: 'Hacked' }],
      [`/crm/settings/lists/industries/${industry}/active`, { active: '0' }], [`/crm/settings/lists/industries/${industry}/move`, { direction: 'up' }],
      [`/crm/settings/lists/industries/${industry}/delete`, {}], ['/crm/settings/custom-fields', { account_type_id: '1', name: 'Hacked', field_format: 'text' }],
      [`/crm/settings/custom-fields/${field}`, { name: 'Hacked', active: '1' }], [`/crm/settings/custom-fields/${field}/active`, { active: '0' }],
      ['/crm/settings/visibility', {}], ['/crm/settings/supervisors', {}],
    ];
    for (const login of ['rep1', 'pm']) {
      const user = await Session.signIn(host.app, login);
      for (const url of gets) expect([url, (await user.get(url)).status]).toEqual([url, 404]);
      for (const [url, form] of posts) expect([url, (await user.post(url, form)).status]).toEqual([url, 404]);
    }
    expect(await knex()('crm_industries').where({ name: 'Hacked' }).first()).toBeUndefined();
    expect((await knex()('crm_industries').where({ id: industry }).first()).name).toBe('Software');
    const admin = await Session.signIn(host.app, 'admin');
    expect((await admin.get('/crm/settings/visibility')).status).toBe(200);
  });
});
