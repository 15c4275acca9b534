import type { Knex } from 'knex';
import { isPg } from '../../migrations/dialect';
import type { CrmContext } from '../http/guard';
import { CrmError, invalid, notFound, staleRecord } from '../http/errors';
import { FieldErrors, flag, text, type FormInput, validId } from './form';
import { changedFields, journal } from './journal';
import { amountInput, isCurrencyCode, parseAmount, splitByWeights } from './money';
import { lockPriceBookPrices, requireManageablePriceBook, requireVisiblePriceBook, type PriceBook } from './price-books';

/**
 * Bundles (SPEC Q3): a named set of price-book items sold for one price, which splits over the items by
 * their weights exactly — the items' shares always add up to the bundle price, to the minor unit.
 */
export interface Bundle extends Omit<BundleInput, 'items'> {
  id: number;
  price_book_id: number;
  lock_version: number;
  created_at: string;
  updated_at: string;
}

export interface BundleItem {
  id: number;
  bundle_id: number;
  product_id: number;
  unit_name: string;
  weight: number;
  position: number;
  product_name: string;
  product_code: string;
}

export interface BundleItemInput {
  product_id: number;
  unit_name: string;
  weight: number;
}

export interface BundleInput {
  name: string;
  description: string;
  code: string;
  active: boolean;
  price_minor: number;
  currency: string;
  items: BundleItemInput[];
}

export const MAX_WEIGHT = 10_000;
export const MAX_ITEMS = 100;
const BUNDLE_FIELDS = ['name', 'description', 'code', 'active', 'price_minor', 'currency', 'price_book_id'];

const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));

function normalizeBundle(row: Record<string, unknown>): Bundle {
  return {
    id: Number(row.id), price_book_id: Number(row.price_book_id), name: String(row.name), description: String(row.description ?? ''),
    code: String(row.code), active: Boolean(row.active), price_minor: Number(row.price_minor), currency: String(row.currency),
    lock_version: Number(row.lock_version), created_at: iso(row.created_at), updated_at: iso(row.updated_at),
  };
}

/** Each item's exact share of the bundle price, in item order: the shares add up to the price. */
export function bundleSplit<I extends { weight: number }>(bundle: { price_minor: number }, items: I[]): Array<I & { share_minor: number }> {
  const shares = splitByWeights(bundle.price_minor, items.map((i) => i.weight));
  return items.map((item, index) => ({ ...item, share_minor: shares[index] }));
}

export async function bundlesOf(knex: Knex, priceBookId: number): Promise<Bundle[]> {
  return (await knex('crm_bundles').where({ price_book_id: priceBookId }).orderBy([{ column: 'name' }, { column: 'id' }])).map(normalizeBundle);
}

export async function bundleItems(knex: Knex, bundleId: number): Promise<BundleItem[]> {
  return (await bundleItemsOf(knex, [bundleId])).get(bundleId) ?? [];
}

/** The items of several bundles in one query, by bundle id, each in its order. */
export async function bundleItemsOf(knex: Knex, bundleIds: number[]): Promise<Map<number, BundleItem[]>> {
  const out = new Map<number, BundleItem[]>();
  if (!bundleIds.length) return out;
  const rows = await knex('crm_bundle_items as bi').join('crm_products as p', 'p.id', 'bi.product_id').whereIn('bi.bundle_id', [...new Set(bundleIds)])
    .orderBy([{ column: 'bi.bundle_id' }, { column: 'bi.position' }, { column: 'bi.id' }])
    .select('bi.id', 'bi.bundle_id', 'bi.product_id', 'bi.unit_name', 'bi.weight', 'bi.position', 'p.name as product_name', 'p.code as product_code');
  for (const r of rows) {
    const item: BundleItem = {
      id: Number(r.id), bundle_id: Number(r.bundle_id), product_id: Number(r.product_id), unit_name: String(r.unit_name), weight: Number(r.weight),
      position: Number(r.position), product_name: String(r.product_name), product_code: String(r.product_code),
    };
    if (!out.has(item.bundle_id)) out.set(item.bundle_id, []);
    out.get(item.bundle_id)!.push(item);
  }
  return out;
}

