import PizZip from 'pizzip';
import { docxPackage, para } from '../../scripts/docx-package';
import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';
import { downloadBytes, uploadFile } from '../helpers/files';

/**
 * S5 "hidden": a field hidden for the user's role in the opportunity's status appears nowhere for that user —
 * not in lists and their totals, kanban cards and column sums, JSON, token values, generated documents or history.
 * The demo opportunity "Eva Lind – consulting" (rep1's, Qualification, 95 000.00 SEK, the only SEK one) gets a
 * description while nothing is hidden; then the admin hides its description and amount for sales reps in
 * Qualification.
 */

let host: TestHost;
let oppId: number;
let quoteId: number;
const SECRET = 'SECRETDESC';
const HIDDEN_AMOUNT = '95 000.00'; // as visibleText reads 95 000.00 SEK
const RULES = '/crm/settings/field-rules';

const rowsOf = (body: { opportunities: { id: number }[] }) => body.opportunities;
const cardOn = (board: string, id: number) => new RegExp(`<article class="card"[^>]*data-opportunity="${id}"[^>]*>[\\s\\S]*?</article>`).exec(board)![0];
const columnOn = (board: string, statusId: number) => new RegExp(`<div class="kanban-column" data-status="${statusId}">[\\s\\S]*?<h3>[\\s\\S]*?(?=<article|<a href|</div>)`).exec(board)![0];
const docText = (buf: Buffer) => new PizZip(buf).file('word/document.xml')!.asText().replace(/<\/w:p>/g, '\n').replace(/<[^>]+>/g, '');

beforeAll(async () => {
  host = await startTestHost();
  const knex = host.db.knex;
  const opp = await knex('crm_opportunities').where({ name: 'Eva Lind – consulting' }).first();
  oppId = Number(opp.id);
  const rep1 = await Session.signIn(host.app, 'rep1');
  const edited = await rep1.post(`/crm/opportunities/${oppId}`, {
    name: opp.name, status_id: String(opp.status_id), account_id: String(opp.account_id), owner_id: String(opp.owner_id), amount: '95000.00',
    currency: 'SEK', expected_close_on: '2027-03-15', description: SECRET, lock_version: String(opp.lock_version),
  });
  expect(edited.status).toBe(303);
  const [quote] = await knex('crm_quotes').insert({ opportunity_id: oppId, number: 'FR-1', name: 'Offer', currency: 'SEK', is_active: true, author_id: opp.owner_id }).returning('id');
  quoteId = Number(quote.id ?? quote);
  await knex('crm_quote_items').insert({ quote_id: quoteId, position: 1, kind: 'manual', name: 'Consulting day', unit: 'day', quantity_milli: 1000, unit_price_minor: 100000, tax_rate_bp: 2500 });

  const admin = await Session.signIn(host.app, 'admin');
  const rep = (await admin.get(`${RULES}.json`)).body.roles.find((r: { name: string }) => r.name === 'Sales rep').id;
  const saved = await admin.post(RULES, { role_id: String(rep), [`rule_${opp.status_id}_description`]: 'hidden', [`rule_${opp.status_id}_amount_minor`]: 'hidden' });
  expect(saved.status).toBe(303);
});
afterAll(async () => { await host.close(); });

