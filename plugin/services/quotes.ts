import { SLICE_LINES, yieldToEventLoop } from './event-loop';
import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { invalid, notFound, staleRecord } from '../http/errors';
import type { Opportunity } from '../models/opportunity';
import { dateText } from './accounts';
import { convertMinor, rateOn, rateText } from './exchange-rates';
import { bundleItemsOf, bundleSplit } from './bundles';
import { FieldErrors, text, type FormInput, validId } from './form';
import { journal, type FieldChange } from './journal';
import { amountInput, formatMoney, isCurrencyCode, parseAmount } from './money';
import { assertUnsoldIn, canEditOpportunity, requireEditableOpportunity, requireVisibleOpportunity } from './opportunities';
import { priceBooksForProject, type PriceBook } from './price-books';
import {
  MAX_LINE_MINOR, lineGross, parsePercent, parseQuantity, priceQuote, quantityText, percentText,
  type DiscountKind, type LineAmounts, type QuoteItemKind, type QuoteTotals,
} from './quote-pricing';
import { todayUtc } from './dates';
import { isUniqueViolation } from './relations';
import { loadSettings } from './settings';

/**
 * Quotes on opportunities (SPEC Q5) and their items (Q6). A quote belongs to one opportunity and is seen by
 * whoever sees the opportunity; it is changed by whoever may edit it, never once the opportunity is sold
 * (locked). Of an opportunity's quotes exactly one is active: the first one created, then whichever is made
 * active. Every change is journaled on the opportunity (fields "quote" and "quote item").
 */

export interface Quote extends QuoteData {
  id: number;
  opportunity_id: number;
  number: string;
  is_active: boolean;
  author_id: number | null;
  lock_version: number;
  created_at: string;
  updated_at: string;
}

export interface QuoteItem {
  id: number;
  quote_id: number;
  position: number;
  kind: QuoteItemKind;
  product_id: number | null;
  bundle_id: number | null;
  price_book_id: number | null;
  code: string;
  name: string;
  description: string;
  unit: string;
  quantity_milli: number;
  unit_price_minor: number;
  discount_kind: DiscountKind;
  discount_value: number;
  tax_rate_bp: number;
  /** The item this line was copied from when its quote was duplicated (the first original's); null on an original. */
  origin_item_id: number | null;
}

/** A bundle line's split over the bundle's current items (for contracts later): shares add up to the line's net. */
export interface BundleShare {
  product_id: number;
  product_name: string;
  unit_name: string;
  weight: number;
  share_minor: number;
}

export type PricedItem = QuoteItem & LineAmounts & { bundle_split: BundleShare[] };

export interface QuoteWithTotals {
  quote: Quote;
  opportunity: Opportunity;
  items: PricedItem[];
  totals: QuoteTotals;
}

const LOCKED = 'This opportunity is sold and locked; its quotes cannot change.';
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
const nullableId = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function normalizeQuote(r: Record<string, unknown>): Quote {
  return {
    id: Number(r.id), opportunity_id: Number(r.opportunity_id), number: String(r.number), name: String(r.name), currency: String(r.currency),
    brand: String(r.brand ?? ''), product_version: String(r.product_version ?? ''), valid_from: dateText(r.valid_from), valid_to: dateText(r.valid_to),
    is_active: Boolean(r.is_active), author_id: nullableId(r.author_id), lock_version: Number(r.lock_version),
    created_at: iso(r.created_at), updated_at: iso(r.updated_at),
  };
}

function normalizeItem(r: Record<string, unknown>): QuoteItem {
  return {
    id: Number(r.id), quote_id: Number(r.quote_id), position: Number(r.position), kind: String(r.kind) as QuoteItemKind,
    product_id: nullableId(r.product_id), bundle_id: nullableId(r.bundle_id), price_book_id: nullableId(r.price_book_id),
    code: String(r.code ?? ''), name: String(r.name), description: String(r.description ?? ''), unit: String(r.unit ?? ''),
    quantity_milli: Number(r.quantity_milli), unit_price_minor: Number(r.unit_price_minor),
    discount_kind: r.discount_kind === 'percent' || r.discount_kind === 'amount' ? r.discount_kind : null,
    discount_value: Number(r.discount_value ?? 0), tax_rate_bp: Number(r.tax_rate_bp ?? 0), origin_item_id: nullableId(r.origin_item_id),
  };
}

// ---- reading ----------------------------------------------------------------------------------------------------

export async function quotesOf(knex: Knex, opportunityId: number): Promise<Quote[]> {
  return (await knex('crm_quotes').where({ opportunity_id: opportunityId }).orderBy([{ column: 'created_at' }, { column: 'id' }])).map(normalizeQuote);
}

export async function itemsOf(knex: Knex, quoteId: number): Promise<QuoteItem[]> {
  return (await itemsOfQuotes(knex, [quoteId])).get(quoteId) ?? [];
}

