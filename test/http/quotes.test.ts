import { lockVersionIn, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';
import { addDays, todayUtc } from '../../plugin/services/dates';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const year = new Date().getFullYear();
let counter = 0;

/** An opportunity of rep1's in Europe, owned by this test. */
async function newOpp(currency = 'EUR', project = 'crm-europe'): Promise<number> {
  const knex = host.db.knex;
  const status = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const [row] = await knex('crm_opportunities').insert({
    project_id: host.demo.projects[project].id, name: `Quote test ${++counter}`, owner_id: host.demo.users.rep1.id, status_id: status, currency, author_id: host.demo.users.rep1.id,
  }).returning('id');
  return Number(row.id ?? row);
}

async function createQuote(s: Session, oppId: number, form: Record<string, string> = {}): Promise<{ id: number; number: string }> {
  const res = await s.post(`/crm/opportunities/${oppId}/quotes`, { name: 'Offer', ...form });
  expect(res.status).toBe(303);
  const row = await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).orderBy('id', 'desc').first();
  return { id: Number(row.id), number: String(row.number) };
}

const priceId = async (code: string, unit: string, currency: string, book = 'Standard 2026') => Number((await host.db.knex('crm_product_prices as pp')
  .join('crm_products as p', 'p.id', 'pp.product_id').join('crm_price_books as b', 'b.id', 'pp.price_book_id')
  .where({ 'p.code': code, 'pp.unit_name': unit, 'pp.currency': currency, 'b.name': book }).first('pp.id')).id);
const bookId = async (name: string) => Number((await host.db.knex('crm_price_books').where({ name }).first()).id);
const quoteJson = async (s: Session, id: number) => (await s.get(`/crm/quotes/${id}.json`)).body;

