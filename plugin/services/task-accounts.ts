import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { HostRefusal, type HostProject, type HostTask } from '../host';
import { CrmError, invalid, notFound } from '../http/errors';
import { applyAccountScope, type Account } from '../models/account';
import { accountScopeOf, linkedProjectIds } from './accounts';
import { FieldErrors, type FormInput, validId } from './form';
import { journal } from './journal';
import { isUniqueViolation } from './relations';

/**
 * A8: host tasks linked to accounts. The first account linked to a task is its primary account; a star makes
 * another one primary. A partial unique index (migration 005) keeps it to one primary per task.
 */

/** The account's linked projects where this user may add tasks: where "New task" may create one. */
export async function taskProjects(ctx: CrmContext, account: Account): Promise<HostProject[]> {
  const out: HostProject[] = [];
  for (const id of await linkedProjectIds(ctx.host.knex, account.id)) {
    const p = await ctx.host.projectById(id);
    if (p && !p.isTemplate && (await ctx.host.can(ctx.user, 'add_tasks', p))) out.push(p);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** A task this user may see (view_tasks in its project), or 404: tasks are link targets like accounts. */
export async function requireVisibleTask(ctx: CrmContext, taskId: number): Promise<{ task: HostTask; project: HostProject }> {
  const task = validId(taskId) ? await ctx.host.taskById(taskId) : null;
  const project = task ? await ctx.host.projectById(task.projectId) : null;
  if (!task || !project || !(await ctx.host.can(ctx.user, 'view_tasks', project))) throw notFound('Task');
  return { task, project };
}

const label = (task: HostTask) => `#${task.id} ${task.subject}`;

/** Inserts the link; primary when the task has none yet. Runs inside the caller's transaction. */
async function insertLink(trx: Knex.Transaction, taskId: number, accountId: number): Promise<boolean> {
  const hasPrimary = Boolean(await trx('crm_task_accounts').where({ task_id: taskId, is_primary: true }).first('account_id'));
  await trx('crm_task_accounts').insert({ task_id: taskId, account_id: accountId, is_primary: !hasPrimary });
  return !hasPrimary;
}

export interface NewAccountTask {
  project: HostProject;
  subject: string;
  assigneeId: number | null;
  dueDate: string | null;
}

/** Reads the "New task" form; the project must be one of `taskProjects` (422 otherwise). */
export async function readNewTask(ctx: CrmContext, account: Account, input: FormInput): Promise<NewAccountTask> {
  const errors = new FieldErrors();
  const projects = await taskProjects(ctx, account);
  const projectId = errors.id(input, 'project_id', 'Project');
  const project = projects.find((p) => p.id === projectId);
  if (!project) errors.add('project_id', 'Choose one of the account’s projects where you may add tasks');
  const subject = errors.text(input, 'subject', 'Subject', { max: 255, required: true });
  const assigneeId = errors.id(input, 'assignee_id', 'Assignee');
  if (assigneeId && !(await ctx.host.userById(assigneeId))) errors.add('assignee_id', 'Choose an assignee from the list');
  const dueDate = errors.date(input, 'due_date', 'Due date');
  if (errors.any || !project) throw invalid('The task was not created: fix the fields marked below.', errors.errors);
  return { project, subject, assigneeId, dueDate };
}

/** Creates the host task and links it to the account (primary: it is the task's first account), in one transaction. */
export async function createAccountTask(ctx: CrmContext, account: Account, input: NewAccountTask): Promise<HostTask> {
  try {
    return await ctx.host.knex.transaction(async (trx) => {
      const task = await ctx.host.createTask({ projectId: input.project.id, subject: input.subject, assigneeId: input.assigneeId, dueDate: input.dueDate }, trx);
      await insertLink(trx, task.id, account.id);
      await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'tasks', old: null, new: `${label(task)} (primary)` }] });
      return task;
    });
  } catch (err) {
    if (err instanceof HostRefusal) throw invalid(`The task was not created: ${err.message}`, { subject: err.message });
    throw err;
  }
}

