import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain } from '../http/errors';
import { isHtmx, renderView, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import type { Opportunity } from '../models/opportunity';
import { fieldRulesFor, opportunityLabel, visibleOpportunityFields } from '../services/field-rules';
import { text, type FormInput } from '../services/form';
import { amountInput, formatMoney } from '../services/money';
import { requireEditableOpportunity, requireVisibleOpportunity } from '../services/opportunities';
import { percentText, quantityText } from '../services/quote-pricing';
import {
  activateQuote, addFromPriceBook, addManualItem, canEditQuotes, catalogue, createQuote, deleteQuote, duplicateQuote, itemJson, moveItem,
  priceBooksForQuote, quoteJson, quoteUrl, quoteWithTotals, quotesOf, readQuoteInput, removeItem, requireEditableQuote, requireItem, requireVisibleQuote,
  requireQuotePriceBook, setRounding, totalsJson, totalsOf, updateItem, updateQuote, type Quote, type QuoteWithTotals,
} from '../services/quotes';
import { loadSettings } from '../services/settings';
import { detailPage, opportunityUrl } from './opportunities';
import type { OpportunityPart } from './opportunity-extensions';

/**
 * Quotes (SPEC Q5, Q6): a panel and a "New quote" sidebar block on the opportunity page, and a quote page with
 * its items. Actions from the opportunity page come back to it (htmx: the re-rendered page body with
 * `HX-Trigger: crm:quoteSaved`; plain forms: 303), actions on a quote's items come back to the quote page.
 * A refused form (422, 409) is shown again with the user's input and the messages.
 */

const SAVED = 'crm:quoteSaved';
const numberParam = (req: Request, name: string) => (/^\d{1,10}$/.test(String(req.params[name] ?? '')) ? Number(req.params[name]) : 0);
const lockVersionOf = (input: FormInput) => (text(input, 'lock_version') === '' ? NaN : Number(text(input, 'lock_version')));

/** A refused form's input and messages, carried to the part that shows it again (keyed on a copy of the context). */
interface FormState {
  form: string;
  values: FormInput;
  errors: Record<string, string>;
  message: string;
}
const formStates = new WeakMap<CrmContext, FormState>();
function withForm(ctx: CrmContext, state: FormState): CrmContext {
  const copy = { ...ctx };
  formStates.set(copy, state);
  return copy;
}
function formOf(ctx: CrmContext, form: string): { values: FormInput; errors: Record<string, string>; message: string | null; open: boolean } {
  const s = formStates.get(ctx);
  return s && s.form === form ? { values: s.values, errors: s.errors, message: s.message, open: true } : { values: {}, errors: {}, message: null, open: false };
}

const helpers = { formatMoney, amountInput, quantityText, percentText };

// ---- the opportunity page's parts ----------------------------------------------------------------------------

export const quotesPanel: OpportunityPart = {
  id: 'quotes', view: 'quotes/panel',
  async load(ctx, opp) {
    const quotes = await quotesOf(ctx.host.knex, opp.id);
    return { quotes, totals: await totalsOf(ctx.host.knex, quotes), editable: await canEditQuotes(ctx, opp), ...helpers };
  },
};

export const newQuoteSidebar: OpportunityPart = {
  id: 'new-quote', view: 'quotes/sidebar-new',
  async load(ctx, opp) {
    // The new quote is named and priced like the opportunity, unless the field rules hide its name or currency.
    const seen = visibleOpportunityFields({ name: opp.name, currency: opp.currency }, await fieldRulesFor(ctx, opp.project_id, opp.status_id));
    return { editable: await canEditQuotes(ctx, opp), form: formOf(ctx, 'new-quote'), suggested: { name: seen.name ?? '', currency: seen.currency ?? '' } };
  },
};

async function opportunityPage(ctx: CrmContext, req: Request, oppId: number, message: string | null, status = 200): Promise<PageResponse> {
  const opp = await requireVisibleOpportunity(ctx, oppId);
  return { ...(await detailPage(ctx, req, opp, message)), status, trigger: status === 200 ? SAVED : undefined };
}

/** An action started on the opportunity page: done → that page again (or 303 to it); refused → it with the message. */
async function onOpportunity(ctx: CrmContext, req: Request, res: Response, oppId: () => Promise<number>, form: string, change: () => Promise<{ message: string; json: unknown }>): Promise<void> {
  const id = await oppId();
  let done: { message: string; json: unknown };
  try {
    done = await change();
  } catch (err) {
    if (!(err instanceof CrmError) || (err.status !== 422 && err.status !== 409) || wantsJson(req)) throw err;
    const withState = withForm(ctx, { form, values: formBody(req), errors: err.fieldErrors, message: err.message });
    const opp = await requireVisibleOpportunity(ctx, id);
    // Only the "New quote" form shows its own message; other refusals go to the top of the page.
    const showsOwn = form === 'new-quote' && (await canEditQuotes(ctx, opp));
    return respond(ctx.host, req, res, await opportunityPage(withState, req, id, showsOwn ? null : err.message, err.status));
  }
  if (wantsJson(req)) return void res.json(done.json);
  await respondAfterChange(ctx.host, req, res, opportunityUrl(id), () => opportunityPage(ctx, req, id, done.message));
}

// ---- the quote page -------------------------------------------------------------------------------------------

async function quotePage(ctx: CrmContext, data: QuoteWithTotals, options: { message?: string | null; status?: number; catalogueBook?: number | null } = {}): Promise<PageResponse> {
  const { quote, opportunity, items, totals } = data;
  const editable = await canEditQuotes(ctx, opportunity);
  const settings = await loadSettings(ctx.host.knex);
  const failure = formStates.get(ctx) ?? null;
  const catalogueLocals = options.catalogueBook !== undefined && editable ? await catalogueView(ctx, data, options.catalogueBook ?? null) : null;
  const rules = await fieldRulesFor(ctx, opportunity.project_id, opportunity.status_id);
  return {
    title: `${quote.number} ${quote.name}`,
    view: 'quotes/show',
    status: options.status ?? 200,
    locals: {
      quote, opp: opportunity, oppLabel: opportunityLabel(opportunity, rules), items, totals, editable, message: options.message ?? null, failure, catalogue: catalogueLocals,
      usePriceBooks: Boolean(settings.use_price_book_items), showDescriptions: Boolean(settings.show_item_descriptions_on_quotes), ...helpers,
    },
    json: {
      quote: quoteJson(quote), opportunity: { ...visibleOpportunityFields({ id: opportunity.id, name: opportunity.name }, rules), url: opportunityUrl(opportunity.id) },
      items: items.map((i) => itemJson(i, quote.currency)), totals: totalsJson(totals, quote.currency), can_edit: editable,
    },
  };
}

/** The price-book picker's data: the books of the opportunity's project, the chosen one's offers in the quote's currency. */
async function catalogueView(ctx: CrmContext, data: QuoteWithTotals, bookId: number | null) {
  const books = await priceBooksForQuote(ctx, data.opportunity);
  const book = bookId ? await requireQuotePriceBook(ctx, data.opportunity, bookId) : books[0] ?? null;
  const entries = book ? await catalogue(ctx.host.knex, book, data.quote.currency) : [];
  return { quote: data.quote, books, book, entries, form: formOf(ctx, 'catalogue'), ...helpers };
}

/** An action on a quote's items: done → the quote page again (or 303 to it); refused → it with the form and message. */
async function onQuote(ctx: CrmContext, req: Request, res: Response, form: string, change: (quote: Quote, opp: Opportunity) => Promise<string>): Promise<void> {
  const id = numberParam(req, 'id');
  const { quote, opportunity } = await requireEditableQuote(ctx, id);
  let message: string;
  try {
    message = await change(quote, opportunity);
  } catch (err) {
    if (!(err instanceof CrmError) || (err.status !== 422 && err.status !== 409) || wantsJson(req)) throw err;
    const withState = withForm(ctx, { form, values: inputShownAgain(formBody(req), err, quote), errors: err.fieldErrors, message: err.message });
    const catalogueBook = form === 'catalogue' ? Number(text(formBody(req), 'price_book_id')) || null : undefined;
    return respond(ctx.host, req, res, await quotePage(withState, await quoteWithTotals(ctx, id), { status: err.status, catalogueBook }));
  }
  if (wantsJson(req)) {
    const page = await quotePage(ctx, await quoteWithTotals(ctx, id));
    return void res.json(page.json);
  }
  await respondAfterChange(ctx.host, req, res, quoteUrl(id), async () => ({ ...(await quotePage(ctx, await quoteWithTotals(ctx, id), { message })), trigger: SAVED }));
}

// ---- edit forms ---------------------------------------------------------------------------------------------------

function quoteFormPage(quote: Quote, opp: Opportunity, values: FormInput, error: CrmError | null = null): PageResponse {
  return {
    title: `Edit ${quote.number}`, view: 'quotes/form', status: error?.status ?? 200,
    locals: { quote, opp, values, errors: error?.fieldErrors ?? {}, message: error?.message ?? null },
    json: { error: error?.message ?? null, fields: error?.fieldErrors ?? {} },
  };
}

async function itemFormPage(ctx: CrmContext, quoteId: number, itemId: number, values: FormInput | null, error: CrmError | null = null): Promise<PageResponse> {
  const data = await quoteWithTotals(ctx, quoteId);
  const item = data.items.find((i) => i.id === itemId && i.kind !== 'rounding');
  if (!item) throw new CrmError(404, 'Quote item not found.');
  const shown: FormInput = values ?? {
    name: item.name, description: item.description, unit: item.unit, quantity: quantityText(item.quantity_milli),
    unit_price: amountInput(item.unit_price_minor, data.quote.currency), discount_kind: item.discount_kind ?? '',
    discount: item.discount_kind === 'percent' ? percentText(item.discount_value) : item.discount_kind === 'amount' ? amountInput(item.discount_value, data.quote.currency) : '',
    tax_rate: percentText(item.tax_rate_bp), lock_version: String(data.quote.lock_version),
  };
  return {
    title: `Edit ${item.name}`, view: 'quotes/item-form', status: error?.status ?? 200,
    locals: { quote: data.quote, opp: data.opportunity, item, values: shown, errors: error?.fieldErrors ?? {}, message: error?.message ?? null },
    json: { error: error?.message ?? null, fields: error?.fieldErrors ?? {} },
  };
}

async function rerender(ctx: CrmContext, req: Request, res: Response, page: (err: CrmError) => Promise<PageResponse>, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409) && !wantsJson(req)) return respond(ctx.host, req, res, await page(err));
    throw err;
  }
}