/** A bundle whose price book this user may see, with that price book; 404 otherwise. */
export async function requireVisibleBundle(ctx: CrmContext, id: number): Promise<{ bundle: Bundle; priceBook: PriceBook }> {
  if (!validId(id)) throw notFound('Bundle');
  const row = await ctx.host.knex('crm_bundles').where({ id }).first();
  if (!row) throw notFound('Bundle');
  const bundle = normalizeBundle(row);
  try {
    return { bundle, priceBook: await requireVisiblePriceBook(ctx, bundle.price_book_id) };
  } catch {
    throw notFound('Bundle');
  }
}

/** A bundle this user may change: 404 when its price book is hidden, 403 without manage_price_books. */
export async function requireManageableBundle(ctx: CrmContext, id: number): Promise<{ bundle: Bundle; priceBook: PriceBook }> {
  const found = await requireVisibleBundle(ctx, id);
  await requireManageablePriceBook(ctx, found.priceBook.id);
  return found;
}

/** Currencies the price book prices things in. */
export async function priceBookCurrencies(knex: Knex, priceBookId: number): Promise<string[]> {
  return (await knex('crm_product_prices').where({ price_book_id: priceBookId }).distinct('currency').orderBy('currency')).map((r) => String(r.currency));
}

/** The (product, unit) pairs priced in a price book: what a bundle item may be chosen from. */
export async function priceBookItemChoices(knex: Knex, priceBookId: number): Promise<Array<{ product_id: number; unit_name: string; label: string }>> {
  const rows = await knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
    .where('pp.price_book_id', priceBookId).whereNull('p.deleted_at')
    .distinct('pp.product_id', 'pp.unit_name', 'p.name', 'p.code').orderBy([{ column: 'p.name' }, { column: 'pp.unit_name' }]);
  return rows.map((r) => ({ product_id: Number(r.product_id), unit_name: String(r.unit_name), label: `${r.name} (${r.code}) · ${r.unit_name}` }));
}

const asArray = (v: unknown): string[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]).map((x) => (typeof x === 'string' || typeof x === 'number' ? String(x).trim() : ''));

/** Items from a form (parallel `item_key` = "productId:unit" and `item_weight` fields) or JSON (`items: [{product_id, unit_name, weight}]`). */
function readItems(input: FormInput, errors: FieldErrors): Array<{ product_id: number; unit_name: string; weightRaw: string }> {
  const out: Array<{ product_id: number; unit_name: string; weightRaw: string }> = [];
  if (Array.isArray(input.items)) {
    for (const raw of input.items as unknown[]) {
      const item = (raw ?? {}) as Record<string, unknown>;
      out.push({ product_id: Number(item.product_id), unit_name: typeof item.unit_name === 'string' ? item.unit_name.trim() : '', weightRaw: String(item.weight ?? '').trim() });
    }
    return out;
  }
  const keys = asArray(input.item_key);
  const weights = asArray(input.item_weight);
  for (let i = 0; i < Math.max(keys.length, weights.length); i++) {
    const key = keys[i] ?? '';
    const weightRaw = weights[i] ?? '';
    if (!key && !weightRaw) continue;
    const colon = key.indexOf(':');
    if (!key || colon < 1) {
      errors.add('items', `Row ${i + 1}: choose a product`);
      continue;
    }
    out.push({ product_id: Number(key.slice(0, colon)), unit_name: key.slice(colon + 1).trim(), weightRaw });
  }
  return out;
}

/**
 * Reads and checks a bundle form for `priceBook`; every problem is reported at once (422 naming the fields). Its
 * currency is one the book prices in, its items are product units priced in that book (what the form offers), each once.
 */
