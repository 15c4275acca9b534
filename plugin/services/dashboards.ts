import type { Knex } from 'knex';
import type { HostUser } from '../host';
import type { CrmContext } from '../http/guard';
import { invalid, notFound, staleRecord } from '../http/errors';
import {
  MODULE_LABELS, defaultConfig, isModuleType, parseStoredConfig, readModuleInput, type ModuleConfig, type ModuleType, type RecordFilter,
} from './dashboard-config';
import { filtersForViewer, type ModuleData } from './dashboard-data';
import { FieldErrors, text, type FormInput } from './form';
import { changedFields, journal } from './journal';
import { isUniqueViolation } from './relations';

/**
 * Overview pages of modules (SPEC D1), page templates and baselines (D4). A page belongs to a project, or to the
 * global overview (project_id null). Pages are created lazily: the first view of an overview without pages
 * creates its defaults. Changes are journaled on the page (type `dashboard_page`).
 */

export const PAGE_JOURNAL = 'dashboard_page';

export interface DashboardPage { id: number; project_id: number | null; name: string; position: number; lock_version: number }
export interface DashboardModule { id: number; page_id: number; type: ModuleType; title: string; position: number; config: ModuleConfig; lock_version: number }
export interface DashboardTemplate { id: number; name: string; modules: ModuleSpec[]; author_id: number | null; created_at: string }
export interface Baseline { id: number; module_id: number; name: string; data: ModuleData; author_id: number | null; created_at: string }

export interface ModuleSpec { type: ModuleType; title?: string; config?: Partial<ModuleConfig> }

/** A new project's CRM overview: the pipeline, the forecast, who won what, activities and targets. */
export const DEFAULT_PROJECT_PAGE: { name: string; modules: ModuleSpec[] } = {
  name: 'Overview',
  modules: [
    { type: 'funnel' }, { type: 'forecast' }, { type: 'won_by_person' }, { type: 'activities' }, { type: 'targets' },
  ],
};

/** The global overview's tabs (as in the reference CRM: results, statistics & data, pending payments, product details). */
export const DEFAULT_GLOBAL_PAGES: { name: string; modules: ModuleSpec[] }[] = [
  { name: 'Results', modules: [{ type: 'funnel' }, { type: 'revenue' }, { type: 'team' }, { type: 'targets' }] },
  { name: 'Statistics & data', modules: [{ type: 'activities' }, { type: 'activities', title: 'Activities per month', config: { group: 'month', chart: 'line' } }, { type: 'leaderboard' }, { type: 'won_by_person' }] },
  { name: 'Pending payments', modules: [{ type: 'contracts' }, { type: 'forecast' }] },
  { name: 'Product details', modules: [{ type: 'won_by_product' }, { type: 'contracts', title: 'Subscriptions by category' }] },
];

const now = () => new Date().toISOString();
const whereProject = (q: Knex.QueryBuilder, projectId: number | null) => (projectId === null ? q.whereNull('project_id') : q.where('project_id', projectId));

function toPage(r: Record<string, unknown>): DashboardPage {
  return { id: Number(r.id), project_id: r.project_id === null ? null : Number(r.project_id), name: String(r.name), position: Number(r.position), lock_version: Number(r.lock_version) };
}

function toModule(r: Record<string, unknown>): DashboardModule {
  const type = String(r.type);
  if (!isModuleType(type)) throw new Error(`Unknown module type ${type}`);
  return { id: Number(r.id), page_id: Number(r.page_id), type, title: String(r.title), position: Number(r.position), config: parseStoredConfig(type, String(r.config)), lock_version: Number(r.lock_version) };
}

function specConfig(spec: ModuleSpec): string {
  const def = defaultConfig(spec.type);
  return JSON.stringify({ ...def, ...(spec.config ?? {}), filters: { ...(spec.config?.filters ?? {}) } });
}