/** Items of several quotes in one query, by quote id; the rounding item always comes last, whatever its position. */
async function itemsOfQuotes(knex: Knex, quoteIds: number[]): Promise<Map<number, QuoteItem[]>> {
  const byQuote = new Map<number, QuoteItem[]>(quoteIds.map((id) => [id, []]));
  if (!quoteIds.length) return byQuote;
  const rows = await knex('crm_quote_items').whereIn('quote_id', quoteIds).orderBy([{ column: 'quote_id' }, { column: 'position' }, { column: 'id' }]);
  // Reading thousands of lines is one long step on SQLite; shaping them is another, after others had their turn.
  if (rows.length > SLICE_LINES) await yieldToEventLoop();
  for (const item of rows.map(normalizeItem)) byQuote.get(item.quote_id)?.push(item);
  for (const [id, items] of byQuote) byQuote.set(id, [...items.filter((i) => i.kind !== 'rounding'), ...items.filter((i) => i.kind === 'rounding')]);
  return byQuote;
}

/** The quote and its opportunity if this user may see the opportunity; 404 otherwise (never confirming it exists). */
export async function requireVisibleQuote(ctx: CrmContext, id: number): Promise<{ quote: Quote; opportunity: Opportunity }> {
  if (!validId(id)) throw notFound('Quote');
  const row = await ctx.host.knex('crm_quotes').where({ id }).first();
  if (!row) throw notFound('Quote');
  try {
    return { quote: normalizeQuote(row), opportunity: await requireVisibleOpportunity(ctx, Number(row.opportunity_id)) };
  } catch {
    throw notFound('Quote');
  }
}

/** A quote the user may change: visible (404), the opportunity editable (403), not sold (422). */
export async function requireEditableQuote(ctx: CrmContext, id: number): Promise<{ quote: Quote; opportunity: Opportunity }> {
  const { quote } = await requireVisibleQuote(ctx, id);
  const opportunity = await requireEditableOpportunity(ctx, quote.opportunity_id);
  if (opportunity.is_locked) throw invalid(LOCKED);
  return { quote, opportunity };
}

export async function canEditQuotes(ctx: CrmContext, opp: Opportunity): Promise<boolean> {
  return !opp.is_locked && (await canEditOpportunity(ctx, opp));
}

async function pricedItems(knex: Knex, items: QuoteItem[]): Promise<{ items: PricedItem[]; totals: QuoteTotals }> {
  const { lines, totals } = priceQuote(items);
  if (lines.length > SLICE_LINES) await yieldToEventLoop();
  const bundleIds = lines.filter((l) => l.kind === 'bundle' && l.bundle_id).map((l) => l.bundle_id as number);
  const partsOf = await bundleItemsOf(knex, bundleIds);
  const out: PricedItem[] = [];
  for (const line of lines) {
    let split: BundleShare[] = [];
    const parts = line.kind === 'bundle' && line.bundle_id ? partsOf.get(line.bundle_id) ?? [] : [];
    if (parts.length) {
      split = bundleSplit({ price_minor: line.net_minor }, parts).map((p) => ({
        product_id: p.product_id, product_name: p.product_name, unit_name: p.unit_name, weight: p.weight, share_minor: p.share_minor,
      }));
    }
    out.push({ ...line, bundle_split: split });
  }
  return { items: out, totals };
}

/**
 * The quote as a document shows it: its opportunity, its items with each line's gross, discount, net, tax and
 * total, and totals that are sums of those lines. Checks visibility first (404). For the document engine too.
 */
export async function quoteWithTotals(ctx: CrmContext, quoteId: number): Promise<QuoteWithTotals> {
  return pricedQuote(ctx.host.knex, await requireVisibleQuote(ctx, quoteId));
}

/** quoteWithTotals of a quote the caller has already read and checked with its opportunity. */
export async function pricedQuote(knex: Knex, { quote, opportunity }: { quote: Quote; opportunity: Opportunity }): Promise<QuoteWithTotals> {
  const lines = await itemsOf(knex, quote.id);
  if (lines.length > SLICE_LINES) await yieldToEventLoop();
  const { items, totals } = await pricedItems(knex, lines);
  if (items.length > SLICE_LINES) await yieldToEventLoop();
  return { quote, opportunity, items, totals };
}

/** Totals of several quotes at once (the opportunity page's list). */
export async function totalsOf(knex: Knex, quotes: Quote[]): Promise<Map<number, QuoteTotals>> {
  const out = new Map<number, QuoteTotals>();
  const itemsByQuote = await itemsOfQuotes(knex, quotes.map((q) => q.id));
  for (const q of quotes) out.set(q.id, (await pricedItems(knex, itemsByQuote.get(q.id) ?? [])).totals);
  return out;
}

// ---- JSON -------------------------------------------------------------------------------------------------------

export const quoteUrl = (id: number) => `/crm/quotes/${id}`;

export function quoteJson(q: Quote) {
  return { ...q, url: quoteUrl(q.id) };
}

export function itemJson(item: PricedItem, currency: string) {
  return {
    ...item, quantity: quantityText(item.quantity_milli), unit_price: amountInput(item.unit_price_minor, currency),
    discount: item.discount_kind === 'percent' ? percentText(item.discount_value) : item.discount_kind === 'amount' ? amountInput(item.discount_value, currency) : null,
    tax_rate: percentText(item.tax_rate_bp),
  };
}

