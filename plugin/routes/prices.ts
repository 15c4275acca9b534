import type { Request } from 'express';
import type { Knex } from 'knex';
import type { CrmContext, CrmRoute } from '../http/guard';
import { respond } from '../http/respond';
import { whereAnyContains } from '../services/text-search';
import { positiveId, text, type FormInput } from '../services/form';
import { amountInput, formatMoney, isCurrencyCode } from '../services/money';
import { pageParam, type PageMeta } from '../services/pagination';
import { canManagePriceBooks, scopePriceBooks } from '../services/price-books';
import { loadSettings } from '../services/settings';

/**
 * The global price overview (SPEC Q4): one row per price — product × price book × unit × currency — over the
 * price books this user may see, filtered and paged in SQL.
 */
export interface PriceFilters {
  q: string;
  price_book_id: number | null;
  currency: string;
  category_id: number | null;
}

export interface PriceRow {
  product_id: number;
  product_code: string;
  product_name: string;
  category_name: string | null;
  price_book_id: number;
  price_book_name: string;
  unit_name: string;
  price_minor: number;
  currency: string;
}

export function parsePriceFilters(input: FormInput): PriceFilters {
  const currency = text(input, 'currency').toUpperCase();
  return {
    q: text(input, 'q').slice(0, 100),
    price_book_id: positiveId(text(input, 'price_book_id')),
    currency: isCurrencyCode(currency) ? currency : '',
    category_id: positiveId(text(input, 'category_id')),
  };
}

export function priceFilterParams(f: PriceFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.q) out.q = f.q;
  if (f.price_book_id) out.price_book_id = String(f.price_book_id);
  if (f.currency) out.currency = f.currency;
  if (f.category_id) out.category_id = String(f.category_id);
  return out;
}

async function baseQuery(ctx: CrmContext, f: PriceFilters, manager: boolean): Promise<{ q: Knex.QueryBuilder }> {
  const q = ctx.host.knex('crm_product_prices as pp')
    .join('crm_price_books as pb', 'pb.id', 'pp.price_book_id')
    .join('crm_products as p', 'p.id', 'pp.product_id')
    .whereNull('p.deleted_at');
  await scopePriceBooks(ctx, q, manager);
  if (f.price_book_id) q.where('pp.price_book_id', f.price_book_id);
  if (f.currency) q.where('pp.currency', f.currency);
  if (f.category_id) q.where('p.category_id', f.category_id);
  if (f.q) whereAnyContains(q, ['p.name', 'p.code'], f.q);
  return { q };
}

export async function listPrices(ctx: CrmContext, f: PriceFilters, page: number, perPage: number): Promise<{ rows: PriceRow[]; meta: PageMeta }> {
  const manager = await canManagePriceBooks(ctx);
  const { q } = await baseQuery(ctx, f, manager);
  const countRow = await q.clone().count({ n: '*' }).first();
  const total = Number(countRow?.n ?? 0);
  const pages = Math.max(1, Math.ceil(total / perPage));
  const current = Math.min(page, pages);
  const rows = await q.clone().leftJoin('crm_product_categories as c', 'c.id', 'p.category_id')
    .orderBy([{ column: 'p.name' }, { column: 'p.id' }, { column: 'pb.name' }, { column: 'pb.id' }, { column: 'pp.unit_name' }, { column: 'pp.currency' }])
    .limit(perPage).offset((current - 1) * perPage)
    .select('p.id as product_id', 'p.code as product_code', 'p.name as product_name', 'c.name as category_name', 'pb.id as price_book_id',
      'pb.name as price_book_name', 'pp.unit_name', 'pp.price_minor', 'pp.currency');
  return {
    rows: rows.map((r: Record<string, unknown>) => ({
      product_id: Number(r.product_id), product_code: String(r.product_code), product_name: String(r.product_name), category_name: r.category_name === null || r.category_name === undefined ? null : String(r.category_name),
      price_book_id: Number(r.price_book_id), price_book_name: String(r.price_book_name), unit_name: String(r.unit_name), price_minor: Number(r.price_minor), currency: String(r.currency),
    })),
    meta: { page: current, pages, total, per_page: perPage },
  };
}

/** The choices of the filter form: visible price books, their currencies, product categories. */
async function filterOptions(ctx: CrmContext, manager: boolean) {
  const { q } = await scopePriceBooks(ctx, ctx.host.knex('crm_price_books as pb'), manager);
  const books = (await q.clone().orderBy([{ column: 'pb.name' }, { column: 'pb.id' }]).select('pb.id', 'pb.name')).map((r: Record<string, unknown>) => ({ id: Number(r.id), name: String(r.name) }));
  const currencies = (await ctx.host.knex('crm_product_prices').whereIn('price_book_id', books.length ? books.map((b: { id: number }) => b.id) : [-1]).distinct('currency').orderBy('currency'))
    .map((r) => String(r.currency));
  const categories = (await ctx.host.knex('crm_product_categories').orderBy([{ column: 'position' }, { column: 'name' }]).select('id', 'name')).map((r) => ({ id: Number(r.id), name: String(r.name) }));
  return { books, currencies, categories };
}

function queryString(params: Record<string, string>, page?: number): string {
  const all = { ...params, ...(page && page > 1 ? { page: String(page) } : {}) };
  const qs = new URLSearchParams(all).toString();
  return qs ? `?${qs}` : '';
}

export function priceRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/prices', permission: ['view_price_books', 'manage_price_books'],
      async handler(ctx, req: Request, res) {
        const filters = parsePriceFilters(req.query as FormInput);
        const settings = await loadSettings(ctx.host.knex);
        const perPage = Math.min(500, Math.max(1, Number(settings.page_size) || 25));
        const { rows, meta } = await listPrices(ctx, filters, pageParam(req), perPage);
        const manager = await canManagePriceBooks(ctx);
        const params = priceFilterParams(filters);
        await respond(ctx.host, req, res, {
          title: 'Prices',
          view: 'prices/index',
          locals: { rows, meta, filters, params, options: await filterOptions(ctx, manager), formatMoney, queryString },
          json: {
            prices: rows.map((r) => ({ ...r, price: amountInput(r.price_minor, r.currency), price_book_url: `/crm/price-books/${r.price_book_id}` })),
            pagination: meta, filters: params,
          },
        });
      },
    },
  ];
}