/** Links an existing task the user may see. Returns whether the account became its primary account. */
export async function linkExistingTask(ctx: CrmContext, account: Account, taskIdText: string): Promise<{ task: HostTask; primary: boolean }> {
  const raw = taskIdText.replace(/^#/, '').trim();
  if (!raw) throw invalid('The task was not linked: fix the fields marked below.', { task_id: 'Enter the task number' });
  if (!/^\d{1,10}$/.test(raw)) throw invalid('The task was not linked: fix the fields marked below.', { task_id: 'A task number is a whole number, such as 12' });
  const { task } = await requireVisibleTask(ctx, Number(raw));
  const attempt = () => ctx.host.knex.transaction(async (trx) => {
    if (await trx('crm_task_accounts').where({ task_id: task.id, account_id: account.id }).first('task_id')) {
      throw invalid('The task was not linked: fix the fields marked below.', { task_id: `Task #${task.id} is already linked to this account` });
    }
    const primary = await insertLink(trx, task.id, account.id);
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'tasks', old: null, new: primary ? `${label(task)} (primary)` : label(task) }] });
    return { task, primary };
  });
  try {
    return await attempt();
  } catch (err) {
    // Someone linked the task's first account at the same moment: theirs is primary, link ours as secondary.
    if (!(err instanceof CrmError) && isUniqueViolation(err)) return attempt();
    throw err;
  }
}

async function requireLink(knex: Knex, taskId: number, accountId: number) {
  const link = await knex('crm_task_accounts').where({ task_id: taskId, account_id: accountId }).first();
  if (!link) throw notFound('Task link');
  return link;
}

/** The star: this account becomes the task's primary account, the previous one stops being it. */
export async function makePrimary(ctx: CrmContext, account: Account, taskId: number): Promise<HostTask> {
  const { task } = await requireVisibleTask(ctx, taskId);
  await requireLink(ctx.host.knex, task.id, account.id);
  await ctx.host.knex.transaction(async (trx) => {
    const previous = await trx('crm_task_accounts').where({ task_id: task.id, is_primary: true }).first('account_id');
    if (previous && Number(previous.account_id) === account.id) return;
    // Clear first, then set: the unique index allows one primary per task at every moment.
    await trx('crm_task_accounts').where({ task_id: task.id, is_primary: true }).update({ is_primary: false });
    const n = await trx('crm_task_accounts').where({ task_id: task.id, account_id: account.id }).update({ is_primary: true });
    if (n === 0) throw notFound('Task link');
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'primary_task', old: null, new: label(task) }] });
    if (previous) {
      await journal(trx, { type: 'account', id: Number(previous.account_id), userId: ctx.user.id, action: 'update', changes: [{ field: 'primary_task', old: label(task), new: null }] });
    }
  });
  return task;
}

/** Unlinks the task; if this account was primary, the longest-linked remaining account takes over. */
export async function unlinkTask(ctx: CrmContext, account: Account, taskId: number): Promise<HostTask> {
  const { task } = await requireVisibleTask(ctx, taskId);
  await ctx.host.knex.transaction(async (trx) => {
    const link = await requireLink(trx, task.id, account.id);
    await trx('crm_task_accounts').where({ task_id: task.id, account_id: account.id }).delete();
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'tasks', old: label(task), new: null }] });
    if (link.is_primary) {
      const next = await trx('crm_task_accounts').where({ task_id: task.id }).orderBy([{ column: 'created_at' }, { column: 'account_id' }]).first('account_id');
      if (next) {
        await trx('crm_task_accounts').where({ task_id: task.id, account_id: next.account_id }).update({ is_primary: true });
        await journal(trx, { type: 'account', id: Number(next.account_id), userId: ctx.user.id, action: 'update', changes: [{ field: 'primary_task', old: null, new: label(task) }] });
      }
    }
  });
  return task;
}

