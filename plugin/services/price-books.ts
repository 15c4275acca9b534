import type { Knex } from 'knex';
import { isPg } from '../../migrations/dialect';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostProject } from '../host';
import { readUnderVersions } from './data-version';
import { whereAnyContains } from './text-search';
import { FieldErrors, flag, text, type FormInput, validId } from './form';
import { changedFields, journal } from './journal';
import type { PageMeta } from './pagination';

/** A price book (SPEC Q1): a list of product prices, assigned to projects, with versions ("updates"). */
export interface PriceBook {
  id: number;
  name: string;
  description: string;
  brand: string;
  product_version: string;
  active: boolean;
  previous_id: number | null;
  author_id: number | null;
  lock_version: number;
  created_at: string;
  updated_at: string;
}

const PRICE_BOOK_COLUMNS = ['id', 'name', 'description', 'brand', 'product_version', 'active', 'previous_id', 'author_id', 'lock_version', 'created_at', 'updated_at'];

function normalize(row: Record<string, unknown>): PriceBook {
  return {
    id: Number(row.id),
    name: String(row.name),
    description: String(row.description ?? ''),
    brand: String(row.brand ?? ''),
    product_version: String(row.product_version ?? ''),
    active: Boolean(row.active),
    previous_id: row.previous_id === null || row.previous_id === undefined ? null : Number(row.previous_id),
    author_id: row.author_id === null || row.author_id === undefined ? null : Number(row.author_id),
    lock_version: Number(row.lock_version),
    created_at: row.created_at instanceof Date ? row.created_at.toISOString() : String(row.created_at),
    updated_at: row.updated_at instanceof Date ? row.updated_at.toISOString() : String(row.updated_at),
  };
}

/** The global permission: see and manage every price book and product. */
export async function canManagePriceBooks(ctx: CrmContext): Promise<boolean> {
  return ctx.host.can(ctx.user, 'manage_price_books');
}

/**
 * Ids of the projects whose assigned price books this user may see: every project where they hold
 * view_price_books, plus — since a price book assigned to a parent is usable below it — that project's ancestors.
 */
export async function visibleProjectIds(ctx: CrmContext): Promise<number[]> {
  const ids = new Set<number>();
  for (const p of await ctx.host.projectsWhere(ctx.user, 'view_price_books')) {
    ids.add(p.id);
    for (const a of await ctx.host.ancestors(p)) ids.add(a.id);
  }
  return [...ids];
}

/**
 * Restricts a `crm_price_books as pb` query to what this user may see: managers everything not deleted,
 * others the active price books assigned to a project they reach (or an ancestor of one).
 * Returned wrapped: a bare builder from an async function would run.
 */
export async function scopePriceBooks(ctx: CrmContext, q: Knex.QueryBuilder, manager?: boolean): Promise<{ q: Knex.QueryBuilder }> {
  q.whereNull('pb.deleted_at');
  if (manager ?? (await canManagePriceBooks(ctx))) return { q };
  const projects = await visibleProjectIds(ctx);
  q.where('pb.active', true).whereExists((s) => s.select(1).from('crm_price_book_projects as pbp').whereRaw('pbp.price_book_id = pb.id').whereIn('pbp.project_id', projects.length ? projects : [-1]));
  return { q };
}

export async function findVisiblePriceBook(ctx: CrmContext, id: number): Promise<PriceBook | null> {
  if (!validId(id)) return null;
  const { q } = await scopePriceBooks(ctx, ctx.host.knex('crm_price_books as pb').where('pb.id', id));
  const row = await q.first(PRICE_BOOK_COLUMNS.map((c) => `pb.${c}`));
  return row ? normalize(row) : null;
}

/** A price book this user may see, or 404: the one way routes load a price book by id. */
export async function requireVisiblePriceBook(ctx: CrmContext, id: number): Promise<PriceBook> {
  const book = await findVisiblePriceBook(ctx, id);
  if (!book) throw notFound('Price book');
  return book;
}

/** A price book this user may change: 404 when they cannot see it, 403 when they see it but lack manage_price_books. */
export async function requireManageablePriceBook(ctx: CrmContext, id: number): Promise<PriceBook> {
  const book = await requireVisiblePriceBook(ctx, id);
  if (!(await canManagePriceBooks(ctx))) throw forbidden('You may see this price book but not change it.');
  return book;
}

