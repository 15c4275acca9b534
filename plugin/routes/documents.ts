import fs from 'node:fs';
import path from 'node:path';
import busboy from 'busboy';
import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, invalid, notFound } from '../http/errors';
import { respond, wantsJson, isHtmx, type PageResponse } from '../http/respond';
import { idParam } from '../http/params';
import type { Opportunity } from '../models/opportunity';
import { TEMPLATES_DIR } from '../paths';
import { addAttachment, findAttachment, listAttachmentsOf, sanitizeFilename, type Attachment } from '../services/attachments';
import { quoteDocumentInput, quotesForDocuments } from '../services/documents/quote-source';
import { DOCX_LIMITS, DocxRefused, TemplateError, type TemplateProblem } from '../services/documents/render';
import { DOCX_TYPE, checkUploadedTemplate, readCapped, type TemplateReport } from '../services/documents/template-upload';
import { renderWhileReading } from '../services/documents/render-pool';
import { TOKEN_REFERENCE, buildTokenData, tokenValues } from '../services/documents/token-data';
import { fieldRulesFor, opportunityLabel, visibleOpportunityFields } from '../services/field-rules';
import { text, type FormInput } from '../services/form';
import { requireEditableOpportunity, requireVisibleOpportunity } from '../services/opportunities';
import { priceBooksForProject } from '../services/price-books';
import type { Quote } from '../services/quotes';
import { newStorageKey, storageFor } from '../services/storage';
import { OPPORTUNITY_ATTACHMENTS, attachmentJson, attachmentsUrl } from './attachments';

/**
 * Quote documents (SPEC Q8) and the token reference and template check (Q9). A document is made from a quote
 * of the opportunity and a Word template — the default one in templates/, or a .docx attached to a price book
 * of the opportunity's project — and stored as the next version of "<quote number>.docx" among the
 * opportunity's files. A template with errors answers 422 with each error and stores nothing.
 */

export const DEFAULT_TEMPLATE = path.join(TEMPLATES_DIR, 'quote-default.docx');

export interface TemplateChoice {
  id: string;
  label: string;
  priceBookId: number | null;
  attachmentId: number | null;
}

const DEFAULT_CHOICE: Readonly<TemplateChoice> = Object.freeze({ id: 'default', label: 'Default quote template', priceBookId: null, attachmentId: null });

/** The templates this opportunity may use: the default one, then the .docx files of its project's price books. */
export async function templateChoices(ctx: CrmContext, opp: Opportunity): Promise<TemplateChoice[]> {
  const out: TemplateChoice[] = [{ ...DEFAULT_CHOICE }];
  const project = await ctx.host.projectById(opp.project_id);
  if (!project) return out;
  const books = await priceBooksForProject(ctx, project);
  const filesOf = await listAttachmentsOf(ctx.host.knex, 'price_book', books.map((book) => book.id));
  for (const book of books) {
    for (const file of filesOf.get(book.id) ?? []) {
      if (!/\.docx$/i.test(file.filename)) continue;
      out.push({ id: `attachment-${file.latest.id}`, label: `${book.name}: ${file.filename} (version ${file.latest.version})`, priceBookId: book.id, attachmentId: file.latest.id });
    }
  }
  return out;
}

/** The template chosen by its id, if this opportunity may use it. The default is always offered: only another choice reads the price books. */
async function chosenTemplate(ctx: CrmContext, opp: Opportunity, id: string): Promise<TemplateChoice | undefined> {
  if (id === DEFAULT_CHOICE.id) return DEFAULT_CHOICE;
  return (await templateChoices(ctx, opp)).find((t) => t.id === id);
}

let defaultTemplate: Buffer | Promise<Buffer> | null = null;

/**
 * The default template ships with the plugin and does not change while it runs: read once (again after a failure),
 * then handed out as the bytes themselves, so the worker can start opening it before the quote is read.
 */
function defaultTemplateBytes(): Buffer | Promise<Buffer> {
  defaultTemplate ??= fs.promises.readFile(DEFAULT_TEMPLATE).then((bytes) => (defaultTemplate = bytes), (err: unknown) => {
    defaultTemplate = null;
    throw err;
  });
  return defaultTemplate;
}

function templateBytes(ctx: CrmContext, choice: TemplateChoice): Buffer | Promise<Buffer> {
  if (!choice.attachmentId || !choice.priceBookId) return defaultTemplateBytes();
  return storedTemplateBytes(ctx, choice.priceBookId, choice.attachmentId);
}

async function storedTemplateBytes(ctx: CrmContext, priceBookId: number, attachmentId: number): Promise<Buffer> {
  const attachment = await findAttachment(ctx.host.knex, 'price_book', priceBookId, attachmentId);
  if (!attachment) throw notFound('Template');
  try {
    return await readCapped(await storageFor(ctx.host).get(attachment.storage_key), DOCX_LIMITS.maxBytes);
  } catch (err) {
    if (err instanceof DocxRefused) throw err;
    throw notFound('Template');
  }
}

// ---- generate -------------------------------------------------------------------------------------------------

