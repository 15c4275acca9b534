import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { CrmError, forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostProject } from '../host';
import { ACCOUNT_SEARCH_COLUMNS, ACCOUNT_SEARCH_TABLE } from '../../migrations/20261123_025_account_search';
import { ACCOUNT_NAME_INDEX } from '../../migrations/20261123_026_account_list_index';
import { ACCOUNT_STREAM_INDEXES } from '../../migrations/20261124_028_account_stream_indexes';
import { isPg } from '../../migrations/dialect';
import { whereAnyContains } from './text-search';
import { Account, AccountGroup, AccountType, ACCOUNT_FIELDS, Industry, applyAccountScope } from '../models/account';
import { applyPartnerScope } from '../models/partner';
import { activeFields, readCustomValues, saveCustomValues, type CustomFieldDef } from './custom-fields';
import { FieldErrors, flag, list, text, type FormInput, positiveId, validId } from './form';
import { changedFields, journal, type FieldChange } from './journal';
import { cappedCount, type PageMeta } from './pagination';
import { LIST_CACHE_MS, cacheFor, listNumbers, readUnderVersions, rowsAtMost, scopeKey, versionKey, type VersionedTable } from './data-version';
import { addDays, todayUtc } from './dates';
import { recordScope, type RecordScope } from './visibility';
import { findVisiblePartner, isPartnerUser, partnerOfPartnerUser } from './partners';

export const ACCOUNT_SORTS = ['name', 'city', 'customer_number', 'created_at', 'updated_at'] as const;

export interface AccountFilters {
  q: string;
  type: number | null;
  industry: number | null;
  manager: number | null;
  group: number | null;
  key_account: boolean;
  customers: boolean;
  suppliers: boolean;
  favorites: boolean;
  expiring_days: number | null;
  sort: (typeof ACCOUNT_SORTS)[number];
  dir: 'asc' | 'desc';
}

/** Filters from a query string. Unknown or malformed values fall back to "no filter" rather than erroring. */
export function parseAccountFilters(query: FormInput): AccountFilters {
  const sort = text(query, 'sort');
  const days = text(query, 'expiring_days');
  return {
    q: text(query, 'q').slice(0, 100),
    type: positiveId(text(query, 'type')),
    industry: positiveId(text(query, 'industry')),
    manager: positiveId(text(query, 'manager')),
    group: positiveId(text(query, 'group')),
    key_account: flag(query, 'key_account'),
    customers: flag(query, 'customers'),
    suppliers: flag(query, 'suppliers'),
    favorites: flag(query, 'favorites'),
    expiring_days: /^\d{1,4}$/.test(days) ? Number(days) : null,
    sort: (ACCOUNT_SORTS as readonly string[]).includes(sort) ? (sort as AccountFilters['sort']) : 'name',
    dir: text(query, 'dir') === 'desc' ? 'desc' : 'asc',
  };
}

/** The non-default filters, as query-string pairs (for links, saved filters and pagination). */
export function filterParams(filters: AccountFilters): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(filters)) {
    if (v === null || v === false || v === '' || (k === 'sort' && v === 'name') || (k === 'dir' && v === 'asc')) continue;
    out[k] = v === true ? '1' : String(v);
  }
  return out;
}

/**
 * The term as one FTS5 string: inside double quotes every character is literal except `"`, written twice, so
 * no input (`OR`, `NEAR`, `*`, `^`, `:`, parentheses) can turn into FTS5 query syntax.
 */
export function ftsPhrase(term: string): string {
  return `"${term.replace(/"/g, '""')}"`;
}

export interface AccountRow {
  id: number;
  name: string;
  organization: string;
  email: string;
  city: string;
  country: string;
  customer_number: string | null;
  is_key_account: boolean;
  is_supplier: boolean;
  is_global: boolean;
  is_private: boolean;
  account_manager_id: number | null;
  type_name: string;
  industry_name: string | null;
  service_expires_on: string | null;
}

/** `searchIndex`: whether a search term may narrow through the trigram index first (see below). */
function applyFilters(q: Knex.QueryBuilder, f: AccountFilters, userId: number, searchIndex = true): void {
  if (f.q) {
    // SQLite: the trigram index (migration 025) narrows to accounts holding the term in one of the five columns,
    // and the LIKE below still decides: trigrams fold every letter's case (SQLite's lower() and LIKE only ASCII's;
    // the index even maps the Kelvin sign to "k"), and it gets the term lowercased as the LIKE pattern is, so it
    // may offer more rows than LIKE keeps, never fewer, and the result stays exactly today's
    // substring match. Under 3 characters there is no trigram to look up: LIKE alone. (Form text never holds a
    // NUL, which FTS5 cannot parse: see form.ts.) PostgreSQL: its GIN trigram indexes serve these same LIKE conditions.
    const term = f.q.toLowerCase();
    if (searchIndex && !isPg(q) && [...term].length >= 3) {
      q.whereRaw(`a.id in (select rowid from ${ACCOUNT_SEARCH_TABLE} where ${ACCOUNT_SEARCH_TABLE} match ?)`, [ftsPhrase(term)]);
    }
    whereAnyContains(q, ACCOUNT_SEARCH_COLUMNS.map((column) => `a.${column}`), f.q);
  }
  if (f.type) q.where('a.account_type_id', f.type);
  if (f.industry) q.where('a.industry_id', f.industry);
  if (f.manager) q.where('a.account_manager_id', f.manager);
  if (f.group) q.whereExists((s) => s.select(1).from('crm_account_group_members as g').whereRaw('g.account_id = a.id').where('g.group_id', f.group));
  if (f.key_account) q.where('a.is_key_account', true);
  // One expression, which no index answers: as `is not null and <> ''`, PostgreSQL ANDed a bitmap of every customer
  // (60 % of the accounts, 2–3 ms at 100,000) into a rep's filtered page; now it tests the rows it fetches anyway.
  if (f.customers) q.whereRaw("coalesce(a.customer_number, '') <> ''");
  if (f.suppliers) q.where('a.is_supplier', true);
  if (f.favorites) q.whereExists((s) => s.select(1).from('crm_favorite_accounts as fav').whereRaw('fav.account_id = a.id').where('fav.user_id', userId));
  if (f.expiring_days !== null) {
    const today = todayUtc();
    q.whereBetween('a.service_expires_on', [today, addDays(today, f.expiring_days)]);
  }
}

