import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostProject } from '../host';
import {
  FIELD_LABELS, Opportunity, OpportunityStatus, OPPORTUNITY_FIELDS, RULED_FIELDS, applyOpportunityScope, type OpportunityField,
} from '../models/opportunity';
import { accountNamesScopeKey, dateText, findVisibleAccount, globalContext, visibleAccountsAmong } from './accounts';
import { whereAnyContains } from './text-search';
import { findVisibleContact } from './contacts';
import {
  fieldRulesFor, hiddenSql, missingRequired, viewerFieldRules, visibleOpportunityFields, type FieldRules, type SeenOpportunity, type ViewerFieldRules,
} from './field-rules';
import { dayProblem, FieldErrors, text, type FormInput, positiveId, validId } from './form';
import { changedFields, journal } from './journal';
import { isCurrencyCode, parseAmount, percentOf } from './money';
import type { PageMeta } from './pagination';
import { findVisiblePartner, partnerNamesScopeKey, partnerOfPartnerUser, visiblePartnersAmong } from './partners';
import { loadSettings } from './settings';
import { assertNoContractsLeft, contractsFollowOpportunity } from './opportunity-contracts';
import { copiesFollowOpportunity, type OpportunityCopies } from './opportunity-copies';
import { isPg } from '../../migrations/dialect';
import { listKey, listNumbers, readUnderVersions, scopeKey, type VersionedTable } from './data-version';
import { recordScope, type RecordScope } from './visibility';
import { seenAmong, seenReference } from './seen';

export const OPPORTUNITY_SORTS = ['name', 'expected_close_on', 'amount_minor', 'created_at', 'updated_at'] as const;

export interface OpportunityFilters {
  q: string;
  statuses: number[];
  owner: number | null;
  account: number | null;
  partner: number | null;
  project: number | null;
  close_from: string | null;
  close_to: string | null;
  currency: string | null;
  amount_min: number | null;
  amount_max: number | null;
  sort: (typeof OPPORTUNITY_SORTS)[number];
  dir: 'asc' | 'desc';
}

/**
 * Filters from a query string. Malformed dates and amounts are errors (422), since silently dropping a
 * filter would show the user numbers they did not ask for.
 */
export function parseOpportunityFilters(query: FormInput): OpportunityFilters {
  const errors = new FieldErrors();
  const raw = query.status;
  // Several statuses arrive as repeated `status` parameters, or comma-separated from a saved filter.
  const statuses = (Array.isArray(raw) ? raw : raw === undefined || raw === '' ? [] : [raw]).flatMap((s) => String(s).split(','))
    .map((s) => positiveId(s.trim())).filter((s): s is number => s !== null);
  const closeFrom = errors.date(query, 'close_from', 'Close date from');
  const closeTo = errors.date(query, 'close_to', 'Close date to');
  if (closeFrom && closeTo && closeTo < closeFrom) errors.add('close_to', 'Close date to is before close date from');
  const currency = text(query, 'currency').toUpperCase();
  if (currency && !isCurrencyCode(currency)) errors.add('currency', 'Currency must be a code such as EUR');
  const amount = (key: string, label: string): number | null => {
    const value = text(query, key);
    if (!value) return null;
    const parsed = parseAmount(value, currency || 'EUR');
    if (!parsed.ok) {
      errors.add(key, `${label} ${parsed.error}`);
      return null;
    }
    return parsed.minor;
  };
  const amountMin = amount('amount_min', 'Amount from');
  const amountMax = amount('amount_max', 'Amount to');
  if (errors.any) throw invalid('The filter was not applied: fix the fields marked below.', errors.errors);
  const sort = text(query, 'sort');
  return {
    q: text(query, 'q').slice(0, 100),
    statuses: [...new Set(statuses)],
    owner: positiveId(text(query, 'owner')),
    account: positiveId(text(query, 'account')),
    partner: positiveId(text(query, 'partner')),
    project: positiveId(text(query, 'project')),
    close_from: closeFrom,
    close_to: closeTo,
    currency: currency || null,
    amount_min: amountMin,
    amount_max: amountMax,
    sort: (OPPORTUNITY_SORTS as readonly string[]).includes(sort) ? (sort as OpportunityFilters['sort']) : 'expected_close_on',
    dir: text(query, 'dir') === 'desc' ? 'desc' : 'asc',
  };
}

export function opportunityFilterParams(f: OpportunityFilters, currencyDigits: (c: string) => string = (c) => c): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (f.q) out.q = f.q;
  if (f.statuses.length) out.status = f.statuses.map(String);
  for (const k of ['owner', 'account', 'partner', 'project', 'close_from', 'close_to'] as const) if (f[k] !== null) out[k] = String(f[k]);
  if (f.currency) out.currency = currencyDigits(f.currency);
  if (f.sort !== 'expected_close_on') out.sort = f.sort;
  if (f.dir !== 'asc') out.dir = f.dir;
  return out;
}

