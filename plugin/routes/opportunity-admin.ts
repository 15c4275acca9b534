import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { invalid, notFound } from '../http/errors';
import { respond, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';
import { FIELD_LABELS, RULED_FIELDS } from '../models/opportunity';
import { FIELD_RULES } from '../services/field-rules';
import { flag, text, type FormInput } from '../services/form';
import {
  createStatus, deleteStatus, FIELD_RULES_JOURNAL, listStatuses, loadRoleRules, moveStatus, pickRole, RULE_LABELS, ruleCellName, saveRoleRules,
  setStatusActive, STATUS_JOURNAL, STATUS_KINDS, updateStatus,
} from '../services/opportunity-statuses';

/**
 * The admin side of opportunities (issue #4): opportunity statuses (S4) and field rules per role and status
 * (S5). Under the global permission manage_crm_settings; anyone without it gets 404 on every URL here.
 */
const PERMISSION = 'manage_crm_settings';
const STATUSES = '/crm/settings/statuses';
/** The status form's names for the columns its history shows (the rest read well as they are). */
const STATUS_LABELS = { color: 'Colour', is_default: 'Default' };
const FIELD_RULES_URL = '/crm/settings/field-rules';


// ---- opportunity statuses (S4) -----------------------------------------------------------------------------

async function statusesPage(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const items = await listStatuses(ctx.host.knex);
  return {
    title: 'CRM settings · Opportunity statuses',
    view: 'settings/statuses',
    status: failure?.status ?? 200,
    locals: {
      items, kinds: STATUS_KINDS, failure, notice, current: 'statuses', action: STATUSES,
      log: await settingsHistory(ctx, STATUS_JOURNAL, STATUS_LABELS), users: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : { statuses: items },
  };
}

const STATUS_TRIGGER = 'crm:opportunityStatusesChanged';

function statusRoutes(): CrmRoute[] {
  const rowAction = (suffix: string, run: (ctx: CrmContext, req: Request, id: number) => Promise<string>): CrmRoute => ({
    method: 'post', path: `${STATUSES}/:id${suffix}`, permission: PERMISSION,
    async handler(ctx, req, res) {
      const id = idParam(req);
      await changeOrRerender(ctx, req, res, String(id), (f, n) => statusesPage(ctx, f, n), async () => {
        const notice = await run(ctx, req, id);
        return { location: STATUSES, notice, trigger: STATUS_TRIGGER };
      });
    },
  });
  return [
    { method: 'get', path: STATUSES, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await statusesPage(ctx)) },
    {
      method: 'post', path: STATUSES, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => statusesPage(ctx, f, n), async () => {
          await createStatus(ctx.host.knex, ctx.user, formBody(req));
          return { location: STATUSES, notice: `Added the status “${text(formBody(req), 'name')}”.`, trigger: STATUS_TRIGGER };
        });
      },
    },
    rowAction('', async (ctx, req, id) => {
      await updateStatus(ctx.host.knex, ctx.user, id, formBody(req));
      return `Saved the status “${text(formBody(req), 'name')}”.`;
    }),
    rowAction('/active', async (ctx, req, id) => {
      const active = flag(formBody(req), 'active');
      await setStatusActive(ctx.host.knex, ctx.user, id, active);
      return active ? 'Status activated.' : 'Status deactivated: new opportunities and the kanban no longer offer it; opportunities in it keep it.';
    }),
    rowAction('/move', async (ctx, req, id) => {
      const direction = text(formBody(req), 'direction');
      if (direction !== 'up' && direction !== 'down') throw invalid('Move up or down.', { direction: 'must be up or down' });
      await moveStatus(ctx.host.knex, ctx.user, id, direction);
      return 'Order saved.';
    }),
    rowAction('/delete', async (ctx, _req, id) => {
      await deleteStatus(ctx.host.knex, ctx.user, id);
      return 'Status deleted.';
    }),
  ];
}

// ---- field rules per role and status (S5) ------------------------------------------------------------------

async function fieldRulesPage(ctx: CrmContext, roleParam: string, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const roles = await ctx.host.roles();
  const picked = pickRole(roles, roleParam);
  if (roleParam && !picked && !failure) throw notFound('Role');
  const role = picked ?? roles[0] ?? null;
  const statuses = await listStatuses(ctx.host.knex);
  const rules = role ? await loadRoleRules(ctx.host.knex, role.id) : new Map();
  const rulesJson = statuses.flatMap((s) => RULED_FIELDS.filter((f) => rules.get(s.id)?.get(f)).map((f) => ({ status_id: s.id, field: f, rule: rules.get(s.id)!.get(f)! })));
  return {
    title: 'CRM settings · Field rules per status',
    view: 'settings/field-rules',
    status: failure?.status ?? 200,
    locals: {
      roles, role, statuses, rules, fields: RULED_FIELDS, labels: FIELD_LABELS, ruleNames: FIELD_RULES, ruleLabels: RULE_LABELS, cellName: ruleCellName,
      failure, notice, current: 'field-rules', log: await settingsHistory(ctx, FIELD_RULES_JOURNAL), users: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      role: role && { id: role.id, name: role.name }, roles: roles.map((r) => ({ id: r.id, name: r.name })),
      statuses: statuses.map((s) => ({ id: s.id, name: s.name })), fields: RULED_FIELDS, rules: rulesJson,
    },
  };
}

function fieldRuleRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: FIELD_RULES_URL, permission: PERMISSION,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await fieldRulesPage(ctx, text(req.query as FormInput, 'role_id'))),
    },
    {
      method: 'post', path: FIELD_RULES_URL, permission: PERMISSION,
      async handler(ctx, req, res) {
        const roleParam = text(formBody(req), 'role_id');
        await changeOrRerender(ctx, req, res, 'matrix', (f, n) => fieldRulesPage(ctx, roleParam, f, n), async () => {
          const role = await saveRoleRules(ctx.host.knex, ctx.user, await ctx.host.roles(), formBody(req));
          return { location: `${FIELD_RULES_URL}?role_id=${role.id}`, notice: `Field rules for ${role.name} saved.`, trigger: 'crm:fieldRulesSaved' };
        });
      },
    },
  ];
}

export function opportunityAdminRoutes(): CrmRoute[] {
  return [...statusRoutes(), ...fieldRuleRoutes()];
}
