import type { Request } from 'express';
import type { Knex } from 'knex';

export interface PageMeta {
  page: number;
  pages: number;
  total: number;
  per_page: number;
  /** The list has more than `total` rows: it was counted up to COUNT_CAP only. */
  capped?: boolean;
}

/** Lists count their rows up to this many: beyond it, "10 000+" says enough and narrowing filters do the rest. */
export const COUNT_CAP = 10_000;

/**
 * The number of rows `base` selects, counting at most COUNT_CAP + 1 of them: a list of 100,000 accounts need
 * not be counted to the end to show its first pages (the count of a whole table was most of its cost).
 */
export async function cappedCount(knex: Knex, base: Knex.QueryBuilder): Promise<{ total: number; capped: boolean }> {
  const rows: { n: number | string }[] = await knex.count({ n: '*' }).from(base.clone().clearSelect().clearOrder().select(knex.raw('1 as one')).limit(COUNT_CAP + 1).as('capped'));
  const count = Number(rows[0]?.n ?? 0);
  return count > COUNT_CAP ? { total: COUNT_CAP, capped: true } : { total: count, capped: false };
}

export interface Page<T> {
  items: T[];
  meta: PageMeta;
}

/** `?page=` as a positive whole number; anything else is page 1. */
export function pageParam(req: Request): number {
  const n = Number(req.query.page ?? 1);
  return Number.isInteger(n) && n > 0 && n < 1_000_000 ? n : 1;
}

/** For short lists already in memory (a user's projects); database lists page in SQL. */
export function paginate<T>(all: T[], page: number, perPage: number): Page<T> {
  const pages = Math.max(1, Math.ceil(all.length / perPage));
  const current = Math.min(page, pages);
  return { items: all.slice((current - 1) * perPage, current * perPage), meta: { page: current, pages, total: all.length, per_page: perPage } };
}
