import { amountInput, formatMoney } from '../money';
import type { LineAmounts } from '../quote-pricing';
import type { QuoteItem } from '../quotes';
import { settingLabel } from '../setting-fields';

/**
 * The one place a quote becomes the data a Word template is filled with (SPEC Q8/Q9, issue #5 point 9).
 * Input: a typed snapshot of the quote and everything around it (minor units, ISO dates, raw strings).
 * Output: token data — every value a display string for the locale, money and dates with a `_raw` twin
 * (money: "1234.50" in the currency's decimals; dates: "2026-11-23"), user text cleaned of control
 * characters. Missing values are empty strings, never `undefined` or "null".
 */

export interface DocumentParty {
  name: string;
  organization?: string;
  street?: string;
  postcode?: string;
  city?: string;
  country?: string;
  email?: string;
  phone?: string;
  vat_number?: string;
  registration_number?: string;
  customer_number?: string | null;
}

export interface DocumentContact {
  first_name: string;
  last_name: string;
  job_title?: string;
  email?: string;
  phone?: string;
}

/** One priced line as a document shows it: the quote item's text and amounts (quote-pricing.ts's LineAmounts). */
export interface DocumentItem extends Pick<QuoteItem, 'code' | 'name' | 'description' | 'unit' | 'quantity_milli' | 'unit_price_minor' | 'tax_rate_bp'>, LineAmounts {
  /** The discount as typed when it was a percentage, in hundredths (12.5 % → 1250); null for an amount or none. */
  discount_percent_bp: number | null;
}

export interface DocumentCustomField {
  name: string;
  value: string | null;
}

/** Everything a quote document may show; built by `quote-source.ts` from the database. */
export interface QuoteDocumentInput {
  /** BCP 47 locale for dates (money follows the plugin's one format). */
  locale?: string;
  /** ISO date of the day the document is made. */
  today: string;
  quote: {
    number: string;
    name: string;
    currency: string;
    brand?: string;
    product_version?: string;
    /** ISO date (or timestamp) the quote was made. */
    created_on?: string | null;
    valid_from?: string | null;
    valid_to?: string | null;
  };
  opportunity: {
    id: number;
    name: string;
    description?: string;
    status?: string;
    amount_minor?: number | null;
    currency?: string;
    expected_close_on?: string | null;
  };
  account: DocumentParty | null;
  contact: DocumentContact | null;
  items: DocumentItem[];
  /** Sums of the lines (the rounding line, if any, is in net/total but not in subtotal/discounts). */
  totals: { subtotal_minor: number; discount_total_minor: number; rounding_minor?: number; net_total_minor: number; tax_total_minor: number; total_minor: number };
  salesRep: { name: string; email?: string; login?: string } | null;
  company: { name: string; address: string; vat_number: string; bank: string };
  customFields?: { account?: DocumentCustomField[]; opportunity?: DocumentCustomField[] };
  /** S6 "show item descriptions on quotes": when false, items.description is empty. */
  showItemDescriptions?: boolean;
}

/** A value in token data: a string, a nested group, or the items loop. */
export type TokenValue = string | TokenGroup | TokenGroup[];
export interface TokenGroup { [key: string]: TokenValue }
export type TokenData = TokenGroup;

// ---- the vocabulary ---------------------------------------------------------------------------------------

export interface TokenInfo {
  /** As written in a template: `account.name`; loop fields (loop set) are written bare inside `{#items}…{/items}`. */
  token: string;
  description: string;
  /** Set for the fields of a loop: the loop's name. */
  loop?: 'items';
  /** `items` itself. */
  isLoop?: boolean;
  /** A family of tokens, one per custom field: `account.custom.<field>`. */
  family?: boolean;
}

const money = (what: string) => `${what}, formatted with its currency ("1 234.50 EUR"); \`_raw\`: "1234.50"`;
const date = (what: string) => `${what}, formatted for the locale ("23 November 2026"); \`_raw\`: ISO "2026-11-23"`;

