import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import PizZip from 'pizzip';
import { docxPackage, para } from '../../scripts/docx-package';
import { addAttachment } from '../../plugin/services/attachments';
import { newStorageKey, storageFor } from '../../plugin/services/storage';
import { isPg } from '../../migrations/dialect';
import { MORE_VERSIONED_TABLES, moreTableVersions } from '../../migrations/20261124_036_more_table_versions';
import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';
import { downloadBytes, uploadFile } from '../helpers/files';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'word-style-template.docx');
let counter = 0;

/** An account and an opportunity of rep1's in Europe with one quote of two lines: each test owns its data. */
async function newQuotedOpportunity(accountName = 'Docs Customer'): Promise<{ oppId: number; quoteId: number; number: string }> {
  const knex = host.db.knex;
  const n = ++counter;
  const rep1 = host.demo.users.rep1.id;
  const europe = host.demo.projects['crm-europe'].id;
  const type = await knex('crm_account_types').where({ name: 'Company' }).first();
  const [acc] = await knex('crm_accounts').insert({
    account_type_id: type.id, name: accountName, street: 'Harbour 5', postcode: '10115', city: 'Tallinn', country: 'Estonia', author_id: rep1, account_manager_id: rep1,
  }).returning('id');
  const accountId = Number(acc.id ?? acc);
  await knex('crm_account_projects').insert({ account_id: accountId, project_id: europe });
  const status = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const [opp] = await knex('crm_opportunities').insert({
    project_id: europe, name: `Docs deal ${n}`, account_id: accountId, owner_id: rep1, status_id: status, currency: 'EUR', author_id: rep1,
  }).returning('id');
  const oppId = Number(opp.id ?? opp);
  const number = `DOC-${n}-${crypto.randomBytes(3).toString('hex')}`;
  const [quote] = await knex('crm_quotes').insert({
    opportunity_id: oppId, number, name: 'Offer', currency: 'EUR', valid_to: '2026-12-31', is_active: true, author_id: rep1,
  }).returning('id');
  const quoteId = Number(quote.id ?? quote);
  await knex('crm_quote_items').insert([
    { quote_id: quoteId, position: 1, kind: 'manual', code: 'LIC', name: 'Licence <Pro>', unit: 'pcs', quantity_milli: 2000, unit_price_minor: 10000, discount_kind: 'percent', discount_value: 1000, tax_rate_bp: 2000 },
    { quote_id: quoteId, position: 2, kind: 'manual', code: 'SET', name: 'Setup & training', unit: 'days', quantity_milli: 1500, unit_price_minor: 80000, discount_kind: null, discount_value: 0, tax_rate_bp: 2000 },
  ]);
  return { oppId, quoteId, number };
}

const upload = (s: Session, url: string, filename: string, content: Buffer, json = false) => uploadFile(s, url, filename, content, { json });
const download = downloadBytes;

const docText = (buf: Buffer, part = 'word/document.xml') => new PizZip(buf).file(part)!.asText()
  .replace(/<\/w:p>/g, '\n').replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

const oppFiles = (oppId: number) => host.db.knex('crm_attachments').where({ record_type: 'opportunity', record_id: oppId }).orderBy('id');

/**
 * Attaches a template to a price book: by default Standard 2026 (assigned to the CRM project, so usable in
 * Europe); Nordic 2026 is assigned to Europe itself.
 */
async function attachTemplate(filename: string, content: Buffer, bookName = 'Standard 2026'): Promise<string> {
  const director = await Session.signIn(host.app, 'director');
  const book = await host.db.knex('crm_price_books').where({ name: bookName }).whereNull('deleted_at').first();
  const res = await upload(director, `/crm/price-books/${book.id}/attachments`, filename, content, true);
  expect(res.status).toBe(201);
  return `attachment-${res.body.attachment.id}`;
}

/**
 * A template the upload check would refuse, stored the way files stored before the check existed are:
 * generation must still refuse it with 422 and store nothing.
 */
