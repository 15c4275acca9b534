import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import { applyAccountScope, type Account } from '../models/account';
import { applyOpportunityScope, type Opportunity } from '../models/opportunity';
import { applyPartnerScope, type Partner } from '../models/partner';
import { accountScopeOf, canEditAccount, dateText, findVisibleAccount, requireVisibleAccount, visibleAccountNames } from './accounts';
import { fieldRulesFor, hiddenFields, hiddenSql, opportunityLabel, viewerFieldRules, type ViewerFieldRules } from './field-rules';
import { isPg } from '../../migrations/dialect';
import { addDays, todayUtc } from './dates';
import { FieldErrors, flag, isIsoDate, text, type FormInput, validId } from './form';
import { journal } from './journal';
import { canEditOpportunity, requireVisibleOpportunity } from './opportunities';
import { cappedCount, type PageMeta } from './pagination';
import { canEditPartner, requireVisiblePartner } from './partners';
import { recordScope } from './visibility';
import { listNumbers, rowsAtMost, scopeKey, versionKey, type VersionedTable } from './data-version';
import { seenReference } from './seen';

/**
 * O5 sales activities: calls, meetings, emails and notes on an opportunity, an account or a partner (leads
 * join when they exist). An activity is visible where its record is; a personal one only to its author and
 * its responsible person. Changes are journaled on the record, under the field "activity".
 */
export const ACTIVITY_RECORD_TYPES = ['opportunity', 'account', 'partner'] as const;
export type ActivityRecordType = (typeof ACTIVITY_RECORD_TYPES)[number];

/** URL segment, permissions and labels per record type. */
export const RECORD_KINDS: Record<ActivityRecordType, { segment: string; view: string; edit: string; label: string }> = {
  opportunity: { segment: 'opportunities', view: 'view_opportunities', edit: 'edit_opportunities', label: 'Opportunity' },
  account: { segment: 'accounts', view: 'view_accounts', edit: 'edit_accounts', label: 'Account' },
  partner: { segment: 'partners', view: 'view_partners', edit: 'edit_partners', label: 'Partner' },
};

/** The record an activity hangs on, as far as activities need to know it. */
export interface ActivityRecord {
  type: ActivityRecordType;
  id: number;
  /** As this user may read it: an opportunity whose name the field rules hide is `Opportunity #<id>`. */
  name: string;
  /** The account the activity concerns (an opportunity's account, the account itself): stored with its activities. */
  accountId: number | null;
  /**
   * The account's name as this user may read it, as on the record's page: null where they may not see the account
   * or the field rules of the opportunity's status hide its account (S5).
   */
  accountName: string | null;
  /**
   * The field rules of the opportunity's status hide its account from this user (S5): its activities are shown
   * without theirs (`account_id` null), as the activity lists show them (seenAccountSql).
   */
  accountHidden: boolean;
  projectId: number | null;
  canEdit: boolean;
  /** The record's page, and where its activities live (`…/activities`). */
  url: string;
  base: string;
  /** The element id of the record's activity list: the target of every in-place change. */
  listId: string;
}

export interface ActivityData {
  category_id: number;
  subject: string;
  notes: string;
  occurred_at: string;
  duration_minutes: number | null;
  next_contact_on: string | null;
  responsible_id: number | null;
  is_personal: boolean;
}

export interface Activity extends ActivityData {
  id: number;
  record_type: ActivityRecordType;
  record_id: number;
  /** As this user may read it (seenOn, listDue): null where the rules hide it or they may not see the account. */
  account_id: number | null;
  /** The activity has an account this user may not see (the lists say "an account you cannot see"), given without its id. */
  account_hidden: boolean;
  project_id: number | null;
  category_name: string;
  author_id: number | null;
  lock_version: number;
}

export const ACTIVITY_LABELS: Record<keyof ActivityData, string> = {
  category_id: 'Category', subject: 'Subject', notes: 'Notes', occurred_at: 'Date', duration_minutes: 'Duration',
  next_contact_on: 'Next contact', responsible_id: 'Responsible', is_personal: 'Personal',
};

export function recordUrl(type: ActivityRecordType, id: number): string {
  return type === 'account' ? `/crm/accounts/${id}?tab=activities` : `/crm/${RECORD_KINDS[type].segment}/${id}`;
}

function recordBase(type: ActivityRecordType, id: number) {
  return { type, id, base: `/crm/${RECORD_KINDS[type].segment}/${id}/activities`, url: recordUrl(type, id), listId: `activities-${type}-${id}` };
}

/** An opportunity already loaded and checked (the opportunity page) as an activity record. */
export async function opportunityRecord(ctx: CrmContext, opp: Opportunity, canEdit: boolean): Promise<ActivityRecord> {
  const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const accountHidden = hiddenFields(rules).has('account_id');
  const account = opp.account_id && !accountHidden ? await findVisibleAccount(ctx, opp.account_id) : null;
  return {
    ...recordBase('opportunity', opp.id), name: opportunityLabel(opp, rules), accountId: opp.account_id, accountName: account?.name ?? null, accountHidden,
    projectId: opp.project_id, canEdit,
  };
}

