import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';

/** O2, A5, C3: saving, refusing and deleting saved filters through the HTML forms, and the default filter per role. */
let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const storedFilters = async () => Number((await knex()('crm_saved_filters').count({ n: '*' }))[0].n);
const statusId = async (name: string) => Number((await knex()('crm_opportunity_statuses').where({ name }).first()).id);
const roleId = async (name: string) => Number((await knex()('roles').where({ name }).first()).id);
/** The markup of the form posting to `action` (the one saving a list's filter: `<list>/filters`). */
const saveForm = (html: string, action: string) => {
  const form = new RegExp(`<form method="post" action="${action}"[^>]*>[\\s\\S]*?</form>`).exec(html);
  if (!form) throw new Error(`No form posting to ${action}`);
  return form[0];
};
/** The value a form's input `name` carries, as the browser would send it. */
const valueOf = (html: string, name: string) => {
  const input = new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(html)?.[0] ?? '';
  return /value="([^"]*)"/.exec(input)?.[1].replace(/&#34;|&quot;/g, '"').replace(/&amp;/g, '&') ?? null;
};

describe('a refused filter name through the plain form (O2, A5, C3)', () => {
  test('an empty name on the account list gives the list again: its conditions, “Share” as ticked, the message at the name field, 422, nothing stored', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const before = await storedFilters();
    const res = await rep1.post('/crm/accounts/filters', { filter_name: '   ', q: 'acme', key_account: '1', is_shared: '1' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('<html');
    expect(res.text).toContain('<h2>Accounts</h2>');
    // The list's own filter form shows the conditions, and saving again would send them.
    expect(res.text).toMatch(/<input type="search" name="q" value="acme"/);
    expect(res.text).toMatch(/<input type="checkbox" name="key_account" value="1" checked>/);
    const form = saveForm(res.text, '/crm/accounts/filters');
    expect(valueOf(form, 'q')).toBe('acme');
    expect(valueOf(form, 'key_account')).toBe('1');
    expect(form).toMatch(/name="is_shared" value="1" checked/);
    expect(visibleText(form)).toContain('Save this filter as Name is required');
    expect(await storedFilters()).toBe(before);
  });

  test('a name that is too long comes back as typed, with the limit, on the project list it was saved from', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const before = await storedFilters();
    const long = 'Key accounts in the Nordics, '.repeat(4).trim();
    expect(long.length).toBeGreaterThan(100);
    const res = await rep1.post('/crm/accounts/filters', { filter_name: long, key_account: '1', list_project: 'crm-europe' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('action="/projects/crm-europe/crm/accounts"');
    const form = saveForm(res.text, '/crm/accounts/filters');
    expect(valueOf(form, 'filter_name')).toBe(long);
    expect(valueOf(form, 'list_project')).toBe('crm-europe');
    expect(visibleText(form)).toContain('Name is at most 100 characters');
    expect(await storedFilters()).toBe(before);
  });

  test('a project the user cannot open is not shown: the global list comes back instead', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const res = await rep1.post('/crm/accounts/filters', { filter_name: '', list_project: 'crm-asia' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('action="/crm/accounts"');
    expect(res.text).not.toContain('crm-asia');
  });

  test('100 characters are counted as a person counts them: 100 letters outside the BMP are a valid name', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const name = '𝒳'.repeat(100);
    const res = await rep1.post('/crm/contracts/filters', { filter_name: name, status: 'active' });
    expect(res.status).toBe(303);
    const stored = await knex()('crm_saved_filters').where({ entity: 'contracts', name }).first();
    expect(JSON.parse(stored.params)).toEqual({ status: 'active' });
    await knex()('crm_saved_filters').where({ id: stored.id }).delete();
  });

  test('a name one already uses on the contract list: the list again, naming the filter at the name field, the conditions kept', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/crm/contracts/filters', { filter_name: 'Ending soon', expiring: '30' })).status).toBe(303);
    const before = await storedFilters();
    try {
      const again = await rep1.post('/crm/contracts/filters', { filter_name: 'ending SOON', expiring: '60', status: 'active' });
      expect(again.status).toBe(422);
      expect(again.text).toContain('<h2>Contracts');
      const form = saveForm(again.text, '/crm/contracts/filters');
      expect(valueOf(form, 'filter_name')).toBe('ending SOON');
      expect(valueOf(form, 'expiring')).toBe('60');
      expect(valueOf(form, 'status')).toBe('active');
      expect(visibleText(form)).toContain('You already have a saved filter named “Ending soon”');
      expect(await storedFilters()).toBe(before);
    } finally {
      await knex()('crm_saved_filters').where({ entity: 'contracts', name: 'Ending soon' }).delete();
    }
  });

  test('the opportunity list, global or a project’s: the statuses kept, the name kept, the message at the field; a saved one goes back to that list', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const won = await statusId('Won');
    const proposal = await statusId('Proposal');
    const before = await storedFilters();
    const global = await rep1.post('/crm/opportunities/filters', { filter_name: '', status: [String(won), String(proposal)] });
    expect(global.status).toBe(422);
    expect(global.text).toContain('<h2>Opportunities</h2>');
    expect(global.text).toMatch(new RegExp(`class="status-tag on" data-status="${won}"`));
    expect(global.text).toMatch(new RegExp(`class="status-tag on" data-status="${proposal}"`));
    expect(visibleText(saveForm(global.text, '/crm/opportunities/filters'))).toContain('Name is required');

    const fromProject = await rep1.post('/crm/opportunities/filters', { filter_name: 'x'.repeat(101), status: String(won), list_project: 'crm-europe' });
    expect(fromProject.status).toBe(422);
    expect(fromProject.text).toContain('action="/projects/crm-europe/crm/opportunities"');
    expect(valueOf(saveForm(fromProject.text, '/crm/opportunities/filters'), 'filter_name')).toBe('x'.repeat(101));
    expect(await storedFilters()).toBe(before);

    // Conditions that are not valid (a forged form): the list says which, the save form that nothing was saved.
    const malformed = await rep1.post('/crm/opportunities/filters', { filter_name: 'Bad dates', close_from: '2027-13-01' });
    expect(malformed.status).toBe(422);
    expect(visibleText(malformed.text)).toContain('The filter was not applied: fix the fields marked below.');
    const malformedForm = saveForm(malformed.text, '/crm/opportunities/filters');
    expect(visibleText(malformedForm)).toContain('The filter was not saved: its conditions are not valid (see above).');
    expect(valueOf(malformedForm, 'filter_name')).toBe('Bad dates');
    expect(await storedFilters()).toBe(before);

    const saved = await rep1.post('/crm/opportunities/filters', { filter_name: 'Won in Europe', status: String(won), list_project: 'crm-europe' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe(`/projects/crm-europe/crm/opportunities?status=${won}`);
    await knex()('crm_saved_filters').where({ name: 'Won in Europe' }).delete();
  });

  test('htmx gets the list’s fragment with the message (422), not a bare message', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const before = await storedFilters();
    const res = await rep1.htmxPost('/crm/accounts/filters', { filter_name: '', q: 'acme' });
    expect(res.status).toBe(422);
    expect(res.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(res.text).not.toContain('<html');
    expect(visibleText(saveForm(res.text, '/crm/accounts/filters'))).toContain('Name is required');
    expect(valueOf(saveForm(res.text, '/crm/accounts/filters'), 'q')).toBe('acme');
    expect(await storedFilters()).toBe(before);
  });

  test('the JSON API still answers 422 with the field named', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const res = await rep1.agent.post('/crm/accounts/filters').type('form').set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({ filter_name: '' });
    expect(res.status).toBe(422);
    expect(res.body.fields).toEqual({ filter_name: 'Name is required' });
  });
});

describe('deleting a saved filter that is gone (O2, A5)', () => {
  test('a second “×” on a project’s account list (a double submit) gives that list again saying so, 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.post('/crm/accounts/filters', { filter_name: 'Soon gone', q: 'acme' })).status).toBe(303);
    const id = Number((await knex()('crm_saved_filters').where({ name: 'Soon gone' }).first()).id);
    const list = await rep1.get('/projects/crm-europe/crm/accounts');
    const deleteForm = saveForm(list.text, `/crm/accounts/filters/${id}/delete`);
    expect(valueOf(deleteForm, 'list_project')).toBe('crm-europe');
    const first = await rep1.post(`/crm/accounts/filters/${id}/delete`, { list_project: 'crm-europe' });
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe('/projects/crm-europe/crm/accounts');
    const again = await rep1.post(`/crm/accounts/filters/${id}/delete`, { list_project: 'crm-europe' });
    expect(again.status).toBe(404);
    expect(again.text).toContain('<h2>Accounts</h2>');
    expect(again.text).toContain('action="/projects/crm-europe/crm/accounts"');
    expect(visibleText(again.text)).toContain('This saved filter was not found: it may have been deleted already.');
    expect(await knex()('crm_saved_filters').where({ id }).first()).toBeUndefined();
  });

  test('on the saved filters page of the opportunities: that page again, saying so, 404; another user’s filter is left alone', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Directors only', q: 'acme', is_shared: '1' })).status).toBe(303);
    const id = Number((await knex()('crm_saved_filters').where({ name: 'Directors only' }).first()).id);
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const foreign = await rep1.post(`/crm/opportunities/filters/${id}/delete`);
      expect(foreign.status).toBe(404);
      expect(visibleText(foreign.text)).toContain('Saved filters');
      expect(visibleText(foreign.text)).toContain('This saved filter was not found: it may have been deleted already.');
      expect(await knex()('crm_saved_filters').where({ id }).first()).toBeDefined();
    } finally {
      await knex()('crm_saved_filters').where({ id }).delete();
    }
  });
});

