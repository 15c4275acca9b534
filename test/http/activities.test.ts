import { everyPage, expectLinkedPage, Session, startTestHost, statementsDuring, visibleText, withPageSize, type TestHost } from '../helpers/app';
import type { Knex } from 'knex';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const knex = () => host.db.knex;
const oppId = async (name: string) => Number((await knex()('crm_opportunities').where({ name }).first()).id);
const accountId = async (name: string) => Number((await knex()('crm_accounts').where({ name }).first()).id);
const categoryId = async (name: string) => Number((await knex()('crm_activity_categories').where({ name }).first()).id);
const activity = (subject: string) => knex()('crm_sales_activities').where({ subject }).first();
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

/** Inserts an activity as the data layer would store it (for the to-do counts, which must not depend on the UI). */
async function insertActivity(row: Record<string, unknown>): Promise<number> {
  const [r] = await knex()('crm_sales_activities').insert({
    record_type: 'opportunity', category_id: await categoryId('Call'), notes: '', occurred_at: new Date().toISOString(), is_personal: false, ...row,
  }).returning('id');
  return Number(r.id ?? r);
}

describe('add, edit and delete in place (O5)', () => {
  test('the sidebar form adds an activity with htmx: the list fragment comes back with HX-Trigger, a fresh form out of band, the journal on the opportunity', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    const page = await rep1.get(`/crm/opportunities/${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`hx-post="/crm/opportunities/${id}/activities"`);
    expect(page.text).toContain(`hx-target="#activities-opportunity-${id}"`);
    expect(page.text).toContain(`id="activities-opportunity-${id}"`);
    expect(visibleText(page.text)).toContain('Add activity');

    const res = await rep1.htmxPost(`/crm/opportunities/${id}/activities`, {
      variant: 'sidebar', category_id: String(await categoryId('Call')), subject: 'Called about <b>pricing</b>', notes: 'Wants a discount', next_contact_on: day(3),
      responsible_id: String(host.demo.users.rep1.id),
    });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:activitySaved');
    expect(res.text.trim().startsWith(`<div class="activities" id="activities-opportunity-${id}">`)).toBe(true);
    expect(res.text).not.toContain('id="crm-page"');
    expect(res.text).toContain('Called about &lt;b&gt;pricing&lt;/b&gt;');
    expect(res.text).toContain(`id="activity-add-opportunity-${id}"`);
    expect(res.text).toContain('hx-swap-oob="true"');
    expect(res.text).toContain('name="variant" value="sidebar"');

    const row = await activity('Called about <b>pricing</b>');
    const opp = await knex()('crm_opportunities').where({ id }).first();
    expect(row.record_type).toBe('opportunity');
    expect(Number(row.account_id)).toBe(Number(opp.account_id));
    expect(Number(row.project_id)).toBe(Number(opp.project_id));
    expect(Number(row.author_id)).toBe(host.demo.users.rep1.id);
    const detail = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': id, 'd.field': 'activity' }).orderBy('j.id', 'desc').first('d.old_value', 'd.new_value');
    expect(detail.old_value).toBeNull();
    expect(detail.new_value).toBe(`Call: Called about <b>pricing</b> (next contact ${day(3)})`);
  });

  test('without JavaScript the form posts and redirects back to the record (303)', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    const res = await rep1.post(`/crm/opportunities/${id}/activities`, { category_id: String(await categoryId('Meeting')), subject: 'Site visit', duration_minutes: '45', occurred_at: '2026-11-20T09:30' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/opportunities/${id}`);
    const page = await rep1.get(res.headers.location);
    expect(visibleText(page.text)).toContain('Site visit');
    expect(visibleText(page.text)).toContain('2026-11-20 09:30 UTC · 45 min');
    const json = await rep1.get(`/crm/opportunities/${id}/activities.json`);
    expect(json.status).toBe(200);
    expect(json.body.activities.map((a: { subject: string }) => a.subject)).toContain('Site visit');
  });

  test('edit in place: the inline form, the saved list, a stale save refused (409), delete in place, all journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – support renewal');
    const base = `/crm/opportunities/${id}/activities`;
    await rep1.htmxPost(base, { category_id: String(await categoryId('Email')), subject: 'Sent offer', notes: 'v1' });
    const row = await activity('Sent offer');

    const form = await rep1.htmxGet(`${base}/${row.id}/edit`);
    expect(form.status).toBe(200);
    expect(form.text.trim().startsWith(`<li class="activity editing" id="activity-${row.id}"`)).toBe(true);
    expect(form.text).toContain('value="Sent offer"');
    expect(form.text).toContain(`hx-target="#activities-opportunity-${id}"`);

    const saved = await rep1.htmxPost(`${base}/${row.id}`, { category_id: String(row.category_id), subject: 'Sent offer v2', notes: 'v2', lock_version: '0', duration_minutes: '15' });
    expect(saved.status).toBe(200);
    expect(saved.headers['hx-trigger']).toBe('crm:activitySaved');
    expect(visibleText(saved.text)).toContain('Sent offer v2');
    expect(visibleText(saved.text)).toContain('Activity saved.');
    const after = await knex()('crm_sales_activities').where({ id: row.id }).first();
    expect(after.subject).toBe('Sent offer v2');
    expect(Number(after.lock_version)).toBe(1);
    expect(Number(after.duration_minutes)).toBe(15);

    const stale = await rep1.htmxPost(`${base}/${row.id}`, { category_id: String(row.category_id), subject: 'Lost update', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('changed by someone else');
    expect(stale.text).toContain('value="Lost update"');
    expect((await knex()('crm_sales_activities').where({ id: row.id }).first()).subject).toBe('Sent offer v2');

    const deleted = await rep1.htmxPost(`${base}/${row.id}/delete`, { lock_version: '1' });
    expect(deleted.status).toBe(200);
    expect(deleted.headers['hx-trigger']).toBe('crm:activitySaved');
    expect(deleted.text).not.toContain('Sent offer v2');
    expect(await knex()('crm_sales_activities').where({ id: row.id }).first()).toBeUndefined();
    const details = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': id, 'd.field': 'activity' }).orderBy('j.id').select('d.old_value', 'd.new_value');
    expect(details.slice(-3)).toEqual([
      { old_value: null, new_value: 'Email: Sent offer' },
      { old_value: 'Email: Sent offer', new_value: 'Email: Sent offer v2' },
      { old_value: 'Email: Sent offer v2', new_value: null },
    ]);
  });

  test('the account tab lists activities and adds in place; the journal is the account’s', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await accountId('Eva Lind');
    const tab = await rep1.get(`/crm/accounts/${id}?tab=activities`);
    expect(tab.status).toBe(200);
    expect(tab.text).toContain(`id="activities-account-${id}"`);
    expect(tab.text).not.toContain('Nothing here yet');
    const res = await rep1.htmxPost(`/crm/accounts/${id}/activities`, { category_id: String(await categoryId('Note')), subject: 'Prefers email', variant: 'full' });
    expect(res.status).toBe(200);
    expect(visibleText(res.text)).toContain('Prefers email');
    const row = await activity('Prefers email');
    expect([row.record_type, Number(row.account_id), row.project_id]).toEqual(['account', id, null]);
    expect(await knex()('crm_journals').where({ journalized_type: 'account', journalized_id: id }).orderBy('id', 'desc').first()).toBeDefined();
    const plain = await rep1.post(`/crm/accounts/${id}/activities`, { category_id: String(await categoryId('Note')), subject: 'Second note' });
    expect(plain.status).toBe(303);
    expect(plain.headers.location).toBe(`/crm/accounts/${id}?tab=activities`);
  });
});

