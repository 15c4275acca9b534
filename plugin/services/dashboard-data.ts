import type { Knex } from 'knex';
import { projectsWithCrmView, type CrmContext } from '../http/guard';
import { applyOpportunityScope } from '../models/opportunity';
import { visibleActivities } from './activities';
import { applyContractScope } from '../models/contract';
import {
  MAX_BUCKETS, MEASURE_LABELS, PERIOD_LABELS, RECORD_FILTERS, bucketSize, buckets, monthEnd, monthInBucket, monthStart, periodProblem, quarterEnd, quarterStart, resolvePeriod,
  type Bucket, type BucketSize, type ChartKind, type Filters, type RecordFilter, type ModuleConfig, type ModuleType, type Period, type PeriodConfig, type TargetMeasure,
} from './dashboard-config';
import { visibleAccountNames } from './accounts';
import { leftOutJson } from './list-filters';
import { isPg } from '../../migrations/dialect';
import { cacheFor, scopeKey, versionKey, type VersionedTable } from './data-version';
import { addDays } from './dates';
import { hiddenSql, viewerFieldRules } from './field-rules';
import { convertMinor, rateOn, rateText, type RateOn } from './exchange-rates';
import { percentOf } from './money';
import { loadSettings } from './settings';
import { recordScope, type RecordScope } from './visibility';

/**
 * The numbers of overview modules (SPEC D2), aggregated in SQL (GROUP BY, one or two queries per module) under
 * the same visibility scopes as the lists they link to. Amounts are summed per currency in SQL and each
 * currency's sum is converted once to the reporting currency (plugin setting `reporting_currency`) with the
 * date-stamped exchange rates valid on the period's last day (or today, if the period ends later). A currency
 * without a rate is left out of the converted numbers and the module says so.
 */

export type ColumnKind = 'money' | 'count' | 'percent' | 'text';
export interface Column { key: string; label: string; kind: ColumnKind }

export interface CurrencyPart { currency: string; count: number; amount_minor: number; weighted_minor: number }

export interface DataRow {
  key: string;
  label: string;
  values: Record<string, number | null>;
  /** The list this row is computed from, with the same filters. */
  link: string | null;
  /** Per original currency, before conversion (funnel and forecast). */
  currencies?: CurrencyPart[];
}

export interface Conversion {
  currency: string;
  date: string;
  rates: { from: string; rate: string; valid_on: string }[];
  /** Currencies without a rate on that date: left out of the converted amounts. */
  missing: { currency: string; amount_minor: number }[];
}

export interface ModuleData {
  type: ModuleType;
  period: Period;
  currency: string;
  columns: Column[];
  /** Column keys the chart draws (same unit). */
  series: string[];
  rows: DataRow[];
  totals: Record<string, number | null> | null;
  chart: ChartKind;
  link: string | null;
  conversion: Conversion | null;
  notes: string[];
  /** Whose numbers: 'me' (only the viewer's) or 'all' (everyone the viewer may see). */
  people: 'me' | 'all';
  /**
   * The module's filters left out for this viewer (`filtersForViewer`), by kind ("an account you cannot see"); only
   * when there are some, as the lists' JSON has it.
   */
  left_out_of_filter?: string[];
}

export type UserType = 'sales_rep' | 'sales_director';

/** What one page render shares between its modules: scopes, rates and names are resolved once, not per module. */
export interface DashboardEnv {
  ctx: CrmContext;
  knex: Knex;
  today: string;
  reporting: string;
  /** `/crm` or `/projects/<identifier>/crm`: where the drill-down lists are. */
  base: string;
  userType: UserType | null;
  userNames: Map<number, string>;
  memo: Map<string, Promise<unknown>>;
}

export async function dashboardEnv(ctx: CrmContext, base: string, today: string): Promise<DashboardEnv> {
  const knex = ctx.host.knex;
  const [settings, type, users] = await Promise.all([
    loadSettings(knex), knex('crm_user_types').where({ user_id: ctx.user.id }).first('type'), ctx.host.users(),
  ]);
  return {
    ctx, knex, today, base, reporting: String(settings.reporting_currency || 'EUR'),
    userType: (type?.type as UserType | undefined) ?? null, userNames: new Map(users.map((u) => [u.id, u.name])), memo: new Map(),
  };
}

function memo<T>(env: Pick<DashboardEnv, 'memo'>, key: string, make: () => Promise<T>): Promise<T> {
  if (!env.memo.has(key)) env.memo.set(key, make());
  return env.memo.get(key) as Promise<T>;
}

const opportunityScope = (env: DashboardEnv) => memo(env, 'scope:opportunities', () => recordScope(env.ctx, 'opportunities', 'view_opportunities'));
const fieldRules = (env: DashboardEnv) => memo(env, 'field-rules', () => viewerFieldRules(env.ctx));
const contractScope = (env: DashboardEnv) => memo(env, 'scope:contracts', () => recordScope(env.ctx, 'opportunities', 'view_contracts'));
const accountScope = (env: DashboardEnv) => memo(env, 'scope:accounts', () => recordScope(env.ctx, 'accounts', 'view_accounts'));
const partnerScope = (env: DashboardEnv) => memo(env, 'scope:partners', () => recordScope(env.ctx, 'partners', 'view_partners'));
const statusIds = (env: DashboardEnv) => memo(env, 'statuses', async () => {
  const rows = await env.knex('crm_opportunity_statuses').orderBy('position').select('id', 'name', 'kind', 'probability', 'active', 'color');
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), kind: String(r.kind), probability: Number(r.probability), active: Boolean(r.active), color: String(r.color) }));
});

