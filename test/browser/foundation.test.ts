/// <reference lib="dom" />
import { screenshot, signIn, useBrowser } from './browser';

const session = useBrowser();

test('enable CRM on a project, open its CRM tab, and run a sidebar action through htmx without a reload', async () => {
  const { page, consoleErrors, live } = session;
  const { baseUrl } = live;
  await signIn(page, baseUrl, 'admin', 'admin');

  await page.goto(`${baseUrl}/projects/internal/settings`);
  await page.check('#modules-form input[value=crm]');
  await Promise.all([page.waitForURL(`${baseUrl}/projects/internal/settings`), page.click('#modules-form button[type=submit]')]);
  await page.waitForSelector('text=Modules saved.');

  await page.click('nav.tabs a[data-tab=crm]');
  await page.waitForURL(`${baseUrl}/projects/internal/crm`);
  expect(await page.textContent('#crm-page h2')).toBe('CRM overview');
  expect(await page.getAttribute('nav.tabs a.active', 'data-tab')).toBe('crm');

  // A marker on the window survives an htmx swap but not a page load.
  await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true; });
  const button = page.locator('#toggle-subprojects');
  expect((await button.textContent())?.trim()).toBe("Include subprojects' records");
  const responded = page.waitForResponse((r) => r.url().endsWith('/projects/internal/crm/settings/subprojects') && r.request().method() === 'POST');
  await button.click();
  const response = await responded;
  expect(response.status()).toBe(200);
  expect(response.headers()['hx-trigger']).toBe('crm:projectSettingsChanged');
  await page.waitForFunction(() => document.querySelector('#toggle-subprojects')?.textContent?.trim() === "Exclude subprojects' records");
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

  // And again: the swapped-in form carries the new lock version, so a second click is not stale.
  await page.click('#toggle-subprojects');
  await page.waitForFunction(() => document.querySelector('#toggle-subprojects')?.textContent?.trim() === "Include subprojects' records");
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

  const stored = await live.host.db.knex('crm_project_settings').where({ project_id: live.host.demo.projects.internal.id }).first();
  expect(stored).toMatchObject({ lock_version: 2 });
  expect(Boolean(stored.include_subprojects)).toBe(false);
  expect(consoleErrors).toEqual([]);
  await screenshot(page, 'foundation-project-crm-overview');
});

test('the global CRM overview with its sidebar of sections', async () => {
  const { page, consoleErrors, live } = session;
  await page.goto(`${live.baseUrl}/crm`);
  expect(await page.textContent('#crm-page h2')).toBe('CRM overview');
  const sections = await page.locator('.crm-nav a').allTextContents();
  expect(sections).toEqual(['Overview', 'Leads', 'Opportunities', 'Sales activities', 'Accounts', 'Personal contacts', 'Partners', 'Campaigns', 'Contracts', 'Price books', 'Settings']);
  await screenshot(page, 'foundation-global-crm');
  expect(consoleErrors).toEqual([]);
});
