import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { forbidden, invalid, notFound, staleRecord } from '../http/errors';
import type { HostProject, HostTask } from '../host';
import { applyAccountScope, type Account } from '../models/account';
import { applyPartnerScope } from '../models/partner';
import { applyContactScope, CONTACT_FIELDS, contactName, ContactType, PersonalContact } from '../models/contact';
import { accountScopeOf, canEditAccount, findVisibleAccount, globalContext, partnerScopeOf } from './accounts';
import { whereAnyContains } from './text-search';
import { FieldErrors, text, type FormInput, positiveId, validId } from './form';
import { changedFields, journal, journalMany, referenceTo } from './journal';
import type { PageMeta } from './pagination';
import { findVisiblePartner, partnerOfPartnerUser, partnerPicker, type PartnerPicker } from './partners';
import { roleLabel } from './opportunity-actions';
import { recordScope, type RecordScope } from './visibility';

export const CONTACT_SORTS = ['last_name', 'first_name', 'city', 'created_at', 'updated_at'] as const;

export interface ContactFilters {
  q: string;
  type: number | null;
  partner: number | null;
  sort: (typeof CONTACT_SORTS)[number];
  dir: 'asc' | 'desc';
}

export function parseContactFilters(query: FormInput): ContactFilters {
  const sort = text(query, 'sort');
  return {
    q: text(query, 'q').slice(0, 100),
    type: positiveId(text(query, 'type')),
    partner: positiveId(text(query, 'partner')),
    sort: (CONTACT_SORTS as readonly string[]).includes(sort) ? (sort as ContactFilters['sort']) : 'last_name',
    dir: text(query, 'dir') === 'desc' ? 'desc' : 'asc',
  };
}

export function contactFilterParams(f: ContactFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (f.q) out.q = f.q;
  if (f.type) out.type = String(f.type);
  if (f.partner) out.partner = String(f.partner);
  if (f.sort !== 'last_name') out.sort = f.sort;
  if (f.dir !== 'asc') out.dir = f.dir;
  return out;
}

/** The contact scope plus the account scope that extends it (a contact on a visible account is visible). */
async function scopes(ctx: CrmContext, kind: 'view' | 'edit' | 'delete', global?: boolean): Promise<[RecordScope, RecordScope]> {
  const options = global === undefined ? {} : { global };
  return [
    await recordScope(ctx, 'personal_contacts', `${kind}_personal_contacts`, options),
    await recordScope(ctx, 'accounts', kind === 'view' ? 'view_accounts' : 'edit_accounts', options),
  ];
}

/**
 * Every contact this user may see (from any page), as a query on `crm_personal_contacts` aliased `c`. Wrapped
 * in an object: a query builder is thenable, so returning it from an async function would run it.
 */
export async function visibleContactsQuery(ctx: CrmContext): Promise<{ query: Knex.QueryBuilder }> {
  const [scope, accountScope] = await scopes(globalContext(ctx), 'view', true);
  const query = ctx.host.knex('crm_personal_contacts as c');
  applyContactScope(query, scope, accountScope);
  return { query };
}

/** Those of `ids` this user may see (one query): histories name a contact only to its readers. */
export async function visibleContactIds(ctx: CrmContext, ids: number[]): Promise<Set<number>> {
  if (!ids.length) return new Set();
  const { query } = await visibleContactsQuery(ctx);
  return new Set((await query.whereIn('c.id', ids).pluck('c.id')).map(Number));
}

/** A contact as the lists of contacts show one: the contact list, an account's People tab, a partner's consultants. */
export interface ContactListing {
  id: number;
  first_name: string;
  last_name: string;
  job_title: string;
  email: string;
  phone: string;
  /** Null for a contact without a type. */
  type_name: string | null;
}

export interface ContactRow extends ContactListing {
  city: string;
  owner_id: number | null;
  /** The partner if this user may see it, else null (none, or one they may not see: `partner_hidden`). */
  partner_id: number | null;
  partner_name: string | null;
  /** The contact has a partner this user may not see, given without its id or name. */
  partner_hidden: boolean;
}

