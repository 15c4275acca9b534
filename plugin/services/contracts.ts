import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { CrmError, invalid, notFound } from '../http/errors';
import type { HostProject } from '../host';
import { applyContractScope, toContract, type Contract } from '../models/contract';
import type { Opportunity } from '../models/opportunity';
import { globalContext, visibleAccountsAmong } from './accounts';
import { opportunityLabel, viewerFieldRules } from './field-rules';
import { whereAnyContains } from './text-search';
import { FieldErrors, flag, text, type FormInput, positiveId, validId } from './form';
import { journal, referenceTo } from './journal';
import { amountInput } from './money';
import { createOpportunity, findVisibleOpportunity, readOpportunityInput, visibleOpportunitiesAmong } from './opportunities';
import type { PageMeta } from './pagination';
import { saleRights } from './sale';
import { addDays, todayUtc } from './dates';
import { listKey, listNumbers, scopeKey, type VersionedTable } from './data-version';
import { recordScope, type RecordScope } from './visibility';
import { seenAmong, seenReference } from './seen';

/**
 * Contracts (SPEC C3): what sold items became. Seen where their opportunity is (view_contracts in its project,
 * at the user's visibility level); listed per contract type (product category, kind) with filters and saved
 * filters; removed from an unlocked opportunity one by one (status 'cancelled', kept for history); a time-based
 * one starts an upsell opportunity.
 */

export const CONTRACT_SORTS = ['starts_on', 'ends_on', 'amount_minor', 'name', 'created_at'] as const;
/** 'sold': every contract not removed (active or expired), as the dashboards count sold contracts. */
export const CONTRACT_STATUSES = ['active', 'cancelled', 'expired', 'sold'] as const;

export interface ContractFilters {
  q: string;
  account: number | null;
  status: (typeof CONTRACT_STATUSES)[number] | null;
  category: number | null;
  kind: 'time_based' | 'one_time' | null;
  project: number | null;
  /** The sales rep the contract belongs to (its opportunity's owner at sale). */
  owner: number | null;
  from: string | null;
  to: string | null;
  /** Contracts in force at some day of this window (started by its end, not ended before its start, not removed). */
  runningFrom: string | null;
  runningTo: string | null;
  /** Active time-based contracts whose end falls within this many days from today. */
  expiring: number | null;
  sort: (typeof CONTRACT_SORTS)[number];
  dir: 'asc' | 'desc';
}

/** Filters from a query string; malformed dates or day counts are a 422 rather than silently ignored. */
export function parseContractFilters(query: FormInput): ContractFilters {
  const errors = new FieldErrors();
  const from = errors.date(query, 'from', 'Start from');
  const to = errors.date(query, 'to', 'Start to');
  if (from && to && to < from) errors.add('to', 'Start to is before start from');
  const runningFrom = errors.date(query, 'running_from', 'Running from');
  const runningTo = errors.date(query, 'running_to', 'Running to');
  if (runningFrom && runningTo && runningTo < runningFrom) errors.add('running_to', 'Running to is before running from');
  const expiringRaw = text(query, 'expiring');
  let expiring: number | null = null;
  if (expiringRaw) {
    if (!/^\d{1,4}$/.test(expiringRaw) || Number(expiringRaw) > 3650) errors.add('expiring', 'Expiring within must be a number of days from 0 to 3650');
    else expiring = Number(expiringRaw);
  }
  const status = text(query, 'status');
  if (status && !(CONTRACT_STATUSES as readonly string[]).includes(status)) errors.add('status', 'Choose a status from the list');
  const kind = text(query, 'kind');
  if (kind && kind !== 'time_based' && kind !== 'one_time') errors.add('kind', 'Choose time-based or one-time');
  if (errors.any) throw invalid('The filter was not applied: fix the fields marked below.', errors.errors);
  const sort = text(query, 'sort');
  return {
    q: text(query, 'q').slice(0, 100), account: positiveId(text(query, 'account')), status: (status || null) as ContractFilters['status'],
    category: positiveId(text(query, 'category')), kind: (kind || null) as ContractFilters['kind'], project: positiveId(text(query, 'project')), owner: positiveId(text(query, 'owner')),
    from, to, runningFrom, runningTo, expiring,
    sort: (CONTRACT_SORTS as readonly string[]).includes(sort) ? (sort as ContractFilters['sort']) : 'starts_on',
    dir: text(query, 'dir') === 'asc' ? 'asc' : 'desc',
  };
}

