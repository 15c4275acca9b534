import { lockVersionIn, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const bookId = async (name: string) => Number((await host.db.knex('crm_price_books').where({ name }).first('id')).id);
const categoryId = async (name: string) => Number((await host.db.knex('crm_product_categories').where({ name }).first('id')).id);

async function newProduct(director: Session, code: string, extra: Record<string, string> = {}): Promise<number> {
  const res = await director.post('/crm/products', { name: `Product ${code}`, code, description: 'desc', active: '1', category_id: String(await categoryId('Hardware')), ...extra });
  expect(res.status).toBe(303);
  return Number(/\/crm\/products\/(\d+)$/.exec(res.headers.location)![1]);
}

describe('products (Q2)', () => {
  test('list with search and category filter, as HTML, htmx and JSON', async () => {
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/crm/products');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
    expect(visibleText(page.text)).toContain('CRM Professional licence');
    const hardware = await categoryId('Hardware');
    const json = await director.get(`/crm/products.json?category=${hardware}`);
    expect(json.body.products.map((p: { code: string }) => p.code).sort()).toEqual(['HW-SCAN', 'HW-TERM']);
    const fragment = await director.htmxGet('/crm/products?q=scanner');
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(visibleText(fragment.text)).toContain('Barcode scanner');
    expect(visibleText(fragment.text)).not.toContain('Point-of-sale terminal');
    const detail = await director.get(`/crm/products/${json.body.products.find((p: { code: string }) => p.code === 'HW-SCAN').id}.json`);
    expect(detail.body.product.code).toBe('HW-SCAN');
    expect(detail.body.category).toMatchObject({ name: 'Hardware', contract_kind: 'one_time', default_duration_months: null });
    expect(detail.body.price_books.map((b: { name: string }) => b.name)).toEqual(['Standard 2026']);
    expect(detail.body.price_books[0].prices.map((p: { price_minor: number; currency: string }) => [p.price_minor, p.currency])).toEqual([[18_900, 'EUR'], [19_900, 'USD']]);
  });

  test('the list shows each product’s category and how many price books price it (page, htmx filter, JSON)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const productId = async (code: string) => Number((await host.db.knex('crm_products').where({ code }).first('id')).id);
    const cells = (html: string, id: number) => {
      const row = new RegExp(`<tr data-product="${id}"[^>]*>([\\s\\S]*?)</tr>`).exec(html);
      if (!row) throw new Error(`No row for product ${id}`);
      return [...row[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((m) => visibleText(m[1]));
    };
    const crmPro = await productId('CRM-PRO');
    const page = await director.get('/crm/products');
    // Name, Code, Category, Price books: CRM-PRO is priced in "Standard 2026" and "Nordic 2026".
    expect(cells(page.text, crmPro).slice(0, 4)).toEqual(['CRM Professional licence', 'CRM-PRO', 'Software licences', '2']);
    expect(page.text).not.toContain('NaN');

    const fragment = await director.htmxGet(`/crm/products?category=${await categoryId('Hardware')}`);
    expect(cells(fragment.text, await productId('HW-SCAN')).slice(2, 4)).toEqual(['Hardware', '1']);
    expect(cells(fragment.text, await productId('HW-TERM')).slice(2, 4)).toEqual(['Hardware', '2']);
    expect(fragment.text).not.toContain('NaN');

    const json = await director.get('/crm/products.json');
    expect(json.body.products.find((p: { code: string }) => p.code === 'CRM-PRO')).toMatchObject({ category_name: 'Software licences', price_book_count: 2 });
  });

  test('create, edit (htmx and JSON), delete; journaled; code unique (422); stale lock 409', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newProduct(director, 'P-1');
    const dup = await director.post('/crm/products', { name: 'Other', code: 'p-1', active: '1' });
    expect(dup.status).toBe(422);
    expect(dup.text).toContain('Code is already used by another product');
    expect(dup.text).toContain('value="Other"');
    const noName = await director.post('/crm/products', { name: '', code: 'P-NEW' });
    expect(noName.status).toBe(422);
    expect(noName.text).toContain('Name is required');

    const edit = await director.htmxPost(`/crm/products/${id}`, { name: 'Renamed', code: 'P-1', active: '1', lock_version: '0' });
    expect(edit.status).toBe(200);
    expect(edit.headers['hx-trigger']).toBe('crm:productSaved');
    expect(visibleText(edit.text)).toContain('Renamed');
    const stale = await director.post(`/crm/products/${id}`, { name: 'Stale', code: 'P-1', active: '1', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('value="Stale"');
    expect(lockVersionIn(stale.text)).toBe('1');
    const json = await director.agent.post(`/crm/products/${id}`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ name: 'Renamed', code: 'P-1B', active: true, lock_version: 1 });
    expect(json.status).toBe(200);
    expect(json.body.product).toMatchObject({ code: 'P-1B', lock_version: 2 });
    expect((await host.db.knex('crm_products').where({ id }).first()).name).toBe('Renamed');

    const journals = await host.db.knex('crm_journals').where({ journalized_type: 'product', journalized_id: id }).orderBy('id');
    expect(journals.map((j) => j.action)).toEqual(['create', 'update', 'update']);
    const details = await host.db.knex('crm_journal_details').where({ journal_id: journals[2].id });
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual([['code', 'P-1', 'P-1B']]);

    expect((await director.post(`/crm/products/${id}/delete`, {})).status).toBe(422);
    const del = await director.post(`/crm/products/${id}/delete`, { confirm: '1' });
    expect(del.status).toBe(303);
    expect((await director.get(`/crm/products/${id}`)).status).toBe(404);
    // The code of a deleted product stays taken.
    const again = await director.post('/crm/products', { name: 'Again', code: 'P-1B', active: '1' });
    expect(again.status).toBe(422);
    expect(again.text).toContain('Code is used by a deleted product');
  });

  test('copy asks for a new code (prefilled) and copies the prices into the same price books', async () => {
    const director = await Session.signIn(host.app, 'director');
    const source = Number((await host.db.knex('crm_products').where({ code: 'IMPL-DAY' }).first()).id);
    const form = await director.get(`/crm/products/${source}/copy`);
    expect(form.text).toContain('value="IMPL-DAY-COPY"');
    const taken = await director.post(`/crm/products/${source}/copy`, { name: 'Copy', code: 'IMPL-DAY' });
    expect(taken.status).toBe(422);
    expect(taken.text).toContain('Code is already used');
    const res = await director.post(`/crm/products/${source}/copy`, { name: 'Implementation (copy)', code: 'IMPL-DAY-COPY' });
    expect(res.status).toBe(303);
    const id = Number(/(\d+)$/.exec(res.headers.location)![1]);
    const prices = (pid: number) => host.db.knex('crm_product_prices').where({ product_id: pid }).orderBy(['price_book_id', 'unit_name', 'currency']).select('price_book_id', 'unit_name', 'price_minor', 'currency');
    expect(await prices(id)).toEqual(await prices(source));
    expect((await prices(id)).length).toBe(4);
    const row = await host.db.knex('crm_products').where({ id }).first();
    expect(row).toMatchObject({ name: 'Implementation (copy)', code: 'IMPL-DAY-COPY' });
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'product', journalized_id: id }).first();
    expect(journal.notes).toBe('Copy of IMPL-DAY with 4 prices');
  });

  test('prices from the product page: add to a price book, 12.345 EUR and -5 refused, 1500 JPY stored as 1500, duplicate unit 422', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newProduct(director, 'P-PRICE');
    const nordic = String(await bookId('Nordic 2026'));
    const add = (form: Record<string, string>) => director.post(`/crm/products/${id}/prices`, { price_book_id: nordic, unit_name: 'piece', ...form });
    const decimals = await add({ price: '12.345', currency: 'EUR' });
    expect(decimals.status).toBe(422);
    expect(decimals.text).toContain('Price has at most 2 decimals in EUR');
    const negative = await add({ price: '-5', currency: 'EUR' });
    expect(negative.status).toBe(422);
    expect(negative.text).toContain('Price must not be negative');
    // Three capitals are not enough: the code must name a currency (as bundles, quotes and settings require).
    const unknownCurrency = await add({ price: '5', currency: 'XYZ' });
    expect(unknownCurrency.status).toBe(422);
    expect(unknownCurrency.text).toContain('data-field="currency"');
    const missingBook = await director.post(`/crm/products/${id}/prices`, { price_book_id: '999999', unit_name: 'piece', price: '1', currency: 'EUR' });
    expect(missingBook.status).toBe(422);
    expect(missingBook.text).toContain('Choose a price book from the list');
    const jpy = await director.htmxPost(`/crm/products/${id}/prices`, { price_book_id: nordic, unit_name: 'piece', price: '1500', currency: 'JPY' });
    expect(jpy.status).toBe(200);
    expect(visibleText(jpy.text)).toContain('Added to Nordic 2026: piece 1 500 JPY.');
    expect(jpy.text).toContain('value="1500"');
    const stored = await host.db.knex('crm_product_prices').where({ product_id: id }).first();
    expect(Number(stored.price_minor)).toBe(1500);
    const dup = await add({ price: '1600', currency: 'JPY' });
    expect(dup.status).toBe(422);
    expect(dup.text).toContain('already has a price for this unit and currency');
    expect((await director.post(`/crm/products/${id}/prices/${stored.id}`, { unit_name: 'box', price: '2000', currency: 'JPY' })).status).toBe(303);
    expect((await host.db.knex('crm_product_prices').where({ id: stored.id }).first()).unit_name).toBe('box');
    expect((await director.post(`/crm/products/${id}/prices/${stored.id}/delete`, {})).status).toBe(303);
    expect(await host.db.knex('crm_product_prices').where({ product_id: id })).toHaveLength(0);
  });

  test('visibility: products through visible price books; a rep gets 404 on every change URL', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newProduct(director, 'P-NORDIC');
    // Not priced anywhere yet: only managers see it.
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep1.get(`/crm/products/${id}`)).status).toBe(404);
    await director.post(`/crm/products/${id}/prices`, { price_book_id: String(await bookId('Nordic 2026')), unit_name: 'piece', price: '10', currency: 'SEK' });
    expect((await rep1.get(`/crm/products/${id}`)).status).toBe(200);
    expect((await rep2.get(`/crm/products/${id}`)).status).toBe(404);
    expect((await rep2.get(`/crm/products/${id}.json`)).status).toBe(404);
    expect((await rep1.get('/crm/products.json?q=P-NORDIC')).body.products).toHaveLength(1);
    expect((await rep2.get('/crm/products.json?q=P-NORDIC')).body.products).toHaveLength(0);
    const page = await rep1.get(`/crm/products/${id}`);
    expect(page.text).not.toContain('id="edit-product"');
    for (const url of ['/crm/products/new', `/crm/products/${id}/edit`, `/crm/products/${id}/copy`]) expect((await rep1.get(url)).status).toBe(404);
    for (const url of ['/crm/products', `/crm/products/${id}`, `/crm/products/${id}/delete`, `/crm/products/${id}/copy`, `/crm/products/${id}/prices`]) {
      expect((await rep1.post(url, { name: 'x', code: 'REP-X', confirm: '1', lock_version: '0' })).status).toBe(404);
    }
    expect(await host.db.knex('crm_products').where({ code: 'REP-X' }).first()).toBeUndefined();
  });

  test('names are escaped (XSS)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newProduct(director, 'P-XSS', { name: '<img src=x onerror=alert(1)>' });
    const page = await director.get(`/crm/products/${id}`);
    expect(page.text).not.toContain('<img src=x onerror=alert(1)>');
    expect(page.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect((await director.get('/crm/products?q=P-XSS')).text).not.toContain('<img src=x');
  });
});

