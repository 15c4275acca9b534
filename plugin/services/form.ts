import { invalid } from '../http/errors';
import { EARLIEST_DAY, LATEST_DAY, isDayInRange } from './dates';

/** Reading HTML form input (everything arrives as strings or arrays of strings) into typed values. */
export type FormInput = Record<string, unknown>;

/**
 * A NUL is never part of what someone typed, and PostgreSQL refuses it in any text parameter (a 500 on one
 * database, a stored invisible character on the other): it is dropped wherever form text is read.
 */
function typed(value: string): string {
  return value.replaceAll('\0', '').trim();
}

/**
 * Whether a number can be a record's id: ids are PostgreSQL `integer`s, which refuse a parameter beyond their
 * range with an error, so a larger number from a URL must answer "not found" before it reaches a query.
 */
export const validId = (id: number): boolean => Number.isInteger(id) && id > 0 && id <= 2_147_483_647;

/** A record id typed into a form or query string (at most nine digits, above 0), or null. */
export const positiveId = (value: string): number | null => (/^\d{1,9}$/.test(value) && Number(value) > 0 ? Number(value) : null);

export function text(input: FormInput, key: string): string {
  const v = input[key];
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? typed(last) : typeof last === 'number' ? String(last) : '';
}

/** A checkbox (with or without its hidden "0" twin), or a JSON boolean. */
/** The number of characters (code points) in `value`. */
export function characterCount(value: string): number {
  let count = 0;
  for (const _ of value) count++;
  return count;
}

export function flag(input: FormInput, key: string): boolean {
  const v = input[key];
  if (typeof v === 'boolean') return v;
  const t = text(input, key);
  return t === '1' || t === 'true' || t === 'on';
}

export function list(input: FormInput, key: string): string[] {
  const v = input[key];
  return (Array.isArray(v) ? v : v === undefined || v === null || v === '' ? [] : [v]).map((x) => typed(String(x))).filter(Boolean);
}

/** Collects field errors as a form is read, so every problem is reported at once. */
export class FieldErrors {
  readonly errors: Record<string, string> = {};

  add(field: string, message: string): void {
    if (!this.errors[field]) this.errors[field] = message;
  }

  get any(): boolean {
    return Object.keys(this.errors).length > 0;
  }

  /** Text up to `max` characters; required ones must not be blank. */
  text(input: FormInput, key: string, label: string, opts: { max: number; required?: boolean }): string {
    const value = text(input, key);
    if (opts.required && !value) this.add(key, `${label} is required`);
    // Characters as a person and PostgreSQL's varchar count them (code points), not UTF-16 units: 𝒳 is one.
    else if (characterCount(value) > opts.max) this.add(key, `${label} is at most ${opts.max} characters`);
    return value;
  }

  /** A positive whole-number id, or null when blank. */
  id(input: FormInput, key: string, label: string): number | null {
    const value = text(input, key);
    if (!value) return null;
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) {
      this.add(key, `${label} is not valid`);
      return null;
    }
    return n;
  }

  /** A calendar date as YYYY-MM-DD (see `dayProblem`), or null when blank. */
  date(input: FormInput, key: string, label: string): string | null {
    const value = text(input, key);
    if (!value) return null;
    const problem = dayProblem(value, label);
    if (problem) {
      this.add(key, problem);
      return null;
    }
    return value;
  }

  email(input: FormInput, key: string, label: string): string {
    const value = this.text(input, key, label, { max: 200 });
    if (value && !/^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/.test(value)) this.add(key, `${label} is not an email address`);
    return value;
  }
}

/**
 * Why `value` is not a day a form may give (a real calendar day as YYYY-MM-DD, within EARLIEST_DAY–LATEST_DAY:
 * contracts and periods count months and days from it), or null.
 */
export function dayProblem(value: string, label: string): string | null {
  if (!isIsoDate(value)) return `${label} must be a date (YYYY-MM-DD)`;
  if (!isDayInRange(value)) return `${label} must be between ${EARLIEST_DAY} and ${LATEST_DAY}`;
  return null;
}

export function isIsoDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const d = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === value;
}

/**
 * The `lock_version` a form carries (optimistic locking): a whole number from 0. Without one the page is old or
 * the form was not ours — 422 asking to reload, before anything is read or written.
 */
export function lockVersionOf(input: FormInput, key = 'lock_version'): number {
  const raw = text(input, key);
  if (!/^\d{1,9}$/.test(raw)) throw invalid('The form is missing its lock version; reload the page.', { [key]: 'missing' });
  return Number(raw);
}
