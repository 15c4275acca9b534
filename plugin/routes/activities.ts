import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError } from '../http/errors';
import { isHtmx, respond, wantsJson, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import {
  ACTIVITY_RECORD_TYPES, activityCategories, canChangeActivity, createActivity, deleteActivity, dueParams, listActivities, listDue,
  parseDueQuery, readActivityInput, RECORD_KINDS, requireActivity, requireActivityRecord, requireAddable, requireChangeable, requireVisibleActivity, todo, updateActivity,
  type Activity, type ActivityRecord, type ActivityRecordType, type DueQuery,
} from '../services/activities';
import { text, type FormInput, lockVersionOf } from '../services/form';
import { calendarEntry } from '../services/ics';
import { pageParam } from '../services/pagination';
import { history } from '../services/journal';
import { historyJson, presentHistory } from '../services/history-display';
import { leftOutJson, withoutInvisibleTargets } from '../services/list-filters';
import { loadSettings } from '../services/settings';

/** Activities shown at once in a record's panel or tab; older ones page in place. */
export const PANEL_PAGE_SIZE = 10;
const SAVED = 'crm:activitySaved';

const numberParam = (req: Request, name: string) => (/^\d{1,10}$/.test(String(req.params[name] ?? '')) ? Number(req.params[name]) : 0);

export function activityJson(a: Activity) {
  return {
    id: a.id, record_type: a.record_type, record_id: a.record_id, account_id: a.account_id, account_hidden: a.account_hidden, project_id: a.project_id, category_id: a.category_id,
    category: a.category_name, subject: a.subject, notes: a.notes, occurred_at: a.occurred_at, duration_minutes: a.duration_minutes,
    next_contact_on: a.next_contact_on, responsible_id: a.responsible_id, is_personal: a.is_personal, author_id: a.author_id,
    lock_version: a.lock_version, calendar_url: `/crm/activities/${a.id}/calendar.ics`,
  };
}

/** What a form shows for an existing activity (datetime-local wants YYYY-MM-DDTHH:MM). */
function formValues(a: Activity): FormInput {
  return {
    category_id: String(a.category_id), subject: a.subject, notes: a.notes, occurred_at: a.occurred_at.slice(0, 16),
    duration_minutes: a.duration_minutes === null ? '' : String(a.duration_minutes), next_contact_on: a.next_contact_on ?? '',
    responsible_id: a.responsible_id === null ? '' : String(a.responsible_id), is_personal: a.is_personal ? '1' : '', lock_version: String(a.lock_version),
  };
}

async function formChoices(ctx: CrmContext, includeCategory: number | null = null) {
  return {
    categories: await activityCategories(ctx.host.knex, includeCategory),
    users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
  };
}

export interface Editing {
  id: number;
  values: FormInput;
  errors: Record<string, string>;
  message: string | null;
}

/** Locals of the list partial (views/activities/list.ejs): one page of the record's activities, newest first. */
export async function activityListLocals(ctx: CrmContext, record: ActivityRecord, page = 1, options: { editing?: Editing | null; listMessage?: string | null } = {}) {
  const { rows, meta } = await listActivities(ctx, record, page, PANEL_PAGE_SIZE);
  const choices = await formChoices(ctx);
  return {
    record, meta, ...choices,
    activities: rows.map((a) => ({ ...a, canChange: canChangeActivity(ctx, record, a) })),
    userNames: new Map(choices.users.map((u) => [u.id, u.name])),
    editing: options.editing ?? null, listMessage: options.listMessage ?? null, addForm: null as null | Record<string, unknown>,
  };
}

/** Locals of the add form (views/activities/add-form.ejs). `variant`: the small sidebar form or the full one. */
export async function addFormLocals(ctx: CrmContext, record: ActivityRecord, variant: 'sidebar' | 'full', values: FormInput = {}, errors: Record<string, string> = {}, message: string | null = null) {
  return { record, variant, values, errors, message, ...(await formChoices(ctx)), oob: false };
}

function variantOf(input: FormInput): 'sidebar' | 'full' {
  return text(input, 'variant') === 'sidebar' ? 'sidebar' : 'full';
}

/** A record's activities: the list fragment for htmx, a page of its own otherwise (also the no-JS add form). */
async function recordPage(ctx: CrmContext, req: Request, record: ActivityRecord, options: {
  editing?: Editing | null; listMessage?: string | null; addForm?: Record<string, unknown> | null; status?: number; trigger?: string;
} = {}): Promise<PageResponse> {
  const locals = await activityListLocals(ctx, record, pageParam(req), options);
  locals.addForm = options.addForm ?? null;
  return {
    title: `Sales activities · ${record.name}`,
    view: isHtmx(req) ? 'activities/list' : 'activities/record',
    status: options.status ?? 200,
    trigger: options.trigger,
    locals: { ...locals, addFormFull: record.canEdit ? options.addForm ?? (await addFormLocals(ctx, record, 'full')) : null },
    json: { activities: locals.activities.map(activityJson), pagination: locals.meta, can_edit: record.canEdit },
  };
}

/** After a change: htmx gets the re-rendered list (plus a fresh add form), JSON the activity, a plain form a 303. */
async function afterChange(ctx: CrmContext, req: Request, res: Response, record: ActivityRecord, json: { status: number; body: unknown }, fragment: () => Promise<PageResponse>) {
  if (wantsJson(req)) return void res.status(json.status).json(json.body);
  if (isHtmx(req)) return respond(ctx.host, req, res, await fragment());
  res.redirect(303, record.url);
}

/** 422 and 409 answer with the form again, the user's input and the messages; JSON clients get the error. */
async function orRerender(req: Request, save: () => Promise<void>, rerender: (err: CrmError) => Promise<void>): Promise<void> {
  try {
    await save();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409) && !wantsJson(req)) return rerender(err);
    throw err;
  }
}

