import type { Knex } from 'knex';
import type { CrmMigration } from './index';

/**
 * A quote line's identity across copies (SPEC C2, C4): `origin_item_id` is the quote item a copied line was first
 * quoted as — set when a quote is duplicated, carried on by copies of copies, null on an original line. A sale keys
 * its contracts by that identity, so after "unlock, duplicate, activate the copy" the sold lines are recognised and
 * neither their contracts nor the automation are made a second time. It is an identity, not a link: the original
 * item may be deleted with its quote, so there is no foreign key.
 *
 * down drops the column with `alter table … drop column` on both databases (SQLite ≥ 3.35): knex's dropColumn
 * rebuilds the table on SQLite, which would drop the table-version triggers of migration 024 with it.
 */
export const quoteItemOrigin: CrmMigration = {
  name: '20261124_032_quote_item_origin',
  async up(knex: Knex) {
    await knex.schema.alterTable('crm_quote_items', (t) => {
      t.integer('origin_item_id').nullable();
    });
  },
  async down(knex: Knex) {
    await knex.raw('alter table crm_quote_items drop column origin_item_id');
  },
};
