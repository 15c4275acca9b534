import { lockVersionIn, racing, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const accountId = async (name: string) => Number((await knex()('crm_accounts').where({ name }).first()).id);
const contactId = async (last: string) => Number((await knex()('crm_personal_contacts').where({ last_name: last }).orderBy('id', 'desc').first()).id);
const typeId = async (name: string) => Number((await knex()('crm_contact_types').where({ name }).first()).id);
const listedNames = (html: string) => [...html.matchAll(/<tr data-contact="\d+">\s*<td><a href="\/crm\/personal-contacts\/\d+">([^<]+)<\/a>/g)].map((m) => visibleText(m[1]));
const project = (key: string) => String(host.demo.projects[key].id);
const salesRep = async () => Number((await knex()('roles').where({ name: 'Sales rep' }).first()).id);

/** Creates a contact through the form as `login`, returns its id. */
async function newContact(login: string, form: Record<string, string>): Promise<number> {
  const s = await Session.signIn(host.app, login);
  const res = await s.post('/crm/personal-contacts', form);
  if (res.status !== 303) throw new Error(`create failed ${res.status}: ${visibleText(res.text).slice(0, 300)}`);
  return Number(/\/crm\/personal-contacts\/(\d+)$/.exec(res.headers.location)![1]);
}

describe('personal contacts: create, show, edit, delete (A9, P5, P6)', () => {
  test('a rep creates a contact; detail as full page, htmx fragment and JSON; listed and searchable', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const form = await rep.get('/crm/personal-contacts/new');
    expect(form.status).toBe(200);
    expect(visibleText(form.text)).toContain('New personal contact');
    const res = await rep.post('/crm/personal-contacts', {
      first_name: 'Mira', last_name: 'Sandberg', job_title: 'Buyer', email: 'mira@sandberg.example', contact_type_id: String(await typeId('Employee')), project_id: project('crm-europe'),
    });
    expect(res.status).toBe(303);
    const id = await contactId('Sandberg');
    expect(res.headers.location).toBe(`/crm/personal-contacts/${id}`);
    const row = await knex()('crm_personal_contacts').where({ id }).first();
    expect(row.project_id).toBe(host.demo.projects['crm-europe'].id);
    expect(row.author_id).toBe(host.demo.users.rep1.id);

    const full = await rep.get(`/crm/personal-contacts/${id}`);
    expect(full.text).toContain('<html');
    expect(visibleText(full.text)).toContain('Mira Sandberg');
    expect(visibleText(full.text)).toContain('Employee · Buyer');
    const fragment = await rep.htmxGet(`/crm/personal-contacts/${id}`);
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(fragment.headers.vary).toMatch(/HX-Request/);
    const json = await rep.get(`/crm/personal-contacts/${id}.json`);
    expect(json.body.personal_contact).toMatchObject({ id, name: 'Mira Sandberg', email: 'mira@sandberg.example', type: 'Employee', lock_version: 0 });

    expect(listedNames((await rep.get('/crm/personal-contacts?q=sandb')).text)).toEqual(['Mira Sandberg']);
    expect(listedNames((await rep.get('/projects/crm-europe/crm/personal-contacts')).text)).toContain('Mira Sandberg');
    expect(listedNames((await rep.get('/crm/personal-contacts?q=%25')).text)).toEqual([]);
    const list = await rep.get('/crm/personal-contacts.json?sort=city&dir=desc');
    expect(list.body.pagination.total).toBeGreaterThan(1);
    expect(list.body.personal_contacts.map((c: { name: string }) => c.name)).toContain('Mira Sandberg');
    const journal = await knex()('crm_journals').where({ journalized_type: 'personal_contact', journalized_id: id });
    expect(journal.map((j) => j.action)).toEqual(['create']);
  });

  test('project pages list only that project’s contacts; the sidebar links to the real sections', async () => {
    const director = await Session.signIn(host.app, 'director');
    const europe = listedNames((await director.get('/projects/crm-europe/crm/personal-contacts')).text);
    expect(europe).toEqual(expect.arrayContaining(['Sven Holm', 'Liga Ozola']));
    expect(europe).not.toContain('Hank Scorpio');
    const overview = await director.get('/crm.json');
    const sections = overview.body.sections.filter((s: { id: string }) => ['personal_contacts', 'partners'].includes(s.id));
    expect(sections).toEqual([
      { id: 'personal_contacts', label: 'Personal contacts', url: '/crm/personal-contacts', available: true },
      { id: 'partners', label: 'Partners', url: '/crm/partners', available: true },
    ]);
  });

  test('edit through htmx: fragment + HX-Trigger, journaled old → new, shown on the History tab', async () => {
    const id = await newContact('rep1', { last_name: 'Lindqvist', job_title: 'Analyst', project_id: project('crm-europe') });
    const rep = await Session.signIn(host.app, 'rep1');
    const edit = await rep.get(`/crm/personal-contacts/${id}/edit`);
    expect(edit.text).toContain('name="lock_version" value="0"');
    const res = await rep.htmxPost(`/crm/personal-contacts/${id}`, { last_name: 'Lindqvist', first_name: 'Per', job_title: 'Head of analytics', lock_version: '0' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:contactSaved');
    expect(res.text).not.toContain('<html');
    expect(visibleText(res.text)).toContain('Contact saved.');
    expect(visibleText(res.text)).toContain('Per Lindqvist');
    const journal = await knex()('crm_journals').where({ journalized_type: 'personal_contact', journalized_id: id, action: 'update' });
    const details = await knex()('crm_journal_details').where({ journal_id: journal[0].id }).orderBy('field');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual([['first_name', '', 'Per'], ['job_title', 'Analyst', 'Head of analytics']]);
    const historyTab = visibleText((await rep.get(`/crm/personal-contacts/${id}?tab=history`)).text);
    expect(historyTab).toContain('Job title : Analyst → Head of analytics');
    expect(historyTab).toContain('Rick Rep · update');
  });

  test('a stale save answers 409 with a message, keeps the input and changes nothing', async () => {
    const id = await newContact('rep1', { last_name: 'Stale', project_id: project('crm-europe') });
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(`/crm/personal-contacts/${id}`, { last_name: 'Stale', city: 'Lund', lock_version: '0' })).status).toBe(303);
    const stale = await rep.htmxPost(`/crm/personal-contacts/${id}`, { last_name: 'Stale', city: 'Kiruna', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('changed by someone else');
    expect(stale.text).toContain('value="Kiruna"');
    expect((await knex()('crm_personal_contacts').where({ id }).first()).city).toBe('Lund');
    expect(lockVersionIn(stale.text)).toBe('1');
    expect((await rep.post(`/crm/personal-contacts/${id}`, { last_name: 'Stale', city: 'Kiruna', lock_version: lockVersionIn(stale.text) })).status).toBe(303);
    expect((await knex()('crm_personal_contacts').where({ id }).first()).city).toBe('Kiruna');
    const missing = await rep.post(`/crm/personal-contacts/${id}`, { last_name: 'Stale' });
    expect(missing.status).toBe(422);
  });

  test('bad input → 422 naming the field, input kept; HTML is escaped everywhere', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const res = await rep.post('/crm/personal-contacts', { first_name: 'No', last_name: '', email: 'not-an-email' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="last_name"');
    expect(visibleText(res.text)).toContain('Last name is required');
    expect(visibleText(res.text)).toContain('Email is not an email address');
    expect(res.text).toContain('value="not-an-email"');
    const json = await rep.agent.post('/crm/personal-contacts').set('Accept', 'application/json').set('X-CSRF-Token', rep.csrf).send({ last_name: 'x'.repeat(101) });
    expect(json.status).toBe(422);
    expect(json.body.fields.last_name).toBe('Last name is at most 100 characters');
    // A9: users of the platform are never duplicated as contacts.
    const user = await rep.post('/crm/personal-contacts', { last_name: 'Rep', email: 'REP2@example.com' });
    expect(user.status).toBe(422);
    expect(visibleText(user.text)).toContain('users are not added as personal contacts');
    expect((await rep.post('/crm/personal-contacts', { last_name: 'Typo', contact_type_id: '999' })).status).toBe(422);

    const id = await newContact('rep1', { last_name: '<script>alert(1)</script>', note: '<img src=x onerror=alert(2)>', project_id: project('crm-europe') });
    const page = await rep.get(`/crm/personal-contacts/${id}`);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.text).not.toContain('<img src=x');
    const list = await rep.get('/crm/personal-contacts?q=alert');
    expect(list.text).toContain('&lt;script&gt;');
    expect(list.text).not.toContain('<script>alert(1)');
  });

  test('delete asks for confirmation, is soft, journaled, and the contact is gone (404) afterwards', async () => {
    const id = await newContact('director', { last_name: 'Gone', project_id: project('crm-europe') });
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post(`/crm/personal-contacts/${id}/delete`, {})).status).toBe(422);
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(`/crm/personal-contacts/${id}/delete`, { confirm: '1' })).status).toBe(404); // reps lack delete_personal_contacts
    const res = await director.post(`/crm/personal-contacts/${id}/delete`, { confirm: '1' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/crm/personal-contacts');
    expect((await knex()('crm_personal_contacts').where({ id }).first()).deleted_at).not.toBeNull();
    expect((await director.get(`/crm/personal-contacts/${id}`)).status).toBe(404);
    expect(listedNames((await director.get('/crm/personal-contacts?q=gone')).text)).toEqual([]);
    const actions = await knex()('crm_journals').where({ journalized_type: 'personal_contact', journalized_id: id }).orderBy('id').pluck('action');
    expect(actions).toEqual(['create', 'delete']);
  });

  test('deleting a contact leaves nothing pointing at it: its account links, business roles and the opportunities it was the contact of let go, journaled', async () => {
    const id = await newContact('director', { first_name: 'Otto', last_name: 'Leaving', project_id: project('crm-europe') });
    const director = await Session.signIn(host.app, 'director');
    const account = await accountId('Acme Manufacturing');
    const opp = Number((await knex()('crm_opportunities').where({ name: 'Acme – ERP rollout' }).first()).id);
    const before = await knex()('crm_opportunities').where({ id: opp }).first();
    try {
      expect((await director.post(`/crm/accounts/${account}/contacts`, { contact: String(id), role: 'Buyer' })).status).toBe(303);
      await knex()('crm_opportunities').where({ id: opp }).update({ contact_id: id });
      await knex()('crm_business_roles').insert({ opportunity_id: opp, contact_id: id, description: 'Decision maker' });
      expect(visibleText((await director.get(`/crm/opportunities/${opp}`)).text)).toContain('Otto Leaving');

      expect((await director.post(`/crm/personal-contacts/${id}/delete`, { confirm: '1' })).status).toBe(303);
      expect(await knex()('crm_account_contacts').where({ contact_id: id })).toEqual([]);
      expect(await knex()('crm_business_roles').where({ contact_id: id })).toEqual([]);
      const after = await knex()('crm_opportunities').where({ id: opp }).first();
      expect(after.contact_id).toBeNull();
      expect(after.lock_version).toBe(before.lock_version + 1);
      const page = visibleText((await director.get(`/crm/opportunities/${opp}`)).text);
      expect(page).not.toContain('a contact you cannot see');
      const fields = async (type: string, recordId: number) => knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
        .where({ 'j.journalized_type': type, 'j.journalized_id': recordId }).where('j.id', '>', 0).orderBy('d.id').select('d.field', 'd.old_value', 'd.new_value');
      expect(await fields('account', account)).toContainEqual({ field: 'contacts', old_value: `Otto Leaving (#${id})`, new_value: null });
      const oppFields = await fields('opportunity', opp);
      expect(oppFields).toContainEqual({ field: 'contact_id', old_value: String(id), new_value: null });
      expect(oppFields).toContainEqual({ field: 'business_roles', old_value: `contact #${id}: Decision maker`, new_value: null });
    } finally {
      await knex()('crm_business_roles').where({ contact_id: id }).delete();
      await knex()('crm_account_contacts').where({ contact_id: id }).delete();
      await knex()('crm_opportunities').where({ id: opp }).update({ contact_id: before.contact_id });
    }
  });

  test('a contact seen through its account names its project and partner only to those who may see them', async () => {
    const director = await Session.signIn(host.app, 'director');
    const [row] = await knex()('crm_partners').insert({ name: 'Far Away Partner', project_id: host.demo.projects['crm-americas'].id, author_id: host.demo.users.director.id }).returning('id');
    const partner = Number(row.id ?? row);
    const id = await newContact('rep2', { last_name: 'Acrossprojects', partner_id: String(partner), project_id: project('crm-americas') });
    const account = await accountId('Acme Manufacturing');
    try {
      expect((await director.post(`/crm/accounts/${account}/contacts`, { contact: String(id) })).status).toBe(303);
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get('/projects/crm-americas/crm/personal-contacts')).status).toBe(404);
      const page = await rep1.get(`/crm/personal-contacts/${id}`);
      expect(page.status).toBe(200);
      const text = visibleText(page.text);
      expect(text).toContain('Acrossprojects');
      expect(text).not.toContain(host.demo.projects['crm-americas'].name);
      expect(page.text).not.toContain('/projects/crm-americas/');
      expect(text).toContain('Project a project you cannot see');
      expect(text).not.toContain('Far Away Partner');
      expect(text).toContain('Partner a partner you cannot see');
      // Nor does the JSON give their ids: null, and that there is one the reader may not see.
      const json = (await rep1.get(`/crm/personal-contacts/${id}.json`)).body.personal_contact;
      expect(json).toMatchObject({ id, partner: null, partner_id: null, partner_hidden: true, project_id: null, project_hidden: true });
      const list = await rep1.get('/crm/personal-contacts?q=acrossprojects');
      expect(listedNames(list.text)).toEqual(['Acrossprojects']);
      expect(visibleText(list.text)).not.toContain('Far Away Partner');
      expect(visibleText(list.text)).toContain('a partner you cannot see');
      const listed = (await rep1.get('/crm/personal-contacts.json?q=acrossprojects')).body.personal_contacts;
      expect(listed).toEqual([expect.objectContaining({ id, partner_id: null, partner_name: null, partner_hidden: true })]);
      expect((await director.get('/crm/personal-contacts.json?q=acrossprojects')).body.personal_contacts)
        .toEqual([expect.objectContaining({ id, partner_id: partner, partner_name: 'Far Away Partner', partner_hidden: false })]);
      expect((await director.get(`/crm/personal-contacts/${id}.json`)).body.personal_contact)
        .toMatchObject({ id, partner_id: partner, partner_hidden: false, project_id: host.demo.projects['crm-americas'].id, project_hidden: false });
      expect(visibleText((await director.get(`/crm/personal-contacts/${id}`)).text)).toContain(`Project ${host.demo.projects['crm-americas'].name}`);
    } finally {
      await knex()('crm_account_contacts').where({ contact_id: id }).delete();
      await knex()('crm_personal_contacts').where({ id }).delete();
      await knex()('crm_partners').where({ id: partner }).delete();
    }
  });

  test('a contact whose project was deleted in the host is not said to be in a project the reader cannot see: its JSON says project_hidden false, as its page says nothing', async () => {
    const [p] = await knex()('projects').insert({ identifier: `gone-contacts-${process.pid}`, name: 'Gone contacts project', is_template: false }).returning('id');
    const gone = Number(p.id ?? p);
    const id = await newContact('director', { last_name: 'Projectgone', project_id: project('crm-europe') });
    const account = await accountId('Acme Manufacturing');
    const director = await Session.signIn(host.app, 'director');
    try {
      expect((await director.post(`/crm/accounts/${account}/contacts`, { contact: String(id) })).status).toBe(303);
      await knex()('crm_personal_contacts').where({ id }).update({ project_id: gone });
      await knex()('projects').where({ id: gone }).delete();
      const page = await director.get(`/crm/personal-contacts/${id}`);
      expect(page.status).toBe(200);
      expect(visibleText(page.text)).toContain('Projectgone');
      expect(visibleText(page.text)).not.toContain('a project you cannot see');
      const json = (await director.get(`/crm/personal-contacts/${id}.json`)).body.personal_contact;
      expect(json).toMatchObject({ id, project_id: null, project_hidden: false });
      expect((await knex()('crm_personal_contacts').where({ id }).first()).project_id).toBe(gone);
    } finally {
      await knex()('crm_account_contacts').where({ contact_id: id }).delete();
      await knex()('crm_personal_contacts').where({ id }).delete();
      await knex()('projects').where({ id: gone }).delete();
    }
  });

  test('the JSON gives a contact’s partner_id only to those who may see the partner: to others the list and the contact say null and partner_hidden, as their pages name no partner', async () => {
    const pacific = Number((await knex()('crm_partners').where({ name: 'Pacific Partners' }).first()).id); // crm-americas: rep1 is not there
    const id = await newContact('rep1', { last_name: 'Pacificpartnered', project_id: project('crm-europe') });
    await knex()('crm_personal_contacts').where({ id }).update({ partner_id: pacific });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const listed = (await rep1.get('/crm/personal-contacts.json?q=pacificpartnered')).body.personal_contacts;
      expect(listed).toEqual([expect.objectContaining({ id, partner_id: null, partner_name: null, partner_hidden: true })]);
      const own = await rep1.get(`/crm/personal-contacts/${id}.json`);
      expect(own.status).toBe(200);
      expect(own.body.personal_contact).toMatchObject({ id, partner_id: null, partner: null, partner_hidden: true, project_id: host.demo.projects['crm-europe'].id, project_hidden: false });
      expect(JSON.stringify(own.body)).not.toContain('Pacific Partners');
      expect(visibleText((await rep1.get(`/crm/personal-contacts/${id}`)).text)).not.toContain('Pacific Partners');
      // The edit form still holds the stored partner (unnamed), so saving the contact does not drop it.
      const form = await rep1.get(`/crm/personal-contacts/${id}/edit`);
      expect(form.text).toContain(`<option value="${pacific}" selected>(a partner you cannot see)</option>`);
      expect((await rep1.post(`/crm/personal-contacts/${id}`, { last_name: 'Pacificpartnered', partner_id: String(pacific), lock_version: lockVersionIn(form.text) })).status).toBe(303);
      expect((await knex()('crm_personal_contacts').where({ id }).first()).partner_id).toBe(pacific);

      const director = await Session.signIn(host.app, 'director');
      expect((await director.get('/crm/personal-contacts.json?q=pacificpartnered')).body.personal_contacts)
        .toEqual([expect.objectContaining({ id, partner_id: pacific, partner_name: 'Pacific Partners', partner_hidden: false })]);
      expect((await director.get(`/crm/personal-contacts/${id}.json`)).body.personal_contact)
        .toMatchObject({ id, partner_id: pacific, partner: { id: pacific, name: 'Pacific Partners' }, partner_hidden: false });
    } finally {
      await knex()('crm_personal_contacts').where({ id }).delete();
    }
  });

  test('a contact whose type was switched off keeps it: the edit form still offers and selects it, and saving another field stores it unchanged', async () => {
    const [typeRow] = await knex()('crm_contact_types').insert({ name: 'Retired type', active: true, position: 99 }).returning('id');
    const retired = Number(typeRow.id ?? typeRow);
    const id = await newContact('director', { last_name: 'Typekeeper', contact_type_id: String(retired), project_id: project('crm-europe') });
    try {
      await knex()('crm_contact_types').where({ id: retired }).update({ active: false });
      const director = await Session.signIn(host.app, 'director');
      const form = await director.get(`/crm/personal-contacts/${id}/edit`);
      expect(form.text).toMatch(new RegExp(`<option value="${retired}" selected>Retired type</option>`));
      const saved = await director.post(`/crm/personal-contacts/${id}`, { last_name: 'Typekeeper', phone: '+46 8 123', contact_type_id: String(retired), lock_version: lockVersionIn(form.text) });
      expect(saved.status).toBe(303);
      const row = await knex()('crm_personal_contacts').where({ id }).first();
      expect(row).toMatchObject({ contact_type_id: retired, phone: '+46 8 123' });
      // A switched-off type is not offered to other contacts.
      expect((await director.get('/crm/personal-contacts/new')).text).not.toContain('Retired type');
      const other = await director.post('/crm/personal-contacts', { last_name: 'Newcomer', contact_type_id: String(retired), project_id: project('crm-europe') });
      expect(other.status).toBe(422);
      expect(other.text).toContain('data-field="contact_type_id"');
    } finally {
      await knex()('crm_personal_contacts').where({ id }).delete();
      await knex()('crm_contact_types').where({ id: retired }).delete();
    }
  });

  test('a partner user’s new contact is their partner’s consultant (they see only those): the partner is filled in, clearing it is refused', async () => {
    const pacific = Number((await knex()('crm_partners').where({ name: 'Pacific Partners' }).first()).id);
    await knex()('crm_partner_users').insert({ partner_id: pacific, user_id: host.demo.users.rep2.id });
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      const res = await rep2.post('/crm/personal-contacts', { last_name: 'Ownconsultant', project_id: project('crm-americas') });
      expect(res.status).toBe(303);
      const id = await contactId('Ownconsultant');
      expect((await knex()('crm_personal_contacts').where({ id }).first()).partner_id).toBe(pacific);
      const page = await rep2.get(res.headers.location);
      expect(page.status).toBe(200);
      expect(visibleText(page.text)).toContain('Partner Pacific Partners');
      // Clearing the partner on edit would hide the contact from its editor: refused.
      const cleared = await rep2.post(`/crm/personal-contacts/${id}`, { last_name: 'Ownconsultant', partner_id: '', lock_version: '0' });
      expect(cleared.status).toBe(422);
      expect(cleared.text).toContain('data-field="partner_id"');
      expect((await knex()('crm_personal_contacts').where({ id }).first()).partner_id).toBe(pacific);
    } finally {
      await knex()('crm_partner_users').where({ partner_id: pacific }).delete();
      await knex()('crm_personal_contacts').where({ last_name: 'Ownconsultant' }).delete();
    }
  });

  test('ids that do not exist or cannot be seen answer 404 on every route', async () => {
    const hidden = await newContact('rep2', { last_name: 'Hidden', project_id: project('crm-americas') });
    const rep1 = await Session.signIn(host.app, 'rep1');
    for (const id of [hidden, 999999, 'abc']) {
      expect((await rep1.get(`/crm/personal-contacts/${id}`)).status).toBe(404);
      expect((await rep1.get(`/crm/personal-contacts/${id}.json`)).status).toBe(404);
      expect((await rep1.get(`/crm/personal-contacts/${id}/edit`)).status).toBe(404);
      expect((await rep1.post(`/crm/personal-contacts/${id}`, { last_name: 'X', lock_version: '0' })).status).toBe(404);
      expect((await rep1.post(`/crm/personal-contacts/${id}/tasks`, { subject: 'X' })).status).toBe(404);
    }
    const acme = await accountId('Acme Manufacturing');
    expect((await rep1.post(`/crm/accounts/${acme}/contacts`, { contact: String(hidden) })).status).toBe(404);
    expect((await rep1.post(`/crm/accounts/${acme}/contacts/${hidden}/unlink`, {})).status).toBe(404);
    expect((await knex()('crm_personal_contacts').where({ id: hidden }).first()).last_name).toBe('Hidden');
    // rep1 cannot reach Globex: not as the account of a new employee either.
    expect((await rep1.get(`/crm/personal-contacts/new?account_id=${await accountId('Globex Corporation')}`)).status).toBe(404);
    expect((await rep1.post('/crm/personal-contacts', { last_name: 'Sneaky', account_id: String(await accountId('Globex Corporation')) })).status).toBe(404);
  });
});

