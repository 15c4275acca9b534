import type { Knex } from 'knex';
import type { HostRole, HostUser } from '../host';
import { moveInList } from './ordering';
import { CrmError, invalid, notFound } from '../http/errors';
import { FIELD_LABELS, RULED_FIELDS, type OpportunityField, type StatusKind } from '../models/opportunity';
import { FIELD_RULES, type FieldRule } from './field-rules';
import { FieldErrors, flag, text, type FormInput, validId } from './form';
import { changedFields, journal, type FieldChange } from './journal';

/**
 * The admin side of opportunity statuses (S4) and of field rules per status (S5). Statuses are a list like the
 * lookups, with a colour, a probability, a kind (open / won / lost) and exactly one default among the active
 * open statuses. The kanban needs an open status to show, so the last active open one is never switched off.
 */
export const STATUS_JOURNAL = 'settings_opportunity_statuses';
export const FIELD_RULES_JOURNAL = 'settings_field_rules';
export const STATUS_KINDS: StatusKind[] = ['open', 'won', 'lost'];
const STATUS_COLUMNS = ['name', 'color', 'position', 'probability', 'kind', 'active', 'is_default'];

export interface StatusItem {
  id: number;
  name: string;
  color: string;
  position: number;
  probability: number;
  kind: StatusKind;
  active: boolean;
  is_default: boolean;
  /** Opportunities (deleted ones included: they keep their status) that reference it; 0 means it may be deleted. */
  usage: number;
}

function toItem(row: Record<string, unknown>, usage: number): StatusItem {
  return {
    id: Number(row.id), name: String(row.name), color: String(row.color), position: Number(row.position), probability: Number(row.probability),
    kind: String(row.kind) as StatusKind, active: Boolean(row.active), is_default: Boolean(row.is_default), usage,
  };
}

async function usageCounts(knex: Knex): Promise<Map<number, number>> {
  const rows: { id: unknown; n: unknown }[] = await knex('crm_opportunities').groupBy('status_id').select({ id: 'status_id' }).count({ n: '*' });
  return new Map(rows.map((r) => [Number(r.id), Number(r.n)]));
}

export async function listStatuses(knex: Knex): Promise<StatusItem[]> {
  const counts = await usageCounts(knex);
  const rows = await knex('crm_opportunity_statuses').orderBy([{ column: 'position' }, { column: 'id' }]);
  return rows.map((r) => toItem(r, counts.get(Number(r.id)) ?? 0));
}

async function requireStatus(knex: Knex, id: number): Promise<StatusItem> {
  const row = validId(id) ? await knex('crm_opportunity_statuses').where({ id }).first() : undefined;
  if (!row) throw notFound('Status');
  return toItem(row, 0);
}

interface StatusValues {
  name: string;
  color: string;
  probability: number;
  kind: StatusKind;
  is_default: boolean;
  position?: number;
}

/** The add / edit form, checked; every problem is reported at once. */
function readStatus(input: FormInput): StatusValues {
  const errors = new FieldErrors();
  const name = text(input, 'name');
  if (!name || name.length > 100) errors.add('name', 'Name must be 1–100 characters');
  const color = text(input, 'color');
  if (!/^#[0-9a-fA-F]{6}$/.test(color)) errors.add('color', 'Colour must be written #rrggbb (for example #2f855a)');
  const rawProbability = text(input, 'probability');
  const probability = Number(rawProbability);
  if (!/^\d{1,3}$/.test(rawProbability) || probability > 100) errors.add('probability', 'Probability must be a whole percent from 0 to 100');
  const kind = text(input, 'kind');
  if (!(STATUS_KINDS as string[]).includes(kind)) errors.add('kind', `Kind must be one of: ${STATUS_KINDS.join(', ')}`);
  const isDefault = flag(input, 'is_default');
  if (isDefault && kind !== 'open' && !errors.errors.kind) errors.add('is_default', 'Only an open status can be the default for new opportunities');
  const values: StatusValues = { name, color: color.toLowerCase(), probability, kind: kind as StatusKind, is_default: isDefault };
  const rawPosition = text(input, 'position');
  if (rawPosition) {
    if (!/^\d{1,6}$/.test(rawPosition) || Number(rawPosition) < 1) errors.add('position', 'Position must be a whole number from 1');
    else values.position = Number(rawPosition);
  }
  if (errors.any) throw invalid('The status was not saved: fix the fields marked below.', errors.errors);
  return values;
}

const duplicate = (name: string) => invalid(`There is already a status named "${name}": names must be unique.`, { name: 'Name is already taken' });

async function refuseDuplicate(trx: Knex, name: string, exceptId: number | null): Promise<void> {
  const q = trx('crm_opportunity_statuses').whereRaw('lower(name) = ?', [name.toLowerCase()]);
  if (exceptId !== null) q.whereNot('id', exceptId);
  if (await q.first('id')) throw duplicate(name);
}

/** A unique index may still catch two admins saving the same name at once: same answer, 422. */
function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/i.test(e?.message ?? '');
}

