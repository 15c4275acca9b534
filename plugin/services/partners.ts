import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostProject } from '../host';
import { Account, applyAccountScope } from '../models/account';
import { applyPartnerScope, Partner, PARTNER_FIELDS } from '../models/partner';
import { accountScopeOf, globalContext, partnerScopeOf } from './accounts';
import { whereAnyContains } from './text-search';
import { visibleContactsQuery, type ContactListing } from './contacts';
import { FieldErrors, text, type FormInput, validId } from './form';
import { changedFields, journal, journalMany } from './journal';
import { readUnderVersions, scopeKey } from './data-version';
import type { PageMeta } from './pagination';
import { partnerIdsOf, recordScope, type RecordScope } from './visibility';

export const PARTNER_SORTS = ['name', 'city', 'country', 'created_at', 'updated_at'] as const;

export interface PartnerFilters {
  q: string;
  sort: (typeof PARTNER_SORTS)[number];
  dir: 'asc' | 'desc';
}

export function parsePartnerFilters(query: FormInput): PartnerFilters {
  const sort = text(query, 'sort');
  return {
    q: text(query, 'q').slice(0, 100),
    sort: (PARTNER_SORTS as readonly string[]).includes(sort) ? (sort as PartnerFilters['sort']) : 'name',
    dir: text(query, 'dir') === 'desc' ? 'desc' : 'asc',
  };
}

export function partnerFilterParams(f: PartnerFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.q) out.q = f.q;
  if (f.sort !== 'name') out.sort = f.sort;
  if (f.dir !== 'asc') out.dir = f.dir;
  return out;
}

export interface PartnerRow {
  id: number;
  name: string;
  email: string;
  city: string;
  country: string;
  manager_id: number | null;
  project_id: number | null;
  consultants: number;
  accounts: number;
}

/** A page of the partners this user may see (S3, A10), searched and sorted in SQL. */
export async function listPartners(ctx: CrmContext, filters: PartnerFilters, page: number, perPage: number): Promise<{ rows: PartnerRow[]; meta: PageMeta }> {
  const scope = await recordScope(ctx, 'partners', 'view_partners');
  const knex = ctx.host.knex;
  const base = knex('crm_partners as p');
  applyPartnerScope(base, scope);
  if (filters.q) whereAnyContains(base, ['p.name', 'p.email', 'p.city', 'p.country'], filters.q);
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  // Counted as the partner page lists them (consultantsOf, managedAccounts): only what this user may see.
  const { query: consultants } = await visibleContactsQuery(ctx);
  const accounts = knex('crm_accounts as a').count('*').whereRaw('a.partner_id = p.id');
  applyAccountScope(accounts, await accountScopeOf(ctx));
  const rows = await base.clone()
    .select('p.id', 'p.name', 'p.email', 'p.city', 'p.country', 'p.manager_id', 'p.project_id')
    .select(consultants.count('*').whereRaw('c.partner_id = p.id').as('consultants'))
    .select(accounts.as('accounts'))
    .orderBy([{ column: `p.${filters.sort}`, order: filters.dir }, { column: 'p.id', order: filters.dir }])
    .limit(perPage).offset((current - 1) * perPage);
  return {
    rows: rows.map((r) => ({ ...r, consultants: Number(r.consultants), accounts: Number(r.accounts) })),
    meta: { page: current, pages, total: count, per_page: perPage },
  };
}

/** The partner if this user may see it (the global rule applies from any page), else null. */
export async function findVisiblePartner(ctx: CrmContext, id: number): Promise<Partner | null> {
  if (!validId(id)) return null;
  const scope = await partnerScopeOf(ctx);
  const q = Partner.query(ctx.host.knex).alias('p').where('p.id', id).select('p.*');
  applyPartnerScope(q, scope);
  return (await q.first()) ?? null;
}

/** The names of those of `ids` this user may see, in one query (histories name only visible partners). */
export async function visiblePartnerNames(ctx: CrmContext, ids: number[]): Promise<Map<number, string>> {
  const wanted = [...new Set(ids.filter(validId))];
  if (!wanted.length) return new Map();
  const { q } = await visiblePartnersAmong(ctx, wanted);
  return new Map((await q).map((r: { id: number; name: string }) => [Number(r.id), String(r.name)]));
}

