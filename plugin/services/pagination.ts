import type { Request } from 'express';

export interface PageMeta {
  page: number;
  pages: number;
  total: number;
  per_page: number;
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
