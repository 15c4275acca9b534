import PizZip from 'pizzip';
import { docxPackage, para } from '../../scripts/docx-package';
import { Session, startTestHost, statementsDuring, visibleText, type TestHost } from '../helpers/app';
import { downloadBytes, uploadFile } from '../helpers/files';

/**
 * S5 "hidden": a field hidden for the user's role in the opportunity's status appears nowhere for that user —
 * not in lists and their totals, kanban cards and column sums, JSON, token values, generated documents or history.
 * The demo opportunity "Eva Lind – consulting" (rep1's, Qualification, 95 000.00 SEK, the only SEK one) gets a
 * description while nothing is hidden; then the admin hides its description and amount for sales reps in
 * Qualification. It also hides the name in Needs analysis and Won from sales reps and the sales director (and the
 * currency in Needs analysis from the director), and the account in Proposal from sales reps, which no test above
 * reads: see the describes below.
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
  const roles = (await admin.get(`${RULES}.json`)).body.roles as { id: number; name: string }[];
  const roleId = (name: string) => String(roles.find((r) => r.name === name)!.id);
  const statusId = async (name: string) => String((await knex('crm_opportunity_statuses').where({ name }).first()).id);
  const hiddenNames = { [`rule_${await statusId('Needs analysis')}_name`]: 'hidden', [`rule_${await statusId('Won')}_name`]: 'hidden' };
  const hiddenAccount = { [`rule_${await statusId('Proposal')}_account_id`]: 'hidden' };
  const saved = await admin.post(RULES, {
    role_id: roleId('Sales rep'), [`rule_${opp.status_id}_description`]: 'hidden', [`rule_${opp.status_id}_amount_minor`]: 'hidden', ...hiddenNames, ...hiddenAccount,
  });
  expect(saved.status).toBe(303);
  const directorRules = { ...hiddenNames, [`rule_${await statusId('Needs analysis')}_currency`]: 'hidden' };
  expect((await admin.post(RULES, { role_id: roleId('Sales director'), ...directorRules })).status).toBe(303);
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

/**
 * The rules of beforeAll hide the name in Needs analysis and Won from sales reps and the sales director:
 * "Nordic Retail – POS upgrade" (rep1's, Needs analysis; given a quote and a partner here; the demo has an activity
 * on it) and "Webshop – integration" (sold and locked by the demo sale, Won, with its contracts). Wherever those
 * users meet them, they read `Opportunity #<id>`, as in lists; the admin, who has no rules, reads the names.
 */
