import type { Request, Response } from 'express';
import { ANY_VIEW, projectsWithCrmView, type CrmContext, type CrmRoute } from '../http/guard';
import { CrmError, invalid, notFound } from '../http/errors';
import { isHtmx, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { idParam } from '../http/params';
import { SECTIONS, type CrmSection } from '../sections';
import { loadProjectSettings, setIncludeSubprojects } from '../services/settings';
import { paginate, pageParam } from '../services/pagination';
import {
  CHARTS_FOR, CHART_LABELS, FILTERS_FOR, FILTER_LABELS, KEPT_FILTER, MEASURE_LABELS, MODULE_DESCRIPTIONS, MODULE_LABELS, MODULE_TYPES, PEOPLE, PEOPLE_LABELS,
  PERIOD_KINDS, PERIOD_LABELS, readPeriodQuery, type ModuleConfig, type PeriodConfig, type RecordFilter,
} from '../services/dashboard-config';
import { todayUtc } from '../services/dates';
import { computeModule, dashboardEnv, filtersForViewer, type DashboardEnv, type ModuleData } from '../services/dashboard-data';
import { formatValue, moduleCsv, renderChart } from '../services/dashboard-charts';
import {
  baselinesOf, ensurePages, listTemplates, modulesOf, requireModule, requirePage, type Baseline, type DashboardModule, type DashboardPage,
} from '../services/dashboards';
import { text, type FormInput } from '../services/form';
import { formatMoney } from '../services/money';

/** The sections this user may open, with their URL at the current level (global or project). */
export async function visibleSections(ctx: CrmContext, base: string): Promise<(CrmSection & { url: string })[]> {
  const result: (CrmSection & { url: string })[] = [];
  for (const s of SECTIONS) {
    if (await ctx.host.can(ctx.user, s.permission, ctx.project)) result.push({ ...s, url: `${base}/${s.id.replace('_', '-')}` });
  }
  return result;
}

export const projectBase = (identifier: string) => `/projects/${encodeURIComponent(identifier)}/crm`;
/** `/crm` on the global overview, `/projects/<identifier>/crm` on a project's. */
export const levelBase = (ctx: CrmContext) => (ctx.project ? projectBase(ctx.project.identifier) : '/crm');
const projectIdOf = (ctx: CrmContext) => ctx.project?.id ?? null;

export const pageUrl = (ctx: CrmContext, pageId: number) => `${levelBase(ctx)}/pages/${pageId}`;
export const customizeUrl = (ctx: CrmContext, pageId: number) => `${pageUrl(ctx, pageId)}/customize`;
export const moduleUrl = (ctx: CrmContext, moduleId: number) => `${levelBase(ctx)}/modules/${moduleId}`;

/**
 * Who customizes an overview (D1): a project's pages need manage_crm_page in that project. The global pages
 * are shared by every project, so they need a global right — manage_crm_settings (S2), as for the other
 * CRM-wide settings — and never a project one: the host grants a project permission asked without a project
 * to anyone who holds it in some project.
 */
export const CUSTOMIZE_PROJECT_OVERVIEW = 'manage_crm_page';
export const CUSTOMIZE_GLOBAL_OVERVIEW = 'manage_crm_settings';
const customizePermission = (ctx: CrmContext) => (ctx.project ? CUSTOMIZE_PROJECT_OVERVIEW : CUSTOMIZE_GLOBAL_OVERVIEW);
export const canCustomize = (ctx: CrmContext) => ctx.host.can(ctx.user, customizePermission(ctx), ctx.project);

/** A route at both levels, `/crm…` and `/projects/:identifier/crm…`, under the same permission. */
const both = (path: string, route: Omit<CrmRoute, 'path'>): CrmRoute[] => [{ ...route, path: `/crm${path}` }, { ...route, path: `/projects/:identifier/crm${path}` }];

/** A route that customizes an overview, at both levels, each guarded by its level's right (`customizePermission`). */
export const customizeRoutes = (path: string, route: Omit<CrmRoute, 'path' | 'permission'>): CrmRoute[] => [
  { ...route, path: `/crm${path}`, permission: CUSTOMIZE_GLOBAL_OVERVIEW },
  { ...route, path: `/projects/:identifier/crm${path}`, permission: CUSTOMIZE_PROJECT_OVERVIEW },
];

export interface ModuleView {
  module: DashboardModule;
  /** The module's config as the viewer may read it: without filters on records they may not see (`filtersForViewer`). */
  config: ModuleConfig;
  data: ModuleData;
  chart: string;
  baselines: Baseline[];
  baseline: Baseline | null;
  url: string;
  /** Query string of the viewer's period and baseline choice, kept on links. */
  period: PeriodConfig;
  override: boolean;
}

/** What the period picker sent (period, days, from, to, baseline); a bad range answers 422. */
function viewerChoice(req: Request): { period: PeriodConfig | null; baselineId: number | null } {
  const query = req.query as FormInput;
  const raw = text(query, 'baseline');
  return { period: readPeriodQuery(query), baselineId: /^\d{1,10}$/.test(raw) ? Number(raw) : null };
}

async function moduleView(ctx: CrmContext, env: DashboardEnv, module: DashboardModule, baselines: Baseline[], choice: { period: PeriodConfig | null; baselineId: number | null }): Promise<ModuleView> {
  const data = await computeModule(env, module.type, module.config, choice.period);
  const [{ filters }] = await filtersForViewer(env, [module.config.filters]);
  const baseline = choice.baselineId ? baselines.find((b) => b.id === choice.baselineId) ?? null : null;
  const chart = renderChart(data, module.title, baseline ? { name: baseline.name, data: baseline.data } : null);
  return { module, config: { ...module.config, filters }, data, chart, baselines, baseline, url: moduleUrl(ctx, module.id), period: choice.period ?? module.config.period, override: choice.period !== null };
}

export function moduleJson(v: ModuleView) {
  return {
    ...v.data, id: v.module.id, title: v.module.title, position: v.module.position, config: v.config, lock_version: v.module.lock_version,
    url: v.url, csv_url: `${v.url}/data.csv`,
    baselines: v.baselines.map((b) => ({ id: b.id, name: b.name, created_at: b.created_at })),
    baseline: v.baseline ? { id: v.baseline.id, name: v.baseline.name, rows: v.baseline.data.rows, period: v.baseline.data.period } : null,
  };
}

/** Locals every view of a module card needs (helpers and choices for the period picker). */
export const CARD_HELPERS = { formatValue, formatMoney, PERIOD_KINDS, PERIOD_LABELS, MODULE_LABELS };

async function globalProjects(ctx: CrmContext, req: Request) {
  const all = [...(await projectsWithCrmView(ctx))].sort((a, b) => a.name.localeCompare(b.name));
  return paginate(all, pageParam(req), 25);
}

export interface PageOptions {
  customize?: boolean;
  status?: number;
  message?: string | null;
  notice?: string | null;
  errors?: Record<string, string>;
  values?: FormInput;
  trigger?: string;
}

/**
 * An overview page (D1): the tabs of this level's pages, the chosen page's modules with their charts, and on
 * the project level the project's scope and subproject switch (P4); on the global level the CRM projects.
 */
export async function overviewPage(ctx: CrmContext, req: Request, pageId: number | null, options: PageOptions = {}): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const base = levelBase(ctx);
  const pages = await ensurePages(knex, projectIdOf(ctx), ctx.user.id);
  const page: DashboardPage = pageId === null ? pages[0] : await requirePage(knex, projectIdOf(ctx), pageId);
  const canManage = await canCustomize(ctx);
  if (options.customize && !canManage) throw notFound();
  const choice = options.customize ? { period: null, baselineId: null } : viewerChoice(req);
  const env = await dashboardEnv(ctx, base, todayUtc());
  const modules = await modulesOf(knex, page.id);
  const baselines = await baselinesOf(knex, modules.map((m) => m.id), ctx.user);
  // Which records the modules' filters name that the viewer may see, for all of them at once rather than per module.
  await filtersForViewer(env, modules.map((m) => m.config.filters));
  const views: ModuleView[] = [];
  for (const m of modules) views.push(await moduleView(ctx, env, m, baselines.get(m.id) ?? [], { period: choice.period, baselineId: null }));
  const sections = await visibleSections(ctx, base);
  const canSettings = await ctx.host.can(ctx.user, 'manage_crm_settings');
  const canTargets = await ctx.host.can(ctx.user, 'manage_user_targets');
  const pagesJson = pages.map((p) => ({ id: p.id, name: p.name, position: p.position, url: pageUrl(ctx, p.id) }));
  const common = {
    base, pages, page, views, canManage, canSettings, canTargets, sections, current: 'overview', customize: Boolean(options.customize),
    pageUrl: (id: number) => pageUrl(ctx, id), customizeUrl: (id: number) => customizeUrl(ctx, id), project: ctx.project,
    message: options.message ?? null, notice: options.notice ?? null, errors: options.errors ?? {}, values: options.values ?? {},
    moduleTypes: MODULE_TYPES, moduleDescriptions: MODULE_DESCRIPTIONS, templates: options.customize ? await listTemplates(knex) : [],
    reporting: env.reporting, userType: env.userType, ...CARD_HELPERS,
  };
  const pageJson = { page: { id: page.id, name: page.name, lock_version: page.lock_version, url: pageUrl(ctx, page.id) }, pages: pagesJson, modules: views.map(moduleJson), reporting_currency: env.reporting };
  const sectionsJson = sections.map(({ id, label, url, issue }) => ({ id, label, url, available: !issue }));
  if (!ctx.project) {
    const projects = await globalProjects(ctx, req);
    return {
      title: options.customize ? 'CRM · Customize' : 'CRM', view: 'overview/global', status: options.status, trigger: options.trigger,
      locals: { ...common, projects },
      json: { ...pageJson, projects: projects.items.map((p) => ({ id: p.id, identifier: p.identifier, name: p.name, url: projectBase(p.identifier) })), pagination: projects.meta, sections: sectionsJson },
    };
  }
  const project = ctx.project;
  const settings = await loadProjectSettings(knex, project.id);
  const subprojects = await ctx.host.subprojects(project);
  const scope = (await ctx.scopeProjects('view_opportunities')).concat(await ctx.scopeProjects('view_accounts'));
  const inScope = [...new Map(scope.map((p) => [p.id, p])).values()];
  return {
    title: `${project.name} · CRM`, view: 'overview/project', project, status: options.status, trigger: options.trigger,
    locals: { ...common, settings, subprojects, inScope },
    json: {
      ...pageJson,
      project: { id: project.id, identifier: project.identifier, name: project.name },
      settings: { include_subprojects: settings.includeSubprojects, lock_version: settings.lockVersion },
      projects_in_scope: inScope.map((p) => ({ id: p.id, identifier: p.identifier, name: p.name })),
      sections: sectionsJson,
    },
  };
}

