import type { Knex } from 'knex';
import { Journal } from '../models/journal';

export type JournalAction = 'create' | 'update' | 'delete' | 'restore';

export interface FieldChange {
  field: string;
  old: unknown;
  new: unknown;
}

function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** The fields whose values differ between `before` and `after` (compared as stored text). */
export function changedFields(before: Record<string, unknown>, after: Record<string, unknown>, fields: string[]): FieldChange[] {
  return fields
    .filter((f) => asText(before[f]) !== asText(after[f]))
    .map((f) => ({ field: f, old: before[f], new: after[f] }));
}

/**
 * A detail that names another record (a linked account, a contact) ends with its id in this form: the history
 * shows the name only to readers who may see that record (history-display.ts).
 */
export const referenceTo = (id: number): string => ` (#${id})`;

/** The id a detail's text names with `referenceTo`, if any. */
export function referencedId(text: string): number | null {
  const match = /\(#(\d+)\)$/.exec(text);
  return match ? Number(match[1]) : null;
}

export interface JournalEntry {
  type: string;
  id: number;
  userId: number | null;
  action: JournalAction;
  changes: FieldChange[];
  notes?: string;
}

/** An update that changed nothing and says nothing is not written. */
const isEmpty = (entry: JournalEntry) => entry.action === 'update' && entry.changes.length === 0 && !entry.notes;
const detailRow = (c: FieldChange) => ({ field: c.field, old_value: asText(c.old), new_value: asText(c.new) });

/** Writes one journal entry with its details, inside the caller's transaction. */
export async function journal(trx: Knex.Transaction, entry: JournalEntry): Promise<void> {
  if (isEmpty(entry)) return;
  await Journal.query(trx).insertGraph({
    journalized_type: entry.type,
    journalized_id: entry.id,
    user_id: entry.userId,
    action: entry.action,
    notes: entry.notes ?? '',
    details: entry.changes.map(detailRow),
  } as never);
}

/**
 * Rows per multi-row insert: knex writes one on SQLite as a compound SELECT (at most 500 terms), and 500 rows
 * of at most 5 values stay far below either database's limit on bound variables (SQLite 32766, PostgreSQL 65535).
 */
const ROWS_PER_INSERT = 500;

/**
 * Writes many journal entries with their details, inside the caller's transaction, in a few multi-row inserts
 * instead of two statements per entry (an import journals thousands). Entries keep their order: the history
 * lists them as if `journal` had been called for each in turn.
 */
export async function journalMany(trx: Knex.Transaction, entries: JournalEntry[]): Promise<void> {
  const written = entries.filter((e) => !isEmpty(e));
  for (let i = 0; i < written.length; i += ROWS_PER_INSERT) {
    const chunk = written.slice(i, i + ROWS_PER_INSERT);
    const rows = await trx('crm_journals').insert(chunk.map((e) => ({
      journalized_type: e.type, journalized_id: e.id, user_id: e.userId, action: e.action, notes: e.notes ?? '',
    }))).returning('id');
    // Neither database promises the order of RETURNING, but both number the rows of one insert in the order
    // they are listed (PostgreSQL evaluates the serial default row by row, SQLite appends each rowid after the
    // last): sorted, the ids line up with `chunk`.
    const ids = rows.map((r: { id: number } | number) => Number(typeof r === 'object' ? r.id : r)).sort((a, b) => a - b);
    if (ids.length !== chunk.length) throw new Error(`journalMany: ${chunk.length} journals inserted, ${ids.length} ids returned`);
    const details = chunk.flatMap((e, k) => e.changes.map((c) => ({ journal_id: ids[k], ...detailRow(c) })));
    for (let j = 0; j < details.length; j += ROWS_PER_INSERT) await trx('crm_journal_details').insert(details.slice(j, j + ROWS_PER_INSERT));
  }
}

export interface HistoryPage {
  entries: Journal[];
  page: number;
  pages: number;
  total: number;
}

/** A record's history, newest first, a page at a time; details come in one extra query, not one per entry. */
export async function history(knex: Knex, type: string, id: number, page = 1, pageSize = 20): Promise<HistoryPage> {
  const base = Journal.query(knex).where({ journalized_type: type, journalized_id: id });
  const total = await base.clone().resultSize();
  const entries = await base.clone().withGraphFetched('details').orderBy('id', 'desc').limit(pageSize).offset((page - 1) * pageSize);
  return { entries, page, pages: Math.max(1, Math.ceil(total / pageSize)), total };
}
