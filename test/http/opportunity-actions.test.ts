import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

/** Issue #4 point 4: the opportunity page's sidebar actions (related task, related account, business roles, partner). */
let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const oppId = async (name: string) => Number((await knex()('crm_opportunities').where({ name }).first()).id);
const opp = async (id: number) => knex()('crm_opportunities').where({ id }).first();
const idOf = async (table: string, where: Record<string, string>) => Number((await knex()(table).where(where).first()).id);
const taskId = (subject: string) => idOf('tasks', { subject });
const journalDetails = async (id: number, field: string) => knex()('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
  .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': id, 'd.field': field }).orderBy('d.id').select('d.old_value', 'd.new_value', 'j.user_id');
const links = async (id: number) => (await knex()('crm_opportunity_tasks').where({ opportunity_id: id }).pluck('task_id')).map(Number).sort((a, b) => a - b);

describe('related tasks', () => {
  test('link by number through htmx: the page body comes back with the task linked, HX-Trigger set, journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    const task = await taskId('Prepare the quarterly sales review');
    const page = await rep1.get(`/crm/opportunities/${id}`);
    expect(page.text).toContain('id="link-task-form"');
    const res = await rep1.htmxPost(`/crm/opportunities/${id}/tasks/link`, { task: `#${task}` });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:opportunitySaved');
    expect(res.text.startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(res.text).toContain(`href="/tasks/${task}"`);
    expect(visibleText(res.text)).toContain(`Task #${task} linked.`);
    expect(await links(id)).toEqual([task]);
    expect(await journalDetails(id, 'tasks')).toEqual([{ old_value: null, new_value: `#${task} Prepare the quarterly sales review`, user_id: host.demo.users.rep1.id }]);
    // Twice is refused with the field named; nothing more is stored.
    const again = await rep1.post(`/crm/opportunities/${id}/tasks/link`, { task: String(task) });
    expect(again.status).toBe(422);
    expect(again.text).toContain('data-field="task"');
    expect(await links(id)).toEqual([task]);
    // Unlink with a plain form: 303 back to the opportunity, journaled.
    const unlink = await rep1.post(`/crm/opportunities/${id}/tasks/${task}/unlink`);
    expect(unlink.status).toBe(303);
    expect(unlink.headers.location).toBe(`/crm/opportunities/${id}`);
    expect(await links(id)).toEqual([]);
    expect((await journalDetails(id, 'tasks')).at(-1)).toMatchObject({ old_value: `#${task} Prepare the quarterly sales review`, new_value: null });
  });

  test('link by subject: one visible match is linked, several are offered, a task in a project the user cannot see is 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – support renewal');
    const crm = host.demo.projects.crm.id;
    const [a] = await knex()('tasks').insert({ project_id: crm, subject: 'Zebra check one', description: '', status: 'new' }).returning('id');
    const [b] = await knex()('tasks').insert({ project_id: crm, subject: 'Zebra check two', description: '', status: 'new' }).returning('id');
    await knex()('tasks').insert({ project_id: host.demo.projects.internal.id, subject: 'Zebra secret', description: '', status: 'new' });
    const several = await rep1.post(`/crm/opportunities/${id}/tasks/link`, { task: 'zebra' });
    expect(several.status).toBe(422);
    const choices = [...several.text.matchAll(/name="task_id" value="(\d+)"/g)].map((m) => Number(m[1])).sort((x, y) => x - y);
    expect(choices).toEqual([Number(a.id ?? a), Number(b.id ?? b)]);
    expect(visibleText(several.text)).not.toContain('Zebra secret');
    expect(await links(id)).toEqual([]);
    const one = await rep1.post(`/crm/opportunities/${id}/tasks/link`, { task: 'check TWO' });
    expect(one.status).toBe(303);
    expect(await links(id)).toEqual([Number(b.id ?? b)]);
    const none = await rep1.post(`/crm/opportunities/${id}/tasks/link`, { task: 'zebra secret' });
    expect(none.status).toBe(422);
    expect(visibleText(none.text)).toContain('No task you can see has “zebra secret” in its subject');
    // By number: tasks in Internal tools or the template are not visible to rep1.
    for (const hidden of [await taskId('Zebra secret'), await taskId('Renew the office VPN certificate'), await taskId('Install and configure'), 999999]) {
      expect((await rep1.post(`/crm/opportunities/${id}/tasks/link`, { task_id: String(hidden) })).status).toBe(404);
      expect((await rep1.htmxPost(`/crm/opportunities/${id}/tasks/link`, { task: String(hidden) })).status).toBe(404);
    }
    expect(await links(id)).toEqual([Number(b.id ?? b)]);
  });

  test('create a new task: a row in the host’s tasks table in the opportunity’s project, linked and journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Nordic Retail – POS upgrade');
    const bad = await rep1.htmxPost(`/crm/opportunities/${id}/tasks`, { subject: '', due_date: '2027-02-30' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="subject"');
    expect(bad.text).toContain('data-field="due_date"');
    expect(bad.text).toContain('value="2027-02-30"');
    const res = await rep1.htmxPost(`/crm/opportunities/${id}/tasks`, { subject: 'Demo the POS <b>prototype</b>', assignee_id: String(host.demo.users.rep1.id), due_date: '2027-01-20' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:opportunitySaved');
    const task = await knex()('tasks').where({ subject: 'Demo the POS <b>prototype</b>' }).first();
    expect(task.project_id).toBe(host.demo.projects['crm-europe'].id);
    expect(task.assignee_id).toBe(host.demo.users.rep1.id);
    expect(await links(id)).toEqual([task.id]);
    expect(res.text).toContain('Demo the POS &lt;b&gt;prototype&lt;/b&gt;');
    expect((await journalDetails(id, 'tasks'))[0].new_value).toBe(`#${task.id} Demo the POS <b>prototype</b> (new)`);
    const plain = await rep1.post(`/crm/opportunities/${id}/tasks`, { subject: 'Second task' });
    expect(plain.status).toBe(303);
    expect((await links(id)).length).toBe(2);
  });
});

describe('related account', () => {
  test('set and replace with lock_version: htmx and plain form, journaled; stale → 409; invisible → 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Eva Lind – consulting');
    const nordic = await idOf('crm_accounts', { name: 'Nordic Retail Group' });
    const acme = await idOf('crm_accounts', { name: 'Acme Manufacturing' });
    const globex = await idOf('crm_accounts', { name: 'Globex Corporation' });
    const before = await opp(id);
    const res = await rep1.htmxPost(`/crm/opportunities/${id}/account`, { account_id: String(nordic), lock_version: String(before.lock_version) });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:opportunitySaved');
    expect(res.text).toContain(`<a href="/crm/accounts/${nordic}">Nordic Retail Group</a>`);
    const after = await opp(id);
    expect(after.account_id).toBe(nordic);
    expect(after.lock_version).toBe(before.lock_version + 1);
    expect(await journalDetails(id, 'account_id')).toEqual([{ old_value: String(before.account_id), new_value: String(nordic), user_id: host.demo.users.rep1.id }]);
    // The form the user loaded before is stale now: 409, the page with the message, nothing changed.
    const stale = await rep1.post(`/crm/opportunities/${id}/account`, { account_id: String(acme), lock_version: String(before.lock_version) });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('was changed by someone else');
    expect((await opp(id)).account_id).toBe(nordic);
    // An account rep1 cannot see: 404, nothing stored (htmx, plain form and JSON alike).
    for (const send of [rep1.post.bind(rep1), rep1.htmxPost.bind(rep1)]) {
      expect((await send(`/crm/opportunities/${id}/account`, { account_id: String(globex), lock_version: String(after.lock_version) })).status).toBe(404);
    }
    expect((await opp(id)).account_id).toBe(nordic);
    expect((await opp(id)).lock_version).toBe(after.lock_version);
    const plain = await rep1.post(`/crm/opportunities/${id}/account`, { account_id: String(acme), lock_version: String(after.lock_version) });
    expect(plain.status).toBe(303);
    expect(plain.headers.location).toBe(`/crm/opportunities/${id}`);
    expect((await opp(id)).account_id).toBe(acme);
    const missing = await rep1.post(`/crm/opportunities/${id}/account`, { account_id: '', lock_version: String(after.lock_version + 1) });
    expect(missing.status).toBe(422);
    expect(missing.text).toContain('data-field="account_id"');
  });
});

