import type { CrmContext } from '../http/guard';
import type { Opportunity } from '../models/opportunity';
import { opportunityRecord } from '../services/activities';
import { activityListLocals, addFormLocals } from './activities';
import {
  accountActionLocals, partnerActionLocals, roleActionLocals, rolesPanelLocals, taskActionLocals, tasksPanelLocals,
} from '../services/opportunity-actions';
import { contactUrl } from './contacts';
import { newQuoteSidebar, quotesPanel } from './quotes';

/**
 * Parts of the opportunity page that other features contribute: panels in the content area (business roles,
 * related tasks, sales activities, quotes …) and blocks in the right sidebar. Each loads its own data.
 */
export interface OpportunityPart {
  id: string;
  /** A view under views/, rendered with the locals `load` returns plus opp, canEdit and csrfToken. */
  view: string;
  load(ctx: CrmContext, opp: Opportunity, canEdit: boolean): Promise<Record<string, unknown>>;
}

export const OPPORTUNITY_PANELS: OpportunityPart[] = [];
export const OPPORTUNITY_SIDEBAR: OpportunityPart[] = [];

// O5 sales activities: the list (edit and delete in place) and the sidebar's "Add activity", which swaps that list.
OPPORTUNITY_PANELS.push({
  id: 'activities', view: 'activities/panel',
  load: async (ctx, opp, canEdit) => activityListLocals(ctx, await opportunityRecord(ctx, opp, canEdit)),
});
OPPORTUNITY_SIDEBAR.push({
  id: 'add-activity', view: 'activities/sidebar-add',
  async load(ctx, opp, canEdit) {
    const record = await opportunityRecord(ctx, opp, canEdit);
    return { record, form: await addFormLocals(ctx, record, 'sidebar') };
  },
});

// Issue #4 point 4, the sidebar actions: related tasks and business roles (O1) as panels; link/create a task,
// set the account, add a business role and assign a partner in the sidebar (routes in ./opportunity-actions).
OPPORTUNITY_PANELS.push(
  { id: 'business-roles', view: 'opportunities/parts/roles-panel', load: async (ctx, opp, canEdit) => ({ ...(await rolesPanelLocals(ctx, opp, canEdit)), contactUrl }) },
  { id: 'related-tasks', view: 'opportunities/parts/tasks-panel', load: tasksPanelLocals },
);
OPPORTUNITY_SIDEBAR.push(
  { id: 'related-task', view: 'opportunities/parts/task-actions', load: taskActionLocals },
  { id: 'related-account', view: 'opportunities/parts/account-action', load: accountActionLocals },
  { id: 'business-role', view: 'opportunities/parts/role-action', load: roleActionLocals },
  { id: 'assign-partner', view: 'opportunities/parts/partner-action', load: partnerActionLocals },
);

// Issue #5 (Q5, Q6): the opportunity's quotes as a panel, and "New quote" in the sidebar (routes in ./quotes).
OPPORTUNITY_PANELS.push(quotesPanel);
OPPORTUNITY_SIDEBAR.push(newQuoteSidebar);

// Issue #5 (Q8): "Generate quote document" in the sidebar, for those who may change the opportunity (routes in ./documents).
OPPORTUNITY_SIDEBAR.push({ id: 'generate-document', view: 'documents/sidebar', load: async (_ctx, _opp, canEdit) => ({ editable: canEdit }) });