/** "YYYY-MM" of a date column, in SQL (dates are ISO text on SQLite). */
const monthOfDate = (knex: Knex, col: string) => (isPg(knex) ? `to_char(${col}, 'YYYY-MM')` : `substr(${col}, 1, 7)`);
/** "YYYY-MM" of a timestamp column in UTC (ISO text on SQLite). */
const monthOfTimestamp = (knex: Knex, col: string) => (isPg(knex) ? `to_char(${col} at time zone 'UTC', 'YYYY-MM')` : `substr(${col}, 1, 7)`);
/** Days a contract runs, both ends included. */
const contractDays = (knex: Knex) => (isPg(knex) ? '(c.ends_on - c.starts_on + 1)' : '(julianday(c.ends_on) - julianday(c.starts_on) + 1)');

/** Whose numbers a module shows: only the viewer's for "me", and for "auto" when the viewer is a sales rep. */
export function onlyMine(env: DashboardEnv, config: ModuleConfig): boolean {
  return config.people === 'me' || (config.people === 'auto' && env.userType === 'sales_rep');
}

/** Who manages user targets (S2), or is an admin: they see every person's target (D5). */
const managesTargets = (env: DashboardEnv) =>
  memo(env, 'manages-targets', async () => env.ctx.user.admin || env.ctx.host.can(env.ctx.user, 'manage_user_targets'));

/**
 * The people whose targets the viewer may see by visibility alone (S3), or null for everyone: the people whose
 * opportunities they may see — everyone with "all" in one of the module's projects, their team with "own +
 * subordinates", themselves with "own". A partner's user sees the partner's opportunities, not anybody's sales:
 * only their own target.
 */
function peopleWhoseSalesAreVisible(env: DashboardEnv, scope: RecordScope): number[] | null {
  if (scope.partnerIds) return [env.ctx.user.id];
  if (scope.all.length) return null;
  return scope.team.length ? scope.teamUserIds : [env.ctx.user.id];
}

/**
 * Where a module's numbers are counted, in words for a column label: on the global overview every project the
 * viewer may see; on a project's overview that project and the subprojects its setting includes and the viewer
 * may see (the page lists them), which is less than a person's whole result.
 */
function coverageText(env: DashboardEnv, scopes: RecordScope[]): string {
  const project = env.ctx.project;
  if (!project) return 'in all your projects';
  const others = new Set(scopes.flatMap((s) => [...s.all, ...s.own, ...s.team]));
  const here = others.delete(project.id);
  if (!others.size) return 'in this project';
  const subprojects = others.size === 1 ? '1 subproject' : `${others.size} subprojects`;
  return here ? `in this project and ${subprojects}` : `in ${subprojects} of this project`;
}

// ---- Filters on records the viewer may not see ----

/** What `filtersForViewer` needs of a page's environment (the module edit form has no other use for one). */
export type FilterReader = Pick<DashboardEnv, 'ctx' | 'memo'>;

/**
 * Which of `ids` (accounts that module filters name) the viewer may see. Ids asked before are not read again: a page
 * that asks for the filters of all its modules first reads them in one query, and its modules then in none.
 */
async function visibleFilterAccounts(env: FilterReader, ids: number[]): Promise<Set<number>> {
  const key = (id: number) => `visible-account:${id}`;
  const unknown = [...new Set(ids)].filter((id) => !env.memo.has(key(id)));
  if (unknown.length) {
    const names = visibleAccountNames(env.ctx, unknown);
    for (const id of unknown) env.memo.set(key(id), names.then((visible) => visible.has(id)));
  }
  const seen = await Promise.all(ids.map((id) => env.memo.get(key(id)) as Promise<boolean>));
  return new Set(ids.filter((_, i) => seen[i]));
}

/** The projects whose CRM the viewer may open (the only ones a page may name to them), asked of the host once per page. */
const openableProjects = (env: FilterReader) => memo(env, 'openable-projects', async () => new Set((await projectsWithCrmView(env.ctx)).map((p) => p.id)));

export interface ViewerFilters {
  filters: Filters;
  /** The record filters left out: field → what it names, by kind only ("an account you cannot see"). */
  hidden: Partial<Record<RecordFilter, string>>;
}

const LEFT_OUT: Record<RecordFilter, string> = { account_id: 'an account you cannot see', project_id: 'a project you cannot see' };

/**
 * Each of `list` (the filters of a page's modules) as this viewer may have them applied. A dashboard page is shared
 * (a project's or the global overview, a template), so its author may have filtered a module on an account or a
 * project the viewer may not see. Such a filter is left out and the module says so by kind, as the opportunity,
 * contract and contact lists do with a link or saved filter on a record the user may not see
 * (`withoutInvisibleTargets`): counting the viewer's own records narrowed to it would tell which of them are that
 * record's, and its id in the links or the JSON would name it. Accounts are checked as the lists check them (the
 * viewer's account scope in all their projects, one query for the page), projects by whether the viewer may open
 * their CRM (one host call per view permission, only when a module is filtered on a project). Owners are users,
 * whom everyone may see.
 */
export async function filtersForViewer(env: FilterReader, list: Filters[]): Promise<ViewerFilters[]> {
  const ids = (field: string) => list.map((f) => f[field]).filter((id): id is number => typeof id === 'number');
  const accounts = await visibleFilterAccounts(env, ids('account_id'));
  const projects = ids('project_id').length ? await openableProjects(env) : new Set<number>();
  const visible: Record<RecordFilter, (id: number) => boolean> = { account_id: (id) => accounts.has(id), project_id: (id) => projects.has(id) };
  return list.map((f) => {
    const filters = { ...f };
    const hidden: ViewerFilters['hidden'] = {};
    for (const field of RECORD_FILTERS.filter((k) => typeof f[k] === 'number' && !visible[k](f[k] as number))) {
      delete filters[field];
      hidden[field] = LEFT_OUT[field];
    }
    return { filters, hidden };
  });
}

// ---- Currency conversion ----

class Converter {
  readonly used = new Map<string, RateOn>();
  readonly missing = new Map<string, number>();
  constructor(private readonly env: DashboardEnv, readonly date: string) {}