async function insertPage(trx: Knex, userId: number | null, projectId: number | null, name: string, position: number, modules: ModuleSpec[]): Promise<DashboardPage> {
  const [row] = await trx('crm_dashboard_pages').insert({ project_id: projectId, name, position, lock_version: 0, created_at: now(), updated_at: now() }).returning('id');
  const id = Number(row.id ?? row);
  if (modules.length) {
    await trx('crm_dashboard_modules').insert(modules.map((m, i) => ({
      page_id: id, type: m.type, title: m.title ?? MODULE_LABELS[m.type], position: i + 1, config: specConfig(m), lock_version: 0, created_at: now(), updated_at: now(),
    })));
  }
  await journal(trx as Knex.Transaction, { type: PAGE_JOURNAL, id, userId, action: 'create', changes: [{ field: 'name', old: null, new: name }] });
  return { id, project_id: projectId, name, position, lock_version: 0 };
}

export async function listPages(knex: Knex, projectId: number | null): Promise<DashboardPage[]> {
  const q = knex('crm_dashboard_pages').orderBy([{ column: 'position' }, { column: 'id' }]);
  whereProject(q, projectId);
  return (await q).map(toPage);
}

/** The overview's pages, creating its defaults first when it has none yet (a project that just got CRM). */
export async function ensurePages(knex: Knex, projectId: number | null, userId: number | null = null): Promise<DashboardPage[]> {
  const pages = await listPages(knex, projectId);
  if (pages.length) return pages;
  await knex.transaction(async (trx) => {
    const again = trx('crm_dashboard_pages').first('id');
    whereProject(again, projectId);
    if (await again) return;
    const defaults = projectId === null ? DEFAULT_GLOBAL_PAGES : [DEFAULT_PROJECT_PAGE];
    for (const [i, p] of defaults.entries()) await insertPage(trx, userId, projectId, p.name, i + 1, p.modules);
  });
  return listPages(knex, projectId);
}

export async function requirePage(knex: Knex, projectId: number | null, pageId: number): Promise<DashboardPage> {
  if (!Number.isInteger(pageId) || pageId <= 0) throw notFound('Page');
  const q = knex('crm_dashboard_pages').where({ id: pageId }).first();
  whereProject(q, projectId);
  const row = await q;
  if (!row) throw notFound('Page');
  return toPage(row);
}

export async function modulesOf(knex: Knex, pageId: number): Promise<DashboardModule[]> {
  return (await knex('crm_dashboard_modules').where({ page_id: pageId }).orderBy([{ column: 'position' }, { column: 'id' }])).map(toModule);
}

/** A module of a page at this level (the project in the URL, or the global overview); anything else is 404. */
export async function requireModule(knex: Knex, projectId: number | null, moduleId: number): Promise<{ module: DashboardModule; page: DashboardPage }> {
  if (!Number.isInteger(moduleId) || moduleId <= 0) throw notFound('Module');
  const row = await knex('crm_dashboard_modules').where({ id: moduleId }).first();
  if (!row) throw notFound('Module');
  const page = await knex('crm_dashboard_pages').where({ id: row.page_id }).first();
  if (!page || (page.project_id === null ? null : Number(page.project_id)) !== projectId) throw notFound('Module');
  return { module: toModule(row), page: toPage(page) };
}

function readName(input: FormInput, label = 'Name'): string {
  const errors = new FieldErrors();
  const name = errors.text(input, 'name', label, { max: 100, required: true });
  if (errors.any) throw invalid(`The ${label.toLowerCase()} was not saved: fix the field marked below.`, errors.errors);
  return name;
}

export async function createPage(knex: Knex, user: HostUser, projectId: number | null, input: FormInput): Promise<DashboardPage> {
  const name = readName(input);
  return knex.transaction(async (trx) => {
    const q = trx('crm_dashboard_pages').max({ m: 'position' });
    whereProject(q, projectId);
    const [{ m }] = await q;
    return insertPage(trx, user.id, projectId, name, Number(m ?? 0) + 1, []);
  });
}

