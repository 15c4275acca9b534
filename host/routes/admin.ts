import { Router, type Request, type Response } from 'express';
import type { HostUser } from '../../plugin/host';
import type { HostContext } from '../context';
import { HttpError, formString, handle, notFound, requireUser } from '../http';
import { hashPassword } from '../passwords';
import { flash, renderHostView } from '../render';

const LOGIN_FORMAT = /^[a-z0-9._-]{2,60}$/i;

export function adminRoutes(ctx: HostContext): Router {
  const router = Router();
  const { knex, registry, layout } = ctx;

  const requireAdmin = (req: Request) => {
    if (!(req.user as HostUser).admin) throw new HttpError(403, 'Administrators only.');
  };
  const page = async (req: Request, res: Response, title: string, view: string, locals: Record<string, unknown>, status = 200) => {
    const body = await renderHostView(view, { ...locals, csrfToken: ctx.csrfToken(req) });
    await layout.send(req, res, { title, body, status, activeTop: 'admin' });
  };

  router.get('/admin', requireUser, handle(async (req, res) => {
    const user = req.user as HostUser;
    const pluginLinks = await layout.adminMenu(user);
    if (!user.admin && !pluginLinks.length) throw new HttpError(403, 'Administrators only.');
    await page(req, res, 'Administration', 'admin/index', { admin: user.admin, pluginLinks });
  }));

  router.get('/admin/users', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const users = await knex('users').orderBy('name').limit(500);
    await page(req, res, 'Users', 'admin/users', { users });
  }));

  const userForm = async (req: Request, res: Response, editing: Record<string, unknown> | null, error: string | null, status = 200) =>
    page(req, res, editing ? `User ${editing.login}` : 'New user', 'admin/user-form', { editing, form: req.body ?? {}, error }, status);

  router.get('/admin/users/new', requireUser, handle(async (req, res) => { requireAdmin(req); await userForm(req, res, null, null); }));

  router.post('/admin/users', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const login = formString(req.body, 'login').trim();
    const name = formString(req.body, 'name').trim();
    const email = formString(req.body, 'email').trim();
    const password = formString(req.body, 'password');
    const error = !LOGIN_FORMAT.test(login) ? 'Login: 2–60 letters, digits, dots, dashes or underscores.'
      : !name ? 'Name is required.' : !email.includes('@') ? 'Email is not valid.'
        : password.length < 8 ? 'Password: at least 8 characters.'
          : (await knex('users').where({ login }).first()) ? `Login "${login}" is taken.` : null;
    if (error) return userForm(req, res, null, error, 422);
    await knex('users').insert({ login, name, email, password_hash: await hashPassword(password), admin: formString(req.body, 'admin') === '1' });
    flash(req, `User ${login} created.`);
    res.redirect(303, '/admin/users');
  }));

  router.get('/admin/users/:id', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const editing = await knex('users').where({ id: Number(req.params.id) || 0 }).first();
    if (!editing) throw notFound('User');
    await userForm(req, res, editing, null);
  }));

  router.post('/admin/users/:id', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const editing = await knex('users').where({ id: Number(req.params.id) || 0 }).first();
    if (!editing) throw notFound('User');
    const status = formString(req.body, 'status');
    if (!['active', 'locked'].includes(status)) return userForm(req, res, editing, 'Status must be active or locked.', 422);
    if (editing.id === (req.user as HostUser).id && status === 'locked') return userForm(req, res, editing, 'You cannot lock yourself out.', 422);
    const changes: Record<string, unknown> = { status, admin: formString(req.body, 'admin') === '1', name: formString(req.body, 'name').trim() || editing.name };
    const password = formString(req.body, 'password');
    if (password) {
      if (password.length < 8) return userForm(req, res, editing, 'Password: at least 8 characters.', 422);
      changes.password_hash = await hashPassword(password);
    }
    await knex('users').where({ id: editing.id }).update(changes);
    flash(req, `User ${editing.login} saved.`);
    res.redirect(303, '/admin/users');
  }));

  const rolesPage = async (req: Request, res: Response, error: string | null, status = 200) => {
    const roles = await knex('roles').orderBy('position');
    const granted = new Set((await knex('role_permissions').select('role_id', 'permission')).map((r) => `${r.role_id}:${r.permission}`));
    const permissions = registry.all();
    const groups: { title: string; scope: string; permissions: typeof permissions }[] = [];
    for (const p of permissions) {
      const title = `${p.source === 'host' ? '' : `${p.source.toUpperCase()} · `}${p.group}`;
      let group = groups.find((g) => g.title === title && g.scope === p.scope);
      if (!group) groups.push(group = { title, scope: p.scope, permissions: [] });
      group.permissions.push(p);
    }
    await page(req, res, 'Roles and permissions', 'admin/roles', {
      roles, granted, projectGroups: groups.filter((g) => g.scope === 'project'), globalGroups: groups.filter((g) => g.scope === 'global'), error,
    }, status);
  };

  router.get('/admin/roles', requireUser, handle(async (req, res) => { requireAdmin(req); await rolesPage(req, res, null); }));

  /** The whole matrix at once: `grant` holds "roleId:permission" for every ticked box. */
  router.post('/admin/roles', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const raw = req.body?.grant;
    const grants = (Array.isArray(raw) ? raw : raw ? [raw] : []).map(String);
    const roleIds = new Set((await knex('roles').select('id')).map((r) => Number(r.id)));
    const rows: { role_id: number; permission: string }[] = [];
    for (const g of grants) {
      const [roleId, permission] = g.split(':');
      if (!roleIds.has(Number(roleId))) return rolesPage(req, res, `Unknown role in "${g}". Nothing was saved.`, 422);
      if (!registry.get(permission ?? '')) return rolesPage(req, res, `Unknown permission "${permission}". Nothing was saved.`, 422);
      rows.push({ role_id: Number(roleId), permission: permission as string });
    }
    await knex.transaction(async (trx) => {
      await trx('role_permissions').delete();
      for (let i = 0; i < rows.length; i += 200) await trx('role_permissions').insert(rows.slice(i, i + 200));
    });
    flash(req, 'Permissions saved.');
    res.redirect(303, '/admin/roles');
  }));

  router.post('/admin/roles/new', requireUser, handle(async (req, res) => {
    requireAdmin(req);
    const name = formString(req.body, 'name').trim();
    if (!name || name.length > 60) return rolesPage(req, res, 'A role needs a name of at most 60 characters.', 422);
    if (await knex('roles').where({ name }).first()) return rolesPage(req, res, `A role named "${name}" exists already.`, 422);
    const [{ max }] = await knex('roles').max({ max: 'position' });
    await knex('roles').insert({ name, position: Number(max ?? 0) + 1 });
    flash(req, `Role ${name} added.`);
    res.redirect(303, '/admin/roles');
  }));

  return router;
}