describe('an opportunity whose name the field rules hide is named “Opportunity #<id>” on every page', () => {
  const NORDIC = 'Nordic Retail – POS upgrade';
  const WEBSHOP = 'Webshop – integration';
  let nordic: number;
  let webshop: number;
  let nordicQuote: number;
  let activity: number;
  let contract: number;
  let partner: number;
  const titleOf = (html: string) => /<title>([\s\S]*?)<\/title>/.exec(html)?.[1] ?? '';

  beforeAll(async () => {
    const knex = host.db.knex;
    const opp = async (name: string) => knex('crm_opportunities').where({ name }).first();
    const n = await opp(NORDIC);
    nordic = Number(n.id);
    webshop = Number((await opp(WEBSHOP)).id);
    partner = Number((await knex('crm_partners').where({ name: 'Baltic Consulting' }).first()).id);
    await knex('crm_opportunities').where({ id: nordic }).update({ partner_id: partner });
    const [quote] = await knex('crm_quotes').insert({ opportunity_id: nordic, number: 'FR-2', name: 'Till offer', currency: 'EUR', is_active: true, author_id: n.owner_id }).returning('id');
    nordicQuote = Number(quote.id ?? quote);
    await knex('crm_quote_items').insert({ quote_id: nordicQuote, position: 1, kind: 'manual', name: 'Till setup', unit: 'piece', quantity_milli: 1000, unit_price_minor: 50000, tax_rate_bp: 2500 });
    activity = Number((await knex('crm_sales_activities').where({ record_type: 'opportunity', record_id: nordic }).first()).id);
    contract = Number((await knex('crm_contracts').where({ opportunity_id: webshop }).first()).id);
  });

  /** Pages a user meets the two opportunities on, HTML as the browser gets them (htmx: the fragment). */
  const pages = () => [
    { url: `/crm/opportunities/${nordic}`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/opportunities/${nordic}/edit`, names: NORDIC, id: nordic, titled: true },
    // The copy's form asks for a new name, not prefilled with the hidden one (see the last describe).
    { url: `/crm/opportunities/${nordic}/copy`, names: NORDIC, id: nordic, titled: false, unnamed: true },
    { url: `/crm/opportunities/${nordic}/move`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/opportunities/${nordic}/move`, htmx: true, names: NORDIC, id: nordic, titled: false },
    { url: `/crm/opportunities/${nordic}/documents/new`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/settings/tokens?opportunity=${nordic}`, names: NORDIC, id: nordic, titled: false },
    { url: `/crm/opportunities/${nordic}/sell`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/opportunities/${nordic}/activities`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/opportunities/${nordic}/activities/${activity}/edit`, names: NORDIC, id: nordic, titled: true },
    { url: '/crm/activities', names: NORDIC, id: nordic, titled: false },
    { url: `/crm/opportunities/${nordic}/attachments`, names: NORDIC, id: nordic, titled: true },
    { url: `/crm/quotes/${nordicQuote}`, names: NORDIC, id: nordic, titled: false },
    { url: `/crm/partners/${partner}`, names: NORDIC, id: nordic, titled: false },
    { url: `/crm/opportunities/${webshop}`, names: WEBSHOP, id: webshop, titled: true },
    { url: '/crm/contracts', names: WEBSHOP, id: webshop, titled: false },
    { url: `/crm/contracts/${contract}`, names: WEBSHOP, id: webshop, titled: false },
  ];
  const read = async (s: Session, page: { url: string; htmx?: boolean }) => {
    const res = await (page.htmx ? s.htmxGet(page.url) : s.get(page.url));
    expect({ url: page.url, status: res.status }).toEqual({ url: page.url, status: 200 });
    return res.text;
  };

  test('a sales rep reads “Opportunity #<id>” in titles, headings, links and forms, and never the name', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    for (const page of pages()) {
      const html = await read(rep1, page);
      // The raw HTML: the title, attributes (confirm texts, labels) and prefilled inputs as well as the text.
      expect({ url: page.url, htmx: page.htmx ?? false, named: html.includes(page.names) }).toEqual({ url: page.url, htmx: page.htmx ?? false, named: false });
      // The move menu (htmx) names it in its select's label only.
      const shown = page.htmx ? html : visibleText(html);
      if (!page.unnamed) expect({ url: page.url, label: shown.includes(`Opportunity #${page.id}`) }).toEqual({ url: page.url, label: true });
      if (page.titled) expect(titleOf(html)).toContain(`Opportunity #${page.id}`);
    }
    // The edit form does not show the name, and saving it keeps the stored name.
    const form = await rep1.get(`/crm/opportunities/${nordic}/edit`);
    expect(form.text).not.toContain('name="name"');
    const before = await host.db.knex('crm_opportunities').where({ id: nordic }).first();
    const saved = await rep1.post(`/crm/opportunities/${nordic}`, {
      status_id: String(before.status_id), account_id: String(before.account_id), owner_id: String(before.owner_id), amount: '42000.00', currency: 'EUR',
      expected_close_on: '2027-02-28', partner_id: String(partner), description: 'Till rollout', lock_version: String(before.lock_version),
    });
    expect(saved.status).toBe(303);
    expect(await host.db.knex('crm_opportunities').where({ id: nordic }).first()).toMatchObject({ name: NORDIC, description: 'Till rollout' });
  });

  test('JSON answers leave the hidden name out', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const admin = await Session.signIn(host.app, 'admin');
    const urls = [
      `/crm/opportunities/${nordic}.json`, `/crm/opportunities/${nordic}/move.json`, `/crm/opportunities/${nordic}/documents/new.json`,
      `/crm/settings/tokens.json?opportunity=${nordic}`, `/crm/opportunities/${nordic}/sell.json`, `/crm/quotes/${nordicQuote}.json`,
      `/crm/partners/${partner}.json`, '/crm/activities.json', `/crm/contracts/${contract}.json`, `/crm/opportunities/${webshop}.json`,
    ];
    for (const url of urls) {
      const seen = await rep1.get(url);
      expect({ url, status: seen.status, named: JSON.stringify(seen.body).includes('POS upgrade') || JSON.stringify(seen.body).includes(WEBSHOP) })
        .toEqual({ url, status: 200, named: false });
    }
    const move = (await rep1.get(`/crm/opportunities/${nordic}/move.json`)).body.opportunity;
    expect(move).toMatchObject({ id: nordic });
    expect(move).not.toHaveProperty('name');
    expect((await admin.get(`/crm/opportunities/${nordic}/move.json`)).body.opportunity).toMatchObject({ id: nordic, name: NORDIC });
    expect((await admin.get(`/crm/quotes/${nordicQuote}.json`)).body.opportunity).toMatchObject({ id: nordic, name: NORDIC });
  });

  test('the director’s confirm texts (delete, unlock, remove a contract) name it “Opportunity #<id>”', async () => {
    const director = await Session.signIn(host.app, 'director');
    const deletable = await read(director, { url: `/crm/opportunities/${nordic}` });
    expect(deletable).toContain(`hx-confirm="Delete Opportunity #${nordic}?"`);
    const sold = await read(director, { url: `/crm/opportunities/${webshop}` });
    expect(sold).toContain(`hx-confirm="Unlock Opportunity #${webshop}?`);
    const remove = await read(director, { url: `/crm/contracts/${contract}/remove` });
    for (const html of [deletable, sold, remove]) expect(html).not.toMatch(/POS upgrade|Webshop – integration/);
    expect(visibleText(remove)).toContain(`The contract is removed from Opportunity #${webshop}`);
  });

  test('the new quote form is prefilled with the opportunity’s name and currency only where they are not hidden', async () => {
    const newQuoteForm = async (login: string) => {
      const page = await read(await Session.signIn(host.app, login), { url: `/crm/opportunities/${nordic}` });
      const form = /<form[^>]*id="new-quote-form"[\s\S]*?<\/form>/.exec(page)![0];
      return { name: /name="name" value="([^"]*)"/.exec(form)![1], currency: /name="currency" value="([^"]*)"/.exec(form)![1] };
    };
    expect(await newQuoteForm('rep1')).toEqual({ name: '', currency: 'EUR' });
    expect(await newQuoteForm('director')).toEqual({ name: '', currency: '' });
    expect(await newQuoteForm('admin')).toEqual({ name: NORDIC, currency: 'EUR' });
    // Left empty, the quote still takes the opportunity's currency.
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post(`/crm/opportunities/${nordic}/quotes`, { name: 'Director offer', currency: '' })).status).toBe(303);
    expect(await host.db.knex('crm_quotes').where({ opportunity_id: nordic, name: 'Director offer' }).first()).toMatchObject({ currency: 'EUR' });
  });

  test('the admin, who has no rules, reads the names on the same pages', async () => {
    const admin = await Session.signIn(host.app, 'admin');
    for (const page of pages()) {
      const html = await read(admin, page);
      expect({ url: page.url, htmx: page.htmx ?? false, named: html.includes(page.names) }).toEqual({ url: page.url, htmx: page.htmx ?? false, named: true });
      if (page.titled) expect(titleOf(html)).toContain(page.names);
    }
    expect(await read(admin, { url: `/crm/opportunities/${nordic}` })).toContain(`hx-confirm="Delete ${NORDIC}?"`);
    expect(await read(admin, { url: `/crm/opportunities/${webshop}` })).toContain(`hx-confirm="Unlock ${WEBSHOP}?`);
  });
});