/** The field each filter reads (the status is moved, never ruled). */
const FILTERED_FIELDS: Record<Exclude<keyof OpportunityFilters, 'statuses' | 'project' | 'sort' | 'dir'>, OpportunityField> = {
  q: 'name', owner: 'owner_id', account: 'account_id', partner: 'partner_id', close_from: 'expected_close_on', close_to: 'expected_close_on',
  currency: 'currency', amount_min: 'amount_minor', amount_max: 'amount_minor',
};

/**
 * The opportunities visible under `scope`, plus the filters, as one query on `crm_opportunities o`. A filter on a
 * field that the field rules hide from this user matches none of the opportunities where it is hidden: otherwise
 * narrowing the amount step by step would reveal a hidden amount. (A filter on an account, partner or project the user
 * may not see is left out before it gets here: see the list route.)
 */
function filteredQuery(knex: Knex, scope: RecordScope, rules: ViewerFieldRules, f: OpportunityFilters, options: { ignoreStatuses?: boolean } = {}): Knex.QueryBuilder {
  const q = knex('crm_opportunities as o');
  applyOpportunityScope(q, scope);
  if (f.q) whereAnyContains(q, ['o.name'], f.q);
  if (f.statuses.length && !options.ignoreStatuses) q.whereIn('o.status_id', f.statuses);
  if (f.owner) q.where('o.owner_id', f.owner);
  if (f.account) q.where('o.account_id', f.account);
  if (f.partner) q.where('o.partner_id', f.partner);
  if (f.project) q.where('o.project_id', f.project);
  if (f.close_from) q.where('o.expected_close_on', '>=', f.close_from);
  if (f.close_to) q.where('o.expected_close_on', '<=', f.close_to);
  if (f.currency) q.where('o.currency', f.currency);
  if (f.amount_min !== null) q.where('o.amount_minor', '>=', f.amount_min);
  if (f.amount_max !== null) q.where('o.amount_minor', '<=', f.amount_max);
  const used = (k: string) => f[k as keyof typeof FILTERED_FIELDS] !== null && f[k as keyof typeof FILTERED_FIELDS] !== '';
  const filtered = new Set(Object.entries(FILTERED_FIELDS).filter(([k]) => used(k)).map(([, field]) => field));
  for (const field of filtered) {
    const hidden = hiddenSql(knex, rules, field);
    if (hidden) q.whereRaw('not ?', [hidden]);
  }
  return q;
}

export interface OpportunityRow {
  id: number;
  name: string;
  project_id: number;
  /** The account if this user may see it, else null (none, or one they may not see: `account_hidden`). */
  account_id: number | null;
  account_name: string | null;
  /** The opportunity has an account this user may not see (the list says "an account you cannot see"). */
  account_hidden: boolean;
  owner_id: number | null;
  status_id: number;
  status_name: string;
  status_color: string;
  probability: number;
  amount_minor: number | null;
  currency: string;
  expected_close_on: string | null;
  /** The partner if this user may see it, else null (none, or one they may not see: `partner_hidden`). */
  partner_id: number | null;
  partner_hidden: boolean;
  lock_version: number;
  is_locked: boolean;
}

export interface CurrencyTotal {
  currency: string;
  count: number;
  amount_minor: number;
  weighted_minor: number;
}

const rowColumns = ['o.id', 'o.name', 'o.project_id', 'o.account_id', 'o.owner_id', 'o.status_id', 's.name as status_name',
  's.color as status_color', 's.probability', 'o.amount_minor', 'o.currency', 'o.expected_close_on', 'o.partner_id', 'o.lock_version', 'o.is_locked'];

function toRow(r: Record<string, unknown>): OpportunityRow {
  return {
    ...(r as unknown as OpportunityRow),
    amount_minor: r.amount_minor === null ? null : Number(r.amount_minor),
    probability: Number(r.probability),
    expected_close_on: dateText(r.expected_close_on),
    is_locked: Boolean(r.is_locked),
  };
}

/**
 * A page's rows with their accounts' names where this user may see the account, and the ids of their account and
 * partner only where they may see it: one they may not is `account_hidden` / `partner_hidden`, without its id. One
 * statement for the whole page, accounts and partners together. Read after the page is cut, not joined into it:
 * PostgreSQL hashed all 100,000 accounts for the join before sorting and cutting the page (37 of the admin's 52 ms).
 */
