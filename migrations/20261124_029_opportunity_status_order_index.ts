import type { CrmMigration } from './index';
import { isPg } from './dialect';

export const OPPORTUNITY_STATUS_ORDER_INDEX = 'crm_opportunities_status_order_index';

/**
 * PostgreSQL: the opportunity list filtered by a status, in its default order (expected close date, undated ones
 * first, then id), reads its page from this index instead of sorting every opportunity of that status (8,500 of
 * 50,000 in the bench: the admin's page grew 1.7× from 1/100 to full size). The index of migration 007,
 * (status_id, expected_close_on), keeps undated ones last, as PostgreSQL does by default. SQLite puts NULL first,
 * and its index ends with the row id, so it already reads the page in order.
 */
export const opportunityStatusOrderIndex: CrmMigration = {
  name: '20261124_029_opportunity_status_order_index',
  async up(knex) {
    if (!isPg(knex)) return;
    await knex.raw(`create index ${OPPORTUNITY_STATUS_ORDER_INDEX} on crm_opportunities (status_id, expected_close_on nulls first, id) where deleted_at is null`);
  },
  async down(knex) {
    if (!isPg(knex)) return;
    await knex.raw(`drop index if exists ${OPPORTUNITY_STATUS_ORDER_INDEX}`);
  },
};