describe('field rules (S5)', () => {
  test('a read-only partner field hides the partner form and refuses the action; a required partner cannot be removed', async () => {
    const repRole = await knex()('roles').where({ name: 'Sales rep' }).first();
    const id = await oppId('Nordic Retail – POS upgrade');
    const before = await opp(id);
    const baltic = await idOf('crm_partners', { name: 'Baltic Consulting' });
    const rep1 = await Session.signIn(host.app, 'rep1');
    await knex()('crm_field_permissions').insert({ role_id: repRole.id, status_id: before.status_id, field: 'partner_id', rule: 'read_only' });
    try {
      expect((await rep1.get(`/crm/opportunities/${id}`)).text).not.toContain('id="partner-form"');
      expect((await rep1.post(`/crm/opportunities/${id}/partner`, { partner_id: String(baltic), lock_version: String(before.lock_version) })).status).toBe(403);
      expect((await opp(id)).partner_id).toBeNull();
      await knex()('crm_field_permissions').where({ role_id: repRole.id, status_id: before.status_id, field: 'partner_id' }).update({ rule: 'required' });
      expect((await rep1.post(`/crm/opportunities/${id}/partner`, { partner_id: String(baltic), lock_version: String(before.lock_version) })).status).toBe(303);
      const removed = await rep1.post(`/crm/opportunities/${id}/partner/remove`, { lock_version: String(before.lock_version + 1) });
      expect(removed.status).toBe(422);
      expect(removed.text).toContain('data-field="partner_id"');
      expect((await opp(id)).partner_id).toBe(baltic);
      await knex()('crm_opportunities').where({ id }).update({ partner_id: null });
    } finally {
      await knex()('crm_field_permissions').where({ role_id: repRole.id, status_id: before.status_id, field: 'partner_id' }).delete();
    }
  });
});