describe('a field hidden by the field rules (S5) appears nowhere for that user', () => {
  test('list: no hidden amount in the HTML or JSON rows; the totals leave it out and say so', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const html = await rep1.get('/crm/opportunities?q=Eva');
    expect(html.text).toContain(`data-opportunity="${oppId}"`);
    expect(visibleText(html.text)).not.toContain(HIDDEN_AMOUNT);
    expect(html.text).not.toContain('data-currency="SEK"');
    expect(visibleText(html.text)).toContain('Not in these totals: 1 opportunity whose amount is hidden from you.');

    const json = (await rep1.get('/crm/opportunities.json')).body;
    const eva = rowsOf(json).find((r) => r.id === oppId)!;
    expect(eva).toMatchObject({ name: 'Eva Lind – consulting', currency: 'SEK' });
    expect(eva).not.toHaveProperty('amount_minor');
    expect(JSON.stringify(json)).not.toContain('9500000');
    expect(json.totals.map((t: { currency: string }) => t.currency)).not.toContain('SEK');
    expect(json.hidden_amounts).toBe(1);
    // Only the ruled status is affected: rep1's Negotiation deal keeps its amount, and the EUR totals count it.
    expect(rowsOf(json).find((r) => r.id !== oppId && (r as { name?: string }).name === 'Acme – ERP rollout')).toMatchObject({ amount_minor: 12_500_000 });

    // The account's opportunities tab lists with the same rules and totals.
    const account = (await host.db.knex('crm_opportunities').where({ id: oppId }).first()).account_id;
    const tab = visibleText((await rep1.get(`/crm/accounts/${account}?tab=opportunities`)).text);
    expect(tab).toContain('Eva Lind – consulting');
    expect(tab).not.toContain(HIDDEN_AMOUNT);
    expect(tab).toContain('Not in these totals: 1 opportunity whose amount is hidden from you.');

    // The admin (no role, no rules) sees everything.
    const admin = await Session.signIn(host.app, 'admin');
    const full = (await admin.get('/crm/opportunities.json?q=Eva')).body;
    expect(rowsOf(full)[0]).toMatchObject({ id: oppId, amount_minor: 9_500_000 });
    expect(full.totals).toEqual([{ currency: 'SEK', count: 1, amount_minor: 9_500_000, weighted_minor: 950_000 }]);
    expect(full.hidden_amounts).toBe(0);
    expect(visibleText((await admin.get('/crm/opportunities?q=Eva')).text)).toContain(`${HIDDEN_AMOUNT} SEK`);
  });

  test('list: filtering or sorting by a hidden amount does not reveal it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const admin = await Session.signIn(host.app, 'admin');
    const filter = '/crm/opportunities.json?currency=SEK&amount_min=90000&amount_max=100000';
    expect(rowsOf((await admin.get(filter)).body).map((r) => r.id)).toEqual([oppId]);
    expect(rowsOf((await rep1.get(filter)).body)).toEqual([]);
    // Sorted by amount, the hidden one goes with the empty amounts (last when descending), not between 125 000 and 42 000.
    const ids = (body: { opportunities: { id: number }[] }) => rowsOf(body).map((r) => r.id);
    const adminOrder = ids((await admin.get('/projects/crm-europe/crm/opportunities.json?sort=amount_minor&dir=desc')).body);
    expect(adminOrder.indexOf(oppId)).toBe(1);
    const repOrder = ids((await rep1.get('/projects/crm-europe/crm/opportunities.json?sort=amount_minor&dir=desc')).body);
    expect(repOrder[repOrder.length - 1]).toBe(oppId);
  });

  test('kanban: the card shows no hidden amount; the column sum leaves it out and says so (HTML and JSON)', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const statusId = Number((await host.db.knex('crm_opportunities').where({ id: oppId }).first()).status_id);
    const board = (await rep1.get('/crm/opportunities/kanban')).text;
    expect(visibleText(cardOn(board, oppId))).not.toContain(HIDDEN_AMOUNT);
    const column = visibleText(columnOn(board, statusId));
    expect(column).not.toContain('SEK');
    expect(column).toContain('1 hidden amount not included');
    const json = (await rep1.get('/crm/opportunities/kanban.json')).body;
    const qualification = json.columns.find((c: { status: { id: number } }) => c.status.id === statusId);
    expect(qualification).toMatchObject({ count: 1, totals: [], hidden_amounts: 1 });
    expect(JSON.stringify(json)).not.toContain('9500000');

    const admin = await Session.signIn(host.app, 'admin');
    const adminColumn = (await admin.get('/crm/opportunities/kanban.json')).body.columns.find((c: { status: { id: number } }) => c.status.id === statusId);
    expect(adminColumn).toMatchObject({ totals: [{ currency: 'SEK', count: 1, amount_minor: 9_500_000 }], hidden_amounts: 0 });
    expect(visibleText(cardOn((await admin.get('/crm/opportunities/kanban')).text, oppId))).toContain(HIDDEN_AMOUNT);
  });

  test('token reference with values: the hidden description and amount are empty', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/settings/tokens?opportunity=${oppId}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(SECRET);
    expect(visibleText(page.text)).not.toContain(HIDDEN_AMOUNT);
    const tokens = (await rep1.get(`/crm/settings/tokens.json?opportunity=${oppId}`)).body.tokens as { token: string; value: string }[];
    const value = (token: string) => tokens.find((t) => t.token === token)!.value;
    expect([value('opportunity.description'), value('opportunity.amount'), value('opportunity.amount_raw')]).toEqual(['', '', '']);
    expect(value('opportunity.name')).toBe('Eva Lind – consulting');

    const admin = await Session.signIn(host.app, 'admin');
    const full = (await admin.get(`/crm/settings/tokens.json?opportunity=${oppId}`)).body.tokens as { token: string; value: string }[];
    expect(full.find((t) => t.token === 'opportunity.description')!.value).toBe(SECRET);
  });

  test('a generated quote document prints the hidden tokens empty', async () => {
    const director = await Session.signIn(host.app, 'director');
    const book = await host.db.knex('crm_price_books').where({ name: 'Standard 2026' }).whereNull('deleted_at').first();
    const template = docxPackage({ body: [para('Deal: {opportunity.name}'), para('Description: [{opportunity.description}]'), para('Amount: [{opportunity.amount}]')].join('') });
    const uploaded = await uploadFile(director, `/crm/price-books/${book.id}/attachments`, 'hidden-fields.docx', template, { json: true });
    expect(uploaded.status).toBe(201);

    const generate = async (s: Session) => {
      const res = await s.agent.post(`/crm/opportunities/${oppId}/documents`).type('form').set('Accept', 'application/json')
        .send({ quote_id: String(quoteId), template: `attachment-${uploaded.body.attachment.id}`, _csrf: s.csrf });
      expect(res.status).toBe(201);
      return docText((await downloadBytes(s, res.body.attachment.download_url)).body as Buffer);
    };
    const rep1 = await Session.signIn(host.app, 'rep1');
    const text = await generate(rep1);
    expect(text).toContain('Deal: Eva Lind – consulting');
    expect(text).toContain('Description: []');
    expect(text).toContain('Amount: []');
    expect(text).not.toContain(SECRET);

    const admin = await Session.signIn(host.app, 'admin');
    expect(await generate(admin)).toContain(`Description: [${SECRET}]`);
  });

  test('history: the hidden field’s changes are left out for that user, shown to others', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/opportunities/${oppId}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(SECRET);
    expect(visibleText(page.text)).not.toContain('Description :');
    const admin = await Session.signIn(host.app, 'admin');
    expect(visibleText((await admin.get(`/crm/opportunities/${oppId}`)).text)).toContain(`Description : (empty) → ${SECRET}`);
  });
  test('overview modules: the funnel and the forecast leave a hidden amount out of their sums, for that user only', async () => {
    const knex = host.db.knex;
    const period = 'period=custom&from=2027-01-01&to=2027-12-31';
    const sekAmount = (body: { rows: { currencies?: { currency: string; amount_minor: number }[] }[] }) =>
      body.rows.flatMap((r) => r.currencies ?? []).filter((c) => c.currency === 'SEK').reduce((n, c) => n + c.amount_minor, 0);
    const rep1 = await Session.signIn(host.app, 'rep1');
    const director = await Session.signIn(host.app, 'director');
    for (const type of ['funnel', 'forecast']) {
      const module = await knex('crm_dashboard_modules as m').join('crm_dashboard_pages as p', 'p.id', 'm.page_id').whereNull('p.project_id').where('m.type', type).first('m.id');
      const seenByRep = await rep1.get(`/crm/modules/${module.id}.json?${period}`);
      expect(seenByRep.status).toBe(200);
      expect({ type, sek: sekAmount(seenByRep.body.data ?? seenByRep.body) }).toEqual({ type, sek: 0 });
      const seenByDirector = await director.get(`/crm/modules/${module.id}.json?${period}`);
      expect({ type, sek: sekAmount(seenByDirector.body.data ?? seenByDirector.body) }).toEqual({ type, sek: 9_500_000 });
    }
  });
});
