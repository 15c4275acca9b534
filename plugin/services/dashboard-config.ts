import { invalid } from '../http/errors';
import { addDays, daysBetween } from './dates';
import { dayProblem, FieldErrors, text, type FormInput } from './form';
import { isCurrencyCode } from './money';

/**
 * What an overview module is and how it is configured (SPEC D1–D3): its type, the period it covers, its
 * filters and its chart. Pure rules, no database: the numbers are computed in dashboard-data.ts.
 */

export const MODULE_TYPES = ['funnel', 'forecast', 'won_by_person', 'won_by_product', 'revenue', 'activities', 'team', 'leaderboard', 'contracts', 'targets'] as const;
export type ModuleType = (typeof MODULE_TYPES)[number];

export const MODULE_LABELS: Record<ModuleType, string> = {
  funnel: 'Sales funnel',
  forecast: 'Weighted forecast',
  won_by_person: 'Won deals per person',
  won_by_product: 'Won deals per product',
  revenue: 'Revenue over time',
  activities: 'Sales activities',
  team: 'Team performance',
  leaderboard: 'Top performers',
  contracts: 'Active contracts',
  targets: 'Targets vs actual',
};

export const MODULE_DESCRIPTIONS: Record<ModuleType, string> = {
  funnel: 'Opportunities by status: count, amount and weighted amount (expected close in the period).',
  forecast: 'Open opportunities: amount × status probability, by expected close quarter.',
  won_by_person: 'Won opportunities per owner (expected close in the period).',
  won_by_product: 'Sold contracts per product (start in the period).',
  revenue: 'Won opportunities and contracts, per month (per quarter over periods of more than five years).',
  activities: 'Sales activities by category, by person or per month.',
  team: 'Per sales rep: won amount, win rate and activities.',
  leaderboard: 'The best sellers of the period by won amount.',
  contracts: 'Time-based contracts running in the period: count, monthly recurring value, expiring soon.',
  targets: 'Each person’s target for the period beside what they achieved.',
};

export const CHART_KINDS = ['bars', 'line', 'funnel', 'table'] as const;
export type ChartKind = (typeof CHART_KINDS)[number];
export const CHART_LABELS: Record<ChartKind, string> = { bars: 'Bars', line: 'Line', funnel: 'Funnel', table: 'Table only' };

/** Charts that make sense for a type; the first is the default. */
export const CHARTS_FOR: Record<ModuleType, ChartKind[]> = {
  funnel: ['funnel', 'bars', 'table'],
  forecast: ['bars', 'line', 'table'],
  won_by_person: ['bars', 'table'],
  won_by_product: ['bars', 'table'],
  revenue: ['line', 'bars', 'table'],
  activities: ['bars', 'line', 'table'],
  team: ['bars', 'table'],
  leaderboard: ['bars', 'table'],
  contracts: ['bars', 'table'],
  targets: ['bars', 'table'],
};

export const PERIOD_KINDS = ['this_month', 'this_quarter', 'this_year', 'last_days', 'next_days', 'custom'] as const;
export type PeriodKind = (typeof PERIOD_KINDS)[number];
export const PERIOD_LABELS: Record<PeriodKind, string> = {
  this_month: 'This month', this_quarter: 'This quarter', this_year: 'This year', last_days: 'Last N days', next_days: 'Next N days', custom: 'Custom range',
};

export interface PeriodConfig {
  kind: PeriodKind;
  /** For last_days / next_days. */
  days?: number;
  /** For custom. */
  from?: string;
  to?: string;
}

export interface Period {
  from: string;
  to: string;
  label: string;
}

