import type { CrmRoute } from '../http/guard';
import { formBody, idParam } from '../http/params';
import { text, type FormInput } from '../services/form';
import { deleteFilter, saveFilter } from '../services/saved-filters';

/**
 * The two routes of every list with saved filters (A5, O2, C3): save the list's current filters under a name
 * (one's own, or shared with everyone), and delete one of one's own. `read` turns the posted form into the
 * filters to store and the list URL to go back to.
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
        await saveFilter(ctx.host.knex, o.entity, ctx.user, text(input, 'filter_name'), text(input, 'is_shared') === '1', stored);
        res.redirect(303, back);
      },
    },
    {
      method: 'post', path: `${o.list}/filters/:id/delete`, permission: o.permission,
      async handler(ctx, req, res) {
        await deleteFilter(ctx.host.knex, o.entity, ctx.user, idParam(req));
        res.redirect(303, o.afterDelete ?? o.list);
      },
    },
  ];
}