/** A page of the contacts this user may see on this page (global or project), searched and sorted in SQL. */
export async function listContacts(ctx: CrmContext, filters: ContactFilters, page: number, perPage: number): Promise<{ rows: ContactRow[]; meta: PageMeta }> {
  const [scope, accountScope] = await scopes(ctx, 'view');
  const knex = ctx.host.knex;
  const base = knex('crm_personal_contacts as c');
  applyContactScope(base, scope, accountScope);
  if (filters.q) whereAnyContains(base, ['c.first_name', 'c.last_name', 'c.email', 'c.job_title', 'c.phone', 'c.city'], filters.q);
  if (filters.type) base.where('c.contact_type_id', filters.type);
  // A contact is also seen through an account it works for: its partner is named (and its id given) only to those
  // who may see it, from the one join below; to others it is `partner_hidden`.
  const partners = knex('crm_partners as p').select('p.id', 'p.name');
  applyPartnerScope(partners, await partnerScopeOf(ctx));
  // (A filter on a partner the reader may not see is left out before it gets here: see the list route.)
  if (filters.partner) base.where('c.partner_id', filters.partner);
  const [{ total }] = await base.clone().count({ total: '*' });
  const count = Number(total);
  const pages = Math.max(1, Math.ceil(count / perPage));
  const current = Math.min(page, pages);
  const rows = await base.clone()
    .leftJoin('crm_contact_types as t', 't.id', 'c.contact_type_id')
    .leftJoin(partners.as('vp'), 'vp.id', 'c.partner_id')
    .select('c.id', 'c.first_name', 'c.last_name', 'c.job_title', 'c.email', 'c.phone', 'c.city', 'c.owner_id', 'vp.id as partner_id', 't.name as type_name', 'vp.name as partner_name',
      knex.raw('case when c.partner_id is not null and vp.id is null then 1 else 0 end as partner_hidden'))
    .orderBy([{ column: `c.${filters.sort}`, order: filters.dir }, { column: 'c.first_name', order: filters.dir }, { column: 'c.id', order: filters.dir }])
    .limit(perPage).offset((current - 1) * perPage);
  return {
    rows: rows.map((r: Record<string, unknown>) => ({ ...r, partner_hidden: Number(r.partner_hidden) === 1 }) as ContactRow),
    meta: { page: current, pages, total: count, per_page: perPage },
  };
}

/** The contact if this user may see it (the global rule applies from any page), else null. */
export async function findVisibleContact(ctx: CrmContext, id: number): Promise<PersonalContact | null> {
  if (!validId(id)) return null;
  const [scope, accountScope] = await scopes(globalContext(ctx), 'view', true);
  const q = PersonalContact.query(ctx.host.knex).alias('c').where('c.id', id).select('c.*');
  applyContactScope(q, scope, accountScope);
  return (await q.first()) ?? null;
}

/** A visible contact or 404: the one way routes load a contact by id. */
export async function requireVisibleContact(ctx: CrmContext, id: number): Promise<PersonalContact> {
  const contact = await findVisibleContact(ctx, id);
  if (!contact) throw notFound('Contact');
  return contact;
}

/** Edit (or delete) rights: the permission, and the contact in reach at that level; never through a supervisor. */
export async function canChangeContact(ctx: CrmContext, contact: PersonalContact, kind: 'edit' | 'delete' = 'edit'): Promise<boolean> {
  if (!(await ctx.host.can(ctx.user, `${kind}_personal_contacts`))) return false;
  const [scope, accountScope] = await scopes(globalContext(ctx), kind, true);
  const q = ctx.host.knex('crm_personal_contacts as c').where('c.id', contact.id);
  applyContactScope(q, scope, accountScope);
  return Boolean(await q.first('c.id'));
}

export async function requireEditableContact(ctx: CrmContext, id: number, kind: 'edit' | 'delete' = 'edit'): Promise<PersonalContact> {
  const contact = await requireVisibleContact(ctx, id);
  if (!(await canChangeContact(ctx, contact, kind))) throw forbidden('You may see this contact but not change it.');
  return contact;
}

export interface ContactFormOptions {
  types: ContactType[];
  partners: PartnerPicker;
  users: { id: number; name: string }[];
}

/**
 * `partnerId`: the partner the form or filter holds, kept in its picker even when this user cannot see it.
 * `typeId`: the contact's own type, offered even when switched off since, so saving the form keeps it.
 */
export async function contactFormOptions(ctx: CrmContext, partnerId: number | null, typeId: number | null = null): Promise<ContactFormOptions> {
  return {
    types: await ContactType.query(ctx.host.knex).where((b) => { b.where('active', true); if (typeId) b.orWhere('id', typeId); }).orderBy(['position', 'id']),
    partners: await partnerPicker(ctx, partnerId),
    users: (await ctx.host.users()).map((u) => ({ id: u.id, name: u.name })),
  };
}