/** Other active open statuses than `id`: the kanban and new opportunities need at least one. */
async function otherActiveOpen(trx: Knex, id: number): Promise<number> {
  const [{ n }] = await trx('crm_opportunity_statuses').where({ active: true, kind: 'open' }).whereNot('id', id).count({ n: '*' });
  return Number(n);
}

const lastOpen = (s: StatusItem, doing: string) =>
  invalid(`“${s.name}” is the last active open status and cannot be ${doing}: opportunities need an open status. Add or activate another open status first.`, { id: 'last active open status' });
const isTheDefault = (s: StatusItem, doing: string) =>
  invalid(`“${s.name}” is the default status for new opportunities and cannot be ${doing}: make another open status the default first.`, { is_default: 'default status' });

/** Makes `id` the one default: every other status loses the flag in the same transaction. */
async function makeDefault(trx: Knex.Transaction, id: number, changes: { id: number; name: string }[]): Promise<void> {
  const others = await trx('crm_opportunity_statuses').where({ is_default: true }).whereNot('id', id).select('id', 'name');
  if (others.length) await trx('crm_opportunity_statuses').whereIn('id', others.map((o) => o.id)).update({ is_default: false });
  await trx('crm_opportunity_statuses').where({ id }).update({ is_default: true });
  changes.push(...others.map((o) => ({ id: Number(o.id), name: String(o.name) })));
}

async function journalClearedDefaults(trx: Knex.Transaction, user: HostUser, cleared: { id: number; name: string }[]): Promise<void> {
  for (const c of cleared) {
    await journal(trx, { type: STATUS_JOURNAL, id: c.id, userId: user.id, action: 'update', changes: [{ field: 'is_default', old: true, new: false }], notes: `“${c.name}”` });
  }
}

const stored = (s: StatusItem | (StatusValues & { active: boolean; position: number })) => ({
  name: s.name, color: s.color, position: s.position, probability: s.probability, kind: s.kind, active: s.active, is_default: s.is_default,
});

