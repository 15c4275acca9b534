/// <reference lib="dom" />
import { screenshot, signIn, useBrowser } from './browser';

const session = useBrowser();

test('sell from the sidebar: confirm the deal, then follow the link to the project the automation made in the host', async () => {
  const { page, consoleErrors } = session;
  const { baseUrl } = session.live;
  const knex = session.live.host.db.knex;
  const opp = (await knex('crm_opportunities').where({ name: 'Acme – ERP rollout' }).first()).id;
  // The admin: the project made from the template has the template's members, which a sales rep is not one of.
  await signIn(page, baseUrl, 'admin');

  await page.goto(`${baseUrl}/crm/opportunities/${opp}`);
  await page.click('#mark-sold');
  await page.waitForSelector('#sale-contracts');
  const preview = (await page.textContent('#sale-contracts'))!;
  expect(preview).toContain('Implementation consulting');
  expect(preview).toContain('Project “Acme Manufacturing – Implementation consulting” from the template Implementation (template) under CRM');
  await screenshot(page, 'contracts-confirm-sale');

  await page.click('#confirm-sale');
  await page.waitForSelector('#sold-note');
  expect(page.url()).toBe(`${baseUrl}/crm/opportunities/${opp}`);
  expect((await page.textContent('#crm-page'))!).toContain('Sold and locked');
  expect(await page.locator('#mark-sold').count()).toBe(0);
  const contracts = await knex('crm_contracts').where({ opportunity_id: opp });
  expect(contracts.length).toBeGreaterThan(3);
  await screenshot(page, 'contracts-sold-opportunity');

  const projectLink = page.locator('#opportunity-contracts a.run-link', { hasText: 'Project Acme Manufacturing – Implementation consulting' }).first();
  await Promise.all([page.waitForURL(/\/projects\/acme-manufacturing-implementation-consulting-\d+$/), projectLink.click()]);
  await page.waitForSelector('#project-links');
  expect((await page.textContent('#project-links'))!).toContain('CRM account: Acme Manufacturing');
  await screenshot(page, 'contracts-project-from-template');

  await Promise.all([page.waitForURL(/\/crm\/contracts\/\d+$/), page.click('#project-links a:has-text("CRM contract")')]);
  expect((await page.textContent('#contract-runs'))!).toContain('Acme Manufacturing – Implementation consulting');
  await screenshot(page, 'contracts-contract-detail');
  expect(consoleErrors).toEqual([]);
});
