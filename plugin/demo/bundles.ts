import type { DemoDirectory, HostApi } from '../host';

/**
 * A demo bundle (Q3): "Starter pack" = licence + implementation days + support, weights 50 : 30 : 20, in the
 * first demo price book that prices such items (from demo/price-books.ts). Does nothing without one.
 */
export async function seedBundlesDemo(host: HostApi, _demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const books = await knex('crm_price_books').whereNull('deleted_at').where('active', true).orderBy('id').select('id');
  for (const book of books) {
    const prices = await knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id').whereNull('p.deleted_at')
      .where('pp.price_book_id', book.id).orderBy([{ column: 'pp.currency' }, { column: 'p.id' }, { column: 'pp.unit_name' }])
      .select('pp.product_id', 'pp.unit_name', 'pp.currency', 'pp.price_minor', 'p.name');
    const currencies = [...new Set(prices.map((p) => String(p.currency)))];
    for (const currency of currencies) {
      const inCurrency = prices.filter((p) => p.currency === currency);
      const pick = (pattern: RegExp, taken: unknown[]) => inCurrency.find((p) => pattern.test(String(p.name)) && !taken.includes(p));
      const chosen: typeof prices = [];
      for (const pattern of [/licen[cs]e/i, /implement|consult|day/i, /support|maintenance/i]) {
        const found = pick(pattern, chosen);
        if (found) chosen.push(found);
      }
      for (const p of inCurrency) if (chosen.length < 3 && !chosen.includes(p)) chosen.push(p);
      if (chosen.length < 3) continue;
      if (await knex('crm_bundles').where({ price_book_id: book.id, code: 'STARTER' }).first('id')) return;
      const weights = [50, 30, 20];
      const [row] = await knex('crm_bundles').insert({
        price_book_id: book.id, name: 'Starter pack', code: 'STARTER', active: true, currency, lock_version: 0,
        description: 'Licence, implementation days and a year of support at one price.',
        // A round figure a little under the items' list prices, as a starter offer would be.
        price_minor: Math.max(100, Math.round(chosen.reduce((a, p) => a + Number(p.price_minor), 0) * 0.9 / 10000) * 10000),
      }).returning('id');
      const bundleId = Number(typeof row === 'object' ? row.id : row);
      await knex('crm_bundle_items').insert(chosen.slice(0, 3).map((p, position) => ({ bundle_id: bundleId, product_id: p.product_id, unit_name: p.unit_name, weight: weights[position], position })));
      return;
    }
  }
}
