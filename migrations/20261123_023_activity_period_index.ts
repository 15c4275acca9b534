import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * Dashboards count sales activities in a period (issue #7) and the activities list filters by it: with
 * 500,000 activities, reading them by `occurred_at` range beats testing every row against the visibility
 * lists. Found with `npm run bench` (the team and activities modules on the overview pages).
 */
export const activityPeriodIndex: CrmMigration = {
  name: '20261123_023_activity_period_index',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.index(['occurred_at', 'category_id'], 'crm_sales_activities_period_index');
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.dropIndex(['occurred_at', 'category_id'], 'crm_sales_activities_period_index');
    });
  },
};
