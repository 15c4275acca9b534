import type { DemoDirectory, HostApi } from '../host';

/**
 * Two price books to quote from (Q1, Q2): "Standard 2026" in EUR and USD for the whole CRM project (so every
 * region may use it), "Nordic 2026" in SEK for Europe only; products across the seeded categories.
 */
export async function seedPriceBooksDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const { crm } = demo.projects;
  const europe = demo.projects['crm-europe'];
  if (!crm || !europe) return;
  const author = demo.users.director?.id ?? null;
  const category = async (name: string) => Number((await knex('crm_product_categories').where({ name }).first('id'))?.id) || null;
  const book = async (name: string, description: string, projectId: number) => {
    const [row] = await knex('crm_price_books').insert({ name, description, brand: 'Acme CRM Suite', product_version: '2026', active: true, author_id: author }).returning('id');
    const id = Number(row.id ?? row);
    await knex('crm_price_book_projects').insert({ price_book_id: id, project_id: projectId });
    await knex('crm_journals').insert({ journalized_type: 'price_book', journalized_id: id, user_id: author, action: 'create', notes: 'Demo data' });
    return id;
  };
  const standard = await book('Standard 2026', 'List prices for 2026, in euros and US dollars.', crm.id);
  const nordic = await book('Nordic 2026', 'Prices for the Nordic countries, in Swedish kronor.', europe.id);

  type Price = [bookId: number, unit: string, minor: number, currency: string];
  const products: { code: string; name: string; category: string; description: string; prices: Price[] }[] = [
    { code: 'CRM-PRO', name: 'CRM Professional licence', category: 'Software licences', description: 'The CRM for sales teams.',
      prices: [[standard, 'licence/user/year', 48_000, 'EUR'], [standard, 'licence/user/year', 52_000, 'USD'], [nordic, 'licence/user/year', 540_000, 'SEK']] },
    { code: 'CRM-ENT', name: 'CRM Enterprise licence', category: 'Software licences', description: 'Everything in Professional, plus dashboards and the API.',
      prices: [[standard, 'licence/user/year', 84_000, 'EUR'], [standard, 'licence/user/year', 92_000, 'USD'], [nordic, 'licence/user/year', 950_000, 'SEK']] },
    { code: 'SUP-STD', name: 'Standard support', category: 'Support services', description: 'Business-hours support, next-day answers.',
      prices: [[standard, 'licence/user/year', 9_600, 'EUR'], [standard, 'licence/user/year', 10_400, 'USD'], [nordic, 'licence/user/year', 108_000, 'SEK']] },
    { code: 'SUP-PREM', name: 'Premium support', category: 'Support services', description: 'Around-the-clock support with a named contact.',
      prices: [[standard, 'month', 150_000, 'EUR'], [standard, 'month', 165_000, 'USD']] },
    { code: 'IMPL-DAY', name: 'Implementation consulting', category: 'Implementation services', description: 'A consultant on site or remote.',
      prices: [[standard, 'day', 120_000, 'EUR'], [standard, 'hour', 16_000, 'EUR'], [standard, 'day', 130_000, 'USD'], [nordic, 'day', 1_300_000, 'SEK']] },
    { code: 'TRAIN-DAY', name: 'User training', category: 'Implementation services', description: 'Up to twelve participants per day.',
      prices: [[standard, 'day', 95_000, 'EUR'], [standard, 'day', 105_000, 'USD'], [nordic, 'day', 1_000_000, 'SEK']] },
    { code: 'HW-SCAN', name: 'Barcode scanner', category: 'Hardware', description: 'Handheld scanner with cradle.',
      prices: [[standard, 'piece', 18_900, 'EUR'], [standard, 'piece', 19_900, 'USD']] },
    { code: 'HW-TERM', name: 'Point-of-sale terminal', category: 'Hardware', description: 'Touch terminal for shops.',
      prices: [[standard, 'piece', 129_000, 'EUR'], [nordic, 'piece', 1_450_000, 'SEK']] },
  ];
  for (const p of products) {
    const [row] = await knex('crm_products').insert({ code: p.code, name: p.name, description: p.description, active: true, category_id: await category(p.category) }).returning('id');
    const id = Number(row.id ?? row);
    await knex('crm_product_prices').insert(p.prices.map(([price_book_id, unit_name, price_minor, currency]) => ({ price_book_id, product_id: id, unit_name, price_minor, currency })));
    await knex('crm_journals').insert({ journalized_type: 'product', journalized_id: id, user_id: author, action: 'create', notes: 'Demo data' });
  }
}