export async function readBundleInput(knex: Knex, input: FormInput, priceBook: Pick<PriceBook, 'id' | 'name'>): Promise<BundleInput> {
  const priceBookId = priceBook.id;
  const errors = new FieldErrors();
  const name = errors.text(input, 'name', 'Name', { max: 200, required: true });
  const description = errors.text(input, 'description', 'Description', { max: 5000 });
  const code = errors.text(input, 'code', 'Code', { max: 60, required: true });
  if (code && !/^[\w.\-/]+$/.test(code)) errors.add('code', 'Code may contain letters, digits and . - _ / only');
  const currency = text(input, 'currency').toUpperCase();
  if (!currency) errors.add('currency', 'Currency is required');
  else if (!isCurrencyCode(currency)) errors.add('currency', 'Currency is not a known ISO 4217 code');
  else {
    const unpriced = await currencyUnpricedIn(knex, priceBook, currency);
    if (unpriced) errors.add('currency', unpriced);
  }
  let priceMinor = 0;
  const priceRaw = text(input, 'price');
  if (!priceRaw) errors.add('price', 'Price is required');
  else if (!errors.errors.currency) {
    const parsed = parseAmount(priceRaw, currency);
    if (!parsed.ok) errors.add('price', `Price ${parsed.error}`);
    else if (parsed.minor < 0) errors.add('price', 'Price must not be negative');
    else priceMinor = parsed.minor;
  }
  const raw = readItems(input, errors);
  const items: BundleItemInput[] = [];
  raw.forEach((r, i) => {
    const weight = Number(r.weightRaw);
    if (!validId(r.product_id)) errors.add('items', `Item ${i + 1}: choose a product`);
    else if (!r.unit_name || r.unit_name.length > 60) errors.add('items', `Item ${i + 1}: the unit is required (at most 60 characters)`);
    else if (!/^\d+$/.test(r.weightRaw) || !Number.isInteger(weight) || weight < 1 || weight > MAX_WEIGHT) errors.add('items', `Item ${i + 1}: the weight must be a whole number from 1 to ${MAX_WEIGHT}`);
    else items.push({ product_id: r.product_id, unit_name: r.unit_name, weight });
  });
  if (!raw.length && !errors.errors.items) errors.add('items', 'Add at least one item');
  if (raw.length > MAX_ITEMS) errors.add('items', `A bundle has at most ${MAX_ITEMS} items`);
  if (items.length) {
    const ids = [...new Set(items.map((i) => i.product_id))];
    const found = new Set((await knex('crm_products').whereIn('id', ids).whereNull('deleted_at').pluck('id')).map(Number));
    const missing = items.findIndex((i) => !found.has(i.product_id));
    const unitKey = (i: { product_id: number; unit_name: string }) => `${i.product_id}:${i.unit_name}`;
    const priced = new Set((await knex('crm_product_prices').where({ price_book_id: priceBookId }).whereIn('product_id', ids).select('product_id', 'unit_name'))
      .map((p: { product_id: number; unit_name: string }) => unitKey({ product_id: Number(p.product_id), unit_name: String(p.unit_name) })));
    const unpriced = items.findIndex((i) => !priced.has(unitKey(i)));
    const repeated = items.findIndex((i, n) => items.findIndex((j) => unitKey(j) === unitKey(i)) < n);
    if (missing >= 0) errors.add('items', `Item ${missing + 1}: the product does not exist`);
    else if (unpriced >= 0) errors.add('items', `Item ${unpriced + 1}: this price book has no price for that product in the unit “${items[unpriced].unit_name}”`);
    else if (repeated >= 0) errors.add('items', `Item ${repeated + 1} repeats item ${items.findIndex((j) => unitKey(j) === unitKey(items[repeated])) + 1}`);
  }
  // The split multiplies the price by the weights: keep that exact in a double.
  if (items.length && priceMinor * items.reduce((a, i) => a + i.weight, 0) > Number.MAX_SAFE_INTEGER) errors.add('price', 'Price is too large to split over these weights');
  if (errors.any) throw invalid('The bundle was not saved: fix the fields marked below.', errors.errors);
  return { name, description, code, active: flag(input, 'active'), price_minor: priceMinor, currency, items };
}

/**
 * Why a bundle of `priceBook` may not be sold in `currency`, or null when it may. The rule a move applies to its
 * target: a bundle is sold in a currency its price book prices things in.
 */
