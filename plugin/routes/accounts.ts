import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid, notFound } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import type { Account } from '../models/account';
import {
  accountFormOptions, addAccountToGroup, addAccountToProject, accountListFilters, canEditAccount, carryNameToType, createAccount, deleteAccount, filterParams, findShownAccount, isFavorite,
  linkedProjectIds, listAccounts, listDeletedAccounts, parseAccountFilters, readAccountInput, requireEditableAccount, requireShownAccount, requireVisibleAccount,
  restoreAccount, setFavorite, updateAccount, type ShownAccount,
} from '../services/accounts';
import { activeFields, customValuesOf, fieldKey } from '../services/custom-fields';
import { isPartnerUser, partnerPicker } from '../services/partners';
import { text, type FormInput, lockVersionOf } from '../services/form';
import { leftOutJson } from '../services/list-filters';
import { pageParam } from '../services/pagination';
import { queryString, savedFilters } from '../services/saved-filters';
import { loadSettings } from '../services/settings';
import { ACCOUNT_TABS, findTab } from './account-tabs';
import { savedFilterRoutes, UNTOUCHED_SAVED_FILTERS } from './saved-filter-routes';
import { seenReference } from '../services/seen';

const listBase = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/accounts` : '/crm/accounts');
const accountUrl = (id: number) => `/crm/accounts/${id}`;

/** The account's stored fields, as the edit form holds them (a parent or partner the editor may not see included: saving keeps them). */
function accountFields(a: Account) {
  return {
    id: a.id, name: a.name, first_name: a.first_name, last_name: a.last_name, account_type_id: a.account_type_id, organization: a.organization,
    email: a.email, phone: a.phone, street: a.street, city: a.city, postcode: a.postcode, country: a.country,
    registration_number: a.registration_number, vat_number: a.vat_number, industry_id: a.industry_id, account_manager_id: a.account_manager_id,
    customer_number: a.customer_number, is_customer: Boolean(a.customer_number), is_supplier: a.is_supplier, is_key_account: a.is_key_account,
    service_expires_on: a.service_expires_on, note: a.note, is_global: a.is_global, is_private: a.is_private, partner_id: a.partner_id,
    parent_id: a.parent_id, lock_version: a.lock_version, url: accountUrl(a.id),
  };
}

/**
 * The account as this reader may read it: the id of its parent account and of its partner only where they may see
 * them, as the page names them (the Relations tab, "Assign to partner"); one they may not see is null and
 * `parent_hidden` / `partner_hidden`, as the opportunity and contact JSON give theirs.
 */
function accountJson({ account: a, parentSeen, partnerSeen }: ShownAccount) {
  return {
    ...accountFields(a),
    ...seenReference('parent', a.parent_id, parentSeen),
    ...seenReference('partner', a.partner_id, partnerSeen),
  };
}

/** The list filtered by `query` (the address's, or a refused save filter form's), the saved filters part in `savedFilterState`. */
async function listPage(ctx: CrmContext, req: Request, query = req.query as FormInput, savedFilterState = UNTOUCHED_SAVED_FILTERS): Promise<PageResponse> {
  const { filters, options, leftOut } = await accountListFilters(ctx, parseAccountFilters(query));
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listAccounts(ctx, filters, pageParam(req), Number(settings.page_size));
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const params = filterParams(filters);
  const filtersSaved = await savedFilters(ctx.host.knex, 'accounts', ctx.user);
  const canAdd = await ctx.host.can(ctx.user, 'add_accounts', ctx.project);
  return {
    title: ctx.project ? `${ctx.project.name} · Accounts` : 'Accounts',
    view: 'accounts/index',
    project: ctx.project,
    locals: { rows, meta, filters, params, users, options, base: listBase(ctx), savedFilters: filtersSaved, queryString, canAdd, isAdmin: ctx.user.admin, project: ctx.project, leftOut, savedFilterState },
    json: {
      accounts: rows.map((r) => ({ ...r, manager: r.account_manager_id ? users.get(r.account_manager_id) ?? null : null, url: accountUrl(r.id) })),
      pagination: meta, filters: params,
      ...leftOutJson(leftOut),
    },
  };
}

async function formPage(ctx: CrmContext, req: Request, account: Account | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const options = await accountFormOptions(ctx, account);
  const typeId = Number(values.account_type_id ?? account?.account_type_id ?? options.types[0]?.id);
  const type = options.types.find((t) => t.id === typeId) ?? options.types[0];
  const customFields = type ? await activeFields(ctx.host.knex, 'account', type.id) : [];
  const projects = account || ctx.project ? [] : await ctx.host.projectsWhere(ctx.user, 'add_accounts');
  const action = account ? accountUrl(account.id) : ctx.project ? listBase(ctx) : '/crm/accounts';
  // A partner user's new account must be their partner's (A10): the form offers their partners.
  const partners = !account && (await isPartnerUser(ctx)) ? await partnerPicker(ctx, null) : null;
  return {
    title: account ? `Edit ${account.name}` : 'New account',
    view: 'accounts/form',
    project: ctx.project,
    status,
    locals: { account, values, errors, message, options, type, customFields, fieldKey, projects, partners, action, canSetPrivate: !account || account.author_id === ctx.user.id, project: ctx.project },
    json: { error: message, fields: errors },
  };
}

/** What the form shows for an existing account: its stored values, custom values and groups. */
async function valuesOf(ctx: CrmContext, account: Account): Promise<FormInput> {
  const values: FormInput = { ...accountFields(account) };
  for (const [fieldId, value] of await customValuesOf(ctx.host.knex, 'account', account.id)) values[`custom_field_${fieldId}`] = value ?? '';
  values.group_ids = (await ctx.host.knex('crm_account_group_members').where({ account_id: account.id }).pluck('group_id')).map(String);
  for (const k of ['is_supplier', 'is_key_account', 'is_global', 'is_private']) values[k] = (account as unknown as Record<string, boolean>)[k] ? '1' : '';
  return values;
}

/** The account page on `tab` (default: the `?tab=` of the request); other features' actions re-render it too. */
export async function accountDetailPage(ctx: CrmContext, req: Request, shown: ShownAccount, message: string | null = null, tabId?: string): Promise<PageResponse> {
  const { account } = shown;
  const tab = findTab(tabId ?? text(req.query as FormInput, 'tab'));
  const tabLocals = await tab.load(ctx, account, pageParam(req));
  const canEdit = await canEditAccount(ctx, account);
  const canDelete = canEdit && (await ctx.host.can(ctx.user, 'delete_accounts'));
  const favorite = await isFavorite(ctx.host.knex, ctx.user.id, account.id);
  const addableProjects = canEdit ? await ctx.host.projectsWhere(ctx.user, 'add_accounts') : [];
  const linked = new Set(await linkedProjectIds(ctx.host.knex, account.id));
  const groups = canEdit ? (await accountFormOptions(ctx)).groups : [];
  const mapQuery = [account.street, account.postcode, account.city, account.country].filter(Boolean).join(', ');
  return {
    title: account.name,
    view: 'accounts/show',
    locals: {
      account, tab, tabs: ACCOUNT_TABS, tabLocals, canEdit, canDelete, favorite, message, groups,
      addableProjects: addableProjects.filter((p) => !linked.has(p.id)),
      mapUrl: mapQuery ? `https://www.openstreetmap.org/search?query=${encodeURIComponent(mapQuery)}` : null,
      canAddAccount: await ctx.host.can(ctx.user, 'add_accounts'),
      canAddOpportunity: await ctx.host.can(ctx.user, 'add_opportunities'),
    },
    json: { account: accountJson(shown), tab: tab.id, favorite, can_edit: canEdit },
  };
}


