import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError, invalid } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { formBody } from '../http/params';
import { changeOrRerender, settingsHistory, userNames, type Failure } from './admin-forms';
import { FIELD_FORMATS } from '../services/custom-fields';
import { flag, text, type FormInput } from '../services/form';
import {
  createCustomField, createLookup, CUSTOM_FIELD_JOURNAL, deleteLookup, listCustomFields, listLookup, lookupKind, moveLookup,
  requireCustomField, setCustomFieldActive, setLookupActive, updateCustomField, updateLookup, type LookupKind,
} from '../services/lookups';
import {
  cellName, loadMatrix, loadSupervisors, saveMatrix, saveSupervisors, supervisorField, SUPERVISORS_JOURNAL, VISIBILITY_JOURNAL,
} from '../services/role-visibility';
import { VISIBILITY_ENTITIES, VISIBILITY_LEVELS } from '../services/visibility';

/**
 * The admin side of accounts (issue #3): lookup lists (S4), account types' name fields (A1), custom fields
 * per account type (A3), visibility per role and supervisors (S3). All under the global permission
 * manage_crm_settings; anyone without it gets 404 on every URL here.
 */
const PERMISSION = 'manage_crm_settings';
const BASE = '/crm/settings';

/** Path parameters without the `.json` suffix a GET may carry. */
const param = (req: Request, name: string) => String(req.params[name] ?? '').replace(/\.json$/, '');
const idParam = (req: Request, name = 'id') => {
  const raw = param(req, name);
  return /^\d{1,10}$/.test(raw) ? Number(raw) : 0;
};
const listUrl = (kind: LookupKind) => `${BASE}/lists/${kind.slug}`;

// ---- lookup lists (S4, A1) ---------------------------------------------------------------------------------

/** The account types' name-field switches, as their history names them (the form's “Name” would read as a rename). */
const LOOKUP_LABELS = { use_first_last_name: 'First + last name fields', use_name: 'Name field' };

async function lookupPage(ctx: CrmContext, kind: LookupKind, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const items = await listLookup(ctx.host.knex, kind);
  return {
    title: `CRM settings · ${kind.label}`,
    view: 'settings/lists',
    status: failure?.status ?? 200,
    locals: {
      kind, items, failure, notice, current: `lists/${kind.slug}`, action: listUrl(kind),
      log: await settingsHistory(ctx, kind.journalType, LOOKUP_LABELS), users: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : { kind: kind.slug, label: kind.label, items },
  };
}

function lookupRoutes(): CrmRoute[] {
  const kindOf = (req: Request) => lookupKind(param(req, 'kind'));
  return [
    {
      method: 'get', path: `${BASE}/lists/:kind`, permission: PERMISSION,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await lookupPage(ctx, kindOf(req))),
    },
    {
      method: 'post', path: `${BASE}/lists/:kind`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const kind = kindOf(req);
        await changeOrRerender(ctx, req, res, 'new', (f, n) => lookupPage(ctx, kind, f, n), async () => {
          await createLookup(ctx.host.knex, ctx.user, kind, formBody(req));
          return { location: listUrl(kind), notice: `Added “${text(formBody(req), 'name')}”.`, trigger: 'crm:settingsListChanged' };
        });
      },
    },
    {
      method: 'post', path: `${BASE}/lists/:kind/:id`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const kind = kindOf(req);
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => lookupPage(ctx, kind, f, n), async () => {
          await updateLookup(ctx.host.knex, ctx.user, kind, id, formBody(req));
          return { location: listUrl(kind), notice: `Saved “${text(formBody(req), 'name')}”.`, trigger: 'crm:settingsListChanged' };
        });
      },
    },
    {
      method: 'post', path: `${BASE}/lists/:kind/:id/active`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const kind = kindOf(req);
        const id = idParam(req);
        const active = flag(formBody(req), 'active');
        await changeOrRerender(ctx, req, res, String(id), (f, n) => lookupPage(ctx, kind, f, n), async () => {
          await setLookupActive(ctx.host.knex, ctx.user, kind, id, active);
          return { location: listUrl(kind), notice: active ? 'Activated.' : 'Deactivated: it is no longer offered in forms; records that use it keep it.', trigger: 'crm:settingsListChanged' };
        });
      },
    },
    {
      method: 'post', path: `${BASE}/lists/:kind/:id/move`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const kind = kindOf(req);
        const id = idParam(req);
        const direction = text(formBody(req), 'direction');
        await changeOrRerender(ctx, req, res, String(id), (f, n) => lookupPage(ctx, kind, f, n), async () => {
          if (direction !== 'up' && direction !== 'down') throw invalid('Move up or down.', { direction: 'must be up or down' });
          await moveLookup(ctx.host.knex, ctx.user, kind, id, direction);
          return { location: listUrl(kind), notice: 'Order saved.', trigger: 'crm:settingsListChanged' };
        });
      },
    },
    {
      method: 'post', path: `${BASE}/lists/:kind/:id/delete`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const kind = kindOf(req);
        const id = idParam(req);
        await changeOrRerender(ctx, req, res, String(id), (f, n) => lookupPage(ctx, kind, f, n), async () => {
          await deleteLookup(ctx.host.knex, ctx.user, kind, id);
          return { location: listUrl(kind), notice: 'Deleted.', trigger: 'crm:settingsListChanged' };
        });
      },
    },
  ];
}

