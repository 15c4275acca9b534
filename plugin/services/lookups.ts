import type { Knex } from 'knex';
import type { HostUser } from '../host';
import { moveInList } from './ordering';
import { CrmError, invalid, notFound } from '../http/errors';
import { Journal } from '../models/journal';
import { allFields, FIELD_FORMATS, type CustomFieldDef, type FieldFormat } from './custom-fields';
import { FieldErrors, flag, text, type FormInput, validId } from './form';
import { changedFields, journal, type FieldChange, type HistoryPage } from './journal';

/**
 * S4: the lists admins keep (account types, industries, groups, contact types, relation types, internal
 * relation categories, sales activity categories). One generic shape: a unique name, a position, an active
 * flag, and per kind a few extra fields. A value in use is never deleted — it is switched off, so old
 * records keep their label.
 */
export interface LookupKind {
  /** The URL segment: /crm/settings/lists/<slug>. */
  slug: string;
  table: string;
  label: string;
  singular: string;
  /** Journal type `settings_<kind>`, journal id the row id. */
  journalType: string;
  /** Extra text fields (1–100 characters, required). */
  texts: { name: string; label: string }[];
  /** Extra yes/no fields. */
  flags: { name: string; label: string }[];
  /** Where rows of this kind are referenced: a value used in any of them cannot be deleted. */
  usedIn: { table: string; column: string; label: string }[];
}

export const LOOKUP_KINDS: LookupKind[] = [
  {
    slug: 'account-types', table: 'crm_account_types', label: 'Account types', singular: 'account type', journalType: 'settings_account_types',
    texts: [],
    flags: [{ name: 'use_first_last_name', label: 'First + last name' }, { name: 'use_name', label: 'Name' }],
    usedIn: [{ table: 'crm_accounts', column: 'account_type_id', label: 'accounts' }, { table: 'crm_custom_fields', column: 'account_type_id', label: 'custom fields' }],
  },
  {
    slug: 'industries', table: 'crm_industries', label: 'Industries', singular: 'industry', journalType: 'settings_industries',
    texts: [], flags: [], usedIn: [{ table: 'crm_accounts', column: 'industry_id', label: 'accounts' }],
  },
  {
    slug: 'account-groups', table: 'crm_account_groups', label: 'Account groups', singular: 'account group', journalType: 'settings_account_groups',
    texts: [], flags: [], usedIn: [{ table: 'crm_account_group_members', column: 'group_id', label: 'accounts' }],
  },
  {
    slug: 'contact-types', table: 'crm_contact_types', label: 'Contact types', singular: 'contact type', journalType: 'settings_contact_types',
    texts: [], flags: [], usedIn: [{ table: 'crm_personal_contacts', column: 'contact_type_id', label: 'personal contacts' }],
  },
  {
    slug: 'relation-types', table: 'crm_relation_types', label: 'Relation types', singular: 'relation type', journalType: 'settings_relation_types',
    texts: [{ name: 'inverse_name', label: 'Inverse name' }], flags: [],
    usedIn: [{ table: 'crm_account_links', column: 'relation_type_id', label: 'account links' }],
  },
  {
    slug: 'internal-relation-categories', table: 'crm_internal_relation_categories', label: 'Internal relation categories', singular: 'internal relation category',
    journalType: 'settings_internal_relation_categories', texts: [], flags: [],
    usedIn: [{ table: 'crm_internal_relations', column: 'category_id', label: 'internal relations' }],
  },
  {
    slug: 'activity-categories', table: 'crm_activity_categories', label: 'Sales activity categories', singular: 'activity category',
    journalType: 'settings_activity_categories', texts: [], flags: [],
    usedIn: [{ table: 'crm_sales_activities', column: 'category_id', label: 'sales activities' }],
  },
];

export function lookupKind(slug: string): LookupKind {
  const kind = LOOKUP_KINDS.find((k) => k.slug === slug);
  if (!kind) throw notFound('List');
  return kind;
}

export interface LookupItem {
  id: number;
  name: string;
  position: number;
  active: boolean;
  /** The kind's extra fields (inverse_name, use_first_last_name, use_name…). */
  extra: Record<string, string | boolean>;
  /** How many records use it; 0 means it may be deleted. */
  usage: number;
}

function toItem(kind: LookupKind, row: Record<string, unknown>, usage: number): LookupItem {
  const extra: Record<string, string | boolean> = {};
  for (const t of kind.texts) extra[t.name] = String(row[t.name] ?? '');
  for (const f of kind.flags) extra[f.name] = Boolean(row[f.name]);
  return { id: Number(row.id), name: String(row.name), position: Number(row.position), active: Boolean(row.active), extra, usage };
}

