import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid, notFound } from '../http/errors';
import { isHtmx, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import { text, type FormInput, lockVersionOf } from '../services/form';
import { history } from '../services/journal';
import { amountInput, formatMoney } from '../services/money';
import { pageParam } from '../services/pagination';
import { canManagePriceBooks, findVisiblePriceBook, listPriceBooks, requireManageablePriceBook } from '../services/price-books';
import {
  addPrice, copyProduct, createProduct, deleteProduct, findPrice, listCategories, listProducts, parseProductFilters, pricesOfProduct,
  readOldPrice, readPriceInput, readProductInput, removePrice, requireManageableProduct, requireVisibleProduct, updatePrice, updateProduct,
  type Product,
} from '../services/products';
import { queryString } from '../services/saved-filters';
import { loadSettings } from '../services/settings';
import { priceJson, type PageFailure } from './price-books';

/** Products (Q2): list, detail with prices per price book, form, copy, and units per price book. */
const VIEW = 'view_price_books';
const MANAGE = 'manage_price_books';
const LIST = '/crm/products';
const productUrl = (id: number) => `${LIST}/${id}`;

const numeric = (req: Request, name = 'id') => {
  const raw = String(req.params[name] ?? '').replace(/\.json$/, '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};

function productJson(p: Product) {
  return { id: p.id, name: p.name, description: p.description, code: p.code, active: p.active, category_id: p.category_id, lock_version: p.lock_version, url: productUrl(p.id) };
}

async function listPage(ctx: CrmContext, req: Request): Promise<PageResponse> {
  const filters = parseProductFilters(req.query as FormInput);
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listProducts(ctx, filters, pageParam(req), Number(settings.page_size) || 25);
  const params: Record<string, string> = {};
  if (filters.q) params.q = filters.q;
  if (filters.category) params.category = String(filters.category);
  if (filters.active !== 'all') params.active = filters.active;
  const canManage = await canManagePriceBooks(ctx);
  return {
    title: 'Products',
    view: 'products/index',
    locals: { rows, meta, filters, params, queryString, canManage, base: LIST, categories: await listCategories(ctx.host.knex) },
    json: { products: rows.map((r) => ({ ...productJson(r), category_name: r.category_name, price_book_count: r.price_book_count })), pagination: meta, filters: params, can_manage: canManage },
  };
}

async function formPage(ctx: CrmContext, product: Product | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const categories = (await listCategories(ctx.host.knex)).filter((c) => c.active || c.id === product?.category_id);
  return {
    title: product ? `Edit ${product.name}` : 'New product',
    view: 'products/form',
    status,
    locals: { product, values, errors, message, categories, action: product ? productUrl(product.id) : LIST },
    json: { error: message, fields: errors },
  };
}

async function copyPage(ctx: CrmContext, product: Product, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  return {
    title: `Copy ${product.name}`,
    view: 'products/copy',
    status,
    locals: { product, values, errors, message },
    json: { error: message, fields: errors },
  };
}

function valuesOf(p: Product): FormInput {
  return { name: p.name, description: p.description, code: p.code, active: p.active ? '1' : '', category_id: p.category_id ? String(p.category_id) : '', lock_version: String(p.lock_version) };
}

async function productPage(ctx: CrmContext, req: Request, product: Product, message: string | null = null, failure: PageFailure | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const canManage = await canManagePriceBooks(ctx);
  const books = await pricesOfProduct(ctx, product.id);
  const category = product.category_id ? await knex('crm_product_categories').where({ id: product.category_id }).first() : null;
  const log = canManage ? await history(knex, 'product', product.id, pageParam(req)) : null;
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const bookChoices = canManage ? (await listPriceBooks(ctx, { q: '', active: 'all' }, 1, 500)).rows.map((b) => ({ id: b.id, name: b.name })) : [];
  return {
    title: product.name,
    view: 'products/show',
    status: failure?.status ?? 200,
    locals: { product, category, canManage, message, failure, books, bookChoices, log, users, formatMoney, amountInput },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      product: productJson(product), can_manage: canManage,
      category: category ? { id: Number(category.id), name: category.name, contract_kind: category.contract_kind, default_duration_months: category.default_duration_months === null ? null : Number(category.default_duration_months) } : null,
      price_books: books.map((g) => ({ id: g.book.id, name: g.book.name, url: `/crm/price-books/${g.book.id}`, prices: g.prices.map(priceJson) })),
    },
  };
}

async function pageChange(ctx: CrmContext, req: Request, res: Response, product: Product, target: string, change: () => Promise<string>): Promise<void> {
  let notice: string;
  try {
    notice = await change();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await productPage(ctx, req, product, null, { target, values: formBody(req), errors: err.fieldErrors, message: err.message, status: err.status }));
    }
    throw err;
  }
  const fresh = await requireVisibleProduct(ctx, product.id);
  await respondAfterChange(ctx.host, req, res, productUrl(product.id), async () => ({ ...(await productPage(ctx, req, fresh, notice)), trigger: 'crm:productSaved' }));
}

async function rerenderOn(render: (err: CrmError) => Promise<PageResponse>, ctx: CrmContext, req: Request, res: Response, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) return respond(ctx.host, req, res, await render(err));
    throw err;
  }
}

async function showNew(ctx: CrmContext, req: Request, res: Response, product: Product, notice: string): Promise<void> {
  if (wantsJson(req)) return void res.status(201).json({ product: productJson(product) });
  if (isHtmx(req)) res.set('HX-Push-Url', productUrl(product.id));
  await respondAfterChange(ctx.host, req, res, productUrl(product.id), async () => ({ ...(await productPage(ctx, req, product, notice)), status: 201, trigger: 'crm:productSaved' }));
}

