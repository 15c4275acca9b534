import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostUser } from '../host';
import { whereAnyContains } from './text-search';
import { FieldErrors, flag, text, type FormInput, validId } from './form';
import { changedFields, journal, type FieldChange, type JournalEntry } from './journal';
import { bundlesUsing, refuseLastPriceOfBundleCurrency, refuseWhileBundlesUse } from './bundles';
import { amountInput, isCurrencyCode, parseAmount } from './money';
import { moveInList } from './ordering';
import type { PageMeta } from './pagination';
import { canManagePriceBooks, lockPriceBookPrices, priceRow, scopePriceBooks, type PriceBook, type PriceRow } from './price-books';

/** A product (SPEC Q2): priced per price book in any number of units and currencies. */
export interface Product {
  id: number;
  name: string;
  description: string;
  code: string;
  active: boolean;
  category_id: number | null;
  lock_version: number;
  created_at: string;
  updated_at: string;
}

const PRODUCT_COLUMNS = ['id', 'name', 'description', 'code', 'active', 'category_id', 'lock_version', 'created_at', 'updated_at'];
export const PRODUCT_FIELDS = ['name', 'description', 'code', 'active', 'category_id'] as const;
export type ProductData = Record<(typeof PRODUCT_FIELDS)[number], unknown>;

const timeText = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));

function normalize(r: Record<string, unknown>): Product {
  return {
    id: Number(r.id), name: String(r.name), description: String(r.description ?? ''), code: String(r.code), active: Boolean(r.active),
    category_id: r.category_id === null || r.category_id === undefined ? null : Number(r.category_id),
    lock_version: Number(r.lock_version), created_at: timeText(r.created_at), updated_at: timeText(r.updated_at),
  };
}

/**
 * Restricts a `crm_products as p` query to what this user may see: managers every product not deleted; others
 * the active products priced in a price book they may see. Wrapped, so the async function does not run it.
 */
export async function scopeProducts(ctx: CrmContext, q: Knex.QueryBuilder, manager?: boolean): Promise<{ q: Knex.QueryBuilder }> {
  q.whereNull('p.deleted_at');
  const isManager = manager ?? (await canManagePriceBooks(ctx));
  if (isManager) return { q };
  const { q: books } = await scopePriceBooks(ctx, ctx.host.knex('crm_price_books as pb').select('pb.id'), false);
  q.where('p.active', true).whereExists((s) => s.select(1).from('crm_product_prices as vpp').whereRaw('vpp.product_id = p.id').whereIn('vpp.price_book_id', books));
  return { q };
}

export async function findVisibleProduct(ctx: CrmContext, id: number): Promise<Product | null> {
  if (!validId(id)) return null;
  const { q } = await scopeProducts(ctx, ctx.host.knex('crm_products as p').where('p.id', id));
  const row = await q.first(PRODUCT_COLUMNS.map((c) => `p.${c}`));
  return row ? normalize(row) : null;
}

export async function requireVisibleProduct(ctx: CrmContext, id: number): Promise<Product> {
  const product = await findVisibleProduct(ctx, id);
  if (!product) throw notFound('Product');
  return product;
}

export async function requireManageableProduct(ctx: CrmContext, id: number): Promise<Product> {
  const product = await requireVisibleProduct(ctx, id);
  if (!(await canManagePriceBooks(ctx))) throw forbidden('You may see this product but not change it.');
  return product;
}

// ---- categories --------------------------------------------------------------------------------------------------

export const CATEGORY_JOURNAL = 'settings_product_categories';
export const CONTRACT_KINDS = [{ id: 'time_based', label: 'Time-based' }, { id: 'one_time', label: 'One-time' }] as const;

export interface ProductCategory {
  id: number;
  name: string;
  contract_kind: 'time_based' | 'one_time';
  default_duration_months: number | null;
  position: number;
  active: boolean;
  usage: number;
}

function categoryOf(r: Record<string, unknown>, usage = 0): ProductCategory {
  return {
    id: Number(r.id), name: String(r.name), contract_kind: r.contract_kind === 'one_time' ? 'one_time' : 'time_based',
    default_duration_months: r.default_duration_months === null || r.default_duration_months === undefined ? null : Number(r.default_duration_months),
    position: Number(r.position), active: Boolean(r.active), usage,
  };
}