/** Every table an account list reads: a write to any of them forgets its cached counts and page starts. */
const ACCOUNT_LIST_TABLES: readonly VersionedTable[] = ['crm_accounts', 'crm_account_projects', 'crm_account_group_members', 'crm_favorite_accounts'];
const pageStarts = (knex: Knex) => cacheFor<{ name: string; id: number }>(knex, 'account-list-page-starts', 5000, LIST_CACHE_MS);

/**
 * A page of the accounts this user may see, filtered and sorted in SQL. Three things keep a list of 100,000
 * accounts as quick as one of 1,000:
 * - the count (of at most COUNT_CAP rows) is kept per viewer, filters and table versions, so it runs again
 *   only after a write;
 * - sorted by name, a page starts where the last reading of the list saw it start (keyset: `(name, id) >=`),
 *   instead of skipping `offset` rows; each page also notes where the next one starts, so paging forward never
 *   skips. Without a noted start (the first visit to a deep page, another sort) it falls back to the offset;
 * - a filtered list sorted by name is read the cheapest way (see `nameOrderWalk` and `fetchThenSort`).
 */
export async function listAccounts(ctx: CrmContext, filters: AccountFilters, page: number, perPage: number): Promise<{ rows: AccountRow[]; meta: PageMeta }> {
  const knex = ctx.host.knex;
  const scope = await recordScope(ctx, 'accounts', 'view_accounts');
  const { sort, dir, ...narrowing } = filters;
  const versions = await versionKey(knex, ACCOUNT_LIST_TABLES);
  const filterKey = JSON.stringify([versions, narrowing, filters.expiring_days === null ? null : todayUtc()]);
  const key = JSON.stringify([filterKey, scopeKey(scope)]);
  // The count reads every match (the scope as one list of linked accounts); a page stops after 25 rows (the
  // scope probed per account): see applyAccountScope.
  const matching = (from: string | Knex.Raw, shape: 'list' | 'lookup', searchIndex = true) => {
    const q = knex(from);
    applyAccountScope(q, scope, shape);
    applyFilters(q, filters, ctx.user.id, searchIndex);
    return q;
  };
  const { total: count, capped } = await listNumbers(knex, 'account-list-counts', key, () => cappedCount(knex, matching('crm_accounts as a', 'list')));
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const streams = ownStreams(knex, scope);
  const walk = sort === 'name' ? await nameOrderWalk(knex, { filters, versions, filterKey, count, perPage, streams }) : null;
  const fetchFirst = sort === 'name' && !capped && await fetchThenSort(knex, { filters, versions, count, perPage });
  const pageKey = (n: number) => JSON.stringify([key, sort, dir, perPage, n]);
  const start = sort === 'name' ? await pageStarts(knex).peek(pageKey(current)) : undefined;
  const skipped = start ? 0 : (current - 1) * perPage;
  const order = (alias: string) => [{ column: `${alias}.${sort}`, order: dir }, { column: `${alias}.id`, order: dir }];
  const fromStart = (q: Knex.QueryBuilder, alias = 'a') => (start ? q.whereRaw(`(${alias}.name, ${alias}.id) ${dir === 'asc' ? '>=' : '<='} (?, ?)`, [start.name, start.id]) : q);
  const withColumns = (q: Knex.QueryBuilder) => q.join('crm_account_types as t', 't.id', 'a.account_type_id')
    .leftJoin('crm_industries as i', 'i.id', 'a.industry_id')
    .select('a.id', 'a.name', 'a.organization', 'a.email', 'a.city', 'a.country', 'a.customer_number', 'a.is_key_account', 'a.is_supplier',
      'a.is_global', 'a.is_private', 'a.account_manager_id', 'a.service_expires_on', 't.name as type_name', 'i.name as industry_name');
  let q: Knex.QueryBuilder;
  if (fetchFirst) {
    // Every match read first (materialized: the planner may not turn it back into a walk), then sorted and cut.
    q = fromStart(knex.withMaterialized('matches', withColumns(matching('crm_accounts as a', 'lookup'))).from('matches as m').select('m.*'), 'm')
      .orderBy(order('m'));
  } else if (walk && streams) {
    // Each stream's first rows in name order (as many as the page needs), merged: see `ownStreams`.
    const [first, ...rest] = streams.streams.map((stream) => {
      const rows = fromStart(stream.narrow(matching(knex.raw(`crm_accounts as a indexed by ${stream.index}`), 'lookup', walk.searchIndex)))
        .select('a.id').orderBy(order('a')).limit(skipped + perPage + 1);
      return knex.select('m.id').from(rows.as('m'));
    });
    q = withColumns(knex('crm_accounts as a').whereIn('a.id', first.union(rest))).orderBy(order('a'));
  } else {
    const from = walk ? knex.raw(`crm_accounts as a indexed by ${ACCOUNT_NAME_INDEX}`) : 'crm_accounts as a';
    q = withColumns(fromStart(matching(from, 'lookup', walk?.searchIndex))).orderBy(order('a'));
  }
  const found: AccountRow[] = await q.limit(perPage + 1).offset(skipped);
  if (sort === 'name') {
    if (!start && found.length) pageStarts(knex).put(pageKey(current), { name: found[0].name, id: Number(found[0].id) });
    if (found.length > perPage) pageStarts(knex).put(pageKey(current + 1), { name: found[perPage].name, id: Number(found[perPage].id) });
  }
  return {
    rows: found.slice(0, perPage).map((r) => ({ ...r, is_key_account: Boolean(r.is_key_account), is_supplier: Boolean(r.is_supplier), is_global: Boolean(r.is_global), is_private: Boolean(r.is_private), service_expires_on: dateText(r.service_expires_on) })),
    meta: { page: current, pages, total: count, per_page: perPage, ...(capped ? { capped } : {}) },
  };
}

