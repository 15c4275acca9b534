import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { HostUser } from '../plugin/host';

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export const notFound = (what = 'Page') => new HttpError(404, `${what} not found.`);

export function currentUser(req: Request): HostUser | null {
  return (req.user as HostUser | undefined) ?? null;
}

export function wantsJson(req: Request): boolean {
  return req.path.endsWith('.json') || (req.accepts(['html', 'json']) === 'json' && !req.get('HX-Request'));
}

/**
 * Signed-in users only. A browser goes to the login page; an htmx request gets `HX-Redirect` so the login
 * page replaces the whole window rather than being swapped into a fragment; an API client gets 401 JSON.
 */
export const requireUser: RequestHandler = (req, res, next) => {
  if (req.user) return next();
  const loginUrl = `/login?back=${encodeURIComponent(req.originalUrl)}`;
  if (req.get('HX-Request')) return void res.status(401).set('HX-Redirect', loginUrl).send('');
  if (wantsJson(req)) return void res.status(401).json({ error: 'Sign in, or send your API key in the X-API-Key header.' });
  res.redirect(302, loginUrl);
};

/** Wraps an async handler so a rejection reaches the error handler (Express 5 does this too; explicit is clearer). */
export const handle = (fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown>): RequestHandler =>
  (req, res, next) => { fn(req, res, next).catch(next); };

/** A return address that stays on this site (no open redirect through `back`). */
export function safeReturnTo(value: unknown): string {
  return typeof value === 'string' && value.startsWith('/') && !value.startsWith('//') && !value.includes('\\') ? value : '/';
}

export function formString(body: unknown, key: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'string' ? value : '';
}
