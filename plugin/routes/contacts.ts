import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, inputShownAgain, invalid, notFound } from '../http/errors';
import { isHtmx, renderView, respond, respondAfterChange, wantsJson, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import type { Account } from '../models/account';
import { contactName, type PersonalContact } from '../models/contact';
import { canEditAccount, findVisibleAccount, linkedProjectIds, requireEditableAccount } from '../services/accounts';
import {
  accountsOfContact, canChangeContact, contactFilterParams, contactFormOptions, contactsOfAccount, contactTypeId, createContact,
  createContactTask, deleteContact, listContacts, parseContactFilters, readContactInput, requireEditableContact, requireVisibleContact,
  taskProject, unlinkContactFromAccount, updateContact, linkContactToAccount,
} from '../services/contacts';
import { positiveId, text, type FormInput, lockVersionOf } from '../services/form';
import { history } from '../services/journal';
import { presentHistory } from '../services/history-display';
import { attachmentListLocals, CONTACT_ATTACHMENTS } from './attachments';
import { pageParam } from '../services/pagination';
import { findVisiblePartner } from '../services/partners';
import { leftOutJson, withoutInvisibleTargets } from '../services/list-filters';
import { queryString } from '../services/saved-filters';
import { loadSettings } from '../services/settings';
import { seenReference } from '../services/seen';

const SLUG = 'personal-contacts';
const listBase = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/${SLUG}` : `/crm/${SLUG}`);
export const contactUrl = (id: number) => `/crm/${SLUG}/${id}`;
const accountPeopleUrl = (id: number) => `/crm/accounts/${id}?tab=people`;

export const CONTACT_TABS = [{ id: 'data', label: 'Data' }, { id: 'history', label: 'History' }, { id: 'files', label: 'Files' }] as const;

/** The contact as stored: what its edit form starts from, a partner the editor may not see included (it is kept on saving). */
function contactFields(c: PersonalContact) {
  return {
    id: c.id, name: contactName(c), first_name: c.first_name, last_name: c.last_name, contact_type_id: c.contact_type_id, job_title: c.job_title,
    email: c.email, phone: c.phone, city: c.city, country: c.country, note: c.note, partner_id: c.partner_id, project_id: c.project_id,
    owner_id: c.owner_id, lock_version: c.lock_version,
  };
}

/**
 * The contact as this reader may read it, `partner` and `project` being its own where they may see them, as its page
 * names them: one they may not see is not confirmed by its id but is `partner_hidden` / `project_hidden`, as the
 * list's JSON gives a partner (listContacts) and the opportunity and activity JSON an account.
 */
function contactJson(c: PersonalContact, partner: { id: number; name: string } | null, project: { id: number } | null, hiddenProject: boolean) {
  return {
    ...contactFields(c), ...seenReference('partner', c.partner_id, partner !== null), partner: partner ? { id: partner.id, name: partner.name } : null,
    project_id: project?.id ?? null, project_hidden: hiddenProject, url: contactUrl(c.id),
  };
}

async function listPage(ctx: CrmContext, req: Request): Promise<PageResponse> {
  const { f: filters, leftOut } = await withoutInvisibleTargets(ctx, parseContactFilters(req.query as FormInput));
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listContacts(ctx, filters, pageParam(req), Number(settings.page_size));
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const options = await contactFormOptions(ctx, filters.partner);
  return {
    title: ctx.project ? `${ctx.project.name} · Personal contacts` : 'Personal contacts',
    view: 'contacts/index',
    project: ctx.project,
    locals: {
      rows, meta, filters, params: contactFilterParams(filters), users, options, base: listBase(ctx), queryString, project: ctx.project, leftOut,
      canAdd: await ctx.host.can(ctx.user, 'add_personal_contacts', ctx.project),
    },
    json: {
      personal_contacts: rows.map((r) => ({ ...r, name: contactName(r), owner: r.owner_id ? users.get(r.owner_id) ?? null : null, url: contactUrl(r.id) })),
      pagination: meta, filters: contactFilterParams(filters),
      ...leftOutJson(leftOut),
    },
  };
}

async function formPage(ctx: CrmContext, contact: PersonalContact | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const options = await contactFormOptions(ctx, positiveId(text(values, 'partner_id')), contact?.contact_type_id ?? null);
  const projects = contact || ctx.project ? [] : await ctx.host.projectsWhere(ctx.user, 'add_personal_contacts');
  const accountId = Number(text(values, 'account_id'));
  const account = !contact && accountId ? await findVisibleAccount(ctx, accountId) : null;
  const action = contact ? contactUrl(contact.id) : listBase(ctx);
  return {
    title: contact ? `Edit ${contactName(contact)}` : 'New personal contact',
    view: 'contacts/form',
    project: ctx.project,
    status,
    locals: { contact, values, errors, message, options, projects, account, action, project: ctx.project, base: listBase(ctx) },
    json: { error: message, fields: errors },
  };
}

async function detailPage(ctx: CrmContext, req: Request, contact: PersonalContact, message: string | null = null, status = 200, errors: Record<string, string> = {}): Promise<PageResponse> {
  const tabId = text(req.query as FormInput, 'tab');
  const tab = CONTACT_TABS.find((t) => t.id === tabId) ?? CONTACT_TABS[0];
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const knex = ctx.host.knex;
  const type = contact.contact_type_id ? await knex('crm_contact_types').where({ id: contact.contact_type_id }).first('name') : null;
  const partner = contact.partner_id ? await findVisiblePartner(ctx, contact.partner_id) : null;
  // A contact is also seen through an account it works for: its project and partner are named only to those who
  // may see them, the others learn that there is one, not which.
  const stored = contact.project_id ? await ctx.host.projectById(contact.project_id) : null;
  const project = stored && (await ctx.host.can(ctx.user, 'view_personal_contacts', stored)) ? stored : null;
  // Decided from the project as stored in the host: one deleted there is not "hidden", as nobody may see it.
  const hiddenProject = Boolean(stored) && !project;
  const accounts = await accountsOfContact(ctx, contact);
  const log = tab.id === 'history' ? await presentHistory(ctx, await history(knex, 'personal_contact', contact.id, pageParam(req), 20)) : null;
  const files = tab.id === 'files' ? await attachmentListLocals(ctx, CONTACT_ATTACHMENTS, contact) : null;
  const canEdit = await canChangeContact(ctx, contact, 'edit');
  const canDelete = await canChangeContact(ctx, contact, 'delete');
  const taskIn = await taskProject(ctx, contact);
  return {
    title: contactName(contact),
    view: 'contacts/show',
    status,
    locals: { contact, name: contactName(contact), tab, tabs: CONTACT_TABS, users, type, partner, project, hiddenProject, accounts, log, files, canEdit, canDelete, taskIn, message, errors },
    json: {
      personal_contact: { ...contactJson(contact, partner, project, hiddenProject), type: type?.name ?? null, accounts },
      can_edit: canEdit, error: status >= 400 ? message : undefined, fields: status >= 400 ? errors : undefined,
    },
  };
}

/** Runs a form save; a 422 or 409 re-renders the form with the user's input and the messages. */
async function saveOrRerender(ctx: CrmContext, req: Request, res: Response, contact: PersonalContact | null, save: () => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
      return respond(ctx.host, req, res, await formPage(ctx, contact, inputShownAgain(formBody(req), err, contact), err.fieldErrors, err.message, err.status));
    }
    throw err;
  }
}

const listHandler = async (ctx: CrmContext, req: Request, res: Response) => respond(ctx.host, req, res, await listPage(ctx, req));

/** "New employee" (from an account), "new consultant" (from a partner) or a standalone contact. */
const newHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  const q = req.query as FormInput;
  const values: FormInput = { account_id: text(q, 'account_id'), partner_id: text(q, 'partner_id'), owner_id: String(ctx.user.id) };
  const typeName = text(q, 'contact_type');
  if (typeName) values.contact_type_id = String((await contactTypeId(ctx.host.knex, typeName)) ?? '');
  // The new contact lands where the account (or partner) it comes from lives, when the user may add there.
  const addable = new Set((await ctx.host.projectsWhere(ctx.user, 'add_personal_contacts')).map((p) => p.id));
  const account = values.account_id ? await findVisibleAccount(ctx, Number(values.account_id)) : null;
  if (values.account_id && !account) throw notFound('Account');
  const partner = values.partner_id ? await findVisiblePartner(ctx, Number(values.partner_id)) : null;
  if (values.partner_id && !partner) throw notFound('Partner');
  const from = account ? (await linkedProjectIds(ctx.host.knex, account.id)).find((id) => addable.has(id)) : partner?.project_id && addable.has(partner.project_id) ? partner.project_id : undefined;
  if (from) values.project_id = String(from);
  await respond(ctx.host, req, res, await formPage(ctx, null, values));
};

const createHandler = async (ctx: CrmContext, req: Request, res: Response) => {
  await saveOrRerender(ctx, req, res, null, async () => {
    const input = await readContactInput(ctx, formBody(req), null);
    let project = ctx.project;
    const projectId = text(formBody(req), 'project_id');
    if (!project && projectId) {
      project = (await ctx.host.projectsWhere(ctx.user, 'add_personal_contacts')).find((p) => String(p.id) === projectId) ?? null;
      if (!project) throw invalid('The contact was not saved: fix the fields marked below.', { project_id: 'Choose a project where you may add contacts' });
    }
    const contact = await createContact(ctx, input, project);
    res.set('HX-Trigger', 'crm:contactSaved');
    const back = input.account ? accountPeopleUrl(input.account.id) : contactUrl(contact.id);
    if (req.get('HX-Request')) res.set('HX-Redirect', back);
    await respondAfterChange(ctx.host, req, res, back, async () => ({ ...(await detailPage(ctx, req, contact)), status: 201 }));
  });
};

/** The account's People tab alone (the htmx target of its forms), or the whole page without JavaScript. */
async function peopleResponse(ctx: CrmContext, req: Request, res: Response, account: Account, outcome: { message?: string; errors?: Record<string, string>; values?: FormInput; status?: number }): Promise<void> {
  const status = outcome.status ?? 200;
  const contacts = await contactsOfAccount(ctx, account.id);
  const locals = {
    account, contacts, canEdit: true, canAddContacts: await ctx.host.can(ctx.user, 'add_personal_contacts'),
    peopleMessage: outcome.message ?? null, peopleErrors: outcome.errors ?? {}, peopleValues: outcome.values ?? {},
  };
  res.vary('HX-Request');
  if (wantsJson(req)) return void res.status(status).json(status >= 400 ? { error: outcome.message, fields: outcome.errors } : { account_id: account.id, contacts });
  if (isHtmx(req)) {
    if (status < 400) res.set('HX-Trigger', 'crm:accountSaved');
    return void res.status(status).type('html').send(await renderView('accounts/tabs/people', { ...locals, csrfToken: ctx.host.csrfToken(req) }));
  }
  if (status < 400) return void res.redirect(303, accountPeopleUrl(account.id));
  await respond(ctx.host, req, res, { title: account.name, view: 'contacts/account-people', status, locals, json: null });
}

async function peopleChange(ctx: CrmContext, req: Request, res: Response, change: (account: Account) => Promise<string>): Promise<void> {
  const account = await requireEditableAccount(ctx, idParam(req));
  try {
    const message = await change(account);
    await peopleResponse(ctx, req, res, account, { message });
  } catch (err) {
    if (err instanceof CrmError && err.status === 422) return peopleResponse(ctx, req, res, account, { message: err.message, errors: err.fieldErrors, values: formBody(req), status: 422 });
    throw err;
  }
}

export function contactRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: `/crm/${SLUG}`, permission: 'view_personal_contacts', handler: listHandler },
    { method: 'get', path: `/projects/:identifier/crm/${SLUG}`, permission: 'view_personal_contacts', handler: listHandler },
    { method: 'get', path: `/crm/${SLUG}/new`, permission: 'add_personal_contacts', handler: newHandler },
    { method: 'get', path: `/projects/:identifier/crm/${SLUG}/new`, permission: 'add_personal_contacts', handler: newHandler },
    { method: 'post', path: `/crm/${SLUG}`, permission: 'add_personal_contacts', handler: createHandler },
    { method: 'post', path: `/projects/:identifier/crm/${SLUG}`, permission: 'add_personal_contacts', handler: createHandler },
    {
      method: 'get', path: `/crm/${SLUG}/:id`, permission: 'view_personal_contacts',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await detailPage(ctx, req, await requireVisibleContact(ctx, idParam(req))));
      },
    },
    {
      method: 'get', path: `/crm/${SLUG}/:id/edit`, permission: 'edit_personal_contacts',
      async handler(ctx, req, res) {
        const contact = await requireEditableContact(ctx, idParam(req));
        await respond(ctx.host, req, res, await formPage(ctx, contact, { ...contactFields(contact) }));
      },
    },
    {
      method: 'post', path: `/crm/${SLUG}/:id`, permission: 'edit_personal_contacts',
      async handler(ctx, req, res) {
        const contact = await requireEditableContact(ctx, idParam(req));
        await saveOrRerender(ctx, req, res, contact, async () => {
          const lockVersion = lockVersionOf(formBody(req));
          const input = await readContactInput(ctx, formBody(req), contact);
          const saved = await updateContact(ctx, contact, input, lockVersion);
          await respondAfterChange(ctx.host, req, res, contactUrl(saved.id), async () => ({ ...(await detailPage(ctx, req, saved, 'Contact saved.')), trigger: 'crm:contactSaved' }));
        });
      },
    },
    {
      method: 'post', path: `/crm/${SLUG}/:id/delete`, permission: 'delete_personal_contacts',
      async handler(ctx, req, res) {
        const contact = await requireEditableContact(ctx, idParam(req), 'delete');
        if (text(formBody(req), 'confirm') !== '1') throw invalid('Confirm the deletion.', { confirm: 'required' });
        await deleteContact(ctx, contact);
        if (req.get('HX-Request')) return void res.set('HX-Redirect', `/crm/${SLUG}`).status(204).end();
        if (req.accepts(['html', 'json']) === 'json') return void res.json({ deleted: contact.id });
        res.redirect(303, `/crm/${SLUG}`);
      },
    },
    {
      // "New task" on a contact: a host task in the contact's project (add_tasks there is checked in the service).
      method: 'post', path: `/crm/${SLUG}/:id/tasks`, permission: 'view_personal_contacts',
      async handler(ctx, req, res) {
        const contact = await requireVisibleContact(ctx, idParam(req));
        try {
          const task = await createContactTask(ctx, contact, formBody(req));
          if (wantsJson(req)) return void res.status(201).json({ task: { id: task.id, subject: task.subject, project_id: task.projectId, url: ctx.host.urls.task(task) } });
          await respondAfterChange(ctx.host, req, res, contactUrl(contact.id), async () => ({ ...(await detailPage(ctx, req, contact, `Task #${task.id} created: ${task.subject}`)), trigger: 'crm:contactSaved' }));
        } catch (err) {
          if (err instanceof CrmError && err.status === 422) return respond(ctx.host, req, res, await detailPage(ctx, req, contact, err.message, 422, err.fieldErrors));
          throw err;
        }
      },
    },
    {
      // A9: link an existing contact to an account (People tab), by id or name.
      method: 'post', path: '/crm/accounts/:id/contacts', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        await peopleChange(ctx, req, res, async (account) => `${contactName(await linkContactToAccount(ctx, account, formBody(req)))} linked.`);
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/contacts/:contactId/unlink', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        await peopleChange(ctx, req, res, async (account) => `${contactName(await unlinkContactFromAccount(ctx, account, idParam(req, 'contactId')))} unlinked.`);
      },
    },
    {
      // The account page's sidebar asks here (htmx, on load) whether to offer "New employee".
      method: 'get', path: '/crm/accounts/:id/actions/employee', permission: 'view_accounts',
      async handler(ctx, req, res) {
        const account = await findVisibleAccount(ctx, idParam(req));
        if (!account) throw notFound('Account');
        const may = (await canEditAccount(ctx, account)) && (await ctx.host.can(ctx.user, 'add_personal_contacts'));
        res.vary('HX-Request');
        if (wantsJson(req)) return void res.json({ account_id: account.id, may_add_employee: may });
        if (!isHtmx(req)) return void res.redirect(303, may ? `/crm/${SLUG}/new?account_id=${account.id}&contact_type=Employee` : `/crm/accounts/${account.id}`);
        res.type('html').send(may ? await renderView('contacts/employee-action', { account }) : '');
      },
    },
  ];
}