/** A price of this product, with its price book (which the manager must reach). */
async function priceOf(ctx: CrmContext, product: Product, priceId: number) {
  const row = Number.isInteger(priceId) && priceId > 0 ? await ctx.host.knex('crm_product_prices').where({ id: priceId, product_id: product.id }).first('price_book_id') : null;
  if (!row) throw notFound('Price');
  const book = await requireManageablePriceBook(ctx, Number(row.price_book_id));
  const price = await findPrice(ctx.host.knex, book.id, priceId);
  if (!price) throw notFound('Price');
  return { book, price };
}

export function productRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: LIST, permission: VIEW, handler: async (ctx, req, res) => respond(ctx.host, req, res, await listPage(ctx, req)) },
    { method: 'get', path: `${LIST}/new`, permission: MANAGE, handler: async (ctx, req, res) => respond(ctx.host, req, res, await formPage(ctx, null, { active: '1' })) },
    {
      method: 'post', path: LIST, permission: MANAGE,
      async handler(ctx, req, res) {
        await rerenderOn((err) => formPage(ctx, null, formBody(req), err.fieldErrors, err.message, err.status), ctx, req, res, async () => {
          const product = await createProduct(ctx, await readProductInput(ctx, formBody(req), null));
          await showNew(ctx, req, res, product, 'Product created.');
        });
      },
    },
    {
      method: 'get', path: `${LIST}/:id`, permission: VIEW,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await productPage(ctx, req, await requireVisibleProduct(ctx, numeric(req)))),
    },
    {
      method: 'get', path: `${LIST}/:id/edit`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        await respond(ctx.host, req, res, await formPage(ctx, product, valuesOf(product)));
      },
    },
    {
      method: 'post', path: `${LIST}/:id`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        await rerenderOn((err) => formPage(ctx, product, inputShownAgain(formBody(req), err, product), err.fieldErrors, err.message, err.status), ctx, req, res, async () => {
          const lock = lockVersionOf(formBody(req));
          const saved = await updateProduct(ctx, product, await readProductInput(ctx, formBody(req), product), lock);
          await respondAfterChange(ctx.host, req, res, productUrl(saved.id), async () => ({ ...(await productPage(ctx, req, saved, 'Product saved.')), trigger: 'crm:productSaved' }));
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/delete`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        if (text(formBody(req), 'confirm') !== '1') {
          const err = invalid('Confirm the deletion.', { confirm: 'Tick the box to confirm' });
          return respond(ctx.host, req, res, await productPage(ctx, req, product, null, { target: 'delete', values: formBody(req), errors: err.fieldErrors, message: err.message, status: 422 }));
        }
        try {
          await deleteProduct(ctx, product);
        } catch (err) {
          if (err instanceof CrmError && err.status === 422) {
            return respond(ctx.host, req, res, await productPage(ctx, req, product, null, { target: 'delete', values: formBody(req), errors: err.fieldErrors, message: err.message, status: err.status }));
          }
          throw err;
        }
        if (isHtmx(req)) return void res.set('HX-Redirect', LIST).status(204).end();
        if (wantsJson(req)) return void res.json({ deleted: product.id });
        res.redirect(303, LIST);
      },
    },
    {
      method: 'get', path: `${LIST}/:id/copy`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        await respond(ctx.host, req, res, await copyPage(ctx, product, { code: `${product.code}-COPY`.slice(0, 60), name: product.name }));
      },
    },
    {
      method: 'post', path: `${LIST}/:id/copy`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        await rerenderOn((err) => copyPage(ctx, product, formBody(req), err.fieldErrors, err.message, err.status), ctx, req, res, async () => {
          const copy = await copyProduct(ctx, product, formBody(req));
          await showNew(ctx, req, res, copy, `Copied from ${product.code} with its prices.`);
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        await pageChange(ctx, req, res, product, 'new-price', async () => {
          const bookId = Number(text(formBody(req), 'price_book_id'));
          const book = Number.isInteger(bookId) && bookId > 0 ? await findVisiblePriceBook(ctx, bookId) : null;
          if (!book) throw invalid('The price was not saved: fix the fields marked below.', { price_book_id: 'Choose a price book from the list' });
          const price = await addPrice(ctx, book, product, readPriceInput(formBody(req)));
          return `Added to ${book.name}: ${price.unit_name} ${formatMoney(price.price_minor, price.currency)}.`;
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices/:priceId`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        const { book, price } = await priceOf(ctx, product, numeric(req, 'priceId'));
        await pageChange(ctx, req, res, product, `price-${price.id}`, async () => {
          const saved = await updatePrice(ctx, book, product, price, readPriceInput(formBody(req)), readOldPrice(formBody(req)));
          return `Saved in ${book.name}: ${saved.unit_name} ${formatMoney(saved.price_minor, saved.currency)}.`;
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices/:priceId/delete`, permission: MANAGE,
      async handler(ctx, req, res) {
        const product = await requireManageableProduct(ctx, numeric(req));
        const { book, price } = await priceOf(ctx, product, numeric(req, 'priceId'));
        await pageChange(ctx, req, res, product, `price-${price.id}`, async () => {
          await removePrice(ctx, book, product, price);
          return `Removed from ${book.name}: ${price.unit_name}.`;
        });
      },
    },
  ];
}