/**
 * The rules of beforeAll hide the account in Proposal from sales reps: "Acme – support renewal" (rep1's, Proposal,
 * Acme Manufacturing; the demo's overdue "Renewal terms" call is on it) shows rep1 no account on its page, so its
 * activities, calendar entries and sale confirmation do not name it either. Likewise an account the user may not
 * see: "Private prospect – pilot" (rep1's, Negotiation) is for rep1's private account, which the director (who
 * sees the opportunity) and the admin may not see.
 */
describe('an opportunity’s account hidden by the rules or not visible to the user is named nowhere its activities or sale show it', () => {
  const ACME = 'Acme Manufacturing';
  const PRIVATE = 'Rick’s private prospect';
  let renewal: number;
  let renewalCall: number;
  let pilot: number;
  let pilotCall: number;
  const summaryOf = (ics: string) => /\r\nSUMMARY:([^\r\n]*)\r\n/.exec(ics.replace(/\r\n /g, ''))![1];
  const rowOf = (html: string, activityId: number) => new RegExp(`<tr data-activity="${activityId}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';

  beforeAll(async () => {
    const knex = host.db.knex;
    const r = await knex('crm_opportunities').where({ name: 'Acme – support renewal' }).first();
    renewal = Number(r.id);
    renewalCall = Number((await knex('crm_sales_activities').where({ record_type: 'opportunity', record_id: renewal, subject: 'Renewal terms' }).first()).id);
    const privateAccount = await knex('crm_accounts').where({ name: PRIVATE }).first();
    const [p] = await knex('crm_opportunities').insert({
      project_id: r.project_id, name: 'Private prospect – pilot', account_id: privateAccount.id, owner_id: r.owner_id, author_id: r.owner_id,
      status_id: (await knex('crm_opportunity_statuses').where({ name: 'Negotiation' }).first()).id, amount_minor: 100_000, currency: 'EUR',
    }).returning('id');
    pilot = Number(p.id ?? p);
    const call = (await knex('crm_activity_categories').where({ name: 'Call' }).first()).id;
    const [a] = await knex('crm_sales_activities').insert({
      record_type: 'opportunity', record_id: pilot, account_id: privateAccount.id, project_id: r.project_id, category_id: call, subject: 'Pilot call',
      notes: '', occurred_at: new Date().toISOString(), next_contact_on: '2020-01-01', responsible_id: r.owner_id, is_personal: false, author_id: r.owner_id,
    }).returning('id');
    pilotCall = Number(a.id ?? a);
    // An active quote whose implementation day the demo's automation turns into “Plan the kick-off with {account.name}”.
    const book = await knex('crm_price_books').where({ name: 'Standard 2026' }).whereNull('deleted_at').first();
    const day = await knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
      .where({ 'pp.price_book_id': book.id, 'p.code': 'IMPL-DAY', 'pp.unit_name': 'day', 'pp.currency': 'EUR' }).first('p.id', 'p.name', 'pp.price_minor');
    const [q] = await knex('crm_quotes').insert({ opportunity_id: renewal, number: 'FR-3', name: 'Renewal offer', currency: 'EUR', is_active: true, author_id: r.owner_id }).returning('id');
    await knex('crm_quote_items').insert({
      quote_id: Number(q.id ?? q), position: 1, kind: 'product', name: day.name, product_id: day.id, price_book_id: book.id, code: 'IMPL-DAY', unit: 'day',
      quantity_milli: 2000, unit_price_minor: Number(day.price_minor), tax_rate_bp: 2500,
    });
  });

  test('the calendar entry is titled with the account only where the user may read it, else with the opportunity', async () => {
    const summary = async (login: string, activityId: number) => {
      const res = await (await Session.signIn(host.app, login)).get(`/crm/activities/${activityId}/calendar.ics`);
      expect(res.status).toBe(200);
      return summaryOf(res.text);
    };
    expect(await summary('rep1', renewalCall)).toBe('Acme – support renewal');
    expect(await summary('director', renewalCall)).toBe(ACME);
    expect(await summary('director', pilotCall)).toBe('Private prospect – pilot');
    expect(await summary('admin', pilotCall)).toBe('Private prospect – pilot');
    expect(await summary('rep1', pilotCall)).toBe(PRIVATE);
  });

  test('the activity list (HTML and JSON) and the to-do page leave the account out where the user may not read it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const list = await rep1.get('/crm/activities');
    expect(rowOf(list.text, renewalCall)).toContain('Renewal terms');
    expect(visibleText(rowOf(list.text, renewalCall))).not.toContain(ACME);
    const json = (await rep1.get('/crm/activities.json')).body.activities as { id: number; account_id: number | null; account_name: string | null }[];
    expect(json.find((a) => a.id === renewalCall)).toMatchObject({ account_id: null, account_name: null });

    // The to-do page counts the call with the activities of no account it may name, and its links list it there.
    const acme = Number((await host.db.knex('crm_accounts').where({ name: ACME }).first()).id);
    const todo = (await rep1.get('/crm/activities/todo.json')).body;
    const overdueOf = (accountId: number | null) => todo.by_account.find((a: { account_id: number | null }) => a.account_id === accountId)?.overdue ?? 0;
    expect(overdueOf(acme)).toBe(0);
    expect(overdueOf(null)).toBeGreaterThanOrEqual(1);
    const ids = async (url: string) => ((await rep1.get(url)).body.activities as { id: number }[]).map((a) => a.id);
    expect(await ids(`/crm/activities.json?due=overdue&account=${acme}`)).not.toContain(renewalCall);
    expect(await ids('/crm/activities.json?due=overdue&account=none')).toContain(renewalCall);

    // The director may see the pilot, not its private account: neither the list nor the to-do names it.
    const director = await Session.signIn(host.app, 'director');
    const theirs = await director.get('/crm/activities?due=overdue');
    expect(rowOf(theirs.text, pilotCall)).toContain('Pilot call');
    expect(theirs.text).not.toContain(PRIVATE);
    expect(JSON.stringify((await director.get('/crm/activities.json?due=overdue')).body)).not.toContain(PRIVATE);
    const todoPage = await director.get('/crm/activities/todo');
    expect(todoPage.text).not.toContain(PRIVATE);
    expect(visibleText(todoPage.text)).toContain('Accounts you cannot see');
    expect(JSON.stringify((await director.get('/crm/activities/todo.json')).body)).not.toContain(PRIVATE);
    // Filtered by that account, the list is not titled with its name.
    const privateId = Number((await host.db.knex('crm_accounts').where({ name: PRIVATE }).first()).id);
    expect((await director.get(`/crm/activities?due=overdue&account=${privateId}`)).text).not.toContain(PRIVATE);

    // Those who may read the account still do.
    expect(visibleText(rowOf((await director.get('/crm/activities')).text, renewalCall))).toContain(ACME);
    expect(visibleText(rowOf((await rep1.get('/crm/activities?due=overdue')).text, pilotCall))).toContain(PRIVATE);
  });

  test('the opportunity list’s and the opportunity’s JSON leave the account out where the rules hide it, not even saying it is hidden, and give no id where the user may not see it', async () => {
    const privateId = Number((await host.db.knex('crm_accounts').where({ name: PRIVATE }).first()).id);
    const rep1 = await Session.signIn(host.app, 'rep1');
    const ruled = [
      rowsOf((await rep1.get('/crm/opportunities.json?q=support renewal')).body).find((r) => r.id === renewal),
      (await rep1.get(`/crm/opportunities/${renewal}.json`)).body.opportunity,
    ];
    for (const seen of ruled) {
      expect(seen).toMatchObject({ id: renewal });
      for (const key of ['account_id', 'account_name', 'account_hidden']) expect(seen).not.toHaveProperty(key);
    }
    // The director may see the pilot but not its private account; rep1, whose account it is, may.
    const director = await Session.signIn(host.app, 'director');
    expect(rowsOf((await director.get('/crm/opportunities.json?q=private prospect')).body)).toEqual([expect.objectContaining({ id: pilot, account_id: null, account_name: null, account_hidden: true })]);
    expect((await director.get(`/crm/opportunities/${pilot}.json`)).body.opportunity).toMatchObject({ id: pilot, account_id: null, account_hidden: true });
    expect(rowsOf((await rep1.get('/crm/opportunities.json?q=private prospect')).body)).toEqual([expect.objectContaining({ id: pilot, account_id: privateId, account_name: PRIVATE, account_hidden: false })]);
    expect((await rep1.get(`/crm/opportunities/${pilot}.json`)).body.opportunity).toMatchObject({ id: pilot, account_id: privateId, account_hidden: false });
  });

  test('the opportunity’s own activities (list, edit and save JSON) leave the account out where the rules hide it', async () => {
    const acme = Number((await host.db.knex('crm_accounts').where({ name: ACME }).first()).id);
    const rep1 = await Session.signIn(host.app, 'rep1');
    const listed = await rep1.get(`/crm/opportunities/${renewal}/activities.json`);
    expect(listed.status).toBe(200);
    const call = (listed.body.activities as { id: number; account_id: number | null }[]).find((a) => a.id === renewalCall)!;
    // Not even said to be an account the user may not see: the rules hide the field (as on the activity list).
    expect(call).toMatchObject({ id: renewalCall, account_id: null, account_hidden: false });
    const edit = await rep1.get(`/crm/opportunities/${renewal}/activities/${renewalCall}/edit.json`);
    expect(edit.status).toBe(200);
    expect(edit.body.activity).toMatchObject({ id: renewalCall, account_id: null });
    const lockVersion = Number((await host.db.knex('crm_sales_activities').where({ id: renewalCall }).first()).lock_version);
    const saved = await rep1.agent.post(`/crm/opportunities/${renewal}/activities/${renewalCall}`).set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf).send({
      category_id: String(edit.body.activity.category_id), subject: edit.body.activity.subject, notes: edit.body.activity.notes,
      next_contact_on: edit.body.activity.next_contact_on, responsible_id: String(edit.body.activity.responsible_id), lock_version: String(lockVersion),
    });
    expect(saved.status).toBe(200);
    expect(saved.body.activity).toMatchObject({ id: renewalCall, account_id: null });
    // Stored with its account all the same, and shown to those from whom the rules do not hide it.
    expect(Number((await host.db.knex('crm_sales_activities').where({ id: renewalCall }).first()).account_id)).toBe(acme);
    const director = await Session.signIn(host.app, 'director');
    const theirs = (await director.get(`/crm/opportunities/${renewal}/activities.json`)).body.activities as { id: number; account_id: number | null }[];
    expect(theirs.find((a) => a.id === renewalCall)).toMatchObject({ account_id: acme });
  });

  test('an activity’s history shows an account change only to those who may read the account: not where the rules hide it, by number where the account is not visible', async () => {
    const knex = host.db.knex;
    const accountNamed = async (name: string) => Number((await knex('crm_accounts').where({ name }).first()).id);
    const [acme, globex, privateId] = [await accountNamed(ACME), await accountNamed('Globex Corporation'), await accountNamed(PRIVATE)];
    // What a change of the opportunity's account journals on each of its activities.
    const followed = async (activityId: number, from: number, to: number) => {
      const [j] = await knex('crm_journals').insert({ journalized_type: 'sales_activity', journalized_id: activityId, user_id: host.demo.users.admin.id, action: 'update', notes: 'Follows its opportunity' }).returning('id');
      await knex('crm_journal_details').insert({ journal_id: Number(j.id ?? j), field: 'account_id', old_value: String(from), new_value: String(to) });
    };
    await followed(renewalCall, globex, acme);
    await followed(pilotCall, acme, privateId);
    const history = async (login: string, activityId: number) => {
      const s = await Session.signIn(host.app, login);
      const [page, json] = [await s.get(`/crm/activities/${activityId}/history`), await s.get(`/crm/activities/${activityId}/history.json`)];
      expect([page.status, json.status]).toEqual([200, 200]);
      return { text: visibleText(page.text), json: JSON.stringify(json.body.history) };
    };

    const hidden = await history('rep1', renewalCall);
    expect(hidden.text).toContain('Follows its opportunity');
    expect(hidden.text).not.toContain('Account :');
    expect(hidden.text).not.toContain(ACME);
    expect(hidden.json).not.toContain(ACME);
    expect(hidden.json).not.toContain('account_id');
    expect((await history('director', renewalCall)).text).toContain(`Account : Globex Corporation → ${ACME}`);

    const unseen = await history('director', pilotCall);
    expect(unseen.text).toContain(`Account : ${ACME} → #${privateId}`);
    expect(unseen.text).not.toContain(PRIVATE);
    expect(unseen.json).not.toContain(PRIVATE);
    expect((await history('rep1', pilotCall)).text).toContain(`Account : ${ACME} → ${PRIVATE}`);
  });

  test('the to-do page lists the accounts the user may not name after those it names, as one group without their ids, not in the hidden names’ alphabetical place', async () => {
    const knex = host.db.knex;
    // The director's deal for webshop.example, whose name sorts after the private account's, due long ago and far ahead.
    const webshop = await knex('crm_opportunities').where({ name: 'Webshop – integration' }).first();
    const call = (await knex('crm_activity_categories').where({ name: 'Call' }).first()).id;
    const FAR = '2099-12-31';
    const activity = (recordId: number, accountId: number, nextContactOn: string) => ({
      record_type: 'opportunity', record_id: recordId, account_id: accountId, project_id: webshop.project_id, category_id: call, subject: 'Order check',
      notes: '', occurred_at: new Date().toISOString(), next_contact_on: nextContactOn, responsible_id: null, is_personal: false, author_id: webshop.owner_id,
    });
    const privateAccount = Number((await knex('crm_accounts').where({ name: PRIVATE }).first()).id);
    const inserted = await knex('crm_sales_activities').insert([
      activity(Number(webshop.id), Number(webshop.account_id), '2020-01-02'), activity(Number(webshop.id), Number(webshop.account_id), FAR), activity(pilot, privateAccount, FAR),
    ]).returning('id');
    try {
      const director = await Session.signIn(host.app, 'director');
      type Group = { account_id: number | null; account_name: string | null; account_hidden: boolean; next_contact_on?: string };
      const param = (g: Group) => (g.account_hidden ? 'hidden' : g.account_id === null ? 'none' : String(g.account_id));
      const inOrder = (groups: Group[]) => {
        const named = groups.filter((g) => g.account_name !== null);
        const hidden = groups.filter((g) => g.account_hidden);
        const none = groups.filter((g) => g.account_id === null && !g.account_hidden);
        expect(groups).toEqual([...named, ...hidden, ...none]);
        expect(hidden.every((g) => g.account_id === null && g.account_name === null)).toBe(true);
        expect(named.map((g) => g.account_name)).toEqual(named.map((g) => g.account_name).sort((a, b) => a!.localeCompare(b!)));
      };
      const todo = (await director.get('/crm/activities/todo.json')).body;
      const byAccount = todo.by_account as Group[];
      expect(byAccount.map((g) => g.account_id)).toContain(Number(webshop.account_id));
      expect(byAccount.map((g) => g.account_id)).not.toContain(privateAccount);
      expect(byAccount.filter((g) => g.account_hidden)).toHaveLength(1);
      inOrder(byAccount);
      const html = (await director.get('/crm/activities/todo')).text;
      const rows = [...(/<table class="list" id="todo-by-account">[\s\S]*?<\/table>/.exec(html)![0]).matchAll(/<tr data-account="([^"]*)"/g)].map((m) => m[1]);
      expect(rows).toEqual(byAccount.map(param));

      const last = (await director.get(`/crm/activities/todo.json?page=${todo.pagination.pages}`)).body.upcoming as Group[];
      const far = last.filter((g) => g.next_contact_on === FAR);
      expect(far.map(param)).toEqual([String(webshop.account_id), 'hidden']);
      inOrder(far);
    } finally {
      await knex('crm_sales_activities').whereIn('id', inserted.map((r: { id: number } | number) => Number(typeof r === 'object' ? r.id : r))).delete();
    }
  });

  test('the sale confirmation and its preview (HTML and JSON) name the account only where the user may read it', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const page = await rep1.get(`/crm/opportunities/${renewal}/sell`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(ACME);
    // The preview says where the automation will print the account, not which.
    expect(visibleText(page.text)).toContain('Task “Plan the kick-off with [account hidden]”');
    expect(JSON.stringify((await rep1.get(`/crm/opportunities/${renewal}/sell.json`)).body)).not.toContain(ACME);

    const admin = await Session.signIn(host.app, 'admin');
    const full = visibleText((await admin.get(`/crm/opportunities/${renewal}/sell`)).text);
    expect(full).toContain(`Acme – support renewal · ${ACME}`);
    expect(full).toContain(`Plan the kick-off with ${ACME}`);
    expect(JSON.stringify((await admin.get(`/crm/opportunities/${renewal}/sell.json`)).body)).toContain(`Plan the kick-off with ${ACME}`);
  });

  test('the sale preview names an opportunity whose name the rules hide “Opportunity #<id>”', async () => {
    const knex = host.db.knex;
    const nordic = (await knex('crm_opportunities').where({ name: 'Nordic Retail – POS upgrade' }).first()).id;
    const category = (await knex('crm_product_categories').where({ name: 'Implementation services' }).first()).id;
    const [rule] = await knex('crm_automation_rules').insert({
      category_id: category, action: 'task', template_project_id: null, parent_project_id: null, name_pattern: '', task_subject: 'Brief the team on {opportunity.name}',
      task_project_id: null, assignee_id: null, due_in_days: null, position: 9, active: true, problem: null, lock_version: 0,
    }).returning('id');
    const quote = await knex('crm_quotes').where({ opportunity_id: nordic, is_active: true }).first();
    const day = await knex('crm_quote_items').where({ code: 'IMPL-DAY' }).first();
    const [item] = await knex('crm_quote_items').insert({ ...day, id: undefined, quote_id: quote.id, position: 2 }).returning('id');
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      const page = await rep1.get(`/crm/opportunities/${nordic}/sell`);
      expect(page.text).not.toContain('POS upgrade');
      expect(visibleText(page.text)).toContain(`Brief the team on Opportunity #${nordic}`);
      expect(JSON.stringify((await rep1.get(`/crm/opportunities/${nordic}/sell.json`)).body)).not.toContain('POS upgrade');
      const admin = await Session.signIn(host.app, 'admin');
      expect(visibleText((await admin.get(`/crm/opportunities/${nordic}/sell`)).text)).toContain('Brief the team on Nordic Retail – POS upgrade');
    } finally {
      await knex('crm_quote_items').where({ id: Number(item.id ?? item) }).delete();
      await knex('crm_automation_rules').where({ id: Number(rule.id ?? rule) }).delete();
    }
  });
});

