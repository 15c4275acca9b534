import fs from 'node:fs';
import busboy from 'busboy';
import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, invalid } from '../http/errors';
import { isHtmx, respond, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { sanitizeFilename } from '../services/attachments';
import { flag, text, type FormInput } from '../services/form';
import { amountInput, formatMoney } from '../services/money';
import { requireManageablePriceBook, type PriceBook } from '../services/price-books';
import {
  discardPendingImport, loadPendingImport, MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, newImportToken, partPath, previewImport, runImport,
  savePendingImport, sweepOldImports, type ImportPreview,
} from '../services/price-import';
import type { PriceBookPart } from './price-book-extensions';

const MANAGE = 'manage_price_books';
const MB = 1024 * 1024;
const priceBookUrl = (id: number) => `/crm/price-books/${id}`;
const importUrl = (id: number) => `${priceBookUrl(id)}/import`;
const tokenParam = (req: Request) => String(req.params.token ?? '');

const tooLarge = () => new CrmError(413, `The file is larger than ${MAX_IMPORT_BYTES / MB} MB. Nothing was uploaded; split the file and import the parts.`, { file: `must be at most ${MAX_IMPORT_BYTES / MB} MB` });
const noFile = () => invalid('Choose a CSV file to upload.', { file: 'Choose a CSV file' });

/** The upload panel on the price book page, for those who manage price books. */
export const PRICE_IMPORT_PANEL: PriceBookPart = {
  id: 'price-import',
  view: 'price-import/panel',
  async load() {
    return { maxMb: MAX_IMPORT_BYTES / MB, maxRows: MAX_IMPORT_ROWS };
  },
};

/**
 * Streams the `file` part of a multipart upload to a temp file under the imports directory, at most
 * MAX_IMPORT_BYTES; over the limit the part is removed and the answer is 413.
 */
function receiveCsv(req: Request, dest: string): Promise<{ filename: string }> {
  return new Promise((resolve, reject) => {
    if (!req.is('multipart/form-data')) return reject(invalid('Send the file as multipart/form-data, in a field named "file".', { file: 'Choose a CSV file' }));
    const declared = Number(req.get('Content-Length'));
    if (Number.isFinite(declared) && declared > MAX_IMPORT_BYTES + MB) {
      req.resume();
      return reject(tooLarge());
    }
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { fileSize: MAX_IMPORT_BYTES + 1, files: 1, fields: 20, fieldSize: 8192, parts: 30 } });
    } catch {
      return reject(invalid('The upload could not be read.', { file: 'Choose a CSV file' }));
    }
    let written: Promise<void> | null = null;
    let filename = '';
    let failure: CrmError | null = null;
    let settled = false;
    const finish = async () => {
      if (settled) return;
      settled = true;
      try {
        if (written) await written;
      } catch {
        failure ??= invalid('The upload could not be stored.', { file: 'Choose a CSV file' });
      }
      if (failure || !written) {
        await fs.promises.rm(dest, { force: true }).catch(() => undefined);
        return reject(failure ?? noFile());
      }
      resolve({ filename });
    };
    parser.on('file', (field, file, info) => {
      if (field !== 'file' || written || !info.filename) return void file.resume();
      filename = sanitizeFilename(info.filename);
      const out = fs.createWriteStream(dest);
      written = new Promise<void>((ok, fail) => {
        out.on('finish', ok);
        out.on('error', fail);
      });
      written.catch(() => undefined);
      file.on('limit', () => {
        failure = tooLarge();
        file.unpipe(out);
        out.end();
        file.resume();
      });
      file.pipe(out);
    });
    parser.on('error', () => {
      failure ??= invalid('The upload could not be read: it ended early or was malformed.', { file: 'Choose a CSV file' });
      req.unpipe(parser);
      req.resume();
      void finish();
    });
    parser.on('close', () => void finish());
    req.on('aborted', () => {
      failure ??= invalid('The upload was interrupted.', { file: 'Choose a CSV file' });
      void finish();
    });
    req.pipe(parser);
  });
}

function uploadPage(ctx: CrmContext, priceBook: PriceBook, message: string | null, status: number, done: { imported: number; skipped: number } | null = null): PageResponse {
  return {
    title: `Import prices · ${priceBook.name}`,
    view: 'price-import/upload',
    status,
    locals: { priceBook, message, error: status >= 400, done, maxMb: MAX_IMPORT_BYTES / MB, maxRows: MAX_IMPORT_ROWS, priceBookUrl: priceBookUrl(priceBook.id) },
    json: status >= 400 ? { error: message } : { price_book_id: priceBook.id, max_bytes: MAX_IMPORT_BYTES, max_rows: MAX_IMPORT_ROWS, columns: ['product_code', 'product_name', 'unit', 'price', 'currency'] },
  };
}

