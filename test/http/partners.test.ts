import { lockVersionIn, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const accountId = async (name: string) => Number((await knex()('crm_accounts').where({ name }).first()).id);
const partnerId = async (name: string) => Number((await knex()('crm_partners').where({ name }).orderBy('id', 'desc').first()).id);
const listedNames = (html: string) => [...html.matchAll(/<tr data-partner="\d+">\s*<td><a href="\/crm\/partners\/\d+">([^<]+)<\/a>/g)].map((m) => visibleText(m[1]));
const project = (key: string) => String(host.demo.projects[key].id);
const salesRep = async () => Number((await knex()('roles').where({ name: 'Sales rep' }).first()).id);

async function newPartner(login: string, form: Record<string, string>): Promise<number> {
  const s = await Session.signIn(host.app, login);
  const res = await s.post('/crm/partners', form);
  if (res.status !== 303) throw new Error(`create failed ${res.status}: ${visibleText(res.text).slice(0, 300)}`);
  return Number(/\/crm\/partners\/(\d+)$/.exec(res.headers.location)![1]);
}

/** What htmx sends from the account page's "Assign to partner" sidebar item. */
const assignFromSidebar = (s: Session, account: number, form: Record<string, string>) =>
  s.agent.post(`/crm/accounts/${account}/partner`).type('form').set('HX-Request', 'true').set('HX-Target', 'account-partner').set('X-CSRF-Token', s.csrf).send(form);

describe('partners: create, show, edit, delete (A10, P5, P6)', () => {
  test('the director creates a partner; detail as full page, htmx fragment and JSON; listed, searched, sorted', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect(visibleText((await director.get('/crm/partners/new')).text)).toContain('New partner');
    const res = await director.post('/crm/partners', { name: 'Fjord Advisors', email: 'hi@fjord.example', website: 'https://fjord.example', city: 'Bergen', country: 'Norway', project_id: project('crm-europe') });
    expect(res.status).toBe(303);
    const id = await partnerId('Fjord Advisors');
    expect(res.headers.location).toBe(`/crm/partners/${id}`);
    expect(await knex()('crm_partners').where({ id }).first()).toMatchObject({ project_id: host.demo.projects['crm-europe'].id, author_id: host.demo.users.director.id, lock_version: 0 });
    const full = await director.get(`/crm/partners/${id}`);
    expect(full.text).toContain('<html');
    const text = visibleText(full.text);
    expect(text).toContain('Fjord Advisors');
    expect(text).toContain('No consultants yet.');
    expect(text).toContain('No accounts assigned to this partner.');
    expect(text).toContain('No opportunities assigned to this partner that you can see.');
    const fragment = await director.htmxGet(`/crm/partners/${id}`);
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    const json = (await director.get(`/crm/partners/${id}.json`)).body;
    expect(json.partner).toMatchObject({ id, name: 'Fjord Advisors', city: 'Bergen' });
    expect(json.opportunities).toEqual([]);

    expect(listedNames((await director.get('/crm/partners')).text)).toEqual(['Baltic Consulting', 'Fjord Advisors', 'Pacific Partners']);
    expect(listedNames((await director.get('/crm/partners?sort=name&dir=desc')).text)).toEqual(['Pacific Partners', 'Fjord Advisors', 'Baltic Consulting']);
    expect(listedNames((await director.get('/crm/partners?q=bergen')).text)).toEqual(['Fjord Advisors']);
    expect(listedNames((await director.get('/projects/crm-europe/crm/partners')).text)).toEqual(['Baltic Consulting', 'Fjord Advisors']);
    expect(listedNames((await director.get('/projects/crm-americas/crm/partners')).text)).toEqual(['Pacific Partners']);
    const list = (await director.get('/crm/partners.json?q=baltic')).body;
    expect(list.partners).toEqual([expect.objectContaining({ name: 'Baltic Consulting', consultants: 1, accounts: 1, manager: 'Rick Rep' })]);
    expect(list.pagination).toMatchObject({ page: 1, total: 1 });
    expect((await knex()('crm_journals').where({ journalized_type: 'partner', journalized_id: id })).map((j) => j.action)).toEqual(['create']);
  });

  test('edit through htmx, journaled and on the History tab; a stale save answers 409 keeping the input', async () => {
    const id = await newPartner('rep1', { name: 'Edit Me Partners', city: 'Tartu', project_id: project('crm-europe') });
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.get(`/crm/partners/${id}/edit`)).text).toContain('name="lock_version" value="0"');
    const res = await rep.htmxPost(`/crm/partners/${id}`, { name: 'Edit Me Partners', city: 'Tallinn', lock_version: '0' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:partnerSaved');
    expect(visibleText(res.text)).toContain('Partner saved.');
    const history = visibleText((await rep.get(`/crm/partners/${id}?tab=history`)).text);
    expect(history).toContain('City : Tartu → Tallinn');
    expect(history).toContain('Rick Rep · create');
    const stale = await rep.htmxPost(`/crm/partners/${id}`, { name: 'Edit Me Partners', city: 'Narva', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('changed by someone else');
    expect(stale.text).toContain('value="Narva"');
    expect((await knex()('crm_partners').where({ id }).first()).city).toBe('Tallinn');
    expect(lockVersionIn(stale.text)).toBe('1');
    expect((await rep.htmxPost(`/crm/partners/${id}`, { name: 'Edit Me Partners', city: 'Narva', lock_version: lockVersionIn(stale.text) })).status).toBe(200);
    expect((await knex()('crm_partners').where({ id }).first()).city).toBe('Narva');
  });

  test('bad input → 422 naming the field; HTML is escaped', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const res = await rep.post('/crm/partners', { name: '', email: 'nope', website: 'javascript:alert(1)' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="name"');
    expect(visibleText(res.text)).toContain('Name is required');
    expect(visibleText(res.text)).toContain('Email is not an email address');
    expect(visibleText(res.text)).toContain('Website must start with http:// or https://');
    const json = await rep.agent.post('/crm/partners').set('Accept', 'application/json').set('X-CSRF-Token', rep.csrf).send({ name: 'x', manager_id: '99999' });
    expect(json.status).toBe(422);
    expect(json.body.fields).toEqual({ manager_id: 'Choose a manager from the list' });
    const id = await newPartner('rep1', { name: '<b onmouseover=alert(1)>Bold</b>', project_id: project('crm-europe') });
    const page = await rep.get(`/crm/partners/${id}`);
    expect(page.text).not.toContain('<b onmouseover');
    expect(page.text).toContain('&lt;b onmouseover=alert(1)&gt;Bold&lt;/b&gt;');
    expect((await rep.get('/crm/partners?q=bold')).text).not.toContain('<b onmouseover');
  });

  test('delete needs the permission and a confirmation, is soft and journaled; then 404', async () => {
    const id = await newPartner('director', { name: 'Short Lived', project_id: project('crm') });
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(`/crm/partners/${id}/delete`, { confirm: '1' })).status).toBe(404);
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post(`/crm/partners/${id}/delete`, {})).status).toBe(422);
    const res = await director.htmxPost(`/crm/partners/${id}/delete`, { confirm: '1' });
    expect(res.status).toBe(204);
    expect(res.headers['hx-redirect']).toBe('/crm/partners');
    expect((await knex()('crm_partners').where({ id }).first()).deleted_at).not.toBeNull();
    expect((await director.get(`/crm/partners/${id}`)).status).toBe(404);
    expect(listedNames((await director.get('/crm/partners?q=short')).text)).toEqual([]);
    expect(await knex()('crm_journals').where({ journalized_type: 'partner', journalized_id: id }).orderBy('id').pluck('action')).toEqual(['create', 'delete']);
  });

  test('deleting a partner frees what it managed: its accounts, consultants and opportunities lose the partner (journaled on each), and its users no longer see them', async () => {
    const id = await newPartner('director', { name: 'Leaving Partner', project_id: project('crm-americas') });
    const globex = await accountId('Globex Corporation');
    const opp = Number((await knex()('crm_opportunities').where({ name: 'Globex – data platform' }).first()).id);
    const [contactRow] = await knex()('crm_personal_contacts').insert({ last_name: 'Consultantson', partner_id: id, project_id: host.demo.projects['crm-americas'].id }).returning('id');
    const consultant = Number(contactRow.id ?? contactRow);
    const versions = { account: (await knex()('crm_accounts').where({ id: globex }).first()).lock_version, opportunity: (await knex()('crm_opportunities').where({ id: opp }).first()).lock_version };
    await knex()('crm_accounts').where({ id: globex }).update({ partner_id: id });
    await knex()('crm_opportunities').where({ id: opp }).update({ partner_id: id });
    await knex()('crm_partner_users').insert({ partner_id: id, user_id: host.demo.users.rep2.id });
    const rep2 = await Session.signIn(host.app, 'rep2');
    try {
      expect((await rep2.get(`/crm/accounts/${globex}`)).status).toBe(200);
      const director = await Session.signIn(host.app, 'director');
      expect((await director.post(`/crm/partners/${id}/delete`, { confirm: '1' })).status).toBe(303);

      expect((await rep2.get(`/crm/accounts/${globex}`)).status).toBe(404);
      expect((await rep2.get(`/crm/opportunities/${opp}`)).status).toBe(404);
      expect((await rep2.get(`/crm/personal-contacts/${consultant}`)).status).toBe(404);
      expect((await rep2.get('/crm/accounts.json')).body.accounts).toEqual([]);
      const account = await knex()('crm_accounts').where({ id: globex }).first();
      expect(account.partner_id).toBeNull();
      expect(account.lock_version).toBe(versions.account + 1);
      expect((await knex()('crm_opportunities').where({ id: opp }).first()).partner_id).toBeNull();
      expect((await knex()('crm_personal_contacts').where({ id: consultant }).first()).partner_id).toBeNull();
      const cleared = async (type: string, recordId: number) => knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
        .where({ 'j.journalized_type': type, 'j.journalized_id': recordId, 'd.field': 'partner_id' }).orderBy('j.id', 'desc').first('d.old_value', 'd.new_value');
      for (const [type, recordId] of [['account', globex], ['opportunity', opp], ['personal_contact', consultant]] as const) {
        expect(await cleared(type, recordId)).toEqual({ old_value: String(id), new_value: null });
      }
      const page = visibleText((await director.get(`/crm/accounts/${globex}?tab=history`)).text);
      expect(page).toContain('Its partner was deleted');
      expect(page).not.toContain('Leaving Partner');
    } finally {
      await knex()('crm_partner_users').where({ partner_id: id }).delete();
      await knex()('crm_accounts').where({ id: globex }).update({ partner_id: null });
      await knex()('crm_opportunities').where({ id: opp }).update({ partner_id: null });
      await knex()('crm_personal_contacts').where({ id: consultant }).delete();
    }
  });

  test('the list counts only the consultants and accounts the reader may see, as the partner page lists them', async () => {
    const baltic = await partnerId('Baltic Consulting');
    const director = host.demo.users.director.id;
    const type = Number((await knex()('crm_accounts').first('account_type_id')).account_type_id);
    const [accountRow] = await knex()('crm_accounts').insert({ name: 'Director Private Ltd', account_type_id: type, is_private: true, author_id: director, partner_id: baltic }).returning('id');
    const [contactRow] = await knex()('crm_personal_contacts').insert({ last_name: 'Unseenconsultant', partner_id: baltic, project_id: host.demo.projects['crm-americas'].id, author_id: director }).returning('id');
    try {
      const counts = async (login: string) => {
        const s = await Session.signIn(host.app, login);
        const row = (await s.get('/crm/partners.json?q=baltic')).body.partners.find((p: { id: number }) => p.id === baltic);
        const page = (await s.get(`/crm/partners/${baltic}.json`)).body;
        return { listed: { consultants: row.consultants, accounts: row.accounts }, shown: { consultants: page.consultants.length, accounts: page.accounts.length } };
      };
      const rep = await counts('rep1');
      expect(rep.listed).toEqual(rep.shown);
      const boss = await counts('director');
      expect(boss.listed).toEqual(boss.shown);
      expect(boss.listed.accounts).toBe(rep.listed.accounts + 1);
    } finally {
      await knex()('crm_accounts').where({ id: Number(accountRow.id ?? accountRow) }).delete();
      await knex()('crm_personal_contacts').where({ id: Number(contactRow.id ?? contactRow) }).delete();
    }
  });

  test('a partner user is not offered to add partners and is refused (403) — a new partner would vanish from them at once', async () => {
    const pacific = await partnerId('Pacific Partners');
    await knex()('crm_partner_users').insert({ partner_id: pacific, user_id: host.demo.users.rep2.id });
    try {
      const rep2 = await Session.signIn(host.app, 'rep2');
      const list = await rep2.get('/crm/partners');
      expect(list.status).toBe(200);
      expect(list.text).not.toContain('href="/crm/partners/new"');
      const form = await rep2.get('/crm/partners/new');
      expect(form.status).toBe(403);
      expect(visibleText(form.text)).toContain('Partner users do not add partners');
      const res = await rep2.post('/crm/partners', { name: 'Vanishing Partner', project_id: project('crm-americas') });
      expect(res.status).toBe(403);
      expect(await knex()('crm_partners').where({ name: 'Vanishing Partner' })).toEqual([]);
      const other = await Session.signIn(host.app, 'rep1');
      expect((await other.get('/crm/partners')).text).toContain('href="/crm/partners/new"');
    } finally {
      await knex()('crm_partner_users').where({ partner_id: pacific }).delete();
      await knex()('crm_partners').where({ name: 'Vanishing Partner' }).delete();
    }
  });

  test('ids that do not exist or cannot be seen answer 404 everywhere', async () => {
    const pacific = await partnerId('Pacific Partners'); // crm-americas: rep1 is not there
    const rep1 = await Session.signIn(host.app, 'rep1');
    for (const id of [pacific, 999999, 'x1']) {
      expect((await rep1.get(`/crm/partners/${id}`)).status).toBe(404);
      expect((await rep1.get(`/crm/partners/${id}.json`)).status).toBe(404);
      expect((await rep1.get(`/crm/partners/${id}/edit`)).status).toBe(404);
      expect((await rep1.post(`/crm/partners/${id}`, { name: 'X', lock_version: '0' })).status).toBe(404);
    }
    // As a link target: a contact's partner, an account's partner.
    expect((await rep1.post('/crm/personal-contacts', { last_name: 'Linky', partner_id: String(pacific) })).status).toBe(404);
    expect((await rep1.get(`/crm/personal-contacts/new?partner_id=${pacific}`)).status).toBe(404);
    const acme = await knex()('crm_accounts').where({ name: 'Acme Manufacturing' }).first();
    expect((await rep1.post(`/crm/accounts/${acme.id}/partner`, { partner_id: String(pacific), lock_version: String(acme.lock_version) })).status).toBe(404);
    expect((await knex()('crm_accounts').where({ id: acme.id }).first()).partner_id).toBeNull();
  });
});

