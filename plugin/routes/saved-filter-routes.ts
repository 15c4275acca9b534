import type { Request } from 'express';
import { contextFor, type CrmContext, type CrmRoute } from '../http/guard';
import { CrmError, invalid } from '../http/errors';
import { formBody, idParam } from '../http/params';
import { isHtmx, respond, wantsJson, type PageResponse } from '../http/respond';
import { text, type FormInput } from '../services/form';
import { deleteFilter, saveFilter } from '../services/saved-filters';

/**
 * What a list's saved filters part shows besides the filters (views/partials/saved-filter-form.ejs): the save
 * form as the user left it when saving was refused, with why, or why a deletion was.
 */
export interface SavedFilterState {
  name: string;
  shared: boolean;
  saveError: CrmError | null;
  deleteError: CrmError | null;
}

export const UNTOUCHED_SAVED_FILTERS: SavedFilterState = { name: '', shared: false, saveError: null, deleteError: null };

/**
 * The field a project's list puts in its saved filter forms (its identifier), so that saving or deleting goes
 * back to that list. Not `project`: the opportunity and contract lists filter by a project id of that name.
 */
export const LIST_PROJECT_FIELD = 'list_project';

/**
 * The two routes of every list with saved filters (A5, O2, C3): save the list's current filters under a name
 * (one's own, or shared with everyone), and delete one of one's own. `read` turns the posted form into the
 * filters to store and the query string of the list showing them. A JSON client gets the saved filter (201) or
 * the deleted id rather than a redirect to an HTML page, and a refusal as JSON.
 *
 * A refused name (empty, too long, one the user already uses) shows the list the form was on again — its filters,
 * the name and sharing as typed, the message at the name field — with 422, to a plain form as to htmx; a filter
 * to delete that is gone (a double submit, another tab) shows the page the deletion came from with 404.
 */
export function savedFilterRoutes(o: {
  entity: string;
  /** The global list's path, e.g. `/crm/accounts`; the routes are `<list>/filters` and `<list>/filters/:id/delete`. */
  list: string;
  permission: string;
  read(input: FormInput): { stored: Record<string, string>; query: string };
  /** The list in `ctx` filtered by `input` (as the list would read it from its query string), with `state`. */
  listPage(ctx: CrmContext, req: Request, input: FormInput, state: SavedFilterState): Promise<PageResponse>;
  /** Where a deletion returns to, and the page that says the filter to delete is gone (default: the list). */
  afterDelete?: { path: string; page(ctx: CrmContext, req: Request, state: SavedFilterState): Promise<PageResponse> };
}): CrmRoute[] {
  const listPath = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}${o.list}` : o.list);
  /**
   * The list the form was on: a project's list when the form names a project where the user may see the list,
   * the global list otherwise — so the field can neither name a hidden project nor point anywhere else.
   */
  const listContext = async (ctx: CrmContext, input: FormInput): Promise<CrmContext> => {
    const identifier = text(input, LIST_PROJECT_FIELD);
    const project = identifier ? (await ctx.host.projectsWhere(ctx.user, o.permission)).find((p) => p.identifier === identifier) : undefined;
    return contextFor(ctx.host, ctx.user, project ?? null);
  };
  return [
    {
      method: 'post', path: `${o.list}/filters`, permission: o.permission,
      async handler(ctx, req, res) {
        const input = formBody(req);
        const name = text(input, 'filter_name');
        const isShared = text(input, 'is_shared') === '1';
        // A refusal (422) shows the form's list again, as the user left it; a JSON client gets it as JSON.
        const refused = (err: unknown): err is CrmError => err instanceof CrmError && err.status === 422 && !wantsJson(req);
        const showRefusal = async (err: CrmError) => {
          const page = await o.listPage(await listContext(ctx, input), req, input, { name, shared: isShared, saveError: err, deleteError: null });
          return respond(ctx.host, req, res, { ...page, status: err.status });
        };
        let read: ReturnType<typeof o.read>;
        try {
          read = o.read(input);
        } catch (err) {
          if (!refused(err)) throw err;
          // The list shown again names the conditions that are wrong; the save form says why nothing was saved.
          return showRefusal(invalid('The filter was not saved: its conditions are not valid (see above).'));
        }
        let id: number;
        try {
          id = await saveFilter(ctx.host.knex, o.entity, ctx.user, name, isShared, read.stored);
        } catch (err) {
          if (!refused(err)) throw err;
          return showRefusal(err);
        }
        const back = `${listPath(await listContext(ctx, input))}${read.query}`;
        if (wantsJson(req)) return void res.status(201).json({ saved_filter: { id, name, is_shared: isShared, params: read.stored, url: back } });
        res.redirect(303, back);
      },
    },
    {
      method: 'post', path: `${o.list}/filters/:id/delete`, permission: o.permission,
      async handler(ctx, req, res) {
        const id = idParam(req);
        const from = await listContext(ctx, formBody(req));
        try {
          await deleteFilter(ctx.host.knex, o.entity, ctx.user, id);
        } catch (err) {
          // htmx shows a failed request's text as its message (public/crm.js): it gets the message alone.
          if (!(err instanceof CrmError) || err.status !== 404 || wantsJson(req) || isHtmx(req)) throw err;
          // On a page, most likely the second click of a double submit or a page loaded before the filter was deleted.
          const gone = new CrmError(404, 'This saved filter was not found: it may have been deleted already.');
          const state = { ...UNTOUCHED_SAVED_FILTERS, deleteError: gone };
          const page = o.afterDelete ? await o.afterDelete.page(from, req, state) : await o.listPage(from, req, {}, state);
          return respond(ctx.host, req, res, { ...page, status: err.status });
        }
        if (wantsJson(req)) return void res.json({ deleted: id });
        res.redirect(303, o.afterDelete?.path ?? listPath(from));
      },
    },
  ];
}
