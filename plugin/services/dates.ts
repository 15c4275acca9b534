/**
 * Calendar days as `YYYY-MM-DD` text, counted in UTC: how the plugin stores dates, compares them in SQL and
 * shows them. One place for "today" and day arithmetic, so lists, periods, sales and due dates agree.
 */

/** Today on the server, in UTC: the day "today", "overdue", periods and sale dates count from. */
export const todayUtc = (now = new Date()): string => now.toISOString().slice(0, 10);

/** The day `days` after `day` (before it when negative). */
export function addDays(day: string, days: number): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (negative when `to` is earlier). */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/**
 * The days a period may name: far enough back and ahead for any sales history or plan, and well short of
 * year 10000, past which a day has no `YYYY-MM-DD` text and day arithmetic on it fails.
 */
export const EARLIEST_DAY = '1900-01-01';
export const LATEST_DAY = '2999-12-31';

/** Whether a `YYYY-MM-DD` day lies from EARLIEST_DAY to LATEST_DAY (both included). */
export const isDayInRange = (day: string): boolean => day >= EARLIEST_DAY && day <= LATEST_DAY;
