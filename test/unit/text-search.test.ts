import { likePattern, whereAnyContains } from '../../plugin/services/text-search';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

/** The search condition every list shares, on a real database (SQLite, or PostgreSQL under test:pg). */
let db: TestDatabase;
const VALUES = ['Acme Nordic AB', 'ACME nordic', 'acme', 'Örebro Ost', 'örebro', 'STRASSE', 'Straße', '100% cotton', '100 cotton',
  'a_b', 'axb', 'back\\slash', 'Kelvin K', '\u212A', 'İstanbul', 'istanbul', 'Ärztehaus Östersund', 'Ö*st', 'Öxst', 'Ö[a]', 'Éclair', ''];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.knex.schema.createTable('search_probe', (t) => {
    t.increments('id');
    t.string('first');
    t.string('second');
  });
  // Each value once in `first` (with `second` empty or missing), once in `second`: any column may hold the term.
  await db.knex('search_probe').insert(VALUES.flatMap((v, i) => [{ first: v, second: i % 2 ? null : '' }, { first: '', second: v }]));
});
afterAll(async () => { await db.destroy(); });

const found = async (term: string) => (await whereAnyContains(db.knex('search_probe'), ['first', 'second'], term).orderBy('id').pluck('id')).map(Number);
const holding = async (term: string) => (await db.knex('search_probe').where((b) => b.whereRaw("lower(first) like ? escape '\\'", [likePattern(term)])
  .orWhereRaw("lower(second) like ? escape '\\'", [likePattern(term)])).orderBy('id').pluck('id')).map(Number);
const texts = async (ids: number[]) => (await db.knex('search_probe').whereIn('id', ids).orderBy('id').select('first', 'second'))
  .map((r: { first: string | null; second: string | null }) => r.first || r.second);

describe('searching text (every list’s q)', () => {
  test('letter case aside, in any of the columns; % _ and \\ are the characters typed', async () => {
    expect(await texts(await found('ACME'))).toEqual(['Acme Nordic AB', 'Acme Nordic AB', 'ACME nordic', 'ACME nordic', 'acme', 'acme']);
    expect(await texts(await found('mE nOrDiC a'))).toEqual(['Acme Nordic AB', 'Acme Nordic AB']);
    expect(await texts(await found('100%'))).toEqual(['100% cotton', '100% cotton']);
    expect(await texts(await found('a_b'))).toEqual(['a_b', 'a_b']);
    expect(await texts(await found('k\\s'))).toEqual(['back\\slash', 'back\\slash']);
    expect(await found('nowhere')).toEqual([]);
  });

  test('a term of ASCII characters finds exactly the rows lower(column) like the pattern finds, in upper and lower case', async () => {
    // SQLite answers without lower() (its LIKE folds the same ASCII letters); PostgreSQL with it (its LIKE tells
    // cases apart, and the trigram indexes are on lower()).
    const ascii = (v: string) => /^[\x20-\x7e]+$/.test(v);
    const terms = [...VALUES.filter(ascii), ...VALUES.filter(ascii).map((v) => v.toUpperCase()), 'k', 'ss', 'i'];
    for (const term of terms) expect({ term, ids: await found(term) }).toEqual({ term, ids: await holding(term) });
  });

  test('letters beyond ASCII ignore case too (SQLite’s LIKE folds ASCII letters only)', async () => {
    const both = (...texts: string[]) => texts.flatMap((t) => [t, t]);
    for (const term of ['ÖREBRO', 'örebro', 'Örebro', 'öREBRO']) expect({ term, rows: await texts(await found(term)) }).toEqual({ term, rows: both('Örebro Ost', 'örebro') });
    expect(await texts(await found('ärzte'))).toEqual(both('Ärztehaus Östersund'));
    expect(await texts(await found('östersund'))).toEqual(both('Ärztehaus Östersund'));
    expect(await texts(await found('ÉCLAIR'))).toEqual(both('Éclair'));
    expect(await texts(await found('ö'))).toEqual(both('Örebro Ost', 'örebro', 'Ärztehaus Östersund', 'Ö*st', 'Öxst', 'Ö[a]'));
    expect(await texts(await found('ß'))).toEqual(both('Straße'));
  });

  test('with letters beyond ASCII, * ? [ ] are still the characters typed', async () => {
    expect(await texts(await found('ö*'))).toEqual(['Ö*st', 'Ö*st']);
    expect(await texts(await found('ö[a]'))).toEqual(['Ö[a]', 'Ö[a]']);
    expect(await found('ö?')).toEqual([]);
    expect(await texts(await found('ö%'))).toEqual([]);
  });
});
