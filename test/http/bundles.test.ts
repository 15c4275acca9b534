import type { Response } from 'supertest';
import { lockVersionIn, racing, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const idOf = (row: unknown) => Number(typeof row === 'object' && row !== null ? (row as { id: number }).id : row);

/** A price book of this test's own, assigned to `project`, pricing `items` (code, unit, minor, currency). */
async function priceBook(name: string, project: string | null, items: Array<[string, string, number, string]>): Promise<number> {
  const knex = host.db.knex;
  const [row] = await knex('crm_price_books').insert({ name, description: '', active: true }).returning('id');
  const id = idOf(row);
  if (project) await knex('crm_price_book_projects').insert({ price_book_id: id, project_id: host.demo.projects[project].id });
  for (const [code, unit, minor, currency] of items) {
    let product = await knex('crm_products').where({ code }).first('id');
    if (!product) {
      const [p] = await knex('crm_products').insert({ code, name: `Product ${code}`, description: '', active: true }).returning('id');
      product = { id: idOf(p) };
    }
    await knex('crm_product_prices').insert({ price_book_id: id, product_id: product.id, unit_name: unit, price_minor: minor, currency });
  }
  return id;
}

async function productId(code: string): Promise<number> {
  return Number((await host.db.knex('crm_products').where({ code }).first('id')).id);
}

async function bundleForm(code: string, over: Record<string, string | string[]> = {}): Promise<Record<string, string | string[]>> {
  return {
    name: 'Starter pack', code, price: '1000.01', currency: 'EUR', active: '1', description: 'All you need',
    item_key: [`${await productId('B-LIC')}:licence`, `${await productId('B-IMPL')}:day`, `${await productId('B-SUP')}:year`, ''],
    item_weight: ['50', '30', '20', ''],
    ...over,
  };
}

let europeBook: number;
let americasBook: number;
let usdBook: number;
beforeAll(async () => {
  const items: Array<[string, string, number, string]> = [['B-LIC', 'licence', 60000, 'EUR'], ['B-IMPL', 'day', 95000, 'EUR'], ['B-SUP', 'year', 20000, 'EUR']];
  europeBook = await priceBook('Bundles Europe', 'crm-europe', items);
  americasBook = await priceBook('Bundles Americas', 'crm-americas', items);
  usdBook = await priceBook('Bundles USD', 'crm-americas', [['B-LIC', 'licence', 70000, 'USD']]);
});

async function createBundle(director: Session, book: number, code: string, form?: Record<string, string | string[]>): Promise<number> {
  const res = await director.post(`/crm/price-books/${book}/bundles`, form ?? await bundleForm(code));
  expect(res.status).toBe(303);
  return Number(/\/crm\/bundles\/(\d+)$/.exec(res.headers.location)![1]);
}

describe('bundles (Q3)', () => {
  test('a manager creates a bundle: stored with its items, journaled, and the detail shows each exact share', async () => {
    const director = await Session.signIn(host.app, 'director');
    const form = await director.get(`/crm/price-books/${europeBook}/bundles/new`);
    expect(form.status).toBe(200);
    expect(visibleText(form.text)).toContain('Product B-LIC (B-LIC) · licence');
    const id = await createBundle(director, europeBook, 'START');
    const bundle = await host.db.knex('crm_bundles').where({ id }).first();
    expect(bundle).toMatchObject({ name: 'Starter pack', code: 'START', currency: 'EUR', price_book_id: europeBook });
    expect(Number(bundle.price_minor)).toBe(100001);
    const items = await host.db.knex('crm_bundle_items').where({ bundle_id: id }).orderBy('position');
    expect(items.map((i) => [i.unit_name, i.weight])).toEqual([['licence', 50], ['day', 30], ['year', 20]]);
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'bundle', journalized_id: id });
    expect(journal.map((j) => j.action)).toEqual(['create']);

    const page = visibleText((await director.get(`/crm/bundles/${id}`)).text);
    // 1000.01 over 50:30:20: the leftover cent goes to the largest remainder; the shares add up to the price.
    expect(page).toContain('Product B-LIC B-LIC licence 50 500.01 EUR');
    expect(page).toContain('Product B-IMPL B-IMPL day 30 300.00 EUR');
    expect(page).toContain('Product B-SUP B-SUP year 20 200.00 EUR');
    expect(page).toContain('Total 100 1 000.01 EUR');
    const json = (await director.get(`/crm/bundles/${id}.json`)).body.bundle;
    expect(json.items.map((i: { share_minor: number }) => i.share_minor)).toEqual([50001, 30000, 20000]);
    expect(json.items.reduce((a: number, i: { share_minor: number }) => a + i.share_minor, 0)).toBe(json.price_minor);
  });

  test('the price book page lists its bundles with "New bundle" for managers only', async () => {
    const director = await Session.signIn(host.app, 'director');
    await createBundle(director, europeBook, 'PANEL');
    const managerPage = await director.get(`/crm/price-books/${europeBook}`);
    expect(managerPage.status).toBe(200);
    const text = visibleText(managerPage.text);
    expect(text).toContain('Bundles');
    expect(text).toContain('PANEL Starter pack 1 000.01 EUR');
    expect(text).toContain('New bundle');
    const rep = await Session.signIn(host.app, 'rep1');
    const repPage = await rep.get(`/crm/price-books/${europeBook}`);
    expect(repPage.status).toBe(200);
    expect(visibleText(repPage.text)).toContain('PANEL Starter pack');
    expect(visibleText(repPage.text)).not.toContain('New bundle');
  });

  test('bad input is refused with 422 naming the field, the input kept and escaped; nothing is stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = await host.db.knex('crm_bundles').count({ n: '*' }).first();
    const cases: Array<[Record<string, string | string[]>, string, string]> = [
      [{ price: '10.999' }, 'price', 'Price has at most 2 decimals in EUR'],
      [{ price: '-5' }, 'price', 'Price must not be negative'],
      [{ currency: 'ABC' }, 'currency', 'Currency is not a known ISO 4217 code'],
      [{ item_weight: ['50', '0', '20', ''] }, 'items', 'Item 2: the weight must be a whole number'],
      [{ item_weight: ['50', '1.5', '20', ''] }, 'items', 'Item 2: the weight must be a whole number'],
      [{ item_key: ['', ''], item_weight: ['', ''] }, 'items', 'Add at least one item'],
      [{ item_key: ['999999:day'], item_weight: ['1'] }, 'items', 'Item 1: the product does not exist'],
      [{ item_key: [`${await productId('B-LIC')}:nonexistent-unit`], item_weight: ['1'] }, 'items', 'Item 1: this price book has no price for that product in the unit “nonexistent-unit”'],
      [{ item_key: [`${await productId('B-LIC')}:licence`, `${await productId('B-LIC')}:licence`], item_weight: ['1', '1'] }, 'items', 'Item 2 repeats item 1'],
      [{ name: '' }, 'name', 'Name is required'],
    ];
    for (const [over, field, message] of cases) {
      const res = await director.post(`/crm/price-books/${europeBook}/bundles`, await bundleForm('BAD', { ...over, description: '<script>alert(1)</script>' }));
      expect(res.status).toBe(422);
      expect(res.text).toContain(`data-field="${field}"`);
      expect(visibleText(res.text)).toContain(message);
      expect(res.text).not.toContain('<script>alert(1)</script>');
      expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    }
    const json = await director.agent.post(`/crm/price-books/${europeBook}/bundles`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ name: 'API pack', code: 'API', price: '1.001', currency: 'EUR', items: [{ product_id: await productId('B-LIC'), unit_name: 'licence', weight: 1 }] });
    expect(json.status).toBe(422);
    expect(json.body.fields.price).toBe('Price has at most 2 decimals in EUR');
    const after = await host.db.knex('crm_bundles').count({ n: '*' }).first();
    expect(Number(after!.n)).toBe(Number(before!.n));
  });

  test('create and edit: the currency must be one the price book prices in, as a move demands; 422 naming the field, nothing stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = Number((await host.db.knex('crm_bundles').count({ n: '*' }).first())!.n);
    const message = 'Bundles Europe has no prices in USD; use a currency it prices in: EUR';
    const form = await director.post(`/crm/price-books/${europeBook}/bundles`, await bundleForm('USD-FORM', { currency: 'USD' }));
    expect(form.status).toBe(422);
    expect(form.text).toContain('data-field="currency"');
    expect(visibleText(form.text)).toContain(message);
    const json = await director.agent.post(`/crm/price-books/${europeBook}/bundles`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ name: 'API pack', code: 'USD-API', price: '10', currency: 'usd', items: [{ product_id: await productId('B-LIC'), unit_name: 'licence', weight: 1 }] });
    expect(json.status).toBe(422);
    expect(json.body.fields.currency).toBe(message);
    expect(Number((await host.db.knex('crm_bundles').count({ n: '*' }).first())!.n)).toBe(before);

    const id = await createBundle(director, europeBook, 'EUR-ONLY');
    const edit = await director.post(`/crm/bundles/${id}`, await bundleForm('EUR-ONLY', { currency: 'USD', lock_version: '0' }));
    expect(edit.status).toBe(422);
    expect(visibleText(edit.text)).toContain(message);
    expect(await host.db.knex('crm_bundles').where({ id }).first()).toMatchObject({ currency: 'EUR', lock_version: 0 });
  });

  test('a code is unique within a price book (not across price books)', async () => {
    const director = await Session.signIn(host.app, 'director');
    await createBundle(director, europeBook, 'UNIQ');
    const dup = await director.post(`/crm/price-books/${europeBook}/bundles`, await bundleForm('uniq'));
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('Another bundle in this price book has the code uniq');
    await createBundle(director, americasBook, 'UNIQ');
  });

  test('edit: saved and journaled; a stale lock version answers 409 and changes nothing', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await createBundle(director, europeBook, 'EDIT');
    expect((await director.get(`/crm/bundles/${id}/edit`)).status).toBe(200);
    const saved = await director.post(`/crm/bundles/${id}`, await bundleForm('EDIT', { price: '900', lock_version: '0', item_weight: ['1', '1', '1', ''] }));
    expect(saved.status).toBe(303);
    const json = (await director.get(`/crm/bundles/${id}.json`)).body.bundle;
    expect(json.items.map((i: { share_minor: number }) => i.share_minor)).toEqual([30000, 30000, 30000]);
    expect(json.lock_version).toBe(1);
    const stale = await director.post(`/crm/bundles/${id}`, await bundleForm('EDIT', { price: '1', lock_version: '0' }));
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('changed by someone else');
    expect(stale.text).toContain('value="1"');
    expect(Number((await host.db.knex('crm_bundles').where({ id }).first()).price_minor)).toBe(90000);
    expect(lockVersionIn(stale.text)).toBe('1');
    const details = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'bundle', 'j.journalized_id': id, 'j.action': 'update' }).select('d.field', 'd.old_value', 'd.new_value');
    expect(details).toEqual(expect.arrayContaining([{ field: 'price_minor', old_value: '100001', new_value: '90000' }]));
    expect(details.map((d) => d.field)).toContain('items');
  });

  test('copy and new: the form comes prefilled with a free code; saving creates a second bundle', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await createBundle(director, europeBook, 'COPYME');
    const copy = await director.get(`/crm/bundles/${id}/copy`);
    expect(copy.status).toBe(200);
    expect(copy.text).toContain('value="COPYME-COPY"');
    expect(copy.text).toContain('value="Starter pack (copy)"');
    expect(copy.text).toContain(`action="/crm/price-books/${europeBook}/bundles"`);
    const res = await director.post(`/crm/price-books/${europeBook}/bundles`, await bundleForm('COPYME-COPY'));
    expect(res.status).toBe(303);
    expect((await director.get(`/crm/bundles/${id}/copy`)).text).toContain('value="COPYME-COPY-2"');
    expect(await host.db.knex('crm_bundles').where({ price_book_id: europeBook }).whereIn('code', ['COPYME', 'COPYME-COPY'])).toHaveLength(2);
  });

  test('move: only to a price book that uses the currency and lacks the code; journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await createBundle(director, europeBook, 'MOVE');
    const noEur = await director.post(`/crm/bundles/${id}/move`, { price_book_id: String(usdBook), lock_version: '0' });
    expect(noEur.status).toBe(422);
    expect(visibleText(noEur.text)).toContain('Bundles USD has no prices in EUR');
    await createBundle(director, americasBook, 'MOVE');
    const clash = await director.post(`/crm/bundles/${id}/move`, { price_book_id: String(americasBook), lock_version: '0' });
    expect(clash.status).toBe(422);
    expect(visibleText(clash.text)).toContain('already has a bundle with the code MOVE');
    await host.db.knex('crm_bundles').where({ price_book_id: americasBook, code: 'MOVE' }).update({ code: 'MOVED-AWAY' });
    const stale = await director.post(`/crm/bundles/${id}/move`, { price_book_id: String(americasBook), lock_version: '7' });
    expect(stale.status).toBe(409);
    const moved = await director.post(`/crm/bundles/${id}/move`, { price_book_id: String(americasBook), lock_version: '0' });
    expect(moved.status).toBe(303);
    const row = await host.db.knex('crm_bundles').where({ id }).first();
    expect(row.price_book_id).toBe(americasBook);
    expect(await host.db.knex('crm_bundle_items').where({ bundle_id: id })).toHaveLength(3);
    const detail = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'bundle', 'j.journalized_id': id, 'j.action': 'update', 'd.field': 'price_book_id' }).first('d.old_value', 'd.new_value');
    expect(detail).toEqual({ old_value: String(europeBook), new_value: String(americasBook) });
  });

  test('move: refused, naming the items, to a price book that lacks a price for any of the bundle’s product units; nothing moves', async () => {
    const director = await Session.signIn(host.app, 'director');
    const partialBook = await priceBook('Bundles partial', 'crm-americas', [['B-LIC', 'licence', 65000, 'EUR'], ['B-IMPL', 'hour', 12000, 'EUR']]);
    const id = await createBundle(director, europeBook, 'MOVE-PARTIAL');
    const refused = await director.post(`/crm/bundles/${id}/move`, { price_book_id: String(partialBook), lock_version: '0' });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('The bundle was not moved: Bundles partial has no price for Product B-IMPL (B-IMPL) · day, Product B-SUP (B-SUP) · year.');
    const row = await host.db.knex('crm_bundles').where({ id }).first();
    expect(row).toMatchObject({ price_book_id: europeBook, lock_version: 0 });
    const edit = await director.get(`/crm/bundles/${id}/edit`);
    expect(edit.status).toBe(200);
  });

  test('a product unit a bundle uses keeps its last price in that price book: removing or renaming it is refused (422) naming the bundle, until the bundle drops it', async () => {
    const director = await Session.signIn(host.app, 'director');
    const book = await priceBook('Bundles removal', 'crm-europe', [['R-LIC', 'licence', 1000, 'EUR'], ['R-LIC', 'licence', 1200, 'USD'], ['R-SUP', 'year', 500, 'EUR']]);
    const form = { item_key: [`${await productId('R-LIC')}:licence`, `${await productId('R-SUP')}:year`], item_weight: ['1', '1'] };
    const created = await director.post(`/crm/price-books/${book}/bundles`, await bundleForm('REMOVE', form));
    expect(created.status).toBe(303);
    const bundle = Number(/\/crm\/bundles\/(\d+)$/.exec(created.headers.location)![1]);
    const priceOf = async (code: string, currency: string) => Number((await host.db.knex('crm_product_prices').where({ price_book_id: book, product_id: await productId(code), currency }).first('id')).id);
    const support = await priceOf('R-SUP', 'EUR');
    const refusal = 'The price was not removed: it is used by bundle Starter pack (REMOVE) in Bundles removal; remove it from the bundle first.';

    const fromBook = await director.post(`/crm/price-books/${book}/prices/${support}/delete`, {});
    expect(fromBook.status).toBe(422);
    expect(visibleText(fromBook.text)).toContain(refusal);
    const fromProduct = await director.post(`/crm/products/${await productId('R-SUP')}/prices/${support}/delete`, {});
    expect(fromProduct.status).toBe(422);
    expect(visibleText(fromProduct.text)).toContain(refusal);
    const renamed = await director.post(`/crm/price-books/${book}/prices/${support}`, { unit_name: 'years', price: '5', currency: 'EUR', old_unit_name: 'year', old_price_minor: '500', old_currency: 'EUR' });
    expect(renamed.status).toBe(422);
    expect(visibleText(renamed.text)).toContain('The price was not saved: it is used by bundle Starter pack (REMOVE) in Bundles removal; remove it from the bundle first.');
    expect(await host.db.knex('crm_product_prices').where({ id: support }).first()).toMatchObject({ unit_name: 'year' });
    // The licence keeps its EUR price, so its USD price may go.
    expect((await director.post(`/crm/price-books/${book}/prices/${await priceOf('R-LIC', 'USD')}/delete`, {})).status).toBe(303);

    const edited = await director.post(`/crm/bundles/${bundle}`, await bundleForm('REMOVE', { item_key: [form.item_key[0]], item_weight: ['1'], lock_version: '0' }));
    expect(edited.status).toBe(303);
    expect((await director.post(`/crm/price-books/${book}/prices/${support}/delete`, {})).status).toBe(303);
    expect(await host.db.knex('crm_product_prices').where({ id: support }).first()).toBeUndefined();
    expect((await director.get(`/crm/bundles/${bundle}/edit`)).status).toBe(200);
  });

  test('a price book keeps its last price in a currency a bundle of it is sold in: removing it or moving it to another currency is refused (422) naming the bundle', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const book = await priceBook('Bundles currency', 'crm-europe', [['C-LIC', 'licence', 1000, 'EUR'], ['C-LIC', 'licence', 1200, 'USD'], ['C-SUP', 'year', 500, 'EUR'], ['C-SUP', 'year', 600, 'USD']]);
    const created = await director.post(`/crm/price-books/${book}/bundles`, await bundleForm('IN-USD', { currency: 'USD', item_key: [`${await productId('C-LIC')}:licence`], item_weight: ['1'] }));
    expect(created.status).toBe(303);
    const bundle = Number(/\/crm\/bundles\/(\d+)$/.exec(created.headers.location)![1]);
    const priceOf = async (code: string, currency: string) => Number((await knex('crm_product_prices').where({ price_book_id: book, product_id: await productId(code), currency }).first('id')).id);
    const [licenceUsd, supportUsd] = [await priceOf('C-LIC', 'USD'), await priceOf('C-SUP', 'USD')];
    const refusal = (notDone: string) => `${notDone}: it is the last price in USD of Bundles currency, and bundle Starter pack (IN-USD) is sold in USD; give the bundle another currency first.`;

    // Another USD price remains: this one may go.
    expect((await director.post(`/crm/price-books/${book}/prices/${supportUsd}/delete`, {})).status).toBe(303);
    const fromBook = await director.post(`/crm/price-books/${book}/prices/${licenceUsd}/delete`, {});
    expect(fromBook.status).toBe(422);
    expect(visibleText(fromBook.text)).toContain(refusal('The price was not removed'));
    const fromProduct = await director.post(`/crm/products/${await productId('C-LIC')}/prices/${licenceUsd}/delete`, {});
    expect(fromProduct.status).toBe(422);
    expect(visibleText(fromProduct.text)).toContain(refusal('The price was not removed'));
    const moved = await director.post(`/crm/price-books/${book}/prices/${licenceUsd}`, { unit_name: 'licence', price: '12', currency: 'GBP', old_unit_name: 'licence', old_price_minor: '1200', old_currency: 'USD' });
    expect(moved.status).toBe(422);
    expect(visibleText(moved.text)).toContain(refusal('The price was not saved'));
    const kept = await knex('crm_product_prices').where({ id: licenceUsd }).first();
    expect([kept.currency, Number(kept.price_minor)]).toEqual(['USD', 1200]);

    const edited = await director.post(`/crm/bundles/${bundle}`, await bundleForm('IN-USD', { currency: 'EUR', item_key: [`${await productId('C-LIC')}:licence`], item_weight: ['1'], lock_version: '0' }));
    expect(edited.status).toBe(303);
    expect((await director.post(`/crm/price-books/${book}/prices/${licenceUsd}/delete`, {})).status).toBe(303);
    expect(await knex('crm_product_prices').where({ price_book_id: book, currency: 'USD' })).toHaveLength(0);
    const again = await director.post(`/crm/bundles/${bundle}`, await bundleForm('IN-USD', { currency: 'EUR', item_key: [`${await productId('C-LIC')}:licence`], item_weight: ['2'], lock_version: '1' }));
    expect(again.status).toBe(303);
  });

  describe('a bundle saved or moved into a currency while the price book’s last price in it is removed at the same instant', () => {
    /** One side of the race: the request saving or moving a bundle into EUR, and the bundle it is about (null: none stored). */
    interface BundleSide {
      send: () => PromiseLike<Response>;
      bundleId: () => Promise<number | null>;
    }
    // The bundle's item is priced in USD only, so the item check's row locks never meet the EUR price going.
    const sides: Record<'create' | 'edit' | 'move', (director: Session, book: number) => Promise<BundleSide>> = {
      async create(director, book) {
        const form = await bundleForm('RACE-NEW', { item_key: [`${await productId('X-LIC')}:licence`], item_weight: ['1'] });
        return {
          send: () => director.post(`/crm/price-books/${book}/bundles`, form),
          bundleId: async () => ((await host.db.knex('crm_bundles').where({ price_book_id: book, code: 'RACE-NEW' }).first('id')) as { id: number } | undefined)?.id ?? null,
        };
      },
      async edit(director, book) {
        const form = await bundleForm('RACE-EDIT', { currency: 'USD', item_key: [`${await productId('X-LIC')}:licence`], item_weight: ['1'] });
        const id = await createBundle(director, book, 'RACE-EDIT', form);
        return { send: () => director.post(`/crm/bundles/${id}`, { ...form, currency: 'EUR', lock_version: '0' }), bundleId: async () => id };
      },
      async move(director, book) {
        const elsewhere = await priceBook(`Race source ${book}`, 'crm-europe', [['X-LIC', 'licence', 900, 'EUR']]);
        const id = await createBundle(director, elsewhere, 'RACE-MOVE', await bundleForm('RACE-MOVE', { item_key: [`${await productId('X-LIC')}:licence`], item_weight: ['1'] }));
        return { send: () => director.post(`/crm/bundles/${id}/move`, { price_book_id: String(book), lock_version: '0' }), bundleId: async () => id };
      },
    };

    test.each(Object.keys(sides) as Array<keyof typeof sides>)('%s: exactly one of the two happens, the other is refused (422) with a clear message, and every bundle of the price book keeps a price in its currency', async (side) => {
      const knex = host.db.knex;
      const director = await Session.signIn(host.app, 'director');
      const book = await priceBook(`Bundles race ${side}`, 'crm-europe', [['X-LIC', 'licence', 1000, 'USD'], ['X-SUP', 'year', 500, 'EUR']]);
      const lastEur = Number((await knex('crm_product_prices').where({ price_book_id: book, currency: 'EUR' }).first('id')).id);
      const bundle = await sides[side](director, book);
      const journaled = async () => Number((await knex('crm_journals').count({ n: '*' }).first())!.n);
      const journalBefore = await journaled();

      const [saved, removed] = await racing(knex, ['crm_price_books', 'crm_journals'], [bundle.send, () => director.post(`/crm/price-books/${book}/prices/${lastEur}/delete`, {})]);

      expect([saved.status, removed.status].sort()).toEqual([303, 422]);
      const eurPrices = await knex('crm_product_prices').where({ price_book_id: book, currency: 'EUR' });
      const id = await bundle.bundleId();
      const row = id === null ? undefined : await knex('crm_bundles').where({ id }).first();
      if (saved.status === 303) {
        expect(visibleText(removed.text)).toContain(`The price was not removed: it is the last price in EUR of Bundles race ${side}, and bundle Starter pack (RACE-`);
        expect(eurPrices).toHaveLength(1);
        expect(row).toMatchObject({ price_book_id: book, currency: 'EUR' });
      } else {
        expect(visibleText(saved.text)).toContain(side === 'move'
          ? `The bundle was not moved: Bundles race ${side} has no prices in EUR.`
          : `Bundles race ${side} has no prices in EUR; use a currency it prices in: USD`);
        expect(eurPrices).toHaveLength(0);
        if (side === 'create') expect(row).toBeUndefined();
        else expect(row).toMatchObject({ lock_version: 0, currency: side === 'edit' ? 'USD' : 'EUR' });
        if (side === 'move') expect(row.price_book_id).not.toBe(book);
      }
      // The winner journaled its change (the removal on the product and on the price book); the refused side nothing.
      expect(await journaled()).toBe(journalBefore + (saved.status === 303 ? 1 : 2));
      const bundles = await knex('crm_bundles').where({ price_book_id: book }).select('code', 'currency');
      const currencies = (await knex('crm_product_prices').where({ price_book_id: book }).distinct('currency')).map((p) => p.currency);
      for (const b of bundles) expect(currencies).toContain(b.currency);
    });
  });

  test('a product a bundle uses cannot be deleted (422 naming the bundle) until the bundle is gone', async () => {
    const director = await Session.signIn(host.app, 'director');
    const book = await priceBook('Bundles product delete', 'crm-europe', [['D-LIC', 'licence', 1000, 'EUR']]);
    const created = await director.post(`/crm/price-books/${book}/bundles`, await bundleForm('USES-D', { item_key: [`${await productId('D-LIC')}:licence`], item_weight: ['1'] }));
    expect(created.status).toBe(303);
    const bundle = Number(/\/crm\/bundles\/(\d+)$/.exec(created.headers.location)![1]);
    const product = await productId('D-LIC');

    const refused = await director.post(`/crm/products/${product}/delete`, { confirm: '1' });
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('The product was not deleted: it is used by bundle Starter pack (USES-D) in Bundles product delete; remove it from the bundle first.');
    expect((await host.db.knex('crm_products').where({ id: product }).first()).deleted_at).toBeNull();

    expect((await director.post(`/crm/bundles/${bundle}/delete`, { confirm: '1', lock_version: '0' })).status).toBe(303);
    expect((await director.post(`/crm/products/${product}/delete`, { confirm: '1' })).status).toBe(303);
    expect((await host.db.knex('crm_products').where({ id: product }).first()).deleted_at).not.toBeNull();
  });

  test('delete needs a confirmation; then the bundle and its items are gone', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await createBundle(director, europeBook, 'GONE');
    expect((await director.post(`/crm/bundles/${id}/delete`, { lock_version: '0' })).status).toBe(422);
    const res = await director.post(`/crm/bundles/${id}/delete`, { confirm: '1', lock_version: '0' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/price-books/${europeBook}`);
    expect(await host.db.knex('crm_bundles').where({ id }).first()).toBeUndefined();
    expect(await host.db.knex('crm_bundle_items').where({ bundle_id: id })).toHaveLength(0);
    expect((await director.get(`/crm/bundles/${id}`)).status).toBe(404);
  });

  test('delete carries the lock version its page showed: a bundle edited since answers 409 with a clear message and stays; deleting again from the fresh page works', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await createBundle(director, europeBook, 'STALE-DEL');
    const deleteForm = (html: string) => /<form[^>]*action="\/crm\/bundles\/\d+\/delete"[\s\S]*?<\/form>/.exec(html)![0];
    expect(lockVersionIn(deleteForm((await director.get(`/crm/bundles/${id}`)).text))).toBe('0');
    expect((await director.post(`/crm/bundles/${id}`, await bundleForm('STALE-DEL', { price: '5', lock_version: '0' }))).status).toBe(303);

    const missing = await director.post(`/crm/bundles/${id}/delete`, { confirm: '1' });
    expect(missing.status).toBe(422);
    expect(visibleText(missing.text)).toContain('The form is missing its lock version; reload the page.');
    const stale = await director.post(`/crm/bundles/${id}/delete`, { confirm: '1', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(visibleText(stale.text)).toContain('This bundle was changed by someone else since this page was opened, so it was not deleted. Review it and delete it again if you still want to.');
    expect(visibleText(stale.text)).toContain('5.00 EUR');
    const kept = await host.db.knex('crm_bundles').where({ id }).first();
    expect([Number(kept.price_minor), Number(kept.lock_version)]).toEqual([500, 1]);
    expect(await host.db.knex('crm_bundle_items').where({ bundle_id: id })).toHaveLength(3);

    const again = await director.post(`/crm/bundles/${id}/delete`, { confirm: '1', lock_version: lockVersionIn(deleteForm(stale.text)) });
    expect(again.status).toBe(303);
    expect(await host.db.knex('crm_bundles').where({ id }).first()).toBeUndefined();
  });

  test('visibility: a rep sees bundles of price books in reach, 404 elsewhere, and changes nothing', async () => {
    const director = await Session.signIn(host.app, 'director');
    const europe = await createBundle(director, europeBook, 'VIS');
    const americas = await createBundle(director, americasBook, 'VIS');
    const rep = await Session.signIn(host.app, 'rep1');
    const seen = await rep.get(`/crm/bundles/${europe}`);
    expect(seen.status).toBe(200);
    expect(visibleText(seen.text)).not.toContain('Copy and new');
    expect((await rep.get(`/crm/bundles/${americas}`)).status).toBe(404);
    expect((await rep.get(`/crm/bundles/${americas}.json`)).status).toBe(404);
    expect((await rep.get(`/crm/bundles/${europe}/edit`)).status).toBe(404);
    expect((await rep.post(`/crm/bundles/${europe}`, await bundleForm('VIS', { price: '1', lock_version: '0' }))).status).toBe(404);
    expect((await rep.post(`/crm/bundles/${europe}/delete`, { confirm: '1' })).status).toBe(404);
    expect((await rep.post(`/crm/price-books/${europeBook}/bundles`, await bundleForm('REP'))).status).toBe(404);
    expect(Number((await host.db.knex('crm_bundles').where({ id: europe }).first()).price_minor)).toBe(100001);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/bundles/${europe}`)).status).toBe(404);
    expect((await rep2.get(`/crm/bundles/${americas}`)).status).toBe(200);
  });

  test('the demo has a starter pack split 50:30:20 over licence, implementation and support', async () => {
    const director = await Session.signIn(host.app, 'director');
    const row = await host.db.knex('crm_bundles').where({ code: 'STARTER' }).first('id');
    const json = (await director.get(`/crm/bundles/${row.id}.json`)).body.bundle;
    expect(json.name).toBe('Starter pack');
    expect(json.items.map((i: { product_code: string; weight: number }) => [i.product_code, i.weight])).toEqual([['CRM-PRO', 50], ['IMPL-DAY', 30], ['SUP-STD', 20]]);
    expect(json.items.reduce((a: number, i: { share_minor: number }) => a + i.share_minor, 0)).toBe(json.price_minor);
  });

  test('htmx: creating answers with the detail fragment and an HX-Trigger', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.htmxPost(`/crm/price-books/${europeBook}/bundles`, await bundleForm('HTMX'));
    expect(res.status).toBe(201);
    expect(res.headers['hx-trigger']).toBe('crm:bundleSaved');
    expect(res.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(visibleText(res.text)).toContain('Bundle created.');
  });
});