/** Every token a template may use (the reference page, the template check and docs/tokens.md come from this list). */
export const TOKEN_REFERENCE: TokenInfo[] = [
  { token: 'today', description: date('The day the document is made') },
  { token: 'today_raw', description: 'The day the document is made, ISO' },

  { token: 'company.name', description: `Your company name (CRM settings: ${settingLabel('company_name')})` },
  { token: 'company.address', description: `Your company address; line breaks kept (CRM settings: ${settingLabel('company_address')})` },
  { token: 'company.vat_number', description: `Your VAT number (CRM settings: ${settingLabel('company_vat_number')})` },
  { token: 'company.bank', description: `Your bank details (CRM settings: ${settingLabel('company_bank')})` },

  { token: 'account.name', description: 'Customer account name' },
  { token: 'account.organization', description: 'Organization (personal accounts)' },
  { token: 'account.street', description: 'Street' },
  { token: 'account.postcode', description: 'Postcode' },
  { token: 'account.city', description: 'City' },
  { token: 'account.country', description: 'Country' },
  { token: 'account.address', description: 'Street, postcode and city, country — one per line' },
  { token: 'account.email', description: 'E-mail' },
  { token: 'account.phone', description: 'Phone' },
  { token: 'account.vat_number', description: 'VAT number' },
  { token: 'account.registration_number', description: 'Registration number' },
  { token: 'account.customer_number', description: 'Customer number' },
  { token: 'account.custom.<field>', description: 'An account custom field, by its name in lower case with _ for spaces (Customer tier → account.custom.customer_tier)', family: true },

  { token: 'contact.name', description: 'Contact person: first and last name' },
  { token: 'contact.first_name', description: 'First name' },
  { token: 'contact.last_name', description: 'Last name' },
  { token: 'contact.job_title', description: 'Job title' },
  { token: 'contact.email', description: 'E-mail' },
  { token: 'contact.phone', description: 'Phone' },

  { token: 'opportunity.name', description: 'Opportunity name' },
  { token: 'opportunity.description', description: 'Opportunity description; line breaks kept' },
  { token: 'opportunity.status', description: 'Status' },
  { token: 'opportunity.amount', description: money('Expected amount') },
  { token: 'opportunity.amount_raw', description: 'Expected amount, plain number' },
  { token: 'opportunity.expected_close', description: date('Expected close date') },
  { token: 'opportunity.expected_close_raw', description: 'Expected close date, ISO' },
  { token: 'opportunity.custom.<field>', description: 'An opportunity custom field, by name (as for accounts)', family: true },

  { token: 'quote.number', description: 'Quote number' },
  { token: 'quote.name', description: 'Quote name' },
  { token: 'quote.currency', description: 'Currency code (EUR)' },
  { token: 'quote.brand', description: 'Brand' },
  { token: 'quote.product_version', description: 'Product version' },
  { token: 'quote.date', description: date('Date the quote was made') },
  { token: 'quote.date_raw', description: 'Date the quote was made, ISO' },
  { token: 'quote.valid_from', description: date('Valid from') },
  { token: 'quote.valid_from_raw', description: 'Valid from, ISO' },
  { token: 'quote.valid_to', description: date('Valid until') },
  { token: 'quote.valid_to_raw', description: 'Valid until, ISO' },
  { token: 'quote.subtotal', description: money('Sum of the lines before discounts') },
  { token: 'quote.subtotal_raw', description: 'Subtotal, plain number' },
  { token: 'quote.discount_total', description: money('Sum of the discounts') },
  { token: 'quote.discount_total_raw', description: 'Discounts, plain number' },
  { token: 'quote.rounding', description: money('The rounding line of the quote (0 without one)') },
  { token: 'quote.rounding_raw', description: 'Rounding, plain number' },
  { token: 'quote.net_total', description: money('Subtotal less discounts, before tax') },
  { token: 'quote.net_total_raw', description: 'Net total, plain number' },
  { token: 'quote.tax_total', description: money('Sum of the taxes') },
  { token: 'quote.tax_total_raw', description: 'Tax, plain number' },
  { token: 'quote.total', description: money('Total to pay, tax included') },
  { token: 'quote.total_raw', description: 'Total, plain number' },

  { token: 'items', description: 'The quote lines: repeat a table row or paragraph with {#items}…{/items}', isLoop: true },
  { token: 'index', description: 'Line number: 1, 2, 3 …', loop: 'items' },
  { token: 'code', description: 'Product code', loop: 'items' },
  { token: 'name', description: 'Product or line name', loop: 'items' },
  { token: 'description', description: 'Line description (empty when the setting hides descriptions on quotes)', loop: 'items' },
  { token: 'quantity', description: 'Quantity ("1.5")', loop: 'items' },
  { token: 'quantity_raw', description: 'Quantity, plain number', loop: 'items' },
  { token: 'unit', description: 'Unit (pcs, days …)', loop: 'items' },
  { token: 'unit_price', description: money('Unit price'), loop: 'items' },
  { token: 'unit_price_raw', description: 'Unit price, plain number', loop: 'items' },
  { token: 'gross', description: money('Quantity × unit price'), loop: 'items' },
  { token: 'gross_raw', description: 'Gross, plain number', loop: 'items' },
  { token: 'discount', description: 'Discount: "10 %" when given as a percentage, else the amount; empty when none', loop: 'items' },
  { token: 'discount_amount', description: money('Discount amount'), loop: 'items' },
  { token: 'discount_raw', description: 'Discount amount, plain number', loop: 'items' },
  { token: 'net', description: money('Line amount after discount, before tax'), loop: 'items' },
  { token: 'net_raw', description: 'Net, plain number', loop: 'items' },
  { token: 'tax_rate', description: 'Tax rate ("25 %")', loop: 'items' },
  { token: 'tax_rate_raw', description: 'Tax rate, plain number ("25")', loop: 'items' },
  { token: 'tax', description: money('Tax of the line'), loop: 'items' },
  { token: 'tax_raw', description: 'Tax, plain number', loop: 'items' },
  { token: 'total', description: money('Line total, tax included'), loop: 'items' },
  { token: 'total_raw', description: 'Line total, plain number', loop: 'items' },

  { token: 'sales_rep.name', description: 'The opportunity owner (sales rep)' },
  { token: 'sales_rep.email', description: 'Sales rep e-mail' },
];

