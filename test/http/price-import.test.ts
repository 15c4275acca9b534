import fs from 'node:fs';
import path from 'node:path';
import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const idOf = (row: unknown) => Number(typeof row === 'object' && row !== null ? (row as { id: number }).id : row);

async function newPriceBook(name: string): Promise<number> {
  const [row] = await host.db.knex('crm_price_books').insert({ name, description: '', active: true }).returning('id');
  const id = idOf(row);
  await host.db.knex('crm_price_book_projects').insert({ price_book_id: id, project_id: host.demo.projects['crm-europe'].id });
  return id;
}

async function newProduct(code: string): Promise<number> {
  const [row] = await host.db.knex('crm_products').insert({ code, name: `Existing ${code}`, description: '', active: true }).returning('id');
  return idOf(row);
}

function upload(session: Session, book: number, csv: string | Buffer, filename = 'prices.csv', csrf: string | null = session.csrf) {
  const url = `/crm/price-books/${book}/import${csrf === null ? '' : `?_csrf=${encodeURIComponent(csrf)}`}`;
  return session.agent.post(url).attach('file', Buffer.isBuffer(csv) ? csv : Buffer.from(csv, 'utf8'), filename);
}

async function uploadForPreview(session: Session, book: number, csv: string | Buffer): Promise<{ token: string; url: string }> {
  const res = await upload(session, book, csv);
  expect(res.status).toBe(303);
  const url = res.headers.location as string;
  const match = new RegExp(`^/crm/price-books/${book}/import/([a-f0-9]{32})$`).exec(url);
  expect(match).not.toBeNull();
  return { token: match![1], url };
}

const counts = async (book: number) => ({
  prices: Number((await host.db.knex('crm_product_prices').where({ price_book_id: book }).count({ n: '*' }).first())!.n),
  products: Number((await host.db.knex('crm_products').count({ n: '*' }).first())!.n),
  journals: Number((await host.db.knex('crm_journals').where({ journalized_type: 'price_book', journalized_id: book }).count({ n: '*' }).first())!.n),
});

const pricesOf = async (book: number) => (await host.db.knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
  .where('pp.price_book_id', book).orderBy(['p.code', 'pp.unit_name', 'pp.currency']).select('p.code', 'pp.unit_name', 'pp.price_minor', 'pp.currency'))
  .map((r) => [r.code, r.unit_name, Number(r.price_minor), r.currency]);

const BAD_FILE = [
  'product_code,product_name,unit,price,currency',
  'I-OLD,,licence,120.00,EUR', // line 2: fine, existing product
  'I-NEW,New <b>thing</b>,day,950,EUR', // line 3: fine, creates the product
  'I-OLD,,month,10,ABC', // line 4: unknown currency
  'I-OLD,,year,12.345,EUR', // line 5: too many decimals
  'I-OLD,,week,-5,EUR', // line 6: negative
  'I-OLD,,,5,EUR', // line 7: missing unit
  'I-NOPE,,piece,1,EUR', // line 8: unknown product, no name
  'I-OLD,,licence,130.00,EUR', // line 9: duplicate of line 2
].join('\n');