export function accountRecord(account: Account, canEdit: boolean): ActivityRecord {
  return { ...recordBase('account', account.id), name: account.name, accountId: account.id, accountName: account.name, accountHidden: false, projectId: null, canEdit };
}

/** The record if this user may see it (404 otherwise), with whether they may change its activities. */
export async function requireActivityRecord(ctx: CrmContext, type: ActivityRecordType, id: number): Promise<ActivityRecord> {
  if (type === 'opportunity') {
    const opp = await requireVisibleOpportunity(ctx, id);
    return opportunityRecord(ctx, opp, await canEditOpportunity(ctx, opp));
  }
  if (type === 'account') {
    const account = await requireVisibleAccount(ctx, id);
    return accountRecord(account, await canEditAccount(ctx, account));
  }
  const partner = await requireVisiblePartner(ctx, id);
  return partnerRecord(partner, await canEditPartner(ctx, partner));
}

export function partnerRecord(partner: Partner, canEdit: boolean): ActivityRecord {
  return { ...recordBase('partner', partner.id), name: partner.name, accountId: null, accountName: null, accountHidden: false, projectId: partner.project_id, canEdit };
}

export async function activityCategories(knex: Knex, includeId: number | null = null): Promise<{ id: number; name: string }[]> {
  const rows = await knex('crm_activity_categories').where((b) => { b.where('active', true); if (includeId) b.orWhere('id', includeId); })
    .orderBy(['position', 'id']).select('id', 'name');
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name) }));
}

function toActivity(r: Record<string, unknown>): Activity {
  return {
    id: Number(r.id), record_type: r.record_type as ActivityRecordType, record_id: Number(r.record_id),
    account_id: r.account_id === null ? null : Number(r.account_id), account_hidden: false, project_id: r.project_id === null ? null : Number(r.project_id),
    category_id: Number(r.category_id), category_name: String(r.category_name ?? ''), subject: String(r.subject), notes: String(r.notes ?? ''),
    occurred_at: timestampText(r.occurred_at), duration_minutes: r.duration_minutes === null ? null : Number(r.duration_minutes),
    next_contact_on: dateText(r.next_contact_on), responsible_id: r.responsible_id === null ? null : Number(r.responsible_id),
    is_personal: Boolean(r.is_personal), author_id: r.author_id === null ? null : Number(r.author_id), lock_version: Number(r.lock_version),
  };
}

/**
 * An activity of `record` as this user may read it: without its account where the rules hide the record's (S5); with
 * its id only where it is the record's account and they may see it (as the record's page names it), else
 * `account_hidden`, as the activity lists give it (listDue).
 */
function seenOn(record: ActivityRecord, activity: Activity): Activity {
  if (record.accountHidden) return { ...activity, account_id: null, account_hidden: false };
  const seen = activity.account_id !== null && activity.account_id === record.accountId && record.accountName !== null;
  return { ...activity, ...seenReference('account', activity.account_id, seen) };
}

