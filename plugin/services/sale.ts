import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { CrmError, notFound } from '../http/errors';
import type { Opportunity, OpportunityStatus } from '../models/opportunity';
import { toContract, type Contract, type ContractKind } from '../models/contract';
import { findVisibleAccount } from './accounts';
import {
  AutomationRefusal, activeRulesFor, describeRun, flagRule, resolveTargets, ruleProblem, runRules,
  type AutomationRule, type ContractFacts, type RuleTargets,
} from './automation';
import { bundleItemsOf, bundleSplit } from './bundles';
import { todayUtc } from './dates';
import { fieldRulesFor, hiddenFields, missingRequired, opportunityLabel } from './field-rules';
import { list, lockVersionOf, text, type FormInput } from './form';
import { journal, referenceTo } from './journal';
import { canEditOpportunity, requireVisibleOpportunity, statuses } from './opportunities';
import { priceQuote } from './quote-pricing';
import { itemsOf, quotesOf, type Quote, type QuoteItem } from './quotes';
import { loadSettings, wonStatusNamed } from './settings';
import { settingLabel } from './setting-fields';

/**
 * Selling an opportunity (SPEC C1, C2, C4): "confirm deal and order service" previews, then in one transaction
 * gives the opportunity the won status (setting status_after_sold), locks it, turns every item of the active
 * quote into a contract, and runs the automation rules of each new contract's category. If anything refuses —
 * a stale page, a second concurrent sale, a host that will not make the project — nothing is kept.
 */

export interface PlannedContract extends Pick<Contract, 'source_key' | 'product_id' | 'category_id' | 'kind' | 'name' | 'code' | 'quantity_milli' | 'amount_minor' | 'currency' | 'starts_on' | 'ends_on'> {
  quote_item_id: number;
  product_name: string;
  category_name: string | null;
  duration_months: number | null;
  /** The contract this line already has (sold before as this line or as the line it was copied from): kept, not made again. */
  existing: Contract | null;
  /** What the automation will make for it, in words (only for new contracts). */
  automation: string[];
}

export interface SalePlan {
  opportunity: Opportunity;
  quote: Quote | null;
  wonStatus: OpportunityStatus | null;
  saleDate: string;
  contracts: PlannedContract[];
  /** Why the sale cannot happen now; empty when it can. */
  problems: string[];
  /** What the seller should know before confirming (a "status after sold" setting that no longer names a won status). */
  notes: string[];
  /** Rules that cannot run, by id, with their problem (flagged in settings when a sale is attempted). */
  ruleProblems: Map<number, string>;
  rules: Map<number, AutomationRule[]>;
  targets: RuleTargets;
  /** The account's name as the automation fills it in when the sale runs: empty where the seller may not see the account. */
  accountName: string;
  /**
   * The account's name as the seller may read it on the confirmation page, as on the opportunity's page: null where
   * they may not see the account or the field rules of the opportunity's status hide its account (S5).
   */
  shownAccountName: string | null;
}

/** Where the confirmation page's preview of the automation would print an account the field rules hide. */
const HIDDEN_ACCOUNT_TOKEN = '[account hidden]';

/** `date` + `months` calendar months, the day clamped to the target month's last day (31 Jan + 1 → 28/29 Feb). */
export function addMonths(date: string, months: number): string {
  const [y, m, d] = date.split('-').map(Number);
  const index = y * 12 + (m - 1) + months;
  const year = Math.floor(index / 12);
  const month = index % 12;
  const last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return `${String(year).padStart(4, '0')}-${String(month + 1).padStart(2, '0')}-${String(Math.min(d, last)).padStart(2, '0')}`;
}

// ---- who may sell and unlock -------------------------------------------------------------------------------------

/**
 * Selling needs edit rights on the opportunity (its scope, S3) and add_contracts in its project; unlocking needs
 * edit rights and delete_contracts (unlocking is what lets contracts be removed). Without them the action does not
 * exist for the user: 404, like every other unreachable thing.
 */