async function withVisibleReferences(ctx: CrmContext, rows: OpportunityRow[]): Promise<OpportunityRow[]> {
  const idsOf = (field: 'account_id' | 'partner_id') => [...new Set(rows.map((r) => r[field]).filter((id): id is number => id !== null))];
  const [accountIds, partnerIds] = [idsOf('account_id'), idsOf('partner_id')];
  const seen = await seenAmong(ctx.host.knex, {
    account: accountIds.length ? (await visibleAccountsAmong(ctx, accountIds)).q : null,
    partner: partnerIds.length ? (await visiblePartnersAmong(ctx, partnerIds)).q : null,
  });
  return rows.map((r) => {
    const accountName = r.account_id === null ? null : seen.account.get(r.account_id) ?? null;
    const partnerSeen = r.partner_id !== null && seen.partner.has(r.partner_id);
    return {
      ...r, ...seenReference('account', r.account_id, accountName !== null), account_name: accountName, ...seenReference('partner', r.partner_id, partnerSeen),
    };
  });
}

/** What the list's count, totals and status tags read: they are recomputed after a write to any of these. */
const OPPORTUNITY_LIST_TABLES: readonly VersionedTable[] = ['crm_opportunities', 'crm_opportunity_statuses'];

/** A list row or kanban card as this user may see it: what the field rules of its status hide is left out. */
export type VisibleOpportunityRow = SeenOpportunity<OpportunityRow>;

function visibleRows(rules: ViewerFieldRules, rows: OpportunityRow[]): VisibleOpportunityRow[] {
  return rows.map((r) => visibleOpportunityFields(r, rules.at(r.project_id, r.status_id)));
}

/**
 * `o.<column>` as the list sorts by it: where the field rules hide the field from this user, as if it were
 * empty, so that the order does not reveal a hidden amount or date.
 */
function sortColumn(knex: Knex, rules: ViewerFieldRules, column: (typeof OPPORTUNITY_SORTS)[number]): { sql: Knex.Raw; nullable: boolean } {
  const hidden = (RULED_FIELDS as string[]).includes(column) ? hiddenSql(knex, rules, column as OpportunityField) : null;
  // Written out (the column is one of OPPORTUNITY_SORTS) so that the planner sees the plain column its indexes give the order of.
  if (!hidden) return { sql: knex.raw(`o.${column}`), nullable: column === 'expected_close_on' || column === 'amount_minor' };
  return { sql: knex.raw(`case when ? then null else o.${column} end`, [hidden]), nullable: true };
}

/**
 * A page of visible opportunities, the totals of the whole filtered set per currency (sum and weighted by
 * the status probability), and the count per status for the coloured filter tags — all aggregated in SQL.
 * The field rules of the user's role apply (S5): rows leave out what they hide, and the totals leave out the
 * amounts they hide, counting those apart (`hiddenAmounts`), so that they add up to what the rows show.
 */
export async function listOpportunities(ctx: CrmContext, f: OpportunityFilters, page: number, perPage: number) {
  const knex = ctx.host.knex;
  const [scope, rules] = await Promise.all([recordScope(ctx, 'opportunities', 'view_opportunities'), viewerFieldRules(ctx)]);
  const { sort, dir, ...narrowing } = f;
  const base = filteredQuery(knex, scope, rules, f);
  const key = await listKey(knex, OPPORTUNITY_LIST_TABLES, [scopeKey(scope), narrowing, rules.key]);
  const numbers = await listNumbers(knex, 'opportunity-list-numbers', key, async () => {
    const [{ total }] = await base.clone().count({ total: '*' });
    const tagRows: { status_id: number; n: number | string }[] = await filteredQuery(knex, scope, rules, f, { ignoreStatuses: true })
      .groupBy('o.status_id').select('o.status_id').count({ n: '*' });
    const { totals, hiddenAmounts } = readTotals(await withTotalColumns(knex, base.clone(), hiddenSql(knex, rules, 'amount_minor')).groupBy('o.currency').orderBy('o.currency').select('o.currency'));
    return { count: Number(total), totals, hiddenAmounts, tagCounts: new Map(tagRows.map((r) => [Number(r.status_id), Number(r.n)])) };
  });
  const pages = Math.max(1, Math.ceil(numbers.count / perPage));
  const current = Math.min(page, pages);
  const order = sortColumn(knex, rules, sort);
  const rows: OpportunityRow[] = (await base.clone()
    .join('crm_opportunity_statuses as s', 's.id', 'o.status_id')
    .select(rowColumns)
    .orderByRaw(`? ${dir === 'desc' ? 'desc' : 'asc'} ${order.nullable ? (dir === 'desc' ? 'nulls last' : 'nulls first') : ''}, o.id ${dir}`, [order.sql])
    .limit(perPage).offset((current - 1) * perPage)).map(toRow);
  return {
    rows: visibleRows(rules, await withVisibleReferences(ctx, rows)), meta: { page: current, pages, total: numbers.count, per_page: perPage } as PageMeta,
    totals: numbers.totals, hiddenAmounts: numbers.hiddenAmounts, tagCounts: numbers.tagCounts,
  };
}

