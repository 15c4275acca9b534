import request from 'supertest';
import type { Express } from 'express';
import type { Knex } from 'knex';
import { createHostApp, migrateAll, type HostApp, type HostOptions } from '../../host/app';
import { seedDemoData } from '../../host/seed';
import { crmPlugin } from '../../plugin/index';
import type { DemoDirectory, PluginModule } from '../../plugin/host';
import { createTestDatabase, type TestDatabase } from './db';
import { isPg } from '../../migrations/dialect';

export interface TestHost extends HostApp {
  db: TestDatabase;
  demo: DemoDirectory;
  close(): Promise<void>;
}

/**
 * The reference host with the CRM plugin on a fresh database of its own, seeded with the demo platform
 * (users, roles, projects): each test file owns its data.
 */
export async function startTestHost(options: Partial<Pick<HostOptions, 'loginAttemptsPer15Min'>> & { plugins?: PluginModule[] } = {}): Promise<TestHost> {
  const db = await createTestDatabase();
  const plugins = options.plugins ?? [crmPlugin];
  await migrateAll(db.knex, plugins);
  const host = await createHostApp({ knex: db.knex, dataDir: db.dataDir, plugins, sessionSecret: 'test-secret', loginAttemptsPer15Min: options.loginAttemptsPer15Min ?? 1000 });
  await seedDemoData(db.knex, host.registry, plugins, host.hostApi);
  const demo = await demoDirectory(host);
  return { ...host, db, demo, close: () => db.destroy() };
}

async function demoDirectory(host: HostApp): Promise<DemoDirectory> {
  const users: DemoDirectory['users'] = {};
  for (const u of await host.repo.activeUsers()) users[u.login] = u;
  const projects: DemoDirectory['projects'] = {};
  for (const row of await host.repo.knex('projects')) {
    const p = await host.repo.projectById(row.id);
    if (p) projects[p.identifier] = p;
  }
  return { users, projects };
}

/** A signed-in browser: a cookie jar plus the CSRF token the pages carry. */
export class Session {
  readonly agent: ReturnType<typeof request.agent>;
  csrf = '';

  constructor(readonly app: Express) {
    this.agent = request.agent(app);
  }

  static async signIn(app: Express, login: string, password = login): Promise<Session> {
    const s = new Session(app);
    await s.refreshCsrf('/login');
    const res = await s.agent.post('/login').type('form').send({ login, password, _csrf: s.csrf });
    if (res.status !== 303) throw new Error(`Sign-in as ${login} failed: ${res.status} ${res.text.slice(0, 200)}`);
    await s.refreshCsrf('/');
    return s;
  }

  /** Reads the token from a page's meta tag, as the browser's htmx setup does. */
  async refreshCsrf(url: string): Promise<void> {
    const res = await this.agent.get(url);
    const match = /name="csrf-token" content="([^"]+)"/.exec(res.text);
    if (!match) throw new Error(`No CSRF token on ${url} (${res.status})`);
    this.csrf = match[1];
  }

  get(url: string) {
    return this.agent.get(url);
  }

  /** A plain HTML form post, with the hidden _csrf field. */
  post(url: string, form: Record<string, string | string[]> = {}) {
    return this.agent.post(url).type('form').send({ ...form, _csrf: this.csrf });
  }

  /** What htmx sends: HX-Request plus the token in the X-CSRF-Token header. */
  htmxPost(url: string, form: Record<string, string | string[]> = {}) {
    return this.agent.post(url).type('form').set('HX-Request', 'true').set('X-CSRF-Token', this.csrf).send(form);
  }

  htmxGet(url: string) {
    return this.agent.get(url).set('HX-Request', 'true');
  }
}