export async function saleRights(ctx: CrmContext, opp: Opportunity): Promise<{ canSell: boolean; canUnlock: boolean; canRemove: boolean }> {
  const project = await ctx.host.projectById(opp.project_id);
  if (!project || !(await canEditOpportunity(ctx, opp))) return { canSell: false, canUnlock: false, canRemove: false };
  const add = await ctx.host.can(ctx.user, 'add_contracts', project);
  const del = await ctx.host.can(ctx.user, 'delete_contracts', project);
  return { canSell: add, canUnlock: del, canRemove: del };
}

export async function requireSellable(ctx: CrmContext, id: number): Promise<Opportunity> {
  const opp = await requireVisibleOpportunity(ctx, id);
  if (!(await saleRights(ctx, opp)).canSell) throw notFound('Opportunity');
  return opp;
}

export async function requireUnlockable(ctx: CrmContext, id: number): Promise<Opportunity> {
  const opp = await requireVisibleOpportunity(ctx, id);
  if (!(await saleRights(ctx, opp)).canUnlock) throw notFound('Opportunity');
  return opp;
}

// ---- planning ---------------------------------------------------------------------------------------------------

/**
 * The status a sale sets: the won status named by the setting status_after_sold, else the first "won" status
 * (settings only accept a won status's name; a status renamed, re-kinded or switched off since falls back rather
 * than marking a sold deal lost — and the confirmation page says so: `named` is the setting's name then).
 */
export async function wonStatus(knex: Knex): Promise<{ status: OpportunityStatus | null; named: string }> {
  const named = String((await loadSettings(knex)).status_after_sold ?? '').trim();
  const activeWon = (await statuses(knex)).filter((s) => s.kind === 'won' && s.active);
  const match = wonStatusNamed(activeWon.map((s) => s.name), named);
  return { status: activeWon.find((s) => s.name === match) ?? activeWon[0] ?? null, named };
}

/** The opportunity's active quote, read with `db` (the sale's transaction or the plain connection). */
async function activeQuote(db: Knex, opportunityId: number): Promise<Quote | null> {
  return (await quotesOf(db, opportunityId)).find((q) => q.is_active) ?? null;
}

/**
 * A line's contract key: the line's identity across copies of its quote (the item it was first quoted as), so a
 * line sold once is recognised on whichever quote of the opportunity it sits now — after "unlock, duplicate,
 * activate the copy" too — and its contract and automation are not made again. A line added later is a new line.
 */
const lineKey = (line: Pick<QuoteItem, 'id' | 'origin_item_id'>) => `item:${line.origin_item_id ?? line.id}`;

/**
 * The contracts the active quote's items become. Time-based or one-time by the product's category; an item
 * without a product (typed by hand) or a product without a category is one-time. A bundle line becomes one
 * contract per bundle item with its exact weighted share of the line's net (the shares add up to it). The
 * rounding item is a correction of the quote's total, not something sold: it makes no contract.
 */
