import { AsyncLocalStorage } from 'node:async_hooks';
import type { Knex } from 'knex';
import type { HostProject, HostTask, HostUser } from '../plugin/host';
import type { PermissionRegistry } from './permissions';

interface UserRow { id: number; login: string; name: string; email: string; admin: boolean | number; status: string; api_key: string | null; password_hash: string }
interface ProjectRow { id: number; identifier: string; name: string; description: string; parent_id: number | null; is_template: boolean | number }
interface TaskRow { id: number; project_id: number; subject: string; status: string; assignee_id: number | null; due_date: string | Date | null }

export const toUser = (r: UserRow): HostUser => ({ id: r.id, login: r.login, name: r.name, email: r.email, admin: Boolean(r.admin) });
export const toProject = (r: ProjectRow): HostProject => ({
  id: r.id, identifier: r.identifier, name: r.name, parentId: r.parent_id, isTemplate: Boolean(r.is_template),
});
export const toTask = (r: TaskRow): HostTask => ({
  id: r.id, projectId: r.project_id, subject: r.subject, status: r.status, assigneeId: r.assignee_id,
  dueDate: r.due_date instanceof Date ? r.due_date.toISOString().slice(0, 10) : r.due_date,
});

export type UserRecord = HostUser & { status: string; apiKey: string | null; passwordHash: string };
const toUserRecord = (r: UserRow): UserRecord => ({ ...toUser(r), status: r.status, apiKey: r.api_key, passwordHash: r.password_hash });

/**
 * Answers loaded once per request: a page asks `can()` a dozen times (menus, guard, tabs), and each answer
 * comes from the user's grants and the enabled modules, read in one query each. A request that writes (and may
 * change grants, members, modules or projects on the way) forgets them at each statement that writes.
 * Code outside a request (seeding, tests calling the API directly) reads afresh every time.
 */
const requestMemo = new AsyncLocalStorage<Map<string, Promise<unknown>>>();
/**
 * Statements that may change data or start a transaction (a `with` query only when it holds a write). The same
 * rule as the plugin's request memo (plugin/services/request-memo.ts): each keeps its own, since the plugin sees
 * the host only through the host API.
 */
const WRITES = /^\s*(insert|update|delete|replace|merge|begin|commit|rollback|savepoint|release|create|alter|drop|truncate)\b/i;
const WRITING_WITH = /^\s*with\b[\s\S]*\b(insert|update|delete|merge)\b/i;

const watched = new WeakSet<Knex>();

/** Runs the rest of a request with its own memo of permission data, emptied by each write through `knex`. */
export function memoizeRequests(knex: Knex): (next: () => void) => void {
  if (!watched.has(knex)) {
    watched.add(knex);
    knex.on('query', (query: { sql?: string }) => {
      const store = requestMemo.getStore();
      if (store?.size && (WRITES.test(query.sql ?? '') || WRITING_WITH.test(query.sql ?? ''))) store.clear();
    });
  }
  return (next) => requestMemo.run(new Map(), next);
}

function remembered<T>(key: string, load: () => Promise<T>): Promise<T> {
  const store = requestMemo.getStore();
  if (!store) return load();
  let value = store.get(key) as Promise<T> | undefined;
  if (!value) {
    value = load();
    store.set(key, value);
    value.catch(() => store.delete(key));
  }
  return value;
}

/** The host's data access. Plain knex: the host is a stand-in platform, not the product. */
export class HostRepository {
  constructor(readonly knex: Knex, readonly registry: PermissionRegistry) {}

  async userByLogin(login: string): Promise<UserRecord | null> {
    const row = await this.knex<UserRow>('users').where({ login }).first();
    return row ? toUserRecord(row) : null;
  }

  /** Once per request until it writes: signing the request in reads it, and the page may ask again. */
  async userRecord(id: number): Promise<UserRecord | null> {
    const record = await remembered(`user:${id}`, async () => {
      const row = await this.knex<UserRow>('users').where({ id }).first();
      return row ? toUserRecord(row) : null;
    });
    return record ? { ...record } : null;
  }

  async userByApiKey(apiKey: string): Promise<UserRecord | null> {
    const row = await this.knex<UserRow>('users').where({ api_key: apiKey, status: 'active' }).first();
    return row ? toUserRecord(row) : null;
  }

  async activeUsers(): Promise<HostUser[]> {
    return (await remembered('active-users', async () => (await this.knex<UserRow>('users').where({ status: 'active' }).orderBy('name')).map(toUser))).slice();
  }

  /** The user's memberships (project and role), once per reading request. */
  async memberships(user: HostUser): Promise<{ projectId: number; roleId: number }[]> {
    return (await remembered(`memberships:${user.id}`, async () => (await this.knex('members').where({ user_id: user.id }).select('project_id', 'role_id'))
      .map((m) => ({ projectId: Number(m.project_id), roleId: Number(m.role_id) })))).slice();
  }

  async projectById(id: number): Promise<HostProject | null> {
    const project = await remembered(`project:${id}`, async () => {
      const row = await this.knex<ProjectRow>('projects').where({ id }).first();
      return row ? toProject(row) : null;
    });
    return project && { ...project };
  }

  async projectByIdentifier(identifier: string): Promise<HostProject | null> {
    const row = await this.knex<ProjectRow>('projects').where({ identifier }).first();
    return row ? toProject(row) : null;
  }

  async projectTemplates(): Promise<HostProject[]> {
    return (await this.knex<ProjectRow>('projects').where({ is_template: true }).orderBy('name')).map(toProject);
  }

