/**
 * The benchmark's data set: a deterministic (seeded) CRM of realistic shape, written straight into the
 * tables in batches inside transactions. Host rows (roles, users, projects, memberships, modules) go in
 * through the host's own `createProject` and its tables; the plugin's rows by bulk inserts into `crm_*`
 * (the HTTP routes would take hours for a million rows). Works on SQLite and PostgreSQL.
 *
 * `scale` multiplies the CRM row counts (1 = the full set of issue #8, 0.01 = 1/100); the host part
 * (10 projects with 2 subprojects each, 50 users) is the same at every scale, so routes compare like for like.
 */
import { demoRolePermissions } from '../host/seed';
import type { Knex } from 'knex';
import type { PluginModule } from '../plugin/host';
import { isPostgres } from '../host/db';
import { hashPassword } from '../host/passwords';
import { PermissionRegistry } from '../host/permissions';
import { createProject } from '../host/projects-service';
import {
  CITIES, COMPANY_SUFFIXES, COMPANY_WORDS, FIRST_NAMES, JOB_TITLES, LAST_NAMES, PRODUCT_WORDS, Rng, SUBJECTS,
} from './rng';

/** Bumped whenever the generated data changes shape: it is part of the cache key of generated databases. */
export const GENERATOR_VERSION = 3;

/** Every bench user signs in with this password (the users are made for measuring, never for a real install). */
export const BENCH_PASSWORD = 'bench-password';

/** Row counts at scale 1 (issue #8). Quote items are always 10 per quote. */
export const FULL_COUNTS = {
  accounts: 100_000,
  personalContacts: 200_000,
  partners: 5_000,
  opportunities: 50_000,
  activities: 500_000,
  quotes: 20_000,
  contracts: 20_000,
  products: 5_000,
} as const;
export const PRICE_BOOKS = 5;
export const ITEMS_PER_QUOTE = 10;
export const TOP_PROJECTS = 10;
export const SUBPROJECTS_PER_PROJECT = 2;
export const REPS_PER_FAMILY = 4;

export type Counts = { -readonly [K in keyof typeof FULL_COUNTS]: number };

export function countsFor(scale: number): Counts {
  const out = {} as Counts;
  for (const [k, v] of Object.entries(FULL_COUNTS)) out[k as keyof Counts] = Math.max(1, Math.round(v * scale));
  // Contracts come two per won quote; never more than the quotes can carry.
  out.quotes = Math.min(out.quotes, out.opportunities);
  out.contracts = Math.min(out.contracts, out.quotes * 2);
  return out;
}

export interface TableStat {
  table: string;
  rows: number;
  ms: number;
  rowsPerSec: number;
}

export interface GenerateResult {
  scale: number;
  seed: number;
  counts: Counts;
  stats: TableStat[];
  totalRows: number;
  ms: number;
}

/** The users the harness signs in as (password BENCH_PASSWORD). `rep` has "own" visibility on accounts and opportunities. */
export const BENCH_LOGINS = { admin: 'admin', rep: 'rep01', director: 'director1' } as const;

const DAY = 86_400_000;
// Dates centre on 1 October 2026: the year of the dashboards' "this year" has activity, closes and contracts.
const EPOCH = Date.UTC(2026, 9, 1);
const iso = (ms: number) => new Date(ms).toISOString();
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const CURRENCY_OF_BOOK = ['EUR', 'USD', 'SEK', 'EUR', 'GBP'];
const UNITS = ['pcs', 'month', 'day', 'licence'];

interface Writer {
  knex: Knex;
  stats: TableStat[];
  log: (line: string) => void;
  /** Bound variables per statement: SQLite allows 32766, PostgreSQL 65535. */
  maxVars: number;
  /** Rows per statement: knex writes a multi-row insert on SQLite as a compound SELECT, limited to 500 terms. */
  maxRows: number;
}

/**
 * Inserts `total` rows made by `make(i)` (i from 0) in multi-row statements as large as the database allows,
 * committing every `perTransaction` rows. Every row must name every column (SQLite fills missing ones with NULL).
 */