export async function contractsFor(db: Knex, quote: Quote, startsOn: string): Promise<Omit<PlannedContract, 'existing' | 'automation'>[]> {
  const { lines } = priceQuote(await itemsOf(db, quote.id));
  const bundles = await bundleItemsOf(db, lines.filter((l) => l.kind === 'bundle' && l.bundle_id).map((l) => l.bundle_id as number));
  const productIds = [...new Set([
    ...lines.map((l) => l.product_id).filter((x): x is number => x !== null),
    ...[...bundles.values()].flat().map((b) => b.product_id),
  ])];
  const products = new Map<number, { name: string; code: string; category_id: number | null; category_name: string | null; kind: ContractKind; months: number | null }>();
  if (productIds.length) {
    const rows = await db('crm_products as p').leftJoin('crm_product_categories as c', 'c.id', 'p.category_id').whereIn('p.id', productIds)
      .select('p.id', 'p.name', 'p.code', 'p.category_id', 'c.name as category_name', 'c.contract_kind', 'c.default_duration_months');
    for (const r of rows) {
      products.set(Number(r.id), {
        name: String(r.name), code: String(r.code ?? ''), category_id: r.category_id === null ? null : Number(r.category_id), category_name: r.category_name ?? null,
        kind: r.contract_kind === 'time_based' ? 'time_based' : 'one_time', months: r.default_duration_months === null ? null : Number(r.default_duration_months),
      });
    }
  }
  const make = (sourceKey: string, itemId: number, productId: number | null, name: string, code: string, quantity: number, amount: number) => {
    const product = productId !== null ? products.get(productId) ?? null : null;
    const kind: ContractKind = product?.kind ?? 'one_time';
    const months = kind === 'time_based' ? product?.months ?? 12 : null;
    return {
      source_key: sourceKey, quote_item_id: itemId, product_id: product ? productId : null, product_name: product?.name ?? name,
      category_id: product?.category_id ?? null, category_name: product?.category_name ?? null, kind, name: name.slice(0, 200), code: (code || product?.code || '').slice(0, 60),
      quantity_milli: quantity, amount_minor: amount, currency: quote.currency, starts_on: startsOn,
      ends_on: months !== null ? addMonths(startsOn, months) : null, duration_months: months,
    };
  };
  const out = [];
  for (const line of lines) {
    if (line.kind === 'rounding') continue;
    const parts = line.kind === 'bundle' && line.bundle_id ? bundles.get(line.bundle_id) ?? [] : [];
    if (!parts.length) {
      out.push(make(lineKey(line), line.id, line.product_id, line.name, line.code, line.quantity_milli, line.net_minor));
      continue;
    }
    for (const part of bundleSplit({ price_minor: line.net_minor }, parts)) {
      out.push(make(`${lineKey(line)}:bundle-item:${part.id}`, line.id, part.product_id, `${line.name}: ${part.product_name}`, part.product_code, line.quantity_milli, part.share_minor));
    }
  }
  return out;
}

const factsOf = (c: Pick<PlannedContract, 'name' | 'product_name' | 'code' | 'starts_on' | 'ends_on'>, opp: Pick<Opportunity, 'id' | 'name' | 'account_id'>, accountName: string, quote: Quote, id: number | null): ContractFacts => ({
  id, name: c.name, product: c.product_name, code: c.code, starts_on: c.starts_on, ends_on: c.ends_on, account_id: opp.account_id,
  account_name: accountName, opportunity_id: opp.id, opportunity_name: opp.name, quote_number: quote.number,
});

/**
 * Everything the confirmation page shows — the contracts, which of them exist already, what the automation will
 * make — and every reason the sale cannot happen now. Reads only; host lookups happen here, before any transaction.
 */
