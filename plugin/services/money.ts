/**
 * Money as integer minor units plus an ISO 4217 code. Parsing and formatting happen only at the edges
 * (forms, views, documents); arithmetic in between is on integers, so nothing drifts.
 */

/** Minor-unit digits of the currencies we know; the default for any other valid code is 2. */
const MINOR_UNITS: Record<string, number> = {
  BHD: 3, CLP: 0, IQD: 3, ISK: 0, JOD: 3, JPY: 0, KRW: 0, KWD: 3, LYD: 3, OMR: 3, PYG: 0, TND: 3, UGX: 0, VND: 0, XAF: 0, XOF: 0,
};

/** ISO 4217 codes the runtime knows (Node's ICU); a well-formed code outside the list, such as XYZ, is not a currency. */
const KNOWN_CURRENCIES = new Set(typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('currency') : []);

/** A currency code: three capitals that name an ISO 4217 currency (every currency field checks the same way). */
export function isCurrencyCode(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && (KNOWN_CURRENCIES.size === 0 || KNOWN_CURRENCIES.has(code));
}

export function minorDigits(currency: string): number {
  return MINOR_UNITS[currency] ?? 2;
}

export type ParsedAmount = { ok: true; minor: number } | { ok: false; error: string };

/**
 * Reads an amount typed by a person ("1234.5", "1 234,50", "-3") in `currency` into minor units. More
 * decimals than the currency has is an error, not a rounding: the user meant something we cannot store.
 */
export function parseAmount(raw: string, currency: string): ParsedAmount {
  const text = raw.replace(/[\s\u00a0_]/g, '');
  const match = /^(-?)(\d+)(?:[.,](\d+))?$/.exec(text);
  if (!match) return { ok: false, error: 'is not an amount' };
  if (match[2].replace(/^0+(?=\d)/, '').length > 13) return { ok: false, error: 'is too large (at most 13 digits before the decimals)' };
  const digits = minorDigits(currency);
  const fraction = match[3] ?? '';
  if (fraction.length > digits) {
    return { ok: false, error: digits === 0 ? `has no decimals in ${currency}` : `has at most ${digits} decimal${digits === 1 ? '' : 's'} in ${currency}` };
  }
  const minor = Number(match[2]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || '0');
  if (!Number.isSafeInteger(minor)) return { ok: false, error: 'is too large' };
  return { ok: true, minor: match[1] === '-' ? -minor : minor };
}

/** "1234.50" style, for form fields: no grouping, a dot, exactly the currency's decimals. */
export function amountInput(minor: number | null | undefined, currency: string): string {
  if (minor === null || minor === undefined) return '';
  const digits = minorDigits(currency);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  if (digits === 0) return `${sign}${abs}`;
  const unit = 10 ** digits;
  return `${sign}${Math.floor(abs / unit)}.${String(abs % unit).padStart(digits, '0')}`;
}

/** "1 234.50 EUR": grouped with thin spaces, for reading. */
export function formatMoney(minor: number | null | undefined, currency: string): string {
  if (minor === null || minor === undefined) return '';
  const [whole, fraction] = amountInput(minor, currency).split('.');
  const negative = whole.startsWith('-');
  const grouped = (negative ? whole.slice(1) : whole).replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
  return `${negative ? '-' : ''}${grouped}${fraction !== undefined ? `.${fraction}` : ''} ${currency}`;
}

/**
 * `minor × percent / 100` where percent is in hundredths (12.5 % → 1250), rounded half away from zero —
 * the one rounding rule for weighted amounts, shares and discounts.
 */
export function percentOf(minor: number, percentHundredths: number): number {
  const product = minor * percentHundredths;
  const quotient = product / 10000;
  return Math.sign(quotient) * Math.round(Math.abs(quotient));
}

/**
 * Splits `total` minor units over `weights` exactly: the parts add up to the total (largest remainders get
 * the leftover units; ties go to the earlier item).
 */
export function splitByWeights(total: number, weights: number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (sum <= 0 || weights.some((w) => w < 0 || !Number.isInteger(w))) throw new Error('Weights must be non-negative whole numbers with a positive sum');
  const sign = total < 0 ? -1 : 1;
  const abs = Math.abs(total);
  const floors = weights.map((w) => Math.floor((abs * w) / sum));
  let left = abs - floors.reduce((a, b) => a + b, 0);
  const order = weights.map((w, i) => ({ i, rest: (abs * w) % sum })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of order) {
    if (left === 0) break;
    floors[i] += 1;
    left -= 1;
  }
  return floors.map((f) => f * sign);
}
