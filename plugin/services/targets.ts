import type { Knex } from 'knex';
import type { HostApi, HostUser } from '../host';
import { invalid, notFound } from '../http/errors';
import { dateText } from './accounts';
import { MEASURE_LABELS, TARGET_MEASURES, monthStart, quarterStart, type TargetMeasure } from './dashboard-config';
import type { UserType } from './dashboard-data';
import { FieldErrors, text, type FormInput } from './form';
import { journal } from './journal';
import { formatMoney, parseAmount } from './money';
import { loadSettings } from './settings';

/**
 * User targets (SPEC D5): a goal per user, period (month, quarter or year) and measure (won amount in the
 * reporting currency, number of won deals, activities). One target per user, period and measure: saving again
 * replaces the value. User types (sales rep / sales director) decide whose numbers "auto" modules show.
 */

export const TARGET_JOURNAL = 'user_target';
export const PERIOD_KINDS = ['month', 'quarter', 'year'] as const;
export type TargetPeriodKind = (typeof PERIOD_KINDS)[number];
export const USER_TYPES: UserType[] = ['sales_rep', 'sales_director'];
export const USER_TYPE_LABELS: Record<UserType, string> = { sales_rep: 'Sales rep', sales_director: 'Sales director' };

export interface UserTarget {
  id: number;
  user_id: number;
  period_kind: TargetPeriodKind;
  period_start: string;
  measure: TargetMeasure;
  target_value: number;
  currency: string | null;
  lock_version: number;
}

export function periodStartOf(kind: TargetPeriodKind, date: string): string {
  if (kind === 'month') return monthStart(date);
  if (kind === 'quarter') return quarterStart(date);
  return `${date.slice(0, 4)}-01-01`;
}

export function periodLabel(kind: TargetPeriodKind, start: string): string {
  if (kind === 'month') return start.slice(0, 7);
  if (kind === 'quarter') return `${start.slice(0, 4)} Q${Math.floor((Number(start.slice(5, 7)) - 1) / 3) + 1}`;
  return start.slice(0, 4);
}

export function targetText(t: Pick<UserTarget, 'measure' | 'target_value' | 'currency'>): string {
  return t.measure === 'won_amount' ? formatMoney(t.target_value, t.currency ?? 'EUR') : String(t.target_value);
}

function toTarget(r: Record<string, unknown>): UserTarget {
  return {
    id: Number(r.id), user_id: Number(r.user_id), period_kind: r.period_kind as TargetPeriodKind, period_start: dateText(r.period_start) ?? '',
    measure: r.measure as TargetMeasure, target_value: Number(r.target_value), currency: r.currency ? String(r.currency) : null, lock_version: Number(r.lock_version),
  };
}

export async function listTargets(knex: Knex, options: { year?: string | null } = {}): Promise<UserTarget[]> {
  const q = knex('crm_user_targets').orderBy([{ column: 'period_start', order: 'desc' }, { column: 'user_id' }, { column: 'measure' }]).limit(500);
  if (options.year) q.where('period_start', '>=', `${options.year}-01-01`).where('period_start', '<=', `${options.year}-12-31`);
  return (await q).map(toTarget);
}

export interface TargetInput { user_id: number; period_kind: TargetPeriodKind; period_start: string; measure: TargetMeasure; target_value: number; currency: string | null }

/** The target form: a user who exists, a period (any date in it: it is moved to the period's first day), a measure and a value. */
export async function readTarget(host: HostApi, input: FormInput): Promise<TargetInput> {
  const errors = new FieldErrors();
  const userId = errors.id(input, 'user_id', 'User');
  if (!userId && !errors.errors.user_id) errors.add('user_id', 'User is required');
  else if (userId && !(await host.userById(userId))) errors.add('user_id', 'User is not valid');
  const kind = text(input, 'period_kind');
  if (!(PERIOD_KINDS as readonly string[]).includes(kind)) errors.add('period_kind', 'Period must be month, quarter or year');
  const date = errors.date(input, 'period_start', 'Period');
  if (!date && !errors.errors.period_start) errors.add('period_start', 'Period is required');
  const measure = text(input, 'measure');
  if (!(TARGET_MEASURES as readonly string[]).includes(measure)) errors.add('measure', 'Measure must be won amount, number of won deals or activities');
  const currency = String((await loadSettings(host.knex)).reporting_currency || 'EUR');
  const raw = text(input, 'target');
  let value = 0;
  if (!raw) errors.add('target', 'Target is required');
  else if (measure === 'won_amount') {
    const parsed = parseAmount(raw, currency);
    if (!parsed.ok) errors.add('target', `Target ${parsed.error}`);
    else if (parsed.minor < 0) errors.add('target', 'Target must not be negative');
    else value = parsed.minor;
  } else if (!/^\d{1,9}$/.test(raw)) errors.add('target', 'Target must be a whole number');
  else value = Number(raw);
  if (errors.any) throw invalid('The target was not saved: fix the fields marked below.', errors.errors);
  return {
    user_id: userId!, period_kind: kind as TargetPeriodKind, period_start: periodStartOf(kind as TargetPeriodKind, date!), measure: measure as TargetMeasure,
    target_value: value, currency: measure === 'won_amount' ? currency : null,
  };
}

