import type { Knex } from 'knex';
import type { CrmMigration } from './index';
import { addVersionTriggers, dropVersionTriggers } from './20261123_024_table_versions';

/**
 * Small tables that a quote document, the field rules and the forms read on every request: numbered like those of
 * migration 024, so what is read from them is kept across requests until one of them is written
 * (plugin/services/data-version.ts). On PostgreSQL each read kept is a round trip saved.
 */
export const MORE_VERSIONED_TABLES = ['crm_custom_fields', 'crm_field_permissions', 'crm_price_books', 'crm_price_book_projects'] as const;

export const moreTableVersions: CrmMigration = {
  name: '20261124_036_more_table_versions',
  async up(knex: Knex) {
    await knex('crm_table_versions').insert(MORE_VERSIONED_TABLES.map((table_name) => ({ table_name, version: 0 })));
    await addVersionTriggers(knex, MORE_VERSIONED_TABLES);
  },
  async down(knex: Knex) {
    await dropVersionTriggers(knex, MORE_VERSIONED_TABLES);
    await knex('crm_table_versions').whereIn('table_name', MORE_VERSIONED_TABLES).delete();
  },
};