/**
 * A contract's history notes the upsell opportunity made from it. Every reader of the contract reads its history;
 * the entry names the opportunity only to those who may see it, and as they may read it (S5: a hidden name is
 * “Opportunity #<id>”) — for entries journaled as `#<id> <name>` before as well.
 */
describe('the upsell entry of a contract’s history names the opportunity as the reader may read it', () => {
  test('rep1, who may not see the upsell, reads “an opportunity you cannot see”; the director, from whom the rules hide its name, “Opportunity #<id>”', async () => {
    const knex = host.db.knex;
    const UPSELL = 'Webshop – upsell 2028';
    const webshop = (await knex('crm_opportunities').where({ name: 'Webshop – integration' }).first()).id;
    const contract = Number((await knex('crm_contracts').where({ opportunity_id: webshop, kind: 'time_based' }).first()).id);
    const needsAnalysis = String((await knex('crm_opportunity_statuses').where({ name: 'Needs analysis' }).first()).id);
    const admin = await Session.signIn(host.app, 'admin');
    const made = await admin.post(`/crm/contracts/${contract}/upsell`, { name: UPSELL, status_id: needsAnalysis, currency: 'EUR', amount: '1000', expected_close_on: '2028-01-31' });
    expect(made.status).toBe(303);
    const upsell = Number((await knex('crm_opportunities').where({ name: UPSELL }).first()).id);
    // Moved to a project rep1 is no member of: rep1 still reads the contract, no longer the upsell.
    await knex('crm_opportunities').where({ id: upsell }).update({ project_id: host.demo.projects['crm-americas'].id });
    // The same entry as journaled before it named the opportunity with referenceTo.
    const [journal] = await knex('crm_journals').insert({ journalized_type: 'contract', journalized_id: contract, user_id: host.demo.users.admin.id, action: 'update', notes: '' }).returning('id');
    await knex('crm_journal_details').insert({ journal_id: Number(journal.id ?? journal), field: 'upsell opportunity', old_value: null, new_value: `#${upsell} ${UPSELL}` });

    const historyOf = async (login: string) => {
      const page = await (await Session.signIn(host.app, login)).get(`/crm/contracts/${contract}`);
      expect({ login, status: page.status }).toEqual({ login, status: 200 });
      return visibleText(/<div id="contract-history">[\s\S]*?<\/ol>/.exec(page.text)![0]);
    };
    const entries = (history: string, shown: string) => history.split(`Upsell opportunity : (empty) → ${shown}`).length - 1;

    const rep1 = await Session.signIn(host.app, 'rep1');
    expect((await rep1.get(`/crm/opportunities/${upsell}`)).status).toBe(404);
    const repHistory = await historyOf('rep1');
    expect(repHistory).not.toContain('upsell 2028');
    expect(entries(repHistory, 'an opportunity you cannot see')).toBe(2);

    const directorHistory = await historyOf('director');
    expect(directorHistory).not.toContain('upsell 2028');
    expect(entries(directorHistory, `Opportunity #${upsell}`)).toBe(2);

    const adminHistory = await historyOf('admin');
    expect(entries(adminHistory, `${UPSELL} (#${upsell})`)).toBe(1);
    expect(entries(adminHistory, `#${upsell} ${UPSELL}`)).toBe(1);
  });
});