export function totalsJson(totals: QuoteTotals, currency: string) {
  const out: Record<string, unknown> = { ...totals, currency };
  for (const [k, v] of Object.entries(totals)) out[k.replace(/_minor$/, '')] = amountInput(v, currency);
  return out;
}

// ---- numbers ----------------------------------------------------------------------------------------------------

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The next number for `format` (setting quote_number_format): {YYYY} the year, {YY} its last two digits, {MM}
 * the month, {SEQn} a sequence zero-padded to n digits ({SEQ} unpadded) that counts up per distinct rest of the
 * number (so per year with {YYYY}). A format without a sequence gets "-{SEQ4}" appended: numbers must be unique.
 */
export async function nextQuoteNumber(knex: Knex, format: string, now = new Date()): Promise<string> {
  let fmt = format.trim() || 'Q-{YYYY}-{SEQ4}';
  if (!/\{SEQ\d?\}/.test(fmt)) fmt += '-{SEQ4}';
  const fixed = fmt
    .replace(/\{YYYY\}/g, String(now.getFullYear()))
    .replace(/\{YY\}/g, String(now.getFullYear() % 100).padStart(2, '0'))
    .replace(/\{MM\}/g, String(now.getMonth() + 1).padStart(2, '0'));
  const seqToken = /\{SEQ(\d?)\}/.exec(fixed)!;
  const width = seqToken[1] ? Number(seqToken[1]) : 0;
  const [before, ...afterParts] = fixed.split(seqToken[0]);
  const after = afterParts.join(seqToken[0]);
  const pattern = new RegExp(`^${escapeRegExp(before)}(\\d+)${escapeRegExp(after)}$`);
  const likePrefix = before.replace(/[\\%_]/g, (c) => `\\${c}`);
  const rows = await knex('crm_quotes').whereRaw(`number like ? escape '\\'`, [`${likePrefix}%`]).select('number');
  let max = 0;
  for (const r of rows) {
    const m = pattern.exec(String(r.number));
    if (m) max = Math.max(max, Number(m[1]));
  }
  const number = `${before}${String(max + 1).padStart(width, '0')}${after}`;
  return number.slice(0, 40);
}

/** Runs `work` in a transaction; a unique violation (two quotes numbered at once) is retried once with a new number. */
async function withNumberRetry<T>(knex: Knex, work: (trx: Knex.Transaction, number: string) => Promise<T>): Promise<T> {
  const format = String((await loadSettings(knex)).quote_number_format ?? 'Q-{YYYY}-{SEQ4}');
  for (let attempt = 0; ; attempt++) {
    try {
      return await knex.transaction(async (trx) => work(trx, await nextQuoteNumber(trx, format)));
    } catch (err) {
      if (attempt === 0 && isUniqueViolation(err)) continue;
      throw err;
    }
  }
}

// ---- quote fields -----------------------------------------------------------------------------------------------

export interface QuoteData {
  name: string;
  currency: string;
  brand: string;
  product_version: string;
  valid_from: string | null;
  valid_to: string | null;
}

const QUOTE_FIELDS = ['name', 'currency', 'brand', 'product_version', 'valid_from', 'valid_to'] as const;

export function readQuoteInput(input: FormInput, defaults: { currency: string }): QuoteData {
  const errors = new FieldErrors();
  const name = errors.text(input, 'name', 'Name', { max: 200, required: true });
  const currency = (text(input, 'currency') || defaults.currency).toUpperCase();
  if (!isCurrencyCode(currency)) errors.add('currency', 'Currency must be a code such as EUR');
  const brand = errors.text(input, 'brand', 'Brand', { max: 100 });
  const productVersion = errors.text(input, 'product_version', 'Product version', { max: 100 });
  const from = errors.date(input, 'valid_from', 'Valid from');
  const to = errors.date(input, 'valid_to', 'Valid to');
  if (from && to && to < from) errors.add('valid_to', 'Valid to is before valid from');
  if (errors.any) throw invalid('The quote was not saved: fix the fields marked below.', errors.errors);
  return { name, currency, brand, product_version: productVersion, valid_from: from, valid_to: to };
}

async function journalQuote(trx: Knex.Transaction, ctx: CrmContext, opp: Opportunity, changes: FieldChange[], notes?: string): Promise<void> {
  await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update', changes, notes });
}

const label = (q: Pick<Quote, 'number' | 'name'>) => `${q.number} ${q.name}`;

export async function createQuote(ctx: CrmContext, opp: Opportunity, data: QuoteData): Promise<Quote> {
  if (opp.is_locked) throw invalid(LOCKED);
  return withNumberRetry(ctx.host.knex, async (trx, number) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    // The first quote of an opportunity is its active one: there is always exactly one once there are any.
    const hasActive = await trx('crm_quotes').where({ opportunity_id: opp.id, is_active: true }).first('id');
    const [row] = await trx('crm_quotes').insert({ ...data, opportunity_id: opp.id, number, is_active: !hasActive, author_id: ctx.user.id }).returning('*');
    const quote = normalizeQuote(row);
    await journalQuote(trx, ctx, opp, [{ field: 'quote', old: null, new: `${label(quote)} created${quote.is_active ? ' (active)' : ''}` }]);
    return quote;
  });
}