  /** `track`: count an amount without a rate as left out (off for derived amounts such as weighted ones). */
  async convert(currency: string, minor: number, track = true): Promise<number | null> {
    const to = this.env.reporting;
    if (currency === to) return minor;
    const rate = await memo(this.env, `rate:${currency}:${to}:${this.date}`, () => rateOn(this.env.knex, currency, to, this.date));
    if (!rate) {
      if (track) this.missing.set(currency, (this.missing.get(currency) ?? 0) + minor);
      return null;
    }
    this.used.set(currency, rate);
    return convertMinor(minor, currency, to, rate.rate_micro);
  }

  /** Σ of converted amounts (each currency's sum converted once); currencies without a rate are left out. */
  async sum(parts: { currency: string; minor: number }[], track = true): Promise<number> {
    let total = 0;
    for (const p of parts) total += (await this.convert(p.currency, p.minor, track)) ?? 0;
    return total;
  }

  info(): Conversion | null {
    if (!this.used.size && !this.missing.size) return null;
    return {
      currency: this.env.reporting, date: this.date,
      rates: [...this.used].map(([from, r]) => ({ from, rate: rateText(r.rate_micro), valid_on: r.valid_on })),
      missing: [...this.missing].map(([currency, amount_minor]) => ({ currency, amount_minor })),
    };
  }
}

const converterFor = (env: DashboardEnv, period: Period) => new Converter(env, period.to < env.today ? period.to : env.today);

// ---- Links to the lists ----

function qs(params: Record<string, string | string[] | number | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    for (const x of Array.isArray(v) ? v : [v]) search.append(k, String(x));
  }
  const out = search.toString();
  return out ? `?${out}` : '';
}

/** The opportunity list (O2) with the filters of the module: its totals are the module's numbers. */
function opportunityLink(env: DashboardEnv, config: ModuleConfig, period: Period, extra: { status?: number[]; owner?: number | null } = {}): string {
  const f = config.filters;
  const owner = extra.owner !== undefined ? extra.owner : onlyMine(env, config) ? env.ctx.user.id : (f.owner_id as number | undefined);
  const statuses = extra.status ?? (f.status_id ? [Number(f.status_id)] : []);
  return `${env.base}/opportunities${qs({
    status: statuses.map(String), owner: owner ?? undefined, account: f.account_id, project: f.project_id, currency: f.currency,
    close_from: period.from, close_to: period.to,
  })}`;
}

/**
 * The contracts list with the module's filters: `running` (time-based contracts in force during the period, as
 * the active-contracts module counts them) or `started` (contracts not removed that started in the period).
 */
function contractLink(env: DashboardEnv, config: ModuleConfig, period: Period, window: 'running' | 'started', extra: { category_id?: number | null } = {}): string {
  const f = config.filters;
  const owner = onlyMine(env, config) ? env.ctx.user.id : null;
  const common = { account: f.account_id, project: f.project_id, category: extra.category_id ?? f.category_id, owner };
  return `${env.base}/contracts${qs(window === 'running'
    ? { ...common, kind: 'time_based', running_from: period.from, running_to: period.to }
    : { ...common, status: 'sold', from: period.from, to: period.to })}`;
}

/** The activities list with the module's filters and period; `extra` narrows it to one row (a category, a person). */
function activityLink(env: DashboardEnv, config: ModuleConfig, period: Period, extra: { category?: number; person?: number | null } = {}): string {
  const f = config.filters;
  const person = extra.person !== undefined ? extra.person : onlyMine(env, config) ? env.ctx.user.id : null;
  return `${env.base}/activities${qs({
    account: f.account_id, project: f.project_id, category: extra.category ?? f.category_id, person, from: period.from, to: period.to,
  })}`;
}

// ---- Base queries: the list's scope plus the module's filters ----

/** The module's filters on the columns of the same name of table `alias` (each base query names the ones it has). */
function applyModuleFilters(q: Knex.QueryBuilder, alias: string, config: ModuleConfig, fields: string[]): void {
  for (const field of fields) if (config.filters[field]) q.where(`${alias}.${field}`, config.filters[field]);
}

/**
 * Visible opportunities (`o`, statuses `s`) with the module's filters, expected close in the period; and `amount`,
 * the amount as the viewer may see it: null where the field rules hide it from them (S5), so sums leave it out as
 * the opportunity list's totals do.
 */
