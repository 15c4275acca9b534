import type { Knex } from 'knex';
import { isPg } from '../../migrations/dialect';
import { CrmError } from '../http/errors';
import { validId } from './form';
import { journal } from './journal';
import type { FileStorage } from './storage';

/** The records that carry files (P7); the value is stored in `crm_attachments.record_type`. */
export type AttachmentRecordType = 'account' | 'personal_contact' | 'partner' | 'price_book' | 'opportunity';

export interface Attachment {
  id: number;
  record_type: string;
  record_id: number;
  filename: string;
  version: number;
  content_type: string;
  size: number;
  sha256: string;
  storage_key: string;
  author_id: number | null;
  created_at: string;
}

/** One name on a record: its newest version and every version, newest first. */
export interface AttachmentFile {
  filename: string;
  latest: Attachment;
  versions: Attachment[];
}

export interface NewAttachment {
  recordType: AttachmentRecordType;
  recordId: number;
  /** Already sanitized (`sanitizeFilename`). */
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  /** Where the bytes already are in the storage; deleted again if the row cannot be written. */
  storageKey: string;
  authorId: number | null;
  /** The journal's record type, when it differs from `recordType`. */
  journalType?: string;
}

const FILENAME_MAX = 255;
// C0/C1 controls, and bidi overrides that can make "invoice‮fdp.exe" read as "invoiceexe.pdf".
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A filename fit to show and to offer as a download name: the last path part only (no `../`, no `C:\`),
 * no control characters, at most 255 characters (the extension kept). It is never used as a path: files
 * are stored under generated keys.
 */
export function sanitizeFilename(raw: string): string {
  let name = raw.normalize('NFC').replace(UNSAFE_CHARS, '');
  name = name.split(/[/\\]/).pop() ?? '';
  name = name.trim();
  if (!name || /^\.+$/.test(name)) return 'file';
  const chars = Array.from(name);
  if (chars.length <= FILENAME_MAX) return name;
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 ? Array.from(name.slice(dot)) : [];
  if (ext.length > 0 && ext.length <= 20) return Array.from(name.slice(0, dot)).slice(0, FILENAME_MAX - ext.length).join('') + ext.join('');
  return chars.slice(0, FILENAME_MAX).join('');
}

const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,60}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,60}$/;

/** The type the browser declared, if it looks like a plain media type; otherwise generic bytes. */
export function normalizeContentType(raw: string | undefined): string {
  const type = String(raw ?? '').split(';')[0].trim().toLowerCase();
  return CONTENT_TYPE.test(type) ? type : 'application/octet-stream';
}

function timestamp(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  const s = String(v ?? '');
  // SQLite's CURRENT_TIMESTAMP is UTC without a zone: "2026-11-23 10:00:00".
  return /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(s) ? `${s.replace(' ', 'T')}Z` : s;
}

function normalize(row: Record<string, unknown>): Attachment {
  return {
    id: Number(row.id), record_type: String(row.record_type), record_id: Number(row.record_id), filename: String(row.filename),
    version: Number(row.version), content_type: String(row.content_type), size: Number(row.size), sha256: String(row.sha256),
    storage_key: String(row.storage_key), author_id: row.author_id === null || row.author_id === undefined ? null : Number(row.author_id),
    created_at: timestamp(row.created_at),
  };
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(String(e?.message ?? ''));
}

async function insertNextVersion(knex: Knex, input: NewAttachment): Promise<Attachment> {
  if (isPg(knex)) return insertNextVersionAtOnce(knex, input);
  return knex.transaction(async (trx) => {
    const where = { record_type: input.recordType, record_id: input.recordId, filename: input.filename };
    const [{ max }] = await trx('crm_attachments').where(where).max({ max: 'version' });
    const version = Number(max ?? 0) + 1;
    const [row] = await trx('crm_attachments').insert({
      ...where, version, content_type: input.contentType, size: input.size, sha256: input.sha256,
      storage_key: input.storageKey, author_id: input.authorId,
    }).returning('*');
    await journal(trx, {
      type: input.journalType ?? input.recordType, id: input.recordId, userId: input.authorId, action: 'update',
      changes: [{ field: 'attachment', old: null, new: `${input.filename} v${version}` }],
    });
    return normalize(row as Record<string, unknown>);
  });
}

/**
 * The same on PostgreSQL in one statement: data-modifying CTEs run once and all or nothing, so the version, the
 * row and its journal entry (as `journal` writes it) need no transaction and its six round trips. Every quote
 * document is stored through here.
 */
async function insertNextVersionAtOnce(knex: Knex, input: NewAttachment): Promise<Attachment> {
  const result: { rows: Record<string, unknown>[] } = await knex.raw(`
    with next as (
      select coalesce(max(version), 0) + 1 as version from crm_attachments
      where record_type = :recordType and record_id = :recordId and filename = :filename
    ), added as (
      insert into crm_attachments (record_type, record_id, filename, version, content_type, size, sha256, storage_key, author_id)
      select :recordType, cast(:recordId as integer), :filename, next.version, :contentType, cast(:size as bigint), :sha256, :storageKey,
        cast(:authorId as integer)
      from next
      returning *
    ), entry as (
      insert into crm_journals (journalized_type, journalized_id, user_id, action, notes)
      select :journalType, added.record_id, added.author_id, 'update', '' from added
      returning id
    ), detail as (
      insert into crm_journal_details (journal_id, field, old_value, new_value)
      select entry.id, 'attachment', null, added.filename || ' v' || added.version from entry, added
    )
    select * from added`, {
    recordType: input.recordType, recordId: input.recordId, filename: input.filename, contentType: input.contentType, size: input.size,
    sha256: input.sha256, storageKey: input.storageKey, authorId: input.authorId, journalType: input.journalType ?? input.recordType,
  });
  return normalize(result.rows[0]);
}

/**
 * Records a file already put in `storage` as the next version of its name on the record (P7), journaled on
 * the record in the same transaction. Two uploads of one name at the same moment race for the version
 * number (the unique index decides): the loser retries once, then gives up with 409. If the row cannot be
 * written, the stored file is deleted, so nothing is left without its row.
 */
export async function addAttachment(knex: Knex, storage: FileStorage, input: NewAttachment): Promise<Attachment> {
  try {
    try {
      return await insertNextVersion(knex, input);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      try {
        return await insertNextVersion(knex, input);
      } catch (again) {
        if (!isUniqueViolation(again)) throw again;
        throw new CrmError(409, `Someone else uploaded "${input.filename}" at the same moment. Upload it again to add it as a new version.`);
      }
    }
  } catch (err) {
    await storage.delete(input.storageKey).catch(() => undefined);
    throw err;
  }
}

/** Every file on the record, by name (A–Z), each with its versions, newest first. */
export async function listAttachments(knex: Knex, recordType: AttachmentRecordType, recordId: number): Promise<AttachmentFile[]> {
  return (await listAttachmentsOf(knex, recordType, [recordId])).get(recordId) ?? [];
}

/**
 * The files of several records of one type in one read (a project's price books offer their templates together),
 * by record id; records without files are absent. At most 5,000 versions for each record asked for.
 */
export async function listAttachmentsOf(knex: Knex, recordType: AttachmentRecordType, recordIds: readonly number[]): Promise<Map<number, AttachmentFile[]>> {
  const files = new Map<number, AttachmentFile[]>();
  if (!recordIds.length) return files;
  const rows = (await knex('crm_attachments').where({ record_type: recordType }).whereIn('record_id', recordIds)
    .orderBy([{ column: 'record_id', order: 'asc' }, { column: 'filename', order: 'asc' }, { column: 'version', order: 'desc' }])
    .limit(5000 * recordIds.length)).map(normalize);
  // In this order a name's versions are adjacent, newest first.
  for (const row of rows) {
    const ofRecord = files.get(row.record_id) ?? [];
    if (!ofRecord.length) files.set(row.record_id, ofRecord);
    const last = ofRecord.at(-1);
    if (last?.filename === row.filename) last.versions.push(row);
    else ofRecord.push({ filename: row.filename, latest: row, versions: [row] });
  }
  for (const ofRecord of files.values()) ofRecord.sort((x, y) => x.filename.localeCompare(y.filename));
  return files;
}

/** One attachment, only if it belongs to that record: an id from another record is not found. */
export async function findAttachment(knex: Knex, recordType: AttachmentRecordType, recordId: number, attachmentId: number): Promise<Attachment | null> {
  if (!validId(attachmentId)) return null;
  const row = await knex('crm_attachments').where({ id: attachmentId, record_type: recordType, record_id: recordId }).first();
  return row ? normalize(row) : null;
}

/** The versions of one name on a record, newest first (empty if there is no such file). */
export async function attachmentVersions(knex: Knex, recordType: AttachmentRecordType, recordId: number, filename: string): Promise<Attachment[]> {
  return (await knex('crm_attachments').where({ record_type: recordType, record_id: recordId, filename }).orderBy('version', 'desc')).map(normalize);
}
