import { racing, Session, startTestHost, visibleText, type TestHost } from '../helpers/app';
import { internalRelationKey } from '../../migrations/20261124_035_internal_relation_key';
import { isUniqueViolation } from '../../plugin/services/relations';

let host: TestHost;
let companyType: number;

beforeAll(async () => {
  host = await startTestHost();
  companyType = Number((await host.db.knex('crm_account_types').where({ name: 'Company' }).first()).id);
});
afterAll(async () => { await host.close(); });

/** An account of the test's own, linked to `project` (by identifier) and created by `author`. */
async function makeAccount(name: string, opts: { project?: string | null; author?: string; isPrivate?: boolean; parentId?: number } = {}): Promise<number> {
  const knex = host.db.knex;
  const [row] = await knex('crm_accounts').insert({
    account_type_id: companyType, name, author_id: host.demo.users[opts.author ?? 'director'].id, is_private: opts.isPrivate ?? false, parent_id: opts.parentId ?? null,
  }).returning('id');
  const id = Number(row.id ?? row);
  const project = opts.project === undefined ? 'crm-europe' : opts.project;
  if (project) await knex('crm_account_projects').insert({ account_id: id, project_id: host.demo.projects[project].id });
  return id;
}

const relationTypeId = async (name: string) => Number((await host.db.knex('crm_relation_types').where({ name }).first()).id);
const categoryId = async (name: string) => Number((await host.db.knex('crm_internal_relation_categories').where({ name }).first()).id);
const links = (accountId: number) => host.db.knex('crm_account_links').where((b) => b.where({ account_id: accountId }).orWhere({ related_account_id: accountId }));
async function journalDetails(accountId: number, field: string): Promise<{ old_value: string | null; new_value: string | null }[]> {
  return host.db.knex('crm_journal_details as d').join('crm_journals as j', 'j.id', 'd.journal_id')
    .where({ 'j.journalized_type': 'account', 'j.journalized_id': accountId, 'd.field': field }).orderBy('d.id').select('d.old_value', 'd.new_value');
}
const relationsText = async (s: Session, id: number) => visibleText((await s.get(`/crm/accounts/${id}?tab=relations`)).text);

