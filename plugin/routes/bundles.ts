import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid } from '../http/errors';
import { respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import {
  bundleFormValues, bundleItems, bundleJson, bundleSplit, bundlesOf, createBundle, deleteBundle, freeCopyCode, moveBundle, priceBookCurrencies,
  priceBookItemChoices, readBundleInput, requireManageableBundle, requireVisibleBundle, updateBundle, type Bundle,
} from '../services/bundles';
import { text, type FormInput, lockVersionOf } from '../services/form';
import { formatMoney } from '../services/money';
import { canManagePriceBooks, requireManageablePriceBook, requireVisiblePriceBook, scopePriceBooks, type PriceBook } from '../services/price-books';
import type { PriceBookPart } from './price-book-extensions';

const VIEW = ['view_price_books', 'manage_price_books'];
const MANAGE = 'manage_price_books';

const bundleUrl = (id: number) => `/crm/bundles/${id}`;
export const priceBookUrl = (id: number) => `/crm/price-books/${id}`;

/** Price books a bundle may move to: every other price book the user manages. */
async function moveTargets(ctx: CrmContext, bundle: Bundle): Promise<Array<{ id: number; name: string }>> {
  const { q } = await scopePriceBooks(ctx, ctx.host.knex('crm_price_books as pb'), true);
  const rows = await q.whereNot('pb.id', bundle.price_book_id).orderBy([{ column: 'pb.name' }, { column: 'pb.id' }]).select('pb.id', 'pb.name');
  return rows.map((r: Record<string, unknown>) => ({ id: Number(r.id), name: String(r.name) }));
}

export async function bundleDetailPage(ctx: CrmContext, bundle: Bundle, priceBook: PriceBook, message: string | null = null, errors: Record<string, string> = {}, status = 200): Promise<PageResponse> {
  const items = await bundleItems(ctx.host.knex, bundle.id);
  const canManage = await canManagePriceBooks(ctx);
  return {
    title: bundle.name,
    view: 'bundles/show',
    status,
    locals: {
      bundle, priceBook, items: bundleSplit(bundle, items), canManage, message, errors, error: status >= 400, formatMoney,
      targets: canManage ? await moveTargets(ctx, bundle) : [], priceBookUrl: priceBookUrl(priceBook.id),
    },
    json: status >= 400 ? { error: message, fields: errors } : { bundle: bundleJson(bundle, items), price_book: { id: priceBook.id, name: priceBook.name, url: priceBookUrl(priceBook.id) } },
  };
}

interface FormState {
  priceBook: PriceBook;
  bundle: Bundle | null;
  values: FormInput;
  copyOf?: Bundle | null;
}

async function formPage(ctx: CrmContext, state: FormState, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const { priceBook, bundle, values } = state;
  const choices = await priceBookItemChoices(ctx.host.knex, priceBook.id);
  const currencies = await priceBookCurrencies(ctx.host.knex, priceBook.id);
  const action = bundle ? bundleUrl(bundle.id) : `${priceBookUrl(priceBook.id)}/bundles`;
  return {
    title: bundle ? `Edit ${bundle.name}` : 'New bundle',
    view: 'bundles/form',
    status,
    locals: { priceBook, bundle, copyOf: state.copyOf ?? null, values, errors, message, choices, currencies, action, priceBookUrl: priceBookUrl(priceBook.id) },
    json: { error: message, fields: errors },
  };
}

async function saveOrRerender(ctx: CrmContext, req: Request, res: Response, state: FormState, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await formPage(ctx, { ...state, values: inputShownAgain(formBody(req), err, state.bundle) }, err.fieldErrors, err.message, err.status));
    }
    throw err;
  }
}

/** The bundles panel on the price book page (views/bundles/panel.ejs). */
export const BUNDLES_PANEL: PriceBookPart = {
  id: 'bundles',
  view: 'bundles/panel',
  async load(ctx, priceBook) {
    const bundles = await bundlesOf(ctx.host.knex, priceBook.id);
    return { bundles, formatMoney };
  },
};

