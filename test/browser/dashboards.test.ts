/// <reference lib="dom" />
import { screenshot, signIn, useBrowser } from './browser';

const session = useBrowser();

test('customize the project overview: add a funnel, set its period, take a baseline and compare', async () => {
  const { page, consoleErrors } = session;
  const { baseUrl } = session.live;
  const knex = session.live.host.db.knex;
  await signIn(page, baseUrl, 'director');

  // Europe has CRM but no overview page yet: the first view creates the default one.
  await page.goto(`${baseUrl}/projects/crm-europe/crm`);
  await page.waitForSelector('#overview-modules .module-funnel svg.chart.funnel');
  await screenshot(page, 'dashboards-project-overview');

  // Customize without a reload (htmx), then add a funnel module.
  await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true; });
  await page.click('#customize-page');
  await page.waitForSelector('#add-module');
  await page.selectOption('#add-module select[name=type]', 'funnel');
  await page.fill('#add-module input[name=title]', 'Pipeline this year');
  await page.click('#add-module button[type=submit]');
  await page.waitForSelector('.module-controls >> nth=5');
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
  const added = await knex('crm_dashboard_modules').where({ title: 'Pipeline this year' }).first();
  expect(added.type).toBe('funnel');

  // Edit it: a custom range that covers the demo pipeline, bars instead of the funnel.
  await page.click(`#module-${added.id} a.edit-module`);
  await page.waitForSelector('#module-form');
  await page.selectOption('#module-form select[name=period]', 'custom');
  await page.fill('#module-form input[name=from]', '2026-01-01');
  await page.fill('#module-form input[name=to]', '2027-12-31');
  await page.click('#module-form button[type=submit]');
  await page.waitForSelector(`#module-${added.id} .module-controls`);
  // Move it to the top.
  for (let i = 0; i < 5; i++) {
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith(`/modules/${added.id}/move`)),
      page.click(`#module-${added.id} button[title="Move up"]`),
    ]);
    await page.waitForSelector(`#module-${added.id}`);
  }
  expect(await page.getAttribute('#overview-modules .module >> nth=0', 'id')).toBe(`module-${added.id}`);
  await screenshot(page, 'dashboards-customize');
  await page.click('#done-customizing');
  await page.waitForSelector(`#module-${added.id} form.period-picker`);

  // The period picker swaps the module alone.
  await page.selectOption(`#module-${added.id} select[name=period]`, 'this_year');
  await page.click(`#module-${added.id} form.period-picker button`);
  await page.waitForFunction((id) => document.querySelector(`#module-${id} .module-period`)?.textContent?.includes(String(new Date().getUTCFullYear())), added.id);

  // A baseline on the module's own page, then a change to the data, then the comparison.
  await page.goto(`${baseUrl}/projects/crm-europe/crm/modules/${added.id}`);
  await page.fill('#take-baseline input[name=name]', 'Before the big deal');
  await page.click('#take-baseline button[type=submit]');
  await page.waitForSelector('#baselines >> text=Before the big deal');
  const proposal = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  await knex('crm_opportunities').insert({
    project_id: session.live.host.demo.projects['crm-europe'].id, name: 'Big deal', status_id: proposal, amount_minor: 9_000_000, currency: 'EUR',
    expected_close_on: '2027-06-30', owner_id: session.live.host.demo.users.rep1.id, author_id: session.live.host.demo.users.rep1.id,
  });
  const baseline = await knex('crm_baselines').where({ module_id: added.id }).first();
  await page.goto(`${baseUrl}/projects/crm-europe/crm/modules/${added.id}?baseline=${baseline.id}`);
  await page.waitForSelector('svg.chart .baseline-outline');
  const table = (await page.textContent(`#module-${added.id} table.module-data`))!.replace(/\s+/g, ' ');
  expect(table).toContain('Amount (Before the big deal)');
  await screenshot(page, 'dashboards-baseline');
  expect(consoleErrors).toEqual([]);
});
