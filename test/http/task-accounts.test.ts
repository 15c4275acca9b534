import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
let companyType: number;

beforeAll(async () => {
  host = await startTestHost();
  companyType = Number((await host.db.knex('crm_account_types').where({ name: 'Company' }).first()).id);
});
afterAll(async () => { await host.close(); });

async function makeAccount(name: string, opts: { project?: string | null; author?: string; isPrivate?: boolean } = {}): Promise<number> {
  const knex = host.db.knex;
  const [row] = await knex('crm_accounts').insert({ account_type_id: companyType, name, author_id: host.demo.users[opts.author ?? 'rep1'].id, is_private: opts.isPrivate ?? false }).returning('id');
  const id = Number(row.id ?? row);
  const project = opts.project === undefined ? 'crm-europe' : opts.project;
  if (project) await knex('crm_account_projects').insert({ account_id: id, project_id: host.demo.projects[project].id });
  return id;
}

/** A host task, read from the host's own table (tests may; the plugin goes through the host API). */
const hostTask = (subject: string) => host.db.knex('tasks').where({ subject }).first();
const taskLinks = (taskId: number) => host.db.knex('crm_task_accounts').where({ task_id: taskId }).orderBy('account_id');
const primaryOf = async (taskId: number) => (await taskLinks(taskId)).filter((l) => Boolean(l.is_primary)).map((l) => Number(l.account_id));
async function journalDetails(accountId: number, field: string): Promise<{ old_value: string | null; new_value: string | null }[]> {
  return host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
    .where({ 'j.journalized_type': 'account', 'j.journalized_id': accountId, 'd.field': field }).orderBy('d.id').select('d.old_value', 'd.new_value');
}

describe('new task from an account (A8)', () => {
  test('without JavaScript: creates the host task in the account’s project, links it as primary, lists it, journals it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const a = await makeAccount('Taskco Europe');
    const page = await rep1.get(`/crm/accounts/${a}`);
    expect(page.text).toContain('id="new-task"');
    const form = await rep1.get(`/crm/accounts/${a}/tasks/new`);
    expect(form.status).toBe(200);
    expect(visibleText(form.text)).toContain('New task for Taskco Europe');
    expect(form.text).toContain(`<option value="${host.demo.projects['crm-europe'].id}"`);
    const res = await rep1.post(`/crm/accounts/${a}/tasks`, {
      project_id: String(host.demo.projects['crm-europe'].id), subject: 'Call Taskco about the renewal', assignee_id: String(host.demo.users.rep1.id), due_date: '2027-01-31',
    });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/accounts/${a}?tab=projects`);
    const task = await hostTask('Call Taskco about the renewal');
    expect(task).toMatchObject({ project_id: host.demo.projects['crm-europe'].id, assignee_id: host.demo.users.rep1.id, status: 'new' });
    expect(await primaryOf(task.id)).toEqual([a]);
    const tab = await rep1.get(`/crm/accounts/${a}?tab=projects`);
    expect(tab.text).toContain(`href="/tasks/${task.id}"`);
    expect(tab.text).toMatch(new RegExp(`<tr data-task="${task.id}">[\\s\\S]*?data-primary="1"`));
    expect(visibleText(tab.text)).toContain(`#${task.id} Call Taskco about the renewal new 2027-01-31 Europe`);
    expect(await journalDetails(a, 'tasks')).toEqual([{ old_value: null, new_value: `#${task.id} Call Taskco about the renewal (primary)` }]);
  });

  test('through htmx: the Projects & tickets tab comes back as a fragment with an HX-Trigger', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const a = await makeAccount('Taskco Htmx');
    const res = await rep1.htmxPost(`/crm/accounts/${a}/tasks`, { project_id: String(host.demo.projects['crm-europe'].id), subject: 'Htmx created task' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:taskLinked');
    expect(res.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(res.text).toContain('id="tab-projects"');
    expect(visibleText(res.text)).toContain('Htmx created task');
  });

  test('bad input: a project the account is not in (or the user cannot add tasks to), a blank subject, a bad date → 422, no task', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const a = await makeAccount('Taskco Bad Input');
    const before = Number((await host.db.knex('tasks').count({ n: '*' }))[0].n);
    const res = await rep1.post(`/crm/accounts/${a}/tasks`, { project_id: String(host.demo.projects['crm-americas'].id), subject: '', due_date: '31.01.2027' });
    expect(res.status).toBe(422);
    for (const f of ['project_id', 'subject', 'due_date']) expect(res.text).toContain(`data-field="${f}"`);
    const internal = await rep1.htmxPost(`/crm/accounts/${a}/tasks`, { project_id: String(host.demo.projects.internal.id), subject: '<b>sneaky</b>' });
    expect(internal.status).toBe(422);
    expect(internal.text).toContain('value="&lt;b&gt;sneaky&lt;/b&gt;"');
    expect(Number((await host.db.knex('tasks').count({ n: '*' }))[0].n)).toBe(before);
    // An account in no project where the user may add tasks says so instead of offering a form.
    const unlinked = await makeAccount('Taskco Nowhere', { project: null });
    const form = await rep1.get(`/crm/accounts/${unlinked}/tasks/new`);
    expect(visibleText(form.text)).toContain('None of this account’s projects lets you add tasks');
  });
});

