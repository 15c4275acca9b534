import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * Dashboards count sales activities in a period (issue #7): with 500,000 activities, reading the period from
 * an index that holds every column the count and its visibility test need (record, personal flag, author,
 * responsible person, category) beats looking up each visible record's activities. Found with `npm run bench`
 * (the team module of the global overview: 1.2 s → 0.3 s for an admin on SQLite).
 */
export const activityPeriodIndex: CrmMigration = {
  name: '20261123_023_activity_period_index',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.index(['occurred_at', 'record_type', 'record_id', 'is_personal', 'author_id', 'responsible_id', 'category_id'], 'crm_sales_activities_period_index');
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.dropIndex(['occurred_at', 'record_type', 'record_id', 'is_personal', 'author_id', 'responsible_id', 'category_id'], 'crm_sales_activities_period_index');
    });
  },
};