/** How many records reference each row, one grouped query per referencing table. */
async function usageCounts(knex: Knex, kind: LookupKind): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const use of kind.usedIn) {
    const rows: { id: unknown; n: unknown }[] = await knex(use.table).whereNotNull(use.column).groupBy(use.column).select({ id: use.column }).count({ n: '*' });
    for (const r of rows) counts.set(Number(r.id), (counts.get(Number(r.id)) ?? 0) + Number(r.n));
  }
  return counts;
}

export async function listLookup(knex: Knex, kind: LookupKind): Promise<LookupItem[]> {
  const counts = await usageCounts(knex, kind);
  const rows = await knex(kind.table).orderBy([{ column: 'position' }, { column: 'id' }]);
  return rows.map((r) => toItem(kind, r, counts.get(Number(r.id)) ?? 0));
}

async function requireItem(knex: Knex, kind: LookupKind, id: number): Promise<Record<string, unknown>> {
  const row = validId(id) ? await knex(kind.table).where({ id }).first() : undefined;
  if (!row) throw notFound(kind.singular[0].toUpperCase() + kind.singular.slice(1));
  return row;
}

/** The values a create or rename form sends, checked; every problem is reported at once. */
function readValues(kind: LookupKind, input: FormInput, current: Record<string, unknown> | null): Record<string, unknown> {
  const errors: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = text(input, 'name');
  if (!name || name.length > 100) errors.name = 'Name must be 1–100 characters';
  values.name = name;
  for (const t of kind.texts) {
    const v = text(input, t.name);
    if (!v || v.length > 100) errors[t.name] = `${t.label} must be 1–100 characters`;
    values[t.name] = v;
  }
  for (const f of kind.flags) values[f.name] = flag(input, f.name);
  if (kind.slug === 'account-types' && !values.use_first_last_name && !values.use_name) {
    errors.use_name = 'An account type needs first + last name or name: they cannot both be off';
  }
  const rawPosition = text(input, 'position');
  if (rawPosition) {
    const n = Number(rawPosition);
    if (!/^\d{1,6}$/.test(rawPosition) || n < 1) errors.position = 'Position must be a whole number from 1';
    else values.position = n;
  } else if (!current) {
    values.position = undefined;
  }
  if (Object.keys(errors).length) {
    const message = errors.use_name && Object.keys(errors).length === 1 ? errors.use_name : `The ${kind.singular} was not saved: fix the fields marked below.`;
    throw invalid(message, errors);
  }
  return values;
}

async function refuseDuplicate(trx: Knex.Transaction, kind: LookupKind, name: string, exceptId: number | null): Promise<void> {
  const q = trx(kind.table).whereRaw('lower(name) = ?', [name.toLowerCase()]);
  if (exceptId !== null) q.whereNot('id', exceptId);
  if (await q.first('id')) throw duplicate(kind, name);
}

const duplicate = (kind: LookupKind, name: string) =>
  invalid(`There is already ${/^[aeiou]/.test(kind.singular) ? 'an' : 'a'} ${kind.singular} named "${name}": names must be unique.`, { name: 'Name is already taken' });

/** A unique index may still catch two admins saving the same name at once: same answer, 422. */
function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/i.test(e?.message ?? '');
}

const FIELDS = (kind: LookupKind) => ['name', ...kind.texts.map((t) => t.name), ...kind.flags.map((f) => f.name), 'position', 'active'];

