import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, invalid, notFound } from '../http/errors';
import { respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import type { Account } from '../models/account';
import type { PersonalContact } from '../models/contact';
import type { Partner } from '../models/partner';
import { requireEditableContact, requireVisibleContact } from '../services/contacts';
import { canEditPartner, requireEditablePartner, requireVisiblePartner } from '../services/partners';
import { canEditAccount, requireEditableAccount, requireVisibleAccount } from '../services/accounts';
import { canManagePriceBooks, requireManageablePriceBook, requireVisiblePriceBook, type PriceBook } from '../services/price-books';
import type { Opportunity } from '../models/opportunity';
import { canEditOpportunity, requireEditableOpportunity, requireVisibleOpportunity } from '../services/opportunities';
import { opportunityLabelFor } from '../services/field-rules';
import {
  addAttachment, attachmentVersions, findAttachment, listAttachments, normalizeContentType, sanitizeFilename,
  type Attachment, type AttachmentFile, type AttachmentRecordType,
} from '../services/attachments';
import { TemplateRejected, readCapped, vetTemplateUpload, type TemplateReport } from '../services/documents/template-upload';
import { loadSettings } from '../services/settings';
import { newStorageKey, storageFor, type FileStorage, type StoredFile } from '../services/storage';

/**
 * Files on a kind of record (P7), described once so accounts, personal contacts and partners share the
 * routes, the list partial and the rules: visible records list and download, editable ones upload.
 */
export interface AttachmentKind<R extends { id: number }> {
  recordType: AttachmentRecordType;
  /** A global path with `:id`, e.g. `/crm/accounts/:id`; the routes hang below it at `/attachments`. */
  basePath: string;
  viewPermission: string;
  editPermission: string;
  /** The record if this user may see it, else throws notFound(): the same 404 for every route below. */
  loadVisible(ctx: CrmContext, id: number): Promise<R>;
  /** The record if this user may change it, else throws (404 if not visible, 403 if only visible). */
  loadEditable(ctx: CrmContext, id: number): Promise<R>;
  /** Whether to offer the upload form; by default: does loadEditable succeed. */
  canEdit?(ctx: CrmContext, record: R): Promise<boolean>;
  /** The record's name for headings, as this user may read it. */
  label(ctx: CrmContext, record: R): string | Promise<string>;
  /** Where a plain-form upload returns to (303); by default the record's attachments page. */
  returnUrl?(id: number): string;
  /** Journal type of the record, if not `recordType`. */
  journalType?: string;
  /** Runs on a received file before it is recorded; throwing a CrmError refuses it (its stored bytes are deleted). */
  vet?(ctx: CrmContext, file: { filename: string; contentType: string; read(): Promise<Buffer> }): Promise<void>;
}

export const attachmentsUrl = (kind: AttachmentKind<{ id: number }>, id: number): string => `${kind.basePath.replace(':id', String(id))}/attachments`;

const numericParam = (req: Request, name: string): number => {
  const raw = String(req.params[name] ?? '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};

const MB = 1024 * 1024;

async function maxAttachmentMb(ctx: CrmContext): Promise<number> {
  const n = Number((await loadSettings(ctx.host.knex)).max_attachment_mb);
  return Number.isInteger(n) && n > 0 ? n : 10;
}

export function attachmentJson(base: string, a: Attachment) {
  return {
    id: a.id, filename: a.filename, version: a.version, content_type: a.content_type, size: a.size, sha256: a.sha256,
    author_id: a.author_id, created_at: a.created_at, download_url: `${base}/${a.id}/download`, versions_url: `${base}/${a.id}/versions`,
  };
}

/** What `views/attachments/list.ejs` needs (plus `csrfToken`), for a tab or a page. */
export interface AttachmentListLocals {
  files: AttachmentFile[];
  base: string;
  canEdit: boolean;
  maxMb: number;
  users: Map<number, string>;
  message: string | null;
  error: boolean;
  /** The template check's findings when an uploaded template was refused. */
  report: TemplateReport | null;
}

async function mayEdit<R extends { id: number }>(ctx: CrmContext, kind: AttachmentKind<R>, record: R): Promise<boolean> {
  if (kind.canEdit) return kind.canEdit(ctx, record);
  try {
    await kind.loadEditable(ctx, record.id);
    return true;
  } catch (err) {
    if (err instanceof CrmError) return false;
    throw err;
  }
}

/** Locals for the list partial, for a record the caller already loaded as visible (e.g. a detail-page tab). */
export async function attachmentListLocals<R extends { id: number }>(
  ctx: CrmContext, kind: AttachmentKind<R>, record: R, message: string | null = null, error = false, report: TemplateReport | null = null,
): Promise<AttachmentListLocals> {
  return {
    files: await listAttachments(ctx.host.knex, kind.recordType, record.id),
    base: attachmentsUrl(kind, record.id),
    canEdit: await mayEdit(ctx, kind, record),
    maxMb: await maxAttachmentMb(ctx),
    users: new Map((await ctx.host.users()).map((u) => [u.id, u.name])),
    message, error, report,
  };
}

async function listPage<R extends { id: number }>(
  ctx: CrmContext, kind: AttachmentKind<R>, record: R, message: string | null = null, status = 200, report: TemplateReport | null = null,
): Promise<PageResponse> {
  const list = await attachmentListLocals(ctx, kind, record, message, status >= 400, report);
  const label = await kind.label(ctx, record);
  return {
    title: `Files · ${label}`,
    view: 'attachments/index',
    status,
    locals: { list, label, recordUrl: kind.basePath.replace(':id', String(record.id)) },
    json: status >= 400
      ? { error: message, ...(report ? { errors: report.errors, unknown_tokens: report.unknownTokens } : {}) }
      : {
        record: { type: kind.recordType, id: record.id }, max_attachment_mb: list.maxMb, can_upload: list.canEdit,
        files: list.files.map((f) => ({ filename: f.filename, latest: attachmentJson(list.base, f.latest), versions: f.versions.map((v) => attachmentJson(list.base, v)) })),
      },
  };
}

const tooLarge = (maxMb: number) => new CrmError(413, `The file is larger than the limit of ${maxMb} MB. Nothing was uploaded.`, { file: `must be at most ${maxMb} MB` });
const noFile = () => invalid('Choose a file to upload.', { file: 'Choose a file to upload' });

interface ReceivedUpload extends StoredFile {
  key: string;
  filename: string;
  contentType: string;
}

/**
 * Streams the `file` part of a multipart request into storage, counting and hashing it on the way. Over the
 * limit, the stored part is discarded (storage.put leaves nothing) and the answer is 413 naming the limit.
 */
function receiveUpload(req: Request, storage: FileStorage, maxMb: number): Promise<ReceivedUpload> {
  const maxBytes = maxMb * MB;
  return new Promise((resolve, reject) => {
    if (!req.is('multipart/form-data')) return reject(invalid('Send the file as multipart/form-data, in a field named "file".', { file: 'Choose a file to upload' }));
    // Far over the limit by its own account: refuse before reading it (the form fields add a little overhead).
    const declared = Number(req.get('Content-Length'));
    if (Number.isFinite(declared) && declared > maxBytes + MB) {
      req.resume();
      return reject(tooLarge(maxMb));
    }
    let parser: busboy.Busboy;
    try {
      // One byte over the limit: busboy flags a file that reaches exactly `fileSize` as truncated. The raw
      // filename (preservePath) goes to sanitizeFilename, which keeps the last path part.
      parser = busboy({ headers: req.headers, defParamCharset: 'utf8', preservePath: true, limits: { fileSize: maxBytes + 1, files: 1, fields: 20, fieldSize: 8192, parts: 30 } });
    } catch {
      return reject(invalid('The upload could not be read.', { file: 'Choose a file to upload' }));
    }
    let upload: Promise<ReceivedUpload> | null = null;
    let failure: CrmError | null = null;
    let settled = false;

    const finish = async () => {
      if (settled) return;
      settled = true;
      let received: ReceivedUpload | null;
      try {
        received = upload ? await upload : null;
      } catch (err) {
        return reject(err instanceof CrmError ? err : failure ?? err);
      }
      if (failure || !received) {
        if (received) await storage.delete(received.key).catch(() => undefined);
        return reject(failure ?? noFile());
      }
      resolve(received);
    };

    parser.on('file', (field, file, info) => {
      if (field !== 'file' || upload || !info.filename) {
        file.resume();
        return;
      }
      const key = newStorageKey();
      const filename = sanitizeFilename(info.filename);
      const contentType = normalizeContentType(info.mimeType);
      const guard = new PassThrough();
      file.on('limit', () => {
        failure = tooLarge(maxMb);
        guard.destroy(failure);
        file.resume();
      });
      file.pipe(guard);
      upload = storage.put(key, guard).then((stored) => ({ ...stored, key, filename, contentType }));
      upload.catch(() => undefined);
    });
    parser.on('error', () => {
      failure ??= invalid('The upload could not be read: it ended early or was malformed.', { file: 'Choose a file to upload' });
      req.unpipe(parser);
      req.resume();
      void finish();
    });
    parser.on('close', () => void finish());
    req.on('aborted', () => {
      failure ??= invalid('The upload was interrupted.', { file: 'Choose a file to upload' });
      void finish();
    });
    req.pipe(parser);
  });
}

/** Types a browser could run or render as a page are sent as plain bytes (they download either way). */
const ACTIVE_TYPES = /html|xml|svg|javascript|ecmascript|css|x-sh|wasm/;

async function sendAttachment(ctx: CrmContext, res: Response, attachment: Attachment): Promise<void> {
  let stream;
  try {
    stream = await storageFor(ctx.host).get(attachment.storage_key);
  } catch {
    throw notFound('File');
  }
  res.attachment(attachment.filename);
  res.type(ACTIVE_TYPES.test(attachment.content_type) ? 'application/octet-stream' : attachment.content_type);
  res.set({
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "default-src 'none'; sandbox",
    'Cache-Control': 'private, no-cache',
    'Content-Length': String(attachment.size),
  });
  try {
    await pipeline(stream, res);
  } catch (err) {
    // The client went away mid-download: nothing to answer, and not a server error.
    if ((err as { code?: string }).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err;
  }
}

/** The routes below `kind.basePath`: list, upload, download a version, versions of a name. */
export function attachmentRoutes<R extends { id: number }>(kind: AttachmentKind<R>): CrmRoute[] {
  const base = `${kind.basePath}/attachments`;
  const returnUrl = (id: number) => (kind.returnUrl ? kind.returnUrl(id) : attachmentsUrl(kind, id));

  return [
    {
      method: 'get', path: base, permission: kind.viewPermission,
      async handler(ctx, req, res) {
        const record = await kind.loadVisible(ctx, numericParam(req, 'id'));
        await respond(ctx.host, req, res, await listPage(ctx, kind, record));
      },
    },
    {
      method: 'post', path: base, permission: kind.editPermission,
      async handler(ctx, req, res) {
        const record = await kind.loadEditable(ctx, numericParam(req, 'id'));
        const maxMb = await maxAttachmentMb(ctx);
        const storage = storageFor(ctx.host);
        let saved: Attachment;
        try {
          const file = await receiveUpload(req, storage, maxMb);
          if (kind.vet) {
            await kind.vet(ctx, { filename: file.filename, contentType: file.contentType, read: async () => readCapped(await storage.get(file.key), file.size) })
              .catch(async (err: unknown) => {
                await storage.delete(file.key).catch(() => undefined);
                throw err;
              });
          }
          saved = await addAttachment(ctx.host.knex, storage, {
            recordType: kind.recordType, recordId: record.id, filename: file.filename, contentType: file.contentType,
            size: file.size, sha256: file.sha256, storageKey: file.key, authorId: ctx.user.id, journalType: kind.journalType,
          });
        } catch (err) {
          // A plain form gets its page back with the message; JSON and htmx get the error itself.
          if (err instanceof CrmError && [409, 413, 422].includes(err.status) && !wantsJson(req) && !req.get('HX-Request')) {
            if (err.status === 413) res.set('Connection', 'close');
            return respond(ctx.host, req, res, await listPage(ctx, kind, record, err.message, err.status, err instanceof TemplateRejected ? err.report : null));
          }
          throw err;
        }
        if (wantsJson(req)) return void res.status(201).json({ attachment: attachmentJson(attachmentsUrl(kind, record.id), saved) });
        await respondAfterChange(ctx.host, req, res, returnUrl(record.id), async () => ({
          ...(await listPage(ctx, kind, record, `Uploaded ${saved.filename} (version ${saved.version}).`)), trigger: 'crm:attachmentAdded',
        }));
      },
    },
    {
      method: 'get', path: `${base}/:attachmentId/download`, permission: kind.viewPermission,
      async handler(ctx, req, res) {
        const record = await kind.loadVisible(ctx, numericParam(req, 'id'));
        const attachment = await findAttachment(ctx.host.knex, kind.recordType, record.id, numericParam(req, 'attachmentId'));
        if (!attachment) throw notFound('File');
        await sendAttachment(ctx, res, attachment);
      },
    },
    {
      method: 'get', path: `${base}/:attachmentId/versions`, permission: kind.viewPermission,
      async handler(ctx, req, res) {
        const record = await kind.loadVisible(ctx, numericParam(req, 'id'));
        const attachment = await findAttachment(ctx.host.knex, kind.recordType, record.id, numericParam(req, 'attachmentId'));
        if (!attachment) throw notFound('File');
        const versions = await attachmentVersions(ctx.host.knex, kind.recordType, record.id, attachment.filename);
        const listBase = attachmentsUrl(kind, record.id);
        await respond(ctx.host, req, res, {
          title: `${attachment.filename} · versions`,
          view: 'attachments/versions',
          locals: {
            filename: attachment.filename, versions, base: listBase, label: await kind.label(ctx, record), recordUrl: kind.basePath.replace(':id', String(record.id)),
            users: new Map((await ctx.host.users()).map((u) => [u.id, u.name])),
          },
          json: { filename: attachment.filename, versions: versions.map((v) => attachmentJson(listBase, v)) },
        });
      },
    },
  ];
}

/** Accounts' files: the Files tab of the account page lists them; uploads return there. */
export const ACCOUNT_ATTACHMENTS: AttachmentKind<Account> = {
  recordType: 'account',
  basePath: '/crm/accounts/:id',
  viewPermission: 'view_accounts',
  editPermission: 'edit_accounts',
  loadVisible: requireVisibleAccount,
  loadEditable: requireEditableAccount,
  canEdit: canEditAccount,
  label: (_ctx, a) => a.name,
  returnUrl: (id) => `/crm/accounts/${id}?tab=files`,
};

export const CONTACT_ATTACHMENTS: AttachmentKind<PersonalContact> = {
  recordType: 'personal_contact',
  basePath: '/crm/personal-contacts/:id',
  viewPermission: 'view_personal_contacts',
  editPermission: 'edit_personal_contacts',
  loadVisible: requireVisibleContact,
  loadEditable: (ctx, id) => requireEditableContact(ctx, id),
  canEdit: (ctx, contact) => requireEditableContact(ctx, contact.id).then(() => true, () => false),
  label: (_ctx, c) => [c.first_name, c.last_name].filter(Boolean).join(' '),
  returnUrl: (id) => `/crm/personal-contacts/${id}?tab=files`,
};

export const PARTNER_ATTACHMENTS: AttachmentKind<Partner> = {
  recordType: 'partner',
  basePath: '/crm/partners/:id',
  viewPermission: 'view_partners',
  editPermission: 'edit_partners',
  loadVisible: requireVisiblePartner,
  loadEditable: (ctx, id) => requireEditablePartner(ctx, id),
  canEdit: (ctx, partner) => canEditPartner(ctx, partner),
  label: (_ctx, p) => p.name,
  returnUrl: (id) => `/crm/partners/${id}?tab=files`,
};

/** Price books' files (Q1): quote templates live here, listed in the Files section of the price book page. */
export const PRICE_BOOK_ATTACHMENTS: AttachmentKind<PriceBook> = {
  recordType: 'price_book',
  basePath: '/crm/price-books/:id',
  viewPermission: 'view_price_books',
  editPermission: 'manage_price_books',
  loadVisible: requireVisiblePriceBook,
  loadEditable: requireManageablePriceBook,
  canEdit: (ctx) => canManagePriceBooks(ctx),
  label: (_ctx, b) => b.name,
  returnUrl: (id) => `/crm/price-books/${id}#files`,
  vet: (ctx, file) => vetTemplateUpload(ctx, file.filename, file.contentType, file.read),
};

/** Opportunities' files: generated quote documents (Q8) are stored here as versions of "<quote number>.docx". */
export const OPPORTUNITY_ATTACHMENTS: AttachmentKind<Opportunity> = {
  recordType: 'opportunity',
  basePath: '/crm/opportunities/:id',
  viewPermission: 'view_opportunities',
  editPermission: 'edit_opportunities',
  loadVisible: requireVisibleOpportunity,
  loadEditable: requireEditableOpportunity,
  canEdit: canEditOpportunity,
  label: opportunityLabelFor,
};
