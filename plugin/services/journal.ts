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

/** Writes one journal entry with its details, inside the caller's transaction. */
export async function journal(
  trx: Knex.Transaction,
  entry: { type: string; id: number; userId: number | null; action: JournalAction; changes: FieldChange[]; notes?: string },
): Promise<void> {
  if (entry.action === 'update' && entry.changes.length === 0 && !entry.notes) return;
  await Journal.query(trx).insertGraph({
    journalized_type: entry.type,
    journalized_id: entry.id,
    user_id: entry.userId,
    action: entry.action,
    notes: entry.notes ?? '',
    details: entry.changes.map((c) => ({ field: c.field, old_value: asText(c.old), new_value: asText(c.new) })),
  } as never);
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