async function storeUncheckedTemplate(filename: string, content: Buffer, bookName = 'Standard 2026'): Promise<string> {
  const book = await host.db.knex('crm_price_books').where({ name: bookName }).whereNull('deleted_at').first();
  const storage = storageFor(host.hostApi);
  const key = newStorageKey();
  const stored = await storage.put(key, content);
  const attachment = await addAttachment(host.db.knex, storage, {
    recordType: 'price_book', recordId: book.id, filename, contentType: 'application/octet-stream',
    size: stored.size, sha256: stored.sha256, storageKey: key, authorId: host.demo.users.director.id,
  });
  return `attachment-${attachment.id}`;
}

/** The .docx with `part` declared (in its central directory and local header) to unpack to `declared` bytes, whatever it really holds. */
function withDeclaredSize(docx: Buffer, part: string, declared: number): Buffer {
  const out = Buffer.from(docx);
  const eocd = out.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  let pos = out.readUInt32LE(eocd + 16);
  for (let n = out.readUInt16LE(eocd + 10); n > 0; n--) {
    const nameLength = out.readUInt16LE(pos + 28);
    if (out.toString('utf8', pos + 46, pos + 46 + nameLength) === part) {
      out.writeUInt32LE(declared, pos + 24);
      out.writeUInt32LE(declared, out.readUInt32LE(pos + 42) + 22);
    }
    pos += 46 + nameLength + out.readUInt16LE(pos + 30) + out.readUInt16LE(pos + 32);
  }
  return out;
}

