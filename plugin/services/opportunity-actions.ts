import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { CrmError, forbidden, invalid, notFound, staleRecord } from '../http/errors';
import { HostRefusal, type HostProject, type HostTask } from '../host';
import { FIELD_LABELS, type Opportunity, type OpportunityField } from '../models/opportunity';
import { applyAccountScope } from '../models/account';
import { accountScopeOf, findVisibleAccount } from './accounts';
import { findVisibleContact, visibleContactIds, visibleContactsQuery } from './contacts';
import { fieldRulesFor } from './field-rules';
import { FieldErrors, text, type FormInput } from './form';
import { changedFields, journal, type FieldChange } from './journal';
import { findVisiblePartner, partnerPicker } from './partners';
import { isUniqueViolation } from './relations';
import { requireVisibleTask } from './task-accounts';

/**
 * Issue #4 point 4, the opportunity page's sidebar actions: related tasks (link, create, unlink), the related
 * account, business roles (O1) and the partner. The caller has already checked edit rights
 * (requireEditableOpportunity); every change here is journaled on the opportunity.
 */

const LOCKED = 'This opportunity is sold and locked; unlock it to change it.';

function assertChangeable(opp: Opportunity): void {
  if (opp.is_locked) throw invalid(LOCKED);
}

const taskLabel = (task: HostTask) => `#${task.id} ${task.subject}`;

async function journalChange(trx: Knex.Transaction, ctx: CrmContext, opp: Opportunity, changes: FieldChange[]): Promise<void> {
  await journal(trx, { type: 'opportunity', id: opp.id, userId: ctx.user.id, action: 'update', changes });
}

/** Field rules (S5) of the user's role at the opportunity's status apply to these actions as to the edit form. */
async function assertFieldWritable(ctx: CrmContext, opp: Opportunity, field: OpportunityField, clearing: boolean): Promise<void> {
  const rule = (await fieldRulesFor(ctx, opp.project_id, opp.status_id)).get(field);
  if (rule === 'read_only' || rule === 'hidden') throw forbidden(`${FIELD_LABELS[field]} cannot be changed in this status.`);
  if (rule === 'required' && clearing) throw invalid(`${FIELD_LABELS[field]} is required in this status.`, { [field]: `${FIELD_LABELS[field]} is required in this status` });
}

/** `update … where lock_version = ?` with the journal, like the opportunity service's own saves. */
async function saveFields(ctx: CrmContext, opp: Opportunity, data: Partial<Record<OpportunityField, unknown>>, lockVersion: number): Promise<void> {
  if (!Number.isInteger(lockVersion)) throw invalid('The form is missing its lock version; reload the page.', { lock_version: 'missing' });
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_opportunities').where({ id: opp.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This opportunity');
    await journalChange(trx, ctx, opp, changedFields(opp as unknown as Record<string, unknown>, data, Object.keys(data)));
  });
}

const lockVersionOf = (input: FormInput) => (text(input, 'lock_version') === '' ? NaN : Number(text(input, 'lock_version')));

// ——— Related account ———

