import type { DemoDirectory, HostApi } from '../host';

/** Two demo exchange rates (Q7) so a EUR quote can change to SEK or USD: 1 EUR = 11.45 SEK, 1 EUR = 1.08 USD. */
export async function seedExchangeRatesDemo(host: HostApi, _demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  if (await knex('crm_exchange_rates').first('id')) return;
  await knex('crm_exchange_rates').insert([
    { from_currency: 'EUR', to_currency: 'SEK', rate_micro: 11_450_000, valid_on: '2026-01-01' },
    { from_currency: 'EUR', to_currency: 'USD', rate_micro: 1_080_000, valid_on: '2026-01-01' },
  ]);
}