describe('the default filters form (O2)', () => {
  test('a filter that is not shared: the form again with the choices made, the message at that role, 422, nothing stored or journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Shared pipeline', q: 'a', is_shared: '1' })).status).toBe(303);
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'My own pipeline', q: 'b' })).status).toBe(303);
    const shared = Number((await knex()('crm_saved_filters').where({ name: 'Shared pipeline' }).first()).id);
    const own = Number((await knex()('crm_saved_filters').where({ name: 'My own pipeline' }).first()).id);
    const rep = await roleId('Sales rep');
    const directorRole = await roleId('Sales director');
    const journals = Number((await knex()('crm_journals').count({ n: '*' }))[0].n);
    try {
      const res = await director.post('/crm/opportunities/filters/defaults', { [`role_${directorRole}`]: String(shared), [`role_${rep}`]: String(own) });
      expect(res.status).toBe(422);
      expect(res.text).toContain('<h3>Default filter per role</h3>');
      expect(res.text).toMatch(new RegExp(`<select name="role_${directorRole}">[\\s\\S]*?<option value="${shared}" selected>`));
      const repField = new RegExp(`<label>Sales rep <select name="role_${rep}">[\\s\\S]*?</select></label>\\s*<span class="field-error"[^>]*>([^<]*)</span>`).exec(res.text);
      expect(repField?.[1]).toBe('Choose a filter shared with everyone');
      expect(visibleText(res.text)).toContain('The default filters were not saved: only a filter shared with everyone can be a role’s default.');
      expect(Number((await knex()('crm_role_default_filters').count({ n: '*' }))[0].n)).toBe(0);
      expect(Number((await knex()('crm_journals').count({ n: '*' }))[0].n)).toBe(journals);
    } finally {
      await knex()('crm_saved_filters').whereIn('id', [shared, own]).delete();
    }
  });
});