/** Timestamps as ISO text in UTC, whether the driver returns a Date (PostgreSQL) or the stored text (SQLite). */
function timestampText(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  const s = String(v ?? '');
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(' ', 'T')}Z`);
  return Number.isNaN(d.getTime()) ? s : d.toISOString();
}

/** The personal rule as SQL on `crm_sales_activities sa`: organisation-wide, or mine as author or responsible. */
function applyPersonalRule(q: Knex.QueryBuilder, userId: number): void {
  q.where((b) => b.where('sa.is_personal', false).orWhere('sa.author_id', userId).orWhere('sa.responsible_id', userId));
}

const columns = ['sa.*', 'c.name as category_name'];

export async function listActivities(ctx: CrmContext, record: ActivityRecord, page: number, perPage: number): Promise<{ rows: Activity[]; meta: PageMeta }> {
  const base = ctx.host.knex('crm_sales_activities as sa').where({ 'sa.record_type': record.type, 'sa.record_id': record.id });
  applyPersonalRule(base, ctx.user.id);
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const rows = await base.clone().join('crm_activity_categories as c', 'c.id', 'sa.category_id').select(columns)
    .orderBy([{ column: 'sa.occurred_at', order: 'desc' }, { column: 'sa.id', order: 'desc' }]).limit(perPage).offset((current - 1) * perPage);
  return { rows: rows.map((r) => seenOn(record, toActivity(r))), meta: { page: current, pages, total: count, per_page: perPage } };
}

/** One activity of this record, visible to this user under the personal rule, else 404. */
export async function requireActivity(ctx: CrmContext, record: ActivityRecord, activityId: number): Promise<Activity> {
  if (!validId(activityId)) throw notFound('Activity');
  const q = ctx.host.knex('crm_sales_activities as sa').join('crm_activity_categories as c', 'c.id', 'sa.category_id')
    .where({ 'sa.id': activityId, 'sa.record_type': record.type, 'sa.record_id': record.id }).select(columns);
  applyPersonalRule(q, ctx.user.id);
  const row = await q.first();
  if (!row) throw notFound('Activity');
  return seenOn(record, toActivity(row));
}

/** An activity by id alone (the calendar link): its record must be visible, and the personal rule holds. */
export async function requireVisibleActivity(ctx: CrmContext, activityId: number): Promise<{ activity: Activity; record: ActivityRecord }> {
  if (!validId(activityId)) throw notFound('Activity');
  const row = await ctx.host.knex('crm_sales_activities').where({ id: activityId }).first('record_type', 'record_id');
  if (!row || !(ACTIVITY_RECORD_TYPES as readonly string[]).includes(String(row.record_type))) throw notFound('Activity');
  let record: ActivityRecord;
  try {
    record = await requireActivityRecord(ctx, row.record_type as ActivityRecordType, Number(row.record_id));
  } catch {
    throw notFound('Activity');
  }
  return { activity: await requireActivity(ctx, record, activityId), record };
}

export function canChangeActivity(ctx: CrmContext, record: ActivityRecord, activity: Activity): boolean {
  return record.canEdit && (!activity.is_personal || activity.author_id === ctx.user.id);
}

/**
 * A date-time from a form (`datetime-local` gives 2026-11-23T10:00) or an API client (ISO 8601 with an offset).
 * Without an offset it is read as UTC, the server's time zone. Returns null when it is not a real date-time.
 */
export function parseDateTime(value: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(value);
  if (!m) return null;
  if (!isIsoDate(`${m[1]}-${m[2]}-${m[3]}`) || Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59) return null;
  const d = new Date(m[7] ? value.replace(' ', 'T') : `${value.replace(' ', 'T')}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Reads and checks the activity form; every problem is reported at once (422, fields named). */
export async function readActivityInput(ctx: CrmContext, input: FormInput, existing: Activity | null = null): Promise<ActivityData> {
  const errors = new FieldErrors();
  const categoryId = errors.id(input, 'category_id', 'Category');
  if (!text(input, 'category_id')) errors.add('category_id', 'Category is required');
  else if (categoryId !== null && !(await activityCategories(ctx.host.knex, existing?.category_id ?? null)).some((c) => c.id === categoryId)) {
    errors.add('category_id', 'Choose a category from the list');
  }
  const subject = errors.text(input, 'subject', 'Subject', { max: 200, required: true });
  const notes = errors.text(input, 'notes', 'Notes', { max: 20_000 });
  const occurredRaw = text(input, 'occurred_at');
  let occurredAt = existing && !Object.prototype.hasOwnProperty.call(input, 'occurred_at') ? new Date(existing.occurred_at) : new Date();
  if (occurredRaw) {
    const parsed = parseDateTime(occurredRaw);
    if (parsed) occurredAt = parsed;
    else errors.add('occurred_at', 'Date must be a date and time (YYYY-MM-DD HH:MM)');
  }
  const durationRaw = text(input, 'duration_minutes');
  let duration: number | null = null;
  if (durationRaw) {
    if (/^\d{1,4}$/.test(durationRaw) && Number(durationRaw) <= 1440) duration = Number(durationRaw);
    else errors.add('duration_minutes', 'Duration must be whole minutes from 0 to 1440');
  }
  const nextContact = errors.date(input, 'next_contact_on', 'Next contact');
  const responsibleId = errors.id(input, 'responsible_id', 'Responsible');
  if (responsibleId !== null && !(await ctx.host.users()).some((u) => u.id === responsibleId)) errors.add('responsible_id', 'Choose a responsible person from the list');
  if (errors.any) throw invalid('The activity was not saved: fix the fields marked below.', errors.errors);
  return {
    category_id: categoryId!, subject, notes, occurred_at: occurredAt.toISOString(), duration_minutes: duration,
    next_contact_on: nextContact, responsible_id: responsibleId, is_personal: flag(input, 'is_personal'),
  };
}

/** What the record's history says about an activity: a personal one never shows its subject to others. */
async function summary(knex: Knex, a: { category_id: number; subject: string; is_personal: boolean; next_contact_on: string | null }): Promise<string> {
  if (a.is_personal) return 'Personal activity';
  const category = await knex('crm_activity_categories').where({ id: a.category_id }).first('name');
  return `${category?.name ?? 'Activity'}: ${a.subject}${a.next_contact_on ? ` (next contact ${a.next_contact_on})` : ''}`;
}

