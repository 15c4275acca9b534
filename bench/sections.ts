/**
 * The bench's sections. Each is one function `(ctx: BenchContext) => Promise<BenchRow[]>`: it may load URLs
 * with `ctx.measure`, sign-in data is in `ctx.users`, the database in `ctx.knex`. Its rows join the printed
 * table and the JSON (rows with the same section, name and user line up across scales).
 *
 * To add one (the quote documents of bench/documents.ts, for instance): write the function and add it to
 * SECTIONS below — the order here is the order they run and print in.
 */
import ejs from 'ejs';
import type { BenchContext, BenchRow, BenchSection, SignedInUser } from './harness';
import { percentiles } from './harness';
import { benchQuoteDocuments } from './documents';

interface Target {
  name: string;
  path: string;
}

/** The routes of issue #8, with ids picked from the data: records the sales rep may see (so both users get 200). */
async function targets(ctx: BenchContext): Promise<Target[]> {
  const { knex } = ctx;
  const rep = ctx.users.rep.user;
  const account = await knex('crm_accounts').where({ account_manager_id: rep.id, is_private: false }).whereNull('deleted_at').orderBy('id').first('id');
  const opportunity = await knex('crm_opportunities').where({ owner_id: rep.id }).whereNull('deleted_at').orderBy('id').first('id');
  const proposal = await knex('crm_opportunity_statuses').where({ kind: 'open' }).orderBy('position').offset(2).first('id');
  const industry = await knex('crm_industries').orderBy('position').first('id');
  const project = await knex('projects').whereNull('parent_id').where({ is_template: false }).orderBy('identifier').first('identifier');
  if (!account || !opportunity || !proposal || !industry || !project) throw new Error('The bench data set lacks an account, opportunity, status, industry or project for the routes');
  return [
    { name: 'account list, page 1', path: '/crm/accounts' },
    { name: 'account list, page 200', path: '/crm/accounts?page=200' },
    { name: 'account list, filter (industry + customers)', path: `/crm/accounts?industry=${industry.id}&customers=1` },
    { name: 'account list, search "nordic"', path: '/crm/accounts?q=nordic' },
    { name: 'account detail', path: `/crm/accounts/${account.id}` },
    { name: 'opportunity list, status filter', path: `/crm/opportunities?status=${proposal.id}` },
    { name: 'kanban', path: '/crm/opportunities/kanban' },
    { name: 'opportunity detail', path: `/crm/opportunities/${opportunity.id}` },
    { name: 'global overview', path: '/crm' },
    { name: 'project overview', path: `/projects/${project.identifier}/crm` },
    { name: 'contract list', path: '/crm/contracts' },
    { name: 'account list, JSON', path: '/crm/accounts.json' },
  ];
}

async function get(ctx: BenchContext, path: string, user: SignedInUser): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const res = await fetch(ctx.baseUrl + path, { headers: { cookie: user.cookie }, redirect: 'manual' });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

/** Every route, as the admin and as a sales rep with "own" visibility: requests/s and p50/p95/p99 under load. */
export const routesSection: BenchSection = async (ctx) => {
  const rows: BenchRow[] = [];
  for (const target of await targets(ctx)) {
    for (const [who, user] of [['admin', ctx.users.admin], ['rep', ctx.users.rep]] as const) {
      rows.push(await ctx.turn(async (): Promise<BenchRow> => {
        // Warm-up (template compile, first plans), and a check that the route answers at all.
        let first = await get(ctx, target.path, user);
        if (first.status === 200 && !ctx.quick) first = await get(ctx, target.path, user);
        if (first.status !== 200) return { section: 'routes', name: target.name, user: who, url: target.path, note: `HTTP ${first.status}: not measured` };
        const m = await ctx.measure(target.path, user);
        ctx.log(`  ${target.name} (${who}): ${m.rps.toFixed(1)} req/s, p50 ${m.p50.toFixed(1)} ms, p95 ${m.p95.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms${m.failures ? `, ${m.failures} failed` : ''}`);
        return { section: 'routes', name: target.name, user: who, url: target.path, rps: m.rps, p50: m.p50, p95: m.p95, p99: m.p99, requests: m.requests, failures: m.failures, extra: { statuses: m.statuses } };
      }));
    }
  }
  return rows;
};

interface CapturedQuery { sql: string; bindings: readonly unknown[] }
interface CapturedRender { file: string; data: Record<string, unknown>; options: Record<string, unknown> }
type RenderFile = (file: string, data: Record<string, unknown>, options: Record<string, unknown>) => Promise<string>;

