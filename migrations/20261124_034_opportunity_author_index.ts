import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * A contract is seen by its opportunity's author under "own" visibility (applyContractScope): the contract lists
 * read the ids of the opportunities a user (or a team) wrote, which without this index scans every opportunity.
 */
export const opportunityAuthorIndex: CrmMigration = {
  name: '20261124_034_opportunity_author_index',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.index(['author_id'], 'crm_opportunities_author_index');
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.dropIndex(['author_id'], 'crm_opportunities_author_index');
    });
  },
};