async function loadActivity(knex: Knex, id: number): Promise<Activity> {
  return toActivity(await knex('crm_sales_activities as sa').join('crm_activity_categories as c', 'c.id', 'sa.category_id').where('sa.id', id).first(columns));
}

/** 403 unless the user may add activities to the record; routes call it before reading the form, so a refused user gets no field errors. */
export function requireAddable(record: ActivityRecord): void {
  if (!record.canEdit) throw forbidden(`You may see this ${record.type} but not add activities to it.`);
}

export async function createActivity(ctx: CrmContext, record: ActivityRecord, data: ActivityData): Promise<Activity> {
  requireAddable(record);
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await trx('crm_sales_activities').insert({
      ...data, record_type: record.type, record_id: record.id, account_id: record.accountId, project_id: record.projectId, author_id: ctx.user.id,
    }).returning('id');
    const id = Number(row.id ?? row);
    await journal(trx, { type: record.type, id: record.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'activity', old: null, new: await summary(trx, data) }] });
    return seenOn(record, await loadActivity(trx, id));
  });
}

/** 403 unless the user may change this activity (see canChangeActivity); checked before the form is read too. */
export function requireChangeable(ctx: CrmContext, record: ActivityRecord, activity: Activity): void {
  if (!record.canEdit) throw forbidden(`You may see this ${record.type} but not change its activities.`);
  if (activity.is_personal && activity.author_id !== ctx.user.id) throw forbidden('Only its author may change a personal activity.');
}

export async function updateActivity(ctx: CrmContext, record: ActivityRecord, activity: Activity, data: ActivityData, lockVersion: number): Promise<Activity> {
  requireChangeable(ctx, record, activity);
  return ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_sales_activities').where({ id: activity.id, lock_version: lockVersion })
      .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This activity');
    const before = activity as unknown as Record<string, unknown>;
    const changed = (Object.keys(data) as (keyof ActivityData)[]).filter((k) => String(before[k] ?? '') !== String(data[k] ?? ''));
    const [oldText, newText] = [await summary(trx, activity), await summary(trx, data)];
    await journal(trx, {
      type: record.type, id: record.id, userId: ctx.user.id, action: 'update',
      changes: oldText === newText ? [] : [{ field: 'activity', old: oldText, new: newText }],
      notes: changed.length ? `Activity changed: ${changed.map((k) => ACTIVITY_LABELS[k].toLowerCase()).join(', ')}` : undefined,
    });
    return seenOn(record, await loadActivity(trx, activity.id));
  });
}

export async function deleteActivity(ctx: CrmContext, record: ActivityRecord, activity: Activity, lockVersion: number | null): Promise<void> {
  requireChangeable(ctx, record, activity);
  await ctx.host.knex.transaction(async (trx) => {
    const q = trx('crm_sales_activities').where({ id: activity.id });
    if (lockVersion !== null) q.where({ lock_version: lockVersion });
    if ((await q.delete()) === 0) throw staleRecord('This activity');
    await journal(trx, { type: record.type, id: record.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'activity', old: await summary(trx, activity), new: null }] });
  });
}

// ---- To-do (O5): follow-ups by next contact date, only where the user may see the record ----

/**
 * Every activity this request may show, as SQL on `crm_sales_activities sa`: its opportunity, account or
 * partner is visible under the request's scope (project pages: that project and its included subprojects),
 * and the personal rule holds. Wrapped in an object: a knex builder is thenable.
 */
export async function visibleActivities(ctx: CrmContext, options: { periodScan?: boolean; followUps?: boolean } = {}): Promise<{ q: Knex.QueryBuilder; scopeKey: string }> {
  const knex = ctx.host.knex;
  // For counts over a period (the dashboards), `+record_id` keeps SQLite from looking up every visible record's
  // activities one by one (155,000 index seeks for an admin): it reads the period from the covering index of
  // migration 023 and tests each row against the visible ids, gathered once. 1.2 s → 0.3 s at 500,000 activities.
  const recordId = (options.periodScan ? knex.raw('+sa.record_id') : 'sa.record_id') as string;
  // Only the follow-ups (the to-do page and its lists): said in each record kind's branch, where SQLite plans the
  // branch's own index search, so each reads the follow-up index of migration 037 (its condition is the index's).
  const kind = (w: Knex.QueryBuilder, type: ActivityRecordType) => {
    w.where('sa.record_type', type);
    if (options.followUps) w.whereNotNull('sa.next_contact_on');
    return w;
  };
  const [opportunityScope, accountScope, partnerScope] = await Promise.all([
    recordScope(ctx, 'opportunities', 'view_opportunities'), recordScope(ctx, 'accounts', 'view_accounts'), recordScope(ctx, 'partners', 'view_partners'),
  ]);
  const opportunities = knex('crm_opportunities as o').select('o.id');
  applyOpportunityScope(opportunities, opportunityScope);
  const accounts = knex('crm_accounts as a').select('a.id');
  applyAccountScope(accounts, accountScope, 'list');
  const partners = knex('crm_partners as p').select('p.id');
  applyPartnerScope(partners, partnerScope);
  const q = knex('crm_sales_activities as sa');
  q.where((b) => b
    .where((w) => kind(w, 'opportunity').whereIn(recordId, opportunities))
    .orWhere((w) => kind(w, 'account').whereIn(recordId, accounts))
    .orWhere((w) => kind(w, 'partner').whereIn(recordId, partners)));
  applyPersonalRule(q, ctx.user.id);
  return { q, scopeKey: JSON.stringify([ctx.user.id, scopeKey(opportunityScope), scopeKey(accountScope), scopeKey(partnerScope)]) };
}

