import type { Knex } from 'knex';
import type { VERSIONED_TABLES } from '../../migrations/20261123_024_table_versions';
import type { RecordScope } from './visibility';

export type VersionedTable = (typeof VERSIONED_TABLES)[number];

/**
 * The version numbers of the plugin's tables, as one string per call (`crm_accounts:12,crm_opportunities:7`).
 * Every committed write to a table raises its number (triggers of migration 024), so a result cached under the
 * numbers of the tables it read is exact until one of them changes. Read the numbers before the data, and
 * outside any write transaction: a rolled-back write may hand out the same number again.
 */
export async function versionKey(knex: Knex, tables: readonly VersionedTable[]): Promise<string> {
  const rows: { table_name: string; version: number | string }[] = await knex('crm_table_versions').whereIn('table_name', tables).select('table_name', 'version');
  const byTable = new Map(rows.map((r) => [r.table_name, String(r.version)]));
  return tables.map((t) => `${t}:${byTable.get(t) ?? '?'}`).join(',');
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
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) {
      // Map order is insertion order: re-inserting makes this the most recently used entry.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.value;
    }
    const value = make();
    this.entries.set(key, { value, expires: now + this.ttlMs });
    value.catch(() => { if (this.entries.get(key)?.value === value) this.entries.delete(key); });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    return value;
  }

  /** A value stored earlier (by `put`, or a finished `get`), without computing one. */
  async peek(key: string): Promise<T | undefined> {
    const hit = this.entries.get(key);
    return hit && hit.expires > Date.now() ? hit.value : undefined;
  }

  put(key: string, value: T): void {
    this.entries.delete(key);
    this.entries.set(key, { value: Promise.resolve(value), expires: Date.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}

/** How long a list's cached numbers live without a write: the key changes on every write anyway. */
const LIST_CACHE_MS = 10 * 60_000;

/**
 * The numbers a list shows beside its page (count, totals, counts per tag), computed once per version of the
 * tables they read and per `parts` (the viewer's scope, the filters): a list of 50,000 records re-aggregates
 * only after a write. `compute` must read nothing but `tables` and what `parts` names.
 */
export async function listNumbers<T>(knex: Knex, name: string, tables: readonly VersionedTable[], parts: unknown[], compute: () => Promise<T>): Promise<T> {
  const key = JSON.stringify([await versionKey(knex, tables), ...parts]);
  return cacheFor<T>(knex, name, 2000, LIST_CACHE_MS).get(key, compute);
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
