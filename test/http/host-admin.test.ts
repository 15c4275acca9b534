import { crmPlugin } from '../../plugin/index';
import type { PluginModule } from '../../plugin/host';
import type { Knex } from 'knex';
import { IDENTIFIER_FORMAT } from '../../host/projects-service';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const checked = (html: string) => new Set([...html.matchAll(/name="grant" value="([^"]+)"[^>]*checked/g)].map((m) => m[1]));

describe('role editor (S1, S2)', () => {
  test('shows every host and plugin permission as a matrix, project and global apart', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const page = await admin.get('/admin/roles');
    expect(page.status).toBe(200);
    for (const p of crmPlugin.manifest.permissions) expect(page.text).toContain(`data-permission="${p.name}"`);
    for (const p of ['manage_project', 'view_tasks', 'add_projects']) expect(page.text).toContain(`data-permission="${p}"`);
    const text = visibleText(page.text);
    expect(text.indexOf('Project permissions')).toBeLessThan(text.indexOf('Global permissions'));
    expect(text.indexOf('Global permissions')).toBeLessThan(text.indexOf('Manage CRM settings'));
  });

  test('saving the matrix grants and revokes; the change takes effect at once', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const rep = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    const before = checked((await admin.get('/admin/roles')).text);
    expect(before.has(`${rep.id}:manage_crm_settings`)).toBe(false);
    const repSession = await Session.signIn(host.app, 'rep1');
    expect((await repSession.get('/crm/settings')).status).toBe(404);

    const res = await admin.post('/admin/roles', { grant: [...before, `${rep.id}:manage_crm_settings`] });
    expect(res.status).toBe(303);
    expect(checked((await admin.get('/admin/roles')).text).has(`${rep.id}:manage_crm_settings`)).toBe(true);
    expect((await repSession.get('/crm/settings')).status).toBe(200);

    await admin.post('/admin/roles', { grant: [...before] });
    expect((await repSession.get('/crm/settings')).status).toBe(404);
  });

  test('forged permission or role names are rejected and nothing is saved', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const before = await host.db.knex('role_permissions').count({ n: '*' });
    const rep = await host.db.knex('roles').where({ name: 'Sales rep' }).first();
    const forged = await admin.post('/admin/roles', { grant: [`${rep.id}:view_accounts`, `${rep.id}:drop_database`] });
    expect(forged.status).toBe(422);
    expect(visibleText(forged.text)).toContain('Unknown permission "drop_database". Nothing was saved.');
    const badRole = await admin.post('/admin/roles', { grant: ['99999:view_accounts'] });
    expect(badRole.status).toBe(422);
    expect(await host.db.knex('role_permissions').count({ n: '*' })).toEqual(before);
  });

  test('non-admins cannot open or post the role editor', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.get('/admin/roles')).status).toBe(403);
    expect((await director.post('/admin/roles', { grant: [] })).status).toBe(403);
    expect(Number((await host.db.knex('role_permissions').count({ n: '*' }))[0].n)).toBeGreaterThan(0);
  });

  test('a permission added to a plugin manifest appears in the role editor with no host change', async () => {
    const extended: PluginModule = {
      ...crmPlugin,
      manifest: { ...crmPlugin.manifest, permissions: [...crmPlugin.manifest.permissions, { name: 'export_forecasts', scope: 'project', group: 'Forecasts', label: 'Export forecasts' }] },
    };
    const other = await startTestHost({ plugins: [extended] });
    try {
      const admin = await Session.signIn(other.app, 'admin');
      const page = await admin.get('/admin/roles');
      expect(page.text).toContain('data-permission="export_forecasts"');
      expect(visibleText(page.text)).toContain('Export forecasts');
    } finally {
      await other.close();
    }
  });
});