export async function updateQuote(ctx: CrmContext, opp: Opportunity, quote: Quote, data: QuoteData, lockVersion: number): Promise<Quote> {
  if (opp.is_locked) throw invalid(LOCKED);
  if (!Number.isInteger(lockVersion)) throw invalid('The form is missing its lock version; reload the page.', { lock_version: 'missing' });
  return ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const n = await trx('crm_quotes').where({ id: quote.id, lock_version: lockVersion }).update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This quote');
    // Refusals below throw inside this transaction: the quote and its items stay as they were.
    const conversion = data.currency !== quote.currency ? await convertItems(trx, quote, data.currency) : null;
    const before = quote as unknown as Record<string, unknown>;
    const after = data as unknown as Record<string, unknown>;
    const changes = QUOTE_FIELDS.filter((f) => String(before[f] ?? '') !== String(after[f] ?? ''))
      .map((f) => ({ field: 'quote', old: `${quote.number} ${f.replace(/_/g, ' ')}: ${before[f] ?? ''}`, new: `${quote.number} ${f.replace(/_/g, ' ')}: ${after[f] ?? ''}` }));
    await journalQuote(trx, ctx, opp, changes, conversion ?? undefined);
    return normalizeQuote(await trx('crm_quotes').where({ id: quote.id }).first());
  });
}

const CURRENCY_REFUSED = 'The quote was not saved: fix the fields marked below.';

/**
 * Changing a quote's currency (SPEC Q7) with its items, inside the caller's transaction; answers the journal note.
 *  - Price-book items (product, bundle) are re-priced from their price book in the new currency: the same
 *    product unit, or the bundle if it is priced in that currency. If any has no such price, the change is
 *    refused (422) naming them all ("No EUR price in Standard 2026 for: Barcode scanner (piece)").
 *  - Hand-typed items (manual, rounding) are converted with rateOn(from, to, today) — the latest rate on or
 *    before today, or the inverse pair's — rounded once, half away from zero. No rate → 422 naming the pair.
 *  - Discounts are kept, not dropped: a percent discount stays the same percent; an amount discount (minor
 *    units of the old currency) is converted with the same rate, on every kind of item.
 * A rate is only needed when something is converted (a hand-typed item or an amount discount).
 */
async function convertItems(trx: Knex.Transaction, quote: Quote, to: string): Promise<string | null> {
  const from = quote.currency;
  const items = await itemsOf(trx, quote.id);
  if (!items.length) return null;
  const missing = new Map<string, string[]>();
  const prices = new Map<number, number>();
  for (const item of items) {
    if (item.kind !== 'product' && item.kind !== 'bundle') continue;
    let price: number | null = null;
    if (item.kind === 'product' && item.product_id && item.price_book_id) {
      const row = await trx('crm_product_prices').where({ price_book_id: item.price_book_id, product_id: item.product_id, unit_name: item.unit, currency: to }).first('price_minor');
      if (row) price = Number(row.price_minor);
    } else if (item.kind === 'bundle' && item.bundle_id && item.price_book_id) {
      const row = await trx('crm_bundles').where({ id: item.bundle_id, price_book_id: item.price_book_id, currency: to }).first('price_minor');
      if (row) price = Number(row.price_minor);
    }
    if (price === null) {
      const book = item.price_book_id ? await trx('crm_price_books').where({ id: item.price_book_id }).first('name') : null;
      const where = book ? ` in ${String(book.name)}` : '';
      missing.set(where, [...(missing.get(where) ?? []), `${item.name} (${item.unit || item.kind})`]);
    } else prices.set(item.id, price);
  }
  if (missing.size) {
    const message = [...missing].map(([where, names]) => `No ${to} price${where} for: ${names.join(', ')}`).join('; ');
    throw invalid(`The currency was not changed. ${message}.`, { currency: message });
  }
  const needsRate = items.some((i) => i.kind === 'manual' || i.kind === 'rounding' || (i.discount_kind === 'amount' && i.discount_value !== 0));
  const today = todayUtc();
  const rate = needsRate ? await rateOn(trx, from, to, today) : null;
  if (needsRate && !rate) {
    const message = `No exchange rate from ${from} to ${to} on or before ${today}`;
    throw invalid(`${CURRENCY_REFUSED} ${message}.`, { currency: message });
  }
  const convert = (minor: number) => convertMinor(minor, from, to, rate!.rate_micro);
  const capped: string[] = [];
  for (const item of items) {
    const unitPrice = prices.get(item.id) ?? convert(item.unit_price_minor);
    const gross = lineGross(item.quantity_milli, unitPrice);
    if (Math.abs(gross) > MAX_LINE_MINOR) {
      throw invalid(`${CURRENCY_REFUSED} ${item.name} would be too large in ${to}.`, { currency: `${item.name} would be too large in ${to}` });
    }
    let discount = item.discount_kind === 'amount' ? convert(item.discount_value) : item.discount_value;
    // A line re-priced from its price book may cost less in the new currency than its converted amount discount:
    // the discount is capped at the line (the item form refuses more), and the change says so.
    if (item.discount_kind === 'amount' && discount > Math.max(gross, 0)) {
      discount = Math.max(gross, 0);
      capped.push(item.name);
    }
    await trx('crm_quote_items').where({ id: item.id }).update({ unit_price_minor: unitPrice, discount_value: discount });
  }
  const converted = items.length - prices.size;
  return `${quote.number}: currency ${from} → ${to}; ${prices.size} item(s) re-priced from price books` +
    (rate ? `, ${converted} converted at ${rateText(rate.rate_micro)} (rate of ${rate.valid_on}${rate.inverse ? `, inverse of ${to}→${from}` : ''})` : '') +
    '; percent discounts kept, amount discounts converted' + (capped.length ? `; amount discount capped at the line amount for: ${capped.join(', ')}` : '');
}