export async function listCategories(knex: Knex, onlyActive = false): Promise<ProductCategory[]> {
  const counts = new Map<number, number>();
  const used: { id: unknown; n: unknown }[] = await knex('crm_products').whereNotNull('category_id').groupBy('category_id').select({ id: 'category_id' }).count({ n: '*' });
  for (const u of used) counts.set(Number(u.id), Number(u.n));
  const q = knex('crm_product_categories').orderBy([{ column: 'position' }, { column: 'id' }]);
  if (onlyActive) q.where({ active: true });
  return (await q).map((r) => categoryOf(r, counts.get(Number(r.id)) ?? 0));
}

async function requireCategory(knex: Knex, id: number): Promise<ProductCategory> {
  const row = validId(id) ? await knex('crm_product_categories').where({ id }).first() : undefined;
  if (!row) throw notFound('Product category');
  return categoryOf(row);
}

const CATEGORY_FIELDS = ['name', 'contract_kind', 'default_duration_months'] as const;

/** A category: a unique name, the contract kind it produces, and for time-based ones a default of 1–120 months. */
async function readCategory(knex: Knex, input: FormInput, current: ProductCategory | null): Promise<Record<string, unknown>> {
  const errors = new FieldErrors();
  const name = errors.text(input, 'name', 'Name', { max: 100, required: true });
  const kind = text(input, 'contract_kind');
  if (kind !== 'time_based' && kind !== 'one_time') errors.add('contract_kind', 'Choose time-based or one-time');
  const months = text(input, 'default_duration_months');
  let duration: number | null = null;
  if (kind === 'time_based') {
    if (!months) errors.add('default_duration_months', 'Default duration is required for time-based contracts (1–120 months)');
    else if (!/^\d{1,3}$/.test(months) || Number(months) < 1 || Number(months) > 120) errors.add('default_duration_months', 'Default duration must be a whole number of months from 1 to 120');
    else duration = Number(months);
  } else if (kind === 'one_time' && months) {
    errors.add('default_duration_months', 'A one-time contract has no duration: leave it empty');
  }
  if (name && !errors.errors.name) {
    const clash = await knex('crm_product_categories').whereRaw('lower(name) = ?', [name.toLowerCase()]).modify((q) => { if (current) q.whereNot({ id: current.id }); }).first('id');
    if (clash) errors.add('name', 'Name is already used by another category');
  }
  if (errors.any) throw invalid('The product category was not saved: fix the fields marked below.', errors.errors);
  return { name, contract_kind: kind, default_duration_months: duration };
}

export async function createCategory(knex: Knex, user: HostUser, input: FormInput): Promise<ProductCategory> {
  const data = await readCategory(knex, input, null);
  return knex.transaction(async (trx) => {
    const [{ max }] = await trx('crm_product_categories').max({ max: 'position' });
    const [row] = await trx('crm_product_categories').insert({ ...data, position: Number(max ?? 0) + 1, active: true }).returning('id');
    const id = Number(row.id ?? row);
    await journal(trx, { type: CATEGORY_JOURNAL, id, userId: user.id, action: 'create', changes: changedFields({}, data, [...CATEGORY_FIELDS]).filter((c) => c.new !== null) });
    return requireCategory(trx, id);
  });
}

export async function updateCategory(knex: Knex, user: HostUser, id: number, input: FormInput): Promise<void> {
  const current = await requireCategory(knex, id);
  const data = await readCategory(knex, input, current);
  await knex.transaction(async (trx) => {
    await trx('crm_product_categories').where({ id }).update(data);
    await journal(trx, { type: CATEGORY_JOURNAL, id, userId: user.id, action: 'update', changes: changedFields(current as unknown as Record<string, unknown>, data, [...CATEGORY_FIELDS]) });
  });
}

export async function setCategoryActive(knex: Knex, user: HostUser, id: number, active: boolean): Promise<void> {
  const current = await requireCategory(knex, id);
  if (current.active === active) return;
  await knex.transaction(async (trx) => {
    await trx('crm_product_categories').where({ id }).update({ active });
    await journal(trx, { type: CATEGORY_JOURNAL, id, userId: user.id, action: 'update', changes: [{ field: 'active', old: current.active, new: active }] });
  });
}

