import type { Knex } from 'knex';
import { changedFields, journalMany } from './journal';

/**
 * Rows that keep copies of some of an opportunity's columns, under the same names, so that their lists filter one
 * table: its contracts (owner, project), its sales activities (account, project). The copies must move whenever
 * the originals do, in the transaction that moves them, and each row's history must say so.
 */
export interface OpportunityCopies {
  table: string;
  /** The rows' journal type. */
  type: string;
  columns: readonly string[];
  /** Which rows of `table` copy opportunity `opportunityId`. */
  of: (opportunityId: number) => Record<string, unknown>;
  /** Written too on each row that follows (a lock version moved on). */
  alsoSet?: (trx: Knex.Transaction) => Record<string, unknown>;
}

/** Rows per `where id in (…)`: far below either database's limit on bound variables. */
const IDS_PER_UPDATE = 500;

/**
 * Inside the transaction that writes `changed` to opportunity `opportunityId`: its `copies` whose values differ
 * take the new ones (columns not in `changed` stay), and each is journaled with its old and new values and
 * `notes` — in a few statements however many rows follow.
 */
export async function copiesFollowOpportunity(
  trx: Knex.Transaction, copies: OpportunityCopies, opportunityId: number, changed: Partial<Record<string, unknown>>, userId: number, notes: string,
): Promise<void> {
  const columns = copies.columns.filter((c) => Object.prototype.hasOwnProperty.call(changed, c));
  if (!columns.length) return;
  const values = Object.fromEntries(columns.map((c) => [c, changed[c] ?? null]));
  const rows: Record<string, unknown>[] = await trx(copies.table).where(copies.of(opportunityId)).select('id', ...columns);
  const moving = rows.map((r) => ({ id: Number(r.id), changes: changedFields(r, values, columns) })).filter((r) => r.changes.length > 0);
  if (!moving.length) return;
  for (let i = 0; i < moving.length; i += IDS_PER_UPDATE) {
    await trx(copies.table).whereIn('id', moving.slice(i, i + IDS_PER_UPDATE).map((r) => r.id)).update({ ...values, ...copies.alsoSet?.(trx) });
  }
  await journalMany(trx, moving.map((r) => ({ type: copies.type, id: r.id, userId, action: 'update', changes: r.changes, notes })));
}
