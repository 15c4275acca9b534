import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { invalid, notFound } from '../http/errors';
import { journalMany, type JournalEntry } from './journal';
import { isCurrencyCode, parseAmount } from './money';
import type { PriceBook } from './price-books';
import { creationChanges, priceJournalEntries, priceText } from './products';

/**
 * Importing price-book items from CSV (SPEC Q4): upload → preview (every row with its parsed values and its
 * errors; nothing written) → import (all valid rows in one transaction). The uploaded file waits under
 * `<dataDir>/imports/` between the two steps and is parsed and checked again on import, so what is written
 * is what the database holds at that moment, not what it held at preview time.
 */

export const MAX_IMPORT_BYTES = 5 * 1024 * 1024;
export const MAX_IMPORT_ROWS = 10_000;
export const IMPORT_COLUMNS = ['product_code', 'product_name', 'unit', 'price', 'currency'] as const;
const REQUIRED_COLUMNS = ['product_code', 'unit', 'price', 'currency'];
/** Uploaded files not imported within this time are removed at the next upload. */
const KEEP_MS = 24 * 60 * 60 * 1000;

export type RowAction = 'new_price' | 'change_price' | 'unchanged';

export interface ImportRow {
  /** Line number in the file (the header is line 1). */
  line: number;
  product_code: string;
  product_name: string;
  unit: string;
  price: string;
  currency: string;
  price_minor: number | null;
  product_id: number | null;
  /** The product does not exist and will be created, named `new_product_name` (from this or another row). */
  create_product: boolean;
  new_product_name: string | null;
  action: RowAction | null;
  old_price_minor: number | null;
  errors: string[];
}

export interface ImportPreview {
  rows: ImportRow[];
  valid: number;
  invalid: number;
  delimiter: ',' | ';';
}

export interface ImportMeta {
  token: string;
  priceBookId: number;
  userId: number;
  filename: string;
  createdAt: string;
}

/** The file as a whole cannot be read: 422 with one message, nothing else to show. */
const fileError = (message: string) => invalid(message, { file: message });

function detectDelimiter(text: string): ',' | ';' {
  const firstLine = text.slice(0, Math.max(0, text.search(/\r?\n/)) || text.length);
  const count = (c: string) => firstLine.split(c).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

/** Parses the CSV bytes into raw records keyed by the header's column names. */
export function parseImportCsv(data: Buffer): { records: Array<Record<string, string>>; delimiter: ',' | ';' } {
  if (data.length > MAX_IMPORT_BYTES) throw fileError(`The file is larger than ${MAX_IMPORT_BYTES / 1024 / 1024} MB. Split it and import the parts.`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(data);
  } catch {
    throw fileError('The file is not UTF-8 text. Save it as CSV UTF-8 and upload it again.');
  }
  if (!text.trim()) throw fileError('The file is empty. The first row must name the columns: product_code, product_name, unit, price, currency.');
  const delimiter = detectDelimiter(text);
  let rows: string[][];
  try {
    rows = parse(text, { delimiter, bom: true, skip_empty_lines: true, relax_column_count: true, trim: true, to: MAX_IMPORT_ROWS + 2 }) as string[][];
  } catch (err) {
    const line = (err as { lines?: number }).lines;
    throw fileError(`The file is not valid CSV${line ? ` (near line ${line})` : ''}: ${(err as Error).message.split('\n')[0].slice(0, 200)}`);
  }
  const header = (rows[0] ?? []).map((h) => h.replace(/^\uFEFF/, '').trim().toLowerCase());
  const missing = REQUIRED_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length) {
    throw fileError(`The first row must name the columns product_code, product_name, unit, price, currency (separated by commas or semicolons); missing: ${missing.join(', ')}.`);
  }
  if (rows.length - 1 > MAX_IMPORT_ROWS) throw fileError(`The file has more than ${MAX_IMPORT_ROWS.toLocaleString('en')} rows. Split it and import the parts.`);
  const records = rows.slice(1).map((cells) => {
    const record: Record<string, string> = {};
    header.forEach((name, i) => {
      if ((IMPORT_COLUMNS as readonly string[]).includes(name) && record[name] === undefined) record[name] = cells[i] ?? '';
    });
    return record;
  });
  return { records, delimiter };
}

