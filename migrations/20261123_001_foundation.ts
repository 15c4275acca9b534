import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Plugin settings, per-project CRM settings, and the journal every CRM change is written to. */
export const foundation: CrmMigration = {
  name: '20261123_001_foundation',
  async up(knex: Knex) {
    await knex.schema.createTable('crm_settings', (t) => {
      t.string('name', 100).primary();
      // JSON-encoded, so a setting keeps its type (boolean, number, string).
      t.text('value').notNullable();
      t.integer('lock_version').notNullable().defaultTo(0);
    });
    await knex.schema.createTable('crm_project_settings', (t) => {
      // A host project id: host rows are referenced by id, never by foreign key into host tables.
      t.integer('project_id').primary();
      t.boolean('include_subprojects').notNullable().defaultTo(false);
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });
    await knex.schema.createTable('crm_journals', (t) => {
      t.increments('id');
      t.string('journalized_type', 40).notNullable();
      t.integer('journalized_id').notNullable();
      t.integer('user_id').nullable();
      t.string('action', 20).notNullable();
      t.text('notes').notNullable().defaultTo('');
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['journalized_type', 'journalized_id', 'id']);
    });
    await knex.schema.createTable('crm_journal_details', (t) => {
      t.increments('id');
      t.integer('journal_id').notNullable().references('id').inTable('crm_journals').onDelete('CASCADE');
      t.string('field', 100).notNullable();
      t.text('old_value').nullable();
      t.text('new_value').nullable();
      t.index(['journal_id']);
    });
  },
  async down(knex: Knex) {
    for (const table of ['crm_journal_details', 'crm_journals', 'crm_project_settings', 'crm_settings']) {
      await knex.schema.dropTableIfExists(table);
    }
  },
};
