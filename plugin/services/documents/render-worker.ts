/**
 * The body of the document-rendering worker thread (see ./render-pool.ts). A document takes two messages: `open`
 * checks and compiles the template (sent as soon as the template's bytes are known, so this runs while the main
 * thread still reads the quote), then `fill` builds the token data, renders and answers with the bytes, or with
 * the error in a form the main thread turns back into the same TemplateError or DocxRefused the in-process
 * renderDocx would have thrown. `discard` drops a template that will not be filled.
 */
import { createHash } from 'node:crypto';
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

/** A template opened for one document, with what is needed to keep a fresh copy of it after the fill. */
interface OpenedForDocument {
  template: OpenedTemplate;
  /** null: too large to keep a copy of. */
  key: string | null;
  filterOptions: FilterOptions;
}

/** Templates opened and not yet filled or discarded, or why one could not be opened (answered at `fill`). */
const opened = new Map<number, OpenedForDocument | { failure: RenderFailure }>();

/**
 * A compiled copy of each of the few templates filled last, ready for the next document of the same template: a
 * compiled template fills only once, and checking and compiling one takes milliseconds that the next document would
 * otherwise wait for. The copy is made just after a document has gone back, while the main thread stores it. Kept
 * by the template's bytes and filter options, so a template uploaded anew never meets an old copy.
 */
const kept = new Map<string, OpenedTemplate>();
const KEPT_TEMPLATES = 4;
/**
 * A kept copy holds its template unpacked: templates larger than this, packed or unpacked, are opened for each
 * document (the default template is 4 KB packed, 22 KB unpacked).
 */
const KEPT_TEMPLATE_MAX_BYTES = 2 * 1024 * 1024;

const keyOf = (bytes: Buffer, filterOptions: FilterOptions): string | null => (bytes.length > KEPT_TEMPLATE_MAX_BYTES
  ? null
  : `${createHash('sha256').update(bytes).digest('hex')} ${filterOptions.currency ?? ''} ${filterOptions.locale ?? ''}`);

const unpackedSize = (template: OpenedTemplate): number => {
  let size = 0;
  for (const part of template.source.parts.values()) size += part.size;
  return size;
};

/** Takes the kept copy of a template, if there is one: each copy serves one document. */
function takeKept(key: string | null): OpenedTemplate | undefined {
  const copy = key === null ? undefined : kept.get(key);
  if (copy) kept.delete(key!);
  return copy;
}

/** Whether a copy of `template` should be kept: small enough, and none kept yet. */
const worthKeeping = (key: string | null, template: OpenedTemplate): key is string => key !== null && !kept.has(key)
  && unpackedSize(template) <= KEPT_TEMPLATE_MAX_BYTES;

/** Keeps `template` (opened, never filled) for the next document, the most recent few only. */
function keep(key: string | null, template: OpenedTemplate): void {
  if (!worthKeeping(key, template)) return;
  kept.set(key, template);
  for (const oldest of kept.keys()) {
    if (kept.size <= KEPT_TEMPLATES) break;
    kept.delete(oldest);
  }
}

/** Opens the template of a document just made once more, to keep for the next one (it opened without error before). */
function keepFreshCopy({ key, template, filterOptions }: OpenedForDocument): void {
  if (!worthKeeping(key, template)) return;
  try {
    keep(key, openTemplate(template.source.bytes, filterOptions));
  } catch {
    // Should it fail now, the next document opens the template itself and reports why.
  }
}

function open(request: Extract<RenderRequest, { kind: 'open' }>): void {
  try {
    const bytes = Buffer.from(request.template.buffer, request.template.byteOffset, request.template.byteLength);
    const key = keyOf(bytes, request.filterOptions);
    const template = takeKept(key) ?? openTemplate(bytes, request.filterOptions);
    opened.set(request.id, { template, key, filterOptions: request.filterOptions });
  } catch (err) {
    opened.set(request.id, { failure: failureOf(err) });
  }
}

function fill(request: Extract<RenderRequest, { kind: 'fill' }>, entry: OpenedForDocument | { failure: RenderFailure } | undefined): RenderReply {
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

/** A template discarded unfilled is as good as a kept copy. */
function discard(id: number): void {
  const entry = opened.get(id);
  opened.delete(id);
  if (entry && 'template' in entry) keep(entry.key, entry.template);
}

parentPort?.on('message', (request: RenderRequest) => {
  if (request.kind === 'open') return open(request);
  if (request.kind === 'discard') return discard(request.id);
  const entry = opened.get(request.id);
  opened.delete(request.id);
  const reply = fill(request, entry);
  parentPort!.postMessage(reply, 'document' in reply ? [reply.document.buffer] : []);
  // The document has gone: now a fresh copy for the next one.
  if ('document' in reply && entry && 'template' in entry) keepFreshCopy(entry);
});