function recordRoutes(type: ActivityRecordType): CrmRoute[] {
  const kind = RECORD_KINDS[type];
  const base = `/crm/${kind.segment}/:id/activities`;
  const load = (ctx: CrmContext, req: Request) => requireActivityRecord(ctx, type, numberParam(req, 'id'));
  return [
    {
      method: 'get', path: base, permission: kind.view,
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await recordPage(ctx, req, await load(ctx, req)));
      },
    },
    {
      method: 'post', path: base, permission: kind.edit,
      async handler(ctx, req, res) {
        const record = await load(ctx, req);
        requireAddable(record);
        const input = formBody(req);
        const variant = variantOf(input);
        await orRerender(req, async () => {
          const activity = await createActivity(ctx, record, await readActivityInput(ctx, input));
          await afterChange(ctx, req, res, record, { status: 201, body: { activity: activityJson(activity) } }, async () => recordPage(ctx, req, record, {
            listMessage: 'Activity added.', trigger: SAVED, addForm: { ...(await addFormLocals(ctx, record, variant)), oob: true },
          }));
        }, async (err) => {
          const form = { ...(await addFormLocals(ctx, record, variant, input, err.fieldErrors, err.message)), oob: isHtmx(req) };
          await respond(ctx.host, req, res, await recordPage(ctx, req, record, { addForm: form, status: err.status }));
        });
      },
    },
    {
      method: 'get', path: `${base}/:activityId/edit`, permission: kind.edit,
      async handler(ctx, req, res) {
        const record = await load(ctx, req);
        const activity = await requireActivity(ctx, record, numberParam(req, 'activityId'));
        if (!canChangeActivity(ctx, record, activity)) throw new CrmError(403, activity.is_personal ? 'Only its author may change a personal activity.' : `You may see this ${type} but not change its activities.`);
        await respond(ctx.host, req, res, await editPage(ctx, req, record, activity, formValues(activity)));
      },
    },
    {
      method: 'post', path: `${base}/:activityId`, permission: kind.edit,
      async handler(ctx, req, res) {
        const record = await load(ctx, req);
        const activity = await requireActivity(ctx, record, numberParam(req, 'activityId'));
        requireChangeable(ctx, record, activity);
        const input = formBody(req);
        await orRerender(req, async () => {
          const lockVersion = lockVersionOf(input);
          const data = await readActivityInput(ctx, input, activity);
          const saved = await updateActivity(ctx, record, activity, data, lockVersion);
          await afterChange(ctx, req, res, record, { status: 200, body: { activity: activityJson(saved) } },
            async () => recordPage(ctx, req, record, { listMessage: 'Activity saved.', trigger: SAVED }));
        }, async (err) => {
          // A stale save keeps the input and takes the current lock version, so a second save is a deliberate overwrite.
          const current = err.status === 409 ? await requireActivity(ctx, record, activity.id) : activity;
          const values = { ...input, lock_version: String(current.lock_version) };
          const editing: Editing = { id: activity.id, values, errors: err.fieldErrors, message: err.message };
          if (isHtmx(req)) return respond(ctx.host, req, res, await recordPage(ctx, req, record, { editing, status: err.status }));
          await respond(ctx.host, req, res, { ...(await editPage(ctx, req, record, current, values, err)), status: err.status });
        });
      },
    },
    {
      method: 'post', path: `${base}/:activityId/delete`, permission: kind.edit,
      async handler(ctx, req, res) {
        const record = await load(ctx, req);
        const activity = await requireActivity(ctx, record, numberParam(req, 'activityId'));
        const raw = text(formBody(req), 'lock_version');
        await deleteActivity(ctx, record, activity, raw && Number.isInteger(Number(raw)) ? Number(raw) : null);
        await afterChange(ctx, req, res, record, { status: 200, body: { deleted: activity.id } },
          async () => recordPage(ctx, req, record, { listMessage: 'Activity deleted.', trigger: SAVED }));
      },
    },
  ];
}

