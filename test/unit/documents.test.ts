import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import Docxtemplater from 'docxtemplater';
import PizZip from 'pizzip';
import { DOMParser } from '@xmldom/xmldom';
import { docxPackage, para } from '../../scripts/docx-package';
import { applyFilter, lookupPath, parseTag, restrictedParser } from '../../plugin/services/documents/parser';
import { DOCX_LIMITS, DocxRefused, TemplateError, checkTemplate, renderDocx, validateDocx } from '../../plugin/services/documents/render';
import { openTemplateOffThread, renderWhileReading, stopRenderWorker } from '../../plugin/services/documents/render-pool';
import { TOKEN_REFERENCE, buildTokenData, cleanText, customFieldSlug, tokenValues, type QuoteDocumentInput } from '../../plugin/services/documents/token-data';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'word-style-template.docx');
const DEFAULT_TEMPLATE = path.join(__dirname, '..', '..', 'templates', 'quote-default.docx');
const NNBSP = '\u202f';

function input(over: Partial<QuoteDocumentInput> = {}): QuoteDocumentInput {
  return {
    today: '2026-11-23',
    quote: { number: 'Q-2026-0042', name: 'ERP rollout', currency: 'EUR', created_on: '2026-11-20T10:00:00.000Z', valid_from: '2026-11-20', valid_to: '2026-12-31' },
    opportunity: { id: 7, name: 'Acme rollout', description: 'Phase 1\r\nPhase 2', status: 'Proposal', amount_minor: 500000, currency: 'EUR', expected_close_on: '2027-01-15' },
    account: { name: 'Acme <&> "Quotes"\u0001', street: 'Main 1', postcode: '10111', city: 'Tallinn', country: 'Estonia', vat_number: 'EE100', customer_number: null },
    contact: { first_name: 'Ann', last_name: 'Example', email: 'ann@example.com' },
    items: [
      { code: 'LIC', name: 'Licence', description: 'Annual <b>', unit: 'pcs', quantity_milli: 2000, unit_price_minor: 10000, gross_minor: 20000, discount_minor: 2000, discount_percent_bp: 1000, net_minor: 18000, tax_rate_bp: 2200, tax_minor: 3960, total_minor: 21960 },
      { code: '', name: 'Setup & training', description: '', unit: 'days', quantity_milli: 1500, unit_price_minor: 80000, gross_minor: 120000, discount_minor: 0, discount_percent_bp: null, net_minor: 120000, tax_rate_bp: 2200, tax_minor: 26400, total_minor: 146400 },
    ],
    totals: { subtotal_minor: 140000, discount_total_minor: 2000, rounding_minor: 0, net_total_minor: 138000, tax_total_minor: 30360, total_minor: 168360 },
    salesRep: { name: 'Rita Rep', email: 'rita@example.com' },
    company: { name: 'Own Co', address: 'Harbour 2\n10001 City', vat_number: 'EE999', bank: 'IBAN EE00 1111' },
    customFields: { account: [{ name: 'Customer tier', value: 'Gold' }, { name: 'IBAN', value: null }], opportunity: [] },
    ...over,
  };
}

/** A zip's central directory, in its order: each entry's name, compression method, packed and unpacked size, local header offset. */
function centralDirectory(file: Buffer): { name: string; method: number; packed: number; size: number; localOffset: number }[] {
  const eocd = file.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const entries = [];
  let pos = file.readUInt32LE(eocd + 16);
  for (let n = file.readUInt16LE(eocd + 10); n > 0; n--) {
    const nameLength = file.readUInt16LE(pos + 28);
    entries.push({
      name: file.subarray(pos + 46, pos + 46 + nameLength).toString('utf8'),
      method: file.readUInt16LE(pos + 10), packed: file.readUInt32LE(pos + 20), size: file.readUInt32LE(pos + 24), localOffset: file.readUInt32LE(pos + 42),
    });
    pos += 46 + nameLength + file.readUInt16LE(pos + 30) + file.readUInt16LE(pos + 32);
  }
  return entries;
}
function centralEntry(file: Buffer, name: string): { method: number; packed: number; size: number; localOffset: number } {
  const entry = centralDirectory(file).find((e) => e.name === name);
  if (!entry) throw new Error(`${name} is not in the zip`);
  return entry;
}
const zipOrder = (file: Buffer): string[] => centralDirectory(file).map((e) => e.name);

