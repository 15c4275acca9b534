import type { Knex } from 'knex';
import { invalid } from '../http/errors';
import { copiesFollowOpportunity, type OpportunityCopies } from './opportunity-copies';

/**
 * What an opportunity's own changes do to its contracts (SPEC C3: a contract is seen where its opportunity is).
 * crm_contracts keeps copies of the opportunity's owner and project, so that the contract lists, the contract
 * page and the dashboards filter one table (applyContractScope); these copies must move whenever the originals
 * do, in the transaction that moves them. Kept apart from contracts.ts, which reads opportunities: the opportunity
 * service calls in here without an import cycle.
 */

/** The opportunity's columns that crm_contracts copies; a contract that follows moves its lock version on. */
const CONTRACT_COPIES: OpportunityCopies = {
  table: 'crm_contracts', type: 'contract', columns: ['owner_id', 'project_id'], of: (opportunityId) => ({ opportunity_id: opportunityId }),
  alsoSet: (trx) => ({ lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() }),
};

/**
 * Inside the transaction that changes opportunity `opportunityId`: gives its contracts the new owner and project of
 * `changed` (the columns written to the opportunity; others are ignored), each contract journaled with its old
 * and new values. Every contract follows — removed ones too, since they are listed and reported where their
 * opportunity is — because a contract has no owner or project of its own: no page edits them, a sale copies
 * them. (Should contracts ever get an editable owner, this must stop overwriting a hand-set one.)
 * The statement raises crm_contracts' table version (migration 024), so cached list numbers and dashboards follow.
 */
export async function contractsFollowOpportunity(
  trx: Knex.Transaction, userId: number, opportunityId: number, changed: Partial<Record<string, unknown>>, notes: string,
): Promise<void> {
  await copiesFollowOpportunity(trx, CONTRACT_COPIES, opportunityId, changed, userId, notes);
}

/**
 * Inside the transaction that deletes opportunity `opportunityId`, after its row is locked (so no sale adds
 * contracts meanwhile): refuses (422) while it has contracts that were not removed, expired ones included. They
 * are what was sold — counted as active or sold, offering upsell — and would be left pointing at nothing;
 * removing them one by one (C2) is a decision the user makes and sees, rather than a side effect of a delete.
 */
export async function assertNoContractsLeft(trx: Knex.Transaction, opportunityId: number): Promise<void> {
  const [{ n }] = await trx('crm_contracts').where({ opportunity_id: opportunityId }).whereNot('status', 'cancelled').count({ n: '*' });
  const left = Number(n);
  if (left === 0) return;
  throw invalid(`This opportunity still has ${left === 1 ? '1 contract' : `${left} contracts`}: remove ${left === 1 ? 'it' : 'them'} first (strike-through in its Contracts panel), then delete the opportunity.`);
}