describe('price import from CSV (Q4)', () => {
  test('the preview lists every row with its values and its errors, and writes nothing', async () => {
    const book = await newPriceBook('Import preview');
    await newProduct('I-OLD');
    const director = await Session.signIn(host.app, 'director');
    const before = await counts(book);
    const { url } = await uploadForPreview(director, book, BAD_FILE);
    const page = await director.get(url);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('2 valid');
    expect(text).toContain('6 with errors');
    expect(text).toContain('2 I-OLD licence 120.00 EUR new price');
    expect(text).toContain('3 I-NEW New <b>thing</b> new product day 950.00 EUR new price');
    expect(page.text).not.toContain('<b>thing</b>');
    expect(text).toContain('4 I-OLD month 10 ABC currency ABC is not a known currency code');
    expect(text).toContain('5 I-OLD year 12.345 EUR price has at most 2 decimals in EUR');
    expect(text).toContain('6 I-OLD week -5 EUR price must not be negative');
    expect(text).toContain('7 I-OLD 5.00 EUR unit is missing');
    expect(text).toContain('8 I-NOPE piece 1.00 EUR product I-NOPE does not exist; give a product_name to create it');
    expect(text).toContain('9 I-OLD licence 130.00 EUR duplicate of line 2 (same product, unit and currency)');
    expect(await counts(book)).toEqual(before);
    const json = (await director.get(`${url}.json`)).body;
    expect(json.valid).toBe(2);
    expect(json.rows[3]).toMatchObject({ line: 5, errors: ['price has at most 2 decimals in EUR'] });
  });

  test('a file with bad rows and no "skip" answers 422 and writes nothing; with "skip" the valid rows go in, in one transaction', async () => {
    const book = await newPriceBook('Import skip');
    const director = await Session.signIn(host.app, 'director');
    const csv = BAD_FILE.replace(/I-OLD/g, 'I-OLD2').replace(/I-NEW/g, 'I-NEW2').replace(/I-NOPE/g, 'I-NOPE2');
    await newProduct('I-OLD2');
    const { url } = await uploadForPreview(director, book, csv);
    const before = await counts(book);
    const refused = await director.post(url, {});
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('Nothing was imported: 6 rows have errors. Fix the file, or tick "skip rows with errors".');
    expect(await counts(book)).toEqual(before);
    const htmxRefused = await director.htmxPost(url, {});
    expect(htmxRefused.status).toBe(422);
    expect(await counts(book)).toEqual(before);

    const done = await director.post(url, { skip_errors: '1' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe(`/crm/price-books/${book}/import?imported=2&skipped=6`);
    expect(visibleText((await director.get(done.headers.location)).text)).toContain('Imported 2 rows (6 with errors skipped).');
    expect(await pricesOf(book)).toEqual([['I-NEW2', 'day', 95000, 'EUR'], ['I-OLD2', 'licence', 12000, 'EUR']]);
    const created = await host.db.knex('crm_products').where({ code: 'I-NEW2' }).first();
    expect(created).toMatchObject({ name: 'New <b>thing</b>', category_id: null });
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'price_book', journalized_id: book }).orderBy('id', 'desc').first();
    expect(journal.notes).toBe('Imported prices.csv: 2 new prices, 0 changed, 0 unchanged, 1 products created, 6 rows with errors skipped.');
    expect(journal.user_id).toBe(host.demo.users.director.id);
    // The file is gone: importing twice is not possible.
    expect((await director.post(url, { skip_errors: '1' })).status).toBe(404);
  });

  test('a second import updates changed prices and says so in the preview', async () => {
    const book = await newPriceBook('Import update');
    const director = await Session.signIn(host.app, 'director');
    const first = await uploadForPreview(director, book, 'product_code,product_name,unit,price,currency\nI-UPD,Updatable,day,100,EUR\nI-UPD,Updatable,day,110,USD\n');
    expect((await director.post(first.url, {})).status).toBe(303);
    const second = await uploadForPreview(director, book, 'product_code,product_name,unit,price,currency\nI-UPD,,day,120,EUR\nI-UPD,,day,110,USD\n');
    const text = visibleText((await director.get(second.url)).text);
    expect(text).toContain('2 I-UPD day 120.00 EUR price changes (was 100.00 EUR)');
    expect(text).toContain('3 I-UPD day 110.00 USD unchanged');
    const res = await director.agent.post(second.url).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf).send({});
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ imported: 2, new_prices: 0, changed_prices: 1, unchanged: 1, created_products: 0 });
    expect(await pricesOf(book)).toEqual([['I-UPD', 'day', 12000, 'EUR'], ['I-UPD', 'day', 11000, 'USD']]);
  });

  test('product codes match whatever their case, as the product form compares them: no second product whose code differs only in case', async () => {
    const book = await newPriceBook('Import code case');
    const existing = await newProduct('I-CASE');
    const director = await Session.signIn(host.app, 'director');
    const csv = 'product_code,product_name,unit,price,currency\ni-case,Lower case,licence,10,EUR\nI-CASE2,Fresh,day,20,EUR\ni-case2,,month,30,EUR\ni-CASE2,,day,25,EUR\n';
    const { url } = await uploadForPreview(director, book, csv);
    const text = visibleText((await director.get(url)).text);
    expect(text).toContain('2 i-case Lower case licence 10.00 EUR new price');
    expect(text).toContain('5 i-CASE2 day 25.00 EUR duplicate of line 3 (same product, unit and currency)');
    const before = (await counts(book)).products;
    expect((await director.post(url, { skip_errors: '1' })).status).toBe(303);
    expect((await counts(book)).products).toBe(before + 1);
    expect(await host.db.knex('crm_products').whereRaw('lower(code) = ?', ['i-case']).pluck('id')).toEqual([existing]);
    expect(await pricesOf(book)).toEqual([['I-CASE', 'licence', 1000, 'EUR'], ['I-CASE2', 'day', 2000, 'EUR'], ['I-CASE2', 'month', 3000, 'EUR']]);
  });

  test('a semicolon-separated file with a BOM and decimal commas', async () => {
    const book = await newPriceBook('Import semicolon');
    const director = await Session.signIn(host.app, 'director');
    const csv = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('Product_Code;Product_Name;Unit;Price;Currency\r\nI-SEMI;Semikolon GmbH Lizenz;Lizenz;1 234,50;eur\r\nI-SEMI;;Stück;"7,5";SEK\r\n', 'utf8')]);
    const { url } = await uploadForPreview(director, book, csv);
    const json = (await director.get(`${url}.json`)).body;
    expect(json.delimiter).toBe(';');
    expect(json.invalid).toBe(0);
    expect(json.rows.map((r: { product_code: string; unit: string; price_minor: number; currency: string }) => [r.product_code, r.unit, r.price_minor, r.currency]))
      .toEqual([['I-SEMI', 'Lizenz', 123450, 'EUR'], ['I-SEMI', 'Stück', 750, 'SEK']]);
    expect((await director.post(url, {})).status).toBe(303);
    expect(await pricesOf(book)).toEqual([['I-SEMI', 'Lizenz', 123450, 'EUR'], ['I-SEMI', 'Stück', 750, 'SEK']]);
  });

  test('too many decimals for the currency is a row error (JPY has none, KWD three)', async () => {
    const book = await newPriceBook('Import decimals');
    const director = await Session.signIn(host.app, 'director');
    const { url } = await uploadForPreview(director, book, 'product_code,product_name,unit,price,currency\nI-DEC,Decimals,piece,100.5,JPY\nI-DEC,Decimals,piece,1.2345,KWD\nI-DEC,Decimals,box,1.234,KWD\n');
    const json = (await director.get(`${url}.json`)).body;
    expect(json.rows.map((r: { errors: string[] }) => r.errors)).toEqual([['price has no decimals in JPY'], ['price has at most 3 decimals in KWD'], []]);
  });

  test('a file that cannot be read as prices is refused as a whole with a clear message', async () => {
    const book = await newPriceBook('Import unreadable');
    const director = await Session.signIn(host.app, 'director');
    const noHeader = await upload(director, book, 'I-X,Thing,day,1,EUR\n');
    expect(noHeader.status).toBe(422);
    expect(visibleText(noHeader.text)).toContain('The first row must name the columns product_code, product_name, unit, price, currency');
    const latin1 = await upload(director, book, Buffer.from('product_code,product_name,unit,price,currency\nI-L,Caf\xe9,day,1,EUR\n', 'latin1'));
    expect(latin1.status).toBe(422);
    expect(visibleText(latin1.text)).toContain('The file is not UTF-8 text');
    const empty = await upload(director, book, '');
    expect(empty.status).toBe(422);
    const tooMany = await upload(director, book, `product_code,product_name,unit,price,currency\n${'I-MANY,Many,day,1,EUR\n'.repeat(10_001)}`);
    expect(tooMany.status).toBe(422);
    expect(visibleText(tooMany.text)).toContain('The file has more than 10,000 rows. Split it and import the parts.');
    const pending = fs.existsSync(path.join(host.db.dataDir, 'imports')) ? fs.readdirSync(path.join(host.db.dataDir, 'imports')) : [];
    expect(pending.filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  test('a file over the size limit is refused with 413 naming the limit; nothing is kept', async () => {
    const book = await newPriceBook('Import large');
    const director = await Session.signIn(host.app, 'director');
    const dir = path.join(host.db.dataDir, 'imports');
    const before = fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
    const big = Buffer.alloc(5 * 1024 * 1024 + 10, 'a');
    const res = await upload(director, book, big);
    expect(res.status).toBe(413);
    expect(visibleText(res.text)).toContain('The file is larger than 5 MB. Nothing was uploaded');
    expect(fs.existsSync(dir) ? fs.readdirSync(dir).length : 0).toBe(before);
  });

  test('CSRF is required on the upload and on the import', async () => {
    const book = await newPriceBook('Import csrf');
    const director = await Session.signIn(host.app, 'director');
    const csv = 'product_code,product_name,unit,price,currency\nI-CSRF,Csrf,day,1,EUR\n';
    expect((await upload(director, book, csv, 'prices.csv', null)).status).toBe(403);
    expect((await upload(director, book, csv, 'prices.csv', 'wrong-token')).status).toBe(403);
    const { url } = await uploadForPreview(director, book, csv);
    expect((await director.agent.post(url).type('form').send({})).status).toBe(403);
    expect(await pricesOf(book)).toEqual([]);
  });

  test('only managers import, and only their own uploads: 404 for others', async () => {
    const book = await newPriceBook('Import access');
    const director = await Session.signIn(host.app, 'director');
    const csv = 'product_code,product_name,unit,price,currency\nI-ACC,Access,day,1,EUR\n';
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await upload(rep, book, csv)).status).toBe(404);
    expect((await rep.get(`/crm/price-books/${book}/import`)).status).toBe(404);
    const { url } = await uploadForPreview(director, book, csv);
    expect((await rep.post(url, { skip_errors: '1' })).status).toBe(404);
    const admin = await Session.signIn(host.app, 'admin');
    expect((await admin.get(url)).status).toBe(404);
    expect((await admin.post(url, {})).status).toBe(404);
    expect((await director.get(`/crm/price-books/${book}/import/${'0'.repeat(32)}`)).status).toBe(404);
    expect((await director.get(`/crm/price-books/${book}/import/..%2F..%2Fetc`)).status).toBe(404);
    expect(await pricesOf(book)).toEqual([]);
  });

  test('the price book page offers the upload to managers', async () => {
    const book = await newPriceBook('Import panel');
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get(`/crm/price-books/${book}`);
    expect(page.text).toContain(`action="/crm/price-books/${book}/import?_csrf=`);
    const rep = await Session.signIn(host.app, 'rep1');
    expect((await rep.get(`/crm/price-books/${book}`)).text).not.toContain('/import?_csrf=');
  });
});

