import { memoizeRequests } from '../../host/repository';
import manifest from '../../plugin.json';
import { startTestHost, type TestHost } from '../helpers/app';

/** The reference host's per-request memo of permission data, on a real database with the demo data. */
let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

/** Runs `body` the way the host runs a request: inside its memo. */
function inRequest<T>(body: () => Promise<T>): Promise<T> {
  const run = memoizeRequests(host.db.knex);
  return new Promise<T>((resolve, reject) => run(() => { body().then(resolve, reject); }));
}

describe('the host’s request memo', () => {
  test('a request that takes a user’s memberships away sees it at its next permission check', async () => {
    const rep2 = host.demo.users.rep2;
    const statements: string[] = [];
    const record = (q: { sql: string }) => statements.push(q.sql);
    const seen = await inRequest(async () => {
      const before = (await host.hostApi.projectsWhere(rep2, 'view_opportunities')).map((p) => p.identifier);
      host.db.knex.on('query', record);
      const again = (await host.hostApi.projectsWhere(rep2, 'view_opportunities')).map((p) => p.identifier);
      host.db.knex.removeListener('query', record);
      await host.db.knex('members').where({ user_id: rep2.id }).delete();
      const after = (await host.hostApi.projectsWhere(rep2, 'view_opportunities')).map((p) => p.identifier);
      return { before, again, after };
    });
    expect(seen.before.length).toBeGreaterThan(0);
    // The second check before the write is answered from memory; the one after it reads the change.
    expect(seen.again).toEqual(seen.before);
    expect(statements).toEqual([]);
    expect(seen.after).toEqual([]);
  });

  test('a page asking for the projects of several CRM permissions reads the projects once, and each answer is the user’s grants', async () => {
    const projectPermissions = manifest.permissions.filter((p) => p.scope === 'project').map((p) => p.name);
    const knex = host.db.knex;
    for (const who of ['admin', 'director', 'rep1', 'rep2'] as const) {
      const user = host.demo.users[who];
      const statements: string[] = [];
      const record = (q: { sql: string }) => statements.push(q.sql);
      const answers = await inRequest(async () => {
        const out: Record<string, string[]> = {};
        out[projectPermissions[0]] = (await host.hostApi.projectsWhere(user, projectPermissions[0])).map((p) => p.identifier);
        knex.on('query', record);
        for (const permission of projectPermissions.slice(1)) out[permission] = (await host.hostApi.projectsWhere(user, permission)).map((p) => p.identifier);
        knex.removeListener('query', record);
        return out;
      });
      expect(statements).toEqual([]);
      for (const permission of projectPermissions) {
        // Working projects with the CRM module on where (admins aside) one of the user's roles grants the permission.
        const expected = knex('projects').where('projects.is_template', false)
          .whereExists((q) => q.select(1).from('project_modules').whereRaw('project_modules.project_id = projects.id').where('project_modules.module', 'crm'))
          .orderBy('projects.name');
        if (!user.admin) {
          expected.whereExists((q) => q.select(1).from('members').join('role_permissions', 'role_permissions.role_id', 'members.role_id')
            .whereRaw('members.project_id = projects.id').where({ 'members.user_id': user.id, 'role_permissions.permission': permission }));
        }
        expect({ who, permission, projects: answers[permission] }).toEqual({ who, permission, projects: await expected.pluck('identifier') });
      }
    }
  });
});