/** Text a person would read: tags dropped, whitespace folded. */
export function visibleText(html: string): string {
  const entities: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#34': '"', '#39': "'" };
  return html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' ')
    .replace(/&(amp|lt|gt|quot|#34|#39);/g, (_m, name: string) => entities[name]).replace(/\s+/g, ' ').trim();
}

/** The lock version a page's form would post (its first `lock_version` field). */
export function lockVersionIn(html: string): string {
  const match = /name="lock_version" value="([^"]*)"/.exec(html);
  if (!match) throw new Error('The page has no lock_version field');
  return match[1];
}

/**
 * A page reached from a sidebar: `sidebarHtml` links to it, and it answers as a full page in the host's layout
 * and as the htmx fragment (the page body alone).
 */
export async function expectLinkedPage(s: Session, sidebarHtml: string, url: string): Promise<void> {
  expect(sidebarHtml).toContain(`href="${url}"`);
  const page = await s.get(url);
  expect(page.status).toBe(200);
  expect(page.text).toContain('<html');
  const fragment = await s.htmxGet(url);
  expect(fragment.status).toBe(200);
  expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
}

/** Runs `work` with the CRM lists' page size set to `size`, then removes the setting (back to the default) whatever happens. */
export async function withPageSize<T>(knex: Knex, size: number, work: () => Promise<T>): Promise<T> {
  await knex('crm_settings').insert({ name: 'page_size', value: String(size), lock_version: 0 }).onConflict('name').merge();
  try {
    return await work();
  } finally {
    await knex('crm_settings').where({ name: 'page_size' }).delete();
  }
}

/**
 * One field of every item of a paginated JSON list, page by page: `list` is the list's address with its filter
 * (`/crm/accounts.json?q=a`), `items` the array of the answer that holds them.
 */
export async function everyPage(session: Session, list: string, items: string, field: string): Promise<unknown[]> {
  const values: unknown[] = [];
  const join = list.includes('?') ? '&' : '?';
  const first = (await session.get(list)).body;
  for (let page = 1; page <= first.pagination.pages; page++) {
    values.push(...(await session.get(`${list}${join}page=${page}`)).body[items].map((item: Record<string, unknown>) => item[field]));
  }
  return values;
}

/** Every statement sent through `knex` while `during` runs (SQL and bindings), and what `during` returned. */
export async function statementsDuring<T>(knex: Knex, during: () => Promise<T>): Promise<{ result: T; statements: { sql: string; bindings: unknown[] }[] }> {
  const statements: { sql: string; bindings: unknown[] }[] = [];
  const record = (q: { sql: string; bindings?: unknown[] }) => statements.push({ sql: q.sql, bindings: q.bindings ?? [] });
  knex.on('query', record);
  try {
    return { result: await during(), statements };
  } finally {
    knex.removeListener('query', record);
  }
}

/**
 * Sends the requests at the same time, as a double submit does, and on PostgreSQL makes them meet for certain: their
 * writes to `tables` (one table or several) wait behind a lock held here until each request has read what it checks
 * first and queued its write (or finished without one), then all go at once. SQLite runs one writer at a time: the
 * requests just run side by side.
 */
export async function racing<T>(knex: Knex, tables: string | string[], requests: (() => PromiseLike<T>)[]): Promise<T[]> {
  if (!isPg(knex)) return Promise.all(requests.map((send) => send()));
  const held = Array.isArray(tables) ? tables : [tables];
  const lock = await knex.transaction();
  let settled = 0;
  try {
    // EXCLUSIVE lets readers through and holds back every insert, update, delete and locking read (SELECT … FOR …) on the tables.
    await lock.raw(`lock table ${held.join(', ')} in exclusive mode`);
    const running = requests.map((send) => Promise.resolve(send()).finally(() => { settled += 1; }));
    for (;;) {
      const { rows } = await knex.raw('select count(distinct pid) as n from pg_locks where not granted and relation = any(?::regclass[])', [held]);
      if (Number(rows[0].n) + settled >= requests.length) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await lock.commit();
    return await Promise.all(running);
  } finally {
    if (!lock.isCompleted()) await lock.rollback();
  }
}