/** A part's bytes as packed in the zip (after its local header). */
function packedBytes(file: Buffer, name: string): Buffer {
  const entry = centralEntry(file, name);
  const start = entry.localOffset + 30 + file.readUInt16LE(entry.localOffset + 26) + file.readUInt16LE(entry.localOffset + 28);
  return file.subarray(start, start + entry.packed);
}

/** The text of one part, paragraphs on their own lines, entities decoded. */
function partText(zip: PizZip, part: string): string {
  const xml = zip.file(part)?.asText() ?? '';
  return xml.replace(/<w:br\/>/g, '\n').replace(/<\/w:p>/g, '\n').replace(/<[^>]+>/g, '')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

/** Parses every XML part strictly: a document Word can open has only well-formed parts. */
function assertWellFormed(zip: PizZip): void {
  for (const name of Object.keys(zip.files).filter((n) => n.endsWith('.xml') || n.endsWith('.rels'))) {
    const errors: string[] = [];
    new DOMParser({ onError: (level: string, msg: string) => { if (level !== 'warning') errors.push(`${name}: ${msg}`); } })
      .parseFromString(zip.file(name)!.asText(), 'text/xml');
    expect(errors).toEqual([]);
  }
}

// ---- a tiny zip writer, for hostile archives ----------------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf: Buffer) => {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

/** `packed`: the bytes written as the entry's deflated data (by default, `data` deflated). */
interface Entry { name: string; data: Buffer; declaredSize?: number; flags?: number; packed?: Buffer }
function zipOf(entries: Entry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const packed = e.packed ?? zlib.deflateRawSync(e.data);
    const name = Buffer.from(e.name);
    const size = e.declaredSize ?? e.data.length;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(e.flags ?? 0, 6); local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc32(e.data), 14); local.writeUInt32LE(packed.length, 18); local.writeUInt32LE(size, 22); local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(e.flags ?? 0, 8); central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc32(e.data), 16); central.writeUInt32LE(packed.length, 20); central.writeUInt32LE(size, 24); central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, packed);
    centrals.push(central, name);
    offset += 30 + name.length + packed.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(Math.min(entries.length, 0xffff), 8); eocd.writeUInt16LE(Math.min(entries.length, 0xffff), 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}
const docxEntries = (): Entry[] => [
  { name: '[Content_Types].xml', data: Buffer.from('<Types/>') },
  { name: 'word/document.xml', data: Buffer.from('<w:document/>') },
];

const template = (...paragraphs: string[]) => docxPackage({ body: paragraphs.map((p) => para(p)).join('') });

// ---- token data ----------------------------------------------------------------------------------------------

