import type { CrmContext, CrmRoute } from '../http/guard';
import { respond, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { EXCHANGE_RATE_JOURNAL, createRate, deleteRate, listRates, rateText } from '../services/exchange-rates';
import { pageParam } from '../services/pagination';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';

/** Exchange rates (Q7) in the CRM settings: date-stamped rates per currency pair, added and deleted (never edited). */
const PERMISSION = 'manage_crm_settings';
const BASE = '/crm/settings/exchange-rates';


async function page(ctx: CrmContext, pageNo: number, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const { items, meta } = await listRates(ctx.host.knex, pageNo);
  const rows = items.map((r) => ({ ...r, rate: rateText(r.rate_micro) }));
  return {
    title: 'CRM settings · Exchange rates',
    view: 'settings/exchange-rates',
    status: failure?.status ?? 200,
    locals: { items: rows, meta, failure, notice, current: 'exchange-rates', action: BASE, log: await settingsHistory(ctx, EXCHANGE_RATE_JOURNAL), users: await userNames(ctx) },
    json: failure ? { error: failure.message, fields: failure.errors } : { exchange_rates: rows, meta },
  };
}

export function exchangeRateRoutes(): CrmRoute[] {
  const done = (notice: string) => ({ location: BASE, notice, trigger: 'crm:exchangeRatesChanged' });
  return [
    { method: 'get', path: BASE, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await page(ctx, pageParam(req))) },
    {
      method: 'post', path: BASE, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => page(ctx, 1, f, n), async () => {
          const r = await createRate(ctx.host.knex, ctx.user, formBody(req));
          return done(`Added 1 ${r.from_currency} = ${rateText(r.rate_micro)} ${r.to_currency} from ${r.valid_on}.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/delete`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, 1, f, n), async () => {
          const r = await deleteRate(ctx.host.knex, ctx.user, id);
          return done(`Deleted the ${r.from_currency} → ${r.to_currency} rate of ${r.valid_on}.`);
        });
      },
    },
  ];
}
