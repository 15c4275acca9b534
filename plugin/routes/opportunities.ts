import type { Request, Response } from 'express';
import { contextFor, type CrmContext, type CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid } from '../http/errors';
import { isHtmx, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import type { HostProject } from '../host';
import { FIELD_LABELS, type Opportunity } from '../models/opportunity';
import { findVisibleAccount, globalContext, visibleAccountNames } from '../services/accounts';
import { findVisibleContact } from '../services/contacts';
import { findVisiblePartner, partnerPicker } from '../services/partners';
import { leftOutJson, withoutInvisibleTargets } from '../services/list-filters';
import { fieldRulesFor, hiddenFields, opportunityLabel, visibleOpportunityFields, type FieldRules } from '../services/field-rules';
import { positiveId, text, type FormInput, lockVersionOf } from '../services/form';
import { history } from '../services/journal';
import { presentHistory } from '../services/history-display';
import { amountInput, formatMoney } from '../services/money';
import {
  canEditOpportunity, createOpportunity, deleteOpportunity, kanban, listOpportunities, moveOpportunity, moveToProject,
  opportunityFilterParams, parseOpportunityFilters, readOpportunityInput, requireEditableOpportunity, requireVisibleOpportunity,
  statuses, updateOpportunity, type OpportunityFilters,
} from '../services/opportunities';
import { pageParam } from '../services/pagination';
import { queryString, ROLE_DEFAULTS_JOURNAL, roleDefaultFilter, savedFilters, setRoleDefaultFilters } from '../services/saved-filters';
import { settingsHistory, userNames } from './admin-forms';
import { loadSettings } from '../services/settings';
import { OPPORTUNITY_SIDEBAR, OPPORTUNITY_PANELS } from './opportunity-extensions';
import { savedFilterRoutes, UNTOUCHED_SAVED_FILTERS, type SavedFilterState } from './saved-filter-routes';
import { seenReference } from '../services/seen';

const base = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/opportunities` : '/crm/opportunities');
export const opportunityUrl = (id: number) => `/crm/opportunities/${id}`;

/**
 * The opportunity as stored: what its edit form starts from, an account, contact or partner the editor may not see
 * included (it is kept on saving).
 */
function opportunityFields(o: Opportunity) {
  return {
    id: o.id, name: o.name, project_id: o.project_id, account_id: o.account_id, contact_id: o.contact_id, owner_id: o.owner_id,
    status_id: o.status_id, amount_minor: o.amount_minor, amount: o.amount_minor === null ? null : amountInput(o.amount_minor, o.currency),
    currency: o.currency, expected_close_on: o.expected_close_on, partner_id: o.partner_id, description: o.description,
    is_locked: o.is_locked, lock_version: o.lock_version,
  };
}

/**
 * Of the records an opportunity points to, those this reader may see, else null (none, or one they may not see):
 * asked side by side (on PostgreSQL's pool they overlap).
 */
async function visibleReferences(ctx: CrmContext, opp: Opportunity) {
  const [account, contact, partner] = await Promise.all([
    opp.account_id ? findVisibleAccount(ctx, opp.account_id) : null,
    opp.contact_id ? findVisibleContact(ctx, opp.contact_id) : null,
    opp.partner_id ? findVisiblePartner(ctx, opp.partner_id) : null,
  ]);
  return { account, contact, partner };
}

type SeenReferences = Record<'account' | 'contact' | 'partner', { id: number } | null>;

/**
 * The opportunity as this reader may read it: the id of its account, contact and partner only where they may see
 * it; one they may not is null and `<kind>_hidden`, as the page says "an account you cannot see" (and as the list
 * and the sales activity lists give it). The field rules then leave out what they hide, with those (S5).
 */
function opportunityJson(o: Opportunity, seen: SeenReferences, rules: FieldRules) {
  return visibleOpportunityFields({
    ...opportunityFields(o),
    ...seenReference('account', o.account_id, seen.account !== null),
    ...seenReference('contact', o.contact_id, seen.contact !== null),
    ...seenReference('partner', o.partner_id, seen.partner !== null),
    url: opportunityUrl(o.id),
  }, rules);
}

/** What the list says about the filter it applied. */
interface FilterNotes {
  /** The role's default filter (its name and the role's), when the list was opened without a query and applied it. */
  defaultFilter: { name: string; role: string } | null;
  leftOut: string[];
}

const NO_FILTER_NOTES: FilterNotes = { defaultFilter: null, leftOut: [] };

/**
 * Filters, falling back to the role's default filter (roleDefaultFilter) when the list is opened without any query
 * at all (`roleDefault`). Any query overrides it: the pages of a cleared list (`?page=2`) and “Clear” (`?q=`) stay
 * unfiltered, as their links carry no filter to tell them apart from the default.
 */
async function filtersFor(ctx: CrmContext, query: FormInput, roleDefault: boolean): Promise<{ f: OpportunityFilters; defaultFilter: FilterNotes['defaultFilter'] }> {
  const applied = roleDefault ? await roleDefaultFilter(ctx, 'opportunities', 'view_opportunities') : null;
  if (applied) return { f: parseOpportunityFilters(applied.params), defaultFilter: { name: applied.name, role: applied.role } };
  return { f: parseOpportunityFilters(query), defaultFilter: null };
}

/**
 * A saved or default filter (or a link) outlives what it names: a status deleted since, an owner removed, a project,
 * account or partner the user does not see (withoutInvisibleTargets). Those parts are left out (named by kind only,
 * never by name, so nothing hidden is revealed) rather than narrowing the list to nothing without saying why.
 */
async function withoutStaleReferences(ctx: CrmContext, f: OpportunityFilters): Promise<{ f: OpportunityFilters; leftOut: string[] }> {
  const { f: kept, leftOut } = await withoutInvisibleTargets(ctx, f);
  if (f.owner !== null && !(await ctx.host.users()).some((u) => u.id === f.owner)) {
    kept.owner = null;
    leftOut.push('an owner who no longer exists');
  }
  if (f.project !== null && !(await globalContext(ctx).scopeProjects('view_opportunities')).some((p) => p.id === f.project)) {
    kept.project = null;
    leftOut.push('a project you cannot see');
  }
  if (f.statuses.length) {
    const existing = new Set((await statuses(ctx.host.knex)).map((s) => s.id));
    kept.statuses = f.statuses.filter((id) => existing.has(id));
    const gone = f.statuses.length - kept.statuses.length;
    if (gone) leftOut.push(gone === 1 ? 'a status that no longer exists' : `${gone} statuses that no longer exist`);
  }
  return { f: kept, leftOut };
}

async function listOptions(ctx: CrmContext, f: OpportunityFilters) {
  const knex = ctx.host.knex;
  const [allStatuses, users, projects] = await Promise.all([
    statuses(knex), ctx.host.users(), (await globalContext(ctx).scopeProjects('view_opportunities')),
  ]);
  return { statuses: allStatuses, users: users.map((u) => ({ id: u.id, name: u.name })), projects, partners: await partnerPicker(ctx, f.partner) };
}

async function listPage(
  ctx: CrmContext, req: Request, f: OpportunityFilters, error: CrmError | null = null, notes = NO_FILTER_NOTES,
  savedFilterState = UNTOUCHED_SAVED_FILTERS,
): Promise<PageResponse> {
  const settings = await loadSettings(ctx.host.knex);
  const result = await listOpportunities(ctx, f, pageParam(req), Number(settings.page_size));
  const options = await listOptions(ctx, f);
  const users = new Map(options.users.map((u) => [u.id, u.name]));
  const params = opportunityFilterParams(f);
  return {
    title: ctx.project ? `${ctx.project.name} · Opportunities` : 'Opportunities',
    view: 'opportunities/index',
    project: ctx.project,
    status: error ? error.status : 200,
    locals: {
      ...result, f, params, options, users, base: base(ctx), project: ctx.project, formatMoney, opportunityLabel, queryString: (p: Record<string, string | string[]>) => qs(p),
      savedFilters: await savedFilters(ctx.host.knex, 'opportunities', ctx.user), canAdd: await ctx.host.can(ctx.user, 'add_opportunities', ctx.project),
      error, notes, current: 'list', savedFilterState,
    },
    json: error ? { error: error.message, fields: error.fieldErrors } : {
      opportunities: result.rows.map((r) => ({ ...r, url: opportunityUrl(r.id) })),
      totals: result.totals, hidden_amounts: result.hiddenAmounts, pagination: result.meta,
      status_counts: Object.fromEntries(result.tagCounts),
      ...filterNotesJson(notes),
    },
  };
}

const filterNotesJson = (notes: FilterNotes) => ({
  ...(notes.defaultFilter ? { default_filter: notes.defaultFilter.name, default_filter_role: notes.defaultFilter.role } : {}),
  ...leftOutJson(notes.leftOut),
});

function qs(params: Record<string, string | string[]>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) search.append(k, x);
  const out = search.toString();
  return out ? `?${out}` : '';
}

/** The filters of `query` (or the role's default: filtersFor) less their stale references; 422 for a malformed one. */
async function checkedFilters(ctx: CrmContext, query: FormInput, roleDefault: boolean): Promise<{ f: OpportunityFilters; notes: FilterNotes }> {
  const { f, defaultFilter } = await filtersFor(ctx, query, roleDefault);
  const { f: kept, leftOut } = await withoutStaleReferences(ctx, f);
  return { f: kept, notes: { defaultFilter, leftOut } };
}

/** Lists answer a malformed filter with the list page and the message (422), not a bare error. */
async function withFilters(ctx: CrmContext, req: Request, res: Response, page: (f: OpportunityFilters, notes: FilterNotes) => Promise<PageResponse>): Promise<void> {
  let checked: { f: OpportunityFilters; notes: FilterNotes };
  try {
    checked = await checkedFilters(ctx, req.query as FormInput, Object.keys(req.query).length === 0);
  } catch (err) {
    if (!(err instanceof CrmError) || err.status !== 422) throw err;
    return respond(ctx.host, req, res, await listPage(ctx, req, parseOpportunityFilters({}), err));
  }
  await respond(ctx.host, req, res, await page(checked.f, checked.notes));
}

/** The list a refused save filter form came from, filtered by the form's conditions (never the role's default). */
async function listPageWithSavedFilters(ctx: CrmContext, req: Request, input: FormInput, savedFilterState: SavedFilterState): Promise<PageResponse> {
  try {
    const { f, notes } = await checkedFilters(ctx, input, false);
    return await listPage(ctx, req, f, null, notes, savedFilterState);
  } catch (err) {
    if (!(err instanceof CrmError) || err.status !== 422) throw err;
    return listPage(ctx, req, parseOpportunityFilters({}), err, undefined, savedFilterState);
  }
}

async function kanbanPage(ctx: CrmContext, f: OpportunityFilters, notes = NO_FILTER_NOTES): Promise<PageResponse> {
  const board = await kanban(ctx, f);
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  return {
    title: ctx.project ? `${ctx.project.name} · Pipeline` : 'Pipeline',
    view: 'opportunities/kanban',
    project: ctx.project,
    locals: {
      ...board, users, base: base(ctx), project: ctx.project, formatMoney, opportunityLabel, params: opportunityFilterParams(f), qs, current: 'kanban', notes,
      moveQuery: `?board=${encodeURIComponent(base(ctx))}`, canAdd: await ctx.host.can(ctx.user, 'add_opportunities', ctx.project),
    },
    json: {
      columns: board.columns.map((c) => ({
        status: { id: c.status.id, name: c.status.name }, count: c.count, totals: c.totals, hidden_amounts: c.hiddenAmounts,
        cards: c.cards.map((o) => ({ id: o.id, name: o.name, lock_version: o.lock_version })),
      })),
      folded: board.folded.map((c) => ({ status: { id: c.status.id, name: c.status.name, kind: c.status.kind }, count: c.count })),
      ...filterNotesJson(notes),
    },
  };
}

/** What the saved filters page shows besides the filters: why a deletion or the default filters were refused. */
interface SavedFiltersPageState {
  deleteError: CrmError | null;
  defaultsError: CrmError | null;
  /** The default filter per role as the refused form chose them, shown instead of the stored ones. */
  chosen: ReadonlyMap<number, number> | null;
}

const UNTOUCHED_SAVED_FILTERS_PAGE: SavedFiltersPageState = { deleteError: null, defaultsError: null, chosen: null };

/**
 * O2 “Manage saved filters”: the user's own filters and the shared ones; for those who manage CRM settings, the
 * default filter per role and its history.
 */
async function savedFiltersPage(ctx: CrmContext, state = UNTOUCHED_SAVED_FILTERS_PAGE): Promise<PageResponse> {
  const filters = await savedFilters(ctx.host.knex, 'opportunities', ctx.user);
  const canManageDefaults = await ctx.host.can(ctx.user, 'manage_crm_settings');
  const roles = canManageDefaults ? await ctx.host.roles() : [];
  const stored = canManageDefaults && !state.chosen ? await ctx.host.knex('crm_role_default_filters').where({ entity: 'opportunities' }) : [];
  const log = canManageDefaults ? await settingsHistory(ctx, ROLE_DEFAULTS_JOURNAL) : null;
  return {
    title: 'Saved filters', view: 'opportunities/filters',
    status: (state.deleteError ?? state.defaultsError)?.status ?? 200,
    locals: {
      filters, roles, defaults: state.chosen ?? new Map(stored.map((d) => [Number(d.role_id), Number(d.saved_filter_id)])), canManageDefaults, queryString,
      current: 'filters', base: '/crm/opportunities', project: null, log, users: log ? await userNames(ctx) : new Map(),
      deleteError: state.deleteError, defaultsError: state.defaultsError,
    },
    json: { filters },
  };
}

/**
 * The board a kanban move goes back to, from the form's `board` field: the global board or the board of a
 * project where the user may see opportunities. Anything else (another site, another page, a project they
 * cannot open) means the global board, so the field can neither redirect elsewhere nor name a hidden project.
 */
async function boardContext(ctx: CrmContext, board: string): Promise<CrmContext> {
  const identifier = /^\/projects\/([^/?#]+)\/crm\/opportunities$/.exec(board)?.[1];
  if (identifier) {
    const project = (await ctx.host.projectsWhere(ctx.user, 'view_opportunities')).find((p) => encodeURIComponent(p.identifier) === identifier);
    if (project) return contextFor(ctx.host, ctx.user, project);
  }
  return globalContext(ctx);
}

/** O3: a card's move menu. Cards carry no form of their own (a full board has 100 cards); htmx loads it into the card. */
async function moveMenuPage(ctx: CrmContext, req: Request, opp: Opportunity): Promise<PageResponse> {
  const board = base(await boardContext(ctx, typeof req.query.board === 'string' ? req.query.board : ''));
  const choices = await statuses(ctx.host.knex, { activeOnly: true });
  const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const label = opportunityLabel(opp, rules);
  return {
    title: `Move ${label}`,
    view: isHtmx(req) ? 'opportunities/move-form' : 'opportunities/move',
    locals: { opportunity: opp, oppLabel: label, statuses: choices, board },
    json: {
      opportunity: visibleOpportunityFields({ id: opp.id, name: opp.name, status_id: opp.status_id, lock_version: opp.lock_version }, rules),
      statuses: choices.map((s) => ({ id: s.id, name: s.name })), board,
    },
  };
}

async function formOptions(ctx: CrmContext, partnerId: number | null) {
  const knex = ctx.host.knex;
  const settings = await loadSettings(knex);
  return {
    statuses: await statuses(knex, { activeOnly: true }),
    users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
    partners: await partnerPicker(ctx, partnerId),
    defaultCurrency: String(settings.default_currency),
  };
}

async function formPage(ctx: CrmContext, project: HostProject | null, opp: Opportunity | null, values: FormInput, error: CrmError | null = null): Promise<PageResponse> {
  const options = await formOptions(ctx, positiveId(text(values, 'partner_id')));
  const statusId = Number(text(values, 'status_id')) || opp?.status_id || options.statuses.find((s) => s.is_default)?.id || options.statuses[0]?.id;
  const rules: FieldRules = project ? await fieldRulesFor(ctx, project.id, statusId) : new Map();
  const projects = project ? [] : await ctx.host.projectsWhere(ctx.user, 'add_opportunities');
  // Named only when this user may see the account: the id may be one typed into the form, or someone else's choice.
  const accountId = positiveId(text(values, 'account_id'));
  const accountName = accountId ? (await visibleAccountNames(ctx, [accountId])).get(accountId) ?? '' : '';
  const action = opp ? opportunityUrl(opp.id) : project ? `/projects/${encodeURIComponent(project.identifier)}/crm/opportunities` : '/crm/opportunities';
  // Named under the rules of its stored status: the form's status may be another one the user picked.
  const heading = opp ? `Edit ${opportunityLabel(opp, await fieldRulesFor(ctx, opp.project_id, opp.status_id))}` : 'New opportunity';
  return {
    title: heading,
    view: 'opportunities/form',
    project: ctx.project,
    status: error?.status ?? 200,
    locals: { opp, heading, values, errors: error?.fieldErrors ?? {}, message: error?.message ?? null, options, rules, statusId, projects, action, accountName, labels: FIELD_LABELS, project: ctx.project },
    json: { error: error?.message ?? null, fields: error?.fieldErrors ?? {} },
  };
}

export async function detailPage(ctx: CrmContext, req: Request, opp: Opportunity, message: string | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const [allStatuses, project, canEdit] = await Promise.all([statuses(knex), ctx.host.projectById(opp.project_id), canEditOpportunity(ctx, opp)]);
  const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
  const hidden = hiddenFields(rules);
  const status = allStatuses.find((s) => s.id === opp.status_id)!;
  // The account, contact and partner are named only to those who may see them; others learn that there is one, not which.
  const { account, contact, partner } = await visibleReferences(ctx, opp);
  const hiddenAccount = Boolean(opp.account_id) && !account;
  const owner = opp.owner_id ? await ctx.host.userById(opp.owner_id) : null;
  const log = await presentHistory(ctx, await history(knex, 'opportunity', opp.id, pageParam(req), 20), { currency: opp.currency, hiddenFields: hidden });
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const moveTargets = canEdit ? (await ctx.host.projectsWhere(ctx.user, 'add_opportunities')).filter((p) => p.id !== opp.project_id) : [];
  // S6 "show sales activities on opportunities": when off, the activities panel and its add form are left out.
  const showActivities = Boolean((await loadSettings(knex)).show_sales_activities_on_opportunities);
  const shown = (part: { id: string }) => showActivities || (part.id !== 'activities' && part.id !== 'add-activity');
  const panels = [];
  for (const panel of OPPORTUNITY_PANELS.filter(shown)) panels.push({ view: panel.view, locals: await panel.load(ctx, opp, canEdit) });
  const sidebar = [];
  for (const action of OPPORTUNITY_SIDEBAR.filter(shown)) sidebar.push({ view: action.view, locals: await action.load(ctx, opp, canEdit) });
  const label = opportunityLabel(opp, rules);
  return {
    title: label,
    view: 'opportunities/show',
    locals: {
      opp, oppLabel: label, status, statuses: allStatuses.filter((s) => s.active), project, account, hiddenAccount, contact, partner, owner, log, users, canEdit, hiddenFields: hidden, message,
      canDelete: canEdit && !opp.is_locked && (await ctx.host.can(ctx.user, 'delete_opportunities', project)), moveTargets, formatMoney, panels, sidebar,
      canAdd: await ctx.host.can(ctx.user, 'add_opportunities'),
    },
    json: {
      opportunity: opportunityJson(opp, { account, contact, partner }, rules),
      status: { id: status.id, name: status.name, kind: status.kind, probability: status.probability }, can_edit: canEdit,
    },
  };
}

async function rerenderForm(ctx: CrmContext, req: Request, res: Response, project: HostProject | null, opp: Opportunity | null, save: () => Promise<void>) {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) return respond(ctx.host, req, res, await formPage(ctx, project, opp, inputShownAgain(formBody(req), err, opp), err));
    throw err;
  }
}

/** The project a new opportunity goes into: the page's project, or the one chosen on the global form. */
async function targetProject(ctx: CrmContext, input: FormInput): Promise<HostProject> {
  if (ctx.project) return ctx.project;
  const id = Number(text(input, 'project_id'));
  const project = (await ctx.host.projectsWhere(ctx.user, 'add_opportunities')).find((p) => p.id === id);
  if (!project) throw invalid('The opportunity was not saved: fix the fields marked below.', { project_id: 'Choose a project where you may add opportunities' });
  return project;
}

const listHandler = (ctx: CrmContext, req: Request, res: Response) => withFilters(ctx, req, res, (f, notes) => listPage(ctx, req, f, null, notes));
const kanbanHandler = (ctx: CrmContext, req: Request, res: Response) => withFilters(ctx, req, res, (f, notes) => kanbanPage(ctx, f, notes));
const newHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  const q = req.query as FormInput;
  await respond(ctx.host, req, res, await formPage(ctx, ctx.project, null, { account_id: text(q, 'account_id'), partner_id: text(q, 'partner_id') }));
};
const createHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await rerenderForm(ctx, req, res, ctx.project, null, async () => {
    const project = await targetProject(ctx, formBody(req));
    const { data } = await readOpportunityInput(ctx, formBody(req), null, project);
    const opp = await createOpportunity(ctx, project, data);
    // "Save and new" opens a fresh form prefilled like this one (O4 copy and new).
    const next = text(formBody(req), 'and_new') === '1' ? `${base(ctx)}/new?account_id=${opp.account_id ?? ''}&partner_id=${opp.partner_id ?? ''}` : opportunityUrl(opp.id);
    // htmx would follow a 303 inside its request and swap the next page into the form; it navigates on HX-Redirect.
    if (req.get('HX-Request')) return void res.set('HX-Redirect', next).status(201).end();
    // As its JSON reads from now on: the creator may not read again what the rules of its status hide from them (S5).
    if (req.accepts(['html', 'json']) === 'json') {
      const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
      return void res.status(201).json({ opportunity: opportunityJson(opp, await visibleReferences(ctx, opp), rules) });
    }
    res.redirect(303, next);
  });
};

export function opportunityRoutes(): CrmRoute[] {
  const both = (path: string, permission: string, method: 'get' | 'post', handler: CrmRoute['handler']): CrmRoute[] => [
    { method, path: `/crm/opportunities${path}`, permission, handler },
    { method, path: `/projects/:identifier/crm/opportunities${path}`, permission, handler },
  ];
  return [
    ...both('', 'view_opportunities', 'get', listHandler),
    ...both('/kanban', 'view_opportunities', 'get', kanbanHandler),
    ...both('/new', 'add_opportunities', 'get', newHandler),
    ...both('', 'add_opportunities', 'post', createHandler),
    ...savedFilterRoutes({
      entity: 'opportunities', list: '/crm/opportunities', permission: 'view_opportunities',
      read: (input) => {
        const params = opportunityFilterParams(parseOpportunityFilters(input));
        return { stored: paramsForStorage(params), query: qs(params) };
      },
      listPage: listPageWithSavedFilters,
      afterDelete: { path: '/crm/opportunities/filters', page: (ctx, _req, state) => savedFiltersPage(ctx, { ...UNTOUCHED_SAVED_FILTERS_PAGE, deleteError: state.deleteError }) },
    }),
    {
      method: 'get', path: '/crm/opportunities/filters', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await savedFiltersPage(ctx));
      },
    },
    {
      // O2 "a default filter per role": set by those who manage CRM settings, from shared filters only. A filter
      // that is not shared (a forged form, or one made private since the page was loaded) shows the page again
      // with the choices made and the message at that role (422); nothing is saved.
      method: 'post', path: '/crm/opportunities/filters/defaults', permission: 'manage_crm_settings',
      async handler(ctx, req, res) {
        const roles = await ctx.host.roles();
        const shared = new Set((await savedFilters(ctx.host.knex, 'opportunities', ctx.user)).filter((f) => f.is_shared).map((f) => f.id));
        const chosen = new Map<number, number>();
        const errors: Record<string, string> = {};
        for (const role of roles) {
          const raw = text(formBody(req), `role_${role.id}`);
          if (!raw) continue;
          const id = positiveId(raw);
          if (id !== null) chosen.set(role.id, id);
          if (id === null || !shared.has(id)) errors[`role_${role.id}`] = 'Choose a filter shared with everyone';
        }
        if (Object.keys(errors).length) {
          const refusal = invalid('The default filters were not saved: only a filter shared with everyone can be a role’s default.', errors);
          if (wantsJson(req)) throw refusal;
          return respond(ctx.host, req, res, await savedFiltersPage(ctx, { deleteError: null, defaultsError: refusal, chosen }));
        }
        await setRoleDefaultFilters(ctx.host.knex, 'opportunities', ctx.user, roles, chosen);
        res.redirect(303, '/crm/opportunities/filters');
      },
    },
    {
      method: 'get', path: '/crm/opportunities/:id', permission: 'view_opportunities',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await detailPage(ctx, req, await requireVisibleOpportunity(ctx, idParam(req))));
      },
    },
    {
      method: 'get', path: '/crm/opportunities/:id/edit', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        const project = await ctx.host.projectById(opp.project_id);
        const stored = opportunityFields(opp);
        await respond(ctx.host, req, res, await formPage(ctx, project, opp, { ...stored, amount: stored.amount ?? '' } as FormInput));
      },
    },
    {
      // O4 copy: a new opportunity form prefilled from this one (saved with "save" or "save and new").
      method: 'get', path: '/crm/opportunities/:id/copy', permission: 'add_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireVisibleOpportunity(ctx, idParam(req));
        const project = await ctx.host.projectById(opp.project_id);
        const canAddThere = project && (await ctx.host.can(ctx.user, 'add_opportunities', project));
        // Only what this user may see is copied into the form (which may show every field, outside the project):
        // a hidden name is not, the form asks for a new one; nor an account, contact or partner they may not see,
        // which a new opportunity could not be saved with.
        const rules = await fieldRulesFor(ctx, opp.project_id, opp.status_id);
        const name = hiddenFields(rules).has('name') ? '' : `${opp.name} (copy)`;
        const { account, contact, partner } = await visibleReferences(ctx, opp);
        const seen = { ...opportunityFields(opp), account_id: account?.id ?? null, contact_id: contact?.id ?? null, partner_id: partner?.id ?? null };
        const values = { ...visibleOpportunityFields(seen, rules), name, project_id: String(opp.project_id) } as FormInput;
        await respond(ctx.host, req, res, await formPage({ ...ctx, project: canAddThere ? project : null }, canAddThere ? project : null, null, values));
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        const project = (await ctx.host.projectById(opp.project_id))!;
        await rerenderForm(ctx, req, res, project, opp, async () => {
          const lockVersion = lockVersionOf(formBody(req));
          const { data } = await readOpportunityInput(ctx, formBody(req), opp, project);
          const saved = await updateOpportunity(ctx, opp, data, lockVersion);
          await respondAfterChange(ctx.host, req, res, opportunityUrl(saved.id), async () => ({ ...(await detailPage(ctx, req, saved, 'Opportunity saved.')), trigger: 'crm:opportunitySaved' }));
        });
      },
    },
    {
      method: 'get', path: '/crm/opportunities/:id/move', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await moveMenuPage(ctx, req, await requireEditableOpportunity(ctx, idParam(req))));
      },
    },
    {
      // O3: the kanban move and the status form on a card; same service and rules as the edit form.
      method: 'post', path: '/crm/opportunities/:id/status', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        const lockVersion = lockVersionOf(formBody(req));
        const saved = await moveOpportunity(ctx, opp, Number(text(formBody(req), 'status_id')), lockVersion);
        if (text(formBody(req), 'back') === 'kanban' && !wantsJson(req)) {
          const board = await boardContext(ctx, text(formBody(req), 'board'));
          if (isHtmx(req)) return respond(ctx.host, req, res, { ...(await kanbanPage(board, parseOpportunityFilters({}))), trigger: 'crm:opportunitySaved' });
          return void res.redirect(303, `${base(board)}/kanban`);
        }
        await respondAfterChange(ctx.host, req, res, opportunityUrl(saved.id), async () => ({ ...(await detailPage(ctx, req, saved, 'Status changed.')), trigger: 'crm:opportunitySaved' }));
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/project', permission: 'edit_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        const saved = await moveToProject(ctx, opp, Number(text(formBody(req), 'project_id')), lockVersionOf(formBody(req)));
        await respondAfterChange(ctx.host, req, res, opportunityUrl(saved.id), async () => ({ ...(await detailPage(ctx, req, saved, 'Moved to another project.')), trigger: 'crm:opportunitySaved' }));
      },
    },
    {
      method: 'post', path: '/crm/opportunities/:id/delete', permission: 'delete_opportunities',
      async handler(ctx, req, res) {
        const opp = await requireEditableOpportunity(ctx, idParam(req));
        if (text(formBody(req), 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'required' });
        await deleteOpportunity(ctx, opp);
        if (req.get('HX-Request')) return void res.set('HX-Redirect', '/crm/opportunities').status(204).end();
        if (req.accepts(['html', 'json']) === 'json') return void res.json({ deleted: opp.id });
        res.redirect(303, '/crm/opportunities');
      },
    },
  ];
}

/** Saved filters store flat strings; several statuses are kept comma-separated. */
function paramsForStorage(params: Record<string, string | string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : v]));
}
