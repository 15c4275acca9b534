import { Model, type QueryBuilder } from 'objection';
import type { Knex } from 'knex';
import type { RecordScope } from '../services/visibility';

export class Partner extends Model {
  static override tableName = 'crm_partners';
  id!: number;
  name!: string;
  email!: string;
  phone!: string;
  website!: string;
  city!: string;
  country!: string;
  note!: string;
  project_id!: number | null;
  manager_id!: number | null;
  author_id!: number | null;
  deleted_at!: string | Date | null;
  lock_version!: number;
  created_at!: string | Date;
  updated_at!: string | Date;
}

/** The fields a user edits on the partner form, in form order; the journal compares these. */
export const PARTNER_FIELDS = ['name', 'email', 'phone', 'website', 'city', 'country', 'note', 'manager_id'] as const;

type AnyQuery = QueryBuilder<Model, unknown> | Knex.QueryBuilder;

/**
 * The project part of the S3 rule for records that carry one nullable `project_id` and an owner column
 * (partners: manager, personal contacts: owner), as a group of OR-ed conditions on `alias`. A record is
 * visible when its project is in scope at "all", or at "own" and the user owns or created it, or at "own +
 * subordinates" and someone of the user's team does; on global pages also when it has no project and the
 * user created it (admins: any such record).
 */
export function orProjectRule(b: Knex.QueryBuilder, scope: RecordScope, alias: string, ownerColumn: string): void {
  const userId = scope.user.id;
  const project = `${alias}.project_id`;
  const owner = `${alias}.${ownerColumn}`;
  const author = `${alias}.author_id`;
  b.orWhereRaw('1 = 0');
  if (scope.all.length) b.orWhereIn(project, scope.all);
  if (scope.own.length) b.orWhere((o) => o.whereIn(project, scope.own).andWhere((w) => w.where(owner, userId).orWhere(author, userId)));
  if (scope.team.length) {
    b.orWhere((o) => o.whereIn(project, scope.team).andWhere((w) => w.whereIn(owner, scope.teamUserIds).orWhereIn(author, scope.teamUserIds)));
  }
  if (scope.global) {
    b.orWhere((o) => {
      o.whereNull(project);
      if (!scope.user.admin) o.andWhere(author, userId);
    });
  }
}

/** S3 and A10 for partners (`crm_partners` aliased `p`): the project rule; partner users see only their partners. */
export function applyPartnerScope(query: AnyQuery, scope: RecordScope): void {
  const q = query as Knex.QueryBuilder;
  q.whereNull('p.deleted_at');
  if (scope.partnerIds) q.whereIn('p.id', scope.partnerIds);
  q.where((b) => orProjectRule(b, scope, 'p', 'manager_id'));
}
