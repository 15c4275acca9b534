import type { DemoDirectory, HostApi } from '../host';
import { todayUtc } from '../services/dates';

/**
 * Two demo exchange rates (Q7) so a EUR quote can change to SEK or USD: 1 EUR = 11.45 SEK, 1 EUR = 1.08 USD. Valid
 * from the first day of the year before the one the demo is seeded in, so every demo date (the lost deal some ten
 * weeks back, in January too) has a rate.
 */
export async function seedExchangeRatesDemo(host: HostApi, _demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  if (await knex('crm_exchange_rates').first('id')) return;
  const validOn = `${Number(todayUtc().slice(0, 4)) - 1}-01-01`;
  await knex('crm_exchange_rates').insert([
    { from_currency: 'EUR', to_currency: 'SEK', rate_micro: 11_450_000, valid_on: validOn },
    { from_currency: 'EUR', to_currency: 'USD', rate_micro: 1_080_000, valid_on: validOn },
  ]);
}