export function bundleRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/price-books/:id/bundles', permission: VIEW,
      async handler(ctx, req, res) {
        const priceBook = await requireVisiblePriceBook(ctx, idParam(req));
        const bundles = await bundlesOf(ctx.host.knex, priceBook.id);
        await respond(ctx.host, req, res, {
          title: `Bundles · ${priceBook.name}`, view: 'bundles/index',
          locals: { priceBook, bundles, formatMoney, canManage: await canManagePriceBooks(ctx), priceBookUrl: priceBookUrl(priceBook.id) },
          json: { price_book: { id: priceBook.id, name: priceBook.name }, bundles: bundles.map((b) => bundleJson(b)) },
        });
      },
    },
    {
      method: 'get', path: '/crm/price-books/:id/bundles/new', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        const currencies = await priceBookCurrencies(ctx.host.knex, priceBook.id);
        await respond(ctx.host, req, res, await formPage(ctx, { priceBook, bundle: null, values: { active: '1', currency: currencies[0] ?? '' } }));
      },
    },
    {
      method: 'post', path: '/crm/price-books/:id/bundles', permission: MANAGE,
      async handler(ctx, req, res) {
        const priceBook = await requireManageablePriceBook(ctx, idParam(req));
        await saveOrRerender(ctx, req, res, { priceBook, bundle: null, values: formBody(req) }, async () => {
          const input = await readBundleInput(ctx.host.knex, formBody(req), priceBook);
          const bundle = await createBundle(ctx, priceBook, input);
          if (wantsJson(req)) return void res.status(201).json({ bundle: bundleJson(bundle, await bundleItems(ctx.host.knex, bundle.id)) });
          if (req.get('HX-Request')) res.set('HX-Push-Url', bundleUrl(bundle.id));
          await respondAfterChange(ctx.host, req, res, bundleUrl(bundle.id), async () => ({ ...(await bundleDetailPage(ctx, bundle, priceBook, 'Bundle created.')), status: 201, trigger: 'crm:bundleSaved' }));
        });
      },
    },
    {
      method: 'get', path: '/crm/bundles/:id', permission: VIEW,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireVisibleBundle(ctx, idParam(req));
        await respond(ctx.host, req, res, await bundleDetailPage(ctx, bundle, priceBook));
      },
    },
    {
      method: 'get', path: '/crm/bundles/:id/edit', permission: MANAGE,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireManageableBundle(ctx, idParam(req));
        await respond(ctx.host, req, res, await formPage(ctx, { priceBook, bundle, values: await bundleFormValues(ctx.host.knex, bundle) }));
      },
    },
    {
      method: 'post', path: '/crm/bundles/:id', permission: MANAGE,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireManageableBundle(ctx, idParam(req));
        await saveOrRerender(ctx, req, res, { priceBook, bundle, values: formBody(req) }, async () => {
          const lockVersion = lockVersionOf(formBody(req));
          const input = await readBundleInput(ctx.host.knex, formBody(req), priceBook);
          const saved = await updateBundle(ctx, bundle, input, lockVersion);
          await respondAfterChange(ctx.host, req, res, bundleUrl(saved.id), async () => ({ ...(await bundleDetailPage(ctx, saved, priceBook, 'Bundle saved.')), trigger: 'crm:bundleSaved' }));
        });
      },
    },
    {
      // "Copy and new": the new-bundle form, prefilled from this one with a code still free in the price book.
      method: 'get', path: '/crm/bundles/:id/copy', permission: MANAGE,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireManageableBundle(ctx, idParam(req));
        const values = await bundleFormValues(ctx.host.knex, bundle);
        delete values.lock_version;
        values.code = await freeCopyCode(ctx.host.knex, priceBook.id, bundle.code);
        values.name = `${bundle.name} (copy)`.slice(0, 200);
        await respond(ctx.host, req, res, await formPage(ctx, { priceBook, bundle: null, values, copyOf: bundle }));
      },
    },
    {
      method: 'post', path: '/crm/bundles/:id/move', permission: MANAGE,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireManageableBundle(ctx, idParam(req));
        const body = formBody(req);
        try {
          const lockVersion = lockVersionOf(body);
          const moved = await moveBundle(ctx, bundle, Number(text(body, 'price_book_id')), lockVersion);
          const target = await requireVisiblePriceBook(ctx, moved.price_book_id);
          await respondAfterChange(ctx.host, req, res, bundleUrl(moved.id), async () => ({ ...(await bundleDetailPage(ctx, moved, target, `Moved to ${target.name}.`)), trigger: 'crm:bundleSaved' }));
        } catch (err) {
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
            return respond(ctx.host, req, res, await bundleDetailPage(ctx, bundle, priceBook, err.message, err.fieldErrors, err.status));
          }
          throw err;
        }
      },
    },
    {
      method: 'post', path: '/crm/bundles/:id/delete', permission: MANAGE,
      async handler(ctx, req, res) {
        const { bundle, priceBook } = await requireManageableBundle(ctx, idParam(req));
        const body = formBody(req);
        try {
          const lockVersion = lockVersionOf(body);
          if (text(body, 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'Tick the box to confirm' });
          await deleteBundle(ctx, bundle, lockVersion);
        } catch (err) {
          // The page shown again carries the bundle as this request read it, so its lock version is current.
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
            return respond(ctx.host, req, res, await bundleDetailPage(ctx, bundle, priceBook, err.message, err.fieldErrors, err.status));
          }
          throw err;
        }
        if (req.get('HX-Request')) return void res.set('HX-Redirect', priceBookUrl(priceBook.id)).status(204).end();
        if (wantsJson(req)) return void res.json({ deleted: bundle.id });
        res.redirect(303, priceBookUrl(priceBook.id));
      },
    },
  ];
}