export async function createLookup(knex: Knex, user: HostUser, kind: LookupKind, input: FormInput): Promise<number> {
  const values = readValues(kind, input, null);
  try {
    return await knex.transaction(async (trx) => {
      await refuseDuplicate(trx, kind, String(values.name), null);
      if (values.position === undefined) {
        const [{ max }] = await trx(kind.table).max({ max: 'position' });
        values.position = Number(max ?? 0) + 1;
      }
      const [row] = await trx(kind.table).insert({ ...values, active: true }).returning('id');
      const id = Number((row as { id?: number }).id ?? row);
      const after = { ...values, active: true };
      await journal(trx, { type: kind.journalType, id, userId: user.id, action: 'create', changes: changedFields({}, after, FIELDS(kind)) });
      return id;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(kind, String(values.name));
    throw err;
  }
}

/** Rename (and the kind's extra fields, and position when given). */
export async function updateLookup(knex: Knex, user: HostUser, kind: LookupKind, id: number, input: FormInput): Promise<void> {
  const before = await requireItem(knex, kind, id);
  const values = readValues(kind, input, before);
  try {
    await knex.transaction(async (trx) => {
      await refuseDuplicate(trx, kind, String(values.name), id);
      await trx(kind.table).where({ id }).update(values);
      const changes = changedFields(normalized(kind, before), { ...normalized(kind, before), ...values }, FIELDS(kind));
      await journal(trx, { type: kind.journalType, id, userId: user.id, action: 'update', changes, notes: aboutRow(before, changes) });
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicate(kind, String(values.name));
    throw err;
  }
}

/** The history lists every row of a kind together: a change note names the row it was made to. */
const aboutRow = (row: Record<string, unknown>, changes: FieldChange[]) => (changes.length ? `“${String(row.name)}”` : undefined);

/** Booleans as booleans on both databases, so the journal does not record 1 → true. */
function normalized(kind: LookupKind, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...row, active: Boolean(row.active), position: Number(row.position) };
  for (const f of kind.flags) out[f.name] = Boolean(row[f.name]);
  return out;
}

export async function setLookupActive(knex: Knex, user: HostUser, kind: LookupKind, id: number, active: boolean): Promise<void> {
  const before = await requireItem(knex, kind, id);
  await knex.transaction(async (trx) => {
    if (!active && kind.slug === 'account-types') {
      const others = await trx(kind.table).where({ active: true }).whereNot('id', id).first('id');
      if (!others) throw invalid('At least one account type must stay active: accounts need a type.', { active: 'last active account type' });
    }
    await trx(kind.table).where({ id }).update({ active });
    const changes = changedFields({ active: Boolean(before.active) }, { active }, ['active']);
    await journal(trx, { type: kind.journalType, id, userId: user.id, action: 'update', changes, notes: aboutRow(before, changes) });
  });
}

/** Moves a row one place up or down, renumbering the list 1…n so positions stay distinct. */
export async function moveLookup(knex: Knex, user: HostUser, kind: LookupKind, id: number, direction: 'up' | 'down'): Promise<void> {
  const before = await requireItem(knex, kind, id);
  await knex.transaction(async (trx) => {
    const changes = await moveInList(trx, kind.table, id, direction);
    await journal(trx, { type: kind.journalType, id, userId: user.id, action: 'update', changes, notes: aboutRow(before, changes) });
  });
}

/** Deletes a value nobody uses; one in use is refused (422) — switch it off instead. */
export async function deleteLookup(knex: Knex, user: HostUser, kind: LookupKind, id: number): Promise<void> {
  const before = await requireItem(knex, kind, id);
  const inUse = async (trx: Knex) => {
    for (const use of kind.usedIn) if (await trx(use.table).where(use.column, id).first(use.column)) return use.label;
    return null;
  };
  const refuse = (where: string) =>
    invalid(`"${String(before.name)}" is in use (${where}) and cannot be deleted: deactivate it instead.`, { id: 'in use' });
  try {
    await knex.transaction(async (trx) => {
      const where = await inUse(trx);
      if (where) throw refuse(where);
      await trx(kind.table).where({ id }).delete();
      await journal(trx, { type: kind.journalType, id, userId: user.id, action: 'delete', changes: [{ field: 'name', old: before.name, new: null }] });
    });
  } catch (err) {
    if (err instanceof CrmError) throw err;
    // A table added later may reference the list without being named in `usedIn`: its foreign key says so.
    if (/foreign key|FOREIGN KEY/i.test((err as Error).message ?? '') || (err as { code?: string }).code === '23503') throw refuse('other records');
    throw err;
  }
}

/** The latest changes to one kind of setting (every row of it), newest first, for the page's History. */
export async function recentChanges(knex: Knex, journalType: string, limit = 10): Promise<HistoryPage> {
  const entries = await Journal.query(knex).where({ journalized_type: journalType }).withGraphFetched('details').orderBy('id', 'desc').limit(limit);
  return { entries, page: 1, pages: 1, total: entries.length };
}

// ---------------------------------------------------------------------------------------------------------
// A3: custom fields per account type. The account form reads and enforces them (services/custom-fields.ts);
// here admins add, rename, reorder, require and switch them off.

export const CUSTOM_FIELD_JOURNAL = 'settings_custom_fields';
const CUSTOM_FIELD_COLUMNS = ['account_type_id', 'name', 'field_format', 'possible_values', 'is_required', 'active', 'position'];

export async function listCustomFields(knex: Knex): Promise<CustomFieldDef[]> {
  return allFields(knex, 'account');
}

export async function requireCustomField(knex: Knex, id: number): Promise<CustomFieldDef> {
  const field = validId(id) ? (await allFields(knex, 'account')).find((f) => f.id === id) : undefined;
  if (!field) throw notFound('Custom field');
  return field;
}

/** One value per line from a textarea, or an array from JSON; blank lines dropped, duplicates once. */
function possibleValues(input: FormInput): string[] {
  const raw = input.possible_values;
  const lines = Array.isArray(raw) ? raw.map(String) : typeof raw === 'string' ? raw.split(/\r?\n/) : [];
  return [...new Set(lines.map((l) => l.trim()).filter(Boolean))];
}

interface CustomFieldValues {
  account_type_id: number;
  name: string;
  field_format: FieldFormat;
  possible_values: string[];
  is_required: boolean;
  active: boolean;
  position: number | null;
}

/** Reads the field form. Type and format are chosen once, on create: stored values depend on them. */
async function readCustomField(knex: Knex, input: FormInput, existing: CustomFieldDef | null): Promise<CustomFieldValues> {
  const errors = new FieldErrors();
  let typeId = existing?.account_type_id ?? null;
  let format = existing?.field_format ?? null;
  if (!existing) {
    typeId = errors.id(input, 'account_type_id', 'Account type');
    if (!typeId || !(await knex('crm_account_types').where({ id: typeId }).first('id'))) errors.add('account_type_id', 'Choose an account type from the list');
    const f = text(input, 'field_format');
    if ((FIELD_FORMATS as readonly string[]).includes(f)) format = f as FieldFormat;
    else errors.add('field_format', `Format must be one of: ${FIELD_FORMATS.join(', ')}`);
  }
  const name = text(input, 'name');
  if (!name || name.length > 100) errors.add('name', 'Name must be 1–100 characters');
  const values = format === 'list' ? possibleValues(input) : [];
  if (format === 'list') {
    if (!values.length) errors.add('possible_values', 'A list field needs at least one value (one per line)');
    else if (values.length > 200) errors.add('possible_values', 'A list field has at most 200 values');
    else if (values.some((v) => v.length > 100)) errors.add('possible_values', 'Each value is at most 100 characters');
  }
  let position: number | null = null;
  const rawPosition = text(input, 'position');
  if (rawPosition) {
    if (!/^\d{1,6}$/.test(rawPosition) || Number(rawPosition) < 1) errors.add('position', 'Position must be a whole number from 1');
    else position = Number(rawPosition);
  }
  if (!errors.any && typeId) {
    const clash = knex('crm_custom_fields').where({ entity: 'account', account_type_id: typeId }).whereRaw('lower(name) = ?', [name.toLowerCase()]);
    if (existing) clash.whereNot('id', existing.id);
    if (await clash.first('id')) errors.add('name', `This account type already has a custom field named "${name}"`);
  }
  if (errors.any) throw invalid(errors.errors.name?.startsWith('This account type') ? `${errors.errors.name}: names must be unique.` : 'The custom field was not saved: fix the fields marked below.', errors.errors);
  return {
    account_type_id: typeId!, name, field_format: format!, possible_values: values,
    // A checkbox is always "yes" or "no": "required" would only force it on, which is not what anyone means.
    is_required: format === 'boolean' ? false : flag(input, 'is_required'),
    active: existing ? flag(input, 'active') : true,
    position,
  };
}

const storedField = (v: CustomFieldValues | CustomFieldDef) => ({
  account_type_id: v.account_type_id, name: v.name, field_format: v.field_format, possible_values: JSON.stringify(v.possible_values),
  is_required: v.is_required, active: v.active, position: v.position,
});

export async function createCustomField(knex: Knex, user: HostUser, input: FormInput): Promise<number> {
  const values = await readCustomField(knex, input, null);
  return knex.transaction(async (trx) => {
    if (values.position === null) {
      const [{ max }] = await trx('crm_custom_fields').where({ entity: 'account', account_type_id: values.account_type_id }).max({ max: 'position' });
      values.position = Number(max ?? 0) + 1;
    }
    const row = { entity: 'account', ...storedField(values) };
    const [inserted] = await trx('crm_custom_fields').insert(row).returning('id');
    const id = Number((inserted as { id?: number }).id ?? inserted);
    await journal(trx, { type: CUSTOM_FIELD_JOURNAL, id, userId: user.id, action: 'create', changes: changedFields({}, row, CUSTOM_FIELD_COLUMNS) });
    return id;
  });
}

/** Rename, values, required, enable/disable, position; journaled old → new. */
export async function updateCustomField(knex: Knex, user: HostUser, id: number, input: FormInput): Promise<void> {
  const before = await requireCustomField(knex, id);
  const values = await readCustomField(knex, input, before);
  if (values.position === null) values.position = before.position;
  await knex.transaction(async (trx) => {
    const after = storedField(values);
    await trx('crm_custom_fields').where({ id }).update(after);
    await journal(trx, { type: CUSTOM_FIELD_JOURNAL, id, userId: user.id, action: 'update', changes: changedFields(storedField(before), after, CUSTOM_FIELD_COLUMNS) });
  });
}

export async function setCustomFieldActive(knex: Knex, user: HostUser, id: number, active: boolean): Promise<void> {
  const before = await requireCustomField(knex, id);
  await knex.transaction(async (trx) => {
    await trx('crm_custom_fields').where({ id }).update({ active });
    await journal(trx, { type: CUSTOM_FIELD_JOURNAL, id, userId: user.id, action: 'update', changes: changedFields({ active: before.active }, { active }, ['active']) });
  });
}