/**
 * A copy with its items and a new number; not active. Each copied item keeps the identity of the line it copies
 * (`origin_item_id`, the first original's id): a line sold before stays sold on every copy of its quote.
 */
export async function duplicateQuote(ctx: CrmContext, opp: Opportunity, quote: Quote): Promise<Quote> {
  if (opp.is_locked) throw invalid(LOCKED);
  return withNumberRetry(ctx.host.knex, async (trx, number) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const [row] = await trx('crm_quotes').insert({
      opportunity_id: opp.id, number, name: `${quote.name} (copy)`.slice(0, 200), currency: quote.currency, brand: quote.brand,
      product_version: quote.product_version, valid_from: quote.valid_from, valid_to: quote.valid_to, is_active: false, author_id: ctx.user.id,
    }).returning('*');
    const copy = normalizeQuote(row);
    const items = await trx('crm_quote_items').where({ quote_id: quote.id }).orderBy([{ column: 'position' }, { column: 'id' }]);
    if (items.length) {
      await trx('crm_quote_items').insert(items.map((i) => {
        const { id, ...rest } = i as Record<string, unknown>;
        return { ...rest, quote_id: copy.id, origin_item_id: rest.origin_item_id ?? id };
      }));
    }
    await journalQuote(trx, ctx, opp, [{ field: 'quote', old: null, new: `${label(copy)} created as a copy of ${quote.number}` }]);
    return copy;
  });
}

export async function deleteQuote(ctx: CrmContext, opp: Opportunity, quote: Quote): Promise<void> {
  if (opp.is_locked) throw invalid(LOCKED);
  await ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const row = await trx('crm_quotes').where({ id: quote.id }).first('is_active');
    if (!row) throw notFound('Quote');
    if (row.is_active) throw invalid('The active quote cannot be deleted', { quote: 'The active quote cannot be deleted' });
    await trx('crm_quote_items').where({ quote_id: quote.id }).delete();
    await trx('crm_quotes').where({ id: quote.id }).delete();
    await journalQuote(trx, ctx, opp, [{ field: 'quote', old: label(quote), new: null }], `Quote ${quote.number} deleted`);
  });
}

/** Makes this quote the opportunity's one active quote. */
export async function activateQuote(ctx: CrmContext, opp: Opportunity, quote: Quote): Promise<void> {
  if (opp.is_locked) throw invalid(LOCKED);
  await ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const previous = await trx('crm_quotes').where({ opportunity_id: opp.id, is_active: true }).first('id', 'number');
    if (previous && Number(previous.id) === quote.id) return;
    await trx('crm_quotes').where({ opportunity_id: opp.id }).whereNot({ id: quote.id }).update({ is_active: false });
    const n = await trx('crm_quotes').where({ id: quote.id, opportunity_id: opp.id }).update({ is_active: true });
    if (n === 0) throw notFound('Quote');
    await journalQuote(trx, ctx, opp, [{ field: 'active quote', old: previous ? String(previous.number) : null, new: quote.number }]);
  });
}

// ---- items ------------------------------------------------------------------------------------------------------

/** The default tax rate (setting default_tax_rate, a percentage such as "25.00"); 0 when the setting is not one. */
export async function defaultTaxRate(knex: Knex): Promise<number> {
  const parsed = parsePercent(String((await loadSettings(knex)).default_tax_rate ?? '0'));
  return parsed.ok ? parsed.value : 0;
}

interface ItemNumbers {
  quantity_milli: number;
  unit_price_minor: number;
  discount_kind: DiscountKind;
  discount_value: number;
  tax_rate_bp: number;
}

export type ItemData = ItemNumbers & { name: string; description: string; unit: string };

/**
 * Quantity, unit price, discount and tax rate from a form, every problem reported at once: quantity > 0 with at
 * most 3 decimals, a unit price in the quote's currency (no more decimals than it has, not negative), a
 * discount of 0–100 % (2 decimals) or an amount from 0 to the line's gross, a tax rate of 0–100 %.
 */