interface TotalsRow { currency: string; n: number | string; amount: number | string | null; weighted: number | string | null; hidden?: number | string | null }

/**
 * Adds the totals' aggregates to a query on `o` (joining its status as `ts`): count, Σ amount and Σ amount × the
 * status probability. Where `hiddenAmount` (SQL, from hiddenSql) holds, the amount is left out of the sums and
 * the opportunity counted in `hidden` instead.
 */
function withTotalColumns(knex: Knex, q: Knex.QueryBuilder, hiddenAmount: Knex.Raw | null): Knex.QueryBuilder {
  const shown = (sql: string) => (hiddenAmount ? knex.raw(`case when ? then null else ${sql} end`, [hiddenAmount]) : knex.raw(sql));
  q.join('crm_opportunity_statuses as ts', 'ts.id', 'o.status_id')
    .count({ n: '*' })
    .sum({ amount: shown('o.amount_minor') })
    .sum({ weighted: shown('o.amount_minor * ts.probability') });
  if (hiddenAmount) q.sum({ hidden: knex.raw('case when ? then 1 else 0 end', [hiddenAmount]) });
  return q;
}

/**
 * Totals per currency from withTotalColumns rows: only the opportunities whose amount is shown, so a currency
 * whose amounts are all hidden has no line; the hidden ones as one count.
 */
function readTotals(rows: TotalsRow[]): { totals: CurrencyTotal[]; hiddenAmounts: number } {
  const hiddenOf = (r: TotalsRow) => Number(r.hidden ?? 0);
  // Σ amount × probability % is summed exactly in SQL, then rounded once (half away from zero).
  const totals = rows.map((r) => ({
    currency: String(r.currency), count: Number(r.n) - hiddenOf(r), amount_minor: Number(r.amount ?? 0), weighted_minor: percentOf(Number(r.weighted ?? 0), 100),
  })).filter((t) => t.count > 0);
  return { totals, hiddenAmounts: rows.reduce((n, r) => n + hiddenOf(r), 0) };
}

/**
 * The opportunity statuses in their order (only the active ones with `activeOnly`): kept under the table's version,
 * since nearly every opportunity page reads them; each caller gets its own objects.
 */
export async function statuses(knex: Knex, options: { activeOnly?: boolean } = {}): Promise<OpportunityStatus[]> {
  const rows = await readUnderVersions(knex, 'opportunity-statuses', ['crm_opportunity_statuses'], [], async () =>
    (await knex('crm_opportunity_statuses').orderBy([{ column: 'position' }, { column: 'id' }])).map((s: Record<string, unknown>) => ({
      ...s, active: Boolean(s.active), is_default: Boolean(s.is_default), probability: Number(s.probability),
    })));
  return rows.filter((s) => !options.activeOnly || s.active).map((s) => OpportunityStatus.fromJson({ ...s }, { skipValidation: true }));
}

/** Whom the user sees opportunities of, from any page. */
const opportunityScopeOf = (ctx: CrmContext) => recordScope(globalContext(ctx), 'opportunities', 'view_opportunities');

/** The opportunity if this user may see it (from any page), else null. */
export async function findVisibleOpportunity(ctx: CrmContext, id: number): Promise<Opportunity | null> {
  if (!validId(id)) return null;
  const scope = await opportunityScopeOf(ctx);
  const q = ctx.host.knex('crm_opportunities as o').where('o.id', id).select('o.*');
  applyOpportunityScope(q, scope);
  const row = await q.first();
  return row ? normalize(Opportunity.fromJson(row, { skipValidation: true })) : null;
}

/**
 * Of `ids`, the opportunities this user may see (from any page, as findVisibleOpportunity; one query whatever their
 * number), each with the field rules of its status for this user (read once per request): what mentions them
 * elsewhere — a history naming an upsell — names them by these (opportunityLabel).
 */
export async function visibleOpportunityRules(ctx: CrmContext, ids: number[]): Promise<Map<number, FieldRules>> {
  const wanted = [...new Set(ids.filter(validId))];
  if (!wanted.length) return new Map();
  const [scope, rules] = await Promise.all([opportunityScopeOf(ctx), viewerFieldRules(ctx)]);
  const q = ctx.host.knex('crm_opportunities as o').whereIn('o.id', wanted).select('o.id', 'o.project_id', 'o.status_id');
  applyOpportunityScope(q, scope);
  return new Map((await q).map((r: { id: number; project_id: number; status_id: number }) => [Number(r.id), rules.at(Number(r.project_id), Number(r.status_id))]));
}

