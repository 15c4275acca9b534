import type { Knex } from 'knex';
import { isPg } from '../../migrations/dialect';

/** `%` and `_` typed by a user are literal characters, not wildcards. */
export function likePattern(term: string): string {
  return `%${term.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A letter beyond ASCII with an upper and a lower case (Ö/ö, É/é): SQLite's LIKE and lower() fold neither. */
const hasCasedNonAscii = (term: string): boolean => [...term].some((c) => c > '\x7f' && c.toLowerCase() !== c.toUpperCase());

/**
 * The term as a GLOB pattern that ignores the case of every letter: each letter becomes the class of its cases
 * (`[Öö]`, `[Rr]`), and `*` `?` `[` stand for themselves (`[*]`). A case that is more than one character
 * (ß → SS) is left out, as PostgreSQL's lower() leaves it.
 */
export function caselessGlob(term: string): string {
  let pattern = '*';
  for (const c of term) {
    const cases = [...new Set([c, c.toLowerCase(), c.toUpperCase()])].filter((x) => [...x].length === 1);
    if (cases.length > 1) pattern += `[${cases.join('')}]`;
    else pattern += c === '*' || c === '?' || c === '[' ? `[${c}]` : c;
  }
  return `${pattern}*`;
}

/**
 * The condition "`column` holds `term`, letter case aside", and its binding.
 *
 * PostgreSQL's LIKE tells cases apart: `lower(column)`, which migration 025's trigram indexes are built on.
 * SQLite's LIKE ignores the case of ASCII letters only, and its lower() folds no others, so `column like` finds a
 * term of ASCII letters without a function call per column and row (a sales rep's account search tests five columns
 * on about 1,600 rows per page, and lower() was a third of that query's time); a term with a letter such as Ö is
 * matched through GLOB with both cases of each letter, so "örebro" finds "Örebro" as it does on PostgreSQL.
 */
function containsCondition(knex: { client: Knex.Client }, column: string, term: string): [string, string] {
  if (isPg(knex)) return [`lower(${column}) like ? escape '\\'`, likePattern(term)];
  if (hasCasedNonAscii(term)) return [`${column} glob ?`, caselessGlob(term)];
  return [`${column} like ? escape '\\'`, likePattern(term)];
}

/** Narrows `q` to rows where any of `columns` (SQL expressions) holds `term`, letter case aside. */
export function whereAnyContains<Q extends Knex.QueryBuilder>(q: Q, columns: readonly string[], term: string): Q {
  q.where((b) => {
    for (const column of columns) {
      const [condition, binding] = containsCondition(q, column, term);
      b.orWhereRaw(condition, [binding]);
    }
  });
  return q;
}