export const DUE_FILTERS = ['today', 'overdue', 'unassigned', 'upcoming'] as const;
export type DueFilter = (typeof DUE_FILTERS)[number];

export interface DueQuery {
  due: DueFilter | null;
  /** One next-contact date, from the upcoming groups. */
  on: string | null;
  /**
   * An account id; 'none' for the activities of no account; 'hidden' for those of the accounts this user may not
   * see, all together (the to-do page's group of them: an id would tell them apart).
   */
  account: number | 'none' | 'hidden' | null;
  /** Occurred on or after / on or before these days (the dashboards' periods link here). */
  from?: string | null;
  to?: string | null;
  category?: number | null;
  /** The person responsible, or the author when nobody is: whom the dashboards count an activity for. */
  person?: number | null;
  project?: number | null;
}

export function parseDueQuery(query: FormInput): DueQuery {
  const errors = new FieldErrors();
  const due = text(query, 'due');
  if (due && !(DUE_FILTERS as readonly string[]).includes(due)) errors.add('due', 'Due must be today, overdue, unassigned or upcoming');
  const on = errors.date(query, 'on', 'Next contact');
  const accountRaw = text(query, 'account');
  let account: DueQuery['account'] = null;
  if (accountRaw === 'none' || accountRaw === 'hidden') account = accountRaw;
  else if (accountRaw) account = errors.id(query, 'account', 'Account');
  const from = errors.date(query, 'from', 'From');
  const to = errors.date(query, 'to', 'To');
  if (from && to && to < from) errors.add('to', 'To must not be before From');
  const optionalId = (key: string, label: string) => (text(query, key) ? errors.id(query, key, label) : null);
  const category = optionalId('category', 'Category');
  const person = optionalId('person', 'Person');
  const project = optionalId('project', 'Project');
  if (errors.any) throw invalid('The list was not filtered: fix the fields marked below.', errors.errors);
  return { due: (due || null) as DueFilter | null, on, account, from, to, category, person, project };
}

export function dueParams(d: DueQuery): Record<string, string> {
  const out: Record<string, string> = {};
  if (d.due) out.due = d.due;
  if (d.on) out.on = d.on;
  if (d.account !== null) out.account = String(d.account);
  for (const key of ['from', 'to', 'category', 'person', 'project'] as const) {
    const value = d[key];
    if (value !== null && value !== undefined) out[key] = String(value);
  }
  return out;
}

function applyDue(q: Knex.QueryBuilder, due: DueFilter | null, today: string): void {
  if (due === 'today') q.where('sa.next_contact_on', today);
  else if (due === 'overdue') q.where('sa.next_contact_on', '<', today);
  else if (due === 'upcoming') q.where('sa.next_contact_on', '>=', today);
  // "No responsible person": open follow-ups (they have a next contact date) that nobody is down to make.
  else if (due === 'unassigned') q.whereNotNull('sa.next_contact_on').whereNull('sa.responsible_id');
}

/**
 * An activity's account as this user may read it, in SQL on `crm_sales_activities sa`: none where the field rules
 * hide the account of the activity's opportunity (S5), as that opportunity's page does; the plain column where
 * they hide it nowhere. The to-do groups and the list's account filter go by it, so they agree with what is shown.
 */
function seenAccountSql(knex: Knex, rules: ViewerFieldRules): Knex.Raw {
  const hidden = hiddenSql(knex, rules, 'account_id');
  if (!hidden) return knex.raw('sa.account_id');
  return knex.raw("case when sa.record_type = 'opportunity' and exists (select 1 from crm_opportunities o where o.id = sa.record_id and ?) then null else sa.account_id end", [hidden]);
}

/**
 * The ids of the accounts this user may name (from any page, as visibleAccountNames and findVisibleAccount), as a
 * query on `crm_accounts a`. Wrapped in an object: a knex builder is thenable.
 */
async function nameableAccountIds(ctx: CrmContext): Promise<{ q: Knex.QueryBuilder }> {
  const q = ctx.host.knex('crm_accounts as a').select('a.id');
  applyAccountScope(q, await accountScopeOf(ctx), 'list');
  return { q };
}

