import { hashPassword } from '../../host/passwords';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const idOf = (row: unknown) => Number(typeof row === 'object' && row !== null ? (row as { id: number }).id : row);

async function book(name: string, projects: string[], extra: Record<string, unknown> = {}): Promise<number> {
  const [row] = await host.db.knex('crm_price_books').insert({ name, description: '', active: true, ...extra }).returning('id');
  const id = idOf(row);
  for (const p of projects) await host.db.knex('crm_price_book_projects').insert({ price_book_id: id, project_id: host.demo.projects[p].id });
  return id;
}

async function product(code: string, name: string, category: string | null = null): Promise<number> {
  const categoryId = category ? (await host.db.knex('crm_product_categories').where({ name: category }).first('id')).id : null;
  const [row] = await host.db.knex('crm_products').insert({ code, name, description: '', active: true, category_id: categoryId }).returning('id');
  return idOf(row);
}

const price = (priceBookId: number, productId: number, unit: string, minor: number, currency: string) =>
  host.db.knex('crm_product_prices').insert({ price_book_id: priceBookId, product_id: productId, unit_name: unit, price_minor: minor, currency });

type Row = { product_code: string; price_book_name: string; unit_name: string; currency: string; price_minor: number };
const keys = (rows: Row[]) => rows.map((r) => `${r.product_code}|${r.price_book_name}|${r.unit_name}|${r.currency}`);

let europe: number;
let americas: number;
let parent: number;
let inactive: number;
let deleted: number;
beforeAll(async () => {
  europe = await book('PX Europe', ['crm-europe']);
  americas = await book('PX Americas', ['crm-americas']);
  parent = await book('PX Parent', ['crm']);
  inactive = await book('PX Inactive', ['crm-europe'], { active: false });
  deleted = await book('PX Deleted', ['crm-europe'], { deleted_at: new Date() });
  const licence = await product('PX-LIC', 'PX Licence', 'Software licences');
  const support = await product('PX-SUP', 'PX Support', 'Support services');
  const gone = await product('PX-GONE', 'PX Gone product');
  await host.db.knex('crm_products').where({ id: gone }).update({ deleted_at: new Date() });
  for (const b of [europe, americas, parent, inactive, deleted]) {
    await price(b, licence, 'licence', 10000, 'EUR');
    await price(b, support, 'year', 2000, 'EUR');
    await price(b, gone, 'piece', 1, 'EUR');
  }
  await price(europe, licence, 'licence', 11000, 'USD');
  await price(europe, support, 'year', 2500, 'SEK');
});

