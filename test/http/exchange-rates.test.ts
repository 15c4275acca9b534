import { rateOn } from '../../plugin/services/exchange-rates';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const BASE = '/crm/settings/exchange-rates';
const today = () => new Date().toISOString().slice(0, 10);
let counter = 0;

async function newOpp(currency = 'EUR'): Promise<number> {
  const knex = host.db.knex;
  const status = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const [row] = await knex('crm_opportunities').insert({
    project_id: host.demo.projects['crm-europe'].id, name: `Rate test ${++counter}`, owner_id: host.demo.users.rep1.id, status_id: status, currency, author_id: host.demo.users.rep1.id,
  }).returning('id');
  return Number(row.id ?? row);
}

async function newQuote(s: Session, currency = 'EUR'): Promise<number> {
  const oppId = await newOpp(currency);
  expect((await s.post(`/crm/opportunities/${oppId}/quotes`, { name: 'Offer', currency })).status).toBe(303);
  return Number((await host.db.knex('crm_quotes').where({ opportunity_id: oppId }).first()).id);
}

const standardBook = async () => Number((await host.db.knex('crm_price_books').where({ name: 'Standard 2026' }).first()).id);
const priceId = async (code: string, unit: string, currency: string) => Number((await host.db.knex('crm_product_prices as pp')
  .join('crm_products as p', 'p.id', 'pp.product_id').where({ 'p.code': code, 'pp.unit_name': unit, 'pp.currency': currency, 'pp.price_book_id': await standardBook() }).first('pp.id')).id);
const snapshot = async (quoteId: number) => ({
  quote: await host.db.knex('crm_quotes').where({ id: quoteId }).first('currency', 'lock_version'),
  items: (await host.db.knex('crm_quote_items').where({ quote_id: quoteId }).orderBy('id').select('unit_price_minor', 'discount_kind', 'discount_value'))
    .map((i) => ({ ...i, unit_price_minor: Number(i.unit_price_minor), discount_value: Number(i.discount_value) })),
});
const lockOf = async (quoteId: number) => String((await host.db.knex('crm_quotes').where({ id: quoteId }).first('lock_version')).lock_version);