  /** Descendants in tree order, in one recursive query (portable across SQLite and PostgreSQL). */
  async descendants(project: HostProject): Promise<HostProject[]> {
    const tree = await remembered(`descendants:${project.id}`, async () => {
      const rows: ProjectRow[] = await this.knex
        .withRecursive('tree', (qb) => {
          qb.select('projects.*', this.knex.raw('1 as depth')).from('projects').where('parent_id', project.id)
            .unionAll((u) => {
              u.select('projects.*', this.knex.raw('tree.depth + 1')).from('projects').join('tree', 'projects.parent_id', 'tree.id');
            });
        })
        .select('*').from('tree').orderBy([{ column: 'depth' }, { column: 'name' }]);
      return rows.map(toProject);
    });
    return tree.map((p) => ({ ...p }));
  }

  async ancestors(project: HostProject): Promise<HostProject[]> {
    const chain: HostProject[] = [];
    let parentId = project.parentId;
    // Trees are shallow; a guard against a corrupt cycle keeps this loop bounded.
    while (parentId !== null && chain.length < 50) {
      const parent = await this.projectById(parentId);
      if (!parent) break;
      chain.unshift(parent);
      parentId = parent.parentId;
    }
    return chain;
  }

  async enabledModules(projectId: number): Promise<string[]> {
    return [...((await this.modulesByProject()).get(projectId) ?? [])];
  }

  async isModuleEnabled(projectId: number, module: string): Promise<boolean> {
    return (await this.modulesByProject()).get(projectId)?.has(module) ?? false;
  }

  /** Every project's enabled modules (one small table), once per request. */
  private modulesByProject(): Promise<Map<number, Set<string>>> {
    return remembered('modules', async () => {
      const map = new Map<number, Set<string>>();
      for (const r of await this.knex('project_modules').select('project_id', 'module')) {
        const id = Number(r.project_id);
        if (!map.has(id)) map.set(id, new Set());
        map.get(id)!.add(String(r.module));
      }
      return map;
    });
  }

  /** "projectId:permission" for every permission `user` holds through a membership, once per request. */
  private grantsOf(user: HostUser): Promise<Set<string>> {
    return remembered(`grants:${user.id}`, async () => {
      const rows = await this.knex('members').join('role_permissions', 'role_permissions.role_id', 'members.role_id')
        .where('members.user_id', user.id).distinct('members.project_id', 'role_permissions.permission');
      return new Set(rows.map((r) => `${Number(r.project_id)}:${String(r.permission)}`));
    });
  }

  async can(user: HostUser | null, permission: string, project?: HostProject | null): Promise<boolean> {
    if (!user) return false;
    const def = this.registry.require(permission);
    if (def.scope === 'global') {
      if (user.admin) return true;
      for (const grant of await this.grantsOf(user)) if (grant.endsWith(`:${permission}`)) return true;
      return false;
    }
    if (!project) return (await this.projectsWhere(user, permission)).length > 0;
    if (def.module && !(await this.modulesByProject()).get(project.id)?.has(def.module)) return false;
    return user.admin || (await this.grantsOf(user)).has(`${project.id}:${permission}`);
  }

  /**
   * The working projects a user could hold a permission of `module` in: those with the module on (any, for a
   * permission of no module) and, unless the user is an admin, only those they are a member of. Once per request
   * and module: a page asks `projectsWhere` for several permissions of one module, answered from this and the grants.
   */
  private projectsOfModule(user: HostUser, module: string | null | undefined): Promise<HostProject[]> {
    return remembered(`projects-of-module:${user.id}:${module ?? ''}`, async () => {
      const q = this.knex('projects').where('projects.is_template', false);
      if (module) {
        q.whereExists((s) => s.select(1).from('project_modules').whereRaw('project_modules.project_id = projects.id').where('project_modules.module', module));
      }
      if (!user.admin) q.whereExists((s) => s.select(1).from('members').whereRaw('members.project_id = projects.id').where('members.user_id', user.id));
      return (await q.select('projects.*').orderBy('projects.name')).map(toProject);
    });
  }

  async projectsWhere(user: HostUser, permission: string): Promise<HostProject[]> {
    const def = this.registry.require(permission);
    if (def.scope !== 'project') throw new Error(`"${permission}" is a global permission, not a project one`);
    if (user.admin) return (await this.projectsOfModule(user, def.module)).slice();
    // Two independent reads: asked together, they overlap on PostgreSQL's pool.
    const [candidates, grants] = await Promise.all([this.projectsOfModule(user, def.module), this.grantsOf(user)]);
    return candidates.filter((p) => grants.has(`${p.id}:${permission}`));
  }

  /** Projects the user is a member of (all projects for admins), templates included for admins only. */
  visibleProjectsQuery(user: HostUser) {
    const q = this.knex('projects');
    if (!user.admin) {
      q.where('is_template', false).whereExists((s) => s.select(1).from('members').whereRaw('members.project_id = projects.id').where('members.user_id', user.id));
    }
    return q;
  }

  async taskById(id: number): Promise<HostTask | null> {
    const row = await this.knex<TaskRow>('tasks').where({ id }).first();
    return row ? toTask(row) : null;
  }

  async tasksByIds(ids: number[]): Promise<HostTask[]> {
    const wanted = [...new Set(ids.filter((id) => Number.isSafeInteger(id) && id > 0))];
    if (!wanted.length) return [];
    return (await this.knex<TaskRow>('tasks').whereIn('id', wanted)).map(toTask);
  }
}
