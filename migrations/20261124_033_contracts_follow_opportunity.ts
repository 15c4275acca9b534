import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * A contract is seen where its opportunity is (SPEC C3), through its copies of the opportunity's owner and project
 * (crm_contracts.owner_id, project_id). Before this release, reassigning or moving an unlocked opportunity left
 * its contracts with the owner and project of the sale: the old owner kept seeing them, the new one did not. The
 * services now carry both along (plugin/services/opportunity-contracts.ts); this repairs the rows that drifted
 * before, each journaled on its contract like the services' own changes (by no user, with a note saying why).
 *
 * down keeps the repair: the drifted values were wrong, and each one is in the journal.
 */
export const contractOpportunityRepair: CrmMigration = {
  name: '20261124_033_contracts_follow_opportunity',
  async up(knex: Knex) {
    const drifted: Record<string, unknown>[] = await knex('crm_contracts as c').join('crm_opportunities as o', 'o.id', 'c.opportunity_id')
      .where((b) => b.whereRaw('c.project_id <> o.project_id').orWhereRaw('coalesce(c.owner_id, 0) <> coalesce(o.owner_id, 0)'))
      .orderBy('c.id').select('c.id', 'c.owner_id', 'c.project_id', 'o.id as opportunity_id', 'o.owner_id as opportunity_owner_id', 'o.project_id as opportunity_project_id');
    const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
    const now = new Date().toISOString();
    for (const c of drifted) {
      await knex('crm_contracts').where({ id: c.id })
        .update({ owner_id: c.opportunity_owner_id, project_id: c.opportunity_project_id, lock_version: knex.raw('lock_version + 1'), updated_at: now });
      const [journal] = await knex('crm_journals').insert({
        journalized_type: 'contract', journalized_id: c.id, user_id: null, action: 'update', notes: `Follows its opportunity #${c.opportunity_id} (repaired by an update)`, created_at: now,
      }).returning('id');
      const details = (['owner_id', 'project_id'] as const)
        .filter((f) => text(c[f]) !== text(c[`opportunity_${f}`]))
        .map((f) => ({ journal_id: Number(journal.id ?? journal), field: f, old_value: text(c[f]), new_value: text(c[`opportunity_${f}`]) }));
      await knex('crm_journal_details').insert(details);
    }
  },
  async down() {
    // Nothing to undo: see above.
  },
};