describe('business roles (O1)', () => {
  test('add with htmx and plain form, listed in the panel, XSS escaped, removed; journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    const sven = await idOf('crm_personal_contacts', { first_name: 'Sven' });
    const liga = await idOf('crm_personal_contacts', { first_name: 'Liga' });
    const page = await rep1.get(`/crm/opportunities/${id}`);
    expect(page.text).toContain(`<option value="${sven}" >Sven Holm</option>`);
    const res = await rep1.htmxPost(`/crm/opportunities/${id}/roles`, { contact_id: String(sven), description: '<script>alert(1)</script> Decision maker' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:opportunitySaved');
    expect(res.text).not.toContain('<script>alert(1)</script>');
    expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Decision maker');
    // Another account's contact (a partner consultant) the user may see is allowed.
    const plain = await rep1.post(`/crm/opportunities/${id}/roles`, { contact_id: String(liga), description: 'Implementation partner' });
    expect(plain.status).toBe(303);
    const rows = await knex()('crm_business_roles').where({ opportunity_id: id }).orderBy('id');
    expect(rows.map((r) => [r.contact_id, r.description])).toEqual([[sven, '<script>alert(1)</script> Decision maker'], [liga, 'Implementation partner']]);
    const shown = visibleText((await rep1.get(`/crm/opportunities/${id}`)).text);
    expect(shown).toContain('Liga Ozola — Implementation partner');
    expect((await journalDetails(id, 'business_roles')).map((d) => d.new_value)).toEqual([`contact #${sven}: <script>alert(1)</script> Decision maker`, `contact #${liga}: Implementation partner`]);
    const removed = await rep1.htmxPost(`/crm/opportunities/${id}/roles/${rows[1].id}/delete`);
    expect(removed.status).toBe(200);
    expect(visibleText(removed.text)).not.toContain('Implementation partner —');
    expect(await knex()('crm_business_roles').where({ opportunity_id: id }).pluck('contact_id')).toEqual([sven]);
    expect((await journalDetails(id, 'business_roles')).at(-1)).toMatchObject({ old_value: `contact #${liga}: Implementation partner`, new_value: null });
    // A role of another opportunity cannot be removed through this one.
    expect((await rep1.post(`/crm/opportunities/${await oppId('Acme – support renewal')}/roles/${rows[0].id}/delete`)).status).toBe(404);
  });

  test('bad input: contact required, description at most 200 characters, an invisible contact is 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – support renewal');
    const sven = await idOf('crm_personal_contacts', { first_name: 'Sven' });
    const hank = await idOf('crm_personal_contacts', { first_name: 'Hank' });
    const long = await rep1.htmxPost(`/crm/opportunities/${id}/roles`, { contact_id: '', description: 'x'.repeat(201) });
    expect(long.status).toBe(422);
    expect(long.text).toContain('data-field="contact_id"');
    expect(long.text).toContain('data-field="description"');
    expect(long.text).toMatch(/<details class="sidebar-action opportunity-action" id="role-action" open>/);
    expect((await rep1.post(`/crm/opportunities/${id}/roles`, { contact_id: String(hank), description: 'Sponsor' })).status).toBe(404);
    expect((await rep1.htmxPost(`/crm/opportunities/${id}/roles`, { contact_id: String(hank), description: 'Sponsor' })).status).toBe(404);
    expect((await rep1.post(`/crm/opportunities/${id}/roles`, { contact_id: '99999', description: 'Sponsor' })).status).toBe(404);
    expect(Number((await knex()('crm_business_roles').where({ opportunity_id: id }).count({ n: '*' }))[0].n)).toBe(0);
    expect((await rep1.post(`/crm/opportunities/${id}/roles`, { contact_id: String(sven), description: 'x'.repeat(200) })).status).toBe(303);
  });

  test('a contact the user cannot see is listed without its name', async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Nordic Retail – POS upgrade');
    const hank = await idOf('crm_personal_contacts', { first_name: 'Hank' });
    expect((await director.post(`/crm/opportunities/${id}/roles`, { contact_id: String(hank), description: 'Reference customer' })).status).toBe(303);
    const shown = visibleText((await rep1.get(`/crm/opportunities/${id}`)).text);
    expect(shown).toContain('A contact you cannot see — Reference customer');
    expect(shown).not.toContain('Hank');
  });

  test('a business role’s contact is a link that opens the contact’s page', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    const sven = await idOf('crm_personal_contacts', { first_name: 'Sven' });
    expect((await rep1.post(`/crm/opportunities/${id}/roles`, { contact_id: String(sven), description: 'Opens the contact' })).status).toBe(303);
    const role = await knex()('crm_business_roles').where({ opportunity_id: id, description: 'Opens the contact' }).first();
    try {
      const page = await rep1.get(`/crm/opportunities/${id}`);
      const item = new RegExp(`<li data-role="${role.id}">[\\s\\S]*?</li>`).exec(page.text)![0];
      const href = /<a href="([^"]+)">/.exec(item)![1];
      const contact = await rep1.get(href);
      expect(contact.status).toBe(200);
      expect(visibleText(contact.text)).toContain('Sven Holm');
    } finally {
      await knex()('crm_business_roles').where({ id: role.id }).delete();
    }
  });
});