describe('employees of an account: People tab (A6, A9)', () => {
  test('"New employee" from the account: prefilled form, linked with its role, shown on the People tab and journaled on both', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const acme = await accountId('Acme Manufacturing');
    const accountPage = await rep.get(`/crm/accounts/${acme}`);
    expect(accountPage.text).toContain(`hx-get="/crm/accounts/${acme}/actions/employee"`);
    expect(visibleText(accountPage.text)).toContain('New employee');
    const action = await rep.htmxGet(`/crm/accounts/${acme}/actions/employee`);
    expect(action.text).toContain('id="new-employee"');
    const form = await rep.get(`/crm/personal-contacts/new?account_id=${acme}&contact_type=Employee`);
    expect(visibleText(form.text)).toContain('Employee of Acme Manufacturing');
    expect(form.text).toContain(`<option value="${await typeId('Employee')}" selected>`);
    expect(form.text).toContain(`<option value="${project('crm-europe')}" selected>`);
    const res = await rep.post('/crm/personal-contacts', {
      account_id: String(acme), role: 'Plant manager', contact_type_id: String(await typeId('Employee')), first_name: 'Olle', last_name: 'Nyberg', project_id: project('crm-europe'),
    });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/accounts/${acme}?tab=people`);
    const people = visibleText((await rep.get(`/crm/accounts/${acme}?tab=people`)).text);
    expect(people).toContain('Olle Nyberg Plant manager Employee');
    expect(people).toContain('Sven Holm'); // demo employee
    const id = await contactId('Nyberg');
    const accountLog = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id').where({ 'j.journalized_type': 'account', 'j.journalized_id': acme, 'd.field': 'contacts' }).pluck('d.new_value');
    expect(accountLog).toContain(`+Olle Nyberg (Plant manager) (#${id})`);
    expect(visibleText((await rep.get(`/crm/personal-contacts/${id}`)).text)).toContain('Acme Manufacturing — Plant manager');
    // The project manager may look at accounts but not change them: no "New employee".
    const pm = await Session.signIn(host.app, 'pm');
    const parts = await accountId('Parts & Bolts Supply');
    const pmPage = await pm.get(`/crm/accounts/${parts}`);
    expect(pmPage.status).toBe(200);
    expect(pmPage.text).not.toContain('actions/employee');
    const pmAction = await pm.htmxGet(`/crm/accounts/${parts}/actions/employee`);
    expect(pmAction.status).toBe(200);
    expect(pmAction.text).toBe('');
    expect((await pm.htmxGet(`/crm/accounts/${acme}/actions/employee`)).status).toBe(404);
  });

  test('link an existing contact by name or id through htmx (tab fragment), refuse bad input, unlink', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const nordic = await accountId('Nordic Retail Group');
    const liga = await contactId('Ozola');
    const byName = await rep.htmxPost(`/crm/accounts/${nordic}/contacts`, { contact: 'liga ozola', role: 'Advisor' });
    expect(byName.status).toBe(200);
    expect(byName.headers['hx-trigger']).toBe('crm:accountSaved');
    expect(byName.text.trim().startsWith('<h3>People</h3>')).toBe(true);
    expect(visibleText(byName.text)).toContain('Liga Ozola linked.');
    expect(visibleText(byName.text)).toContain('Liga Ozola Senior consultant Advisor Consultant');
    expect(await knex()('crm_account_contacts').where({ account_id: nordic, contact_id: liga }).first()).toMatchObject({ role: 'Advisor' });

    const twice = await rep.htmxPost(`/crm/accounts/${nordic}/contacts`, { contact: String(liga) });
    expect(twice.status).toBe(422);
    expect(visibleText(twice.text)).toContain('already linked');
    const none = await rep.post(`/crm/accounts/${nordic}/contacts`, { contact: 'Nobody Atall' });
    expect(none.status).toBe(422);
    expect(none.text).toContain('<html');
    expect(visibleText(none.text)).toContain('No contact you can see matches this name');
    await newContact('rep1', { first_name: 'Anna', last_name: 'Twin', project_id: project('crm-europe') });
    await newContact('rep1', { first_name: 'Anders', last_name: 'Twin', project_id: project('crm-europe') });
    const many = await rep.post(`/crm/accounts/${nordic}/contacts`, { contact: 'twin' });
    expect(many.status).toBe(422);
    expect(visibleText(many.text)).toContain('Several contacts match');

    const byId = await rep.post(`/crm/accounts/${nordic}/contacts`, { contact: String(await contactId('Holm')) });
    expect(byId.status).toBe(303);
    expect(byId.headers.location).toBe(`/crm/accounts/${nordic}?tab=people`);
    const unlink = await rep.htmxPost(`/crm/accounts/${nordic}/contacts/${liga}/unlink`, {});
    expect(unlink.status).toBe(200);
    expect(visibleText(unlink.text)).toContain('Liga Ozola unlinked.');
    expect(await knex()('crm_account_contacts').where({ account_id: nordic, contact_id: liga }).first()).toBeUndefined();
    const log = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id').where({ 'j.journalized_type': 'personal_contact', 'j.journalized_id': liga }).orderBy('j.id').select('d.field', 'd.old_value', 'd.new_value');
    expect(log).toEqual([{ field: 'accounts', old_value: null, new_value: `+Nordic Retail Group (#${nordic})` }, { field: 'accounts', old_value: `Nordic Retail Group (#${nordic})`, new_value: null }]);
  });

  test('two simultaneous links of the same contact make one link, journaled once; the second answers as a repeated link', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const nordic = await accountId('Nordic Retail Group');
    const contact = await newContact('rep1', { first_name: 'Dora', last_name: 'Doublesubmit', project_id: project('crm-europe') });
    const link = () => rep.post(`/crm/accounts/${nordic}/contacts`, { contact: String(contact), role: 'Buyer' });
    const answers = await racing(knex(), 'crm_account_contacts', [link, link]);
    expect(answers.map((a) => a.status).sort()).toEqual([303, 422]);
    const refused = answers.find((a) => a.status === 422)!;
    expect(visibleText(refused.text)).toContain('Dora Doublesubmit is already linked to this account');
    expect(await knex()('crm_account_contacts').where({ account_id: nordic, contact_id: contact })).toEqual([{ account_id: nordic, contact_id: contact, role: 'Buyer' }]);
    const changes = (type: string, id: number, field: string) => knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': type, 'j.journalized_id': id, 'd.field': field }).pluck('d.new_value');
    expect(await changes('personal_contact', contact, 'accounts')).toEqual([`+Nordic Retail Group (#${nordic})`]);
    expect((await changes('account', nordic, 'contacts')).filter((v: string | null) => v?.includes(`(#${contact})`))).toEqual([`+Dora Doublesubmit (Buyer) (#${contact})`]);
  });

  test('a contact linked to an account the user can see is visible to them', async () => {
    const hidden = await newContact('rep2', { last_name: 'Viaaccount' }); // no project: only rep2 (and admins) see it
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/personal-contacts/${hidden}`)).status).toBe(404);
    await knex()('crm_account_contacts').insert({ account_id: await accountId('Acme Manufacturing'), contact_id: hidden, role: '' });
    expect((await rep1.get(`/crm/personal-contacts/${hidden}`)).status).toBe(200);
    expect(listedNames((await rep1.get('/crm/personal-contacts?q=viaaccount')).text)).toEqual(['Viaaccount']);
  });
});

describe('history of links between contacts and accounts', () => {
  test('names the account or the contact only to readers who may see it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    const [secretAccount] = await knex()('crm_accounts').insert({ account_type_id: Number((await knex()('crm_account_types').first()).id), name: 'Quietly Private AB', author_id: host.demo.users.rep1.id, is_private: true }).returning('id');
    const secret = Number(secretAccount.id ?? secretAccount);
    const shared = await newContact('rep1', { last_name: 'Sharedsson', project_id: project('crm-europe') });
    // A contact in no project is seen by its author alone.
    const own = await newContact('rep1', { last_name: 'Ownonly' });
    const acme = await accountId('Acme Manufacturing');
    expect((await rep1.post(`/crm/accounts/${secret}/contacts`, { contact: String(shared), role: 'Buyer' })).status).toBe(303);
    expect((await rep1.post(`/crm/accounts/${acme}/contacts`, { contact: String(own) })).status).toBe(303);
    expect((await rep1.post(`/crm/accounts/${acme}/contacts/${own}/unlink`, {})).status).toBe(303);

    const contactHistory = visibleText((await director.get(`/crm/personal-contacts/${shared}?tab=history`)).text);
    expect(contactHistory).toMatch(/Accounts : \(empty\) → an account you cannot see/);
    expect(contactHistory).not.toContain('Quietly');
    const accountHistory = visibleText((await director.get(`/crm/accounts/${acme}?tab=history`)).text);
    expect(accountHistory).toMatch(/Contacts : \(empty\) → a contact you cannot see/);
    expect(accountHistory).toMatch(/Contacts : a contact you cannot see → \(empty\)/);
    expect(accountHistory).not.toContain('Ownonly');
    // The author sees both names.
    expect(visibleText((await rep1.get(`/crm/personal-contacts/${shared}?tab=history`)).text)).toContain(`+Quietly Private AB (#${secret})`);
    expect(visibleText((await rep1.get(`/crm/accounts/${acme}?tab=history`)).text)).toContain(`+Ownonly (#${own})`);
  });
});