function readNumbers(input: FormInput, currency: string, errors: FieldErrors, opts: { price: boolean; taxDefault: number }): ItemNumbers {
  const q = parseQuantity(text(input, 'quantity'));
  if (!q.ok) errors.add('quantity', `Quantity ${q.error}`);
  let price = 0;
  if (opts.price) {
    const raw = text(input, 'unit_price');
    const p = raw ? parseAmount(raw, currency) : ({ ok: false, error: 'is required' } as const);
    if (!p.ok) errors.add('unit_price', `Unit price ${p.error}`);
    else if (p.minor < 0) errors.add('unit_price', 'Unit price cannot be negative');
    else price = p.minor;
  }
  const quantity = q.ok ? q.value : 0;
  const gross = q.ok ? lineGross(quantity, price) : 0;
  if (q.ok && Math.abs(gross) > MAX_LINE_MINOR) errors.add('quantity', 'The line amount is too large');
  const kindRaw = text(input, 'discount_kind');
  const discountRaw = text(input, 'discount');
  let kind: DiscountKind = null;
  let value = 0;
  if (discountRaw !== '' && kindRaw !== 'percent' && kindRaw !== 'amount') errors.add('discount_kind', 'Choose % or amount for the discount');
  else if (kindRaw === 'percent' && discountRaw !== '') {
    const d = parsePercent(discountRaw);
    if (!d.ok) errors.add('discount', `Discount ${d.error}`);
    else if (d.value > 0) [kind, value] = ['percent', d.value];
  } else if (kindRaw === 'amount' && discountRaw !== '') {
    const d = parseAmount(discountRaw, currency);
    if (!d.ok) errors.add('discount', `Discount ${d.error}`);
    else if (d.minor < 0) errors.add('discount', 'Discount cannot be negative');
    else if (d.minor > gross && q.ok) errors.add('discount', `Discount is more than the line amount (${formatMoney(gross, currency)})`);
    else if (d.minor > 0) [kind, value] = ['amount', d.minor];
  }
  const taxRaw = text(input, 'tax_rate');
  let tax = opts.taxDefault;
  if (taxRaw !== '') {
    const t = parsePercent(taxRaw);
    if (!t.ok) errors.add('tax_rate', `Tax rate ${t.error}`);
    else tax = t.value;
  }
  return { quantity_milli: quantity, unit_price_minor: price, discount_kind: kind, discount_value: value, tax_rate_bp: tax };
}

const INVALID_ITEM = 'The item was not saved: fix the fields marked below.';

/** A manual item (typed by hand). */
export async function readManualItem(knex: Knex, input: FormInput, currency: string, existing: QuoteItem | null = null): Promise<ItemData> {
  const errors = new FieldErrors();
  const name = errors.text(input, 'name', 'Name', { max: 200, required: true });
  const description = errors.text(input, 'description', 'Description', { max: 20_000 });
  const unit = errors.text(input, 'unit', 'Unit', { max: 60 });
  const numbers = readNumbers(input, currency, errors, { price: true, taxDefault: existing?.tax_rate_bp ?? (await defaultTaxRate(knex)) });
  if (errors.any) throw invalid(INVALID_ITEM, errors.errors);
  return { name, description, unit, ...numbers };
}

function itemLabel(quote: Quote, i: Pick<QuoteItem, 'name' | 'quantity_milli' | 'unit' | 'unit_price_minor' | 'discount_kind' | 'discount_value' | 'tax_rate_bp' | 'kind'>): string {
  if (i.kind === 'rounding') return `${quote.number}: rounding ${amountInput(i.unit_price_minor, quote.currency)}`;
  const discount = i.discount_kind === 'percent' ? `, discount ${percentText(i.discount_value)} %` : i.discount_kind === 'amount' ? `, discount ${amountInput(i.discount_value, quote.currency)}` : '';
  return `${quote.number}: ${quantityText(i.quantity_milli)}${i.unit ? ` ${i.unit}` : ''} × ${i.name} at ${amountInput(i.unit_price_minor, quote.currency)} ${quote.currency}${discount}, tax ${percentText(i.tax_rate_bp)} %`;
}

/** Every item change counts as a change of the quote: its lock version moves on, so an open form of it goes stale. */
async function touchQuote(trx: Knex.Transaction, quote: Quote, lockVersion: number | null): Promise<void> {
  const q = trx('crm_quotes').where({ id: quote.id });
  if (lockVersion !== null) q.where({ lock_version: lockVersion });
  const n = await q.update({ lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() });
  if (n === 0) throw staleRecord('This quote');
}

async function insertItem(ctx: CrmContext, opp: Opportunity, quote: Quote, row: Record<string, unknown>): Promise<QuoteItem> {
  return ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const max = await trx('crm_quote_items').where({ quote_id: quote.id }).max({ m: 'position' }).first();
    const [inserted] = await trx('crm_quote_items').insert({ ...row, quote_id: quote.id, position: Number(max?.m ?? 0) + 1 }).returning('*');
    const item = normalizeItem(inserted);
    await touchQuote(trx, quote, null);
    await journalQuote(trx, ctx, opp, [{ field: 'quote item', old: null, new: itemLabel(quote, item) }]);
    return item;
  });
}

