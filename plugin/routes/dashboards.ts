import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, forbidden, invalid, notFound } from '../http/errors';
import { isHtmx, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { readPeriodQuery } from '../services/dashboard-config';
import { todayUtc } from '../services/dates';
import { computeModule, dashboardEnv, filtersForViewer } from '../services/dashboard-data';
import {
  addModule, applyTemplate, createBaseline, createPage, deleteBaseline, deleteModule, deletePage, deleteTemplate, listTemplates, moveModule,
  renamePage, requireBaseline, requireModule, requirePage, requireTemplate, saveTemplate, updateModule, type DashboardPage,
} from '../services/dashboards';
import { text, type FormInput } from '../services/form';
import {
  CUSTOMIZE_GLOBAL_OVERVIEW, CUSTOMIZE_PROJECT_OVERVIEW, customizeRoutes, customizeUrl, levelBase, moduleFormPage, modulePage, moduleUrl, overviewPage,
  projectBase, visibleSections, type PageOptions,
} from './overview';

/**
 * Customizing overview pages (D1) and baselines (D4) needs the right of the overview's level (`customizeRoutes`).
 * The templates pages serve whoever customizes some overview; the overview a template is applied to is checked
 * there, against its own right.
 */
const CUSTOMIZES_ANY_OVERVIEW = [CUSTOMIZE_PROJECT_OVERVIEW, CUSTOMIZE_GLOBAL_OVERVIEW];
const CHANGED = 'crm:overviewChanged';
const projectIdOf = (ctx: CrmContext) => ctx.project?.id ?? null;

interface Done { location: string; notice: string; render: (options: PageOptions) => Promise<PageResponse> }

/**
 * Runs a change. A 422 or 409 answers with the page it came from (the user's input and the message); afterwards
 * htmx gets the re-rendered page with an HX-Trigger, a plain form a 303.
 */
async function change(ctx: CrmContext, req: Request, res: Response, onError: (options: PageOptions) => Promise<PageResponse>, run: () => Promise<Done>): Promise<void> {
  let done: Done;
  try {
    done = await run();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409) && !wantsJson(req)) {
      return respond(ctx.host, req, res, await onError({ status: err.status, message: err.message, errors: err.fieldErrors, values: formBody(req) }));
    }
    throw err;
  }
  // htmx swaps the page in place: the address bar follows to where a plain form would have been redirected.
  if (isHtmx(req)) res.set('HX-Push-Url', done.location);
  await respondAfterChange(ctx.host, req, res, done.location, () => done.render({ notice: done.notice, trigger: CHANGED }));
}

const customizeAgain = (ctx: CrmContext, req: Request, pageId: number | null) => (o: PageOptions) => overviewPage(ctx, req, pageId, { ...o, customize: true });

const canCustomizeGlobal = (ctx: CrmContext) => ctx.host.can(ctx.user, CUSTOMIZE_GLOBAL_OVERVIEW);

/**
 * The templates as this user may read them: a module filter on a record they may not see (saved from another
 * customizer's page) is left out of its config, as on the overview (`filtersForViewer`), and kept in the template.
 */
async function readableTemplates(ctx: CrmContext) {
  const templates = await listTemplates(ctx.host.knex);
  const specs = templates.flatMap((t) => t.modules);
  const readable = await filtersForViewer({ ctx, memo: new Map() }, specs.map((m) => m.config?.filters ?? {}));
  const filtersOf = new Map(specs.map((m, i) => [m, readable[i].filters]));
  return templates.map((t) => ({ ...t, modules: t.modules.map((m) => ({ ...m, config: { ...m.config, filters: filtersOf.get(m) } })) }));
}

async function templatesPage(ctx: CrmContext, options: PageOptions = {}): Promise<PageResponse> {
  const templates = await readableTemplates(ctx);
  const projects = await ctx.host.projectsWhere(ctx.user, CUSTOMIZE_PROJECT_OVERVIEW);
  return {
    title: 'CRM · Overview templates', view: 'overview/templates', status: options.status, trigger: options.trigger,
    locals: {
      templates, projects, canGlobal: await canCustomizeGlobal(ctx), message: options.message ?? null, notice: options.notice ?? null, errors: options.errors ?? {}, values: options.values ?? {},
      sections: await visibleSections(ctx, '/crm'), base: '/crm', current: 'overview', canSettings: await ctx.host.can(ctx.user, 'manage_crm_settings'),
    },
    json: { templates: templates.map((t) => ({ id: t.id, name: t.name, modules: t.modules })) },
  };
}