async function bulk(w: Writer, table: string, total: number, make: (i: number) => Record<string, unknown>, perTransaction = 100_000): Promise<void> {
  const started = performance.now();
  if (total > 0) {
    const columns = Object.keys(make(0)).length;
    const batch = Math.max(1, Math.min(w.maxRows, Math.floor(w.maxVars / columns)));
    for (let from = 0; from < total; from += perTransaction) {
      const to = Math.min(total, from + perTransaction);
      await w.knex.transaction(async (trx) => {
        for (let i = from; i < to; i += batch) {
          const rows: Record<string, unknown>[] = [];
          for (let j = i; j < Math.min(to, i + batch); j++) rows.push(make(j));
          await trx(table).insert(rows);
        }
      });
    }
  }
  const ms = performance.now() - started;
  const stat = { table, rows: total, ms, rowsPerSec: ms > 0 ? Math.round((total / ms) * 1000) : total };
  w.stats.push(stat);
  w.log(`  ${table.padEnd(28)} ${String(total).padStart(8)} rows  ${(ms / 1000).toFixed(1).padStart(6)} s  ${String(stat.rowsPerSec).padStart(8)} rows/s`);
}

const idOf = (row: unknown): number => Number((row as { id?: number }).id ?? row);

interface HostShape {
  /** Per family (a top-level project and its subprojects): project ids, [top, sub, sub]. */
  families: number[][];
  /** Per family: the user ids of its sales reps (the first has the largest book). */
  reps: number[][];
  adminId: number;
}

