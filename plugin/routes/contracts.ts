import { visibleSections } from './overview';
import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, notFound } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { formBody, idParam } from '../http/params';
import { CONTRACT_KIND_LABELS } from '../models/contract';
import { globalContext } from '../services/accounts';
import { leftOutJson, withoutInvisibleTargets } from '../services/list-filters';
import { runsOf } from '../services/automation';
import {
  contractFilterParams, contractJson, createUpsell, listContracts, parseContractFilters, removeContract,
  requireRemovableContract, requireVisibleContract, upsellAccountId, upsellProject, upsellValues, type ContractFilters, type ContractRow,
} from '../services/contracts';
import { text, type FormInput } from '../services/form';
import { history } from '../services/journal';
import { presentHistory } from '../services/history-display';
import { formatMoney } from '../services/money';
import { findVisibleOpportunity } from '../services/opportunities';
import { pageParam } from '../services/pagination';
import { quantityText } from '../services/quote-pricing';
import { saleRights } from '../services/sale';
import { queryString, savedFilters } from '../services/saved-filters';
import { loadSettings } from '../services/settings';
import { detailPage, opportunityUrl } from './opportunities';
import { savedFilterRoutes, UNTOUCHED_SAVED_FILTERS, type SavedFilterState } from './saved-filter-routes';

