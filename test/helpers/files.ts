import crypto from 'node:crypto';
import type { Session } from './app';

/** Control characters cannot travel raw in a header: those names go as RFC 5987 `filename*`, as clients may send them. */
function filenameParam(name: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(name)) return `filename*=utf-8''${encodeURIComponent(name)}`;
  return `filename="${name.replace(/"/g, '%22')}"`;
}

/**
 * A multipart body written by hand, so the filename arrives exactly as a hostile client would send it (the
 * form-data library would already strip directories from it). A text field goes first, as forms send one.
 */
export function multipart(filename: string, content: Buffer, contentType = 'application/octet-stream'): { body: Buffer; type: string } {
  const boundary = `----crmtest${crypto.randomBytes(8).toString('hex')}`;
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n` +
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; ${filenameParam(filename)}\r\nContent-Type: ${contentType}\r\n\r\n`;
  return { body: Buffer.concat([Buffer.from(head, 'utf8'), content, Buffer.from(`\r\n--${boundary}--\r\n`)]), type: `multipart/form-data; boundary=${boundary}` };
}

export interface UploadOptions {
  /** Where the CSRF token goes: the action's query string (what the no-JS form does), the htmx header, or nowhere. */
  csrf?: 'query' | 'header' | 'none';
  json?: boolean;
  contentType?: string;
}

/** Posts one file as the upload forms do. */
export function uploadFile(s: Session, url: string, filename: string, content: Buffer | string, opts: UploadOptions = {}) {
  const { body, type } = multipart(filename, Buffer.isBuffer(content) ? content : Buffer.from(content), opts.contentType);
  const csrf = opts.csrf ?? 'query';
  let req = s.agent.post(`${url}${csrf === 'query' ? `?_csrf=${encodeURIComponent(s.csrf)}` : ''}`).set('Content-Type', type);
  if (csrf === 'header') req = req.set('X-CSRF-Token', s.csrf);
  if (opts.json) req = req.set('Accept', 'application/json');
  return req.send(body);
}

/** A download's bytes as a Buffer (`res.body`). */
export function downloadBytes(s: Session, url: string) {
  return s.agent.get(url).buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  });
}