/** One module on a page of its own: the chart, the table, the period picker, baselines; htmx gets the card alone. */
export async function modulePage(ctx: CrmContext, req: Request, moduleId: number, options: PageOptions = {}): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const { module, page } = await requireModule(knex, projectIdOf(ctx), moduleId);
  const base = levelBase(ctx);
  const env = await dashboardEnv(ctx, base, todayUtc());
  const baselines = (await baselinesOf(knex, [module.id], ctx.user)).get(module.id) ?? [];
  const view = await moduleView(ctx, env, module, baselines, options.status === 422 ? { period: null, baselineId: null } : viewerChoice(req));
  const canManage = await canCustomize(ctx);
  const card = isHtmx(req) && req.get('HX-Target') === `module-${module.id}`;
  return {
    title: `${module.title} · CRM`,
    view: card ? 'overview/module-card' : 'overview/module',
    project: ctx.project, status: options.status, trigger: options.trigger,
    locals: {
      v: view, page, base, canManage, customize: false, project: ctx.project, pageUrl: pageUrl(ctx, page.id), sections: await visibleSections(ctx, base),
      current: 'overview', message: options.message ?? null, notice: options.notice ?? null, errors: options.errors ?? {}, values: options.values ?? {},
      detail: true, ...CARD_HELPERS,
    },
    json: moduleJson(view),
  };
}

