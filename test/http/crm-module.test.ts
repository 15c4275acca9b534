import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const tabs = (html: string) => [...html.matchAll(/data-tab="([^"]+)"/g)].map((m) => m[1]);

async function newProjectWithoutCrm(identifier: string) {
  const admin = await Session.signIn(host.app, 'admin');
  const res = await admin.post('/projects', { name: `Project ${identifier}`, identifier, modules: ['tasks'] });
  expect(res.status).toBe(303);
  const project = (await host.repo.projectByIdentifier(identifier))!;
  const role = await host.db.knex('roles').where({ name: 'Sales director' }).first();
  await host.db.knex('members').insert({ project_id: project.id, user_id: host.demo.users.director.id, role_id: role.id });
  return { admin, project };
}

describe('CRM per project (P2)', () => {
  test('enabling the CRM module shows the CRM tab, which leads to the project CRM overview', async () => {
    const { admin } = await newProjectWithoutCrm('acme-rollout');
    const director = await Session.signIn(host.app, 'director');
    let page = await director.get('/projects/acme-rollout');
    expect(tabs(page.text)).not.toContain('crm');
    expect((await director.get('/projects/acme-rollout/crm')).status).toBe(404);

    const saved = await admin.post('/projects/acme-rollout/settings/modules', { modules: ['tasks', 'crm'] });
    expect(saved.status).toBe(303);
    page = await director.get('/projects/acme-rollout');
    expect(tabs(page.text)).toContain('crm');
    expect(page.text).toContain('href="/projects/acme-rollout/crm"');
    const overview = await director.get('/projects/acme-rollout/crm');
    expect(overview.status).toBe(200);
    expect(visibleText(overview.text)).toContain('CRM overview');
    expect(visibleText(overview.text)).toContain('Project acme-rollout (this project)');
  });

  test('disabling it hides the tab and every project CRM URL answers 404; the data is kept', async () => {
    const { admin, project } = await newProjectWithoutCrm('beta-deploy');
    await admin.post('/projects/beta-deploy/settings/modules', { modules: ['tasks', 'crm'] });
    const director = await Session.signIn(host.app, 'director');
    await director.refreshCsrf('/projects/beta-deploy/crm');
    const toggled = await director.post('/projects/beta-deploy/crm/settings/subprojects', { include_subprojects: '1', lock_version: '0' });
    expect(toggled.status).toBe(303);

    await admin.post('/projects/beta-deploy/settings/modules', { modules: ['tasks'] });
    expect(tabs((await director.get('/projects/beta-deploy')).text)).not.toContain('crm');
    for (const url of ['/projects/beta-deploy/crm', '/projects/beta-deploy/crm.json', '/projects/beta-deploy/crm/accounts', '/projects/beta-deploy/crm/leads']) {
      expect((await director.get(url)).status).toBe(404);
    }
    expect((await admin.get('/projects/beta-deploy/crm')).status).toBe(404);
    const stale = await director.post('/projects/beta-deploy/crm/settings/subprojects', { include_subprojects: '0', lock_version: '1' });
    expect(stale.status).toBe(404);

    const kept = await host.db.knex('crm_project_settings').where({ project_id: project.id }).first();
    expect(Boolean(kept.include_subprojects)).toBe(true);
    await admin.post('/projects/beta-deploy/settings/modules', { modules: ['tasks', 'crm'] });
    const back = await director.get('/projects/beta-deploy/crm.json');
    expect(back.body.settings.include_subprojects).toBe(true);
  });

  test('a member whose role has no CRM view permission sees no tab and gets 404', async () => {
    const reporter = await host.db.knex('roles').where({ name: 'Reporter' }).first();
    await host.db.knex('members').where({ project_id: host.demo.projects.crm.id, user_id: host.demo.users.pm.id }).update({ role_id: reporter.id });
    try {
      const pm = await Session.signIn(host.app, 'pm');
      const page = await pm.get('/projects/crm');
      expect(page.status).toBe(200);
      expect(tabs(page.text)).not.toContain('crm');
      expect((await pm.get('/projects/crm/crm')).status).toBe(404);
      expect((await pm.get('/projects/crm/crm.json')).status).toBe(404);
    } finally {
      const role = await host.db.knex('roles').where({ name: 'Project manager' }).first();
      await host.db.knex('members').where({ project_id: host.demo.projects.crm.id, user_id: host.demo.users.pm.id }).update({ role_id: role.id });
    }
  });

  test('unknown project identifiers, templates and projects the user is not in answer 404', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.get('/projects/no-such-project/crm')).status).toBe(404);
    expect((await rep.get('/projects/implementation-template/crm')).status).toBe(404);
    // rep1 is in CRM and Europe, not in Americas.
    expect((await rep.get('/projects/crm-americas/crm')).status).toBe(404);
    expect((await rep.get('/projects/crm-americas')).status).toBe(404);
    expect((await rep.get("/projects/x'%20OR%201=1--/crm")).status).toBe(404);
  });
});

describe('global CRM (P3)', () => {
  test('the global menu leads to /crm, which lists the CRM projects the user may see and the sidebar of sections', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const home = await rep.get('/');
    expect(home.text).toContain('data-menu="crm"');
    const page = await rep.get('/crm');
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('CRM overview');
    expect(text).toContain('Europe');
    expect(text).not.toContain('Americas');
    for (const label of ['Leads', 'Opportunities', 'Accounts', 'Personal contacts', 'Partners', 'Campaigns', 'Contracts', 'Price books']) {
      expect(text).toContain(label);
    }
    // Settings need the global manage_crm_settings permission, which a sales rep does not have.
    expect(page.text).not.toContain('href="/crm/settings"');
    expect((await rep.get('/crm/settings')).status).toBe(404);
  });

  test('sections not built yet lead to clearly marked placeholders, behind their permission', async () => {
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/crm/leads');
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).toContain('Not built yet.');
    const json = await director.get('/projects/crm/crm/campaigns.json');
    expect(json.body).toMatchObject({ section: 'campaigns', available: false });
  });

  test('a user with no CRM permission anywhere has no CRM menu and /crm answers 404', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    await admin.post('/admin/users', { login: 'outsider', name: 'Otto Outsider', email: 'otto@example.com', password: 'outsider-pw' });
    const outsider = await Session.signIn(host.app, 'outsider', 'outsider-pw');
    expect((await outsider.get('/')).text).not.toContain('data-menu="crm"');
    expect((await outsider.get('/crm')).status).toBe(404);
  });
});
