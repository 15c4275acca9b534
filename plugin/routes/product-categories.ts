import type { CrmContext, CrmRoute } from '../http/guard';
import { invalid } from '../http/errors';
import { respond, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { flag, text } from '../services/form';
import {
  CATEGORY_JOURNAL, CONTRACT_KINDS, createCategory, deleteCategory, listCategories, moveCategory, setCategoryActive, updateCategory,
} from '../services/products';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';

/** Product categories (Q2) in the CRM settings: each names the contract kind a sold item becomes. */
const PERMISSION = 'manage_crm_settings';
const BASE = '/crm/settings/product-categories';


async function page(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const items = await listCategories(ctx.host.knex);
  return {
    title: 'CRM settings · Product categories',
    view: 'settings/product-categories',
    status: failure?.status ?? 200,
    locals: { items, kinds: CONTRACT_KINDS, failure, notice, current: 'product-categories', action: BASE, log: await settingsHistory(ctx, CATEGORY_JOURNAL), users: await userNames(ctx) },
    json: failure ? { error: failure.message, fields: failure.errors } : { product_categories: items },
  };
}

export function productCategoryRoutes(): CrmRoute[] {
  const done = (notice: string) => ({ location: BASE, notice, trigger: 'crm:productCategoriesChanged' });
  return [
    { method: 'get', path: BASE, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await page(ctx)) },
    {
      method: 'post', path: BASE, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => page(ctx, f, n), async () => {
          const c = await createCategory(ctx.host.knex, ctx.user, formBody(req));
          return done(`Added “${c.name}”.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, f, n), async () => {
          await updateCategory(ctx.host.knex, ctx.user, id, formBody(req));
          return done(`Saved “${text(formBody(req), 'name')}”.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/active`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        const active = flag(formBody(req), 'active');
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, f, n), async () => {
          await setCategoryActive(ctx.host.knex, ctx.user, id, active);
          return done(active ? 'Activated.' : 'Deactivated: new products cannot use it; products that have it keep it.');
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/move`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        const direction = text(formBody(req), 'direction');
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, f, n), async () => {
          if (direction !== 'up' && direction !== 'down') throw invalid('Move up or down.', { direction: 'must be up or down' });
          await moveCategory(ctx.host.knex, ctx.user, id, direction);
          return done('Order saved.');
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/delete`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, f, n), async () => {
          await deleteCategory(ctx.host.knex, ctx.user, id);
          return done('Deleted.');
        });
      },
    },
  ];
}