/** The module edit form (title, period, filters, chart and the type's options). */
export async function moduleFormPage(ctx: CrmContext, moduleId: number, options: PageOptions = {}): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const { module, page } = await requireModule(knex, projectIdOf(ctx), moduleId);
  const c = module.config;
  // A filter on a record the editor may not see is shown as kept, without its id, and saved as it is (KEPT_FILTER).
  const [{ filters: readable, hidden }] = await filtersForViewer({ ctx, memo: new Map() }, [c.filters]);
  const projects = ctx.project ? await ctx.scopeProjects('view_opportunities') : await ctx.host.projectsWhere(ctx.user, 'view_opportunities');
  // So is a project the editor may see that the select does not offer (one where they may only view accounts, or
  // outside this overview's project): without an option for it the browser would send "Any" and a save drop it.
  const kept: Partial<Record<RecordFilter, string>> = { ...hidden };
  if (typeof readable.project_id === 'number' && !projects.some((p) => p.id === readable.project_id)) {
    kept.project_id = 'a project not listed here';
  }
  const values: FormInput = {
    title: module.title, period: c.period.kind, days: c.period.days ? String(c.period.days) : '', from: c.period.from ?? '', to: c.period.to ?? '',
    chart: c.chart, people: c.people, group: c.group ?? '', measure: c.measure ?? '', limit: c.limit ? String(c.limit) : '', expiring_days: c.expiring_days ? String(c.expiring_days) : '',
    lock_version: String(module.lock_version),
    ...Object.fromEntries(Object.entries(readable).map(([k, v]) => [`filter_${k}`, String(v)])),
    ...Object.fromEntries(Object.keys(kept).map((k) => [`filter_${k}`, KEPT_FILTER])),
    ...(options.values ?? {}),
  };
  const users = (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name }));
  const statuses = await knex('crm_opportunity_statuses').orderBy('position').select('id', 'name');
  const categories = module.type === 'activities'
    ? await knex('crm_activity_categories').orderBy('position').select('id', 'name')
    : await knex('crm_product_categories').orderBy('name').select('id', 'name');
  return {
    title: `Edit module · ${module.title}`, view: 'overview/module-form', project: ctx.project, status: options.status,
    locals: {
      module, page, values, errors: options.errors ?? {}, message: options.message ?? null, action: moduleUrl(ctx, module.id), back: customizeUrl(ctx, page.id),
      charts: CHARTS_FOR[module.type], chartLabels: CHART_LABELS, filters: FILTERS_FOR[module.type], filterLabels: FILTER_LABELS, people: PEOPLE, peopleLabels: PEOPLE_LABELS,
      measureLabels: MEASURE_LABELS, users, projects, statuses, categories, keptFilters: kept, keptFilter: KEPT_FILTER, project: ctx.project, ...CARD_HELPERS,
    },
    json: { module: { id: module.id, type: module.type, title: module.title, config: { ...c, filters: readable }, lock_version: module.lock_version } },
  };
}

