import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError } from '../http/errors';
import { respond, respondAfterChange, wantsJson } from '../http/respond';
import { formBody } from '../http/params';
import type { Opportunity } from '../models/opportunity';
import { requireEditableOpportunity, requireVisibleOpportunity } from '../services/opportunities';
import {
  addBusinessRole, createOpportunityTask, linkOpportunityTask, removeBusinessRole, setOpportunityAccount, setOpportunityPartner,
  TaskChoice, unlinkOpportunityTask, withPartForm, type ActionPart,
} from '../services/opportunity-actions';
import { detailPage, opportunityUrl } from './opportunities';

/**
 * Issue #4 point 4: the opportunity page's sidebar actions (related task, related account, business roles,
 * assign to partner). Each answers like the page's other actions: a plain form gets 303 back to the
 * opportunity, htmx the re-rendered page body with `HX-Trigger: crm:opportunitySaved`, JSON the opportunity.
 * A refused form (422, 409) comes back on the page with its input and messages in its own sidebar block.
 */

const SAVED = 'crm:opportunitySaved';
const numberParam = (req: Request, name: string) => (/^\d{1,10}$/.test(String(req.params[name] ?? '')) ? Number(req.params[name]) : 0);

async function act(ctx: CrmContext, req: Request, res: Response, part: ActionPart, change: (opp: Opportunity) => Promise<string>): Promise<void> {
  const id = numberParam(req, 'id');
  const opp = await requireEditableOpportunity(ctx, id);
  let message: string;
  try {
    message = await change(opp);
  } catch (err) {
    if (!(err instanceof CrmError) || (err.status !== 422 && err.status !== 409) || wantsJson(req)) throw err;
    // The page again, with the current record (a stale form gets the new lock version) and the user's input.
    const current = await requireVisibleOpportunity(ctx, id);
    const withForm = withPartForm(ctx, { part, values: formBody(req), errors: err.fieldErrors, message: err.message, candidates: err instanceof TaskChoice ? err.candidates : [] });
    // A locked opportunity shows no action forms, so the message goes to the top of the page instead.
    return respond(ctx.host, req, res, { ...(await detailPage(withForm, req, current, current.is_locked ? err.message : null)), status: err.status });
  }
  await respondAfterChange(ctx.host, req, res, opportunityUrl(id), async () => ({
    ...(await detailPage(ctx, req, await requireVisibleOpportunity(ctx, id), message)), trigger: SAVED,
  }));
}

export function opportunityActionRoutes(): CrmRoute[] {
  const post = (path: string, part: ActionPart, change: (ctx: CrmContext, req: Request, opp: Opportunity) => Promise<string>): CrmRoute => ({
    method: 'post', path: `/crm/opportunities/:id${path}`, permission: 'edit_opportunities',
    handler: (ctx, req, res) => act(ctx, req, res, part, (opp) => change(ctx, req, opp)),
  });
  return [
    post('/tasks/link', 'task', async (ctx, req, opp) => `Task #${(await linkOpportunityTask(ctx, opp, formBody(req))).id} linked.`),
    post('/tasks', 'task', async (ctx, req, opp) => `Task #${(await createOpportunityTask(ctx, opp, formBody(req))).id} created and linked.`),
    post('/tasks/:taskId/unlink', 'task', async (ctx, req, opp) => `Task #${(await unlinkOpportunityTask(ctx, opp, numberParam(req, 'taskId'))).id} unlinked.`),
    post('/account', 'account', async (ctx, req, opp) => `Account set to ${await setOpportunityAccount(ctx, opp, formBody(req))}.`),
    post('/partner', 'partner', async (ctx, req, opp) => `Assigned to partner ${await setOpportunityPartner(ctx, opp, formBody(req), false)}.`),
    post('/partner/remove', 'partner', async (ctx, req, opp) => {
      await setOpportunityPartner(ctx, opp, formBody(req), true);
      return 'Partner removed.';
    }),
    post('/roles', 'role', async (ctx, req, opp) => {
      const role = await addBusinessRole(ctx, opp, formBody(req));
      return `Business role added for ${role.contact_name}.`;
    }),
    post('/roles/:roleId/delete', 'role', async (ctx, req, opp) => {
      await removeBusinessRole(ctx, opp, numberParam(req, 'roleId'));
      return 'Business role removed.';
    }),
  ];
}
