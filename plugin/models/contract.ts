import type { Knex } from 'knex';
import type { RecordScope } from '../services/visibility';

/** What a sold item became (SPEC C1, C3); the columns are described in migrations/20261123_017_contracts.ts. */
export type ContractKind = 'time_based' | 'one_time';
export type ContractStatus = 'active' | 'cancelled';

export interface Contract {
  id: number;
  source_key: string;
  opportunity_id: number | null;
  quote_id: number | null;
  quote_item_id: number | null;
  account_id: number | null;
  project_id: number;
  owner_id: number | null;
  product_id: number | null;
  category_id: number | null;
  kind: ContractKind;
  name: string;
  code: string;
  quantity_milli: number;
  amount_minor: number;
  currency: string;
  starts_on: string;
  ends_on: string | null;
  renewal: boolean;
  status: ContractStatus;
  author_id: number | null;
  lock_version: number;
  created_at: string;
  updated_at: string;
}

export const CONTRACT_KIND_LABELS: Record<ContractKind, string> = { time_based: 'Time-based', one_time: 'One-time' };

const dateOnly = (v: unknown): string | null => {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, '0')}-${String(v.getDate()).padStart(2, '0')}`;
  return String(v).slice(0, 10);
};
const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v));
const nullableId = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** A row of crm_contracts with portable types (PostgreSQL bigints arrive as strings, SQLite booleans as 0/1). */
export function toContract(r: Record<string, unknown>): Contract {
  return {
    id: Number(r.id), source_key: String(r.source_key), opportunity_id: nullableId(r.opportunity_id), quote_id: nullableId(r.quote_id),
    quote_item_id: nullableId(r.quote_item_id), account_id: nullableId(r.account_id), project_id: Number(r.project_id), owner_id: nullableId(r.owner_id),
    product_id: nullableId(r.product_id), category_id: nullableId(r.category_id), kind: r.kind === 'time_based' ? 'time_based' : 'one_time',
    name: String(r.name), code: String(r.code ?? ''), quantity_milli: Number(r.quantity_milli), amount_minor: Number(r.amount_minor),
    currency: String(r.currency), starts_on: dateOnly(r.starts_on) ?? '', ends_on: dateOnly(r.ends_on), renewal: Boolean(r.renewal),
    status: r.status === 'cancelled' ? 'cancelled' : 'active', author_id: nullableId(r.author_id), lock_version: Number(r.lock_version),
    created_at: iso(r.created_at), updated_at: iso(r.updated_at),
  };
}

/**
 * Contracts visible under `scope` (resolved for view_contracts with the opportunities' visibility levels), as SQL
 * on `crm_contracts` aliased `c`: a contract is seen where its opportunity is — in its project, at the user's level
 * (all; own = the opportunity's owner or author; or the team's); partner users only those of their partners'
 * opportunities. The contract carries a copy of its opportunity's owner (kept in line by opportunity-contracts.ts);
 * the opportunity's author is read from the opportunity, as the contract's own author is whoever sold it, who sees
 * the contracts only while they may see the deal. (An opportunity's author never changes, so the contract lists'
 * cached numbers, kept under crm_opportunities' version too, stay true.)
 */
export function applyContractScope(query: Knex.QueryBuilder, scope: RecordScope): void {
  if (scope.partnerIds) {
    const partnerIds = scope.partnerIds;
    query.whereIn('c.opportunity_id', (s) => s.select('id').from('crm_opportunities').whereIn('partner_id', partnerIds));
  }
  const ownedOrWrittenBy = (w: Knex.QueryBuilder, userIds: number[]) => w.whereIn('c.owner_id', userIds)
    .orWhereIn('c.opportunity_id', (s) => s.select('id').from('crm_opportunities').whereIn('author_id', userIds));
  query.where((b) => {
    b.whereRaw('1 = 0');
    if (scope.all.length) b.orWhereIn('c.project_id', scope.all);
    if (scope.own.length) b.orWhere((o) => o.whereIn('c.project_id', scope.own).andWhere((w) => ownedOrWrittenBy(w, [scope.user.id])));
    if (scope.team.length) b.orWhere((o) => o.whereIn('c.project_id', scope.team).andWhere((w) => ownedOrWrittenBy(w, scope.teamUserIds)));
  });
}
