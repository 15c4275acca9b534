import type { Knex } from 'knex';

/** A reference to another record as a reader may be given it: its id, and whether one is stored that they may not see. */
export type SeenReference<K extends string> = Record<`${K}_id`, number | null> & Record<`${K}_hidden`, boolean>;

/**
 * `<kind>_id` and `<kind>_hidden` for a record's reference to another (its account, partner, contact, parent): the
 * id where the reader may see that record (`seen`), else null, and `<kind>_hidden` when one is stored, so that JSON
 * never confirms a record the reader may not see by its id but says there is one, as the pages say "an account you
 * cannot see". Not for what the field rules hide (S5): those fields are left out, without the flag.
 */
export function seenReference<K extends string>(kind: K, stored: number | null, seen: boolean): SeenReference<K> {
  return { [`${kind}_id`]: seen ? stored : null, [`${kind}_hidden`]: stored !== null && !seen } as SeenReference<K>;
}

/**
 * Several "those of these ids the reader may see" queries, each selecting `id` and `name` (visibleAccountsAmong,
 * visiblePartnersAmong, visibleOpportunitiesAmong), run as one statement (union all), their answers by kind: a list
 * names the accounts of its page and checks its other references in one round trip. A kind given no query (no ids to
 * ask about) answers an empty map. Kinds are code's own words, written into the SQL as they are.
 */
export async function seenAmong<K extends string>(knex: Knex, queries: Record<K, Knex.QueryBuilder | null>): Promise<Record<K, Map<number, string>>> {
  const kinds = Object.keys(queries) as K[];
  const out = Object.fromEntries(kinds.map((kind) => [kind, new Map<number, string>()])) as Record<K, Map<number, string>>;
  const parts: Knex.QueryBuilder[] = [];
  for (const kind of kinds) {
    if (!/^[a-z_]+$/.test(kind)) throw new Error(`Not a kind of record: ${kind}`);
    const q = queries[kind];
    if (q) parts.push(q.select(knex.raw(`'${kind}' as kind`)));
  }
  if (!parts.length) return out;
  const found: { kind: K; id: number | string; name: string }[] = await (parts.length > 1 ? parts[0].unionAll(parts.slice(1)) : parts[0]);
  for (const f of found) out[f.kind].set(Number(f.id), String(f.name));
  return out;
}