/**
 * An activity as a list shows it: `account_id` is the account as this user may read it (seenAccountSql), and only
 * if they may see that account; one they may not is `account_hidden`, without its id.
 */
export interface DueRow extends Activity {
  /** Null where the account is not shown, or the user may not see it. */
  account_name: string | null;
  /** As this user may read it (see ActivityRecord.name). */
  record_name: string | null;
}

/** Every table the activity list's count reads: a write to any of them forgets the kept counts. */
const ACTIVITY_LIST_TABLES: readonly VersionedTable[] = ['crm_sales_activities', 'crm_opportunities', 'crm_accounts', 'crm_account_projects', 'crm_partners'];
const PERIOD_INDEX = 'crm_sales_activities_period_index';
const FOLLOW_UP_ORDER = 'sa.next_contact_on asc, sa.id asc';

/**
 * A page of the visible activities under a to-do filter: follow-ups by next contact date, else newest first.
 * At 500,000 activities a rep's list counted the ~19,000 they may see on every reading (50–90 ms): the count now
 * stops at COUNT_CAP and is kept per viewer, filters and table versions (as the account list's). Newest first,
 * SQLite fetched everything the rep may see and sorted it (84 ms); see `walksNewestFirst`.
 */
export async function listDue(ctx: CrmContext, d: DueQuery, page: number, perPage: number, today = todayUtc()): Promise<{ rows: DueRow[]; meta: PageMeta }> {
  const knex = ctx.host.knex;
  const versions = await versionKey(knex, ACTIVITY_LIST_TABLES);
  const followUps = Boolean(d.due || d.on);
  const [{ q: base, scopeKey: key }, rules] = await Promise.all([visibleActivities(ctx, { followUps }), viewerFieldRules(ctx)]);
  const seenAccount = seenAccountSql(knex, rules);
  applyDue(base, d.due, today);
  if (d.on) base.where('sa.next_contact_on', d.on);
  if (d.account === 'none') base.whereRaw('? is null', [seenAccount]);
  else if (d.account === 'hidden') base.whereRaw('? is not null', [seenAccount]).whereRaw('? not in ?', [seenAccount, (await nameableAccountIds(ctx)).q]);
  else if (d.account !== null) base.whereRaw('? = ?', [seenAccount, d.account]);
  if (d.from) base.where('sa.occurred_at', '>=', `${d.from}T00:00:00.000Z`);
  if (d.to) base.where('sa.occurred_at', '<', `${addDays(d.to, 1)}T00:00:00.000Z`);
  if (d.category) base.where('sa.category_id', d.category);
  if (d.person) base.whereRaw('coalesce(sa.responsible_id, sa.author_id) = ?', [d.person]);
  if (d.project) base.where('sa.project_id', d.project);
  // An account filter goes by the field rules as well (seenAccountSql): counted afresh, never kept.
  const counted = () => cappedCount(knex, base);
  const { total: count, capped } = d.account === null
    ? await listNumbers(knex, 'activity-list-counts', JSON.stringify([versions, key, dueParams(d), today]), counted)
    : await counted();
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const skipped = (current - 1) * perPage;
  const walk = !followUps && await walksNewestFirst(knex, { versions, count, skipped, perPage });
  // Follow-ups: the page's ids first, sorted and cut from the follow-up index alone (migration 037), then only their
  // rows read; fetching every match's row to sort them cost a rep 35 ms at 500,000 activities.
  const q = followUps
    ? knex('crm_sales_activities as sa').whereIn('sa.id', base.clone().select('sa.id').orderByRaw(FOLLOW_UP_ORDER).limit(perPage).offset(skipped))
    : base.clone().limit(perPage).offset(skipped);
  // The same conditions, read from the period index (a knex builder's `from` replaces its table).
  if (walk) q.from(knex.raw(`crm_sales_activities as sa indexed by ${PERIOD_INDEX}`));
  q.join('crm_activity_categories as c', 'c.id', 'sa.category_id')
    .leftJoin('crm_opportunities as ro', (j) => j.on('ro.id', '=', 'sa.record_id').andOnVal('sa.record_type', '=', 'opportunity'))
    .leftJoin('crm_accounts as ra', (j) => j.on('ra.id', '=', 'sa.record_id').andOnVal('sa.record_type', '=', 'account'))
    .leftJoin('crm_partners as rp', (j) => j.on('rp.id', '=', 'sa.record_id').andOnVal('sa.record_type', '=', 'partner'))
    .select([...columns, knex.raw('? as seen_account_id', [seenAccount]), knex.raw('coalesce(ro.name, ra.name, rp.name) as record_name'),
      'ro.project_id as opportunity_project_id', 'ro.status_id as opportunity_status_id']);
  if (followUps) q.orderByRaw(FOLLOW_UP_ORDER);
  else q.orderBy([{ column: 'sa.occurred_at', order: 'desc' }, { column: 'sa.id', order: 'desc' }]);
  const rows: Record<string, unknown>[] = await q;
  const accountOf = (r: Record<string, unknown>): number | null => (r.seen_account_id === null ? null : Number(r.seen_account_id));
  const accountNames = await visibleAccountNames(ctx, rows.map(accountOf).filter((id): id is number => id !== null));
  const recordName = (r: Record<string, unknown>): string | null => {
    const name = (r.record_name as string | null) ?? null;
    if (r.record_type !== 'opportunity' || name === null) return name;
    return opportunityLabel({ id: Number(r.record_id), name }, rules.at(Number(r.opportunity_project_id), Number(r.opportunity_status_id)));
  };
  return {
    rows: rows.map((r) => {
      const seenId = accountOf(r);
      const name = seenId === null ? null : accountNames.get(seenId) ?? null;
      return { ...toActivity(r), ...seenReference('account', seenId, name !== null), account_name: name, record_name: recordName(r) };
    }),
    meta: { page: current, pages, total: count, per_page: perPage, ...(capped ? { capped } : {}) },
  };
}

