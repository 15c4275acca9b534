import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';

/**
 * Answers loaded once per request: one page resolves the viewer's scope for several kinds of records (a
 * dashboard for four), and making a document resolves it for the opportunity, its quote and its account; each
 * resolution reads the same partner links and role visibility levels. A request forgets everything it
 * remembered at each statement that writes, so what it reads after a write of its own is read afresh.
 * Code outside a request reads afresh every time. The reference host memoizes its own reads the same way
 * (host/repository.ts); the plugin keeps its own because it sees the host only through the host API and must
 * work on hosts that memoize nothing.
 */
const memo = new AsyncLocalStorage<Map<string, Promise<unknown>>>();

/**
 * Statements that may change data or start a transaction. A `with` query counts when it holds a write (PostgreSQL
 * allows `with … insert`); `with recursive` reads (a project tree, a team) do not.
 */
const WRITES = /^\s*(insert|update|delete|replace|merge|begin|commit|rollback|savepoint|release|create|alter|drop|truncate)\b/i;
const WRITING_WITH = /^\s*with\b[\s\S]*\b(insert|update|delete|merge)\b/i;
export const isWrite = (sql: string): boolean => WRITES.test(sql) || WRITING_WITH.test(sql);
const watched = new WeakSet<Knex>();

/** Makes each statement through `knex` that writes empty the memo of the request that sends it. Once per knex. */
export function forgetOnWrite(knex: Knex): void {
  if (watched.has(knex)) return;
  watched.add(knex);
  knex.on('query', (query: { sql?: string }) => {
    const store = memo.getStore();
    if (store?.size && isWrite(query.sql ?? '')) store.clear();
  });
}

/** Runs `handle` with a memo of its own (see forgetOnWrite for what empties it). */
export function withRequestMemo<T>(handle: () => Promise<T>): Promise<T> {
  return memo.run(new Map(), handle);
}

/**
 * `load()` (which reads through `knex`), or its earlier answer in this request since its last write. Through a
 * transaction it always loads: what a transaction reads may hold its own uncommitted writes. The answer is shared:
 * do not change it.
 */
export function readOnce<T>(knex: Knex, key: string, load: () => Promise<T>): Promise<T> {
  const store = knex.isTransaction ? undefined : memo.getStore();
  if (!store) return load();
  let value = store.get(key) as Promise<T> | undefined;
  if (!value) {
    value = load();
    store.set(key, value);
    value.catch(() => store.delete(key));
  }
  return value;
}
