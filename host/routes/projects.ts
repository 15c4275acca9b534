import { Router, type Request, type Response } from 'express';
import { HostRefusal, type HostProject, type HostUser } from '../../plugin/host';
import type { HostContext } from '../context';
import { HttpError, formString, handle, notFound, requireUser } from '../http';
import { createProject, createProjectFromTemplate, createTask } from '../projects-service';
import { flash, renderHostView } from '../render';
import { toTask } from '../repository';

const PAGE_SIZE = 25;

function pageNumber(req: Request): number {
  const n = Number(req.query.page ?? 1);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

export function projectRoutes(ctx: HostContext): Router {
  const router = Router();
  const { knex, repo, layout } = ctx;
  const user = (req: Request) => req.user as HostUser;

  /** The project named in the URL, if this user may see it; 404 otherwise (never confirm existence). */
  async function visibleProject(req: Request): Promise<HostProject> {
    const project = await repo.projectByIdentifier(String(req.params.identifier));
    if (!project) throw notFound('Project');
    const u = user(req);
    if (u.admin) return project;
    const member = await knex('members').where({ project_id: project.id, user_id: u.id }).first();
    if (!member || project.isTemplate) throw notFound('Project');
    return project;
  }

  async function requirePermission(req: Request, permission: string, project: HostProject) {
    if (!(await repo.can(user(req), permission, project))) throw new HttpError(403, 'You are not allowed to do this in this project.');
  }

  const page = async (req: Request, res: Response, title: string, view: string, locals: Record<string, unknown>, extra: { project?: HostProject; activeMenu?: string; status?: number } = {}) => {
    const body = await renderHostView(view, { ...locals, csrfToken: ctx.csrfToken(req), user: user(req) });
    await layout.send(req, res, { title, body, ...extra });
  };

  router.get('/', requireUser, handle(async (req, res) => {
    const projects = await repo.visibleProjectsQuery(user(req)).where('is_template', false).orderBy('name').limit(100);
    await page(req, res, 'Home', 'home', { projects }, {});
  }));

  router.get('/projects', requireUser, handle(async (req, res) => {
    const n = pageNumber(req);
    const base = repo.visibleProjectsQuery(user(req));
    const [{ count }] = await base.clone().count({ count: '*' });
    const projects = await base.clone().orderBy([{ column: 'is_template' }, { column: 'name' }]).limit(PAGE_SIZE).offset((n - 1) * PAGE_SIZE);
    const canAdd = await repo.can(user(req), 'add_projects');
    await page(req, res, 'Projects', 'projects/index', { projects, canAdd, pagination: { page: n, pages: Math.max(1, Math.ceil(Number(count) / PAGE_SIZE)), total: Number(count) } });
  }));

  const newProjectForm = async (req: Request, res: Response, error: string | null, status = 200) => {
    const parents = await repo.visibleProjectsQuery(user(req)).where('is_template', false).orderBy('name');
    await page(req, res, 'New project', 'projects/new', {
      error, parents, templates: await repo.projectTemplates(), form: req.body ?? {}, modules: ctx.registry.modules,
    }, { status });
  };

  router.get('/projects/new', requireUser, handle(async (req, res) => {
    if (!(await repo.can(user(req), 'add_projects'))) throw new HttpError(403, 'You may not create projects.');
    await newProjectForm(req, res, null);
  }));

  router.post('/projects', requireUser, handle(async (req, res) => {
    const u = user(req);
    if (!(await repo.can(u, 'add_projects'))) throw new HttpError(403, 'You may not create projects.');
    const name = formString(req.body, 'name');
    const identifier = formString(req.body, 'identifier').trim();
    const parentId = formString(req.body, 'parent_id') ? Number(formString(req.body, 'parent_id')) : null;
    const templateId = formString(req.body, 'template_id') ? Number(formString(req.body, 'template_id')) : null;
    const rawModules = req.body?.modules;
    const modules = (Array.isArray(rawModules) ? rawModules : rawModules ? [rawModules] : []).map(String);
    try {
      const unknown = modules.find((m) => !ctx.registry.isModule(m));
      if (unknown) throw new HostRefusal(`Unknown module "${unknown}".`);
      if (parentId !== null && !(await repo.visibleProjectsQuery(u).where('id', parentId).first())) throw new HostRefusal('Choose a parent project you can see.');
      const project = await knex.transaction(async (trx) => {
        const created = templateId
          ? await createProjectFromTemplate(knex, { templateId, parentId, name, identifier }, trx)
          : await createProject(knex, { name, identifier, parentId, modules }, trx);
        // The creator manages what they created (unless they are an admin, who needs no membership).
        const manager = await trx('roles').where({ name: 'Manager' }).first();
        if (!u.admin && manager && !(await trx('members').where({ project_id: created.id, user_id: u.id }).first())) {
          await trx('members').insert({ project_id: created.id, user_id: u.id, role_id: manager.id });
        }
        return created;
      });
      flash(req, `Project "${project.name}" created.`);
      res.redirect(303, `/projects/${project.identifier}`);
    } catch (err) {
      if (err instanceof HostRefusal) return newProjectForm(req, res, err.message, 422);
      throw err;
    }
  }));

  router.get('/projects/:identifier', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    const subprojects = await repo.descendants(project);
    const members = await knex('members').join('users', 'users.id', 'members.user_id').join('roles', 'roles.id', 'members.role_id')
      .where('members.project_id', project.id).select('users.name as user_name', 'roles.name as role_name').orderBy('users.name');
    const parent = project.parentId ? await repo.projectById(project.parentId) : null;
    const links = await knex('project_links').where({ project_id: project.id }).orderBy('id').select('label', 'url');
    await page(req, res, project.name, 'projects/show', { project, subprojects, members, parent, links }, { project, activeMenu: 'overview' });
  }));

  const settingsPage = async (req: Request, res: Response, project: HostProject, error: string | null, status = 200) => {
    const enabled = await repo.enabledModules(project.id);
    const members = await knex('members').join('users', 'users.id', 'members.user_id').join('roles', 'roles.id', 'members.role_id')
      .where('members.project_id', project.id).select('members.id', 'users.name as user_name', 'roles.name as role_name', 'roles.id as role_id').orderBy('users.name');
    const users = await repo.activeUsers();
    const roles = await knex('roles').orderBy('position');
    await page(req, res, `${project.name} · Settings`, 'projects/settings', {
      project, modules: ctx.registry.modules, enabled, members, users, roles, error,
    }, { project, activeMenu: 'settings', status });
  };

  router.get('/projects/:identifier/settings', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'manage_project', project);
    await settingsPage(req, res, project, null);
  }));

  router.post('/projects/:identifier/settings/modules', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'manage_project', project);
    const raw = req.body?.modules;
    const modules = (Array.isArray(raw) ? raw : raw ? [raw] : []).map(String);
    const unknown = modules.find((m) => !ctx.registry.isModule(m));
    if (unknown) return settingsPage(req, res, project, `Unknown module "${unknown}". Nothing was changed.`, 422);
    // Switching a module off only hides it: the module's data stays, and comes back when it is switched on.
    await knex.transaction(async (trx) => {
      await trx('project_modules').where({ project_id: project.id }).delete();
      if (modules.length) await trx('project_modules').insert([...new Set(modules)].map((module) => ({ project_id: project.id, module })));
    });
    flash(req, 'Modules saved.');
    res.redirect(303, `/projects/${project.identifier}/settings`);
  }));

  router.post('/projects/:identifier/members', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'manage_project', project);
    const userId = Number(formString(req.body, 'user_id'));
    const roleId = Number(formString(req.body, 'role_id'));
    const [member, role] = await Promise.all([repo.userRecord(userId), knex('roles').where({ id: roleId }).first()]);
    if (!member || !role) return settingsPage(req, res, project, 'Choose a user and a role.', 422);
    await knex('members').insert({ project_id: project.id, user_id: userId, role_id: roleId })
      .onConflict(['project_id', 'user_id']).merge({ role_id: roleId });
    flash(req, `${member.name} is now ${role.name} in this project.`);
    res.redirect(303, `/projects/${project.identifier}/settings`);
  }));

  router.post('/projects/:identifier/members/:id/delete', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'manage_project', project);
    const deleted = await knex('members').where({ id: Number(req.params.id), project_id: project.id }).delete();
    if (!deleted) throw notFound('Member');
    flash(req, 'Member removed.');
    res.redirect(303, `/projects/${project.identifier}/settings`);
  }));

  router.get('/projects/:identifier/tasks', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'view_tasks', project);
    const n = pageNumber(req);
    const base = knex('tasks').where('tasks.project_id', project.id);
    const [{ count }] = await base.clone().count({ count: '*' });
    const tasks = await base.clone().leftJoin('users', 'users.id', 'tasks.assignee_id')
      .select('tasks.*', 'users.name as assignee_name').orderBy('tasks.id', 'desc').limit(PAGE_SIZE).offset((n - 1) * PAGE_SIZE);
    const canAdd = await repo.can(user(req), 'add_tasks', project);
    await page(req, res, `${project.name} · Tasks`, 'tasks/index', {
      project, tasks, canAdd, pagination: { page: n, pages: Math.max(1, Math.ceil(Number(count) / PAGE_SIZE)), total: Number(count) },
    }, { project, activeMenu: 'tasks' });
  }));

  const newTaskForm = async (req: Request, res: Response, project: HostProject, error: string | null, status = 200) => {
    await page(req, res, 'New task', 'tasks/new', { project, error, form: req.body ?? {}, users: await repo.activeUsers() }, { project, activeMenu: 'tasks', status });
  };

  router.get('/projects/:identifier/tasks/new', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'add_tasks', project);
    await newTaskForm(req, res, project, null);
  }));

  router.post('/projects/:identifier/tasks', requireUser, handle(async (req, res) => {
    const project = await visibleProject(req);
    await requirePermission(req, 'add_tasks', project);
    try {
      const assignee = formString(req.body, 'assignee_id');
      const task = await createTask(knex, {
        projectId: project.id, subject: formString(req.body, 'subject'), description: formString(req.body, 'description'),
        assigneeId: assignee ? Number(assignee) : null, dueDate: formString(req.body, 'due_date') || null, authorId: user(req).id,
      });
      flash(req, `Task #${task.id} created.`);
      res.redirect(303, `/tasks/${task.id}`);
    } catch (err) {
      if (err instanceof HostRefusal) return newTaskForm(req, res, project, err.message, 422);
      throw err;
    }
  }));

  router.get('/tasks/:id', requireUser, handle(async (req, res) => {
    const row = await knex('tasks').leftJoin('users', 'users.id', 'tasks.assignee_id')
      .where('tasks.id', Number(req.params.id) || 0).select('tasks.*', 'users.name as assignee_name').first();
    if (!row) throw notFound('Task');
    const project = await repo.projectById(row.project_id);
    if (!project || !(await repo.can(user(req), 'view_tasks', project))) throw notFound('Task');
    await page(req, res, `Task #${row.id}`, 'tasks/show', { project, task: { ...toTask(row), description: row.description, assigneeName: row.assignee_name } }, { project, activeMenu: 'tasks' });
  }));

  return router;
}