describe('assign to partner', () => {
  test('assign and remove with lock_version, journaled; an invisible partner is 404; stale → 409', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – support renewal');
    const baltic = await idOf('crm_partners', { name: 'Baltic Consulting' });
    const pacific = await idOf('crm_partners', { name: 'Pacific Partners' });
    const before = await opp(id);
    expect((await rep1.post(`/crm/opportunities/${id}/partner`, { partner_id: String(pacific), lock_version: String(before.lock_version) })).status).toBe(404);
    expect((await opp(id)).partner_id).toBeNull();
    const res = await rep1.htmxPost(`/crm/opportunities/${id}/partner`, { partner_id: String(baltic), lock_version: String(before.lock_version) });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:opportunitySaved');
    expect(visibleText(res.text)).toContain('Partner Baltic Consulting');
    expect((await opp(id)).partner_id).toBe(baltic);
    const stale = await rep1.htmxPost(`/crm/opportunities/${id}/partner/remove`, { lock_version: String(before.lock_version) });
    expect(stale.status).toBe(409);
    expect((await opp(id)).partner_id).toBe(baltic);
    const removed = await rep1.post(`/crm/opportunities/${id}/partner/remove`, { lock_version: String(before.lock_version + 1) });
    expect(removed.status).toBe(303);
    expect((await opp(id)).partner_id).toBeNull();
    expect((await journalDetails(id, 'partner_id')).map((d) => [d.old_value, d.new_value])).toEqual([[null, String(baltic)], [String(baltic), null]]);
    // A deleted partner cannot be chosen.
    await knex()('crm_partners').where({ id: baltic }).update({ deleted_at: new Date().toISOString() });
    try {
      expect((await rep1.post(`/crm/opportunities/${id}/partner`, { partner_id: String(baltic), lock_version: String(before.lock_version + 2) })).status).toBe(404);
    } finally {
      await knex()('crm_partners').where({ id: baltic }).update({ deleted_at: null });
    }
  });
});

