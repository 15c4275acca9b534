import express, { type Express } from 'express';
import type { Knex } from 'knex';
import { HOST_API_VERSION, HostRefusal, type HostApi, type HostProject, type HostUser, type PluginModule } from '../../plugin/host';

/**
 * A second, deliberately tiny host: in-memory users, projects and grants, a header for authentication, and
 * no tables of its own. If the plugin works here, the host API is all it needs.
 */
export interface MinimalHostData {
  users: HostUser[];
  projects: HostProject[];
  /** "userId:projectId" → permissions; project 0 holds global permissions. */
  grants: Record<string, string[]>;
  modules: Record<number, string[]>;
}

export function createMinimalHost(knex: Knex, dataDir: string, plugin: PluginModule, data: MinimalHostData): { app: Express; api: HostApi } {
  const moduleOf = new Map(plugin.manifest.permissions.map((p) => [p.name, p.scope === 'project' ? plugin.manifest.module.id : null]));
  const has = (user: HostUser, permission: string, project: HostProject) =>
    user.admin || (data.grants[`${user.id}:${project.id}`] ?? []).includes(permission);
  const moduleOn = (project: HostProject, permission: string) => {
    const module = moduleOf.get(permission);
    return !module || (data.modules[project.id] ?? []).includes(module);
  };
  const api: HostApi = {
    version: HOST_API_VERSION,
    knex,
    dataDir,
    currentUser: (req) => data.users.find((u) => String(u.id) === req.get('X-Test-User')) ?? null,
    async can(user, permission, project) {
      if (!user) return false;
      if (project) return moduleOn(project, permission) && has(user, permission, project);
      if (moduleOf.get(permission) === null) return user.admin || (data.grants[`${user.id}:0`] ?? []).includes(permission);
      return data.projects.some((p) => moduleOn(p, permission) && has(user, permission, p));
    },
    projectsWhere: async (user, permission) => data.projects.filter((p) => !p.isTemplate && moduleOn(p, permission) && has(user, permission, p)),
    isModuleEnabled: async (project, module) => (data.modules[project.id] ?? []).includes(module),
    projectById: async (id) => data.projects.find((p) => p.id === id) ?? null,
    projectByIdentifier: async (identifier) => data.projects.find((p) => p.identifier === identifier) ?? null,
    subprojects: async (project) => data.projects.filter((p) => p.parentId === project.id),
    ancestors: async () => [],
    projectTemplates: async () => data.projects.filter((p) => p.isTemplate),
    createProjectFromTemplate: async () => { throw new HostRefusal('This host has no templates.'); },
    createTask: async () => { throw new HostRefusal('This host has no tasks.'); },
    taskById: async () => null,
    tasksByIds: async () => [],
    searchTasks: async () => [],
    users: async () => data.users,
    roles: async () => [],
    memberships: async () => [],
    userById: async (id) => data.users.find((u) => u.id === id) ?? null,
    urls: { login: () => '/signin', project: (p) => `/p/${p.identifier}`, task: (t) => `/t/${t.id}`, user: (u) => `/u/${u.id}` },
    csrfToken: () => 'minimal-host-has-no-cookies',
    async renderPage(_req, res, page) {
      res.status(page.status ?? 200).type('html').send(`<!doctype html><title>${page.title}</title><div class="minimal-host">${page.body}</div>`);
    },
  };
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(plugin.register(api).router);
  return { app, api };
}