export function contractFilterParams(f: ContractFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.q) out.q = f.q;
  for (const k of ['account', 'status', 'category', 'kind', 'project', 'owner', 'from', 'to', 'expiring'] as const) if (f[k] !== null) out[k] = String(f[k]);
  if (f.runningFrom) out.running_from = f.runningFrom;
  if (f.runningTo) out.running_to = f.runningTo;
  if (f.sort !== 'starts_on') out.sort = f.sort;
  if (f.dir !== 'desc') out.dir = f.dir;
  return out;
}

/** The contracts visible under `scope`, plus the filters, as one query on `crm_contracts c`. */
function filteredQuery(knex: Knex, scope: RecordScope, f: ContractFilters, options: { ignoreCategory?: boolean } = {}): Knex.QueryBuilder {
  const q = knex('crm_contracts as c');
  applyContractScope(q, scope);
  const today = todayUtc();
  if (f.q) whereAnyContains(q, ['c.name'], f.q);
  if (f.account) q.where('c.account_id', f.account);
  if (f.category && !options.ignoreCategory) q.where('c.category_id', f.category);
  if (f.kind) q.where('c.kind', f.kind);
  if (f.project) q.where('c.project_id', f.project);
  if (f.owner) q.where('c.owner_id', f.owner);
  if (f.from) q.where('c.starts_on', '>=', f.from);
  if (f.to) q.where('c.starts_on', '<=', f.to);
  if (f.status === 'active') q.where('c.status', 'active').where((b) => b.whereNull('c.ends_on').orWhere('c.ends_on', '>=', today));
  if (f.status === 'cancelled') q.where('c.status', 'cancelled');
  if (f.status === 'expired') q.where('c.status', 'active').where('c.ends_on', '<', today);
  if (f.status === 'sold') q.whereNot('c.status', 'cancelled');
  if (f.runningFrom || f.runningTo) q.whereNot('c.status', 'cancelled');
  if (f.runningTo) q.where('c.starts_on', '<=', f.runningTo);
  if (f.runningFrom) q.where((b) => b.whereNull('c.ends_on').orWhere('c.ends_on', '>=', f.runningFrom!));
  if (f.expiring !== null) q.where('c.kind', 'time_based').where('c.status', 'active').whereBetween('c.ends_on', [today, addDays(today, f.expiring)]);
  return q;
}

/**
 * A contract with what its pages show; `account_id` is the stored one, which contractJson (and an upsell, upsellAccountId)
 * takes only where the reader may see it; `opportunity_id` and `quote_id` likewise (opportunity_hidden).
 */
export interface ContractRow extends Contract {
  /** Null when the user may not see the account. */
  account_name: string | null;
  /** The contract has an account this user may not see (its pages say "an account you cannot see"). */
  account_hidden: boolean;
  category_name: string | null;
  /** As this user may read it: `Opportunity #<id>` where the field rules of its status hide the name (S5); null where they may not see it. */
  opportunity_name: string | null;
  /** The contract's opportunity is one this user may not see (the pages say "an opportunity you cannot see", and name no quote of it). */
  opportunity_hidden: boolean;
  expired: boolean;
}

const LIST_COLUMNS = ['c.*', 'cat.name as category_name', 'o.name as opportunity_name', 'o.project_id as opportunity_project_id', 'o.status_id as opportunity_status_id'];

/**
 * The names of the accounts and the ids of the opportunities of these contracts that the user may see, in one statement
 * (union all) whatever their number; `seenOpportunity` is one known to be seen (the page of that opportunity).
 */
async function visibleReferences(ctx: CrmContext, contracts: Contract[], seenOpportunity: number | null): Promise<{ accounts: Map<number, string>; opportunities: Set<number> }> {
  const accountIds = [...new Set(contracts.map((c) => c.account_id).filter((id): id is number => id !== null))];
  const opportunityIds = [...new Set(contracts.map((c) => c.opportunity_id).filter((id): id is number => id !== null && id !== seenOpportunity))];
  const seen = await seenAmong(ctx.host.knex, {
    account: accountIds.length ? (await visibleAccountsAmong(ctx, accountIds)).q : null,
    opportunity: opportunityIds.length ? (await visibleOpportunitiesAmong(ctx, opportunityIds)).q : null,
  });
  const opportunities = new Set(seen.opportunity.keys());
  if (seenOpportunity !== null) opportunities.add(seenOpportunity);
  return { accounts: seen.account, opportunities };
}

