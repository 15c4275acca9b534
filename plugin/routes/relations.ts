import type { Request, Response } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError } from '../http/errors';
import { isHtmx, respond, wantsJson, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import type { Account } from '../models/account';
import { requireEditableAccount, requireShownAccount } from '../services/accounts';
import { text, type FormInput } from '../services/form';
import {
  addInternalRelation, AmbiguousAccount, findInternalRelation, formatCommission, internalCategories, linkAccounts, readInternalRelation, relationChoices,
  relationTypes, removeInternalRelation, searchVisibleAccounts, unlinkAccounts, updateInternalRelation,
} from '../services/relations';
import { accountDetailPage } from './accounts';

const accountUrl = (id: number) => `/crm/accounts/${id}`;
const numberParam = (req: Request, name: string) => {
  const raw = String(req.params[name] ?? '');
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};

/**
 * After a change, htmx gets the account page body on `tab`, rendered by the account detail route itself (one
 * renderer for that page, whoever changed the account); the request is viewed as a GET of that tab.
 */
export async function renderAccountTab(ctx: CrmContext, req: Request, res: Response, accountId: number, tab: string, trigger: string): Promise<void> {
  await respond(ctx.host, req, res, { ...(await accountDetailPage(ctx, req, await requireShownAccount(ctx, accountId), null, tab)), trigger });
}

/**
 * The three answers after a change: JSON gets `json` (201 for a creation), htmx the account page on `tab`,
 * a plain form a 303 to that tab.
 */
export async function afterChange(ctx: CrmContext, req: Request, res: Response, account: Account, tab: string, trigger: string, json: unknown, status = 200): Promise<void> {
  res.vary('HX-Request');
  res.vary('Accept');
  if (wantsJson(req)) return void res.status(status).json(json);
  if (isHtmx(req)) return renderAccountTab(ctx, req, res, account.id, tab, trigger);
  res.redirect(303, `${accountUrl(account.id)}?tab=${tab}`);
}

/** Runs a change; a 422 or 409 re-renders the form it came from with the messages and the user's input. */
export async function changeOrRerender(ctx: CrmContext, req: Request, res: Response, change: () => Promise<void>, form: (err: CrmError) => Promise<PageResponse>): Promise<void> {
  try {
    await change();
  } catch (err) {
    if (err instanceof CrmError && (err.status === 422 || err.status === 409)) return respond(ctx.host, req, res, await form(err));
    throw err;
  }
}

async function linkFormPage(ctx: CrmContext, account: Account, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200,
  candidates: { id: number; name: string; city: string }[] = []): Promise<PageResponse> {
  return {
    title: `Link ${account.name}`,
    view: 'accounts/actions/link-accounts',
    status,
    locals: { linkPage: true, account, choices: relationChoices(await relationTypes(ctx.host.knex)), values, errors, message, candidates },
    json: { error: message, fields: errors, candidates },
  };
}

async function internalFormPage(ctx: CrmContext, account: Account, relationId: number | null, values: FormInput, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const storedCategory = relationId ? (await findInternalRelation(ctx, account, relationId)).category_id : null;
  return {
    title: relationId ? `Edit internal relation · ${account.name}` : `New internal relation · ${account.name}`,
    view: 'accounts/tabs/relations-more',
    status,
    locals: {
      internalPage: true, account, relationId, values, errors, message,
      users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })), categories: await internalCategories(ctx.host.knex, storedCategory),
    },
    json: { error: message, fields: errors },
  };
}

export function relationRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/accounts/:id/links/new', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await respond(ctx.host, req, res, await linkFormPage(ctx, account, req.query as FormInput));
      },
    },
    {
      // The link form's suggestions: only accounts this user may see, as <option>s of its datalist.
      method: 'get', path: '/crm/accounts/:id/link-candidates', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        const term = text(req.query as FormInput, 'related_account') || text(req.query as FormInput, 'q');
        const rows = /\(#\d+\)\s*$/.test(term) ? [] : await searchVisibleAccounts(ctx, term, account.id);
        res.vary('HX-Request');
        res.vary('Accept');
        if (wantsJson(req)) return void res.json({ accounts: rows.map((r) => ({ ...r, url: accountUrl(r.id) })) });
        await respond(ctx.host, req, res, { title: 'Accounts', view: 'accounts/actions/link-accounts', locals: { candidateOptions: rows, account }, json: null });
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/links', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await changeOrRerender(ctx, req, res, async () => {
          try {
            const link = await linkAccounts(ctx, account, formBody(req));
            await afterChange(ctx, req, res, account, 'relations', 'crm:accountsLinked', { link }, 201);
          } catch (err) {
            if (err instanceof AmbiguousAccount) {
              return respond(ctx.host, req, res, await linkFormPage(ctx, account, formBody(req), { related_account: 'Several accounts match: pick one' },
                'The accounts were not linked: several accounts match that name.', 422, err.candidates));
            }
            throw err;
          }
        }, async (err) => linkFormPage(ctx, account, formBody(req), err.fieldErrors, err.message, err.status));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/links/:linkId/delete', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await unlinkAccounts(ctx, account, numberParam(req, 'linkId'));
        await afterChange(ctx, req, res, account, 'relations', 'crm:accountsUnlinked', { deleted: numberParam(req, 'linkId') });
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/internal-relations', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await changeOrRerender(ctx, req, res, async () => {
          const id = await addInternalRelation(ctx, account, await readInternalRelation(ctx, formBody(req)));
          await afterChange(ctx, req, res, account, 'relations', 'crm:internalRelationSaved', { internal_relation: { id } }, 201);
        }, async (err) => internalFormPage(ctx, account, null, formBody(req), err.fieldErrors, err.message, err.status));
      },
    },
    {
      method: 'get', path: '/crm/accounts/:id/internal-relations/:relationId/edit', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        const relation = await findInternalRelation(ctx, account, numberParam(req, 'relationId'));
        const values: FormInput = {
          user_id: String(relation.user_id), category_id: String(relation.category_id), since: relation.since ?? '',
          commission: formatCommission(relation.commission_bp) ?? '',
        };
        await respond(ctx.host, req, res, await internalFormPage(ctx, account, relation.id, values));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/internal-relations/:relationId', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        const relationId = numberParam(req, 'relationId');
        const relation = await findInternalRelation(ctx, account, relationId);
        await changeOrRerender(ctx, req, res, async () => {
          await updateInternalRelation(ctx, account, relationId, await readInternalRelation(ctx, formBody(req), relation.category_id));
          await afterChange(ctx, req, res, account, 'relations', 'crm:internalRelationSaved', { internal_relation: { id: relationId } });
        }, async (err) => internalFormPage(ctx, account, relationId, formBody(req), err.fieldErrors, err.message, err.status));
      },
    },
    {
      method: 'post', path: '/crm/accounts/:id/internal-relations/:relationId/delete', permission: 'edit_accounts',
      async handler(ctx, req, res) {
        const account = await requireEditableAccount(ctx, numberParam(req, 'id'));
        await removeInternalRelation(ctx, account, numberParam(req, 'relationId'));
        await afterChange(ctx, req, res, account, 'relations', 'crm:internalRelationSaved', { deleted: numberParam(req, 'relationId') });
      },
    },
  ];
}
