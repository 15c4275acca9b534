import type { Knex } from 'knex';
import type { VERSIONED_TABLES } from '../../migrations/20261123_024_table_versions';
import type { MORE_VERSIONED_TABLES } from '../../migrations/20261124_036_more_table_versions';
import { readOnce } from './request-memo';
import type { RecordScope } from './visibility';

export type VersionedTable = (typeof VERSIONED_TABLES)[number] | (typeof MORE_VERSIONED_TABLES)[number];

/**
 * The version numbers of the plugin's tables, as one string per call (`crm_accounts:12,crm_opportunities:7`).
 * Every committed write to a table raises its number (triggers of migration 024), so a result cached under the
 * numbers of the tables it read is exact until one of them changes. Read the numbers before the data, and
 * outside any write transaction: a rolled-back write may hand out the same number again. A request reads all
 * the numbers in one statement, once until it writes (request-memo.ts).
 */
export async function versionKey(knex: Knex, tables: readonly VersionedTable[]): Promise<string> {
  const byTable = await readOnce(knex, 'table-versions', async () => {
    const rows: { table_name: string; version: number | string }[] = await knex('crm_table_versions').select('table_name', 'version');
    return new Map(rows.map((r) => [r.table_name, String(r.version)]));
  });
  return tables.map((t) => `${t}:${byTable.get(t) ?? '?'}`).join(',');
}

/**
 * `load()` once per version of `tables` (and per `parts`, such as a user id), shared by every request until a
 * write to one of them; inside a transaction, read afresh (see versionKey). For small tables a page reads on
 * every request (settings, role levels, the lookups of a form). The answer is shared: do not change it.
 */
export async function readUnderVersions<T>(knex: Knex, name: string, tables: readonly VersionedTable[], parts: unknown[], load: () => Promise<T>): Promise<T> {
  if (knex.isTransaction) return load();
  return cacheFor<T>(knex, `versioned:${name}`, 1000, LIST_CACHE_MS).get(await listKey(knex, tables, parts), load);
}

/** What a user may see, as a string: two users with the same key see the same records. */
export function scopeKey(scope: RecordScope): string {
  return JSON.stringify([scope.user.id, scope.user.admin, scope.all, scope.own, scope.team, scope.teamUserIds, scope.partnerIds, scope.global, scope.forEdit]);
}

interface Entry<T> { value: Promise<T>; expires: number }

/**
 * A bounded, in-process cache of computed results. Keys must carry everything the result depends on (table
 * versions, the viewer's scope, the filters); the time limit only bounds what the keys cannot see (names of
 * host users), and the size limit the memory. Concurrent misses of one key share one computation.
 */
export class ResultCache<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(private readonly maxEntries: number, private readonly ttlMs: number) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    const hit = this.live(key);
    if (hit) {
      // Map order is insertion order: re-inserting makes this the most recently used entry.
      this.store(key, hit);
      return hit.value;
    }
    const value = make();
    this.store(key, { value, expires: Date.now() + this.ttlMs });
    value.catch(() => { if (this.entries.get(key)?.value === value) this.entries.delete(key); });
    return value;
  }

  /** A value stored earlier (by `put`, or a finished `get`), without computing one. */
  peek(key: string): Promise<T> | undefined {
    return this.live(key)?.value;
  }

  put(key: string, value: T): void {
    this.store(key, { value: Promise.resolve(value), expires: Date.now() + this.ttlMs });
  }

  private live(key: string): Entry<T> | undefined {
    const entry = this.entries.get(key);
    return entry && entry.expires > Date.now() ? entry : undefined;
  }

  private store(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}

/** How long a list's cached numbers live without a write: the key changes on every write anyway. */
export const LIST_CACHE_MS = 10 * 60_000;

/**
 * The cache key of a list's numbers: the versions of the tables they read (read now, so before the data), then
 * `parts` (the viewer's scope, the filters). `tables` must name every table the numbers read.
 */
export async function listKey(knex: Knex, tables: readonly VersionedTable[], parts: unknown[]): Promise<string> {
  return JSON.stringify([await versionKey(knex, tables), ...parts]);
}

/**
 * The numbers a list shows beside its page (count, totals, counts per tag), computed once per `key` (from
 * `listKey`): a list of 50,000 records re-aggregates only after a write.
 */
export function listNumbers<T>(knex: Knex, name: string, key: string, compute: () => Promise<T>): Promise<T> {
  return cacheFor<T>(knex, name, 2000, LIST_CACHE_MS).get(key, compute);
}

/**
 * About how many rows `table` holds, never fewer: its highest id, read from the primary key in O(1) and kept per
 * `versions` (a versionKey naming the table). Enough for the plans that weigh walking an index against fetching.
 */
export function rowsAtMost(knex: Knex, table: VersionedTable, versions: string): Promise<number> {
  return listNumbers(knex, `${table}-size`, versions, async () => Number((await knex(table).max({ n: 'id' }).first())?.n ?? 0));
}

// One cache per database and purpose: tests and the benchmark run several hosts, each on its own database.
const caches = new WeakMap<Knex, Map<string, ResultCache<unknown>>>();

export function cacheFor<T>(knex: Knex, name: string, maxEntries: number, ttlMs: number): ResultCache<T> {
  let byName = caches.get(knex);
  if (!byName) caches.set(knex, (byName = new Map()));
  let cache = byName.get(name);
  if (!cache) byName.set(name, (cache = new ResultCache<unknown>(maxEntries, ttlMs)));
  return cache as ResultCache<T>;
}