describe('visibility', () => {
  test('a personal activity is seen only by its author and its responsible person; only the author changes it; the journal hides its subject', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Nordic Retail – POS upgrade');
    const base = `/crm/opportunities/${id}/activities`;
    await rep1.post(base, { category_id: String(await categoryId('Call')), subject: 'Secret pricing idea', is_personal: '1' });
    await rep1.post(base, { category_id: String(await categoryId('Call')), subject: 'Shared with Diane', is_personal: '1', responsible_id: String(host.demo.users.director.id) });
    const secret = await activity('Secret pricing idea');
    const shared = await activity('Shared with Diane');
    expect(Boolean(secret.is_personal)).toBe(true);

    const mine = visibleText((await rep1.get(`/crm/opportunities/${id}`)).text);
    expect(mine).toContain('Secret pricing idea');
    const theirs = await director.get(`/crm/opportunities/${id}`);
    expect(visibleText(theirs.text)).not.toContain('Secret pricing idea');
    expect(visibleText(theirs.text)).toContain('Shared with Diane');
    expect(visibleText(theirs.text)).toContain('Personal activity');
    const json = await director.get(`${base}.json`);
    expect(json.body.activities.map((a: { subject: string }) => a.subject)).not.toContain('Secret pricing idea');

    expect((await director.htmxGet(`${base}/${secret.id}/edit`)).status).toBe(404);
    expect((await director.get(`/crm/activities/${secret.id}/calendar.ics`)).status).toBe(404);
    expect((await director.post(`${base}/${secret.id}/delete`)).status).toBe(404);
    expect((await director.post(`${base}/${shared.id}/delete`)).status).toBe(403);
    expect((await director.get(`/crm/activities/${shared.id}/calendar.ics`)).status).toBe(200);
    expect(await activity('Shared with Diane')).toBeDefined();
  });

  test('activities of an opportunity the user cannot see answer 404, whatever the route', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Globex – data platform');
    const hidden = await insertActivity({ record_id: id, subject: 'Globex internal', account_id: await accountId('Globex Corporation') });
    const base = `/crm/opportunities/${id}/activities`;
    expect((await rep1.get(`${base}.json`)).status).toBe(404);
    expect((await rep1.post(base, { category_id: String(await categoryId('Call')), subject: 'Sneaky' })).status).toBe(404);
    expect((await rep1.htmxGet(`${base}/${hidden}/edit`)).status).toBe(404);
    expect((await rep1.post(`${base}/${hidden}`, { subject: 'x', lock_version: '0' })).status).toBe(404);
    expect((await rep1.post(`${base}/${hidden}/delete`)).status).toBe(404);
    expect((await rep1.get(`/crm/activities/${hidden}/calendar.ics`)).status).toBe(404);
    // An activity id under another (visible) record is not found either.
    expect((await rep1.htmxGet(`/crm/opportunities/${await oppId('Acme – ERP rollout')}/activities/${hidden}/edit`)).status).toBe(404);
    expect(await activity('Sneaky')).toBeUndefined();
  });
  test('a user who may see an opportunity but not change it is refused with 403 before the form is read: no field errors, no add form, nothing saved (S1)', async () => {
    // pm views the CRM project only; as a sales rep in crm-asia they do hold edit_opportunities, so the route's own check passes.
    const role = await knex()('roles').where({ name: 'Sales rep' }).first('id');
    const membership = { project_id: host.demo.projects['crm-asia'].id, user_id: host.demo.users.pm.id, role_id: role.id };
    await knex()('members').insert(membership);
    try {
      const pm = await Session.signIn(host.app, 'pm');
      const base = `/crm/opportunities/${await oppId('Webshop – integration')}/activities`;
      expect((await pm.get(`${base}.json`)).body.can_edit).toBe(false);
      const incomplete = await pm.post(base, { category_id: '', subject: 'Half typed' });
      expect(incomplete.status).toBe(403);
      expect(visibleText(incomplete.text)).toContain('You may see this opportunity but not add activities to it.');
      expect(visibleText(incomplete.text)).not.toContain('Subject is required');
      expect(incomplete.text).not.toContain('name="subject"');
      const json = await pm.agent.post(base).set('Accept', 'application/json').set('X-CSRF-Token', pm.csrf).send({ subject: '' });
      expect(json.status).toBe(403);
      expect(json.body.fields ?? {}).toEqual({});
      const complete = await pm.htmxPost(base, { category_id: String(await categoryId('Call')), subject: 'Half typed' });
      expect(complete.status).toBe(403);
      expect(await activity('Half typed')).toBeUndefined();
    } finally {
      await knex()('members').where(membership).delete();
    }
  });
  test('partners: activities through the same routes (JSON), journaled on the partner; another region’s partner is 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const baltic = Number((await knex()('crm_partners').where({ name: 'Baltic Consulting' }).first()).id);
    const pacific = Number((await knex()('crm_partners').where({ name: 'Pacific Partners' }).first()).id);
    const res = await rep1.agent.post(`/crm/partners/${baltic}/activities`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ category_id: await categoryId('Meeting'), subject: 'Partner review', next_contact_on: day(7) });
    expect(res.status).toBe(201);
    expect(res.body.activity).toMatchObject({ record_type: 'partner', record_id: baltic, account_id: null });
    expect((await rep1.get(`/crm/partners/${baltic}/activities.json`)).body.activities.map((a: { subject: string }) => a.subject)).toContain('Partner review');
    expect(await knex()('crm_journals').where({ journalized_type: 'partner', journalized_id: baltic }).orderBy('id', 'desc').first('action')).toEqual({ action: 'update' });
    expect((await rep1.get(`/crm/partners/${pacific}/activities.json`)).status).toBe(404);
  });
});