/**
 * One page of contracts: one query for the rows, one for the count, one naming the accounts and checking the
 * opportunities (visibleReferences) — never one per row. The field rules, read once per request, name each opportunity.
 */
async function rowsOf(ctx: CrmContext, rows: Record<string, unknown>[], seenOpportunity: number | null = null): Promise<ContractRow[]> {
  const rules = await viewerFieldRules(ctx);
  const opportunityName = (r: Record<string, unknown>): string | null => (r.opportunity_name === null || r.opportunity_name === undefined ? null
    : opportunityLabel({ id: Number(r.opportunity_id), name: String(r.opportunity_name) }, rules.at(Number(r.opportunity_project_id), Number(r.opportunity_status_id))));
  const contracts = rows.map((r) => ({ ...toContract(r), category_name: (r.category_name as string | null) ?? null, opportunity_name: opportunityName(r) }));
  const seen = await visibleReferences(ctx, contracts, seenOpportunity);
  const today = todayUtc();
  return contracts.map((c) => {
    const accountName = c.account_id !== null ? seen.accounts.get(c.account_id) ?? null : null;
    const opportunityHidden = c.opportunity_id !== null && !seen.opportunities.has(c.opportunity_id);
    return {
      ...c, account_name: accountName, account_hidden: c.account_id !== null && accountName === null,
      opportunity_name: opportunityHidden ? null : c.opportunity_name, opportunity_hidden: opportunityHidden,
      expired: c.status === 'active' && c.ends_on !== null && c.ends_on < today,
    };
  });
}

export interface ContractTypeCount {
  category_id: number | null;
  name: string;
  count: number;
}

/** What the list's count, type tabs and totals read: they are recomputed after a write to any of these. */
const CONTRACT_LIST_TABLES: readonly VersionedTable[] = ['crm_contracts', 'crm_product_categories', 'crm_opportunities'];

export async function listContracts(ctx: CrmContext, f: ContractFilters, page: number, perPage: number) {
  const knex = ctx.host.knex;
  const scope = await recordScope(ctx, 'opportunities', 'view_contracts');
  const { sort, dir, ...narrowing } = f;
  const base = filteredQuery(knex, scope, f);
  const key = await listKey(knex, CONTRACT_LIST_TABLES, [scopeKey(scope), narrowing, todayUtc()]);
  const numbers = await listNumbers(knex, 'contract-list-numbers', key, async () => {
    const [{ total }] = await base.clone().count({ total: '*' });
    // The contract types (product categories) with their counts under the other filters, for the type tabs.
    const typeRows: { category_id: unknown; name: unknown; n: unknown }[] = await filteredQuery(knex, scope, f, { ignoreCategory: true }).leftJoin('crm_product_categories as cat', 'cat.id', 'c.category_id')
      .groupBy('c.category_id', 'cat.name').select('c.category_id', 'cat.name').count({ n: '*' }).orderBy('cat.name');
    const totals: { currency: string; n: unknown; amount: unknown }[] = await base.clone().groupBy('c.currency').orderBy('c.currency').select('c.currency').count({ n: '*' }).sum({ amount: 'c.amount_minor' });
    return {
      count: Number(total),
      types: typeRows.map((r): ContractTypeCount => ({ category_id: r.category_id === null ? null : Number(r.category_id), name: r.name ? String(r.name) : 'Without category', count: Number(r.n) })),
      totals: totals.map((t) => ({ currency: String(t.currency), count: Number(t.n), amount_minor: Number(t.amount ?? 0) })),
    };
  });
  const pages = Math.max(1, Math.ceil(numbers.count / perPage));
  const current = Math.min(page, pages);
  const order = dir === 'desc' ? 'desc' : 'asc';
  const raw = await base.clone().leftJoin('crm_product_categories as cat', 'cat.id', 'c.category_id').leftJoin('crm_opportunities as o', 'o.id', 'c.opportunity_id')
    .select(LIST_COLUMNS).orderByRaw(`c.${sort} ${order} ${sort === 'ends_on' ? (order === 'desc' ? 'nulls last' : 'nulls first') : ''}, c.id ${order}`)
    .limit(perPage).offset((current - 1) * perPage);
  const rows = await rowsOf(ctx, raw);
  return { rows, types: numbers.types, totals: numbers.totals, meta: { page: current, pages, total: numbers.count, per_page: perPage } as PageMeta };
}

/** Whom the user sees contracts of, from any page: contracts follow their opportunity's visibility level. */
const contractScopeOf = (ctx: CrmContext) => recordScope(globalContext(ctx), 'opportunities', 'view_contracts');