describe('consultants and managed accounts (A9, A10)', () => {
  test('"New consultant" from the partner page: prefilled, then listed as a consultant on the partner', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const baltic = await partnerId('Baltic Consulting');
    const page = await rep.get(`/crm/partners/${baltic}`);
    expect(visibleText(page.text)).toContain('Liga Ozola');
    expect(visibleText(page.text)).toContain('Nordic Retail Group');
    expect(page.text).toContain(`/crm/personal-contacts/new?partner_id=${baltic}&amp;contact_type=Consultant`);
    const form = await rep.get(`/crm/personal-contacts/new?partner_id=${baltic}&contact_type=Consultant`);
    const consultantType = Number((await knex()('crm_contact_types').where({ name: 'Consultant' }).first()).id);
    expect(form.text).toContain(`<option value="${consultantType}" selected>`);
    expect(form.text).toContain(`<option value="${baltic}" selected>`);
    expect(form.text).toContain(`<option value="${project('crm-europe')}" selected>`);
    const res = await rep.post('/crm/personal-contacts', { contact_type_id: String(consultantType), first_name: 'Janis', last_name: 'Berzins', partner_id: String(baltic), project_id: project('crm-europe') });
    expect(res.status).toBe(303);
    const consultants = (await rep.get(`/crm/partners/${baltic}.json`)).body.consultants.map((c: { last_name: string }) => c.last_name);
    expect(consultants).toEqual(['Berzins', 'Ozola']);
  });

  test('assign an account to a partner from the account sidebar: htmx fragment, no-JS 303, journaled, shown on the partner', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const acme = await accountId('Acme Manufacturing');
    const baltic = await partnerId('Baltic Consulting');
    const accountPage = await rep.get(`/crm/accounts/${acme}`);
    expect(accountPage.text).toContain(`hx-get="/crm/accounts/${acme}/partner"`);
    expect(visibleText(accountPage.text)).toContain('Assign to partner');
    const formItem = await rep.agent.get(`/crm/accounts/${acme}/partner`).set('HX-Request', 'true').set('HX-Target', 'account-partner');
    expect(formItem.text.trim().startsWith('<li id="account-partner"')).toBe(true);
    expect(visibleText(formItem.text)).toContain('Partner: none');
    expect(formItem.text).toContain(`<option value="${baltic}" >Baltic Consulting</option>`);
    expect(formItem.text).not.toContain('Pacific Partners');
    const noJsPage = await rep.get(`/crm/accounts/${acme}/partner`);
    expect(noJsPage.text).toContain('<html');
    expect(visibleText(noJsPage.text)).toContain('Acme Manufacturing · Assign to partner');

    const lock = Number((await knex()('crm_accounts').where({ id: acme }).first()).lock_version);
    const res = await assignFromSidebar(rep, acme, { partner_id: String(baltic), lock_version: String(lock) });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:accountSaved');
    expect(visibleText(res.text)).toContain('Assigned to Baltic Consulting.');
    expect(visibleText(res.text)).toContain('Partner: Baltic Consulting');
    expect(res.text).toContain(`name="lock_version" value="${lock + 1}"`);
    expect(await knex()('crm_accounts').where({ id: acme }).first()).toMatchObject({ partner_id: baltic, lock_version: lock + 1 });
    const details = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id').where({ 'j.journalized_type': 'account', 'j.journalized_id': acme, 'd.field': 'partner_id' }).select('d.old_value', 'd.new_value');
    expect(details).toEqual([{ old_value: null, new_value: String(baltic) }]);
    expect(visibleText((await rep.get(`/crm/accounts/${acme}?tab=history`)).text)).toMatch(new RegExp(`partner(_id)? : \\(empty\\) → (Baltic Consulting|${baltic})`, 'i'));
    expect(visibleText((await rep.get(`/crm/partners/${baltic}`)).text)).toContain('Acme Manufacturing');

    const stale = await assignFromSidebar(rep, acme, { partner_id: '', lock_version: String(lock) });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('changed by someone else');
    expect((await knex()('crm_accounts').where({ id: acme }).first()).partner_id).toBe(baltic);
    const plain = await rep.post(`/crm/accounts/${acme}/partner`, { partner_id: '', lock_version: String(lock + 1) });
    expect(plain.status).toBe(303);
    expect(plain.headers.location).toBe(`/crm/accounts/${acme}`);
    expect((await knex()('crm_accounts').where({ id: acme }).first()).partner_id).toBeNull();
    // The project manager may view the account but not change it: no action, and the route answers 404.
    const pm = await Session.signIn(host.app, 'pm');
    const parts = await accountId('Parts & Bolts Supply');
    expect((await pm.get(`/crm/accounts/${parts}`)).text).not.toContain('id="account-partner"');
    expect((await pm.post(`/crm/accounts/${parts}/partner`, { partner_id: String(baltic), lock_version: '0' })).status).toBe(404);
  });
});

