import type { Knex } from 'knex';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';
import { downloadBytes, multipart, uploadFile, type UploadOptions } from '../helpers/files';
import { isPg } from '../../migrations/dialect';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const accountId = async (name: string): Promise<number> => Number((await host.db.knex('crm_accounts').where({ name }).first()).id);

/** A fresh account of rep1's (in Europe unless said), so each test owns its files. */
async function newAccount(name: string, project = 'crm-europe'): Promise<number> {
  const type = await host.db.knex('crm_account_types').where({ name: 'Company' }).first();
  const [row] = await host.db.knex('crm_accounts').insert({ account_type_id: type.id, name, author_id: host.demo.users.rep1.id }).returning('id');
  const id = Number(row.id ?? row);
  await host.db.knex('crm_account_projects').insert({ account_id: id, project_id: host.demo.projects[project].id });
  return id;
}

/** What the no-JS upload form sends to an account: multipart, the token in the action's query string. */
const upload = (s: Session, id: number, filename: string, content: Buffer | string, opts: UploadOptions = {}) => uploadFile(s, `/crm/accounts/${id}/attachments`, filename, content, opts);
const download = downloadBytes;

function storedFiles(): string[] {
  const root = path.join(host.db.dataDir, 'attachments');
  if (!fs.existsSync(root)) return [];
  return (fs.readdirSync(root, { recursive: true }) as string[]).filter((p) => fs.statSync(path.join(root, p)).isFile());
}

