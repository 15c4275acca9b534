import type { Knex } from 'knex';
import { invalid, notFound } from '../http/errors';
import type { HostUser } from '../host';
import { FieldErrors } from './form';
import { journal, type FieldChange } from './journal';

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

/** The longest name of a saved filter, in characters (the column's size). */
export const FILTER_NAME_MAX = 100;

export async function saveFilter(knex: Knex, entity: string, user: HostUser, name: string, shared: boolean, params: Record<string, string>): Promise<number> {
  const errors = new FieldErrors();
  const clean = errors.text({ filter_name: name }, 'filter_name', 'Name', { max: FILTER_NAME_MAX, required: true });
  if (errors.any) throw invalid(`The filter was not saved: it needs a name of at most ${FILTER_NAME_MAX} characters.`, errors.errors);
  // Compared here rather than with SQL lower(), which folds only ASCII in SQLite ("Öresund" vs "öresund").
  const own: { name: string }[] = await knex('crm_saved_filters').where({ entity, user_id: user.id }).select('name');
  const taken = own.find((f) => f.name.toLocaleLowerCase() === clean.toLocaleLowerCase());
  if (taken) throw invalid(`You already have a saved filter named “${taken.name}”: choose another name, or delete that one first.`, { filter_name: 'Name is already used by one of your saved filters' });
  const [row] = await knex('crm_saved_filters').insert({ entity, name: clean, user_id: user.id, is_shared: shared, params: JSON.stringify(params) }).returning('id');
  return Number(row.id ?? row);
}

/** Only its owner deletes a filter; another user's shared filter is not theirs to remove (404). */
export async function deleteFilter(knex: Knex, entity: string, user: HostUser, id: number): Promise<void> {
  const n = await knex('crm_saved_filters').where({ id, entity, user_id: user.id }).delete();
  if (n === 0) throw notFound('Saved filter');
}

/** Where the default filters per role are journaled (one history, on the saved filters page). */
export const ROLE_DEFAULTS_JOURNAL = 'role_default_filters';

/**
 * O2: the default filter of each role for the list `entity` — `chosen` maps a role to one of the shared filters, a
 * role left out has none — replacing the previous ones in one transaction, each role's change journaled by the
 * role's and the filters' names (a filter deleted since reads by its id).
 */
export async function setRoleDefaultFilters(
  knex: Knex, entity: string, user: HostUser, roles: readonly { id: number; name: string }[], chosen: ReadonlyMap<number, number>,
): Promise<void> {
  await knex.transaction(async (trx) => {
    const before = new Map((await trx('crm_role_default_filters').where({ entity })).map((r) => [Number(r.role_id), Number(r.saved_filter_id)]));
    const ids = [...new Set([...before.values(), ...chosen.values()])];
    const names = new Map((ids.length ? await trx('crm_saved_filters').whereIn('id', ids).select('id', 'name') : []).map((r) => [Number(r.id), String(r.name)]));
    const named = (id: number | undefined) => (id === undefined ? null : names.get(id) ?? `#${id}`);
    const changes: FieldChange[] = roles.filter((role) => before.get(role.id) !== chosen.get(role.id))
      .map((role) => ({ field: role.name, old: named(before.get(role.id)), new: named(chosen.get(role.id)) }));
    await trx('crm_role_default_filters').where({ entity }).delete();
    if (chosen.size) await trx('crm_role_default_filters').insert([...chosen].map(([roleId, filterId]) => ({ role_id: roleId, entity, saved_filter_id: filterId })));
    await journal(trx, { type: ROLE_DEFAULTS_JOURNAL, id: 0, userId: user.id, action: 'update', changes });
  });
}

export function queryString(params: Record<string, string>): string {
  const qs = new URLSearchParams(params).toString();
  return qs ? `?${qs}` : '';
}
