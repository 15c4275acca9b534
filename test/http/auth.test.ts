import request from 'supertest';
import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost({ loginAttemptsPer15Min: 5 }); });
afterAll(async () => { await host.close(); });

async function loginForm() {
  const s = new Session(host.app);
  await s.refreshCsrf('/login');
  return s;
}

describe('sign in and out', () => {
  test('a demo user signs in, lands where they were going, and the session lives in the database', async () => {
    const s = await loginForm();
    const res = await s.post('/login', { login: 'director', password: 'director', back: '/projects' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/projects');
    const page = await s.get('/projects');
    expect(visibleText(page.text)).toContain('Diane Director');
    const sessions = await host.db.knex('sessions').select('sess');
    expect(sessions.some((row) => String(row.sess).includes(`"user":${host.demo.users.director.id}`))).toBe(true);
  });

  test('a session is renewed now and then, not written on every request', async () => {
    const s = await Session.signIn(host.app, 'pm');
    const writes: string[] = [];
    const record = (q: { sql: string }) => { if (/^(update|insert)/i.test(q.sql) && /sessions/.test(q.sql)) writes.push(q.sql); };
    host.db.knex.on('query', record);
    try {
      for (let i = 0; i < 5; i++) expect((await s.get('/projects')).status).toBe(200);
    } finally {
      host.db.knex.removeListener('query', record);
    }
    // Signing in renewed it already (Session.signIn loads a page after the login); five more pages write nothing.
    expect(writes).toEqual([]);
    const row = await host.db.knex('sessions').select('sess').whereRaw('sess like ?', [`%"user":${host.demo.users.pm.id}%`]).first();
    expect(String(row.sess)).toContain('"renewedAt":');
  });

  test('signing out ends the session: the next page asks to sign in again', async () => {
    const s = await Session.signIn(host.app, 'rep1');
    expect((await s.get('/')).status).toBe(200);
    const out = await s.post('/logout');
    expect(out.status).toBe(303);
    const after = await s.get('/');
    expect(after.status).toBe(302);
    expect(after.headers.location).toMatch(/^\/login/);
  });

  test('a wrong password is refused with a message and no session user', async () => {
    const s = await loginForm();
    const res = await s.post('/login', { login: 'rep2', password: 'not-it' });
    expect(res.status).toBe(401);
    expect(visibleText(res.text)).toContain('Invalid login or password.');
    expect((await s.get('/')).status).toBe(302);
  });

  test('a locked user cannot sign in, and a signed-in user who gets locked is signed out', async () => {
    const active = await Session.signIn(host.app, 'pm');
    await host.db.knex('users').where({ login: 'pm' }).update({ status: 'locked' });
    try {
      const s = await loginForm();
      const res = await s.post('/login', { login: 'pm', password: 'pm' });
      expect(res.status).toBe(401);
      expect(visibleText(res.text)).toContain('Your account is locked');
      expect((await active.get('/')).status).toBe(302);
    } finally {
      await host.db.knex('users').where({ login: 'pm' }).update({ status: 'active' });
    }
  });

  test('the return address after sign-in never leaves the site', async () => {
    const s = await loginForm();
    const res = await s.post('/login', { login: 'rep2', password: 'rep2', back: '//evil.example/steal' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/');
  });

  test('sign-in attempts are rate limited per address and login', async () => {
    const s = await loginForm();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await s.post('/login', { login: 'admin', password: `wrong-${i}` })).status);
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses[5]).toBe(429);
    const limited = await s.post('/login', { login: 'admin', password: 'admin' });
    expect(limited.status).toBe(429);
    expect(visibleText(limited.text)).toContain('Too many sign-in attempts');
  });

  test('pages need a signed-in user; JSON clients get 401 instead of a redirect', async () => {
    expect((await request(host.app).get('/projects')).status).toBe(302);
    const json = await request(host.app).get('/crm.json');
    expect(json.status).toBe(401);
    expect(json.body.error).toMatch(/Sign in/);
  });

  test('a page reads the signed-in user’s row once: signing the request in and showing the account share it', async () => {
    const s = await Session.signIn(host.app, 'rep1');
    const { result: page, statements } = await statementsDuring(host.db.knex, () => s.get('/my/account'));
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).toContain(host.demo.users.rep1.name);
    expect(statements.filter((q) => /from ["`]users["`] where ["`]id["`] = (\?|\$1)/.test(q.sql))).toHaveLength(1);
  });
});