async function opportunityQuery(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<{ q: Knex.QueryBuilder; amount: Knex.Raw }> {
  const q = env.knex('crm_opportunities as o').join('crm_opportunity_statuses as s', 's.id', 'o.status_id');
  applyOpportunityScope(q, await opportunityScope(env));
  applyModuleFilters(q, 'o', config, ['project_id', 'owner_id', 'account_id', 'currency', 'status_id']);
  if (onlyMine(env, config)) q.where('o.owner_id', env.ctx.user.id);
  q.where('o.expected_close_on', '>=', period.from).where('o.expected_close_on', '<=', period.to);
  const hidden = hiddenSql(env.knex, await fieldRules(env), 'amount_minor');
  return { q, amount: hidden ? env.knex.raw('case when ? then null else o.amount_minor end', [hidden]) : env.knex.raw('o.amount_minor') };
}

/** Contracts visible as the contracts list shows them (S3 with view_contracts: applyContractScope), with the module's filters. */
async function contractQuery(env: DashboardEnv, config: ModuleConfig): Promise<{ q: Knex.QueryBuilder }> {
  const q = env.knex('crm_contracts as c');
  const userId = env.ctx.user.id;
  applyContractScope(q, await contractScope(env));
  applyModuleFilters(q, 'c', config, ['project_id', 'account_id', 'category_id', 'currency']);
  if (onlyMine(env, config)) q.where('c.owner_id', userId);
  return { q };
}

/** Visible activities (`sa`) in the period, by the person responsible (or, without one, its author). */
async function activityQuery(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<{ q: Knex.QueryBuilder }> {
  const { q } = await visibleActivities(env.ctx, { periodScan: true });
  applyModuleFilters(q, 'sa', config, ['project_id', 'account_id', 'category_id']);
  if (onlyMine(env, config)) q.whereRaw('coalesce(sa.responsible_id, sa.author_id) = ?', [env.ctx.user.id]);
  q.where('sa.occurred_at', '>=', `${period.from}T00:00:00.000Z`).where('sa.occurred_at', '<', `${addDays(period.to, 1)}T00:00:00.000Z`);
  return { q };
}

const num = (v: unknown): number => Number(v ?? 0);
const personLabel = (env: DashboardEnv, id: number | null) => (id === null ? 'Nobody' : env.userNames.get(id) ?? `User #${id}`);

/** Rows of `currency` and `amount` summed per currency: each currency's sum is then converted once. */
function perCurrency(rows: Record<string, unknown>[]): { currency: string; minor: number }[] {
  const sums = new Map<string, number>();
  for (const r of rows) sums.set(String(r.currency), (sums.get(String(r.currency)) ?? 0) + num(r.amount));
  return [...sums].map(([currency, minor]) => ({ currency, minor }));
}

/** Says so when a long period is drawn in coarser buckets than the module's usual ones (see `bucketSize`). */
const bucketNotes = (size: BucketSize, finest: BucketSize): string[] =>
  (size === finest ? [] : [`One row per ${size}: by ${finest} this period would need more than ${MAX_BUCKETS} rows.`]);

// ---- The modules ----

async function funnel(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const { q, amount: shownAmount } = await opportunityQuery(env, config, period);
  const rows: Record<string, unknown>[] = await q.groupBy('o.status_id', 'o.currency').select('o.status_id', 'o.currency')
    .count({ n: '*' }).sum({ amount: shownAmount }).sum({ weighted: env.knex.raw('? * s.probability', [shownAmount]) });
  const conv = converterFor(env, period);
  const statuses = (await statusIds(env)).filter((s) => (config.filters.status_id ? s.id === config.filters.status_id : s.active || rows.some((r) => Number(r.status_id) === s.id)));
  const out: DataRow[] = [];
  const totals = { count: 0, amount: 0, weighted: 0 };
  for (const s of statuses) {
    const parts: CurrencyPart[] = rows.filter((r) => Number(r.status_id) === s.id).map((r) => ({
      currency: String(r.currency), count: num(r.n), amount_minor: num(r.amount), weighted_minor: percentOf(num(r.weighted), 100),
    })).sort((a, b) => a.currency.localeCompare(b.currency));
    const count = parts.reduce((a, p) => a + p.count, 0);
    const amount = await conv.sum(parts.map((p) => ({ currency: p.currency, minor: p.amount_minor })));
    const weighted = await conv.sum(parts.map((p) => ({ currency: p.currency, minor: p.weighted_minor })), false);
    totals.count += count; totals.amount += amount; totals.weighted += weighted;
    out.push({ key: String(s.id), label: s.name, values: { count, amount, weighted }, link: opportunityLink(env, config, period, { status: [s.id] }), currencies: parts });
  }
  return {
    columns: [{ key: 'count', label: 'Opportunities', kind: 'count' }, { key: 'amount', label: 'Amount', kind: 'money' }, { key: 'weighted', label: 'Weighted', kind: 'money' }],
    series: ['amount', 'weighted'], rows: out, totals, link: opportunityLink(env, config, period), conversion: conv.info(),
  };
}

async function forecast(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const { q, amount: shownAmount } = await opportunityQuery(env, config, period);
  const month = monthOfDate(env.knex, 'o.expected_close_on');
  const rows: Record<string, unknown>[] = await q.where('s.kind', 'open').groupByRaw(`${month}, o.currency`)
    .select(env.knex.raw(`${month} as month`), 'o.currency').count({ n: '*' }).sum({ amount: shownAmount })
    .sum({ weighted: env.knex.raw('? * s.probability', [shownAmount]) });
  const open = (await statusIds(env)).filter((s) => s.kind === 'open').map((s) => s.id);
  const conv = converterFor(env, period);
  const out: DataRow[] = [];
  const totals = { count: 0, amount: 0, weighted: 0 };
  const size = bucketSize(period, 'quarter');
  for (const b of buckets(period, size)) {
    // Months are summed into their bucket per currency first, so each currency is converted once per bucket.
    const byCurrency = new Map<string, CurrencyPart>();
    for (const r of rows.filter((r) => monthInBucket(String(r.month), b))) {
      const part = byCurrency.get(String(r.currency)) ?? { currency: String(r.currency), count: 0, amount_minor: 0, weighted_minor: 0 };
      part.count += num(r.n); part.amount_minor += num(r.amount); part.weighted_minor += num(r.weighted);
      byCurrency.set(part.currency, part);
    }
    const parts = [...byCurrency.values()].map((p) => ({ ...p, weighted_minor: percentOf(p.weighted_minor, 100) })).sort((a, c) => a.currency.localeCompare(c.currency));
    const count = parts.reduce((a, p) => a + p.count, 0);
    const amount = await conv.sum(parts.map((p) => ({ currency: p.currency, minor: p.amount_minor })));
    const weighted = await conv.sum(parts.map((p) => ({ currency: p.currency, minor: p.weighted_minor })), false);
    totals.count += count; totals.amount += amount; totals.weighted += weighted;
    const statuses = config.filters.status_id ? [Number(config.filters.status_id)] : open;
    out.push({ key: b.key, label: b.label, values: { count, amount, weighted }, link: opportunityLink(env, config, { ...b, label: b.label }, { status: statuses }), currencies: parts });
  }
  return {
    columns: [{ key: 'count', label: 'Open opportunities', kind: 'count' }, { key: 'amount', label: 'Amount', kind: 'money' }, { key: 'weighted', label: 'Weighted forecast', kind: 'money' }],
    series: ['weighted', 'amount'], rows: out, totals, link: opportunityLink(env, config, period, { status: config.filters.status_id ? [Number(config.filters.status_id)] : open }), conversion: conv.info(),
    notes: bucketNotes(size, 'quarter'),
  };
}

/** Won opportunities per owner and currency, converted: shared by won-per-person, leaderboard, team and targets. */
async function wonByOwner(env: DashboardEnv, config: ModuleConfig, period: Period, conv: Converter): Promise<Map<number | null, { count: number; amount: number }>> {
  const { q, amount: shownAmount } = await opportunityQuery(env, config, period);
  const rows: Record<string, unknown>[] = await q.where('s.kind', 'won').groupBy('o.owner_id', 'o.currency').select('o.owner_id', 'o.currency')
    .count({ n: '*' }).sum({ amount: shownAmount });
  const out = new Map<number | null, { count: number; amount: number }>();
  for (const r of rows) {
    const owner = r.owner_id === null ? null : Number(r.owner_id);
    const entry = out.get(owner) ?? { count: 0, amount: 0 };
    entry.count += num(r.n);
    entry.amount += (await conv.convert(String(r.currency), num(r.amount))) ?? 0;
    out.set(owner, entry);
  }
  return out;
}

const wonStatuses = async (env: DashboardEnv) => (await statusIds(env)).filter((s) => s.kind === 'won').map((s) => s.id);

async function wonByPerson(env: DashboardEnv, config: ModuleConfig, period: Period, leaderboard: boolean): Promise<Partial<ModuleData>> {
  const conv = converterFor(env, period);
  const won = await wonByOwner(env, config, period, conv);
  const statuses = await wonStatuses(env);
  let entries = [...won].sort((a, b) => b[1].amount - a[1].amount || b[1].count - a[1].count || personLabel(env, a[0]).localeCompare(personLabel(env, b[0])));
  if (leaderboard) entries = entries.filter(([owner]) => owner !== null).slice(0, config.limit ?? 5);
  const rows: DataRow[] = entries.map(([owner, v], i) => ({
    key: String(owner ?? 'none'), label: leaderboard ? `${i + 1}. ${personLabel(env, owner)}` : personLabel(env, owner),
    values: { count: v.count, amount: v.amount }, link: owner === null ? null : opportunityLink(env, config, period, { status: statuses, owner }),
  }));
  return {
    columns: [{ key: 'count', label: 'Won deals', kind: 'count' }, { key: 'amount', label: 'Won amount', kind: 'money' }],
    series: ['amount'], rows, totals: leaderboard ? null : { count: rows.reduce((a, r) => a + num(r.values.count), 0), amount: rows.reduce((a, r) => a + num(r.values.amount), 0) },
    link: opportunityLink(env, config, period, { status: statuses }), conversion: conv.info(),
  };
}

/** Activities per person (responsible, else author) in the period. */
async function activitiesByPerson(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Map<number | null, number>> {
  const { q } = await activityQuery(env, config, period);
  const rows: Record<string, unknown>[] = await q.groupByRaw('coalesce(sa.responsible_id, sa.author_id)')
    .select(env.knex.raw('coalesce(sa.responsible_id, sa.author_id) as person')).count({ n: '*' });
  return new Map(rows.map((r) => [r.person === null ? null : Number(r.person), num(r.n)]));
}

async function team(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const conv = converterFor(env, period);
  const { q, amount: shownAmount } = await opportunityQuery(env, config, period);
  const rows: Record<string, unknown>[] = await q.whereIn('s.kind', ['won', 'lost']).groupBy('o.owner_id', 's.kind', 'o.currency')
    .select('o.owner_id', 's.kind', 'o.currency').count({ n: '*' }).sum({ amount: shownAmount });
  const activities = await activitiesByPerson(env, config, period);
  const people = new Map<number, { won: number; lost: number; amount: number; activities: number }>();
  const entry = (id: number) => people.get(id) ?? people.set(id, { won: 0, lost: 0, amount: 0, activities: 0 }).get(id)!;
  for (const r of rows) {
    if (r.owner_id === null) continue;
    const e = entry(Number(r.owner_id));
    if (r.kind === 'won') { e.won += num(r.n); e.amount += (await conv.convert(String(r.currency), num(r.amount))) ?? 0; } else e.lost += num(r.n);
  }
  for (const [id, n] of activities) if (id !== null) entry(id).activities += n;
  const statuses = await wonStatuses(env);
  const out: DataRow[] = [...people].sort((a, b) => b[1].amount - a[1].amount || personLabel(env, a[0]).localeCompare(personLabel(env, b[0]))).map(([id, e]) => ({
    key: String(id), label: personLabel(env, id),
    values: { amount: e.amount, won: e.won, lost: e.lost, win_rate: e.won + e.lost ? Math.round((e.won * 10000) / (e.won + e.lost)) : null, activities: e.activities },
    link: opportunityLink(env, config, period, { status: statuses, owner: id }),
  }));
  return {
    columns: [{ key: 'amount', label: 'Won amount', kind: 'money' }, { key: 'won', label: 'Won', kind: 'count' }, { key: 'lost', label: 'Lost', kind: 'count' },
      { key: 'win_rate', label: 'Win rate', kind: 'percent' }, { key: 'activities', label: 'Activities', kind: 'count' }],
    series: ['amount'], rows: out, totals: null, link: opportunityLink(env, config, period, { status: statuses }), conversion: conv.info(),
  };
}

async function revenue(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const conv = converterFor(env, period);
  const { q, amount: shownAmount } = await opportunityQuery(env, config, period);
  const oMonth = monthOfDate(env.knex, 'o.expected_close_on');
  const won: Record<string, unknown>[] = await q.where('s.kind', 'won').groupByRaw(`${oMonth}, o.currency`)
    .select(env.knex.raw(`${oMonth} as month`), 'o.currency').sum({ amount: shownAmount });
  const { q: cq } = await contractQuery(env, config);
  const cMonth = monthOfDate(env.knex, 'c.starts_on');
  const contracts: Record<string, unknown>[] = await cq.whereNot('c.status', 'cancelled').where('c.starts_on', '>=', period.from).where('c.starts_on', '<=', period.to)
    .groupByRaw(`${cMonth}, c.currency`).select(env.knex.raw(`${cMonth} as month`), 'c.currency').sum({ amount: 'c.amount_minor' });
  const sumFor = (rows: Record<string, unknown>[], b: Bucket) => conv.sum(perCurrency(rows.filter((r) => monthInBucket(String(r.month), b))));
  const statuses = await wonStatuses(env);
  const out: DataRow[] = [];
  const totals = { won: 0, contracts: 0 };
  const size = bucketSize(period, 'month');
  for (const b of buckets(period, size)) {
    const w = await sumFor(won, b);
    const c = await sumFor(contracts, b);
    totals.won += w; totals.contracts += c;
    out.push({ key: b.key, label: b.label, values: { won: w, contracts: c }, link: opportunityLink(env, config, { ...b }, { status: statuses }) });
  }
  return {
    columns: [{ key: 'won', label: 'Won deals', kind: 'money' }, { key: 'contracts', label: 'Contracts signed', kind: 'money' }],
    series: ['won', 'contracts'], rows: out, totals, link: opportunityLink(env, config, period, { status: statuses }), conversion: conv.info(),
    notes: [
      `Won deals count in the ${size} of their expected close date; contracts in the ${size} they start (their whole amount). The two overlap when a won deal was sold as contracts.`,
      ...bucketNotes(size, 'month'),
    ],
  };
}

async function activities(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const group = config.group ?? 'category';
  const link = activityLink(env, config, period);
  const notes: string[] = [];
  const columns: Column[] = [{ key: 'count', label: 'Activities', kind: 'count' }];
  if (group === 'person') {
    const byPerson = await activitiesByPerson(env, config, period);
    const rows = [...byPerson].sort((a, b) => b[1] - a[1] || personLabel(env, a[0]).localeCompare(personLabel(env, b[0])))
      .map(([id, n]) => ({ key: String(id ?? 'none'), label: personLabel(env, id), values: { count: n }, link: id === null ? link : activityLink(env, config, period, { person: id }) }));
    return { columns, series: ['count'], rows, totals: { count: rows.reduce((a, r) => a + r.values.count, 0) }, link, notes };
  }
  const { q } = await activityQuery(env, config, period);
  if (group === 'category') {
    const rows: Record<string, unknown>[] = await q.join('crm_activity_categories as c', 'c.id', 'sa.category_id').groupBy('c.id', 'c.name', 'c.position')
      .select('c.id', 'c.name', 'c.position').count({ n: '*' }).orderBy('c.position');
    const out = rows.map((r) => ({ key: String(r.id), label: String(r.name), values: { count: num(r.n) }, link: activityLink(env, config, period, { category: Number(r.id) }) }));
    return { columns, series: ['count'], rows: out, totals: { count: out.reduce((a, r) => a + r.values.count, 0) }, link, notes };
  }
  const month = monthOfTimestamp(env.knex, 'sa.occurred_at');
  const rows: Record<string, unknown>[] = await q.groupByRaw(month).select(env.knex.raw(`${month} as month`)).count({ n: '*' });
  const size = bucketSize(period, 'month');
  const out = buckets(period, size).map((b) => ({
    key: b.key, label: b.label, values: { count: rows.filter((r) => monthInBucket(String(r.month), b)).reduce((a, r) => a + num(r.n), 0) }, link,
  }));
  return { columns, series: ['count'], rows: out, totals: { count: out.reduce((a, r) => a + r.values.count, 0) }, link, notes: [...notes, ...bucketNotes(size, 'month')] };
}

/**
 * Time-based contracts running in the period (active, started by its end, not ended before its start).
 * Monthly recurring value: amount_minor × 30 / days of the contract (both ends counted), rounded half away from
 * zero per contract; an open-ended contract (no end date) counts its amount as its monthly value. "Expiring soon":
 * ends within `expiring_days` from the period's reference day (today, kept inside the period).
 */
async function contracts(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const conv = converterFor(env, period);
  const asOf = env.today < period.from ? period.from : env.today > period.to ? period.to : env.today;
  const until = addDays(asOf, (config.expiring_days ?? 60) - 1);
  const { q } = await contractQuery(env, config);
  const knex = env.knex;
  const rows: Record<string, unknown>[] = await q.leftJoin('crm_product_categories as pc', 'pc.id', 'c.category_id')
    .where('c.kind', 'time_based').where('c.status', 'active').where('c.starts_on', '<=', period.to)
    .where((b) => b.whereNull('c.ends_on').orWhere('c.ends_on', '>=', period.from))
    .groupBy('c.category_id', 'c.currency').select('c.category_id', 'c.currency', knex.raw('max(pc.name) as category'))
    .count({ n: '*' })
    .sum({ mrr: knex.raw(`case when c.ends_on is null then c.amount_minor else round(c.amount_minor * 30.0 / ${contractDays(knex)}) end`) })
    .select(knex.raw('sum(case when c.ends_on >= ? and c.ends_on <= ? then 1 else 0 end) as expiring', [asOf, until]));
  const byCategory = new Map<string, { id: number | null; label: string; count: number; expiring: number; parts: { currency: string; minor: number }[] }>();
  for (const r of rows) {
    const key = r.category_id === null ? 'none' : String(r.category_id);
    const e = byCategory.get(key) ?? { id: r.category_id === null ? null : Number(r.category_id), label: r.category ? String(r.category) : 'No category', count: 0, expiring: 0, parts: [] };
    e.count += num(r.n); e.expiring += num(r.expiring); e.parts.push({ currency: String(r.currency), minor: Math.round(num(r.mrr)) });
    byCategory.set(key, e);
  }
  const out: DataRow[] = [];
  const totals = { count: 0, mrr: 0, expiring: 0 };
  for (const [key, e] of [...byCategory].sort((a, b) => a[1].label.localeCompare(b[1].label))) {
    const mrr = await conv.sum(e.parts);
    totals.count += e.count; totals.mrr += mrr; totals.expiring += e.expiring;
    out.push({ key, label: e.label, values: { count: e.count, mrr, expiring: e.expiring }, link: contractLink(env, config, period, 'running', { category_id: e.id }) });
  }
  return {
    columns: [{ key: 'count', label: 'Active contracts', kind: 'count' }, { key: 'mrr', label: 'Monthly recurring value', kind: 'money' }, { key: 'expiring', label: `Ending by ${until}`, kind: 'count' }],
    series: ['mrr'], rows: out, totals, link: contractLink(env, config, period, 'running'), conversion: conv.info(),
    notes: ['Monthly recurring value = contract amount × 30 / days the contract runs; open-ended contracts count their amount per month.'],
  };
}

async function wonByProduct(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const conv = converterFor(env, period);
  const { q } = await contractQuery(env, config);
  const rows: Record<string, unknown>[] = await q.leftJoin('crm_products as p', 'p.id', 'c.product_id')
    .whereNot('c.status', 'cancelled').where('c.starts_on', '>=', period.from).where('c.starts_on', '<=', period.to)
    .groupBy('c.product_id', 'c.currency').select('c.product_id', 'c.currency', env.knex.raw('max(coalesce(p.name, c.name)) as product'))
    .countDistinct({ deals: 'c.opportunity_id' }).count({ n: '*' }).sum({ amount: 'c.amount_minor' });
  const byProduct = new Map<string, { label: string; deals: number; parts: { currency: string; minor: number }[] }>();
  for (const r of rows) {
    const key = r.product_id === null ? 'none' : String(r.product_id);
    const e = byProduct.get(key) ?? { label: String(r.product ?? 'No product'), deals: 0, parts: [] };
    e.deals += num(r.deals); e.parts.push({ currency: String(r.currency), minor: num(r.amount) });
    byProduct.set(key, e);
  }
  const out: DataRow[] = [];
  for (const [key, e] of byProduct) out.push({ key, label: e.label, values: { deals: e.deals, amount: await conv.sum(e.parts) }, link: contractLink(env, config, period, 'started') });
  out.sort((a, b) => num(b.values.amount) - num(a.values.amount) || a.label.localeCompare(b.label));
  return {
    columns: [{ key: 'deals', label: 'Won deals', kind: 'count' }, { key: 'amount', label: 'Sold amount', kind: 'money' }],
    series: ['amount'], rows: out, totals: { amount: out.reduce((a, r) => a + num(r.values.amount), 0) }, link: contractLink(env, config, period, 'started'), conversion: conv.info(),
    notes: ['Computed from the contracts made when deals were sold (one per sold item), by contract start date.'],
  };
}

/** The first day of the last month / quarter / year that ends on or before `to`. */
function lastFittingStart(kind: string, to: string): string {
  if (kind === 'month') return monthEnd(to) === to ? monthStart(to) : monthStart(addDays(monthStart(to), -1));
  if (kind === 'quarter') return quarterEnd(to) === to ? quarterStart(to) : quarterStart(addDays(quarterStart(to), -1));
  return to.slice(5) === '12-31' ? `${to.slice(0, 4)}-01-01` : `${Number(to.slice(0, 4)) - 1}-01-01`;
}

/**
 * Targets vs actual (D5): per person, the sum of their targets for the measure whose whole period (month,
 * quarter or year) lies inside the module's period, beside what they achieved in the module's period.
 * Whose targets: see `peopleWhoseSalesAreVisible`, or everyone's for who manages targets. The actuals count
 * only what the viewer may see on this overview, and the column says where (`coverageText`), so a partial
 * number is not read as a person's whole result.
 */
async function targets(env: DashboardEnv, config: ModuleConfig, period: Period): Promise<Partial<ModuleData>> {
  const measure: TargetMeasure = config.measure ?? 'won_amount';
  const conv = converterFor(env, period);
  const scope = await opportunityScope(env);
  const mine = onlyMine(env, config);
  const manages = await managesTargets(env);
  const visible = peopleWhoseSalesAreVisible(env, scope);
  const people = mine ? [env.ctx.user.id] : manages ? null : visible;
  const tq = env.knex('crm_user_targets').where('measure', measure).where('period_start', '>=', period.from)
    .where((b) => { for (const kind of ['month', 'quarter', 'year']) b.orWhere((w) => w.where('period_kind', kind).where('period_start', '<=', lastFittingStart(kind, period.to))); });
  if (people) tq.whereIn('user_id', people);
  const targetRows: Record<string, unknown>[] = await tq.groupBy('user_id', 'currency').select('user_id', 'currency').sum({ target: 'target_value' });
  const target = new Map<number, number>();
  for (const r of targetRows) {
    const value = measure === 'won_amount' && r.currency ? (await conv.convert(String(r.currency), num(r.target))) ?? 0 : num(r.target);
    target.set(Number(r.user_id), (target.get(Number(r.user_id)) ?? 0) + value);
  }
  const actual = new Map<number, number>();
  if (measure === 'activities') {
    for (const [id, n] of await activitiesByPerson(env, config, period)) if (id !== null) actual.set(id, n);
  } else {
    for (const [id, v] of await wonByOwner(env, config, period, conv)) if (id !== null) actual.set(id, measure === 'won_amount' ? v.amount : v.count);
  }
  const kind = measure === 'won_amount' ? 'money' : 'count';
  const statuses = await wonStatuses(env);
  const rows: DataRow[] = [...target.keys()].sort((a, b) => personLabel(env, a).localeCompare(personLabel(env, b))).map((id) => {
    const t = target.get(id) ?? 0;
    const a = actual.get(id) ?? 0;
    return {
      key: String(id), label: personLabel(env, id), values: { target: t, actual: a, progress: t > 0 ? Math.round((a * 10000) / t) : null },
      link: measure === 'activities' ? activityLink(env, config, period, { person: id }) : opportunityLink(env, config, period, { status: statuses, owner: id }),
    };
  });
  const where = coverageText(env, measure === 'activities' ? [scope, await accountScope(env), await partnerScope(env)] : [scope]);
  const achieved = { won_amount: `Won ${where}`, won_count: `Deals won ${where}`, activities: `Activities ${where}` }[measure];
  const notes: string[] = [];
  if (!rows.length) notes.push(manages ? 'No targets for this period: targets are set under CRM settings → User targets.' : 'No targets for this period that you may see.');
  else {
    if (env.ctx.project) notes.push('Results in other projects are not counted here: the global CRM overview counts all your projects.');
    if (!mine && manages && visible) notes.push('You see every target because you manage user targets, but the actuals count only what you may see.');
  }
  return {
    columns: [{ key: 'target', label: `Target (${MEASURE_LABELS[measure].toLowerCase()})`, kind }, { key: 'actual', label: achieved, kind }, { key: 'progress', label: 'Reached', kind: 'percent' }],
    series: ['target', 'actual'], rows, totals: null,
    link: measure === 'activities' ? activityLink(env, config, period) : opportunityLink(env, config, period, { status: statuses }), conversion: conv.info(),
    notes,
  };
}

const COMPUTE: Record<ModuleType, (env: DashboardEnv, config: ModuleConfig, period: Period) => Promise<Partial<ModuleData>>> = {
  funnel, forecast, revenue, activities, team, contracts, targets,
  won_by_person: (env, c, p) => wonByPerson(env, c, p, false),
  leaderboard: (env, c, p) => wonByPerson(env, c, p, true),
  won_by_product: wonByProduct,
};

// ---- Cached results ----

/** Every table a module reads (directly or through a visibility rule): a write to any of them recomputes. */
const MODULE_TABLES: readonly VersionedTable[] = [
  'crm_accounts', 'crm_account_projects', 'crm_opportunities', 'crm_opportunity_statuses', 'crm_sales_activities', 'crm_activity_categories',
  'crm_contracts', 'crm_quotes', 'crm_quote_items', 'crm_products', 'crm_exchange_rates', 'crm_settings', 'crm_user_types', 'crm_user_targets',
  'crm_user_supervisors', 'crm_role_visibility', 'crm_partner_users', 'crm_partners',
];
/** Host users' names reach the rows without a table version: a minute bounds how long a renamed user shows. */
const MODULE_CACHE_MS = 60_000;
const moduleCache = (knex: Knex) => cacheFor<ModuleData>(knex, 'dashboard-modules', 1000, MODULE_CACHE_MS);

/**
 * What the numbers of a module depend on besides its own settings: the data (table versions), what this viewer
 * may see (the scopes every module type applies, and whether they manage user targets, which shows every
 * target), the level, the day and the reporting currency.
 */
const viewerKey = (env: DashboardEnv) => memo(env, 'viewer-key', async () => {
  const versions = await versionKey(env.knex, MODULE_TABLES);
  const scopes = await Promise.all([opportunityScope(env), contractScope(env), accountScope(env), partnerScope(env)]);
  return JSON.stringify([versions, env.base, env.today, env.reporting, env.userType, scopes.map(scopeKey), (await fieldRules(env)).key, await managesTargets(env)]);
});

/**
 * One module's numbers for the period it is configured with, or the viewer's period from the picker. A year of
 * 50,000 opportunities and 250,000 activities takes hundreds of milliseconds to aggregate; the result is
 * reused until the data or the viewer's reach changes. The returned object is shared: do not change it.
 */
export async function computeModule(env: DashboardEnv, type: ModuleType, config: ModuleConfig, periodOverride: PeriodConfig | null = null): Promise<ModuleData> {
  const [{ filters, hidden }] = await filtersForViewer(env, [config.filters]);
  const applied = { ...config, filters };
  const leftOut = Object.values(hidden);
  const key = JSON.stringify([await viewerKey(env), type, applied, periodOverride, leftOut]);
  return moduleCache(env.knex).get(key, () => computeModuleNow(env, type, applied, periodOverride, leftOut));
}

/**
 * A module whose period cannot be drawn — stored before the rules of `checkPeriod` held, or by hand — is shown
 * empty with the reason and a way out, so it never takes down the page it is on (the viewer's own period choice
 * is checked before it gets here: a 422).
 */
function periodNotDrawn(env: DashboardEnv, type: ModuleType, config: ModuleConfig, period: PeriodConfig, problem: string): ModuleData {
  return {
    type, period: { from: '', to: '', label: PERIOD_LABELS[period.kind] }, currency: env.reporting, columns: [], series: [], rows: [], totals: null,
    chart: 'table', link: null, conversion: null, notes: [`This module’s period cannot be shown (${problem}): edit the module to choose another one.`],
    people: onlyMine(env, config) ? 'me' : 'all',
  };
}

/** `config`: the module's, its filters as the viewer may have them (`filtersForViewer`), `leftOut` saying what was left out. */
async function computeModuleNow(env: DashboardEnv, type: ModuleType, config: ModuleConfig, periodOverride: PeriodConfig | null, leftOut: string[]): Promise<ModuleData> {
  const leftOutPart = leftOutJson(leftOut);
  const chosen = periodOverride ?? config.period;
  const problem = periodProblem(chosen);
  if (problem) return { ...periodNotDrawn(env, type, config, chosen, problem), ...leftOutPart };
  const period = resolvePeriod(chosen, env.today);
  const part = await COMPUTE[type](env, config, period);
  const conversion = part.conversion ?? null;
  const notes = [...(part.notes ?? [])];
  return {
    type, period, currency: env.reporting, columns: part.columns ?? [], series: part.series ?? [], rows: part.rows ?? [], totals: part.totals ?? null,
    chart: config.chart, link: part.link ?? null, conversion, notes, people: onlyMine(env, config) ? 'me' : 'all', ...leftOutPart,
  };
}