/**
 * Those of `ids` this user may see (from any page), as a query selecting `id` and `name` (visiblePartnerNames runs
 * it; a page may run it with another in the same statement). Wrapped in an object: a knex builder is thenable.
 */
export async function visiblePartnersAmong(ctx: CrmContext, ids: number[]): Promise<{ q: Knex.QueryBuilder }> {
  const scope = await partnerScopeOf(ctx);
  const q = ctx.host.knex('crm_partners as p').whereIn('p.id', ids).select('p.id', 'p.name');
  applyPartnerScope(q, scope);
  return { q };
}

/**
 * What `visiblePartnerNames` answers depends on, besides the rows of `crm_partners`: the viewer's global partner
 * scope, as a cache key part.
 */
export async function partnerNamesScopeKey(ctx: CrmContext): Promise<string> {
  return scopeKey(await partnerScopeOf(ctx));
}

/** A visible partner or 404: the one way routes load a partner by id. */
export async function requireVisiblePartner(ctx: CrmContext, id: number): Promise<Partner> {
  const partner = await findVisiblePartner(ctx, id);
  if (!partner) throw notFound('Partner');
  return partner;
}

/** Edit rights: edit_partners where the partner is in reach; supervisors never edit through their team. */
export async function canEditPartner(ctx: CrmContext, partner: Partner, permission = 'edit_partners'): Promise<boolean> {
  if (!(await ctx.host.can(ctx.user, permission))) return false;
  const scope = await recordScope(globalContext(ctx), 'partners', permission, { global: true });
  const q = ctx.host.knex('crm_partners as p').where('p.id', partner.id);
  applyPartnerScope(q, scope);
  return Boolean(await q.first('p.id'));
}

/** A supervisor may look at a subordinate's partner, never change it (403, as for accounts). */
export async function requireEditablePartner(ctx: CrmContext, id: number, permission = 'edit_partners'): Promise<Partner> {
  const partner = await requireVisiblePartner(ctx, id);
  if (!(await canEditPartner(ctx, partner, permission))) throw forbidden('You may see this partner but not change it.');
  return partner;
}

/**
 * Above this many visible partners a picker takes a partner's id instead of listing them: a list of thousands
 * helps nobody, and a list cut short would drop the stored partner of every record beyond the cut on saving.
 */
export const PARTNER_PICKER_LIMIT = 200;

/** A partner picker: the partners to list (null: too many, type the id), and the name of the current one. */
export interface PartnerPicker {
  options: { id: number; name: string }[] | null;
  /** The current partner's id, and its name when this user may see it (null: "a partner you cannot see"). */
  current: { id: number; name: string | null } | null;
}

/**
 * What a partner field offers this user (assign an account, make a contact a consultant, an opportunity's
 * partner, a filter): the visible partners by name, and `currentId` — kept even when the user cannot see it,
 * so saving a form does not drop a partner someone else assigned.
 */
export async function partnerPicker(ctx: CrmContext, currentId: number | null): Promise<PartnerPicker> {
  const scope = await partnerScopeOf(ctx);
  // Kept under the partners' version and the viewer's scope: every opportunity list and form shows it.
  const listed = await readUnderVersions(ctx.host.knex, 'partner-picker', ['crm_partners'], [scopeKey(scope)], async () => {
    const q = ctx.host.knex('crm_partners as p');
    applyPartnerScope(q, scope);
    return (await q.select('p.id', 'p.name').orderBy(['p.name', 'p.id']).limit(PARTNER_PICKER_LIMIT + 1))
      .map((r: { id: number | string; name: string }) => ({ id: Number(r.id), name: String(r.name) }));
  });
  const options = listed.length > PARTNER_PICKER_LIMIT ? null : listed;
  if (currentId === null) return { options, current: null };
  const name = options ? options.find((o) => o.id === currentId)?.name : (await visiblePartnerNames(ctx, [currentId])).get(currentId);
  return { options, current: { id: currentId, name: name ?? null } };
}

/** Partner users see only their own partners (A10): a partner they added would vanish from them at once. */
export async function isPartnerUser(ctx: CrmContext): Promise<boolean> {
  return (await partnerIdsOf(ctx.host.knex, ctx.user.id)) !== null;
}