/** A GET whose period is malformed answers 422 with the message on the page it came from, not a bare error. */
async function withViewerChoice(ctx: CrmContext, req: Request, res: Response, render: (options: PageOptions) => Promise<PageResponse>): Promise<void> {
  try {
    viewerChoice(req);
  } catch (err) {
    if (!(err instanceof CrmError) || err.status !== 422) throw err;
    if (wantsJson(req)) throw err;
    return respond(ctx.host, req, res, await render({ status: 422, message: err.message, errors: err.fieldErrors }));
  }
  await respond(ctx.host, req, res, await render({}));
}

/** Sections whose issue has not landed answer with a clearly marked placeholder, behind their permission. */
function placeholderRoutes(): CrmRoute[] {
  return SECTIONS.filter((s) => s.issue).flatMap((section): CrmRoute[] => {
    const handler = async (ctx: CrmContext, req: Request, res: Response) => {
      const base = levelBase(ctx);
      await respond(ctx.host, req, res, {
        title: section.label,
        view: 'placeholder',
        project: ctx.project,
        locals: { section, sections: await visibleSections(ctx, base), base, current: section.id, project: ctx.project },
        json: { section: section.id, available: false, coming_with: section.issue, items: [] },
      });
    };
    const slug = section.id.replace('_', '-');
    return [
      { method: 'get', path: `/crm/${slug}`, permission: section.permission, handler },
      { method: 'get', path: `/projects/:identifier/crm/${slug}`, permission: section.permission, handler },
    ];
  });
}

