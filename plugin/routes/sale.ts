import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import type { Opportunity } from '../models/opportunity';
import { CONTRACT_KIND_LABELS } from '../models/contract';
import { runsOf } from '../services/automation';
import { contractsOfOpportunity } from '../services/contracts';
import { fieldRulesFor, opportunityLabel, visibleOpportunityFields, type FieldRules } from '../services/field-rules';
import type { FormInput } from '../services/form';
import { formatMoney } from '../services/money';
import { requireVisibleOpportunity } from '../services/opportunities';
import { quantityText } from '../services/quote-pricing';
import { planSale, requireSellable, requireUnlockable, saleRights, sell, unlock, type SalePlan } from '../services/sale';
import { detailPage, opportunityUrl } from './opportunities';
import { OPPORTUNITY_PANELS, OPPORTUNITY_SIDEBAR } from './opportunity-extensions';

/**
 * C1/C2 over HTTP: the confirmation page ("confirm deal and order service") with its preview, the sale itself,
 * and unlocking. The opportunity page gets the sidebar actions and a Contracts panel (below).
 */

export const sellUrl = (id: number) => `/crm/opportunities/${id}/sell`;

function planJson(plan: SalePlan, rules: FieldRules) {
  const opp = plan.opportunity;
  return {
    opportunity: visibleOpportunityFields({ id: opp.id, name: opp.name, is_locked: opp.is_locked, lock_version: opp.lock_version }, rules),
    quote: plan.quote ? { id: plan.quote.id, number: plan.quote.number, lock_version: plan.quote.lock_version } : null,
    won_status: plan.wonStatus ? { id: plan.wonStatus.id, name: plan.wonStatus.name } : null,
    sale_date: plan.saleDate,
    contracts: plan.contracts.map((c) => ({
      source_key: c.source_key, name: c.name, kind: c.kind, category: c.category_name, amount_minor: c.amount_minor, currency: c.currency,
      starts_on: c.starts_on, ends_on: c.ends_on, existing_contract_id: c.existing?.id ?? null, automation: c.automation,
    })),
    problems: plan.problems,
    notes: plan.notes,
  };
}

async function confirmPage(ctx: CrmContext, opp: Opportunity, error: CrmError | null = null, values: FormInput | null = null): Promise<PageResponse> {
  const plan = await planSale(ctx, opp);
  // A refused sale lists its own reasons (an automation refusal is only known after trying).
  const refused = error && Array.isArray(error.details.problems) ? (error.details.problems as string[]) : [];
  const problems = [...new Set([...plan.problems, ...refused])];
  const renewing = values && values.renewal_form === '1' ? new Set(([] as unknown[]).concat(values.renew ?? []).map(String)) : null;
  const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const label = opportunityLabel(opp, rules);
  return {
    title: `Confirm deal · ${label}`,
    view: 'sale/confirm',
    status: error?.status ?? 200,
    locals: { plan, problems, error, opp, oppLabel: label, formatMoney, quantityText, kindLabels: CONTRACT_KIND_LABELS, renewing },
    json: error ? { ...planJson(plan, rules), error: error.message, problems } : planJson(plan, rules),
  };
}

async function afterChange(ctx: CrmContext, req: Request, res: Response, oppId: number, message: string): Promise<void> {
  await respondAfterChange(ctx.host, req, res, opportunityUrl(oppId), async () => {
    const fresh = await requireVisibleOpportunity(ctx, oppId);
    return { ...(await detailPage(ctx, req, fresh, message)), trigger: 'crm:opportunitySold' };
  });
}

export function saleRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/opportunities/:id/sell', permission: 'add_contracts',
      async handler(ctx, req, res) {
        const opp = await requireSellable(ctx, idParam(req));
        await respond(ctx.host, req, res, await confirmPage(ctx, opp));
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/sell', permission: 'add_contracts',
      async handler(ctx, req, res) {
        const opp = await requireSellable(ctx, idParam(req));
        let result: Awaited<ReturnType<typeof sell>>;
        try {
          result = await sell(ctx, opp, formBody(req));
        } catch (err) {
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
            return respond(ctx.host, req, res, await confirmPage(ctx, await requireVisibleOpportunity(ctx, opp.id), err, formBody(req)));
          }
          throw err;
        }
        const created = result.created.length;
        await afterChange(ctx, req, res, opp.id, `Sold and locked: ${created} contract${created === 1 ? '' : 's'} created${result.kept ? `, ${result.kept} kept from the earlier sale` : ''}.`);
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/unlock', permission: 'delete_contracts',
      async handler(ctx, req, res) {
        const opp = await requireUnlockable(ctx, idParam(req));
        await unlock(ctx, opp, formBody(req));
        await afterChange(ctx, req, res, opp.id, 'Unlocked: quotes and items may change again. The contracts stay until you remove them.');
      },
    },
  ];
}

// The opportunity page: "Confirm deal and order service" / "Unlock" in the sidebar (shown at the top of its actions),
// and the contracts made by selling it, each with its automation runs.
OPPORTUNITY_SIDEBAR.push({
  id: 'sale', view: 'sale/sidebar',
  async load(ctx, opp) {
    const rights = await saleRights(ctx, opp);
    // sold_at / sold_by_id come with the row (select o.*), from migration 017.
    const sold = opp as unknown as { sold_at: unknown; sold_by_id: unknown };
    const soldBy = opp.is_locked && sold.sold_by_id ? await ctx.host.userById(Number(sold.sold_by_id)) : null;
    const soldOn = sold.sold_at ? new Date(sold.sold_at instanceof Date ? sold.sold_at : String(sold.sold_at)).toISOString().slice(0, 10) : null;
    return { ...rights, soldBy, soldOn };
  },
});

OPPORTUNITY_PANELS.push({
  id: 'contracts', view: 'contracts/panel',
  async load(ctx, opp) {
    if (!(await ctx.host.can(ctx.user, 'view_contracts', await ctx.host.projectById(opp.project_id)))) return { contracts: null, hidden: 0 };
    const { contracts, hidden } = await contractsOfOpportunity(ctx, opp);
    const runs = await runsOf(ctx, contracts.map((c) => c.id));
    return { contracts, hidden, runs, canRemove: !opp.is_locked && (await saleRights(ctx, opp)).canRemove, formatMoney, kindLabels: CONTRACT_KIND_LABELS };
  },
});
