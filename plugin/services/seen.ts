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
