import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * A8: at most one primary account per host task, enforced by the database (a partial unique index), so two
 * people linking the first account to the same task at once cannot both make theirs primary.
 */
export const taskPrimary: CrmMigration = {
  name: '20261123_005_task_primary',
  async up(knex: Knex) {
    await knex.raw('create unique index crm_task_accounts_one_primary on crm_task_accounts (task_id) where is_primary');
  },
  async down(knex: Knex) {
    await knex.raw('drop index if exists crm_task_accounts_one_primary');
  },
};