describe('bad input', () => {
  test('subject missing, duration -5, next contact 2026-02-30, category 999, a bad date: 422 naming each field, nothing saved', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Eva Lind – consulting');
    const base = `/crm/opportunities/${id}/activities`;
    const before = await knex()('crm_sales_activities').where({ record_type: 'opportunity', record_id: id }).count({ n: '*' });
    const bad = { category_id: '999', subject: '', duration_minutes: '-5', next_contact_on: '2026-02-30', occurred_at: 'yesterday', responsible_id: '99999', variant: 'sidebar' };
    const htmx = await rep1.htmxPost(base, bad);
    expect(htmx.status).toBe(422);
    for (const f of ['category_id', 'subject', 'duration_minutes', 'next_contact_on', 'occurred_at', 'responsible_id']) expect(htmx.text).toContain(`data-field="${f}"`);
    expect(htmx.text).toContain('hx-swap-oob="true"');
    expect(htmx.text).toContain('value="2026-02-30"');

    const plain = await rep1.post(base, bad);
    expect(plain.status).toBe(422);
    expect(plain.text).toContain('data-field="next_contact_on"');
    expect(visibleText(plain.text)).toContain('The activity was not saved');

    const json = await rep1.agent.post(`${base}`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({ category_id: 1, subject: 'x'.repeat(201), duration_minutes: '1441' });
    expect(json.status).toBe(422);
    expect(Object.keys(json.body.fields).sort()).toEqual(['duration_minutes', 'subject']);
    expect(json.body.fields.duration_minutes).toBe('Duration must be whole minutes from 0 to 1440');
    const after = await knex()('crm_sales_activities').where({ record_type: 'opportunity', record_id: id }).count({ n: '*' });
    expect(Number(after[0].n)).toBe(Number(before[0].n));
  });

  test('JSON: create answers 201 with the activity; update without a lock version is refused', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Eva Lind – consulting');
    const created = await rep1.agent.post(`/crm/opportunities/${id}/activities`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ category_id: await categoryId('Call'), subject: 'API call', occurred_at: '2026-11-23T10:00:00+01:00', duration_minutes: 0 });
    expect(created.status).toBe(201);
    expect(created.body.activity).toMatchObject({ subject: 'API call', occurred_at: '2026-11-23T09:00:00.000Z', duration_minutes: 0, lock_version: 0 });
    const update = await rep1.agent.post(`/crm/opportunities/${id}/activities/${created.body.activity.id}`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({ subject: 'x' });
    expect(update.status).toBe(422);
    expect(update.body.fields.lock_version).toBe('missing');
  });
});