export async function renamePage(knex: Knex, user: HostUser, page: DashboardPage, input: FormInput): Promise<DashboardPage> {
  const name = readName(input);
  const lockVersion = Number(text(input, 'lock_version'));
  if (!Number.isInteger(lockVersion) || lockVersion < 0) throw invalid('lock_version is missing; reload the page.', { lock_version: 'missing' });
  return knex.transaction(async (trx) => {
    const n = await trx('crm_dashboard_pages').where({ id: page.id, lock_version: lockVersion }).update({ name, lock_version: lockVersion + 1, updated_at: now() });
    if (!n) throw staleRecord('The page');
    await journal(trx, { type: PAGE_JOURNAL, id: page.id, userId: user.id, action: 'update', changes: changedFields({ name: page.name }, { name }, ['name']) });
    return { ...page, name, lock_version: lockVersion + 1 };
  });
}

export async function deletePage(knex: Knex, user: HostUser, page: DashboardPage): Promise<void> {
  await knex.transaction(async (trx) => {
    const q = trx('crm_dashboard_pages').count({ n: '*' });
    whereProject(q, page.project_id);
    const [{ n }] = await q;
    if (Number(n) <= 1) throw invalid('An overview keeps at least one page: add another page before deleting this one.', { page: 'last page' });
    await trx('crm_dashboard_pages').where({ id: page.id }).delete();
    await journal(trx, { type: PAGE_JOURNAL, id: page.id, userId: user.id, action: 'delete', changes: [{ field: 'name', old: page.name, new: null }] });
  });
}

export async function addModule(knex: Knex, user: HostUser, page: DashboardPage, input: FormInput): Promise<DashboardModule> {
  const type = text(input, 'type');
  if (!isModuleType(type)) throw invalid('Choose the kind of module to add.', { type: 'is not a module type' });
  const errors = new FieldErrors();
  const title = errors.text(input, 'title', 'Title', { max: 200 }) || MODULE_LABELS[type];
  if (errors.any) throw invalid('The module was not added: fix the field marked below.', errors.errors);
  return knex.transaction(async (trx) => {
    const [{ m }] = await trx('crm_dashboard_modules').where({ page_id: page.id }).max({ m: 'position' });
    const position = Number(m ?? 0) + 1;
    const config = JSON.stringify(defaultConfig(type));
    const [row] = await trx('crm_dashboard_modules').insert({ page_id: page.id, type, title, position, config, lock_version: 0, created_at: now(), updated_at: now() }).returning('id');
    const id = Number(row.id ?? row);
    await journal(trx, { type: PAGE_JOURNAL, id: page.id, userId: user.id, action: 'update', changes: [{ field: `module ${id}`, old: null, new: `${title} (${type})` }] });
    return toModule({ id, page_id: page.id, type, title, position, config, lock_version: 0 });
  });
}

/** What the module form says of a record filter newly set to a record the editor may not see. */
const CHOOSE_VISIBLE: Record<RecordFilter, string> = { account_id: 'Choose an account you can see', project_id: 'Choose a project you can see' };

export async function updateModule(ctx: CrmContext, module: DashboardModule, input: FormInput): Promise<DashboardModule> {
  const { host: { knex }, user } = ctx;
  const { title, config } = readModuleInput(module.type, module.config, input);
  // As on the opportunity form: a record filter kept as it was passes even when this editor cannot see it (another
  // customizer set it); one newly set must name a record they may see.
  const [{ hidden }] = await filtersForViewer({ ctx, memo: new Map() }, [config.filters]);
  const newlyHidden = (Object.keys(hidden) as RecordFilter[]).filter((field) => config.filters[field] !== module.config.filters[field]);
  if (newlyHidden.length) {
    throw invalid('The module was not saved: fix the fields marked below.', Object.fromEntries(newlyHidden.map((field) => [`filter_${field}`, CHOOSE_VISIBLE[field]])));
  }
  const lockVersion = Number(text(input, 'lock_version'));
  if (!Number.isInteger(lockVersion) || lockVersion < 0 || text(input, 'lock_version') === '') throw invalid('lock_version is missing; reload the page.', { lock_version: 'missing' });
  return knex.transaction(async (trx) => {
    const n = await trx('crm_dashboard_modules').where({ id: module.id, lock_version: lockVersion })
      .update({ title, config: JSON.stringify(config), lock_version: lockVersion + 1, updated_at: now() });
    if (!n) throw staleRecord('The module');
    await journal(trx, {
      type: PAGE_JOURNAL, id: module.page_id, userId: user.id, action: 'update',
      changes: changedFields({ [`module ${module.id} title`]: module.title, [`module ${module.id} config`]: JSON.stringify(module.config) },
        { [`module ${module.id} title`]: title, [`module ${module.id} config`]: JSON.stringify(config) }, [`module ${module.id} title`, `module ${module.id} config`]),
    });
    return { ...module, title, config, lock_version: lockVersion + 1 };
  });
}

