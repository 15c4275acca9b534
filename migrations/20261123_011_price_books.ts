import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Price books, products with units per price book, bundles, product categories (SPEC Q1–Q4). */
export const priceBooks: CrmMigration = {
  name: '20261123_011_price_books',
  async up(knex: Knex) {
    const timestamps = (t: Knex.CreateTableBuilder) => {
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    };
    await knex.schema.createTable('crm_product_categories', (t) => {
      t.increments('id');
      t.string('name', 100).notNullable().unique();
      // The contract a sold item of this category becomes: 'time_based' (with a default duration) or 'one_time'.
      t.string('contract_kind', 20).notNullable();
      t.integer('default_duration_months').nullable();
      t.integer('position').notNullable().defaultTo(0);
      t.boolean('active').notNullable().defaultTo(true);
    });
    await knex.schema.createTable('crm_price_books', (t) => {
      t.increments('id');
      t.string('name', 200).notNullable();
      t.text('description').notNullable().defaultTo('');
      t.string('brand', 100).notNullable().defaultTo('');
      t.string('product_version', 100).notNullable().defaultTo('');
      t.boolean('active').notNullable().defaultTo(true);
      // "Update": a newer version of an older price book.
      t.integer('previous_id').nullable().references('id').inTable('crm_price_books').onDelete('SET NULL');
      t.integer('author_id').nullable();
      t.timestamp('deleted_at', { useTz: true }).nullable();
      timestamps(t);
      t.index(['deleted_at', 'name']);
    });
    await knex.schema.createTable('crm_price_book_projects', (t) => {
      t.integer('price_book_id').notNullable().references('id').inTable('crm_price_books').onDelete('CASCADE');
      t.integer('project_id').notNullable();
      t.primary(['price_book_id', 'project_id']);
      t.index(['project_id']);
    });
    await knex.schema.createTable('crm_products', (t) => {
      t.increments('id');
      t.string('name', 200).notNullable();
      t.text('description').notNullable().defaultTo('');
      t.string('code', 60).notNullable().unique();
      t.boolean('active').notNullable().defaultTo(true);
      t.integer('category_id').nullable().references('id').inTable('crm_product_categories');
      t.timestamp('deleted_at', { useTz: true }).nullable();
      timestamps(t);
      t.index(['deleted_at', 'name']);
      t.index(['category_id']);
    });
    await knex.schema.createTable('crm_product_prices', (t) => {
      t.increments('id');
      t.integer('price_book_id').notNullable().references('id').inTable('crm_price_books').onDelete('CASCADE');
      t.integer('product_id').notNullable().references('id').inTable('crm_products').onDelete('CASCADE');
      t.string('unit_name', 60).notNullable();
      t.bigInteger('price_minor').notNullable();
      t.string('currency', 3).notNullable();
      t.unique(['price_book_id', 'product_id', 'unit_name', 'currency']);
      t.index(['product_id']);
      t.index(['price_book_id', 'currency']);
    });
    await knex.schema.createTable('crm_bundles', (t) => {
      t.increments('id');
      t.integer('price_book_id').notNullable().references('id').inTable('crm_price_books').onDelete('CASCADE');
      t.string('name', 200).notNullable();
      t.text('description').notNullable().defaultTo('');
      t.string('code', 60).notNullable();
      t.boolean('active').notNullable().defaultTo(true);
      t.bigInteger('price_minor').notNullable();
      t.string('currency', 3).notNullable();
      timestamps(t);
      t.unique(['price_book_id', 'code']);
    });
    await knex.schema.createTable('crm_bundle_items', (t) => {
      t.increments('id');
      t.integer('bundle_id').notNullable().references('id').inTable('crm_bundles').onDelete('CASCADE');
      t.integer('product_id').notNullable().references('id').inTable('crm_products');
      t.string('unit_name', 60).notNullable();
      // The item's share of the bundle price, relative to the other items' weights (50:50, 3:1 …).
      t.integer('weight').notNullable();
      t.integer('position').notNullable().defaultTo(0);
      t.index(['bundle_id']);
    });

    await knex('crm_product_categories').insert([
      { name: 'Software licences', contract_kind: 'time_based', default_duration_months: 12, position: 1, active: true },
      { name: 'Support services', contract_kind: 'time_based', default_duration_months: 12, position: 2, active: true },
      { name: 'Implementation services', contract_kind: 'one_time', default_duration_months: null, position: 3, active: true },
      { name: 'Hardware', contract_kind: 'one_time', default_duration_months: null, position: 4, active: true },
    ]);
  },
  async down(knex: Knex) {
    for (const table of ['crm_bundle_items', 'crm_bundles', 'crm_product_prices', 'crm_products', 'crm_price_book_projects', 'crm_price_books', 'crm_product_categories']) {
      await knex.schema.dropTableIfExists(table);
    }
  },
};