describe('to-do (O5)', () => {
  test('counts for today, overdue and no responsible person match the inserted activities, per account too, and only what the user may see', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const todoBefore = (await rep1.get('/crm/activities/todo.json')).body;
    const directorBefore = (await (await Session.signIn(host.app, 'director')).get('/crm/activities/todo.json')).body;
    const acme = await accountId('Acme Manufacturing');
    const opp = await oppId('Acme – ERP rollout');
    const globex = await oppId('Globex – data platform');
    const rep1Id = host.demo.users.rep1.id;
    const rows = [
      { subject: 'todo today 1', next_contact_on: day(0), responsible_id: rep1Id },
      { subject: 'todo today 2 unassigned', next_contact_on: day(0), responsible_id: null },
      { subject: 'todo overdue', next_contact_on: day(-3), responsible_id: rep1Id },
      { subject: 'todo overdue unassigned', next_contact_on: day(-1), responsible_id: null },
      { subject: 'todo upcoming unassigned', next_contact_on: day(5), responsible_id: null },
      { subject: 'todo upcoming', next_contact_on: day(5), responsible_id: rep1Id },
      { subject: 'no follow-up', next_contact_on: null, responsible_id: null },
    ];
    for (const r of rows) await insertActivity({ ...r, record_id: opp, account_id: acme, project_id: host.demo.projects['crm-europe'].id, author_id: rep1Id });
    // Not for rep1: an opportunity in the Americas, and someone else's personal activity.
    await insertActivity({ subject: 'todo americas', record_id: globex, account_id: await accountId('Globex Corporation'), next_contact_on: day(0), responsible_id: null });
    await insertActivity({ subject: 'todo personal of director', record_id: opp, account_id: acme, next_contact_on: day(0), is_personal: true, author_id: host.demo.users.director.id });

    const todo = (await rep1.get('/crm/activities/todo.json')).body;
    expect(todo.today).toBe(day(0));
    expect(todo.totals.today.count - todoBefore.totals.today.count).toBe(2);
    expect(todo.totals.overdue.count - todoBefore.totals.overdue.count).toBe(2);
    expect(todo.totals.unassigned.count - todoBefore.totals.unassigned.count).toBe(3);
    expect(todo.totals.today.url).toBe('/crm/activities?due=today');
    const acmeOf = (body: { by_account: { account_id: number; today: number; overdue: number; unassigned: number }[] }) =>
      body.by_account.find((a) => a.account_id === acme) ?? { today: 0, overdue: 0, unassigned: 0 };
    expect(acmeOf(todo).today - acmeOf(todoBefore).today).toBe(2);
    expect(acmeOf(todo).overdue - acmeOf(todoBefore).overdue).toBe(2);
    expect(acmeOf(todo).unassigned - acmeOf(todoBefore).unassigned).toBe(3);
    const upcoming = todo.upcoming.find((g: { next_contact_on: string; account_id: number }) => g.next_contact_on === day(5) && g.account_id === acme);
    expect(upcoming.count).toBeGreaterThanOrEqual(2);
    expect(upcoming.url).toBe(`/crm/activities?on=${day(5)}&account=${acme}`);

    const director = (await (await Session.signIn(host.app, 'director')).get('/crm/activities/todo.json')).body;
    // The director also sees the Americas' one and their own personal one (rep1 saw neither): 2 + 2.
    expect(director.totals.today.count - directorBefore.totals.today.count).toBe(4);

    const page = await rep1.get('/crm/activities/todo');
    expect(page.status).toBe(200);
    expect(page.text).toContain('href="/crm/activities?due=today"');
    expect(page.text).toContain('href="/crm/activities?due=overdue"');
    expect(page.text).toContain('href="/crm/activities?due=unassigned"');
    expect(page.text).toContain(`href="/crm/activities?due=today&amp;account=${acme}"`);
    expect(visibleText(page.text)).toContain(`${todo.totals.today.count} due today`);
  });

  test('the linked lists show those activities, paginated, as HTML and JSON; a bad filter is 422', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const opp = await oppId('Nordic Retail – POS upgrade');
    const nordic = await accountId('Nordic Retail Group');
    await insertActivity({ subject: 'list today', record_id: opp, account_id: nordic, next_contact_on: day(0), responsible_id: host.demo.users.rep1.id });
    await insertActivity({ subject: 'list overdue', record_id: opp, account_id: nordic, next_contact_on: day(-10), responsible_id: null });
    await insertActivity({ subject: 'list upcoming', record_id: opp, account_id: nordic, next_contact_on: day(2), responsible_id: host.demo.users.rep1.id });
    await insertActivity({ subject: 'list americas', record_id: await oppId('Globex – data platform'), next_contact_on: day(0) });
    const subjects = async (q: string) => ((await rep1.get(`/crm/activities.json${q}`)).body.activities as { subject: string }[]).map((a) => a.subject);
    const today = await subjects('?due=today');
    expect(today).toContain('list today');
    expect(today).not.toContain('list overdue');
    expect(today).not.toContain('list americas');
    const overdue = await subjects('?due=overdue');
    expect(overdue).toContain('list overdue');
    expect(overdue).not.toContain('list today');
    const unassigned = await subjects(`?due=unassigned&account=${nordic}`);
    expect(unassigned).toContain('list overdue');
    expect(unassigned).not.toContain('list today');
    expect(await subjects(`?on=${day(2)}&account=${nordic}`)).toEqual(['list upcoming']);

    const html = await rep1.get('/crm/activities?due=today');
    expect(html.status).toBe(200);
    expect(visibleText(html.text)).toContain('Due today');
    expect(html.text).toContain(`href="/crm/opportunities/${opp}"`);
    const json = await rep1.get('/crm/activities.json?due=today');
    expect(json.body.pagination).toMatchObject({ page: 1 });
    const project = await rep1.get('/projects/crm-europe/crm/activities.json?due=today');
    expect(project.status).toBe(200);
    expect(project.body.activities.map((a: { subject: string }) => a.subject)).toContain('list today');

    const projectTodo = await rep1.get('/projects/crm-europe/crm/activities/todo');
    expect(projectTodo.status).toBe(200);
    expect(projectTodo.text).toContain('href="/projects/crm-europe/crm/activities?due=today"');
    expect((await rep1.get('/projects/crm-americas/crm/activities/todo')).status).toBe(404);

    const bad = await rep1.get('/crm/activities.json?due=tomorrow&on=2026-02-30');
    expect(bad.status).toBe(422);
    expect(Object.keys(bad.body.fields).sort()).toEqual(['due', 'on']);
    expect((await rep1.get("/crm/activities?account=1'%20or%201=1")).status).toBe(422);
  });
});

/**
 * Accounts the reader may not see: rep1's two private accounts (“Rick’s private prospect” of the demo and a second one
 * made here), each with an opportunity in crm-europe that the director sees (sees all there) without its account.
 */