// ---- routes ---------------------------------------------------------------------------------------------------------

export function quoteRoutes(): CrmRoute[] {
  const onItems = (path: string, form: string, change: (ctx: CrmContext, req: Request, quote: Quote, opp: Opportunity) => Promise<string>): CrmRoute => ({
    method: 'post', path: `/crm/quotes/:id${path}`, permission: 'edit_opportunities',
    handler: (ctx, req, res) => onQuote(ctx, req, res, form, (quote, opp) => change(ctx, req, quote, opp)),
  });
  const quoteAction = (path: string, change: (ctx: CrmContext, quote: Quote, opp: Opportunity) => Promise<{ message: string; json: unknown }>): CrmRoute => ({
    method: 'post', path: `/crm/quotes/:id${path}`, permission: 'edit_opportunities',
    async handler(ctx, req, res) {
      const oppId = async () => (await requireVisibleQuote(ctx, numberParam(req, 'id'))).opportunity.id;
      await onOpportunity(ctx, req, res, oppId, 'quote', async () => {
        const { quote, opportunity } = await requireEditableQuote(ctx, numberParam(req, 'id'));
        return change(ctx, quote, opportunity);
      });
    },
  });
  return [
    {
      // The opportunity's quotes as JSON (the HTML is the opportunity page's panel).
      method: 'get', path: '/crm/opportunities/:id/quotes', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireVisibleOpportunity(ctx, numberParam(req, 'id'));
        const quotes = await quotesOf(ctx.host.knex, opp.id);
        const totals = await totalsOf(ctx.host.knex, quotes);
        await respond(ctx.host, req, res, {
          ...(await detailPage(ctx, req, opp)),
          json: { quotes: quotes.map((q) => ({ ...quoteJson(q), totals: totalsJson(totals.get(q.id)!, q.currency) })) },
        });
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/quotes', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const oppId = numberParam(req, 'id');
        const opp = await requireEditableOpportunity(ctx, oppId);
        await onOpportunity(ctx, req, res, async () => opp.id, 'new-quote', async () => {
          const quote = await createQuote(ctx, opp, readQuoteInput(formBody(req), { currency: opp.currency }));
          if (wantsJson(req)) res.status(201);
          return { message: `Quote ${quote.number} created.`, json: { quote: quoteJson(quote) } };
        });
      },
    },
    {
      method: 'get', path: '/crm/quotes/:id', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await quotePage(ctx, await quoteWithTotals(ctx, numberParam(req, 'id'))));
      },
    },
    {
      // "Show items" on the opportunity page: htmx gets the items table alone; others the quote page.
      method: 'get', path: '/crm/quotes/:id/items', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        const data = await quoteWithTotals(ctx, numberParam(req, 'id'));
        if (isHtmx(req)) {
          const settings = await loadSettings(ctx.host.knex);
          res.vary('HX-Request');
          return void res.type('html').send(await renderView('quotes/_items', {
            ...data, opp: data.opportunity, editable: false, showDescriptions: Boolean(settings.show_item_descriptions_on_quotes), csrfToken: ctx.host.csrfToken(req), ...helpers,
          }));
        }
        await respond(ctx.host, req, res, await quotePage(ctx, data));
      },
    },
    {
      // The price-book picker: htmx loads it as an open <dialog> into the quote page; without JS it is a page.
      method: 'get', path: '/crm/quotes/:id/catalogue', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const id = numberParam(req, 'id');
        await requireEditableQuote(ctx, id);
        const data = await quoteWithTotals(ctx, id);
        const bookId = Number(text(req.query as FormInput, 'price_book')) || null;
        const view = await catalogueView(ctx, data, bookId);
        const json = { price_books: view.books.map((b) => ({ id: b.id, name: b.name })), price_book: view.book ? { id: view.book.id, name: view.book.name } : null, entries: view.entries };
        if (isHtmx(req)) {
          res.vary('HX-Request');
          return void res.type('html').send(await renderView('quotes/_catalogue', { ...view, csrfToken: ctx.host.csrfToken(req) }));
        }
        await respond(ctx.host, req, res, { title: `Add from price book · ${data.quote.number}`, view: 'quotes/catalogue', locals: { ...view, opp: data.opportunity }, json });
      },
    },
    {
      method: 'get', path: '/crm/quotes/:id/edit', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const { quote, opportunity } = await requireEditableQuote(ctx, numberParam(req, 'id'));
        await respond(ctx.host, req, res, quoteFormPage(quote, opportunity, { ...quoteJson(quote), lock_version: String(quote.lock_version) } as unknown as FormInput));
      },
    },
    {
      method: 'post', path: '/crm/quotes/:id', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const { quote, opportunity } = await requireEditableQuote(ctx, numberParam(req, 'id'));
        await rerender(ctx, req, res, async (err) => quoteFormPage(quote, opportunity, inputShownAgain(formBody(req), err, quote), err), async () => {
          const saved = await updateQuote(ctx, opportunity, quote, readQuoteInput(formBody(req), { currency: quote.currency }), lockVersionOf(formBody(req)));
          if (wantsJson(req)) return void res.json({ quote: quoteJson(saved) });
          await respondAfterChange(ctx.host, req, res, opportunityUrl(opportunity.id), () => opportunityPage(ctx, req, opportunity.id, `Quote ${saved.number} saved.`));
        });
      },
    },
    quoteAction('/activate', async (ctx, quote, opp) => {
      await activateQuote(ctx, opp, quote);
      return { message: `Quote ${quote.number} is now the active quote.`, json: { quote: quoteJson({ ...quote, is_active: true }) } };
    }),
    quoteAction('/duplicate', async (ctx, quote, opp) => {
      const copy = await duplicateQuote(ctx, opp, quote);
      return { message: `Quote ${quote.number} copied as ${copy.number}.`, json: { quote: quoteJson(copy) } };
    }),
    quoteAction('/delete', async (ctx, quote, opp) => {
      await deleteQuote(ctx, opp, quote);
      return { message: `Quote ${quote.number} deleted.`, json: { deleted: quote.id } };
    }),
    onItems('/items', 'manual', async (ctx, req, quote, opp) => `${(await addManualItem(ctx, opp, quote, formBody(req))).name} added.`),
    onItems('/items/catalogue', 'catalogue', async (ctx, req, quote, opp) => `${(await addFromPriceBook(ctx, opp, quote, formBody(req))).name} added.`),
    onItems('/rounding', 'rounding', async (ctx, req, quote, opp) => ((await setRounding(ctx, opp, quote, formBody(req))) ? 'Rounding saved.' : 'Rounding removed.')),
    onItems('/items/:itemId/delete', 'item', async (ctx, req, quote, opp) => {
      const item = await requireItem(ctx.host.knex, quote, numberParam(req, 'itemId'));
      await removeItem(ctx, opp, quote, item);
      return `${item.name} removed.`;
    }),
    onItems('/items/:itemId/move', 'item', async (ctx, req, quote, opp) => {
      const item = await requireItem(ctx.host.knex, quote, numberParam(req, 'itemId'));
      await moveItem(ctx, opp, quote, item, text(formBody(req), 'direction') === 'up' ? 'up' : 'down');
      return `${item.name} moved.`;
    }),
    {
      method: 'get', path: '/crm/quotes/:id/items/:itemId/edit', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const id = numberParam(req, 'id');
        await requireEditableQuote(ctx, id);
        await respond(ctx.host, req, res, await itemFormPage(ctx, id, numberParam(req, 'itemId'), null));
      },
    },
    {
      method: 'post', path: '/crm/quotes/:id/items/:itemId', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const id = numberParam(req, 'id');
        const itemId = numberParam(req, 'itemId');
        const { quote, opportunity } = await requireEditableQuote(ctx, id);
        const item = await requireItem(ctx.host.knex, quote, itemId);
        await rerender(ctx, req, res, (err) => itemFormPage(ctx, id, itemId, inputShownAgain(formBody(req), err, quote), err), async () => {
          await updateItem(ctx, opportunity, quote, item, formBody(req), lockVersionOf(formBody(req)));
          if (wantsJson(req)) return void res.json((await quotePage(ctx, await quoteWithTotals(ctx, id))).json);
          await respondAfterChange(ctx.host, req, res, quoteUrl(id), async () => ({ ...(await quotePage(ctx, await quoteWithTotals(ctx, id), { message: `${item.name} saved.` })), trigger: SAVED }));
        });
      },
    },
  ];
}
