/// <reference lib="dom" />
import PizZip from 'pizzip';
import { screenshot, signIn, useBrowser } from './browser';

const session = useBrowser();

test('build a quote from the price-book modal and generate its Word document', async () => {
  const { page, consoleErrors } = session;
  const { baseUrl } = session.live;
  const knex = session.live.host.db.knex;
  const opp = (await knex('crm_opportunities').where({ name: 'Acme – support renewal' }).first()).id;
  await signIn(page, baseUrl, 'rep1');

  await page.goto(`${baseUrl}/crm/opportunities/${opp}`);
  await page.click('#new-quote summary');
  await page.fill('#new-quote-form input[name=name]', 'Support renewal 2027');
  await page.click('#new-quote-form button[type=submit]');
  await page.waitForSelector('#opportunity-quotes >> text=Support renewal 2027');
  const quote = (await knex('crm_quotes').where({ opportunity_id: opp, name: 'Support renewal 2027' }).first());

  await page.goto(`${baseUrl}/crm/quotes/${quote.id}`);
  await page.click('#open-catalogue');
  await page.waitForSelector('#quote-catalogue[open]');
  await page.selectOption('#quote-catalogue select[name=price_book]', { label: 'Standard 2026' });
  await page.waitForSelector('#quote-catalogue tr[data-product] button');
  const firstRow = page.locator('#quote-catalogue tr[data-product]').first();
  const productName = (await firstRow.locator('td').first().textContent())!.trim().split(/\s{2,}|\n/)[0];
  await firstRow.locator('input[name=quantity]').fill('3');
  await firstRow.locator('button').click();
  await page.waitForFunction(() => document.querySelectorAll('#quote-items tbody tr').length > 0);
  expect((await page.textContent('#quote-items'))!).toContain(productName.split(' ')[0]);
  await screenshot(page, 'quote-built');

  await page.goto(`${baseUrl}/crm/opportunities/${opp}/documents/new`);
  await page.selectOption('#generate-document-form select[name=quote_id]', String(quote.id));
  await page.locator('#generate-document-form input[name=template]').first().check();
  await page.click('#generate-document-form button[type=submit]');
  await page.waitForSelector('a[download]');
  const stored = await knex('crm_attachments').where({ record_type: 'opportunity', record_id: opp }).orderBy('id', 'desc').first();
  expect(stored.filename).toBe(`${quote.number}.docx`);
  const download = await page.request.get(`${baseUrl}${await page.getAttribute('a[download]', 'href')}`);
  expect(download.status()).toBe(200);
  const xml = new PizZip(await download.body()).file('word/document.xml')!.asText();
  expect(xml).toContain(quote.number);
  await screenshot(page, 'quote-document-generated');
  expect(consoleErrors).toEqual([]);
});