/** Filters a module may take, per type; anything else is refused (422), never silently ignored. */
export const FILTER_LABELS: Record<string, string> = {
  project_id: 'Project', owner_id: 'Owner', account_id: 'Account', currency: 'Currency', status_id: 'Opportunity status',
  category_id: 'Category', contract_status: 'Contract status',
};
const OPPORTUNITY_FILTERS = ['project_id', 'owner_id', 'account_id', 'currency'];
export const FILTERS_FOR: Record<ModuleType, string[]> = {
  funnel: [...OPPORTUNITY_FILTERS, 'status_id'],
  forecast: [...OPPORTUNITY_FILTERS, 'status_id'],
  won_by_person: OPPORTUNITY_FILTERS,
  won_by_product: ['project_id', 'account_id', 'category_id', 'currency'],
  revenue: ['project_id', 'account_id', 'currency'],
  activities: ['project_id', 'account_id', 'category_id'],
  team: ['project_id', 'account_id'],
  leaderboard: ['project_id', 'account_id', 'currency'],
  contracts: ['project_id', 'account_id', 'category_id', 'currency'],
  targets: [],
};

export type Filters = Record<string, number | string>;

/** Whose numbers a module shows: decided by the user type (directors: the team, reps: their own), everyone visible, or only mine. */
export const PEOPLE = ['auto', 'all', 'me'] as const;
export type People = (typeof PEOPLE)[number];
export const PEOPLE_LABELS: Record<People, string> = { auto: 'By user type (directors: everyone, reps: their own)', all: 'Everyone I may see', me: 'Only mine' };

export const ACTIVITY_GROUPS = ['category', 'person', 'month'] as const;
export type ActivityGroup = (typeof ACTIVITY_GROUPS)[number];

export const TARGET_MEASURES = ['won_amount', 'won_count', 'activities'] as const;
export type TargetMeasure = (typeof TARGET_MEASURES)[number];
export const MEASURE_LABELS: Record<TargetMeasure, string> = { won_amount: 'Won amount', won_count: 'Number of won deals', activities: 'Activities' };

export interface ModuleConfig {
  period: PeriodConfig;
  filters: Filters;
  chart: ChartKind;
  people: People;
  /** activities: how to group. */
  group?: ActivityGroup;
  /** targets: which measure. */
  measure?: TargetMeasure;
  /** leaderboard: how many people. */
  limit?: number;
  /** contracts: "expiring soon" = ends within this many days. */
  expiring_days?: number;
}

export function defaultConfig(type: ModuleType): ModuleConfig {
  const base: ModuleConfig = { period: { kind: 'this_year' }, filters: {}, chart: CHARTS_FOR[type][0], people: 'auto' };
  if (type === 'forecast') base.period = { kind: 'next_days', days: 365 };
  if (type === 'activities') { base.group = 'category'; base.period = { kind: 'last_days', days: 90 }; }
  if (type === 'targets') { base.measure = 'won_amount'; base.period = { kind: 'this_quarter' }; }
  if (type === 'leaderboard') base.limit = 5;
  if (type === 'contracts') { base.expiring_days = 60; base.period = { kind: 'this_month' }; }
  return base;
}

export const isModuleType = (v: string): v is ModuleType => (MODULE_TYPES as readonly string[]).includes(v);

// ---- Dates (UTC calendar days as YYYY-MM-DD) ----

const pad = (n: number) => String(n).padStart(2, '0');
export const ymd = (y: number, m: number, d: number): string => {
  const date = new Date(Date.UTC(y, m - 1, d));
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
};
const parts = (iso: string) => iso.split('-').map(Number) as [number, number, number];

export function quarterStart(iso: string): string {
  const [y, m] = parts(iso);
  return ymd(y, Math.floor((m - 1) / 3) * 3 + 1, 1);
}
export const monthStart = (iso: string): string => `${iso.slice(0, 7)}-01`;
export function monthEnd(iso: string): string {
  const [y, m] = parts(iso);
  return ymd(y, m + 1, 0);
}
export function quarterEnd(iso: string): string {
  const [y, m] = parts(quarterStart(iso));
  return ymd(y, m + 3, 0);
}
export const quarterLabel = (iso: string): string => `${iso.slice(0, 4)} Q${Math.floor((Number(iso.slice(5, 7)) - 1) / 3) + 1}`;