/** Roles, 50 users, 10 projects with 2 subprojects each (CRM on), memberships. */
async function seedHost(w: Writer, plugins: PluginModule[]): Promise<HostShape> {
  const { knex } = w;
  const started = performance.now();
  const registry = new PermissionRegistry(plugins.map((p) => p.manifest));
  const modules = ['tasks', ...plugins.map((p) => p.manifest.module.id)];
  // One hash for everyone: scrypt is deliberately slow, and 50 distinct hashes would only cost time.
  const passwordHash = await hashPassword(BENCH_PASSWORD);
  const shape: HostShape = { families: [], reps: [], adminId: 0 };
  let hostRows = 0;
  await knex.transaction(async (trx) => {
    const roleIds: Record<string, number> = {};
    let position = 0;
    for (const [name, perms] of Object.entries(demoRolePermissions(registry))) {
      const [role] = await trx('roles').insert({ name, position: position++ }).returning('id');
      roleIds[name] = idOf(role);
      await trx('role_permissions').insert(perms.map((permission) => ({ role_id: roleIds[name], permission })));
      hostRows += 1 + perms.length;
    }
    const users: { login: string; name: string; admin: boolean }[] = [{ login: BENCH_LOGINS.admin, name: 'Ada Admin', admin: true }];
    for (let i = 1; i <= 2; i++) users.push({ login: `director${i}`, name: `Director ${i}`, admin: false });
    for (let i = 1; i <= 7; i++) users.push({ login: `pm${String(i).padStart(2, '0')}`, name: `Project Manager ${i}`, admin: false });
    for (let i = 1; i <= TOP_PROJECTS * REPS_PER_FAMILY; i++) {
      users.push({ login: `rep${String(i).padStart(2, '0')}`, name: `${FIRST_NAMES[i % FIRST_NAMES.length]} ${LAST_NAMES[i % LAST_NAMES.length]} (rep ${i})`, admin: false });
    }
    const userIds: Record<string, number> = {};
    for (const u of users) {
      const [row] = await trx('users').insert({
        login: u.login, name: u.name, email: `${u.login}@bench.example`, password_hash: passwordHash, admin: u.admin, status: 'active',
        api_key: null, created_at: iso(EPOCH),
      }).returning('id');
      userIds[u.login] = idOf(row);
    }
    shape.adminId = userIds[BENCH_LOGINS.admin];
    hostRows += users.length;
    const members: { project_id: number; user_id: number; role_id: number }[] = [];
    for (let f = 0; f < TOP_PROJECTS; f++) {
      const n = String(f + 1).padStart(2, '0');
      const top = await createProject(knex, { name: `Region ${n}`, identifier: `region-${n}`, parentId: null, modules }, trx);
      const family = [top.id];
      for (let s = 0; s < SUBPROJECTS_PER_PROJECT; s++) {
        const sub = await createProject(knex, { name: `Region ${n} ${['North', 'South', 'East'][s]}`, identifier: `region-${n}-${['north', 'south', 'east'][s]}`, parentId: top.id, modules }, trx);
        family.push(sub.id);
      }
      shape.families.push(family);
      const reps = Array.from({ length: REPS_PER_FAMILY }, (_, r) => userIds[`rep${String(f * REPS_PER_FAMILY + r + 1).padStart(2, '0')}`]);
      shape.reps.push(reps);
      const director = userIds[`director${f < TOP_PROJECTS / 2 ? 1 : 2}`];
      for (const projectId of family) {
        members.push({ project_id: projectId, user_id: director, role_id: roleIds['Sales director'] });
        for (const rep of reps) members.push({ project_id: projectId, user_id: rep, role_id: roleIds['Sales rep'] });
      }
      members.push({ project_id: top.id, user_id: userIds[`pm${String((f % 7) + 1).padStart(2, '0')}`], role_id: roleIds['Project manager'] });
    }
    await trx('members').insert(members);
    hostRows += members.length + TOP_PROJECTS * (1 + SUBPROJECTS_PER_PROJECT) * (1 + modules.length);

    // S3: sales reps see their own accounts and opportunities; each director supervises the reps of their regions.
    const repRole = roleIds['Sales rep'];
    await trx('crm_role_visibility').insert([
      { role_id: repRole, entity: 'accounts', level: 'own' },
      { role_id: repRole, entity: 'opportunities', level: 'own' },
    ]);
    const supervisors: { user_id: number; supervisor_id: number }[] = [];
    shape.reps.forEach((reps, f) => {
      for (const rep of reps) supervisors.push({ user_id: rep, supervisor_id: userIds[`director${f < TOP_PROJECTS / 2 ? 1 : 2}`] });
    });
    await trx('crm_user_supervisors').insert(supervisors);
    // P4: each region's CRM pages include its subprojects' records.
    await trx('crm_project_settings').insert(shape.families.map((fam) => ({ project_id: fam[0], include_subprojects: true, lock_version: 0, updated_at: iso(EPOCH) })));
    hostRows += 2 + supervisors.length + shape.families.length;
  });
  const ms = performance.now() - started;
  w.stats.push({ table: 'host (roles, users, projects, members)', rows: hostRows, ms, rowsPerSec: Math.round((hostRows / ms) * 1000) });
  w.log(`  host rows                    ${String(hostRows).padStart(8)} rows  ${(ms / 1000).toFixed(1).padStart(6)} s`);
  return shape;
}

/**
 * Fills a migrated, empty database. Ids are assigned here (1…n in every table the generator fills), so rows
 * can point at each other without reading anything back; PostgreSQL's sequences are moved past them at the end.
 */