/** Product codes are unique whatever their case (as the product form checks them): rows match on this key. */
const codeKey = (code: string) => code.toLowerCase();

/** The products (deleted ones too) whose codes have these keys, in chunks. */
async function productsByCodeKey(knex: Knex, keys: string[]): Promise<Array<{ id: number; code: string; deleted_at: unknown }>> {
  const out: Array<{ id: number; code: string; deleted_at: unknown }> = [];
  for (let i = 0; i < keys.length; i += 500) {
    const chunk = keys.slice(i, i + 500);
    out.push(...await knex('crm_products').whereRaw(`lower(code) in (${chunk.map(() => '?').join(', ')})`, chunk).select('id', 'code', 'deleted_at'));
  }
  return out;
}

/**
 * Checks each record against the file and the database: unknown currency, too many decimals, negative price,
 * missing unit, an unknown product code without a name to create it, duplicates within the file.
 */
export async function checkRows(knex: Knex, priceBookId: number, records: Array<Record<string, string>>): Promise<ImportRow[]> {
  const codes = [...new Set(records.map((r) => codeKey((r.product_code ?? '').trim())).filter(Boolean))];
  const products = new Map<string, { id: number; deleted: boolean }>();
  for (const p of await productsByCodeKey(knex, codes)) {
    products.set(codeKey(String(p.code)), { id: Number(p.id), deleted: p.deleted_at !== null && p.deleted_at !== undefined });
  }
  const existing = new Map<string, number>();
  const productIds = [...products.values()].map((p) => p.id);
  for (let i = 0; i < productIds.length; i += 500) {
    const rows = await knex('crm_product_prices').where({ price_book_id: priceBookId }).whereIn('product_id', productIds.slice(i, i + 500)).select('product_id', 'unit_name', 'currency', 'price_minor');
    for (const r of rows) existing.set(`${r.product_id}\u0000${r.unit_name}\u0000${r.currency}`, Number(r.price_minor));
  }
  // A new product's name may be given on any of its rows; the first one names it.
  const newNames = new Map<string, string>();
  for (const r of records) {
    const code = (r.product_code ?? '').trim();
    const name = (r.product_name ?? '').trim();
    if (code && name && name.length <= 200 && !products.has(codeKey(code)) && !newNames.has(codeKey(code))) newNames.set(codeKey(code), name);
  }
  const seen = new Map<string, number>();
  return records.map((record, index) => {
    const line = index + 2;
    const errors: string[] = [];
    const productCode = (record.product_code ?? '').trim();
    const productName = (record.product_name ?? '').trim();
    const unit = (record.unit ?? '').trim();
    const priceRaw = (record.price ?? '').trim();
    const currency = (record.currency ?? '').trim().toUpperCase();
    let priceMinor: number | null = null;

    if (!productCode) errors.push('product_code is missing');
    else if (productCode.length > 60) errors.push('product_code is longer than 60 characters');
    if (productName.length > 200) errors.push('product_name is longer than 200 characters');
    if (!unit) errors.push('unit is missing');
    else if (unit.length > 60) errors.push('unit is longer than 60 characters');
    if (!currency) errors.push('currency is missing');
    else if (!isCurrencyCode(currency)) errors.push(`currency ${currency.slice(0, 10)} is not a known currency code`);
    if (!priceRaw) errors.push('price is missing');
    else if (currency && isCurrencyCode(currency)) {
      const parsed = parseAmount(priceRaw, currency);
      if (!parsed.ok) errors.push(`price ${parsed.error}`);
      else if (parsed.minor < 0) errors.push('price must not be negative');
      else priceMinor = parsed.minor;
    }
    const product = productCode ? products.get(codeKey(productCode)) : undefined;
    let createProduct = false;
    if (productCode && !product) {
      if (newNames.has(codeKey(productCode))) createProduct = true;
      else errors.push(`product ${productCode} does not exist; give a product_name to create it`);
    } else if (product?.deleted) {
      errors.push(`product ${productCode} is deleted`);
    }
    if (productCode && unit && currency) {
      const key = `${codeKey(productCode)}\u0000${unit}\u0000${currency}`;
      const first = seen.get(key);
      if (first !== undefined) errors.push(`duplicate of line ${first} (same product, unit and currency)`);
      else seen.set(key, line);
    }
    let action: RowAction | null = null;
    let oldPrice: number | null = null;
    if (!errors.length) {
      const old = product ? existing.get(`${product.id}\u0000${unit}\u0000${currency}`) : undefined;
      oldPrice = old ?? null;
      action = old === undefined ? 'new_price' : old === priceMinor ? 'unchanged' : 'change_price';
    }
    return {
      line, product_code: productCode, product_name: productName, unit, price: priceRaw, currency, price_minor: priceMinor,
      product_id: product?.id ?? null, create_product: createProduct && !errors.length, new_product_name: createProduct ? newNames.get(codeKey(productCode)) ?? null : null, action, old_price_minor: oldPrice, errors,
    };
  });
}

