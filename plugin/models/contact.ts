import { Model, type QueryBuilder } from 'objection';
import type { Knex } from 'knex';
import type { RecordScope } from '../services/visibility';
import { applyAccountScope } from './account';
import { orProjectRule } from './partner';

export class ContactType extends Model {
  static override tableName = 'crm_contact_types';
  id!: number;
  name!: string;
  position!: number;
  active!: boolean;
}

export class PersonalContact extends Model {
  static override tableName = 'crm_personal_contacts';
  id!: number;
  contact_type_id!: number | null;
  first_name!: string;
  last_name!: string;
  job_title!: string;
  email!: string;
  phone!: string;
  city!: string;
  country!: string;
  note!: string;
  partner_id!: number | null;
  project_id!: number | null;
  owner_id!: number | null;
  author_id!: number | null;
  deleted_at!: string | Date | null;
  lock_version!: number;
  created_at!: string | Date;
  updated_at!: string | Date;
}

/** The fields a user edits on the contact form, in form order; the journal compares these. */
export const CONTACT_FIELDS = [
  'contact_type_id', 'first_name', 'last_name', 'job_title', 'email', 'phone', 'city', 'country', 'partner_id', 'owner_id', 'note',
] as const;

export const contactName = (c: { first_name: string; last_name: string }): string => [c.first_name, c.last_name].filter(Boolean).join(' ');

type AnyQuery = QueryBuilder<Model, unknown> | Knex.QueryBuilder;

/**
 * S3 and A9 for personal contacts (`crm_personal_contacts` aliased `c`): the project rule (owner or author),
 * or — with `accountScope` — linked to an account that scope reaches. Partner users see only their
 * partners' consultants.
 */
export function applyContactScope(query: AnyQuery, scope: RecordScope, accountScope: RecordScope | null): void {
  const q = query as Knex.QueryBuilder;
  q.whereNull('c.deleted_at');
  if (scope.partnerIds) q.whereIn('c.partner_id', scope.partnerIds);
  q.where((b) => {
    orProjectRule(b, scope, 'c', 'owner_id');
    if (accountScope) {
      b.orWhereExists((sub) => {
        sub.select(1).from('crm_account_contacts as ac').join('crm_accounts as a', 'a.id', 'ac.account_id').whereRaw('ac.contact_id = c.id');
        applyAccountScope(sub, accountScope);
      });
    }
  });
}
