import type { Knex } from 'knex';
import type { Migration } from '../db';

/** The reference host's schema. Tracked in `knex_migrations_host`; plugins keep their own tables. */
export const hostMigrations: Migration[] = [
  {
    name: '20261123_001_host_schema',
    async up(knex: Knex) {
      await knex.schema.createTable('host_settings', (t) => {
        t.string('name', 100).primary();
        t.text('value').notNullable();
      });
      await knex.schema.createTable('users', (t) => {
        t.increments('id');
        t.string('login', 60).notNullable().unique();
        t.string('name', 120).notNullable();
        t.string('email', 200).notNullable();
        t.string('password_hash', 200).notNullable();
        t.boolean('admin').notNullable().defaultTo(false);
        t.string('status', 10).notNullable().defaultTo('active');
        t.string('api_key', 64).nullable().unique();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
      // The session store's own layout (connect-session-knex), created here so the store never alters schema.
      await knex.schema.createTable('sessions', (t) => {
        t.string('sid').primary();
        t.text('sess').notNullable();
        t.timestamp('expired', { useTz: true }).notNullable().index();
      });
      await knex.schema.createTable('projects', (t) => {
        t.increments('id');
        t.string('identifier', 100).notNullable().unique();
        t.string('name', 200).notNullable();
        t.text('description').notNullable().defaultTo('');
        t.integer('parent_id').nullable().references('id').inTable('projects').onDelete('RESTRICT');
        t.boolean('is_template').notNullable().defaultTo(false);
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.index(['parent_id']);
      });
      await knex.schema.createTable('project_modules', (t) => {
        t.integer('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
        t.string('module', 60).notNullable();
        t.primary(['project_id', 'module']);
      });
      await knex.schema.createTable('roles', (t) => {
        t.increments('id');
        t.string('name', 60).notNullable().unique();
        t.integer('position').notNullable().defaultTo(0);
      });
      await knex.schema.createTable('role_permissions', (t) => {
        t.integer('role_id').notNullable().references('id').inTable('roles').onDelete('CASCADE');
        t.string('permission', 64).notNullable();
        t.primary(['role_id', 'permission']);
        t.index(['permission']);
      });
      await knex.schema.createTable('members', (t) => {
        t.increments('id');
        t.integer('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
        t.integer('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
        t.integer('role_id').notNullable().references('id').inTable('roles').onDelete('RESTRICT');
        t.unique(['project_id', 'user_id']);
        t.index(['user_id']);
      });
      await knex.schema.createTable('tasks', (t) => {
        t.increments('id');
        t.integer('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
        t.string('subject', 255).notNullable();
        t.text('description').notNullable().defaultTo('');
        t.string('status', 20).notNullable().defaultTo('new');
        t.integer('assignee_id').nullable().references('id').inTable('users').onDelete('SET NULL');
        t.date('due_date').nullable();
        t.integer('author_id').nullable().references('id').inTable('users').onDelete('SET NULL');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.index(['project_id', 'id']);
        t.index(['assignee_id']);
      });
    },
    async down(knex: Knex) {
      for (const table of ['tasks', 'members', 'role_permissions', 'roles', 'project_modules', 'projects', 'sessions', 'users', 'host_settings']) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  {
    // Links a plugin gives a project it creates (NewProjectFromTemplate.links): "made for CRM contract …".
    name: '20261123_002_project_links',
    async up(knex: Knex) {
      await knex.schema.createTable('project_links', (t) => {
        t.increments('id');
        t.integer('project_id').notNullable().references('id').inTable('projects').onDelete('CASCADE');
        t.string('label', 200).notNullable();
        t.string('url', 500).notNullable();
        t.index(['project_id']);
      });
    },
    async down(knex: Knex) {
      await knex.schema.dropTableIfExists('project_links');
    },
  },
];
