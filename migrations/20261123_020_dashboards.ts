import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Overview pages of modules, page templates, baselines, user targets and user types (SPEC D1–D5). */
export const dashboards: CrmMigration = {
  name: '20261123_020_dashboards',
  async up(knex: Knex) {
    await knex.schema.createTable('crm_dashboard_pages', (t) => {
      t.increments('id');
      // null: a page of the global overview; else a page of that project's CRM overview.
      t.integer('project_id').nullable();
      t.string('name', 100).notNullable();
      t.integer('position').notNullable().defaultTo(0);
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['project_id', 'position']);
    });
    await knex.schema.createTable('crm_dashboard_modules', (t) => {
      t.increments('id');
      t.integer('page_id').notNullable().references('id').inTable('crm_dashboard_pages').onDelete('CASCADE');
      t.string('type', 40).notNullable();
      t.string('title', 200).notNullable();
      t.integer('position').notNullable().defaultTo(0);
      // JSON: period, filters, chart type and the module's own options (see services/dashboard-config.ts).
      t.text('config').notNullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['page_id', 'position']);
    });
    await knex.schema.createTable('crm_dashboard_templates', (t) => {
      t.increments('id');
      t.string('name', 100).notNullable().unique();
      // JSON array of { type, title, config }, in page order.
      t.text('modules').notNullable();
      t.integer('author_id').nullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    });
    await knex.schema.createTable('crm_baselines', (t) => {
      t.increments('id');
      t.integer('module_id').notNullable().references('id').inTable('crm_dashboard_modules').onDelete('CASCADE');
      t.string('name', 100).notNullable();
      // The computed module data as JSON at the moment of the snapshot: later data changes never touch it.
      t.text('data').notNullable();
      t.integer('author_id').nullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['module_id']);
    });
    await knex.schema.createTable('crm_user_targets', (t) => {
      t.increments('id');
      t.integer('user_id').notNullable();
      // 'month' | 'quarter' | 'year', starting on period_start (the first day of that month, quarter or year).
      t.string('period_kind', 10).notNullable();
      t.date('period_start').notNullable();
      // 'won_amount' (minor units of the reporting currency) | 'won_count' | 'activities'.
      t.string('measure', 20).notNullable();
      t.bigInteger('target_value').notNullable();
      t.string('currency', 3).nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.unique(['user_id', 'period_kind', 'period_start', 'measure']);
      t.index(['period_start']);
    });
    await knex.schema.createTable('crm_user_types', (t) => {
      t.integer('user_id').primary();
      // 'sales_rep' | 'sales_director'
      t.string('type', 20).notNullable();
    });
  },
  async down(knex: Knex) {
    for (const table of ['crm_user_types', 'crm_user_targets', 'crm_baselines', 'crm_dashboard_templates', 'crm_dashboard_modules', 'crm_dashboard_pages']) {
      await knex.schema.dropTableIfExists(table);
    }
  },
};