export async function generateDataset(knex: Knex, plugins: PluginModule[], options: { scale: number; seed: number; log?: (line: string) => void }): Promise<GenerateResult> {
  const { scale, seed } = options;
  const log = options.log ?? (() => undefined);
  const pg = isPostgres(knex);
  const w: Writer = { knex, stats: [], log, maxVars: pg ? 65_000 : 32_000, maxRows: pg ? 5000 : 500 };
  const counts = countsFor(scale);
  const started = performance.now();
  if (!pg) {
    // A throwaway bench database: no fsync while it is written (WAL keeps it consistent).
    await knex.raw('pragma synchronous = off');
  }
  log(`Generating the bench data set (scale ${scale}, seed ${seed}) on ${pg ? 'PostgreSQL' : 'SQLite'}:`);
  const host = await seedHost(w, plugins);
  const rng = (table: string) => new Rng(`${seed}:${table}`);
  const lookupIds = async (table: string) => (await knex(table).orderBy('id').pluck('id')).map(Number);
  const types = await lookupIds('crm_account_types');
  const industries = await lookupIds('crm_industries');
  const contactTypes = await lookupIds('crm_contact_types');
  const activityCategories = await lookupIds('crm_activity_categories');
  const statusRows = await knex('crm_opportunity_statuses').orderBy('position').select('id', 'kind');
  const productCategories = await knex('crm_product_categories').orderBy('position').select('id', 'contract_kind', 'default_duration_months');
  const openStatuses = statusRows.filter((s) => s.kind === 'open').map((s) => Number(s.id));
  const wonStatus = Number(statusRows.find((s) => s.kind === 'won').id);
  const lostStatus = Number(statusRows.find((s) => s.kind === 'lost').id);
  const lateOpen = openStatuses.slice(-2);
  const familyCount = host.families.length;

  // Partners: spread over the regions, each managed by one of the region's reps.
  {
    const r = rng('partners');
    await bulk(w, 'crm_partners', counts.partners, (i) => {
      const f = r.int(0, familyCount - 1);
      const [city, country] = r.pick(CITIES);
      const created = EPOCH - r.int(0, 700) * DAY;
      const name = `${r.pick(COMPANY_WORDS)} ${r.pick(COMPANY_WORDS)} Partners ${i + 1}`;
      return {
        id: i + 1, name, email: `partner${i + 1}@bench.example`, phone: `+372 5${String(i).padStart(7, '0')}`, website: `https://partner${i + 1}.example`,
        city, country, note: '', project_id: host.families[f][0], manager_id: r.pick(host.reps[f]), author_id: host.adminId,
        deleted_at: null, lock_version: 0, created_at: iso(created), updated_at: iso(created),
      };
    });
  }

  // Accounts: each belongs to one project of a region (a few to two), managed by one of its reps; the
  // region's first rep has the largest book (40 %), as some reps do.
  const accProject = new Int32Array(counts.accounts + 1);
  const accManager = new Int32Array(counts.accounts + 1);
  const accFamily = new Int16Array(counts.accounts + 1);
  {
    const r = rng('accounts');
    await bulk(w, 'crm_accounts', counts.accounts, (i) => {
      const id = i + 1;
      const f = r.int(0, familyCount - 1);
      const project = host.families[f][r.weighted([2, 1, 1])];
      const manager = host.reps[f][r.weighted([4, 2, 2, 2])];
      accProject[id] = project;
      accManager[id] = manager;
      accFamily[id] = f;
      const typeIndex = r.weighted([2, 7, 1]);
      const [city, country] = r.pick(CITIES);
      const first = r.pick(FIRST_NAMES);
      const last = r.pick(LAST_NAMES);
      const name = typeIndex === 0 ? `${first} ${last}` : `${r.pick(COMPANY_WORDS)} ${r.pick(COMPANY_WORDS)} ${r.pick(COMPANY_SUFFIXES)} ${id}`;
      const created = EPOCH - r.int(0, 1500) * DAY + r.int(0, 86_399) * 1000;
      const updated = created + r.int(0, 200) * DAY;
      const isPrivate = r.chance(0.005);
      return {
        id, account_type_id: types[typeIndex], name, first_name: typeIndex === 0 ? first : '', last_name: typeIndex === 0 ? last : '',
        organization: typeIndex === 0 && r.chance(0.3) ? `${r.pick(COMPANY_WORDS)} ${r.pick(COMPANY_SUFFIXES)}` : '',
        email: `contact${id}@${name.split(' ')[0].toLowerCase().replace(/[^a-z]/g, '') || 'mail'}.example`, phone: `+49 30 ${String(id).padStart(7, '0')}`,
        street: `${r.pick(LAST_NAMES)}straße ${r.int(1, 200)}`, city, postcode: String(r.int(10000, 99999)), country,
        registration_number: r.chance(0.6) ? `REG-${id}` : '', vat_number: r.chance(0.5) ? `EU${String(id).padStart(9, '0')}` : '',
        industry_id: r.chance(0.85) ? r.pick(industries) : null, account_manager_id: r.chance(0.97) ? manager : null,
        customer_number: r.chance(0.6) ? `C-${String(id).padStart(6, '0')}` : null, is_supplier: r.chance(0.08), is_key_account: r.chance(0.05),
        service_expires_on: r.chance(0.3) ? day(EPOCH + r.int(-200, 500) * DAY) : null, note: r.chance(0.2) ? 'Prefers email; invoices quarterly.' : '',
        is_global: r.chance(0.002), is_private: isPrivate, partner_id: counts.partners && r.chance(0.1) ? r.int(1, counts.partners) : null,
        parent_id: id > 10 && r.chance(0.02) ? r.int(1, id - 1) : null, author_id: isPrivate || r.chance(0.8) ? manager : host.adminId,
        deleted_at: r.chance(0.01) ? iso(updated) : null, deleted_by: null, lock_version: r.int(0, 3), created_at: iso(created), updated_at: iso(updated),
      };
    });
    // Links to projects: one each, 5 % also to a second project of the same region.
    const extra: [number, number][] = [];
    const r2 = rng('account_projects');
    for (let id = 1; id <= counts.accounts; id++) {
      if (r2.chance(0.05)) {
        const other = host.families[accFamily[id]].find((p) => p !== accProject[id]);
        if (other) extra.push([id, other]);
      }
    }
    await bulk(w, 'crm_account_projects', counts.accounts + extra.length, (i) =>
      (i < counts.accounts ? { account_id: i + 1, project_id: accProject[i + 1] } : { account_id: extra[i - counts.accounts][0], project_id: extra[i - counts.accounts][1] }));
    await bulk(w, 'crm_account_groups', 5, (i) => ({ id: i + 1, name: `Bench group ${i + 1}`, position: i + 1, active: true }));
    const r3 = rng('account_groups');
    const grouped: [number, number][] = [];
    for (let id = 1; id <= counts.accounts; id++) if (r3.chance(0.2)) grouped.push([id, r3.int(1, 5)]);
    await bulk(w, 'crm_account_group_members', grouped.length, (i) => ({ account_id: grouped[i][0], group_id: grouped[i][1] }));
  }

  // Personal contacts: employees of accounts (90 % linked), owned by the account's manager.
  {
    const r = rng('contacts');
    const links: [number, number, string][] = [];
    await bulk(w, 'crm_personal_contacts', counts.personalContacts, (i) => {
      const id = i + 1;
      const account = r.int(1, counts.accounts);
      if (r.chance(0.9)) links.push([account, id, r.pick(JOB_TITLES)]);
      const [city, country] = r.pick(CITIES);
      const created = EPOCH - r.int(0, 1500) * DAY;
      const first = r.pick(FIRST_NAMES);
      const last = r.pick(LAST_NAMES);
      return {
        id, contact_type_id: r.chance(0.9) ? contactTypes[0] : contactTypes[contactTypes.length - 1], first_name: first, last_name: last,
        job_title: r.pick(JOB_TITLES), email: `${first.toLowerCase()}.${id}@people.example`, phone: `+46 70 ${String(id).padStart(7, '0')}`,
        city, country, note: '', partner_id: counts.partners && r.chance(0.05) ? r.int(1, counts.partners) : null, project_id: accProject[account],
        owner_id: accManager[account], author_id: accManager[account], deleted_at: r.chance(0.01) ? iso(created + DAY) : null, lock_version: 0,
        created_at: iso(created), updated_at: iso(created),
      };
    });
    await bulk(w, 'crm_account_contacts', links.length, (i) => ({ account_id: links[i][0], contact_id: links[i][1], role: links[i][2] }));
  }

  // Opportunities in every status; the ones that carry quotes are spread evenly, and the first of those
  // (one per two contracts) are won and sold.
  const quoteStep = Math.max(1, Math.floor(counts.opportunities / counts.quotes));
  const wonQuotes = Math.ceil(counts.contracts / 2);
  const oppAccount = new Int32Array(counts.opportunities + 1);
  const oppProject = new Int32Array(counts.opportunities + 1);
  const oppOwner = new Int32Array(counts.opportunities + 1);
  const oppClose = new Float64Array(counts.opportunities + 1);
  const oppCurrency: string[] = new Array(counts.opportunities + 1);
  const oppFamily = new Int16Array(counts.opportunities + 1);
  {
    const r = rng('opportunities');
    await bulk(w, 'crm_opportunities', counts.opportunities, (i) => {
      const id = i + 1;
      const account = r.int(1, counts.accounts);
      const f = accFamily[account];
      const owner = r.chance(0.85) ? accManager[account] : r.pick(host.reps[f]);
      const quoteIndex = i % quoteStep === 0 ? i / quoteStep : -1;
      const hasQuote = quoteIndex >= 0 && quoteIndex < counts.quotes;
      const sold = hasQuote && quoteIndex < wonQuotes;
      const status = sold ? wonStatus : hasQuote ? r.pick(lateOpen) : [...openStatuses, wonStatus, lostStatus][r.weighted([15, 12, 12, 11, 25, 25])];
      const close = EPOCH + r.int(-400, 300) * DAY;
      const created = close - r.int(30, 200) * DAY;
      const currency = CURRENCY_OF_BOOK[Math.floor(f / 2) % PRICE_BOOKS];
      oppAccount[id] = account;
      oppProject[id] = accProject[account];
      oppOwner[id] = owner;
      oppClose[id] = close;
      oppCurrency[id] = currency;
      oppFamily[id] = f;
      return {
        id, project_id: accProject[account], name: `${r.pick(PRODUCT_WORDS)} deal ${id}`, account_id: account,
        contact_id: counts.personalContacts && r.chance(0.5) ? r.int(1, counts.personalContacts) : null, owner_id: owner, status_id: status,
        amount_minor: r.chance(0.95) ? r.int(100, 50_000) * 100 : null, currency, expected_close_on: r.chance(0.97) ? day(close) : null,
        partner_id: counts.partners && r.chance(0.1) ? r.int(1, counts.partners) : null, campaign_id: null,
        description: r.chance(0.3) ? 'Budget approved; decision by the board.' : '', is_locked: sold, author_id: owner,
        deleted_at: r.chance(0.01) && !hasQuote ? iso(created + DAY) : null, lock_version: r.int(0, 4), created_at: iso(created), updated_at: iso(created + DAY),
        sold_at: sold ? iso(close) : null, sold_by_id: sold ? owner : null,
      };
    });
  }

  // Sales activities: 60 % on opportunities, 40 % on accounts; some with a next contact date.
  {
    const r = rng('activities');
    await bulk(w, 'crm_sales_activities', counts.activities, (i) => {
      const onOpp = r.chance(0.6);
      const opp = r.int(1, counts.opportunities);
      const account = onOpp ? oppAccount[opp] : r.int(1, counts.accounts);
      const occurred = EPOCH + r.int(-600, 50) * DAY + r.int(0, 86_399) * 1000;
      const responsible = onOpp ? oppOwner[opp] : accManager[account];
      return {
        id: i + 1, record_type: onOpp ? 'opportunity' : 'account', record_id: onOpp ? opp : account, account_id: account,
        project_id: onOpp ? oppProject[opp] : null, category_id: r.pick(activityCategories), subject: r.pick(SUBJECTS),
        notes: r.chance(0.3) ? 'Discussed timeline and next steps.' : '', occurred_at: iso(occurred), duration_minutes: r.chance(0.7) ? r.int(1, 12) * 15 : null,
        next_contact_on: r.chance(0.15) ? day(EPOCH + r.int(-60, 120) * DAY) : null, responsible_id: responsible, is_personal: r.chance(0.1),
        author_id: responsible, lock_version: 0, created_at: iso(occurred), updated_at: iso(occurred),
      };
    });
  }

  // Price books (5, one currency each, each for two regions), products, a price for every product in every book.
  {
    const r = rng('products');
    await bulk(w, 'crm_price_books', PRICE_BOOKS, (i) => ({
      id: i + 1, name: `Price book ${i + 1} (${CURRENCY_OF_BOOK[i]})`, description: '', brand: 'Bench', product_version: '2026', active: true, previous_id: null,
      author_id: host.adminId, deleted_at: null, lock_version: 0, created_at: iso(EPOCH), updated_at: iso(EPOCH),
    }));
    const bookProjects: { price_book_id: number; project_id: number }[] = [];
    for (let f = 0; f < familyCount; f++) bookProjects.push({ price_book_id: (Math.floor(f / 2) % PRICE_BOOKS) + 1, project_id: host.families[f][0] });
    await bulk(w, 'crm_price_book_projects', bookProjects.length, (i) => bookProjects[i]);
    await bulk(w, 'crm_products', counts.products, (i) => ({
      id: i + 1, name: `${r.pick(PRODUCT_WORDS)} ${r.pick(COMPANY_WORDS)} ${i + 1}`, description: r.chance(0.5) ? 'Delivered within two weeks.' : '',
      code: `P-${String(i + 1).padStart(6, '0')}`, active: r.chance(0.95), category_id: Number(r.pick(productCategories).id), deleted_at: null,
      lock_version: 0, created_at: iso(EPOCH), updated_at: iso(EPOCH),
    }));
    const r2 = rng('prices');
    await bulk(w, 'crm_product_prices', counts.products * PRICE_BOOKS, (i) => ({
      id: i + 1, price_book_id: (i % PRICE_BOOKS) + 1, product_id: Math.floor(i / PRICE_BOOKS) + 1, unit_name: UNITS[Math.floor(i / PRICE_BOOKS) % UNITS.length],
      price_minor: r2.int(5, 5000) * 100, currency: CURRENCY_OF_BOOK[i % PRICE_BOOKS],
    }));
    await bulk(w, 'crm_exchange_rates', 3, (i) => ({
      id: i + 1, from_currency: 'EUR', to_currency: ['USD', 'SEK', 'GBP'][i], rate_micro: [1_085_000, 11_234_567, 845_000][i], valid_on: day(EPOCH),
    }));
  }

  // Quotes (10 items each: 8 from the region's price book, 2 typed by hand) and contracts from the won ones.
  const categoryById = new Map(productCategories.map((c) => [Number(c.id), c]));
  const productCategory = new Int32Array(counts.products + 1);
  for (const row of await knex('crm_products').select('id', 'category_id')) productCategory[Number(row.id)] = Number(row.category_id);
  {
    const r = rng('quotes');
    await bulk(w, 'crm_quotes', counts.quotes, (q) => {
      const opp = q * quoteStep + 1;
      const created = oppClose[opp] - 20 * DAY;
      return {
        id: q + 1, opportunity_id: opp, number: `Q-2026-${String(q + 1).padStart(6, '0')}`, name: `Offer for deal ${opp}`, currency: oppCurrency[opp],
        brand: 'Bench', product_version: '2026', valid_from: day(created), valid_to: day(created + 60 * DAY), is_active: true,
        author_id: oppOwner[opp], lock_version: r.int(0, 2), created_at: iso(created), updated_at: iso(created),
      };
    });
    const r2 = rng('quote_items');
    const itemProduct = new Int32Array(counts.quotes * ITEMS_PER_QUOTE + 1);
    const itemAmount = new Float64Array(counts.quotes * ITEMS_PER_QUOTE + 1);
    const itemQuantity = new Int32Array(counts.quotes * ITEMS_PER_QUOTE + 1);
    await bulk(w, 'crm_quote_items', counts.quotes * ITEMS_PER_QUOTE, (i) => {
      const q = Math.floor(i / ITEMS_PER_QUOTE);
      const position = (i % ITEMS_PER_QUOTE) + 1;
      const opp = q * quoteStep + 1;
      const book = (Math.floor(oppFamily[opp] / 2) % PRICE_BOOKS) + 1;
      const manual = position > 8;
      const product = manual ? 0 : r2.int(1, counts.products);
      const quantity = r2.int(1, 20) * 1000;
      const price = r2.int(5, 5000) * 100;
      itemProduct[i + 1] = product;
      itemQuantity[i + 1] = quantity;
      itemAmount[i + 1] = (quantity / 1000) * price;
      return {
        id: i + 1, quote_id: q + 1, position, kind: manual ? 'manual' : 'product', product_id: manual ? null : product, bundle_id: null,
        price_book_id: manual ? null : book, code: manual ? '' : `P-${String(product).padStart(6, '0')}`, name: manual ? 'Travel and expenses' : `Product ${product}`,
        description: '', unit: manual ? 'day' : UNITS[product % UNITS.length], quantity_milli: quantity, unit_price_minor: price,
        discount_kind: r2.chance(0.2) ? 'percent' : null, discount_value: 0, tax_rate_bp: 2500,
      };
    });
    const r3 = rng('contracts');
    await bulk(w, 'crm_contracts', counts.contracts, (c) => {
      const q = Math.floor(c / 2);
      const item = q * ITEMS_PER_QUOTE + (c % 2) + 1;
      const opp = q * quoteStep + 1;
      const category = categoryById.get(productCategory[itemProduct[item]]) ?? productCategories[0];
      const timeBased = category.contract_kind === 'time_based';
      const starts = oppClose[opp];
      return {
        id: c + 1, source_key: `item:${item}`, opportunity_id: opp, quote_id: q + 1, quote_item_id: item, account_id: oppAccount[opp],
        project_id: oppProject[opp], owner_id: oppOwner[opp], product_id: itemProduct[item] || null, category_id: Number(category.id),
        kind: timeBased ? 'time_based' : 'one_time', name: `Product ${itemProduct[item]}`, code: `P-${String(itemProduct[item]).padStart(6, '0')}`,
        quantity_milli: itemQuantity[item], amount_minor: Math.round(itemAmount[item]), currency: oppCurrency[opp], starts_on: day(starts),
        ends_on: timeBased ? day(starts + 365 * DAY) : null, renewal: timeBased && r3.chance(0.5), status: r3.chance(0.9) ? 'active' : 'cancelled',
        author_id: oppOwner[opp], lock_version: 0, created_at: iso(starts), updated_at: iso(starts),
      };
    });
  }

  if (pg) {
    // Rows were written with explicit ids: move each sequence past them so the app's own inserts work.
    const tables = ['crm_partners', 'crm_accounts', 'crm_account_groups', 'crm_personal_contacts', 'crm_opportunities', 'crm_sales_activities',
      'crm_price_books', 'crm_products', 'crm_product_prices', 'crm_exchange_rates', 'crm_quotes', 'crm_quote_items', 'crm_contracts'];
    for (const t of tables) await knex.raw(`select setval(pg_get_serial_sequence(?, 'id'), greatest(1, (select coalesce(max(id), 0) from ${t})))`, [t]);
    // PostgreSQL's autovacuum would have vacuumed and analysed tables this size long ago (and would otherwise do it in
    // the middle of a measurement). Vacuum matters beside the statistics: it merges the trigram (GIN) indexes'
    // pending lists, which every search scans until then (the rep's search page query 15 → 2.4 ms at full size), and
    // sets the visibility map that index-only scans need.
    const vacuumStart = performance.now();
    await knex.raw('vacuum (analyze)');
    log(`  vacuum, analyze              ${((performance.now() - vacuumStart) / 1000).toFixed(1).padStart(24)} s`);
  } else {
    // No ANALYZE on SQLite: the host never runs it, so a real install plans its queries without statistics.
    await knex.raw('pragma synchronous = normal');
  }
  const ms = performance.now() - started;
  const totalRows = w.stats.reduce((a, s) => a + s.rows, 0);
  log(`  total                        ${String(totalRows).padStart(8)} rows  ${(ms / 1000).toFixed(1).padStart(6)} s  ${String(Math.round((totalRows / ms) * 1000)).padStart(8)} rows/s`);
  return { scale, seed, counts, stats: w.stats, totalRows, ms };
}