export const ROOT_TOKENS = new Set(TOKEN_REFERENCE.filter((t) => !t.loop && !t.family).map((t) => t.token));
export const LOOP_TOKENS: Record<string, Set<string>> = {
  items: new Set(TOKEN_REFERENCE.filter((t) => t.loop === 'items').map((t) => t.token)),
};
/** Prefixes of token families (custom fields by name). */
export const FAMILY_PREFIXES = TOKEN_REFERENCE.filter((t) => t.family).map((t) => t.token.replace('<field>', ''));

// ---- building --------------------------------------------------------------------------------------------

// C0 controls except tab and newline, DEL, C1 controls, and the two non-characters XML forbids.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffe\uffff]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** User text fit for a document: line endings as \n, control characters and broken surrogates removed. */
export function cleanText(value: unknown): string {
  if (value === null || value === undefined) return '';
  return String(value).replace(/\r\n?/g, '\n').replace(CONTROL, '').replace(LONE_SURROGATE, '');
}

/** "Customer tier" → "customer_tier": the name part of a custom field token. */
export function customFieldSlug(name: string): string {
  return name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/ß/g, 'ss').toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').replace(/^(\d)/, '_$1') || 'field';
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/** The ISO day of a date or timestamp string ('' when it is not one). */
export function isoDay(value: unknown): string {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? '' : value.toISOString().slice(0, 10);
  const m = ISO_DATE.exec(String(value ?? ''));
  return m ? `${m[1]}-${m[2]}-${m[3]}` : '';
}

