import type { Knex } from 'knex';
import { invalid, notFound } from '../http/errors';
import type { HostUser } from '../host';
import { dateText } from './accounts';
import { FieldErrors, text, type FormInput } from './form';
import { journal } from './journal';
import { isCurrencyCode, minorDigits } from './money';
import type { PageMeta } from './pagination';
import { divideRounded } from './quote-pricing';
import { isUniqueViolation } from './relations';

/**
 * Exchange rates (SPEC Q7), date-stamped, kept in the CRM settings: "1 FROM = rate TO from valid_on on". Rates
 * are exact integers in millionths (rate_micro); a conversion rounds once, half away from zero, to the target
 * currency's minor units. Looking up a rate takes the latest one on or before a date; the inverse pair counts
 * too (1 / rate, rounded half away from zero to millionths).
 */

export const EXCHANGE_RATE_JOURNAL = 'settings_exchange_rates';
export const RATE_SCALE = 1_000_000;
const PER_PAGE = 25;
/** Largest rate accepted: 999 999 999.999999 (e.g. any pair of real currencies fits with room). */
const MAX_RATE_MICRO = 999_999_999_999_999;

export interface ExchangeRate {
  id: number;
  from_currency: string;
  to_currency: string;
  rate_micro: number;
  valid_on: string;
}

function rateOf(r: Record<string, unknown>): ExchangeRate {
  return { id: Number(r.id), from_currency: String(r.from_currency), to_currency: String(r.to_currency), rate_micro: Number(r.rate_micro), valid_on: dateText(r.valid_on) ?? '' };
}

