import { Model } from 'objection';
import type { Knex } from 'knex';
import type { RecordScope } from '../services/visibility';

export type StatusKind = 'open' | 'won' | 'lost';

export class OpportunityStatus extends Model {
  static override tableName = 'crm_opportunity_statuses';
  id!: number;
  name!: string;
  color!: string;
  position!: number;
  probability!: number;
  kind!: StatusKind;
  active!: boolean;
  is_default!: boolean;
}

export class Opportunity extends Model {
  static override tableName = 'crm_opportunities';
  id!: number;
  project_id!: number;
  name!: string;
  account_id!: number | null;
  contact_id!: number | null;
  owner_id!: number | null;
  status_id!: number;
  amount_minor!: number | null;
  currency!: string;
  expected_close_on!: string | null;
  partner_id!: number | null;
  campaign_id!: number | null;
  description!: string;
  is_locked!: boolean;
  author_id!: number | null;
  deleted_at!: string | Date | null;
  lock_version!: number;
  created_at!: string | Date;
  updated_at!: string | Date;
}

/** The fields of the opportunity form; field rules per status (S5) and the journal speak of these names. */
export const OPPORTUNITY_FIELDS = [
  'name', 'account_id', 'contact_id', 'owner_id', 'status_id', 'amount_minor', 'currency', 'expected_close_on', 'partner_id', 'description',
] as const;
export type OpportunityField = (typeof OPPORTUNITY_FIELDS)[number];
/** Fields a status rule may make read-only, required or hidden (the status itself is moved, not ruled). */
export const RULED_FIELDS: OpportunityField[] = ['name', 'account_id', 'contact_id', 'owner_id', 'amount_minor', 'currency', 'expected_close_on', 'partner_id', 'description'];
export const FIELD_LABELS: Record<OpportunityField, string> = {
  name: 'Name', account_id: 'Account', contact_id: 'Contact', owner_id: 'Owner', status_id: 'Status', amount_minor: 'Amount',
  currency: 'Currency', expected_close_on: 'Expected close date', partner_id: 'Partner', description: 'Description',
};

/**
 * Opportunities visible under `scope`, as SQL on `crm_opportunities` aliased `o`: in a project where the
 * user sees all, or their own (owner or creator), or their team's; partner users only their partners'.
 */
export function applyOpportunityScope(query: Knex.QueryBuilder, scope: RecordScope): void {
  const userId = scope.user.id;
  query.whereNull('o.deleted_at');
  if (scope.partnerIds) query.whereIn('o.partner_id', scope.partnerIds);
  query.where((b) => {
    b.whereRaw('1 = 0');
    if (scope.all.length) b.orWhereIn('o.project_id', scope.all);
    if (scope.own.length) b.orWhere((o) => o.whereIn('o.project_id', scope.own).andWhere((w) => w.where('o.owner_id', userId).orWhere('o.author_id', userId)));
    if (scope.team.length) {
      b.orWhere((o) => o.whereIn('o.project_id', scope.team).andWhere((w) => w.whereIn('o.owner_id', scope.teamUserIds).orWhereIn('o.author_id', scope.teamUserIds)));
    }
  });
}