export async function moveCategory(knex: Knex, user: HostUser, id: number, direction: 'up' | 'down'): Promise<void> {
  await requireCategory(knex, id);
  await knex.transaction(async (trx) => {
    const changes = await moveInList(trx, 'crm_product_categories', id, direction);
    await journal(trx, { type: CATEGORY_JOURNAL, id, userId: user.id, action: 'update', changes });
  });
}

/** Only an unused category is deleted; one that products use is switched off instead. */
export async function deleteCategory(knex: Knex, user: HostUser, id: number): Promise<void> {
  const current = await requireCategory(knex, id);
  await knex.transaction(async (trx) => {
    const used = await trx('crm_products').where({ category_id: id }).first('id');
    if (used) throw invalid(`“${current.name}” is used by products: deactivate it instead.`, { id: 'in use' });
    await trx('crm_product_categories').where({ id }).delete();
    await journal(trx, { type: CATEGORY_JOURNAL, id, userId: user.id, action: 'delete', changes: [{ field: 'name', old: current.name, new: null }] });
  });
}

// ---- products ----------------------------------------------------------------------------------------------------

export interface ProductFilters {
  q: string;
  category: number | null;
  active: 'all' | 'active' | 'inactive';
}

export function parseProductFilters(query: FormInput): ProductFilters {
  const category = text(query, 'category');
  const active = text(query, 'active');
  return {
    q: text(query, 'q').slice(0, 100),
    category: /^\d{1,9}$/.test(category) && Number(category) > 0 ? Number(category) : null,
    active: active === 'active' || active === 'inactive' ? active : 'all',
  };
}

export interface ProductRow extends Product {
  category_name: string | null;
  price_book_count: number;
}

export async function listProducts(ctx: CrmContext, filters: ProductFilters, page: number, perPage: number): Promise<{ rows: ProductRow[]; meta: PageMeta }> {
  const knex = ctx.host.knex;
  const manager = await canManagePriceBooks(ctx);
  const { q: base } = await scopeProducts(ctx, knex('crm_products as p'), manager);
  if (filters.q) whereAnyContains(base, ['p.name', 'p.code', 'p.description'], filters.q);
  if (filters.category) base.where('p.category_id', filters.category);
  if (filters.active !== 'all') base.where('p.active', filters.active === 'active');
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const { q: books } = await scopePriceBooks(ctx, knex('crm_price_books as pb').select('pb.id'), manager);
  const bookCount = knex('crm_product_prices as cpp').whereRaw('cpp.product_id = p.id').whereIn('cpp.price_book_id', books).countDistinct('cpp.price_book_id');
  const rows = await base.clone().leftJoin('crm_product_categories as c', 'c.id', 'p.category_id')
    // One list: knex keeps only the array when select() gets an array first, dropping the arguments after it.
    .select([...PRODUCT_COLUMNS.map((c) => `p.${c}`), 'c.name as category_name', bookCount.as('price_book_count')])
    .orderBy([{ column: 'p.name' }, { column: 'p.id' }]).limit(perPage).offset((current - 1) * perPage);
  return {
    rows: rows.map((r: Record<string, unknown>) => ({ ...normalize(r), category_name: (r.category_name as string | null) ?? null, price_book_count: Number(r.price_book_count) })),
    meta: { page: current, pages, total: count, per_page: perPage },
  };
}

/** Reads and checks the product form (Q2); the code must be unique across every product, deleted ones too. */
export async function readProductInput(ctx: CrmContext, input: FormInput, existing: Product | null): Promise<ProductData> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const data: ProductData = {
    name: errors.text(input, 'name', 'Name', { max: 200, required: true }),
    description: errors.text(input, 'description', 'Description', { max: 10_000 }),
    code: errors.text(input, 'code', 'Code', { max: 60, required: true }),
    active: flag(input, 'active'),
    category_id: errors.id(input, 'category_id', 'Category'),
  };
  if (data.category_id) {
    const category = await knex('crm_product_categories').where({ id: data.category_id }).first();
    if (!category || (!category.active && existing?.category_id !== data.category_id)) errors.add('category_id', 'Choose a category from the list');
  }
  await checkCode(knex, String(data.code), existing?.id ?? null, errors, 'code');
  if (errors.any) throw invalid('The product was not saved: fix the fields marked below.', errors.errors);
  return data;
}

