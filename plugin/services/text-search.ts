import type { Knex } from 'knex';
import { isPg } from '../../migrations/dialect';

/** `%` and `_` typed by a user are literal characters, not wildcards. */
export function likePattern(term: string): string {
  return `%${term.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * The condition "`column` holds `term`, letter case aside", with the term made by `likePattern`.
 *
 * PostgreSQL's LIKE tells cases apart: `lower(column)`, which migration 025's trigram indexes are built on.
 * SQLite's LIKE already ignores the case of ASCII letters, and those are all its lower() folds, so `column like`
 * picks the same rows without a function call per column and row: a sales rep's account search tests its five
 * columns on about 1,600 rows per page, and lower() was a third of that query's time.
 */
function containsCondition(knex: { client: Knex.Client }, column: string): string {
  return isPg(knex) ? `lower(${column}) like ? escape '\\'` : `${column} like ? escape '\\'`;
}

/** Narrows `q` to rows where any of `columns` (SQL expressions) holds `term`, letter case aside. */
export function whereAnyContains<Q extends Knex.QueryBuilder>(q: Q, columns: readonly string[], term: string): Q {
  const pattern = likePattern(term);
  q.where((b) => {
    for (const column of columns) b.orWhereRaw(containsCondition(q, column), [pattern]);
  });
  return q;
}