describe('linked accounts (A7)', () => {
  test('a link shows on both accounts in its own wording, without JavaScript (303), journaled on both', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Linkco Daughter');
    const b = await makeAccount('Linkco Holding', { project: 'crm-americas' });
    const form = await director.get(`/crm/accounts/${a}/links/new`);
    expect(form.status).toBe(200);
    expect(visibleText(form.text)).toContain('Link Linkco Daughter to another account');
    const res = await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Subsidiary of')), related_account: String(b) });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/crm/accounts/${a}?tab=relations`);
    expect(await relationsText(director, a)).toContain('Subsidiary of Linkco Holding');
    expect(await relationsText(director, b)).toContain('Parent company of Linkco Daughter');
    expect(await links(a)).toHaveLength(1);
    expect(await journalDetails(a, 'linked_accounts')).toEqual([{ old_value: null, new_value: `Subsidiary of Linkco Holding (#${b})` }]);
    expect(await journalDetails(b, 'linked_accounts')).toEqual([{ old_value: null, new_value: `Parent company of Linkco Daughter (#${a})` }]);
  });

  test('through htmx, by name and in the inverse wording: the relations tab comes back as a fragment with an HX-Trigger', async () => {
    const director = await Session.signIn(host.app, 'director');
    const parent = await makeAccount('Zebra Parent Unique');
    const child = await makeAccount('Zebra Child Unique');
    const res = await director.htmxPost(`/crm/accounts/${parent}/links`, { relation: `${await relationTypeId('Subsidiary of')}:inverse`, related_account: 'zebra child unique' });
    expect(res.status).toBe(200);
    expect(res.headers['hx-trigger']).toBe('crm:accountsLinked');
    expect(res.text.trim().startsWith('<div class="page" id="crm-page">')).toBe(true);
    expect(res.text).not.toContain('<html');
    expect(res.text).toContain('id="tab-relations"');
    expect(visibleText(res.text)).toContain('Parent company of Zebra Child Unique');
    // Stored once, in the type's own direction.
    const [row] = await links(parent);
    expect([Number(row.account_id), Number(row.related_account_id)]).toEqual([child, parent]);
    expect(await relationsText(director, child)).toContain('Subsidiary of Zebra Parent Unique');
  });

  test('JSON clients get the link (201); the name suggestions list only visible accounts', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Jsonlink Alpha');
    const b = await makeAccount('Jsonlink Beta');
    await makeAccount('Jsonlink Secret', { author: 'rep1', isPrivate: true });
    const res = await director.agent.post(`/crm/accounts/${a}/links`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf)
      .send({ relation: String(await relationTypeId('Supplier of')), related_account: `Jsonlink Beta (#${b})` });
    expect(res.status).toBe(201);
    expect(res.body.link).toMatchObject({ account_id: a, related_account_id: b, label: 'Supplier of', inverse_label: 'Customer of' });
    const suggestions = await director.get(`/crm/accounts/${a}/link-candidates.json?q=jsonlink`);
    expect(suggestions.body.accounts.map((x: { name: string }) => x.name)).toEqual(['Jsonlink Beta']);
    const datalist = await director.htmxGet(`/crm/accounts/${a}/link-candidates?related_account=jsonlink`);
    expect(datalist.text).toContain(`value="Jsonlink Beta (#${b})"`);
    expect(datalist.text).not.toContain('Secret');
  });

  test('self, duplicate and symmetric-duplicate links are refused with 422 naming the field; nothing more stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Dup Alpha');
    const b = await makeAccount('Dup Beta');
    const subsidiary = String(await relationTypeId('Subsidiary of'));
    const self = await director.post(`/crm/accounts/${a}/links`, { relation: subsidiary, related_account: String(a) });
    expect(self.status).toBe(422);
    expect(self.text).toContain('data-field="related_account"');
    expect(visibleText(self.text)).toContain('An account cannot be linked to itself');
    expect((await director.post(`/crm/accounts/${a}/links`, { relation: subsidiary, related_account: String(b) })).status).toBe(303);
    const dup = await director.htmxPost(`/crm/accounts/${a}/links`, { relation: subsidiary, related_account: `#${b}` });
    expect(dup.status).toBe(422);
    expect(visibleText(dup.text)).toContain('Dup Alpha is already “Subsidiary of” Dup Beta');
    expect(dup.text).toContain(`value="#${b}"`);
    // The same relation posted from the other account, in its inverse wording, is the same link.
    const inverse = await director.post(`/crm/accounts/${b}/links`, { relation: `${subsidiary}:inverse`, related_account: String(a) });
    expect(inverse.status).toBe(422);
    const partner = String(await relationTypeId('Partner of'));
    expect((await director.post(`/crm/accounts/${a}/links`, { relation: partner, related_account: String(b) })).status).toBe(303);
    expect((await director.post(`/crm/accounts/${b}/links`, { relation: partner, related_account: String(a) })).status).toBe(422);
    const badType = await director.post(`/crm/accounts/${a}/links`, { relation: '999999', related_account: '' });
    expect(badType.status).toBe(422);
    expect(badType.text).toContain('data-field="relation"');
    expect(badType.text).toContain('data-field="related_account"');
    expect(await links(a)).toHaveLength(2);
  });

  test('a name matching several accounts asks which one, then links the one picked', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Twin Source');
    const t1 = await makeAccount('Twinned Target North');
    await makeAccount('Twinned Target South');
    const res = await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: 'Twinned Target' });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('Several accounts match');
    expect(res.text).toContain(`value="#${t1}"`);
    const picked = await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: ['Twinned Target', `#${t1}`] });
    expect(picked.status).toBe(303);
    expect(await relationsText(director, a)).toContain('Supplier of Twinned Target North');
  });

  test('an account the user may not see (another user’s private one, another region’s) is 404 as a link target; nothing stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Nosy Linker');
    const secret = await makeAccount('Rick Secret Target', { author: 'rep1', isPrivate: true });
    const res = await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(secret) });
    expect(res.status).toBe(404);
    expect(res.text).not.toContain('Rick Secret Target');
    // By name it is simply not found among the accounts the user can see.
    const byName = await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: 'Rick Secret Target' });
    expect(byName.status).toBe(422);
    expect(visibleText(byName.text)).toContain('No account you can see matches this name');
    const rep2 = await Session.signIn(host.app, 'rep2');
    const americas = await makeAccount('Rita Linker', { project: 'crm-americas', author: 'rep2' });
    const europe = await makeAccount('Europe Only Target');
    expect((await rep2.post(`/crm/accounts/${americas}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(europe) })).status).toBe(404);
    expect(await links(a)).toHaveLength(0);
    expect(await links(americas)).toHaveLength(0);
    // The owner may link their private account; others do not see that link at all.
    const rep1 = await Session.signIn(host.app, 'rep1');
    const open = await makeAccount('Open Europe Account', { author: 'rep1' });
    expect((await rep1.post(`/crm/accounts/${secret}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(open) })).status).toBe(303);
    expect(await relationsText(rep1, open)).toContain('Customer of Rick Secret Target');
    expect(await relationsText(director, open)).not.toContain('Rick Secret Target');
  });

  test('unlinking removes the link from both accounts and journals it on both', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Unlink Alpha');
    const b = await makeAccount('Unlink Beta');
    await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(b) });
    const [link] = await links(a);
    const res = await director.htmxPost(`/crm/accounts/${b}/links/${link.id}/delete`);
    expect(res.status).toBe(200);
    expect(visibleText(res.text)).not.toContain('Unlink Alpha');
    expect(await links(a)).toHaveLength(0);
    expect((await journalDetails(a, 'linked_accounts')).at(-1)).toEqual({ old_value: `Supplier of Unlink Beta (#${b})`, new_value: null });
    expect((await journalDetails(b, 'linked_accounts')).at(-1)).toEqual({ old_value: `Customer of Unlink Alpha (#${a})`, new_value: null });
    expect((await director.post(`/crm/accounts/${b}/links/${link.id}/delete`)).status).toBe(404);
  });

  test('only editors link: view-only users get 403, users without edit rights 404; the action is not offered', async () => {
    const webshop = Number((await host.db.knex('crm_accounts').where({ name: 'webshop.example' }).first()).id);
    const other = await makeAccount('Viewer Target', { author: 'rep1' });
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/accounts/${webshop}?tab=relations`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain('id="link-accounts"');
    expect(page.text).not.toContain('Link an account');
    expect((await rep1.post(`/crm/accounts/${webshop}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(other) })).status).toBe(403);
    const pm = await Session.signIn(host.app, 'pm');
    expect((await pm.post(`/crm/accounts/${other}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(webshop) })).status).toBe(404);
    expect(await links(webshop)).toHaveLength(0);
    const editor = await rep1.get(`/crm/accounts/${other}`);
    expect(editor.text).toContain('id="link-accounts"');
  });

  test('names are escaped where links are shown', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Plain Source');
    const b = await makeAccount('<script>alert(1)</script> Ltd');
    await director.post(`/crm/accounts/${a}/links`, { relation: String(await relationTypeId('Supplier of')), related_account: String(b) });
    const page = await director.get(`/crm/accounts/${a}?tab=relations`);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt; Ltd');
  });

  test('the history names a linked account only to readers who may see it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    const secret = await makeAccount('Whisper Holdings', { author: 'rep1', isPrivate: true });
    const open = await makeAccount('Plainview Traders', { author: 'rep1' });
    expect((await rep1.post(`/crm/accounts/${secret}/links`, { relation: String(await relationTypeId('Partner of')), related_account: String(open) })).status).toBe(303);
    await rep1.post(`/crm/accounts/${secret}/links/${(await links(secret))[0].id}/delete`, {});
    const historyOf = async (s: Session, id: number) => visibleText((await s.get(`/crm/accounts/${id}?tab=history`)).text);
    const directorsView = await historyOf(director, open);
    expect(directorsView).toMatch(/Linked accounts : \(empty\) → an account you cannot see/);
    expect(directorsView).toMatch(/Linked accounts : an account you cannot see → \(empty\)/);
    expect(directorsView).not.toContain('Whisper');
    expect(await historyOf(rep1, open)).toContain(`Partner of Whisper Holdings (#${secret})`);
  });
});

