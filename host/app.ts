import crypto from 'node:crypto';
import express, { type ErrorRequestHandler, type Express } from 'express';
import session from 'express-session';
import helmet from 'helmet';
import { Passport } from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { ConnectSessionKnexStore } from 'connect-session-knex';
import { csrfSync } from 'csrf-sync';
import semver from 'semver';
import type { Knex } from 'knex';
import { HOST_API_VERSION, type HostApi, type HostUser, type PluginModule } from '../plugin/host';
import { runMigrations } from './db';
import { createHostApi } from './host-api';
import { HttpError, wantsJson } from './http';
import { hostMigrations } from './migrations';
import { verifyPassword } from './passwords';
import { PermissionRegistry } from './permissions';
import { HOST_PUBLIC } from './paths';
import { Layout, renderHostView } from './render';
import { HostRepository, memoizeRequests } from './repository';
import { accountRoutes } from './routes/account';
import { adminRoutes } from './routes/admin';
import { authRoutes } from './routes/auth';
import { projectRoutes } from './routes/projects';
import type { HostContext } from './context';

export interface HostOptions {
  knex: Knex;
  dataDir: string;
  plugins: PluginModule[];
  /** Falls back to a secret generated once and kept in the database, so every app process shares it. */
  sessionSecret?: string;
  secureCookies?: boolean;
  /** Failed-or-not login attempts allowed per IP and login in 15 minutes. */
  loginAttemptsPer15Min?: number;
}

export interface HostApp {
  app: Express;
  hostApi: HostApi;
  repo: HostRepository;
  registry: PermissionRegistry;
}

/** Runs the host's migrations, then each plugin's, each in its own migrations table. */
export async function migrateAll(knex: Knex, plugins: PluginModule[]): Promise<void> {
  await runMigrations(knex, 'knex_migrations_host', hostMigrations);
  for (const plugin of plugins) await plugin.lifecycle.migrate(knex);
}

async function sessionSecretFor(knex: Knex, given?: string): Promise<string> {
  if (given) return given;
  const row = await knex('host_settings').where({ name: 'session_secret' }).first();
  if (row) return row.value as string;
  const value = crypto.randomBytes(32).toString('hex');
  // Two processes starting at once may race here; the loser reads the winner's secret.
  await knex('host_settings').insert({ name: 'session_secret', value }).onConflict('name').ignore();
  return (await knex('host_settings').where({ name: 'session_secret' }).first()).value as string;
}

/** Sessions last this long after their last renewal (8 hours of inactivity signs a user out). */
const SESSION_HOURS = 8;
const RENEW_AFTER_MS = 10 * 60 * 1000;