async function setLimitMb(mb: number): Promise<void> {
  const director = await Session.signIn(host.app, 'director');
  const settings = (await director.get('/crm/settings.json')).body.settings as Record<string, unknown>;
  const form: Record<string, string> = {};
  for (const [k, v] of Object.entries(settings)) form[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
  const res = await director.post('/crm/settings', { ...form, max_attachment_mb: String(mb) });
  expect(res.status).toBe(303);
}

const rows = (id: number) => host.db.knex('crm_attachments').where({ record_type: 'account', record_id: id }).orderBy('id');

describe('attachments with versions (P7)', () => {
  test('upload → listed on the Files tab → download returns the same bytes, as an attachment', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test One');
    const bytes = crypto.randomBytes(50_000);
    const res = await upload(rep, id, 'offer.pdf', bytes, { contentType: 'application/pdf' });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/accounts/${id}?tab=files`);

    const [row] = await rows(id);
    expect(row).toMatchObject({ filename: 'offer.pdf', version: 1, content_type: 'application/pdf', author_id: host.demo.users.rep1.id });
    expect(Number(row.size)).toBe(bytes.length);
    expect(row.sha256).toBe(crypto.createHash('sha256').update(bytes).digest('hex'));
    expect(row.storage_key).toMatch(/^[a-f0-9]{32}$/);

    const tab = await rep.get(`/crm/accounts/${id}?tab=files`);
    expect(tab.status).toBe(200);
    expect(visibleText(tab.text)).toContain('offer.pdf');
    expect(tab.text).toContain(`href="/crm/accounts/${id}/attachments/${row.id}/download"`);
    expect(tab.text).toContain('enctype="multipart/form-data"');
    expect(tab.text).toContain(`action="/crm/accounts/${id}/attachments?_csrf=${encodeURIComponent(rep.csrf)}"`);
    expect(visibleText(tab.text)).toContain('at most 10 MB');

    const file = await download(rep, `/crm/accounts/${id}/attachments/${row.id}/download`);
    expect(file.status).toBe(200);
    expect(Buffer.compare(file.body as Buffer, bytes)).toBe(0);
    expect(file.headers['content-disposition']).toBe('attachment; filename=offer.pdf');
    expect(file.headers['content-type']).toBe('application/pdf');
    expect(file.headers['x-content-type-options']).toBe('nosniff');
  });

  test('the same name again is version 2: both download, the list shows the versions, JSON too', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Versions');
    expect((await upload(rep, id, 'contract.docx', 'first draft')).status).toBe(303);
    expect((await upload(rep, id, 'contract.docx', 'second draft, longer')).status).toBe(303);
    expect((await upload(rep, id, 'other.txt', 'x', { contentType: 'text/plain' })).status).toBe(303);
    const stored = await rows(id);
    expect(stored.map((r) => [r.filename, r.version])).toEqual([['contract.docx', 1], ['contract.docx', 2], ['other.txt', 1]]);
    const [v1, v2] = stored;
    expect((await download(rep, `/crm/accounts/${id}/attachments/${v1.id}/download`)).body.toString()).toBe('first draft');
    expect((await download(rep, `/crm/accounts/${id}/attachments/${v2.id}/download`)).body.toString()).toBe('second draft, longer');

    const json = await rep.get(`/crm/accounts/${id}/attachments.json`);
    expect(json.status).toBe(200);
    expect(json.body.files.map((f: { filename: string }) => f.filename)).toEqual(['contract.docx', 'other.txt']);
    const contract = json.body.files[0];
    expect(contract.latest).toMatchObject({ id: v2.id, version: 2, size: 'second draft, longer'.length, download_url: `/crm/accounts/${id}/attachments/${v2.id}/download` });
    expect(contract.latest).not.toHaveProperty('storage_key');
    expect(contract.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);

    const tab = visibleText((await rep.get(`/crm/accounts/${id}?tab=files`)).text);
    expect(tab).toContain('contract.docx v2 · 2 versions');
    expect(tab).toContain('Earlier versions of contract.docx v1');

    const versions = await rep.get(`/crm/accounts/${id}/attachments/${v1.id}/versions`);
    expect(versions.status).toBe(200);
    expect(visibleText(versions.text)).toContain('Versions of contract.docx');
    expect(versions.text).toContain(`/attachments/${v1.id}/download`);
    expect(versions.text).toContain(`/attachments/${v2.id}/download`);
    const versionsJson = await rep.get(`/crm/accounts/${id}/attachments/${v2.id}/versions.json`);
    expect(versionsJson.body.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
  });

  test('each upload is journaled on the account and shown in its history', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Journal');
    await upload(rep, id, 'name.pdf', 'one');
    await upload(rep, id, 'name.pdf', 'two');
    const details = await host.db.knex('crm_journals as j').join('crm_journal_details as d', 'd.journal_id', 'j.id')
      .where({ 'j.journalized_type': 'account', 'j.journalized_id': id, 'd.field': 'attachment' }).orderBy('j.id').select('j.user_id', 'j.action', 'd.old_value', 'd.new_value');
    expect(details).toEqual([
      { user_id: host.demo.users.rep1.id, action: 'update', old_value: null, new_value: 'name.pdf v1' },
      { user_id: host.demo.users.rep1.id, action: 'update', old_value: null, new_value: 'name.pdf v2' },
    ]);
    expect(visibleText((await rep.get(`/crm/accounts/${id}?tab=history`)).text)).toContain('Attachment : (empty) → name.pdf v2');
  });

  test('a file over the limit is refused with the limit named; no row, no file on disk', async () => {
    await setLimitMb(1);
    try {
      const rep = await Session.signIn(host.app, 'rep1');
      const id = await newAccount('Files Test Limit');
      const before = storedFiles();

      const over = await upload(rep, id, 'big.bin', Buffer.alloc(1024 * 1024 + 1, 7));
      expect(over.status).toBe(413);
      expect(visibleText(over.text)).toContain('The file is larger than the limit of 1 MB. Nothing was uploaded.');
      const overJson = await upload(rep, id, 'big.bin', Buffer.alloc(1024 * 1024 + 10, 7), { json: true });
      expect(overJson.status).toBe(413);
      expect(overJson.body).toMatchObject({ error: expect.stringContaining('1 MB'), fields: { file: 'must be at most 1 MB' } });
      // Far over its own declared length: refused before it is read.
      const huge = await upload(rep, id, 'huge.bin', Buffer.alloc(3 * 1024 * 1024, 7), { json: true });
      expect(huge.status).toBe(413);

      expect(await rows(id)).toHaveLength(0);
      expect(storedFiles()).toEqual(before);
      expect(fs.readdirSync(path.join(host.db.dataDir, 'attachments', 'tmp'))).toEqual([]);

      // Exactly at the limit is fine.
      expect((await upload(rep, id, 'fits.bin', Buffer.alloc(1024 * 1024, 7))).status).toBe(303);
      expect((await rows(id)).map((r) => Number(r.size))).toEqual([1024 * 1024]);
    } finally {
      await setLimitMb(10);
    }
  });

  test('no file chosen, or not multipart: 422 with the field named, nothing stored', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Empty');
    const none = await upload(rep, id, '', Buffer.alloc(0));
    expect(none.status).toBe(422);
    expect(visibleText(none.text)).toContain('Choose a file to upload.');
    const form = await rep.agent.post(`/crm/accounts/${id}/attachments`).set('Accept', 'application/json').type('form').send({ _csrf: rep.csrf, file: 'x' });
    expect(form.status).toBe(422);
    expect(form.body.fields).toHaveProperty('file');
    expect(await rows(id)).toHaveLength(0);
  });

  test('a multipart upload without the CSRF token is refused with 403; the htmx header is accepted', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test CSRF');
    const res = await upload(rep, id, 'a.txt', 'nope', { csrf: 'none' });
    expect(res.status).toBe(403);
    const forged = await rep.agent.post(`/crm/accounts/${id}/attachments?_csrf=forged`).set('Content-Type', multipart('a.txt', Buffer.from('x')).type).send(multipart('a.txt', Buffer.from('x')).body);
    expect(forged.status).toBe(403);
    expect(await rows(id)).toHaveLength(0);
    expect((await upload(rep, id, 'a.txt', 'yes', { csrf: 'header', json: true })).status).toBe(201);
  });

  test("another user's private account: 404 on the list, upload, download and versions", async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const privateId = await accountId('Rick’s private prospect');
    expect((await upload(rep1, privateId, 'secret.txt', 'top secret')).status).toBe(303);
    const [secret] = await rows(privateId);
    for (const login of ['director', 'admin']) {
      const other = await Session.signIn(host.app, login);
      expect((await other.get(`/crm/accounts/${privateId}/attachments`)).status).toBe(404);
      expect((await other.get(`/crm/accounts/${privateId}/attachments.json`)).status).toBe(404);
      expect((await other.get(`/crm/accounts/${privateId}/attachments/${secret.id}/download`)).status).toBe(404);
      expect((await other.get(`/crm/accounts/${privateId}/attachments/${secret.id}/versions`)).status).toBe(404);
      expect((await upload(other, privateId, 'sneaky.txt', 'x')).status).toBe(404);
    }
    expect((await rows(privateId)).map((r) => r.filename)).toEqual(['secret.txt']);
  });

  test('an attachment id is only found under its own record', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const a = await newAccount('Files Test Owner A');
    const b = await newAccount('Files Test Owner B');
    await upload(rep, a, 'mine.txt', 'of A');
    const [row] = await rows(a);
    expect((await rep.get(`/crm/accounts/${b}/attachments/${row.id}/download`)).status).toBe(404);
    expect((await rep.get(`/crm/accounts/${b}/attachments/${row.id}/versions`)).status).toBe(404);
    expect((await rep.get(`/crm/accounts/${a}/attachments/abc/download`)).status).toBe(404);
  });

  test('a user who may view but not edit sees the files, downloads them, and cannot upload', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const supply = await newAccount('Files Test Shared', 'crm');
    expect((await upload(rep, supply, 'catalogue.txt', 'bolts')).status).toBe(303);
    const pm = await Session.signIn(host.app, 'pm');
    const tab = await pm.get(`/crm/accounts/${supply}?tab=files`);
    expect(tab.status).toBe(200);
    expect(visibleText(tab.text)).toContain('catalogue.txt');
    expect(tab.text).not.toContain('enctype="multipart/form-data"');
    const [row] = await rows(supply);
    expect((await download(pm, `/crm/accounts/${supply}/attachments/${row.id}/download`)).body.toString()).toBe('bolts');
    expect((await upload(pm, supply, 'pm.txt', 'x')).status).toBe(404);
    expect((await rows(supply)).map((r) => r.filename)).toEqual(['catalogue.txt']);
  });

  test('path-traversal and hostile filenames are stored as a plain name under a generated key', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Traversal');
    for (const name of ['../../../etc/passwd', '..\\..\\windows\\win.ini', 'a\u0007b\u202ecod.exe', '..', `${'x'.repeat(300)}.pdf`]) {
      expect((await upload(rep, id, name, `content of ${name.slice(0, 20)}`)).status).toBe(303);
    }
    const stored = await rows(id);
    expect(stored.map((r) => r.filename)).toEqual(['passwd', 'win.ini', 'abcod.exe', 'file', `${'x'.repeat(251)}.pdf`]);
    for (const r of stored) {
      expect(r.storage_key).toMatch(/^[a-f0-9]{32}$/);
      expect(fs.existsSync(path.join(host.db.dataDir, 'attachments', r.storage_key.slice(0, 2), r.storage_key))).toBe(true);
    }
    expect(fs.existsSync(path.join(host.db.dataDir, '..', 'etc'))).toBe(false);
    const file = await download(rep, `/crm/accounts/${id}/attachments/${stored[0].id}/download`);
    expect(file.headers['content-disposition']).toBe('attachment; filename=passwd');
  });

  test('HTML and SVG uploads are escaped in lists and never served inline', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test XSS');
    const name = '<img src=x onerror=alert(1)>.html';
    expect((await upload(rep, id, name, '<script>alert(1)</script>', { contentType: 'text/html' })).status).toBe(303);
    const tab = await rep.get(`/crm/accounts/${id}?tab=files`);
    expect(tab.text).not.toContain('<img src=x');
    expect(tab.text).toContain('&lt;img src=x onerror=alert(1)&gt;.html');
    const [row] = await rows(id);
    expect(row.content_type).toBe('text/html');
    const file = await download(rep, `/crm/accounts/${id}/attachments/${row.id}/download`);
    expect(file.headers['content-type']).toBe('application/octet-stream');
    expect(file.headers['content-disposition']).toMatch(/^attachment; filename=/);
    expect(file.headers['x-content-type-options']).toBe('nosniff');
    expect(file.headers['content-security-policy']).toContain('sandbox');
  });

  test('uploads of one name at the same moment get distinct versions; every row has its file', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Race');
    const results = await Promise.all([1, 2, 3, 4].map((n) => upload(rep, id, 'race.txt', `copy ${n}`)));
    for (const r of results) expect([303, 409]).toContain(r.status);
    const stored = await rows(id);
    expect(stored).toHaveLength(results.filter((r) => r.status === 303).length);
    expect(new Set(stored.map((r) => r.version)).size).toBe(stored.length);
    for (const r of stored) expect(fs.existsSync(path.join(host.db.dataDir, 'attachments', r.storage_key.slice(0, 2), r.storage_key))).toBe(true);
  });

  test('when the row cannot be written, the stored file is removed again', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test Rollback');
    const before = storedFiles();
    // The database refuses the last write, the journal entry's detail: the row written before it must go too.
    const removeTrap = await refuseJournalDetail(host.db.knex, 'lost.txt v1');
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect((await upload(rep, id, 'lost.txt', 'bytes')).status).toBe(500);
    } finally {
      await removeTrap();
      errors.mockRestore();
    }
    expect(await rows(id)).toHaveLength(0);
    expect(await host.db.knex('crm_journal_details').where({ field: 'attachment', new_value: 'lost.txt v1' })).toHaveLength(0);
    expect(storedFiles()).toEqual(before);
  });

  test('an API client uploads with its key (no CSRF) and gets the attachment as JSON', async () => {
    const rep = await Session.signIn(host.app, 'rep1');
    const id = await newAccount('Files Test API');
    const key = await apiKeyFor(rep);
    const { body, type } = multipart('api.csv', Buffer.from('a,b\n1,2\n'), 'text/csv');
    const res = await request(host.app).post(`/crm/accounts/${id}/attachments`)
      .set('X-API-Key', key).set('Accept', 'application/json').set('Content-Type', type).send(body);
    expect(res.status).toBe(201);
    expect(res.body.attachment).toMatchObject({ filename: 'api.csv', version: 1, content_type: 'text/csv', size: 8 });
  });
});

/** An API key for the session's user, made on the host's account page. */
async function apiKeyFor(s: Session): Promise<string> {
  await s.post('/my/api_key');
  const key = /<code id="api-key">([0-9a-f]+)<\/code>/.exec((await s.get('/my/account')).text)?.[1];
  if (!key) throw new Error('no API key on the account page');
  return key;
}

describe('attachments on contacts and partners (P7)', () => {
  test('a contact and a partner take files with versions; invisible ones answer 404', async () => {
    const director = await Session.signIn(host.app, 'director');
    const contact = (await host.db.knex('crm_personal_contacts').where({ last_name: 'Holm' }).first()).id;
    const partner = (await host.db.knex('crm_partners').where({ name: 'Baltic Consulting' }).first()).id;
    for (const base of [`/crm/personal-contacts/${contact}`, `/crm/partners/${partner}`]) {
      const first = await director.agent.post(`${base}/attachments?_csrf=${encodeURIComponent(director.csrf)}`).attach('file', Buffer.from('v1'), 'terms.txt');
      expect(first.status).toBe(303);
      await director.agent.post(`${base}/attachments?_csrf=${encodeURIComponent(director.csrf)}`).attach('file', Buffer.from('version two'), 'terms.txt');
      const json = await director.get(`${base}/attachments.json`);
      expect(json.body.files).toHaveLength(1);
      expect(json.body.files[0].versions).toHaveLength(2);
      const tab = await director.get(`${base}?tab=files`);
      expect(visibleText(tab.text)).toContain('terms.txt');
    }
    const rep2 = await Session.signIn(host.app, 'rep2');
    expect((await rep2.get(`/crm/partners/${partner}/attachments`)).status).toBe(404);
    expect((await rep2.get(`/crm/partners/${partner}?tab=files`)).status).toBe(404);
  });
});

/** A trigger that makes the database refuse a journal detail with this new value; returns its removal. */
async function refuseJournalDetail(knex: Knex, newValue: string): Promise<() => Promise<void>> {
  const quoted = `'${newValue.replace(/'/g, "''")}'`;
  if (isPg(knex)) {
    await knex.raw(`create function test_refuse_detail() returns trigger language plpgsql as $$
      begin if new.new_value = ${quoted} then raise exception 'database went away'; end if; return new; end $$`);
    await knex.raw('create trigger test_refuse_detail before insert on crm_journal_details for each row execute function test_refuse_detail()');
    return async () => {
      await knex.raw('drop trigger test_refuse_detail on crm_journal_details');
      await knex.raw('drop function test_refuse_detail()');
    };
  }
  await knex.raw(`create trigger test_refuse_detail before insert on crm_journal_details when new.new_value = ${quoted}
    begin select raise(abort, 'database went away'); end`);
  return async () => { await knex.raw('drop trigger test_refuse_detail'); };
}