describe('generating a quote document (Q8)', () => {
  test('the sidebar offers it; the default template makes <number>.docx among the opportunity files; the download reopens', async () => {
    const { oppId, quoteId, number } = await newQuotedOpportunity('Acme <Docs> & "Sons"');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/opportunities/${oppId}`);
    expect(page.text).toContain(`href="/crm/opportunities/${oppId}/documents/new"`);
    const form = await rep1.get(`/crm/opportunities/${oppId}/documents/new`);
    expect(form.status).toBe(200);
    expect(visibleText(form.text)).toContain(`${number} · Offer (active)`);
    expect(visibleText(form.text)).toContain('Default quote template');

    const res = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: 'default' });
    expect(res.status).toBe(303);
    const [file] = await oppFiles(oppId);
    expect(file).toMatchObject({ filename: `${number}.docx`, version: 1, content_type: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document' });
    expect(res.headers.location).toBe(`/crm/opportunities/${oppId}/attachments/${file.id}/download`);

    const doc = await download(rep1, res.headers.location);
    expect(doc.status).toBe(200);
    expect(doc.headers['content-disposition']).toContain(`${number}.docx`);
    // The row describes the bytes that were stored.
    expect(Number(file.size)).toBe((doc.body as Buffer).length);
    expect(file.sha256).toBe(crypto.createHash('sha256').update(doc.body as Buffer).digest('hex'));
    const text = docText(doc.body as Buffer);
    expect(text).toContain(`Quote ${number}`);
    expect(text).toContain('Acme <Docs> & "Sons"');
    expect(text).toContain('Licence <Pro>');
    expect(text).toContain('Setup & training');
    // 2 × 100.00 − 10 % = 180.00; 1.5 × 800.00 = 1 200.00; net 1 380.00 + 20 % tax = 1 656.00
    expect(text).toContain('180.00 EUR');
    expect(text).toContain('1\u202f656.00 EUR');
    expect(text).toContain('31 December 2026');
    expect(text).toContain(host.demo.users.rep1.name);
    expect(text).toContain('Your Company Ltd');
    expect(text).not.toMatch(/undefined|[{}]/);
    expect(docText(doc.body as Buffer, 'word/header1.xml')).toContain(`Quote ${number}`);

    // The Files list shows it; a second generation is version 2 of the same name; the journal has both.
    const files = await rep1.get(`/crm/opportunities/${oppId}/attachments`);
    expect(visibleText(files.text)).toContain(`${number}.docx`);
    const again = await rep1.agent.post(`/crm/opportunities/${oppId}/documents`).set('Accept', 'application/json').type('form')
      .send({ quote_id: String(quoteId), template: 'default', _csrf: rep1.csrf });
    expect(again.status).toBe(201);
    expect(again.body.attachment).toMatchObject({ filename: `${number}.docx`, version: 2 });
    expect((await oppFiles(oppId)).map((f) => f.version)).toEqual([1, 2]);
    const journal = await host.db.knex('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': 'opportunity', 'j.journalized_id': oppId, 'd.field': 'attachment' }).select('d.new_value');
    expect(journal.map((r) => r.new_value)).toEqual(expect.arrayContaining([`${number}.docx v1`, `${number}.docx v2`]));
  });

  test('a price-book template authored the way Word writes it fills split tags, the row loop and the header (htmx answer)', async () => {
    const { oppId, quoteId, number } = await newQuotedOpportunity();
    const templateId = await attachTemplate('word-style.docx', fs.readFileSync(FIXTURE));
    const rep1 = await Session.signIn(host.app, 'rep1');
    const form = await rep1.get(`/crm/opportunities/${oppId}/documents/new.json`);
    expect(form.body.templates.map((t: { id: string }) => t.id)).toContain(templateId);
    const res = await rep1.htmxPost(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: templateId });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:attachmentAdded');
    expect(visibleText(res.text)).toContain(`Made ${number}.docx (version 1)`);
    const [file] = await oppFiles(oppId);
    const doc = await download(rep1, `/crm/opportunities/${oppId}/attachments/${file.id}/download`);
    const text = docText(doc.body as Buffer);
    expect(text).toContain('Customer: Docs Customer');
    expect(text).toMatch(/\n1\nLicence <Pro>\n2 pcs\n100\.00 EUR\n180\.00 EUR\n/);
    expect(text).toMatch(/\n2\nSetup & training\n1\.5 days\n800\.00 EUR\n1\u202f200\.00 EUR\n/);
    expect(docText(doc.body as Buffer, 'word/header1.xml')).toContain(`Quote ${number} for Docs Customer`);
  });

  test('a broken template answers 422 naming each error and where, and stores nothing', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const broken = docxPackage({ body: [para('Hello'), para('{#items}{name}'), para('{{account.name}'), para('{quote.total | sum}')].join('') });
    const templateId = await storeUncheckedTemplate('broken.docx', broken);
    const rep1 = await Session.signIn(host.app, 'rep1');
    const res = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: templateId });
    expect(res.status).toBe(422);
    const text = visibleText(res.text);
    expect(text).toContain('has errors; nothing was stored');
    expect(text).toContain('{items} The section {#items} is opened but never closed: add {/items}. document body, paragraph 2');
    expect(text).toContain('Two opening braces in a row');
    expect(text).toContain('Unknown filter "sum" in {quote.total | sum}');
    expect(text).toContain('document body, paragraph 4');
    const json = await rep1.agent.post(`/crm/opportunities/${oppId}/documents`).set('Accept', 'application/json').type('form')
      .send({ quote_id: String(quoteId), template: templateId, _csrf: rep1.csrf });
    expect(json.status).toBe(422);
    expect(json.body.problems).toEqual(expect.arrayContaining([expect.objectContaining({ tag: 'quote.total | sum', where: 'document body, paragraph 4' })]));
    expect(await oppFiles(oppId)).toEqual([]);
  });

  test('a template that is not a docx (a renamed PDF) answers 422 and stores nothing; bad choices name the field', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const templateId = await storeUncheckedTemplate('renamed.docx', Buffer.from('%PDF-1.7\n%%EOF\n'));
    const rep1 = await Session.signIn(host.app, 'rep1');
    const res = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: templateId });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('This is a PDF file, not a Word document');
    const other = await newQuotedOpportunity();
    const wrongQuote = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(other.quoteId), template: 'default' });
    expect(wrongQuote.status).toBe(422);
    expect(wrongQuote.text).toContain('data-field="quote_id"');
    const wrongTemplate = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: '../../etc/passwd' });
    expect(wrongTemplate.status).toBe(422);
    expect(wrongTemplate.text).toContain('data-field="template"');
    expect(await oppFiles(oppId)).toEqual([]);
    expect(await oppFiles(other.oppId)).toEqual([]);
  });

  test('permissions: rep2 cannot reach a Europe opportunity (404), nor generate, nor read its tokens or files', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/opportunities/${oppId}/documents/new`)).status).toBe(404);
    expect((await rep2.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: 'default' })).status).toBe(404);
    expect((await rep2.get(`/crm/settings/tokens?opportunity=${oppId}`)).status).toBe(404);
    expect((await rep2.get(`/crm/opportunities/${oppId}/attachments`)).status).toBe(404);
    expect(await oppFiles(oppId)).toEqual([]);
  });
});

  test('making a document reads the maker’s access, the opportunity and the quote once each', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const rep1 = await Session.signIn(host.app, 'rep1');
    const ACCESS = /role_permissions|from ["`]project_modules["`]|crm_partner_users|crm_role_visibility|from ["`]members["`] where/;
    const { result: res, statements } = await statementsDuring(host.db.knex, () => rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: 'default' }));
    const access = statements.filter((q) => ACCESS.test(q.sql)).map((q) => `${q.sql} ${JSON.stringify(q.bindings)}`);
    expect(res.status).toBe(303);
    expect(await oppFiles(oppId)).toHaveLength(1);
    // The host's grants, modules and memberships, and the user's CRM projects (one read answers the three
    // permissions involved): each read once, none again. (Partner links and role levels are kept across requests,
    // under their tables' versions.)
    expect(access.length).toBeGreaterThanOrEqual(4);
    expect(access.filter((statement, i) => access.indexOf(statement) !== i)).toEqual([]);
    // The opportunity is read in full once (checked as editable), and the quote only among the opportunity's quotes:
    // the document is made from those, not from the same rows read again.
    const reads = (from: RegExp) => statements.filter((q) => /^select /i.test(q.sql) && from.test(q.sql)).map((q) => q.sql);
    expect(reads(/ from ["`]crm_quotes["`]/)).toHaveLength(1);
    expect(reads(/^select ["`]o["`]\.\*/)).toHaveLength(1);
    // …and with the edit scope asked in that same statement, no other statement reads the opportunity.
    expect(reads(/ from ["`]crm_opportunities["`]/)).toHaveLength(1);
    // On PostgreSQL the file's row and its journal entry are one statement, no transaction around it.
    if (isPg(host.db.knex)) expect(statements.filter((q) => /^(begin|commit)/i.test(q.sql))).toEqual([]);
  });

  test('a document from the default template reads no price book nor template file; a template of a price book the project does not use is refused', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const rep1 = await Session.signIn(host.app, 'rep1');
    const { result: res, statements } = await statementsDuring(host.db.knex, () => rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: 'default' }));
    expect(res.status).toBe(303);
    const priceBookReads = statements.filter((q) => /^select /i.test(q.sql)
      && (/from ["`](crm_price_books|crm_price_book_projects)["`]/.test(q.sql) || (/from ["`]crm_attachments["`]/.test(q.sql) && q.bindings.includes('price_book'))));
    expect(priceBookReads.map((q) => q.sql)).toEqual([]);
    expect(await oppFiles(oppId)).toHaveLength(1);
    // A price book assigned to no project: its template is not among this opportunity's choices.
    await host.db.knex('crm_price_books').insert({ name: 'Elsewhere 2026', description: '', active: true });
    const elsewhere = await storeUncheckedTemplate('elsewhere.docx', fs.readFileSync(FIXTURE), 'Elsewhere 2026');
    const refused = await rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: elsewhere });
    expect(refused.status).toBe(422);
    expect(refused.text).toContain('data-field="template"');
    expect(visibleText(refused.text)).toContain('Choose one of the templates listed');
    expect(await oppFiles(oppId)).toHaveLength(1);
  });

  test('migration 036 numbers the small tables a document reads, and its rollback undoes it', async () => {
    const knex = host.db.knex;
    const version = async (table: string) => (await knex('crm_table_versions').where({ table_name: table }).first('version'))?.version;
    const before = Number(await version('crm_custom_fields'));
    const field = await knex('crm_custom_fields').first();
    await knex('crm_custom_fields').where({ id: field.id }).update({ position: field.position });
    expect(Number(await version('crm_custom_fields'))).toBeGreaterThan(before);
    await moreTableVersions.down(knex);
    try {
      expect(await knex('crm_table_versions').whereIn('table_name', [...MORE_VERSIONED_TABLES])).toEqual([]);
      // Without the numbers' rows, a write no longer has a trigger that could fail on them.
      await knex('crm_custom_fields').where({ id: field.id }).update({ position: field.position });
    } finally {
      await moreTableVersions.up(knex);
    }
    expect((await knex('crm_table_versions').whereIn('table_name', [...MORE_VERSIONED_TABLES]).pluck('table_name')).sort()).toEqual([...MORE_VERSIONED_TABLES].sort());
    // Numbered afresh from 0, and counting again.
    const book = await knex('crm_price_books').first('id', 'name');
    await knex('crm_price_books').where({ id: book.id }).update({ name: book.name });
    expect(Number(await version('crm_price_books'))).toBe(1);
  });

  test('a further document reads custom fields, field rules, statuses and price books no more, until one of them changes', async () => {
    const { oppId, quoteId } = await newQuotedOpportunity();
    const rep1 = await Session.signIn(host.app, 'rep1');
    const make = () => statementsDuring(host.db.knex, () => rep1.post(`/crm/opportunities/${oppId}/documents`, { quote_id: String(quoteId), template: 'default' }));
    const KEPT = /from ["`](crm_custom_fields|crm_field_permissions|crm_opportunity_statuses|crm_price_books)["`]/;
    const keptReads = (statements: { sql: string }[]) => statements.filter((q) => /^select /i.test(q.sql) && KEPT.test(q.sql)).map((q) => KEPT.exec(q.sql)![1]);
    await make();
    const again = await make();
    expect(again.result.status).toBe(303);
    expect(keptReads(again.statements)).toEqual([]);
    const field = await host.db.knex('crm_custom_fields').where({ entity: 'account' }).first();
    await host.db.knex('crm_custom_fields').where({ id: field.id }).update({ name: `${field.name} (renamed)` });
    try {
      const afterChange = await make();
      expect(afterChange.result.status).toBe(303);
      expect(keptReads(afterChange.statements)).toEqual(['crm_custom_fields']);
    } finally {
      await host.db.knex('crm_custom_fields').where({ id: field.id }).update({ name: field.name });
    }
    expect(await oppFiles(oppId)).toHaveLength(3);
  });


  test('the document form offers the templates of every price book of the project, read in one statement', async () => {
    const { oppId } = await newQuotedOpportunity();
    const standard = await attachTemplate('standard-offer.docx', fs.readFileSync(FIXTURE));
    const nordic = await attachTemplate('nordic-offer.docx', fs.readFileSync(FIXTURE), 'Nordic 2026');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const { result: form, statements } = await statementsDuring(host.db.knex, () => rep1.get(`/crm/opportunities/${oppId}/documents/new.json`));
    expect(form.status).toBe(200);
    const offered = form.body.templates.map((t: { id: string; label: string }) => `${t.id} ${t.label}`);
    expect(offered).toEqual(expect.arrayContaining([
      `${standard} Standard 2026: standard-offer.docx (version 1)`, `${nordic} Nordic 2026: nordic-offer.docx (version 1)`,
    ]));
    expect(statements.filter((q) => /from ["`]crm_attachments["`]/.test(q.sql))).toHaveLength(1);
  });

describe('token reference and template check (Q9)', () => {
  test('the token reference lists every token with its value for the opportunity, escaped', async () => {
    const { oppId, number } = await newQuotedOpportunity('<script>alert(1)</script> Ltd');
    const rep1 = await Session.signIn(host.app, 'rep1');
    const res = await rep1.get(`/crm/settings/tokens?opportunity=${oppId}`);
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('<script>alert(1)');
    expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Ltd');
    const text = visibleText(res.text);
    expect(text).toContain(`{quote.number} Quote number ${number}`);
    expect(text).toContain('{quote.total} Total to pay');
    expect(text).toContain('{quote.total} Total to pay, tax included, formatted with its currency ("1 234.50 EUR"); _raw : "1234.50" 1 656.00 EUR');
    // A description's `backticked` words are shown as code, not as literal backticks.
    expect(res.text).toContain('<code>_raw</code>');
    expect(res.text).not.toContain('`');
    expect(text).toContain('{#items} {name} Product or line name Licence <Pro>');
    const json = await rep1.get(`/crm/settings/tokens.json?opportunity=${oppId}`);
    expect(json.body.tokens).toEqual(expect.arrayContaining([{ token: 'quote.total_raw', loop: null, description: expect.any(String), value: '1656.00' }]));
    const bare = await rep1.get('/crm/settings/tokens');
    expect(bare.status).toBe(200);
    expect(visibleText(bare.text)).toContain('{account.custom.<field>}');
    expect((await rep1.get('/crm/settings/tokens?opportunity=99999999')).status).toBe(404);
  });

  test('the check lists syntax errors and unknown tokens; a renamed PDF is refused; only price-book managers may use it', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.get('/crm/settings/templates/check')).status).toBe(200);
    const ok = await upload(director, '/crm/settings/templates/check', 'word-style.docx', fs.readFileSync(FIXTURE));
    expect(ok.status).toBe(200);
    expect(visibleText(ok.text)).toContain('word-style.docx: no problems found');

    const bad = docxPackage({ body: [para('{#items}{name}'), para('{{account.name}'), para('{quote.total | sum}'), para('{account.nmae} {account.custom.customer_tier}')].join('') });
    const res = await upload(director, '/crm/settings/templates/check', 'bad.docx', bad);
    expect(res.status).toBe(422);
    const text = visibleText(res.text);
    expect(text).toContain('bad.docx: 3 syntax errors');
    expect(text).toContain('The section {#items} is opened but never closed');
    expect(text).toContain('Unknown filter "sum"');
    const unknown = await upload(director, '/crm/settings/templates/check', 'unknown.docx', docxPackage({ body: para('{account.nmae} {account.custom.customer_tier} {account.custom.shoe_size}') }), true);
    expect(unknown.status).toBe(422);
    expect(unknown.body.unknown_tokens).toEqual([
      { tag: 'account.nmae', where: 'document body, paragraph 1' },
      { tag: 'account.custom.shoe_size', where: 'document body, paragraph 1' },
    ]);

    const pdf = await upload(director, '/crm/settings/templates/check', 'quote.docx', Buffer.from('%PDF-1.4\n'));
    expect(pdf.status).toBe(422);
    expect(visibleText(pdf.text)).toContain('quote.docx: This is a PDF file, not a Word document');
    const cfb = await upload(director, '/crm/settings/templates/check', 'locked.docx', Buffer.concat([Buffer.from('d0cf11e0a1b11ae1', 'hex'), Buffer.alloc(1024)]));
    expect(visibleText(cfb.text)).toContain('This document is encrypted');

    // A body of 370 KB declared as 1,000 bytes: the file is refused, before pizzip unpacks it, and not as a syntax error.
    const lying = withDeclaredSize(docxPackage({ body: para('Dear {account.name},').repeat(5000) }), 'word/document.xml', 1000);
    const bomb = await upload(director, '/crm/settings/templates/check', 'lying.docx', lying);
    expect(bomb.status).toBe(422);
    expect(visibleText(bomb.text)).toContain('lying.docx: The part word/document.xml unpacks to more than the zip declares (a zip bomb?): refused.');
    expect(bomb.text).not.toContain('size mismatch');

    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get('/crm/settings/templates/check')).status).toBe(404);
    expect((await upload(rep1, '/crm/settings/templates/check', 'x.docx', fs.readFileSync(FIXTURE))).status).toBe(404);
  });

  test('uploading a Word template to a price book runs the check: a template with problems is refused, listed and not stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const book = await host.db.knex('crm_price_books').where({ name: 'Standard 2026' }).whereNull('deleted_at').first();
    const url = `/crm/price-books/${book.id}/attachments`;
    const bookFiles = () => host.db.knex('crm_attachments').where({ record_type: 'price_book', record_id: book.id }).pluck('filename');
    const storedBlobs = () => fs.readdirSync(path.join(host.db.dataDir, 'attachments'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
    const before = { files: await bookFiles(), blobs: storedBlobs() };

    const broken = docxPackage({ body: [para('Dear {account.name},'), para('{#items}{name}'), para('{quote.total | sum} {account.nmae}')].join('') });
    const page = await upload(director, url, 'offer-broken.docx', broken);
    expect(page.status).toBe(422);
    const text = visibleText(page.text);
    // Unknown tokens are looked for once the syntax is sound (the JSON case below).
    expect(text).toContain('offer-broken.docx was not stored: the template check found 2 syntax errors. Fix them in Word and upload it again.');
    expect(text).toContain('{items} The section {#items} is opened but never closed: add {/items}. document body, paragraph 2');
    expect(text).toContain('Unknown filter "sum" in {quote.total | sum}');

    const json = await upload(director, url, 'offer-unknown.docx', docxPackage({ body: para('{account.name} {quote.totl}') }), true);
    expect(json.status).toBe(422);
    expect(json.body.error).toContain('offer-unknown.docx was not stored');
    expect(json.body.errors).toEqual([]);
    expect(json.body.unknown_tokens).toEqual([{ tag: 'quote.totl', where: 'document body, paragraph 1' }]);

    const pdf = await upload(director, url, 'offer.docx', Buffer.from('%PDF-1.7\n%%EOF\n'), true);
    expect(pdf.status).toBe(422);
    expect(pdf.body.error).toBe('offer.docx was not stored: This is a PDF file, not a Word document: choose a .docx file.');
    const lying = withDeclaredSize(docxPackage({ body: para('Dear {account.name},').repeat(5000) }), 'word/document.xml', 1000);
    const bomb = await upload(director, url, 'offer-lying.docx', lying, true);
    expect(bomb.status).toBe(422);
    expect(bomb.body.error).toBe('offer-lying.docx was not stored: The part word/document.xml unpacks to more than the zip declares (a zip bomb?): refused.');

    expect(await bookFiles()).toEqual(before.files);
    expect(storedBlobs()).toBe(before.blobs);

    // Other files are no templates and are kept as they come; a clean template is stored and offered.
    expect((await upload(director, url, 'brochure.pdf', Buffer.from('%PDF-1.7\n%%EOF\n'), true)).status).toBe(201);
    const clean = await upload(director, url, 'offer-clean.docx', docxPackage({ body: para('Dear {account.name}, {quote.total}') }), true);
    expect(clean.status).toBe(201);
    expect(await bookFiles()).toEqual(expect.arrayContaining(['brochure.pdf', 'offer-clean.docx']));
    const { oppId } = await newQuotedOpportunity();
    const rep1 = await Session.signIn(host.app, 'rep1');
    const choices = visibleText((await rep1.get(`/crm/opportunities/${oppId}/documents/new`)).text);
    expect(choices).toContain('Standard 2026: offer-clean.docx (version 1)');
    expect(choices).not.toContain('offer-broken.docx');
    expect(choices).not.toContain('brochure.pdf');
  });
});
