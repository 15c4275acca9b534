import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { respond, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import type { Account } from '../models/account';
import { requireEditableAccount } from '../services/accounts';
import { text, type FormInput } from '../services/form';
import { createAccountTask, linkExistingTask, makePrimary, readNewTask, taskAccounts, taskProjects, unlinkTask } from '../services/task-accounts';
import { afterChange, changeOrRerender } from './relations';

const numberParam = (req: Request, name: string) => {
  const raw = String(req.params[name] ?? '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};

/** The "New task" page of an account: create a host task in one of its projects, or link an existing one. */
async function taskFormPage(ctx: CrmContext, account: Account, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  return {
    title: `New task · ${account.name}`,
    view: 'accounts/actions/task',
    status,
    locals: {
      taskPage: true, account, values, errors, message,
      projects: await taskProjects(ctx, account), users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
    },
    json: { error: message, fields: errors },
  };
}

export function taskAccountRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/accounts/:id/tasks/new', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await respond(ctx.host, req, res, await taskFormPage(ctx, account, { ...(req.query as FormInput) }));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/tasks', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await changeOrRerender(ctx, req, res, async () => {
          const task = await createAccountTask(ctx, account, await readNewTask(ctx, account, formBody(req)));
          await afterChange(ctx, req, res, account, 'projects', 'crm:taskLinked', { task: { ...task, url: ctx.host.urls.task(task) }, primary: true }, 201);
        }, async (err) => taskFormPage(ctx, account, formBody(req), err.fieldErrors, err.message, err.status));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/tasks/link', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await changeOrRerender(ctx, req, res, async () => {
          const { task, primary } = await linkExistingTask(ctx, account, text(formBody(req), 'task_id'));
          await afterChange(ctx, req, res, account, 'projects', 'crm:taskLinked', { task: { ...task, url: ctx.host.urls.task(task) }, primary }, 201);
        }, async (err) => taskFormPage(ctx, account, formBody(req), err.fieldErrors, err.message, err.status));
      },
    },
    {
      // The star: this account becomes the task's primary account.
      method: 'post', path: '/crm/accounts/:id/tasks/:taskId/primary', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        const task = await makePrimary(ctx, account, numberParam(req, 'taskId'));
        await afterChange(ctx, req, res, account, 'projects', 'crm:taskPrimaryChanged', { task_id: task.id, primary_account_id: account.id });
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/tasks/:taskId/unlink', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        const task = await unlinkTask(ctx, account, numberParam(req, 'taskId'));
        await afterChange(ctx, req, res, account, 'projects', 'crm:taskUnlinked', { unlinked: task.id });
      },
    },
    {
      // For the host's task lists: a task's accounts (primary first), only those this user may see.
      method: 'get', path: '/crm/tasks/:taskId/accounts', permission: 'view_accounts',
      async handler(ctx, req, res) {
        res.vary('Accept');
        res.json(await taskAccounts(ctx, numberParam(req, 'taskId')));
      },
    },
  ];
}
