/**
 * The body of the document-rendering worker thread (see ./render-pool.ts). A document takes two messages: `open`
 * checks and compiles the template (sent as soon as the template's bytes are known, so this runs while the main
 * thread still reads the quote), then `fill` builds the token data, renders and answers with the bytes, or with
 * the error in a form the main thread turns back into the same TemplateError or DocxRefused the in-process
 * renderDocx would have thrown. `discard` drops a template that will not be filled.
 */
import { parentPort } from 'node:worker_threads';
import { DocxRefused, TemplateError, fillTemplate, openTemplate, type OpenedTemplate } from './render';
import type { FilterOptions } from './parser';
import { buildTokenData, type QuoteDocumentInput } from './token-data';

export type RenderRequest =
  | { kind: 'open'; id: number; template: Uint8Array; filterOptions: FilterOptions }
  /** The quote as gathered from the database; turning it into tokens (formatting every line) happens here too. */
  | { kind: 'fill'; id: number; input: QuoteDocumentInput }
  | { kind: 'discard'; id: number };

export type RenderFailure =
  | { kind: 'template'; problems: TemplateError['problems'] }
  | { kind: 'refused'; message: string }
  | { kind: 'crash'; message: string };

/** `document` owns its memory, which is handed over to the main thread, not copied. */
export type RenderReply = { id: number; document: Uint8Array<ArrayBuffer> } | { id: number; failure: RenderFailure };

function failureOf(err: unknown): RenderFailure {
  if (err instanceof TemplateError) return { kind: 'template', problems: err.problems };
  if (err instanceof DocxRefused) return { kind: 'refused', message: err.message };
  return { kind: 'crash', message: err instanceof Error ? err.message : String(err) };
}

/** Templates opened and not yet filled or discarded, or why one could not be opened (answered at `fill`). */
const opened = new Map<number, { template: OpenedTemplate } | { failure: RenderFailure }>();

function open(request: Extract<RenderRequest, { kind: 'open' }>): void {
  try {
    const bytes = Buffer.from(request.template.buffer, request.template.byteOffset, request.template.byteLength);
    opened.set(request.id, { template: openTemplate(bytes, request.filterOptions) });
  } catch (err) {
    opened.set(request.id, { failure: failureOf(err) });
  }
}

function fill(request: Extract<RenderRequest, { kind: 'fill' }>): RenderReply {
  const entry = opened.get(request.id);
  opened.delete(request.id);
  if (!entry) return { id: request.id, failure: { kind: 'crash', message: 'the template was not opened' } };
  if ('failure' in entry) return { id: request.id, failure: entry.failure };
  try {
    const rendered = fillTemplate(entry.template, buildTokenData(request.input));
    // A copy that owns its memory: a small Buffer may share Node's pool, which must not be transferred away.
    return { id: request.id, document: new Uint8Array(rendered) };
  } catch (err) {
    return { id: request.id, failure: failureOf(err) };
  }
}

parentPort?.on('message', (request: RenderRequest) => {
  if (request.kind === 'open') return open(request);
  if (request.kind === 'discard') return void opened.delete(request.id);
  const reply = fill(request);
  parentPort!.postMessage(reply, 'document' in reply ? [reply.document.buffer] : []);
});
