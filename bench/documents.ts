/**
 * Quote documents in the benchmark (issue #5, point 12): a 200-item quote generated through the HTTP route
 * against a bare docxtemplater render of the same template and data in the same process, and the longest
 * event-loop stall while a 2000-item quote is generated (rendering runs on a worker thread), compared with the
 * same render on a main thread (in a child process of its own, so its memory is not the server's).
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import Docxtemplater from 'docxtemplater';
import PizZip from 'pizzip';
import type { Knex } from 'knex';
import type { HostApi, HostUser } from '../plugin/host';
import { contextFor } from '../plugin/http/guard';
import { DEFAULT_TEMPLATE } from '../plugin/routes/documents';
import { restrictedParser } from '../plugin/services/documents/parser';
import { quoteDocumentInput } from '../plugin/services/documents/quote-source';
import { requireVisibleQuote } from '../plugin/services/quotes';
import { buildTokenData, type TokenData } from '../plugin/services/documents/token-data';

/** A running host to measure, and a signed-in user who may edit opportunities in `projectId`. */
export interface DocumentBenchTarget {
  baseUrl: string;
  host: HostApi;
  user: HostUser;
  /** The session cookie header and the CSRF token of that user's session. */
  cookie: string;
  csrf: string;
  projectId: number;
}

