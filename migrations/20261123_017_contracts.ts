import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/** Selling: contracts made from the active quote's items, and the contract → project automation (SPEC C1–C4). */
export const contracts: CrmMigration = {
  name: '20261123_017_contracts',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.timestamp('sold_at', { useTz: true }).nullable();
      t.integer('sold_by_id').nullable();
    });
    await knex.schema.createTable('crm_contracts', (t) => {
      t.increments('id');
      // What the contract was sold as; identifies it across unlock and sell again (one contract per source).
      // 'item:<quote item id>' or 'item:<quote item id>:bundle-item:<bundle item id>'.
      t.string('source_key', 80).notNullable().unique();
      t.integer('opportunity_id').nullable().references('id').inTable('crm_opportunities').onDelete('SET NULL');
      t.integer('quote_id').nullable().references('id').inTable('crm_quotes').onDelete('SET NULL');
      t.integer('quote_item_id').nullable().references('id').inTable('crm_quote_items').onDelete('SET NULL');
      t.integer('account_id').nullable().references('id').inTable('crm_accounts').onDelete('SET NULL');
      // The opportunity's project: contracts are seen where their opportunity is.
      t.integer('project_id').notNullable();
      t.integer('owner_id').nullable();
      t.integer('product_id').nullable().references('id').inTable('crm_products').onDelete('SET NULL');
      t.integer('category_id').nullable().references('id').inTable('crm_product_categories').onDelete('SET NULL');
      // 'time_based' | 'one_time', copied from the category at sale so later category edits do not rewrite history.
      t.string('kind', 20).notNullable();
      t.string('name', 200).notNullable();
      t.string('code', 60).notNullable().defaultTo('');
      t.bigInteger('quantity_milli').notNullable().defaultTo(1000);
      // The contract's share of the sold line (after discounts, before tax), in the quote's currency.
      t.bigInteger('amount_minor').notNullable();
      t.string('currency', 3).notNullable();
      t.date('starts_on').notNullable();
      t.date('ends_on').nullable();
      t.boolean('renewal').notNullable().defaultTo(false);
      // 'active' | 'cancelled'; an expired time-based contract is one whose ends_on has passed.
      t.string('status', 20).notNullable().defaultTo('active');
      t.integer('author_id').nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      t.index(['opportunity_id']);
      t.index(['account_id']);
      t.index(['project_id', 'kind', 'status']);
      t.index(['category_id', 'status']);
      t.index(['kind', 'status', 'ends_on']);
      t.index(['starts_on']);
      t.index(['owner_id']);
    });
    await knex.schema.createTable('crm_automation_rules', (t) => {
      t.increments('id');
      t.integer('category_id').notNullable().references('id').inTable('crm_product_categories').onDelete('CASCADE');
      // 'project': a project from a template; 'task': a task in a project (or in the project this sale made).
      t.string('action', 20).notNullable();
      t.integer('template_project_id').nullable();
      t.integer('parent_project_id').nullable();
      t.string('name_pattern', 200).notNullable().defaultTo('');
      t.string('task_subject', 200).notNullable().defaultTo('');
      // null with action 'task': the project made by this category's project rule for the same contract.
      t.integer('task_project_id').nullable();
      t.integer('assignee_id').nullable();
      t.integer('due_in_days').nullable();
      t.integer('position').notNullable().defaultTo(0);
      t.boolean('active').notNullable().defaultTo(true);
      // Why the rule cannot run (its template is gone…), shown in settings until an admin fixes the rule.
      t.string('problem', 300).nullable();
      t.integer('lock_version').notNullable().defaultTo(0);
      t.index(['category_id', 'position']);
    });
    await knex.schema.createTable('crm_automation_runs', (t) => {
      t.increments('id');
      t.integer('contract_id').notNullable().references('id').inTable('crm_contracts').onDelete('CASCADE');
      t.integer('rule_id').notNullable().references('id').inTable('crm_automation_rules').onDelete('CASCADE');
      t.integer('created_project_id').nullable();
      t.integer('created_task_id').nullable();
      t.integer('user_id').nullable();
      t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      // The idempotency key: one run per contract and rule, however often the sale is retried.
      t.unique(['contract_id', 'rule_id']);
      t.index(['created_project_id']);
    });
  },
  async down(knex: Knex) {
    for (const table of ['crm_automation_runs', 'crm_automation_rules', 'crm_contracts']) await knex.schema.dropTableIfExists(table);
    await knex.schema.alterTable('crm_opportunities', (t) => {
      t.dropColumn('sold_at');
      t.dropColumn('sold_by_id');
    });
  },
};
