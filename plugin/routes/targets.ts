import type { CrmContext, CrmRoute } from '../http/guard';
import type { PageResponse } from '../http/respond';
import { respond } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { MEASURE_LABELS, TARGET_MEASURES } from '../services/dashboard-config';
import { loadSettings } from '../services/settings';
import {
  PERIOD_KINDS, TARGET_JOURNAL, USER_TYPES, USER_TYPE_LABELS, deleteTarget, listTargets, periodLabel, saveTarget, setUserType, targetText, userTypes,
} from '../services/targets';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';

/** User targets and user types (D5), a settings page behind the global permission manage_user_targets (S2). */
const PERMISSION = 'manage_user_targets';
const BASE = '/crm/settings/targets';


async function page(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const [targets, types, users, settings] = await Promise.all([listTargets(knex), userTypes(knex), ctx.host.users(), loadSettings(knex)]);
  const names = new Map(users.map((u) => [u.id, u.name]));
  const rows = targets.map((t) => ({ ...t, user: names.get(t.user_id) ?? `User #${t.user_id}`, period: periodLabel(t.period_kind, t.period_start), value: targetText(t), measureLabel: MEASURE_LABELS[t.measure] }));
  return {
    title: 'CRM settings · User targets',
    view: 'targets/index',
    status: failure?.status ?? 200,
    locals: {
      rows, users, types, failure, notice, action: BASE, periodKinds: PERIOD_KINDS, measures: TARGET_MEASURES, measureLabels: MEASURE_LABELS,
      userTypes: USER_TYPES, userTypeLabels: USER_TYPE_LABELS, reporting: String(settings.reporting_currency || 'EUR'),
      canSettings: await ctx.host.can(ctx.user, 'manage_crm_settings'),
      log: await settingsHistory(ctx, TARGET_JOURNAL), userNames: await userNames(ctx), current: 'targets',
    },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      targets: targets.map((t) => ({ ...t, user: names.get(t.user_id) ?? null })),
      user_types: [...types].map(([user_id, type]) => ({ user_id, type })),
    },
  };
}

export function targetRoutes(): CrmRoute[] {
  const done = (notice: string) => ({ location: BASE, notice, trigger: 'crm:targetsChanged' });
  return [
    { method: 'get', path: BASE, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await page(ctx)) },
    {
      method: 'post', path: BASE, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => page(ctx, f, n), async () => {
          const t = await saveTarget(ctx.host, ctx.user, formBody(req));
          return done(`Saved the target ${MEASURE_LABELS[t.measure].toLowerCase()} ${periodLabel(t.period_kind, t.period_start)}: ${targetText(t)}.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/types`, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'types', (f, n) => page(ctx, f, n), async () => {
          const r = await setUserType(ctx.host, ctx.user, formBody(req));
          return done(r.type ? `Saved the user type: ${USER_TYPE_LABELS[r.type]}.` : 'Cleared the user type.');
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/delete`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => page(ctx, f, n), async () => {
          const t = await deleteTarget(ctx.host.knex, ctx.user, id);
          return done(`Deleted the target ${MEASURE_LABELS[t.measure].toLowerCase()} ${periodLabel(t.period_kind, t.period_start)}.`);
        });
      },
    },
  ];
}