/** "2026-11-23" → "23 November 2026" (en-GB); anything not a date → ''. */
export function formatDate(value: unknown, locale = 'en-GB'): string {
  const day = isoDay(value);
  if (!day) return '';
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return '';
  try {
    return new Intl.DateTimeFormat(locale, { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d);
  } catch {
    return day;
  }
}

/** Hundredths of a percent → "12.5 %" (no trailing zeros). */
export function formatPercentBp(bp: number | null | undefined): string {
  if (bp === null || bp === undefined || !Number.isFinite(bp)) return '';
  return `${plainPercent(bp)} %`;
}

const plainPercent = (bp: number): string => String(bp / 100);

/** Thousandths → "1.5". */
export function formatQuantity(milli: number): string {
  if (!Number.isFinite(milli)) return '';
  const sign = milli < 0 ? '-' : '';
  const abs = Math.abs(milli);
  const frac = String(abs % 1000).padStart(3, '0').replace(/0+$/, '');
  return `${sign}${Math.floor(abs / 1000)}${frac ? `.${frac}` : ''}`;
}

const moneyPair = (key: string, minor: number | null | undefined, currency: string): TokenGroup => ({
  [key]: minor === null || minor === undefined ? '' : formatMoney(minor, currency),
  [`${key}_raw`]: minor === null || minor === undefined ? '' : amountInput(minor, currency),
});

const datePair = (key: string, value: unknown, locale: string): TokenGroup => ({
  [key]: formatDate(value, locale),
  [`${key}_raw`]: isoDay(value),
});

function customGroup(fields: DocumentCustomField[] | undefined): TokenGroup {
  const group: TokenGroup = {};
  for (const f of fields ?? []) {
    const slug = customFieldSlug(f.name);
    if (!(slug in group)) group[slug] = cleanText(f.value);
  }
  return group;
}

function addressLines(a: DocumentParty): string {
  const cityLine = [a.postcode, a.city].map(cleanText).filter(Boolean).join(' ');
  return [a.street, cityLine, a.country].map(cleanText).filter(Boolean).join('\n');
}

/** The token data for a quote document: the one builder behind generation and the token reference. */
export function buildTokenData(input: QuoteDocumentInput): TokenData {
  const locale = input.locale ?? 'en-GB';
  const currency = input.quote.currency;
  const a = input.account;
  const c = input.contact;
  const showDescriptions = input.showItemDescriptions ?? true;
  return {
    today: formatDate(input.today, locale),
    today_raw: isoDay(input.today),
    company: {
      name: cleanText(input.company.name), address: cleanText(input.company.address),
      vat_number: cleanText(input.company.vat_number), bank: cleanText(input.company.bank),
    },
    account: {
      name: cleanText(a?.name), organization: cleanText(a?.organization), street: cleanText(a?.street), postcode: cleanText(a?.postcode),
      city: cleanText(a?.city), country: cleanText(a?.country), address: a ? addressLines(a) : '', email: cleanText(a?.email),
      phone: cleanText(a?.phone), vat_number: cleanText(a?.vat_number), registration_number: cleanText(a?.registration_number),
      customer_number: cleanText(a?.customer_number), custom: customGroup(input.customFields?.account),
    },
    contact: {
      name: c ? [c.first_name, c.last_name].map(cleanText).filter(Boolean).join(' ') : '',
      first_name: cleanText(c?.first_name), last_name: cleanText(c?.last_name), job_title: cleanText(c?.job_title),
      email: cleanText(c?.email), phone: cleanText(c?.phone),
    },
    opportunity: {
      name: cleanText(input.opportunity.name), description: cleanText(input.opportunity.description), status: cleanText(input.opportunity.status),
      ...moneyPair('amount', input.opportunity.amount_minor, input.opportunity.currency ?? currency),
      ...datePair('expected_close', input.opportunity.expected_close_on, locale),
      custom: customGroup(input.customFields?.opportunity),
    },
    quote: {
      number: cleanText(input.quote.number), name: cleanText(input.quote.name), currency: cleanText(currency),
      brand: cleanText(input.quote.brand), product_version: cleanText(input.quote.product_version),
      ...datePair('date', input.quote.created_on, locale),
      ...datePair('valid_from', input.quote.valid_from, locale),
      ...datePair('valid_to', input.quote.valid_to, locale),
      ...moneyPair('subtotal', input.totals.subtotal_minor, currency),
      ...moneyPair('discount_total', input.totals.discount_total_minor, currency),
      ...moneyPair('rounding', input.totals.rounding_minor ?? 0, currency),
      ...moneyPair('net_total', input.totals.net_total_minor, currency),
      ...moneyPair('tax_total', input.totals.tax_total_minor, currency),
      ...moneyPair('total', input.totals.total_minor, currency),
    },
    items: input.items.map((item, i) => ({
      index: String(i + 1),
      code: cleanText(item.code), name: cleanText(item.name), description: showDescriptions ? cleanText(item.description) : '',
      quantity: formatQuantity(item.quantity_milli), quantity_raw: formatQuantity(item.quantity_milli), unit: cleanText(item.unit),
      ...moneyPair('unit_price', item.unit_price_minor, currency),
      ...moneyPair('gross', item.gross_minor, currency),
      discount: item.discount_percent_bp !== null && item.discount_percent_bp !== 0
        ? formatPercentBp(item.discount_percent_bp)
        : item.discount_minor ? formatMoney(item.discount_minor, currency) : '',
      discount_amount: item.discount_minor ? formatMoney(item.discount_minor, currency) : '',
      discount_raw: amountInput(item.discount_minor, currency),
      ...moneyPair('net', item.net_minor, currency),
      tax_rate: formatPercentBp(item.tax_rate_bp), tax_rate_raw: plainPercent(item.tax_rate_bp),
      ...moneyPair('tax', item.tax_minor, currency),
      ...moneyPair('total', item.total_minor, currency),
    })),
    sales_rep: { name: cleanText(input.salesRep?.name), email: cleanText(input.salesRep?.email) },
  };
}

/** Every token with its value, in reference order (custom fields expanded), for the token reference page. */
export function tokenValues(data: TokenData): { token: string; value: string; description: string; loop?: string }[] {
  const out: { token: string; value: string; description: string; loop?: string }[] = [];
  const lookup = (root: TokenGroup, path: string): string => {
    let cur: TokenValue | undefined = root;
    for (const seg of path.split('.')) {
      if (!cur || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, seg)) return '';
      cur = (cur as TokenGroup)[seg];
    }
    return typeof cur === 'string' ? cur : '';
  };
  const items = Array.isArray(data.items) ? data.items : [];
  for (const info of TOKEN_REFERENCE) {
    if (info.family) {
      const [group] = info.token.split('.');
      const custom = (data[group] as TokenGroup | undefined)?.custom;
      if (custom && typeof custom === 'object' && !Array.isArray(custom)) {
        for (const [slug, value] of Object.entries(custom)) {
          out.push({ token: `${group}.custom.${slug}`, value: typeof value === 'string' ? value : '', description: info.description });
        }
      }
      continue;
    }
    if (info.isLoop) {
      out.push({ token: info.token, value: `${items.length} line${items.length === 1 ? '' : 's'}`, description: info.description });
      continue;
    }
    if (info.loop) {
      const first = items[0];
      out.push({ token: info.token, loop: info.loop, value: first ? lookup(first, info.token) : '', description: info.description });
      continue;
    }
    out.push({ token: info.token, value: lookup(data, info.token), description: info.description });
  }
  return out;
}
