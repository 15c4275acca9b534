import { memoizeRequests } from '../../host/repository';
import manifest from '../../plugin.json';
import { startTestHost, statementsDuring, type TestHost } from '../helpers/app';

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
    const identifiers = async () => (await host.hostApi.projectsWhere(rep2, 'view_opportunities')).map((p) => p.identifier);
    const seen = await inRequest(async () => {
      const before = await identifiers();
      const { result: again, statements } = await statementsDuring(host.db.knex, identifiers);
      await host.db.knex('members').where({ user_id: rep2.id }).delete();
      const after = await identifiers();
      return { before, again, statements, after };
    });
    expect(seen.before.length).toBeGreaterThan(0);
    // The second check before the write is answered from memory; the one after it reads the change.
    expect(seen.again).toEqual(seen.before);
    expect(seen.statements).toEqual([]);
    expect(seen.after).toEqual([]);
  });

  test('a page asking for the projects of several CRM permissions reads the projects once; each answer, and can(), follow the user’s grants', async () => {
    const projectPermissions = manifest.permissions.filter((p) => p.scope === 'project').map((p) => p.name);
    const knex = host.db.knex;
    const working: string[] = await knex('projects').where('is_template', false).pluck('identifier');
    for (const who of ['admin', 'director', 'rep1', 'rep2'] as const) {
      const user = host.demo.users[who];
      const { answers, statements } = await inRequest(async () => {
        const out: Record<string, string[]> = {};
        const ask = async (permission: string) => { out[permission] = (await host.hostApi.projectsWhere(user, permission)).map((p) => p.identifier); };
        await ask(projectPermissions[0]);
        const rest = await statementsDuring(knex, async () => { for (const permission of projectPermissions.slice(1)) await ask(permission); });
        return { answers: out, statements: rest.statements };
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
        const projects: string[] = await expected.pluck('identifier');
        expect({ who, permission, projects: answers[permission] }).toEqual({ who, permission, projects });
        // can() agrees: in any project, and in each working project.
        expect({ who, permission, anywhere: await host.hostApi.can(user, permission) }).toEqual({ who, permission, anywhere: projects.length > 0 });
        for (const identifier of working) {
          const inProject = await host.hostApi.can(user, permission, await host.hostApi.projectByIdentifier(identifier));
          expect({ who, permission, identifier, inProject }).toEqual({ who, permission, identifier, inProject: projects.includes(identifier) });
        }
      }
    }
  });
});