/**
 * The project a template is applied to from the templates page: visible to the user, with CRM, and theirs to
 * customize; or none, for the global overview, which everyone here may see but only the global right changes (403).
 */
async function targetProject(ctx: CrmContext, input: FormInput) {
  const raw = text(input, 'project_id');
  if (!raw) {
    if (!(await canCustomizeGlobal(ctx))) throw forbidden('You may not change the global overview: apply the template to one of your projects.');
    return null;
  }
  const id = /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
  const project = id ? await ctx.host.projectById(id) : null;
  if (!project || project.isTemplate) throw notFound('Project');
  const member = ctx.user.admin || (await ctx.host.memberships(ctx.user)).some((m) => m.projectId === project.id);
  if (!member) throw notFound('Project');
  if (!(await ctx.host.isModuleEnabled(project, 'crm'))) {
    throw invalid(`CRM is not enabled in ${project.name}: a template can only be applied to a project with CRM.`, { project_id: 'has no CRM' });
  }
  if (!(await ctx.host.can(ctx.user, CUSTOMIZE_PROJECT_OVERVIEW, project))) throw notFound('Project');
  return project;
}

/**
 * A change to one page of this level's overview (`:pageId`; 404 for a page of another level): load it, apply
 * `act`, answer as `change` does with the customize view of that page.
 */
function pageAction(path: string, act: (ctx: CrmContext, req: Request, page: DashboardPage) => Promise<Done>): CrmRoute[] {
  return customizeRoutes(path, {
    method: 'post',
    async handler(ctx, req, res) {
      const page = await requirePage(ctx.host.knex, projectIdOf(ctx), idParam(req, 'pageId'));
      await change(ctx, req, res, customizeAgain(ctx, req, page.id), () => act(ctx, req, page));
    },
  });
}

