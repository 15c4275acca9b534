import type { Knex } from 'knex';
import type { CrmMigration } from './index';
import { isPg } from './dialect';

/**
 * SQLite: a sales rep with "own" reach sees only the accounts they manage, those they created, and the global
 * ones (A4). A filtered page of theirs walks these three streams in name order and merges them (see
 * `ownStreams` in services/accounts.ts) instead of walking the name index of every account and skipping the
 * 96 % that are someone else's: a rep's search at 100,000 accounts, 4.1 → 1.8 ms. Partial indexes of the live
 * accounts, as the walk reads only those.
 *
 * PostgreSQL's planner chooses its own way through the scope (the rep's search there grows 1.3× from 1/100 to
 * full size): it gets none of them, so its writes do not pay for indexes it would not read.
 */
export const ACCOUNT_STREAM_INDEXES = {
  manager: 'crm_accounts_manager_name_index',
  author: 'crm_accounts_author_name_index',
  global: 'crm_accounts_global_name_index',
} as const;
export type AccountStream = keyof typeof ACCOUNT_STREAM_INDEXES;
/** The column each stream is the accounts of one value of. */
export const STREAM_LEADING = { manager: 'account_manager_id', author: 'author_id', global: 'is_global' } as const;

/** Creates (or re-creates, after dropping) each stream's index: its leading column, name and id, then `trailing`. */
export async function createStreamIndexes(knex: Knex, trailing: (stream: AccountStream) => readonly string[]): Promise<void> {
  for (const [stream, index] of Object.entries(ACCOUNT_STREAM_INDEXES) as [AccountStream, string][]) {
    const columns = [STREAM_LEADING[stream], 'name', 'id', ...trailing(stream)];
    await knex.raw(`drop index if exists ${index}`);
    await knex.raw(`create index ${index} on crm_accounts (${columns.join(', ')}) where deleted_at is null`);
  }
}

export const accountStreamIndexes: CrmMigration = {
  name: '20261124_028_account_stream_indexes',
  async up(knex) {
    if (isPg(knex)) return;
    await createStreamIndexes(knex, () => []);
  },
  async down(knex) {
    if (isPg(knex)) return;
    for (const index of Object.values(ACCOUNT_STREAM_INDEXES)) await knex.raw(`drop index if exists ${index}`);
  },
};