// ---- custom fields per account type (A3) -------------------------------------------------------------------

/** The custom field form's names for the columns its history shows (the rest read well as they are). */
const CUSTOM_FIELD_LABELS = { field_format: 'Format', is_required: 'Required' };

async function accountTypes(ctx: CrmContext) {
  return (await ctx.host.knex('crm_account_types').orderBy([{ column: 'position' }, { column: 'id' }]).select('id', 'name', 'active'))
    .map((t) => ({ id: Number(t.id), name: String(t.name), active: Boolean(t.active) }));
}

async function customFieldsPage(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const fields = await listCustomFields(ctx.host.knex);
  return {
    title: 'CRM settings · Custom fields',
    view: 'settings/custom-fields',
    status: failure?.status ?? 200,
    locals: {
      fields, types: await accountTypes(ctx), formats: FIELD_FORMATS, failure, notice, current: 'custom-fields',
      log: await settingsHistory(ctx, CUSTOM_FIELD_JOURNAL, CUSTOM_FIELD_LABELS), users: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : { custom_fields: fields },
  };
}

async function customFieldEditPage(ctx: CrmContext, id: number, failure: Failure | null = null): Promise<PageResponse> {
  const field = await requireCustomField(ctx.host.knex, id);
  const values: FormInput = failure?.values ?? {
    name: field.name, possible_values: field.possible_values.join('\n'), is_required: field.is_required ? '1' : '0',
    active: field.active ? '1' : '0', position: String(field.position),
  };
  return {
    title: `CRM settings · ${field.name}`,
    view: 'settings/custom-field-form',
    status: failure?.status ?? 200,
    locals: { field, values, types: await accountTypes(ctx), failure, current: 'custom-fields' },
    json: failure ? { error: failure.message, fields: failure.errors } : { custom_field: field },
  };
}

function customFieldRoutes(): CrmRoute[] {
  const list = `${BASE}/custom-fields`;
  return [
    { method: 'get', path: list, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await customFieldsPage(ctx)) },
    {
      method: 'post', path: list, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'new', (f, n) => customFieldsPage(ctx, f, n), async () => {
          await createCustomField(ctx.host.knex, ctx.user, formBody(req));
          return { location: list, notice: `Added the custom field “${text(formBody(req), 'name')}”.`, trigger: 'crm:customFieldsChanged' };
        });
      },
    },
    {
      method: 'get', path: `${list}/:id/edit`, permission: PERMISSION,
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await customFieldEditPage(ctx, idParam(req))),
    },
    {
      method: 'post', path: `${list}/:id`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const id = idParam(req);
        await requireCustomField(ctx.host.knex, id);
        try {
          await updateCustomField(ctx.host.knex, ctx.user, id, formBody(req));
        } catch (err) {
          if (!(err instanceof CrmError) || err.status !== 422) throw err;
          return respond(ctx.host, req, res, await customFieldEditPage(ctx, id, { target: String(id), values: formBody(req), errors: err.fieldErrors, message: err.message, status: 422 }));
        }
        await respondAfterChange(ctx.host, req, res, list, async () => ({
          ...(await customFieldsPage(ctx, null, `Saved the custom field “${text(formBody(req), 'name')}”.`)), trigger: 'crm:customFieldsChanged',
        }));
      },
    },
    {
      method: 'post', path: `${list}/:id/active`, permission: PERMISSION,
      async handler(ctx, req, res) {
        const active = flag(formBody(req), 'active');
        await setCustomFieldActive(ctx.host.knex, ctx.user, idParam(req), active);
        await respondAfterChange(ctx.host, req, res, list, async () => ({
          ...(await customFieldsPage(ctx, null, active ? 'Custom field enabled.' : 'Custom field disabled: forms no longer show it; stored values are kept.')),
          trigger: 'crm:customFieldsChanged',
        }));
      },
    },
  ];
}

