import type { Request } from 'express';
import { ANY_VIEW, type CrmContext, type CrmRoute } from '../http/guard';
import { invalid, notFound } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { SECTIONS, type CrmSection } from '../sections';
import { loadProjectSettings, setIncludeSubprojects } from '../services/settings';
import { paginate, pageParam } from '../services/pagination';

/** The sections this user may open, with their URL at the current level (global or project). */
async function visibleSections(ctx: CrmContext, base: string): Promise<(CrmSection & { url: string })[]> {
  const result: (CrmSection & { url: string })[] = [];
  for (const s of SECTIONS) {
    if (await ctx.host.can(ctx.user, s.permission, ctx.project)) result.push({ ...s, url: `${base}/${s.id.replace('_', '-')}` });
  }
  return result;
}

const projectBase = (identifier: string) => `/projects/${encodeURIComponent(identifier)}/crm`;

async function globalOverview(ctx: CrmContext, req: Request): Promise<PageResponse> {
  // A project is listed when the user may view any CRM records in it; one query per view permission.
  const byId = new Map<number, { id: number; identifier: string; name: string }>();
  for (const permission of ANY_VIEW) for (const p of await ctx.scopeProjects(permission)) byId.set(p.id, p);
  const all = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
  const page = paginate(all, pageParam(req), 25);
  const sections = await visibleSections(ctx, '/crm');
  const canSettings = await ctx.host.can(ctx.user, 'manage_crm_settings');
  return {
    title: 'CRM',
    view: 'overview/global',
    locals: { projects: page, sections, canSettings, current: 'overview' },
    json: { projects: page.items.map((p) => ({ id: p.id, identifier: p.identifier, name: p.name, url: projectBase(p.identifier) })), pagination: page.meta, sections: sections.map(({ id, label, url, issue }) => ({ id, label, url, available: !issue })) },
  };
}

async function projectOverview(ctx: CrmContext): Promise<PageResponse> {
  const project = ctx.project!;
  const base = projectBase(project.identifier);
  const settings = await loadProjectSettings(ctx.host.knex, project.id);
  const subprojects = await ctx.host.subprojects(project);
  const scope = (await ctx.scopeProjects('view_opportunities')).concat(await ctx.scopeProjects('view_accounts'));
  const inScope = [...new Map(scope.map((p) => [p.id, p])).values()];
  const canManage = await ctx.host.can(ctx.user, 'manage_crm_page', project);
  const sections = await visibleSections(ctx, base);
  return {
    title: `${project.name} · CRM`,
    view: 'overview/project',
    project,
    locals: { project, base, settings, subprojects, inScope, canManage, sections, current: 'overview' },
    json: {
      project: { id: project.id, identifier: project.identifier, name: project.name },
      settings: { include_subprojects: settings.includeSubprojects, lock_version: settings.lockVersion },
      projects_in_scope: inScope.map((p) => ({ id: p.id, identifier: p.identifier, name: p.name })),
      sections: sections.map(({ id, label, url, issue }) => ({ id, label, url, available: !issue })),
    },
  };
}

/** Sections whose issue has not landed answer with a clearly marked placeholder, behind their permission. */
function placeholderRoutes(): CrmRoute[] {
  return SECTIONS.filter((s) => s.issue).flatMap((section): CrmRoute[] => {
    const handler = async (ctx: CrmContext, req: Request, res: import('express').Response) => {
      const base = ctx.project ? projectBase(ctx.project.identifier) : '/crm';
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
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await globalOverview(ctx, req)),
    },
    {
      method: 'get', path: '/projects/:identifier/crm', permission: ANY_VIEW,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await projectOverview(ctx)),
    },
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
          ...(await projectOverview(ctx)), trigger: 'crm:projectSettingsChanged',
        }));
      },
    },
    ...placeholderRoutes(),
  ];
}