describe('the default filter of a user with several roles (O2)', () => {
  test('the role listed first on the roles page wins on the global list, the project’s role on a project list; the list names filter and role; one lookup', async () => {
    const director = await Session.signIn(host.app, 'director');
    const won = await statusId('Won');
    const proposal = await statusId('Proposal');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Won deals (reps)', status: String(won), is_shared: '1' })).status).toBe(303);
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Proposals (PMs)', status: String(proposal), is_shared: '1' })).status).toBe(303);
    const wonFilter = Number((await knex()('crm_saved_filters').where({ name: 'Won deals (reps)' }).first()).id);
    const proposalFilter = Number((await knex()('crm_saved_filters').where({ name: 'Proposals (PMs)' }).first()).id);
    const rep = await roleId('Sales rep');
    const pm = await roleId('Project manager');
    // The demo numbers its roles in the order it lists them: the Sales rep's id is the lower one.
    expect(rep).toBeLessThan(pm);
    const positions = await knex()('roles').select('id', 'position');
    const asia = host.demo.projects['crm-asia'].id;
    const rep1 = host.demo.users.rep1.id;
    await knex()('members').insert({ project_id: asia, user_id: rep1, role_id: pm });
    try {
      const admin = await Session.signIn(host.app, 'admin');
      expect((await admin.post('/crm/opportunities/filters/defaults', { [`role_${rep}`]: String(wonFilter), [`role_${pm}`]: String(proposalFilter) })).status).toBe(303);
      // An admin moves the Project manager above the Sales rep on the roles page.
      await knex()('roles').where({ id: pm }).update({ position: -1 });
      const rolesPage = (await admin.get('/admin/roles')).text;
      expect(rolesPage.indexOf('<th>Project manager</th>')).toBeLessThan(rolesPage.indexOf('<th>Sales rep</th>'));
      const filtersPage = visibleText((await admin.get('/crm/opportunities/filters')).text);
      expect(filtersPage).toContain('A user with several roles gets the default of the role listed first here');
      expect(filtersPage.indexOf('Project manager')).toBeLessThan(filtersPage.indexOf('Sales rep'));

      const user = await Session.signIn(host.app, 'rep1');
      const { result: global, statements } = await statementsDuring(knex(), () => user.get('/crm/opportunities'));
      expect(visibleText(global.text)).toContain('Showing “Proposals (PMs)”, the default filter of your role Project manager.');
      expect(global.text).toMatch(new RegExp(`class="status-tag on" data-status="${proposal}"`));
      expect(global.text).not.toMatch(new RegExp(`class="status-tag on" data-status="${won}"`));
      expect(statements.filter((s) => s.sql.includes('crm_role_default_filters'))).toHaveLength(1);
      const json = await user.get('/crm/opportunities.json');
      expect(json.body.default_filter).toBe('Proposals (PMs)');
      expect(json.body.default_filter_role).toBe('Project manager');
      expect(new Set(json.body.opportunities.map((o: { status_id: number }) => o.status_id))).toEqual(new Set(json.body.opportunities.length ? [proposal] : []));

      // On a project's list only the user's role in that project counts.
      const europe = await user.get('/projects/crm-europe/crm/opportunities');
      expect(visibleText(europe.text)).toContain('Showing “Won deals (reps)”, the default filter of your role Sales rep.');
      const asiaList = await user.get('/projects/crm-asia/crm/opportunities');
      expect(visibleText(asiaList.text)).toContain('Showing “Proposals (PMs)”, the default filter of your role Project manager.');

      // Back in the demo's order, the Sales rep's default comes first again.
      for (const p of positions) await knex()('roles').where({ id: p.id }).update({ position: p.position });
      expect(visibleText((await user.get('/crm/opportunities')).text)).toContain('Showing “Won deals (reps)”, the default filter of your role Sales rep.');
    } finally {
      for (const p of positions) await knex()('roles').where({ id: p.id }).update({ position: p.position });
      await knex()('members').where({ project_id: asia, user_id: rep1 }).delete();
      await knex()('crm_role_default_filters').delete();
      await knex()('crm_saved_filters').whereIn('id', [wonFilter, proposalFilter]).delete();
    }
  });

  test('on the global list, a role held only in projects without the list (no CRM there) does not count, though listed first', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'Managers’ view', q: 'erp', is_shared: '1' })).status).toBe(303);
    expect((await director.post('/crm/opportunities/filters', { filter_name: 'PMs’ view', q: 'licences', is_shared: '1' })).status).toBe(303);
    const managers = Number((await knex()('crm_saved_filters').where({ name: 'Managers’ view' }).first()).id);
    const pms = Number((await knex()('crm_saved_filters').where({ name: 'PMs’ view' }).first()).id);
    const manager = await roleId('Manager');
    const pm = await roleId('Project manager');
    // The demo's pm is a Manager in Internal tools (no CRM) and the template, and a Project manager in CRM.
    const memberships = await knex()('members').where({ user_id: host.demo.users.pm.id }).select('project_id', 'role_id');
    expect(memberships).toContainEqual({ project_id: host.demo.projects.internal.id, role_id: manager });
    try {
      const admin = await Session.signIn(host.app, 'admin');
      expect((await admin.post('/crm/opportunities/filters/defaults', { [`role_${manager}`]: String(managers), [`role_${pm}`]: String(pms) })).status).toBe(303);
      const filtersPage = visibleText((await admin.get('/crm/opportunities/filters')).text);
      expect(filtersPage.indexOf('Manager (none)')).toBeLessThan(filtersPage.indexOf('Project manager (none)'));
      const user = await Session.signIn(host.app, 'pm');
      const list = await user.get('/crm/opportunities');
      expect(visibleText(list.text)).toContain('Showing “PMs’ view”, the default filter of your role Project manager.');
      expect(list.text).toMatch(/<input type="search" name="q" value="licences"/);
    } finally {
      await knex()('crm_role_default_filters').delete();
      await knex()('crm_saved_filters').whereIn('id', [managers, pms]).delete();
    }
  });
});
