import { Session, startTestHost, visibleText, type TestHost } from '../helpers/app';

let host: TestHost;
beforeAll(async () => { host = await startTestHost(); });
afterAll(async () => { await host.close(); });

const defaults = {
  default_currency: 'EUR', reporting_currency: 'EUR', show_subproject_records: '0', use_price_book_items: '1',
  show_sales_activities_on_opportunities: '1', show_item_descriptions_on_quotes: '1', account_type_for_opportunities: 'company',
  status_after_sold: 'Won', page_size: '25', max_attachment_mb: '10',
  quote_number_format: 'Q-{YYYY}-{SEQ4}', default_tax_rate: '25.00',
  company_name: 'Your Company Ltd', company_address: 'Main Street 1, 10001 Capital City', company_vat_number: 'XX000000000',
  company_bank: 'Your Bank, IBAN XX00 0000 0000 0000',
};

describe('CRM settings (admin menu entry, S7)', () => {
  test('the admin menu leads to CRM settings for those with manage_crm_settings', async () => {
    const director = await Session.signIn(host.app, 'director');
    const admin = await director.get('/admin');
    expect(admin.status).toBe(200);
    expect(admin.text).toContain('href="/crm/settings"');
    const page = await director.get('/crm/settings');
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="default_currency" value="EUR"');
  });

  test('saving stores typed values and journals old → new on the settings history', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.post('/crm/settings', { ...defaults, default_currency: 'SEK', page_size: '50', show_subproject_records: ['0', '1'] });
    expect(res.status).toBe(303);
    const json = await director.get('/crm/settings.json');
    expect(json.body.settings).toMatchObject({ default_currency: 'SEK', page_size: 50, show_subproject_records: true });
    const page = await director.get('/crm/settings');
    const text = visibleText(page.text);
    expect(text).toContain('Default currency : EUR → SEK');
    expect(text).toContain('Diane Director');
  });

  test('bad values come back with the field named, the typed input kept, and nothing saved', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = (await director.get('/crm/settings.json')).body.settings;
    const res = await director.post('/crm/settings', { ...defaults, default_currency: 'euro<b>', page_size: 'lots' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="default_currency"');
    expect(res.text).toContain('data-field="page_size"');
    expect(res.text).toContain('value="euro&lt;b&gt;"');
    expect((await director.get('/crm/settings.json')).body.settings).toEqual(before);
    const unknown = await director.post('/crm/settings', { ...defaults, sneaky_flag: '1' });
    expect(unknown.status).toBe(422);
    const notACurrency = await director.post('/crm/settings', { ...defaults, reporting_currency: 'ZZZ' });
    expect(notACurrency.status).toBe(422);
    expect(notACurrency.text).toContain('data-field="reporting_currency"');
  });

  test('the status after sold must be an active status of kind won: a lost or unknown one is refused', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = (await director.get('/crm/settings.json')).body.settings;
    for (const name of ['Lost', 'Nonexistent']) {
      const res = await director.post('/crm/settings', { ...defaults, status_after_sold: name });
      expect(res.status).toBe(422);
      expect(res.text).toContain('data-field="status_after_sold"');
      expect(visibleText(res.text)).toContain('Status after sold: choose an active status of kind won');
    }
    expect((await director.get('/crm/settings.json')).body.settings).toEqual(before);
    expect((await director.post('/crm/settings', { ...defaults, status_after_sold: 'won' })).status).toBe(303);
  });
});

/** The options of a select on a page, as the user reads them, and the one selected. */
const selectOf = (html: string, name: string) => {
  const select = new RegExp(`<select name="${name}"[^>]*>([\\s\\S]*?)</select>`).exec(html);
  const options = select ? [...select[1].matchAll(/<option value="([^"]*)"( selected)?[^>]*>([^<]*)<\/option>/g)] : [];
  return { values: options.map((m) => visibleText(m[1])), labels: options.map((m) => visibleText(m[3])), selected: options.filter((m) => m[2]).map((m) => visibleText(m[3])) };
};

describe('CRM settings: the status after sold is chosen from the active won statuses', () => {
  const addStatus = async (name: string, kind: string, active: boolean) => {
    await host.db.knex('crm_opportunity_statuses').insert({ name, color: '#123456', position: 90, probability: 100, kind, active, is_default: false });
  };
  afterEach(async () => {
    await host.db.knex('crm_settings').where({ name: 'status_after_sold' }).delete();
    await host.db.knex('crm_opportunity_statuses').whereIn('name', ['Signed', 'Archived win', 'Dropped']).delete();
  });

  test('the page offers exactly the active won statuses; one is saved by its name; a bad name is refused with the field named', async () => {
    await addStatus('Signed', 'won', true);
    await addStatus('Archived win', 'won', false);
    await addStatus('Dropped', 'lost', true);
    const director = await Session.signIn(host.app, 'director');
    const page = await director.get('/crm/settings');
    const select = selectOf(page.text, 'status_after_sold');
    expect(select.values).toEqual(['Won', 'Signed']);
    expect(select.selected).toEqual(['Won']);
    expect(page.text).not.toMatch(/<input name="status_after_sold"/);

    expect((await director.post('/crm/settings', { ...defaults, status_after_sold: 'Signed' })).status).toBe(303);
    expect((await director.get('/crm/settings.json')).body.settings.status_after_sold).toBe('Signed');
    expect(selectOf((await director.get('/crm/settings')).text, 'status_after_sold').selected).toEqual(['Signed']);

    for (const name of ['Archived win', 'Dropped']) {
      const res = await director.post('/crm/settings', { ...defaults, status_after_sold: name });
      expect(res.status).toBe(422);
      expect(res.text).toContain('data-field="status_after_sold"');
      expect(visibleText(res.text)).toContain('Status after sold: choose an active status of kind won');
    }
    expect((await director.get('/crm/settings.json')).body.settings.status_after_sold).toBe('Signed');
  });

  test('a stored status that is no longer an active won status shows as such, not as another status', async () => {
    await addStatus('Signed', 'won', true);
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/settings', { ...defaults, status_after_sold: 'Signed' })).status).toBe(303);
    await host.db.knex('crm_opportunity_statuses').where({ name: 'Signed' }).update({ active: false });
    const select = selectOf((await director.get('/crm/settings')).text, 'status_after_sold');
    expect(select.selected).toEqual(['Signed (not an active won status)']);
    expect(select.labels).toEqual(['Signed (not an active won status)', 'Won']);
    // Saving the page as it is does not pick another status silently: the stale one is refused.
    const res = await director.post('/crm/settings', { ...defaults, status_after_sold: 'Signed' });
    expect(res.status).toBe(422);
    expect(res.text).toContain('data-field="status_after_sold"');
  });
});