interface GenerateState {
  values: { quote_id: string; template: string };
  errors: Record<string, string>;
  problems: TemplateProblem[];
  message: string | null;
  generated: { attachment: Attachment; url: string } | null;
}

const emptyState = (quotes: Quote[]): GenerateState => ({
  values: { quote_id: quotes[0] ? String(quotes[0].id) : '', template: DEFAULT_CHOICE.id }, errors: {}, problems: [], message: null, generated: null,
});

async function generatePage(ctx: CrmContext, opp: Opportunity, state: GenerateState | null, status = 200): Promise<PageResponse> {
  const quotes = await quotesForDocuments(ctx, opp);
  const templates = await templateChoices(ctx, opp);
  const s = state ?? emptyState(quotes);
  const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const label = opportunityLabel(opp, rules);
  return {
    title: `Generate quote document · ${label}`,
    view: 'documents/new',
    status,
    locals: { opp, oppLabel: label, quotes, templates, state: s, filesUrl: attachmentsUrl(OPPORTUNITY_ATTACHMENTS, opp.id) },
    json: status >= 400
      ? { error: s.message, fields: s.errors, problems: s.problems }
      : {
        opportunity: visibleOpportunityFields({ id: opp.id, name: opp.name }, rules),
        quotes: quotes.map((q) => ({ id: q.id, number: q.number, name: q.name, is_active: q.is_active })),
        templates: templates.map((t) => ({ id: t.id, label: t.label })),
        generated: s.generated ? attachmentJson(attachmentsUrl(OPPORTUNITY_ATTACHMENTS, opp.id), s.generated.attachment) : null,
      },
  };
}

/** Makes the document and stores it; throws CrmError 422 (with the template's problems) when it cannot. */
async function generate(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<{ attachment: Attachment; state: GenerateState }> {
  const values = { quote_id: text(input, 'quote_id'), template: text(input, 'template') || DEFAULT_CHOICE.id };
  const [quotes, choice] = await Promise.all([quotesForDocuments(ctx, opp), chosenTemplate(ctx, opp, values.template)]);
  const state = emptyState(quotes);
  state.values = values;
  const quote = quotes.find((q) => String(q.id) === state.values.quote_id);
  if (!quote) state.errors.quote_id = quotes.length ? 'Choose one of this opportunity\'s quotes' : 'This opportunity has no quote yet: create one first';
  if (!choice) state.errors.template = 'Choose one of the templates listed';
  if (!quote || !choice) throw Object.assign(invalid('The document was not made: fix the fields marked below.', state.errors), { state });

  let bytes: Buffer;
  try {
    // The template is read and opened while the quote is gathered.
    bytes = await renderWhileReading(templateBytes(ctx, choice), () => quoteDocumentInput(ctx, { quote, opportunity: opp }));
  } catch (err) {
    if (err instanceof TemplateError) {
      state.problems = err.problems;
      throw Object.assign(invalid(`The template "${choice.label}" has errors; nothing was stored. Fix them in Word and upload the template again.`, { template: 'has errors' }), { state });
    }
    if (err instanceof DocxRefused) {
      throw Object.assign(invalid(`The template "${choice.label}" cannot be used: ${err.message}`, { template: err.message }), { state });
    }
    throw err;
  }
  const storage = storageFor(ctx.host);
  const key = newStorageKey();
  const stored = await storage.put(key, bytes);
  const attachment = await addAttachment(ctx.host.knex, storage, {
    recordType: 'opportunity', recordId: opp.id, filename: sanitizeFilename(`${quote.number}.docx`), contentType: DOCX_TYPE,
    size: stored.size, sha256: stored.sha256, storageKey: key, authorId: ctx.user.id, journalType: 'opportunity',
  });
  return { attachment, state };
}

const downloadUrl = (oppId: number, attachment: Attachment) => `${attachmentsUrl(OPPORTUNITY_ATTACHMENTS, oppId)}/${attachment.id}/download`;

// ---- token reference ------------------------------------------------------------------------------------------

async function tokensPage(ctx: CrmContext, req: Request): Promise<PageResponse> {
  const raw = String(req.query.opportunity ?? '').trim();
  let opp: Opportunity | null = null;
  let seen: { id: number; name?: string } | null = null;
  let quote: Quote | null = null;
  let quotes: Quote[] = [];
  let rows: { token: string; description: string; loop?: string; value: string | null }[] = TOKEN_REFERENCE.map((t) => ({ token: t.token, description: t.description, loop: t.loop, value: null }));
  if (raw) {
    opp = await requireVisibleOpportunity(ctx, /^\d{1,10}$/.test(raw) ? Number(raw) : 0);
    seen = visibleOpportunityFields({ id: opp.id, name: opp.name }, await fieldRulesFor(ctx, opp.project_id, opp.status_id));
    quotes = await quotesForDocuments(ctx, opp);
    const wanted = String(req.query.quote ?? '');
    quote = quotes.find((q) => String(q.id) === wanted) ?? quotes[0] ?? null;
    if (quote) rows = tokenValues(buildTokenData(await quoteDocumentInput(ctx, { quote, opportunity: opp })));
  }
  return {
    title: 'Quote template tokens',
    view: 'documents/tokens',
    locals: { opp, oppLabel: seen ? opportunityLabel(seen) : null, quote, quotes, rows, requested: raw },
    json: {
      opportunity: seen, quote: quote ? { id: quote.id, number: quote.number } : null,
      tokens: rows.map((r) => ({ token: r.token, loop: r.loop ?? null, description: r.description, value: r.value })),
    },
  };
}

// ---- template check -------------------------------------------------------------------------------------------

/** The `file` part of a multipart upload, in memory (templates are small; the cap is DOCX_LIMITS.maxBytes). */
function receiveTemplate(req: Request): Promise<{ filename: string; bytes: Buffer }> {
  return new Promise((resolve, reject) => {
    if (!req.is('multipart/form-data')) return reject(invalid('Send the template as multipart/form-data, in a field named "file".', { file: 'Choose a .docx file' }));
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', preservePath: true, limits: { fileSize: DOCX_LIMITS.maxBytes + 1, files: 1, fields: 10, fieldSize: 8192, parts: 20 } });
    } catch {
      return reject(invalid('The upload could not be read.', { file: 'Choose a .docx file' }));
    }
    let result: Promise<{ filename: string; bytes: Buffer }> | null = null;
    let failure: CrmError | null = null;
    parser.on('file', (field, file, info) => {
      if (field !== 'file' || result || !info.filename) return void file.resume();
      const filename = sanitizeFilename(info.filename);
      const chunks: Buffer[] = [];
      file.on('data', (c: Buffer) => chunks.push(c));
      file.on('limit', () => { failure = invalid(`The template is larger than ${DOCX_LIMITS.maxBytes / 1024 / 1024} MB.`, { file: 'is too large' }); });
      // Settles however the part ends (end, close or error), so the request never waits on a stream that stopped.
      result = new Promise((done) => {
        const finish = () => done({ filename, bytes: Buffer.concat(chunks) });
        file.once('end', finish);
        file.once('close', finish);
        file.once('error', finish);
      });
    });
    parser.on('error', () => reject(invalid('The upload could not be read: it ended early or was malformed.', { file: 'Choose a .docx file' })));
    parser.on('close', async () => {
      if (failure) return reject(failure);
      if (!result) return reject(invalid('Choose a .docx file to check.', { file: 'Choose a .docx file' }));
      resolve(await result);
    });
    req.pipe(parser);
  });
}