export function summarize(rows: ImportRow[], delimiter: ',' | ';'): ImportPreview {
  const invalidCount = rows.filter((r) => r.errors.length).length;
  return { rows, valid: rows.length - invalidCount, invalid: invalidCount, delimiter };
}

// --- The uploaded file between preview and import -------------------------------------------------------

const TOKEN = /^[a-f0-9]{32}$/;
export const importsDir = (dataDir: string) => path.join(dataDir, 'imports');
const csvPath = (dataDir: string, token: string) => path.join(importsDir(dataDir), `${token}.csv`);
const metaPath = (dataDir: string, token: string) => path.join(importsDir(dataDir), `${token}.json`);

export function newImportToken(): string {
  return crypto.randomBytes(16).toString('hex');
}

/** Where an upload is streamed before it becomes a pending import (a rename makes it appear whole). */
export async function partPath(dataDir: string, token: string): Promise<string> {
  await fs.promises.mkdir(importsDir(dataDir), { recursive: true });
  return path.join(importsDir(dataDir), `${token}.part`);
}

export async function savePendingImport(dataDir: string, part: string, meta: ImportMeta): Promise<void> {
  await fs.promises.writeFile(metaPath(dataDir, meta.token), JSON.stringify(meta));
  await fs.promises.rename(part, csvPath(dataDir, meta.token));
}

/** The pending import `token` of this user on this price book, or 404 (never someone else's file). */
export async function loadPendingImport(ctx: CrmContext, priceBook: PriceBook, token: string): Promise<{ meta: ImportMeta; data: Buffer }> {
  if (!TOKEN.test(token)) throw notFound('Import');
  let meta: ImportMeta;
  let data: Buffer;
  try {
    meta = JSON.parse(await fs.promises.readFile(metaPath(ctx.host.dataDir, token), 'utf8')) as ImportMeta;
    data = await fs.promises.readFile(csvPath(ctx.host.dataDir, token));
  } catch {
    throw notFound('Import');
  }
  if (meta.userId !== ctx.user.id || meta.priceBookId !== priceBook.id) throw notFound('Import');
  return { meta, data };
}

export async function discardPendingImport(dataDir: string, token: string): Promise<void> {
  if (!TOKEN.test(token)) return;
  await fs.promises.rm(csvPath(dataDir, token), { force: true });
  await fs.promises.rm(metaPath(dataDir, token), { force: true });
}

/** Removes uploads older than a day (and stray partial ones): called on each upload, best effort. */
export async function sweepOldImports(dataDir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.promises.readdir(importsDir(dataDir));
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const file = path.join(importsDir(dataDir), name);
    try {
      const stat = await fs.promises.stat(file);
      if (now - stat.mtimeMs > KEEP_MS) await fs.promises.rm(file, { force: true });
    } catch {
      // gone already
    }
  }
}

export async function previewImport(knex: Knex, priceBook: PriceBook, data: Buffer): Promise<ImportPreview> {
  const { records, delimiter } = parseImportCsv(data);
  return summarize(await checkRows(knex, priceBook.id, records), delimiter);
}

export interface ImportResult {
  imported: number;
  skipped: number;
  created_products: number;
  new_prices: number;
  changed_prices: number;
  unchanged: number;
}

/**
 * Writes every valid row in one transaction: creates the missing products (no category), inserts or updates
 * the prices, journals each created product and each price as the manual paths do, and the import as a whole
 * on the price book. Rows with errors refuse the whole import (422, nothing written) unless `skipErrors`.
 */
