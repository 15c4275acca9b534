import path from 'node:path';
import ejs from 'ejs';
import type { Request, Response } from 'express';
import type { HostApi, HostProject } from '../host';
import { ASSET_PATH, VIEWS_DIR } from '../paths';

/** As in the host (host/render.ts): in production compiled once, without EJS's per-line tracking. */
const cacheTemplates = process.env.NODE_ENV === 'production';

export function wantsJson(req: Request): boolean {
  return req.path.endsWith('.json') || (!req.get('HX-Request') && req.accepts(['html', 'json']) === 'json');
}

export const isHtmx = (req: Request): boolean => req.get('HX-Request') === 'true';

export function renderView(name: string, locals: Record<string, unknown>): Promise<string> {
  return ejs.renderFile(path.join(VIEWS_DIR, `${name}.ejs`), locals, { cache: cacheTemplates, compileDebug: !cacheTemplates });
}

export const PAGE_ASSETS = {
  stylesheets: [`${ASSET_PATH}/crm.css`],
  scripts: [`${ASSET_PATH}/vendor/htmx.min.js`, `${ASSET_PATH}/crm.js`],
};

export interface PageResponse {
  title: string;
  /** The view renders the page body: content area plus the right sidebar; it is also the htmx fragment. */
  view: string;
  locals: Record<string, unknown>;
  /** What a JSON client gets for the same URL. */
  json: unknown;
  project?: HostProject | null;
  status?: number;
  /** Namespaced htmx events to fire after a swap (`crm:…`), so other parts of the page can refresh. */
  trigger?: string;
}

/**
 * One handler answers three ways from the same data: JSON for API clients, the bare page body for htmx
 * (it replaces `#crm-page`), and the full page inside the host's layout otherwise.
 */
export async function respond(host: HostApi, req: Request, res: Response, page: PageResponse): Promise<void> {
  res.vary('HX-Request');
  res.vary('Accept');
  const status = page.status ?? 200;
  if (wantsJson(req)) return void res.status(status).json(page.json);
  const body = await renderView(page.view, { ...page.locals, csrfToken: host.csrfToken(req), assetPath: ASSET_PATH });
  if (page.trigger) res.set('HX-Trigger', page.trigger);
  if (isHtmx(req)) return void res.status(status).type('html').send(body);
  await host.renderPage(req, res, {
    title: page.title, body, project: page.project ?? null, activeMenu: 'crm', status, ...PAGE_ASSETS,
  });
}

/** After a change: htmx gets the re-rendered page body, a plain form a 303 to `location` (POST/redirect/GET). */
export async function respondAfterChange(host: HostApi, req: Request, res: Response, location: string, page: () => Promise<PageResponse>): Promise<void> {
  if (isHtmx(req) || wantsJson(req)) return respond(host, req, res, await page());
  res.redirect(303, location);
}