export async function requireMayAddPartners(ctx: CrmContext): Promise<void> {
  if (await isPartnerUser(ctx)) throw forbidden('Partner users do not add partners: they see only their own partner.');
}

/**
 * Partner users see only the records assigned to their partners (A10), so one they save without a partner would
 * vanish from them at once. Returns the partner the record is saved with: the one chosen, or — for a new record of
 * a user with a single partner — that partner; otherwise (several partners, or clearing it) a field error asks
 * them to choose (`whatTheySee`: "consultants", "accounts"…). Other users' choice is returned as it is.
 */
export async function partnerOfPartnerUser(ctx: CrmContext, errors: FieldErrors, partnerId: number | null, isNew: boolean, whatTheySee: string): Promise<number | null> {
  const own = await partnerIdsOf(ctx.host.knex, ctx.user.id);
  if (!own || partnerId || errors.errors.partner_id) return partnerId;
  if (isNew && own.length === 1) return own[0];
  errors.add('partner_id', `Choose your partner: as a partner user you see only its ${whatTheySee}`);
  return null;
}

export type PartnerData = Record<(typeof PARTNER_FIELDS)[number], unknown>;

/** Reads and checks the partner form, reporting every problem at once (422). */
export async function readPartnerInput(ctx: CrmContext, input: FormInput): Promise<PartnerData> {
  const errors = new FieldErrors();
  const managerId = errors.id(input, 'manager_id', 'Manager');
  if (managerId && !(await ctx.host.userById(managerId))) errors.add('manager_id', 'Choose a manager from the list');
  const website = errors.text(input, 'website', 'Website', { max: 200 });
  if (website && !/^https?:\/\/[^\s<>"]+$/i.test(website)) errors.add('website', 'Website must start with http:// or https://');
  const data: PartnerData = {
    name: errors.text(input, 'name', 'Name', { max: 200, required: true }),
    email: errors.email(input, 'email', 'Email'),
    phone: errors.text(input, 'phone', 'Phone', { max: 60 }),
    website,
    city: errors.text(input, 'city', 'City', { max: 100 }),
    country: errors.text(input, 'country', 'Country', { max: 100 }),
    note: errors.text(input, 'note', 'Note', { max: 10_000 }),
    manager_id: managerId,
  };
  if (errors.any) throw invalid('The partner was not saved: fix the fields marked below.', errors.errors);
  return data;
}

export async function createPartner(ctx: CrmContext, data: PartnerData, project: HostProject | null): Promise<Partner> {
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await trx('crm_partners').insert({ ...data, project_id: project?.id ?? null, author_id: ctx.user.id }).returning('id');
    const id = Number(row.id ?? row);
    const fields = changedFields({}, data, [...PARTNER_FIELDS]).filter((c) => c.new !== '' && c.new !== null);
    await journal(trx, { type: 'partner', id, userId: ctx.user.id, action: 'create', changes: [...fields, ...(project ? [{ field: 'project', old: null, new: project.identifier }] : [])] });
    return (await Partner.query(trx).findById(id))!;
  });
}

/** Saves an edit if nobody saved in between (`lockVersion`), journaling each changed field old → new. */
export async function updatePartner(ctx: CrmContext, partner: Partner, data: PartnerData, lockVersion: number): Promise<Partner> {
  return ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_partners').where({ id: partner.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ ...data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This partner');
    await journal(trx, { type: 'partner', id: partner.id, userId: ctx.user.id, action: 'update', changes: changedFields(partner as unknown as Record<string, unknown>, data, [...PARTNER_FIELDS]) });
    return (await Partner.query(trx).findById(partner.id))!;
  });
}

/** The records a partner manages (A10): each loses the partner when the partner is deleted. */
const MANAGED_BY_PARTNER = [
  { table: 'crm_accounts', type: 'account' },
  { table: 'crm_personal_contacts', type: 'personal_contact' },
  { table: 'crm_opportunities', type: 'opportunity' },
] as const;

/**
 * Soft delete: the row stays for the journal; it disappears from every list and lookup. Its accounts, consultants
 * and opportunities lose the partner in the same transaction, each journaled (field partner_id), so its users
 * (who see only what is assigned to it) no longer see them, and no record keeps pointing at a partner that is gone.
 * The user links stay: a former partner user keeps seeing only its partner's records, now none.
 */
