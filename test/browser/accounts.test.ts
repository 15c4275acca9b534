/// <reference lib="dom" />
import type { Page } from 'playwright-core';
import { screenshot, signIn, useBrowser } from './browser';

// A 422 is the expected answer to the invalid form below; any other console error is a failure.
const session = useBrowser({
  expectedErrors: /status of 422/,
  async prepare(live) {
    const knex = live.host.db.knex;
    const company = (await knex('crm_account_types').where({ name: 'Company' }).first()).id;
    await knex('crm_custom_fields').insert({ entity: 'account', account_type_id: company, name: 'Framework agreement no.', field_format: 'text', is_required: true, position: 0 });
  },
});

/** Picks an account type and waits until htmx has settled the re-rendered form (so its select listens again). */
async function switchAccountType(page: Page, label: string): Promise<void> {
  const settled = page.evaluate(() => new Promise<void>((resolve) => document.body.addEventListener('htmx:afterSettle', () => resolve(), { once: true })));
  await page.selectOption('select[name=account_type_id]', { label });
  await settled;
}

test('create an account with a required custom field: refused without it, saved with it', async () => {
  const { page, consoleErrors } = session;
  const { baseUrl } = session.live;
  await signIn(page, baseUrl, 'rep1');
  await page.goto(`${baseUrl}/projects/crm-europe/crm/accounts`);
  await page.click('#new-account');
  await page.waitForURL(`${baseUrl}/projects/crm-europe/crm/accounts/new`);
  // Switching the type re-renders the form with the type's fields and keeps what was typed before.
  await page.fill('input[name=city]', 'Eskilstuna');
  await page.check('input[name=is_supplier]');
  await switchAccountType(page, 'Company');
  expect(await page.textContent('#account-form')).toContain('Framework agreement no.');
  expect(await page.inputValue('input[name=city]')).toBe('Eskilstuna');
  expect(await page.isChecked('input[name=is_supplier]')).toBe(true);
  await page.fill('input[name=name]', 'Volvo Construction');
  await switchAccountType(page, 'Account');
  expect(await page.textContent('#account-form')).not.toContain('Framework agreement no.');
  expect(await page.inputValue('input[name=name]')).toBe('Volvo Construction');
  await switchAccountType(page, 'Company');
  expect(await page.inputValue('input[name=name]')).toBe('Volvo Construction');
  // The browser's own `required` check would stop the form; remove it to see the server's answer.
  await page.evaluate(() => document.querySelectorAll('[required]').forEach((el) => el.removeAttribute('required')));
  await page.click('#account-form button[type=submit]');
  await page.waitForSelector('.field-error');
  expect(await page.textContent('.field-error')).toContain('Framework agreement no. is required');
  expect(await page.inputValue('input[name=name]')).toBe('Volvo Construction');

  const field = page.locator('label:has-text("Framework agreement no.") input');
  await field.fill('FA-2026-17');
  await page.click('#account-form button[type=submit]');
  await page.waitForURL(/\/crm\/accounts\/\d+$/);
  expect(await page.textContent('#crm-page h2')).toContain('Volvo Construction');
  expect(await page.textContent('[data-custom-field="Framework agreement no."]')).toBe('FA-2026-17');
  await screenshot(page, 'account-created');

  // A9: a new employee from the account's sidebar; the form posts through htmx and comes back to People.
  await page.click('#new-employee');
  await page.waitForURL(/\/crm\/personal-contacts\/new\?account_id=\d+/);
  await page.fill('input[name=first_name]', 'Stina');
  await page.fill('input[name=last_name]', 'Berg');
  await page.click('#contact-form button[type=submit]');
  await page.waitForURL(/\/crm\/accounts\/\d+\?tab=people$/);
  expect(await page.textContent('#tab-people')).toContain('Stina Berg');
  expect(await page.textContent('#crm-page h2')).toContain('Volvo Construction');
  await screenshot(page, 'account-people');
  await page.click('.subtabs a[data-tab=data]');
  await page.waitForSelector('#tab-data');
  expect(await page.textContent('[data-custom-field="Framework agreement no."]')).toBe('FA-2026-17');

  await page.click('#toggle-favorite');
  await page.waitForFunction(() => document.querySelector('#toggle-favorite')?.textContent?.trim() === 'Remove from my accounts');
  await page.click('.subtabs a[data-tab=history]');
  await page.waitForSelector('#tab-history');
  expect(await page.textContent('#tab-history')).toContain('create');
  expect(consoleErrors).toEqual([]);
});

test('the account list with filters and saved filters', async () => {
  const { page, consoleErrors } = session;
  await page.goto(`${session.live.baseUrl}/crm/accounts`);
  await page.check('input[name=key_account]');
  await page.click('.filters button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#accounts-table tbody tr').length === 1);
  expect(page.url()).toContain('key_account=1');
  await screenshot(page, 'account-list');
  expect(consoleErrors).toEqual([]);
});