describe('the import journals each product and price it writes (P6)', () => {
  const csvOf = (rows: string[]) => ['product_code,product_name,unit,price,currency', ...rows].join('\n');
  const historyOf = async (session: Session, productId: number) => {
    const page = await session.get(`/crm/products/${productId}`);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    return text.slice(text.indexOf('History'), text.indexOf('Actions'));
  };

  test('the product page’s history shows a product the import created and a price it changed, by the importing user', async () => {
    const book = await newPriceBook('Import journal');
    const existing = await newProduct('J-OLD');
    await host.db.knex('crm_product_prices').insert({ price_book_id: book, product_id: existing, unit_name: 'day', price_minor: 10000, currency: 'EUR' });
    const director = await Session.signIn(host.app, 'director');
    const { url } = await uploadForPreview(director, book, csvOf(['j-old,,day,120,EUR', 'J-NEW,Journaled thing,licence,50,EUR']));
    expect((await director.post(url, {})).status).toBe(303);
    const created = Number((await host.db.knex('crm_products').where({ code: 'J-NEW' }).first()).id);
    const name = host.demo.users.director.name;

    const createdHistory = await historyOf(director, created);
    expect(createdHistory).toMatch(new RegExp(`^History ${name} · update · \\S+ \\S+ UTC price:Import journal : \\(empty\\) → licence: 50\\.00 EUR ${name} · create · `));
    expect(createdHistory).toContain('name : (empty) → Journaled thing code : (empty) → J-NEW active : (empty) → true');
    const changedHistory = await historyOf(director, existing);
    expect(changedHistory).toContain(`${name} · update · `);
    expect(changedHistory).toContain('price:Import journal : day: 100.00 EUR → day: 120.00 EUR');

    // On the price book as by hand (naming the product by its stored code), then the import's summary.
    const bookJournals = await host.db.knex('crm_journals').where({ journalized_type: 'price_book', journalized_id: book }).orderBy('id');
    const details = await host.db.knex('crm_journal_details').whereIn('journal_id', bookJournals.map((j) => j.id)).orderBy('id');
    expect(details.map((d) => [d.field, d.old_value, d.new_value])).toEqual([
      ['price:J-OLD', 'day: 100.00 EUR', 'day: 120.00 EUR'], ['price:J-NEW', null, 'licence: 50.00 EUR'], ['prices_imported', null, '2'],
    ]);
    expect(bookJournals.map((j) => j.user_id)).toEqual([host.demo.users.director.id, host.demo.users.director.id, host.demo.users.director.id]);
    expect(bookJournals[2].notes).toBe('Imported prices.csv: 1 new prices, 1 changed, 0 unchanged, 1 products created.');
  });

  test('the journal is written in batches: 200 rows take hardly more statements than 10', async () => {
    const director = await Session.signIn(host.app, 'director');
    const importOf = async (rows: number) => {
      const book = await newPriceBook(`Import batch ${rows}`);
      // Half the rows change an existing product's price, half create a product.
      const lines: string[] = [];
      for (let i = 0; i < rows; i += 1) {
        if (i % 2 === 0) {
          const id = await newProduct(`JB${rows}-OLD-${i}`);
          await host.db.knex('crm_product_prices').insert({ price_book_id: book, product_id: id, unit_name: 'day', price_minor: 100, currency: 'EUR' });
          lines.push(`JB${rows}-OLD-${i},,day,2,EUR`);
        } else {
          lines.push(`JB${rows}-NEW-${i},New ${i},day,3,EUR`);
        }
      }
      const { url } = await uploadForPreview(director, book, csvOf(lines));
      const { result, statements } = await statementsDuring(host.db.knex, () => director.post(url, {}));
      expect(result.status).toBe(303);
      const journals = Number((await host.db.knex('crm_journals').where({ journalized_type: 'product' }).whereIn('journalized_id',
        host.db.knex('crm_products').where('code', 'like', `JB${rows}-%`).select('id')).count({ n: '*' }).first())!.n);
      expect(journals).toBe(rows + rows / 2); // a price entry per row, a "create" per new product
      return { all: statements.length, journal: statements.filter((s) => /insert into [`"]crm_journal/.test(s.sql)).length };
    };
    const small = await importOf(10);
    const large = await importOf(200);
    expect(small.journal).toBeLessThanOrEqual(2);
    // 200 rows: 501 journals (a price on its product and on the book, a "create", the summary) in two inserts,
    // 1001 details in three; per row it would be 1000 statements.
    expect(large.journal).toBeLessThanOrEqual(small.journal + 4);
    expect(large.all).toBeLessThanOrEqual(small.all + 6);
  });
});
