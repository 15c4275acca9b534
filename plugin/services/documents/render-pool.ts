import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DocxRefused, TemplateError } from './render';
import type { FilterOptions } from './parser';
import type { QuoteDocumentInput } from './token-data';
import type { RenderFailure, RenderReply, RenderRequest } from './render-worker';

/**
 * Renders quote documents on a worker thread, so the server keeps answering while a large quote is filled:
 * docxtemplater is synchronous, and a quote of 2000 lines takes far longer than any request should hold the
 * event loop. One long-lived worker serves the documents in turn (the first call pays its start-up once);
 * it is unref'd while idle, so it never keeps the process alive, and a new one is started if it dies.
 */

/** Running from the TypeScript sources (tests): the worker compiles its modules with typescript on load. */
const FROM_SOURCE = path.extname(__filename) === '.ts';
const WORKER_FILE = path.join(__dirname, `render-worker${path.extname(__filename)}`);

/** Registers a minimal TypeScript loader in the worker, then loads the worker body (sources only). */
const SOURCE_BOOTSTRAP = `
const fs = require('node:fs');
const ts = require('typescript');
require.extensions['.ts'] = (module, filename) => {
  const source = fs.readFileSync(filename, 'utf8');
  const output = ts.transpileModule(source, { fileName: filename, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  module._compile(output.outputText, filename);
};
require(require('node:worker_threads').workerData.file);
`;

interface Pending {
  resolve(document: Buffer): void;
  reject(err: Error): void;
}

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<number, Pending>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
}

function errorOf(failure: RenderFailure): Error {
  if (failure.kind === 'template') return new TemplateError(failure.problems);
  if (failure.kind === 'refused') return new DocxRefused(failure.message);
  return new Error(`The document could not be made: ${failure.message}`);
}

function startWorker(): Worker {
  const w = FROM_SOURCE
    ? new Worker(SOURCE_BOOTSTRAP, { eval: true, workerData: { file: WORKER_FILE } })
    : new Worker(WORKER_FILE);
  w.unref();
  w.on('message', (reply: RenderReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (pending.size === 0) w.unref();
    if ('document' in reply) p.resolve(Buffer.from(reply.document.buffer, reply.document.byteOffset, reply.document.byteLength));
    else p.reject(errorOf(reply.failure));
  });
  const retire = (err: Error) => {
    if (worker === w) worker = null;
    failAll(err);
  };
  w.on('error', (err) => retire(err));
  w.on('exit', (code) => retire(new Error(`The document worker stopped (exit code ${code}).`)));
  return w;
}

/** A template being opened on the worker: fill it once with a quote, or discard it. */
export interface TemplateOnWorker {
  /** The filled document, or the same TemplateError / DocxRefused renderDocx would throw. */
  fill(input: QuoteDocumentInput): Promise<Buffer>;
  /** Frees the opened template on the worker; nothing once filled. */
  discard(): void;
}

/**
 * Starts checking and compiling `template` on the worker at once, so that it runs while the caller still reads the
 * quote; `fill` then only builds the tokens and renders. The answer is awaited from the moment of opening, so a
 * worker that dies in between fails the document instead of leaving it waiting.
 */
export function openTemplateOffThread(template: Buffer, filterOptions: FilterOptions = {}): TemplateOnWorker {
  worker ??= startWorker();
  const w = worker;
  const id = nextId++;
  const answer = new Promise<Buffer>((resolve, reject) => pending.set(id, { resolve, reject }));
  // Whoever fills awaits the answer; a template discarded unfilled must not report its worker's death as unhandled.
  answer.catch(() => undefined);
  // Held while a document is in the making, so a pending answer is never lost to an exiting process.
  w.ref();
  post(w, { kind: 'open', id, template: new Uint8Array(template), filterOptions });
  let state: 'open' | 'filled' | 'discarded' = 'open';
  return {
    fill(input) {
      if (state === 'discarded') return Promise.reject(new Error('This template was discarded before it was filled.'));
      if (state === 'open' && pending.has(id)) post(w, { kind: 'fill', id, input });
      state = 'filled';
      return answer;
    },
    discard() {
      if (state !== 'open') return;
      state = 'discarded';
      if (!pending.delete(id)) return;
      post(w, { kind: 'discard', id });
      if (pending.size === 0) w.unref();
    },
  };
}

const post = (w: Worker, request: RenderRequest) => w.postMessage(request);

/**
 * The document of a quote whose template and data are still being read: the template is opened on the worker as
 * soon as its bytes are there, in parallel with reading the quote, and filled once both are. Whatever fails, the
 * opened template is freed. A template already in memory goes to the worker before `readInput` starts: on SQLite
 * the reads run synchronously inside the promise jobs they queue, and a template handed over after them would wait
 * for all of them before its opening began.
 */
export async function renderWhileReading(template: Buffer | Promise<Buffer>, readInput: () => Promise<QuoteDocumentInput>, filterOptions: FilterOptions = {}): Promise<Buffer> {
  const open = (bytes: Buffer) => openTemplateOffThread(bytes, filterOptions);
  const opening = Buffer.isBuffer(template) ? Promise.resolve(open(template)) : template.then(open);
  try {
    const [opened, data] = await Promise.all([opening, readInput()]);
    return await opened.fill(data);
  } finally {
    opening.then((opened) => opened.discard(), () => undefined);
  }
}

/** Stops the worker (tests and shutdown); pending renders fail. */
export async function stopRenderWorker(): Promise<void> {
  const w = worker;
  worker = null;
  if (w) await w.terminate();
}