async function currencyUnpricedIn(knex: Knex, priceBook: Pick<PriceBook, 'id' | 'name'>, currency: string): Promise<string | null> {
  const used = await priceBookCurrencies(knex, priceBook.id);
  if (used.includes(currency)) return null;
  return used.length ? `${priceBook.name} has no prices in ${currency}; use a currency it prices in: ${used.join(', ')}` : `${priceBook.name} has no prices yet; add prices to it first`;
}

/**
 * Inside a bundle save's transaction, after lockPriceBookPrices: the price book still prices in the bundle's currency
 * (the form checked before the transaction; a price may have gone since).
 */
async function assertCurrencyStillPriced(trx: Knex.Transaction, priceBook: Pick<PriceBook, 'id' | 'name'>, currency: string): Promise<void> {
  const unpriced = await currencyUnpricedIn(trx, priceBook, currency);
  if (unpriced) throw invalid('The bundle was not saved: fix the fields marked below.', { currency: unpriced });
}

async function assertCodeFree(trx: Knex.Transaction, priceBookId: number, code: string, exceptId: number | null): Promise<void> {
  const q = trx('crm_bundles').where({ price_book_id: priceBookId }).whereRaw('lower(code) = ?', [code.toLowerCase()]);
  if (exceptId) q.whereNot('id', exceptId);
  if (await q.first('id')) throw invalid('The bundle was not saved: fix the fields marked below.', { code: `Another bundle in this price book has the code ${code}` });
}

const itemsText = (items: BundleItemInput[]) => items.map((i) => `${i.product_id}/${i.unit_name}×${i.weight}`).join(', ');

async function writeItems(trx: Knex.Transaction, bundleId: number, items: BundleItemInput[]): Promise<void> {
  await trx('crm_bundle_items').where({ bundle_id: bundleId }).delete();
  if (items.length) await trx('crm_bundle_items').insert(items.map((i, position) => ({ bundle_id: bundleId, product_id: i.product_id, unit_name: i.unit_name, weight: i.weight, position })));
}

export async function createBundle(ctx: CrmContext, priceBook: PriceBook, input: BundleInput): Promise<Bundle> {
  await requireManageablePriceBook(ctx, priceBook.id);
  return ctx.host.knex.transaction(async (trx) => {
    await lockPriceBookPrices(trx, priceBook.id);
    await assertCurrencyStillPriced(trx, priceBook, input.currency);
    await assertCodeFree(trx, priceBook.id, input.code, null);
    await assertItemsStillPriced(trx, priceBook.id, input.items);
    const [row] = await trx('crm_bundles').insert({
      price_book_id: priceBook.id, name: input.name, description: input.description, code: input.code, active: input.active,
      price_minor: input.price_minor, currency: input.currency, lock_version: 0,
    }).returning('id');
    const id = Number(typeof row === 'object' ? row.id : row);
    await writeItems(trx, id, input.items);
    const after = { ...input, price_book_id: priceBook.id, items: itemsText(input.items) };
    await journal(trx, { type: 'bundle', id, userId: ctx.user.id, action: 'create', changes: changedFields({}, after, [...BUNDLE_FIELDS, 'items']) });
    return normalizeBundle(await trx('crm_bundles').where({ id }).first());
  });
}

/** Saves a bundle if nobody changed it since `lockVersion` was read (else 409, nothing changes). */
export async function updateBundle(ctx: CrmContext, bundle: Bundle, input: BundleInput, lockVersion: number): Promise<Bundle> {
  const priceBook = await requireManageablePriceBook(ctx, bundle.price_book_id);
  return ctx.host.knex.transaction(async (trx) => {
    await lockPriceBookPrices(trx, priceBook.id);
    await assertCurrencyStillPriced(trx, priceBook, input.currency);
    await assertCodeFree(trx, bundle.price_book_id, input.code, bundle.id);
    await assertItemsStillPriced(trx, bundle.price_book_id, input.items);
    const current = await trx('crm_bundles').where({ id: bundle.id }).first();
    if (!current) throw notFound('Bundle');
    const before = { ...normalizeBundle(current), items: itemsText(await bundleItems(trx, bundle.id)) };
    const updated = await trx('crm_bundles').where({ id: bundle.id, lock_version: lockVersion }).update({
      name: input.name, description: input.description, code: input.code, active: input.active, price_minor: input.price_minor, currency: input.currency,
      lock_version: lockVersion + 1, updated_at: trx.fn.now(),
    });
    if (updated === 0) throw staleRecord('This bundle');
    await writeItems(trx, bundle.id, input.items);
    const after = { ...input, price_book_id: bundle.price_book_id, items: itemsText(input.items) };
    await journal(trx, { type: 'bundle', id: bundle.id, userId: ctx.user.id, action: 'update', changes: changedFields(before, after, [...BUNDLE_FIELDS, 'items']) });
    return normalizeBundle(await trx('crm_bundles').where({ id: bundle.id }).first());
  });
}

