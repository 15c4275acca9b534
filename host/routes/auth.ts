import { Router } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { HostContext } from '../context';
import { formString, handle, safeReturnTo } from '../http';
import { renderHostView } from '../render';

export function authRoutes(ctx: HostContext, attemptsPer15Min: number): Router {
  const router = Router();

  const showLogin = async (req: import('express').Request, res: import('express').Response, error: string | null, status = 200) => {
    const body = await renderHostView('login', {
      error, login: formString(req.body, 'login'), back: safeReturnTo(req.query.back ?? formString(req.body, 'back')), csrfToken: ctx.csrfToken(req),
    });
    await ctx.layout.send(req, res, { title: 'Sign in', body, status });
  };

  router.get('/login', handle(async (req, res) => {
    if (req.user) return res.redirect(303, safeReturnTo(req.query.back));
    await showLogin(req, res, null);
  }));

  // Counted per client address and login name, so one attacker cannot lock every user out.
  const limiter = rateLimit({
    windowMs: 15 * 60 * 1000,
    limit: attemptsPer15Min,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    keyGenerator: (req) => `${ipKeyGenerator(req.ip ?? '')}|${formString(req.body, 'login').trim().toLowerCase()}`,
    handler: (req, res) => { void showLogin(req, res, 'Too many sign-in attempts. Wait 15 minutes and try again.', 429); },
  });

  router.post('/login', limiter, (req, res, next) => {
    ctx.passport.authenticate('local', (err: unknown, user: Express.User | false, info?: { message: string }) => {
      if (err) return next(err);
      if (!user) return void showLogin(req, res, info?.message ?? 'Invalid login or password.', 401).catch(next);
      const back = safeReturnTo(formString(req.body, 'back'));
      // A fresh session id at sign-in defeats session fixation.
      req.session.regenerate((regenErr) => {
        if (regenErr) return next(regenErr);
        req.logIn(user, (loginErr) => (loginErr ? next(loginErr) : res.redirect(303, back)));
      });
    })(req, res, next);
  });

  router.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) return next(err);
      req.session.destroy(() => res.redirect(303, '/login'));
    });
  });
  return router;
}
