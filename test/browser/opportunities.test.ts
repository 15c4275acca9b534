/// <reference lib="dom" />
import { screenshot, signIn, useBrowser } from './browser';

// The invalid activity form below is answered with 422 on purpose.
const session = useBrowser({ expectedErrors: /status of 422/ });

test('create an opportunity, drag it across the kanban, add an activity from the sidebar, see the move in History', async () => {
  const { page, consoleErrors } = session;
  const { baseUrl } = session.live;
  const knex = session.live.host.db.knex;
  await signIn(page, baseUrl, 'rep1');

  await page.goto(`${baseUrl}/projects/crm-europe/crm/opportunities`);
  await page.click('#new-opportunity');
  await page.waitForURL(`${baseUrl}/projects/crm-europe/crm/opportunities/new`);
  await page.fill('input[name=name]', 'Volvo – fleet telematics');
  await page.fill('input[name=amount]', '48 000,50');
  await page.fill('input[name=expected_close_on]', '2027-05-31');
  await page.click('#opportunity-form button[type=submit]:not([name])');
  await page.waitForURL(/\/crm\/opportunities\/\d+$/);
  const id = Number(page.url().split('/').pop());
  // Amounts are grouped with narrow no-break spaces; compare as a reader would.
  expect((await page.textContent('#opportunity-fields'))!.replace(/\s+/g, ' ')).toContain('48 000.50 EUR');

  // The pipeline: drag the card from Qualification to Proposal.
  await page.goto(`${baseUrl}/projects/crm-europe/crm/opportunities/kanban`);
  const proposal = (await knex('crm_opportunity_statuses').where({ name: 'Proposal' }).first()).id;
  const card = page.locator(`.card[data-opportunity="${id}"]`);
  await card.dragTo(page.locator(`.kanban-column[data-status="${proposal}"]`));
  await page.waitForSelector(`.kanban-column[data-status="${proposal}"] .card[data-opportunity="${id}"]`);
  expect((await knex('crm_opportunities').where({ id }).first()).status_id).toBe(proposal);
  await screenshot(page, 'opportunity-kanban');

  // The move menu does the same without dragging: "Move…" loads it into the card (without JavaScript it is a page).
  const negotiation = (await knex('crm_opportunity_statuses').where({ name: 'Negotiation' }).first()).id;
  await page.click(`.card[data-opportunity="${id}"] a.move-link`);
  await page.waitForSelector(`.card[data-opportunity="${id}"] select[name=status_id]`);
  await page.selectOption(`.card[data-opportunity="${id}"] select[name=status_id]`, String(negotiation));
  await page.click(`.card[data-opportunity="${id}"] form.move button`);
  await page.waitForSelector(`.kanban-column[data-status="${negotiation}"] .card[data-opportunity="${id}"]`);

  expect(page.url()).toBe(`${baseUrl}/projects/crm-europe/crm/opportunities/kanban`);

  // On the opportunity: add an activity from the sidebar without a reload.
  await page.click(`.card[data-opportunity="${id}"] a`);
  await page.waitForURL(`${baseUrl}/crm/opportunities/${id}`);
  await page.evaluate(() => { (window as unknown as { notReloaded: boolean }).notReloaded = true; });
  await page.fill(`#activity-add-opportunity-${id} input[name=subject]`, 'Demo for the fleet manager');
  await page.click(`#add-activity-opportunity-${id}`);
  await page.waitForSelector(`#activities-opportunity-${id} >> text=Demo for the fleet manager`);
  expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);

  const history = (await page.textContent('#opportunity-history'))!.replace(/\s+/g, ' ');
  expect(history).toContain('Status: Qualification → Proposal');
  expect(history).toContain('Status: Proposal → Negotiation');
  expect(history).toContain('Amount: (empty) → 48000.50 EUR');
  await screenshot(page, 'opportunity-detail');
  expect(consoleErrors).toEqual([]);
});