/** The bundle's items whose product unit `priceBookId` has no price for (what the bundle form would refuse there). */
async function itemsUnpricedIn(knex: Knex, bundleId: number, priceBookId: number): Promise<BundleItem[]> {
  const items = await bundleItems(knex, bundleId);
  const priced = new Set((await knex('crm_product_prices').where({ price_book_id: priceBookId }).whereIn('product_id', [...new Set(items.map((i) => i.product_id))]).select('product_id', 'unit_name'))
    .map((p: { product_id: number; unit_name: string }) => `${Number(p.product_id)}:${String(p.unit_name)}`));
  return items.filter((i) => !priced.has(`${i.product_id}:${i.unit_name}`));
}

/**
 * Inside a bundle save's transaction: its items' products still exist and their units are still priced in the
 * price book (the form checked before the transaction). On PostgreSQL those product and price rows are locked
 * for share, so a concurrent product delete — which checks for bundles using the product in its own transaction —
 * runs either wholly before this check or after this save (a price removal also waits for the price book's lock,
 * lockPriceBookPrices). SQLite runs one writer at a time anyway.
 */
async function assertItemsStillPriced(trx: Knex.Transaction, priceBookId: number, items: BundleItemInput[]): Promise<void> {
  if (!items.length) return;
  const ids = [...new Set(items.map((i) => i.product_id))];
  const products = trx('crm_products').whereIn('id', ids).whereNull('deleted_at');
  const prices = trx('crm_product_prices').where({ price_book_id: priceBookId }).whereIn('product_id', ids);
  if (isPg(trx)) {
    products.forShare();
    prices.forShare();
  }
  const alive = new Set((await products.pluck('id')).map(Number));
  const priced = new Set((await prices.select('product_id', 'unit_name')).map((p: { product_id: number; unit_name: string }) => `${Number(p.product_id)}:${String(p.unit_name)}`));
  const gone = items.findIndex((i) => !alive.has(i.product_id) || !priced.has(`${i.product_id}:${i.unit_name}`));
  if (gone >= 0) throw invalid('The bundle was not saved: fix the fields marked below.', { items: `Item ${gone + 1}: this price book no longer prices that product in the unit “${items[gone].unit_name}”` });
}

export interface BundleUse {
  id: number;
  name: string;
  code: string;
  price_book_name: string;
}

/**
 * Bundles (of price books not deleted) with an item of `productId` — in `unitName` of `priceBookId` when given.
 * While one does, that product or that unit's last price there may not go: the bundle would point at it, and
 * its edit form would refuse every save.
 */
export async function bundlesUsing(knex: Knex, use: { productId: number; priceBookId?: number; unitName?: string }): Promise<BundleUse[]> {
  const q = knex('crm_bundle_items as bi').join('crm_bundles as b', 'b.id', 'bi.bundle_id').join('crm_price_books as pb', 'pb.id', 'b.price_book_id')
    .where('bi.product_id', use.productId).whereNull('pb.deleted_at');
  if (use.priceBookId !== undefined) q.where('b.price_book_id', use.priceBookId);
  if (use.unitName !== undefined) q.where('bi.unit_name', use.unitName);
  const rows = await q.distinct('b.id', 'b.name', 'b.code', 'pb.name as price_book_name').orderBy([{ column: 'pb.name' }, { column: 'b.name' }, { column: 'b.id' }]);
  return rows.map((r: Record<string, unknown>) => ({ id: Number(r.id), name: String(r.name), code: String(r.code), price_book_name: String(r.price_book_name) }));
}