export async function planSale(ctx: CrmContext, opp: Opportunity, saleDate = todayUtc()): Promise<SalePlan> {
  const knex = ctx.host.knex;
  const problems: string[] = [];
  if (opp.is_locked) problems.push('This opportunity is already sold and locked.');
  const { status: won, named } = await wonStatus(knex);
  const label = settingLabel('status_after_sold');
  if (!won) problems.push(`There is no active opportunity status named “${named}” (setting “${label}”) and none of kind won.`);
  const notes = won && named && won.name.toLowerCase() !== named.toLowerCase()
    ? [`The setting “${label}” names “${named}”, which is not an active won status: confirming sets ${won.name} instead.`] : [];
  const quote = await activeQuote(knex, opp.id);
  const account = opp.account_id ? await findVisibleAccount(ctx, opp.account_id) : null;
  // The page and its preview show the opportunity as its own page does (S5): what the rules hide stays hidden.
  const shownRules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const accountHidden = hiddenFields(shownRules).has('account_id');
  const shownAccountName = account && !accountHidden ? account.name : null;
  const shownOpp = { id: opp.id, account_id: opp.account_id, name: opportunityLabel(opp, shownRules) };
  if (!opp.account_id) problems.push('The opportunity has no account: contracts belong to an account. Set it first.');
  if (won) {
    const missing = missingRequired(await fieldRulesFor(ctx, opp.project_id, won.id), opp as unknown as Record<string, unknown>);
    for (const label of missing) problems.push(`${label} is required in status ${won.name}.`);
  }
  let contracts: PlannedContract[] = [];
  let rules = new Map<number, AutomationRule[]>();
  let targets: RuleTargets = { templates: new Map(), projects: new Map(), users: new Map() };
  const ruleProblems = new Map<number, string>();
  if (!quote) problems.push('There is no active quote: create a quote and make it active.');
  else {
    const planned = await contractsFor(knex, quote, quote.valid_from ?? saleDate);
    if (!planned.length) problems.push(`The active quote ${quote.number} has no items to sell.`);
    const existing = new Map((planned.length ? await knex('crm_contracts').whereIn('source_key', planned.map((c) => c.source_key)) : []).map((r) => [String(r.source_key), toContract(r)]));
    rules = await activeRulesFor(knex, planned.filter((c) => !existing.has(c.source_key) && c.category_id !== null).map((c) => c.category_id!));
    targets = await resolveTargets(ctx.host, [...rules.values()].flat());
    for (const categoryRules of rules.values()) {
      for (const rule of categoryRules) {
        const problem = ruleProblem(rule, targets, categoryRules);
        if (problem) ruleProblems.set(rule.id, problem);
      }
    }
    for (const problem of ruleProblems.values()) problems.push(`${problem} An administrator must fix the rule under CRM settings → Automation rules.`);
    contracts = planned.map((c) => {
      const has = existing.get(c.source_key) ?? null;
      const categoryRules = !has && c.category_id !== null ? rules.get(c.category_id) ?? [] : [];
      return { ...c, existing: has, automation: categoryRules.map((r) => describeRun(r, factsOf(c, shownOpp, accountHidden && account ? HIDDEN_ACCOUNT_TOKEN : account?.name ?? '', quote, null), targets, saleDate)) };
    });
  }
  return { opportunity: opp, quote, wonStatus: won, saleDate, contracts, problems, notes, ruleProblems, rules, targets, accountName: account?.name ?? '', shownAccountName };
}

// ---- selling ----------------------------------------------------------------------------------------------------

/** A sale refused for reasons the confirmation page lists (422). */
export class SaleRefused extends CrmError {
  constructor(message: string, readonly problems: string[]) {
    super(422, message, {}, { problems });
  }
}

export interface SaleResult {
  created: Contract[];
  kept: number;
  runs: number;
}

/**
 * Sells: `lock_version` (the opportunity) and `quote_lock_version` (the active quote) are those the confirmation
 * page showed, so what is sold is what was previewed. Time-based contracts renew unless the page unticked them
 * (`renew` lists the source keys that renew; without `renewal_form` every time-based contract renews).
 */