/**
 * Whether a filtered page sorted by name is read by walking the name index (stopping once the page is full), or
 * by fetching every account the filters' own index offers and sorting them (null). Walking visits about
 * `all × perPage / matches` index entries; fetching visits every account the filter's index or the search index
 * offers (all the accounts of an industry, all that hold a word), table row and scope check each. SQLite's
 * planner, which cannot tell that the page stops early, always fetches: 56 ms for an industry of 8,000 accounts
 * out of 100,000, where the walk takes under 1 ms. So the list decides from counts it keeps anyway (per table
 * versions, like the list's own): the walk when it visits at most four times as many entries as fetching would.
 * A walk tests a search term with the trigram index's ids (read once, `offered` of them) when it passes more
 * entries than that: cheaper than reading each passed account's row for LIKE (a rep's search, 28 → 4 ms).
 * PostgreSQL's planner weighs the early stop itself, steered by `fetchThenSort`.
 */
async function nameOrderWalk(knex: Knex, list: { filters: AccountFilters; versions: string; filterKey: string; count: number; perPage: number; streams: AccountStreams | null }): Promise<{ searchIndex: boolean } | null> {
  const { filters, versions, filterKey, count, perPage, streams } = list;
  // A user's favorites are few: fetched and sorted. (Also keeps the count below free of whose favorites.)
  if (!isNarrowed(filters) || filters.favorites || isPg(knex)) return null;
  const all = await rowsAtMost(knex, 'crm_accounts', versions);
  const offered = await listNumbers(knex, 'account-list-filter-counts', filterKey, async () => {
    const q = knex('crm_accounts as a').whereNull('a.deleted_at');
    applyFilters(q, filters, 0); // no favorites filter here (see above)
    return (await cappedCount(knex, q)).total;
  });
  // Walking the streams passes only the user's own share of the accounts.
  const walkedOver = streams ? await listNumbers(knex, 'account-stream-size', JSON.stringify([versions, streams.key]), () => streams.size()) : all;
  const walked = (walkedOver * perPage) / Math.max(count, 1);
  return walked <= 4 * offered ? { searchIndex: walked > offered } : null;
}

/** Whether any filter or a search narrows the list (favorites aside). */
const isNarrowed = (filters: AccountFilters): boolean => Boolean(filters.q)
  || [filters.type, filters.industry, filters.manager, filters.group, filters.expiring_days].some((v) => v !== null)
  || filters.key_account || filters.customers || filters.suppliers;

/**
 * PostgreSQL: whether a filtered page sorted by name fetches every match and sorts them, instead of leaving the
 * planner free to walk the name index. The planner weighs a walk's early stop, but not the cost of testing a search
 * term on every row it passes: a rep's search for a term found in 258 of their accounts among 100,000 walked
 * 10,000 names for page 2 (20 ms), where fetching the 258 through the trigram and scope indexes takes 2.3 ms. A
 * walk passes about `all × perPage / matches` names; fetching reads the matches: fetch when they are fewer, that is
 * when matches² < all × perPage. Otherwise the planner chooses, as before.
 */
async function fetchThenSort(knex: Knex, list: { filters: AccountFilters; versions: string; count: number; perPage: number }): Promise<boolean> {
  const { filters, versions, count, perPage } = list;
  if (!isPg(knex) || !isNarrowed(filters)) return false;
  return count * count < (await rowsAtMost(knex, 'crm_accounts', versions)) * perPage;
}