/** Sets or replaces the opportunity's account: one the user may see (404 otherwise, nothing stored). */
export async function setOpportunityAccount(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<string> {
  assertChangeable(opp);
  const errors = new FieldErrors();
  const accountId = errors.id(input, 'account_id', 'Account');
  if (!accountId && !errors.any) errors.add('account_id', 'Choose an account');
  if (errors.any) throw invalid('The account was not changed: fix the field marked below.', errors.errors);
  const account = await findVisibleAccount(ctx, accountId!);
  if (!account) throw notFound('Account');
  await assertFieldWritable(ctx, opp, 'account_id', false);
  await saveFields(ctx, opp, { account_id: account.id }, lockVersionOf(input));
  return account.name;
}

// ——— Partner ———

/** Assigns a partner (not deleted, visible to the user; 404 otherwise) or, with `partnerId` null, removes it. */
export async function setOpportunityPartner(ctx: CrmContext, opp: Opportunity, input: FormInput, remove: boolean): Promise<string | null> {
  assertChangeable(opp);
  let partner: { id: number; name: string } | null = null;
  if (!remove) {
    const errors = new FieldErrors();
    const partnerId = errors.id(input, 'partner_id', 'Partner');
    if (!partnerId && !errors.any) errors.add('partner_id', 'Choose a partner');
    if (errors.any) throw invalid('The partner was not assigned: fix the field marked below.', errors.errors);
    partner = await findVisiblePartner(ctx, partnerId!);
    if (!partner) throw notFound('Partner');
  }
  await assertFieldWritable(ctx, opp, 'partner_id', remove);
  await saveFields(ctx, opp, { partner_id: partner?.id ?? null }, lockVersionOf(input));
  return partner?.name ?? null;
}

// ——— Business roles (O1) ———

export interface BusinessRoleRow {
  id: number;
  contact_id: number;
  /** Null when the user may not see the contact: the role is listed without naming the person. */
  contact_name: string | null;
  description: string;
}

const fullName = (c: { first_name?: string | null; last_name?: string | null }) => [c.first_name, c.last_name].filter(Boolean).join(' ');

export async function businessRoles(ctx: CrmContext, opp: Opportunity): Promise<BusinessRoleRow[]> {
  const rows = await ctx.host.knex('crm_business_roles as r').join('crm_personal_contacts as c', 'c.id', 'r.contact_id')
    .where('r.opportunity_id', opp.id).orderBy([{ column: 'c.last_name' }, { column: 'c.first_name' }, { column: 'r.id' }])
    .select('r.id', 'r.contact_id', 'r.description', 'c.first_name', 'c.last_name');
  const visible = await visibleContactIds(ctx, rows.map((r) => Number(r.contact_id)));
  return rows.map((r) => ({
    id: Number(r.id), contact_id: Number(r.contact_id), description: String(r.description ?? ''),
    contact_name: visible.has(Number(r.contact_id)) ? fullName(r) : null,
  }));
}

/** Contacts for the role picker: the opportunity account's contacts first, then other visible ones (bounded). */
export async function roleContactOptions(ctx: CrmContext, opp: Opportunity): Promise<{ account: { id: number; name: string }[]; others: { id: number; name: string }[] }> {
  const q = (await visibleContactsQuery(ctx)).query.orderBy([{ column: 'c.last_name' }, { column: 'c.first_name' }, { column: 'c.id' }])
    .limit(300).select('c.id', 'c.first_name', 'c.last_name');
  const rows: { id: number; first_name: string; last_name: string }[] = await q;
  const all = rows.map((c) => ({ id: Number(c.id), name: fullName(c) }));
  const ofAccount = new Set(opp.account_id
    ? (await ctx.host.knex('crm_account_contacts').where({ account_id: opp.account_id }).pluck('contact_id')).map(Number)
    : []);
  return { account: all.filter((c) => ofAccount.has(c.id)), others: all.filter((c) => !ofAccount.has(c.id)) };
}

/** The journal names the contact by id: the history is read by people who may not see that contact. */
/** How an opportunity's history names a business role (field business_roles). */
export const roleLabel = (contactId: number, description: string) => `contact #${contactId}${description ? `: ${description}` : ''}`;

/** Adds a contact the user may see (404 otherwise) with a role description of at most 200 characters. */
export async function addBusinessRole(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<BusinessRoleRow> {
  assertChangeable(opp);
  const errors = new FieldErrors();
  const contactId = errors.id(input, 'contact_id', 'Contact');
  if (!contactId && !errors.errors.contact_id) errors.add('contact_id', 'Choose a contact');
  const description = errors.text(input, 'description', 'Role', { max: 200 });
  if (errors.any) throw invalid('The business role was not added: fix the fields marked below.', errors.errors);
  const contact = await findVisibleContact(ctx, contactId!);
  if (!contact) throw notFound('Contact');
  const name = fullName(contact);
  return ctx.host.knex.transaction(async (trx) => {
    const same = await trx('crm_business_roles').where({ opportunity_id: opp.id, contact_id: contact.id }).whereRaw('lower(description) = ?', [description.toLowerCase()]).first('id');
    if (same) throw invalid('The business role was not added: fix the fields marked below.', { contact_id: `${name} already has this role here` });
    const [row] = await trx('crm_business_roles').insert({ opportunity_id: opp.id, contact_id: contact.id, description }).returning('id');
    await journalChange(trx, ctx, opp, [{ field: 'business_roles', old: null, new: roleLabel(contact.id, description) }]);
    return { id: Number(row.id ?? row), contact_id: contact.id, contact_name: name, description };
  });
}

export async function removeBusinessRole(ctx: CrmContext, opp: Opportunity, roleId: number): Promise<void> {
  assertChangeable(opp);
  await ctx.host.knex.transaction(async (trx) => {
    const role = await trx('crm_business_roles').where({ id: roleId, opportunity_id: opp.id }).first('id', 'contact_id', 'description');
    if (!role) throw notFound('Business role');
    await trx('crm_business_roles').where({ id: role.id }).delete();
    await journalChange(trx, ctx, opp, [{ field: 'business_roles', old: roleLabel(Number(role.contact_id), String(role.description ?? '')), new: null }]);
  });
}

// ——— Related tasks ———

export interface OpportunityTaskRow {
  id: number;
  subject: string;
  status: string;
  due_date: string | null;
  project: string;
  url: string;
}

/** How many linked tasks the panel shows (the newest). */
export const OPPORTUNITY_TASK_LIMIT = 50;

/** The linked tasks the user may see (view_tasks in the task's project). */
export async function opportunityTasks(ctx: CrmContext, opp: Opportunity): Promise<OpportunityTaskRow[]> {
  const ids = (await ctx.host.knex('crm_opportunity_tasks').where({ opportunity_id: opp.id }).orderBy('task_id', 'desc')
    .limit(OPPORTUNITY_TASK_LIMIT).pluck('task_id')).map(Number);
  const projects = new Map<number, HostProject | null>();
  const rows: OpportunityTaskRow[] = [];
  const tasks = new Map((await ctx.host.tasksByIds(ids)).map((t) => [t.id, t]));
  for (const id of ids) {
    const task = tasks.get(id);
    if (!task) continue;
    if (!projects.has(task.projectId)) {
      const p = await ctx.host.projectById(task.projectId);
      projects.set(task.projectId, p && (await ctx.host.can(ctx.user, 'view_tasks', p)) ? p : null);
    }
    const project = projects.get(task.projectId);
    if (!project) continue;
    rows.push({ id: task.id, subject: task.subject, status: task.status, due_date: task.dueDate, project: project.name, url: ctx.host.urls.task(task) });
  }
  return rows;
}

/** The opportunity's project, when the user may add tasks there (where "New task" creates one). */
export async function taskProjectOf(ctx: CrmContext, opp: Opportunity): Promise<HostProject | null> {
  const project = await ctx.host.projectById(opp.project_id);
  return project && !project.isTemplate && (await ctx.host.can(ctx.user, 'add_tasks', project)) ? project : null;
}

/** Tasks the user may see whose subject contains `term`: the host's search, each result checked again here. */
export async function searchVisibleTasks(ctx: CrmContext, term: string, limit = 10): Promise<HostTask[]> {
  const out: HostTask[] = [];
  const candidates = await ctx.host.searchTasks(ctx.user, term, limit);
  const current = new Map((await ctx.host.tasksByIds(candidates.map((c) => c.id))).map((t) => [t.id, t]));
  for (const candidate of candidates) {
    const task = current.get(candidate.id);
    const project = task ? await ctx.host.projectById(task.projectId) : null;
    if (task && project && (await ctx.host.can(ctx.user, 'view_tasks', project))) out.push(task);
  }
  return out;
}

/** A refused link with the candidates of a subject search, for the form to offer. */
export class TaskChoice extends CrmError {
  constructor(message: string, fieldErrors: Record<string, string>, readonly candidates: HostTask[]) {
    super(422, message, fieldErrors);
  }
}

/**
 * Links an existing task: `task` is its number ("12" or "#12"; a task the user cannot see is 404) or words of
 * its subject (one visible match is linked; several are offered to choose from; none is a 422).
 */
export async function linkOpportunityTask(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<HostTask> {
  assertChangeable(opp);
  const raw = (text(input, 'task_id') || text(input, 'task')).replace(/^#/, '').trim();
  const refuse = (field: string, message: string) => invalid('The task was not linked: fix the field marked below.', { [field]: message });
  if (!raw) throw refuse('task', 'Enter a task number or words of its subject');
  let task: HostTask;
  if (/^\d+$/.test(raw)) {
    if (raw.length > 10) throw notFound('Task');
    task = (await requireVisibleTask(ctx, Number(raw))).task;
  } else {
    if (raw.length > 100) throw refuse('task', 'Search with at most 100 characters');
    const found = await searchVisibleTasks(ctx, raw, 10);
    if (found.length === 0) throw refuse('task', `No task you can see has “${raw}” in its subject`);
    if (found.length > 1) throw new TaskChoice('Several tasks match: choose one below.', { task: `${found.length}${found.length === 10 ? '+' : ''} tasks match “${raw}”` }, found);
    task = found[0];
  }
  try {
    await ctx.host.knex.transaction(async (trx) => {
      if (await trx('crm_opportunity_tasks').where({ opportunity_id: opp.id, task_id: task.id }).first('task_id')) {
        throw refuse('task', `Task #${task.id} is already linked to this opportunity`);
      }
      await trx('crm_opportunity_tasks').insert({ opportunity_id: opp.id, task_id: task.id });
      await journalChange(trx, ctx, opp, [{ field: 'tasks', old: null, new: taskLabel(task) }]);
    });
  } catch (err) {
    if (!(err instanceof CrmError) && isUniqueViolation(err)) throw refuse('task', `Task #${task.id} is already linked to this opportunity`);
    throw err;
  }
  return task;
}

/** Creates a host task in the opportunity's project (the user must be allowed to add tasks there) and links it. */
export async function createOpportunityTask(ctx: CrmContext, opp: Opportunity, input: FormInput): Promise<HostTask> {
  assertChangeable(opp);
  const project = await taskProjectOf(ctx, opp);
  if (!project) throw forbidden('You may not add tasks in this opportunity’s project.');
  const errors = new FieldErrors();
  const subject = errors.text(input, 'subject', 'Subject', { max: 255, required: true });
  const assigneeId = errors.id(input, 'assignee_id', 'Assignee');
  if (assigneeId && !(await ctx.host.userById(assigneeId))) errors.add('assignee_id', 'Choose an assignee from the list');
  const dueDate = errors.date(input, 'due_date', 'Due date');
  if (errors.any) throw invalid('The task was not created: fix the fields marked below.', errors.errors);
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      const task = await ctx.host.createTask({ projectId: project.id, subject, assigneeId, dueDate }, trx);
      await trx('crm_opportunity_tasks').insert({ opportunity_id: opp.id, task_id: task.id });
      await journalChange(trx, ctx, opp, [{ field: 'tasks', old: null, new: `${taskLabel(task)} (new)` }]);
      return task;
    });
  } catch (err) {
    if (err instanceof HostRefusal) throw invalid(`The task was not created: ${err.message}`, { subject: err.message });
    throw err;
  }
}

/** Unlinks a task (the host task itself stays). A task the user cannot see, or one not linked here: 404. */
export async function unlinkOpportunityTask(ctx: CrmContext, opp: Opportunity, taskId: number): Promise<HostTask> {
  assertChangeable(opp);
  const { task } = await requireVisibleTask(ctx, taskId);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_opportunity_tasks').where({ opportunity_id: opp.id, task_id: task.id }).delete();
    if (n === 0) throw notFound('Task link');
    await journalChange(trx, ctx, opp, [{ field: 'tasks', old: taskLabel(task), new: null }]);
  });
  return task;
}