export async function sell(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<SaleResult> {
  if (opp.is_locked) throw new CrmError(409, 'This opportunity is already sold and locked: nothing was created again.');
  const lockVersion = lockVersionOf(input);
  const quoteLockVersion = lockVersionOf(input, 'quote_lock_version');
  const plan = await planSale(ctx, opp);
  for (const [ruleId, problem] of plan.ruleProblems) await flagRule(ctx.host.knex, ruleId, problem);
  if (plan.problems.length) throw new SaleRefused('The deal was not confirmed: fix what is listed below.', plan.problems);
  const quote = plan.quote!;
  const won = plan.wonStatus!;
  const renewing = new Set(list(input, 'renew'));
  const renewAll = text(input, 'renewal_form') !== '1';
  const now = new Date().toISOString();
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      // The lock: one statement that only a current, unsold opportunity passes. A second request (double submit,
      // another tab, a retry) waits for this one's row lock and then finds lock_version moved on: it changes nothing.
      const n = await trx('crm_opportunities').where({ id: opp.id, lock_version: lockVersion, is_locked: false }).whereNull('deleted_at')
        .update({ is_locked: true, status_id: won.id, sold_at: now, sold_by_id: ctx.user.id, lock_version: lockVersion + 1, updated_at: now });
      if (n === 0) {
        const row = await trx('crm_opportunities').where({ id: opp.id }).first('is_locked');
        if (row && Boolean(row.is_locked)) throw new CrmError(409, 'This opportunity was sold in the meantime: nothing was created again.');
        throw new CrmError(409, 'This opportunity was changed by someone else since the confirmation page was opened. Review the deal again.');
      }
      const current = await activeQuote(trx, opp.id);
      if (!current || current.id !== quote.id || current.lock_version !== quoteLockVersion) {
        throw new CrmError(409, 'The active quote changed since the confirmation page was opened. Review the deal again.');
      }
      const planned = await contractsFor(trx, current, current.valid_from ?? plan.saleDate);
      const existing = new Set((planned.length ? await trx('crm_contracts').whereIn('source_key', planned.map((c) => c.source_key)).pluck('source_key') : []).map(String));
      const created: Contract[] = [];
      let runs = 0;
      for (const c of planned.filter((p) => !existing.has(p.source_key))) {
        const row = {
          source_key: c.source_key, opportunity_id: opp.id, quote_id: current.id, quote_item_id: c.quote_item_id, account_id: opp.account_id,
          project_id: opp.project_id, owner_id: opp.owner_id, product_id: c.product_id, category_id: c.category_id, kind: c.kind, name: c.name, code: c.code,
          quantity_milli: c.quantity_milli, amount_minor: c.amount_minor, currency: c.currency, starts_on: c.starts_on, ends_on: c.ends_on,
          renewal: c.kind === 'time_based' && (renewAll || renewing.has(c.source_key)), status: 'active', author_id: ctx.user.id, lock_version: 0,
          created_at: now, updated_at: now,
        };
        const [inserted] = await trx('crm_contracts').insert(row).returning('*');
        const contract = toContract(inserted);
        created.push(contract);
        await journal(trx, {
          type: 'contract', id: contract.id, userId: ctx.user.id, action: 'create',
          changes: ['name', 'kind', 'amount_minor', 'currency', 'starts_on', 'ends_on', 'renewal'].map((f) => ({ field: f, old: null, new: (row as Record<string, unknown>)[f] }))
            .filter((x) => x.new !== null && (x.field !== 'renewal' || row.kind === 'time_based')),
          notes: `Sold with opportunity #${opp.id} (${quote.number})`,
        });
        const rules = c.category_id !== null ? plan.rules.get(c.category_id) ?? [] : [];
        runs += (await runRules(trx, ctx.host, ctx.user, { ...factsOf(c, opp, plan.accountName, current, contract.id), id: contract.id }, rules, plan.targets, plan.saleDate)).length;
      }
      await journal(trx, {
        type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update',
        changes: [
          ...(opp.status_id !== won.id ? [{ field: 'status_id', old: opp.status_id, new: won.id }] : []),
          { field: 'is_locked', old: false, new: true },
          ...created.map((c) => ({ field: 'contracts', old: null, new: `${c.name}${referenceTo(c.id)}` })),
        ],
        notes: `Sold (${quote.number}): ${created.length} contract(s) created${existing.size ? `, ${existing.size} kept from an earlier sale` : ''}.`,
      });
      return { created, kept: existing.size, runs };
    });
  } catch (err) {
    if (err instanceof AutomationRefusal) {
      // The sale rolled back; the rule's problem is written on its own, so settings show it to an administrator.
      await flagRule(ctx.host.knex, err.ruleId, err.message);
      throw new SaleRefused('The deal was not confirmed: the automation could not run, so nothing was created.', [err.message]);
    }
    throw err;
  }
}

/** C2: reopens a sold opportunity for new items and quotes. Its contracts stay until removed one by one. */
export async function unlock(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<void> {
  if (!opp.is_locked) throw new CrmError(409, 'This opportunity is not locked (any more).');
  const lockVersion = lockVersionOf(input);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_opportunities').where({ id: opp.id, lock_version: lockVersion, is_locked: true }).whereNull('deleted_at')
      .update({ is_locked: false, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw new CrmError(409, 'This opportunity was changed by someone else (unlocked or sold again). Reload the page.');
    await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'is_locked', old: true, new: false }], notes: 'Unlocked: quotes and items may change again; the contracts stay until removed.' });
  });
}
