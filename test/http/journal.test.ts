import { journalMany, type JournalEntry } from '../../plugin/services/journal';
import { startTestHost, statementsDuring, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

describe('journalMany (P6)', () => {
  test('writes many entries with their details in a few multi-row inserts, each detail on its own entry, in order', async () => {
    const userId = host.demo.users.director.id;
    // Entries on a few records (several on the same one), with 0–3 details each; an empty update is not written.
    const entries: JournalEntry[] = Array.from({ length: 1203 }, (_, i) => ({
      type: 'jm_test', id: i % 7, userId, action: i % 5 === 0 ? 'create' : 'update',
      changes: Array.from({ length: (i % 4) + (i % 5 === 0 ? 0 : 1) }, (_, k) => ({ field: `f${k}`, old: k === 0 ? null : i, new: `${i}/${k}` })),
      notes: i % 3 === 0 ? `entry ${i}` : undefined,
    }));
    entries.push({ type: 'jm_test', id: 1, userId, action: 'update', changes: [] });
    const { statements } = await statementsDuring(host.db.knex, () => host.db.knex.transaction((trx) => journalMany(trx, entries)));

    const journals = await host.db.knex('crm_journals').where({ journalized_type: 'jm_test' }).orderBy('id');
    expect(journals.map((j) => [Number(j.journalized_id), j.action, j.notes, j.user_id]))
      .toEqual(entries.slice(0, 1203).map((e) => [e.id, e.action, e.notes ?? '', userId]));
    const details = await host.db.knex('crm_journal_details').whereIn('journal_id', journals.map((j) => j.id)).orderBy('id');
    const byJournal = new Map<number, Array<[string, string | null, string | null]>>();
    for (const d of details) byJournal.set(Number(d.journal_id), [...(byJournal.get(Number(d.journal_id)) ?? []), [d.field, d.old_value, d.new_value]]);
    journals.forEach((j, i) => {
      expect(byJournal.get(Number(j.id)) ?? []).toEqual(entries[i].changes.map((c) => [c.field, c.old === null ? null : String(c.old), String(c.new)]));
    });
    // 1203 journals in chunks of 500: 3 inserts; their ~2000 details: a few more, not one per entry.
    const inserts = statements.filter((s) => /^insert into [`"]crm_journal/.test(s.sql));
    expect(inserts.filter((s) => /crm_journals[`"]/.test(s.sql))).toHaveLength(3);
    expect(inserts.length).toBeLessThanOrEqual(3 + Math.ceil(details.length / 500) + 3);
  });

  test('nothing to write writes nothing', async () => {
    const { statements } = await statementsDuring(host.db.knex, () => host.db.knex.transaction((trx) => journalMany(trx, [])));
    expect(statements.filter((s) => /insert/i.test(s.sql))).toEqual([]);
  });
});
