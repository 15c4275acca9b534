import { forgetOnWrite, isWrite, readOnce, withRequestMemo } from '../../plugin/services/request-memo';
import type { Knex } from 'knex';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

/** The plugin's per-request memo on a real database (SQLite, or PostgreSQL with DATABASE_URL). */
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.knex.schema.createTable('memo_notes', (t) => { t.increments('id'); t.string('text'); });
  forgetOnWrite(db.knex);
});

afterAll(async () => {
  await db.destroy();
});

beforeEach(async () => {
  await db.knex('memo_notes').delete();
  await db.knex('memo_notes').insert({ text: 'first' });
});

/** Reads the notes through the memo, counting the reads that reach the database. */
function notesReader() {
  let reads = 0;
  const read = (through: Knex = db.knex) => readOnce(through, 'notes', async () => {
    reads++;
    return (await through('memo_notes').orderBy('id').pluck('text')).map(String);
  });
  return { read, reads: () => reads };
}

describe('the plugin’s request memo', () => {
  test('within a request, a second read is answered from the first', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      expect(await notes.read()).toEqual(['first']);
      expect(await notes.read()).toEqual(['first']);
    });
    expect(notes.reads()).toBe(1);
  });

  test('a write of the request’s own makes the next read go to the database, and see the write', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      expect(await notes.read()).toEqual(['first']);
      await db.knex('memo_notes').insert({ text: 'second' });
      expect(await notes.read()).toEqual(['first', 'second']);
      await db.knex('memo_notes').where({ text: 'first' }).update({ text: 'changed' });
      expect(await notes.read()).toEqual(['changed', 'second']);
      await db.knex('memo_notes').where({ text: 'second' }).delete();
      expect(await notes.read()).toEqual(['changed']);
    });
    expect(notes.reads()).toBe(4);
  });

  test('a transaction’s writes count too', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      expect(await notes.read()).toEqual(['first']);
      await db.knex.transaction(async (trx) => { await trx('memo_notes').insert({ text: 'in a transaction' }); });
      expect(await notes.read()).toEqual(['first', 'in a transaction']);
    });
  });

  test('what a transaction reads is not remembered: it may hold the transaction’s own uncommitted writes', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      await db.knex.transaction(async (trx) => {
        await trx('memo_notes').insert({ text: 'not yet committed' });
        expect(await notes.read(trx)).toEqual(['first', 'not yet committed']);
        expect(await notes.read(trx)).toEqual(['first', 'not yet committed']);
      });
    });
    expect(notes.reads()).toBe(2);
  });

  test('each request has its own memo, and code outside a request reads every time', async () => {
    const notes = notesReader();
    await withRequestMemo(() => notes.read());
    await db.knex('memo_notes').insert({ text: 'between requests' });
    expect(await withRequestMemo(() => notes.read())).toEqual(['first', 'between requests']);
    await notes.read();
    await notes.read();
    expect(notes.reads()).toBe(4);
  });

  test('another request’s write does not empty this request’s memo', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      await notes.read();
      await withRequestMemo(async () => { await db.knex('memo_notes').insert({ text: 'elsewhere' }); });
      expect(await notes.read()).toEqual(['first']);
    });
    expect(notes.reads()).toBe(1);
  });

  test('a read that starts with WITH (a recursive tree) keeps the memo; a WITH that writes empties it', async () => {
    const notes = notesReader();
    await withRequestMemo(async () => {
      await notes.read();
      await db.knex.raw('with recursive n(i) as (select 1 union all select i + 1 from n where i < 3) select count(*) as c from n');
      expect(await notes.read()).toEqual(['first']);
      expect(notes.reads()).toBe(1);
      await db.knex.raw("with added(text) as (select 'by a with') insert into memo_notes (text) select text from added");
      expect(await notes.read()).toEqual(['first', 'by a with']);
    });
    expect(notes.reads()).toBe(2);
  });

  test('what counts as a write', () => {
    for (const sql of ['insert into t values (1)', '  UPDATE t set updated_at = 1', 'delete from t', 'BEGIN;', 'COMMIT;', 'savepoint trx1', 'with x as (select 1) delete from t']) {
      expect([sql, isWrite(sql)]).toEqual([sql, true]);
    }
    for (const sql of ['select updated_at, deleted_at from t', 'with recursive tree as (select * from projects) select * from tree', 'pragma table_info(t)']) {
      expect([sql, isWrite(sql)]).toEqual([sql, false]);
    }
  });
});
