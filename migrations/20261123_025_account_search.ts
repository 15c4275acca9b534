import type { Knex } from 'knex';
import type { CrmMigration } from './index';
import { isPg } from './dialect';

/**
 * The account list's text search (`lower(col) like '%term%'` over five columns) read every account: ~60 ms on
 * SQLite and seconds under load on PostgreSQL at 100,000 accounts. A leading `%` rules out B-tree indexes, so
 * both databases get trigram indexes: substrings of 3+ characters are found through them.
 *
 * SQLite: an FTS5 table with the trigram tokenizer, contentless with `contentless_delete=1`: it holds only the
 * index (the text stays in crm_accounts) and a delete needs just the rowid, so a trigger can never corrupt it
 * by passing old values that differ from what was indexed (the risk of an external-content table). Triggers
 * keep it in step with crm_accounts. CAUTION: a later migration that makes knex rebuild crm_accounts on SQLite
 * (some alterTable changes copy the table and drop the old one) drops these triggers with it; such a
 * migration must recreate them and refill the index (`SQLITE_UP` below).
 *
 * PostgreSQL: pg_trgm GIN indexes on lower(col), which the existing `lower(col) like` conditions use as a
 * BitmapOr. Creating the extension needs rights a database user may lack; then the migration warns and skips
 * the indexes (search stays correct, only slower) rather than blocking every later migration.
 */
export const ACCOUNT_SEARCH_TABLE = 'crm_accounts_search';

/** The columns an account search looks in. */
export const ACCOUNT_SEARCH_COLUMNS = ['name', 'organization', 'email', 'city', 'customer_number'] as const;
const cols = ACCOUNT_SEARCH_COLUMNS.join(', ');
const newValues = ACCOUNT_SEARCH_COLUMNS.map((c) => `new.${c}`).join(', ');

const SQLITE_UP = [
  `create virtual table ${ACCOUNT_SEARCH_TABLE} using fts5(${cols}, tokenize = 'trigram', content = '', contentless_delete = 1)`,
  `insert into ${ACCOUNT_SEARCH_TABLE}(rowid, ${cols}) select id, ${cols} from crm_accounts`,
  `create trigger crm_accounts_search_insert after insert on crm_accounts begin
     insert into ${ACCOUNT_SEARCH_TABLE}(rowid, ${cols}) values (new.id, ${newValues});
   end`,
  `create trigger crm_accounts_search_delete after delete on crm_accounts begin
     delete from ${ACCOUNT_SEARCH_TABLE} where rowid = old.id;
   end`,
  // Only when a searched column (or the id) changes: most updates (lock_version, flags, dates) leave the index alone.
  `create trigger crm_accounts_search_update after update of id, ${cols} on crm_accounts begin
     delete from ${ACCOUNT_SEARCH_TABLE} where rowid = old.id;
     insert into ${ACCOUNT_SEARCH_TABLE}(rowid, ${cols}) values (new.id, ${newValues});
   end`,
];

const SQLITE_DOWN = [
  'drop trigger if exists crm_accounts_search_update',
  'drop trigger if exists crm_accounts_search_delete',
  'drop trigger if exists crm_accounts_search_insert',
  `drop table if exists ${ACCOUNT_SEARCH_TABLE}`,
];

const pgIndex = (col: string) => `crm_accounts_${col}_trgm_index`;

/** True when gin_trgm_ops can be named unqualified: pg_trgm is installed and on the search path. */
async function trigramOpsVisible(knex: Knex): Promise<boolean> {
  const res = await knex.raw(`select 1 from pg_opclass where opcname = 'gin_trgm_ops' and pg_opclass_is_visible(oid)`);
  return res.rows.length > 0;
}

export const accountSearch: CrmMigration = {
  name: '20261123_025_account_search',
  async up(knex: Knex) {
    if (!isPg(knex)) {
      for (const sql of SQLITE_UP) await knex.raw(sql);
      return;
    }
    if (!(await trigramOpsVisible(knex))) {
      try {
        // In a savepoint: a refused CREATE EXTENSION must not abort the migration's transaction.
        await knex.transaction(async (trx) => { await trx.raw('create extension if not exists pg_trgm'); });
      } catch (err) {
        console.warn(`[crm] Account search: could not create the PostgreSQL extension pg_trgm (${(err as Error).message.trim()}). `
          + 'The trigram indexes for the account list search are skipped: search still works, but reads every account. '
          + 'To add them later: as a superuser, "create extension pg_trgm" in this database, then create the indexes of migrations/20261123_025_account_search.ts.');
        return;
      }
      if (!(await trigramOpsVisible(knex))) {
        console.warn('[crm] Account search: pg_trgm is installed in a schema that is not on the search path; the trigram indexes for the account list search are skipped.');
        return;
      }
    }
    for (const col of ACCOUNT_SEARCH_COLUMNS) await knex.raw(`create index if not exists ${pgIndex(col)} on crm_accounts using gin (lower(${col}) gin_trgm_ops)`);
  },
  async down(knex: Knex) {
    if (!isPg(knex)) {
      for (const sql of SQLITE_DOWN) await knex.raw(sql);
      return;
    }
    for (const col of ACCOUNT_SEARCH_COLUMNS) await knex.raw(`drop index if exists ${pgIndex(col)}`);
    // The extension is database-wide: something else may use it (then RESTRICT refuses) or it may have been
    // made by someone with more rights; either way the indexes are gone, which is all the search needs undone.
    try {
      await knex.transaction(async (trx) => { await trx.raw('drop extension if exists pg_trgm restrict'); });
    } catch (err) {
      console.warn(`[crm] Account search: kept the PostgreSQL extension pg_trgm (${(err as Error).message.trim()}).`);
    }
  },
};
