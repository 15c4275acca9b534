import { Router, type Request, type Response } from 'express';
import type { HostApi, HostProject, HostUser } from '../host';
import { requirePermissionName } from '../manifest';
import { versionKey } from '../services/data-version';
import { forgetOnWrite, readOnce, withRequestMemo } from '../services/request-memo';
import { loadProjectSettings } from '../services/settings';
import { CrmError, notFound } from './errors';
import { wantsJson } from './respond';

/** The CRM module's id in plugin.json: project CRM URLs exist only where it is enabled. */
const MODULE = 'crm';
const PROJECT_PREFIX = '/projects/:identifier/crm';

/** Everything a CRM handler may know about who is asking and which records they may reach. */
export interface CrmContext {
  host: HostApi;
  user: HostUser;
  /** Set on project-level routes: the project named in the URL. */
  project: HostProject | null;
  /**
   * The projects whose records this request may show for `permission`: on a global page every project where
   * the user holds it; on a project page that project plus, when its setting says so, the subprojects where
   * the user holds it too. Every list query filters by these ids.
   */
  scopeProjects(permission: string): Promise<HostProject[]>;
}

export interface CrmRoute {
  method: 'get' | 'post';
  /** `/crm/…` for global pages, `/projects/:identifier/crm/…` for project pages. */
  path: string;
  /** Permissions from plugin.json; the user needs any one of them. Required: there is no unguarded route. */
  permission: string | string[];
  handler(ctx: CrmContext, req: Request, res: Response): Promise<void>;
}

const VIEW_PERMISSIONS = ['view_accounts', 'view_personal_contacts', 'view_partners', 'view_leads', 'view_opportunities', 'view_campaigns', 'view_contracts', 'view_price_books'];
export const ANY_VIEW = VIEW_PERMISSIONS;

/**
 * The projects whose CRM pages the user may open (any view permission there, with the module on): the only projects
 * a page may name or link to for them. One host call per view permission, whatever the number of projects. Shared:
 * do not change the answer.
 */
export function projectsWithCrmView(ctx: Pick<CrmContext, 'host' | 'user'>): Promise<HostProject[]> {
  // Once per request: a page may name projects in several places (a history, a tab, a module's filter).
  return readOnce(ctx.host.knex, `crm-view-projects:${ctx.user.id}`, async () => {
    const byId = new Map<number, HostProject>();
    for (const permission of ANY_VIEW) for (const p of await ctx.host.projectsWhere(ctx.user, permission)) byId.set(p.id, p);
    return [...byId.values()];
  });
}

/** Of the projects `ids`, those whose CRM pages the user may open (projectsWithCrmView), by name. */
export async function crmProjectsAmong(ctx: Pick<CrmContext, 'host' | 'user'>, ids: Iterable<number>): Promise<HostProject[]> {
  const wanted = new Set(ids);
  return (await projectsWithCrmView(ctx)).filter((p) => wanted.has(p.id)).sort((a, b) => a.name.localeCompare(b.name));
}

async function canAny(host: HostApi, user: HostUser, permissions: string[], project?: HostProject | null): Promise<boolean> {
  for (const p of permissions) if (await host.can(user, p, project)) return true;
  return false;
}

/** The context a handler gets; exported for tools that call services outside a request (the benchmark). */
export function contextFor(host: HostApi, user: HostUser, project: HostProject | null): CrmContext {
  return {
    host, user, project,
    async scopeProjects(permission) {
      if (!project) return host.projectsWhere(user, permission);
      const own = (await host.can(user, permission, project)) ? [project] : [];
      const settings = await loadProjectSettings(host.knex, project.id);
      if (!settings.includeSubprojects) return own;
      const allowed = new Set((await host.projectsWhere(user, permission)).map((p) => p.id));
      return [...own, ...(await host.subprojects(project)).filter((p) => allowed.has(p.id))];
    },
  };
}

/**
 * Asks, beside the permission check, what nearly every handler reads next: the tables' versions and the user's
 * memberships (both kept for the request). On PostgreSQL the statements then overlap on the pool's connections
 * instead of following one another; on SQLite they queue as before. A request refused here has read them for nothing.
 */
function warmUp(host: HostApi, user: HostUser): void {
  Promise.all([versionKey(host.knex, []), host.memberships(user)]).catch(() => undefined);
}

/**
 * Resolves who and where, then checks the route's permission. Whatever the user may not reach — a project
 * they are not in, one where CRM is off, a page or action their roles do not grant — answers 404, so nothing
 * confirms that it exists.
 */
async function authorize(host: HostApi, route: CrmRoute, req: Request): Promise<CrmContext> {
  const user = host.currentUser(req);
  if (!user) throw new CrmError(401, 'Sign in first.');
  warmUp(host, user);
  const needed = Array.isArray(route.permission) ? route.permission : [route.permission];
  let project: HostProject | null = null;
  if (route.path.startsWith(PROJECT_PREFIX)) {
    project = await host.projectByIdentifier(String(req.params.identifier));
    if (!project || project.isTemplate || !(await host.isModuleEnabled(project, MODULE))) throw notFound('Project');
    if (!(await canAny(host, user, ANY_VIEW, project))) throw notFound('Project');
  } else if (!(await canAny(host, user, [...ANY_VIEW, ...needed]))) {
    throw notFound();
  }
  if (!(await canAny(host, user, needed, project))) throw notFound();
  return contextFor(host, user, project);
}

function sendError(host: HostApi, req: Request, res: Response, err: CrmError): void {
  if (err.status === 401) {
    const login = host.urls.login(req.originalUrl);
    if (req.get('HX-Request')) return void res.status(401).set('HX-Redirect', login).send('');
    if (wantsJson(req)) return void res.status(401).json({ error: err.message });
    return void res.redirect(302, login);
  }
  if (wantsJson(req)) return void res.status(err.status).json({ ...err.details, error: err.message, fields: err.fieldErrors });
  if (req.get('HX-Request')) {
    // htmx does not swap error responses by default; the page's script shows this message instead.
    return void res.status(err.status).type('html').send(err.message);
  }
  const body = `<div class="page"><section class="content"><h2>${err.status === 404 ? 'Not found' : 'Not possible'}</h2>` +
    `<p class="flash error">${escapeHtml(err.message)}</p></section></div>`;
  void host.renderPage(req, res, { title: err.status === 404 ? 'Not found' : 'Error', body, status: err.status });
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * The only way the plugin adds a route: each one names its permission (checked against plugin.json at
 * start-up) and runs behind `authorize`, so a route without a permission check cannot be written.
 * GET routes also answer at `<path>.json`. Each request runs with a memo of its own (services/request-memo.ts).
 */
export function buildRouter(host: HostApi, routes: CrmRoute[]): Router {
  const router = Router();
  for (const route of routes) {
    (Array.isArray(route.permission) ? route.permission : [route.permission]).forEach(requirePermissionName);
    // The .json form first: otherwise `/crm/accounts/:id` would take "5.json" as the id.
    const paths = route.method === 'get' ? [`${route.path}.json`, route.path] : [route.path];
    router[route.method](paths, (req, res, next) => withRequestMemo(async () => {
      try {
        const ctx = await authorize(host, route, req);
        await route.handler(ctx, req, res);
      } catch (err) {
        if (err instanceof CrmError) return sendError(host, req, res, err);
        next(err);
      }
    }));
  }
  forgetOnWrite(host.knex);
  return router;
}
