import type { CrmRoute } from '../http/guard';
import { formBody, idParam } from '../http/params';
import { wantsJson } from '../http/respond';
import { text, type FormInput } from '../services/form';
import { deleteFilter, saveFilter } from '../services/saved-filters';

/**
 * The two routes of every list with saved filters (A5, O2, C3): save the list's current filters under a name
 * (one's own, or shared with everyone), and delete one of one's own. `read` turns the posted form into the
 * filters to store and the list URL to go back to. A JSON client gets the saved filter (201) or the deleted id
 * rather than a redirect to an HTML page.
 */
export function savedFilterRoutes(o: {
  entity: string;
  /** The global list's path, e.g. `/crm/accounts`; the routes are `<list>/filters` and `<list>/filters/:id/delete`. */
  list: string;
  permission: string;
  read(input: FormInput): { stored: Record<string, string>; back: string };
  /** Where a deletion returns to (default: the list). */
  afterDelete?: string;
}): CrmRoute[] {
  return [
    {
      method: 'post', path: `${o.list}/filters`, permission: o.permission,
      async handler(ctx, req, res) {
        const input = formBody(req);
        const { stored, back } = o.read(input);
        const isShared = text(input, 'is_shared') === '1';
        const id = await saveFilter(ctx.host.knex, o.entity, ctx.user, text(input, 'filter_name'), isShared, stored);
        if (wantsJson(req)) return void res.status(201).json({ saved_filter: { id, name: text(input, 'filter_name').trim(), is_shared: isShared, params: stored, url: back } });
        res.redirect(303, back);
      },
    },
    {
      method: 'post', path: `${o.list}/filters/:id/delete`, permission: o.permission,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await deleteFilter(ctx.host.knex, o.entity, ctx.user, id);
        if (wantsJson(req)) return void res.json({ deleted: id });
        res.redirect(303, o.afterDelete ?? o.list);
      },
    },
  ];
}