/** Active price books usable for quotes in `project`: assigned to it or to one of its ancestors (Q1). */
export async function priceBooksForProject(ctx: CrmContext, project: HostProject): Promise<PriceBook[]> {
  const ids = [project.id, ...(await ctx.host.ancestors(project)).map((p) => p.id)];
  const knex = ctx.host.knex;
  // Kept under the tables' versions: the quote form and every quote document ask.
  const books = await readUnderVersions(knex, 'project-price-books', ['crm_price_books', 'crm_price_book_projects'], ids, async () =>
    (await knex('crm_price_books as pb').whereNull('pb.deleted_at').where('pb.active', true)
      .whereExists((s) => s.select(1).from('crm_price_book_projects as pbp').whereRaw('pbp.price_book_id = pb.id').whereIn('pbp.project_id', ids))
      .orderBy([{ column: 'pb.name' }, { column: 'pb.id' }]).select(PRICE_BOOK_COLUMNS.map((c) => `pb.${c}`))).map(normalize));
  return books.map((book) => ({ ...book }));
}

// ---- list, read, write ----------------------------------------------------------------------------------------

export const PRICE_BOOK_FIELDS = ['name', 'description', 'brand', 'product_version', 'active'] as const;
export type PriceBookData = Record<(typeof PRICE_BOOK_FIELDS)[number], unknown>;

export interface PriceBookFilters {
  q: string;
  /** Managers may include inactive books; others only ever see active ones. */
  active: 'all' | 'active' | 'inactive';
}

export function parsePriceBookFilters(query: FormInput): PriceBookFilters {
  const active = text(query, 'active');
  return { q: text(query, 'q').slice(0, 100), active: active === 'active' || active === 'inactive' ? active : 'all' };
}

export interface PriceBookRow extends PriceBook {
  product_count: number;
  project_count: number;
}

/** A page of the price books this user may see, searched by name, brand and version. */
export async function listPriceBooks(ctx: CrmContext, filters: PriceBookFilters, page: number, perPage: number): Promise<{ rows: PriceBookRow[]; meta: PageMeta }> {
  const knex = ctx.host.knex;
  const { q: base } = await scopePriceBooks(ctx, knex('crm_price_books as pb'));
  if (filters.q) whereAnyContains(base, ['pb.name', 'pb.brand', 'pb.product_version', 'pb.description'], filters.q);
  if (filters.active !== 'all') base.where('pb.active', filters.active === 'active');
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const rows = await base.clone()
    .select(PRICE_BOOK_COLUMNS.map((c) => `pb.${c}`))
    .select(knex.raw('(select count(distinct pp.product_id) from crm_product_prices pp join crm_products p on p.id = pp.product_id where pp.price_book_id = pb.id and p.deleted_at is null) as product_count'))
    .select(knex.raw('(select count(*) from crm_price_book_projects pbp where pbp.price_book_id = pb.id) as project_count'))
    .orderBy([{ column: 'pb.name' }, { column: 'pb.id' }])
    .limit(perPage).offset((current - 1) * perPage);
  return {
    rows: rows.map((r: Record<string, unknown>) => ({ ...normalize(r), product_count: Number(r.product_count), project_count: Number(r.project_count) })),
    meta: { page: current, pages, total: count, per_page: perPage },
  };
}

/** Reads and checks the price book form; every problem at once (422). */
export function readPriceBookInput(input: FormInput): PriceBookData {
  const errors = new FieldErrors();
  const data: PriceBookData = {
    name: errors.text(input, 'name', 'Name', { max: 200, required: true }),
    description: errors.text(input, 'description', 'Description', { max: 10_000 }),
    brand: errors.text(input, 'brand', 'Brand', { max: 100 }),
    product_version: errors.text(input, 'product_version', 'Product version', { max: 100 }),
    active: flag(input, 'active'),
  };
  if (errors.any) throw invalid('The price book was not saved: fix the fields marked below.', errors.errors);
  return data;
}

async function loadBook(trx: Knex, id: number): Promise<PriceBook> {
  return normalize(await trx('crm_price_books').where({ id }).first(PRICE_BOOK_COLUMNS));
}

/** Projects a manager may assign price books to: those with CRM on where they may view price books. */
export async function assignableProjects(ctx: CrmContext): Promise<HostProject[]> {
  return ctx.host.projectsWhere(ctx.user, 'view_price_books');
}

async function checkProjects(ctx: CrmContext, ids: number[]): Promise<HostProject[]> {
  const allowed = new Map((await assignableProjects(ctx)).map((p) => [p.id, p]));
  const projects = ids.map((id) => allowed.get(id));
  if (projects.some((p) => !p)) throw invalid('The price book was not saved: fix the fields marked below.', { project_ids: 'Choose projects from the list' });
  return projects as HostProject[];
}

