/**
 * Quote arithmetic (SPEC Q6), pure and integer-only: quantities in thousandths, money in minor units, percents
 * in hundredths. One rounding rule, half away from zero (as `percentOf` in ./money), applied once per line value;
 * every total is the sum of the per-line values the document shows ("round per line, then sum"), so a reader
 * adding up the printed lines always gets the printed totals.
 *
 *   gross    = round(quantity_milli × unit_price_minor / 1000)
 *   discount = percent → percentOf(gross, value) | amount → min(value, gross) | none → 0
 *   net      = gross − discount
 *   tax      = percentOf(net, tax_rate_bp)
 *   total    = net + tax
 *
 * The rounding item is a line of quantity 1 at a (possibly negative) unit price, without discount or tax; it is
 * not part of the subtotal (the items' gross) but of the net: subtotal − discount_total + rounding = net_total.
 */
import { percentOf } from './money';

export type QuoteItemKind = 'product' | 'bundle' | 'manual' | 'rounding';
export type DiscountKind = 'percent' | 'amount' | null;

/** The stored numbers of a line, as in crm_quote_items. */
export interface LineInput {
  kind: QuoteItemKind;
  quantity_milli: number;
  unit_price_minor: number;
  discount_kind: DiscountKind;
  discount_value: number;
  tax_rate_bp: number;
}

export interface LineAmounts {
  gross_minor: number;
  discount_minor: number;
  net_minor: number;
  tax_minor: number;
  total_minor: number;
}

export interface QuoteTotals {
  /** Σ gross of the items (the rounding item excluded). */
  subtotal_minor: number;
  discount_total_minor: number;
  /** The rounding item's amount, 0 without one. */
  rounding_minor: number;
  /** Σ net of every line, the rounding item included. */
  net_total_minor: number;
  tax_total_minor: number;
  total_minor: number;
}

/** Largest line amount we accept (10^11 minor units): a percent of it (× 10 000) stays a safe integer. */
export const MAX_LINE_MINOR = 100_000_000_000;
/** Largest quantity: one million units. */
export const MAX_QUANTITY_MILLI = 1_000_000_000;

/** `numerator / denominator` rounded half away from zero, exactly (BigInt: no float error for any size). */
export function divideRounded(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new Error('denominator must be positive');
  const negative = numerator < 0n;
  const abs = negative ? -numerator : numerator;
  const q = (abs * 2n + denominator) / (denominator * 2n);
  return negative ? -q : q;
}

/** Below this, `2 × |quantity × price| + 1000` is still an exact double: the plain-number path gives the same result. */
const EXACT_PRODUCT_LIMIT = (Number.MAX_SAFE_INTEGER - 1000) / 2;

export function lineGross(quantityMilli: number, unitPriceMinor: number): number {
  const product = quantityMilli * unitPriceMinor;
  if (Math.abs(product) <= EXACT_PRODUCT_LIMIT) {
    // The everyday case, without BigInt's allocations (a 2000-line quote is priced on the request's thread).
    // Integer arithmetic on exact doubles: the remainder makes the division exact (no float rounding).
    const twice = Math.abs(product) * 2 + 1000;
    const q = (twice - (twice % 2000)) / 2000;
    return product < 0 ? -q : q;
  }
  return Number(divideRounded(BigInt(quantityMilli) * BigInt(unitPriceMinor), 1000n));
}

export function lineDiscount(gross: number, kind: DiscountKind, value: number): number {
  if (kind === 'percent') return percentOf(gross, value);
  if (kind === 'amount') return Math.min(value, gross);
  return 0;
}

export function priceLine(line: LineInput): LineAmounts {
  if (line.kind === 'rounding') {
    return { gross_minor: line.unit_price_minor, discount_minor: 0, net_minor: line.unit_price_minor, tax_minor: 0, total_minor: line.unit_price_minor };
  }
  const gross = lineGross(line.quantity_milli, line.unit_price_minor);
  const discount = lineDiscount(gross, line.discount_kind, line.discount_value);
  const net = gross - discount;
  const tax = percentOf(net, line.tax_rate_bp);
  return { gross_minor: gross, discount_minor: discount, net_minor: net, tax_minor: tax, total_minor: net + tax };
}