/** "bundle A (A1)" or "bundles A (A1), B (B1) and 3 more", each `named` as given. */
function bundlesNamed(uses: BundleUse[], named: (b: BundleUse) => string): string {
  const more = uses.length > 5 ? ` and ${uses.length - 5} more` : '';
  return `${uses.length === 1 ? 'bundle' : 'bundles'} ${uses.slice(0, 5).map(named).join(', ')}${more}`;
}

/** Refuses (422) a change that would take away what `uses` point at, naming them: "`notDone`: it is used by bundle …". */
export function refuseWhileBundlesUse(uses: BundleUse[], notDone: string): void {
  if (!uses.length) return;
  const which = uses.length === 1 ? 'bundle' : 'bundles';
  throw invalid(`${notDone}: it is used by ${bundlesNamed(uses, (b) => `${b.name} (${b.code}) in ${b.price_book_name}`)}; remove it from the ${which} first.`);
}

/**
 * Inside the transaction of a change that took a price out of `currency` in `priceBook` (removed it, or moved it to
 * another currency), which locked the book first (lockPriceBookPrices) so that a bundle saved at the same instant is
 * seen: refuses (422) when the book has no price left in that currency and a bundle of it is sold in it — a bundle's
 * currency is one its book prices in, so its edit form would refuse every save.
 */
export async function refuseLastPriceOfBundleCurrency(trx: Knex.Transaction, priceBook: Pick<PriceBook, 'id' | 'name'>, currency: string, notDone: string): Promise<void> {
  if (await trx('crm_product_prices').where({ price_book_id: priceBook.id, currency }).first('id')) return;
  const uses: BundleUse[] = (await trx('crm_bundles').where({ price_book_id: priceBook.id, currency }).orderBy(['name', 'id']).select('id', 'name', 'code'))
    .map((b: { id: number; name: string; code: string }) => ({ id: Number(b.id), name: String(b.name), code: String(b.code), price_book_name: priceBook.name }));
  if (!uses.length) return;
  const which = uses.length === 1 ? 'bundle' : 'bundles';
  const verb = uses.length === 1 ? 'is' : 'are';
  throw invalid(`${notDone}: it is the last price in ${currency} of ${priceBook.name}, and ${bundlesNamed(uses, (b) => `${b.name} (${b.code})`)} ${verb} sold in ${currency}; give the ${which} another currency first.`);
}

/**
 * Moves a bundle with its items to another price book. The target must price things in the bundle's
 * currency, price every item's product unit and must not hold a bundle with the same code; otherwise 422
 * and nothing moves.
 */
export async function moveBundle(ctx: CrmContext, bundle: Bundle, targetId: number, lockVersion: number): Promise<Bundle> {
  await requireManageablePriceBook(ctx, bundle.price_book_id);
  let target: PriceBook;
  try {
    target = await requireManageablePriceBook(ctx, targetId);
  } catch {
    throw invalid('The bundle was not moved: choose a price book.', { price_book_id: 'Choose a price book' });
  }
  if (target.id === bundle.price_book_id) throw invalid('The bundle is already in this price book.', { price_book_id: 'Choose another price book' });
  return ctx.host.knex.transaction(async (trx) => {
    await lockPriceBookPrices(trx, target.id);
    if (!(await priceBookCurrencies(trx, target.id)).includes(bundle.currency)) {
      throw invalid(`The bundle was not moved: ${target.name} has no prices in ${bundle.currency}.`, { price_book_id: `${target.name} does not use ${bundle.currency}` });
    }
    const clash = await trx('crm_bundles').where({ price_book_id: target.id }).whereRaw('lower(code) = ?', [bundle.code.toLowerCase()]).first('id');
    if (clash) throw invalid(`The bundle was not moved: ${target.name} already has a bundle with the code ${bundle.code}.`, { price_book_id: `${target.name} already has the code ${bundle.code}` });
    const unpriced = await itemsUnpricedIn(trx, bundle.id, target.id);
    if (unpriced.length) {
      const names = unpriced.map((i) => `${i.product_name} (${i.product_code}) · ${i.unit_name}`).join(', ');
      throw invalid(`The bundle was not moved: ${target.name} has no price for ${names}.`, { price_book_id: `${target.name} does not price every item` });
    }
    const updated = await trx('crm_bundles').where({ id: bundle.id, lock_version: lockVersion }).update({ price_book_id: target.id, lock_version: lockVersion + 1, updated_at: trx.fn.now() });
    if (updated === 0) throw staleRecord('This bundle');
    await journal(trx, { type: 'bundle', id: bundle.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'price_book_id', old: bundle.price_book_id, new: target.id }] });
    return normalizeBundle(await trx('crm_bundles').where({ id: bundle.id }).first());
  });
}