// ---- visibility per role and supervisors (S3) --------------------------------------------------------------

async function visibilityPage(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const roles = await ctx.host.roles();
  const matrix = await loadMatrix(ctx.host.knex, roles);
  return {
    title: 'CRM settings · Visibility',
    view: 'settings/visibility',
    status: failure?.status ?? 200,
    locals: {
      roles, matrix, entities: VISIBILITY_ENTITIES, levels: VISIBILITY_LEVELS, cellName, failure, notice, current: 'visibility',
      log: await settingsHistory(ctx, VISIBILITY_JOURNAL), users: await userNames(ctx),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      visibility: roles.map((r) => ({ role_id: r.id, role: r.name, ...matrix[r.id] })),
    },
  };
}

async function supervisorsPage(ctx: CrmContext, failure: Failure | null = null, notice: string | null = null): Promise<PageResponse> {
  const users = await ctx.host.users();
  const supervisors = await loadSupervisors(ctx.host.knex);
  return {
    title: 'CRM settings · Supervisors',
    view: 'settings/supervisors',
    status: failure?.status ?? 200,
    locals: {
      list: users, supervisors, supervisorField, failure, notice, current: 'supervisors',
      log: await settingsHistory(ctx, SUPERVISORS_JOURNAL), users: new Map(users.map((u) => [u.id, u.name])),
    },
    json: failure ? { error: failure.message, fields: failure.errors } : {
      supervisors: users.map((u) => ({ user_id: u.id, user: u.name, supervisor_id: supervisors.get(u.id) ?? null })),
    },
  };
}

function visibilityRoutes(): CrmRoute[] {
  return [
    { method: 'get', path: `${BASE}/visibility`, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await visibilityPage(ctx)) },
    {
      method: 'post', path: `${BASE}/visibility`, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'matrix', (f, n) => visibilityPage(ctx, f, n), async () => {
          await saveMatrix(ctx.host.knex, ctx.user, await ctx.host.roles(), formBody(req));
          return { location: `${BASE}/visibility`, notice: 'Visibility saved.', trigger: 'crm:visibilitySaved' };
        });
      },
    },
    { method: 'get', path: `${BASE}/supervisors`, permission: PERMISSION, handler: async (ctx, req, res) => respond(ctx.host, req, res, await supervisorsPage(ctx)) },
    {
      method: 'post', path: `${BASE}/supervisors`, permission: PERMISSION,
      async handler(ctx, req, res) {
        await changeOrRerender(ctx, req, res, 'supervisors', (f, n) => supervisorsPage(ctx, f, n), async () => {
          await saveSupervisors(ctx.host.knex, ctx.user, await ctx.host.users(), formBody(req));
          return { location: `${BASE}/supervisors`, notice: 'Supervisors saved.', trigger: 'crm:supervisorsSaved' };
        });
      },
    },
  ];
}

export function crmAdminRoutes(): CrmRoute[] {
  return [...lookupRoutes(), ...customFieldRoutes(), ...visibilityRoutes()];
}