interface AccountStream {
  /** The partial index (migration 028) that holds the stream in name order. */
  index: string;
  narrow(q: Knex.QueryBuilder): Knex.QueryBuilder;
}
interface AccountStreams { streams: AccountStream[]; key: string; size(): Promise<number> }

/**
 * SQLite: the accounts a user with only "own" reach may see all lie in three streams, each an index in name order
 * (migration 028): the accounts they manage, those they created, and the global ones (applyAccountScope: without
 * "all" or "team" reach every branch of the rule needs one of the three). A page walks each stream with the whole
 * rule and the filters, and merges them, instead of walking every account's name and skipping the 96 % that
 * are not theirs. Null for anyone who reaches further. Only a walk reads them, and only SQLite walks (see
 * nameOrderWalk).
 */
function ownStreams(knex: Knex, scope: RecordScope): AccountStreams | null {
  if (scope.user.admin || scope.all.length || scope.team.length) return null;
  const userId = scope.user.id;
  const withGlobal = scope.global && !scope.forEdit;
  const streams: AccountStream[] = [
    { index: ACCOUNT_STREAM_INDEXES.manager, narrow: (q) => q.where('a.account_manager_id', userId) },
    { index: ACCOUNT_STREAM_INDEXES.author, narrow: (q) => q.where('a.author_id', userId) },
  ];
  if (withGlobal) streams.push({ index: ACCOUNT_STREAM_INDEXES.global, narrow: (q) => q.where('a.is_global', true) });
  const size = async () => {
    const q = knex('crm_accounts as a').whereNull('a.deleted_at')
      .where((b) => { b.where('a.account_manager_id', userId).orWhere('a.author_id', userId); if (withGlobal) b.orWhere('a.is_global', true); });
    return (await cappedCount(knex, q)).total;
  };
  return { streams, key: JSON.stringify([userId, withGlobal]), size };
}

