import zlib from 'node:zlib';
import Docxtemplater from 'docxtemplater';
import PizZip from 'pizzip';
import { STORE, packDocx, packedData, templateSource, type TemplatePart, type TemplateSource } from './docx-pack';
import { restrictedParser, parseTag, type FilterOptions } from './parser';
import { FAMILY_PREFIXES, LOOP_TOKENS, ROOT_TOKENS, customFieldSlug, type TokenData } from './token-data';

/**
 * Word templates in, filled Word documents out (SPEC Q8/Q9). Every template is checked before it is opened
 * (a real .docx, not a renamed PDF, a zip bomb or an encrypted file), rendered with the restricted parser
 * (./parser.ts), and every docxtemplater error comes back as a list of { tag, message, where }.
 *
 * Rendering is synchronous CPU work: the server renders on a worker thread (./render-pool.ts) so a quote of
 * thousands of lines never holds its event loop; the limits below (template size, unpacked size, entries)
 * bound the worst case per document.
 */

export const DOCX_LIMITS = {
  /** Largest template accepted (bytes). */
  maxBytes: 10 * 1024 * 1024,
  /** Sum of the unpacked sizes of every entry (as declared, and each proven before anything else unpacks it). */
  maxUnpackedBytes: 60 * 1024 * 1024,
  maxEntries: 2000,
  /** An entry that unpacks to more than this many times its packed size (and over 1 MB) is a bomb. */
  maxRatio: 200,
};

export interface TemplateProblem {
  /** The tag as written, without its braces ('' when the problem is not one tag). */
  tag: string;
  message: string;
  /** Part and paragraph: "document body, paragraph 3", "header, paragraph 1". */
  where: string;
}

/** The template cannot be used: syntax errors, each naming its tag and place. */
export class TemplateError extends Error {
  constructor(readonly problems: TemplateProblem[]) {
    super(`The template has ${problems.length} error${problems.length === 1 ? '' : 's'}: ${problems.map((p) => `${p.message} (${p.where})`).join('; ')}`);
    this.name = 'TemplateError';
  }
}

/** The file is not a usable .docx at all (wrong type, too big, a bomb, encrypted). */
export class DocxRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocxRefused';
  }
}

const CFB_MAGIC = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
const DAMAGED_ZIP = 'This file is not a Word .docx document (the zip is damaged).';
const UNREADABLE_ZIP = 'This file is not a Word .docx document (the zip cannot be read).';

/**
 * Reads the zip's central directory and refuses what is not a plain .docx, then unpacks each part once with zlib
 * to prove it holds exactly the size it declares, so the limits hold for what pizzip will really unpack.
 */
export function validateDocx(buffer: Buffer, limits = DOCX_LIMITS): PizZip {
  return checkedZip(buffer, limits).zip;
}