/**
 * An opportunity's history names contracts: the contract an upsell was made from, on the upsell, and a contract
 * removed from the opportunity. A contract is seen where its own opportunity is, with view_contracts
 * (applyContractScope), so a reader of the history may not see it: the entry then says so instead of naming it —
 * for entries journaled before as `#<id> <name>` as well — with one query for the page, not one per entry.
 */
describe('an opportunity’s history names a contract only to a reader who may see it', () => {
  test('sales reps, who here may not view contracts, read “a contract you cannot see” in the upsell and removal entries, old and new; the director reads its name', async () => {
    const knex = host.db.knex;
    const SECRET_CONTRACT = 'Europe secret licence';
    const europe = host.demo.projects['crm-europe'].id;
    const negotiation = (await knex('crm_opportunity_statuses').where({ name: 'Negotiation' }).first()).id;
    const [deal] = await knex('crm_opportunities').insert({
      project_id: europe, name: 'Europe licence deal', owner_id: host.demo.users.rep1.id, author_id: host.demo.users.rep1.id, status_id: negotiation, amount_minor: 100_000, currency: 'EUR',
    }).returning('id');
    const dealId = Number(deal.id ?? deal);
    const model = await knex('crm_contracts').where({ kind: 'time_based' }).first();
    const [c] = await knex('crm_contracts').insert({
      ...model, id: undefined, source_key: 'test:europe-secret', opportunity_id: dealId, quote_id: null, quote_item_id: null, account_id: null, project_id: europe,
      owner_id: host.demo.users.rep1.id, name: SECRET_CONTRACT, status: 'active', lock_version: 0,
    }).returning('id');
    const contract = Number(c.id ?? c);

    const admin = await Session.signIn(host.app, 'admin');
    const made = await admin.post(`/crm/contracts/${contract}/upsell`, { name: 'Europe upsell', status_id: String(negotiation), currency: 'EUR', amount: '1000', expected_close_on: '2028-01-31' });
    expect(made.status).toBe(303);
    const upsell = Number((await knex('crm_opportunities').where({ name: 'Europe upsell' }).first()).id);
    expect((await admin.post(`/crm/contracts/${contract}/remove`, { confirm: '1' })).status).toBe(303);
    // The same entries as journaled before they named the contract with referenceTo.
    const oldEntry = async (oppId: number, entry: { notes?: string; field?: string; old?: string | null; new?: string | null }) => {
      const [j] = await knex('crm_journals').insert({ journalized_type: 'opportunity', journalized_id: oppId, user_id: host.demo.users.admin.id, action: 'update', notes: entry.notes ?? '' }).returning('id');
      if (entry.field) await knex('crm_journal_details').insert({ journal_id: Number(j.id ?? j), field: entry.field, old_value: entry.old ?? null, new_value: entry.new ?? null });
    };
    await oldEntry(upsell, { notes: `Upsell of contract #${contract} ${SECRET_CONTRACT}` });
    await oldEntry(dealId, { field: 'contract', old: `#${contract} ${SECRET_CONTRACT}`, new: null, notes: `Contract #${contract} removed` });
    await oldEntry(dealId, { field: 'contract', old: null, new: `#${contract} ${SECRET_CONTRACT}` });

    const historyOf = async (login: string, oppId: number) => {
      const page = await (await Session.signIn(host.app, login)).get(`/crm/opportunities/${oppId}`);
      expect({ login, oppId, status: page.status }).toEqual({ login, oppId, status: 200 });
      return visibleText(page.text);
    };
    const times = (text: string, part: string) => text.split(part).length - 1;
    const salesRep = (await knex('roles').where({ name: 'Sales rep' }).first()).id;
    await knex('role_permissions').where({ role_id: salesRep, permission: 'view_contracts' }).delete();
    try {
      const rep1 = await Session.signIn(host.app, 'rep1');
      expect((await rep1.get(`/crm/contracts/${contract}`)).status).toBe(404);
      for (const [oppId, entries] of [[upsell, 2], [dealId, 3]]) {
        const seenByRep = await historyOf('rep1', oppId);
        expect(seenByRep).not.toContain(SECRET_CONTRACT);
        expect(times(seenByRep, 'a contract you cannot see')).toBe(entries);
        const seenByDirector = await historyOf('director', oppId);
        expect(times(seenByDirector, SECRET_CONTRACT)).toBeGreaterThanOrEqual(entries);
        expect(seenByDirector).not.toContain('a contract you cannot see');
      }
      expect(await historyOf('director', upsell)).toContain(`Upsell of contract : (empty) → ${SECRET_CONTRACT} (#${contract})`);
      expect(await historyOf('director', dealId)).toContain(`Contract : ${SECRET_CONTRACT} (#${contract}) → (empty)`);

      // More entries naming the contract, no more queries on contracts.
      const contractQueries = async () => (await statementsDuring(knex, () => rep1.get(`/crm/opportunities/${dealId}`))).statements.filter((q) => q.sql.includes('crm_contracts')).length;
      const before = await contractQueries();
      for (let n = 0; n < 3; n++) await oldEntry(dealId, { field: 'contract', old: null, new: `#${contract} ${SECRET_CONTRACT}` });
      await oldEntry(dealId, { notes: `Upsell of contract #${contract} ${SECRET_CONTRACT}` });
      expect(await contractQueries()).toBe(before);
    } finally {
      await knex('role_permissions').insert({ role_id: salesRep, permission: 'view_contracts' });
    }
  });
});