export async function contactTypeId(knex: Knex, name: string): Promise<number | null> {
  const row = await knex('crm_contact_types').where({ name, active: true }).first('id');
  return row ? Number(row.id) : null;
}

export interface ContactInput {
  data: Record<(typeof CONTACT_FIELDS)[number], unknown>;
  /** On create only: link the new contact to this account ("new employee"), with this role. */
  account: Account | null;
  role: string;
}

/** Reads and checks the contact form (A9), reporting every problem at once as field errors (422). */
export async function readContactInput(ctx: CrmContext, input: FormInput, existing: PersonalContact | null): Promise<ContactInput> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const typeId = errors.id(input, 'contact_type_id', 'Contact type');
  // A type switched off since stays on the contacts that have it; it is not given to others.
  if (typeId && typeId !== existing?.contact_type_id && !(await knex('crm_contact_types').where({ id: typeId, active: true }).first())) {
    errors.add('contact_type_id', 'Choose a contact type from the list');
  }
  const ownerId = errors.id(input, 'owner_id', 'Owner');
  if (ownerId && !(await ctx.host.userById(ownerId))) errors.add('owner_id', 'Choose an owner from the list');
  const chosenPartner = errors.id(input, 'partner_id', 'Partner');
  // A partner the user cannot see is not confirmed to exist (404), unless the contact already had it.
  if (chosenPartner && chosenPartner !== existing?.partner_id && !(await findVisiblePartner(ctx, chosenPartner))) throw notFound('Partner');
  const partnerId = await partnerOfPartnerUser(ctx, errors, chosenPartner, !existing, 'consultants');
  const email = errors.email(input, 'email', 'Email');
  // A9: users of the platform are distinct from contacts and never duplicated as contacts.
  if (email && (await ctx.host.users()).some((u) => u.email.toLowerCase() === email.toLowerCase())) {
    errors.add('email', 'This is the email of a user of the platform: users are not added as personal contacts');
  }
  let account: Account | null = null;
  let role = '';
  if (!existing) {
    const accountId = errors.id(input, 'account_id', 'Account');
    if (accountId) {
      account = await findVisibleAccount(ctx, accountId);
      if (!account) throw notFound('Account');
      if (!(await canEditAccount(ctx, account))) errors.add('account_id', 'You may not add people to this account');
    }
    role = errors.text(input, 'role', 'Role', { max: 100 });
  }
  const data: ContactInput['data'] = {
    contact_type_id: typeId,
    first_name: errors.text(input, 'first_name', 'First name', { max: 100 }),
    last_name: errors.text(input, 'last_name', 'Last name', { max: 100, required: true }),
    job_title: errors.text(input, 'job_title', 'Job title', { max: 100 }),
    email,
    phone: errors.text(input, 'phone', 'Phone', { max: 60 }),
    city: errors.text(input, 'city', 'City', { max: 100 }),
    country: errors.text(input, 'country', 'Country', { max: 100 }),
    partner_id: partnerId,
    owner_id: ownerId,
    note: errors.text(input, 'note', 'Note', { max: 10_000 }),
  };
  if (errors.any) throw invalid('The contact was not saved: fix the fields marked below.', errors.errors);
  return { data, account, role };
}

/** Links contact and account once, journaled on both sides; false when they were linked already. */
async function linkInTrx(trx: Knex.Transaction, ctx: CrmContext, account: { id: number; name: string }, contact: PersonalContact, role: string): Promise<boolean> {
  // Not "look, then insert": two simultaneous requests would both find no link and the second insert would break the
  // primary key. A link already there (or made by the other request in the meantime) inserts nothing.
  const inserted = await trx('crm_account_contacts').insert({ account_id: account.id, contact_id: contact.id, role })
    .onConflict(['account_id', 'contact_id']).ignore().returning('contact_id');
  if (inserted.length === 0) return false;
  await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'contacts', old: null, new: `+${contactName(contact)}${role ? ` (${role})` : ''}${referenceTo(contact.id)}` }] });
  await journal(trx, { type: 'personal_contact', id: contact.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'accounts', old: null, new: `+${account.name}${referenceTo(account.id)}` }] });
  return true;
}

