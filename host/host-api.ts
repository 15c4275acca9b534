import type { Knex } from 'knex';
import { HOST_API_VERSION, type HostApi, type HostUser } from '../plugin/host';
import { createProjectFromTemplate, createTask } from './projects-service';
import type { Layout } from './render';
import { toTask, type HostRepository } from './repository';

/** The reference host's implementation of the plugin contract. */
export function createHostApi(deps: {
  knex: Knex;
  dataDir: string;
  repo: HostRepository;
  layout: Layout;
  csrfToken: HostApi['csrfToken'];
}): HostApi {
  const { knex, repo, layout } = deps;
  return {
    version: HOST_API_VERSION,
    knex,
    dataDir: deps.dataDir,
    currentUser: (req) => (req.user as HostUser | undefined) ?? null,
    can: (user, permission, project) => repo.can(user, permission, project),
    projectsWhere: (user, permission) => repo.projectsWhere(user, permission),
    isModuleEnabled: (project, module) => repo.isModuleEnabled(project.id, module),
    projectById: (id) => repo.projectById(id),
    projectByIdentifier: (identifier) => repo.projectByIdentifier(identifier),
    subprojects: (project) => repo.descendants(project),
    ancestors: (project) => repo.ancestors(project),
    projectTemplates: () => repo.projectTemplates(),
    createProjectFromTemplate: (input, trx) => createProjectFromTemplate(knex, input, trx),
    createTask: (input, trx) => createTask(knex, input, trx),
    taskById: (id) => repo.taskById(id),
    tasksByIds: (ids) => repo.tasksByIds(ids),
    // Subject search for task pickers: only projects where the user may view tasks, newest first, bounded.
    searchTasks: async (user, text, limit) => {
      const term = text.trim().toLowerCase().slice(0, 100);
      if (!term) return [];
      const projectIds = (await repo.projectsWhere(user, 'view_tasks')).map((p) => p.id);
      if (!projectIds.length) return [];
      const pattern = `%${term.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await knex('tasks').whereIn('project_id', projectIds).whereRaw(`lower(subject) like ? escape '\\'`, [pattern])
        .orderBy('id', 'desc').limit(Math.max(1, Math.min(limit, 50)));
      return rows.map(toTask);
    },
    users: () => repo.activeUsers(),
    roles: async () => (await knex('roles').orderBy('position').select('id', 'name')).map((r) => ({ id: Number(r.id), name: String(r.name) })),
    memberships: (user) => repo.memberships(user),
    userById: async (id) => {
      const record = await repo.userRecord(id);
      return record ? { id: record.id, login: record.login, name: record.name, email: record.email, admin: record.admin } : null;
    },
    urls: {
      login: (returnTo) => (returnTo ? `/login?back=${encodeURIComponent(returnTo)}` : '/login'),
      project: (project) => `/projects/${encodeURIComponent(project.identifier)}`,
      task: (task) => `/tasks/${task.id}`,
      user: (user) => `/users/${user.id}`,
    },
    csrfToken: deps.csrfToken,
    renderPage: (req, res, page) => layout.send(req, res, page),
  };
}
