import type { Knex } from 'knex';
import { readUnderVersions } from './data-version';
import { dayProblem, text, type FieldErrors, type FormInput } from './form';
import type { FieldChange } from './journal';

export const FIELD_FORMATS = ['text', 'number', 'date', 'list', 'boolean'] as const;
export type FieldFormat = (typeof FIELD_FORMATS)[number];

export interface CustomFieldDef {
  id: number;
  entity: string;
  account_type_id: number | null;
  name: string;
  field_format: FieldFormat;
  possible_values: string[];
  is_required: boolean;
  active: boolean;
  position: number;
}

const toDef = (r: Record<string, unknown>): CustomFieldDef => ({
  id: Number(r.id), entity: String(r.entity), account_type_id: r.account_type_id === null ? null : Number(r.account_type_id),
  name: String(r.name), field_format: r.field_format as FieldFormat, possible_values: JSON.parse(String(r.possible_values)) as string[],
  is_required: Boolean(r.is_required), active: Boolean(r.active), position: Number(r.position),
});

export const fieldKey = (field: { id: number }) => `custom_field_${field.id}`;

/**
 * Every custom field of `entity` (enabled or not), by account type, then position: the whole (small) table is kept
 * under its version, since forms, detail pages and quote documents read it on every request. Each caller gets its
 * own copies.
 */
export async function allFields(knex: Knex, entity: string): Promise<CustomFieldDef[]> {
  const kept = await readUnderVersions(knex, 'custom-fields', ['crm_custom_fields'], [], async () =>
    (await knex('crm_custom_fields').orderBy([{ column: 'entity' }, { column: 'account_type_id' }, { column: 'position' }, { column: 'id' }])).map(toDef));
  return kept.filter((f) => f.entity === entity).map((f) => ({ ...f, possible_values: [...f.possible_values] }));
}

/** The enabled custom fields of an account type (A3), or of every type when null, in display order. */
export async function activeFields(knex: Knex, entity: string, accountTypeId: number | null): Promise<CustomFieldDef[]> {
  return (await allFields(knex, entity))
    .filter((f) => f.active && (accountTypeId === null || f.account_type_id === accountTypeId || f.account_type_id === null))
    .sort((a, b) => a.position - b.position || a.id - b.id);
}

/** Reads and checks every field's value from a form; problems go into `errors` under the field's key. */
export function readCustomValues(fields: CustomFieldDef[], input: FormInput, errors: FieldErrors): Map<number, string | null> {
  const values = new Map<number, string | null>();
  for (const field of fields) {
    const key = fieldKey(field);
    const raw = text(input, key);
    if (field.field_format === 'boolean') {
      values.set(field.id, raw === '1' || raw === 'true' || raw === 'on' ? '1' : '0');
      continue;
    }
    if (!raw) {
      if (field.is_required) errors.add(key, `${field.name} is required`);
      values.set(field.id, null);
      continue;
    }
    switch (field.field_format) {
      case 'number':
        if (!/^-?\d{1,15}(\.\d{1,6})?$/.test(raw)) errors.add(key, `${field.name} must be a number`);
        break;
      case 'date':
        {
          const problem = dayProblem(raw, field.name);
          if (problem) errors.add(key, problem);
        }
        break;
      case 'list':
        if (!field.possible_values.includes(raw)) errors.add(key, `${field.name} must be one of: ${field.possible_values.join(', ')}`);
        break;
      default:
        if (raw.length > 1000) errors.add(key, `${field.name} is at most 1000 characters`);
    }
    values.set(field.id, raw);
  }
  return values;
}

export async function customValuesOf(knex: Knex, recordType: string, recordId: number): Promise<Map<number, string | null>> {
  const rows = await knex('crm_custom_values').where({ record_type: recordType, record_id: recordId });
  return new Map(rows.map((r) => [Number(r.custom_field_id), r.value as string | null]));
}

/** Upserts the values and returns what changed, for the journal (`cf:<field name>`). */
export async function saveCustomValues(
  trx: Knex.Transaction, recordType: string, recordId: number, fields: CustomFieldDef[], values: Map<number, string | null>,
): Promise<FieldChange[]> {
  const before = await customValuesOf(trx, recordType, recordId);
  const changes: FieldChange[] = [];
  for (const field of fields) {
    if (!values.has(field.id)) continue;
    const next = values.get(field.id) ?? null;
    const prev = before.get(field.id) ?? null;
    if (next === prev) continue;
    changes.push({ field: `cf:${field.name}`, old: prev, new: next });
    await trx('crm_custom_values').insert({ custom_field_id: field.id, record_type: recordType, record_id: recordId, value: next })
      .onConflict(['record_type', 'record_id', 'custom_field_id']).merge({ value: next });
  }
  return changes;
}