describe('visibility of personal contacts (S3)', () => {
  test("'own' for the Sales rep role: a rep sees only contacts they own or created", async () => {
    const role = await salesRep();
    const other = await newContact('rep2', { last_name: 'Ownedbyrita', project_id: project('crm') });
    const mine = await newContact('rep2', { last_name: 'Ownedbyrick', project_id: project('crm'), owner_id: String(host.demo.users.rep1.id) });
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/personal-contacts/${other}`)).status).toBe(200); // default: all
    await knex()('crm_role_visibility').insert({ role_id: role, entity: 'personal_contacts', level: 'own' });
    try {
      expect((await rep1.get(`/crm/personal-contacts/${other}`)).status).toBe(404);
      expect((await rep1.get(`/crm/personal-contacts/${mine}`)).status).toBe(200);
      const names = listedNames((await rep1.get('/crm/personal-contacts?q=ownedby')).text);
      expect(names).toEqual(['Ownedbyrick']);
    } finally {
      await knex()('crm_role_visibility').where({ role_id: role, entity: 'personal_contacts' }).delete();
    }
  });

  test("a supervisor with 'own + subordinates' sees a subordinate's contact but cannot edit it", async () => {
    const role = await salesRep();
    const id = await newContact('rep2', { last_name: 'Subordinates', project_id: project('crm') });
    const supervisors = await knex()('crm_user_supervisors').select('user_id', 'supervisor_id');
    await knex()('crm_user_supervisors').delete();
    await knex()('crm_role_visibility').insert({ role_id: role, entity: 'personal_contacts', level: 'subordinates' });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get(`/crm/personal-contacts/${id}`)).status).toBe(404); // not yet their team
      await knex()('crm_user_supervisors').insert({ user_id: host.demo.users.rep2.id, supervisor_id: host.demo.users.rep1.id });
      const page = await rep1.get(`/crm/personal-contacts/${id}`);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('id="edit-contact"');
      expect((await rep1.get(`/crm/personal-contacts/${id}/edit`)).status).toBe(403);
      expect((await rep1.post(`/crm/personal-contacts/${id}`, { last_name: 'Hijacked', lock_version: '0' })).status).toBe(403);
      expect((await knex()('crm_personal_contacts').where({ id }).first()).last_name).toBe('Subordinates');
    } finally {
      await knex()('crm_role_visibility').where({ role_id: role, entity: 'personal_contacts' }).delete();
      await knex()('crm_user_supervisors').delete();
      if (supervisors.length) await knex()('crm_user_supervisors').insert(supervisors);
    }
  });

  test("a partner user sees only their partner's consultants", async () => {
    const [row] = await knex()('crm_partners').insert({ name: 'Contacts Test Partner', project_id: host.demo.projects['crm-americas'].id, author_id: host.demo.users.director.id }).returning('id');
    const partner = Number(row.id ?? row);
    const consultant = await newContact('rep2', { last_name: 'Consultantofpartner', partner_id: String(partner), project_id: project('crm-americas') });
    const other = await newContact('rep2', { last_name: 'Notapartnerone', project_id: project('crm-americas') });
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/personal-contacts/${other}`)).status).toBe(200);
    await knex()('crm_partner_users').insert({ partner_id: partner, user_id: host.demo.users.rep2.id });
    try {
      const list = await rep2.get('/crm/personal-contacts.json');
      expect(list.body.personal_contacts.map((c: { name: string }) => c.name)).toEqual(['Consultantofpartner']);
      expect((await rep2.get(`/crm/personal-contacts/${other}`)).status).toBe(404);
      expect((await rep2.get(`/crm/personal-contacts/${await contactId('Scorpio')}`)).status).toBe(404);
      expect((await rep2.get(`/crm/personal-contacts/${consultant}`)).status).toBe(200);
    } finally {
      await knex()('crm_partner_users').where({ partner_id: partner }).delete();
    }
  });
});