describe('activities of an account the reader may not see', () => {
  const PRIVATE = 'Rick’s private prospect';
  const OTHER = 'Rick’s second secret';
  let [secret, other, acme] = [0, 0, 0];
  let [secretOverdue, otherOverdue, acmeOverdue] = [0, 0, 0];
  const opportunities: number[] = [];
  const activityIds = (body: { activities: { id: number }[] }) => body.activities.map((a) => a.id);
  const asJson = (url: string) => url.replace(/^([^?]*)/, '$1.json');
  const rowOf = (html: string, id: number) => new RegExp(`<tr data-activity="${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';

  beforeAll(async () => {
    const rick = await knex()('crm_accounts').where({ name: PRIVATE }).first();
    const [row] = await knex()('crm_accounts').insert({ account_type_id: rick.account_type_id, name: OTHER, author_id: rick.author_id, is_private: true }).returning('id');
    [secret, other, acme] = [Number(rick.id), Number(row.id ?? row), await accountId('Acme Manufacturing')];
    const europe = host.demo.projects['crm-europe'].id;
    await knex()('crm_account_projects').insert({ account_id: other, project_id: europe });
    const erp = await knex()('crm_opportunities').where({ name: 'Acme – ERP rollout' }).first();
    for (const [name, account] of [['Secret pilot', secret], ['Second secret pilot', other]] as const) {
      const [o] = await knex()('crm_opportunities').insert({
        project_id: europe, name, account_id: account, owner_id: host.demo.users.rep1.id, author_id: host.demo.users.rep1.id, status_id: erp.status_id, currency: 'EUR',
      }).returning('id');
      opportunities.push(Number(o.id ?? o));
    }
    const rep1Id = host.demo.users.rep1.id;
    secretOverdue = await insertActivity({ subject: 'hidden account overdue', record_id: opportunities[0], account_id: secret, project_id: europe, next_contact_on: day(-2), author_id: rep1Id });
    otherOverdue = await insertActivity({ subject: 'second hidden account overdue', record_id: opportunities[1], account_id: other, project_id: europe, next_contact_on: day(-4), responsible_id: rep1Id, author_id: rep1Id });
    await insertActivity({ subject: 'hidden account upcoming', record_id: opportunities[0], account_id: secret, project_id: europe, next_contact_on: day(6), author_id: rep1Id });
    await insertActivity({ subject: 'second hidden account upcoming', record_id: opportunities[1], account_id: other, project_id: europe, next_contact_on: day(6), author_id: rep1Id });
    acmeOverdue = await insertActivity({ subject: 'acme overdue', record_id: erp.id, account_id: acme, project_id: erp.project_id, next_contact_on: day(-3), author_id: rep1Id });
  });

  afterAll(async () => {
    await knex()('crm_sales_activities').whereIn('record_id', opportunities).where({ record_type: 'opportunity' }).delete();
    await knex()('crm_sales_activities').where({ id: acmeOverdue }).delete();
    await knex()('crm_opportunities').whereIn('id', opportunities).delete();
    await knex()('crm_account_projects').where({ account_id: other }).delete();
    await knex()('crm_accounts').where({ id: other }).delete();
  });

  test('a filter on an account the reader may not see is left out and the list says so (HTML, htmx fragment, JSON), as the other lists do; one they may see still filters', async () => {
    const director = await Session.signIn(host.app, 'director');
    const unfiltered = (await director.get('/crm/activities.json?due=overdue')).body;
    expect(activityIds(unfiltered)).toEqual(expect.arrayContaining([secretOverdue, acmeOverdue]));

    // Not narrowed to the account's activities (its one overdue call), nor emptied: the list unfiltered, with a notice.
    const json = (await director.get(`/crm/activities.json?due=overdue&account=${secret}`)).body;
    expect(activityIds(json)).toEqual(activityIds(unfiltered));
    expect(json.pagination.total).toBe(unfiltered.pagination.total);
    expect(json.left_out_of_filter).toEqual(['an account you cannot see']);
    expect(json.filters).toEqual({ due: 'overdue' });
    // Its activities are listed as of an account the reader may not see, without its id.
    expect(json.activities.find((a: { id: number }) => a.id === secretOverdue)).toMatchObject({ account_id: null, account_name: null, account_hidden: true });
    expect(json.activities.find((a: { id: number }) => a.id === acmeOverdue)).toMatchObject({ account_id: acme, account_name: 'Acme Manufacturing', account_hidden: false });
    expect(JSON.stringify(json)).not.toContain(PRIVATE);

    const page = await director.get(`/crm/activities?due=overdue&account=${secret}`);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('Part of this filter no longer applies and was left out: an account you cannot see.');
    expect(text).toContain('Overdue');
    expect(page.text).not.toContain(PRIVATE);
    expect(visibleText(rowOf(page.text, secretOverdue))).toContain('an account you cannot see');
    expect(rowOf(page.text, acmeOverdue)).not.toBe('');
    const fragment = await director.htmxGet(`/crm/activities?due=overdue&account=${secret}`);
    expect(fragment.text).not.toContain('<html');
    expect(visibleText(fragment.text)).toContain('left out: an account you cannot see');
    expect(rowOf(fragment.text, acmeOverdue)).not.toBe('');

    // An account they may see still filters, without a notice.
    const acmes = (await director.get(`/crm/activities.json?due=overdue&account=${acme}`)).body;
    expect(activityIds(acmes)).toContain(acmeOverdue);
    expect(activityIds(acmes)).not.toContain(secretOverdue);
    expect(acmes.activities.every((a: { account_id: number }) => a.account_id === acme)).toBe(true);
    expect(acmes.left_out_of_filter).toBeUndefined();
    expect(visibleText((await director.get(`/crm/activities?due=overdue&account=${acme}`)).text)).not.toContain('left out');
    // Its owner, who may see it, filters by it.
    const rep1 = await Session.signIn(host.app, 'rep1');
    expect(activityIds((await rep1.get(`/crm/activities.json?due=overdue&account=${secret}`)).body)).toEqual([secretOverdue]);
    expect(visibleText((await rep1.get(`/crm/activities?due=overdue&account=${secret}`)).text)).toContain(`Overdue · ${PRIVATE}`);
  });

  test('an opportunity’s activities (its panel, an edit, a new one, an activity’s history) give no id for an account the reader may not see: null and account_hidden, as the activity list does', async () => {
    const [pilot] = opportunities;
    const sent = (s: Session, url: string, body: Record<string, unknown>) => s.agent.post(url).set('Accept', 'application/json').set('X-CSRF-Token', s.csrf).send(body);
    const director = await Session.signIn(host.app, 'director');
    expect((await director.get(`/crm/opportunities/${pilot}`)).status).toBe(200);
    const unseen = { account_id: null, account_hidden: true };
    const panel = await director.get(`/crm/opportunities/${pilot}/activities.json`);
    expect(panel.status).toBe(200);
    expect(panel.body.activities.find((a: { id: number }) => a.id === secretOverdue)).toMatchObject({ id: secretOverdue, ...unseen });
    expect((await director.get(`/crm/activities/${secretOverdue}/history.json`)).body.activity).toMatchObject({ id: secretOverdue, ...unseen });
    const edit = await director.get(`/crm/opportunities/${pilot}/activities/${secretOverdue}/edit.json`);
    expect(edit.status).toBe(200);
    expect(edit.body.activity).toMatchObject({ id: secretOverdue, ...unseen });
    const created = await sent(director, `/crm/opportunities/${pilot}/activities`, { category_id: await categoryId('Call'), subject: 'Call about the secret pilot' });
    expect(created.status).toBe(201);
    const id = Number(created.body.activity.id);
    try {
      expect(created.body.activity).toMatchObject(unseen);
      // Stored with the opportunity's account all the same, and given to its owner, who may see it.
      expect(Number((await knex()('crm_sales_activities').where({ id }).first()).account_id)).toBe(secret);
      const rep1 = await Session.signIn(host.app, 'rep1');
      const theirs = (await rep1.get(`/crm/opportunities/${pilot}/activities.json`)).body.activities as { id: number }[];
      expect(theirs.filter((a) => a.id === id || a.id === secretOverdue)).toEqual([
        expect.objectContaining({ id, account_id: secret, account_hidden: false }), expect.objectContaining({ id: secretOverdue, account_id: secret, account_hidden: false }),
      ]);
      // An account's own activities name it: whoever reads them may see it.
      const acmes = (await director.get(`/crm/accounts/${acme}/activities.json`)).body.activities as { account_id: number; account_hidden: boolean }[];
      expect(acmes.every((a) => a.account_id === acme && !a.account_hidden)).toBe(true);
    } finally {
      await knex()('crm_sales_activities').where({ id }).delete();
    }
  });

  test('the to-do page counts the accounts the reader may not see as one group, linked to the list of just their activities; every count is what its link lists', async () => {
    const director = await Session.signIn(host.app, 'director');
    const todo = (await director.get('/crm/activities/todo.json')).body;
    const hidden = todo.by_account.filter((a: { account_hidden: boolean }) => a.account_hidden);
    expect(hidden).toEqual([expect.objectContaining({ account_id: null, account_name: null })]);
    expect(hidden[0].overdue).toBeGreaterThanOrEqual(2);
    expect(hidden[0].urls.overdue).toBe('/crm/activities?due=overdue&account=hidden');
    const overdueHidden = activityIds((await director.get(asJson(hidden[0].urls.overdue))).body);
    expect(overdueHidden).toEqual(expect.arrayContaining([secretOverdue, otherOverdue]));
    expect(overdueHidden).not.toContain(acmeOverdue);
    const ids = [...todo.by_account, ...todo.upcoming].map((g: { account_id: number | null }) => g.account_id);
    expect(ids).not.toContain(secret);
    expect(ids).not.toContain(other);
    expect(JSON.stringify(todo)).not.toMatch(new RegExp(`account=(${secret}|${other})\\b`));
    const upcomingHidden = todo.upcoming.filter((g: { next_contact_on: string; account_hidden: boolean }) => g.next_contact_on === day(6) && g.account_hidden);
    expect(upcomingHidden).toEqual([expect.objectContaining({ account_id: null, account_name: null, url: `/crm/activities?on=${day(6)}&account=hidden` })]);
    expect(upcomingHidden[0].count).toBeGreaterThanOrEqual(2);

    const page = await director.get('/crm/activities/todo');
    expect(page.text).toContain('href="/crm/activities?due=overdue&amp;account=hidden"');
    expect(visibleText(page.text)).toContain('Accounts you cannot see');
    expect(page.text).not.toMatch(new RegExp(`account=(${secret}|${other})\\b`));
    expect(page.text).not.toContain(PRIVATE);
    const list = await director.get('/crm/activities?due=overdue&account=hidden');
    expect(visibleText(list.text)).toContain('Overdue · accounts you cannot see');
    expect(rowOf(list.text, secretOverdue)).not.toBe('');

    // Every count of the page, for the director and for rep1 (who sees both accounts, each its own group), is the
    // number of activities its link lists: an account they see, no account, the accounts they do not.
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep1Todo = (await rep1.get('/crm/activities/todo.json')).body;
    expect(rep1Todo.by_account.find((a: { account_id: number }) => a.account_id === secret)).toMatchObject({ account_name: PRIVATE, account_hidden: false });
    for (const [session, body] of [[director, todo], [rep1, rep1Todo]] as const) {
      const groups = body.by_account as { account_id: number | null; urls: Record<string, string>; [due: string]: unknown }[];
      expect(groups.some((a) => a.account_id === acme)).toBe(true);
      for (const a of groups) {
        for (const due of ['today', 'overdue', 'unassigned']) {
          if (a[due]) expect([a.urls[due], (await session.get(asJson(a.urls[due]))).body.pagination.total]).toEqual([a.urls[due], a[due]]);
        }
      }
      for (const g of body.upcoming as { url: string; count: number }[]) {
        expect([g.url, (await session.get(asJson(g.url))).body.pagination.total]).toEqual([g.url, g.count]);
      }
    }
  });
});

describe('an opportunity’s activities follow it', () => {
  test('when the opportunity changes account or project, its activities are listed, filtered and grouped under the new ones', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await oppId('Acme – ERP rollout');
    const before = await knex()('crm_opportunities').where({ id }).first();
    const [acme, nordic] = [before.account_id as number, await accountId('Nordic Retail Group')];
    const [europe, americas] = [host.demo.projects['crm-europe'].id, host.demo.projects['crm-americas'].id];
    const target = before.project_id === europe ? americas : europe;
    try {
      const added = await director.post(`/crm/opportunities/${id}/activities`, {
        category_id: String(await categoryId('Call')), subject: 'follows its opportunity', next_contact_on: day(0),
      });
      expect(added.status).toBe(303);
      expect((await activity('follows its opportunity')).account_id).toBe(acme);
      const saved = await director.post(`/crm/opportunities/${id}`, {
        name: before.name, status_id: String(before.status_id), currency: before.currency, account_id: String(nordic), lock_version: String(before.lock_version),
      });
      expect(saved.status).toBe(303);
      expect((await activity('follows its opportunity')).account_id).toBe(nordic);
      const subjects = async (q: string) => ((await director.get(`/crm/activities.json${q}`)).body.activities as { subject: string }[]).map((a) => a.subject);
      expect(await subjects(`?due=today&account=${nordic}`)).toContain('follows its opportunity');
      expect(await subjects(`?due=today&account=${acme}`)).not.toContain('follows its opportunity');
      const listed = await director.get(`/crm/opportunities/${id}/activities.json`);
      expect(listed.body.activities.find((a: { subject: string }) => a.subject === 'follows its opportunity').account_id).toBe(nordic);

      const lock = (await knex()('crm_opportunities').where({ id }).first()).lock_version;
      expect((await director.post(`/crm/opportunities/${id}/project`, { project_id: String(target), lock_version: String(lock) })).status).toBe(303);
      expect((await activity('follows its opportunity')).project_id).toBe(target);
      expect(await subjects(`?due=today&project=${target}`)).toContain('follows its opportunity');
      expect(await subjects(`?due=today&project=${before.project_id}`)).not.toContain('follows its opportunity');
    } finally {
      await knex()('crm_sales_activities').where({ subject: 'follows its opportunity' }).delete();
      await knex()('crm_opportunities').where({ id }).update({ account_id: before.account_id, project_id: before.project_id });
    }
  });
});

describe('an activity’s history', () => {
  test('tells that its account and project changed with its opportunity, old → new (page, htmx fragment and JSON), each activity journaled in the change’s few statements', async () => {
    const director = await Session.signIn(host.app, 'director');
    const [acme, nordic] = [await accountId('Acme Manufacturing'), await accountId('Nordic Retail Group')];
    const [europe, americas] = [host.demo.projects['crm-europe'], host.demo.projects['crm-americas']];
    const status = (await knex()('crm_opportunities').where({ id: await oppId('Acme – ERP rollout') }).first()).status_id;
    const [o] = await knex()('crm_opportunities').insert({
      project_id: europe.id, name: 'History follows deal', account_id: acme, owner_id: host.demo.users.director.id, author_id: host.demo.users.director.id, status_id: status, currency: 'EUR',
    }).returning('id');
    const id = Number(o.id ?? o);
    for (const subject of ['history follows one', 'history follows two']) {
      expect((await director.post(`/crm/opportunities/${id}/activities`, { category_id: String(await categoryId('Call')), subject })).status).toBe(303);
    }
    const [one, two] = [Number((await activity('history follows one')).id), Number((await activity('history follows two')).id)];
    const url = `/crm/activities/${one}/history`;
    expect(visibleText((await director.get(url)).text)).toContain('No changes recorded yet.');

    const { result: saved, statements } = await statementsDuring(knex(), () => director.post(`/crm/opportunities/${id}`, {
      name: 'History follows deal', status_id: String(status), currency: 'EUR', account_id: String(nordic), owner_id: String(host.demo.users.director.id), lock_version: '0',
    }));
    expect(saved.status).toBe(303);
    // One entry for the opportunity, one multi-row insert for both its activities (not one per activity).
    expect(statements.filter((s) => /^insert into [`"]crm_journals[`"]/.test(s.sql))).toHaveLength(2);
    const follows = `Follows its opportunity #${id}`;
    await expectLinkedPage(director, (await director.get(`/crm/opportunities/${id}`)).text, url);
    const page = visibleText((await director.get(url)).text);
    expect(page).toContain('Account : Acme Manufacturing → Nordic Retail Group');
    expect(page).toContain(follows);
    expect(visibleText((await director.get(`/crm/activities/${two}/history`)).text)).toContain('Account : Acme Manufacturing → Nordic Retail Group');

    expect((await director.post(`/crm/opportunities/${id}/project`, { project_id: String(americas.id), lock_version: '1' })).status).toBe(303);
    const json = await director.get(`${url}.json`);
    expect(json.status).toBe(200);
    expect(json.body.activity).toMatchObject({ id: one, subject: 'history follows one', account_id: nordic, project_id: americas.id });
    expect(json.body.history.entries.map((e: { notes: string; details: unknown[] }) => [e.notes, e.details])).toEqual([
      [`Moved with its opportunity #${id}`, [{ field: 'project_id', label: 'Project', old: europe.name, new: americas.name }]],
      [follows, [{ field: 'account_id', label: 'Account', old: 'Acme Manufacturing', new: 'Nordic Retail Group' }]],
    ]);
    const stored = await knex()('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': 'sales_activity', 'j.journalized_id': two }).orderBy('j.id').select('j.user_id', 'd.field', 'd.old_value', 'd.new_value');
    expect(stored).toEqual([
      { user_id: host.demo.users.director.id, field: 'account_id', old_value: String(acme), new_value: String(nordic) },
      { user_id: host.demo.users.director.id, field: 'project_id', old_value: String(europe.id), new_value: String(americas.id) },
    ]);

    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(url)).status).toBe(404);
    expect((await rep1.get(`${url}.json`)).status).toBe(404);
  });
});