/** "11.234567" from 11234567. */
export function rateText(rateMicro: number): string {
  const whole = Math.floor(rateMicro / RATE_SCALE);
  const fraction = String(rateMicro % RATE_SCALE).padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

/** A rate typed by a person ("11.234567", "0,5") into millionths; null when it is not one. */
export function parseRate(raw: string): { ok: true; micro: number } | { ok: false; error: string } {
  const match = /^(\d{1,9})(?:[.,](\d+))?$/.exec(raw.replace(/[\s\u00a0_]/g, ''));
  if (!match) return { ok: false, error: 'is not a number' };
  const fraction = match[2] ?? '';
  if (fraction.length > 6) return { ok: false, error: 'has at most 6 decimals' };
  const micro = Number(match[1]) * RATE_SCALE + Number(fraction.padEnd(6, '0') || '0');
  if (micro <= 0) return { ok: false, error: 'must be more than 0' };
  if (micro > MAX_RATE_MICRO) return { ok: false, error: 'is too large' };
  return { ok: true, micro };
}

/** The rate of the inverse pair in millionths: 10^12 / rate, rounded half away from zero (never 0). */
export function invertRate(rateMicro: number): number {
  return Math.max(1, Number(divideRounded(BigInt(RATE_SCALE) * BigInt(RATE_SCALE), BigInt(rateMicro))));
}

/**
 * `amountMinor` (minor units of `fromCurrency`) in minor units of `toCurrency` at `rateMicro` (1 from = rate/10^6
 * to): amount × rate × 10^digits(to) / (10^6 × 10^digits(from)), computed exactly and rounded once, half away from
 * zero. 1000 JPY at 0.0063 EUR → 630 (6.30 EUR); 10.000 KWD at 3.01 EUR → 3010 (30.10 EUR).
 */
export function convertMinor(amountMinor: number, fromCurrency: string, toCurrency: string, rateMicro: number): number {
  if (!Number.isInteger(amountMinor) || !Number.isInteger(rateMicro) || rateMicro <= 0) throw new Error('convertMinor: whole amounts and a positive rate only');
  const numerator = BigInt(amountMinor) * BigInt(rateMicro) * 10n ** BigInt(minorDigits(toCurrency));
  const denominator = BigInt(RATE_SCALE) * 10n ** BigInt(minorDigits(fromCurrency));
  return Number(divideRounded(numerator, denominator));
}

export interface RateOn {
  rate_micro: number;
  /** The date of the stored rate used. */
  valid_on: string;
  /** True when the stored rate is of the inverse pair (to → from). */
  inverse: boolean;
}

/**
 * The rate from → to on `date` (YYYY-MM-DD): the latest stored rate with valid_on <= date, of the pair itself or
 * of the inverse pair (inverted); on the same date the pair itself wins. Same currency → 1. None → null.
 */
export async function rateOn(knex: Knex, from: string, to: string, date: string): Promise<RateOn | null> {
  if (from === to) return { rate_micro: RATE_SCALE, valid_on: date, inverse: false };
  const latest = (f: string, t: string) => knex('crm_exchange_rates').where({ from_currency: f, to_currency: t }).where('valid_on', '<=', date)
    .orderBy('valid_on', 'desc').first();
  const direct = await latest(from, to);
  const inverse = await latest(to, from);
  const d = direct ? rateOf(direct) : null;
  const i = inverse ? rateOf(inverse) : null;
  if (d && (!i || d.valid_on >= i.valid_on)) return { rate_micro: d.rate_micro, valid_on: d.valid_on, inverse: false };
  if (i) return { rate_micro: invertRate(i.rate_micro), valid_on: i.valid_on, inverse: true };
  return null;
}

export async function listRates(knex: Knex, page = 1): Promise<{ items: ExchangeRate[]; meta: PageMeta }> {
  const [{ n }] = await knex('crm_exchange_rates').count({ n: '*' });
  const total = Number(n);
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  const current = Math.min(Math.max(1, page), pages);
  const rows = await knex('crm_exchange_rates').orderBy([{ column: 'valid_on', order: 'desc' }, { column: 'from_currency' }, { column: 'to_currency' }, { column: 'id', order: 'desc' }])
    .limit(PER_PAGE).offset((current - 1) * PER_PAGE);
  return { items: rows.map(rateOf), meta: { page: current, pages, total, per_page: PER_PAGE } };
}

const INVALID = 'The exchange rate was not added: fix the fields marked below.';
const DUPLICATE = 'There is already a rate for this pair on this date: delete it first.';

export function readRate(input: FormInput): Omit<ExchangeRate, 'id'> {
  const errors = new FieldErrors();
  const from = text(input, 'from_currency').toUpperCase();
  const to = text(input, 'to_currency').toUpperCase();
  if (!isCurrencyCode(from)) errors.add('from_currency', 'From must be a currency code such as EUR');
  if (!isCurrencyCode(to)) errors.add('to_currency', 'To must be a currency code such as SEK');
  else if (from === to) errors.add('to_currency', 'To must differ from From');
  const raw = text(input, 'rate');
  const rate = raw ? parseRate(raw) : ({ ok: false, error: 'is required' } as const);
  if (!rate.ok) errors.add('rate', `Rate ${rate.error}`);
  const validOn = errors.date(input, 'valid_on', 'Valid on');
  if (!validOn && !errors.errors.valid_on) errors.add('valid_on', 'Valid on is required');
  if (errors.any) throw invalid(INVALID, errors.errors);
  return { from_currency: from, to_currency: to, rate_micro: rate.ok ? rate.micro : 0, valid_on: validOn! };
}

export async function createRate(knex: Knex, user: HostUser, input: FormInput): Promise<ExchangeRate> {
  const data = readRate(input);
  try {
    return await knex.transaction(async (trx) => {
      const clash = await trx('crm_exchange_rates').where({ from_currency: data.from_currency, to_currency: data.to_currency, valid_on: data.valid_on }).first('id');
      if (clash) throw invalid(DUPLICATE, { valid_on: DUPLICATE });
      const [row] = await trx('crm_exchange_rates').insert(data).returning('id');
      const id = Number(row.id ?? row);
      await journal(trx, {
        type: EXCHANGE_RATE_JOURNAL, id, userId: user.id, action: 'create',
        changes: [{ field: 'rate', old: null, new: `1 ${data.from_currency} = ${rateText(data.rate_micro)} ${data.to_currency} from ${data.valid_on}` }],
      });
      return { id, ...data };
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw invalid(DUPLICATE, { valid_on: DUPLICATE });
    throw err;
  }
}

export async function deleteRate(knex: Knex, user: HostUser, id: number): Promise<ExchangeRate> {
  if (!Number.isInteger(id) || id <= 0) throw notFound('Exchange rate');
  return knex.transaction(async (trx) => {
    const row = await trx('crm_exchange_rates').where({ id }).first();
    if (!row) throw notFound('Exchange rate');
    const rate = rateOf(row);
    await trx('crm_exchange_rates').where({ id }).delete();
    await journal(trx, {
      type: EXCHANGE_RATE_JOURNAL, id, userId: user.id, action: 'delete',
      changes: [{ field: 'rate', old: `1 ${rate.from_currency} = ${rateText(rate.rate_micro)} ${rate.to_currency} from ${rate.valid_on}`, new: null }],
    });
    return rate;
  });
}