describe('quotes on the opportunity page (Q5)', () => {
  test('the demo quote is on Acme – ERP rollout: active, with price-book items and a 10 % discount', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const opp = await host.db.knex('crm_opportunities').where({ name: 'Acme – ERP rollout' }).first();
    const page = await rep1.get(`/crm/opportunities/${opp.id}`);
    expect(page.status).toBe(200);
    const text = visibleText(page.text);
    expect(text).toContain('Quotes');
    expect(text).toMatch(new RegExp(`✔ active Q-${year}-0001`));
    expect(text).toContain('New quote');
    expect(text).not.toContain('coming with #5');
    const quote = await host.db.knex('crm_quotes').where({ opportunity_id: opp.id }).first();
    const json = await quoteJson(rep1, quote.id);
    expect(json.quote.is_active).toBe(true);
    // Valid from a week before the day the demo is seeded to two months after it: current, not expired.
    expect([json.quote.valid_from, json.quote.valid_to]).toEqual([addDays(todayUtc(), -7), addDays(todayUtc(), 60)]);
    expect(json.items.some((i: { kind: string; discount_kind: string; discount_value: number }) => i.kind === 'manual' && i.discount_kind === 'percent' && i.discount_value === 1000)).toBe(true);
    expect(json.items.some((i: { kind: string }) => i.kind === 'bundle')).toBe(true);
  });

  test('create: numbers follow the format setting, count up per year, are unique; the first quote is active', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const first = await createQuote(rep1, oppId, { valid_from: '2026-12-01', valid_to: '2026-12-31', brand: 'Acme', product_version: '2026' });
    expect(first.number).toMatch(new RegExp(`^Q-${year}-\\d{4}$`));
    const second = await createQuote(rep1, oppId, { name: 'Alternative' });
    expect(Number(second.number.slice(-4))).toBe(Number(first.number.slice(-4)) + 1);
    const rows = await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).orderBy('id');
    expect(rows.map((r) => Boolean(r.is_active))).toEqual([true, false]);
    expect(rows[0]).toMatchObject({ currency: 'EUR', brand: 'Acme', product_version: '2026' });
    // Another format from the settings; JSON create answers 201.
    await host.db.knex('crm_settings').insert({ name: 'quote_number_format', value: JSON.stringify('OFF/{YY}/{SEQ3}'), lock_version: 0 }).onConflict('name').merge();
    try {
      const res = await rep1.agent.post(`/crm/opportunities/${oppId}/quotes`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({ name: 'Third' });
      expect(res.status).toBe(201);
      expect(res.body.quote.number).toBe(`OFF/${String(year % 100).padStart(2, '0')}/001`);
    } finally {
      await host.db.knex('crm_settings').where({ name: 'quote_number_format' }).delete();
    }
    const numbers = (await host.db.knex('crm_quotes').select('number')).map((r) => r.number);
    expect(new Set(numbers).size).toBe(numbers.length);
    const journal = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': oppId, 'd.field': 'quote' }).select('d.new_value');
    expect(journal.map((j) => j.new_value)).toContain(`${first.number} Offer created (active)`);
  });

  test('bad quote fields: 422 with the fields named, input kept, nothing stored', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const res = await rep1.post(`/crm/opportunities/${oppId}/quotes`, { name: '<b>x</b>', currency: 'euro', valid_from: '2026-12-31', valid_to: '2026-12-01' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="currency"');
    expect(res.text).toContain('data-field="valid_to"');
    expect(res.text).toContain('value="&lt;b&gt;x&lt;/b&gt;"');
    expect(await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).first()).toBeUndefined();
    // A day far in the future is refused: contracts count months from it, and past year 9999 a day has no date text.
    const far = await rep1.post(`/crm/opportunities/${oppId}/quotes`, { name: 'Far', currency: 'EUR', valid_from: '9999-12-31' });
    expect(far.status).toBe(422);
    expect(visibleText(far.text)).toContain('Valid from must be between 1900-01-01 and 2999-12-31');
    expect(await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).first()).toBeUndefined();
  });

  test('exactly one active: making another active switches; the active quote cannot be deleted; others can', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const a = await createQuote(rep1, oppId);
    const b = await createQuote(rep1, oppId);
    const toggled = await rep1.htmxPost(`/crm/quotes/${b.id}/activate`);
    expect(toggled.status).toBe(200);
    expect(toggled.headers['hx-trigger']).toBe('crm:quoteSaved');
    expect(toggled.text).toContain('id="crm-page"');
    expect(toggled.text).not.toContain('<html');
    const active = await host.db.knex('crm_quotes').where({ opportunity_id: oppId, is_active: true });
    expect(active.map((r) => Number(r.id))).toEqual([b.id]);
    const refused = await rep1.post(`/crm/quotes/${b.id}/delete`);
    expect(refused.status).toBe(422);
    expect(visibleText(refused.text)).toContain('The active quote cannot be deleted');
    const json = await rep1.agent.post(`/crm/quotes/${b.id}/delete`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({});
    expect(json.status).toBe(422);
    expect(json.body.error).toBe('The active quote cannot be deleted');
    expect(await host.db.knex('crm_quotes').where({ id: b.id }).first()).toBeDefined();
    const deleted = await rep1.post(`/crm/quotes/${a.id}/delete`);
    expect(deleted.status).toBe(303);
    expect(deleted.headers.location).toBe(`/crm/opportunities/${oppId}`);
    expect(await host.db.knex('crm_quotes').where({ id: a.id }).first()).toBeUndefined();
  });

  test('duplicate copies the items under a new number, not active', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Workshop', quantity: '2', unit: 'day', unit_price: '1000', discount: '10', discount_kind: 'percent' });
    const res = await rep1.post(`/crm/quotes/${q.id}/duplicate`);
    expect(res.status).toBe(303);
    const copy = await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).whereNot({ id: q.id }).first();
    expect(copy.number).not.toBe(q.number);
    expect(copy.name).toBe('Offer (copy)');
    expect(Boolean(copy.is_active)).toBe(false);
    const original = await quoteJson(rep1, q.id);
    const copied = await quoteJson(rep1, Number(copy.id));
    expect(copied.items.map((i: { name: string }) => i.name)).toEqual(['Workshop']);
    expect(copied.totals).toEqual(original.totals);
  });

  test('edit with the lock version; a stale save answers 409 and changes nothing', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    const form = await rep1.get(`/crm/quotes/${q.id}/edit`);
    expect(form.status).toBe(200);
    expect(form.text).toContain('name="lock_version" value="0"');
    const saved = await rep1.post(`/crm/quotes/${q.id}`, { name: 'Renamed', lock_version: '0', valid_to: '2027-01-31' });
    expect(saved.status).toBe(303);
    expect(saved.headers.location).toBe(`/crm/opportunities/${oppId}`);
    const stale = await rep1.post(`/crm/quotes/${q.id}`, { name: 'Mine', lock_version: '0' });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('value="Mine"');
    expect((await host.db.knex('crm_quotes').where({ id: q.id }).first()).name).toBe('Renamed');
    expect(lockVersionIn(stale.text)).toBe('1');
    expect((await rep1.post(`/crm/quotes/${q.id}`, { name: 'Mine', lock_version: lockVersionIn(stale.text), valid_to: '2027-01-31' })).status).toBe(303);
    expect((await host.db.knex('crm_quotes').where({ id: q.id }).first()).name).toBe('Mine');
  });
});