describe('visibility of partners (S3) and partner users (A10)', () => {
  test("'own' for the Sales rep role: a rep sees only partners they manage or created", async () => {
    const role = await salesRep();
    const theirs = await newPartner('rep2', { name: 'Own Test Rita', project_id: project('crm'), manager_id: String(host.demo.users.rep2.id) });
    const mine = await newPartner('rep2', { name: 'Own Test Rick', project_id: project('crm'), manager_id: String(host.demo.users.rep1.id) });
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect(listedNames((await rep1.get('/crm/partners?q=own+test')).text)).toEqual(['Own Test Rick', 'Own Test Rita']);
    await knex()('crm_role_visibility').insert({ role_id: role, entity: 'partners', level: 'own' });
    try {
      expect(listedNames((await rep1.get('/crm/partners?q=own+test')).text)).toEqual(['Own Test Rick']);
      expect((await rep1.get(`/crm/partners/${theirs}`)).status).toBe(404);
      expect((await rep1.get(`/crm/partners/${mine}`)).status).toBe(200);
    } finally {
      await knex()('crm_role_visibility').where({ role_id: role, entity: 'partners' }).delete();
    }
  });

  test("a supervisor with 'own + subordinates' sees a subordinate's partner but cannot edit it", async () => {
    const role = await salesRep();
    const id = await newPartner('rep2', { name: 'Team Partner', project_id: project('crm'), manager_id: String(host.demo.users.rep2.id) });
    const supervisors = await knex()('crm_user_supervisors').select('user_id', 'supervisor_id');
    await knex()('crm_user_supervisors').delete();
    await knex()('crm_role_visibility').insert({ role_id: role, entity: 'partners', level: 'subordinates' });
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get(`/crm/partners/${id}`)).status).toBe(404);
      await knex()('crm_user_supervisors').insert({ user_id: host.demo.users.rep2.id, supervisor_id: host.demo.users.rep1.id });
      const page = await rep1.get(`/crm/partners/${id}`);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('id="edit-partner"');
      expect((await rep1.get(`/crm/partners/${id}/edit`)).status).toBe(403);
      expect((await rep1.post(`/crm/partners/${id}`, { name: 'Hijacked', lock_version: '0' })).status).toBe(403);
      expect((await knex()('crm_partners').where({ id }).first()).name).toBe('Team Partner');
    } finally {
      await knex()('crm_role_visibility').where({ role_id: role, entity: 'partners' }).delete();
      await knex()('crm_user_supervisors').delete();
      if (supervisors.length) await knex()('crm_user_supervisors').insert(supervisors);
    }
  });

  test('an admin links a host user to a partner; that partner user then sees only its partner, consultants and accounts', async () => {
    const pacific = await partnerId('Pacific Partners');
    const other = await newPartner('rep2', { name: 'Other Americas Partner', project_id: project('crm-americas') });
    const globex = await accountId('Globex Corporation');
    await knex()('crm_accounts').where({ id: globex }).update({ partner_id: pacific });
    const admin = await Session.signIn(host.app, 'admin');
    const rep2 = await Session.signIn(host.app, 'rep2');
    const rep2Id = host.demo.users.rep2.id;
    try {
      // Only CRM settings managers link users.
      expect((await rep2.post(`/crm/partners/${pacific}/users`, { user_id: String(rep2Id), linked: '1' })).status).toBe(404);
      const page = await admin.get(`/crm/partners/${pacific}`);
      expect(visibleText(page.text)).toContain('Partner users No users linked.');
      const res = await admin.htmxPost(`/crm/partners/${pacific}/users`, { user_id: String(rep2Id), linked: '1' });
      expect(res.status).toBe(200);
      expect(visibleText(res.text)).toContain('Rita Rep is now a user of this partner.');
      expect(await knex()('crm_partner_users').where({ partner_id: pacific }).pluck('user_id')).toEqual([rep2Id]);
      expect((await admin.post(`/crm/partners/${pacific}/users`, { user_id: '99999', linked: '1' })).status).toBe(422);
      const details = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id').where({ 'j.journalized_type': 'partner', 'j.journalized_id': pacific, 'd.field': 'users' }).select('d.old_value', 'd.new_value');
      expect(details).toEqual([{ old_value: null, new_value: 'rep2' }]);

      expect(listedNames((await rep2.get('/crm/partners')).text)).toEqual(['Pacific Partners']);
      expect((await rep2.get(`/crm/partners/${other}`)).status).toBe(404);
      expect((await rep2.get('/crm/accounts.json')).body.accounts.map((a: { name: string }) => a.name)).toEqual(['Globex Corporation']);
      expect((await rep2.get(`/crm/personal-contacts/${Number((await knex()('crm_personal_contacts').where({ last_name: 'Scorpio' }).first()).id)}`)).status).toBe(404);

      const unlink = await admin.post(`/crm/partners/${pacific}/users`, { user_id: String(rep2Id), linked: '0' });
      expect(unlink.status).toBe(303);
      expect(await knex()('crm_partner_users').where({ partner_id: pacific }).first()).toBeUndefined();
      expect(listedNames((await rep2.get('/crm/partners')).text)).toEqual(expect.arrayContaining(['Other Americas Partner', 'Pacific Partners']));
    } finally {
      await knex()('crm_partner_users').where({ partner_id: pacific }).delete();
      await knex()('crm_accounts').where({ id: globex }).update({ partner_id: null });
    }
  });
});
