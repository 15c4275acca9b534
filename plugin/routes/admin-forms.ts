import type { Request, Response } from 'express';
import type { CrmContext } from '../http/guard';
import { CrmError } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import type { FormInput } from '../services/form';
import { presentHistory } from '../services/history-display';
import type { HistoryPage } from '../services/journal';
import { recentChanges } from '../services/lookups';

/** What the CRM settings pages share: reading the request, the names of users, their history, and one save-or-rerender flow. */

export async function userNames(ctx: CrmContext): Promise<Map<number, string>> {
  return new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
}

/**
 * A settings page's latest changes (one journal type) as people read them: fields by their labels (`labels`, else
 * history-display.ts's), ids by names, flags as yes/no.
 */
export async function settingsHistory(ctx: CrmContext, journalType: string, labels?: Readonly<Record<string, string>>): Promise<HistoryPage> {
  return presentHistory(ctx, await recentChanges(ctx.host.knex, journalType), { labels });
}

/** Form state for a page that failed to save: which form, what the user typed, and the messages. */
export interface Failure {
  /** 'new' for the add form, else the id of the row whose form was sent (or a page's own name, e.g. 'matrix'). */
  target: string;
  values: FormInput;
  errors: Record<string, string>;
  message: string;
  status: number;
}

/** Runs a change; a 422 re-renders the page it came from with the user's input and the messages. */
export async function changeOrRerender(
  ctx: CrmContext, req: Request, res: Response, target: string,
  page: (failure: Failure | null, notice: string | null) => Promise<PageResponse>,
  change: () => Promise<{ location: string; notice: string; trigger: string }>,
): Promise<void> {
  let done: { location: string; notice: string; trigger: string };
  try {
    done = await change();
  } catch (err) {
    if (err instanceof CrmError && err.status === 422) {
      return respond(ctx.host, req, res, await page({ target, values: formBody(req), errors: err.fieldErrors, message: err.message, status: 422 }, null));
    }
    throw err;
  }
  await respondAfterChange(ctx.host, req, res, done.location, async () => ({ ...(await page(null, done.notice)), trigger: done.trigger }));
}