describe('project modules, members, templates and tasks (reference host)', () => {
  test('a forged module name is rejected and the modules stay as they were', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const res = await admin.post('/projects/internal/settings/modules', { modules: ['tasks', 'crm', 'bitcoin_miner'] });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('Unknown module "bitcoin_miner". Nothing was changed.');
    expect(await host.repo.enabledModules(host.demo.projects.internal.id)).toEqual(['tasks']);
  });

  test('a project made from the template copies its modules, members and tasks', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const template = host.demo.projects['implementation-template'];
    const res = await admin.post('/projects', { name: 'Globex rollout', identifier: 'globex-rollout', template_id: String(template.id), parent_id: '' });
    expect(res.status).toBe(303);
    const project = (await host.repo.projectByIdentifier('globex-rollout'))!;
    expect(await host.repo.enabledModules(project.id)).toEqual(await host.repo.enabledModules(template.id));
    const tasks = await host.db.knex('tasks').where({ project_id: project.id }).orderBy('id').pluck('subject');
    expect(tasks).toEqual(['Kick-off meeting with the customer', 'Install and configure', 'Training and handover']);
    const members = await host.db.knex('members').where({ project_id: project.id }).pluck('user_id');
    expect(members).toEqual([host.demo.users.pm.id]);
    const duplicate = await admin.post('/projects', { name: 'Again', identifier: 'globex-rollout', template_id: String(template.id) });
    expect(duplicate.status).toBe(422);
    expect(visibleText(duplicate.text)).toContain('A project with identifier "globex-rollout" already exists.');
  });

  test('a project from a template through the host API: a taken identifier is refused, or numbered on (…-2, …-3) within the length limit when asked', async () => {
    const api = host.hostApi;
    const template = host.demo.projects['implementation-template'].id;
    const make = (identifier: string, identifierTaken?: 'refuse' | 'next-free', trx?: Knex.Transaction) =>
      api.createProjectFromTemplate({ templateId: template, parentId: null, name: 'Numbered', identifier, identifierTaken }, trx);
    expect((await make('numbered', 'next-free')).identifier).toBe('numbered');
    expect((await make('numbered', 'next-free')).identifier).toBe('numbered-2');
    await expect(make('numbered')).rejects.toThrow('A project with identifier "numbered" already exists.');
    await expect(make('numbered', 'refuse')).rejects.toThrow('A project with identifier "numbered" already exists.');
    await expect(make('Not valid', 'next-free')).rejects.toThrow('"Not valid" is not a valid identifier');
    // A base of the maximum length is cut to make room for the number, never leaving a dash before it; in one
    // transaction the projects it made already count as taken.
    const long = `${'a'.repeat(96)}-bcd`;
    expect(long).toHaveLength(100);
    const made = await host.db.knex.transaction(async (trx) => {
      const identifiers: string[] = [];
      for (let i = 0; i < 10; i++) identifiers.push((await make(long, 'next-free', trx)).identifier);
      return identifiers;
    });
    expect(made.slice(0, 2)).toEqual([long, `${'a'.repeat(96)}-b-2`]);
    expect(made[9]).toBe(`${'a'.repeat(96)}-10`);
    expect(new Set(made).size).toBe(10);
    for (const identifier of made) expect(identifier).toMatch(IDENTIFIER_FORMAT);
    expect(Number((await host.db.knex('projects').whereIn('identifier', made).count({ n: '*' }))[0].n)).toBe(10);
  });

  test('tasks: list and create, with the subject required', async () => {
    const pm = await Session.signIn(host.app, 'pm');
    const missing = await pm.post('/projects/internal/tasks', { subject: '   ' });
    expect(missing.status).toBe(422);
    expect(visibleText(missing.text)).toContain('A task needs a subject.');
    const created = await pm.post('/projects/internal/tasks', { subject: 'Order <new> laptops & docks', assignee_id: String(host.demo.users.pm.id), due_date: '2026-12-01' });
    expect(created.status).toBe(303);
    const list = await pm.get('/projects/internal/tasks');
    expect(list.text).toContain('Order &lt;new&gt; laptops &amp; docks');
    expect(visibleText(list.text)).toContain('Paul Manager');
  });

  test('users: admins create and lock users; a locked user is listed as such', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const bad = await admin.post('/admin/users', { login: 'x', name: '', email: 'nope', password: '1' });
    expect(bad.status).toBe(422);
    await admin.post('/admin/users', { login: 'temp', name: 'Tempo', email: 'temp@example.com', password: 'temporary1' });
    const temp = await host.db.knex('users').where({ login: 'temp' }).first();
    const res = await admin.post(`/admin/users/${temp.id}`, { name: 'Tempo', status: 'locked' });
    expect(res.status).toBe(303);
    expect((await host.db.knex('users').where({ login: 'temp' }).first()).status).toBe('locked');
    const self = await admin.post(`/admin/users/${host.demo.users.admin.id}`, { name: 'Ada Admin', status: 'locked', admin: '1' });
    expect(self.status).toBe(422);
  });
});