/** Each line's amounts and the totals, which are sums of those very amounts. */
export function priceQuote<L extends LineInput>(lines: L[]): { lines: Array<L & LineAmounts>; totals: QuoteTotals } {
  const priced = lines.map((l) => ({ ...l, ...priceLine(l) }));
  const totals: QuoteTotals = { subtotal_minor: 0, discount_total_minor: 0, rounding_minor: 0, net_total_minor: 0, tax_total_minor: 0, total_minor: 0 };
  for (const l of priced) {
    if (l.kind === 'rounding') totals.rounding_minor += l.net_minor;
    else {
      totals.subtotal_minor += l.gross_minor;
      totals.discount_total_minor += l.discount_minor;
    }
    totals.net_total_minor += l.net_minor;
    totals.tax_total_minor += l.tax_minor;
  }
  totals.total_minor = totals.net_total_minor + totals.tax_total_minor;
  return { lines: priced, totals };
}

// ---- reading what people type -----------------------------------------------------------------------------------

export type Parsed = { ok: true; value: number } | { ok: false; error: string };

/** A decimal with at most `digits` decimals, as an integer scaled by 10^digits ("1,5" → 1500 for 3 digits). */
function parseScaled(raw: string, digits: number, what: string): Parsed {
  const text = raw.replace(/[\s\u00a0_]/g, '');
  const match = /^(-?)(\d{1,12})(?:[.,](\d+))?$/.exec(text);
  if (!match) return { ok: false, error: `is not a ${what}` };
  const fraction = match[3] ?? '';
  if (fraction.length > digits) return { ok: false, error: `has at most ${digits} decimal${digits === 1 ? '' : 's'}` };
  const value = Number(match[2]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || '0');
  return { ok: true, value: match[1] === '-' && value !== 0 ? -value : value };
}

/** A quantity: greater than 0, at most 3 decimals, at most one million; in thousandths. */
export function parseQuantity(raw: string): Parsed {
  if (!raw.trim()) return { ok: false, error: 'is required' };
  const parsed = parseScaled(raw, 3, 'number');
  if (!parsed.ok) return parsed;
  if (parsed.value <= 0) return { ok: false, error: 'must be greater than 0' };
  if (parsed.value > MAX_QUANTITY_MILLI) return { ok: false, error: 'is at most 1 000 000' };
  return parsed;
}

/** A percentage from 0 to 100 with at most 2 decimals; in hundredths (12.5 → 1250). */
export function parsePercent(raw: string): Parsed {
  if (!raw.trim()) return { ok: false, error: 'is required' };
  const parsed = parseScaled(raw.replace(/%$/, ''), 2, 'percentage');
  if (!parsed.ok) return parsed;
  if (parsed.value < 0 || parsed.value > 10_000) return { ok: false, error: 'must be from 0 to 100 %' };
  return parsed;
}

/** Thousandths as people write them: 1500 → "1.5", 2000 → "2". */
export function quantityText(milli: number): string {
  const sign = milli < 0 ? '-' : '';
  const abs = Math.abs(milli);
  const fraction = String(abs % 1000).padStart(3, '0').replace(/0+$/, '');
  return `${sign}${Math.floor(abs / 1000)}${fraction ? `.${fraction}` : ''}`;
}

/** Hundredths of a percent as people write them: 2500 → "25", 1250 → "12.5". */
export function percentText(hundredths: number): string {
  const sign = hundredths < 0 ? '-' : '';
  const abs = Math.abs(hundredths);
  const fraction = String(abs % 100).padStart(2, '0').replace(/0+$/, '');
  return `${sign}${Math.floor(abs / 100)}${fraction ? `.${fraction}` : ''}`;
}
