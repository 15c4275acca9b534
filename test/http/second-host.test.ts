import request from 'supertest';
import { crmPlugin } from '../../plugin/index';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { createMinimalHost } from '../helpers/minimal-host';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await crmPlugin.lifecycle.migrate(db.knex);
});
afterAll(async () => { await db.destroy(); });

const alice = { id: 7, login: 'alice', name: 'Alice', email: 'alice@example.com', admin: false };
const sales = { id: 100, identifier: 'sales', name: 'Sales', parentId: null, isTemplate: false };
const ops = { id: 101, identifier: 'ops', name: 'Operations', parentId: null, isTemplate: false };

function minimalHost() {
  return createMinimalHost(db.knex, db.dataDir, crmPlugin, {
    users: [alice], projects: [sales, ops],
    grants: { '7:100': ['view_accounts', 'manage_crm_page'], '7:101': ['view_accounts'] },
    modules: { 100: ['crm'] },
  });
}

describe('a second, minimal host mounts the plugin through the same contract', () => {
  test('it serves the project CRM page inside its own layout, with no host tables in the database', async () => {
    const { app } = minimalHost();
    const res = await request(app).get('/projects/sales/crm').set('X-Test-User', '7');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<div class="minimal-host">');
    expect(res.text).toContain('CRM overview');
    expect(await db.knex.schema.hasTable('users')).toBe(false);
    expect(await db.knex.schema.hasTable('projects')).toBe(false);
  });

  test('its own permission answers decide: CRM off in a project → 404; no user → its login URL', async () => {
    const { app } = minimalHost();
    expect((await request(app).get('/projects/ops/crm').set('X-Test-User', '7')).status).toBe(404);
    const anonymous = await request(app).get('/projects/sales/crm');
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.location).toBe('/signin');
  });

  test('a sidebar action writes the plugin tables through the host-given knex', async () => {
    const { app } = minimalHost();
    const res = await request(app).post('/projects/sales/crm/settings/subprojects').set('X-Test-User', '7').type('form').send({ include_subprojects: '1', lock_version: '0' });
    expect(res.status).toBe(303);
    const row = await db.knex('crm_project_settings').where({ project_id: sales.id }).first();
    expect(Boolean(row.include_subprojects)).toBe(true);
  });
});