async function checkCode(knex: Knex, code: string, ownId: number | null, errors: FieldErrors, field: string): Promise<void> {
  if (!code || errors.errors[field]) return;
  const clash = await knex('crm_products').whereRaw('lower(code) = ?', [code.toLowerCase()]).modify((q) => { if (ownId) q.whereNot({ id: ownId }); }).first('id', 'deleted_at');
  if (clash) errors.add(field, clash.deleted_at ? 'Code is used by a deleted product' : 'Code is already used by another product');
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(String(e?.message ?? ''));
}

async function requireManager(ctx: CrmContext): Promise<void> {
  if (!(await canManagePriceBooks(ctx))) throw notFound('Product');
}

/** What a new product's "create" journal lists: the fields it was given a value for. */
export function creationChanges(data: ProductData): FieldChange[] {
  return changedFields({}, data, [...PRODUCT_FIELDS]).filter((c) => c.new !== '' && c.new !== null);
}

async function loadProduct(knex: Knex, id: number): Promise<Product> {
  return normalize(await knex('crm_products').where({ id }).first(PRODUCT_COLUMNS));
}

export async function createProduct(ctx: CrmContext, data: ProductData): Promise<Product> {
  await requireManager(ctx);
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      const [row] = await trx('crm_products').insert(data).returning('id');
      const id = Number(row.id ?? row);
      await journal(trx, { type: 'product', id, userId: ctx.user.id, action: 'create', changes: creationChanges(data) });
      return loadProduct(trx, id);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('The product was not saved: fix the fields marked below.', { code: 'Code is already used by another product' });
    throw err;
  }
}

export async function updateProduct(ctx: CrmContext, product: Product, data: ProductData, lockVersion: number): Promise<Product> {
  await requireManager(ctx);
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      const n = await trx('crm_products').where({ id: product.id, lock_version: lockVersion }).whereNull('deleted_at')
        .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
      if (n === 0) throw staleRecord('This product');
      await journal(trx, { type: 'product', id: product.id, userId: ctx.user.id, action: 'update', changes: changedFields(product as unknown as Record<string, unknown>, data, [...PRODUCT_FIELDS]) });
      return loadProduct(trx, product.id);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('The product was not saved: fix the fields marked below.', { code: 'Code is already used by another product' });
    throw err;
  }
}

export async function deleteProduct(ctx: CrmContext, product: Product): Promise<void> {
  await requireManager(ctx);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_products').where({ id: product.id }).whereNull('deleted_at').update({ deleted_at: new Date().toISOString(), lock_version: product.lock_version + 1 });
    if (n === 0) throw notFound('Product');
    // After the update, in its transaction: a bundle saved meanwhile has either committed (and is found) or waits.
    refuseWhileBundlesUse(await bundlesUsing(trx, { productId: product.id }), 'The product was not deleted');
    await journal(trx, { type: 'product', id: product.id, userId: ctx.user.id, action: 'delete', changes: [] });
  });
}

