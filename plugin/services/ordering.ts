import type { Knex } from 'knex';
import type { FieldChange } from './journal';

/**
 * Moves row `id` of an ordered admin list one place up or down, renumbering the list 1…n so positions stay
 * distinct. Returns the moved row's position change for the journal (none when it is already at the edge).
 */
export async function moveInList(trx: Knex.Transaction, table: string, id: number, direction: 'up' | 'down'): Promise<FieldChange[]> {
  const rows = (await trx(table).orderBy([{ column: 'position' }, { column: 'id' }]).select('id', 'position'))
    .map((r: { id: number; position: number }) => ({ id: Number(r.id), position: Number(r.position) }));
  const from = rows.findIndex((r) => r.id === id);
  const to = direction === 'up' ? from - 1 : from + 1;
  if (from < 0 || to < 0 || to >= rows.length) return [];
  const order = rows.map((r) => r.id);
  [order[from], order[to]] = [order[to], order[from]];
  const changes: FieldChange[] = [];
  for (const [i, rowId] of order.entries()) {
    const old = rows.find((r) => r.id === rowId)!.position;
    if (old === i + 1) continue;
    await trx(table).where({ id: rowId }).update({ position: i + 1 });
    if (rowId === id) changes.push({ field: 'position', old, new: i + 1 });
  }
  return changes;
}