function previewJson(preview: ImportPreview) {
  return {
    valid: preview.valid, invalid: preview.invalid, delimiter: preview.delimiter,
    rows: preview.rows.map((r) => ({
      line: r.line, product_code: r.product_code, product_name: r.product_name, unit: r.unit, price: r.price, currency: r.currency,
      price_minor: r.price_minor, product_id: r.product_id, create_product: r.create_product, new_product_name: r.new_product_name, action: r.action, old_price_minor: r.old_price_minor, errors: r.errors,
    })),
  };
}

function previewPage(priceBook: PriceBook, token: string, filename: string, preview: ImportPreview, message: string | null = null, status = 200, skipChecked = false): PageResponse {
  return {
    title: `Import preview · ${priceBook.name}`,
    view: 'price-import/preview',
    status,
    locals: {
      priceBook, token, filename, preview, message, error: status >= 400, skipChecked, formatMoney, amountInput,
      action: `${importUrl(priceBook.id)}/${token}`, priceBookUrl: priceBookUrl(priceBook.id),
    },
    json: status >= 400 ? { error: message, ...previewJson(preview) } : { token, filename, confirm_url: `${importUrl(priceBook.id)}/${token}`, ...previewJson(preview) },
  };
}

export function priceImportRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/price-books/:id/import', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const q = req.query as FormInput;
        const imported = text(q, 'imported');
        const done = /^\d{1,6}$/.test(imported) ? { imported: Number(imported), skipped: /^\d{1,6}$/.test(text(q, 'skipped')) ? Number(text(q, 'skipped')) : 0 } : null;
        await respond(ctx.host, req, res, uploadPage(ctx, priceBook, null, 200, done));
      },
    },
    {
      // Multipart: the CSRF token travels in the query string (`?_csrf=`), as for attachments.
      method: 'post', path: '/crm/price-books/:id/import', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const token = newImportToken();
        let preview: ImportPreview;
        let filename: string;
        try {
          await sweepOldImports(ctx.host.dataDir);
          const part = await partPath(ctx.host.dataDir, token);
          try {
            filename = (await receiveCsv(req, part)).filename;
            preview = await previewImport(ctx.host.knex, priceBook, await fs.promises.readFile(part));
          } catch (err) {
            await fs.promises.rm(part, { force: true }).catch(() => undefined);
            throw err;
          }
          await savePendingImport(ctx.host.dataDir, part, { token, priceBookId: priceBook.id, userId: ctx.user.id, filename, createdAt: new Date().toISOString() });
        } catch (err) {
          if (err instanceof CrmError && [413, 422].includes(err.status)) {
            if (err.status === 413) res.set('Connection', 'close');
            return respond(ctx.host, req, res, uploadPage(ctx, priceBook, err.message, err.status));
          }
          throw err;
        }
        if (wantsJson(req)) return void res.status(201).json(previewPage(priceBook, token, filename, preview).json);
        if (isHtmx(req)) return respond(ctx.host, req, res, previewPage(priceBook, token, filename, preview));
        res.redirect(303, `${importUrl(priceBook.id)}/${token}`);
      },
    },
    {
      method: 'get', path: '/crm/price-books/:id/import/:token', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const { meta, data } = await loadPendingImport(ctx, priceBook, tokenParam(req));
        await respond(ctx.host, req, res, previewPage(priceBook, meta.token, meta.filename, await previewImport(ctx.host.knex, priceBook, data)));
      },
    },
    {
      method: 'post', path: '/crm/price-books/:id/import/:token', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const { meta, data } = await loadPendingImport(ctx, priceBook, tokenParam(req));
        const skip = flag(formBody(req), 'skip_errors');
        try {
          const result = await runImport(ctx, priceBook, data, meta.filename, skip);
          await discardPendingImport(ctx.host.dataDir, meta.token);
          if (wantsJson(req)) return void res.json({ result });
          const done = `${importUrl(priceBook.id)}?imported=${result.imported}&skipped=${result.skipped}`;
          if (isHtmx(req)) {
            return respond(ctx.host, req, res, { ...uploadPage(ctx, priceBook, null, 200, { imported: result.imported, skipped: result.skipped }), trigger: 'crm:pricesImported' });
          }
          res.redirect(303, done);
        } catch (err) {
          if (err instanceof CrmError && err.status === 422) {
            const preview = await previewImport(ctx.host.knex, priceBook, data).catch(() => null);
            if (preview) return respond(ctx.host, req, res, previewPage(priceBook, meta.token, meta.filename, preview, err.message, 422, skip));
          }
          throw err;
        }
      },
    },
    {
      method: 'post', path: '/crm/price-books/:id/import/:token/discard', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const { meta } = await loadPendingImport(ctx, priceBook, tokenParam(req));
        await discardPendingImport(ctx.host.dataDir, meta.token);
        if (isHtmx(req)) return void res.set('HX-Redirect', priceBookUrl(priceBook.id)).status(204).end();
        if (wantsJson(req)) return void res.json({ discarded: meta.token });
        res.redirect(303, priceBookUrl(priceBook.id));
      },
    },
  ];
}