export type BucketSize = 'month' | 'quarter' | 'year';
export interface Bucket { key: string; label: string; from: string; to: string }
const BUCKET_SIZES: readonly BucketSize[] = ['month', 'quarter', 'year'];
/** The most rows a time chart draws readably: five years of months. */
export const MAX_BUCKETS = 60;

/** A running number of the month, quarter or year a day is in: consecutive buckets have consecutive numbers. */
function bucketIndex(size: BucketSize, iso: string): number {
  const [y, m] = parts(iso);
  return size === 'month' ? y * 12 + m - 1 : size === 'quarter' ? y * 4 + Math.floor((m - 1) / 3) : y;
}

/**
 * The finest calendar unit, `finest` or coarser, that cuts `period` into at most MAX_BUCKETS buckets: a long
 * period is drawn in quarters (or years) rather than cut off, so its rows always add up to the whole period.
 */
export function bucketSize(period: Period, finest: BucketSize): BucketSize {
  const fits = (size: BucketSize) => bucketIndex(size, period.to) - bucketIndex(size, period.from) + 1 <= MAX_BUCKETS;
  return BUCKET_SIZES.slice(BUCKET_SIZES.indexOf(finest)).find(fits) ?? 'year';
}

/** Calendar buckets (months, quarters or years) covering the whole period, each with its own first and last day. */
export function buckets(period: Period, size: BucketSize): Bucket[] {
  const startOf = (iso: string) => (size === 'month' ? monthStart(iso) : size === 'quarter' ? quarterStart(iso) : `${iso.slice(0, 4)}-01-01`);
  const endOf = (start: string) => (size === 'month' ? monthEnd(start) : size === 'quarter' ? quarterEnd(start) : `${start.slice(0, 4)}-12-31`);
  const keyOf = (start: string) => (size === 'month' ? start.slice(0, 7) : size === 'quarter' ? quarterLabel(start) : start.slice(0, 4));
  const out: Bucket[] = [];
  for (let start = startOf(period.from); start <= period.to; start = addDays(endOf(start), 1)) {
    const end = endOf(start);
    out.push({ key: keyOf(start), label: keyOf(start), from: start < period.from ? period.from : start, to: end > period.to ? period.to : end });
  }
  return out;
}

/** Whether a `YYYY-MM` month (as the SQL of a module groups by) lies in a bucket. */
export const monthInBucket = (month: string, bucket: Bucket): boolean => month >= bucket.from.slice(0, 7) && month <= bucket.to.slice(0, 7);

/** The dates a period covers on `today` (both ends included). */
export function resolvePeriod(p: PeriodConfig, today: string): Period {
  switch (p.kind) {
    case 'this_month': return { from: monthStart(today), to: monthEnd(today), label: `${today.slice(0, 7)}` };
    case 'this_quarter': return { from: quarterStart(today), to: quarterEnd(today), label: quarterLabel(today) };
    case 'this_year': return { from: `${today.slice(0, 4)}-01-01`, to: `${today.slice(0, 4)}-12-31`, label: today.slice(0, 4) };
    case 'last_days': return { from: addDays(today, -((p.days ?? 30) - 1)), to: today, label: `Last ${p.days ?? 30} days` };
    case 'next_days': return { from: today, to: addDays(today, (p.days ?? 90) - 1), label: `Next ${p.days ?? 90} days` };
    case 'custom': return { from: p.from!, to: p.to!, label: `${p.from} – ${p.to}` };
  }
}

/** Longest period in days, for N days and for a custom range: ten years. */
const MAX_PERIOD_DAYS = 3660;

/**
 * The rules a period is saved and drawn by, each problem added to `errors` under its field: N days is 1–3660; a
 * custom range needs both dates, within the years a day can be counted in (dates.ts), the end on or after the
 * start, and at most ten years.
 */
