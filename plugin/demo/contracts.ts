import type { CrmContext } from '../http/guard';
import type { DemoDirectory, HostApi } from '../host';
import { requireVisibleOpportunity } from '../services/opportunities';
import { sell } from '../services/sale';
import { loadSettings } from '../services/settings';
import { defaultTaxRate, nextQuoteNumber } from '../services/quotes';

/**
 * Contracts and automation (C1–C4): a rule "Implementation services → a project from the Implementation template
 * under CRM, plus a kick-off task for the project manager", and "Webshop – integration" sold through the sale
 * service (a quote with licences and consulting days), so contracts and a project made from the template exist
 * at `npm start`. Does nothing without its demo records.
 */
export async function seedContractsDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const knex = host.knex;
  const { director, pm } = demo.users;
  const crm = demo.projects.crm;
  const template = demo.projects['implementation-template'];
  const category = await knex('crm_product_categories').where({ name: 'Implementation services' }).first('id');
  const opp = await knex('crm_opportunities').where({ name: 'Webshop – integration' }).whereNull('deleted_at').first('id', 'currency', 'is_locked');
  const book = await knex('crm_price_books').where({ name: 'Standard 2026' }).whereNull('deleted_at').first('id');
  if (!director || !crm || !template || !category || !opp || !book || opp.is_locked) return;

  await knex('crm_automation_rules').insert([
    {
      category_id: category.id, action: 'project', template_project_id: template.id, parent_project_id: crm.id, name_pattern: '{account.name} – {contract.product}',
      task_subject: '', task_project_id: null, assignee_id: null, due_in_days: null, position: 1, active: true, problem: null, lock_version: 0,
    },
    {
      category_id: category.id, action: 'task', template_project_id: null, parent_project_id: null, name_pattern: '', task_subject: 'Plan the kick-off with {account.name}',
      task_project_id: null, assignee_id: pm?.id ?? null, due_in_days: 7, position: 2, active: true, problem: null, lock_version: 0,
    },
  ]);

  const currency = String(opp.currency);
  const tax = await defaultTaxRate(knex);
  const number = await nextQuoteNumber(knex, String((await loadSettings(knex)).quote_number_format));
  const [row] = await knex('crm_quotes').insert({
    opportunity_id: opp.id, number, name: 'Web shop integration', currency, brand: '', product_version: '', valid_from: null, valid_to: null, is_active: true, author_id: director.id,
  }).returning('id');
  const quoteId = Number(row.id ?? row);
  const items: Record<string, unknown>[] = [];
  for (const [code, unit, quantity] of [['CRM-PRO', 'licence/user/year', 5_000], ['IMPL-DAY', 'day', 3_000]] as const) {
    const p = await knex('crm_product_prices as pp').join('crm_products as p', 'p.id', 'pp.product_id')
      .where({ 'pp.price_book_id': book.id, 'p.code': code, 'pp.unit_name': unit, 'pp.currency': currency }).first('p.id as product_id', 'p.code', 'p.name', 'p.description', 'pp.price_minor');
    if (p) items.push({ kind: 'product', product_id: p.product_id, price_book_id: book.id, code: p.code, name: p.name, description: p.description, unit, quantity_milli: quantity, unit_price_minor: Number(p.price_minor), tax_rate_bp: tax });
  }
  if (!items.length) return;
  await knex('crm_quote_items').insert(items.map((i, index) => ({ bundle_id: null, discount_kind: null, discount_value: 0, ...i, quote_id: quoteId, position: index + 1 })));

  // Sold by the sales director, through the same service (and transaction) as the confirmation page.
  const ctx: CrmContext = { host, user: director, project: null, scopeProjects: (permission) => host.projectsWhere(director, permission) };
  const fresh = await requireVisibleOpportunity(ctx, Number(opp.id));
  const quote = await knex('crm_quotes').where({ id: quoteId }).first('lock_version');
  await sell(ctx, fresh, { lock_version: String(fresh.lock_version), quote_lock_version: String(quote.lock_version) });
}