export async function createHostApp(options: HostOptions): Promise<HostApp> {
  const { knex, plugins } = options;
  for (const plugin of plugins) {
    if (!semver.satisfies(HOST_API_VERSION, plugin.manifest.host)) {
      throw new Error(`Plugin "${plugin.manifest.id}" needs host API ${plugin.manifest.host}; this host offers ${HOST_API_VERSION}.`);
    }
  }
  const manifests = plugins.map((p) => p.manifest);
  const registry = new PermissionRegistry(manifests);
  const repo = new HostRepository(knex, registry);

  const csrf = csrfSync({
    getTokenFromRequest: (req) => {
      if (req.body && typeof req.body._csrf === 'string') return req.body._csrf;
      const header = req.get('X-CSRF-Token');
      if (header) return header;
      // A multipart body (file upload) is read by its route, after this check: a form that works without
      // JavaScript sends the token in its action's query string instead. Only for multipart requests.
      return req.is('multipart/form-data') && typeof req.query._csrf === 'string' ? req.query._csrf : undefined;
    },
  });
  const layout = new Layout(repo, manifests, (req) => csrf.generateToken(req));
  const hostApi = createHostApi({ knex, dataDir: options.dataDir, repo, layout, csrfToken: (req) => csrf.generateToken(req) });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  const withRequestMemo = memoizeRequests(knex);
  app.use((_req, _res, next) => withRequestMemo(next));
  app.use(helmet({
    contentSecurityPolicy: {
      directives: {
        'script-src': ["'self'"], 'form-action': ["'self'"], 'img-src': ["'self'", 'data:'],
        // Only behind HTTPS: on plain http://localhost an upgrade would break every stylesheet and script.
        'upgrade-insecure-requests': options.secureCookies ? [] : null,
      },
    },
    strictTransportSecurity: options.secureCookies ?? false,
  }));
  app.use('/assets', express.static(HOST_PUBLIC, { maxAge: '1h' }));
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  app.use(express.json({ limit: '1mb' }));

  const store = new ConnectSessionKnexStore({ knex, tableName: 'sessions', createTable: false, cleanupInterval: 0 });
  // express-session "touches" an unchanged session on every request (an UPDATE per page view); renewal below
  // moves the expiry instead, at most every RENEW_AFTER_MS.
  store.touch = async (_sid, _session, callback) => callback?.();
  app.use(session({
    name: 'pm.sid',
    secret: await sessionSecretFor(knex, options.sessionSecret),
    store,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, sameSite: 'lax', secure: options.secureCookies ?? false, maxAge: SESSION_HOURS * 60 * 60 * 1000 },
  }));
  // A sliding expiry without a session write on every request: the session is renewed (stored again, cookie
  // re-sent) when a request comes more than RENEW_AFTER_MS after the last renewal.
  app.use((req, _res, next) => {
    const s = req.session as (typeof req.session & { renewedAt?: number }) | undefined;
    if (s && s.cookie && (s as { passport?: unknown }).passport && Date.now() - (s.renewedAt ?? 0) > RENEW_AFTER_MS) s.renewedAt = Date.now();
    next();
  });

  // One Passport per app: several hosts in one process (the tests) must not share strategies.
  const passport = new Passport();
  passport.use(new LocalStrategy({ usernameField: 'login', passwordField: 'password' }, (login, password, done) => {
    repo.userByLogin(login.trim())
      .then(async (user) => {
        if (!user || !(await verifyPassword(password, user.passwordHash))) return done(null, false, { message: 'Invalid login or password.' });
        if (user.status !== 'active') return done(null, false, { message: 'Your account is locked. Ask an administrator to unlock it.' });
        return done(null, toUserFields(user));
      })
      .catch(done);
  }));
  passport.serializeUser<number>((user, done) => done(null, (user as HostUser).id));
  passport.deserializeUser<number>((id, done) => {
    // A user locked after signing in is signed out on their next request.
    repo.userRecord(id).then((u) => done(null, u && u.status === 'active' ? toUserFields(u) : false)).catch(done);
  });
  app.use(passport.initialize());
  app.use(passport.session());

  // API clients authenticate per request with X-API-Key; they carry no cookie, so CSRF does not apply to them.
  app.use((req, res, next) => {
    const apiKey = req.get('X-API-Key');
    if (!apiKey) return next();
    repo.userByApiKey(apiKey).then((user) => {
      if (!user) return void res.status(401).json({ error: 'Unknown or revoked API key.' });
      req.user = toUserFields(user);
      res.locals.apiKeyAuth = true;
      next();
    }).catch(next);
  });
  app.use((req, res, next) => (res.locals.apiKeyAuth ? next() : csrf.csrfSynchronisedProtection(req, res, next)));

  const ctx: HostContext = { knex, repo, registry, layout, passport, csrfToken: (req: express.Request) => csrf.generateToken(req) };
  app.use(authRoutes(ctx, options.loginAttemptsPer15Min ?? 10));
  app.use(accountRoutes(ctx));
  app.use(projectRoutes(ctx));
  app.use(adminRoutes(ctx));
  for (const plugin of plugins) app.use(plugin.register(hostApi).router);

  app.use((req, _res, next) => next(new HttpError(404, 'Page not found.')));
  const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
    const status = err instanceof HttpError ? err.status : err.code === 'EBADCSRFTOKEN' || err.status === 403 ? 403 : err.status === 413 ? 413 : 500;
    const message = status === 403 && !(err instanceof HttpError)
      ? 'This form has expired or did not come from this site. Reload the page and try again.'
      : status === 500 ? 'Something went wrong on our side. The error has been logged.' : String(err.message);
    if (status === 500) console.error(err);
    if (res.headersSent) return;
    if (wantsJson(req)) return void res.status(status).json({ error: message });
    if (req.get('HX-Request')) return void res.status(status).type('html').send(`<p class="flash error">${escapeHtml(message)}</p>`);
    renderHostView('error', { status, message })
      .then((body) => layout.send(req, res, { title: status === 404 ? 'Not found' : 'Error', body, status }))
      .catch((e) => { console.error(e); res.status(status).type('text').send(message); });
  };
  app.use(errorHandler);
  return { app, hostApi, repo, registry };
}

function toUserFields(u: HostUser): HostUser {
  return { id: u.id, login: u.login, name: u.name, email: u.email, admin: u.admin };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}
