import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Opportunities, statuses, business roles, field rules per status, sales activities (SPEC O1–O7, S4–S5). */
export const opportunities: CrmMigration = {
  name: '20261123_007_opportunities',
  async up(knex: Knex) {
    await knex.schema.createTable('crm_opportunity_statuses', (t) => {
      t.increments('id');
      t.string('name', 100).notNullable().unique();
      t.string('color', 7).notNullable().defaultTo('#7b8794');
      t.integer('position').notNullable().defaultTo(0);
      // Whole percent, 0–100.
      t.integer('probability').notNullable().defaultTo(0);
      t.string('kind', 10).notNullable().defaultTo('open');
      t.boolean('active').notNullable().defaultTo(true);
      t.boolean('is_default').notNullable().defaultTo(false);
    });
    await knex.schema.createTable('crm_opportunities', (t) => {
      t.increments('id');
      t.integer('project_id').notNullable();
      t.string('name', 200).notNullable();
      t.integer('account_id').nullable().references('id').inTable('crm_accounts').onDelete('SET NULL');
      t.integer('contact_id').nullable().references('id').inTable('crm_personal_contacts').onDelete('SET NULL');
      t.integer('owner_id').nullable();
      t.integer('status_id').notNullable().references('id').inTable('crm_opportunity_statuses');
      t.bigInteger('amount_minor').nullable();
      t.string('currency', 3).notNullable();
      t.date('expected_close_on').nullable();
      t.integer('partner_id').nullable().references('id').inTable('crm_partners').onDelete('SET NULL');
      t.integer('campaign_id').nullable();
      t.text('description').notNullable().defaultTo('');
      t.boolean('is_locked').notNullable().defaultTo(false);
      t.integer('author_id').nullable();
      t.timestamp('deleted_at', { useTz: true }).nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['project_id', 'status_id']);
      t.index(['status_id', 'expected_close_on']);
      t.index(['owner_id']);
      t.index(['account_id']);
      t.index(['partner_id']);
      t.index(['expected_close_on']);
      t.index(['deleted_at', 'name']);
    });
    await knex.schema.createTable('crm_business_roles', (t) => {
      t.increments('id');
      t.integer('opportunity_id').notNullable().references('id').inTable('crm_opportunities').onDelete('CASCADE');
      t.integer('contact_id').notNullable().references('id').inTable('crm_personal_contacts').onDelete('CASCADE');
      t.string('description', 200).notNullable().defaultTo('');
      t.index(['opportunity_id']);
    });
    await knex.schema.createTable('crm_opportunity_tasks', (t) => {
      t.integer('opportunity_id').notNullable().references('id').inTable('crm_opportunities').onDelete('CASCADE');
      t.integer('task_id').notNullable();
      t.primary(['opportunity_id', 'task_id']);
      t.index(['task_id']);
    });
    await knex.schema.createTable('crm_field_permissions', (t) => {
      t.integer('role_id').notNullable();
      t.integer('status_id').notNullable().references('id').inTable('crm_opportunity_statuses').onDelete('CASCADE');
      t.string('field', 60).notNullable();
      t.string('rule', 20).notNullable();
      t.primary(['role_id', 'status_id', 'field']);
    });
    await knex.schema.createTable('crm_activity_categories', (t) => {
      t.increments('id');
      t.string('name', 100).notNullable().unique();
      t.integer('position').notNullable().defaultTo(0);
      t.boolean('active').notNullable().defaultTo(true);
    });
    await knex.schema.createTable('crm_sales_activities', (t) => {
      t.increments('id');
      t.string('record_type', 20).notNullable();
      t.integer('record_id').notNullable();
      // The account the activity concerns (the opportunity's account, or the account itself), for the to-do grouping.
      t.integer('account_id').nullable().references('id').inTable('crm_accounts').onDelete('SET NULL');
      t.integer('project_id').nullable();
      t.integer('category_id').notNullable().references('id').inTable('crm_activity_categories');
      t.string('subject', 200).notNullable();
      t.text('notes').notNullable().defaultTo('');
      t.timestamp('occurred_at', { useTz: true }).notNullable();
      t.integer('duration_minutes').nullable();
      t.date('next_contact_on').nullable();
      t.integer('responsible_id').nullable();
      t.boolean('is_personal').notNullable().defaultTo(false);
      t.integer('author_id').nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['record_type', 'record_id', 'occurred_at']);
      t.index(['next_contact_on', 'account_id']);
      t.index(['responsible_id', 'next_contact_on']);
      t.index(['project_id']);
    });
    await knex.schema.createTable('crm_role_default_filters', (t) => {
      t.integer('role_id').notNullable();
      t.string('entity', 40).notNullable();
      t.integer('saved_filter_id').notNullable().references('id').inTable('crm_saved_filters').onDelete('CASCADE');
      t.primary(['role_id', 'entity']);
    });

    // Every row names every column: a multi-row insert fills missing ones with NULL on SQLite.
    await knex('crm_opportunity_statuses').insert([
      { name: 'Qualification', color: '#7aa2d6', position: 1, probability: 10, kind: 'open', is_default: true },
      { name: 'Needs analysis', color: '#5b8def', position: 2, probability: 25, kind: 'open', is_default: false },
      { name: 'Proposal', color: '#d69e2e', position: 3, probability: 50, kind: 'open', is_default: false },
      { name: 'Negotiation', color: '#dd6b20', position: 4, probability: 75, kind: 'open', is_default: false },
      { name: 'Won', color: '#2f855a', position: 5, probability: 100, kind: 'won', is_default: false },
      { name: 'Lost', color: '#c53030', position: 6, probability: 0, kind: 'lost', is_default: false },
    ]);
    await knex('crm_activity_categories').insert(['Call', 'Meeting', 'Email', 'Note'].map((name, i) => ({ name, position: i + 1 })));
  },
  async down(knex: Knex) {
    for (const table of ['crm_role_default_filters', 'crm_sales_activities', 'crm_activity_categories', 'crm_field_permissions',
      'crm_opportunity_tasks', 'crm_business_roles', 'crm_opportunities', 'crm_opportunity_statuses']) {
      await knex.schema.dropTableIfExists(table);
    }
  },
};