describe('the partner filter (A10)', () => {
  test('a filter on a partner the reader may not see is left out, and the list says so — HTML and JSON — so it reveals none of its consultants', async () => {
    const pacific = Number((await knex()('crm_partners').where({ name: 'Pacific Partners' }).first()).id); // crm-americas: rep1 is not there
    const consultant = await newContact('rep1', { last_name: 'Pacificconsultant', project_id: project('crm-europe') });
    await knex()('crm_personal_contacts').where({ id: consultant }).update({ partner_id: pacific });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const all = listedNames((await rep1.get('/crm/personal-contacts')).text);
      expect(all).toContain('Pacificconsultant');
      expect(all.length).toBeGreaterThan(1);
      // Not narrowed to the partner's consultants (Pacificconsultant alone), nor emptied: the whole list, with a notice.
      const page = await rep1.get(`/crm/personal-contacts?partner=${pacific}`);
      expect(listedNames(page.text)).toEqual(all);
      expect(visibleText(page.text)).toContain('Part of this filter no longer applies and was left out: a partner you cannot see.');
      expect(page.text).not.toContain('Pacific Partners');
      const fragment = await rep1.htmxGet(`/crm/personal-contacts?partner=${pacific}`);
      expect(listedNames(fragment.text)).toEqual(all);
      expect(visibleText(fragment.text)).toContain('left out: a partner you cannot see');
      const json = (await rep1.get(`/crm/personal-contacts.json?partner=${pacific}`)).body;
      expect(json.personal_contacts.map((c: { name: string }) => c.name)).toEqual((await rep1.get('/crm/personal-contacts.json')).body.personal_contacts.map((c: { name: string }) => c.name));
      expect(json.left_out_of_filter).toEqual(['a partner you cannot see']);
      expect(json.filters).not.toHaveProperty('partner');
      // A partner they may see still filters.
      const baltic = Number((await knex()('crm_partners').where({ name: 'Baltic Consulting' }).first()).id);
      const filtered = await rep1.get(`/crm/personal-contacts.json?partner=${baltic}`);
      expect(filtered.body.personal_contacts.map((c: { name: string }) => c.name)).toEqual(['Liga Ozola']);
      expect(filtered.body.left_out_of_filter).toBeUndefined();
      // Those who may see the partner find its consultant.
      const director = await Session.signIn(host.app, 'director');
      expect(listedNames((await director.get(`/crm/personal-contacts?q=pacificconsultant&partner=${pacific}`)).text)).toEqual(['Pacificconsultant']);
    } finally {
      await knex()('crm_personal_contacts').where({ id: consultant }).delete();
    }
  });
});