export async function deletePartner(ctx: CrmContext, partner: Partner): Promise<void> {
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_partners').where({ id: partner.id }).whereNull('deleted_at')
      .update({ deleted_at: new Date().toISOString(), lock_version: partner.lock_version + 1 });
    if (n === 0) throw notFound('Partner');
    await journal(trx, { type: 'partner', id: partner.id, userId: ctx.user.id, action: 'delete', changes: [] });
    // Not named: the record's readers need not be the partner's.
    const notes = 'Its partner was deleted';
    for (const { table, type } of MANAGED_BY_PARTNER) {
      const ids = (await trx(table).where({ partner_id: partner.id }).pluck('id')).map(Number);
      if (!ids.length) continue;
      await trx(table).whereIn('id', ids).update({ partner_id: null, lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() });
      await journalMany(trx, ids.map((id) => ({ type, id, userId: ctx.user.id, action: 'update' as const, changes: [{ field: 'partner_id', old: partner.id, new: null }], notes })));
    }
  });
}

/** The partner's consultants this user may see. */
export async function consultantsOf(ctx: CrmContext, partner: Partner): Promise<ContactListing[]> {
  const { query: q } = await visibleContactsQuery(ctx);
  // Awaited here, not returned bare: a knex builder is thenable, and the rows are what the callers want.
  return await q.where('c.partner_id', partner.id).leftJoin('crm_contact_types as t', 't.id', 'c.contact_type_id')
    .select('c.id', 'c.first_name', 'c.last_name', 'c.job_title', 'c.email', 'c.phone', 't.name as type_name')
    .orderBy(['c.last_name', 'c.first_name', 'c.id']).limit(200) as ContactListing[];
}

/** Accounts assigned to the partner (A10) that this user may see. */
export async function managedAccounts(ctx: CrmContext, partner: Partner) {
  const scope = await accountScopeOf(ctx);
  const q = ctx.host.knex('crm_accounts as a').where('a.partner_id', partner.id);
  applyAccountScope(q, scope);
  return await q.select('a.id', 'a.name', 'a.city', 'a.country', 'a.customer_number').orderBy(['a.name', 'a.id']).limit(200);
}

/** Host users linked to the partner: they sign in as partner users and see only its records. */
export async function partnerUsers(ctx: CrmContext, partner: Partner) {
  const ids = new Set((await ctx.host.knex('crm_partner_users').where({ partner_id: partner.id }).pluck('user_id')).map(Number));
  return (await ctx.host.users()).filter((u) => ids.has(u.id));
}

/** Links or unlinks a host user (admins with manage_crm_settings, on the partner page), journaled on the partner. */
export async function setPartnerUser(ctx: CrmContext, partner: Partner, userId: number, linked: boolean): Promise<string> {
  const user = validId(userId) ? await ctx.host.userById(userId) : null;
  if (!user) throw invalid('Choose a user from the list.', { user_id: 'Choose a user from the list' });
  await ctx.host.knex.transaction(async (trx) => {
    const exists = Boolean(await trx('crm_partner_users').where({ partner_id: partner.id, user_id: user.id }).first());
    if (exists === linked) return;
    if (linked) await trx('crm_partner_users').insert({ partner_id: partner.id, user_id: user.id });
    else await trx('crm_partner_users').where({ partner_id: partner.id, user_id: user.id }).delete();
    await journal(trx, { type: 'partner', id: partner.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'users', old: linked ? null : user.login, new: linked ? user.login : null }] });
  });
  return user.name;
}

/**
 * "Assign to partner" on an account (A10): sets crm_accounts.partner_id (or clears it) when nobody saved the
 * account in between, journaled on the account as field partner_id.
 */
export async function assignAccountToPartner(ctx: CrmContext, account: Account, partner: Partner | null, lockVersion: number): Promise<void> {
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_accounts').where({ id: account.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ partner_id: partner?.id ?? null, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This account');
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: changedFields({ partner_id: account.partner_id }, { partner_id: partner?.id ?? null }, ['partner_id']) });
  });
}

export type { RecordScope };
