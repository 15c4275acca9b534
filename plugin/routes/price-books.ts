import type { Request, Response } from 'express';
import { crmProjectsAmong, type CrmContext, type CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid, notFound } from '../http/errors';
import { isHtmx, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import { list, text, type FormInput, lockVersionOf } from '../services/form';
import { presentHistory } from '../services/history-display';
import { history } from '../services/journal';
import { amountInput, formatMoney } from '../services/money';
import { pageParam } from '../services/pagination';
import {
  assignableProjects, assignedProjects, assignProject, canManagePriceBooks, createPriceBook, createPriceBookUpdate, deletePriceBook,
  findVisiblePriceBook, listPriceBooks, parsePriceBookFilters, priceBooksForProject, pricesOfBook, readPriceBookInput, requireManageablePriceBook,
  requireVisiblePriceBook, scopePriceBooks, unassignProject, updatePriceBook, type PriceBook, type PriceRow,
} from '../services/price-books';
import { addPrice, findPrice, productChoices, readOldPrice, readPriceInput, removePrice, requireManageableProduct, updatePrice } from '../services/products';
import { queryString } from '../services/saved-filters';
import { loadSettings } from '../services/settings';
import { attachmentListLocals, PRICE_BOOK_ATTACHMENTS } from './attachments';
import { PRICE_BOOK_PANELS } from './price-book-extensions';

/**
 * Price books (Q1): list, detail with prices per product, form, "update" (a new version), assigned projects,
 * units per product and files. Seeing needs view_price_books (and a price book assigned where the user has it);
 * every change needs the global manage_price_books — without it the change URLs answer 404.
 */
const VIEW = 'view_price_books';
const MANAGE = 'manage_price_books';
const LIST = '/crm/price-books';
export const priceBookUrl = (id: number) => `${LIST}/${id}`;

const numeric = (req: Request, name = 'id') => {
  const raw = String(req.params[name] ?? '').replace(/\.json$/, '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};

export function priceBookJson(b: PriceBook) {
  return {
    id: b.id, name: b.name, description: b.description, brand: b.brand, product_version: b.product_version, active: b.active,
    previous_id: b.previous_id, lock_version: b.lock_version, created_at: b.created_at, updated_at: b.updated_at, url: priceBookUrl(b.id),
  };
}

export function priceJson(p: PriceRow) {
  return { id: p.id, price_book_id: p.price_book_id, product_id: p.product_id, unit_name: p.unit_name, price_minor: p.price_minor, currency: p.currency, price: amountInput(p.price_minor, p.currency) };
}

/** A form on the detail page that failed: which one, what was typed, the messages. */
export interface PageFailure {
  target: string;
  values: FormInput;
  errors: Record<string, string>;
  message: string;
  status: number;
}

async function listPage(ctx: CrmContext, req: Request): Promise<PageResponse> {
  const filters = parsePriceBookFilters(req.query as FormInput);
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listPriceBooks(ctx, filters, pageParam(req), Number(settings.page_size) || 25);
  const params: Record<string, string> = {};
  if (filters.q) params.q = filters.q;
  if (filters.active !== 'all') params.active = filters.active;
  const canManage = await canManagePriceBooks(ctx);
  return {
    title: 'Price books',
    view: 'price-books/index',
    locals: { rows, meta, filters, params, queryString, canManage, base: LIST },
    json: { price_books: rows.map((r) => ({ ...priceBookJson(r), product_count: r.product_count, project_count: r.project_count })), pagination: meta, filters: params, can_manage: canManage },
  };
}

async function projectPage(ctx: CrmContext): Promise<PageResponse> {
  const project = ctx.project!;
  const books = await priceBooksForProject(ctx, project);
  const ancestors = new Map((await ctx.host.ancestors(project)).map((p) => [p.id, p]));
  const rows = [];
  for (const b of books) {
    const from = (await assignedProjects(ctx, b.id)).filter((p) => p.id === project.id || ancestors.has(p.id));
    rows.push({ book: b, from });
  }
  return {
    title: `${project.name} · Price books`,
    view: 'price-books/project',
    project,
    locals: { project, rows },
    json: { project: { id: project.id, identifier: project.identifier }, price_books: rows.map((r) => ({ ...priceBookJson(r.book), assigned_via: r.from.map((p) => p.identifier) })) },
  };
}

async function formPage(ctx: CrmContext, book: PriceBook | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  return {
    title: book ? `Edit ${book.name}` : 'New price book',
    view: 'price-books/form',
    status,
    locals: { book, values, errors, message, projects: book ? [] : await assignableProjects(ctx), action: book ? priceBookUrl(book.id) : LIST },
    json: { error: message, fields: errors },
  };
}

function valuesOf(b: PriceBook): FormInput {
  return { name: b.name, description: b.description, brand: b.brand, product_version: b.product_version, active: b.active ? '1' : '', lock_version: String(b.lock_version) };
}

/** The price book page; `failure` re-renders one of its forms with the user's input. */
export async function priceBookPage(ctx: CrmContext, req: Request, book: PriceBook, message: string | null = null, failure: PageFailure | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const canManage = await canManagePriceBooks(ctx);
  const groups = await pricesOfBook(knex, book.id, !canManage);
  const assignedToBook = await assignedProjects(ctx, book.id);
  const assigned = new Set(assignedToBook.map((p) => p.id));
  // A manager assigns and unassigns them all; anyone else is told only of projects whose CRM they may open, as
  // histories name projects, and how many others there are.
  const projects = canManage ? assignedToBook : await crmProjectsAmong(ctx, assigned);
  const otherProjects = assignedToBook.length - projects.length;
  const addable = canManage ? (await assignableProjects(ctx)).filter((p) => !assigned.has(p.id)) : [];
  const previous = book.previous_id ? await findVisiblePriceBook(ctx, book.previous_id) : null;
  const { q: newerQ } = await scopePriceBooks(ctx, knex('crm_price_books as pb').where('pb.previous_id', book.id), canManage);
  const newer = await newerQ.select('pb.id', 'pb.name').orderBy('pb.id');
  const panels = [];
  for (const part of PRICE_BOOK_PANELS) panels.push({ view: part.view, locals: await part.load(ctx, book, canManage) });
  const files = await attachmentListLocals(ctx, PRICE_BOOK_ATTACHMENTS, book);
  const log = await presentHistory(ctx, await history(knex, 'price_book', book.id, pageParam(req)));
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  return {
    title: book.name,
    view: 'price-books/show',
    status: failure?.status ?? 200,
    locals: {
      book, canManage, message, failure, groups, projects, otherProjects, addable, previous, newer, panels, files, log, users, formatMoney, amountInput,
      products: canManage ? await productChoices(knex) : [],
    },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      price_book: priceBookJson(book), can_manage: canManage,
      projects: projects.map((p) => ({ id: p.id, identifier: p.identifier, name: p.name })), other_projects: otherProjects,
      products: groups.map((g) => ({ ...g.product, url: `/crm/products/${g.product.id}`, prices: g.prices.map(priceJson) })),
      newer_versions: newer.map((n: { id: unknown; name: unknown }) => ({ id: Number(n.id), name: String(n.name), url: priceBookUrl(Number(n.id)) })),
      files: files.files.map((f) => ({ filename: f.filename, version: f.latest.version, download_url: `${files.base}/${f.latest.id}/download` })),
    },
  };
}

/** Runs a change on the price book page; 422 or 409 re-render the page with the form's input and messages. */
async function pageChange(ctx: CrmContext, req: Request, res: Response, book: PriceBook, target: string, change: () => Promise<string>): Promise<void> {
  let notice: string;
  try {
    notice = await change();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      const fresh = (await findVisiblePriceBook(ctx, book.id)) ?? book;
      return respond(ctx.host, req, res, await priceBookPage(ctx, req, fresh, null, { target, values: formBody(req), errors: err.fieldErrors, message: err.message, status: err.status }));
    }
    throw err;
  }
  const fresh = await requireVisiblePriceBook(ctx, book.id);
  await respondAfterChange(ctx.host, req, res, priceBookUrl(book.id), async () => ({ ...(await priceBookPage(ctx, req, fresh, notice)), trigger: 'crm:priceBookSaved' }));
}

async function formOrRerender(ctx: CrmContext, req: Request, res: Response, book: PriceBook | null, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await formPage(ctx, book, inputShownAgain(formBody(req), err, book), err.fieldErrors, err.message, err.status));
    }
    throw err;
  }
}

