import request from 'supertest';
import { Session, startTestHost, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

async function apiKeyOf(login: string): Promise<string> {
  const s = await Session.signIn(host.app, login);
  await s.post('/my/api_key');
  const page = await s.get('/my/account');
  const key = /<code id="api-key">([0-9a-f]+)<\/code>/.exec(page.text)?.[1];
  if (!key) throw new Error('no API key on the account page');
  return key;
}

describe('JSON API (P5)', () => {
  test('the account page shows an API key that authenticates JSON requests with the same permissions', async () => {
    const key = await apiKeyOf('rep1');
    const res = await request(host.app).get('/crm.json').set('X-API-Key', key);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/json/);
    const identifiers = res.body.projects.map((p: { identifier: string }) => p.identifier).sort();
    expect(identifiers).toEqual(['crm', 'crm-europe']);
    const viaAccept = await request(host.app).get('/projects/crm-europe/crm').set('X-API-Key', key).set('Accept', 'application/json');
    expect(viaAccept.status).toBe(200);
    expect(viaAccept.body.project.identifier).toBe('crm-europe');
    expect((await request(host.app).get('/projects/crm-americas/crm.json').set('X-API-Key', key)).status).toBe(404);
  });

  test('API-key requests need no CSRF token (no cookie is involved) and obey permissions', async () => {
    const key = await apiKeyOf('director');
    const settings = (await request(host.app).get('/projects/crm-asia/crm.json').set('X-API-Key', key)).body.settings;
    const res = await request(host.app).post('/projects/crm-asia/crm/settings/subprojects').set('X-API-Key', key).set('Accept', 'application/json')
      .send({ include_subprojects: settings.include_subprojects ? '0' : '1', lock_version: settings.lock_version });
    expect(res.status).toBe(200);
    expect(res.body.settings.include_subprojects).toBe(!settings.include_subprojects);
    const repKey = await apiKeyOf('rep2');
    const denied = await request(host.app).post('/projects/crm/crm/settings/subprojects').set('X-API-Key', repKey).send({ include_subprojects: '0', lock_version: 0 });
    expect(denied.status).toBe(404);
  });

  test('regenerating the key revokes the old one; an unknown key gets 401', async () => {
    const s = await Session.signIn(host.app, 'pm');
    await s.post('/my/api_key');
    const first = /<code id="api-key">([0-9a-f]+)<\/code>/.exec((await s.get('/my/account')).text)![1];
    await s.post('/my/api_key');
    const second = /<code id="api-key">([0-9a-f]+)<\/code>/.exec((await s.get('/my/account')).text)![1];
    expect(second).not.toBe(first);
    expect((await request(host.app).get('/crm.json').set('X-API-Key', first)).status).toBe(401);
    expect((await request(host.app).get('/crm.json').set('X-API-Key', second)).status).toBe(200);
    const unknown = await request(host.app).get('/crm.json').set('X-API-Key', "' OR 1=1 --");
    expect(unknown.status).toBe(401);
    expect(unknown.body.error).toBe('Unknown or revoked API key.');
  });

  test('saved filters over the API: saving answers 201 with the filter, deleting answers the id; another user’s filter is 404', async () => {
    const key = await apiKeyOf('rep1');
    const saved = await request(host.app).post('/crm/accounts/filters').set('X-API-Key', key).set('Accept', 'application/json')
      .send({ filter_name: 'API key accounts', key_account: '1' });
    expect(saved.status).toBe(201);
    const stored = await host.db.knex('crm_saved_filters').where({ name: 'API key accounts' }).first();
    expect(saved.body).toEqual({ saved_filter: { id: stored.id, name: 'API key accounts', is_shared: false, params: { key_account: '1' }, url: '/crm/accounts?key_account=1' } });
    const otherKey = await apiKeyOf('rep2');
    const foreign = await request(host.app).post(`/crm/accounts/filters/${stored.id}/delete`).set('X-API-Key', otherKey).set('Accept', 'application/json');
    expect(foreign.status).toBe(404);
    expect(foreign.body).toEqual({ error: 'Saved filter not found.', fields: {} });
    const deleted = await request(host.app).post(`/crm/accounts/filters/${stored.id}/delete`).set('X-API-Key', key).set('Accept', 'application/json');
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ deleted: stored.id });
    expect(await host.db.knex('crm_saved_filters').where({ id: stored.id }).first()).toBeUndefined();
  });
});