function checkPage(report: TemplateReport | null, refused: string | null, status = 200): PageResponse {
  return {
    title: 'Check a quote template',
    view: 'documents/check',
    status,
    locals: { report, refused },
    json: refused
      ? { error: refused }
      : report ? { filename: report.filename, ok: !report.errors.length && !report.unknownTokens.length, errors: report.errors, unknown_tokens: report.unknownTokens, tags: report.tags } : {},
  };
}

// ---- routes ---------------------------------------------------------------------------------------------------

export function documentRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/opportunities/:id/documents/new', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        await respond(ctx.host, req, res, await generatePage(ctx, opp, null));
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/documents', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        let result: { attachment: Attachment; state: GenerateState };
        try {
          result = await generate(ctx, opp, req.body as FormInput);
        } catch (err) {
          const state = (err as { state?: GenerateState }).state;
          if (err instanceof CrmError && state) {
            state.message = err.message;
            return respond(ctx.host, req, res, await generatePage(ctx, opp, state, err.status));
          }
          throw err;
        }
        const { attachment, state } = result;
        const url = downloadUrl(opp.id, attachment);
        if (wantsJson(req)) {
          return void res.status(201).json({ attachment: attachmentJson(attachmentsUrl(OPPORTUNITY_ATTACHMENTS, opp.id), attachment) });
        }
        if (!isHtmx(req)) return void res.redirect(303, url);
        state.generated = { attachment, url };
        state.message = `Made ${attachment.filename} (version ${attachment.version}).`;
        await respond(ctx.host, req, res, { ...(await generatePage(ctx, opp, state)), trigger: 'crm:attachmentAdded' });
      },
    },
    {
      method: 'get', path: '/crm/settings/tokens', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await tokensPage(ctx, req));
      },
    },
    {
      method: 'get', path: '/crm/settings/templates/check', permission: 'manage_price_books',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, checkPage(null, null));
      },
    },
    {
      method: 'post', path: '/crm/settings/templates/check', permission: 'manage_price_books',
      async handler(ctx, req, res) {
        let upload: { filename: string; bytes: Buffer };
        try {
          upload = await receiveTemplate(req);
        } catch (err) {
          if (err instanceof CrmError) return respond(ctx.host, req, res, checkPage(null, err.message, err.status));
          throw err;
        }
        let report: TemplateReport;
        try {
          report = await checkUploadedTemplate(ctx, upload.filename, upload.bytes);
        } catch (err) {
          if (err instanceof DocxRefused) return respond(ctx.host, req, res, checkPage(null, `${upload.filename}: ${err.message}`, 422));
          throw err;
        }
        const clean = !report.errors.length && !report.unknownTokens.length;
        await respond(ctx.host, req, res, checkPage(report, null, clean ? 200 : 422));
      },
    },
  ];
}