describe('calendar entry (O6)', () => {
  test('an .ics with the account as title, the notes escaped, 30 minutes from now rounded up to 5 minutes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    await rep1.post(`/crm/opportunities/${id}/activities`, { category_id: String(await categoryId('Call')), subject: 'ics test', notes: 'Agenda: price, terms; next steps\nBring the \\ backslash' });
    const row = await activity('ics test');
    const before = Date.now();
    const res = await rep1.get(`/crm/activities/${row.id}/calendar.ics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/calendar/);
    expect(res.headers['content-disposition']).toBe(`attachment; filename="activity-${row.id}.ics"`);
    const text = res.text.replace(/\r\n /g, '');
    expect(res.text).toContain('BEGIN:VCALENDAR\r\n');
    expect(text).toContain('\r\nSUMMARY:Acme Manufacturing\r\n');
    expect(text).toContain('\r\nDESCRIPTION:Agenda: price\\, terms\\; next steps\\nBring the \\\\ backslash\r\n');
    expect(text).toMatch(/\r\nUID:[^\r\n]+\r\n/);
    expect(text).toMatch(/\r\nDTSTAMP:\d{8}T\d{6}Z\r\n/);
    const stamp = (name: string) => {
      const m = new RegExp(`\\r\\n${name}:(\\d{4})(\\d{2})(\\d{2})T(\\d{2})(\\d{2})(\\d{2})Z\\r\\n`).exec(text)!;
      return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
    };
    const start = stamp('DTSTART');
    const end = stamp('DTEND');
    expect(end.getTime() - start.getTime()).toBe(30 * 60_000);
    expect(start.getUTCMinutes() % 5).toBe(0);
    expect(start.getUTCSeconds()).toBe(0);
    expect(start.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(start.getTime() - before).toBeLessThanOrEqual(5 * 60_000 + 5000);
  });

  test('control characters in the notes (a pasted bell, vertical tab, escape) are left out of the .ics, which allows none but tab', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const id = await oppId('Acme – ERP rollout');
    await rep1.post(`/crm/opportunities/${id}/activities`, { category_id: String(await categoryId('Call')), subject: 'ics controls', notes: 'Ring\u0007 the\u000bbell\u001b[0m\tnow\u007f' });
    expect((await activity('ics controls')).notes).toContain('\u0007');
    const res = await rep1.get(`/crm/activities/${(await activity('ics controls')).id}/calendar.ics`);
    expect(res.status).toBe(200);
    // eslint-disable-next-line no-control-regex
    expect(res.text).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/);
    expect(res.text.replace(/\r\n /g, '')).toContain('\r\nDESCRIPTION:Ring thebell[0m\tnow\r\n');
  });
});

describe('the activity list on a large database', () => {
  /** Every subject of the list, page by page. */
  const allSubjects = async (session: Session, filter: string) => everyPage(session, `/crm/activities.json?${filter}`, 'activities', 'subject') as Promise<string[]>;

  test('a rep’s pages are the same whether the list walks the newest activities first or fetches and sorts what they may see; the count is kept until an activity changes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const mine = await oppId('Nordic Retail – POS upgrade');
    const others = await oppId('Globex – data platform');
    // Many activities rep1 may not see (another region's opportunity) among a few they may: a walk passes the others.
    const made: number[] = [];
    const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString();
    for (let i = 0; i < 60; i++) made.push(await insertActivity({ subject: `walk hidden ${i}`, record_id: others, occurred_at: at(i) }));
    for (let i = 0; i < 5; i++) made.push(await insertActivity({ subject: `walk seen ${i}`, record_id: mine, occurred_at: at(i * 12 + 5) }));
    // Two at the same moment: the id decides their order.
    made.push(await insertActivity({ subject: 'walk seen tie a', record_id: mine, occurred_at: at(30) }));
    made.push(await insertActivity({ subject: 'walk seen tie b', record_id: mine, occurred_at: at(30) }));
    try {
      const whole = await withPageSize(knex(), 500, () => allSubjects(rep1, ''));
      const seen = whole.filter((s) => s.startsWith('walk '));
      expect(seen).toEqual(['walk seen 4', 'walk seen 3', 'walk seen tie b', 'walk seen tie a', 'walk seen 2', 'walk seen 1', 'walk seen 0']);
      const { result: inPairs, statements } = await statementsDuring(knex(), () => withPageSize(knex(), 2, () => allSubjects(rep1, '')));
      expect(inPairs).toEqual(whole);
      const walked = statements.filter(({ sql }) => /indexed by crm_sales_activities_period_index/i.test(sql));
      if (host.db.kind === 'sqlite') expect(walked.length).toBeGreaterThan(0);
      else expect(walked).toEqual([]);

      // Read again: the count is not run again (one statement counts the visible activities, and only the first time).
      const counts = async () => (await statementsDuring(knex(), () => rep1.get('/crm/activities.json'))).statements.filter(({ sql }) => /count\(\*\)/i.test(sql));
      const total = (await rep1.get('/crm/activities.json')).body.pagination.total;
      expect(await counts()).toEqual([]);
      // A new activity changes the count at once.
      made.push(await insertActivity({ subject: 'walk seen new', record_id: mine, occurred_at: at(59) }));
      expect((await rep1.get('/crm/activities.json')).body.pagination.total).toBe(total + 1);
      expect((await allSubjects(rep1, '')).filter((s) => s.startsWith('walk '))).toEqual(['walk seen new', ...seen]);
    } finally {
      await knex()('crm_sales_activities').whereIn('id', made).delete();
    }
  });
});

describe('the to-do page on a large database', () => {
  /** SQLite's plan of each statement that reads the activities. */
  const activityPlans = async (statements: { sql: string; bindings: unknown[] }[]) => Promise.all(statements
    .filter(({ sql }) => /from [`"]crm_sales_activities[`"]/i.test(sql))
    .map(async ({ sql, bindings }) => ((await knex().raw(`explain query plan ${sql}`, bindings as Knex.RawBinding[])) as { detail: string }[]).map((r) => r.detail).join('\n')));

  test('a rep’s follow-ups are read from the follow-up index alone, never each visible record’s activities; each count is what its link lists', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const { result: todo, statements } = await statementsDuring(knex(), async () => (await rep1.get('/crm/activities/todo.json')).body);
    const due = await statementsDuring(knex(), () => rep1.get('/crm/activities.json?due=overdue'));
    if (host.db.kind === 'sqlite') {
      // The to-do's sums and groups, and the list's count and choice of its page's ids, read nothing but the index.
      const plans = [...await activityPlans(statements), ...await activityPlans(due.statements)];
      expect(plans.length).toBeGreaterThanOrEqual(3);
      for (const plan of plans) {
        expect(plan).toMatch(/USING COVERING INDEX crm_sales_activities_follow_up_index/);
        expect(plan).not.toMatch(/crm_sales_activities_record_type_record_id_occurred_at_index/);
      }
    }
    for (const filter of ['today', 'overdue', 'unassigned'] as const) {
      const listed = await rep1.get(`/crm/activities.json?due=${filter}`);
      expect(listed.body.pagination.total).toBe(todo.totals[filter].count);
    }
    expect(due.result.body.pagination.total).toBe(todo.totals.overdue.count);
    // Each visible follow-up is read once per sum: the by-account sums carry the totals, a page of upcoming groups their number.
    expect(statements.filter(({ sql }) => /from [`"]crm_sales_activities[`"]/i.test(sql))).toHaveLength(2);
  });

  test('the upcoming groups are the same read whole or in pages of two; a page past the end shows the last one', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const nordic = { record_id: await oppId('Nordic Retail – POS upgrade'), account_id: await accountId('Nordic Retail Group') };
    const acme = { record_id: await oppId('Acme – ERP rollout'), account_id: await accountId('Acme Manufacturing') };
    const made: number[] = [];
    for (const [offset, opportunity] of [[20, nordic], [20, acme], [21, nordic], [21, nordic], [22, acme]] as const) {
      made.push(await insertActivity({ subject: `paged follow-up ${made.length}`, ...opportunity, next_contact_on: day(offset), author_id: host.demo.users.rep1.id }));
    }
    try {
      const groups = (pageSize: number) => withPageSize(knex(), pageSize, () => everyPage(rep1, '/crm/activities/todo.json', 'upcoming', 'url'));
      const whole = await groups(500);
      expect(whole.filter((url) => [day(20), day(21), day(22)].some((d) => String(url).includes(`on=${d}`)))).toHaveLength(4);
      expect(await groups(2)).toEqual(whole);
      await withPageSize(knex(), 2, async () => {
        const { pagination } = (await rep1.get('/crm/activities/todo.json')).body;
        expect(pagination.total).toBe(whole.length);
        const past = (await rep1.get(`/crm/activities/todo.json?page=${pagination.pages + 5}`)).body;
        expect(past.pagination).toMatchObject({ page: pagination.pages, pages: pagination.pages, total: whole.length });
        expect(past.upcoming.map((g: { url: string }) => g.url)).toEqual(whole.slice((pagination.pages - 1) * 2));
      });
      // A follow-up list's page picks its ids from the follow-up index first: the same order read whole or in pairs.
      const upcoming = (pageSize: number) => withPageSize(knex(), pageSize, () => everyPage(rep1, '/crm/activities.json?due=upcoming', 'activities', 'subject'));
      const listed = await upcoming(500);
      expect(listed.filter((subject) => String(subject).startsWith('paged follow-up '))).toEqual(['paged follow-up 0', 'paged follow-up 1', 'paged follow-up 2', 'paged follow-up 3', 'paged follow-up 4']);
      expect(await upcoming(2)).toEqual(listed);
    } finally {
      await knex()('crm_sales_activities').whereIn('id', made).delete();
    }
  });
});