describe('new task from a contact', () => {
  test('offered when the contact has a project where the user may add tasks; creates a host task, journaled', async () => {
    const id = await newContact('rep1', { last_name: 'Taskable', project_id: project('crm-europe') });
    const rep = await Session.signIn(host.app, 'rep1');
    const page = await rep.get(`/crm/personal-contacts/${id}`);
    expect(page.text).toContain('id="new-task"');
    const bad = await rep.post(`/crm/personal-contacts/${id}/tasks`, { subject: '' });
    expect(bad.status).toBe(422);
    expect(visibleText(bad.text)).toContain('Subject is required');
    const res = await rep.htmxPost(`/crm/personal-contacts/${id}/tasks`, { subject: 'Call about the renewal' });
    expect(res.status).toBe(200);
    expect(visibleText(res.text)).toMatch(/Task #\d+ created: Call about the renewal/);
    const task = await knex()('tasks').where({ subject: 'Call about the renewal' }).first();
    expect(task.project_id).toBe(host.demo.projects['crm-europe'].id);
    const details = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id').where({ 'j.journalized_type': 'personal_contact', 'j.journalized_id': id, 'd.field': 'tasks' }).pluck('d.new_value');
    expect(details).toEqual([`#${task.id} Call about the renewal`]);

    const loose = await newContact('rep1', { last_name: 'Projectless' });
    expect((await rep.get(`/crm/personal-contacts/${loose}`)).text).not.toContain('id="new-task"');
    expect((await rep.post(`/crm/personal-contacts/${loose}/tasks`, { subject: 'No' })).status).toBe(404);
  });
});

describe('the partner field with more partners than a list holds (A9, A10)', () => {
  test('the contact form and the account’s partner form take an id, name the current partner, and keep it on saving', async () => {
    const europe = host.demo.projects['crm-europe'].id;
    const names = Array.from({ length: 230 }, (_, i) => `Yy Many Partner ${String(i + 1).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 50) await knex()('crm_partners').insert(names.slice(i, i + 50).map((name) => ({ name, project_id: europe })));
    const last = Number((await knex()('crm_partners').where({ name: names[names.length - 1] }).first()).id);
    try {
      const id = await newContact('director', { last_name: 'Manypartners', partner_id: String(last), project_id: project('crm-europe') });
      const director = await Session.signIn(host.app, 'director');
      const edit = await director.get(`/crm/personal-contacts/${id}/edit`);
      expect(edit.text).toContain(`<input name="partner_id" value="${last}"`);
      expect(visibleText(edit.text)).toContain(names[names.length - 1]);
      expect(edit.text).not.toContain(names[0]);
      const saved = await director.post(`/crm/personal-contacts/${id}`, { last_name: 'Manypartners renamed', partner_id: String(last), lock_version: '0' });
      expect(saved.status).toBe(303);
      expect(Number((await knex()('crm_personal_contacts').where({ id }).first()).partner_id)).toBe(last);
      const acme = await accountId('Acme Manufacturing');
      const assign = await director.agent.get(`/crm/accounts/${acme}/partner`).set('HX-Request', 'true').set('HX-Target', 'account-partner');
      expect(assign.text).toContain('<input name="partner_id" value=""');
      expect(assign.text).not.toContain(names[0]);
    } finally {
      await knex()('crm_personal_contacts').where({ last_name: 'Manypartners renamed' }).orWhere({ last_name: 'Manypartners' }).update({ partner_id: null });
      await knex()('crm_partners').whereIn('name', names).delete();
    }
  });
});