export async function addManualItem(ctx: CrmContext, opp: Opportunity, quote: Quote, input: FormInput): Promise<QuoteItem> {
  if (opp.is_locked) throw invalid(LOCKED);
  const data = await readManualItem(ctx.host.knex, input, quote.currency);
  return insertItem(ctx, opp, quote, { ...data, kind: 'manual' });
}

/** The price books a quote of this opportunity may draw from (those of its project and the project's ancestors). */
export async function priceBooksForQuote(ctx: CrmContext, opp: Opportunity): Promise<PriceBook[]> {
  const project = await ctx.host.projectById(opp.project_id);
  return project ? priceBooksForProject(ctx, project) : [];
}

export async function requireQuotePriceBook(ctx: CrmContext, opp: Opportunity, bookId: number): Promise<PriceBook> {
  const book = (await priceBooksForQuote(ctx, opp)).find((b) => b.id === bookId);
  if (!book) throw notFound('Price book');
  return book;
}

export interface CatalogueEntry {
  kind: 'product' | 'bundle';
  /** crm_product_prices.id or crm_bundles.id */
  id: number;
  code: string;
  name: string;
  description: string;
  unit: string;
  price_minor: number;
  bundle_items?: string[];
}

/** What a quote may take from a price book: active products' units and active bundles priced in the quote's currency. */
export async function catalogue(knex: Knex, book: PriceBook, currency: string): Promise<CatalogueEntry[]> {
  const prices = await knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
    .where({ 'pp.price_book_id': book.id, 'pp.currency': currency }).whereNull('p.deleted_at').where('p.active', true)
    .orderBy([{ column: 'p.name' }, { column: 'p.id' }, { column: 'pp.unit_name' }])
    .select('pp.id', 'pp.unit_name', 'pp.price_minor', 'p.code', 'p.name', 'p.description');
  const bundles = await knex('crm_bundles').where({ price_book_id: book.id, currency, active: true }).orderBy([{ column: 'name' }, { column: 'id' }]);
  const out: CatalogueEntry[] = prices.map((r) => ({
    kind: 'product', id: Number(r.id), code: String(r.code), name: String(r.name), description: String(r.description ?? ''), unit: String(r.unit_name), price_minor: Number(r.price_minor),
  }));
  const partsOf = await bundleItemsOf(knex, bundles.map((b) => Number(b.id)));
  for (const b of bundles) {
    const parts = partsOf.get(Number(b.id)) ?? [];
    out.push({
      kind: 'bundle', id: Number(b.id), code: String(b.code), name: String(b.name), description: String(b.description ?? ''), unit: 'bundle',
      price_minor: Number(b.price_minor), bundle_items: parts.map((p) => `${p.product_name} (${p.unit_name})`),
    });
  }
  return out;
}

/**
 * Adds a product unit (`price_id`) or a bundle (`bundle_id`) of price book `price_book_id` at its price. The
 * price book must be one of the opportunity's project (404 otherwise); the price or bundle must be in it, active
 * and in the quote's currency (404 otherwise: it is not offered). A bundle becomes one line at the bundle price.
 */
export async function addFromPriceBook(ctx: CrmContext, opp: Opportunity, quote: Quote, input: FormInput): Promise<QuoteItem> {
  if (opp.is_locked) throw invalid(LOCKED);
  const knex = ctx.host.knex;
  const book = await requireQuotePriceBook(ctx, opp, Number(text(input, 'price_book_id')) || 0);
  const entries = await catalogue(knex, book, quote.currency);
  const priceId = Number(text(input, 'price_id')) || 0;
  const bundleId = Number(text(input, 'bundle_id')) || 0;
  const entry = entries.find((e) => (priceId ? e.kind === 'product' && e.id === priceId : e.kind === 'bundle' && e.id === bundleId));
  if (!entry) throw notFound(bundleId ? 'Bundle' : 'Price');
  const errors = new FieldErrors();
  const numbers = readNumbers({ ...input, unit_price: amountInput(entry.price_minor, quote.currency) }, quote.currency, errors, { price: true, taxDefault: await defaultTaxRate(knex) });
  if (errors.any) throw invalid(INVALID_ITEM, errors.errors);
  const productId = entry.kind === 'product' ? Number((await knex('crm_product_prices').where({ id: entry.id }).first('product_id')).product_id) : null;
  return insertItem(ctx, opp, quote, {
    ...numbers, kind: entry.kind, product_id: productId, bundle_id: entry.kind === 'bundle' ? entry.id : null, price_book_id: book.id,
    code: entry.code, name: entry.name, description: entry.description, unit: entry.unit,
  });
}

export async function requireItem(knex: Knex, quote: Quote, itemId: number): Promise<QuoteItem> {
  if (!validId(itemId)) throw notFound('Quote item');
  const row = await knex('crm_quote_items').where({ id: itemId, quote_id: quote.id }).first();
  if (!row) throw notFound('Quote item');
  return normalizeItem(row);
}