function checkPeriod(period: PeriodConfig, errors: FieldErrors): void {
  // A stored config is JSON of any shape: days left out (or null) take their default, dates that are not text are missing.
  if ((period.kind === 'last_days' || period.kind === 'next_days') && period.days !== undefined && period.days !== null) {
    if (!Number.isInteger(period.days) || period.days < 1 || period.days > MAX_PERIOD_DAYS) errors.add('days', `Days must be a whole number from 1 to ${MAX_PERIOD_DAYS}`);
  }
  if (period.kind !== 'custom') return;
  const ends = [['from', 'From', period.from], ['to', 'To', period.to]] as const;
  for (const [field, label, day] of ends) {
    const problem = typeof day !== 'string' || !day ? `${label} is required for a custom range` : dayProblem(day, label);
    if (problem) errors.add(field, problem);
  }
  if (errors.errors.from || errors.errors.to) return;
  if (period.to! < period.from!) errors.add('to', 'The period ends before it starts');
  else if (daysBetween(period.from!, period.to!) > MAX_PERIOD_DAYS) errors.add('to', 'The period is at most ten years');
}

/** What keeps a period (as stored with a module) from being drawn, or null: the first problem `checkPeriod` finds. */
export function periodProblem(period: PeriodConfig): string | null {
  const errors = new FieldErrors();
  checkPeriod(period, errors);
  return Object.values(errors.errors)[0] ?? null;
}

/** A period from form or query fields (`period`, `days`, `from`, `to`), checked by `checkPeriod`. */
export function readPeriod(input: FormInput, errors: FieldErrors, fallback: PeriodConfig): PeriodConfig {
  const kind = text(input, 'period');
  if (!kind) return fallback;
  if (!(PERIOD_KINDS as readonly string[]).includes(kind)) {
    errors.add('period', 'Period must be this month, this quarter, this year, last or next N days, or a custom range');
    return fallback;
  }
  const period: PeriodConfig = { kind: kind as PeriodKind };
  if (kind === 'last_days' || kind === 'next_days') {
    const raw = text(input, 'days') || '30';
    period.days = /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN;
  }
  if (kind === 'custom') {
    period.from = text(input, 'from');
    period.to = text(input, 'to');
  }
  checkPeriod(period, errors);
  return period;
}

/** A viewer's period from the query string (the period picker), or null when the module's own applies. */
export function readPeriodQuery(query: FormInput): PeriodConfig | null {
  if (!text(query, 'period')) return null;
  const errors = new FieldErrors();
  const period = readPeriod(query, errors, { kind: 'this_year' });
  if (errors.any) throw invalid('The period was not applied: fix the fields marked below.', errors.errors);
  return period;
}

/** Filters naming a record that has a visibility of its own: a viewer who may not see it is not told which it is. */
export const RECORD_FILTERS = ['account_id', 'project_id'] as const;
export type RecordFilter = (typeof RECORD_FILTERS)[number];
/**
 * What the edit form sends for a record filter the editor may not see (in place of its id, which would name it):
 * the module keeps the filter it has.
 */
export const KEPT_FILTER = 'kept';

/**
 * `filter_<field>` form fields into typed filters; a field the module type does not know is refused. A record
 * filter sent as KEPT_FILTER keeps the value of `current` (none if it has none).
 */
export function readFilters(type: ModuleType, input: FormInput, errors: FieldErrors, current: Filters = {}): Filters {
  const allowed = FILTERS_FOR[type];
  const filters: Filters = {};
  for (const key of Object.keys(input)) {
    if (!key.startsWith('filter_')) continue;
    const field = key.slice('filter_'.length);
    const value = text(input, key);
    if (!allowed.includes(field)) {
      errors.add(key, `${MODULE_LABELS[type]} cannot be filtered by "${field.slice(0, 40)}"`);
      continue;
    }
    if (!value) continue;
    if (value === KEPT_FILTER && (RECORD_FILTERS as readonly string[]).includes(field)) {
      if (current[field] !== undefined) filters[field] = current[field];
    } else if (field === 'currency') {
      if (!isCurrencyCode(value.toUpperCase())) errors.add(key, 'Currency must be a code such as EUR');
      else filters.currency = value.toUpperCase();
    } else if (!/^\d{1,9}$/.test(value) || Number(value) <= 0) {
      errors.add(key, `${FILTER_LABELS[field]} is not valid`);
    } else {
      filters[field] = Number(value);
    }
  }
  return filters;
}