export async function createPriceBook(ctx: CrmContext, data: PriceBookData, projectIds: number[] = []): Promise<PriceBook> {
  await requireManager(ctx);
  const projects = await checkProjects(ctx, [...new Set(projectIds)]);
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await trx('crm_price_books').insert({ ...data, author_id: ctx.user.id }).returning('id');
    const id = Number(row.id ?? row);
    if (projects.length) await trx('crm_price_book_projects').insert(projects.map((p) => ({ price_book_id: id, project_id: p.id })));
    const fields = changedFields({}, data, [...PRICE_BOOK_FIELDS]).filter((c) => c.new !== '' && c.new !== null);
    await journal(trx, {
      type: 'price_book', id, userId: ctx.user.id, action: 'create',
      changes: [...fields, ...(projects.length ? [{ field: 'projects', old: null, new: projects.map((p) => p.identifier).join(',') }] : [])],
    });
    return loadBook(trx, id);
  });
}

/** Saves an edit if nobody saved in between (`lockVersion`), journaling each changed field. */
export async function updatePriceBook(ctx: CrmContext, book: PriceBook, data: PriceBookData, lockVersion: number): Promise<PriceBook> {
  await requireManager(ctx);
  return ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_price_books').where({ id: book.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This price book');
    await journal(trx, { type: 'price_book', id: book.id, userId: ctx.user.id, action: 'update', changes: changedFields(book as unknown as Record<string, unknown>, data, [...PRICE_BOOK_FIELDS]) });
    return loadBook(trx, book.id);
  });
}

/** Soft delete: hidden everywhere; quotes that used its prices keep their own copies. */
export async function deletePriceBook(ctx: CrmContext, book: PriceBook, lockVersion: number | null = null): Promise<void> {
  await requireManager(ctx);
  await ctx.host.knex.transaction(async (trx) => {
    const q = trx('crm_price_books').where({ id: book.id }).whereNull('deleted_at');
    if (lockVersion !== null) q.where({ lock_version: lockVersion });
    const n = await q.update({ deleted_at: new Date().toISOString(), lock_version: book.lock_version + 1 });
    if (n === 0) throw lockVersion !== null ? staleRecord('This price book') : notFound('Price book');
    await journal(trx, { type: 'price_book', id: book.id, userId: ctx.user.id, action: 'delete', changes: [] });
  });
}

/**
 * "Update" of a price book (Q1): a new price book with the same fields (name + " (update)"), assigned projects
 * and every product price, pointing back at the old one. The old one is left as it was.
 */
export async function createPriceBookUpdate(ctx: CrmContext, book: PriceBook): Promise<PriceBook> {
  await requireManager(ctx);
  return ctx.host.knex.transaction(async (trx) => {
    const name = `${book.name} (update)`.slice(0, 200);
    const data = { name, description: book.description, brand: book.brand, product_version: book.product_version, active: book.active };
    const [row] = await trx('crm_price_books').insert({ ...data, previous_id: book.id, author_id: ctx.user.id }).returning('id');
    const id = Number(row.id ?? row);
    const projects = (await trx('crm_price_book_projects').where({ price_book_id: book.id }).pluck('project_id')).map(Number);
    if (projects.length) await trx('crm_price_book_projects').insert(projects.map((project_id) => ({ price_book_id: id, project_id })));
    const prices = await trx('crm_product_prices').where({ price_book_id: book.id }).select('product_id', 'unit_name', 'price_minor', 'currency');
    for (let i = 0; i < prices.length; i += 200) {
      await trx('crm_product_prices').insert(prices.slice(i, i + 200).map((p) => ({ ...p, price_book_id: id })));
    }
    await journal(trx, {
      type: 'price_book', id, userId: ctx.user.id, action: 'create',
      changes: [...changedFields({}, data, [...PRICE_BOOK_FIELDS]).filter((c) => c.new !== ''), { field: 'previous_id', old: null, new: book.id }],
      notes: `Update of price book #${book.id} with ${prices.length} price${prices.length === 1 ? '' : 's'}`,
    });
    await journal(trx, { type: 'price_book', id: book.id, userId: ctx.user.id, action: 'update', changes: [], notes: `Updated by price book #${id}` });
    return loadBook(trx, id);
  });
}

async function requireManager(ctx: CrmContext): Promise<void> {
  if (!(await canManagePriceBooks(ctx))) throw notFound('Price book');
}