/** validateDocx, with the parts as the central directory lists them (for packing the filled document). */
function checkedZip(buffer: Buffer, limits: typeof DOCX_LIMITS): { zip: PizZip; parts: Map<string, TemplatePart> } {
  if (!Buffer.isBuffer(buffer) || buffer.length === 0) throw new DocxRefused('The file is empty: choose a Word .docx document.');
  if (buffer.length > limits.maxBytes) throw new DocxRefused(`The template is larger than ${Math.round(limits.maxBytes / 1024 / 1024)} MB.`);
  if (buffer.subarray(0, 8).equals(CFB_MAGIC)) {
    throw new DocxRefused('This document is encrypted (or is an old binary .doc file): save it in Word as a .docx without a password and upload it again.');
  }
  if (buffer.subarray(0, 5).toString('latin1') === '%PDF-') throw new DocxRefused('This is a PDF file, not a Word document: choose a .docx file.');
  if (buffer.readUInt32LE(0) !== 0x04034b50) throw new DocxRefused('This file is not a Word .docx document.');

  // End of central directory: the last record, at most 64 KiB of comment after it.
  let eocd = -1;
  for (let i = buffer.length - 22; i >= Math.max(0, buffer.length - 22 - 0xffff); i--) {
    if (buffer.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DocxRefused(DAMAGED_ZIP);
  const entries = buffer.readUInt16LE(eocd + 10);
  const cdSize = buffer.readUInt32LE(eocd + 12);
  const cdOffset = buffer.readUInt32LE(eocd + 16);
  if (entries === 0xffff || cdOffset === 0xffffffff) throw new DocxRefused('The document has too many parts to be a quote template.');
  if (entries > limits.maxEntries) throw new DocxRefused(`The document has ${entries} parts; a template may have at most ${limits.maxEntries}.`);
  // pizzip must read the very directory checked here: it reads one that does not end where the end record starts
  // at shifted offsets, switches to zip64 on any disk field at its maximum, and reads records past the count.
  const oneDisk = buffer.readUInt16LE(eocd + 4) === 0 && buffer.readUInt16LE(eocd + 6) === 0 && buffer.readUInt16LE(eocd + 8) === entries;
  if (!oneDisk || cdOffset + cdSize !== eocd) throw new DocxRefused(DAMAGED_ZIP);

  const listed: [string, TemplatePart][] = [];
  let unpacked = 0;
  let pos = cdOffset;
  for (let n = 0; n < entries; n++) {
    if (pos + 46 > eocd || buffer.readUInt32LE(pos) !== 0x02014b50) throw new DocxRefused(DAMAGED_ZIP);
    const flags = buffer.readUInt16LE(pos + 8);
    const packed = buffer.readUInt32LE(pos + 20);
    const size = buffer.readUInt32LE(pos + 24);
    const nameLength = buffer.readUInt16LE(pos + 28);
    const extraLength = buffer.readUInt16LE(pos + 30);
    const commentLength = buffer.readUInt16LE(pos + 32);
    const name = buffer.subarray(pos + 46, pos + 46 + nameLength).toString('utf8');
    if (flags & 0x1) throw new DocxRefused('This document is encrypted: remove the password in Word and upload it again.');
    unpacked += size;
    if (unpacked > limits.maxUnpackedBytes) throw new DocxRefused('The document unpacks to far more than a template can be (a zip bomb?): refused.');
    if (size > 1024 * 1024 && size > Math.max(packed, 1) * limits.maxRatio) throw new DocxRefused(`The part ${name} is compressed suspiciously well (a zip bomb?): refused.`);
    listed.push([name, {
      method: buffer.readUInt16LE(pos + 10), dosTime: buffer.readUInt16LE(pos + 12), dosDate: buffer.readUInt16LE(pos + 14),
      crc: buffer.readUInt32LE(pos + 16), packedSize: packed, size, localOffset: buffer.readUInt32LE(pos + 42),
    }]);
    pos += 46 + nameLength + extraLength + commentLength;
  }
  if (pos !== eocd) throw new DocxRefused(DAMAGED_ZIP);
  const parts = new Map(listed);
  if (!parts.has('word/document.xml')) throw new DocxRefused('This zip file is not a Word document (it has no word/document.xml).');
  if (!parts.has('[Content_Types].xml')) throw new DocxRefused('This file is not a Word .docx document (it has no [Content_Types].xml).');
  for (const [name, part] of listed) {
    const packed = packedData(buffer, part);
    if (!packed) throw new DocxRefused(UNREADABLE_ZIP);
    const actualSize = unpackedSize(packed, part);
    if (actualSize > part.size) throw new DocxRefused(`The part ${name} unpacks to more than the zip declares (a zip bomb?): refused.`);
    if (actualSize < part.size) throw new DocxRefused(DAMAGED_ZIP);
  }
  try {
    return { zip: new PizZip(buffer), parts };
  } catch {
    throw new DocxRefused(UNREADABLE_ZIP);
  }
}

/**
 * How many bytes a part unpacks to, counting at most one byte past its declared size. pizzip inflates a part whole
 * before it compares the size with the declared one, so a part declaring 1 KB and inflating to 1 GB would cost
 * seconds and gigabytes before it failed; zlib stops at the cap.
 */
function unpackedSize(packed: Buffer, part: TemplatePart): number {
  if (part.method === STORE) return packed.length;
  const cap = part.size + 1;
  try {
    return zlib.inflateRawSync(packed, { maxOutputLength: cap }).length;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return cap;
    throw new DocxRefused(DAMAGED_ZIP);
  }
}

// ---- errors ----------------------------------------------------------------------------------------------

interface DxtError {
  message?: string;
  properties?: {
    id?: string;
    xtag?: string;
    explanation?: string;
    file?: string;
    offset?: number;
    rootError?: { message?: string };
    errors?: DxtError[];
  };
}

/** "word/header1.xml" → "header 1". */
export function partLabel(file: string | undefined): string {
  if (!file) return 'document';
  if (file === 'word/document.xml') return 'document body';
  const m = /^word\/(header|footer|footnotes|endnotes|comments)(\d*)\.xml$/.exec(file);
  if (m) return `${m[1]}${m[2] ? ` ${m[2]}` : ''}`;
  return file;
}

/**
 * The paragraph (1-based) of a character offset in a part's text, counting text as docxtemplater does:
 * the content of every <w:t> in order. Paragraphs are counted over the whole part (tables included).
 */
function paragraphOfOffset(xml: string, offset: number): number | null {
  let text = 0;
  let paragraph = 0;
  const re = /<w:p[\s>/]|<w:t(?:\s[^>]*)?>([^<]*)<\/w:t>/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    if (m[0].startsWith('<w:p')) {
      paragraph += 1;
      continue;
    }
    const length = decodeXmlLength(m[1]);
    if (offset < text + length) return paragraph || 1;
    text += length;
  }
  return paragraph || null;
}

const decodeXmlLength = (s: string): number => s.replace(/&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, '_').length;

function whereOf(zip: PizZip, file: string | undefined, offset: number | undefined): string {
  const part = partLabel(file);
  if (!file || offset === undefined || offset === null) return part;
  const xml = zip.file(file)?.asText();
  const paragraph = xml ? paragraphOfOffset(xml, offset) : null;
  return paragraph ? `${part}, paragraph ${paragraph}` : part;
}

const MESSAGES: Record<string, (tag: string) => string> = {
  unclosed_loop: (t) => `The section {#${t}} is opened but never closed: add {/${t}}.`,
  unopened_loop: (t) => `The section {/${t}} is closed but was never opened with {#${t}}.`,
  closing_tag_does_not_match_opening_tag: (t) => `The closing tag {/${t}} does not match the section opened before it.`,
  unclosed_tag: (t) => `A tag is opened with { but never closed with }${t ? ` (near "${t}")` : ''}.`,
  unopened_tag: (t) => `A } closes a tag that was never opened${t ? ` (near "${t}")` : ''}.`,
  duplicate_open_tag: (t) => `Two opening braces in a row: "${t}" (write one { per tag).`,
  duplicate_close_tag: (t) => `Two closing braces in a row: "${t}" (write one } per tag).`,
  raw_tag_outerxml_invalid: (t) => `The raw tag {@${t}} is not supported in quote templates.`,
  raw_xml_tag_should_be_only_text_in_paragraph: (t) => `The raw tag {@${t}} is not supported in quote templates.`,
};

/** docxtemplater's error (a multi error or one) as our list of problems. */
export function templateProblems(err: unknown, zip: PizZip): TemplateProblem[] | null {
  const e = err as DxtError;
  const list = e?.properties?.errors ?? (e?.properties?.id ? [e] : null);
  if (!list) return null;
  return list.map((one) => {
    const p = one.properties ?? {};
    const tag = String(p.xtag ?? '').trim();
    const id = String(p.id ?? '');
    const message = p.rootError?.message
      ?? (MESSAGES[id] ? MESSAGES[id](tag) : p.explanation ?? one.message ?? 'The template cannot be read.');
    return { tag, message, where: whereOf(zip, p.file, p.offset) };
  });
}

// ---- render ----------------------------------------------------------------------------------------------

function compile(zip: PizZip, filterOptions: FilterOptions = {}): Docxtemplater {
  return new Docxtemplater(zip, {
    paragraphLoop: true,
    errorLogging: false,
    linebreaks: true,
    stripInvalidXMLChars: true,
    parser: restrictedParser(filterOptions),
    nullGetter: () => '',
  });
}

/** A template checked and compiled, ready to be filled once (docxtemplater renders a compiled template once). */
export interface OpenedTemplate {
  doc: Docxtemplater;
  zip: PizZip;
  source: TemplateSource;
}

/** Checks and compiles a template; throws DocxRefused or TemplateError. */
export function openTemplate(buffer: Buffer, filterOptions?: FilterOptions): OpenedTemplate {
  const { zip, parts } = checkedZip(buffer, DOCX_LIMITS);
  const source = templateSource(buffer, parts, zip);
  try {
    return { doc: compile(zip, filterOptions), zip, source };
  } catch (err) {
    const problems = templateProblems(err, zip);
    if (problems) throw new TemplateError(problems);
    const message = err instanceof Error ? err.message : String(err);
    throw new TemplateError([{ tag: '', message, where: 'document' }]);
  }
}

/** Fills the template with token data; throws DocxRefused or TemplateError, never returns a broken file. */
export function renderDocx(templateBuffer: Buffer, data: TokenData, filterOptions: FilterOptions = {}): Buffer {
  return fillTemplate(openTemplate(templateBuffer, filterOptions), data);
}

/** Fills an opened template with token data (once); throws TemplateError, never returns a broken file. */
export function fillTemplate({ doc, zip, source }: OpenedTemplate, data: TokenData): Buffer {
  try {
    doc.render(data);
  } catch (err) {
    const problems = templateProblems(err, zip);
    if (problems) throw new TemplateError(problems);
    throw err;
  }
  return packDocx(zip, source);
}

// ---- check -----------------------------------------------------------------------------------------------

export interface UnknownToken {
  tag: string;
  where: string;
}

export interface TemplateCheck {
  errors: TemplateProblem[];
  unknownTokens: UnknownToken[];
  /** Every distinct tag found (for the report). */
  tags: string[];
}

export interface CheckOptions {
  /** Custom field token names that exist (`account.custom.customer_tier` …); unset: any custom name passes. */
  customFieldTokens?: string[];
}

interface Part {
  type?: string;
  module?: string;
  value?: string;
  offset?: number;
  subparsed?: Part[];
  inverted?: boolean;
}

/**
 * Checks a template without any user data: first the file itself (DocxRefused when it is not a .docx),
 * then the syntax (each error with tag and place), then every tag against the token vocabulary.
 */
export function checkTemplate(buffer: Buffer, options: CheckOptions = {}): TemplateCheck {
  let opened: OpenedTemplate;
  try {
    opened = openTemplate(buffer);
  } catch (err) {
    if (err instanceof TemplateError) return { errors: err.problems, unknownTokens: [], tags: [] };
    throw err;
  }
  const { doc, zip } = opened;
  const customs = options.customFieldTokens ? new Set(options.customFieldTokens) : null;
  const unknownTokens: UnknownToken[] = [];
  const tags = new Set<string>();

  const known = (path: string, loops: string[]): boolean => {
    for (const loop of loops) if (LOOP_TOKENS[loop]?.has(path)) return true;
    if (ROOT_TOKENS.has(path)) return true;
    const family = FAMILY_PREFIXES.find((prefix) => path.startsWith(prefix));
    if (family) {
      const name = path.slice(family.length);
      if (!name || name.includes('.') || customFieldSlug(name) !== name) return false;
      return customs ? customs.has(path) : true;
    }
    return false;
  };

  const compiled = (doc as unknown as { compiled: Record<string, { postparsed?: Part[] }> }).compiled;
  for (const [file, templater] of Object.entries(compiled)) {
    const walk = (parts: Part[], loops: string[]) => {
      for (const part of parts) {
        if (part.type !== 'placeholder') continue;
        const raw = String(part.value ?? '');
        let path: string;
        try {
          path = parseTag(raw).path.join('.');
        } catch {
          continue; // already reported as a syntax error
        }
        const isSection = Boolean(part.subparsed);
        tags.add(isSection ? `#${path}` : path);
        if (!known(path, loops)) unknownTokens.push({ tag: raw.trim(), where: whereOf(zip, file, part.offset) });
        if (part.subparsed) walk(part.subparsed, LOOP_TOKENS[path] ? [path, ...loops] : loops);
      }
    };
    walk(templater.postparsed ?? [], []);
  }
  return { errors: [], unknownTokens, tags: [...tags] };
}
