import type { DemoDirectory, HostApi } from '../host';
import { loadSettings } from '../services/settings';
import { defaultTaxRate, nextQuoteNumber } from '../services/quotes';
import { addDays, todayUtc } from '../services/dates';

/**
 * A demo quote (Q5, Q6) on "Acme – ERP rollout" (EUR), active: licences, consulting days and the Starter pack
 * from the "Standard 2026" price book, plus a manual item with a 10 % discount. Valid from a week before the day the
 * demo is seeded to two months after it, so it is current whenever the demo is new. Does nothing without them.
 */
export async function seedQuotesDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const opp = await knex('crm_opportunities').where({ name: 'Acme – ERP rollout' }).whereNull('deleted_at').first('id', 'currency', 'owner_id');
  const book = await knex('crm_price_books').where({ name: 'Standard 2026' }).whereNull('deleted_at').first('id');
  if (!opp || !book || (await knex('crm_quotes').where({ opportunity_id: opp.id }).first('id'))) return;
  const currency = String(opp.currency);
  const tax = await defaultTaxRate(knex);
  const number = await nextQuoteNumber(knex, String((await loadSettings(knex)).quote_number_format));
  const author = opp.owner_id ?? demo.users.rep1?.id ?? null;
  const today = todayUtc();
  const [row] = await knex('crm_quotes').insert({
    opportunity_id: opp.id, number, name: 'ERP rollout – phase 1', currency, brand: 'Acme CRM Suite', product_version: '2026',
    valid_from: addDays(today, -7), valid_to: addDays(today, 60), is_active: true, author_id: author,
  }).returning('id');
  const quoteId = Number(row.id ?? row);
  const price = async (code: string, unit: string) => knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
    .where({ 'pp.price_book_id': book.id, 'p.code': code, 'pp.unit_name': unit, 'pp.currency': currency }).first('p.id as product_id', 'p.code', 'p.name', 'p.description', 'pp.price_minor');
  const items: Record<string, unknown>[] = [];
  for (const [code, unit, quantity] of [['CRM-PRO', 'licence/user/year', 25_000], ['IMPL-DAY', 'day', 12_500], ['SUP-STD', 'licence/user/year', 25_000]] as const) {
    const p = await price(code, unit);
    if (!p) continue;
    items.push({ kind: 'product', product_id: p.product_id, price_book_id: book.id, code: p.code, name: p.name, description: p.description, unit, quantity_milli: quantity, unit_price_minor: Number(p.price_minor), tax_rate_bp: tax });
  }
  const bundle = await knex('crm_bundles').where({ price_book_id: book.id, currency, code: 'STARTER' }).first('id', 'code', 'name', 'description', 'price_minor');
  if (bundle) items.push({ kind: 'bundle', bundle_id: bundle.id, price_book_id: book.id, code: bundle.code, name: bundle.name, description: bundle.description, unit: 'bundle', quantity_milli: 1000, unit_price_minor: Number(bundle.price_minor), tax_rate_bp: tax });
  items.push({ kind: 'manual', name: 'Data migration from the legacy ERP', description: 'Customers, items and open orders; one test run and the final run.', unit: 'fixed price', quantity_milli: 1000, unit_price_minor: 850_000, discount_kind: 'percent', discount_value: 1000, tax_rate_bp: tax });
  await knex('crm_quote_items').insert(items.map((i, index) => ({
    product_id: null, bundle_id: null, price_book_id: null, code: '', discount_kind: null, discount_value: 0, ...i, quote_id: quoteId, position: index + 1,
  })));
  await knex('crm_journals').insert({ journalized_type: 'opportunity', journalized_id: opp.id, user_id: author, action: 'update', notes: `Quote ${number} created (demo data)` });
}