/**
 * The account as its page shows it after a change, read again (its parent may have changed). Should the change have
 * put it out of the user's sight, the page still shows what they saved, giving no id of its parent or partner.
 */
async function shownAfterChange(ctx: CrmContext, account: Account): Promise<ShownAccount> {
  return (await findShownAccount(ctx, account.id)) ?? { account, parentSeen: false, partnerSeen: false };
}

/** Runs a form save; a 422 or 409 re-renders the form with the user's input and the messages. */
async function saveOrRerender(ctx: CrmContext, req: Request, res: Response, account: Account | null, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await formPage(ctx, req, account, inputShownAgain(formBody(req), err, account), err.fieldErrors, err.message, err.status));
    }
    throw err;
  }
}

const listHandler = async (ctx: CrmContext, req: Request, res: Response) => respond(ctx.host, req, res, await listPage(ctx, req));
/**
 * The form's values from the address: a link's prefill (`?parent_id=…`), or, when the account type select
 * re-renders the form (an htmx GET carrying the whole form, views/accounts/form.ejs), everything typed so far.
 */
function valuesInQuery(req: Request): FormInput {
  const { _csrf: _token, ...values } = req.query as FormInput;
  return values;
}

/** Whether the request is the account type select re-rendering the form, which always sends the type. */
const isTypeSwitch = (req: Request) => (req.query as FormInput).account_type_id !== undefined;