/** Copy (Q2): a new product under a new unique code, with the same prices in the same price books. */
export async function copyProduct(ctx: CrmContext, product: Product, input: FormInput): Promise<Product> {
  await requireManager(ctx);
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const code = errors.text(input, 'code', 'Code', { max: 60, required: true });
  const name = errors.text(input, 'name', 'Name', { max: 200, required: true });
  await checkCode(knex, code, null, errors, 'code');
  if (errors.any) throw invalid('The copy was not made: fix the fields marked below.', errors.errors);
  try {
    return await knex.transaction(async (trx) => {
      const data = { name, description: product.description, code, active: product.active, category_id: product.category_id };
      const [row] = await trx('crm_products').insert(data).returning('id');
      const id = Number(row.id ?? row);
      const prices = await trx('crm_product_prices').where({ product_id: product.id }).select('price_book_id', 'unit_name', 'price_minor', 'currency');
      for (let i = 0; i < prices.length; i += 200) await trx('crm_product_prices').insert(prices.slice(i, i + 200).map((p) => ({ ...p, product_id: id })));
      await journal(trx, {
        type: 'product', id, userId: ctx.user.id, action: 'create',
        changes: creationChanges(data),
        notes: `Copy of ${product.code} with ${prices.length} price${prices.length === 1 ? '' : 's'}`,
      });
      return loadProduct(trx, id);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('The copy was not made: fix the fields marked below.', { code: 'Code is already used by another product' });
    throw err;
  }
}

// ---- prices (units per price book) -----------------------------------------------------------------------------

export interface PriceInput {
  unit_name: string;
  price_minor: number;
  currency: string;
}

/** The price as the edit form showed it (hidden fields), so a change of unit or currency replaces that row; null if absent. */
export function readOldPrice(input: FormInput): PriceInput | null {
  const unit = text(input, 'old_unit_name');
  const minor = text(input, 'old_price_minor');
  const currency = text(input, 'old_currency');
  if (!unit || !/^\d{1,16}$/.test(minor) || !currency) return null;
  return { unit_name: unit, price_minor: Number(minor), currency };
}

/** A unit's price: unit name 1–60 characters, an ISO currency code, a non-negative amount in that currency's decimals. */
export function readPriceInput(input: FormInput): PriceInput {
  const errors = new FieldErrors();
  const unit = errors.text(input, 'unit_name', 'Unit', { max: 60, required: true });
  const currency = text(input, 'currency').toUpperCase();
  if (!isCurrencyCode(currency)) errors.add('currency', 'Currency must be a three-letter ISO code such as EUR');
  const raw = text(input, 'price');
  let minor = 0;
  if (!raw) errors.add('price', 'Price is required');
  else if (isCurrencyCode(currency)) {
    const parsed = parseAmount(raw, currency);
    if (!parsed.ok) errors.add('price', `Price ${parsed.error}`);
    else if (parsed.minor < 0) errors.add('price', 'Price must not be negative');
    else minor = parsed.minor;
  }
  if (errors.any) throw invalid('The price was not saved: fix the fields marked below.', errors.errors);
  return { unit_name: unit, price_minor: minor, currency };
}

/** Journaled as raw text: unit, amount with the currency's decimals (no grouping), currency. */
export const priceText = (p: { unit_name: string; price_minor: number; currency: string }) => `${p.unit_name}: ${amountInput(p.price_minor, p.currency)} ${p.currency}`;
const duplicateUnit = () => invalid('The price was not saved: fix the fields marked below.', { unit_name: 'This product already has a price for this unit and currency in this price book' });

/** A price added, changed or removed is journaled on its product and on its price book, each naming the other. */
export function priceJournalEntries(userId: number, book: Pick<PriceBook, 'id' | 'name'>, product: Pick<Product, 'id' | 'code'>, change: FieldChange): JournalEntry[] {
  return [
    { type: 'product', id: product.id, userId, action: 'update', changes: [{ ...change, field: `price:${book.name}` }] },
    { type: 'price_book', id: book.id, userId, action: 'update', changes: [{ ...change, field: `price:${product.code}` }] },
  ];
}

async function journalPrice(trx: Knex.Transaction, ctx: CrmContext, book: PriceBook, product: Product, change: FieldChange): Promise<void> {
  for (const entry of priceJournalEntries(ctx.user.id, book, product, change)) await journal(trx, entry);
}

/** Adds a unit's price of `product` to `book`; the same unit and currency twice is refused (422). */
export async function addPrice(ctx: CrmContext, book: PriceBook, product: Product, input: PriceInput): Promise<PriceRow> {
  await requireManager(ctx);
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      const clash = await trx('crm_product_prices').where({ price_book_id: book.id, product_id: product.id, unit_name: input.unit_name, currency: input.currency }).first('id');
      if (clash) throw duplicateUnit();
      const [row] = await trx('crm_product_prices').insert({ price_book_id: book.id, product_id: product.id, ...input }).returning('*');
      await journalPrice(trx, ctx, book, product, { field: 'price', old: null, new: priceText(input) });
      return priceRow(row);
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateUnit();
    throw err;
  }
}

export async function findPrice(knex: Knex, bookId: number, priceId: number): Promise<PriceRow | null> {
  if (!validId(priceId)) return null;
  const row = await knex('crm_product_prices').where({ id: priceId, price_book_id: bookId }).first();
  return row ? priceRow(row) : null;
}

/**
 * Changes a unit's price. Prices carry no lock version of their own: the form sends the values it showed
 * (`old_*`), and a price changed since then is refused with 409.
 */
export async function updatePrice(ctx: CrmContext, book: PriceBook, product: Product, price: PriceRow, input: PriceInput, shown: PriceInput | null): Promise<PriceRow> {
  await requireManager(ctx);
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      await lockPriceBookPrices(trx, book.id);
      const q = trx('crm_product_prices').where({ id: price.id });
      if (shown) q.where({ unit_name: shown.unit_name, price_minor: shown.price_minor, currency: shown.currency });
      const clash = await trx('crm_product_prices').where({ price_book_id: book.id, product_id: product.id, unit_name: input.unit_name, currency: input.currency }).whereNot({ id: price.id }).first('id');
      if (clash) throw duplicateUnit();
      const n = await q.update(input);
      if (n === 0) throw staleRecord('This price');
      if (input.unit_name !== price.unit_name) await refuseLastPriceOfBundledUnit(trx, book, product, price.unit_name, 'The price was not saved');
      if (input.currency !== price.currency) await refuseLastPriceOfBundleCurrency(trx, book, price.currency, 'The price was not saved');
      if (priceText(price) !== priceText(input)) await journalPrice(trx, ctx, book, product, { field: 'price', old: priceText(price), new: priceText(input) });
      return priceRow(await trx('crm_product_prices').where({ id: price.id }).first());
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateUnit();
    throw err;
  }
}