export async function deleteModule(knex: Knex, user: HostUser, module: DashboardModule): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx('crm_dashboard_modules').where({ id: module.id }).delete();
    await journal(trx, { type: PAGE_JOURNAL, id: module.page_id, userId: user.id, action: 'update', changes: [{ field: `module ${module.id}`, old: `${module.title} (${module.type})`, new: null }] });
  });
}

/** Moves a module one place up or down on its page (positions are renumbered 1…n). */
export async function moveModule(knex: Knex, user: HostUser, module: DashboardModule, direction: string): Promise<void> {
  if (direction !== 'up' && direction !== 'down') throw invalid('Direction must be up or down.', { direction: 'must be up or down' });
  await knex.transaction(async (trx) => {
    const ids: number[] = (await trx('crm_dashboard_modules').where({ page_id: module.page_id }).orderBy([{ column: 'position' }, { column: 'id' }]).select('id')).map((r) => Number(r.id));
    const i = ids.indexOf(module.id);
    const j = direction === 'up' ? i - 1 : i + 1;
    if (i < 0 || j < 0 || j >= ids.length) return;
    [ids[i], ids[j]] = [ids[j], ids[i]];
    for (const [k, id] of ids.entries()) await trx('crm_dashboard_modules').where({ id }).update({ position: k + 1 });
    await journal(trx, { type: PAGE_JOURNAL, id: module.page_id, userId: user.id, action: 'update', changes: [{ field: `module ${module.id} position`, old: i + 1, new: j + 1 }] });
  });
}

// ---- Page templates ----

function toTemplate(r: Record<string, unknown>): DashboardTemplate {
  let modules: ModuleSpec[] = [];
  try {
    modules = (JSON.parse(String(r.modules)) as ModuleSpec[]).filter((m) => isModuleType(m.type));
  } catch { /* a broken template applies as an empty page */ }
  return { id: Number(r.id), name: String(r.name), modules, author_id: r.author_id === null ? null : Number(r.author_id), created_at: String(r.created_at) };
}

export async function listTemplates(knex: Knex): Promise<DashboardTemplate[]> {
  return (await knex('crm_dashboard_templates').orderBy('name')).map(toTemplate);
}

export async function requireTemplate(knex: Knex, id: number): Promise<DashboardTemplate> {
  const row = Number.isInteger(id) && id > 0 ? await knex('crm_dashboard_templates').where({ id }).first() : null;
  if (!row) throw notFound('Template');
  return toTemplate(row);
}

/** Saves a page's modules (type, title, config) as a named template. Project filters are left out: they name one project. */
export async function saveTemplate(knex: Knex, user: HostUser, page: DashboardPage, input: FormInput): Promise<DashboardTemplate> {
  const name = readName(input, 'Template name');
  const modules: ModuleSpec[] = (await modulesOf(knex, page.id)).map((m) => {
    const { project_id: _project, ...filters } = m.config.filters;
    return { type: m.type, title: m.title, config: { ...m.config, filters } };
  });
  try {
    const [row] = await knex('crm_dashboard_templates').insert({ name, modules: JSON.stringify(modules), author_id: user.id, created_at: now() }).returning('id');
    return { id: Number(row.id ?? row), name, modules, author_id: user.id, created_at: now() };
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid('There is already a template with this name.', { name: 'is taken' });
    throw err;
  }
}