describe('exchange rates in the CRM settings (Q7)', () => {
  test('list (demo rates, newest first), add, journal, delete; linked from the settings menu', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const page = await admin.get(BASE);
    expect(page.status).toBe(200);
    expect(visibleText(page.text)).toContain('1 EUR = 11.45 SEK');
    expect(page.text).toContain(`href="${BASE}"`);
    // The demo rates are valid from the first day of last year; the added rate is newer.
    const demoDay = `${Number(today().slice(0, 4)) - 1}-01-01`;
    const newer = `${today().slice(0, 4)}-03-01`;
    const added = await admin.post(BASE, { from_currency: 'gbp', to_currency: 'eur', rate: '1.171234', valid_on: newer });
    expect(added.status).toBe(303);
    const row = await host.db.knex('crm_exchange_rates').where({ from_currency: 'GBP', to_currency: 'EUR' }).first();
    expect(Number(row.rate_micro)).toBe(1_171_234);
    const list = visibleText((await admin.get(BASE)).text);
    expect(list).toContain('1 GBP = 1.171234 EUR');
    expect(list.indexOf(demoDay)).toBeGreaterThan(-1);
    expect(list.indexOf(newer)).toBeLessThan(list.indexOf(demoDay));
    const json = (await admin.get(`${BASE}.json`)).body;
    expect(json.exchange_rates[0]).toMatchObject({ from_currency: 'GBP', to_currency: 'EUR', rate_micro: 1_171_234, valid_on: newer });
    const journal = await host.db.knex('crm_journals').where({ journalized_type: 'settings_exchange_rates', journalized_id: row.id });
    expect(journal.map((j) => j.action)).toEqual(['create']);
    // htmx: the fragment and an event
    const htmx = await admin.htmxPost(BASE, { from_currency: 'GBP', to_currency: 'EUR', rate: '1.18', valid_on: '2026-04-01' });
    expect(htmx.status).toBe(200);
    expect(htmx.headers['hx-trigger']).toContain('crm:exchangeRatesChanged');
    expect(htmx.text).toContain('id="crm-page"');
    const del = await admin.post(`${BASE}/${row.id}/delete`, {});
    expect(del.status).toBe(303);
    expect(await host.db.knex('crm_exchange_rates').where({ id: row.id }).first()).toBeUndefined();
    expect((await host.db.knex('crm_journals').where({ journalized_type: 'settings_exchange_rates', journalized_id: row.id })).map((j) => j.action).sort()).toEqual(['create', 'delete']);
    expect((await admin.post(`${BASE}/999999/delete`, {})).status).toBe(404);
  });

  test('bad input: 422 with the fields named and the input kept; duplicates per pair and date; XSS escaped', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    const before = Number((await host.db.knex('crm_exchange_rates').count({ n: '*' }))[0].n);
    const bad = await admin.post(BASE, { from_currency: '<b>x</b>', to_currency: 'EUR', rate: '1.2345678', valid_on: '2026-02-30' });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('data-field="from_currency"');
    expect(bad.text).toContain('data-field="rate"');
    expect(bad.text).toContain('data-field="valid_on"');
    expect(bad.text).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(bad.text).not.toContain('<b>x</b>');
    expect(visibleText(bad.text)).toContain('Rate has at most 6 decimals');
    const zero = await admin.post(BASE, { from_currency: 'EUR', to_currency: 'EUR', rate: '0', valid_on: '2026-02-01' });
    expect(zero.status).toBe(422);
    expect(visibleText(zero.text)).toContain('Rate must be more than 0');
    expect(visibleText(zero.text)).toContain('To must differ from From');
    // The demo's EUR → SEK rate is valid from the first day of last year.
    const dup = await admin.post(BASE, { from_currency: 'EUR', to_currency: 'SEK', rate: '11.5', valid_on: `${Number(today().slice(0, 4)) - 1}-01-01` });
    expect(dup.status).toBe(422);
    expect(dup.text).toContain('data-field="valid_on"');
    expect(dup.text).toContain('value="11.5"');
    expect(Number((await host.db.knex('crm_exchange_rates').count({ n: '*' }))[0].n)).toBe(before);
  });

  test('users without manage_crm_settings get 404 for reading and changing', async () => {
    const id = Number((await host.db.knex('crm_exchange_rates').first('id')).id);
    for (const login of ['rep1', 'pm']) {
      const user = await Session.signIn(host.app, login);
      expect((await user.get(BASE)).status).toBe(404);
      expect((await user.post(BASE, { from_currency: 'EUR', to_currency: 'NOK', rate: '11', valid_on: '2026-02-01' })).status).toBe(404);
      expect((await user.post(`${BASE}/${id}/delete`, {})).status).toBe(404);
    }
    expect(await host.db.knex('crm_exchange_rates').where({ id }).first()).toBeDefined();
    expect(await host.db.knex('crm_exchange_rates').where({ to_currency: 'NOK' }).first()).toBeUndefined();
  });

  test('rateOn: the latest rate on or before the date; the inverse pair inverted', async () => {
    const knex = host.db.knex;
    await knex('crm_exchange_rates').insert([
      { from_currency: 'DKK', to_currency: 'NZD', rate_micro: 250_000, valid_on: '2025-01-01' },
      { from_currency: 'DKK', to_currency: 'NZD', rate_micro: 260_000, valid_on: '2025-06-01' },
    ]);
    expect(await rateOn(knex, 'DKK', 'NZD', '2024-12-31')).toBeNull();
    expect(await rateOn(knex, 'DKK', 'NZD', '2025-05-31')).toEqual({ rate_micro: 250_000, valid_on: '2025-01-01', inverse: false });
    expect(await rateOn(knex, 'DKK', 'NZD', '2030-01-01')).toEqual({ rate_micro: 260_000, valid_on: '2025-06-01', inverse: false });
    expect(await rateOn(knex, 'NZD', 'DKK', '2025-02-01')).toEqual({ rate_micro: 4_000_000, valid_on: '2025-01-01', inverse: true });
    expect(await rateOn(knex, 'NZD', 'DKK', '2030-01-01')).toEqual({ rate_micro: 3_846_154, valid_on: '2025-06-01', inverse: true });
  });
});