export function dashboardRoutes(): CrmRoute[] {
  return [
    ...customizeRoutes('/pages', {
      method: 'post',
      async handler(ctx, req, res) {
        await change(ctx, req, res, customizeAgain(ctx, req, null), async () => {
          const page = await createPage(ctx.host.knex, ctx.user, projectIdOf(ctx), formBody(req));
          return { location: customizeUrl(ctx, page.id), notice: `Added the page “${page.name}”.`, render: customizeAgain(ctx, req, page.id) };
        });
      },
    }),
    ...pageAction('/pages/:pageId', async (ctx, req, page) => {
      const saved = await renamePage(ctx.host.knex, ctx.user, page, formBody(req));
      return { location: customizeUrl(ctx, page.id), notice: `Renamed the page to “${saved.name}”.`, render: customizeAgain(ctx, req, page.id) };
    }),
    ...pageAction('/pages/:pageId/delete', async (ctx, req, page) => {
      await deletePage(ctx.host.knex, ctx.user, page);
      return { location: levelBase(ctx), notice: `Deleted the page “${page.name}”.`, render: (o) => overviewPage(ctx, req, null, o) };
    }),
    ...pageAction('/pages/:pageId/modules', async (ctx, req, page) => {
      const m = await addModule(ctx.host.knex, ctx.user, page, formBody(req));
      return { location: `${customizeUrl(ctx, page.id)}#module-${m.id}`, notice: `Added “${m.title}”.`, render: customizeAgain(ctx, req, page.id) };
    }),
    ...pageAction('/pages/:pageId/template', async (ctx, req, page) => {
      const t = await saveTemplate(ctx.host.knex, ctx.user, page, formBody(req));
      return { location: customizeUrl(ctx, page.id), notice: `Saved the page as the template “${t.name}”.`, render: customizeAgain(ctx, req, page.id) };
    }),
    ...customizeRoutes('/templates/apply', {
      // Applies a template to this overview (the project in the URL, or the global one) as a new page.
      method: 'post',
      async handler(ctx, req, res) {
        const template = await requireTemplate(ctx.host.knex, Number(text(formBody(req), 'template_id')));
        const page = await applyTemplate(ctx.host.knex, ctx.user, template, projectIdOf(ctx));
        await respondAfterChange(ctx.host, req, res, customizeUrl(ctx, page.id), async () => ({
          ...(await overviewPage(ctx, req, page.id, { customize: true, notice: `Applied the template “${template.name}” as a new page.` })), trigger: CHANGED,
        }));
      },
    }),
    {
      method: 'get', path: '/crm/overview-templates', permission: CUSTOMIZES_ANY_OVERVIEW,
      handler: async (ctx, _req, res) => respond(ctx.host, _req, res, await templatesPage(ctx)),
    },
    {
      method: 'post', path: '/crm/overview-templates/:templateId/apply', permission: CUSTOMIZES_ANY_OVERVIEW,
      async handler(ctx, req, res) {
        const template = await requireTemplate(ctx.host.knex, idParam(req, 'templateId'));
        await change(ctx, req, res, (o) => templatesPage(ctx, o), async () => {
          const project = await targetProject(ctx, formBody(req));
          const page = await applyTemplate(ctx.host.knex, ctx.user, template, project?.id ?? null);
          const url = project ? `${projectBase(project.identifier)}/pages/${page.id}` : `/crm/pages/${page.id}`;
          return { location: url, notice: `Applied “${template.name}” to ${project ? project.name : 'the global overview'}.`, render: (o) => templatesPage(ctx, o) };
        });
      },
    },
    {
      method: 'post', path: '/crm/overview-templates/:templateId/delete', permission: CUSTOMIZES_ANY_OVERVIEW,
      async handler(ctx, req, res) {
        const template = await requireTemplate(ctx.host.knex, idParam(req, 'templateId'));
        await deleteTemplate(ctx.host.knex, template);
        await respondAfterChange(ctx.host, req, res, '/crm/overview-templates', async () => ({ ...(await templatesPage(ctx, { notice: `Deleted the template “${template.name}”.` })), trigger: CHANGED }));
      },
    },
    ...customizeRoutes('/modules/:moduleId', {
      method: 'post',
      async handler(ctx, req, res) {
        const { module, page } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        await change(ctx, req, res, (o) => moduleFormPage(ctx, module.id, o), async () => {
          const saved = await updateModule(ctx, module, formBody(req));
          return { location: `${customizeUrl(ctx, page.id)}#module-${module.id}`, notice: `Saved “${saved.title}”.`, render: customizeAgain(ctx, req, page.id) };
        });
      },
    }),
    ...customizeRoutes('/modules/:moduleId/delete', {
      method: 'post',
      async handler(ctx, req, res) {
        const { module, page } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        await deleteModule(ctx.host.knex, ctx.user, module);
        await respondAfterChange(ctx.host, req, res, customizeUrl(ctx, page.id), async () => ({
          ...(await overviewPage(ctx, req, page.id, { customize: true, notice: `Removed “${module.title}”.` })), trigger: CHANGED,
        }));
      },
    }),
    ...customizeRoutes('/modules/:moduleId/move', {
      method: 'post',
      async handler(ctx, req, res) {
        const { module, page } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        await change(ctx, req, res, customizeAgain(ctx, req, page.id), async () => {
          await moveModule(ctx.host.knex, ctx.user, module, text(formBody(req), 'direction'));
          return { location: `${customizeUrl(ctx, page.id)}#module-${module.id}`, notice: `Moved “${module.title}”.`, render: customizeAgain(ctx, req, page.id) };
        });
      },
    }),
    ...customizeRoutes('/modules/:moduleId/baselines', {
      // D4: freezes the module's data as it is now (its own period, or the period sent with the form).
      method: 'post',
      async handler(ctx, req, res) {
        const { module } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        await change(ctx, req, res, (o) => modulePage(ctx, req, module.id, o), async () => {
          const period = readPeriodQuery(formBody(req));
          const data = await computeModule(await dashboardEnv(ctx, levelBase(ctx), todayUtc()), module.type, module.config, period);
          const b = await createBaseline(ctx.host.knex, ctx.user, module, formBody(req), data);
          return { location: `${moduleUrl(ctx, module.id)}?baseline=${b.id}`, notice: `Took the baseline “${b.name}”.`, render: (o) => modulePage(ctx, req, module.id, o) };
        });
      },
    }),
    ...customizeRoutes('/modules/:moduleId/baselines/:baselineId/delete', {
      method: 'post',
      async handler(ctx, req, res) {
        const { module } = await requireModule(ctx.host.knex, projectIdOf(ctx), idParam(req, 'moduleId'));
        const baseline = await requireBaseline(ctx.host.knex, module, idParam(req, 'baselineId'), ctx.user);
        await deleteBaseline(ctx.host.knex, ctx.user, module, baseline);
        await respondAfterChange(ctx.host, req, res, moduleUrl(ctx, module.id), async () => ({
          ...(await modulePage(ctx, req, module.id, { notice: `Deleted the baseline “${baseline.name}”.` })), trigger: CHANGED,
        }));
      },
    }),
  ];
}