/** Records the SQL the app sends through knex and the EJS templates it renders while `work` runs. */
async function capture(ctx: BenchContext, work: () => Promise<void>): Promise<{ queries: CapturedQuery[]; renders: CapturedRender[] }> {
  const queries: CapturedQuery[] = [];
  const renders: CapturedRender[] = [];
  // knex reports PostgreSQL statements with positional $1, $2 … placeholders; knex.raw takes ? in the same order.
  const pg = ctx.db.kind === 'postgres';
  const onQuery = (q: { sql: string; bindings?: unknown[] }) => queries.push({ sql: pg ? q.sql.replace(/\$\d+/g, '?') : q.sql, bindings: q.bindings ?? [] });
  const lib = ejs as unknown as { renderFile: RenderFile };
  const original = lib.renderFile;
  lib.renderFile = (file, data, options) => {
    renders.push({ file, data, options });
    return original.call(ejs, file, data, options);
  };
  ctx.knex.on('query', onQuery);
  try {
    await work();
  } finally {
    ctx.knex.removeListener('query', onQuery);
    lib.renderFile = original;
  }
  return { queries, renders };
}

/** Median time of `run` over repeated runs (at least 5, at most `seconds` of work). */
async function timeIt(run: () => Promise<unknown>, seconds: number): Promise<number> {
  const times: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (times.length < 5 || (performance.now() < until && times.length < 500)) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  return percentiles(times).p50;
}

/**
 * The host's smallest signed-in page (session, sign-in, CSRF, the user's row, the layout and its menu), measured
 * beside the floor: what every page costs before the plugin does anything.
 */
const HOST_FLOOR_PAGE = '/my/account';

/**
 * The floor of the account list: the same SQL run bare through knex, and the same templates (the page body
 * and the host's layout) rendered alone with the same data, against the route's p50 with one connection
 * (with ten, p50 includes queueing behind the other nine and says nothing about the work per request).
 */
export const floorSection: BenchSection = async (ctx) => {
  const rows: BenchRow[] = [];
  const path = '/crm/accounts';
  const seconds = ctx.quick ? 1 : 3;
  for (const [who, user] of [['admin', ctx.users.admin], ['rep', ctx.users.rep]] as const) {
    rows.push(...await ctx.turn(() => floorOf(ctx, path, who, user, seconds)));
  }
  return rows;
};

/** One user's floor of the account list: its SQL and templates captured from one request, then each timed alone. */
async function floorOf(ctx: BenchContext, path: string, who: string, user: SignedInUser, seconds: number): Promise<BenchRow[]> {
  await get(ctx, path, user);
  const { queries, renders } = await capture(ctx, async () => {
    const res = await get(ctx, path, user);
    if (res.status !== 200) throw new Error(`${path} answered ${res.status} for ${who}`);
  });
  // Only what replays as captured (a statement the app wrote with its own placeholders is left out and counted).
  const replayable: CapturedQuery[] = [];
  for (const q of queries) {
    try {
      await ctx.knex.raw(q.sql, q.bindings as never);
      replayable.push(q);
    } catch {
      ctx.log(`  floor: cannot replay ${q.sql.slice(0, 80)}…`);
    }
  }
  const listQueries = replayable.filter((q) => /crm_accounts/.test(q.sql));
  const replay = (list: CapturedQuery[]) => async () => {
    for (const q of list) await ctx.knex.raw(q.sql, q.bindings as never);
  };
  const lib = ejs as unknown as { renderFile: RenderFile };
  const render = async () => {
    for (const r of renders) await lib.renderFile(r.file, r.data, r.options);
  };
  const sqlMs = await timeIt(replay(listQueries), seconds);
  const allSqlMs = await timeIt(replay(replayable), seconds);
  const renderMs = await timeIt(render, seconds);
  const route = await ctx.measure(path, user, { connections: 1, duration: ctx.quick ? 2 : 5 });
  const hostPage = await ctx.measure(HOST_FLOOR_PAGE, user, { connections: 1, duration: ctx.quick ? 2 : 5 });
  if (hostPage.failures) throw new Error(`${HOST_FLOOR_PAGE} failed ${hostPage.failures} times for ${who}`);
  const hostRatio = hostPage.p50 / (sqlMs + renderMs);
  const ratio = route.p50 / (sqlMs + renderMs);
  // The same with every statement of the request in the floor (session, permissions, settings): what is left
  // above it is Express, the middleware and the plugin's own JavaScript.
  const allRatio = route.p50 / (allSqlMs + renderMs);
  ctx.log(`  floor (${who}): route p50 ${route.p50.toFixed(1)} ms; list SQL ${sqlMs.toFixed(2)} ms (${listQueries.length} queries), all SQL ${allSqlMs.toFixed(2)} ms (${queries.length}), render ${renderMs.toFixed(2)} ms (${renders.length} templates) → ${ratio.toFixed(2)}× (${allRatio.toFixed(2)}× with all SQL); the host's ${HOST_FLOOR_PAGE} ${hostPage.p50.toFixed(1)} ms (${hostRatio.toFixed(2)}×)`);
  return [
    { section: 'floor', name: 'account list: route, 1 connection', user: who, rps: route.rps, p50: route.p50, p95: route.p95, p99: route.p99, requests: route.requests, failures: route.failures },
    { section: 'floor', name: `account list: its list SQL bare through knex (${listQueries.length} queries)`, user: who, p50: sqlMs },
    { section: 'floor', name: `account list: all SQL of the request bare (${replayable.length} queries)`, user: who, p50: allSqlMs, note: `session, permissions, settings included${replayable.length < queries.length ? `; ${queries.length - replayable.length} not replayable` : ''}` },
    { section: 'floor', name: `account list: its EJS rendered alone (${renders.length} templates)`, user: who, p50: renderMs },
    {
      section: 'floor', name: 'account list: route p50 ÷ (list SQL + render)', user: who,
      note: `${ratio.toFixed(2)}× (goal ≤ 2×${ratio <= 2 ? ': met' : ': MISSED'})`, extra: { ratio, sqlMs, allSqlMs, renderMs, routeP50: route.p50, queries: queries.map((q) => q.sql) },
    },
    { section: 'floor', name: 'account list: route p50 ÷ (all SQL + render)', user: who, note: `${allRatio.toFixed(2)}×`, extra: { ratio: allRatio } },
    { section: 'floor', name: `the host's smallest page (${HOST_FLOOR_PAGE}), 1 connection`, user: who, rps: hostPage.rps, p50: hostPage.p50, p95: hostPage.p95, p99: hostPage.p99, requests: hostPage.requests, failures: hostPage.failures },
    {
      section: 'floor', name: `the host's smallest page p50 ÷ (account list SQL + render)`, user: who,
      note: `${hostRatio.toFixed(2)}×: what the host alone costs, before any CRM work`, extra: { ratio: hostRatio },
    },
  ];
}