describe('product categories (CRM settings)', () => {
  const BASE = '/crm/settings/product-categories';

  test('admins list, add, edit, move, deactivate and delete; time-based needs 1–120 months; one-time none', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const page = await admin.get(BASE);
    expect(page.status).toBe(200);
    expect(page.text).toContain('value="Software licences"');
    expect((await admin.get('/crm/settings')).text).toContain(`href="${BASE}"`);

    for (const months of ['', '0', '121', '1.5', 'abc']) {
      const res = await admin.post(BASE, { name: 'Subscriptions', contract_kind: 'time_based', default_duration_months: months });
      expect(res.status).toBe(422);
      expect(res.text).toContain('Default duration');
    }
    const oneTimeWithMonths = await admin.post(BASE, { name: 'Setup', contract_kind: 'one_time', default_duration_months: '12' });
    expect(oneTimeWithMonths.status).toBe(422);
    expect(oneTimeWithMonths.text).toContain('leave it empty');
    expect((await admin.post(BASE, { name: 'Setup', contract_kind: 'monthly' })).status).toBe(422);
    expect((await admin.post(BASE, { name: 'hardware', contract_kind: 'one_time' })).status).toBe(422);

    const added = await admin.htmxPost(BASE, { name: 'Subscriptions', contract_kind: 'time_based', default_duration_months: '24' });
    expect(added.status).toBe(200);
    expect(added.headers['hx-trigger']).toBe('crm:productCategoriesChanged');
    const row = await host.db.knex('crm_product_categories').where({ name: 'Subscriptions' }).first();
    expect(row).toMatchObject({ contract_kind: 'time_based' });
    expect(Number(row.default_duration_months)).toBe(24);

    expect((await admin.post(`${BASE}/${row.id}`, { name: 'Subscriptions', contract_kind: 'one_time', default_duration_months: '' })).status).toBe(303);
    const changed = await host.db.knex('crm_product_categories').where({ id: row.id }).first();
    expect(changed.contract_kind).toBe('one_time');
    expect(changed.default_duration_months).toBeNull();

    expect((await admin.post(`${BASE}/${row.id}/move`, { direction: 'up' })).status).toBe(303);
    const order = (await host.db.knex('crm_product_categories').orderBy('position')).map((c) => c.name);
    expect(order.indexOf('Subscriptions')).toBe(order.length - 2);

    const hardware = await categoryId('Hardware');
    const inUse = await admin.post(`${BASE}/${hardware}/delete`, {});
    expect(inUse.status).toBe(422);
    expect(inUse.text).toContain('deactivate it instead');
    expect((await admin.post(`${BASE}/${hardware}/active`, { active: '0' })).status).toBe(303);
    expect(Boolean((await host.db.knex('crm_product_categories').where({ id: hardware }).first()).active)).toBe(false);
    // Deactivated: not offered to a new product.
    const director = await Session.signIn(host.app, 'director');
    const refused = await director.post('/crm/products', { name: 'New HW', code: 'HW-NEW', active: '1', category_id: String(hardware) });
    expect(refused.status).toBe(422);
    expect(refused.text).toContain('Choose a category from the list');
    await admin.post(`${BASE}/${hardware}/active`, { active: '1' });

    expect((await admin.post(`${BASE}/${row.id}/delete`, {})).status).toBe(303);
    expect(await host.db.knex('crm_product_categories').where({ id: row.id }).first()).toBeUndefined();
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'settings_product_categories', journalized_id: row.id }).orderBy('id');
    expect(journal.map((j) => j.action)).toEqual(['create', 'update', 'update', 'delete']);
  });

  test('a sales rep cannot reach the category settings', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.get(BASE)).status).toBe(404);
    expect((await rep.post(BASE, { name: 'X', contract_kind: 'one_time' })).status).toBe(404);
  });
});