describe('quote items (Q6)', () => {
  test('manual items, % and amount discounts, tax rates, rounding: totals are the sums of the lines', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    // 3 × 33.33 = 99.99, −10 % = 10.00 (9.999 → 10.00), net 89.99, tax 25 % = 22.4975 → 22.50
    expect((await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Cable', quantity: '3', unit: 'piece', unit_price: '33.33', discount: '10', discount_kind: 'percent' })).status).toBe(303);
    // 1.5 × 1 200.00 = 1 800.00, −300.00 = 1 500.00, tax 12 % = 180.00
    expect((await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Consulting', quantity: '1,5', unit: 'day', unit_price: '1 200', discount: '300', discount_kind: 'amount', tax_rate: '12' })).status).toBe(303);
    // 0.333 × 10.01 = 3.33333 → 3.33, no discount, tax 0
    expect((await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Small', quantity: '0.333', unit_price: '10.01', tax_rate: '0' })).status).toBe(303);
    expect((await rep1.post(`/crm/quotes/${q.id}/rounding`, { rounding: '-0.82' })).status).toBe(303);
    const json = await quoteJson(rep1, q.id);
    expect(json.items.map((i: Record<string, number>) => [i.gross_minor, i.discount_minor, i.net_minor, i.tax_minor, i.total_minor])).toEqual([
      [9999, 1000, 8999, 2250, 11_249],
      [180_000, 30_000, 150_000, 18_000, 168_000],
      [333, 0, 333, 0, 333],
      [-82, 0, -82, 0, -82],
    ]);
    expect(json.totals).toMatchObject({
      subtotal_minor: 190_332, discount_total_minor: 31_000, rounding_minor: -82, net_total_minor: 159_250, tax_total_minor: 20_250, total_minor: 179_500,
      total: '1795.00', currency: 'EUR',
    });
    const sum = (k: string) => json.items.reduce((a: number, i: Record<string, number>) => a + i[k], 0);
    expect(json.totals.net_total_minor).toBe(sum('net_minor'));
    expect(json.totals.tax_total_minor).toBe(sum('tax_minor'));
    expect(json.totals.total_minor).toBe(sum('total_minor'));
    // The page shows the same numbers.
    const text = visibleText((await rep1.get(`/crm/quotes/${q.id}`)).text);
    expect(text).toContain('Subtotal 1 903.32 EUR');
    expect(text).toContain('Rounding -0.82 EUR');
    expect(text).toContain('Grand total 1 795.00 EUR');
    // One rounding item: setting it again replaces it; an empty amount removes it.
    await rep1.post(`/crm/quotes/${q.id}/rounding`, { rounding: '0.10' });
    expect(await host.db.knex('crm_quote_items').where({ quote_id: q.id, kind: 'rounding' })).toHaveLength(1);
    await rep1.post(`/crm/quotes/${q.id}/rounding`, { rounding: '' });
    expect(await host.db.knex('crm_quote_items').where({ quote_id: q.id, kind: 'rounding' })).toHaveLength(0);
    // Journal on the opportunity.
    const items = await host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
      .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': oppId, 'd.field': 'quote item' }).select('d.new_value');
    expect(items.map((i) => i.new_value)).toContain(`${q.number}: 3 piece × Cable at 33.33 EUR, discount 10 %, tax 25 %`);
  });

  test('bad input: quantity -1, discount 150 %, price 1.005 EUR, amount discount over the line → 422 naming the fields', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    const res = await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Bad <i>', quantity: '-1', unit_price: '1.005', discount: '150', discount_kind: 'percent', tax_rate: '101' });
    expect(res.status).toBe(422);
    for (const f of ['quantity', 'unit_price', 'discount', 'tax_rate']) expect(res.text).toContain(`data-field="${f}"`);
    expect(res.text).toContain('value="Bad &lt;i&gt;"');
    const json = await rep1.agent.post(`/crm/quotes/${q.id}/items`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ name: 'x', quantity: '1.0001', unit_price: '10' });
    expect(json.status).toBe(422);
    expect(json.body.fields).toEqual({ quantity: 'Quantity has at most 3 decimals' });
    const over = await rep1.agent.post(`/crm/quotes/${q.id}/items`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ name: 'x', quantity: '1', unit_price: '10', discount: '10.01', discount_kind: 'amount' });
    expect(over.body.fields).toEqual({ discount: 'Discount is more than the line amount (10.00 EUR)' });
    const price = await rep1.agent.post(`/crm/quotes/${q.id}/items`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ name: 'x', quantity: '1', unit_price: '1.005' });
    expect(price.body.fields.unit_price).toBe('Unit price has at most 2 decimals in EUR');
    const rounding = await rep1.post(`/crm/quotes/${q.id}/rounding`, { rounding: '0.001' });
    expect(rounding.status).toBe(422);
    expect(rounding.text).toContain('data-field="rounding"');
    expect(await host.db.knex('crm_quote_items').where({ quote_id: q.id })).toHaveLength(0);
  });

  test('from a price book: only the quote currency is offered; a bundle is one line with its split; another project’s book → 404', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    const standard = await bookId('Standard 2026');
    const modal = await rep1.htmxGet(`/crm/quotes/${q.id}/catalogue?price_book=${standard}`);
    expect(modal.status).toBe(200);
    expect(modal.text).toMatch(/^\s*<dialog open/);
    const text = visibleText(modal.text);
    expect(text).toContain('480.00 EUR');
    expect(text).not.toContain('USD');
    expect(text).toContain('Starter pack');
    // Without JS the picker is a page; the Nordic book has nothing in EUR.
    const page = await rep1.get(`/crm/quotes/${q.id}/catalogue?price_book=${await bookId('Nordic 2026')}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<html');
    expect(visibleText(page.text)).toContain('Nothing in this price book is priced in EUR');
    const catalogue = (await rep1.get(`/crm/quotes/${q.id}/catalogue.json?price_book=${standard}`)).body;
    expect(catalogue.entries.every((e: { price_minor: number }) => Number.isInteger(e.price_minor))).toBe(true);
    expect(catalogue.price_books.map((b: { name: string }) => b.name).sort()).toEqual(['Nordic 2026', 'Standard 2026']);

    const added = await rep1.post(`/crm/quotes/${q.id}/items/catalogue`, { price_book_id: String(standard), price_id: String(await priceId('CRM-PRO', 'licence/user/year', 'EUR')), quantity: '10' });
    expect(added.status).toBe(303);
    expect(added.headers.location).toBe(`/crm/quotes/${q.id}`);
    const bundle = (await host.db.knex('crm_bundles').where({ price_book_id: standard, code: 'STARTER' }).first());
    const htmx = await rep1.htmxPost(`/crm/quotes/${q.id}/items/catalogue`, { price_book_id: String(standard), bundle_id: String(bundle.id), quantity: '1' });
    expect(htmx.status).toBe(200);
    expect(htmx.headers['hx-trigger']).toBe('crm:quoteSaved');
    const json = await quoteJson(rep1, q.id);
    expect(json.items.map((i: { kind: string; name: string; unit_price_minor: number; tax_rate_bp: number }) => [i.kind, i.name, i.unit_price_minor, i.tax_rate_bp])).toEqual([
      ['product', 'CRM Professional licence', 48_000, 2500], ['bundle', 'Starter pack', Number(bundle.price_minor), 2500],
    ]);
    const split = json.items[1].bundle_split;
    expect(split).toHaveLength(3);
    expect(split.reduce((a: number, s: { share_minor: number }) => a + s.share_minor, 0)).toBe(json.items[1].net_minor);
    expect(json.totals.subtotal_minor).toBe(480_000 + Number(bundle.price_minor));

    // A USD price of the same book is not offered for a EUR quote.
    const usd = await rep1.post(`/crm/quotes/${q.id}/items/catalogue`, { price_book_id: String(standard), price_id: String(await priceId('CRM-PRO', 'licence/user/year', 'USD')), quantity: '1' });
    expect(usd.status).toBe(404);
    // A price book assigned only to another project → 404, nothing added.
    const [row] = await host.db.knex('crm_price_books').insert({ name: 'Asia only', active: true }).returning('id');
    const asia = Number(row.id ?? row);
    await host.db.knex('crm_price_book_projects').insert({ price_book_id: asia, project_id: host.demo.projects['crm-asia'].id });
    const [p] = await host.db.knex('crm_product_prices').insert({ price_book_id: asia, product_id: (await host.db.knex('crm_products').where({ code: 'CRM-PRO' }).first()).id, unit_name: 'seat', price_minor: 100, currency: 'EUR' }).returning('id');
    expect((await rep1.post(`/crm/quotes/${q.id}/items/catalogue`, { price_book_id: String(asia), price_id: String(Number(p.id ?? p)), quantity: '1' })).status).toBe(404);
    expect((await rep1.get(`/crm/quotes/${q.id}/catalogue?price_book=${asia}`)).status).toBe(404);
    expect(await host.db.knex('crm_quote_items').where({ quote_id: q.id })).toHaveLength(2);
    // A bad quantity in the picker comes back with the field named.
    const bad = await rep1.post(`/crm/quotes/${q.id}/items/catalogue`, { price_book_id: String(standard), price_id: String(await priceId('CRM-PRO', 'licence/user/year', 'EUR')), quantity: '-1' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="quantity"');
  });

  test('edit an item with the quote lock version (stale → 409), move and remove it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'One', quantity: '1', unit_price: '10' });
    await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Two', quantity: '1', unit_price: '20' });
    const [one, two] = (await quoteJson(rep1, q.id)).items;
    const lock = (await quoteJson(rep1, q.id)).quote.lock_version;
    const form = await rep1.get(`/crm/quotes/${q.id}/items/${one.id}/edit`);
    expect(form.text).toContain(`name="lock_version" value="${lock}"`);
    const saved = await rep1.post(`/crm/quotes/${q.id}/items/${one.id}`, { name: 'One', quantity: '2', unit_price: '10', discount: '5', discount_kind: 'amount', lock_version: String(lock) });
    expect(saved.status).toBe(303);
    const stale = await rep1.post(`/crm/quotes/${q.id}/items/${one.id}`, { name: 'Mine', quantity: '3', unit_price: '10', lock_version: String(lock) });
    expect(stale.status).toBe(409);
    expect(stale.text).toContain('value="Mine"');
    expect((await quoteJson(rep1, q.id)).items[0]).toMatchObject({ name: 'One', quantity_milli: 2000, discount_minor: 500, net_minor: 1500 });
    expect(lockVersionIn(stale.text)).toBe(String(lock + 1));
    await rep1.post(`/crm/quotes/${q.id}/items/${two.id}/move`, { direction: 'up' });
    expect((await quoteJson(rep1, q.id)).items.map((i: { name: string }) => i.name)).toEqual(['Two', 'One']);
    expect((await rep1.htmxPost(`/crm/quotes/${q.id}/items/${two.id}/delete`)).headers['hx-trigger']).toBe('crm:quoteSaved');
    expect((await quoteJson(rep1, q.id)).items.map((i: { name: string }) => i.name)).toEqual(['One']);
  });

  test('"Show items" answers htmx with the items table alone', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    await rep1.post(`/crm/quotes/${q.id}/items`, { name: 'Thing', quantity: '1', unit_price: '100' });
    const res = await rep1.htmxGet(`/crm/quotes/${q.id}/items`);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('id="crm-page"');
    expect(visibleText(res.text)).toContain('Grand total 125.00 EUR');
  });
});

describe('who may do what', () => {
  test('a sold (locked) opportunity: every quote change answers 422 and nothing changes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    const other = await createQuote(rep1, oppId);
    await host.db.knex('crm_opportunities').where({ id: oppId }).update({ is_locked: true });
    const attempts = [
      rep1.post(`/crm/opportunities/${oppId}/quotes`, { name: 'More' }),
      rep1.post(`/crm/quotes/${q.id}/items`, { name: 'X', quantity: '1', unit_price: '1' }),
      rep1.post(`/crm/quotes/${q.id}/rounding`, { rounding: '1' }),
      rep1.post(`/crm/quotes/${other.id}/activate`),
      rep1.post(`/crm/quotes/${q.id}/duplicate`),
      rep1.post(`/crm/quotes/${other.id}/delete`),
      rep1.post(`/crm/quotes/${q.id}`, { name: 'Y', lock_version: '0' }),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(422);
    expect(await host.db.knex('crm_quotes').where({ opportunity_id: oppId })).toHaveLength(2);
    expect(await host.db.knex('crm_quote_items').whereIn('quote_id', [q.id, other.id])).toHaveLength(0);
    const page = visibleText((await rep1.get(`/crm/quotes/${q.id}`)).text);
    expect(page).not.toContain('Add an item by hand');
  });

  test('a rep who cannot see the opportunity gets 404 for its quotes, pages, JSON and actions', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const rep2 = await Session.signIn(host.app, 'rep2');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    for (const url of [`/crm/quotes/${q.id}`, `/crm/quotes/${q.id}.json`, `/crm/quotes/${q.id}/items`, `/crm/quotes/${q.id}/catalogue`, `/crm/quotes/${q.id}/edit`, `/crm/opportunities/${oppId}/quotes.json`]) {
      expect((await rep2.get(url)).status).toBe(404);
    }
    for (const url of [`/crm/quotes/${q.id}/items`, `/crm/quotes/${q.id}/activate`, `/crm/quotes/${q.id}/delete`, `/crm/opportunities/${oppId}/quotes`]) {
      expect((await rep2.post(url, { name: 'x', quantity: '1', unit_price: '1' })).status).toBe(404);
    }
    expect((await rep1.get('/crm/quotes/99999999')).status).toBe(404);
  });

  test('the sales director sees the team’s quotes but may not change them (no forms shown)', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    const oppId = await newOpp();
    const q = await createQuote(rep1, oppId);
    const page = await director.get(`/crm/quotes/${q.id}`);
    expect(page.status).toBe(200);
    if (!page.text.includes('manual-item-form')) {
      expect((await director.post(`/crm/quotes/${q.id}/items`, { name: 'x', quantity: '1', unit_price: '1' })).status).toBeGreaterThanOrEqual(403);
    }
  });
});