/**
 * After a unit's price left `book` (inside that change's transaction): refuses (422) when it was the unit's last
 * price there and a bundle of the book has the unit as an item.
 */
async function refuseLastPriceOfBundledUnit(trx: Knex.Transaction, book: PriceBook, product: Product, unitName: string, notDone: string): Promise<void> {
  if (await trx('crm_product_prices').where({ price_book_id: book.id, product_id: product.id, unit_name: unitName }).first('id')) return;
  refuseWhileBundlesUse(await bundlesUsing(trx, { productId: product.id, priceBookId: book.id, unitName }), notDone);
}

export async function removePrice(ctx: CrmContext, book: PriceBook, product: Product, price: PriceRow): Promise<void> {
  await requireManager(ctx);
  await ctx.host.knex.transaction(async (trx) => {
    await lockPriceBookPrices(trx, book.id);
    const n = await trx('crm_product_prices').where({ id: price.id }).delete();
    if (n === 0) throw notFound('Price');
    await refuseLastPriceOfBundledUnit(trx, book, product, price.unit_name, 'The price was not removed');
    await refuseLastPriceOfBundleCurrency(trx, book, price.currency, 'The price was not removed');
    await journalPrice(trx, ctx, book, product, { field: 'price', old: priceText(price), new: null });
  });
}

export interface BookPrices {
  book: PriceBook;
  prices: PriceRow[];
}

/** The product's prices grouped by the price books this user may see (A–Z). */
export async function pricesOfProduct(ctx: CrmContext, productId: number): Promise<BookPrices[]> {
  const knex = ctx.host.knex;
  const { q: books } = await scopePriceBooks(ctx, knex('crm_price_books as pb').select('pb.id'));
  const rows = await knex('crm_product_prices as pp').join('crm_price_books as b', 'b.id', 'pp.price_book_id')
    .where('pp.product_id', productId).whereIn('pp.price_book_id', books)
    .select('pp.*', 'b.name as book_name', 'b.active as book_active', 'b.lock_version as book_lock_version')
    .orderBy([{ column: 'b.name' }, { column: 'b.id' }, { column: 'pp.unit_name' }, { column: 'pp.currency' }]);
  const groups = new Map<number, BookPrices>();
  for (const r of rows) {
    const id = Number(r.price_book_id);
    let g = groups.get(id);
    if (!g) {
      g = { book: { id, name: String(r.book_name), active: Boolean(r.book_active) } as PriceBook, prices: [] };
      groups.set(id, g);
    }
    g.prices.push(priceRow(r));
  }
  return [...groups.values()];
}

/** Products a manager may add to a price book: every product not deleted, by name. */
export async function productChoices(knex: Knex): Promise<{ id: number; name: string; code: string }[]> {
  return (await knex('crm_products').whereNull('deleted_at').orderBy([{ column: 'name' }, { column: 'id' }]).select('id', 'name', 'code').limit(2000))
    .map((r) => ({ id: Number(r.id), name: String(r.name), code: String(r.code) }));
}
