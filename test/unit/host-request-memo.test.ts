import { memoizeRequests } from '../../host/repository';
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
});
