import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * Indexes found by `npm run bench` (issue #8) at 100,000 accounts. Every account list counts the visible
 * accounts (`count(*)` over the scope of applyAccountScope: not deleted, private only to their author, global
 * flag, manager for "own" visibility). With only (deleted_at, name) SQLite read every table row to test
 * those columns; this index holds them all, so the count reads the index alone. Measured on SQLite: the
 * sales rep's count 180–280 ms → 12 ms, the admin's 550 ms → 300 ms (the rest is the per-row project check).
 * The opportunity list's status tags (a count per status over every visible opportunity) likewise read every
 * row of crm_opportunities: with the scope columns in one index, 90–180 ms → 22–36 ms (admin), 46 → 9 ms (rep).
 */
export const benchIndexes: CrmMigration = {
  name: '20261123_022_bench_indexes',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_accounts', (t) => {
      t.index(['deleted_at', 'is_private', 'author_id', 'is_global', 'account_manager_id'], 'crm_accounts_scope_index');
    });
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.index(['deleted_at', 'project_id', 'status_id', 'owner_id', 'author_id'], 'crm_opportunities_scope_index');
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.dropIndex(['deleted_at', 'project_id', 'status_id', 'owner_id', 'author_id'], 'crm_opportunities_scope_index');
    });
    await knex.schema.alterTable('crm_accounts', (t) => {
      t.dropIndex(['deleted_at', 'is_private', 'author_id', 'is_global', 'account_manager_id'], 'crm_accounts_scope_index');
    });
  },
};