/** What the form shows after the account type select changed: everything typed, the name carried to the new type's fields. */
async function typeSwitchValues(ctx: CrmContext, req: Request, account: Account | null): Promise<FormInput> {
  const values = valuesInQuery(req);
  const type = (await accountFormOptions(ctx, account)).types.find((t) => String(t.id) === text(values, 'account_type_id'));
  return type ? carryNameToType(values, type) : values;
}

const newHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await respond(ctx.host, req, res, await formPage(ctx, req, null, isTypeSwitch(req) ? await typeSwitchValues(ctx, req, null) : valuesInQuery(req)));
};
const createHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await saveOrRerender(ctx, req, res, null, async () => {
    const input = await readAccountInput(ctx, formBody(req), null);
    let project = ctx.project;
    const projectId = text(formBody(req), 'project_id');
    if (!project && projectId) {
      project = (await ctx.host.projectsWhere(ctx.user, 'add_accounts')).find((p) => String(p.id) === projectId) ?? null;
      if (!project) throw invalid('The account was not saved: fix the fields marked below.', { project_id: 'Choose a project where you may add accounts' });
    }
    const account = await createAccount(ctx, input, project);
    res.set('HX-Trigger', 'crm:accountSaved');
    if (req.get('HX-Request')) res.set('HX-Redirect', accountUrl(account.id));
    await respondAfterChange(ctx.host, req, res, accountUrl(account.id), async () => ({ ...(await accountDetailPage(ctx, req, await shownAfterChange(ctx, account))), status: 201 }));
  });
};

