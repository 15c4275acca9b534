import type { CrmContext, CrmRoute } from '../http/guard';
import { respond, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import {
  AUTOMATION_JOURNAL, RULE_ACTIONS, RULE_TOKENS, createRule, deleteRule, listRules, readRuleInput, requireRule, setRuleActive, updateRule,
} from '../services/automation';
import { flag, text } from '../services/form';
import { listCategories } from '../services/products';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';

/** C4 in the CRM settings: automation rules per product category (manage_crm_settings). */
const PERMISSION = 'manage_crm_settings';
const BASE = '/crm/settings/automation';


async function page(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const [rules, categories, templates, users] = await Promise.all([listRules(knex), listCategories(knex), ctx.host.projectTemplates(), ctx.host.users()]);
  // Parent and task projects: those the admin can reach with CRM or tasks; plus any a rule already names.
  const projects = new Map((await ctx.host.projectsWhere(ctx.user, 'view_tasks')).map((p) => [p.id, p]));
  for (const r of rules) {
    for (const id of [r.parent_project_id, r.task_project_id]) {
      if (id && !projects.has(id)) {
        const p = await ctx.host.projectById(id);
        if (p) projects.set(id, p);
      }
    }
  }
  return {
    title: 'CRM settings · Automation rules',
    view: 'settings/automation',
    status: failure?.status ?? 200,
    locals: {
      rules, categories, templates, projects: [...projects.values()].sort((a, b) => a.name.localeCompare(b.name)), users, actions: RULE_ACTIONS, tokens: RULE_TOKENS,
      failure, notice, current: 'automation', action: BASE, log: await settingsHistory(ctx, AUTOMATION_JOURNAL), userNames: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : { rules },
  };
}

export function automationAdminRoutes(): CrmRoute[] {
  const done = (notice: string) => ({ location: BASE, notice, trigger: 'crm:automationRulesChanged' });
  return [
    { method: 'get', path: BASE, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await page(ctx)) },
    {
      method: 'post', path: BASE, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => page(ctx, f, n), async () => {
          const rule = await createRule(ctx.host.knex, ctx.user, await readRuleInput(ctx, formBody(req)));
          return done(`Rule #${rule.id} added.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const rule = await requireRule(ctx.host.knex, idParam(req));
        await changeOrRerender(ctx, req, res, String(rule.id), (f, n) => page(ctx, f, n), async () => {
          await updateRule(ctx.host.knex, ctx.user, rule, await readRuleInput(ctx, formBody(req)), Number(text(formBody(req), 'lock_version') || 'x'));
          return done(`Rule #${rule.id} saved.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/active`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const rule = await requireRule(ctx.host.knex, idParam(req));
        const active = flag(formBody(req), 'active');
        await changeOrRerender(ctx, req, res, String(rule.id), (f, n) => page(ctx, f, n), async () => {
          await setRuleActive(ctx.host.knex, ctx.user, rule, active);
          return done(active ? `Rule #${rule.id} activated.` : `Rule #${rule.id} deactivated: sales no longer run it.`);
        });
      },
    },
    {
      method: 'post', path: `${BASE}/:id/delete`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const rule = await requireRule(ctx.host.knex, idParam(req));
        await changeOrRerender(ctx, req, res, String(rule.id), (f, n) => page(ctx, f, n), async () => {
          await deleteRule(ctx.host.knex, ctx.user, rule);
          return done(`Rule #${rule.id} deleted.`);
        });
      },
    },
  ];
}