export function overviewRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm', permission: ANY_VIEW,
      handler: (ctx, req, res) => withViewerChoice(ctx, req, res, (o) => overviewPage(ctx, req, null, o)),
    },
    {
      method: 'get', path: '/projects/:identifier/crm', permission: ANY_VIEW,
      handler: (ctx, req, res) => withViewerChoice(ctx, req, res, (o) => overviewPage(ctx, req, null, o)),
    },
    ...both('/pages/:pageId', {
      method: 'get', permission: ANY_VIEW,
      handler: (ctx, req, res) => withViewerChoice(ctx, req, res, (o) => overviewPage(ctx, req, idParam(req, 'pageId'), o)),
    }),
    ...customizeRoutes('/pages/:pageId/customize', {
      method: 'get',
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await overviewPage(ctx, req, idParam(req, 'pageId'), { customize: true })),
    }),
    ...both('/modules/:moduleId', {
      method: 'get', permission: ANY_VIEW,
      handler: (ctx, req, res) => withViewerChoice(ctx, req, res, (o) => modulePage(ctx, req, idParam(req, 'moduleId'), o)),
    }),
    ...both('/modules/:moduleId/data.csv', {
      // The module's table as CSV, with the viewer's period and baseline choice.
      method: 'get', permission: ANY_VIEW,
      async handler(ctx, req, res) {
        const { module } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        const env = await dashboardEnv(ctx, levelBase(ctx), todayUtc());
        const baselines = (await baselinesOf(ctx.host.knex, [module.id], ctx.user)).get(module.id) ?? [];
        const view = await moduleView(ctx, env, module, baselines, viewerChoice(req));
        const name = module.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'module';
        res.set('Content-Disposition', `attachment; filename="${name}-${view.data.period.from}-${view.data.period.to}.csv"`);
        res.set('X-Content-Type-Options', 'nosniff');
        res.type('text/csv; charset=utf-8').send(moduleCsv(view.data, view.baseline ? { name: view.baseline.name, data: view.baseline.data } : null));
      },
    }),
    ...customizeRoutes('/modules/:moduleId/edit', {
      method: 'get',
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await moduleFormPage(ctx, idParam(req, 'moduleId'))),
    }),
    {
      // P4: the sidebar switch "Include subprojects' records", an htmx action with a plain-form fallback.
      method: 'post', path: '/projects/:identifier/crm/settings/subprojects', permission: 'manage_crm_page',
      handler: async (ctx, req, res) => {
        const project = ctx.project;
        if (!project) throw notFound('Project');
        const value = String(req.body?.include_subprojects ?? '');
        if (value !== '1' && value !== '0') throw invalid('include_subprojects must be 1 or 0.', { include_subprojects: 'must be 1 or 0' });
        const lockVersion = Number(req.body?.lock_version);
        if (!Number.isInteger(lockVersion) || lockVersion < 0) throw invalid('lock_version is missing; reload the page.', { lock_version: 'missing' });
        await setIncludeSubprojects(ctx.host.knex, ctx.user, project.id, value === '1', lockVersion);
        await respondAfterChange(ctx.host, req, res, projectBase(project.identifier), async () => ({
          ...(await overviewPage(ctx, req, null)), trigger: 'crm:projectSettingsChanged',
        }));
      },
    },
    ...placeholderRoutes(),
  ];
}