describe('token data builder', () => {
  const data = buildTokenData(input());
  const g = (v: unknown) => v as Record<string, unknown>;

  test('formats money, dates, quantities and percentages, each with a raw twin', () => {
    expect(g(data.quote)).toMatchObject({
      number: 'Q-2026-0042', currency: 'EUR', total: `1${NNBSP}683.60 EUR`, total_raw: '1683.60', subtotal: `1${NNBSP}400.00 EUR`,
      discount_total: '20.00 EUR', discount_total_raw: '20.00', tax_total_raw: '303.60', net_total_raw: '1380.00',
      date: '20 November 2026', date_raw: '2026-11-20', valid_to: '31 December 2026', valid_to_raw: '2026-12-31',
    });
    expect(data.today).toBe('23 November 2026');
    expect(data.today_raw).toBe('2026-11-23');
    expect(g(data.opportunity)).toMatchObject({ amount: `5${NNBSP}000.00 EUR`, amount_raw: '5000.00', expected_close_raw: '2027-01-15', status: 'Proposal' });
    const [first, second] = data.items as Record<string, string>[];
    expect(first).toMatchObject({ index: '1', quantity: '2', unit_price: '100.00 EUR', discount: '10 %', discount_raw: '20.00', net: '180.00 EUR', tax_rate: '22 %', total_raw: '219.60' });
    expect(second).toMatchObject({ index: '2', quantity: '1.5', discount: '', discount_raw: '0.00', net: `1${NNBSP}200.00 EUR` });
  });

  test('user text is cleaned of control characters; line endings become \\n; missing values are empty strings', () => {
    expect(g(data.account).name).toBe('Acme <&> "Quotes"');
    expect(g(data.opportunity).description).toBe('Phase 1\nPhase 2');
    expect(g(data.account).customer_number).toBe('');
    expect(g(data.account).address).toBe('Main 1\n10111 Tallinn\nEstonia');
    expect(g(data.contact).name).toBe('Ann Example');
    expect(g(data.contact).job_title).toBe('');
    expect(cleanText('a\u0000b\u0007c\u009bd\ud800e\tf')).toBe('abcde\tf');
    const bare = buildTokenData(input({ account: null, contact: null, salesRep: null, customFields: undefined }));
    expect(JSON.stringify(bare)).not.toMatch(/undefined|null/);
    expect(g(bare.account).name).toBe('');
  });

  test('custom fields by name, and the reference lists every token with its value', () => {
    expect(customFieldSlug('Customer tier')).toBe('customer_tier');
    expect(customFieldSlug('Größe / Size')).toBe('grosse_size');
    expect(g(g(data.account).custom)).toEqual({ customer_tier: 'Gold', iban: '' });
    const rows = tokenValues(data);
    expect(rows.find((r) => r.token === 'account.custom.customer_tier')?.value).toBe('Gold');
    expect(rows.find((r) => r.token === 'quote.total')?.value).toBe(`1${NNBSP}683.60 EUR`);
    expect(rows.find((r) => r.token === 'name' && r.loop === 'items')?.value).toBe('Licence');
    expect(rows.find((r) => r.token === 'items')?.value).toBe('2 lines');
    // Every non-family token of the reference exists in the data.
    for (const t of TOKEN_REFERENCE.filter((x) => !x.family && !x.isLoop && !x.loop)) {
      expect(lookupPath(data, t.token.split('.'))).toEqual(expect.any(String));
    }
    for (const t of TOKEN_REFERENCE.filter((x) => x.loop)) expect((data.items as Record<string, unknown>[])[0][t.token]).toEqual(expect.any(String));
  });

  test('item descriptions are left out when the setting hides them', () => {
    const hidden = buildTokenData(input({ showItemDescriptions: false }));
    expect((hidden.items as Record<string, string>[])[0].description).toBe('');
  });
});

// ---- parser --------------------------------------------------------------------------------------------------

describe('restricted parser', () => {
  test('dotted paths with one optional filter from the fixed set', () => {
    expect(parseTag('quote.total')).toEqual({ path: ['quote', 'total'], filter: null });
    expect(parseTag(' quote.total_raw\u00a0|\u00a0money ')).toEqual({ path: ['quote', 'total_raw'], filter: 'money' });
    expect(parseTag('account.name|upper').filter).toBe('upper');
  });

  test.each([
    ['quote.total | sum', /Unknown filter "sum" in \{quote\.total \| sum\}/],
    ['a + b', /\{a \+ b\} is not a token name/],
    ['items[0].name', /not a token name/],
    ["constructor.constructor('return process')()", /not a token name/],
    ['quote.total | money | upper', /Only one filter/],
    ['x = 1', /not a token name/],
    ['', /empty/],
  ])('%s is refused', (tag, message) => {
    expect(() => parseTag(tag)).toThrow(message);
  });

  test('lookups follow own properties only: no prototype walking, objects never print', () => {
    const parser = restrictedParser();
    const scope = { account: { name: 'A' }, items: [{ name: 'x' }] };
    expect(parser('constructor').get(scope, { scopeList: [scope] })).toBeUndefined();
    expect(parser('account.__proto__').get(scope, { scopeList: [scope] })).toBeUndefined();
    expect(parser('account.toString').get(scope, { scopeList: [scope] })).toBeUndefined();
    expect(parser('account').get(scope, { scopeList: [scope] })).toBeUndefined();
    expect(parser('account.name').get(scope, { scopeList: [scope] })).toBe('A');
    expect(parser('items', { tag: { module: 'loop' } }).get(scope, { scopeList: [scope] })).toEqual([{ name: 'x' }]);
  });

  test('filters', () => {
    expect(applyFilter('money', '1234.5', { currency: 'EUR' })).toBe(`1${NNBSP}234.50 EUR`);
    expect(applyFilter('money', '1 234.50 EUR', { currency: 'EUR' })).toBe('1 234.50 EUR');
    expect(applyFilter('money', '1500', { currency: 'JPY' })).toBe(`1${NNBSP}500 JPY`);
    expect(applyFilter('date', '2026-12-31', {})).toBe('31 December 2026');
    expect(applyFilter('date', 'soon', {})).toBe('soon');
    expect(applyFilter('percent', '12.5', {})).toBe('12.5 %');
    expect(applyFilter('upper', 'straße', {})).toBe('STRASSE');
  });
});

