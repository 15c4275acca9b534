import { crmProjectsAmong, type CrmContext } from '../http/guard';
import type { Account } from '../models/account';
import { canEditAccount, dateText, globalContext, linkedProjectIds } from '../services/accounts';
import { opportunityLabel } from '../services/field-rules';
import { formatMoney } from '../services/money';
import { listOpportunities, parseOpportunityFilters } from '../services/opportunities';
import { accountRecord } from '../services/activities';
import { activityListLocals, addFormLocals } from './activities';
import { activeFields, customValuesOf } from '../services/custom-fields';
import { history } from '../services/journal';
import { presentHistory } from '../services/history-display';
import { contactsOfAccount } from '../services/contacts';
import { ACCOUNT_ATTACHMENTS, attachmentListLocals } from './attachments';
import { internalCategories, internalRelations, linkedAccounts, parentAndSubAccounts, relationChoices, relationTypes } from '../services/relations';
import { accountTasks, TASK_LIST_LIMIT } from '../services/task-accounts';
import { listContracts, parseContractFilters } from '../services/contracts';
import { CONTRACT_KIND_LABELS } from '../models/contract';

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
  {
    // A9: the account's personal contacts (crm_account_contacts) with their role; link an existing one or unlink.
    id: 'people', label: 'People', view: 'accounts/tabs/people',
    load: async (ctx, account) => ({
      contacts: await contactsOfAccount(ctx, account.id), canAddContacts: await ctx.host.can(ctx.user, 'add_personal_contacts'),
      peopleMessage: null, peopleErrors: {}, peopleValues: {},
    }),
  },
  {
    // The account's opportunities the user may see, with the same totals as the opportunity list.
    id: 'opportunities', label: 'Opportunities', view: 'accounts/tabs/opportunities',
    async load(ctx, account, page) {
      const result = await listOpportunities(globalContext(ctx), parseOpportunityFilters({ account: String(account.id) }), page, 25);
      return { ...result, formatMoney, opportunityLabel, canAdd: await ctx.host.can(ctx.user, 'add_opportunities') };
    },
  },
  {
    id: 'invoicing', label: 'Invoicing & billing', view: 'accounts/tabs/invoicing',
    load: async () => ({}),
  },
  {
    // O5: the account's sales activities, edited in place, and the add form (the same partials as the opportunity page).
    id: 'activities', label: 'Sales activities', view: '../activities/account-tab',
    async load(ctx, account, page) {
      const record = accountRecord(account, await canEditAccount(ctx, account));
      return { list: await activityListLocals(ctx, record, page), form: await addFormLocals(ctx, record, 'full') };
    },
  },
  {
    id: 'projects', label: 'Projects & tickets', view: 'accounts/tabs/projects',
    async load(ctx, account) {
      // Only projects whose CRM pages the reader may open (the others would be links to a 404), from the host's
      // answers for the whole request rather than a lookup per linked project.
      const projects = await crmProjectsAmong(ctx, await linkedProjectIds(ctx.host.knex, account.id));
      // A8: the account's linked host tasks (the newest TASK_LIST_LIMIT links).
      const tasks = await accountTasks(ctx, account);
      return { projects, tasks: tasks.rows, tasksTotal: tasks.total, taskLimit: TASK_LIST_LIMIT };
    },
  },
  {
    // C3: the account's contracts the user may see (all projects), newest first, paginated.
    id: 'contracts', label: 'Contracts', view: '../contracts/account-tab',
    async load(ctx, account, page) {
      const result = await listContracts(globalContext(ctx), parseContractFilters({ account: String(account.id) }), page, 25);
      return { ...result, formatMoney, kindLabels: CONTRACT_KIND_LABELS };
    },
  },
  {
    id: 'relations', label: 'Relations', view: 'accounts/tabs/relations',
    async load(ctx, account) {
      const knex = ctx.host.knex;
      const { parent, children } = await parentAndSubAccounts(ctx, account);
      // A7: linked accounts (both directions) and internal relations, with what their forms offer.
      const links = await linkedAccounts(ctx, account.id);
      const internal = await internalRelations(ctx, account.id);
      const users = (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name }));
      return { parent, children, links, internal, choices: relationChoices(await relationTypes(knex)), categories: await internalCategories(knex), users };
    },
  },
  {
    id: 'history', label: 'History', view: 'accounts/tabs/history',
    async load(ctx, account, page) {
      const log = await presentHistory(ctx, await history(ctx.host.knex, 'account', account.id, page, 20));
      const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
      return { log, users };
    },
  },
  {
    id: 'files', label: 'Files', view: 'accounts/tabs/files',
    load: async (ctx, account) => ({ attachments: await attachmentListLocals(ctx, ACCOUNT_ATTACHMENTS, account) }),
  },
];

export function findTab(id: string): AccountTab {
  return ACCOUNT_TABS.find((t) => t.id === id) ?? ACCOUNT_TABS[0];
}

export { dateText };
