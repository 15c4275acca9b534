import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Quotes on opportunities, their items, exchange rates (SPEC Q5–Q7, S4). */
export const quotes: CrmMigration = {
  name: '20261123_014_quotes',
  async up(knex: Knex) {
    await knex.schema.createTable('crm_quotes', (t) => {
      t.increments('id');
      t.integer('opportunity_id').notNullable().references('id').inTable('crm_opportunities').onDelete('CASCADE');
      t.string('number', 40).notNullable().unique();
      t.string('name', 200).notNullable();
      t.string('currency', 3).notNullable();
      t.string('brand', 100).notNullable().defaultTo('');
      t.string('product_version', 100).notNullable().defaultTo('');
      t.date('valid_from').nullable();
      t.date('valid_to').nullable();
      t.boolean('is_active').notNullable().defaultTo(false);
      t.integer('author_id').nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['opportunity_id', 'is_active']);
    });
    await knex.schema.createTable('crm_quote_items', (t) => {
      t.increments('id');
      t.integer('quote_id').notNullable().references('id').inTable('crm_quotes').onDelete('CASCADE');
      t.integer('position').notNullable().defaultTo(0);
      // 'product' | 'bundle' (priced from a price book), 'manual' (typed by hand), 'rounding'.
      t.string('kind', 20).notNullable();
      t.integer('product_id').nullable().references('id').inTable('crm_products').onDelete('SET NULL');
      t.integer('bundle_id').nullable().references('id').inTable('crm_bundles').onDelete('SET NULL');
      t.integer('price_book_id').nullable().references('id').inTable('crm_price_books').onDelete('SET NULL');
      t.string('code', 60).notNullable().defaultTo('');
      t.string('name', 200).notNullable();
      t.text('description').notNullable().defaultTo('');
      t.string('unit', 60).notNullable().defaultTo('');
      // Thousandths of a unit (1.5 days → 1500): quantities may be fractional, arithmetic stays integer.
      t.bigInteger('quantity_milli').notNullable();
      t.bigInteger('unit_price_minor').notNullable();
      // null | 'percent' (value in hundredths of a percent) | 'amount' (value in minor units, per line).
      t.string('discount_kind', 10).nullable();
      t.bigInteger('discount_value').notNullable().defaultTo(0);
      // Hundredths of a percent (25 % → 2500).
      t.integer('tax_rate_bp').notNullable().defaultTo(0);
      t.index(['quote_id', 'position']);
    });
    await knex.schema.createTable('crm_exchange_rates', (t) => {
      t.increments('id');
      t.string('from_currency', 3).notNullable();
      t.string('to_currency', 3).notNullable();
      // Millionths (1 EUR = 11.234567 SEK → 11234567): exact, like money.
      t.bigInteger('rate_micro').notNullable();
      t.date('valid_on').notNullable();
      t.unique(['from_currency', 'to_currency', 'valid_on']);
    });
  },
  async down(knex: Knex) {
    for (const table of ['crm_exchange_rates', 'crm_quote_items', 'crm_quotes']) await knex.schema.dropTableIfExists(table);
  },
};