export interface AccountTaskRow {
  id: number;
  subject: string;
  status: string;
  due_date: string | null;
  project: { id: number; name: string; identifier: string };
  url: string;
  is_primary: boolean;
  /** The task's primary account when it is another one the user may see. */
  primary_account: { id: number; name: string } | null;
}

/** How many task links the tab shows (the newest); the page says how many there are in all. */
export const TASK_LIST_LIMIT = 50;

/** The account's newest linked tasks the user may see, with their primary account. */
export async function accountTasks(ctx: CrmContext, account: Account): Promise<{ rows: AccountTaskRow[]; total: number }> {
  const knex = ctx.host.knex;
  const links = await knex('crm_task_accounts').where({ account_id: account.id })
    .orderBy([{ column: 'created_at', order: 'desc' }, { column: 'task_id', order: 'desc' }]).limit(TASK_LIST_LIMIT).select('task_id', 'is_primary');
  const [{ total }] = await knex('crm_task_accounts').where({ account_id: account.id }).count({ total: '*' });
  const taskIds = links.map((l) => Number(l.task_id));
  // Other accounts that are primary for these tasks, in one query, limited to accounts the user may see.
  const primaries = knex('crm_task_accounts as ta').join('crm_accounts as a', 'a.id', 'ta.account_id')
    .whereIn('ta.task_id', taskIds.length ? taskIds : [0]).where('ta.is_primary', true).whereNot('ta.account_id', account.id)
    .select('ta.task_id', 'a.id', 'a.name');
  applyAccountScope(primaries, await accountScopeOf(ctx));
  const primaryOf = new Map((await primaries).map((r) => [Number(r.task_id), { id: Number(r.id), name: String(r.name) }]));
  const visible = new Map<number, HostProject | null>();
  const rows: AccountTaskRow[] = [];
  const tasks = new Map((await ctx.host.tasksByIds(taskIds)).map((t) => [t.id, t]));
  for (const link of links) {
    const task = tasks.get(Number(link.task_id));
    if (!task) continue;
    if (!visible.has(task.projectId)) {
      const p = await ctx.host.projectById(task.projectId);
      visible.set(task.projectId, p && (await ctx.host.can(ctx.user, 'view_tasks', p)) ? p : null);
    }
    const project = visible.get(task.projectId);
    if (!project) continue;
    rows.push({
      id: task.id, subject: task.subject, status: task.status, due_date: task.dueDate, url: ctx.host.urls.task(task),
      project: { id: project.id, name: project.name, identifier: project.identifier },
      is_primary: Boolean(link.is_primary), primary_account: link.is_primary ? null : primaryOf.get(task.id) ?? null,
    });
  }
  return { rows, total: Number(total) };
}

/** The task's linked accounts this user may see, primary first (for task lists in the host). */
export async function taskAccounts(ctx: CrmContext, taskId: number) {
  const { task, project } = await requireVisibleTask(ctx, taskId);
  const q = ctx.host.knex('crm_task_accounts as ta').join('crm_accounts as a', 'a.id', 'ta.account_id').where('ta.task_id', task.id)
    .orderBy([{ column: 'ta.is_primary', order: 'desc' }, { column: 'a.name' }, { column: 'a.id' }])
    .select('a.id', 'a.name', 'a.customer_number', 'a.city', 'a.country', 'a.account_manager_id', 'ta.is_primary', 'ta.created_at');
  applyAccountScope(q, await accountScopeOf(ctx));
  const accounts = (await q).map((r) => ({
    id: Number(r.id), name: String(r.name), customer_number: r.customer_number ?? null, city: String(r.city ?? ''), country: String(r.country ?? ''),
    account_manager_id: r.account_manager_id === null ? null : Number(r.account_manager_id), is_primary: Boolean(r.is_primary), url: `/crm/accounts/${r.id}`,
  }));
  return {
    task: { id: task.id, subject: task.subject, status: task.status, project_id: project.id, url: ctx.host.urls.task(task) },
    primary_account: accounts.find((a) => a.is_primary) ?? null,
    accounts,
  };
}