/** After a change that makes a new price book: plain forms go there (303), htmx gets its page and the new URL. */
async function showNew(ctx: CrmContext, req: Request, res: Response, book: PriceBook, notice: string): Promise<void> {
  if (wantsJson(req)) return void res.status(201).json({ price_book: priceBookJson(book) });
  if (isHtmx(req)) res.set('HX-Push-Url', priceBookUrl(book.id));
  await respondAfterChange(ctx.host, req, res, priceBookUrl(book.id), async () => ({ ...(await priceBookPage(ctx, req, book, notice)), status: 201, trigger: 'crm:priceBookSaved' }));
}

/** The price named in the URL, of a price book and product this user manages (404 otherwise). */
async function manageablePrice(ctx: CrmContext, req: Request) {
  const book = await requireManageablePriceBook(ctx, numeric(req));
  const price = await findPrice(ctx.host.knex, book.id, numeric(req, 'priceId'));
  if (!price) throw notFound('Price');
  const product = await requireManageableProduct(ctx, price.product_id);
  return { book, price, product };
}

export function priceBookRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: LIST, permission: VIEW, handler: async (ctx, req, res) => respond(ctx.host, req, res, await listPage(ctx, req)) },
    { method: 'get', path: '/projects/:identifier/crm/price-books', permission: VIEW, handler: async (ctx, req, res) => respond(ctx.host, req, res, await projectPage(ctx)) },
    {
      method: 'get', path: `${LIST}/new`, permission: MANAGE,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await formPage(ctx, null, { active: '1' })),
    },
    {
      method: 'post', path: LIST, permission: MANAGE,
      async handler(ctx, req, res) {
        await formOrRerender(ctx, req, res, null, async () => {
          const data = readPriceBookInput(formBody(req));
          const ids = list(formBody(req), 'project_ids').map(Number);
          if (ids.some((n) => !Number.isInteger(n) || n <= 0)) throw invalid('The price book was not saved: fix the fields marked below.', { project_ids: 'Choose projects from the list' });
          const book = await createPriceBook(ctx, data, ids);
          await showNew(ctx, req, res, book, 'Price book created.');
        });
      },
    },
    {
      method: 'get', path: `${LIST}/:id`, permission: VIEW,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await priceBookPage(ctx, req, await requireVisiblePriceBook(ctx, numeric(req)))),
    },
    {
      method: 'get', path: `${LIST}/:id/edit`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        await respond(ctx.host, req, res, await formPage(ctx, book, valuesOf(book)));
      },
    },
    {
      method: 'post', path: `${LIST}/:id`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        await formOrRerender(ctx, req, res, book, async () => {
          const lock = lockVersionOf(formBody(req));
          const saved = await updatePriceBook(ctx, book, readPriceBookInput(formBody(req)), lock);
          await respondAfterChange(ctx.host, req, res, priceBookUrl(saved.id), async () => ({ ...(await priceBookPage(ctx, req, saved, 'Price book saved.')), trigger: 'crm:priceBookSaved' }));
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/delete`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        try {
          if (text(formBody(req), 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'Tick the box to confirm' });
          await deletePriceBook(ctx, book, text(formBody(req), 'lock_version') ? lockVersionOf(formBody(req)) : null);
        } catch (err) {
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
            return respond(ctx.host, req, res, await priceBookPage(ctx, req, book, null, { target: 'delete', values: formBody(req), errors: err.fieldErrors, message: err.message, status: err.status }));
          }
          throw err;
        }
        if (isHtmx(req)) return void res.set('HX-Redirect', LIST).status(204).end();
        if (wantsJson(req)) return void res.json({ deleted: book.id });
        res.redirect(303, LIST);
      },
    },
    {
      method: 'post', path: `${LIST}/:id/update`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        const created = await createPriceBookUpdate(ctx, book);
        await showNew(ctx, req, res, created, `Created “${created.name}”, an update of “${book.name}”, with its projects and prices.`);
      },
    },
    {
      method: 'post', path: `${LIST}/:id/projects`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        await pageChange(ctx, req, res, book, 'project', async () => {
          const project = await assignProject(ctx, book, Number(text(formBody(req), 'project_id')) || 0);
          return `Assigned to ${project.name}.`;
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/projects/:projectId/remove`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        await pageChange(ctx, req, res, book, 'project', async () => {
          await unassignProject(ctx, book, numeric(req, 'projectId'));
          return 'Project removed.';
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices`, permission: MANAGE,
      async handler(ctx, req, res) {
        const book = await requireManageablePriceBook(ctx, numeric(req));
        await pageChange(ctx, req, res, book, 'new-price', async () => {
          const productId = Number(text(formBody(req), 'product_id'));
          let product;
          try {
            product = await requireManageableProduct(ctx, Number.isInteger(productId) ? productId : 0);
          } catch (err) {
            if (err instanceof CrmError && err.status === 404) throw invalid('The price was not saved: fix the fields marked below.', { product_id: 'Choose a product from the list' });
            throw err;
          }
          const price = await addPrice(ctx, book, product, readPriceInput(formBody(req)));
          return `Added ${product.name}: ${price.unit_name} ${formatMoney(price.price_minor, price.currency)}.`;
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices/:priceId`, permission: MANAGE,
      async handler(ctx, req, res) {
        const { book, price, product } = await manageablePrice(ctx, req);
        await pageChange(ctx, req, res, book, `price-${price.id}`, async () => {
          const saved = await updatePrice(ctx, book, product, price, readPriceInput(formBody(req)), readOldPrice(formBody(req)));
          return `Saved ${product.name}: ${saved.unit_name} ${formatMoney(saved.price_minor, saved.currency)}.`;
        });
      },
    },
    {
      method: 'post', path: `${LIST}/:id/prices/:priceId/delete`, permission: MANAGE,
      async handler(ctx, req, res) {
        const { book, price, product } = await manageablePrice(ctx, req);
        await pageChange(ctx, req, res, book, `price-${price.id}`, async () => {
          await removePrice(ctx, book, product, price);
          return `Removed ${product.name}: ${price.unit_name}.`;
        });
      },
    },
  ];
}
