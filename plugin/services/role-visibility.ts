import type { Knex } from 'knex';
import type { HostRole, HostUser } from '../host';
import { invalid } from '../http/errors';
import { text, type FormInput } from './form';
import { journal, type FieldChange } from './journal';
import { VISIBILITY_ENTITIES, VISIBILITY_LEVELS, type VisibilityEntity, type VisibilityLevel } from './visibility';

/**
 * S3 settings: per role and record kind, whose records its members see (all / own / own + subordinates), and
 * each user's supervisor (the "subordinates" of that rule). Roles and users belong to the host; the plugin
 * stores only their ids. Reading them back is `services/visibility.ts`.
 */
export const VISIBILITY_JOURNAL = 'settings_visibility';
export const SUPERVISORS_JOURNAL = 'settings_supervisors';

/** Level per role id and entity; a missing row means "all" (what recordScope assumes). */
export type VisibilityMatrix = Record<number, Record<VisibilityEntity, VisibilityLevel>>;

export const cellName = (roleId: number, entity: string) => `level_${roleId}_${entity}`;

export async function loadMatrix(knex: Knex, roles: HostRole[]): Promise<VisibilityMatrix> {
  const rows = await knex('crm_role_visibility').select('role_id', 'entity', 'level');
  const matrix: VisibilityMatrix = {};
  for (const role of roles) matrix[role.id] = Object.fromEntries(VISIBILITY_ENTITIES.map((e) => [e, 'all'])) as Record<VisibilityEntity, VisibilityLevel>;
  for (const r of rows) {
    const cell = matrix[Number(r.role_id)];
    if (cell && (VISIBILITY_ENTITIES as readonly string[]).includes(r.entity) && VISIBILITY_LEVELS.includes(r.level)) cell[r.entity as VisibilityEntity] = r.level;
  }
  return matrix;
}

/**
 * Saves the cells the form sends (`level_<roleId>_<entity>`), all or nothing: a role that is not the host's,
 * an entity or level that does not exist, or any other field answers 422 and nothing changes.
 */
export async function saveMatrix(knex: Knex, user: HostUser, roles: HostRole[], input: FormInput): Promise<VisibilityMatrix> {
  const roleById = new Map(roles.map((r) => [r.id, r]));
  const errors: Record<string, string> = {};
  const cells: { role: HostRole; entity: VisibilityEntity; level: VisibilityLevel }[] = [];
  for (const key of Object.keys(input)) {
    if (key === '_csrf') continue;
    const m = /^level_(\d{1,9})_([a-z_]{1,40})$/.exec(key);
    const role = m ? roleById.get(Number(m[1])) : undefined;
    if (!m || !role) { errors[key] = 'not a role of this platform'; continue; }
    if (!(VISIBILITY_ENTITIES as readonly string[]).includes(m[2])) { errors[key] = 'not a record kind with visibility'; continue; }
    const level = text(input, key);
    if (!(VISIBILITY_LEVELS as string[]).includes(level)) { errors[key] = `must be one of: ${VISIBILITY_LEVELS.join(', ')}`; continue; }
    cells.push({ role, entity: m[2] as VisibilityEntity, level: level as VisibilityLevel });
  }
  if (Object.keys(errors).length) throw invalid('Visibility was not saved: the form named a role, record kind or level that does not exist.', errors);
  const before = await loadMatrix(knex, roles);
  await knex.transaction(async (trx) => {
    const changes: FieldChange[] = [];
    for (const c of cells) {
      const old = before[c.role.id][c.entity];
      if (old === c.level) continue;
      await trx('crm_role_visibility').insert({ role_id: c.role.id, entity: c.entity, level: c.level })
        .onConflict(['role_id', 'entity']).merge({ level: c.level });
      changes.push({ field: `${c.role.name}: ${c.entity}`, old, new: c.level });
    }
    await journal(trx, { type: VISIBILITY_JOURNAL, id: 0, userId: user.id, action: 'update', changes });
  });
  return loadMatrix(knex, roles);
}

/** Supervisor id per user id. */
export async function loadSupervisors(knex: Knex): Promise<Map<number, number>> {
  const rows = await knex('crm_user_supervisors').select('user_id', 'supervisor_id');
  return new Map(rows.map((r) => [Number(r.user_id), Number(r.supervisor_id)]));
}

export const supervisorField = (userId: number) => `supervisor_${userId}`;

/** The first user found on a loop of supervisors in `map` (A supervises B supervises A), or null. */
export function findCycle(map: Map<number, number>): number[] | null {
  for (const start of map.keys()) {
    const seen: number[] = [];
    let current: number | undefined = start;
    while (current !== undefined) {
      const at = seen.indexOf(current);
      if (at >= 0) return seen.slice(at);
      seen.push(current);
      current = map.get(current);
    }
  }
  return null;
}

/**
 * Saves the supervisors the form sends (`supervisor_<userId>`: a user id, or empty for none), all or
 * nothing. Both ends must be users of the host; nobody supervises themselves, and no chain may loop.
 */
export async function saveSupervisors(knex: Knex, actor: HostUser, users: HostUser[], input: FormInput): Promise<Map<number, number>> {
  const byId = new Map(users.map((u) => [u.id, u]));
  const errors: Record<string, string> = {};
  const next = await loadSupervisors(knex);
  const before = new Map(next);
  for (const key of Object.keys(input)) {
    if (key === '_csrf') continue;
    const m = /^supervisor_(\d{1,9})$/.exec(key);
    const user = m ? byId.get(Number(m[1])) : undefined;
    if (!user) { errors[key] = 'not a user of this platform'; continue; }
    const raw = text(input, key);
    if (!raw) { next.delete(user.id); continue; }
    const supervisor = /^\d{1,9}$/.test(raw) ? byId.get(Number(raw)) : undefined;
    if (!supervisor) errors[key] = 'Choose a supervisor from the list';
    else if (supervisor.id === user.id) errors[key] = `${user.name} cannot supervise themselves`;
    else next.set(user.id, supervisor.id);
  }
  if (Object.keys(errors).length) throw invalid('Supervisors were not saved: fix the fields marked below.', errors);
  const cycle = findCycle(next);
  if (cycle) {
    const names = cycle.map((id) => byId.get(id)?.name ?? `user ${id}`);
    const message = `Supervisors cannot form a loop: ${[...names, names[0]].join(' → ')}.`;
    throw invalid(message, Object.fromEntries(cycle.filter((id) => byId.has(id)).map((id) => [supervisorField(id), 'would make a loop of supervisors'])));
  }
  const nameOf = (id: number | undefined) => (id === undefined ? null : byId.get(id)?.name ?? `user ${id}`);
  await knex.transaction(async (trx) => {
    const changes: FieldChange[] = [];
    for (const id of new Set([...before.keys(), ...next.keys()])) {
      const old = before.get(id);
      const now = next.get(id);
      if (old === now) continue;
      if (now === undefined) await trx('crm_user_supervisors').where({ user_id: id }).delete();
      else await trx('crm_user_supervisors').insert({ user_id: id, supervisor_id: now }).onConflict('user_id').merge({ supervisor_id: now });
      changes.push({ field: `supervisor of ${nameOf(id)}`, old: nameOf(old), new: nameOf(now) });
    }
    await journal(trx, { type: SUPERVISORS_JOURNAL, id: 0, userId: actor.id, action: 'update', changes });
  });
  return loadSupervisors(knex);
}
