import { docxPackage, para } from '../../scripts/docx-package';
import { lockVersionIn, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';
import { uploadFile } from '../helpers/files';
import type { CrmContext } from '../../plugin/http/guard';
import { priceBooksForProject } from '../../plugin/services/price-books';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const bookId = async (name: string) => Number((await host.db.knex('crm_price_books').where({ name }).first('id')).id);
const productId = async (code: string) => Number((await host.db.knex('crm_products').where({ code }).first('id')).id);

async function newBook(director: Session, name: string, projects: string[] = []): Promise<number> {
  const res = await director.post('/crm/price-books', { name, brand: 'B', product_version: 'v1', description: 'd', active: '1', project_ids: projects.map((p) => String(host.demo.projects[p].id)) });
  expect(res.status).toBe(303);
  return Number(/\/crm\/price-books\/(\d+)$/.exec(res.headers.location)![1]);
}

function ctxFor(login: string): CrmContext {
  const user = host.demo.users[login];
  return { host: host.hostApi, user, project: null, scopeProjects: (p) => host.hostApi.projectsWhere(user, p) };
}

describe('price books (Q1)', () => {
  test('the demo price books are listed, as HTML, htmx fragment and JSON; the sidebar link is real', async () => {
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/crm/price-books');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
    expect(visibleText(page.text)).toContain('Standard 2026');
    expect(visibleText(page.text)).toContain('Nordic 2026');
    const fragment = await director.htmxGet('/crm/price-books?q=nordic');
    expect(fragment.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(visibleText(fragment.text)).toContain('Nordic 2026');
    expect(visibleText(fragment.text)).not.toContain('Standard 2026');
    const json = await director.get('/crm/price-books.json?q=standard');
    expect(json.body.price_books.map((b: { name: string }) => b.name)).toEqual(['Standard 2026']);
    expect(json.body.pagination.total).toBe(1);
    const overview = await director.get('/crm.json');
    expect(overview.body.sections.find((s: { id: string }) => s.id === 'price_books')).toMatchObject({ available: true, url: '/crm/price-books' });
  });

  test('create, edit and delete through plain forms, htmx and JSON, each journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, 'Book A', ['crm-asia']);
    const row = await host.db.knex('crm_price_books').where({ id }).first();
    expect(row).toMatchObject({ name: 'Book A', brand: 'B', product_version: 'v1', lock_version: 0 });
    expect(Boolean(row.active)).toBe(true);
    expect((await host.db.knex('crm_price_book_projects').where({ price_book_id: id })).map((r) => Number(r.project_id))).toEqual([host.demo.projects['crm-asia'].id]);

    const edit = await director.htmxPost(`/crm/price-books/${id}`, { name: 'Book A2', brand: 'B', product_version: 'v2', description: 'd', active: '1', lock_version: '0' });
    expect(edit.status).toBe(200);
    expect(edit.headers['hx-trigger']).toBe('crm:priceBookSaved');
    expect(visibleText(edit.text)).toContain('Book A2');
    const json = await director.agent.post(`/crm/price-books/${id}`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ name: 'Book A3', active: false, lock_version: 1 });
    expect(json.status).toBe(200);
    expect(json.body.price_book).toMatchObject({ name: 'Book A3', active: false, lock_version: 2 });

    const journals = await host.db.knex('crm_journals').where({ journalized_type: 'price_book', journalized_id: id }).orderBy('id');
    expect(journals.map((j) => j.action)).toEqual(['create', 'update', 'update']);
    const details = await host.db.knex('crm_journal_details').where({ journal_id: journals[1].id });
    expect(details.map((d) => [d.field, d.old_value, d.new_value]).sort()).toEqual([['name', 'Book A', 'Book A2'], ['product_version', 'v1', 'v2']]);

    expect((await director.post(`/crm/price-books/${id}/delete`, {})).status).toBe(422);
    const del = await director.post(`/crm/price-books/${id}/delete`, { confirm: '1' });
    expect(del.status).toBe(303);
    expect(del.headers.location).toBe('/crm/price-books');
    expect((await host.db.knex('crm_price_books').where({ id }).first()).deleted_at).not.toBeNull();
    expect((await director.get(`/crm/price-books/${id}`)).status).toBe(404);
  });

  test('422 names the field and keeps the input; a stale lock version is 409 and changes nothing', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, 'Book B');
    const bad = await director.post(`/crm/price-books/${id}`, { name: '', brand: 'kept brand', lock_version: '0' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('Name is required');
    expect(bad.text).toContain('value="kept brand"');
    expect((await director.post(`/crm/price-books/${id}`, { name: 'Book B1', active: '1', lock_version: '0' })).status).toBe(303);
    const stale = await director.post(`/crm/price-books/${id}`, { name: 'Book B-stale', active: '1', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('changed by someone else');
    expect(stale.text).toContain('value="Book B-stale"');
    expect((await host.db.knex('crm_price_books').where({ id }).first()).name).toBe('Book B1');
    expect(lockVersionIn(stale.text)).toBe('1');
    expect((await director.post(`/crm/price-books/${id}`, { name: 'Book B-stale', active: '1', lock_version: lockVersionIn(stale.text) })).status).toBe(303);
    expect((await host.db.knex('crm_price_books').where({ id }).first()).name).toBe('Book B-stale');
  });

  test('changes need manage_price_books: a sales rep gets 404 on every change URL', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await bookId('Standard 2026');
    expect((await rep.get(`/crm/price-books/${id}`)).status).toBe(200);
    for (const url of ['/crm/price-books/new', `/crm/price-books/${id}/edit`]) expect((await rep.get(url)).status).toBe(404);
    for (const url of ['/crm/price-books', `/crm/price-books/${id}`, `/crm/price-books/${id}/delete`, `/crm/price-books/${id}/update`, `/crm/price-books/${id}/projects`, `/crm/price-books/${id}/prices`]) {
      expect((await rep.post(url, { name: 'x', confirm: '1', lock_version: '0' })).status).toBe(404);
    }
    const page = await rep.get(`/crm/price-books/${id}`);
    expect(page.text).not.toContain('id="edit-price-book"');
    expect(page.text).not.toContain('id="add-price-form"');
    expect(await host.db.knex('crm_price_books').where({ name: 'x' }).first()).toBeUndefined();
  });

  test('visibility follows assigned projects and their ancestors; inactive books are hidden from non-managers', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep2 = await Session.signIn(host.app, 'rep2');
    const nordic = await bookId('Nordic 2026');
    expect((await rep1.get('/crm/price-books.json')).body.price_books.map((b: { name: string }) => b.name)).toEqual(['Nordic 2026', 'Standard 2026']);
    expect((await rep2.get('/crm/price-books.json')).body.price_books.map((b: { name: string }) => b.name)).toEqual(['Standard 2026']);
    expect((await rep2.get(`/crm/price-books/${nordic}`)).status).toBe(404);
    expect((await rep2.get(`/crm/price-books/${nordic}.json`)).status).toBe(404);
    // A product only in Nordic is not visible to rep2 either.
    expect((await rep2.get(`/crm/products/${await productId('CRM-PRO')}`)).status).toBe(200);

    const director = await Session.signIn(host.app, 'director');
    const hidden = await newBook(director, 'Inactive book', ['crm']);
    await director.post(`/crm/price-books/${hidden}`, { name: 'Inactive book', lock_version: '0' });
    expect((await rep1.get(`/crm/price-books/${hidden}`)).status).toBe(404);
    expect((await director.get(`/crm/price-books/${hidden}`)).status).toBe(200);

    // Usable in a project: assigned to it or to an ancestor (a book on "crm" is usable in "crm-europe").
    const europe = host.demo.projects['crm-europe'];
    const usable = (await priceBooksForProject(ctxFor('rep1'), europe)).map((b) => b.name);
    expect(usable).toEqual(['Nordic 2026', 'Standard 2026']);
    expect((await priceBooksForProject(ctxFor('rep2'), host.demo.projects['crm-americas'])).map((b) => b.name)).toEqual(['Standard 2026']);
    const projectPage = await rep1.get('/projects/crm-europe/crm/price-books');
    expect(projectPage.status).toBe(200);
    expect(visibleText(projectPage.text)).toContain('Standard 2026');
    expect(visibleText(projectPage.text)).toContain('Nordic 2026');
    const americas = await rep2.get('/projects/crm-americas/crm/price-books.json');
    expect(americas.body.price_books.map((b: { name: string; assigned_via: string[] }) => [b.name, b.assigned_via])).toEqual([['Standard 2026', ['crm']]]);
  });

  test('assign and unassign projects, journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, 'Book C');
    const americas = host.demo.projects['crm-americas'];
    const added = await director.htmxPost(`/crm/price-books/${id}/projects`, { project_id: String(americas.id) });
    expect(added.status).toBe(200);
    expect(visibleText(added.text)).toContain('Assigned to Americas.');
    expect((await director.post(`/crm/price-books/${id}/projects`, { project_id: String(host.demo.projects.internal.id) })).status).toBe(422);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/price-books/${id}`)).status).toBe(200);
    expect((await director.post(`/crm/price-books/${id}/projects/${americas.id}/remove`, {})).status).toBe(303);
    expect((await rep2.get(`/crm/price-books/${id}`)).status).toBe(404);
    const details = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'price_book', 'j.journalized_id': id, 'd.field': 'projects' }).orderBy('d.id').select('d.old_value', 'd.new_value');
    expect(details.map((d) => [d.old_value, d.new_value])).toEqual([[null, '+crm-americas'], ['crm-americas', null]]);
  });

  test('a reader who may not open one of the book’s projects reads neither its name nor its identifier, on the page, in its JSON or in its history', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, 'Shared 2027', ['crm-americas', 'crm-europe']);
    const asia = host.demo.projects['crm-asia'];
    expect((await director.post(`/crm/price-books/${id}/projects`, { project_id: String(asia.id) })).status).toBe(303);
    const europe = host.demo.projects['crm-europe'];
    const rep2 = await Session.signIn(host.app, 'rep2'); // a member of Americas only
    const page = await rep2.get(`/crm/price-books/${id}`);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('Americas');
    for (const hidden of [europe.name, europe.identifier, asia.name, asia.identifier]) expect(text).not.toContain(hidden);
    expect(text).toContain('a project you cannot see');
    const json = (await rep2.get(`/crm/price-books/${id}.json`)).body;
    expect(json.projects.map((p: { identifier: string }) => p.identifier)).toEqual(['crm-americas']);
    expect(json.other_projects).toBe(2);
    expect(JSON.stringify(json)).not.toContain('crm-europe');
    // The director, who may open them all, reads them all.
    const all = visibleText((await director.get(`/crm/price-books/${id}`)).text);
    for (const shown of [europe.name, 'crm-europe', asia.name, '+crm-asia']) expect(all).toContain(shown);
    expect((await director.get(`/crm/price-books/${id}.json`)).body.other_projects).toBe(0);
  });

  test('an update copies fields, projects and prices, points back, and is journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const standard = await bookId('Standard 2026');
    const before = await host.db.knex('crm_product_prices').where({ price_book_id: standard }).orderBy(['product_id', 'unit_name', 'currency']).select('product_id', 'unit_name', 'price_minor', 'currency');
    const res = await director.post(`/crm/price-books/${standard}/update`, {});
    expect(res.status).toBe(303);
    const id = Number(/(\d+)$/.exec(res.headers.location)![1]);
    const copy = await host.db.knex('crm_price_books').where({ id }).first();
    expect(copy).toMatchObject({ name: 'Standard 2026 (update)', brand: 'Acme CRM Suite', product_version: '2026' });
    expect(Number(copy.previous_id)).toBe(standard);
    const after = await host.db.knex('crm_product_prices').where({ price_book_id: id }).orderBy(['product_id', 'unit_name', 'currency']).select('product_id', 'unit_name', 'price_minor', 'currency');
    expect(after).toEqual(before);
    expect(before.length).toBeGreaterThan(5);
    expect((await host.db.knex('crm_price_book_projects').where({ price_book_id: id })).map((r) => Number(r.project_id))).toEqual([host.demo.projects.crm.id]);
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'price_book', journalized_id: id }).first();
    expect(journal.action).toBe('create');
    expect(journal.notes).toContain(`Update of price book #${standard}`);
    const page = await director.get(`/crm/price-books/${id}`);
    expect(visibleText(page.text)).toContain('Update of Standard 2026');
    const htmx = await director.htmxPost(`/crm/price-books/${standard}/update`, {});
    expect(htmx.status).toBe(201);
    expect(htmx.headers['hx-push-url']).toMatch(/^\/crm\/price-books\/\d+$/);
  });

  test('prices: add, edit, remove on the price book page; bad amounts, currencies and duplicates are 422', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, 'Book D');
    const product = String(await productId('HW-SCAN'));
    const add = (form: Record<string, string>) => director.post(`/crm/price-books/${id}/prices`, { product_id: product, ...form });
    const tooMany = await add({ unit_name: 'piece', price: '12.345', currency: 'EUR' });
    expect(tooMany.status).toBe(422);
    expect(tooMany.text).toContain('at most 2 decimals in EUR');
    expect(tooMany.text).toContain('value="12.345"');
    const negative = await add({ unit_name: 'piece', price: '-5', currency: 'EUR' });
    expect(negative.status).toBe(422);
    expect(negative.text).toContain('Price must not be negative');
    expect((await add({ unit_name: 'piece', price: '5', currency: 'EURO' })).status).toBe(422);
    expect((await add({ unit_name: '', price: '5', currency: 'EUR' })).status).toBe(422);
    expect((await add({ unit_name: 'x'.repeat(61), price: '5', currency: 'EUR' })).status).toBe(422);
    expect((await add({ unit_name: 'piece', price: '1500', currency: 'JPY' })).status).toBe(303);
    const jpy = await host.db.knex('crm_product_prices').where({ price_book_id: id, currency: 'JPY' }).first();
    expect(Number(jpy.price_minor)).toBe(1500);
    expect((await add({ unit_name: 'piece', price: '12.34', currency: 'eur' })).status).toBe(303);
    const eur = await host.db.knex('crm_product_prices').where({ price_book_id: id, currency: 'EUR' }).first();
    expect(Number(eur.price_minor)).toBe(1234);
    const dup = await add({ unit_name: 'piece', price: '1', currency: 'EUR' });
    expect(dup.status).toBe(422);
    expect(dup.text).toContain('already has a price for this unit and currency');
    expect((await host.db.knex('crm_product_prices').where({ price_book_id: id })).length).toBe(2);

    const edit = await director.htmxPost(`/crm/price-books/${id}/prices/${eur.id}`, { unit_name: 'piece', price: '20', currency: 'EUR', old_unit_name: 'piece', old_price_minor: '1234', old_currency: 'EUR' });
    expect(edit.status).toBe(200);
    expect(Number((await host.db.knex('crm_product_prices').where({ id: eur.id }).first()).price_minor)).toBe(2000);
    const stale = await director.htmxPost(`/crm/price-books/${id}/prices/${eur.id}`, { unit_name: 'piece', price: '30', currency: 'EUR', old_unit_name: 'piece', old_price_minor: '1234', old_currency: 'EUR' });
    expect(stale.status).toBe(409);
    expect(Number((await host.db.knex('crm_product_prices').where({ id: eur.id }).first()).price_minor)).toBe(2000);
    expect((await director.post(`/crm/price-books/${id}/prices/${eur.id}/delete`, {})).status).toBe(303);
    expect(await host.db.knex('crm_product_prices').where({ id: eur.id }).first()).toBeUndefined();
    const details = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'product', 'j.journalized_id': Number(product) }).where('d.field', 'like', 'price:Book D').orderBy('d.id').select('d.old_value', 'd.new_value');
    expect(details.map((d) => [d.old_value, d.new_value])).toEqual([
      [null, 'piece: 1500 JPY'], [null, 'piece: 12.34 EUR'], ['piece: 12.34 EUR', 'piece: 20.00 EUR'], ['piece: 20.00 EUR', null],
    ]);
    const page = await director.get(`/crm/price-books/${id}.json`);
    expect(page.body.products[0].prices).toEqual([expect.objectContaining({ unit_name: 'piece', price_minor: 1500, currency: 'JPY', price: '1500' })]);
  });

  test('names are escaped (XSS)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await newBook(director, '<script>alert(1)</script>', ['crm']);
    const page = await director.get(`/crm/price-books/${id}`);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const list = await director.get('/crm/price-books?q=alert');
    expect(list.text).not.toContain('<script>alert(1)</script>');
  });

  test('files on a price book: a manager uploads a quote template with versions; a rep downloads but cannot upload', async () => {
    const director = await Session.signIn(host.app, 'director');
    const id = await bookId('Standard 2026');
    const template = (greeting: string) => docxPackage({ body: para(`${greeting} {account.name}`) });
    const upload = (s: Session, content: Buffer) => uploadFile(s, `/crm/price-books/${id}/attachments`, 'Quote template.docx', content,
      { contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' });
    const first = await upload(director, template('Dear'));
    expect(first.status).toBe(303);
    expect(first.headers.location).toBe(`/crm/price-books/${id}#files`);
    expect((await upload(director, template('Hello'))).status).toBe(303);
    const page = await director.get(`/crm/price-books/${id}`);
    expect(visibleText(page.text)).toContain('Quote template.docx');
    expect(visibleText(page.text)).toContain('2 versions');
    const rows = await host.db.knex('crm_attachments').where({ record_type: 'price_book', record_id: id }).orderBy('version');
    expect(rows.map((r) => Number(r.version))).toEqual([1, 2]);
    const rep = await Session.signIn(host.app, 'rep1');
    const download = await rep.get(`/crm/price-books/${id}/attachments/${rows[1].id}/download`);
    expect(download.status).toBe(200);
    expect(download.headers['content-disposition']).toContain('Quote template.docx');
    expect((await upload(rep, template('Hi'))).status).toBe(404);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/price-books/${await bookId('Nordic 2026')}/attachments`)).status).toBe(404);
    const journal = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'price_book', 'j.journalized_id': id, 'd.field': 'attachment' }).select('d.new_value');
    expect(journal.map((d) => d.new_value)).toEqual(['Quote template.docx v1', 'Quote template.docx v2']);
  });
});