export async function runImport(ctx: CrmContext, priceBook: PriceBook, data: Buffer, filename: string, skipErrors: boolean): Promise<ImportResult> {
  const { records } = parseImportCsv(data);
  return ctx.host.knex.transaction(async (trx) => {
    const rows = await checkRows(trx, priceBook.id, records);
    const bad = rows.filter((r) => r.errors.length);
    if (bad.length && !skipErrors) {
      throw invalid(`Nothing was imported: ${bad.length} row${bad.length === 1 ? ' has' : 's have'} errors. Fix the file, or tick "skip rows with errors".`, { skip_errors: 'Rows with errors' });
    }
    const good = rows.filter((r) => !r.errors.length);
    if (!good.length) throw invalid('Nothing was imported: the file has no valid rows.', { file: 'No valid rows' });

    // A new product takes the code as its first valid row spells it.
    const toCreate = new Map<string, { code: string; name: string }>();
    for (const r of good) {
      if (r.create_product && r.new_product_name && !toCreate.has(codeKey(r.product_code))) toCreate.set(codeKey(r.product_code), { code: r.product_code, name: r.new_product_name });
    }
    const newProducts = [...toCreate.values()].map(({ code, name }) => ({ code, name, description: '', active: true, category_id: null }));
    const entries: JournalEntry[] = [];
    for (let i = 0; i < newProducts.length; i += 200) {
      const chunk = newProducts.slice(i, i + 200);
      // A product another user created meanwhile under the same code is not inserted, and so not journaled as created here.
      const inserted: Array<{ id: number; code: string }> = await trx('crm_products').insert(chunk).onConflict('code').ignore().returning(['id', 'code']);
      const created = new Map(inserted.map((p) => [p.code, Number(p.id)]));
      for (const data of chunk) {
        const id = created.get(data.code);
        if (id !== undefined) entries.push({ type: 'product', id, userId: ctx.user.id, action: 'create', changes: creationChanges(data) });
      }
    }
    const changedRows = good.filter((r) => r.action !== 'unchanged');
    const products = new Map<string, { id: number; code: string }>();
    for (const p of await productsByCodeKey(trx, [...new Set(changedRows.map((r) => codeKey(r.product_code)))])) products.set(codeKey(String(p.code)), { id: Number(p.id), code: String(p.code) });
    const prices = changedRows.map((r) => ({
      price_book_id: priceBook.id, product_id: r.product_id ?? (products.get(codeKey(r.product_code)) as { id: number }).id, unit_name: r.unit, price_minor: r.price_minor as number, currency: r.currency,
    }));
    for (let i = 0; i < prices.length; i += 200) {
      await trx('crm_product_prices').insert(prices.slice(i, i + 200)).onConflict(['price_book_id', 'product_id', 'unit_name', 'currency']).merge(['price_minor']);
    }
    // Each price is journaled as adding or changing it by hand would be, on its product and on the price book.
    for (const r of changedRows) {
      const product = products.get(codeKey(r.product_code)) as { id: number; code: string };
      const old = r.old_price_minor === null ? null : priceText({ unit_name: r.unit, price_minor: r.old_price_minor, currency: r.currency });
      entries.push(...priceJournalEntries(ctx.user.id, priceBook, product, { field: 'price', old, new: priceText({ unit_name: r.unit, price_minor: r.price_minor as number, currency: r.currency }) }));
    }
    const result: ImportResult = {
      imported: good.length, skipped: bad.length, created_products: toCreate.size,
      new_prices: good.filter((r) => r.action === 'new_price').length, changed_prices: good.filter((r) => r.action === 'change_price').length,
      unchanged: good.filter((r) => r.action === 'unchanged').length,
    };
    entries.push({
      type: 'price_book', id: priceBook.id, userId: ctx.user.id, action: 'update',
      changes: [{ field: 'prices_imported', old: null, new: result.new_prices + result.changed_prices }],
      notes: `Imported ${filename}: ${result.new_prices} new prices, ${result.changed_prices} changed, ${result.unchanged} unchanged, ${result.created_products} products created${result.skipped ? `, ${result.skipped} rows with errors skipped` : ''}.`,
    });
    await journalMany(trx, entries);
    return result;
  });
}
