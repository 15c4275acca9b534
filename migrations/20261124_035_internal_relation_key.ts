import type { Knex } from 'knex';
import type { CrmMigration } from './index';

const INDEX = 'crm_internal_relations_natural_key';

interface Row {
  id: number;
  account_id: number;
  user_id: number;
  category_id: number;
  since: string | null;
  commission_bp: number | null;
}

/**
 * An internal relation (A7) is one user's involvement with an account in one category: (account, user, category)
 * is its natural key, now a unique index, so a double submit or two simultaneous saves can no longer store it
 * twice (the services answer 422 for the one that comes second).
 *
 * Relations stored twice before are merged first, never refused: of each group the oldest row stays; where it has
 * no "since" date it takes the earliest of the others, and where it has no commission the one of the oldest other
 * row that has one. Each removed row, and what the kept one took, is journaled on its account (by no user, with a
 * note saying why) in the wording of the account's history.
 *
 * down drops the index and keeps the merge: the removed rows were duplicates, and each one is in the journal.
 */
export const internalRelationKey: CrmMigration = {
  name: '20261124_035_internal_relation_key',
  async up(knex: Knex) {
    const groups: { account_id: number; user_id: number; category_id: number }[] = await knex('crm_internal_relations')
      .groupBy('account_id', 'user_id', 'category_id').havingRaw('count(*) > 1').select('account_id', 'user_id', 'category_id');
    const categories = new Map((await knex('crm_internal_relation_categories').select('id', 'name')).map((c) => [Number(c.id), String(c.name)]));
    const now = new Date().toISOString();
    for (const key of groups) {
      const rows: Row[] = (await knex('crm_internal_relations').where(key).orderBy('id').select('id', 'account_id', 'user_id', 'category_id', 'since', 'commission_bp'))
        .map((r) => ({ ...r, id: Number(r.id), account_id: Number(r.account_id), user_id: Number(r.user_id), category_id: Number(r.category_id), since: sinceText(r.since), commission_bp: r.commission_bp === null ? null : Number(r.commission_bp) }));
      const [kept, ...removed] = rows;
      const merged: Row = {
        ...kept,
        since: kept.since ?? removed.map((r) => r.since).filter((s): s is string => s !== null).sort()[0] ?? null,
        commission_bp: kept.commission_bp ?? removed.find((r) => r.commission_bp !== null)?.commission_bp ?? null,
      };
      await knex('crm_internal_relations').whereIn('id', removed.map((r) => r.id)).delete();
      if (merged.since !== kept.since || merged.commission_bp !== kept.commission_bp) {
        await knex('crm_internal_relations').where({ id: kept.id }).update({ since: merged.since, commission_bp: merged.commission_bp });
      }
      const describe = (r: Row) => describeRelation(r, categories);
      const details = [
        ...removed.map((r) => ({ old_value: describe(r), new_value: null })),
        ...(describe(merged) !== describe(kept) ? [{ old_value: describe(kept), new_value: describe(merged) }] : []),
      ];
      const [journal] = await knex('crm_journals').insert({
        journalized_type: 'account', journalized_id: kept.account_id, user_id: null, action: 'update', created_at: now,
        notes: `Internal relation #${kept.id} was stored ${rows.length} times: merged into one (by an update)`,
      }).returning('id');
      await knex('crm_journal_details').insert(details.map((d) => ({ ...d, journal_id: Number(journal.id ?? journal), field: 'internal_relations' })));
    }
    await knex.schema.alterTable('crm_internal_relations', (t) => {
      t.unique(['account_id', 'user_id', 'category_id'], { indexName: INDEX });
    });
  },
  async down(knex: Knex) {
    await knex.schema.alterTable('crm_internal_relations', (t) => {
      t.dropUnique(['account_id', 'user_id', 'category_id'], INDEX);
    });
  },
};

/** A date column as YYYY-MM-DD: PostgreSQL's driver reads it as a Date at local midnight, SQLite as stored. */
function sinceText(v: unknown): string | null {
  if (v === null || v === undefined || v === '') return null;
  if (v instanceof Date) return `${v.getFullYear()}-${String(v.getMonth() + 1).padStart(2, '0')}-${String(v.getDate()).padStart(2, '0')}`;
  return String(v).slice(0, 10);
}

/**
 * As the account's history writes an internal relation ("User #5 · Account manager · since 2026-01-15 · 12.5 %"),
 * with the user by id: user names are the host's, out of a migration's reach.
 */
function describeRelation(r: Row, categories: Map<number, string>): string {
  const commission = r.commission_bp === null ? null : `${(r.commission_bp / 100).toFixed(2).replace(/\.?0+$/, '')} %`;
  return [`User #${r.user_id}`, categories.get(r.category_id) ?? `#${r.category_id}`, r.since ? `since ${r.since}` : null, commission].filter(Boolean).join(' · ');
}