describe('internal relations (A7)', () => {
  test('a commission of 150 % is refused (422, message, input kept), 12.345 too; 12.5 is stored as 1250 and shown as 12.5 %', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Commission Co');
    const base = { user_id: String(host.demo.users.rep1.id), category_id: String(await categoryId('Account manager')), since: '2026-01-15' };
    const high = await director.post(`/crm/accounts/${a}/internal-relations`, { ...base, commission: '150' });
    expect(high.status).toBe(422);
    expect(high.text).toContain('data-field="commission"');
    expect(visibleText(high.text)).toContain('Commission must be between 0 and 100 %');
    expect(high.text).toContain('value="150"');
    const decimals = await director.htmxPost(`/crm/accounts/${a}/internal-relations`, { ...base, commission: '12.345' });
    expect(decimals.status).toBe(422);
    expect(visibleText(decimals.text)).toContain('Commission has at most 2 decimals');
    const json = await director.agent.post(`/crm/accounts/${a}/internal-relations`).set('Accept', 'application/json').set('X-CSRF-Token', director.csrf).send({ ...base, commission: '-1' });
    expect(json.status).toBe(422);
    expect(json.body.fields.commission).toBe('Commission must be between 0 and 100 %');
    expect(await host.db.knex('crm_internal_relations').where({ account_id: a })).toHaveLength(0);

    const ok = await director.post(`/crm/accounts/${a}/internal-relations`, { ...base, commission: '12.5' });
    expect(ok.status).toBe(303);
    const [row] = await host.db.knex('crm_internal_relations').where({ account_id: a });
    expect(Number(row.commission_bp)).toBe(1250);
    const text = await relationsText(director, a);
    expect(text).toContain('Rick Rep Account manager 2026-01-15 12.5 %');
    expect(await journalDetails(a, 'internal_relations')).toEqual([{ old_value: null, new_value: 'Rick Rep · Account manager · since 2026-01-15 · 12.5 %' }]);
  });

  test('edit (form shows the stored values), 100 % is the upper bound, blank means no commission; remove; all journaled', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Edit Relation Co');
    const category = String(await categoryId('Technical contact'));
    await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: String(host.demo.users.rep2.id), category_id: category, commission: '7,25' });
    const [row] = await host.db.knex('crm_internal_relations').where({ account_id: a });
    expect(Number(row.commission_bp)).toBe(725);
    const form = await director.get(`/crm/accounts/${a}/internal-relations/${row.id}/edit`);
    expect(form.text).toContain('value="7.25"');
    const saved = await director.htmxPost(`/crm/accounts/${a}/internal-relations/${row.id}`, { user_id: String(host.demo.users.rep2.id), category_id: category, commission: '100' });
    expect(saved.status).toBe(200);
    expect(saved.headers['hx-trigger']).toBe('crm:internalRelationSaved');
    expect(visibleText(saved.text)).toContain('Rita Rep Technical contact — 100 %');
    expect((await director.post(`/crm/accounts/${a}/internal-relations/${row.id}`, { user_id: String(host.demo.users.rep2.id), category_id: category, commission: '' })).status).toBe(303);
    expect((await host.db.knex('crm_internal_relations').where({ id: row.id }).first()).commission_bp).toBeNull();
    const bad = await director.post(`/crm/accounts/${a}/internal-relations/${row.id}`, { user_id: '999999', category_id: '', since: '2026-02-30' });
    expect(bad.status).toBe(422);
    for (const f of ['user_id', 'category_id', 'since']) expect(bad.text).toContain(`data-field="${f}"`);
    expect((await director.post(`/crm/accounts/${a}/internal-relations/${row.id}/delete`)).status).toBe(303);
    expect(await host.db.knex('crm_internal_relations').where({ account_id: a })).toHaveLength(0);
    const journal = await journalDetails(a, 'internal_relations');
    expect(journal.map((j) => [j.old_value, j.new_value])).toEqual([
      [null, 'Rita Rep · Technical contact · 7.25 %'],
      ['Rita Rep · Technical contact · 7.25 %', 'Rita Rep · Technical contact · 100 %'],
      ['Rita Rep · Technical contact · 100 %', 'Rita Rep · Technical contact'],
      ['Rita Rep · Technical contact', null],
    ]);
  });

  test('a relation whose category was switched off keeps it: the edit form selects it, saving stores it, the history names it; others cannot choose it', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Retired Category Co');
    const [catRow] = await knex('crm_internal_relation_categories').insert({ name: 'Retired role', active: true, position: 99 }).returning('id');
    const retired = Number(catRow.id ?? catRow);
    try {
      await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: String(host.demo.users.rep2.id), category_id: String(retired) });
      const [row] = await knex('crm_internal_relations').where({ account_id: a });
      await knex('crm_internal_relation_categories').where({ id: retired }).update({ active: false });
      const form = await director.get(`/crm/accounts/${a}/internal-relations/${row.id}/edit`);
      expect(form.text).toContain(`<option value="${retired}" selected>Retired role</option>`);
      const saved = await director.post(`/crm/accounts/${a}/internal-relations/${row.id}`, { user_id: String(host.demo.users.rep2.id), category_id: String(retired), commission: '5' });
      expect(saved.status).toBe(303);
      expect(await knex('crm_internal_relations').where({ id: row.id }).first()).toMatchObject({ category_id: retired, commission_bp: 500 });
      expect((await journalDetails(a, 'internal_relations')).pop()).toEqual({ old_value: 'Rita Rep · Retired role', new_value: 'Rita Rep · Retired role · 5 %' });
      const other = await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: String(host.demo.users.rep1.id), category_id: String(retired) });
      expect(other.status).toBe(422);
      expect(other.text).toContain('data-field="category_id"');
    } finally {
      await knex('crm_internal_relations').where({ account_id: a }).delete();
      await knex('crm_internal_relation_categories').where({ id: retired }).delete();
    }
  });

  test('the same user in the same category twice is refused (422, naming both), on adding and on editing; other categories are fine', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Twice Related Co');
    const manager = String(await categoryId('Account manager'));
    const rep1 = String(host.demo.users.rep1.id);
    expect((await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: rep1, category_id: manager, commission: '5' })).status).toBe(303);
    const again = await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: rep1, category_id: manager, since: '2026-03-01' });
    expect(again.status).toBe(422);
    expect(again.text).toContain('data-field="user_id"');
    expect(visibleText(again.text)).toContain('Rick Rep is already “Account manager” of this account');
    expect(again.text).toContain('value="2026-03-01"');
    expect((await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: rep1, category_id: String(await categoryId('Sales support')) })).status).toBe(303);
    const support = await knex('crm_internal_relations').where({ account_id: a, category_id: await categoryId('Sales support') }).first();
    const edit = await director.htmxPost(`/crm/accounts/${a}/internal-relations/${support.id}`, { user_id: rep1, category_id: manager });
    expect(edit.status).toBe(422);
    expect(visibleText(edit.text)).toContain('Rick Rep is already “Account manager” of this account');
    expect((await knex('crm_internal_relations').where({ account_id: a }).orderBy('id').pluck('category_id')).map(Number)).toEqual([Number(manager), await categoryId('Sales support')]);
    expect(await journalDetails(a, 'internal_relations')).toHaveLength(2);
  });

  test('two simultaneous adds of the same relation (a double submit) store it once, journaled once; the second answers 422', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Double Submit Relation Co');
    const technical = String(await categoryId('Technical contact'));
    const add = () => director.post(`/crm/accounts/${a}/internal-relations`, { user_id: String(host.demo.users.rep2.id), category_id: technical, commission: '3' });
    const answers = await racing(knex, 'crm_internal_relations', [add, add]);
    expect(answers.map((r) => r.status).sort()).toEqual([303, 422]);
    expect(visibleText(answers.find((r) => r.status === 422)!.text)).toContain('Rita Rep is already “Technical contact” of this account');
    expect(await knex('crm_internal_relations').where({ account_id: a })).toHaveLength(1);
    expect(await journalDetails(a, 'internal_relations')).toEqual([{ old_value: null, new_value: 'Rita Rep · Technical contact · 3 %' }]);
  });

  test('internal relations of another account, or of an account the user cannot edit, are out of reach', async () => {
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Reach Alpha');
    const b = await makeAccount('Reach Beta');
    await director.post(`/crm/accounts/${a}/internal-relations`, { user_id: String(host.demo.users.rep1.id), category_id: String(await categoryId('Sales support')) });
    const [row] = await host.db.knex('crm_internal_relations').where({ account_id: a });
    expect((await director.post(`/crm/accounts/${b}/internal-relations/${row.id}/delete`)).status).toBe(404);
    const rep1 = await Session.signIn(host.app, 'rep1');
    const webshop = Number((await host.db.knex('crm_accounts').where({ name: 'webshop.example' }).first()).id);
    expect((await rep1.post(`/crm/accounts/${webshop}/internal-relations`, { user_id: String(host.demo.users.rep1.id), category_id: String(await categoryId('Sales support')) })).status).toBe(403);
    expect(await host.db.knex('crm_internal_relations').where({ account_id: a })).toHaveLength(1);
  });
});