/** Creates the contact (in `project`, if any), links it to the account it was created from, journals both. */
export async function createContact(ctx: CrmContext, input: ContactInput, project: HostProject | null): Promise<PersonalContact> {
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await trx('crm_personal_contacts').insert({ ...input.data, project_id: project?.id ?? null, author_id: ctx.user.id }).returning('id');
    const id = Number(row.id ?? row);
    const fields = changedFields({}, input.data, [...CONTACT_FIELDS]).filter((c) => c.new !== '' && c.new !== null);
    await journal(trx, { type: 'personal_contact', id, userId: ctx.user.id, action: 'create', changes: [...fields, ...(project ? [{ field: 'project', old: null, new: project.identifier }] : [])] });
    const contact = (await PersonalContact.query(trx).findById(id))!;
    if (input.account) await linkInTrx(trx, ctx, input.account, contact, input.role);
    return contact;
  });
}

/** Saves an edit if nobody saved in between (`lockVersion`), journaling each changed field old → new. */
export async function updateContact(ctx: CrmContext, contact: PersonalContact, input: ContactInput, lockVersion: number): Promise<PersonalContact> {
  return ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_personal_contacts').where({ id: contact.id, lock_version: lockVersion }).whereNull('deleted_at')
      .update({ ...input.data, lock_version: lockVersion + 1, updated_at: new Date().toISOString() });
    if (n === 0) throw staleRecord('This contact');
    await journal(trx, { type: 'personal_contact', id: contact.id, userId: ctx.user.id, action: 'update', changes: changedFields(contact as unknown as Record<string, unknown>, input.data, [...CONTACT_FIELDS]) });
    return (await PersonalContact.query(trx).findById(contact.id))!;
  });
}

/**
 * Soft delete: the row stays for the journal; it disappears from lists and lookups. Nothing keeps pointing at it:
 * in the same transaction it leaves the accounts it works for, its business roles, and the opportunities it is the
 * contact of, each journaled on that record (or every reader of those would meet "a contact you cannot see").
 */
export async function deleteContact(ctx: CrmContext, contact: PersonalContact): Promise<void> {
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_personal_contacts').where({ id: contact.id }).whereNull('deleted_at')
      .update({ deleted_at: new Date().toISOString(), lock_version: contact.lock_version + 1 });
    if (n === 0) throw notFound('Contact');
    await journal(trx, { type: 'personal_contact', id: contact.id, userId: ctx.user.id, action: 'delete', changes: [] });
    const notes = 'Its contact was deleted';
    const named = `${contactName(contact)}${referenceTo(contact.id)}`;
    const accountIds = (await trx('crm_account_contacts').where({ contact_id: contact.id }).pluck('account_id')).map(Number);
    await trx('crm_account_contacts').where({ contact_id: contact.id }).delete();
    await journalMany(trx, accountIds.map((id) => ({ type: 'account', id, userId: ctx.user.id, action: 'update', changes: [{ field: 'contacts', old: named, new: null }], notes })));
    const roles: { opportunity_id: number; description: string | null }[] = await trx('crm_business_roles').where({ contact_id: contact.id }).select('opportunity_id', 'description');
    await trx('crm_business_roles').where({ contact_id: contact.id }).delete();
    const oppIds = (await trx('crm_opportunities').where({ contact_id: contact.id }).pluck('id')).map(Number);
    if (oppIds.length) await trx('crm_opportunities').whereIn('id', oppIds).update({ contact_id: null, lock_version: trx.raw('lock_version + 1'), updated_at: new Date().toISOString() });
    await journalMany(trx, [...new Set([...oppIds, ...roles.map((r) => Number(r.opportunity_id))])].map((id) => ({
      type: 'opportunity', id, userId: ctx.user.id, action: 'update' as const, notes,
      changes: [
        ...(oppIds.includes(id) ? [{ field: 'contact_id', old: contact.id, new: null }] : []),
        ...roles.filter((r) => Number(r.opportunity_id) === id).map((r) => ({ field: 'business_roles', old: roleLabel(contact.id, String(r.description ?? '')), new: null })),
      ],
    })));
  });
}

/** The accounts this contact works for that the user may see, with the role. */
export async function accountsOfContact(ctx: CrmContext, contact: PersonalContact): Promise<{ id: number; name: string; role: string }[]> {
  const scope = await accountScopeOf(ctx);
  const q = ctx.host.knex('crm_accounts as a').join('crm_account_contacts as ac', 'ac.account_id', 'a.id').where('ac.contact_id', contact.id);
  applyAccountScope(q, scope);
  // Awaited here, not returned bare: a knex builder is thenable, and the rows are what the callers want.
  return await q.select('a.id', 'a.name', 'ac.role').orderBy(['a.name', 'a.id']).limit(200);
}

/** A row of an account's People tab: the contact with its role there. */
export interface AccountContactRow extends ContactListing {
  role: string;
}

