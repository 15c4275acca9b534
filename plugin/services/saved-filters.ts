import type { Knex } from 'knex';
import { invalid, notFound } from '../http/errors';
import type { CrmContext } from '../http/guard';
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

/** A role's default filter as a list applies it: the filter's name and conditions, and whose default it is. */
export interface AppliedDefaultFilter {
  name: string;
  role: string;
  params: Record<string, string>;
}

/**
 * O2: the default filter `ctx`'s user gets on the list `entity`. The roles that count are the user's role in the
 * list's project, or on a global list their roles in every project where they may see it (`permission`); among
 * several with a default, the one the host lists first — the order of its roles admin page, and of the roles on
 * the saved filters page where the defaults are set. Ids say nothing about which role matters more.
 * One query for the defaults of all those roles; the host's roles are read only when one has a default.
 */
export async function roleDefaultFilter(ctx: CrmContext, entity: string, permission: string): Promise<AppliedDefaultFilter | null> {
  const projects = ctx.project ? [ctx.project.id] : (await ctx.host.projectsWhere(ctx.user, permission)).map((p) => p.id);
  const held = [...new Set((await ctx.host.memberships(ctx.user)).filter((m) => projects.includes(m.projectId)).map((m) => m.roleId))];
  if (!held.length) return null;
  const defaults: { role_id: number; name: string; params: string }[] = await ctx.host.knex('crm_role_default_filters as d')
    .join('crm_saved_filters as f', 'f.id', 'd.saved_filter_id').where('d.entity', entity).whereIn('d.role_id', held).select('d.role_id', 'f.name', 'f.params');
  if (!defaults.length) return null;
  const roles = await ctx.host.roles();
  const listed = (roleId: number) => roles.findIndex((r) => r.id === roleId);
  const [first] = defaults.map((d) => ({ ...d, at: listed(Number(d.role_id)) })).filter((d) => d.at >= 0).sort((a, b) => a.at - b.at);
  if (!first) return null;
  return { name: String(first.name), role: roles[first.at].name, params: JSON.parse(String(first.params)) };
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
