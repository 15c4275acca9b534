/**
 * `npm run bench`: for each scale, generates (or reuses) the data set in a child process; then, in a child per
 * scale, all at once, starts the reference host with the CRM plugin in-process on it, signs in through the real
 * login form, and measures each section with autocannon, run in a process of its own (bench/load.ts) so that the
 * server's process holds the server alone. The scales take turns, route by route (BenchContext.turn).
 * Results print as one Markdown table and are written to `bench/results/<db>-<date>.json`.
 *
 * Plugging in a further section: write `async (ctx: BenchContext) => BenchRow[]` and add it to SECTIONS in
 * bench/sections.ts — see bench/README.md.
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { createHostApp, type HostApp } from '../host/app';
import { isPostgres } from '../host/db';
import { crmPlugin } from '../plugin/index';
import type { HostUser } from '../plugin/host';
import { PLUGIN_ROOT } from '../plugin/paths';
import { openBenchDatabase, type BenchDatabase } from './database';
import { BENCH_LOGINS, BENCH_PASSWORD, type GenerateResult } from './generate';
import type { LoadRequest, LoadResult } from './load';
import { SECTIONS } from './sections';

/** One line of the printed table and of the JSON. Times in milliseconds. */
export interface BenchRow {
  section: string;
  /** What was measured ("account list, page 200"). Rows with the same section, name and user line up across scales. */
  name: string;
  user?: string;
  url?: string;
  rps?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  requests?: number;
  /** Answers that were not 2xx, connection errors and timeouts during the measurement. */
  failures?: number;
  note?: string;
  /** Anything else worth keeping in the JSON. */
  extra?: Record<string, unknown>;
}

export interface SignedInUser {
  login: string;
  user: HostUser;
  /** The `Cookie` header of the signed-in session. */
  cookie: string;
  /** The session's CSRF token (for POSTs: `_csrf` field or `X-CSRF-Token` header). */
  csrf: string;
}

export interface Measurement {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  requests: number;
  failures: number;
  statuses: Record<string, number>;
}

/** What a section gets: the running host, its database, the signed-in users and a load runner. */
export interface BenchContext {
  scale: number;
  /** "1/100" or "full". */
  scaleLabel: string;
  quick: boolean;
  /** Seconds each route is loaded for. */
  duration: number;
  connections: number;
  baseUrl: string;
  knex: Knex;
  host: HostApp;
  db: BenchDatabase;
  users: { admin: SignedInUser; rep: SignedInUser };
  /** Loads `path` with autocannon as `user` and returns requests/s and latency percentiles. */
  measure(path: string, user: SignedInUser, options?: { connections?: number; duration?: number; headers?: Record<string, string> }): Promise<Measurement>;
  /**
   * Runs `work` as this scale's next turn: the scales run side by side, each in its own server process, and take
   * turns, so that a route is measured at 1/100 and at full size within seconds of each other, each while the
   * other server is idle. Whatever loads or times anything does it inside a turn.
   */
  turn<T>(work: () => Promise<T>): Promise<T>;
  log(line: string): void;
}

export type BenchSection = (ctx: BenchContext) => Promise<BenchRow[]>;

interface Options {
  quick: boolean;
  scales: number[];
  seed: number;
  duration: number;
  connections: number;
  databaseUrl?: string;
  reuseDb: boolean;
  only: string | null;
}

function parseArgs(argv: string[]): Options & { prepare: boolean; runScale: boolean } {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const scaleArg = value('--scale');
  const scales = scaleArg ? scaleArg.split(',').map(Number) : quick ? [0.01] : [0.01, 1];
  if (scales.some((s) => !(s > 0 && s <= 10))) throw new Error(`--scale takes fractions such as 0.01 or 1 (got ${scaleArg})`);
  return {
    quick,
    prepare: argv.includes('--prepare'),
    runScale: argv.includes('--run-scale'),
    scales,
    seed: Number(value('--seed') ?? 20261123),
    duration: Number(value('--duration') ?? (quick ? 2 : 10)),
    connections: Number(value('--connections') ?? 10),
    databaseUrl: process.env.DATABASE_URL || undefined,
    reuseDb: process.env.BENCH_REUSE_DB === '1',
    only: value('--only') ?? null,
  };
}