describe('sub-accounts (A7)', () => {
  test('a parent that would make a cycle is refused through the edit form (422 naming parent_id)', async () => {
    const director = await Session.signIn(host.app, 'director');
    const parent = await makeAccount('Cycle Parent');
    const child = await makeAccount('Cycle Child', { parentId: parent });
    const res = await director.post(`/crm/accounts/${parent}`, { account_type_id: String(companyType), name: 'Cycle Parent', lock_version: '0', parent_id: String(child) });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="parent_id"');
    expect(visibleText(res.text)).toContain('An account cannot be placed under itself or one of its sub-accounts');
    expect((await host.db.knex('crm_accounts').where({ id: parent }).first()).parent_id).toBeNull();
    const tab = await relationsText(director, parent);
    expect(tab).toContain('Sub-accounts Cycle Child');
  });

  test('the parent and the sub-accounts are named only where the reader may see them', async () => {
    const director = await Session.signIn(host.app, 'director');
    const rep2 = await Session.signIn(host.app, 'rep2');
    // rep1's private account as the parent of an account everyone in the region sees.
    const secretParent = await makeAccount('Hushhush Parent', { author: 'rep1', isPrivate: true });
    const openChild = await makeAccount('Openly Child', { parentId: secretParent });
    expect(await relationsText(director, openChild)).not.toContain('Hushhush Parent');
    // rep2 sees only their own accounts: neither the director's parent of theirs nor the director's sub-account of it.
    const directorsParent = await makeAccount('Directors Umbrella', { project: 'crm-americas' });
    const repsAccount = await makeAccount('Rep Two Holding', { project: 'crm-americas', author: 'rep2', parentId: directorsParent });
    await makeAccount('Directors Branch', { project: 'crm-americas', parentId: repsAccount });
    const tab = await relationsText(rep2, repsAccount);
    // That there is a parent is said (as the account's JSON says parent_hidden), not which.
    expect(tab).toContain('Parent account An account you cannot see');
    expect(tab).toContain('Sub-accounts None.');
    expect(tab).not.toMatch(/Directors (Umbrella|Branch)/);
    // Who may see them still does.
    const directorsView = await relationsText(director, repsAccount);
    expect(directorsView).toContain('Parent account Directors Umbrella');
    expect(directorsView).toContain('Sub-accounts Directors Branch');
  });
});