/**
 * Quote documents (issue #5): a 200-item quote through the HTTP route against a bare docxtemplater render of the
 * same template and data, and the longest event-loop stall while 2000-item quotes are made (see documents.ts).
 */
export const documentsSection: BenchSection = async (ctx) => {
  const rep = ctx.users.rep;
  const owned = await ctx.knex('crm_opportunities').where({ owner_id: rep.user.id }).whereNull('deleted_at').orderBy('id').first('project_id');
  if (!owned) throw new Error('The bench data set has no opportunity of the sales rep to place the quotes in');
  const f = await ctx.turn(() => benchQuoteDocuments({
    baseUrl: ctx.baseUrl, host: ctx.host.hostApi, user: rep.user, cookie: rep.cookie, csrf: rep.csrf, projectId: Number(owned.project_id),
  }, ctx.quick ? 8 : 30));
  ctx.log(`  documents: 200 items route ${f.route200Ms.toFixed(1)} ms vs bare ${f.bare200Ms.toFixed(1)} ms (${f.ratio.toFixed(2)}×; sample by sample ${f.pairedRatio.toFixed(2)}×); 2000 items ${f.route2000Ms.toFixed(0)} ms, longest stall ${f.longestStall2000Ms.toFixed(1)} ms`);
  return [
    { section: 'documents', name: 'quote of 200 items: HTTP route (median)', user: 'rep', p50: f.route200Ms },
    { section: 'documents', name: 'quote of 200 items: bare docxtemplater render (median)', user: 'rep', p50: f.bare200Ms },
    { section: 'documents', name: 'quote of 200 items: route ÷ bare render', user: 'rep', note: `${f.ratio.toFixed(2)}× (goal ≤ 1.3×${f.ratio <= 1.3 ? ': met' : ': MISSED'})`, extra: { ratio: f.ratio } },
    { section: 'documents', name: 'quote of 200 items: median of each sample\'s route ÷ bare', user: 'rep', note: `${f.pairedRatio.toFixed(2)}×`, extra: { ratio: f.pairedRatio } },
    { section: 'documents', name: 'quote of 2000 items: HTTP route (median)', user: 'rep', p50: f.route2000Ms },
    {
      section: 'documents', name: 'quote of 2000 items: longest event-loop stall', user: 'rep',
      note: `${f.longestStall2000Ms.toFixed(1)} ms (goal ≤ 50 ms${f.longestStall2000Ms <= 50 ? ': met' : ': MISSED'}); rendering it on the main thread would hold it ${f.inProcessRender2000Ms.toFixed(0)} ms`,
      extra: { stallMs: f.longestStall2000Ms, inProcessRenderMs: f.inProcessRender2000Ms },
    },
  ];
};

/**
 * The sections, in the order they run. Add one as `name: async (ctx) => rows` (names are matched by
 * `npm run bench -- --only <part of a name>`).
 */
export const SECTIONS: Record<string, BenchSection> = {
  routes: routesSection,
  floor: floorSection,
  documents: documentsSection,
};