/**
 * Those of `ids` this user may see (from any page, as findVisibleOpportunity), as a query selecting `id` and `name`,
 * so that a page may run it with its account names in one statement (union all). Wrapped in an object: a knex
 * builder is thenable.
 */
export async function visibleOpportunitiesAmong(ctx: CrmContext, ids: number[]): Promise<{ q: Knex.QueryBuilder }> {
  const scope = await opportunityScopeOf(ctx);
  const q = ctx.host.knex('crm_opportunities as o').whereIn('o.id', ids).select('o.id', 'o.name');
  applyOpportunityScope(q, scope);
  return { q };
}

export async function requireVisibleOpportunity(ctx: CrmContext, id: number): Promise<Opportunity> {
  const opp = await findVisibleOpportunity(ctx, id);
  if (!opp) throw notFound('Opportunity');
  return opp;
}

function normalize(o: Opportunity): Opportunity {
  o.is_locked = Boolean(o.is_locked);
  o.amount_minor = o.amount_minor === null ? null : Number(o.amount_minor);
  o.expected_close_on = dateText(o.expected_close_on);
  return o;
}

/** Edit rights follow the edit_opportunities scope (a supervisor views the team's, never edits). */
export async function canEditOpportunity(ctx: CrmContext, opp: Opportunity): Promise<boolean> {
  if (!(await mayEditIn(ctx, opp.project_id))) return false;
  return Boolean(await inEditScope(ctx, opp.id, await editScope(ctx)).first(ctx.host.knex.raw('1 as one')));
}

async function mayEditIn(ctx: CrmContext, projectId: number): Promise<boolean> {
  const project = await ctx.host.projectById(projectId);
  return Boolean(project && (await ctx.host.can(ctx.user, 'edit_opportunities', project)));
}

const editScope = (ctx: CrmContext) => recordScope(globalContext(ctx), 'opportunities', 'edit_opportunities');

/** The opportunity `id`, if it is within `scope`: a query of no columns yet. */
function inEditScope(ctx: CrmContext, id: number, scope: RecordScope): Knex.QueryBuilder {
  const q = ctx.host.knex('crm_opportunities as o').where('o.id', id);
  applyOpportunityScope(q, scope);
  return q;
}

/**
 * The opportunity if this user may see it (404 otherwise) and change it (403 otherwise). The edit scope is asked
 * in the same statement as the read: every form and action of an opportunity starts here.
 */
export async function requireEditableOpportunity(ctx: CrmContext, id: number): Promise<Opportunity> {
  if (!validId(id)) throw notFound('Opportunity');
  const knex = ctx.host.knex;
  const [viewScope, scope] = await Promise.all([opportunityScopeOf(ctx), editScope(ctx)]);
  const editable = inEditScope(ctx, id, scope).select(knex.raw('1'));
  const q = knex('crm_opportunities as o').where('o.id', id).select('o.*', knex.raw('exists ? as crm_in_edit_scope', [editable]));
  applyOpportunityScope(q, viewScope);
  const row = await q.first();
  if (!row) throw notFound('Opportunity');
  const { crm_in_edit_scope: inScope, ...stored } = row as Record<string, unknown>;
  const opp = normalize(Opportunity.fromJson(stored, { skipValidation: true }));
  if (!Number(inScope) || !(await mayEditIn(ctx, opp.project_id))) throw forbidden('You may see this opportunity but not change it.');
  return opp;
}

export type OpportunityData = Record<OpportunityField, unknown>;

/**
 * Reads the opportunity form under the field rules of the *target* status: hidden and read-only fields keep
 * their stored value whatever was sent; required ones must not be empty. Every problem is reported at once.
 */