/** The contract if this user may see it (from any page), else null. */
export async function findVisibleContract(ctx: CrmContext, id: number): Promise<ContractRow | null> {
  if (!validId(id)) return null;
  const scope = await contractScopeOf(ctx);
  const q = ctx.host.knex('crm_contracts as c').where('c.id', id).leftJoin('crm_product_categories as cat', 'cat.id', 'c.category_id')
    .leftJoin('crm_opportunities as o', 'o.id', 'c.opportunity_id').select(LIST_COLUMNS);
  applyContractScope(q, scope);
  const row = await q.first();
  return row ? (await rowsOf(ctx, [row]))[0] : null;
}

/**
 * Of `ids`, the contracts this user may see (from any page, as findVisibleContract), in one query whatever their
 * number: what names them elsewhere — an opportunity's history — names them only to those who may.
 */
export async function visibleContractIds(ctx: CrmContext, ids: number[]): Promise<Set<number>> {
  const wanted = [...new Set(ids.filter(validId))];
  if (!wanted.length) return new Set();
  const scope = await contractScopeOf(ctx);
  const q = ctx.host.knex('crm_contracts as c').whereIn('c.id', wanted).select('c.id');
  applyContractScope(q, scope);
  return new Set((await q).map((r: { id: number | string }) => Number(r.id)));
}

export async function requireVisibleContract(ctx: CrmContext, id: number): Promise<ContractRow> {
  const contract = await findVisibleContract(ctx, id);
  if (!contract) throw notFound('Contract');
  return contract;
}

/**
 * An opportunity's contracts that this user may see (active first, then removed ones), for its page's Contracts
 * panel, and how many of its contracts they may not see (counted, never named): the contract scope is its own
 * (applyContractScope), as the contract's page and its history have it. Decided in the statement that reads the
 * rows. Display only: selling and unlocking read every contract of the opportunity themselves (services/sale.ts),
 * never narrowed by the reader's scope. Bounded.
 */
export async function contractsOfOpportunity(ctx: CrmContext, opp: Opportunity): Promise<{ contracts: ContractRow[]; hidden: number }> {
  const knex = ctx.host.knex;
  const seen = knex('crm_contracts as c').where('c.opportunity_id', opp.id).select('c.id');
  applyContractScope(seen, await contractScopeOf(ctx));
  const rows: Record<string, unknown>[] = await knex('crm_contracts as c').where('c.opportunity_id', opp.id).leftJoin('crm_product_categories as cat', 'cat.id', 'c.category_id')
    .leftJoin('crm_opportunities as o', 'o.id', 'c.opportunity_id').select([...LIST_COLUMNS, knex.raw('case when c.id in ? then 1 else 0 end as seen_by_reader', [seen])])
    .orderBy([{ column: 'c.status' }, { column: 'c.id' }]).limit(500);
  const shown = rows.filter((r) => Number(r.seen_by_reader) === 1);
  return { contracts: await rowsOf(ctx, shown, opp.id), hidden: rows.length - shown.length };
}

/**
 * The contract as its reader may read it: the id of its account only where they may see it, else null and
 * `account_hidden`; the ids of its opportunity and quote likewise, else null and `opportunity_hidden`.
 */
export function contractJson(c: ContractRow) {
  return {
    id: c.id, name: c.name, code: c.code, kind: c.kind, status: c.status, expired: c.expired,
    ...seenReference('account', c.account_id, !c.account_hidden), account_name: c.account_name,
    ...seenReference('opportunity', c.opportunity_id, !c.opportunity_hidden), opportunity_name: c.opportunity_name,
    quote_id: c.opportunity_hidden ? null : c.quote_id, project_id: c.project_id, owner_id: c.owner_id, product_id: c.product_id,
    category_id: c.category_id, category_name: c.category_name, quantity_milli: c.quantity_milli, amount_minor: c.amount_minor,
    amount: amountInput(c.amount_minor, c.currency), currency: c.currency, starts_on: c.starts_on, ends_on: c.ends_on, renewal: c.renewal,
    lock_version: c.lock_version, url: `/crm/contracts/${c.id}`,
  };
}

// ---- removing (C2) ----------------------------------------------------------------------------------------------

/**
 * The contract, if the user may remove it: they see it, may edit its opportunity and hold delete_contracts there
 * (404 otherwise). A contract is removed from an unlocked opportunity only (422): while sold, the contracts are
 * the sale.
 */