export async function deleteTemplate(knex: Knex, template: DashboardTemplate): Promise<void> {
  await knex('crm_dashboard_templates').where({ id: template.id }).delete();
}

/** Applies a template to an overview: a new page named after the template, with its modules. */
export async function applyTemplate(knex: Knex, user: HostUser, template: DashboardTemplate, projectId: number | null): Promise<DashboardPage> {
  await ensurePages(knex, projectId, user.id);
  return knex.transaction(async (trx) => {
    const q = trx('crm_dashboard_pages').max({ m: 'position' });
    whereProject(q, projectId);
    const [{ m }] = await q;
    const page = await insertPage(trx, user.id, projectId, template.name.slice(0, 100), Number(m ?? 0) + 1, template.modules);
    await journal(trx, { type: PAGE_JOURNAL, id: page.id, userId: user.id, action: 'update', changes: [], notes: `From template "${template.name}"` });
    return page;
  });
}

// ---- Baselines (D4): the computed data, frozen as JSON ----

function toBaseline(r: Record<string, unknown>): Baseline {
  return {
    id: Number(r.id), module_id: Number(r.module_id), name: String(r.name), data: JSON.parse(String(r.data)) as ModuleData,
    author_id: r.author_id === null ? null : Number(r.author_id), created_at: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
  };
}

/**
 * The baselines `viewer` took on these modules. A baseline holds numbers counted under its author's visibility
 * (their projects, roles, field rules, "my numbers"): shown to anyone else, it would count records they may not
 * see (S3), so each is its author's alone.
 */
export async function baselinesOf(knex: Knex, moduleIds: number[], viewer: HostUser): Promise<Map<number, Baseline[]>> {
  const out = new Map<number, Baseline[]>();
  if (!moduleIds.length) return out;
  for (const r of await knex('crm_baselines').whereIn('module_id', moduleIds).where({ author_id: viewer.id }).orderBy('id')) {
    const b = toBaseline(r);
    out.set(b.module_id, [...(out.get(b.module_id) ?? []), b]);
  }
  return out;
}

export async function createBaseline(knex: Knex, user: HostUser, module: DashboardModule, input: FormInput, data: ModuleData): Promise<Baseline> {
  const name = readName(input, 'Baseline name');
  return knex.transaction(async (trx) => {
    const created = now();
    const [row] = await trx('crm_baselines').insert({ module_id: module.id, name, data: JSON.stringify(data), author_id: user.id, created_at: created }).returning('id');
    const id = Number(row.id ?? row);
    await journal(trx, { type: PAGE_JOURNAL, id: module.page_id, userId: user.id, action: 'update', changes: [{ field: `module ${module.id} baseline`, old: null, new: name }] });
    return { id, module_id: module.id, name, data, author_id: user.id, created_at: created };
  });
}

/** One of `viewer`'s baselines on the module (see baselinesOf); another user's answers 404. */
export async function requireBaseline(knex: Knex, module: DashboardModule, id: number, viewer: HostUser): Promise<Baseline> {
  const row = Number.isInteger(id) && id > 0 ? await knex('crm_baselines').where({ id, module_id: module.id, author_id: viewer.id }).first() : null;
  if (!row) throw notFound('Baseline');
  return toBaseline(row);
}

export async function deleteBaseline(knex: Knex, user: HostUser, module: DashboardModule, baseline: Baseline): Promise<void> {
  await knex.transaction(async (trx) => {
    await trx('crm_baselines').where({ id: baseline.id }).delete();
    await journal(trx, { type: PAGE_JOURNAL, id: module.page_id, userId: user.id, action: 'update', changes: [{ field: `module ${module.id} baseline`, old: baseline.name, new: null }] });
  });
}