export async function readOpportunityInput(
  ctx: CrmContext, input: FormInput, existing: Opportunity | null, project: HostProject,
): Promise<{ data: OpportunityData; rules: FieldRules }> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const settings = await loadSettings(knex);
  const all = await statuses(knex);
  const statusId = errors.id(input, 'status_id', 'Status') ?? existing?.status_id ?? all.find((s) => s.is_default)?.id ?? all[0]?.id;
  const status = all.find((s) => s.id === statusId && (s.active || s.id === existing?.status_id));
  if (!status) errors.add('status_id', 'Choose a status from the list');
  const rules = status ? await fieldRulesFor(ctx, project.id, status.id) : new Map();
  const stored = (existing ?? {}) as Record<string, unknown>;
  const locked = (f: OpportunityField) => existing !== null && (rules.get(f) === 'read_only' || rules.get(f) === 'hidden');
  const given = (f: string) => Object.prototype.hasOwnProperty.call(input, f);

  const currency = locked('currency') ? String(stored.currency) : (text(input, 'currency').toUpperCase() || String(stored.currency ?? settings.default_currency));
  if (!isCurrencyCode(currency)) errors.add('currency', 'Currency must be a code such as EUR');
  let amount: number | null = (stored.amount_minor as number | null) ?? null;
  if (!locked('amount_minor') && (given('amount') || !existing)) {
    const raw = text(input, 'amount');
    if (!raw) amount = null;
    else {
      const parsed = parseAmount(raw, isCurrencyCode(currency) ? currency : 'EUR');
      if (parsed.ok && parsed.minor < 0) errors.add('amount', 'Amount cannot be negative');
      else if (parsed.ok) amount = parsed.minor;
      else errors.add('amount', `Amount ${parsed.error}`);
    }
  }
  const pick = <T>(f: OpportunityField, read: () => T): T | unknown => (locked(f) ? stored[f] : read());
  const name = pick('name', () => errors.text(input, 'name', 'Name', { max: 200, required: true }));
  // An account, contact or partner kept as it was passes even when this user cannot see it (saving the form must not
  // drop what someone else chose); one newly chosen must be visible.
  const kept = (f: 'account_id' | 'contact_id' | 'partner_id', id: number) => locked(f) || (existing !== null && existing[f] === id);
  const accountId = pick('account_id', () => errors.id(input, 'account_id', 'Account')) as number | null;
  if (accountId && !kept('account_id', accountId) && !(await findVisibleAccount(ctx, accountId))) errors.add('account_id', 'Choose an account you can see');
  const contactId = pick('contact_id', () => errors.id(input, 'contact_id', 'Contact')) as number | null;
  if (contactId && !kept('contact_id', contactId) && !(await findVisibleContact(ctx, contactId))) errors.add('contact_id', 'Choose a contact you can see');
  const ownerId = pick('owner_id', () => errors.id(input, 'owner_id', 'Owner')) as number | null;
  if (ownerId && !locked('owner_id') && !(await ctx.host.userById(ownerId))) errors.add('owner_id', 'Choose an owner from the list');
  const chosenPartner = pick('partner_id', () => errors.id(input, 'partner_id', 'Partner')) as number | null;
  if (chosenPartner && !kept('partner_id', chosenPartner) && !(await findVisiblePartner(ctx, chosenPartner))) errors.add('partner_id', 'Choose a partner you can see');
  const partnerId = locked('partner_id') ? chosenPartner : await partnerOfPartnerUser(ctx, errors, chosenPartner, !existing, 'opportunities');
  const closeRaw = text(input, 'expected_close_on');
  const close = pick('expected_close_on', () => {
    const problem = closeRaw ? dayProblem(closeRaw, 'Expected close date') : null;
    if (problem) {
      errors.add('expected_close_on', problem);
      return null;
    }
    return closeRaw || null;
  });
  const description = pick('description', () => errors.text(input, 'description', 'Description', { max: 20_000 }));

  const data: OpportunityData = {
    name, account_id: accountId, contact_id: contactId, owner_id: ownerId ?? (existing ? null : ctx.user.id), status_id: status?.id ?? null,
    amount_minor: amount, currency, expected_close_on: close, partner_id: partnerId, description,
  };
  for (const field of RULED_FIELDS) {
    if (rules.get(field) === 'required' && (data[field] === null || data[field] === '' || data[field] === undefined)) {
      errors.add(field === 'amount_minor' ? 'amount' : field, `${FIELD_LABELS[field]} is required in status ${status?.name}`);
    }
  }
  if (errors.any) throw invalid('The opportunity was not saved: fix the fields marked below.', errors.errors);
  return { data, rules };
}

export async function createOpportunity(ctx: CrmContext, project: HostProject, data: OpportunityData): Promise<Opportunity> {
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await trx('crm_opportunities').insert({ ...data, project_id: project.id, author_id: ctx.user.id }).returning('*');
    const changes = changedFields({}, data, [...OPPORTUNITY_FIELDS]).filter((c) => c.new !== '' && c.new !== null);
    await journal(trx, { type: 'opportunity', id: Number(row.id), userId: ctx.user.id, action: 'create', changes: [...changes, { field: 'project', old: null, new: project.identifier }] });
    return normalize(Opportunity.fromJson(row, { skipValidation: true }));
  });
}