/** The edit form: inline (a list item) for htmx, a page of its own otherwise. */
async function editPage(ctx: CrmContext, req: Request, record: ActivityRecord, activity: Activity, values: FormInput, err: CrmError | null = null): Promise<PageResponse> {
  return {
    title: `Edit activity · ${record.name}`,
    view: isHtmx(req) ? 'activities/item-form' : 'activities/edit',
    locals: { record, activity, values, errors: err?.fieldErrors ?? {}, message: err?.message ?? null, ...(await formChoices(ctx, activity.category_id)) },
    json: { activity: activityJson(activity) },
  };
}

const dueBase = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/activities` : '/crm/activities');

function qs(params: Record<string, string>): string {
  const out = new URLSearchParams(params).toString();
  return out ? `?${out}` : '';
}

async function todoHandler(ctx: CrmContext, req: Request, res: Response) {
  const settings = await loadSettings(ctx.host.knex);
  const data = await todo(ctx, pageParam(req), Number(settings.page_size));
  const base = dueBase(ctx);
  const link = (params: Record<string, string>) => `${base}${qs(params)}`;
  // Each group's link lists what it counts: the accounts the user may not see are one group, listed as `hidden`.
  const accountParam = (g: { account_id: number | null; account_hidden: boolean }) => (g.account_hidden ? 'hidden' : g.account_id === null ? 'none' : String(g.account_id));
  await respond(ctx.host, req, res, {
    title: ctx.project ? `${ctx.project.name} · Sales to-do` : 'Sales to-do',
    view: 'activities/todo',
    project: ctx.project,
    locals: { ...data, base, link, accountParam, project: ctx.project },
    json: {
      today: data.today,
      totals: {
        today: { count: data.totals.today, url: link({ due: 'today' }) },
        overdue: { count: data.totals.overdue, url: link({ due: 'overdue' }) },
        unassigned: { count: data.totals.unassigned, url: link({ due: 'unassigned' }) },
      },
      by_account: data.byAccount.map((a) => ({ ...a, urls: Object.fromEntries((['today', 'overdue', 'unassigned'] as const).map((d) => [d, link({ due: d, account: accountParam(a) })])) })),
      upcoming: data.groups.map((g) => ({ ...g, url: link({ on: g.next_contact_on, account: accountParam(g) }) })),
      pagination: data.meta,
    },
  });
}

const DUE_TITLES: Record<string, string> = { today: 'Due today', overdue: 'Overdue', unassigned: 'No responsible person', upcoming: 'Upcoming' };
const ACCOUNT_WORDS: Record<'none' | 'hidden', string> = { none: 'no account', hidden: 'accounts you cannot see' };

async function dueListHandler(ctx: CrmContext, req: Request, res: Response) {
  const base = dueBase(ctx);
  let parsed: DueQuery;
  let error: CrmError | null = null;
  try {
    parsed = parseDueQuery(req.query as FormInput);
  } catch (err) {
    if (!(err instanceof CrmError) || err.status !== 422) throw err;
    error = err;
    parsed = { due: null, on: null, account: null };
  }
  const { f: d, leftOut } = await withoutInvisibleTargets(ctx, parsed);
  const settings = await loadSettings(ctx.host.knex);
  const { rows, meta } = await listDue(ctx, d, pageParam(req), Number(settings.page_size));
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const params = dueParams(d);
  const period = d.from || d.to ? `${d.from ?? '…'} – ${d.to ?? '…'}` : null;
  const title = [d.due ? DUE_TITLES[d.due] : d.on ? `Next contact ${d.on}` : 'Sales activities', typeof d.account === 'string' ? ACCOUNT_WORDS[d.account] : d.account ? rows[0]?.account_name ?? null : null, period].filter(Boolean).join(' · ');
  const recordLink = (r: Activity) => (r.record_type === 'account' ? `/crm/accounts/${r.record_id}?tab=activities` : `/crm/${RECORD_KINDS[r.record_type].segment}/${r.record_id}`);
  await respond(ctx.host, req, res, {
    title, view: 'activities/index', project: ctx.project, status: error ? 422 : 200,
    locals: { rows, meta, users, base, params, title, error, leftOut, recordLink, pageLink: (page: number) => `${base}${qs({ ...params, page: String(page) })}`, project: ctx.project },
    json: error ? { error: error.message, fields: error.fieldErrors } : {
      activities: rows.map((r) => ({ ...activityJson(r), account_name: r.account_name, record_name: r.record_name, record_url: recordLink(r) })),
      pagination: meta, filters: params, ...leftOutJson(leftOut),
    },
  });
}

export function activityRoutes(): CrmRoute[] {
  const todoPermission = ['view_opportunities', 'view_accounts'];
  return [
    ...ACTIVITY_RECORD_TYPES.flatMap(recordRoutes),
    { method: 'get', path: '/crm/activities/todo', permission: todoPermission, handler: todoHandler },
    { method: 'get', path: '/projects/:identifier/crm/activities/todo', permission: todoPermission, handler: todoHandler },
    { method: 'get', path: '/crm/activities', permission: todoPermission, handler: dueListHandler },
    { method: 'get', path: '/projects/:identifier/crm/activities', permission: todoPermission, handler: dueListHandler },
    {
      // O6: a calendar entry for the follow-up: starts now (rounded up to five minutes), 30 minutes, titled with the account.
      method: 'get', path: '/crm/activities/:activityId/calendar.ics', permission: ['view_opportunities', 'view_accounts', 'view_partners'],
      async handler(ctx, req, res) {
        const { activity, record } = await requireVisibleActivity(ctx, numberParam(req, 'activityId'));
        const now = new Date();
        const ics = calendarEntry({
          uid: `crm-activity-${activity.id}-${now.getTime()}@crm`, summary: record.accountName ?? record.name,
          description: activity.notes || activity.subject, now,
        });
        res.set('Content-Disposition', `attachment; filename="activity-${activity.id}.ics"`);
        res.type('text/calendar; charset=utf-8').send(ics);
      },
    },
    {
      // P6: what changed the activity itself — its account and project following its opportunity. Adding, editing
      // and deleting it are journaled on its record, whose history the page links to.
      method: 'get', path: '/crm/activities/:activityId/history', permission: ['view_opportunities', 'view_accounts', 'view_partners'],
      async handler(ctx, req, res) {
        const { activity, record } = await requireVisibleActivity(ctx, numberParam(req, 'activityId'));
        // Where the field rules hide the opportunity's account from this user (S5), so do its activities' histories.
        const hiddenFields = record.accountHidden ? new Set(['account_id']) : undefined;
        const log = await presentHistory(ctx, await history(ctx.host.knex, 'sales_activity', activity.id, pageParam(req), 20), { hiddenFields });
        const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
        await respond(ctx.host, req, res, {
          title: `History · ${activity.subject}`,
          view: 'activities/history',
          locals: { activity, record, log, users, recordHistoryUrl: recordHistoryUrl(record) },
          json: { activity: activityJson(activity), history: historyJson(log, users) },
        });
      },
    },
  ];
}

/** Where the history of the record an activity hangs on is read: the opportunity's page, the History tab of the others. */
function recordHistoryUrl(record: ActivityRecord): string {
  const page = `/crm/${RECORD_KINDS[record.type].segment}/${record.id}`;
  return record.type === 'opportunity' ? page : `${page}?tab=history`;
}