describe('changing a quote’s currency (Q7)', () => {
  test('refused, naming the price-book item without a price in the new currency; nothing changes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const q = await newQuote(rep1);
    expect((await rep1.post(`/crm/quotes/${q}/items/catalogue`, { price_book_id: String(await standardBook()), price_id: String(await priceId('HW-TERM', 'piece', 'EUR')), quantity: '1' })).status).toBe(303);
    expect((await rep1.post(`/crm/quotes/${q}/items`, { name: 'Setup', quantity: '1', unit_price: '100', discount: '5', discount_kind: 'amount' })).status).toBe(303);
    const before = await snapshot(q);
    const res = await rep1.post(`/crm/quotes/${q}`, { name: 'Offer', currency: 'USD', lock_version: await lockOf(q) });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('No USD price in Standard 2026 for: Point-of-sale terminal (piece)');
    expect(res.text).toContain('data-field="currency"');
    expect(await snapshot(q)).toEqual(before);
  });

  test('price-book items re-priced, hand-typed items and amount discounts converted, percent discounts kept; journaled', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    await host.db.knex('crm_exchange_rates').insert({ from_currency: 'EUR', to_currency: 'USD', rate_micro: 1_250_000, valid_on: today() });
    try {
      const q = await newQuote(rep1);
      expect((await rep1.post(`/crm/quotes/${q}/items/catalogue`, { price_book_id: String(await standardBook()), price_id: String(await priceId('HW-SCAN', 'piece', 'EUR')), quantity: '2', discount: '10', discount_kind: 'amount' })).status).toBe(303);
      expect((await rep1.post(`/crm/quotes/${q}/items`, { name: 'Setup', quantity: '1', unit_price: '100', discount: '5', discount_kind: 'amount' })).status).toBe(303);
      expect((await rep1.post(`/crm/quotes/${q}/items`, { name: 'Cable', quantity: '3', unit_price: '33.33', discount: '10', discount_kind: 'percent' })).status).toBe(303);
      expect((await rep1.post(`/crm/quotes/${q}/rounding`, { rounding: '-0.03' })).status).toBe(303);
      const res = await rep1.post(`/crm/quotes/${q}`, { name: 'Offer', currency: 'USD', lock_version: await lockOf(q) });
      expect(res.status).toBe(303);
      const after = await snapshot(q);
      expect(after.quote.currency).toBe('USD');
      expect(after.items).toEqual([
        { unit_price_minor: 19_900, discount_kind: 'amount', discount_value: 1250 }, // the USD price; 10.00 EUR → 12.50 USD
        { unit_price_minor: 12_500, discount_kind: 'amount', discount_value: 625 }, // 100.00 → 125.00; 5.00 → 6.25
        { unit_price_minor: 4166, discount_kind: 'percent', discount_value: 1000 }, // 33.33 × 1.25 = 41.6625 → 41.66; 10 % kept
        { unit_price_minor: -4, discount_kind: null, discount_value: 0 }, // −0.0375 → −0.04 (half away from zero)
      ]);
      const notes = await host.db.knex('crm_journals').where({ journalized_type: 'opportunity' }).where('notes', 'like', '%EUR → USD%').select('notes');
      expect(notes.length).toBe(1);
      expect(notes[0].notes).toContain('converted at 1.25');
      // The stale form is refused.
      expect((await rep1.post(`/crm/quotes/${q}`, { name: 'Offer', currency: 'EUR', lock_version: '0' })).status).toBe(409);
    } finally {
      await host.db.knex('crm_exchange_rates').where({ from_currency: 'EUR', to_currency: 'USD', valid_on: today() }).delete();
    }
  });

  test('an amount discount that would exceed its re-priced line is capped at the line, and the change says so', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    await host.db.knex('crm_exchange_rates').insert({ from_currency: 'EUR', to_currency: 'USD', rate_micro: 1_250_000, valid_on: today() });
    try {
      const q = await newQuote(rep1);
      const eur = Number((await host.db.knex('crm_product_prices').where({ id: await priceId('HW-SCAN', 'piece', 'EUR') }).first('price_minor')).price_minor);
      const usd = Number((await host.db.knex('crm_product_prices').where({ id: await priceId('HW-SCAN', 'piece', 'USD') }).first('price_minor')).price_minor);
      expect(eur * 1.25).toBeGreaterThan(usd); // the whole line's discount, converted, is more than the USD price
      expect((await rep1.post(`/crm/quotes/${q}/items/catalogue`, { price_book_id: String(await standardBook()), price_id: String(await priceId('HW-SCAN', 'piece', 'EUR')), quantity: '1', discount: String(eur / 100), discount_kind: 'amount' })).status).toBe(303);
      const res = await rep1.htmxPost(`/crm/quotes/${q}`, { name: 'Offer', currency: 'USD', lock_version: await lockOf(q) });
      expect(res.status).toBe(200);
      expect((await snapshot(q)).items).toEqual([{ unit_price_minor: usd, discount_kind: 'amount', discount_value: usd }]);
      const notes = await host.db.knex('crm_journals').where({ journalized_type: 'opportunity' }).where('notes', 'like', `%Q-%EUR → USD%`).orderBy('id', 'desc').first('notes');
      expect(notes.notes).toContain('amount discount capped at the line amount for: Barcode');
      // The line still saves as it is (its discount is within the line).
      const item = (await host.db.knex('crm_quote_items').where({ quote_id: q }).first());
      expect((await rep1.post(`/crm/quotes/${q}/items/${item.id}`, { name: item.name, quantity: '1', unit_price: String(usd / 100), discount: String(usd / 100), discount_kind: 'amount', lock_version: await lockOf(q) })).status).toBe(303);
    } finally {
      await host.db.knex('crm_exchange_rates').where({ from_currency: 'EUR', to_currency: 'USD', valid_on: today() }).delete();
    }
  });

  test('the inverse pair is used: a SEK quote changes to EUR with 1 / the EUR→SEK rate', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const q = await newQuote(rep1, 'SEK');
    expect((await rep1.post(`/crm/quotes/${q}/items`, { name: 'Setup', quantity: '1', unit_price: '1145' })).status).toBe(303);
    expect((await rep1.post(`/crm/quotes/${q}`, { name: 'Offer', currency: 'EUR', lock_version: await lockOf(q) })).status).toBe(303);
    // 1 / 11.45 = 0.087336 (rounded); 1145.00 × 0.087336 = 99.99972 → 100.00
    expect((await snapshot(q)).items[0].unit_price_minor).toBe(10_000);
  });

  test('no rate for the pair: 422 naming the missing rate; nothing changes', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const q = await newQuote(rep1);
    expect((await rep1.post(`/crm/quotes/${q}/items`, { name: 'Setup', quantity: '1', unit_price: '100' })).status).toBe(303);
    const before = await snapshot(q);
    const res = await rep1.post(`/crm/quotes/${q}`, { name: 'Offer', currency: 'CHF', lock_version: await lockOf(q) });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain(`No exchange rate from EUR to CHF on or before ${today()}`);
    expect(await snapshot(q)).toEqual(before);
    // A quote without items changes currency freely.
    const empty = await newQuote(rep1);
    expect((await rep1.post(`/crm/quotes/${empty}`, { name: 'Offer', currency: 'CHF', lock_version: await lockOf(empty) })).status).toBe(303);
  });
});