/**
 * An opportunity's sales activities keep a copy of its account and project (the to-do page and the dashboards
 * group and filter by them in SQL): they follow a change of either, in the change's transaction, and each
 * activity's own history tells why its account or project changed.
 */
const ACTIVITY_COPIES: OpportunityCopies = {
  table: 'crm_sales_activities', type: 'sales_activity', columns: ['account_id', 'project_id'], of: (opportunityId) => ({ record_type: 'opportunity', record_id: opportunityId }),
};

/**
 * Every change of an opportunity goes through here, so its contracts' copies of its owner and project and its
 * activities' copies of its account and project follow in the same transaction (`followNotes` says why on the
 * journal of each).
 */
async function saveChanges(
  trx: Knex.Transaction, ctx: CrmContext, opp: Opportunity, data: Partial<OpportunityData> & Record<string, unknown>, lockVersion: number,
  followNotes = `Follows its opportunity #${opp.id}`,
): Promise<Opportunity> {
  const updated = await trx('crm_opportunities').where({ id: opp.id, lock_version: lockVersion }).whereNull('deleted_at')
    .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
  if (updated === 0) throw staleRecord('This opportunity');
  await journal(trx, {
    type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update',
    changes: changedFields(opp as unknown as Record<string, unknown>, data, Object.keys(data)),
  });
  await contractsFollowOpportunity(trx, ctx.user.id, opp.id, data, followNotes);
  await copiesFollowOpportunity(trx, ACTIVITY_COPIES, opp.id, data, ctx.user.id, followNotes);
  const row = await trx('crm_opportunities').where({ id: opp.id }).first();
  return normalize(Opportunity.fromJson(row, { skipValidation: true }));
}

/**
 * Inside a change's transaction: refuses (422) when the opportunity is sold and locked. On PostgreSQL the row is
 * locked for the rest of the transaction, so a concurrent sale (which updates that row) and this change run one
 * after the other: either the change lands before the sale reads the quote, or it sees the lock. SQLite runs
 * one writer at a time anyway.
 */
export async function assertUnsoldIn(trx: Knex.Transaction, opportunityId: number, message = 'This opportunity is sold and locked; unlock it to change it.'): Promise<void> {
  const q = trx('crm_opportunities').where({ id: opportunityId }).first('is_locked');
  if (isPg(trx)) q.forUpdate();
  const row = await q;
  if (row && Boolean(row.is_locked)) throw invalid(message);
}

export async function updateOpportunity(ctx: CrmContext, opp: Opportunity, data: OpportunityData, lockVersion: number): Promise<Opportunity> {
  if (opp.is_locked) throw invalid('This opportunity is sold and locked; unlock it to change it.');
  return ctx.host.knex.transaction((trx) => saveChanges(trx, ctx, opp, data, lockVersion));
}

/**
 * O3: a kanban move is a status change through the same rules as the edit form: edit rights, the target
 * status's required fields (for this user's role) must already be filled, optimistic locking, journal.
 */
export async function moveOpportunity(ctx: CrmContext, opp: Opportunity, statusId: number, lockVersion: number): Promise<Opportunity> {
  if (opp.is_locked) throw invalid('This opportunity is sold and locked; unlock it to change it.');
  const status = (await statuses(ctx.host.knex)).find((s) => s.id === statusId && s.active);
  if (!status) throw invalid('Choose a status from the list.', { status_id: 'Choose a status from the list' });
  if (status.id === opp.status_id) return opp;
  const rules = await fieldRulesFor(ctx, opp.project_id, status.id);
  const missing = missingRequired(rules, opp as unknown as Record<string, unknown>);
  if (missing.length) {
    throw invalid(`Cannot move to ${status.name}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required there. Fill ${missing.length === 1 ? 'it' : 'them'} in first.`, { status_id: `requires ${missing.join(', ')}` });
  }
  return ctx.host.knex.transaction((trx) => saveChanges(trx, ctx, opp, { status_id: status.id }, lockVersion));
}

/** Moves the opportunity to another project where CRM is on and the user may add opportunities. */
export async function moveToProject(ctx: CrmContext, opp: Opportunity, projectId: number, lockVersion: number): Promise<Opportunity> {
  if (opp.is_locked) throw invalid('This opportunity is sold and locked; unlock it to move it.');
  const target = (await ctx.host.projectsWhere(ctx.user, 'add_opportunities')).find((p) => p.id === projectId);
  if (!target) throw invalid('Choose a project with CRM where you may add opportunities.', { project_id: 'Choose a project with CRM where you may add opportunities' });
  // The journal names the projects by id (the project_id detail), never in a note: a later reader of the opportunity
  // or its contracts may not see the project it came from, and the history names it only to those who may.
  return ctx.host.knex.transaction((trx) => saveChanges(trx, ctx, opp, { project_id: target.id }, lockVersion, `Moved with its opportunity #${opp.id}`));
}

