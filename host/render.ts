import path from 'node:path';
import ejs from 'ejs';
import type { Request, Response } from 'express';
import type { HostPage, HostProject, HostUser, PluginManifest } from '../plugin/host';
import { HOST_VIEWS } from './paths';
import type { HostRepository } from './repository';

/**
 * In production templates are compiled once and without EJS's line tracking (a statement per template line,
 * a sixth of a long list's render); elsewhere they are read afresh and errors name the template line.
 */
const cacheTemplates = process.env.NODE_ENV === 'production';

export function renderHostView(name: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(path.join(HOST_VIEWS, `${name}.ejs`), locals, { cache: cacheTemplates, compileDebug: !cacheTemplates, async: false });
}

export interface MenuLink { label: string; url: string; id: string }

/** Builds the host's page chrome: top menu, project header and tabs, from the host's and plugins' menus. */
export class Layout {
  constructor(private readonly repo: HostRepository, private readonly manifests: PluginManifest[], private readonly csrfToken: (req: Request) => string) {}

  private async canAny(user: HostUser, permissions: string[], project?: HostProject): Promise<boolean> {
    for (const p of permissions) if (await this.repo.can(user, p, project)) return true;
    return false;
  }

  async topMenu(user: HostUser | null): Promise<MenuLink[]> {
    if (!user) return [];
    const links: MenuLink[] = [{ id: 'home', label: 'Home', url: '/' }, { id: 'projects', label: 'Projects', url: '/projects' }];
    for (const m of this.manifests) {
      for (const item of m.menus.filter((i) => i.menu === 'global')) {
        if (await this.canAny(user, item.permission)) links.push({ id: item.id, label: item.label, url: item.path });
      }
    }
    if (user.admin || (await this.adminMenu(user)).length) links.push({ id: 'admin', label: 'Administration', url: '/admin' });
    return links;
  }

  /** Plugin entries of the admin menu this user may open. */
  async adminMenu(user: HostUser): Promise<MenuLink[]> {
    const links: MenuLink[] = [];
    for (const m of this.manifests) {
      for (const item of m.menus.filter((i) => i.menu === 'admin')) {
        if (await this.canAny(user, item.permission)) links.push({ id: item.id, label: item.label, url: item.path });
      }
    }
    return links;
  }

  async projectTabs(user: HostUser, project: HostProject): Promise<MenuLink[]> {
    const base = `/projects/${project.identifier}`;
    const tabs: MenuLink[] = [{ id: 'overview', label: 'Overview', url: base }];
    if (await this.repo.can(user, 'view_tasks', project)) tabs.push({ id: 'tasks', label: 'Tasks', url: `${base}/tasks` });
    for (const m of this.manifests) {
      for (const item of m.menus.filter((i) => i.menu === 'project')) {
        if (await this.canAny(user, item.permission, project)) {
          tabs.push({ id: item.id, label: item.label, url: item.path.replace(':identifier', encodeURIComponent(project.identifier)) });
        }
      }
    }
    if (await this.repo.can(user, 'manage_project', project)) tabs.push({ id: 'settings', label: 'Settings', url: `${base}/settings` });
    return tabs;
  }

  async send(req: Request, res: Response, page: HostPage & { activeTop?: string }): Promise<void> {
    const user = (req.user as HostUser | undefined) ?? null;
    const project = page.project ?? null;
    const topMenu = await this.topMenu(user);
    // Without a project, the menu entry whose URL starts the path is the active one (/crm/… → CRM).
    const byPath = topMenu.filter((m) => m.url !== '/' && (req.path === m.url || req.path.startsWith(`${m.url}/`)))
      .sort((a, b) => b.url.length - a.url.length)[0]?.id;
    const html = await renderHostView('layout', {
      title: page.title,
      body: page.body,
      user,
      topMenu,
      activeTop: page.activeTop ?? (project ? 'projects' : byPath ?? ''),
      project,
      projectTabs: project && user ? await this.projectTabs(user, project) : [],
      activeMenu: page.activeMenu ?? '',
      stylesheets: page.stylesheets ?? [],
      scripts: page.scripts ?? [],
      csrfToken: req.session ? this.csrfToken(req) : '',
      flash: takeFlash(req),
    });
    res.status(page.status ?? 200).type('html').send(html);
  }
}

/** One-shot messages shown on the next page (after a 303). */
export function flash(req: Request, message: string): void {
  if (req.session) req.session.flash = message;
}

function takeFlash(req: Request): string | null {
  if (!req.session?.flash) return null;
  const message = req.session.flash;
  delete req.session.flash;
  return message;
}

declare module 'express-session' {
  interface SessionData {
    flash?: string;
    returnTo?: string;
  }
}
