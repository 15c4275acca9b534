import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid, notFound } from '../http/errors';
import { isHtmx, renderView, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import type { Account } from '../models/account';
import type { Partner } from '../models/partner';
import { findVisibleAccount, globalContext, requireEditableAccount } from '../services/accounts';
import { opportunityLabel } from '../services/field-rules';
import { listOpportunities, parseOpportunityFilters } from '../services/opportunities';
import { FieldErrors, text, type FormInput, lockVersionOf } from '../services/form';
import { history } from '../services/journal';
import { presentHistory } from '../services/history-display';
import { partnerRecord } from '../services/activities';
import { activityListLocals, addFormLocals } from './activities';
import { attachmentListLocals, PARTNER_ATTACHMENTS } from './attachments';
import { pageParam } from '../services/pagination';
import {
  assignAccountToPartner, canEditPartner, isPartnerUser, partnerOfPartnerUser, requireMayAddPartners, consultantsOf, createPartner, deletePartner, findVisiblePartner, listPartners, managedAccounts,
  parsePartnerFilters, partnerFilterParams, partnerPicker, partnerUsers, readPartnerInput, requireEditablePartner, requireVisiblePartner,
  setPartnerUser, updatePartner,
} from '../services/partners';
import { queryString } from '../services/saved-filters';
import { loadSettings } from '../services/settings';

const listBase = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/partners` : '/crm/partners');
export const partnerUrl = (id: number) => `/crm/partners/${id}`;

export const PARTNER_TABS = [
  { id: 'overview', label: 'Overview' }, { id: 'activities', label: 'Sales activities' }, { id: 'history', label: 'History' }, { id: 'files', label: 'Files' },
] as const;

function partnerJson(p: Partner) {
  return {
    id: p.id, name: p.name, email: p.email, phone: p.phone, website: p.website, city: p.city, country: p.country, note: p.note,
    project_id: p.project_id, manager_id: p.manager_id, lock_version: p.lock_version, url: partnerUrl(p.id),
  };
}

async function listPage(ctx: CrmContext, req: Request): Promise<PageResponse> {
  const filters = parsePartnerFilters(req.query as FormInput);
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listPartners(ctx, filters, pageParam(req), Number(settings.page_size));
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  return {
    title: ctx.project ? `${ctx.project.name} · Partners` : 'Partners',
    view: 'partners/index',
    project: ctx.project,
    locals: {
      rows, meta, filters, params: partnerFilterParams(filters), users, base: listBase(ctx), queryString, project: ctx.project,
      canAdd: (await ctx.host.can(ctx.user, 'add_partners', ctx.project)) && !(await isPartnerUser(ctx)),
    },
    json: {
      partners: rows.map((r) => ({ ...r, manager: r.manager_id ? users.get(r.manager_id) ?? null : null, url: partnerUrl(r.id) })),
      pagination: meta, filters: partnerFilterParams(filters),
    },
  };
}

async function formPage(ctx: CrmContext, partner: Partner | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const projects = partner || ctx.project ? [] : await ctx.host.projectsWhere(ctx.user, 'add_partners');
  return {
    title: partner ? `Edit ${partner.name}` : 'New partner',
    view: 'partners/form',
    project: ctx.project,
    status,
    locals: {
      partner, values, errors, message, projects, users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
      action: partner ? partnerUrl(partner.id) : listBase(ctx), base: listBase(ctx), project: ctx.project,
    },
    json: { error: message, fields: errors },
  };
}

async function detailPage(ctx: CrmContext, req: Request, partner: Partner, message: string | null = null, status = 200, errors: Record<string, string> = {}): Promise<PageResponse> {
  const tabId = text(req.query as FormInput, 'tab');
  const tab = PARTNER_TABS.find((t) => t.id === tabId) ?? PARTNER_TABS[0];
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const consultants = await consultantsOf(ctx, partner);
  const accounts = await managedAccounts(ctx, partner);
  // A10: the partner's opportunities the user may see (the first few; the list page has the rest).
  const assigned = tab.id === 'overview' ? await listOpportunities(globalContext(ctx), parseOpportunityFilters({ partner: String(partner.id) }), 1, 20) : null;
  const project = partner.project_id ? await ctx.host.projectById(partner.project_id) : null;
  const log = tab.id === 'history' ? await presentHistory(ctx, await history(ctx.host.knex, 'partner', partner.id, pageParam(req), 20)) : null;
  const canEdit = await canEditPartner(ctx, partner);
  const files = tab.id === 'files' ? await attachmentListLocals(ctx, PARTNER_ATTACHMENTS, partner) : null;
  const record = partnerRecord(partner, canEdit);
  const activities = tab.id === 'activities' ? { list: await activityListLocals(ctx, record, pageParam(req)), form: await addFormLocals(ctx, record, 'full') } : null;
  const canDelete = await canEditPartner(ctx, partner, 'delete_partners');
  const canManageUsers = await ctx.host.can(ctx.user, 'manage_crm_settings');
  const linkedUsers = canManageUsers ? await partnerUsers(ctx, partner) : [];
  const linkedIds = new Set(linkedUsers.map((u) => u.id));
  return {
    title: partner.name,
    view: 'partners/show',
    status,
    locals: {
      partner, tab, tabs: PARTNER_TABS, users, consultants, accounts, project, log, files, activities, canEdit,
      opportunities: assigned?.rows ?? [], opportunityLabel, opportunitiesTotal: assigned?.meta.total ?? 0, canDelete, message, errors, canManageUsers, linkedUsers,
      otherUsers: canManageUsers ? (await ctx.host.users()).filter((u) => !linkedIds.has(u.id)) : [],
      canAddConsultant: await ctx.host.can(ctx.user, 'add_personal_contacts'),
    },
    json: {
      partner: partnerJson(partner), consultants: consultants.map((c: { id: number }) => ({ ...c, url: `/crm/personal-contacts/${c.id}` })),
      accounts: accounts.map((a: { id: number }) => ({ ...a, url: `/crm/accounts/${a.id}` })),
      opportunities: (assigned?.rows ?? []).map((o) => ({ id: o.id, name: o.name, status: o.status_name, url: `/crm/opportunities/${o.id}` })),
      users: canManageUsers ? linkedUsers.map((u) => ({ id: u.id, login: u.login, name: u.name })) : undefined,
      can_edit: canEdit, error: status >= 400 ? message : undefined, fields: status >= 400 ? errors : undefined,
    },
  };
}

async function saveOrRerender(ctx: CrmContext, req: Request, res: Response, partner: Partner | null, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await formPage(ctx, partner, inputShownAgain(formBody(req), err, partner), err.fieldErrors, err.message, err.status));
    }
    throw err;
  }
}

const listHandler = async (ctx: CrmContext, req: Request, res: Response) => respond(ctx.host, req, res, await listPage(ctx, req));
const newHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await requireMayAddPartners(ctx);
  await respond(ctx.host, req, res, await formPage(ctx, null, { manager_id: String(ctx.user.id) }));
};
const createHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await requireMayAddPartners(ctx);
  await saveOrRerender(ctx, req, res, null, async () => {
    const data = await readPartnerInput(ctx, formBody(req));
    let project = ctx.project;
    const projectId = text(formBody(req), 'project_id');
    if (!project && projectId) {
      project = (await ctx.host.projectsWhere(ctx.user, 'add_partners')).find((p) => String(p.id) === projectId) ?? null;
      if (!project) throw invalid('The partner was not saved: fix the fields marked below.', { project_id: 'Choose a project where you may add partners' });
    }
    const partner = await createPartner(ctx, data, project);
    res.set('HX-Trigger', 'crm:partnerSaved');
    if (req.get('HX-Request')) res.set('HX-Redirect', partnerUrl(partner.id));
    await respondAfterChange(ctx.host, req, res, partnerUrl(partner.id), async () => ({ ...(await detailPage(ctx, req, partner)), status: 201 }));
  });
};

/**
 * "Assign to partner" on the account page (A10). The sidebar item (`#account-partner`) loads this small form
 * through htmx and gets it back after a save; without JavaScript it is a page of its own.
 */
async function assignResponse(ctx: CrmContext, req: Request, res: Response, account: Account, outcome: { message?: string; error?: boolean; status?: number; errors?: Record<string, string> } = {}): Promise<void> {
  const status = outcome.status ?? 200;
  const partners = await partnerPicker(ctx, account.partner_id);
  // Named only when this user may see it, as everywhere (the picker resolved that).
  const current = partners.current?.name ? { id: partners.current.id, name: partners.current.name } : null;
  const locals = { account, current, partners, assignMessage: outcome.message ?? null, assignError: Boolean(outcome.error), errors: outcome.errors ?? {} };
  res.vary('HX-Request');
  if (wantsJson(req)) {
    return void res.status(status).json(status >= 400 ? { error: outcome.message, fields: outcome.errors ?? {} } : { account_id: account.id, partner: current ? { id: current.id, name: current.name } : null, lock_version: account.lock_version, partners: locals.partners.options ?? [] });
  }
  if (isHtmx(req) && req.get('HX-Target') === 'account-partner') {
    if (req.method === 'POST' && status < 400) res.set('HX-Trigger', 'crm:accountSaved');
    return void res.status(status).type('html').send(await renderView('partners/assign-form', { ...locals, csrfToken: ctx.host.csrfToken(req) }));
  }
  await respond(ctx.host, req, res, { title: `${account.name} · Assign to partner`, view: 'partners/assign', status, locals, json: null });
}

export function partnerRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: '/crm/partners', permission: 'view_partners', handler: listHandler },
    { method: 'get', path: '/projects/:identifier/crm/partners', permission: 'view_partners', handler: listHandler },
    { method: 'get', path: '/crm/partners/new', permission: 'add_partners', handler: newHandler },
    { method: 'get', path: '/projects/:identifier/crm/partners/new', permission: 'add_partners', handler: newHandler },
    { method: 'post', path: '/crm/partners', permission: 'add_partners', handler: createHandler },
    { method: 'post', path: '/projects/:identifier/crm/partners', permission: 'add_partners', handler: createHandler },
    {
      method: 'get', path: '/crm/partners/:id', permission: 'view_partners',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await detailPage(ctx, req, await requireVisiblePartner(ctx, idParam(req))));
      },
    },
    {
      method: 'get', path: '/crm/partners/:id/edit', permission: 'edit_partners',
      async handler(ctx, req, res) {
        const partner = await requireEditablePartner(ctx, idParam(req));
        await respond(ctx.host, req, res, await formPage(ctx, partner, { ...partnerJson(partner) }));
      },
    },
    {
      method: 'post', path: '/crm/partners/:id', permission: 'edit_partners',
      async handler(ctx, req, res) {
        const partner = await requireEditablePartner(ctx, idParam(req));
        await saveOrRerender(ctx, req, res, partner, async () => {
          const lockVersion = lockVersionOf(formBody(req));
          const data = await readPartnerInput(ctx, formBody(req));
          const saved = await updatePartner(ctx, partner, data, lockVersion);
          await respondAfterChange(ctx.host, req, res, partnerUrl(saved.id), async () => ({ ...(await detailPage(ctx, req, saved, 'Partner saved.')), trigger: 'crm:partnerSaved' }));
        });
      },
    },
    {
      method: 'post', path: '/crm/partners/:id/delete', permission: 'delete_partners',
      async handler(ctx, req, res) {
        const partner = await requireEditablePartner(ctx, idParam(req), 'delete_partners');
        if (text(formBody(req), 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'required' });
        await deletePartner(ctx, partner);
        if (req.get('HX-Request')) return void res.set('HX-Redirect', '/crm/partners').status(204).end();
        if (req.accepts(['html', 'json']) === 'json') return void res.json({ deleted: partner.id });
        res.redirect(303, '/crm/partners');
      },
    },
    {
      // A10: an admin links host users to the partner; they then see only what is assigned to it.
      method: 'post', path: '/crm/partners/:id/users', permission: 'manage_crm_settings',
      async handler(ctx, req, res) {
        const partner = await requireVisiblePartner(ctx, idParam(req));
        const body = formBody(req);
        const linked = text(body, 'linked') !== '0';
        try {
          const name = await setPartnerUser(ctx, partner, Number(text(body, 'user_id')), linked);
          await respondAfterChange(ctx.host, req, res, partnerUrl(partner.id), async () => ({ ...(await detailPage(ctx, req, partner, linked ? `${name} is now a user of this partner.` : `${name} is no longer a user of this partner.`)), trigger: 'crm:partnerSaved' }));
        } catch (err) {
          if (err instanceof CrmError && err.status === 422) return respond(ctx.host, req, res, await detailPage(ctx, req, partner, err.message, 422, err.fieldErrors));
          throw err;
        }
      },
    },
    {
      method: 'get', path: '/crm/accounts/:id/partner', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        await assignResponse(ctx, req, res, await requireEditableAccount(ctx, idParam(req)));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/partner', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, idParam(req));
        const body = formBody(req);
        const rawPartner = text(body, 'partner_id');
        const partner = rawPartner ? await findVisiblePartner(ctx, /^\d{1,10}$/.test(rawPartner) ? Number(rawPartner) : 0) : null;
        if (rawPartner && !partner) throw notFound('Partner');
        try {
          const lockVersion = lockVersionOf(body);
          const errors = new FieldErrors();
          await partnerOfPartnerUser(ctx, errors, partner?.id ?? null, false, 'accounts');
          if (errors.any) throw invalid('The partner was not changed: fix the field marked below.', errors.errors);
          await assignAccountToPartner(ctx, account, partner, lockVersion);
        } catch (err) {
          if (err instanceof CrmError && (err.status === 409 || err.status === 422)) return assignResponse(ctx, req, res, account, { message: err.message, error: true, status: err.status, errors: err.fieldErrors });
          throw err;
        }
        const saved = (await findVisibleAccount(ctx, account.id)) ?? account;
        if (!isHtmx(req) && !wantsJson(req)) return void res.redirect(303, `/crm/accounts/${account.id}`);
        await assignResponse(ctx, req, res, saved, { message: partner ? `Assigned to ${partner.name}.` : 'No partner assigned.' });
      },
    },
  ];
}