export function dateText(v: unknown): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, '0')}-${String(v.getDate()).padStart(2, '0')}`;
  return String(v).slice(0, 10);
}

/** The same user seen from the global level: records are looked up by id across every project they reach. */
export function globalContext(ctx: CrmContext): CrmContext {
  return { ...ctx, project: null, scopeProjects: (permission) => ctx.host.projectsWhere(ctx.user, permission) };
}

/** Whom the user sees accounts of, from any page (the global rule applies). */
export const accountScopeOf = (ctx: CrmContext) => recordScope(globalContext(ctx), 'accounts', 'view_accounts', { global: true });

/** Whom the user sees partners of, from any page (the global rule applies). */
export const partnerScopeOf = (ctx: CrmContext) => recordScope(globalContext(ctx), 'partners', 'view_partners', { global: true });

/** The account if this user may see it (from any page: the global rule applies), else null. */
export async function findVisibleAccount(ctx: CrmContext, id: number): Promise<Account | null> {
  if (!validId(id)) return null;
  const account = await visibleAccountQuery(ctx, id, await accountScopeOf(ctx)).first();
  return account ? normalize(account) : null;
}

/** The account `id` if this user may see it under `scope`, as a query. */
function visibleAccountQuery(ctx: CrmContext, id: number, scope: RecordScope) {
  const q = Account.query(ctx.host.knex).alias('a').where('a.id', id).select('a.*');
  applyAccountScope(q, scope);
  return q;
}

/** An account as its page shows it: whether the reader may see its parent account and its partner, which it names only then. */
export interface ShownAccount {
  account: Account;
  parentSeen: boolean;
  partnerSeen: boolean;
}

/**
 * The account if this user may see it (as findVisibleAccount), with whether they may see its parent account and its
 * partner, asked in the statement that loads it: the account page's JSON gives their ids only then (else
 * `parent_hidden` / `partner_hidden`), and the page, which is benchmarked, reads no more for it.
 */
export async function findShownAccount(ctx: CrmContext, id: number): Promise<ShownAccount | null> {
  if (!validId(id)) return null;
  const knex = ctx.host.knex;
  const seenAs = (sub: Knex.QueryBuilder, column: string) => knex.raw(`case when exists ? then 1 else 0 end as ${column}`, [sub]);
  // The account scope is written for the alias `a`, which inside hides the loaded row: the parent is found by the
  // loaded account's id. The partner's alias `p` leaves `a` to the loaded row.
  const scope = await accountScopeOf(ctx);
  const parent = knex('crm_accounts as a').select(1).where('a.id', knex('crm_accounts as child').select('child.parent_id').where('child.id', id));
  applyAccountScope(parent, scope);
  const partner = knex('crm_partners as p').select(1).whereRaw('p.id = a.partner_id');
  applyPartnerScope(partner, await partnerScopeOf(ctx));
  const q = visibleAccountQuery(ctx, id, scope).select(seenAs(parent, 'parent_seen'), seenAs(partner, 'partner_seen'));
  const row = (await q.first()) as (Account & { parent_seen?: unknown; partner_seen?: unknown }) | undefined;
  if (!row) return null;
  const shown = { parentSeen: Number(row.parent_seen) === 1, partnerSeen: Number(row.partner_seen) === 1 };
  delete row.parent_seen;
  delete row.partner_seen;
  return { account: normalize(row), ...shown };
}

/** A visible account as its page shows it, or 404. */
export async function requireShownAccount(ctx: CrmContext, id: number): Promise<ShownAccount> {
  const shown = await findShownAccount(ctx, id);
  if (!shown) throw notFound('Account');
  return shown;
}

/**
 * The names of those of `ids` this user may see (one query, whatever the number of ids): lists and histories
 * that mention accounts show a name only where the reader may open the account.
 */
export async function visibleAccountNames(ctx: CrmContext, ids: number[]): Promise<Map<number, string>> {
  const wanted = [...new Set(ids.filter((id) => Number.isInteger(id) && id > 0))];
  if (!wanted.length) return new Map();
  const { q } = await visibleAccountsAmong(ctx, wanted);
  return new Map((await q).map((r: { id: number; name: string }) => [Number(r.id), String(r.name)]));
}

/**
 * Those of `ids` this user may see (from any page), as a query selecting `id` and `name` (visibleAccountNames runs
 * it; a page may run it with another in the same statement). Wrapped in an object: a knex builder is thenable.
 */
export async function visibleAccountsAmong(ctx: CrmContext, ids: number[]): Promise<{ q: Knex.QueryBuilder }> {
  const scope = await accountScopeOf(ctx);
  const q = ctx.host.knex('crm_accounts as a').whereIn('a.id', ids).select('a.id', 'a.name');
  applyAccountScope(q, scope);
  return { q };
}

/**
 * What `visibleAccountNames` answers depends on, besides the rows of `crm_accounts` and `crm_account_projects`:
 * the viewer's global account scope, as a cache key part.
 */
export async function accountNamesScopeKey(ctx: CrmContext): Promise<string> {
  return scopeKey(await accountScopeOf(ctx));
}

/** A visible account or 404: the one way routes load an account by id. */
export async function requireVisibleAccount(ctx: CrmContext, id: number): Promise<Account> {
  const account = await findVisibleAccount(ctx, id);
  if (!account) throw notFound('Account');
  return account;
}

function normalize(a: Account): Account {
  for (const f of ['is_supplier', 'is_key_account', 'is_global', 'is_private'] as const) (a as unknown as Record<string, boolean>)[f] = Boolean(a[f]);
  a.service_expires_on = dateText(a.service_expires_on);
  return a;
}

/** Edit rights: an edit_accounts scope where the account is in reach; supervisors never edit through their team. */
export async function canEditAccount(ctx: CrmContext, account: Account): Promise<boolean> {
  if (!(await ctx.host.can(ctx.user, 'edit_accounts'))) return false;
  const scope = await recordScope(globalContext(ctx), 'accounts', 'edit_accounts', { global: true });
  const q = ctx.host.knex('crm_accounts as a').where('a.id', account.id);
  applyAccountScope(q, scope);
  return Boolean(await q.first('a.id'));
}

export async function requireEditableAccount(ctx: CrmContext, id: number): Promise<Account> {
  const account = await requireVisibleAccount(ctx, id);
  if (!(await canEditAccount(ctx, account))) throw forbidden('You may see this account but not change it.');
  return account;
}

export async function linkedProjectIds(knex: Knex, accountId: number): Promise<number[]> {
  return (await knex('crm_account_projects').where({ account_id: accountId }).pluck('project_id')).map(Number);
}

export interface AccountFormOptions {
  types: AccountType[];
  industries: Industry[];
  groups: AccountGroup[];
  users: { id: number; name: string }[];
}

/** Every row of a lookup table in its order, kept under the table's version (lookups are short lists). */
function lookupRows<T>(knex: Knex, table: VersionedTable, read: () => PromiseLike<T[]>): Promise<T[]> {
  return readUnderVersions(knex, table, [table], [], async () => read());
}

/**
 * The choices of the account form: active types, industries and groups — plus, when editing, the ones the
 * account already has even if an admin has since switched them off, so a save never changes them silently.
 */
export async function accountFormOptions(ctx: CrmContext, account: Account | null = null): Promise<AccountFormOptions> {
  const knex = ctx.host.knex;
  const currentGroups = account ? (await knex('crm_account_group_members').where({ account_id: account.id }).pluck('group_id')).map(Number) : [];
  return {
    types: (await lookupRows(knex, 'crm_account_types', () => AccountType.query(knex).orderBy('position'))).filter((t) => t.active || t.id === account?.account_type_id),
    industries: (await lookupRows(knex, 'crm_industries', () => Industry.query(knex).orderBy('position'))).filter((i) => i.active || i.id === account?.industry_id),
    groups: (await lookupRows(knex, 'crm_account_groups', () => AccountGroup.query(knex).orderBy('position'))).filter((g) => g.active || currentGroups.includes(g.id)),
    users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
  };
}

/** A lookup row as the list's filter offers it: `switched_off` when an admin has since deactivated it. */
type FilterChoice<T> = T & { switched_off: boolean };

export interface AccountListOptions {
  types: FilterChoice<AccountType>[];
  industries: FilterChoice<Industry>[];
  groups: FilterChoice<AccountGroup>[];
  users: { id: number; name: string }[];
}

/**
 * The list's filter choices for `filters` (from a link or a saved filter, A5): the active types, industries and
 * groups, plus a switched-off one the filter uses — it still filters, and the form must show it selected, or
 * “Apply” would drop it while the list still looked unfiltered. What no longer exists at all is left out of the
 * filters, named by kind in `leftOut`, rather than narrowing the list to nothing without a word.
 */
export async function accountListFilters(ctx: CrmContext, filters: AccountFilters): Promise<{ filters: AccountFilters; options: AccountListOptions; leftOut: string[] }> {
  const knex = ctx.host.knex;
  const [types, industries, groups, users] = await Promise.all([
    lookupRows(knex, 'crm_account_types', () => AccountType.query(knex).orderBy('position')),
    lookupRows(knex, 'crm_industries', () => Industry.query(knex).orderBy('position')),
    lookupRows(knex, 'crm_account_groups', () => AccountGroup.query(knex).orderBy('position')),
    ctx.host.users(),
  ]);
  const kept = { ...filters };
  const leftOut: string[] = [];
  const choices = <T extends { id: number; active: boolean }>(rows: T[], key: 'type' | 'industry' | 'group', what: string): FilterChoice<T>[] => {
    if (kept[key] !== null && !rows.some((r) => r.id === kept[key])) {
      kept[key] = null;
      leftOut.push(`${what} that no longer exists`);
    }
    return rows.filter((r) => r.active || r.id === kept[key]).map((r) => ({ ...r, switched_off: !r.active }));
  };
  const options: AccountListOptions = {
    types: choices(types, 'type', 'a type'),
    industries: choices(industries, 'industry', 'an industry'),
    groups: choices(groups, 'group', 'a group'),
    users: users.map((u) => ({ id: u.id, name: u.name })),
  };
  if (kept.manager !== null && !users.some((u) => u.id === kept.manager)) {
    kept.manager = null;
    leftOut.push('an account manager who no longer exists');
  }
  return { filters: kept, options, leftOut };
}

/**
 * The form's values when the account type switches to `type` (A1): the name typed for the other kind of type
 * fills the empty name fields of this one, so switching never drops it. First and last name become the name
 * ("first last", as a personal account's name is made). A name becomes first and last name only when it is
 * two words, the one case that splits unambiguously; any other (a single name, "Jan van der Berg", whose last
 * name is "van der Berg") goes whole into the last name: the field a personal type requires and that a user
 * reads as the family name, and the account keeps exactly the name typed until the user moves a given name over.
 */
export function carryNameToType(values: FormInput, type: Pick<AccountType, 'use_name' | 'use_first_last_name'>): FormInput {
  const carried = { ...values };
  const [name, first, last] = [text(values, 'name'), text(values, 'first_name'), text(values, 'last_name')];
  if (type.use_name && !name && (first || last)) carried.name = [first, last].filter(Boolean).join(' ');
  if (type.use_first_last_name && !first && !last && name) {
    const words = name.split(/\s+/);
    if (words.length === 2) [carried.first_name, carried.last_name] = words;
    else carried.last_name = name;
  }
  return carried;
}

export interface AccountInput {
  data: Record<(typeof ACCOUNT_FIELDS)[number], unknown>;
  customFields: CustomFieldDef[];
  customValues: Map<number, string | null>;
  groupIds: number[];
  favorite: boolean;
  /** A new account's partner (A10: partner users' accounts need one; assigned otherwise from the account page). */
  partnerId: number | null;
}

/** Reads and checks the account form (A1–A4), reporting every problem at once as field errors (422). */
export async function readAccountInput(ctx: CrmContext, input: FormInput, existing: Account | null): Promise<AccountInput> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  // Only what the form offers is accepted: active values, or the ones this account already has.
  const options = await accountFormOptions(ctx, existing);
  const typeId = errors.id(input, 'account_type_id', 'Account type');
  const type = options.types.find((t) => t.id === typeId);
  if (!type) errors.add('account_type_id', 'Choose an account type');
  let name = '';
  let firstName = '';
  let lastName = '';
  if (type?.use_first_last_name) {
    firstName = errors.text(input, 'first_name', 'First name', { max: 100 });
    lastName = errors.text(input, 'last_name', 'Last name', { max: 100, required: !type.use_name });
  }
  if (type?.use_name || !type) name = errors.text(input, 'name', 'Name', { max: 200, required: true });
  if (type?.use_first_last_name && !type.use_name) name = [firstName, lastName].filter(Boolean).join(' ');

  const industryId = errors.id(input, 'industry_id', 'Industry');
  if (industryId && !options.industries.some((i) => i.id === industryId)) errors.add('industry_id', 'Choose an industry from the list');
  const managerId = errors.id(input, 'account_manager_id', 'Account manager');
  if (managerId && !(await ctx.host.userById(managerId))) errors.add('account_manager_id', 'Choose an account manager from the list');
  const groupIds = list(input, 'group_ids').map(Number);
  if (groupIds.some((g) => !Number.isInteger(g) || g <= 0)) errors.add('group_ids', 'Groups are not valid');
  else if (groupIds.some((g) => !options.groups.some((o) => o.id === g))) errors.add('group_ids', 'Choose groups from the list');

  const parentId = errors.id(input, 'parent_id', 'Parent account');
  // A parent kept as it was passes even when this user cannot see it (the edit form holds the stored id, and saving
  // it must not drop what someone else chose, nor refuse the save); one newly chosen must be visible.
  if (parentId && parentId !== existing?.parent_id) {
    if (!(await findVisibleAccount(ctx, parentId))) errors.add('parent_id', 'Choose a parent account you can see');
    else if (existing && (await wouldCycle(knex, existing.id, parentId))) errors.add('parent_id', 'An account cannot be placed under itself or one of its sub-accounts');
  }
  const isPrivate = flag(input, 'is_private');
  const creatorId = existing ? existing.author_id : ctx.user.id;
  if (isPrivate !== Boolean(existing?.is_private) && creatorId !== ctx.user.id) errors.add('is_private', 'Only the creator of an account can make it private or public');
  const customerNumber = errors.text(input, 'customer_number', 'Customer number', { max: 60 });
  let partnerId: number | null = null;
  // Only partner users choose the partner on the form (see partnerOfPartnerUser); an edit leaves it to "Assign to partner".
  if (!existing && (await isPartnerUser(ctx))) {
    const chosen = errors.id(input, 'partner_id', 'Partner');
    if (chosen && !(await findVisiblePartner(ctx, chosen))) errors.add('partner_id', 'Choose a partner you can see');
    partnerId = await partnerOfPartnerUser(ctx, errors, chosen, true, 'accounts');
  }

  const data: AccountInput['data'] = {
    account_type_id: typeId,
    name,
    first_name: firstName,
    last_name: lastName,
    organization: errors.text(input, 'organization', 'Organization', { max: 200 }),
    email: errors.email(input, 'email', 'Email'),
    phone: errors.text(input, 'phone', 'Phone', { max: 60 }),
    street: errors.text(input, 'street', 'Street', { max: 200 }),
    city: errors.text(input, 'city', 'City', { max: 100 }),
    postcode: errors.text(input, 'postcode', 'Postcode', { max: 20 }),
    country: errors.text(input, 'country', 'Country', { max: 100 }),
    registration_number: errors.text(input, 'registration_number', 'Registration number', { max: 60 }),
    vat_number: errors.text(input, 'vat_number', 'VAT number', { max: 60 }),
    industry_id: industryId,
    account_manager_id: managerId,
    customer_number: customerNumber || null,
    is_supplier: flag(input, 'is_supplier'),
    is_key_account: flag(input, 'is_key_account'),
    service_expires_on: errors.date(input, 'service_expires_on', 'Service expiry'),
    note: errors.text(input, 'note', 'Note', { max: 10_000 }),
    is_global: flag(input, 'is_global'),
    is_private: isPrivate,
    parent_id: parentId,
  };
  if (data.is_global && data.is_private) errors.add('is_private', 'An account cannot be both global and private');
  const customFields = type ? await activeFields(knex, 'account', type.id) : [];
  const customValues = readCustomValues(customFields, input, errors);
  if (errors.any) throw invalid('The account was not saved: fix the fields marked below.', errors.errors);
  return { data, customFields, customValues, groupIds: [...new Set(groupIds)], favorite: flag(input, 'favorite'), partnerId };
}

/** Would putting `accountId` under `parentId` make a loop? Walks up from the new parent (bounded). */
export async function wouldCycle(knex: Knex, accountId: number, parentId: number): Promise<boolean> {
  let current: number | null = parentId;
  for (let depth = 0; current !== null && depth < 100; depth++) {
    if (current === accountId) return true;
    const row: { parent_id: number | null } | undefined = await knex('crm_accounts').where({ id: current }).first('parent_id');
    current = row?.parent_id ?? null;
  }
  return current !== null;
}

async function setGroups(trx: Knex.Transaction, accountId: number, groupIds: number[]): Promise<{ old: number[]; new: number[] } | null> {
  const before = (await trx('crm_account_group_members').where({ account_id: accountId }).pluck('group_id')).map(Number).sort((x, y) => x - y);
  const after = [...groupIds].sort((x, y) => x - y);
  if (before.join(',') === after.join(',')) return null;
  await trx('crm_account_group_members').where({ account_id: accountId }).delete();
  if (after.length) await trx('crm_account_group_members').insert(after.map((group_id) => ({ account_id: accountId, group_id })));
  return { old: before, new: after };
}

export async function setFavorite(knex: Knex, userId: number, accountId: number, favorite: boolean): Promise<void> {
  if (favorite) await knex('crm_favorite_accounts').insert({ user_id: userId, account_id: accountId }).onConflict(['user_id', 'account_id']).ignore();
  else await knex('crm_favorite_accounts').where({ user_id: userId, account_id: accountId }).delete();
}

export async function isFavorite(knex: Knex, userId: number, accountId: number): Promise<boolean> {
  return Boolean(await knex('crm_favorite_accounts').where({ user_id: userId, account_id: accountId }).first());
}

/**
 * Links the account to `project` (the sidebar's "Add to project"), journaled; false when it was linked already (a
 * double submit, a second tab), and then nothing is written.
 */
export function addAccountToProject(ctx: CrmContext, account: Account, project: HostProject): Promise<boolean> {
  return addLink(ctx, account, 'crm_account_projects', { project_id: project.id }, { field: 'projects', old: null, new: project.identifier });
}

/** Puts the account in `group` (the sidebar's "Add to group"), journaled; false when it was in it already. */
export function addAccountToGroup(ctx: CrmContext, account: Account, group: { id: number; name: string }): Promise<boolean> {
  return addLink(ctx, account, 'crm_account_group_members', { group_id: group.id }, { field: 'groups', old: null, new: `+${group.name}` });
}

/**
 * Inserts the account's link row unless it is there already (the unique key decides) and journals it, in one
 * transaction. With ON CONFLICT DO NOTHING, RETURNING gives no row for a link that was there — the insert's own
 * result cannot tell (SQLite answers the last row id either way).
 */
async function addLink(ctx: CrmContext, account: Account, table: string, link: Record<string, number>, change: FieldChange): Promise<boolean> {
  return ctx.host.knex.transaction(async (trx) => {
    const inserted: unknown[] = await trx(table).insert({ account_id: account.id, ...link }).onConflict(['account_id', ...Object.keys(link)]).ignore().returning('account_id');
    if (!inserted.length) return false;
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [change] });
    return true;
  });
}

/** Creates the account, links it to `project` (if any), and journals it, in one transaction. */
export async function createAccount(ctx: CrmContext, input: AccountInput, project: HostProject | null): Promise<Account> {
  const knex = ctx.host.knex;
  return knex.transaction(async (trx) => {
    const [row] = await trx('crm_accounts').insert({ ...input.data, partner_id: input.partnerId, author_id: ctx.user.id }).returning('*');
    const id = Number(row.id);
    if (project) await trx('crm_account_projects').insert({ account_id: id, project_id: project.id });
    const groups = await setGroups(trx, id, input.groupIds);
    const custom = await saveCustomValues(trx, 'account', id, input.customFields, input.customValues);
    if (input.favorite) await setFavorite(trx, ctx.user.id, id, true);
    const fields = changedFields({}, { ...input.data, partner_id: input.partnerId }, [...ACCOUNT_FIELDS, 'partner_id']).filter((c) => c.new !== '' && c.new !== null && c.new !== false);
    await journal(trx, {
      type: 'account', id, userId: ctx.user.id, action: 'create',
      changes: [...fields, ...(project ? [{ field: 'projects', old: null, new: project.identifier }] : []), ...(groups ? [{ field: 'groups', old: null, new: groups.new.join(',') }] : []), ...custom],
    });
    return normalize((await Account.query(trx).findById(id))!);
  });
}

/** Saves an edit if nobody saved in between (`lockVersion`), journaling each changed field old → new. */
export async function updateAccount(ctx: CrmContext, account: Account, input: AccountInput, lockVersion: number): Promise<Account> {
  const knex = ctx.host.knex;
  return knex.transaction(async (trx) => {
    const updated = await trx('crm_accounts').where({ id: account.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ ...input.data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (updated === 0) throw staleRecord('This account');
    const groups = await setGroups(trx, account.id, input.groupIds);
    const custom = await saveCustomValues(trx, 'account', account.id, input.customFields, input.customValues);
    await journal(trx, {
      type: 'account', id: account.id, userId: ctx.user.id, action: 'update',
      changes: [...changedFields(account as unknown as Record<string, unknown>, input.data, [...ACCOUNT_FIELDS]),
        ...(groups ? [{ field: 'groups', old: groups.old.join(','), new: groups.new.join(',') }] : []), ...custom],
    });
    return normalize((await Account.query(trx).findById(account.id))!);
  });
}

/** Soft delete (A: "restore deleted customers"): the row stays, hidden everywhere until an admin restores it. */
export async function deleteAccount(ctx: CrmContext, account: Account): Promise<void> {
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_accounts').where({ id: account.id }).whereNull('deleted_at')
      .update({ deleted_at: new Date().toISOString(), deleted_by: ctx.user.id, lock_version: account.lock_version + 1 });
    if (n === 0) throw notFound('Account');
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'delete', changes: [] });
  });
}

export async function listDeletedAccounts(ctx: CrmContext, page: number, perPage: number) {
  if (!ctx.user.admin) throw notFound();
  const base = ctx.host.knex('crm_accounts as a').whereNotNull('a.deleted_at')
    .where((b) => b.where('a.is_private', false).orWhere('a.author_id', ctx.user.id));
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const rows = await base.clone().select('a.id', 'a.name', 'a.deleted_at', 'a.deleted_by').orderBy('a.deleted_at', 'desc').limit(perPage).offset((Math.min(page, pages) - 1) * perPage);
  return { rows, meta: { page: Math.min(page, pages), pages, total: count, per_page: perPage } };
}

export async function restoreAccount(ctx: CrmContext, id: number): Promise<void> {
  if (!ctx.user.admin) throw notFound('Account');
  await ctx.host.knex.transaction(async (trx) => {
    const row = await trx('crm_accounts').where({ id }).whereNotNull('deleted_at')
      .where((b) => b.where('is_private', false).orWhere('author_id', ctx.user.id)).first();
    if (!row) throw notFound('Deleted account');
    await trx('crm_accounts').where({ id }).update({ deleted_at: null, deleted_by: null, lock_version: Number(row.lock_version) + 1 });
    await journal(trx, { type: 'account', id, userId: ctx.user.id, action: 'restore', changes: [] });
  });
}

export { CrmError };