// ---- rendering -----------------------------------------------------------------------------------------------

describe('rendering the Word-style template', () => {
  const out = renderDocx(fs.readFileSync(FIXTURE), buildTokenData(input()));
  const zip = new PizZip(out);
  const body = partText(zip, 'word/document.xml');
  const header = partText(zip, 'word/header1.xml');

  test('tags split over runs (bold in the middle, a spelling mark, a bookmark) are filled', () => {
    expect(body).toContain('Dear Ann Example,');
    expect(body).toContain('Customer: Acme <&> "Quotes"');
    expect(body).not.toMatch(/[{}]/);
  });

  test('the header part is filled', () => {
    expect(header).toContain('Quote Q-2026-0042 for Acme <&> "Quotes"');
  });

  test('the table row is repeated for each line', () => {
    expect(body).toMatch(/1\nLicence\n2 pcs\n100\.00 EUR\n180\.00 EUR/);
    expect(body).toMatch(/2\nSetup & training\n1\.5 days\n800\.00 EUR\n1\u202f200\.00 EUR/);
    expect((zip.file('word/document.xml')!.asText().match(/<w:tr>/g) ?? []).length).toBe(3);
  });

  test('filters, line breaks, totals', () => {
    expect(body).toContain(`Total: 1${NNBSP}683.60 EUR`);
    expect(body).toContain(`Total again: 1${NNBSP}683.60 EUR; valid until 31 December 2026; ACME <&> "QUOTES"`);
    expect(body).toContain('Notes: Phase 1\nPhase 2');
    expect(body).toContain('Sales rep: Rita Rep, Own Co');
  });

  test('user data is escaped, control characters stripped, missing values empty — never "undefined"', () => {
    const xml = zip.file('word/document.xml')!.asText();
    expect(xml).toContain('Acme &lt;&amp;&gt;');
    expect(xml).not.toContain('<&>');
    // eslint-disable-next-line no-control-regex
    expect(xml).not.toMatch(/[\u0000-\u0008]/);
    expect(body).toContain('Customer number: ; tier: Gold');
    expect(body + header).not.toMatch(/undefined|null|\[object Object\]/);
    assertWellFormed(zip);
  });

  test('hostile values (XML, tags, control characters) stay text', () => {
    const evil = input({ account: { name: '</w:t></w:r><w:r><w:t>{quote.total}\u0007' }, contact: { first_name: ']]><!--', last_name: '&amp;' } });
    const z = new PizZip(renderDocx(fs.readFileSync(FIXTURE), buildTokenData(evil)));
    assertWellFormed(z);
    expect(partText(z, 'word/document.xml')).toContain('Customer: </w:t></w:r><w:r><w:t>{quote.total}');
    expect(partText(z, 'word/document.xml')).toContain('Dear ]]><!-- &amp;,');
  });

  test('the filled parts are packed with DEFLATE, and any standard inflater unpacks them to the filled XML', () => {
    const document = centralEntry(out, 'word/document.xml');
    expect(document.method).toBe(8);
    expect(document.packed).toBeLessThan(document.size / 3);
    const unpacked = zlib.inflateRawSync(packedBytes(out, 'word/document.xml'));
    expect(unpacked.length).toBe(document.size);
    expect(unpacked.toString('utf8')).toBe(zip.file('word/document.xml')!.asText());
  });

  test('the packed document holds the parts docxtemplater filled, in its order, each with a right checksum', () => {
    for (const file of [FIXTURE, DEFAULT_TEMPLATE]) {
      const data = buildTokenData(input());
      const ours = renderDocx(fs.readFileSync(file), data);
      const doc = new Docxtemplater(new PizZip(fs.readFileSync(file)), { paragraphLoop: true, linebreaks: true, stripInvalidXMLChars: true, parser: restrictedParser(), nullGetter: () => '' });
      doc.render(data);
      const theirs = doc.toBuffer();
      expect(zipOrder(ours)).toEqual(zipOrder(theirs));
      const read = new PizZip(ours, { checkCRC32: true });
      const expected = new PizZip(theirs);
      for (const [name, part] of Object.entries(expected.files)) {
        expect(read.files[name].dir).toBe(part.dir);
        if (!part.dir) expect(Buffer.from(read.file(name)!.asUint8Array())).toEqual(Buffer.from(part.asUint8Array()));
      }
    }
  });

  test('parts the render does not touch are copied from the template as packed there: an image, stored, under a non-ASCII name', () => {
    const base = new PizZip(fs.readFileSync(FIXTURE));
    const image = crypto.randomBytes(5000);
    base.file('word/media/logo-ü.png', image, { compression: 'STORE' });
    const withImage = base.generate({ type: 'nodebuffer', compression: 'DEFLATE' });
    const out = renderDocx(withImage, buildTokenData(input()));
    expect(centralEntry(out, 'word/media/logo-ü.png').method).toBe(0);
    expect(packedBytes(out, 'word/media/logo-ü.png')).toEqual(packedBytes(withImage, 'word/media/logo-ü.png'));
    expect(packedBytes(out, 'word/styles.xml')).toEqual(packedBytes(withImage, 'word/styles.xml'));
    expect(packedBytes(out, 'word/document.xml')).not.toEqual(packedBytes(withImage, 'word/document.xml'));
    const read = new PizZip(out, { checkCRC32: true });
    expect(Buffer.from(read.file('word/media/logo-ü.png')!.asUint8Array())).toEqual(image);
    expect(partText(read, 'word/document.xml')).toContain('Setup & training');
  });

  test('the default template renders with every part filled and is well formed', () => {
    const z = new PizZip(renderDocx(fs.readFileSync(DEFAULT_TEMPLATE), buildTokenData(input())));
    assertWellFormed(z);
    const text = partText(z, 'word/document.xml');
    expect(text).toContain('Quote Q-2026-0042');
    expect(text).toContain('Licence');
    expect(text).toContain('Setup & training');
    expect(text).toContain(`1${NNBSP}683.60 EUR`);
    expect(text).toContain('31 December 2026');
    expect(text).toContain('Rita Rep');
    expect(text).toContain('[ YOUR LOGO ]');
    expect(text).not.toMatch(/[{}]|undefined/);
    expect(partText(z, 'word/footer1.xml')).toContain('Own Co · VAT no. EE999 · IBAN EE00 1111');
    expect(checkTemplate(fs.readFileSync(DEFAULT_TEMPLATE))).toMatchObject({ errors: [], unknownTokens: [] });
  });
});