/** Deletes a bundle with its items if nobody changed it since `lockVersion` was shown (else 409, nothing goes). */
export async function deleteBundle(ctx: CrmContext, bundle: Bundle, lockVersion: number): Promise<void> {
  await requireManageablePriceBook(ctx, bundle.price_book_id);
  await ctx.host.knex.transaction(async (trx) => {
    const deleted = await trx('crm_bundles').where({ id: bundle.id, lock_version: lockVersion }).delete();
    if (!deleted) {
      if (!(await trx('crm_bundles').where({ id: bundle.id }).first('id'))) throw notFound('Bundle');
      throw new CrmError(409, 'This bundle was changed by someone else since this page was opened, so it was not deleted. Review it and delete it again if you still want to.');
    }
    await trx('crm_bundle_items').where({ bundle_id: bundle.id }).delete();
    await journal(trx, { type: 'bundle', id: bundle.id, userId: ctx.user.id, action: 'delete', changes: [{ field: 'code', old: bundle.code, new: null }, { field: 'name', old: bundle.name, new: null }] });
  });
}

/** A code not yet used in the price book, derived from `code` ("PACK" → "PACK-COPY", "PACK-COPY-2" …). */
export async function freeCopyCode(knex: Knex, priceBookId: number, code: string): Promise<string> {
  const used = new Set((await knex('crm_bundles').where({ price_book_id: priceBookId }).pluck('code')).map((c) => String(c).toLowerCase()));
  const base = `${code}-COPY`.slice(0, 54);
  if (!used.has(base.toLowerCase())) return base;
  for (let n = 2; ; n++) if (!used.has(`${base}-${n}`.toLowerCase())) return `${base}-${n}`;
}

/** What the form shows for a bundle ("copy and new" uses it with a fresh code). */
export async function bundleFormValues(knex: Knex, bundle: Bundle): Promise<FormInput> {
  const items = await bundleItems(knex, bundle.id);
  return {
    name: bundle.name, description: bundle.description, code: bundle.code, active: bundle.active ? '1' : '', currency: bundle.currency,
    price: amountInput(bundle.price_minor, bundle.currency), lock_version: String(bundle.lock_version),
    item_key: items.map((i) => `${i.product_id}:${i.unit_name}`), item_weight: items.map((i) => String(i.weight)),
  };
}

export function bundleJson(bundle: Bundle, items?: BundleItem[]) {
  return {
    id: bundle.id, price_book_id: bundle.price_book_id, name: bundle.name, description: bundle.description, code: bundle.code, active: bundle.active,
    price_minor: bundle.price_minor, price: amountInput(bundle.price_minor, bundle.currency), currency: bundle.currency, lock_version: bundle.lock_version,
    url: `/crm/bundles/${bundle.id}`,
    ...(items ? {
      items: bundleSplit(bundle, items).map((i) => ({
        product_id: i.product_id, product_code: i.product_code, product_name: i.product_name, unit_name: i.unit_name, weight: i.weight,
        share_minor: i.share_minor, share: amountInput(i.share_minor, bundle.currency),
      })),
    } : {}),
  };
}
