import type { CrmContext } from '../http/guard';
import type { Account } from '../models/account';
import { dateText, linkedProjectIds } from '../services/accounts';
import { activeFields, customValuesOf } from '../services/custom-fields';
import { history } from '../services/journal';

/**
 * The tabs of the account detail page (A6), in order. Each loads only its own data, when it is shown.
 * A tab whose records arrive with a later issue shows an empty state that says so.
 */
export interface AccountTab {
  id: string;
  label: string;
  view: string;
  load(ctx: CrmContext, account: Account, page: number): Promise<Record<string, unknown>>;
}

const comingLater = (id: string, label: string, issue: string): AccountTab => ({
  id, label, view: 'accounts/tabs/coming-later', load: async () => ({ issue }),
});

export const ACCOUNT_TABS: AccountTab[] = [
  {
    id: 'data', label: 'Data', view: 'accounts/tabs/data',
    async load(ctx, account) {
      const knex = ctx.host.knex;
      const fields = await activeFields(knex, 'account', account.account_type_id);
      const values = await customValuesOf(knex, 'account', account.id);
      const type = await knex('crm_account_types').where({ id: account.account_type_id }).first();
      const industry = account.industry_id ? await knex('crm_industries').where({ id: account.industry_id }).first() : null;
      const manager = account.account_manager_id ? await ctx.host.userById(account.account_manager_id) : null;
      const groups = await knex('crm_account_groups as g').join('crm_account_group_members as m', 'm.group_id', 'g.id')
        .where('m.account_id', account.id).orderBy('g.position').pluck('g.name');
      return { custom: fields.map((f) => ({ name: f.name, format: f.field_format, value: values.get(f.id) ?? null })), type, industry, manager, groups };
    },
  },
  comingLater('people', 'People', 'Accounts, personal contacts, partners (#3) — personal contacts'),
  comingLater('opportunities', 'Opportunities', 'Opportunities, sales activities and the pipeline (#4)'),
  {
    id: 'invoicing', label: 'Invoicing & billing', view: 'accounts/tabs/invoicing',
    load: async () => ({}),
  },
  comingLater('activities', 'Sales activities', 'Opportunities, sales activities and the pipeline (#4)'),
  {
    id: 'projects', label: 'Projects & tickets', view: 'accounts/tabs/projects',
    async load(ctx, account) {
      const projects = [];
      for (const id of await linkedProjectIds(ctx.host.knex, account.id)) {
        const p = await ctx.host.projectById(id);
        if (p) projects.push(p);
      }
      return { projects: projects.sort((a, b) => a.name.localeCompare(b.name)) };
    },
  },
  comingLater('contracts', 'Contracts', 'Sold: contracts, and contracts that start projects (#6)'),
  {
    id: 'relations', label: 'Relations', view: 'accounts/tabs/relations',
    async load(ctx, account) {
      const knex = ctx.host.knex;
      const parent = account.parent_id ? await knex('crm_accounts').where({ id: account.parent_id }).whereNull('deleted_at').first('id', 'name') : null;
      const children = await knex('crm_accounts').where({ parent_id: account.id }).whereNull('deleted_at')
        .where((b) => b.where('is_private', false).orWhere('author_id', ctx.user.id)).orderBy('name').limit(200).select('id', 'name');
      return { parent, children };
    },
  },
  {
    id: 'history', label: 'History', view: 'accounts/tabs/history',
    async load(ctx, account, page) {
      const log = await history(ctx.host.knex, 'account', account.id, page, 20);
      const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
      return { log, users };
    },
  },
  comingLater('files', 'Files', 'Accounts, personal contacts, partners (#3) — attachments'),
];

export function findTab(id: string): AccountTab {
  return ACCOUNT_TABS.find((t) => t.id === id) ?? ACCOUNT_TABS[0];
}

export { dateText };
