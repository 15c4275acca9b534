import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import type { HostUser } from '../host';
import { readUnderVersions } from './data-version';
import { readOnce } from './request-memo';

/** S3: per role and record kind, whose records a user sees. Supervisors get view on their team, never edit. */
export type VisibilityLevel = 'all' | 'own' | 'subordinates';
export const VISIBILITY_LEVELS: VisibilityLevel[] = ['all', 'own', 'subordinates'];
export const VISIBILITY_ENTITIES = ['accounts', 'partners', 'personal_contacts', 'opportunities'] as const;
export type VisibilityEntity = (typeof VISIBILITY_ENTITIES)[number];

/** Everything a list query needs to show only what this user may see, resolved once per request. */
export interface RecordScope {
  user: HostUser;
  /** Projects (ids) where the user sees every record, only their own, or their own and their team's. */
  all: number[];
  own: number[];
  team: number[];
  /** The user and everyone who reports to them, directly or further down. */
  teamUserIds: number[];
  /** Set for partner users: they see only records assigned to these partners. */
  partnerIds: number[] | null;
  /** Global pages and record lookups also reach records flagged global, or linked to no project. */
  global: boolean;
  /** For edit checks: the "global account" flag grants view, not edit. */
  forEdit: boolean;
}

export function roleLevels(knex: Knex, entity: VisibilityEntity): Promise<Map<number, VisibilityLevel>> {
  return readUnderVersions(knex, 'role-levels', ['crm_role_visibility'], [entity], async () => {
    const rows = await knex('crm_role_visibility').where({ entity }).select('role_id', 'level');
    return new Map(rows.map((r) => [Number(r.role_id), r.level as VisibilityLevel]));
  });
}

/**
 * The user and, transitively, everyone whose supervisor chain leads to them (one recursive query, once per request:
 * a page scopes several kinds of records by it — an account page its account, parent and partner). Shared: do not
 * change the answer.
 */
export function teamOf(knex: Knex, userId: number): Promise<number[]> {
  return readOnce(knex, `team:${userId}`, () => readTeam(knex, userId));
}

async function readTeam(knex: Knex, userId: number): Promise<number[]> {
  const rows: { user_id: number }[] = await knex
    .withRecursive('team', (qb) => {
      qb.select('user_id').from('crm_user_supervisors').where('supervisor_id', userId)
        .union((u) => u.select('s.user_id').from('crm_user_supervisors as s').join('team', 's.supervisor_id', 'team.user_id'));
    })
    .select('user_id').from('team');
  return [userId, ...rows.map((r) => Number(r.user_id)).filter((id) => id !== userId)];
}

export function partnerIdsOf(knex: Knex, userId: number): Promise<number[] | null> {
  return readUnderVersions(knex, 'partner-ids', ['crm_partner_users'], [userId], async () => {
    const ids = (await knex('crm_partner_users').where({ user_id: userId }).pluck('partner_id')).map(Number);
    return ids.length ? ids : null;
  });
}

/**
 * Resolves the scope for `permission` (view_… or edit_…): which projects, at which visibility level. On a
 * project page the projects are that project (and its subprojects when its setting says so); on a global
 * page every project where the user holds the permission.
 */
export async function recordScope(ctx: CrmContext, entity: VisibilityEntity, permission: string, options: { global?: boolean } = {}): Promise<RecordScope> {
  const { host, user } = ctx;
  const projects = await ctx.scopeProjects(permission);
  const forEdit = !permission.startsWith('view_');
  const scope: RecordScope = {
    user, all: [], own: [], team: [], teamUserIds: [user.id], partnerIds: await partnerIdsOf(host.knex, user.id),
    global: options.global ?? ctx.project === null, forEdit,
  };
  if (user.admin) {
    scope.all = projects.map((p) => p.id);
    return scope;
  }
  const roleByProject = new Map((await host.memberships(user)).map((m) => [m.projectId, m.roleId]));
  const levels = await roleLevels(host.knex, entity);
  for (const project of projects) {
    const roleId = roleByProject.get(project.id);
    const level = roleId === undefined ? 'all' : levels.get(roleId) ?? 'all';
    // Edit is never granted through a supervisor: "own and subordinates" edits only its own.
    const effective: VisibilityLevel = forEdit && level === 'subordinates' ? 'own' : level;
    scope[effective === 'subordinates' ? 'team' : effective].push(project.id);
  }
  if (scope.team.length) scope.teamUserIds = await teamOf(host.knex, user.id);
  return scope;
}