describe('CRM settings: an unknown setting', () => {
  test('a posted setting name that is not a setting is named in the message (page and JSON), and nothing is saved', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = (await director.get('/crm/settings.json')).body.settings;
    const res = await director.post('/crm/settings', { ...defaults, page_size: '40', sneaky_flag: '1' });
    expect(res.status).toBe(422);
    expect(visibleText(res.text)).toContain('Unknown setting “sneaky_flag”');
    const json = await director.agent.post('/crm/settings').type('form').set('Accept', 'application/json').send({ ...defaults, sneaky_flag: '1', _csrf: director.csrf });
    expect(json.status).toBe(422);
    expect(json.body.error).toContain('Unknown setting “sneaky_flag”');
    expect(json.body.fields.sneaky_flag).toBe('Unknown setting “sneaky_flag”');
    expect((await director.get('/crm/settings.json')).body.settings).toEqual(before);
  });
});

describe('CRM settings page labels and the default tax rate', () => {
  test('the settings page names every setting by its label, never by its key', async () => {
    const director = await Session.signIn(host.app, 'director');
    const text = visibleText((await director.get('/crm/settings')).text);
    for (const label of [
      'Use CRM items from price books', 'Show opportunities of all subprojects', 'Show sales activities on opportunities',
      'Show item descriptions on quotes', 'Account type used for opportunities', 'Status after sold', 'Default tax rate',
    ]) expect(text).toContain(label);
    for (const key of Object.keys(defaults)) expect(text).not.toContain(key);
  });

  test('a changed setting shows its label in the settings history, not its key', async () => {
    const director = await Session.signIn(host.app, 'director');
    expect((await director.post('/crm/settings', { ...defaults, show_item_descriptions_on_quotes: '0' })).status).toBe(303);
    const text = visibleText((await director.get('/crm/settings')).text);
    expect(text).toContain('Show item descriptions on quotes : yes → no');
    for (const key of Object.keys(defaults)) expect(text).not.toContain(key);
    expect((await director.post('/crm/settings', defaults)).status).toBe(303);
  });

  test('a refused value’s message names the setting by its label', async () => {
    const director = await Session.signIn(host.app, 'director');
    const res = await director.post('/crm/settings', { ...defaults, page_size: '0', reporting_currency: 'euro' });
    expect(res.status).toBe(422);
    const text = visibleText(res.text);
    expect(text).toContain('Rows per page must be a whole number from 1 to 500');
    expect(text).toContain('Reporting currency must be an ISO 4217 code such as EUR');
    for (const key of Object.keys(defaults)) expect(text).not.toContain(key);
  });

  test('a default tax rate outside 0–100 % is refused with the field named and nothing stored', async () => {
    const director = await Session.signIn(host.app, 'director');
    const before = (await director.get('/crm/settings.json')).body.settings;
    for (const rate of ['250', '-1', '12.345', 'lots', '']) {
      const res = await director.post('/crm/settings', { ...defaults, default_tax_rate: rate });
      expect(res.status).toBe(422);
      expect(res.text).toContain('data-field="default_tax_rate"');
      expect(res.text).toContain(`name="default_tax_rate" value="${rate}"`);
      expect(visibleText(res.text)).toMatch(/Default tax rate (must be from 0 to 100 %|has at most 2 decimals|is not a percentage|is required)/);
    }
    const json = await director.agent.post('/crm/settings').type('form').set('Accept', 'application/json').send({ ...defaults, default_tax_rate: '250', _csrf: director.csrf });
    expect(json.status).toBe(422);
    expect(json.body.fields.default_tax_rate).toBe('Default tax rate must be from 0 to 100 %');
    expect((await director.get('/crm/settings.json')).body.settings).toEqual(before);
    const stored = await host.db.knex('crm_settings').where({ name: 'default_tax_rate' }).first();
    expect(stored ? JSON.parse(stored.value) : defaults.default_tax_rate).toBe(before.default_tax_rate);
    expect((await director.post('/crm/settings', { ...defaults, default_tax_rate: '12.5' })).status).toBe(303);
    expect((await director.get('/crm/settings.json')).body.settings.default_tax_rate).toBe('12.5');
  });
});