/** Edits an item (not the rounding item): every field, checked like a manual one; the quote's lock version guards it. */
export async function updateItem(ctx: CrmContext, opp: Opportunity, quote: Quote, item: QuoteItem, input: FormInput, lockVersion: number): Promise<QuoteItem> {
  if (opp.is_locked) throw invalid(LOCKED);
  if (item.kind === 'rounding') throw invalid('Change the rounding item with its own form.');
  if (!Number.isInteger(lockVersion)) throw invalid('The form is missing its lock version; reload the page.', { lock_version: 'missing' });
  const data = await readManualItem(ctx.host.knex, input, quote.currency, item);
  return ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    await touchQuote(trx, quote, lockVersion);
    await trx('crm_quote_items').where({ id: item.id }).update(data);
    const saved = normalizeItem(await trx('crm_quote_items').where({ id: item.id }).first());
    const before = itemLabel(quote, item);
    const after = itemLabel(quote, saved);
    if (before !== after || item.description !== saved.description) await journalQuote(trx, ctx, opp, [{ field: 'quote item', old: before, new: after }]);
    return saved;
  });
}

export async function removeItem(ctx: CrmContext, opp: Opportunity, quote: Quote, item: QuoteItem): Promise<void> {
  if (opp.is_locked) throw invalid(LOCKED);
  await ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const n = await trx('crm_quote_items').where({ id: item.id, quote_id: quote.id }).delete();
    if (n === 0) throw notFound('Quote item');
    await touchQuote(trx, quote, null);
    await journalQuote(trx, ctx, opp, [{ field: 'quote item', old: itemLabel(quote, item), new: null }]);
  });
}

/** Swaps an item with its neighbour above or below (the rounding item stays last). */
export async function moveItem(ctx: CrmContext, opp: Opportunity, quote: Quote, item: QuoteItem, direction: 'up' | 'down'): Promise<void> {
  if (opp.is_locked) throw invalid(LOCKED);
  await ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const items = (await itemsOf(trx, quote.id)).filter((i) => i.kind !== 'rounding');
    const index = items.findIndex((i) => i.id === item.id);
    const other = items[direction === 'up' ? index - 1 : index + 1];
    if (index < 0 || !other) return;
    // Positions are renumbered 1…n first, so equal positions (copies, concurrent adds) still swap.
    for (const [i, it] of items.entries()) await trx('crm_quote_items').where({ id: it.id }).update({ position: i + 1 });
    await trx('crm_quote_items').where({ id: item.id }).update({ position: (direction === 'up' ? index - 1 : index + 1) + 1 });
    await trx('crm_quote_items').where({ id: other.id }).update({ position: index + 1 });
    await touchQuote(trx, quote, null);
    await journalQuote(trx, ctx, opp, [], `${quote.number}: ${item.name} moved ${direction}`);
  });
}

/**
 * Sets (or, with an empty amount, clears) the quote's one rounding item: quantity 1 at a possibly negative
 * price, no discount, no tax, included in the net total.
 */
export async function setRounding(ctx: CrmContext, opp: Opportunity, quote: Quote, input: FormInput): Promise<QuoteItem | null> {
  if (opp.is_locked) throw invalid(LOCKED);
  const raw = text(input, 'rounding');
  let amount = 0;
  if (raw) {
    const parsed = parseAmount(raw, quote.currency);
    if (!parsed.ok) throw invalid('The rounding was not saved: fix the field marked below.', { rounding: `Rounding ${parsed.error}` });
    if (Math.abs(parsed.minor) > MAX_LINE_MINOR) throw invalid('The rounding was not saved: fix the field marked below.', { rounding: 'Rounding is too large' });
    amount = parsed.minor;
  }
  return ctx.host.knex.transaction(async (trx) => {
    await assertUnsoldIn(trx, opp.id, LOCKED);
    const existing = await trx('crm_quote_items').where({ quote_id: quote.id, kind: 'rounding' }).first();
    const before = existing ? itemLabel(quote, normalizeItem(existing)) : null;
    let saved: QuoteItem | null = null;
    if (amount === 0) {
      if (!existing) return null;
      await trx('crm_quote_items').where({ id: existing.id }).delete();
    } else {
      const row = { name: 'Rounding', unit: '', quantity_milli: 1000, unit_price_minor: amount, discount_kind: null, discount_value: 0, tax_rate_bp: 0 };
      if (existing) await trx('crm_quote_items').where({ id: existing.id }).update(row);
      else await trx('crm_quote_items').insert({ ...row, quote_id: quote.id, kind: 'rounding', position: 1_000_000 });
      saved = normalizeItem(await trx('crm_quote_items').where({ quote_id: quote.id, kind: 'rounding' }).first());
    }
    const after = saved ? itemLabel(quote, saved) : null;
    if (before !== after) {
      await touchQuote(trx, quote, null);
      await journalQuote(trx, ctx, opp, [{ field: 'quote item', old: before, new: after }]);
    }
    return saved;
  });
}