describe('migration 035 (one internal relation per account, user and category)', () => {
  test('merges a relation stored several times into its oldest row, filling its blanks, journaled; others untouched; then no duplicate can be stored', async () => {
    const knex = host.db.knex;
    const director = await Session.signIn(host.app, 'director');
    const a = await makeAccount('Merged Relations Co');
    const [manager, support] = [await categoryId('Account manager'), await categoryId('Sales support')];
    const [rep1, rep2] = [host.demo.users.rep1.id, host.demo.users.rep2.id];
    const elsewhere = await knex('crm_internal_relations').whereNot({ account_id: a }).orderBy('id');
    await internalRelationKey.down(knex);
    let ids: number[];
    try {
      // What double submits left before the index: one relation three times, with different details.
      const rows = [
        { user_id: rep1, category_id: manager, since: null, commission_bp: null },
        { user_id: rep1, category_id: manager, since: '2025-06-01', commission_bp: 250 },
        { user_id: rep1, category_id: manager, since: '2024-02-01', commission_bp: 500 },
        { user_id: rep2, category_id: manager, since: '2026-01-01', commission_bp: null },
        { user_id: rep1, category_id: support, since: null, commission_bp: 100 },
      ];
      ids = [];
      for (const r of rows) ids.push(Number(((await knex('crm_internal_relations').insert({ account_id: a, ...r }).returning('id'))[0] as { id: number }).id));
    } finally {
      await internalRelationKey.up(knex);
    }
    expect((await knex('crm_internal_relations').where({ account_id: a }).orderBy('id').pluck('id')).map(Number)).toEqual([ids[0], ids[3], ids[4]]);
    const text = await relationsText(director, a);
    expect(text).toContain('Rick Rep Account manager 2024-02-01 2.5 %');
    expect(text).toContain('Rita Rep Account manager 2026-01-01');
    expect(text).toContain('Rick Rep Sales support — 1 %');
    expect(await journalDetails(a, 'internal_relations')).toEqual([
      { old_value: `User #${rep1} · Account manager · since 2025-06-01 · 2.5 %`, new_value: null },
      { old_value: `User #${rep1} · Account manager · since 2024-02-01 · 5 %`, new_value: null },
      { old_value: `User #${rep1} · Account manager`, new_value: `User #${rep1} · Account manager · since 2024-02-01 · 2.5 %` },
    ]);
    expect(visibleText((await director.get(`/crm/accounts/${a}?tab=history`)).text)).toContain(`Internal relation #${ids![0]} was stored 3 times: merged into one (by an update)`);
    expect(await knex('crm_internal_relations').whereNot({ account_id: a }).orderBy('id')).toEqual(elsewhere);
    // better-sqlite3's error may come from outside jest's realm (not `instanceof Error` here), so the refusal is read by its code.
    const refused = await knex('crm_internal_relations').insert({ account_id: a, user_id: rep2, category_id: manager }).then(() => null, (err: unknown) => err);
    expect(isUniqueViolation(refused)).toBe(true);
    expect(await knex('crm_internal_relations').where({ account_id: a })).toHaveLength(3);
  });
});
