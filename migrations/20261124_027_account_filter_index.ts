import type { Knex } from 'knex';
import type { CrmMigration } from './index';
import { ACCOUNT_NAME_INDEX } from './20261123_026_account_list_index';
import { isPg } from './dialect';

/**
 * SQLite: a filtered account list that walks the name index (see `nameOrderWalk` in services/accounts.ts)
 * tests every entry it passes against the filters. With the filter columns in the index those tests read the
 * index alone; without them each passed entry costs a read of its table row. A sales rep sees a few percent of
 * the accounts, so one page of a common industry passes thousands of entries: 9 ms → 1 ms at 100,000 accounts.
 * It replaces migration 026's index, whose columns it starts with, under the same name.
 *
 * PostgreSQL does not walk that index in name order: its first column is matched by `deleted_at IS NULL`, which
 * PostgreSQL does not count as fixing the column for the sort. So it read all 100,000 accounts and sorted them
 * for each page (380 ms). A partial index of the live accounts by (name, id) gives it the walk, and the
 * `(name, id) >=` start of a page. It keeps 026's index as it was: offered the wider one, it scanned it whole
 * three times over for a rep's filtered page (41 ms) where 026's served in a few.
 */
const NAME_SCOPE = ['deleted_at', 'name', 'id', 'is_private', 'author_id', 'is_global', 'account_manager_id'];
/** The columns the account list's filters test (besides the scope's, the expiry date and the searched ones). */
export const ACCOUNT_FILTER_COLUMNS = ['industry_id', 'account_type_id', 'is_key_account', 'is_supplier', 'customer_number'] as const;

async function replaceIndex(knex: Knex, from: string[], to: string[]): Promise<void> {
  await knex.schema.alterTable('crm_accounts', (t) => t.dropIndex(from, ACCOUNT_NAME_INDEX));
  await knex.schema.alterTable('crm_accounts', (t) => t.index(to, ACCOUNT_NAME_INDEX));
}

export const LIVE_NAME_INDEX = 'crm_accounts_live_name_index';

export const accountFilterIndex: CrmMigration = {
  name: '20261124_027_account_filter_index',
  async up(knex) {
    if (isPg(knex)) await knex.raw(`create index ${LIVE_NAME_INDEX} on crm_accounts (name, id) where deleted_at is null`);
    else await replaceIndex(knex, NAME_SCOPE, [...NAME_SCOPE, ...ACCOUNT_FILTER_COLUMNS]);
  },
  async down(knex) {
    if (isPg(knex)) await knex.raw(`drop index if exists ${LIVE_NAME_INDEX}`);
    else await replaceIndex(knex, [...NAME_SCOPE, ...ACCOUNT_FILTER_COLUMNS], NAME_SCOPE);
  },
};
