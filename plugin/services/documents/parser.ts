import { amountInput, formatMoney, isCurrencyCode, parseAmount } from '../money';
import { formatDate, isoDay } from './token-data';

/**
 * The restricted docxtemplater parser (issue #5 point 8): templates are uploaded by users, so a tag is only
 * ever a dotted path (`account.name`, inside `{#items}…{/items}` a line field such as `name`), optionally
 * followed by ONE filter from a fixed set: `{quote.total_raw | money}`. No expressions, no calls, no
 * indexing, no prototype walking: anything else fails to compile with a message naming the tag.
 */

export const FILTER_NAMES = ['money', 'date', 'percent', 'upper'] as const;
export type FilterName = (typeof FILTER_NAMES)[number];

export interface ParsedTag {
  path: string[];
  filter: FilterName | null;
}

export class TagSyntaxError extends Error {
  constructor(readonly tag: string, message: string) {
    super(message);
    this.name = 'TagSyntaxError';
  }
}

const SEGMENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Word likes to put non-breaking and other unusual spaces into what a person typed as a space.
const SPACES = /[\s\u00a0\u2000-\u200b\u202f\u205f\u3000]+/g;

/** `" quote.total | money "` → { path: ['quote', 'total'], filter: 'money' }; throws TagSyntaxError otherwise. */
export function parseTag(raw: string): ParsedTag {
  const tag = raw.replace(SPACES, ' ').trim();
  if (!tag) throw new TagSyntaxError(raw, 'The tag is empty: write a token name such as {account.name}.');
  const parts = tag.split('|');
  if (parts.length > 2) throw new TagSyntaxError(raw, `Only one filter is allowed after the token in {${tag}}.`);
  const pathText = parts[0].trim();
  const segments = pathText.split('.');
  if (!segments.every((s) => SEGMENT.test(s))) {
    throw new TagSyntaxError(raw, `{${tag}} is not a token name: use letters, digits, _ and dots only (such as {account.name}); expressions are not allowed.`);
  }
  if (segments.length > 6) throw new TagSyntaxError(raw, `{${tag}} is nested too deeply.`);
  let filter: FilterName | null = null;
  if (parts.length === 2) {
    const name = parts[1].trim();
    if (!(FILTER_NAMES as readonly string[]).includes(name)) {
      throw new TagSyntaxError(raw, `Unknown filter "${name}" in {${tag}}: use one of ${FILTER_NAMES.join(', ')}.`);
    }
    filter = name as FilterName;
  }
  return { path: segments, filter };
}

/** Looks up a dotted path along own properties only (never `constructor`, `__proto__` …). */
export function lookupPath(scope: unknown, path: string[]): unknown {
  let cur: unknown = scope;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

export interface FilterOptions {
  /** Currency for `money` on plain numbers; by default the data's `quote.currency`. */
  currency?: string;
  locale?: string;
}

function toMinor(value: string | number, currency: string): number | null {
  const parsed = parseAmount(String(value), currency);
  if (parsed.ok) return parsed.minor;
  // More decimals than the currency has: round half away from zero rather than print nothing.
  const n = Number(String(value).replace(/[\s\u00a0\u202f]/g, '').replace(',', '.'));
  if (!Number.isFinite(n)) return null;
  const digits = amountInput(1, currency).split('.')[1]?.length ?? 0;
  return Math.sign(n) * Math.round(Math.abs(n) * 10 ** digits);
}

/** Applies a filter to a scalar; values it does not understand pass through unchanged. */
export function applyFilter(filter: FilterName, value: string | number | boolean, options: FilterOptions): string {
  const text = String(value);
  switch (filter) {
    case 'upper':
      return text.toLocaleUpperCase(options.locale ?? 'en-GB');
    case 'date': {
      const day = isoDay(text);
      return day ? formatDate(day, options.locale) : text;
    }
    case 'percent': {
      if (text.trim() === '' || text.includes('%')) return text;
      const n = Number(text.replace(',', '.'));
      return Number.isFinite(n) ? `${Number(n.toFixed(4))} %` : text;
    }
    case 'money': {
      const currency = options.currency && isCurrencyCode(options.currency) ? options.currency : '';
      if (!currency || text.trim() === '' || /[A-Z]{3}/.test(text)) return text;
      const minor = toMinor(text, currency);
      return minor === null || !Number.isSafeInteger(minor) ? text : formatMoney(minor, currency);
    }
  }
}

interface ParserPart {
  module?: string;
}

interface ParserContextLike {
  scopeList?: unknown[];
}

/**
 * The parser docxtemplater is given (`new Docxtemplater(zip, { parser: restrictedParser(options) })`). A
 * missing value answers undefined, so docxtemplater looks in the enclosing loop scopes and finally asks the
 * nullGetter, which prints ''. A group or a list never prints as "[object Object]": outside a section it
 * counts as missing.
 */
export function restrictedParser(options: FilterOptions = {}) {
  return (tag: string, meta?: { tag?: ParserPart }) => {
    const parsed = parseTag(tag);
    // `{@tag}` would insert the value as raw XML: never from user-uploaded templates.
    if (meta?.tag?.module === 'rawxml') throw new TagSyntaxError(tag, `Raw XML tags ({@${tag.trim()}}) are not allowed in quote templates.`);
    const isSection = meta?.tag?.module !== undefined && meta.tag.module !== null && /loop/.test(String(meta.tag.module));
    if (isSection && parsed.filter) throw new TagSyntaxError(tag, `A filter cannot be used on a section ({#${tag.trim()}}).`);
    return {
      get(scope: unknown, context?: ParserContextLike): unknown {
        const value = lookupPath(scope, parsed.path);
        if (value === undefined || value === null) return undefined;
        if (isSection) {
          if (typeof value === 'function') return undefined;
          return value;
        }
        if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
        if (!parsed.filter) return typeof value === 'string' ? value : String(value);
        const root = context?.scopeList?.[0];
        const currency = options.currency ?? (lookupPath(root, ['quote', 'currency']) as string | undefined);
        return applyFilter(parsed.filter, value, { ...options, currency: typeof currency === 'string' ? currency : undefined });
      },
    };
  };
}