/**
 * Soft-deletes an unsold opportunity without contracts (those must be removed first, see assertNoContractsLeft).
 * The update re-checks the lock, so a sale committed since the page was read is not deleted under it; from the
 * update on, the row is this transaction's, and no sale can add contracts before the check below.
 */
export async function deleteOpportunity(ctx: CrmContext, opp: Opportunity): Promise<void> {
  const sold = 'A sold opportunity cannot be deleted; unlock it first.';
  if (opp.is_locked) throw invalid(sold);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_opportunities').where({ id: opp.id, is_locked: false }).whereNull('deleted_at')
      .update({ deleted_at: new Date().toISOString(), lock_version: trx.raw('lock_version + 1') });
    if (n === 0) {
      const row = await trx('crm_opportunities').where({ id: opp.id }).whereNull('deleted_at').first('is_locked');
      throw row && Boolean(row.is_locked) ? invalid(sold) : notFound('Opportunity');
    }
    await assertNoContractsLeft(trx, opp.id);
    await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'delete', changes: [] });
  });
}

/**
 * Kanban: open statuses as columns with their first 25 cards by close date (the column links to all), won and lost
 * folded into counts. The field rules apply as on the list: cards leave out what they hide, column sums the amounts
 * they hide (counted apart, `hiddenAmounts`).
 */
export async function kanban(ctx: CrmContext, f: OpportunityFilters, perColumn = 25) {
  const knex = ctx.host.knex;
  const all = await statuses(knex, { activeOnly: true });
  const open = all.filter((s) => s.kind === 'open');
  // Each column shows its own status whatever the status filter says; everything else filters as the list does.
  const [scope, rules] = await Promise.all([recordScope(ctx, 'opportunities', 'view_opportunities'), viewerFieldRules(ctx)]);
  const base = filteredQuery(knex, scope, rules, f, { ignoreStatuses: true }).whereIn('o.status_id', all.map((s) => s.id));
  const key = await listKey(knex, OPPORTUNITY_LIST_TABLES, [scopeKey(scope), { ...f, statuses: null }, perColumn, rules.key]);
  // Counts and totals of every column in one grouped query (kept until the next write) …
  const grouped = await listNumbers(knex, 'kanban-numbers', key, async (): Promise<(TotalsRow & { status_id: number | string })[]> =>
    withTotalColumns(knex, base.clone(), hiddenSql(knex, rules, 'amount_minor')).groupBy('o.status_id', 'o.currency').orderBy('o.currency').select('o.status_id', 'o.currency'));
  const rowsOf = new Map<number, TotalsRow[]>();
  for (const r of grouped) rowsOf.set(Number(r.status_id), [...(rowsOf.get(Number(r.status_id)) ?? []), r]);
  const numbersOf = (id: number) => ({ count: (rowsOf.get(id) ?? []).reduce((n, r) => n + Number(r.n), 0), ...readTotals(rowsOf.get(id) ?? []) });
  // … and the first cards of every open column in one query, numbered per status by close date.
  const ranked = base.clone().whereIn('o.status_id', open.map((s) => s.id))
    .select('o.id', knex.raw('row_number() over (partition by o.status_id order by ? asc nulls last, o.id asc) as card_rank', [sortColumn(knex, rules, 'expected_close_on').sql]));
  const cards = await listNumbers(knex, 'kanban-cards', key, async () =>
    (await knex('crm_opportunities as o').join(ranked.as('k'), 'k.id', 'o.id')
      .join('crm_opportunity_statuses as s', 's.id', 'o.status_id')
      .where('k.card_rank', '<=', perColumn).select(rowColumns).orderBy('k.card_rank')).map(toRow));
  // Named apart from the cards, under the accounts' and partners' versions and the viewer's scopes of them as well: a
  // full board names up to 100 accounts, and would otherwise read them on every view.
  const namesKey = await listKey(knex, ['crm_accounts', 'crm_account_projects', 'crm_partners'], [key, await accountNamesScopeKey(ctx), await partnerNamesScopeKey(ctx)]);
  const namedCards = await listNumbers(knex, 'kanban-card-names', namesKey, () => withVisibleReferences(ctx, cards));
  const columns = open.map((status) => {
    const { count, totals, hiddenAmounts } = numbersOf(status.id);
    return { status, cards: visibleRows(rules, namedCards.filter((c) => c.status_id === status.id)), count, totals, hiddenAmounts };
  });
  const folded = all.filter((s) => s.kind !== 'open').map((status) => ({ status, count: numbersOf(status.id).count }));
  return { columns, folded };
}