/**
 * SQLite: whether the newest-first page walks the period index (migration 023) from the newest activity, testing
 * each entry's record and personal rule from the index alone and stopping once the page is full, rather than
 * fetching every activity the viewer may see through the record index and sorting them, which SQLite's planner
 * always does. A walk passes about `all × (skipped + perPage) / matches` entries, cheap ones; fetching reads each
 * match's row and sorts: walk while that is under four times the matches (a rep's first page at 500,000: 84 →
 * under 2 ms). PostgreSQL's planner walks by itself.
 */
async function walksNewestFirst(knex: Knex, list: { versions: string; count: number; skipped: number; perPage: number }): Promise<boolean> {
  const { versions, count, skipped, perPage } = list;
  if (isPg(knex) || count === 0) return false;
  const all = await rowsAtMost(knex, 'crm_sales_activities', versions);
  return all * (skipped + perPage) <= 4 * count * count;
}

export interface AccountCounts {
  /** The account as this user may read it (seenAccountSql), if they may see it; null for no account and for the hidden group. */
  account_id: number | null;
  account_name: string | null;
  /** The group of every account this user may not see (listed with `account=hidden`). */
  account_hidden: boolean;
  today: number;
  overdue: number;
  unassigned: number;
}

export interface UpcomingGroup {
  next_contact_on: string;
  /** As in AccountCounts. */
  account_id: number | null;
  account_name: string | null;
  account_hidden: boolean;
  count: number;
}

/**
 * The to-do page, aggregated in SQL: totals for today, overdue and "no responsible person"; the same three
 * per account; and the upcoming follow-ups grouped by next contact date and account (a page of groups). The
 * groups go by the account as this user may read it (seenAccountSql), named and sorted by name where they may see
 * it; every account they may not see is one group after those (`account_hidden`: by id, the groups would tell those
 * accounts apart and which activities are whose), then the activities of no account. Each group's link lists what
 * it counts (listDue: the account's id, `hidden`, `none`).
 */