/** C3 over HTTP: the contract lists (global and per project), saved filters, detail, removal and upsell. */
const FILTER_ENTITY = 'contracts';
const base = (ctx: CrmContext) => (ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm/contracts` : '/crm/contracts');
export const contractUrl = (id: number) => `/crm/contracts/${id}`;

async function listPage(
  ctx: CrmContext, req: Request, f: ContractFilters, error: CrmError | null, leftOut: string[], savedFilterState: SavedFilterState,
): Promise<PageResponse> {
  const knex = ctx.host.knex;
  const perPage = Number((await loadSettings(knex)).page_size) || 25;
  const result = await listContracts(ctx, f, pageParam(req), perPage);
  const crmBase = ctx.project ? `/projects/${encodeURIComponent(ctx.project.identifier)}/crm` : '/crm';
  const categories = await knex('crm_product_categories').orderBy('position').select('id', 'name');
  const projects = ctx.project ? [] : await globalContext(ctx).scopeProjects('view_contracts');
  const accountName = f.account ? (result.rows.find((r) => r.account_id === f.account)?.account_name ?? null) : null;
  return {
    title: ctx.project ? `${ctx.project.name} · Contracts` : 'Contracts',
    view: 'contracts/index',
    project: ctx.project,
    status: error?.status ?? 200,
    locals: {
      ...result, f, params: contractFilterParams(f), base: base(ctx), project: ctx.project, formatMoney, queryString, kindLabels: CONTRACT_KIND_LABELS,
      categories, projects, accountName, error, leftOut, sections: await visibleSections(ctx, crmBase), crmBase, current: 'contracts',
      savedFilters: await savedFilters(knex, FILTER_ENTITY, ctx.user), savedFilterState,
    },
    json: error ? { error: error.message, fields: error.fieldErrors } : {
      contracts: result.rows.map(contractJson), types: result.types, totals: result.totals, pagination: result.meta,
      ...leftOutJson(leftOut),
    },
  };
}

/**
 * The list filtered by `query` (the address's, or a refused save filter form's); a malformed filter gives the whole
 * list with the message (422).
 */
async function filteredListPage(ctx: CrmContext, req: Request, query: FormInput, savedFilterState = UNTOUCHED_SAVED_FILTERS): Promise<PageResponse> {
  let checked: { f: ContractFilters; leftOut: string[] };
  try {
    checked = await withoutInvisibleTargets(ctx, parseContractFilters(query));
  } catch (err) {
    if (!(err instanceof CrmError) || err.status !== 422) throw err;
    return listPage(ctx, req, parseContractFilters({}), err, [], savedFilterState);
  }
  return listPage(ctx, req, checked.f, null, checked.leftOut, savedFilterState);
}

async function listHandler(ctx: CrmContext, req: Request, res: Response): Promise<void> {
  await respond(ctx.host, req, res, await filteredListPage(ctx, req, req.query as FormInput));
}

async function detail(ctx: CrmContext, req: Request, contract: ContractRow, message: string | null = null): Promise<PageResponse> {
  const knex = ctx.host.knex;
  // Whether the reader may see the opportunity is known (opportunity_hidden); its row is read for the sale rights.
  const opportunity = contract.opportunity_id && !contract.opportunity_hidden ? await findVisibleOpportunity(ctx, contract.opportunity_id) : null;
  const project = await ctx.host.projectById(contract.project_id);
  const owner = contract.owner_id ? await ctx.host.userById(contract.owner_id) : null;
  const runs = (await runsOf(ctx, [contract.id])).get(contract.id) ?? [];
  const product = contract.product_id ? await knex('crm_products').where({ id: contract.product_id }).first('id', 'name', 'code') : null;
  const quote = opportunity && contract.quote_id ? await knex('crm_quotes').where({ id: contract.quote_id }).first('id', 'number', 'name') : null;
  const log = await presentHistory(ctx, await history(knex, 'contract', contract.id, pageParam(req), 20), { currency: contract.currency });
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const canRemove = Boolean(opportunity && !opportunity.is_locked && contract.status === 'active' && (await saleRights(ctx, opportunity)).canRemove);
  const upsell = contract.status === 'active' ? await upsellProject(ctx, contract) : null;
  return {
    title: `Contract ${contract.name}`,
    view: 'contracts/show',
    project: null,
    locals: {
      contract, opportunity, project, owner, runs, product, quote, log, users, canRemove, canUpsell: Boolean(upsell), message,
      formatMoney, quantityText, kindLabels: CONTRACT_KIND_LABELS,
    },
    json: { contract: contractJson(contract), automation_runs: runs },
  };
}

async function upsellPage(ctx: CrmContext, contract: ContractRow, values: FormInput, error: CrmError | null = null): Promise<PageResponse> {
  return {
    title: `Upsell · ${contract.name}`,
    view: 'contracts/upsell',
    status: error?.status ?? 200,
    locals: { contract, values, errors: error?.fieldErrors ?? {}, message: error?.message ?? null },
    json: error ? { error: error.message, fields: error.fieldErrors } : { values, account_hidden: contract.account_hidden },
  };
}

export function contractRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: '/crm/contracts', permission: 'view_contracts', handler: listHandler },
    { method: 'get', path: '/projects/:identifier/crm/contracts', permission: 'view_contracts', handler: listHandler },
    ...savedFilterRoutes({
      entity: FILTER_ENTITY, list: '/crm/contracts', permission: 'view_contracts',
      read: (input) => {
        const params = contractFilterParams(parseContractFilters(input));
        return { stored: params, query: queryString(params) };
      },
      listPage: filteredListPage,
    }),
    {
      method: 'get', path: '/crm/contracts/:id', permission: 'view_contracts',
      async handler(ctx, req, res) {
        await respond(ctx.host, req, res, await detail(ctx, req, await requireVisibleContract(ctx, idParam(req))));
      },
    },
    {
      // Without JavaScript the strike-through link opens this page to confirm; htmx posts with confirm=1 after a prompt.
      method: 'get', path: '/crm/contracts/:id/remove', permission: 'delete_contracts',
      async handler(ctx, req, res) {
        const { contract, opportunity } = await requireRemovableContract(ctx, idParam(req));
        await respond(ctx.host, req, res, {
          title: `Remove ${contract.name}`, view: 'contracts/remove', locals: { contract, opportunity, message: null }, json: { contract: contractJson(contract) },
        });
      },
    },
    {
      method: 'post', path: '/crm/contracts/:id/remove', permission: 'delete_contracts',
      async handler(ctx, req, res) {
        const { contract, opportunity } = await requireRemovableContract(ctx, idParam(req));
        try {
          await removeContract(ctx, contract, opportunity, formBody(req));
        } catch (err) {
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) {
            return respond(ctx.host, req, res, {
              title: `Remove ${contract.name}`, view: 'contracts/remove', status: err.status, locals: { contract, opportunity, message: err.message },
              json: { error: err.message, fields: err.fieldErrors },
            });
          }
          throw err;
        }
        const back = text(formBody(req), 'back') === 'contract' ? contractUrl(contract.id) : opportunityUrl(opportunity.id);
        await respondAfterChange(ctx.host, req, res, back, async () => {
          const fresh = await findVisibleOpportunity(ctx, opportunity.id);
          if (!fresh) throw notFound('Opportunity');
          return { ...(await detailPage(ctx, req, fresh, `Contract “${contract.name}” removed.`)), trigger: 'crm:contractRemoved' };
        });
      },
    },
    {
      method: 'get', path: '/crm/contracts/:id/upsell', permission: 'add_opportunities',
      async handler(ctx, req, res) {
        const contract = await requireVisibleContract(ctx, idParam(req));
        if (contract.status !== 'active' || !(await upsellProject(ctx, contract))) throw notFound('Contract');
        await respond(ctx.host, req, res, await upsellPage(ctx, contract, upsellValues(contract)));
      },
    },
    {
      method: 'post', path: '/crm/contracts/:id/upsell', permission: 'add_opportunities',
      async handler(ctx, req, res) {
        const contract = await requireVisibleContract(ctx, idParam(req));
        const project = contract.status === 'active' ? await upsellProject(ctx, contract) : null;
        if (!project) throw notFound('Contract');
        // The account comes from the contract, not the form: the upsell is for the same customer (where the user may see it: upsellAccountId).
        const accountId = upsellAccountId(contract);
        const input = { ...formBody(req), account_id: accountId ? String(accountId) : '' };
        let oppId: number;
        try {
          oppId = (await createUpsell(ctx, contract, project, input)).id;
        } catch (err) {
          if (err instanceof CrmError && (err.status === 422 || err.status === 409)) return respond(ctx.host, req, res, await upsellPage(ctx, contract, formBody(req), err));
          throw err;
        }
        if (req.get('HX-Request')) return void res.set('HX-Redirect', opportunityUrl(oppId)).status(201).end();
        // A JSON client has no form to read that an account it may not see was left out: the answer says so.
        if (req.accepts(['html', 'json']) === 'json') return void res.status(201).json({ opportunity: { id: oppId, url: opportunityUrl(oppId) }, account_hidden: contract.account_hidden });
        res.redirect(303, opportunityUrl(oppId));
      },
    },
  ];
}