/**
 * The rules of beforeAll hide the name in Needs analysis from sales reps. The hidden rule is about reading a record:
 * a new opportunity in that status still needs a name, which its author types. The form asks for it and says that
 * it is hidden once saved; the copy of an opportunity whose name is hidden is not prefilled with it.
 */
describe('a new opportunity in a status whose rules hide the name', () => {
  const NEEDS_ANALYSIS = async () => String((await host.db.knex('crm_opportunity_statuses').where({ name: 'Needs analysis' }).first()).id);
  const nameInput = (html: string) => /<input name="name" value="([^"]*)"/.exec(html)?.[1] ?? null;

  test('the form asks for the name, saying it is hidden once saved; without one it says so next to the field', async () => {
    const rep1 = await Session.signIn(host.app, 'rep1');
    const status = await NEEDS_ANALYSIS();
    const missing = await rep1.post('/projects/crm-europe/crm/opportunities', { status_id: status, currency: 'EUR', amount: '1000' });
    expect(missing.status).toBe(422);
    expect(nameInput(missing.text)).toBe('');
    expect(missing.text).toContain('data-field="name"');
    expect(visibleText(missing.text)).toContain('Once saved in this status, the name is hidden from you');

    const saved = await rep1.post('/projects/crm-europe/crm/opportunities', { name: 'Nordic Retail – kiosks', status_id: status, currency: 'EUR', amount: '1000' });
    expect(saved.status).toBe(303);
    const stored = await host.db.knex('crm_opportunities').where({ name: 'Nordic Retail – kiosks' }).first();
    expect(stored).toMatchObject({ status_id: Number(status), owner_id: host.demo.users.rep1.id });
    expect(saved.headers.location).toBe(`/crm/opportunities/${stored.id}`);
    const page = await rep1.get(saved.headers.location);
    expect(page.text).not.toContain('kiosks');
    expect(visibleText(page.text)).toContain(`Opportunity #${stored.id}`);
  });

  test('the copy of an opportunity whose name is hidden asks for a new name and saves with it', async () => {
    const knex = host.db.knex;
    const nordic = await knex('crm_opportunities').where({ name: 'Nordic Retail – POS upgrade' }).first();
    const rep1 = await Session.signIn(host.app, 'rep1');
    const form = await rep1.get(`/crm/opportunities/${nordic.id}/copy`);
    expect(form.status).toBe(200);
    expect(nameInput(form.text)).toBe('');
    expect(form.text).not.toContain('POS upgrade');
    expect(visibleText(form.text)).toContain('Once saved in this status, the name is hidden from you');
    const action = /<form method="post" action="([^"]+)"[^>]*id="opportunity-form"/.exec(form.text)![1];
    const copied = await rep1.post(action, { name: 'Nordic Retail – POS phase 2', status_id: String(nordic.status_id), account_id: String(nordic.account_id), currency: 'EUR', amount: '2000' });
    expect(copied.status).toBe(303);
    expect(await knex('crm_opportunities').where({ name: 'Nordic Retail – POS phase 2' }).first()).toMatchObject({ account_id: nordic.account_id, project_id: nordic.project_id });
  });

  test('the JSON answered to its creator leaves out what the rules of its status hide, as the opportunity’s JSON does', async () => {
    const knex = host.db.knex;
    const qualification = String((await knex('crm_opportunity_statuses').where({ name: 'Qualification' }).first()).id); // description and amount hidden from sales reps
    const rep1 = await Session.signIn(host.app, 'rep1');
    const created = await rep1.agent.post('/projects/crm-europe/crm/opportunities').set('Accept', 'application/json').set('X-CSRF-Token', rep1.csrf)
      .send({ name: 'Nordic Retail – shelf labels', status_id: qualification, currency: 'EUR', amount: '4321.00', description: 'SHELFSECRET' });
    expect(created.status).toBe(201);
    const stored = await knex('crm_opportunities').where({ name: 'Nordic Retail – shelf labels' }).first();
    expect({ amount_minor: Number(stored.amount_minor), description: stored.description }).toEqual({ amount_minor: 432100, description: 'SHELFSECRET' });
    expect(created.body.opportunity).toMatchObject({ id: stored.id, name: 'Nordic Retail – shelf labels', currency: 'EUR' });
    expect(JSON.stringify(created.body)).not.toContain('SHELFSECRET');
    expect(created.body.opportunity).not.toHaveProperty('amount_minor');
    expect(created.body.opportunity).not.toHaveProperty('description');
    expect(Object.keys(created.body.opportunity).sort()).toEqual(Object.keys((await rep1.get(`/crm/opportunities/${stored.id}.json`)).body.opportunity).sort());
    // The admin, who has no rules, gets back all they sent.
    const admin = await Session.signIn(host.app, 'admin');
    const adminCreated = await admin.agent.post('/projects/crm-europe/crm/opportunities').set('Accept', 'application/json').set('X-CSRF-Token', admin.csrf)
      .send({ name: 'Nordic Retail – price tags', status_id: qualification, currency: 'EUR', amount: '10.00', description: 'Tags' });
    expect(adminCreated.status).toBe(201);
    expect(adminCreated.body.opportunity).toMatchObject({ amount_minor: 1000, description: 'Tags' });
  });
});
