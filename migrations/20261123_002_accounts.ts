import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * Accounts, personal contacts, partners and what hangs off them (SPEC A1–A10, P7, S3). Host rows (users,
 * projects, tasks, roles) are referenced by id only: the plugin never adds foreign keys into host tables.
 */
export const accounts: CrmMigration = {
  name: '20261123_002_accounts',
  async up(knex: Knex) {
    const timestamps = (t: Knex.CreateTableBuilder) => {
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };
    const lookup = (name: string, extra?: (t: Knex.CreateTableBuilder) => void) =>
      knex.schema.createTable(name, (t) => {
        t.increments('id');
        t.string('name', 100).notNullable().unique();
        t.integer('position').notNullable().defaultTo(0);
        t.boolean('active').notNullable().defaultTo(true);
        extra?.(t);
      });

    await lookup('crm_account_types', (t) => {
      t.boolean('use_first_last_name').notNullable().defaultTo(false);
      t.boolean('use_name').notNullable().defaultTo(true);
    });
    await lookup('crm_industries');
    await lookup('crm_account_groups');
    await lookup('crm_contact_types');
    await lookup('crm_relation_types', (t) => t.string('inverse_name', 100).notNullable());
    await lookup('crm_internal_relation_categories');

    await knex.schema.createTable('crm_partners', (t) => {
      t.increments('id');
      t.string('name', 200).notNullable();
      t.string('email', 200).notNullable().defaultTo('');
      t.string('phone', 60).notNullable().defaultTo('');
      t.string('website', 200).notNullable().defaultTo('');
      t.string('city', 100).notNullable().defaultTo('');
      t.string('country', 100).notNullable().defaultTo('');
      t.text('note').notNullable().defaultTo('');
      t.integer('project_id').nullable();
      t.integer('manager_id').nullable();
      t.integer('author_id').nullable();
      t.timestamp('deleted_at', { useTz: true }).nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      timestamps(t);
      t.index(['project_id', 'deleted_at']);
      t.index(['manager_id']);
      t.index(['name']);
    });
    await knex.schema.createTable('crm_partner_users', (t) => {
      t.integer('partner_id').notNullable().references('id').inTable('crm_partners').onDelete('CASCADE');
      t.integer('user_id').notNullable();
      t.primary(['partner_id', 'user_id']);
      t.index(['user_id']);
    });

    await knex.schema.createTable('crm_accounts', (t) => {
      t.increments('id');
      t.integer('account_type_id').notNullable().references('id').inTable('crm_account_types');
      // The display and sort name: the name, or "first last" for types that use first and last name.
      t.string('name', 200).notNullable();
      t.string('first_name', 100).notNullable().defaultTo('');
      t.string('last_name', 100).notNullable().defaultTo('');
      t.string('organization', 200).notNullable().defaultTo('');
      t.string('email', 200).notNullable().defaultTo('');
      t.string('phone', 60).notNullable().defaultTo('');
      t.string('street', 200).notNullable().defaultTo('');
      t.string('city', 100).notNullable().defaultTo('');
      t.string('postcode', 20).notNullable().defaultTo('');
      t.string('country', 100).notNullable().defaultTo('');
      t.string('registration_number', 60).notNullable().defaultTo('');
      t.string('vat_number', 60).notNullable().defaultTo('');
      t.integer('industry_id').nullable().references('id').inTable('crm_industries');
      t.integer('account_manager_id').nullable();
      t.string('customer_number', 60).nullable();
      t.boolean('is_supplier').notNullable().defaultTo(false);
      t.boolean('is_key_account').notNullable().defaultTo(false);
      t.date('service_expires_on').nullable();
      t.text('note').notNullable().defaultTo('');
      t.boolean('is_global').notNullable().defaultTo(false);
      t.boolean('is_private').notNullable().defaultTo(false);
      t.integer('partner_id').nullable().references('id').inTable('crm_partners').onDelete('SET NULL');
      t.integer('parent_id').nullable().references('id').inTable('crm_accounts').onDelete('SET NULL');
      t.integer('author_id').nullable();
      t.timestamp('deleted_at', { useTz: true }).nullable();
      t.integer('deleted_by').nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      timestamps(t);
      t.index(['deleted_at', 'name']);
      t.index(['account_manager_id']);
      t.index(['industry_id']);
      t.index(['account_type_id']);
      t.index(['partner_id']);
      t.index(['parent_id']);
      t.index(['author_id']);
      t.index(['customer_number']);
    });
    await knex.schema.createTable('crm_account_projects', (t) => {
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('project_id').notNullable();
      t.primary(['account_id', 'project_id']);
      t.index(['project_id', 'account_id']);
    });
    await knex.schema.createTable('crm_account_group_members', (t) => {
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('group_id').notNullable().references('id').inTable('crm_account_groups').onDelete('CASCADE');
      t.primary(['account_id', 'group_id']);
      t.index(['group_id', 'account_id']);
    });
    await knex.schema.createTable('crm_favorite_accounts', (t) => {
      t.integer('user_id').notNullable();
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.primary(['user_id', 'account_id']);
    });

    await knex.schema.createTable('crm_custom_fields', (t) => {
      t.increments('id');
      t.string('entity', 40).notNullable();
      t.integer('account_type_id').nullable().references('id').inTable('crm_account_types').onDelete('CASCADE');
      t.string('name', 100).notNullable();
      t.string('field_format', 20).notNullable();
      // JSON array of the allowed values, for list fields.
      t.text('possible_values').notNullable().defaultTo('[]');
      t.boolean('is_required').notNullable().defaultTo(false);
      t.boolean('active').notNullable().defaultTo(true);
      t.integer('position').notNullable().defaultTo(0);
      t.index(['entity', 'account_type_id']);
    });
    await knex.schema.createTable('crm_custom_values', (t) => {
      t.increments('id');
      t.integer('custom_field_id').notNullable().references('id').inTable('crm_custom_fields').onDelete('CASCADE');
      t.string('record_type', 40).notNullable();
      t.integer('record_id').notNullable();
      t.text('value').nullable();
      t.unique(['record_type', 'record_id', 'custom_field_id']);
    });

    await knex.schema.createTable('crm_personal_contacts', (t) => {
      t.increments('id');
      t.integer('contact_type_id').nullable().references('id').inTable('crm_contact_types');
      t.string('first_name', 100).notNullable().defaultTo('');
      t.string('last_name', 100).notNullable();
      t.string('job_title', 100).notNullable().defaultTo('');
      t.string('email', 200).notNullable().defaultTo('');
      t.string('phone', 60).notNullable().defaultTo('');
      t.string('city', 100).notNullable().defaultTo('');
      t.string('country', 100).notNullable().defaultTo('');
      t.text('note').notNullable().defaultTo('');
      t.integer('partner_id').nullable().references('id').inTable('crm_partners').onDelete('SET NULL');
      t.integer('project_id').nullable();
      t.integer('owner_id').nullable();
      t.integer('author_id').nullable();
      t.timestamp('deleted_at', { useTz: true }).nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      timestamps(t);
      t.index(['deleted_at', 'last_name', 'first_name']);
      t.index(['partner_id']);
      t.index(['project_id']);
      t.index(['owner_id']);
    });
    await knex.schema.createTable('crm_account_contacts', (t) => {
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('contact_id').notNullable().references('id').inTable('crm_personal_contacts').onDelete('CASCADE');
      t.string('role', 100).notNullable().defaultTo('');
      t.primary(['account_id', 'contact_id']);
      t.index(['contact_id']);
    });

    await knex.schema.createTable('crm_account_links', (t) => {
      t.increments('id');
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('related_account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('relation_type_id').notNullable().references('id').inTable('crm_relation_types');
      t.unique(['account_id', 'related_account_id', 'relation_type_id']);
      t.index(['related_account_id']);
    });
    await knex.schema.createTable('crm_internal_relations', (t) => {
      t.increments('id');
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.integer('user_id').notNullable();
      t.integer('category_id').notNullable().references('id').inTable('crm_internal_relation_categories');
      t.date('since').nullable();
      // Hundredths of a percent (12.5 % → 1250): exact, like money.
      t.integer('commission_bp').nullable();
      t.index(['account_id']);
      t.index(['user_id']);
    });
    await knex.schema.createTable('crm_task_accounts', (t) => {
      t.integer('task_id').notNullable();
      t.integer('account_id').notNullable().references('id').inTable('crm_accounts').onDelete('CASCADE');
      t.boolean('is_primary').notNullable().defaultTo(false);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.primary(['task_id', 'account_id']);
      t.index(['account_id']);
    });

    await knex.schema.createTable('crm_role_visibility', (t) => {
      t.integer('role_id').notNullable();
      t.string('entity', 40).notNullable();
      t.string('level', 20).notNullable();
      t.primary(['role_id', 'entity']);
    });
    await knex.schema.createTable('crm_user_supervisors', (t) => {
      t.integer('user_id').primary();
      t.integer('supervisor_id').notNullable();
      t.index(['supervisor_id']);
    });

    await knex.schema.createTable('crm_saved_filters', (t) => {
      t.increments('id');
      t.string('entity', 40).notNullable();
      t.string('name', 100).notNullable();
      t.integer('user_id').notNullable();
      t.boolean('is_shared').notNullable().defaultTo(false);
      t.text('params').notNullable();
      t.index(['entity', 'user_id']);
    });

    await knex.schema.createTable('crm_attachments', (t) => {
      t.increments('id');
      t.string('record_type', 40).notNullable();
      t.integer('record_id').notNullable();
      t.string('filename', 255).notNullable();
      t.integer('version').notNullable();
      t.string('content_type', 120).notNullable();
      t.bigInteger('size').notNullable();
      t.string('sha256', 64).notNullable();
      t.string('storage_key', 255).notNullable();
      t.integer('author_id').nullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.unique(['record_type', 'record_id', 'filename', 'version']);
    });

    // The lists every install starts with (admins add, rename and switch them off later).
    await knex('crm_account_types').insert([
      { name: 'Personal', position: 1, use_first_last_name: true, use_name: false },
      { name: 'Company', position: 2, use_first_last_name: false, use_name: true },
      { name: 'Account', position: 3, use_first_last_name: false, use_name: true },
    ]);
    await knex('crm_contact_types').insert([{ name: 'Employee', position: 1 }, { name: 'Consultant', position: 2 }]);
    await knex('crm_relation_types').insert([
      { name: 'Subsidiary of', inverse_name: 'Parent company of', position: 1 },
      { name: 'Supplier of', inverse_name: 'Customer of', position: 2 },
      { name: 'Partner of', inverse_name: 'Partner of', position: 3 },
    ]);
    await knex('crm_internal_relation_categories').insert([
      { name: 'Account manager', position: 1 }, { name: 'Technical contact', position: 2 }, { name: 'Sales support', position: 3 },
    ]);
    await knex('crm_industries').insert(['Manufacturing', 'Retail', 'Software', 'Healthcare', 'Public sector', 'Finance'].map((name, i) => ({ name, position: i + 1 })));
  },
  async down(knex: Knex) {
    for (const table of [
      'crm_attachments', 'crm_saved_filters', 'crm_user_supervisors', 'crm_role_visibility', 'crm_task_accounts',
      'crm_internal_relations', 'crm_account_links', 'crm_account_contacts', 'crm_personal_contacts', 'crm_custom_values',
      'crm_custom_fields', 'crm_favorite_accounts', 'crm_account_group_members', 'crm_account_projects', 'crm_accounts',
      'crm_partner_users', 'crm_partners', 'crm_internal_relation_categories', 'crm_relation_types', 'crm_contact_types',
      'crm_account_groups', 'crm_industries', 'crm_account_types',
    ]) await knex.schema.dropTableIfExists(table);
  },
};