export async function createStatus(knex: Knex, user: HostUser, input: FormInput): Promise<number> {
  const values = readStatus(input);
  try {
    return await knex.transaction(async (trx) => {
      await refuseDuplicate(trx, values.name, null);
      let position = values.position;
      if (position === undefined) {
        const [{ max }] = await trx('crm_opportunity_statuses').max({ max: 'position' });
        position = Number(max ?? 0) + 1;
      }
      const row = stored({ ...values, position, active: true, is_default: false });
      const [inserted] = await trx('crm_opportunity_statuses').insert(row).returning('id');
      const id = Number((inserted as { id?: number }).id ?? inserted);
      const cleared: { id: number; name: string }[] = [];
      if (values.is_default) await makeDefault(trx, id, cleared);
      await journal(trx, { type: STATUS_JOURNAL, id, userId: user.id, action: 'create', changes: changedFields({}, { ...row, is_default: values.is_default }, STATUS_COLUMNS) });
      await journalClearedDefaults(trx, user, cleared);
      return id;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(values.name);
    throw err;
  }
}

/** Name, colour, probability, kind, default (and position when given). */
export async function updateStatus(knex: Knex, user: HostUser, id: number, input: FormInput): Promise<void> {
  const before = await requireStatus(knex, id);
  const values = readStatus(input);
  if (values.is_default && !before.active) throw invalid(`“${before.name}” is inactive: activate it before making it the default.`, { is_default: 'inactive status' });
  if (before.is_default && !values.is_default) {
    throw invalid('There must be one default status for new opportunities: make another open status the default instead.', { is_default: 'default status' });
  }
  if (before.is_default && values.kind !== 'open') throw isTheDefault(before, `made ${values.kind}`);
  try {
    await knex.transaction(async (trx) => {
      await refuseDuplicate(trx, values.name, id);
      if (before.active && before.kind === 'open' && values.kind !== 'open' && (await otherActiveOpen(trx, id)) === 0) throw lastOpen(before, `made ${values.kind}`);
      const after = stored({ ...values, position: values.position ?? before.position, active: before.active });
      await trx('crm_opportunity_statuses').where({ id }).update({ ...after, is_default: before.is_default });
      const cleared: { id: number; name: string }[] = [];
      if (values.is_default && !before.is_default) await makeDefault(trx, id, cleared);
      const changes = changedFields(stored(before), after, STATUS_COLUMNS);
      await journal(trx, { type: STATUS_JOURNAL, id, userId: user.id, action: 'update', changes, notes: changes.length ? `“${before.name}”` : undefined });
      await journalClearedDefaults(trx, user, cleared);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(values.name);
    throw err;
  }
}

export async function setStatusActive(knex: Knex, user: HostUser, id: number, active: boolean): Promise<void> {
  const before = await requireStatus(knex, id);
  await knex.transaction(async (trx) => {
    if (!active && before.active) {
      if (before.kind === 'open' && (await otherActiveOpen(trx, id)) === 0) throw lastOpen(before, 'deactivated');
      if (before.is_default) throw isTheDefault(before, 'deactivated');
    }
    await trx('crm_opportunity_statuses').where({ id }).update({ active });
    const changes = changedFields({ active: before.active }, { active }, ['active']);
    await journal(trx, { type: STATUS_JOURNAL, id, userId: user.id, action: 'update', changes, notes: changes.length ? `“${before.name}”` : undefined });
  });
}

/** Moves a status one place up or down, renumbering the list 1…n so positions stay distinct. */
export async function moveStatus(knex: Knex, user: HostUser, id: number, direction: 'up' | 'down'): Promise<void> {
  const before = await requireStatus(knex, id);
  await knex.transaction(async (trx) => {
    const changes = await moveInList(trx, 'crm_opportunity_statuses', id, direction);
    await journal(trx, { type: STATUS_JOURNAL, id, userId: user.id, action: 'update', changes, notes: changes.length ? `“${before.name}”` : undefined });
  });
}

/** Deletes a status no opportunity uses (its field rules go with it); one in use is refused: deactivate it instead. */
export async function deleteStatus(knex: Knex, user: HostUser, id: number): Promise<void> {
  const before = await requireStatus(knex, id);
  const refuse = (n: number | null) =>
    invalid(`“${before.name}” is in use${n ? ` (${n} ${n === 1 ? 'opportunity' : 'opportunities'})` : ''} and cannot be deleted: deactivate it instead.`, { id: 'in use' });
  try {
    await knex.transaction(async (trx) => {
      const [{ n }] = await trx('crm_opportunities').where({ status_id: id }).count({ n: '*' });
      if (Number(n) > 0) throw refuse(Number(n));
      if (before.active && before.kind === 'open' && (await otherActiveOpen(trx, id)) === 0) throw lastOpen(before, 'deleted');
      if (before.is_default) throw isTheDefault(before, 'deleted');
      await trx('crm_field_permissions').where({ status_id: id }).delete();
      await trx('crm_opportunity_statuses').where({ id }).delete();
      await journal(trx, { type: STATUS_JOURNAL, id, userId: user.id, action: 'delete', changes: [{ field: 'name', old: before.name, new: null }] });
    });
  } catch (err) {
    if (err instanceof CrmError) throw err;
    // A table added later may reference statuses: its foreign key says so.
    if (/foreign key/i.test((err as Error).message ?? '') || (err as { code?: string }).code === '23503') throw refuse(null);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------
// S5: field rules per role and status. Enforcement is services/field-rules.ts; here admins edit one role's
// matrix (statuses × RULED_FIELDS) at a time, saved whole: a cell left at "(none)" or not sent has no rule.

export const ruleCellName = (statusId: number, field: string) => `rule_${statusId}_${field}`;
export const RULE_LABELS: Record<FieldRule, string> = { read_only: 'read-only', required: 'required', hidden: 'hidden' };

/** Rule per status id and field for one role. */
export type RoleRules = Map<number, Map<OpportunityField, FieldRule>>;

export async function loadRoleRules(knex: Knex, roleId: number): Promise<RoleRules> {
  const rows = await knex('crm_field_permissions').where({ role_id: roleId }).select('status_id', 'field', 'rule');
  const out: RoleRules = new Map();
  for (const r of rows) {
    if (!(RULED_FIELDS as string[]).includes(r.field) || !(FIELD_RULES as string[]).includes(r.rule)) continue;
    const statusId = Number(r.status_id);
    if (!out.has(statusId)) out.set(statusId, new Map());
    out.get(statusId)!.set(r.field as OpportunityField, r.rule as FieldRule);
  }
  return out;
}

/** The role a request names (`role_id`), or null if it names none; one that is not the host's is an error. */
export function pickRole(roles: HostRole[], raw: string): HostRole | null {
  if (!raw) return null;
  return /^\d{1,9}$/.test(raw) ? roles.find((r) => r.id === Number(raw)) ?? null : null;
}

/**
 * Saves the whole matrix of one role, all or nothing: a role that is not the host's, a status that does not
 * exist, a field that cannot be ruled, a rule that does not exist or any other form field answers 422 and
 * nothing changes. Journaled as "<status>: <field>" old → new.
 */
export async function saveRoleRules(knex: Knex, user: HostUser, roles: HostRole[], input: FormInput): Promise<HostRole> {
  const errors: Record<string, string> = {};
  const role = pickRole(roles, text(input, 'role_id'));
  if (!role) errors.role_id = 'Choose a role from the list';
  const statuses = await listStatuses(knex);
  const statusById = new Map(statuses.map((s) => [s.id, s]));
  const next: { statusId: number; field: OpportunityField; rule: FieldRule }[] = [];
  for (const key of Object.keys(input)) {
    if (key === '_csrf' || key === 'role_id') continue;
    const m = /^rule_(\d{1,9})_([a-z_]{1,40})$/.exec(key);
    if (!m) { errors[key] = 'not a cell of the matrix'; continue; }
    if (!statusById.has(Number(m[1]))) { errors[key] = 'not an opportunity status'; continue; }
    if (!(RULED_FIELDS as string[]).includes(m[2])) { errors[key] = 'not a field that rules apply to'; continue; }
    const value = text(input, key);
    if (value === '') continue;
    if (!(FIELD_RULES as string[]).includes(value)) { errors[key] = `must be one of: (none), ${FIELD_RULES.join(', ')}`; continue; }
    next.push({ statusId: Number(m[1]), field: m[2] as OpportunityField, rule: value as FieldRule });
  }
  if (Object.keys(errors).length || !role) {
    throw invalid('Field rules were not saved: the form named a role, status, field or rule that does not exist.', errors);
  }
  await knex.transaction(async (trx) => {
    const before = await loadRoleRules(trx, role.id);
    await trx('crm_field_permissions').where({ role_id: role.id }).delete();
    if (next.length) await trx('crm_field_permissions').insert(next.map((c) => ({ role_id: role.id, status_id: c.statusId, field: c.field, rule: c.rule })));
    const changes: FieldChange[] = [];
    for (const s of statuses) {
      for (const f of RULED_FIELDS) {
        const old = before.get(s.id)?.get(f) ?? null;
        const now = next.find((c) => c.statusId === s.id && c.field === f)?.rule ?? null;
        if (old !== now) changes.push({ field: `${role.name} · ${s.name}: ${FIELD_LABELS[f]}`, old: old && RULE_LABELS[old], new: now && RULE_LABELS[now] });
      }
    }
    await journal(trx, { type: FIELD_RULES_JOURNAL, id: role.id, userId: user.id, action: 'update', changes });
  });
  return role;
}