export interface DocumentBenchFigures {
  /** Median ms per document, over `samples` runs each. */
  route200Ms: number;
  bare200Ms: number;
  /** route200Ms / bare200Ms (goal ≤ 1.3). */
  ratio: number;
  /**
   * The median of each sample's own route ÷ bare (the two run back to back): less swayed when the machine's speed
   * drifts during the measurement. Shown beside the ratio; the goal is judged on `ratio`.
   */
  pairedRatio: number;
  route2000Ms: number;
  /** Longest event-loop stall of the server's process while 2000-item documents were made (goal ≤ 50 ms). */
  longestStall2000Ms: number;
  /** The same 2000-item document rendered on the main thread, for comparison: the stall the worker avoids. */
  inProcessRender2000Ms: number;
  samples: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const idOf = (row: unknown): number => Number((row as { id?: number }).id ?? row);

/** An opportunity of the user's with one active quote of `items` priced lines (varied text, tax, discounts). */
async function quoteWithItems(knex: Knex, target: DocumentBenchTarget, items: number): Promise<{ oppId: number; quoteId: number }> {
  const type = await knex('crm_account_types').orderBy('position').first('id');
  const status = await knex('crm_opportunity_statuses').where({ kind: 'open' }).orderBy('position').first('id');
  const stamp = `${Date.now()}-${items}`;
  const [account] = await knex('crm_accounts').insert({
    account_type_id: type.id, name: `Bench documents ${stamp}`, street: 'Harbour 5', postcode: '10115', city: 'Tallinn', country: 'Estonia',
    author_id: target.user.id, account_manager_id: target.user.id,
  }).returning('id');
  const accountId = idOf(account);
  await knex('crm_account_projects').insert({ account_id: accountId, project_id: target.projectId });
  const [opp] = await knex('crm_opportunities').insert({
    project_id: target.projectId, name: `Bench documents ${stamp}`, account_id: accountId, owner_id: target.user.id,
    status_id: status.id, currency: 'EUR', author_id: target.user.id,
  }).returning('id');
  const oppId = idOf(opp);
  const [quote] = await knex('crm_quotes').insert({
    opportunity_id: oppId, number: `BENCH-${stamp}`, name: 'Benchmark quote', currency: 'EUR', valid_to: '2027-12-31', is_active: true, author_id: target.user.id,
  }).returning('id');
  const quoteId = idOf(quote);
  const rows = Array.from({ length: items }, (_, i) => ({
    quote_id: quoteId, position: i + 1, kind: 'manual', product_id: null, bundle_id: null, price_book_id: null, code: `P-${i + 1}`,
    name: `Service line ${i + 1} & <options>`, description: i % 3 ? '' : 'Includes setup, training and the first year of support.',
    unit: i % 2 ? 'days' : 'pcs', quantity_milli: 1000 + (i % 7) * 500, unit_price_minor: 1999 + i * 37,
    discount_kind: i % 4 ? null : 'percent', discount_value: i % 4 ? 0 : 1000, tax_rate_bp: 2000,
  }));
  for (let i = 0; i < rows.length; i += 50) await knex('crm_quote_items').insert(rows.slice(i, i + 50));
  return { oppId, quoteId };
}

const keptAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One POST through node:http on a kept-alive connection: the lightest client, since it shares the server's process. */
function post(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: keptAlive, headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function generateThroughRoute(target: DocumentBenchTarget, oppId: number, quoteId: number): Promise<number> {
  const started = performance.now();
  const res = await post(`${target.baseUrl}/crm/opportunities/${oppId}/documents`,
    { Cookie: target.cookie, Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    new URLSearchParams({ quote_id: String(quoteId), template: 'default', _csrf: target.csrf }).toString());
  if (res.status !== 201) throw new Error(`Generating a quote document answered ${res.status}`);
  return performance.now() - started;
}

/** What the route's render amounts to with nothing around it: docxtemplater on the same template and data. */
function bareRender(template: Buffer, data: TokenData): number {
  const started = performance.now();
  const doc = new Docxtemplater(new PizZip(template), { paragraphLoop: true, linebreaks: true, parser: restrictedParser(), nullGetter: () => '' });
  doc.render(data);
  doc.toBuffer({ compression: 'DEFLATE' });
  return performance.now() - started;
}

/** Times of `runs` renders of the default template on the main thread of a child process (render-alone.ts). */
function renderAlone(data: TokenData, runs: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'render-alone.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (msg: { times: number[] }) => resolve(msg.times));
    child.once('error', reject);
    child.once('exit', (code) => { if (code) reject(new Error(`render-alone exited with ${code}`)); });
    child.send({ templatePath: DEFAULT_TEMPLATE, data, runs });
  });
}

/** Deletes what the measurement made (opportunities cascade to quotes and items), so a cached data set stays as generated. */
async function removeMade(knex: Knex, made: { oppId: number }[]): Promise<void> {
  const oppIds = made.map((m) => m.oppId);
  if (!oppIds.length) return;
  const accountIds = (await knex('crm_opportunities').whereIn('id', oppIds).pluck('account_id')).map(Number);
  await knex.transaction(async (trx) => {
    await trx('crm_attachments').where('record_type', 'opportunity').whereIn('record_id', oppIds).delete();
    const journals = trx('crm_journals').whereIn('journalized_type', ['opportunity', 'account']).whereIn('journalized_id', [...oppIds, ...accountIds]).select('id');
    await trx('crm_journal_details').whereIn('journal_id', journals).delete();
    await trx('crm_journals').whereIn('journalized_type', ['opportunity', 'account']).whereIn('journalized_id', [...oppIds, ...accountIds]).delete();
    await trx('crm_opportunities').whereIn('id', oppIds).delete();
    await trx('crm_account_projects').whereIn('account_id', accountIds).delete();
    await trx('crm_accounts').whereIn('id', accountIds).delete();
  });
}

export async function benchQuoteDocuments(target: DocumentBenchTarget, samples = 15): Promise<DocumentBenchFigures> {
  const made: { oppId: number }[] = [];
  try {
    return await measure(target, samples, made);
  } finally {
    await removeMade(target.host.knex, made);
  }
}

async function measure(target: DocumentBenchTarget, samples: number, made: { oppId: number }[]): Promise<DocumentBenchFigures> {
  const knex = target.host.knex;
  const template = fs.readFileSync(DEFAULT_TEMPLATE);
  const ctx = contextFor(target.host, target.user, null);

  const small = await quoteWithItems(knex, target, 200);
  made.push(small);
  const smallData = buildTokenData(await quoteDocumentInput(ctx, await requireVisibleQuote(ctx, small.quoteId)));
  // Warm both paths (the worker's start-up, docxtemplater's first compile) before measuring.
  for (let i = 0; i < 3; i++) {
    await generateThroughRoute(target, small.oppId, small.quoteId);
    bareRender(template, smallData);
  }
  const route: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < samples; i++) {
    route.push(await generateThroughRoute(target, small.oppId, small.quoteId));
    bare.push(bareRender(template, smallData));
  }

  const large = await quoteWithItems(knex, target, 2000);
  made.push(large);
  const largeRuns = 3;
  await generateThroughRoute(target, large.oppId, large.quoteId);
  const stalls = monitorEventLoopDelay({ resolution: 1 });
  const largeTimes: number[] = [];
  stalls.enable();
  for (let i = 0; i < largeRuns; i++) largeTimes.push(await generateThroughRoute(target, large.oppId, large.quoteId));
  stalls.disable();
  const largeData = buildTokenData(await quoteDocumentInput(ctx, await requireVisibleQuote(ctx, large.quoteId)));
  const inProcess = median(await renderAlone(largeData, largeRuns));

  const route200Ms = median(route);
  const bare200Ms = median(bare);
  return {
    route200Ms, bare200Ms, ratio: route200Ms / bare200Ms, pairedRatio: median(route.map((ms, i) => ms / bare[i])),
    route2000Ms: median(largeTimes),
    longestStall2000Ms: stalls.max / 1e6,
    inProcessRender2000Ms: inProcess,
    samples,
  };
}