describe('the global price overview (Q4)', () => {
  test('a manager sees every price of every price book not deleted, deleted products left out', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.get('/crm/prices.json?q=px-');
    expect(res.status).toBe(200);
    expect(keys(res.body.prices)).toEqual([
      'PX-LIC|PX Americas|licence|EUR', 'PX-LIC|PX Europe|licence|EUR', 'PX-LIC|PX Europe|licence|USD', 'PX-LIC|PX Inactive|licence|EUR', 'PX-LIC|PX Parent|licence|EUR',
      'PX-SUP|PX Americas|year|EUR', 'PX-SUP|PX Europe|year|EUR', 'PX-SUP|PX Europe|year|SEK', 'PX-SUP|PX Inactive|year|EUR', 'PX-SUP|PX Parent|year|EUR',
    ]);
    expect(res.body.prices[2]).toMatchObject({ price_minor: 11000, price: '110.00', category_name: 'Software licences' });
    const page = visibleText((await director.get('/crm/prices?q=PX-LIC&currency=USD')).text);
    expect(page).toContain('PX Licence PX-LIC Software licences PX Europe licence 110.00 USD');
  });

  test('a rep without manage_price_books sees only active price books assigned to their projects or their ancestors', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const mine = (await rep1.get('/crm/prices.json?q=px-')).body.prices as Row[];
    expect([...new Set(mine.map((r) => r.price_book_name))].sort()).toEqual(['PX Europe', 'PX Parent']);
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect([...new Set(((await rep2.get('/crm/prices.json?q=px-')).body.prices as Row[]).map((r) => r.price_book_name))].sort()).toEqual(['PX Americas', 'PX Parent']);
    // Asking for a hidden price book by id shows nothing rather than its prices.
    expect((await rep1.get(`/crm/prices.json?price_book_id=${americas}`)).body.prices).toEqual([]);
    const page = await rep1.get('/crm/prices');
    expect(page.text).not.toContain('PX Americas');
    expect(page.text).not.toContain('PX Inactive');
  });

  test('a price book assigned to a parent project reaches a member of a subproject only', async () => {
    const knex = host.db.knex;
    const [row] = await knex('users').insert({ login: 'asia-rep', name: 'Asia Rep', email: 'asia@example.com', password_hash: await hashPassword('asia-rep'), admin: false }).returning('id');
    const role = await knex('roles').where({ name: 'Sales rep' }).first('id');
    await knex('members').insert({ project_id: host.demo.projects['crm-asia'].id, user_id: idOf(row), role_id: role.id });
    const asia = await Session.signIn(host.app, 'asia-rep');
    const rows = (await asia.get('/crm/prices.json?q=px-')).body.prices as Row[];
    expect([...new Set(rows.map((r) => r.price_book_name))]).toEqual(['PX Parent']);
  });

  test('filters: product name or code (any case), price book, currency, category', async () => {
    const director = await Session.signIn(host.app, 'director');
    const get = async (qs: string) => keys((await director.get(`/crm/prices.json?${qs}`)).body.prices);
    expect(await get('q=px%20support&price_book_id=' + europe)).toEqual(['PX-SUP|PX Europe|year|EUR', 'PX-SUP|PX Europe|year|SEK']);
    expect(await get('q=px-lic&currency=usd')).toEqual(['PX-LIC|PX Europe|licence|USD']);
    expect(await get(`q=PX&category_id=${(await host.db.knex('crm_product_categories').where({ name: 'Support services' }).first('id')).id}&price_book_id=${parent}`)).toEqual(['PX-SUP|PX Parent|year|EUR']);
    expect(await get('q=%25')).toEqual([]);
    expect(await get('q=px_lic')).toEqual([]);
    const json = (await director.get(`/crm/prices.json?q=px&currency=EUR&price_book_id=${europe}`)).body;
    expect(json.filters).toEqual({ q: 'px', currency: 'EUR', price_book_id: String(europe) });
    // Nonsense filters are ignored rather than failing.
    expect((await director.get('/crm/prices.json?price_book_id=abc&currency=<x>&category_id=-1&page=zz')).status).toBe(200);
  });

  test('pages in SQL, keeping the filters in the links', async () => {
    const director = await Session.signIn(host.app, 'director');
    const many = await book('PX Many', ['crm']);
    for (let i = 0; i < 30; i++) await price(many, await product(`PXM-${String(i).padStart(2, '0')}`, `PXM product ${String(i).padStart(2, '0')}`), 'piece', 100 + i, 'EUR');
    const first = (await director.get(`/crm/prices.json?price_book_id=${many}`)).body;
    const perPage = first.pagination.per_page;
    expect(first.pagination).toMatchObject({ page: 1, total: 30, pages: Math.ceil(30 / perPage) });
    expect(first.prices).toHaveLength(Math.min(30, perPage));
    expect(first.prices[0].product_code).toBe('PXM-00');
    if (perPage < 30) {
      const second = (await director.get(`/crm/prices.json?price_book_id=${many}&page=2`)).body;
      expect(second.prices[0].product_code).toBe(`PXM-${String(perPage).padStart(2, '0')}`);
      const html = await director.get(`/crm/prices?price_book_id=${many}`);
      expect(html.text).toContain(`href="/crm/prices?price_book_id=${many}&amp;page=2"`);
    }
    const beyond = (await director.get(`/crm/prices.json?price_book_id=${many}&page=999`)).body;
    expect(beyond.pagination.page).toBe(beyond.pagination.pages);
  });

  test('users without any price book permission get 404', async () => {
    const knex = host.db.knex;
    const [row] = await knex('users').insert({ login: 'no-prices', name: 'No Prices', email: 'np@example.com', password_hash: await hashPassword('no-prices'), admin: false }).returning('id');
    const role = await knex('roles').where({ name: 'Reporter' }).first('id');
    await knex('members').insert({ project_id: host.demo.projects.crm.id, user_id: idOf(row), role_id: role.id });
    const session = await Session.signIn(host.app, 'no-prices');
    expect((await session.get('/crm/prices')).status).toBe(404);
    expect((await session.get('/crm/prices.json')).status).toBe(404);
  });
});
