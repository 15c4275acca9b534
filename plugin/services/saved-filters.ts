import type { Knex } from 'knex';
import { invalid, notFound } from '../http/errors';
import type { HostUser } from '../host';

export interface SavedFilter {
  id: number;
  name: string;
  is_shared: boolean;
  mine: boolean;
  params: Record<string, string>;
}

/** The user's own filters and those others shared, for one list (`entity`). */
export async function savedFilters(knex: Knex, entity: string, user: HostUser): Promise<SavedFilter[]> {
  const rows = await knex('crm_saved_filters').where({ entity })
    .where((b) => b.where('user_id', user.id).orWhere('is_shared', true)).orderBy('name').limit(100);
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), is_shared: Boolean(r.is_shared), mine: Number(r.user_id) === user.id, params: JSON.parse(String(r.params)) }));
}

export async function saveFilter(knex: Knex, entity: string, user: HostUser, name: string, shared: boolean, params: Record<string, string>): Promise<number> {
  const clean = name.trim();
  if (!clean || clean.length > 100) throw invalid('A saved filter needs a name of at most 100 characters.', { filter_name: 'is required (at most 100 characters)' });
  // Compared here rather than with SQL lower(), which folds only ASCII in SQLite ("Öresund" vs "öresund").
  const own: { name: string }[] = await knex('crm_saved_filters').where({ entity, user_id: user.id }).select('name');
  const taken = own.find((f) => f.name.toLocaleLowerCase() === clean.toLocaleLowerCase());
  if (taken) throw invalid(`You already have a saved filter named “${taken.name}”: choose another name, or delete that one first.`, { filter_name: 'is already used by one of your saved filters' });
  const [row] = await knex('crm_saved_filters').insert({ entity, name: clean, user_id: user.id, is_shared: shared, params: JSON.stringify(params) }).returning('id');
  return Number(row.id ?? row);
}

/** Only its owner deletes a filter; another user's shared filter is not theirs to remove (404). */
export async function deleteFilter(knex: Knex, entity: string, user: HostUser, id: number): Promise<void> {
  const n = await knex('crm_saved_filters').where({ id, entity, user_id: user.id }).delete();
  if (n === 0) throw notFound('Saved filter');
}

export function queryString(params: Record<string, string>): string {
  const qs = new URLSearchParams(params).toString();
  return qs ? `?${qs}` : '';
}