// ---- template check and broken templates -------------------------------------------------------------------

describe('template check', () => {
  test('the Word-style fixture and the default template have no problems', () => {
    const report = checkTemplate(fs.readFileSync(FIXTURE));
    expect(report.errors).toEqual([]);
    expect(report.unknownTokens).toEqual([]);
    expect(report.tags).toEqual(expect.arrayContaining(['contact.name', '#items', 'net', 'quote.number']));
  });

  test('an unclosed loop, a duplicate open tag and an unknown filter are each named with their place', () => {
    const report = checkTemplate(template('Hello', '{#items}{name}', '{{account.name}', '{quote.total | sum}'));
    expect(report.errors).toEqual(expect.arrayContaining([
      { tag: 'items', message: 'The section {#items} is opened but never closed: add {/items}.', where: 'document body, paragraph 2' },
      expect.objectContaining({ tag: '{{acco', message: expect.stringContaining('Two opening braces'), where: 'document body, paragraph 3' }),
      expect.objectContaining({ tag: 'quote.total | sum', message: expect.stringContaining('Unknown filter "sum"'), where: 'document body, paragraph 4' }),
    ]));
  });

  test('expressions and raw XML tags are syntax errors', () => {
    const report = checkTemplate(template('{quote.total * 2}', '{@account.name}'));
    expect(report.errors.map((e) => e.tag)).toEqual(['quote.total * 2', 'account.name']);
    expect(report.errors[1].message).toContain('Raw XML tags');
  });

  test('unknown tokens are listed with their place; loop fields are known only inside their loop', () => {
    const report = checkTemplate(template('{account.nmae}', '{#items}{name} {quote.currency} {price}{/items}', '{name}', '{account.custom.customer_tier}'),
      { customFieldTokens: ['account.custom.iban'] });
    expect(report.errors).toEqual([]);
    expect(report.unknownTokens).toEqual([
      { tag: 'account.nmae', where: 'document body, paragraph 1' },
      { tag: 'price', where: 'document body, paragraph 2' },
      { tag: 'name', where: 'document body, paragraph 3' },
      { tag: 'account.custom.customer_tier', where: 'document body, paragraph 4' },
    ]);
  });

  test('rendering a broken template throws the same problems and returns nothing', () => {
    let caught: unknown;
    try {
      renderDocx(template('{#items}{name}', '{quote.total | sum}'), buildTokenData(input()));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    expect((caught as TemplateError).problems.map((p) => p.tag)).toEqual(expect.arrayContaining(['items', 'quote.total | sum']));
  });
});

describe('files that are not usable .docx templates are refused', () => {
  const refused = (buf: Buffer, limits = DOCX_LIMITS) => {
    try {
      validateDocx(buf, limits);
    } catch (err) {
      expect(err).toBeInstanceOf(DocxRefused);
      return (err as Error).message;
    }
    throw new Error('not refused');
  };

  test('a renamed PDF', () => {
    expect(refused(Buffer.from('%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF'))).toMatch(/PDF/);
  });

  test('an encrypted docx (an OLE compound file) and a zip entry flagged encrypted', () => {
    const cfb = Buffer.concat([Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]), Buffer.alloc(512)]);
    expect(refused(cfb)).toMatch(/This document is encrypted/);
    expect(refused(zipOf([...docxEntries(), { name: 'word/secret.xml', data: Buffer.from('x'), flags: 1 }]))).toMatch(/encrypted/);
  });

  test('zip bombs: an entry compressed suspiciously well, declared sizes over the limit, too many entries', () => {
    expect(refused(zipOf([...docxEntries(), { name: 'word/media/zeros.bin', data: Buffer.alloc(4 * 1024 * 1024) }]))).toMatch(/zip bomb/);
    const lying = docxEntries().concat([{ name: 'a.bin', data: Buffer.from('a'), declaredSize: 40 * 1024 * 1024 }, { name: 'b.bin', data: Buffer.from('b'), declaredSize: 40 * 1024 * 1024 }]);
    expect(refused(zipOf(lying))).toMatch(/zip bomb/);
    const many = docxEntries().concat(Array.from({ length: 2001 }, (_, i) => ({ name: `f${i}.xml`, data: Buffer.from('x') })));
    expect(refused(zipOf(many))).toMatch(/at most 2000/);
  });

  test('an entry that unpacks to more than it declares cannot be read', () => {
    const liar = zipOf([{ name: '[Content_Types].xml', data: Buffer.from('<Types/>') }, { name: 'word/document.xml', data: Buffer.from('<w:document>'.repeat(1000)), declaredSize: 10 }]);
    expect(() => renderDocx(liar, {})).toThrow();
  });

  test('a part that unpacks to more than the zip declares is refused before pizzip inflates it: its real size counts', () => {
    // QA's upload in miniature: the document declares 1,000 bytes and really unpacks past the whole template's limit.
    const limits = { ...DOCX_LIMITS, maxUnpackedBytes: 64 * 1024 };
    const bomb = zipOf([docxEntries()[0], { name: 'word/document.xml', data: Buffer.alloc(limits.maxUnpackedBytes + 1), declaredSize: 1000 }]);
    const bombRefusal = 'The part word/document.xml unpacks to more than the zip declares (a zip bomb?): refused.';
    expect(refused(bomb, limits)).toBe(bombRefusal);
    expect(refused(bomb)).toBe(bombRefusal);
    // The template check and the render refuse the file itself; the lie is no template syntax error.
    expect(() => checkTemplate(bomb)).toThrow(DocxRefused);
    expect(() => checkTemplate(bomb)).toThrow(bombRefusal);
    expect(() => renderDocx(bomb, {})).toThrow(bombRefusal);
  });

  test('a zip whose parts are not what its central directory says is refused as damaged', () => {
    const damaged = /^This file is not a Word \.docx document \(the zip is damaged\)\.$/;
    const lyingDocument: Entry = { name: 'word/document.xml', data: Buffer.from('<w:document>'.repeat(1000)), declaredSize: 10 };
    // A part shorter than it declares, and a part whose data is no deflate stream.
    expect(refused(zipOf([docxEntries()[0], { name: 'word/document.xml', data: Buffer.from('<w:document/>'), declaredSize: 100 }]))).toMatch(damaged);
    expect(refused(zipOf([...docxEntries(), { name: 'word/styles.xml', data: Buffer.from('<w:styles/>'), packed: Buffer.from([0xff, 0xff, 0xff]) }]))).toMatch(damaged);
    // A part past the count the end record gives: pizzip reads central records for as long as they come, so it would open it unchecked.
    const hidden = zipOf([...docxEntries(), lyingDocument]);
    const eocd = hidden.length - 22;
    hidden.writeUInt16LE(2, eocd + 8);
    hidden.writeUInt16LE(2, eocd + 10);
    expect(refused(hidden)).toMatch(damaged);
    // A directory that does not end where the end record starts: pizzip would take the difference as a prefix and read every offset shifted.
    const shortDirectory = zipOf(docxEntries());
    const directorySizeField = shortDirectory.length - 22 + 12;
    shortDirectory.writeUInt32LE(shortDirectory.readUInt32LE(directorySizeField) - 16, directorySizeField);
    expect(refused(shortDirectory)).toMatch(damaged);
    const honest = zipOf(docxEntries());
    const gap = Buffer.concat([honest.subarray(0, honest.length - 22), Buffer.alloc(64), honest.subarray(honest.length - 22)]);
    expect(refused(gap)).toMatch(damaged);
  });

  test('a zip that is not a Word document, plain text, an empty file', () => {
    expect(refused(zipOf([{ name: 'hello.txt', data: Buffer.from('hi') }]))).toMatch(/not a Word document/);
    expect(refused(Buffer.from('just text'))).toMatch(/not a Word \.docx/);
    expect(refused(Buffer.alloc(0))).toMatch(/empty/);
  });
});