/** Sets a target (a second save for the same user, period and measure replaces the value), journaled. */
export async function saveTarget(host: HostApi, user: HostUser, input: FormInput): Promise<UserTarget> {
  const data = await readTarget(host, input);
  return host.knex.transaction(async (trx) => {
    const existing = await trx('crm_user_targets').where({ user_id: data.user_id, period_kind: data.period_kind, period_start: data.period_start, measure: data.measure }).first();
    let id: number;
    if (existing) {
      id = Number(existing.id);
      await trx('crm_user_targets').where({ id }).update({ target_value: data.target_value, currency: data.currency, lock_version: Number(existing.lock_version) + 1, updated_at: new Date().toISOString() });
    } else {
      const [row] = await trx('crm_user_targets').insert({ ...data, lock_version: 0, created_at: new Date().toISOString(), updated_at: new Date().toISOString() }).returning('id');
      id = Number(row.id ?? row);
    }
    const label = `${MEASURE_LABELS[data.measure]} ${periodLabel(data.period_kind, data.period_start)}`;
    await journal(trx, {
      type: TARGET_JOURNAL, id: data.user_id, userId: user.id, action: existing ? 'update' : 'create',
      changes: [{ field: label, old: existing ? targetText(toTarget(existing)) : null, new: targetText(data) }],
    });
    return toTarget({ id, ...data, lock_version: existing ? Number(existing.lock_version) + 1 : 0 });
  });
}

export async function deleteTarget(knex: Knex, user: HostUser, id: number): Promise<UserTarget> {
  if (!Number.isInteger(id) || id <= 0) throw notFound('Target');
  return knex.transaction(async (trx) => {
    const row = await trx('crm_user_targets').where({ id }).first();
    if (!row) throw notFound('Target');
    const t = toTarget(row);
    await trx('crm_user_targets').where({ id }).delete();
    await journal(trx, {
      type: TARGET_JOURNAL, id: t.user_id, userId: user.id, action: 'delete',
      changes: [{ field: `${MEASURE_LABELS[t.measure]} ${periodLabel(t.period_kind, t.period_start)}`, old: targetText(t), new: null }],
    });
    return t;
  });
}

export async function userTypes(knex: Knex): Promise<Map<number, UserType>> {
  return new Map((await knex('crm_user_types').select('user_id', 'type')).map((r) => [Number(r.user_id), r.type as UserType]));
}

/** Sets (or with an empty type, clears) a user's type. */
export async function setUserType(host: HostApi, user: HostUser, input: FormInput): Promise<{ userId: number; type: UserType | null }> {
  const errors = new FieldErrors();
  const userId = errors.id(input, 'user_id', 'User');
  if (!userId && !errors.errors.user_id) errors.add('user_id', 'User is required');
  else if (userId && !(await host.userById(userId))) errors.add('user_id', 'User is not valid');
  const type = text(input, 'type');
  if (type && !(USER_TYPES as string[]).includes(type)) errors.add('type', 'Type must be sales rep or sales director');
  if (errors.any) throw invalid('The user type was not saved: fix the fields marked below.', errors.errors);
  return host.knex.transaction(async (trx) => {
    const before = await trx('crm_user_types').where({ user_id: userId }).first();
    if (type) await trx('crm_user_types').insert({ user_id: userId, type }).onConflict('user_id').merge({ type });
    else await trx('crm_user_types').where({ user_id: userId }).delete();
    await journal(trx, { type: TARGET_JOURNAL, id: userId!, userId: user.id, action: 'update', changes: [{ field: 'user type', old: before?.type ?? null, new: type || null }] });
    return { userId: userId!, type: (type || null) as UserType | null };
  });
}