export async function requireRemovableContract(ctx: CrmContext, id: number): Promise<{ contract: ContractRow; opportunity: Opportunity }> {
  const contract = await requireVisibleContract(ctx, id);
  const opportunity = contract.opportunity_id ? await findVisibleOpportunity(ctx, contract.opportunity_id) : null;
  if (!opportunity || !(await saleRights(ctx, opportunity)).canRemove) throw notFound('Contract');
  return { contract, opportunity };
}

/**
 * Removes a contract from its opportunity: status 'cancelled', kept (with its automation runs and their links)
 * for history and reports. Its item is not sold again by a later sale — add the item anew to sell it again.
 */
export async function removeContract(ctx: CrmContext, contract: Contract, opp: Opportunity, input: FormInput): Promise<void> {
  if (!flag(input, 'confirm')) throw invalid('Confirm that the contract is to be removed.', { confirm: 'Tick the box to confirm' });
  if (opp.is_locked) throw invalid('This opportunity is sold and locked: unlock it before removing its contracts.');
  if (contract.status === 'cancelled') throw new CrmError(409, 'This contract was removed already.');
  await ctx.host.knex.transaction(async (trx) => {
    const locked = await trx('crm_opportunities').where({ id: opp.id }).first('is_locked');
    if (locked && Boolean(locked.is_locked)) throw invalid('This opportunity is sold and locked: unlock it before removing its contracts.');
    const n = await trx('crm_contracts').where({ id: contract.id, status: 'active' })
      .update({ status: 'cancelled', lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() });
    if (n === 0) throw new CrmError(409, 'This contract was removed already.');
    await journal(trx, { type: 'contract', id: contract.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'status', old: 'active', new: 'cancelled' }], notes: 'Removed from its opportunity' });
    await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'contracts', old: `${contract.name}${referenceTo(contract.id)}`, new: null }], notes: `Contract #${contract.id} removed` });
  });
}

// ---- upsell (C3) ------------------------------------------------------------------------------------------------

/** Where an upsell of this contract may be created: its project, if the user may add opportunities there. */
export async function upsellProject(ctx: CrmContext, contract: Contract): Promise<HostProject | null> {
  if (contract.kind !== 'time_based') return null;
  const project = await ctx.host.projectById(contract.project_id);
  return project && (await ctx.host.can(ctx.user, 'add_opportunities', project)) ? project : null;
}

/**
 * The account an upsell of this contract is for: the contract's, where the user may see it. One they may not see is
 * left out, as an opportunity's copy leaves it out: a new opportunity is saved only with an account its author may
 * see (readOpportunityInput), and an upsell is a new opportunity, so carrying it would refuse the upsell on a field
 * its form does not show. Only an edit keeps a stored account its editor may not see.
 */
export function upsellAccountId(contract: ContractRow): number | null {
  return contract.account_hidden ? null : contract.account_id;
}

/** The new opportunity form's values for an upsell: the account (upsellAccountId), the product, closing when the contract renews. */
export function upsellValues(contract: ContractRow): FormInput {
  const accountId = upsellAccountId(contract);
  return {
    name: `Upsell: ${contract.name}`.slice(0, 200),
    account_id: accountId ? String(accountId) : '',
    currency: contract.currency,
    amount: amountInput(contract.amount_minor, contract.currency),
    expected_close_on: contract.ends_on ?? '',
    description: `Renewal and upsell of contract #${contract.id} ${contract.name}${contract.code ? ` (${contract.code})` : ''}: runs ${contract.starts_on} – ${contract.ends_on ?? 'open'}` +
      `${contract.renewal ? ', renews' : ''}; renewal from ${contract.ends_on ?? '—'}.`,
  };
}

/** Creates the upsell opportunity under the usual opportunity rules (field rules, account visibility) and notes it on the contract. */
export async function createUpsell(ctx: CrmContext, contract: ContractRow, project: HostProject, input: FormInput): Promise<Opportunity> {
  const { data } = await readOpportunityInput(ctx, input, null, project);
  const opp = await createOpportunity(ctx, project, data);
  await ctx.host.knex.transaction(async (trx) => {
    await journal(trx, { type: 'contract', id: contract.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'upsell_opportunity', old: null, new: `${opp.name}${referenceTo(opp.id)}` }] });
    await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'upsell_of_contract', old: null, new: `${contract.name}${referenceTo(contract.id)}` }] });
  });
  return opp;
}