export const scaleLabel = (scale: number): string => (scale === 1 ? 'full' : scale < 1 ? `1/${Math.round(1 / scale)}` : `×${scale}`);

const percentile = (sorted: number[], p: number): number => {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

export function percentiles(values: number[]): { p50: number; p95: number; p99: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

/**
 * Loads one URL for a fixed time with autocannon in a child process (bench/load.ts), so this process's memory is
 * the server's alone; latency percentiles from every response (autocannon's own list has no p95).
 */
async function measure(baseUrl: string, urlPath: string, user: SignedInUser, connections: number, duration: number, headers: Record<string, string> = {}): Promise<Measurement> {
  const child = fork(path.join(__dirname, 'load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const result = await new Promise<LoadResult>((resolve, reject) => {
    child.once('message', (m) => resolve(m as LoadResult));
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code} before answering`)));
    const request: LoadRequest = { url: baseUrl + urlPath, connections, duration, headers: { cookie: user.cookie, ...headers } };
    child.send(request);
  });
  const { p50, p95, p99 } = percentiles(result.latencies);
  return { rps: result.requests / result.duration, p50, p95, p99, requests: result.requests, failures: result.failures, statuses: result.statuses };
}

/** Signs in through the login form (GET for the CSRF token, POST, keep the session cookie), once per user and run. */
export async function signIn(baseUrl: string, host: HostApp, login: string, password: string): Promise<SignedInUser> {
  const cookies = new Map<string, string>();
  const keep = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  };
  const header = () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  const page = await fetch(`${baseUrl}/login`, { redirect: 'manual' });
  keep(page);
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1];
  if (!token) throw new Error('No CSRF token on /login');
  const res = await fetch(`${baseUrl}/login`, {
    method: 'POST', redirect: 'manual',
    headers: { cookie: header(), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login, password, _csrf: token }).toString(),
  });
  keep(res);
  await res.arrayBuffer();
  if (res.status !== 303) throw new Error(`Sign-in as ${login} answered ${res.status}`);
  const home = await fetch(`${baseUrl}/`, { headers: { cookie: header() }, redirect: 'manual' });
  keep(home);
  const csrf = /name="csrf-token" content="([^"]+)"/.exec(await home.text())?.[1];
  if (!csrf) throw new Error(`No CSRF token on / after signing in as ${login}`);
  const record = await host.repo.userByLogin(login);
  if (!record) throw new Error(`No user ${login}`);
  return { login, user: { id: record.id, login: record.login, name: record.name, email: record.email, admin: record.admin }, cookie: header(), csrf };
}

/**
 * Peak memory of this process (the server; the load generator runs in its own), sampled every 25 ms: resident
 * set size, and the V8 heap in use (what the app holds; RSS also counts heap V8 has not collected yet).
 */
class MemorySampler {
  peakRss = 0;
  peakHeapUsed = 0;
  private timer: NodeJS.Timeout | null = null;
  private sample(): void {
    const m = process.memoryUsage();
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakHeapUsed = Math.max(this.peakHeapUsed, m.heapUsed);
  }
  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), 25);
    this.timer.unref();
  }
  stop(): { rssMb: number; heapUsedMb: number } {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return { rssMb: Math.round(this.peakRss / 1024 / 1024), heapUsedMb: Math.round(this.peakHeapUsed / 1024 / 1024) };
  }
}

export interface MachineInfo {
  nproc: number;
  cpu: string;
  ramGb: number;
  node: string;
  database: string;
  platform: string;
}

async function machineInfo(knex: Knex): Promise<MachineInfo> {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // Not Linux: os.cpus() is good enough.
  }
  const database = isPostgres(knex)
    ? `PostgreSQL ${String((await knex.raw('show server_version')).rows[0].server_version)}`
    : `SQLite ${String((await knex.raw('select sqlite_version() as v'))[0].v)} (better-sqlite3, WAL)`;
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length, cpu, ramGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version, database, platform: `${os.type()} ${os.release()}`,
  };
}

/** Generates the data set in a child process, so its memory never counts towards the server's peak RSS. */
function prepareInChild(scale: number, options: Options): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['--prepare', '--scale', String(scale), '--seed', String(options.seed)];
    const child = fork(process.argv[1], args, { stdio: 'inherit', env: { ...process.env, BENCH_REUSE_DB: options.reuseDb ? '1' : '0' } });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`Generating the data set (scale ${scale}) failed (exit ${code})`))));
  });
}

type ScaleRun = { result: ScaleResult; machine: MachineInfo };
/** What a scale's process says to the parent: it wants its next turn, it is done with it, or its result. */
type ChildMessage = { turn: 'want' } | { turn: 'done' } | { run: ScaleRun };

/**
 * Runs every scale at once, each in a child process of its own, so each scale's peak RSS is its own (V8 does not
 * hand the memory of an earlier, smaller run back, and the sampler would count it). The children take turns in
 * strict rotation (see BenchContext.turn): the machine's speed drifts over minutes, and a ratio between two scales
 * measured ten minutes apart would measure the drift too.
 */
function runScalesInTurn(scales: number[], argv: string[]): Promise<ScaleRun[]> {
  const base = argv.filter((a, i) => a !== '--scale' && argv[i - 1] !== '--scale');
  const answers: (ScaleRun | null)[] = scales.map(() => null);
  const wanting = new Set<number>();
  const exited = new Set<number>();
  let holder: number | null = null;
  let next = 0;
  const children = scales.map((scale) => fork(process.argv[1], [...base, '--run-scale', '--scale', String(scale)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...serverNodeFlags()],
  }));
  // The turn goes to `next`; a child that has finished is skipped, so the others never wait for it.
  const grant = () => {
    if (holder !== null) return;
    while (exited.has(next) && exited.size < scales.length) next = (next + 1) % scales.length;
    if (!wanting.has(next)) return;
    wanting.delete(next);
    holder = next;
    children[next].send('go');
  };
  return Promise.all(children.map((child, i) => new Promise<ScaleRun>((resolve, reject) => {
    child.on('message', (m: ChildMessage) => {
      if ('run' in m) answers[i] = m.run;
      else if (m.turn === 'want') wanting.add(i);
      else if (holder === i) {
        holder = null;
        next = (i + 1) % scales.length;
      }
      grant();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      exited.add(i);
      if (holder === i) holder = null;
      grant();
      const answer = answers[i];
      if (code === 0 && answer) resolve(answer);
      else {
        for (const other of children) if (other !== child) other.kill();
        reject(new Error(`The run at scale ${scales[i]} failed (exit ${code})`));
      }
    });
  })));
}

/** BenchContext.turn in a scale's process: asks the parent for the turn, and hands it back when the work is done. */
function turnTaker(): BenchContext['turn'] {
  if (!process.send) return (work) => work();
  let granted: (() => void) | null = null;
  process.on('message', (m) => {
    if (m !== 'go' || !granted) return;
    const go = granted;
    granted = null;
    go();
  });
  const send = (m: ChildMessage) => process.send!(m);
  return async (work) => {
    await new Promise<void>((resolve) => {
      granted = resolve;
      send({ turn: 'want' });
    });
    try {
      return await work();
    } finally {
      send({ turn: 'done' });
    }
  };
}

/**
 * The Node flags `npm start` runs the server with (package.json, `config.serverNodeFlags`): the measured server
 * runs as the deployed one does. They bound how far V8 lets garbage pile up before collecting it.
 */
function serverNodeFlags(): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(PLUGIN_ROOT, 'package.json'), 'utf8')) as { config?: { serverNodeFlags?: string } };
  return (pkg.config?.serverNodeFlags ?? '').split(/\s+/).filter(Boolean);
}

interface ScaleResult {
  scale: number;
  label: string;
  database: string;
  generation: GenerateResult | null;
  reused: boolean;
  peakRssMb: number;
  rows: BenchRow[];
}

async function runScale(scale: number, options: Options, parentLog: (line: string) => void): Promise<ScaleRun> {
  const label = scaleLabel(scale);
  // The scales run side by side and print into one stream: every line says whose it is.
  const log = (line: string) => parentLog(line.startsWith('[') ? line : `[${label}] ${line}`);
  const db = await openBenchDatabase({ scale, seed: options.seed, plugins: [crmPlugin], databaseUrl: options.databaseUrl, fresh: false, log });
  const machine = await machineInfo(db.knex);
  const memory = new MemorySampler();
  const host = await createHostApp({ knex: db.knex, dataDir: db.dataDir, plugins: [crmPlugin], sessionSecret: 'bench-session-secret' });
  const server = http.createServer(host.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  memory.start();
  const rows: BenchRow[] = [];
  // The peak so far after each section: the documents section also renders in this process for comparison.
  const sectionPeaks: string[] = [];
  try {
    const users = {
      admin: await signIn(baseUrl, host, BENCH_LOGINS.admin, BENCH_PASSWORD),
      rep: await signIn(baseUrl, host, BENCH_LOGINS.rep, BENCH_PASSWORD),
    };
    log(`[${label}] server on ${baseUrl}, ${db.where}; RSS before load ${Math.round(process.memoryUsage.rss() / 1024 / 1024)} MB`);
    const ctx: BenchContext = {
      scale, scaleLabel: label, quick: options.quick, duration: options.duration, connections: options.connections, baseUrl, knex: db.knex, host, db, users,
      measure: (p, user, o = {}) => measure(baseUrl, p, user, o.connections ?? options.connections, o.duration ?? options.duration, o.headers),
      turn: turnTaker(),
      log,
    };
    for (const [name, section] of Object.entries(SECTIONS)) {
      if (options.only && !name.includes(options.only)) continue;
      log(`[${label}] ${name}`);
      rows.push(...(await section(ctx)));
      sectionPeaks.push(`${name} ${Math.round(memory.peakRss / 1024 / 1024)} MB`);
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }
  const peak = memory.stop();
  const peakRssMb = peak.rssMb;
  const goal = scale === 1 ? (peakRssMb <= 300 ? ' (goal ≤ 300 MB: met)' : ' (goal ≤ 300 MB: MISSED)') : '';
  rows.push({ section: 'memory', name: 'peak RSS of the server process', note: `${peakRssMb} MB${goal}; V8 heap in use at most ${peak.heapUsedMb} MB; peak after each section: ${sectionPeaks.join(', ')}`, extra: { ...peak, sectionPeaks } });
  await db.close();
  return { result: { scale, label, database: db.where, generation: db.generation, reused: db.reused, peakRssMb, rows }, machine };
}

const fmt = (n: number | undefined, digits = 1): string => (n === undefined || Number.isNaN(n) ? '' : n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));

/** One Markdown table: a row per measurement, the columns of each scale side by side, and the p95 growth. */
export function renderTable(results: ScaleResult[]): string {
  const keyOf = (r: BenchRow) => `${r.section}\u0000${r.name}\u0000${r.user ?? ''}`;
  const keys: string[] = [];
  const byScale = results.map((s) => new Map(s.rows.map((r) => [keyOf(r), r])));
  for (const s of results) for (const r of s.rows) if (!keys.includes(keyOf(r))) keys.push(keyOf(r));
  const head = ['section', 'measurement', 'user'];
  for (const s of results) head.push(`req/s ${s.label}`, `p50 ${s.label}`, `p95 ${s.label}`, `p99 ${s.label}`);
  const growth = results.length === 2;
  if (growth) head.push(`p95 ${results[1].label} ÷ ${results[0].label}`);
  head.push('note');
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((h, i) => (i < 3 || h === 'note' ? '---' : '---:')).join(' | ')} |`];
  for (const key of keys) {
    const [section, name, user] = key.split('\u0000');
    const cells = [section, name, user];
    const notes: string[] = [];
    results.forEach((s, i) => {
      const r = byScale[i].get(key);
      cells.push(fmt(r?.rps, 0), fmt(r?.p50), fmt(r?.p95), fmt(r?.p99));
      if (r?.note) notes.push(results.length > 1 ? `${s.label}: ${r.note}` : r.note);
      if (r?.failures) notes.push(`${s.label}: ${r.failures} failed of ${r.requests}`);
    });
    if (growth) {
      const a = byScale[0].get(key)?.p95;
      const b = byScale[1].get(key)?.p95;
      const ratio = a && b ? b / a : undefined;
      cells.push(ratio === undefined ? '' : `${ratio.toFixed(2)}${ratio > 1.5 ? ' ✗' : ''}`);
    }
    cells.push(notes.join('; '));
    lines.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  }
  return lines.join('\n');
}

function dataLine(results: ScaleResult[]): string {
  return results.map((s) => {
    const g = s.generation;
    if (!g) return `${s.label}: (unknown)`;
    const c = g.counts;
    return `${s.label}: ${g.totalRows.toLocaleString('en-US')} rows (${c.accounts.toLocaleString('en-US')} accounts, ${c.personalContacts.toLocaleString('en-US')} contacts, `
      + `${c.opportunities.toLocaleString('en-US')} opportunities, ${c.activities.toLocaleString('en-US')} activities, ${c.quotes.toLocaleString('en-US')} quotes, `
      + `${c.contracts.toLocaleString('en-US')} contracts), generated in ${(g.ms / 1000).toFixed(1)} s at ${Math.round((g.totalRows / g.ms) * 1000).toLocaleString('en-US')} rows/s${s.reused ? ' (reused)' : ''}`;
  }).join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const options = parseArgs(argv);
  const log = (line: string) => console.log(line);
  if (options.prepare) {
    // The child of prepareInChild: generate (or find) the data set, then exit.
    const db = await openBenchDatabase({ scale: options.scales[0], seed: options.seed, plugins: [crmPlugin], databaseUrl: options.databaseUrl, fresh: !options.reuseDb, log });
    log(db.reused ? `Reusing the data set in ${db.where}.` : `Data set written to ${db.where}.`);
    await db.close();
    return;
  }
  if (options.runScale) {
    // The child of runScaleInChild: measure one scale and hand the result back.
    const run = await runScale(options.scales[0], options, log);
    const message: ChildMessage = { run };
    await new Promise<void>((resolve, reject) => process.send!(message, (err: Error | null) => (err ? reject(err) : resolve())));
    return;
  }
  const started = Date.now();
  log(`CRM benchmark${options.quick ? ' (quick)' : ''}: scales ${options.scales.map(scaleLabel).join(', ')}, ${options.connections} connections, ${options.duration} s per route, on ${options.databaseUrl ? 'PostgreSQL' : 'SQLite'}`);
  for (const scale of options.scales) await prepareInChild(scale, options);
  const runs = await runScalesInTurn(options.scales, argv);
  const results = runs.map((run) => run.result);
  const table = renderTable(results);
  const m = runs[runs.length - 1].machine;
  const machineLine = `${m.nproc} × ${m.cpu}, ${m.ramGb} GB RAM, Node ${m.node}, ${m.database}, ${m.platform}`;
  console.log(`\n${dataLine(results)}\nMachine: ${machineLine}\n\n${table}\n`);
  const dir = path.join(PLUGIN_ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '').slice(0, 15);
  const file = path.join(dir, `${options.databaseUrl ? 'postgres' : 'sqlite'}-${stamp}${options.quick ? '-quick' : ''}.json`);
  fs.writeFileSync(file, JSON.stringify({
    date: new Date().toISOString(), machine: m, options: { ...options, databaseUrl: options.databaseUrl ? '(set)' : undefined },
    seconds: Math.round((Date.now() - started) / 1000), scales: results, table,
  }, null, 2));
  log(`Written to ${path.relative(process.cwd(), file)} in ${Math.round((Date.now() - started) / 1000)} s.`);
}
