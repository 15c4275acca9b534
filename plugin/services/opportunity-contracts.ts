import type { Knex } from 'knex';
import { invalid } from '../http/errors';
import { journalMany } from './journal';

/**
 * What an opportunity's own changes do to its contracts (SPEC C3: a contract is seen where its opportunity is).
 * crm_contracts keeps copies of the opportunity's owner and project, so that the contract lists, the contract
 * page and the dashboards filter one table (applyContractScope); these copies must move whenever the originals
 * do, in the transaction that moves them. Kept apart from contracts.ts, which reads opportunities: the opportunity
 * service calls in here without an import cycle.
 */

/** The opportunity's columns that crm_contracts copies. */
const FOLLOWED = ['owner_id', 'project_id'] as const;
type Followed = (typeof FOLLOWED)[number];

const sameId = (a: unknown, b: unknown) => (a === null || a === undefined ? null : Number(a)) === (b === null || b === undefined ? null : Number(b));

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
  const target = FOLLOWED.filter((f) => Object.prototype.hasOwnProperty.call(changed, f));
  if (!target.length) return;
  const contracts: Record<string, unknown>[] = await trx('crm_contracts').where({ opportunity_id: opportunityId }).select('id', ...target);
  const moving = contracts
    .map((c) => ({ id: Number(c.id), changes: target.filter((f) => !sameId(c[f], changed[f])).map((f) => ({ field: f, old: c[f] ?? null, new: changed[f] ?? null })) }))
    .filter((c) => c.changes.length > 0);
  if (!moving.length) return;
  const values = Object.fromEntries(target.map((f): [Followed, unknown] => [f, changed[f] ?? null]));
  await trx('crm_contracts').whereIn('id', moving.map((c) => c.id))
    .update({ ...values, lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() });
  await journalMany(trx, moving.map((c) => ({ type: 'contract', id: c.id, userId, action: 'update', changes: c.changes, notes })));
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
