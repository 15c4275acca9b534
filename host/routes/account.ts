import { Router } from 'express';
import type { HostUser } from '../../plugin/host';
import type { HostContext } from '../context';
import { handle, requireUser } from '../http';
import { newApiKey } from '../passwords';
import { flash, renderHostView } from '../render';

export function accountRoutes(ctx: HostContext): Router {
  const router = Router();
  router.get('/my/account', requireUser, handle(async (req, res) => {
    const record = await ctx.repo.userRecord((req.user as HostUser).id);
    const body = await renderHostView('my/account', { user: record, csrfToken: ctx.csrfToken(req) });
    await ctx.layout.send(req, res, { title: 'My account', body });
  }));
  // Regenerating revokes the old key at once: every client using it gets 401 from then on.
  router.post('/my/api_key', requireUser, handle(async (req, res) => {
    await ctx.knex('users').where({ id: (req.user as HostUser).id }).update({ api_key: newApiKey() });
    flash(req, 'A new API key was generated; the old one no longer works.');
    res.redirect(303, '/my/account');
  }));
  return router;
}
