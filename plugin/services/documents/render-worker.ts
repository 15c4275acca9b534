/**
 * The body of the document-rendering worker thread (see ./render-pool.ts). It builds the token data and
 * renders one document per message and answers with the bytes, or with the error in a form the main thread turns back into the
 * same TemplateError or DocxRefused the in-process renderDocx would have thrown.
 */
import { parentPort } from 'node:worker_threads';
import { DocxRefused, TemplateError, renderDocx } from './render';
import type { FilterOptions } from './parser';
import { buildTokenData, type QuoteDocumentInput } from './token-data';

/** The quote as gathered from the database; turning it into tokens (formatting every line) happens here too. */
export interface RenderRequest {
  id: number;
  template: Uint8Array;
  input: QuoteDocumentInput;
  filterOptions: FilterOptions;
}

export type RenderFailure =
  | { kind: 'template'; problems: TemplateError['problems'] }
  | { kind: 'refused'; message: string }
  | { kind: 'crash'; message: string };

export type RenderReply = { id: number; document: Uint8Array } | { id: number; failure: RenderFailure };

function failureOf(err: unknown): RenderFailure {
  if (err instanceof TemplateError) return { kind: 'template', problems: err.problems };
  if (err instanceof DocxRefused) return { kind: 'refused', message: err.message };
  return { kind: 'crash', message: err instanceof Error ? err.message : String(err) };
}

parentPort?.on('message', (request: RenderRequest) => {
  let reply: RenderReply;
  try {
    const rendered = renderDocx(Buffer.from(request.template.buffer, request.template.byteOffset, request.template.byteLength), buildTokenData(request.input), request.filterOptions);
    // A copy that owns its memory: a small Buffer may share Node's pool, which must not be transferred away.
    const document = new Uint8Array(rendered);
    reply = { id: request.id, document };
    parentPort!.postMessage(reply, [document.buffer]);
    return;
  } catch (err) {
    reply = { id: request.id, failure: failureOf(err) };
  }
  parentPort!.postMessage(reply);
});