export async function todo(ctx: CrmContext, page: number, perPage: number, today = todayUtc()) {
  const knex = ctx.host.knex;
  const [{ q: base }, rules] = await Promise.all([visibleActivities(ctx, { followUps: true }), viewerFieldRules(ctx)]);
  const seenAccount = seenAccountSql(knex, rules);
  const nameable = (await nameableAccountIds(ctx)).q;
  // Each sum reads the visible follow-ups once, grouped by the account as this user may read it (seenAccountSql; the
  // expression and its bound ids written once, in `s`, so PostgreSQL sees the same columns in the select and the
  // group by); then each group is named where the user may see the account (as visibleAccountNames names it, from
  // any page), else none, with `account_hidden` where there is one, and grouped again so those are one group.
  // Sorted by the names the user may read, never by a hidden name.
  const grouped = (where: (q: Knex.QueryBuilder) => void, keys: string[], sums: (Knex.Raw | string)[]) => {
    const followUps = base.clone();
    where(followUps);
    const key = (table: string) => keys.map((k) => `${table}.${k}`);
    const perAccount = knex.from(followUps.select('sa.next_contact_on', 'sa.responsible_id', knex.raw('? as seen_id', [seenAccount])).as('s'))
      .select([...key('s'), 's.seen_id', ...sums]).groupBy([...key('s'), 's.seen_id']);
    // Whether the user may name a group's account is decided once per group, against the nameable ids gathered once.
    // Joined to those accounts as a subquery instead, PostgreSQL misjudged the groups (1,600 for 12,000) and compared
    // each with every nameable account (a director's to-do: 6 s). Grouped once more (each group is one row) so that
    // PostgreSQL keeps the test in this subquery rather than copying it into each column that reads it.
    const named = knex.from(perAccount.as('g')).leftJoin('crm_accounts as ac', 'ac.id', 'g.seen_id')
      .select([...key('g'), 'g.seen_id', knex.raw('max(ac.name) as name'), knex.raw('max(case when ac.id in ? then 1 else 0 end) as nameable', [nameable]),
        ...sums.map((_, i) => knex.raw(`sum(g.sum${i}) as sum${i}`))])
      .groupBy([...key('g'), 'g.seen_id']);
    return knex.from(named.as('n'))
      .select([...key('n'), knex.raw('case when n.nameable = 1 then n.seen_id end as account_id'), knex.raw('case when n.nameable = 1 then n.name end as account_name'),
        knex.raw('case when n.seen_id is not null and n.nameable = 0 then 1 else 0 end as account_hidden'), ...sums.map((_, i) => `n.sum${i}`)])
      .as('t');
  };
  const sum = (i: number, when: string, bindings: string[] = []) => knex.raw(`sum(case when ${when} then 1 else 0 end) as sum${i}`, bindings);
  const groupColumns = ['t.account_id', 't.account_name', 't.account_hidden'];
  const groupOrder = 't.account_name asc nulls last, t.account_id asc nulls last, t.account_hidden desc';
  // Today, overdue and "no responsible person" per account; the totals are the same sums over every group (a window,
  // taken before the limit), so the follow-ups are read once for both.
  const dueSums = [sum(0, 's.next_contact_on = ?', [today]), sum(1, 's.next_contact_on < ?', [today]), sum(2, 's.responsible_id is null')];
  const byAccountRows: Record<string, unknown>[] = await knex.from(grouped((q) => q.where((b) => b.where('sa.next_contact_on', '<=', today).orWhereNull('sa.responsible_id')), [], dueSums))
    .select(groupColumns)
    .select(knex.raw('sum(t.sum0) as today, sum(t.sum1) as overdue, sum(t.sum2) as unassigned'))
    .select(knex.raw('sum(sum(t.sum0)) over () as total_today, sum(sum(t.sum1)) over () as total_overdue, sum(sum(t.sum2)) over () as total_unassigned'))
    .groupBy(groupColumns).orderByRaw(groupOrder).limit(500);
  const first = byAccountRows[0];
  const totals = { today: Number(first?.total_today ?? 0), overdue: Number(first?.total_overdue ?? 0), unassigned: Number(first?.total_unassigned ?? 0) };
  // The upcoming follow-ups by date and account, a page of groups; the number of groups is a window on the same reading.
  const upcomingPage = (pageNumber: number): Promise<Record<string, unknown>[]> => knex.from(grouped((q) => q.where('sa.next_contact_on', '>=', today), ['next_contact_on'], [knex.raw('count(*) as sum0')]))
    .select(['t.next_contact_on', ...groupColumns]).select(knex.raw('sum(t.sum0) as count, count(*) over () as group_count'))
    .groupBy(['t.next_contact_on', ...groupColumns])
    .orderByRaw(`t.next_contact_on asc, ${groupOrder}`).limit(perPage).offset((pageNumber - 1) * perPage);
  let shown = page;
  let groupRows = await upcomingPage(shown);
  // Past the last page (the link was old, or groups went since): the last page, whose number the first page tells.
  if (!groupRows.length && shown > 1) {
    const lastPage = Math.ceil(Number((await upcomingPage(1))[0]?.group_count ?? 0) / perPage);
    shown = Math.max(1, lastPage);
    groupRows = lastPage ? await upcomingPage(shown) : [];
  }
  const count = Number(groupRows[0]?.group_count ?? 0);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(shown, pages);
  const accountOf = (r: Record<string, unknown>): number | null => (r.account_id === null ? null : Number(r.account_id));
  const nameOf = (r: Record<string, unknown>): string | null => (r.account_name === null || r.account_name === undefined ? null : String(r.account_name));
  const hiddenOf = (r: Record<string, unknown>): boolean => Number(r.account_hidden) === 1;
  const byAccount: AccountCounts[] = byAccountRows.map((r) => ({
    account_id: accountOf(r), account_name: nameOf(r), account_hidden: hiddenOf(r), today: Number(r.today ?? 0), overdue: Number(r.overdue ?? 0), unassigned: Number(r.unassigned ?? 0),
  }));
  const groups: UpcomingGroup[] = groupRows.map((r) => ({
    next_contact_on: dateText(r.next_contact_on)!, account_id: accountOf(r), account_name: nameOf(r), account_hidden: hiddenOf(r), count: Number(r.count),
  }));
  return { today, totals, byAccount, groups, meta: { page: current, pages, total: count, per_page: perPage } as PageMeta };
}
