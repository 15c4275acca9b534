import type { CrmContext } from '../../http/guard';
import { CrmError } from '../../http/errors';
import { DocxRefused, checkTemplate, type TemplateCheck } from './render';
import { customFieldTokens } from './quote-source';

export const DOCX_TYPE = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

/** A file meant as a Word template: by its name or by the type the browser sent. */
export const isWordTemplate = (filename: string, contentType: string): boolean => /\.docx$/i.test(filename) || contentType === DOCX_TYPE;

/** A template check's findings, with the file they are about. */
export interface TemplateReport extends TemplateCheck {
  filename: string;
}

/** Reads a stream into memory, refusing it once it passes `max` bytes. */
export async function readCapped(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new DocxRefused(`The template is larger than ${Math.round(max / 1024 / 1024)} MB.`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The check of an uploaded template, against the token vocabulary and the custom fields that exist now. */
export async function checkUploadedTemplate(ctx: CrmContext, filename: string, bytes: Buffer): Promise<TemplateReport> {
  return { ...checkTemplate(bytes, { customFieldTokens: await customFieldTokens(ctx) }), filename };
}

/** An upload refused because its template check found problems; the report says which, and where. */
export class TemplateRejected extends CrmError {
  constructor(readonly report: TemplateReport) {
    const counts = [
      report.errors.length ? `${report.errors.length} syntax error${report.errors.length === 1 ? '' : 's'}` : '',
      report.unknownTokens.length ? `${report.unknownTokens.length} unknown token${report.unknownTokens.length === 1 ? '' : 's'}` : '',
    ].filter(Boolean).join(' and ');
    super(422, `${report.filename} was not stored: the template check found ${counts}. Fix them in Word and upload it again.`,
      { file: 'has template errors' }, { errors: report.errors, unknown_tokens: report.unknownTokens });
  }
}

/**
 * Q9: a Word template is checked when it is uploaded, so only templates that pass can be chosen when a quote
 * document is made. Other files pass untouched. Throws a 422 naming the problem, or TemplateRejected.
 */
export async function vetTemplateUpload(ctx: CrmContext, filename: string, contentType: string, read: () => Promise<Buffer>): Promise<void> {
  if (!isWordTemplate(filename, contentType)) return;
  let report: TemplateReport;
  try {
    report = await checkUploadedTemplate(ctx, filename, await read());
  } catch (err) {
    if (err instanceof DocxRefused) throw new CrmError(422, `${filename} was not stored: ${err.message}`, { file: err.message });
    throw err;
  }
  if (report.errors.length || report.unknownTokens.length) throw new TemplateRejected(report);
}