describe('docs/tokens.md', () => {
  test('documents every token of the reference and every filter', () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'tokens.md'), 'utf8');
    for (const t of TOKEN_REFERENCE) expect(doc).toContain(`\`{${t.token}}\``);
    for (const f of ['money', 'date', 'percent', 'upper']) expect(doc).toContain(`| \`${f}\` |`);
  });
});

describe('rendering off the main thread (render-pool)', () => {
  afterAll(async () => { await stopRenderWorker(); });
  const renderOffThread = (template: Buffer, data: QuoteDocumentInput) => openTemplateOffThread(template).fill(data);

  test('the worker makes the same document as rendering in process, for one line and for 2000', async () => {
    const many = input({ items: Array.from({ length: 2000 }, (_, i) => ({ ...input().items[i % 2], code: `L${i + 1}` })) });
    for (const data of [input(), many]) {
      const fromWorker = new PizZip(await renderOffThread(fs.readFileSync(FIXTURE), data));
      const inProcess = new PizZip(renderDocx(fs.readFileSync(FIXTURE), buildTokenData(data)));
      expect(partText(fromWorker, 'word/document.xml')).toBe(partText(inProcess, 'word/document.xml'));
      expect(partText(fromWorker, 'word/header1.xml')).toBe(partText(inProcess, 'word/header1.xml'));
    }
    const text = partText(new PizZip(await renderOffThread(fs.readFileSync(FIXTURE), many)), 'word/document.xml');
    expect(text).toContain('\n2000\nSetup & training\n');
  });

  test('template errors and refused files come back as the same errors, and the worker keeps serving', async () => {
    const broken = renderOffThread(template('{#items}{name}', '{quote.total | sum}'), input());
    await expect(broken).rejects.toMatchObject({ name: 'TemplateError', problems: expect.arrayContaining([expect.objectContaining({ tag: 'items', where: 'document body, paragraph 1' })]) });
    await expect(renderOffThread(Buffer.from('%PDF-1.7\n%%EOF'), input())).rejects.toMatchObject({ name: 'DocxRefused', message: expect.stringMatching(/PDF/) });
    const again = await Promise.all([1, 2, 3].map(() => renderOffThread(fs.readFileSync(DEFAULT_TEMPLATE), input())));
    for (const doc of again) expect(partText(new PizZip(doc), 'word/document.xml')).toContain('Q-2026-0042');
  });

  test('a template opened while the quote is still being read is filled with it once both are there', async () => {
    let deliver!: (data: QuoteDocumentInput) => void;
    const reading = new Promise<QuoteDocumentInput>((resolve) => { deliver = resolve; });
    const made = renderWhileReading(Promise.resolve(fs.readFileSync(FIXTURE)), () => reading);
    setTimeout(() => deliver(input()), 20);
    const inProcess = new PizZip(renderDocx(fs.readFileSync(FIXTURE), buildTokenData(input())));
    expect(partText(new PizZip(await made), 'word/document.xml')).toBe(partText(inProcess, 'word/document.xml'));
  });

  test('when reading the quote or the template fails, the document fails with that error and the worker keeps serving', async () => {
    await expect(renderWhileReading(Promise.resolve(fs.readFileSync(FIXTURE)), () => Promise.reject(new Error('quote gone')))).rejects.toThrow('quote gone');
    await expect(renderWhileReading(Promise.reject(new Error('template gone')), async () => input())).rejects.toThrow('template gone');
    const refused = renderWhileReading(Promise.resolve(Buffer.from('%PDF-1.7\n%%EOF')), async () => input());
    await expect(refused).rejects.toMatchObject({ name: 'DocxRefused' });
    const after = await renderWhileReading(Promise.resolve(fs.readFileSync(DEFAULT_TEMPLATE)), async () => input());
    expect(partText(new PizZip(after), 'word/document.xml')).toContain('Q-2026-0042');
  });

  test('a template made again is filled with each document’s own data; another template or other filter options are never served from the copy kept of one', async () => {
    const priced = template('{quote.number} first {quote.total_raw | money}');
    const numbered = (number: string) => input({ quote: { ...input().quote, number } });
    const textOf = async (made: Promise<Buffer>) => partText(new PizZip(await made), 'word/document.xml').trim();
    expect(await textOf(renderOffThread(priced, numbered('Q-1')))).toMatch(/^Q-1 first 1\u202f683\.60 EUR/);
    // In turn (the worker keeps a compiled copy for the next document of the same template), then several at once.
    expect(await textOf(renderOffThread(priced, numbered('Q-2')))).toMatch(/^Q-2 first 1\u202f683\.60 EUR/);
    const atOnce = await Promise.all(['Q-3', 'Q-4', 'Q-5'].map((n) => textOf(renderOffThread(priced, numbered(n)))));
    expect(atOnce.map((t) => t.slice(0, 3))).toEqual(['Q-3', 'Q-4', 'Q-5']);
    // The same words in another template, and the same template with another currency for `money`.
    expect(await textOf(renderOffThread(template('{quote.number} second {quote.total_raw | money}'), numbered('Q-6')))).toMatch(/^Q-6 second /);
    expect(await textOf(openTemplateOffThread(priced, { currency: 'JPY' }).fill(numbered('Q-7')))).toMatch(/^Q-7 first 1\u202f684 JPY/);
    // A template opened and discarded unfilled leaves the next document of it unharmed.
    openTemplateOffThread(priced).discard();
    expect(await textOf(renderOffThread(priced, numbered('Q-8')))).toMatch(/^Q-8 first 1\u202f683\.60 EUR/);
    // A template too large to keep a copy of (an image of 3 MB) is opened for each document.
    const withImage = new PizZip(priced);
    withImage.file('word/media/photo.bin', crypto.randomBytes(3 * 1024 * 1024));
    const large = withImage.generate({ type: 'nodebuffer', compression: 'STORE' });
    for (const n of ['Q-9', 'Q-10']) expect(await textOf(renderOffThread(large, numbered(n)))).toMatch(new RegExp(`^${n} first `));
  });

  test('a discarded template cannot be filled, and a worker that stops between opening and filling fails the document', async () => {
    const discarded = openTemplateOffThread(fs.readFileSync(FIXTURE));
    discarded.discard();
    await expect(discarded.fill(input())).rejects.toThrow(/discarded/);
    const stranded = openTemplateOffThread(fs.readFileSync(FIXTURE));
    await stopRenderWorker();
    await expect(stranded.fill(input())).rejects.toThrow(/worker stopped/);
    const next = await renderOffThread(fs.readFileSync(DEFAULT_TEMPLATE), input());
    expect(partText(new PizZip(next), 'word/document.xml')).toContain('Q-2026-0042');
  });
});