// ——— Page parts (OPPORTUNITY_PANELS / OPPORTUNITY_SIDEBAR) ———

export type ActionPart = 'task' | 'account' | 'role' | 'partner';

/** A refused action's input and messages, shown again in its own form when the page is re-rendered (422/409). */
export interface PartForm {
  part: ActionPart;
  values: FormInput;
  errors: Record<string, string>;
  message: string;
  candidates: HostTask[];
}

/**
 * The page parts are loaded with the request's context only, so a refused form's state travels keyed on that
 * context object (a fresh copy per re-render): no global state, nothing kept after the response.
 */
const partForms = new WeakMap<CrmContext, PartForm>();

export function withPartForm(ctx: CrmContext, form: PartForm): CrmContext {
  const copy = { ...ctx };
  partForms.set(copy, form);
  return copy;
}

function formOf(ctx: CrmContext, part: ActionPart): { values: FormInput; errors: Record<string, string>; message: string | null; candidates: HostTask[]; open: boolean } {
  const form = partForms.get(ctx);
  return form && form.part === part
    ? { values: form.values, errors: form.errors, message: form.message, candidates: form.candidates, open: true }
    : { values: {}, errors: {}, message: null, candidates: [], open: false };
}

/** Accounts for the "related account" picker: those the user may see, by name, bounded. */
async function accountOptions(ctx: CrmContext): Promise<{ id: number; name: string }[]> {
  const q = ctx.host.knex('crm_accounts as a').orderBy([{ column: 'a.name' }, { column: 'a.id' }]).limit(500).select('a.id', 'a.name');
  applyAccountScope(q, await accountScopeOf(ctx));
  return (await q).map((r) => ({ id: Number(r.id), name: String(r.name) }));
}

