import request from 'supertest';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const TOGGLE = '/projects/crm-europe/crm/settings/subprojects';

describe('htmx fragments and full pages (P3)', () => {
  test('the same URL renders the full page normally and only the page body for htmx, varying on HX-Request', async () => {
    const director = await Session.signIn(host.app, 'director');
    const full = await director.get('/projects/crm/crm');
    expect(full.text).toContain('<html');
    expect(full.text).toContain('id="crm-page"');
    expect(full.text).toMatch(/<script src="\/plugin_assets\/crm\/vendor\/htmx\.min\.js" defer><\/script>/);
    const fragment = await director.htmxGet('/projects/crm/crm');
    expect(fragment.status).toBe(200);
    expect(fragment.text).not.toContain('<html');
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(fragment.headers.vary).toMatch(/HX-Request/);
  });

  test('the sidebar action swaps in place through htmx: stored, journaled, fragment returned with an HX-Trigger', async () => {
    const director = await Session.signIn(host.app, 'director');
    const europe = host.demo.projects['crm-europe'];
    const res = await director.htmxPost(TOGGLE, { include_subprojects: '1', lock_version: '0' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:projectSettingsChanged');
    expect(res.text).not.toContain('<html');
    expect(visibleText(res.text)).toContain("Exclude subprojects' records");
    const row = await host.db.knex('crm_project_settings').where({ project_id: europe.id }).first();
    expect(Boolean(row.include_subprojects)).toBe(true);
    expect(row.lock_version).toBe(1);
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'project_settings', journalized_id: europe.id });
    expect(journal).toHaveLength(1);
    expect(journal[0].user_id).toBe(host.demo.users.director.id);
    const details = await host.db.knex('crm_journal_details').where({ journal_id: journal[0].id });
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual([['include_subprojects', 'false', 'true']]);
  });

  test('without JavaScript the same form posts and redirects with 303', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = (await director.get('/projects/crm-asia/crm.json')).body.settings;
    const res = await director.post('/projects/crm-asia/crm/settings/subprojects', { include_subprojects: before.include_subprojects ? '0' : '1', lock_version: String(before.lock_version) });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/projects/crm-asia/crm');
    expect((await director.get('/projects/crm-asia/crm.json')).body.settings.include_subprojects).toBe(!before.include_subprojects);
  });

  test('including subprojects changes which projects the project CRM pages draw from', async () => {
    const director = await Session.signIn(host.app, 'director');
    const crm = (await director.get('/projects/crm/crm.json')).body;
    // The demo turns it on for the main CRM project.
    expect(crm.settings.include_subprojects).toBe(true);
    expect(crm.projects_in_scope.map((p: { identifier: string }) => p.identifier).sort()).toEqual(['crm', 'crm-americas', 'crm-asia', 'crm-europe']);
    const rep = await Session.signIn(host.app, 'rep1');
    const repScope = (await rep.get('/projects/crm/crm.json')).body.projects_in_scope.map((p: { identifier: string }) => p.identifier).sort();
    // Subprojects count only where the user has the permission too.
    expect(repScope).toEqual(['crm', 'crm-europe']);
  });

  test('a stale lock version is refused with 409 and a message; nothing changes', async () => {
    const director = await Session.signIn(host.app, 'director');
    const project = host.demo.projects['crm-americas'];
    expect((await director.htmxPost('/projects/crm-americas/crm/settings/subprojects', { include_subprojects: '1', lock_version: '0' })).status).toBe(200);
    const stale = await director.htmxPost('/projects/crm-americas/crm/settings/subprojects', { include_subprojects: '0', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('changed by someone else');
    const row = await host.db.knex('crm_project_settings').where({ project_id: project.id }).first();
    expect(Boolean(row.include_subprojects)).toBe(true);
  });

  test('bad values are refused with 422 naming the field', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.post(TOGGLE, { include_subprojects: 'yes<script>', lock_version: '0' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('include_subprojects must be 1 or 0.');
    expect(res.text).not.toContain('yes<script>');
    const json = await director.agent.post(`${TOGGLE}`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf).send({ include_subprojects: '1' });
    expect(json.status).toBe(422);
    expect(json.body.fields).toHaveProperty('lock_version');
  });

  test('a user who may view but not manage the project CRM page cannot toggle (404)', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.post(TOGGLE, { include_subprojects: '0', lock_version: '1' })).status).toBe(404);
  });

  test('an expired session on an htmx request is sent to the login page with HX-Redirect, not swapped in', async () => {
    const director = await Session.signIn(host.app, 'director');
    await host.db.knex('sessions').delete();
    const res = await director.htmxGet('/projects/crm/crm');
    expect(res.status).toBe(401);
    expect(res.headers['hx-redirect']).toBe('/login?back=%2Fprojects%2Fcrm%2Fcrm');
    expect(res.text).toBe('');
  });
});

describe('CSRF protection', () => {
  test('a form post without the token is refused with 403 and changes nothing', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.agent.post('/projects/crm-europe/crm/settings/subprojects').type('form').send({ include_subprojects: '0', lock_version: '0' });
    expect(res.status).toBe(403);
    expect(visibleText(res.text)).toContain('This form has expired or did not come from this site.');
    const htmx = await director.agent.post('/projects/crm-europe/crm/settings/subprojects').set('HX-Request', 'true').set('X-CSRF-Token', 'forged').type('form').send({ include_subprojects: '0', lock_version: '0' });
    expect(htmx.status).toBe(403);
    const loginWithout = await request(host.app).post('/login').type('form').send({ login: 'admin', password: 'admin' });
    expect(loginWithout.status).toBe(403);
  });

  test('pages carry the token in a meta tag, the htmx header setting and every form', async () => {
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/projects/crm/crm');
    expect(page.text).toContain(`hx-headers='{"X-CSRF-Token": "${director.csrf}"}'`);
    expect(page.text).toContain(`name="_csrf" value="${director.csrf}"`);
  });

  test('helmet sends a CSP that allows scripts from self only', async () => {
    const res = await request(host.app).get('/login');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).not.toContain('unsafe-eval');
    const htmx = await request(host.app).get('/plugin_assets/crm/vendor/htmx.min.js');
    expect(htmx.status).toBe(200);
    expect(htmx.text).toContain('htmx');
  });
});