// ---- assigned projects -----------------------------------------------------------------------------------------

export async function assignedProjectIds(knex: Knex, bookId: number): Promise<number[]> {
  return (await knex('crm_price_book_projects').where({ price_book_id: bookId }).pluck('project_id')).map(Number);
}

/** The projects a price book is assigned to, as the host knows them (a project since removed is skipped). */
export async function assignedProjects(ctx: CrmContext, bookId: number): Promise<HostProject[]> {
  const out: HostProject[] = [];
  for (const id of await assignedProjectIds(ctx.host.knex, bookId)) {
    const p = await ctx.host.projectById(id);
    if (p) out.push(p);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export async function assignProject(ctx: CrmContext, book: PriceBook, projectId: number): Promise<HostProject> {
  await requireManager(ctx);
  const project = (await assignableProjects(ctx)).find((p) => p.id === projectId);
  if (!project) throw invalid('Choose a project from the list.', { project_id: 'Choose a project from the list' });
  await ctx.host.knex.transaction(async (trx) => {
    const exists = await trx('crm_price_book_projects').where({ price_book_id: book.id, project_id: project.id }).first();
    if (exists) return;
    await trx('crm_price_book_projects').insert({ price_book_id: book.id, project_id: project.id });
    await journal(trx, { type: 'price_book', id: book.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'projects', old: null, new: `+${project.identifier}` }] });
  });
  return project;
}

export async function unassignProject(ctx: CrmContext, book: PriceBook, projectId: number): Promise<void> {
  await requireManager(ctx);
  // Asked before the transaction: the host may use another connection (SQLite has only one).
  const project = await ctx.host.projectById(projectId);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_price_book_projects').where({ price_book_id: book.id, project_id: projectId }).delete();
    if (n === 0) throw notFound('Assigned project');
    await journal(trx, { type: 'price_book', id: book.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'projects', old: project?.identifier ?? String(projectId), new: null }] });
  });
}

/**
 * First thing in the transaction of a change that puts a bundle into `priceBookId` (create, edit, move) or takes a
 * price out of it (remove it, change its unit or currency): on PostgreSQL, locks the price book's row until the
 * transaction ends. Two such changes of one book then run one after the other, and each checks what the other
 * committed — otherwise both pass their checks at the same instant and leave a bundle in a currency or unit its book
 * no longer prices. NO KEY UPDATE lets prices and bundles be added meanwhile (their foreign keys only share the row).
 * SQLite runs one writer at a time anyway.
 */
export async function lockPriceBookPrices(trx: Knex.Transaction, priceBookId: number): Promise<void> {
  if (isPg(trx)) await trx('crm_price_books').where({ id: priceBookId }).forNoKeyUpdate().first('id');
}

// ---- prices of a price book -------------------------------------------------------------------------------------

export interface PriceRow {
  id: number;
  price_book_id: number;
  product_id: number;
  unit_name: string;
  price_minor: number;
  currency: string;
}

export interface ProductPrices {
  product: { id: number; name: string; code: string; active: boolean; category_name: string | null };
  prices: PriceRow[];
}

export function priceRow(r: Record<string, unknown>): PriceRow {
  return {
    id: Number(r.id), price_book_id: Number(r.price_book_id), product_id: Number(r.product_id), unit_name: String(r.unit_name),
    price_minor: Number(r.price_minor), currency: String(r.currency),
  };
}

/** The price book's prices grouped by product (A–Z), each product's units in order. Deleted products are left out. */
export async function pricesOfBook(knex: Knex, bookId: number, onlyActiveProducts = false): Promise<ProductPrices[]> {
  const q = knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
    .leftJoin('crm_product_categories as c', 'c.id', 'p.category_id')
    .where('pp.price_book_id', bookId).whereNull('p.deleted_at')
    .select('pp.*', 'p.name as product_name', 'p.code as product_code', 'p.active as product_active', 'c.name as category_name')
    .orderBy([{ column: 'p.name' }, { column: 'p.id' }, { column: 'pp.unit_name' }, { column: 'pp.currency' }]);
  if (onlyActiveProducts) q.where('p.active', true);
  const groups = new Map<number, ProductPrices>();
  for (const r of await q) {
    const id = Number(r.product_id);
    let g = groups.get(id);
    if (!g) {
      g = { product: { id, name: String(r.product_name), code: String(r.product_code), active: Boolean(r.product_active), category_name: r.category_name ?? null }, prices: [] };
      groups.set(id, g);
    }
    g.prices.push(priceRow(r));
  }
  return [...groups.values()];
}
