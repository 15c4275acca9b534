import type { CrmContext } from '../../http/guard';
import type { Opportunity } from '../../models/opportunity';
import { findVisibleAccount } from '../accounts';
import { findVisibleContact } from '../contacts';
import { allFields, customValuesOf } from '../custom-fields';
import { fieldRulesFor, visibleOpportunityFields } from '../field-rules';
import { statuses } from '../opportunities';
import { pricedQuote, quotesOf, type Quote } from '../quotes';
import { loadSettings } from '../settings';
import { customFieldSlug, type DocumentCustomField, type QuoteDocumentInput } from './token-data';
import { todayUtc } from '../dates';

/**
 * Gathers what a quote document shows, for this user: the quote with its priced lines and totals, the account
 * and contact (only if the user may see them, as everywhere else), the owner as sales rep, the own company from
 * the CRM settings, and custom fields by name. The opportunity's fields that the field rules hide from this user
 * (S5) are left out, and with them the account, contact and sales rep they name: their tokens print nothing.
 * The caller has checked that the user may see the quote's opportunity (requireVisibleQuote; the generate route
 * has the editable opportunity and found the quote among its quotes), so neither is read again.
 */
export async function quoteDocumentInput(ctx: CrmContext, checked: { quote: Quote; opportunity: Opportunity }, today = new Date()): Promise<QuoteDocumentInput> {
  // The lines and what the document says around them are independent: read at once (on PostgreSQL they overlap on
  // the pool's connections, and the lines of a long quote take the longest).
  const [{ quote, items, totals }, { opportunity, settings, account, contact, owner, status, accountFields, opportunityFields }] = await Promise.all([
    pricedQuote(ctx.host.knex, checked),
    aroundTheQuote(ctx, checked.opportunity),
  ]);
  return {
    today: todayUtc(today),
    quote: {
      number: quote.number, name: quote.name, currency: quote.currency, brand: quote.brand, product_version: quote.product_version,
      created_on: quote.created_at, valid_from: quote.valid_from, valid_to: quote.valid_to,
    },
    opportunity: {
      id: opportunity.id, name: opportunity.name ?? '', description: opportunity.description ?? '', status: status?.name ? String(status.name) : '',
      amount_minor: opportunity.amount_minor ?? null, currency: opportunity.currency, expected_close_on: opportunity.expected_close_on ?? null,
    },
    account: account ? {
      name: account.name, organization: account.organization, street: account.street, postcode: account.postcode, city: account.city,
      country: account.country, email: account.email, phone: account.phone, vat_number: account.vat_number,
      registration_number: account.registration_number, customer_number: account.customer_number,
    } : null,
    contact: contact ? { first_name: contact.first_name, last_name: contact.last_name, job_title: contact.job_title, email: contact.email, phone: contact.phone } : null,
    items: items.map((i) => ({
      code: i.code, name: i.name, description: i.description, unit: i.unit, quantity_milli: i.quantity_milli, unit_price_minor: i.unit_price_minor,
      gross_minor: i.gross_minor, discount_minor: i.discount_minor, discount_percent_bp: i.discount_kind === 'percent' ? i.discount_value : null,
      net_minor: i.net_minor, tax_rate_bp: i.tax_rate_bp, tax_minor: i.tax_minor, total_minor: i.total_minor,
    })),
    totals,
    salesRep: owner ? { name: owner.name, email: owner.email, login: owner.login } : null,
    company: {
      name: String(settings.company_name ?? ''), address: String(settings.company_address ?? '').replace(/\s*\\n\s*/g, '\n'),
      vat_number: String(settings.company_vat_number ?? ''), bank: String(settings.company_bank ?? ''),
    },
    customFields: { account: accountFields, opportunity: opportunityFields },
    showItemDescriptions: settings.show_item_descriptions_on_quotes !== false,
  };
}

/** The opportunity as this user may see it, and what the document names through it, each only if the user may see it. */
async function aroundTheQuote(ctx: CrmContext, stored: Opportunity) {
  const knex = ctx.host.knex;
  const opportunity = visibleOpportunityFields({ ...stored }, await fieldRulesFor(ctx, stored.project_id, stored.status_id));
  const accountRead = opportunity.account_id ? findVisibleAccount(ctx, opportunity.account_id) : Promise.resolve(null);
  const [settings, account, contact, owner, status, accountFields, opportunityFields] = await Promise.all([
    loadSettings(knex),
    accountRead,
    opportunity.contact_id ? findVisibleContact(ctx, opportunity.contact_id) : null,
    opportunity.owner_id ? ctx.host.userById(opportunity.owner_id) : null,
    statuses(knex).then((all) => all.find((s) => s.id === opportunity.status_id)),
    accountRead.then((a) => (a ? customFields(ctx, 'account', a.id) : [])),
    customFields(ctx, 'opportunity', opportunity.id),
  ]);
  return { opportunity, settings, account, contact, owner, status, accountFields, opportunityFields };
}

async function customFields(ctx: CrmContext, entity: string, id: number): Promise<DocumentCustomField[]> {
  const fields = await allFields(ctx.host.knex, entity);
  if (!fields.length) return [];
  const values = await customValuesOf(ctx.host.knex, entity, id);
  return fields.filter((f) => f.active).map((f) => ({ name: f.name, value: values.get(f.id) ?? null }));
}

/** The names of every custom field token (`account.custom.customer_tier` …), for the template check. */
export async function customFieldTokens(ctx: CrmContext): Promise<string[]> {
  const out: string[] = [];
  for (const entity of ['account', 'opportunity']) {
    for (const f of await allFields(ctx.host.knex, entity)) out.push(`${entity}.custom.${customFieldSlug(f.name)}`);
  }
  return out;
}

/** The opportunity's quotes, the active one first. */
export async function quotesForDocuments(ctx: CrmContext, opp: Opportunity): Promise<Quote[]> {
  const quotes = await quotesOf(ctx.host.knex, opp.id);
  return [...quotes.filter((q) => q.is_active), ...quotes.filter((q) => !q.is_active)];
}
