import type { Knex } from 'knex';
import type { CrmMigration } from './index';

const COLUMNS = ['record_type', 'record_id', 'next_contact_on', 'responsible_id', 'account_id', 'is_personal', 'author_id'];

/**
 * The follow-ups (activities with a next contact date, about one in seven), by record, with every column the to-do
 * page and the follow-up lists test: the record, the date, the responsible person, the account and the personal
 * rule. A rep's to-do looked up each visible record's activities (19,000 rows at 500,000 activities) to keep the
 * 2,700 with a date, four times per page (250 ms on SQLite); from this index it reads only those, without their rows.
 */
export const activityFollowUpIndex: CrmMigration = {
  name: '20261125_037_activity_follow_up_index',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.index(COLUMNS, 'crm_sales_activities_follow_up_index', { predicate: knex.whereNotNull('next_contact_on') });
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_sales_activities', (t) => {
      t.dropIndex(COLUMNS, 'crm_sales_activities_follow_up_index');
    });
  },
};