const editable = (opp: Opportunity, canEdit: boolean) => canEdit && !opp.is_locked;

export async function tasksPanelLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  return { tasks: await opportunityTasks(ctx, opp), editable: editable(opp, canEdit) };
}

export async function rolesPanelLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  return { roles: await businessRoles(ctx, opp), editable: editable(opp, canEdit) };
}

export async function taskActionLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  if (!editable(opp, canEdit)) return { editable: false };
  const taskProject = await taskProjectOf(ctx, opp);
  return { editable: true, taskProject, users: taskProject ? (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })) : [], form: formOf(ctx, 'task') };
}

/** A field that is read-only or hidden for the user's role at this status gets no sidebar form (S5). */
async function fieldEditable(ctx: CrmContext, opp: Opportunity, field: OpportunityField): Promise<boolean> {
  const rule = (await fieldRulesFor(ctx, opp.project_id, opp.status_id)).get(field);
  return rule !== 'read_only' && rule !== 'hidden';
}

export async function accountActionLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  if (!editable(opp, canEdit) || !(await fieldEditable(ctx, opp, 'account_id'))) return { editable: false };
  return { editable: true, accounts: await accountOptions(ctx), form: formOf(ctx, 'account') };
}

export async function roleActionLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  if (!editable(opp, canEdit)) return { editable: false };
  return { editable: true, contacts: await roleContactOptions(ctx, opp), form: formOf(ctx, 'role') };
}

export async function partnerActionLocals(ctx: CrmContext, opp: Opportunity, canEdit: boolean) {
  if (!editable(opp, canEdit) || !(await fieldEditable(ctx, opp, 'partner_id'))) return { editable: false };
  return { editable: true, partners: await partnerPicker(ctx, opp.partner_id), form: formOf(ctx, 'partner') };
}