describe('who may act', () => {
  test('an opportunity the user cannot see is 404 for every action; nothing changes', async () => {
    const rep2 = await Session.signIn(host.app, 'rep2');
    const id = await oppId('Nordic Retail – POS upgrade');
    const before = await opp(id);
    const sven = await idOf('crm_personal_contacts', { first_name: 'Sven' });
    const task = await taskId('Prepare the quarterly sales review');
    const attempts: [string, Record<string, string>][] = [
      ['tasks/link', { task: String(task) }], ['tasks', { subject: 'x' }], [`tasks/${task}/unlink`, {}],
      ['account', { account_id: String(before.account_id), lock_version: String(before.lock_version) }],
      ['partner', { partner_id: '1', lock_version: String(before.lock_version) }], ['partner/remove', { lock_version: String(before.lock_version) }],
      ['roles', { contact_id: String(sven) }], ['roles/1/delete', {}],
    ];
    for (const [path, form] of attempts) {
      expect((await rep2.post(`/crm/opportunities/${id}/${path}`, form)).status).toBe(404);
      expect((await rep2.htmxPost(`/crm/opportunities/${id}/${path}`, form)).status).toBe(404);
    }
    expect((await opp(id)).lock_version).toBe(before.lock_version);
  });

  test('a user who may view but not edit gets no forms and 404 for the actions; a locked opportunity refuses them', async () => {
    const pm = await Session.signIn(host.app, 'pm');
    const id = await oppId('Webshop – integration');
    const page = await pm.get(`/crm/opportunities/${id}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('id="role-form"');
    expect(page.text).not.toContain('id="link-task-form"');
    const before = await opp(id);
    const sven = await idOf('crm_personal_contacts', { first_name: 'Sven' });
    expect([403, 404]).toContain((await pm.post(`/crm/opportunities/${id}/roles`, { contact_id: String(sven), description: 'x' })).status);
    expect([403, 404]).toContain((await pm.htmxPost(`/crm/opportunities/${id}/partner/remove`, { lock_version: String(before.lock_version) })).status);
    expect(Number((await knex()('crm_business_roles').where({ opportunity_id: id }).count({ n: '*' }))[0].n)).toBe(0);

    const director = await Session.signIn(host.app, 'director');
    await knex()('crm_opportunities').where({ id }).update({ is_locked: true });
    try {
      expect((await director.get(`/crm/opportunities/${id}`)).text).not.toContain('id="role-form"');
      const refused = await director.post(`/crm/opportunities/${id}/roles`, { contact_id: String(sven), description: 'x' });
      expect(refused.status).toBe(422);
      expect(visibleText(refused.text)).toContain('sold and locked');
      expect(Number((await knex()('crm_business_roles').where({ opportunity_id: id }).count({ n: '*' }))[0].n)).toBe(0);
    } finally {
      await knex()('crm_opportunities').where({ id }).update({ is_locked: false });
    }
  });

  test('a supervisor who sees a subordinate’s opportunity but may not edit it gets 403; nothing changes', async () => {
    const repRole = await knex()('roles').where({ name: 'Sales rep' }).first();
    const [row] = await knex()('crm_opportunities').insert({
      project_id: host.demo.projects.crm.id, name: 'Team deal', owner_id: host.demo.users.rep2.id, author_id: host.demo.users.rep2.id,
      status_id: (await knex()('crm_opportunity_statuses').where({ name: 'Qualification' }).first()).id, currency: 'EUR',
    }).returning('id');
    const id = Number(row.id ?? row);
    const supervisor = await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).first();
    const level = await knex()('crm_role_visibility').where({ role_id: repRole.id, entity: 'opportunities' }).first();
    try {
      await knex()('crm_role_visibility').where({ role_id: repRole.id, entity: 'opportunities' }).delete();
      await knex()('crm_role_visibility').insert({ role_id: repRole.id, entity: 'opportunities', level: 'subordinates' });
      await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).delete();
      await knex()('crm_user_supervisors').insert({ user_id: host.demo.users.rep2.id, supervisor_id: host.demo.users.rep1.id });
      const rep1 = await Session.signIn(host.app, 'rep1');
      const page = await rep1.get(`/crm/opportunities/${id}`);
      expect(page.status).toBe(200);
      expect(page.text).not.toContain('id="account-form"');
      const acme = await idOf('crm_accounts', { name: 'Acme Manufacturing' });
      const res = await rep1.post(`/crm/opportunities/${id}/account`, { account_id: String(acme), lock_version: '0' });
      expect(res.status).toBe(403);
      expect((await rep1.htmxPost(`/crm/opportunities/${id}/tasks`, { subject: 'Sneaky' })).status).toBe(403);
      expect((await opp(id)).account_id).toBeNull();
      expect(await links(id)).toEqual([]);
      expect(await knex()('tasks').where({ subject: 'Sneaky' }).first()).toBeUndefined();
    } finally {
      await knex()('crm_role_visibility').where({ role_id: repRole.id, entity: 'opportunities' }).delete();
      if (level) await knex()('crm_role_visibility').insert(level);
      await knex()('crm_user_supervisors').where({ user_id: host.demo.users.rep2.id }).delete();
      if (supervisor) await knex()('crm_user_supervisors').insert(supervisor);
    }
  });

  test('JSON clients get the opportunity after a change', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Globex – data platform');
    const pacific = await idOf('crm_partners', { name: 'Pacific Partners' });
    const before = await opp(id);
    const res = await director.agent.post(`/crm/opportunities/${id}/partner`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .type('form').send({ partner_id: String(pacific), lock_version: String(before.lock_version) });
    expect(res.status).toBe(200);
    expect(res.body.opportunity.partner_id).toBe(pacific);
  });
});