export function accountRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: '/crm/accounts', permission: 'view_accounts', handler: listHandler },
    { method: 'get', path: '/projects/:identifier/crm/accounts', permission: 'view_accounts', handler: listHandler },
    { method: 'get', path: '/crm/accounts/new', permission: 'add_accounts', handler: newHandler },
    { method: 'get', path: '/projects/:identifier/crm/accounts/new', permission: 'add_accounts', handler: newHandler },
    { method: 'post', path: '/crm/accounts', permission: 'add_accounts', handler: createHandler },
    { method: 'post', path: '/projects/:identifier/crm/accounts', permission: 'add_accounts', handler: createHandler },
    ...savedFilterRoutes({
      entity: 'accounts', list: '/crm/accounts', permission: 'view_accounts',
      read: (input) => {
        const params = filterParams(parseAccountFilters(input));
        return { stored: params, query: queryString(params) };
      },
      listPage,
    }),
    {
      method: 'get', path: '/crm/accounts/deleted', permission: 'view_accounts',
      async handler(ctx, req, res) {
        const { rows, meta } = await listDeletedAccounts(ctx, pageParam(req), 50);
        const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
        await respond(ctx.host, req, res, { title: 'Deleted accounts', view: 'accounts/deleted', locals: { rows, meta, users }, json: { accounts: rows, pagination: meta } });
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/restore', permission: 'view_accounts',
      async handler(ctx, req, res) {
        await restoreAccount(ctx, idParam(req));
        res.redirect(303, accountUrl(idParam(req)));
      },
    },
    {
      method: 'get', path: '/crm/accounts/:id', permission: 'view_accounts',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await accountDetailPage(ctx, req, await requireShownAccount(ctx, idParam(req))));
      },
    },
    {
      method: 'get', path: '/crm/accounts/:id/edit', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        await respond(ctx.host, req, res, await formPage(ctx, req, account, isTypeSwitch(req) ? await typeSwitchValues(ctx, req, account) : await valuesOf(ctx, account)));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        await saveOrRerender(ctx, req, res, account, async () => {
          const lockVersion = lockVersionOf(formBody(req));
          const input = await readAccountInput(ctx, formBody(req), account);
          const saved = await updateAccount(ctx, account, input, lockVersion);
          await respondAfterChange(ctx.host, req, res, accountUrl(saved.id), async () => ({ ...(await accountDetailPage(ctx, req, await shownAfterChange(ctx, saved), 'Account saved.')), trigger: 'crm:accountSaved' }));
        });
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/delete', permission: 'delete_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        if (text(formBody(req), 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'required' });
        await deleteAccount(ctx, account);
        if (req.get('HX-Request')) return void res.set('HX-Redirect', '/crm/accounts').status(204).end();
        if (req.accepts(['html', 'json']) === 'json') return void res.json({ deleted: account.id });
        res.redirect(303, '/crm/accounts');
      },
    },
    {
      // A4 "add to my accounts": a per-user favourite, not a change to the account itself.
      method: 'post', path: '/crm/accounts/:id/favorite', permission: 'view_accounts',
      async handler(ctx, req, res) {
        const account = await requireVisibleAccount(ctx, idParam(req));
        await setFavorite(ctx.host.knex, ctx.user.id, account.id, text(formBody(req), 'favorite') === '1');
        await respondAfterChange(ctx.host, req, res, accountUrl(account.id), async () => ({ ...(await accountDetailPage(ctx, req, await shownAfterChange(ctx, account))), trigger: 'crm:accountSaved' }));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/projects', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        const projectId = Number(text(formBody(req), 'project_id'));
        const project = (await ctx.host.projectsWhere(ctx.user, 'add_accounts')).find((p) => p.id === projectId);
        if (!project) throw notFound('Project');
        const message = (await addAccountToProject(ctx, account, project)) ? `Added to ${project.name}.` : `Already in ${project.name}.`;
        await respondAfterChange(ctx.host, req, res, `${accountUrl(account.id)}?tab=projects`, async () => ({ ...(await accountDetailPage(ctx, req, await shownAfterChange(ctx, account), message)), trigger: 'crm:accountSaved' }));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/groups', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        const groupId = Number(text(formBody(req), 'group_id'));
        const group = await ctx.host.knex('crm_account_groups').where({ id: Number.isInteger(groupId) ? groupId : 0, active: true }).first();
        if (!group) throw invalid('Choose a group from the list.', { group_id: 'Choose a group from the list' });
        const message = (await addAccountToGroup(ctx, account, group)) ? `Added to group ${group.name}.` : `Already in group ${group.name}.`;
        await respondAfterChange(ctx.host, req, res, accountUrl(account.id), async () => ({ ...(await accountDetailPage(ctx, req, await shownAfterChange(ctx, account), message)), trigger: 'crm:accountSaved' }));
      },
    },
  ];
}