export interface ModuleInput {
  title: string;
  config: ModuleConfig;
}

/** The edit form of a module (title, period, filters, chart and the type's own options), validated as a whole. */
export function readModuleInput(type: ModuleType, current: ModuleConfig, input: FormInput): ModuleInput {
  const errors = new FieldErrors();
  const title = errors.text(input, 'title', 'Title', { max: 200 }) || MODULE_LABELS[type];
  const period = readPeriod(input, errors, current.period);
  const filters = readFilters(type, input, errors, current.filters);
  const chartRaw = text(input, 'chart') || current.chart;
  if (!CHARTS_FOR[type].includes(chartRaw as ChartKind)) errors.add('chart', `Chart must be one of: ${CHARTS_FOR[type].join(', ')}`);
  const peopleRaw = text(input, 'people') || current.people;
  if (!(PEOPLE as readonly string[]).includes(peopleRaw)) errors.add('people', 'People must be auto, all or me');
  const config: ModuleConfig = { period, filters, chart: chartRaw as ChartKind, people: peopleRaw as People };
  if (type === 'activities') {
    const group = text(input, 'group') || current.group || 'category';
    if (!(ACTIVITY_GROUPS as readonly string[]).includes(group)) errors.add('group', 'Group must be category, person or month');
    config.group = group as ActivityGroup;
  }
  if (type === 'targets') {
    const measure = text(input, 'measure') || current.measure || 'won_amount';
    if (!(TARGET_MEASURES as readonly string[]).includes(measure)) errors.add('measure', 'Measure must be won amount, number of won deals or activities');
    config.measure = measure as TargetMeasure;
  }
  if (type === 'leaderboard') {
    const raw = text(input, 'limit') || String(current.limit ?? 5);
    if (!/^\d{1,2}$/.test(raw) || Number(raw) < 1 || Number(raw) > 50) errors.add('limit', 'Show must be a whole number from 1 to 50');
    config.limit = Number(raw);
  }
  if (type === 'contracts') {
    const raw = text(input, 'expiring_days') || String(current.expiring_days ?? 60);
    if (!/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > 3660) errors.add('expiring_days', 'Expiring within must be a whole number of days from 1 to 3660');
    config.expiring_days = Number(raw);
  }
  if (errors.any) throw invalid('The module was not saved: fix the fields marked below.', errors.errors);
  return { title, config };
}

/** A stored config (JSON text) read back defensively: whatever is missing or unknown falls back to the type's default. */
export function parseStoredConfig(type: ModuleType, raw: string): ModuleConfig {
  const def = defaultConfig(type);
  let stored: Partial<ModuleConfig>;
  try {
    stored = JSON.parse(raw) as Partial<ModuleConfig>;
  } catch {
    return def;
  }
  const period = stored.period && (PERIOD_KINDS as readonly string[]).includes(stored.period.kind) ? stored.period : def.period;
  return {
    ...def,
    ...stored,
    period,
    filters: Object.fromEntries(Object.entries(stored.filters ?? {}).filter(([k]) => FILTERS_FOR[type].includes(k))),
    chart: CHARTS_FOR[type].includes(stored.chart as ChartKind) ? (stored.chart as ChartKind) : def.chart,
    people: (PEOPLE as readonly string[]).includes(stored.people as string) ? (stored.people as People) : 'auto',
  };
}