/** The People tab of an account (A6, A9): its visible contacts with their role. */
export async function contactsOfAccount(ctx: CrmContext, accountId: number): Promise<AccountContactRow[]> {
  const { query: q } = await visibleContactsQuery(ctx);
  return await q.join('crm_account_contacts as ac', 'ac.contact_id', 'c.id').where('ac.account_id', accountId)
    .leftJoin('crm_contact_types as t', 't.id', 'c.contact_type_id')
    .select('c.id', 'c.first_name', 'c.last_name', 'c.job_title', 'c.email', 'c.phone', 'ac.role', 't.name as type_name')
    .orderBy(['c.last_name', 'c.first_name', 'c.id']).limit(500) as AccountContactRow[];
}

/**
 * Links an existing contact to an account (A9) by id or by name: a name must match exactly one visible
 * contact. An id the user cannot see answers 404; nothing is linked twice.
 */
export async function linkContactToAccount(ctx: CrmContext, account: Account, input: FormInput): Promise<PersonalContact> {
  const ref = text(input, 'contact');
  const errors = new FieldErrors();
  const role = errors.text(input, 'role', 'Role', { max: 100 });
  if (!ref) errors.add('contact', 'Enter a contact id or name');
  if (errors.any) throw invalid('The contact was not linked.', errors.errors);
  let contact: PersonalContact | null;
  if (/^#?\d{1,10}$/.test(ref)) {
    contact = await findVisibleContact(ctx, Number(ref.replace('#', '')));
    if (!contact) throw notFound('Contact');
  } else {
    const { query: q } = await visibleContactsQuery(ctx);
    const matches: { id: number; first_name: string; last_name: string }[] = await whereAnyContains(q, ["c.first_name || ' ' || c.last_name", 'c.last_name'], ref)
      .select('c.id', 'c.first_name', 'c.last_name').orderBy(['c.last_name', 'c.first_name']).limit(6);
    if (matches.length === 0) throw invalid('The contact was not linked.', { contact: 'No contact you can see matches this name' });
    if (matches.length > 1) {
      const names = matches.slice(0, 5).map((m) => `${contactName(m)} (#${m.id})`).join(', ');
      throw invalid('The contact was not linked.', { contact: `Several contacts match: ${names}. Enter the id.` });
    }
    contact = (await findVisibleContact(ctx, Number(matches[0].id)))!;
  }
  const linked = await ctx.host.knex.transaction((trx) => linkInTrx(trx, ctx, account, contact, role));
  if (!linked) throw invalid('The contact was not linked.', { contact: `${contactName(contact)} is already linked to this account` });
  return contact;
}

export async function unlinkContactFromAccount(ctx: CrmContext, account: Account, contactId: number): Promise<PersonalContact> {
  const contact = await requireVisibleContact(ctx, contactId);
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_account_contacts').where({ account_id: account.id, contact_id: contact.id }).delete();
    if (n === 0) throw notFound('Link');
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'contacts', old: `${contactName(contact)}${referenceTo(contact.id)}`, new: null }] });
    await journal(trx, { type: 'personal_contact', id: contact.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'accounts', old: `${account.name}${referenceTo(account.id)}`, new: null }] });
  });
  return contact;
}

/** May this user add a host task for this contact: it has a project and the user may add tasks there. */
export async function taskProject(ctx: CrmContext, contact: PersonalContact): Promise<HostProject | null> {
  if (!contact.project_id) return null;
  const project = await ctx.host.projectById(contact.project_id);
  return project && (await ctx.host.can(ctx.user, 'add_tasks', project)) ? project : null;
}

/** "New task" on a contact: a host task in the contact's project, journaled on the contact. */
export async function createContactTask(ctx: CrmContext, contact: PersonalContact, input: FormInput): Promise<HostTask> {
  const project = await taskProject(ctx, contact);
  if (!project) throw notFound('Project');
  const errors = new FieldErrors();
  const subject = errors.text(input, 'subject', 'Subject', { max: 200, required: true });
  if (errors.any) throw invalid('The task was not created.', errors.errors);
  return ctx.host.knex.transaction(async (trx) => {
    const task = await ctx.host.createTask({ projectId: project.id, subject, description: `Contact: ${contactName(contact)} (/crm/personal-contacts/${contact.id})` }, trx);
    await journal(trx, { type: 'personal_contact', id: contact.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'tasks', old: null, new: `#${task.id} ${subject}` }] });
    return task;
  });
}