describe('linking existing tasks and the primary account (A8)', () => {
  test('the second account linked is not primary until starred; the star moves the primary; JSON follows; journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const first = await makeAccount('Primary First');
    const second = await makeAccount('Primary Second');
    await rep1.post(`/crm/accounts/${first}/tasks`, { project_id: String(host.demo.projects['crm-europe'].id), subject: 'Shared task for two accounts' });
    const task = await hostTask('Shared task for two accounts');
    const linked = await rep1.post(`/crm/accounts/${second}/tasks/link`, { task_id: `#${task.id}` });
    expect(linked.status).toBe(303);
    expect(await primaryOf(task.id)).toEqual([first]);
    expect(await taskLinks(task.id)).toHaveLength(2);
    const secondTab = await rep1.get(`/crm/accounts/${second}?tab=projects`);
    expect(visibleText(secondTab.text)).toContain('primary: Primary First');
    expect(secondTab.text).toContain(`action="/crm/accounts/${second}/tasks/${task.id}/primary"`);

    let json = (await rep1.get(`/crm/tasks/${task.id}/accounts.json`)).body;
    expect(json.task).toMatchObject({ id: task.id, subject: 'Shared task for two accounts', url: `/tasks/${task.id}` });
    expect(json.accounts.map((x: { id: number; is_primary: boolean }) => [x.id, x.is_primary])).toEqual([[first, true], [second, false]]);
    expect(json.primary_account.id).toBe(first);

    const star = await rep1.htmxPost(`/crm/accounts/${second}/tasks/${task.id}/primary`);
    expect(star.status).toBe(200);
    expect(star.headers['hx-trigger']).toBe('crm:taskPrimaryChanged');
    expect(star.text).toMatch(new RegExp(`<tr data-task="${task.id}">[\\s\\S]*?data-primary="1"`));
    expect(await primaryOf(task.id)).toEqual([second]);
    json = (await rep1.agent.get(`/crm/tasks/${task.id}/accounts`).set('Accept', 'application/json')).body;
    expect(json.accounts.map((x: { id: number; is_primary: boolean }) => [x.id, x.is_primary])).toEqual([[second, true], [first, false]]);
    // Starring the primary again changes nothing.
    expect((await rep1.post(`/crm/accounts/${second}/tasks/${task.id}/primary`)).status).toBe(303);
    expect(await primaryOf(task.id)).toEqual([second]);
    expect(await journalDetails(second, 'primary_task')).toEqual([{ old_value: null, new_value: `#${task.id} Shared task for two accounts` }]);
    expect(await journalDetails(first, 'primary_task')).toEqual([{ old_value: `#${task.id} Shared task for two accounts`, new_value: null }]);
    expect(await journalDetails(second, 'tasks')).toEqual([{ old_value: null, new_value: `#${task.id} Shared task for two accounts` }]);

    // The database itself holds one primary per task.
    // (Matched on the message: the driver's error class may come from another test file's realm in one process.)
    const refusal = await host.db.knex('crm_task_accounts').where({ task_id: task.id, account_id: first }).update({ is_primary: true }).then(() => null, (e: unknown) => String(e));
    expect(refusal).toMatch(/UNIQUE constraint failed|duplicate key value/);
    expect(await primaryOf(task.id)).toEqual([second]);

    // Unlinking the primary hands the star to the remaining account.
    expect((await rep1.post(`/crm/accounts/${second}/tasks/${task.id}/unlink`)).status).toBe(303);
    expect(await primaryOf(task.id)).toEqual([first]);
  });

  test('an existing task the user may not see (another project, or no such task) is 404 and nothing is stored; a duplicate is 422', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const a = await makeAccount('Link Guard');
    const vpn = await hostTask('Renew the office VPN certificate'); // in Internal tools: rep1 is not a member
    expect((await rep1.post(`/crm/accounts/${a}/tasks/link`, { task_id: String(vpn.id) })).status).toBe(404);
    expect((await rep1.post(`/crm/accounts/${a}/tasks/link`, { task_id: '99999999' })).status).toBe(404);
    expect((await rep1.get(`/crm/tasks/${vpn.id}/accounts.json`)).status).toBe(404);
    expect(await taskLinks(vpn.id)).toHaveLength(0);
    const notNumber = await rep1.post(`/crm/accounts/${a}/tasks/link`, { task_id: 'twelve' });
    expect(notNumber.status).toBe(422);
    expect(notNumber.text).toContain('data-field="task_id"');
    const review = await hostTask('Prepare the quarterly sales review'); // in the CRM project: rep1 sees its tasks
    expect((await rep1.htmxPost(`/crm/accounts/${a}/tasks/link`, { task_id: String(review.id) })).status).toBe(200);
    expect(await primaryOf(review.id)).toEqual([a]);
    const dup = await rep1.post(`/crm/accounts/${a}/tasks/link`, { task_id: String(review.id) });
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain(`Task #${review.id} is already linked to this account`);
    expect(await taskLinks(review.id)).toHaveLength(1);
  });

  test('the task’s accounts JSON lists only accounts the user may see', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const open = await makeAccount('Json Open Account');
    const secret = await makeAccount('Json Secret Account', { isPrivate: true });
    await rep1.post(`/crm/accounts/${secret}/tasks`, { project_id: String(host.demo.projects['crm-europe'].id), subject: 'Task with a private primary' });
    const task = await hostTask('Task with a private primary');
    await rep1.post(`/crm/accounts/${open}/tasks/link`, { task_id: String(task.id) });
    const own = (await rep1.get(`/crm/tasks/${task.id}/accounts.json`)).body;
    expect(own.accounts.map((x: { name: string }) => x.name)).toEqual(['Json Secret Account', 'Json Open Account']);
    const director = await Session.signIn(host.app, 'director');
    const other = (await director.get(`/crm/tasks/${task.id}/accounts.json`)).body;
    expect(other.accounts.map((x: { name: string }) => x.name)).toEqual(['Json Open Account']);
    expect(other.primary_account).toBeNull();
    // On the open account's tab the director sees no name for the private primary account.
    const tab = await director.get(`/crm/accounts/${open}?tab=projects`);
    expect(tab.text).not.toContain('Json Secret Account');
  });

  test('only editors link tasks: view-only 403, no edit rights 404; the action is not offered', async () => {
    const webshop = Number((await host.db.knex('crm_accounts').where({ name: 'webshop.example' }).first()).id);
    const review = await hostTask('Prepare the quarterly sales review');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/accounts/${webshop}?tab=projects`);
    expect(page.text).not.toContain('id="new-task"');
    expect((await rep1.post(`/crm/accounts/${webshop}/tasks/link`, { task_id: String(review.id) })).status).toBe(403);
    expect((await rep1.get(`/crm/accounts/${webshop}/tasks/new`)).status).toBe(403);
    const pm = await Session.signIn(host.app, 'pm');
    const a = await makeAccount('Pm Cannot Edit', { project: 'crm' });
    expect((await pm.post(`/crm/accounts/${a}/tasks`, { project_id: String(host.demo.projects.crm.id), subject: 'pm task' })).status).toBe(404);
    expect((await pm.post(`/crm/accounts/${a}/tasks/${review.id}/primary`)).status).toBe(404);
    expect(await hostTask('pm task')).toBeUndefined();
    // Viewers still read the task's accounts.
    expect((await pm.get(`/crm/tasks/${review.id}/accounts.json`)).status).toBe(200);
  });
});
