import type { Knex } from 'knex';
import type { CrmMigration } from './index';
import { isPg } from './dialect';

/**
 * The tables whose contents the plugin caches results of (dashboard modules, list counts): every write to one
 * of them raises its number in `crm_table_versions`, in the writing transaction, so a cached result keyed by
 * these numbers can never outlive the data it was computed from — whatever wrote the rows (a route, an import,
 * a script, another process). See plugin/services/data-version.ts.
 */
export const VERSIONED_TABLES = [
  'crm_accounts', 'crm_account_projects', 'crm_account_group_members', 'crm_favorite_accounts',
  'crm_opportunities', 'crm_opportunity_statuses', 'crm_sales_activities', 'crm_activity_categories',
  'crm_contracts', 'crm_quotes', 'crm_quote_items', 'crm_products', 'crm_exchange_rates', 'crm_settings',
  'crm_user_types', 'crm_user_targets', 'crm_user_supervisors', 'crm_role_visibility', 'crm_partner_users',
  'crm_personal_contacts', 'crm_partners', 'crm_account_contacts', 'crm_product_categories', 'crm_account_types', 'crm_industries',
  'crm_account_groups',
] as const;

export const tableVersions: CrmMigration = {
  name: '20261123_024_table_versions',
  async up(knex: Knex) {
    await knex.schema.createTable('crm_table_versions', (t) => {
      t.string('table_name', 63).primary();
      t.bigInteger('version').notNullable().defaultTo(0);
    });
    await knex('crm_table_versions').insert(VERSIONED_TABLES.map((table_name) => ({ table_name, version: 0 })));
    if (isPg(knex)) {
      // One bump per statement, not per row: a bulk insert of 500 rows raises the number once.
      await knex.raw(`create function crm_bump_table_version() returns trigger language plpgsql as $$
        begin
          update crm_table_versions set version = version + 1 where table_name = TG_TABLE_NAME;
          return null;
        end $$`);
    }
    await addVersionTriggers(knex, VERSIONED_TABLES);
  },
  async down(knex: Knex) {
    await dropVersionTriggers(knex, VERSIONED_TABLES);
    if (isPg(knex)) await knex.raw('drop function if exists crm_bump_table_version()');
    await knex.schema.dropTable('crm_table_versions');
  },
};

/**
 * The triggers that raise a table's number on every write (its row in crm_table_versions must exist): per
 * statement on PostgreSQL (crm_bump_table_version, made above), per row on SQLite, which has row triggers only
 * (one writer at a time, so the extra update costs no waiting).
 */
export async function addVersionTriggers(knex: Knex, tables: readonly string[]): Promise<void> {
  for (const table of tables) {
    if (isPg(knex)) {
      await knex.raw(`create trigger ${table}_version after insert or update or delete or truncate on ${table}
        for each statement execute function crm_bump_table_version()`);
      continue;
    }
    for (const event of ['insert', 'update', 'delete']) {
      await knex.raw(`create trigger ${table}_version_${event} after ${event} on ${table}
        begin update crm_table_versions set version = version + 1 where table_name = '${table}'; end`);
    }
  }
}

export async function dropVersionTriggers(knex: Knex, tables: readonly string[]): Promise<void> {
  for (const table of tables) {
    if (isPg(knex)) await knex.raw(`drop trigger if exists ${table}_version on ${table}`);
    else for (const event of ['insert', 'update', 'delete']) await knex.raw(`drop trigger if exists ${table}_version_${event}`);
  }
}
