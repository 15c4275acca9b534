import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { invalid, notFound } from '../http/errors';
import { Account, applyAccountScope } from '../models/account';
import { accountScopeOf, dateText, requireVisibleAccount } from './accounts';
import { whereAnyContains } from './text-search';
import { FieldErrors, text, type FormInput } from './form';
import { journal, referenceTo } from './journal';

/**
 * A7 relations between accounts: linked accounts with an admin-defined relation type (read in both
 * directions: A "Subsidiary of" B is B "Parent company of" A), and internal relations (which employee is
 * involved with an account, in which category, since when, for which commission).
 */

export interface RelationType {
  id: number;
  name: string;
  inverse_name: string;
}

export interface NamedAccount {
  id: number;
  name: string;
}

export interface RelationChoice {
  /** What the form posts: `<type id>` for the type's own wording, `<type id>:inverse` for its inverse. */
  value: string;
  label: string;
}

export interface LinkedAccount {
  link_id: number;
  account_id: number;
  name: string;
  city: string;
  /** The wording from this account's side: "Subsidiary of" here is "Parent company of" on the other. */
  label: string;
  relation_type_id: number;
  /** True when this account is the link's `account_id` (the type's own wording applies). */
  outgoing: boolean;
}

export async function relationTypes(knex: Knex): Promise<RelationType[]> {
  const rows = await knex('crm_relation_types').where({ active: true }).orderBy(['position', 'id']).select('id', 'name', 'inverse_name');
  return rows.map((r) => ({ id: Number(r.id), name: String(r.name), inverse_name: String(r.inverse_name) }));
}

/** One choice per wording: a symmetric type ("Partner of" / "Partner of") is offered once. */
export function relationChoices(types: RelationType[]): RelationChoice[] {
  return types.flatMap((t) => [
    { value: String(t.id), label: t.name },
    ...(t.inverse_name !== t.name ? [{ value: `${t.id}:inverse`, label: t.inverse_name }] : []),
  ]);
}

/** The account's parent and sub-accounts, each only if this user may see it (others are not even named). */
export async function parentAndSubAccounts(ctx: CrmContext, account: Account): Promise<{ parent: NamedAccount | null; children: NamedAccount[] }> {
  const knex = ctx.host.knex;
  const scope = await accountScopeOf(ctx);
  const family = (q: Knex.QueryBuilder) => {
    applyAccountScope(q, scope);
    return q.orderBy(['a.name', 'a.id']).select('a.id', 'a.name');
  };
  const [parent] = account.parent_id ? await family(knex('crm_accounts as a').where('a.id', account.parent_id)) : [];
  const children = await family(knex('crm_accounts as a').where('a.parent_id', account.id).limit(200));
  const named = (r: { id: number; name: string }): NamedAccount => ({ id: Number(r.id), name: String(r.name) });
  return { parent: parent ? named(parent) : null, children: children.map(named) };
}

/** The account's links in both directions, to accounts this user may see (others are not even named). */
export async function linkedAccounts(ctx: CrmContext, accountId: number): Promise<LinkedAccount[]> {
  const knex = ctx.host.knex;
  const scope = await accountScopeOf(ctx);
  const side = (outgoing: boolean) => {
    const q = knex('crm_account_links as l')
      .join('crm_accounts as a', 'a.id', outgoing ? 'l.related_account_id' : 'l.account_id')
      .join('crm_relation_types as t', 't.id', 'l.relation_type_id')
      .where(outgoing ? 'l.account_id' : 'l.related_account_id', accountId)
      .select('l.id as link_id', 'a.id as account_id', 'a.name', 'a.city', 'l.relation_type_id', outgoing ? 't.name as label' : 't.inverse_name as label')
      .limit(500);
    applyAccountScope(q, scope);
    return q;
  };
  const rows = [...(await side(true)).map((r) => ({ ...r, outgoing: true })), ...(await side(false)).map((r) => ({ ...r, outgoing: false }))];
  return rows
    .map((r) => ({ link_id: Number(r.link_id), account_id: Number(r.account_id), name: String(r.name), city: String(r.city ?? ''), label: String(r.label), relation_type_id: Number(r.relation_type_id), outgoing: r.outgoing }))
    .sort((x, y) => x.label.localeCompare(y.label) || x.name.localeCompare(y.name) || x.link_id - y.link_id);
}

/** Accounts this user may see whose name, organization or city contains `term` (for the link form). */
export async function searchVisibleAccounts(ctx: CrmContext, term: string, excludeId: number, limit = 20): Promise<{ id: number; name: string; city: string }[]> {
  const q = term.trim().slice(0, 100);
  if (!q) return [];
  const query = whereAnyContains(ctx.host.knex('crm_accounts as a').whereNot('a.id', excludeId), ['a.name', 'a.organization', 'a.city'], q)
    .orderBy(['a.name', 'a.id']).limit(limit).select('a.id', 'a.name', 'a.city');
  applyAccountScope(query, await accountScopeOf(ctx));
  return (await query).map((r) => ({ id: Number(r.id), name: String(r.name), city: String(r.city ?? '') }));
}

/** Thrown when a typed name matches several accounts: the form offers them to pick from. */
export class AmbiguousAccount extends Error {
  constructor(readonly candidates: { id: number; name: string; city: string }[]) {
    super('Several accounts match');
  }
}

/**
 * The account the link form names: an id ("12", "#12", or "Name (#12)" as the suggestions write it), or a
 * name that matches exactly one account this user may see. An id the user may not see is 404, like
 * everywhere else.
 */
async function resolveTarget(ctx: CrmContext, account: Account, raw: string): Promise<Account> {
  const idMatch = /^#?(\d{1,10})$/.exec(raw) ?? /\(#(\d{1,10})\)\s*$/.exec(raw);
  if (idMatch) return requireVisibleAccount(ctx, Number(idMatch[1]));
  const candidates = await searchVisibleAccounts(ctx, raw, account.id, 21);
  const exact = candidates.filter((c) => c.name.toLowerCase() === raw.toLowerCase());
  const pick = exact.length === 1 ? exact : candidates;
  if (pick.length === 0) throw invalid('The accounts were not linked: fix the fields marked below.', { related_account: 'No account you can see matches this name' });
  if (pick.length > 1) throw new AmbiguousAccount(pick.slice(0, 20));
  return requireVisibleAccount(ctx, pick[0].id);
}

export interface LinkResult {
  link_id: number;
  account_id: number;
  related_account_id: number;
  relation_type_id: number;
  /** As read from the account the form was posted on, and from the other account. */
  label: string;
  inverse_label: string;
  other: { id: number; name: string };
}

/**
 * Links `account` to the account named in the form. The caller has checked that the user may edit
 * `account`; the other account need only be visible. Both accounts journal the link in their own wording.
 */
export async function linkAccounts(ctx: CrmContext, account: Account, input: FormInput): Promise<LinkResult> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const choice = text(input, 'relation');
  const m = /^(\d{1,9})(:inverse)?$/.exec(choice);
  const type = m ? (await relationTypes(knex)).find((t) => t.id === Number(m[1])) : undefined;
  if (!type) errors.add('relation', 'Choose a relation from the list');
  const raw = text(input, 'related_account');
  if (!raw) errors.add('related_account', 'Name the account to link (its name or id)');
  else if (raw.length > 220) errors.add('related_account', 'Account is at most 220 characters');
  if (errors.any || !type || !m) throw invalid('The accounts were not linked: fix the fields marked below.', errors.errors);
  const other = await resolveTarget(ctx, account, raw);
  if (other.id === account.id) throw invalid('The accounts were not linked: fix the fields marked below.', { related_account: 'An account cannot be linked to itself' });
  const inverse = Boolean(m[2]);
  const [from, to] = inverse ? [other, account] : [account, other];
  const label = inverse ? type.inverse_name : type.name;
  const inverseLabel = inverse ? type.name : type.inverse_name;
  const duplicate = invalid('The accounts were not linked: fix the fields marked below.', { related_account: `${account.name} is already “${label}” ${other.name}` });
  return knex.transaction(async (trx) => {
    const existing = trx('crm_account_links').where({ relation_type_id: type.id })
      .where((b) => {
        b.where({ account_id: from.id, related_account_id: to.id });
        // A symmetric relation read either way is the same relation.
        if (type.name === type.inverse_name) b.orWhere({ account_id: to.id, related_account_id: from.id });
      });
    if (await existing.first('id')) throw duplicate;
    let linkId: number;
    try {
      const [row] = await trx('crm_account_links').insert({ account_id: from.id, related_account_id: to.id, relation_type_id: type.id }).returning('id');
      linkId = insertedId(row);
    } catch (err) {
      if (isUniqueViolation(err)) throw duplicate;
      throw err;
    }
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'linked_accounts', old: null, new: `${label} ${other.name}${referenceTo(other.id)}` }] });
    await journal(trx, { type: 'account', id: other.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'linked_accounts', old: null, new: `${inverseLabel} ${account.name}${referenceTo(account.id)}` }] });
    return { link_id: linkId, account_id: from.id, related_account_id: to.id, relation_type_id: type.id, label, inverse_label: inverseLabel, other: { id: other.id, name: other.name } };
  });
}

/** Removes a link of `account` (either direction); the link must involve an account the user may see. */
export async function unlinkAccounts(ctx: CrmContext, account: Account, linkId: number): Promise<void> {
  const links = await linkedAccounts(ctx, account.id);
  const link = links.find((l) => l.link_id === linkId);
  if (!link) throw notFound('Link');
  const type = (await ctx.host.knex('crm_relation_types').where({ id: link.relation_type_id }).first('name', 'inverse_name')) as { name: string; inverse_name: string };
  const otherLabel = link.outgoing ? type.inverse_name : type.name;
  await ctx.host.knex.transaction(async (trx) => {
    const n = await trx('crm_account_links').where({ id: linkId }).delete();
    if (n === 0) throw notFound('Link');
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'linked_accounts', old: `${link.label} ${link.name}${referenceTo(link.account_id)}`, new: null }] });
    await journal(trx, { type: 'account', id: link.account_id, userId: ctx.user.id, action: 'update', changes: [{ field: 'linked_accounts', old: `${otherLabel} ${account.name}${referenceTo(account.id)}`, new: null }] });
  });
}

/** `returning('id')` gives `{ id }` rows on PostgreSQL and SQLite alike, but plain ids on some drivers. */
export function insertedId(row: unknown): number {
  return Number(typeof row === 'object' && row !== null ? (row as { id: unknown }).id : row);
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint failed/.test(e?.message ?? '');
}

// ---------------------------------------------------------------------------------------------------------
// Internal relations

export interface InternalRelation {
  id: number;
  user_id: number;
  user_name: string;
  category_id: number;
  category: string;
  since: string | null;
  commission_bp: number | null;
  /** "12.5 %", or null without a commission. */
  commission: string | null;
}

/** The categories to choose from; `includeId`, a relation's own, even when switched off since (saving keeps it). */
export async function internalCategories(knex: Knex, includeId: number | null = null): Promise<{ id: number; name: string }[]> {
  return (await knex('crm_internal_relation_categories').where((b) => { b.where('active', true); if (includeId) b.orWhere('id', includeId); })
    .orderBy(['position', 'id']).select('id', 'name'))
    .map((r) => ({ id: Number(r.id), name: String(r.name) }));
}

const MAX_BP = 10_000;
const RANGE = 'Commission must be between 0 and 100 %';

/**
 * A percentage as typed ("12.5", "12,5", "12.5 %") → integer hundredths of a percent (1250), exactly, with
 * no floating point on the way. Blank → null.
 */
export function parseCommission(raw: string, errors: FieldErrors, key = 'commission'): number | null {
  const value = raw.replace(/\s*%$/, '').trim();
  if (!value) return null;
  const m = /^(-)?(\d{1,12})(?:[.,](\d+))?$/.exec(value);
  if (!m) {
    errors.add(key, 'Commission must be a number such as 12.5');
    return null;
  }
  if (m[1] && /[1-9]/.test(`${m[2]}${m[3] ?? ''}`)) {
    errors.add(key, RANGE);
    return null;
  }
  if ((m[3] ?? '').length > 2) {
    errors.add(key, 'Commission has at most 2 decimals');
    return null;
  }
  const bp = Number(m[2]) * 100 + Number((m[3] ?? '').padEnd(2, '0'));
  if (bp > MAX_BP) {
    errors.add(key, RANGE);
    return null;
  }
  return bp;
}

/** 1250 → "12.5", 1200 → "12", 1205 → "12.05". */
export function formatCommission(bp: number | null): string | null {
  if (bp === null || bp === undefined) return null;
  const whole = Math.trunc(bp / 100);
  const cents = String(bp % 100).padStart(2, '0').replace(/0+$/, '');
  return cents ? `${whole}.${cents}` : String(whole);
}

export async function internalRelations(ctx: CrmContext, accountId: number): Promise<InternalRelation[]> {
  const rows = await ctx.host.knex('crm_internal_relations as r').join('crm_internal_relation_categories as c', 'c.id', 'r.category_id')
    .where('r.account_id', accountId).orderBy(['c.position', 'r.id']).limit(500)
    .select('r.id', 'r.user_id', 'r.category_id', 'c.name as category', 'r.since', 'r.commission_bp');
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  return rows.map((r) => {
    const bp = r.commission_bp === null || r.commission_bp === undefined ? null : Number(r.commission_bp);
    return {
      id: Number(r.id), user_id: Number(r.user_id), user_name: users.get(Number(r.user_id)) ?? `User #${r.user_id}`, category_id: Number(r.category_id),
      category: String(r.category), since: dateText(r.since), commission_bp: bp, commission: bp === null ? null : `${formatCommission(bp)} %`,
    };
  });
}

export interface InternalRelationInput {
  user_id: number;
  category_id: number;
  since: string | null;
  commission_bp: number | null;
}

/**
 * Reads the internal relation form, reporting every problem at once (422). `existingCategoryId`: the edited
 * relation's category, kept even when switched off since.
 */
export async function readInternalRelation(ctx: CrmContext, input: FormInput, existingCategoryId: number | null = null): Promise<InternalRelationInput> {
  const errors = new FieldErrors();
  const userId = errors.id(input, 'user_id', 'User');
  if (!userId) errors.add('user_id', 'Choose a user');
  else if (!(await ctx.host.userById(userId))) errors.add('user_id', 'Choose a user from the list');
  const categoryId = errors.id(input, 'category_id', 'Category');
  if (!categoryId) errors.add('category_id', 'Choose a category');
  else if (!(await internalCategories(ctx.host.knex, existingCategoryId)).some((c) => c.id === categoryId)) errors.add('category_id', 'Choose a category from the list');
  const since = errors.date(input, 'since', 'Since');
  const commission = parseCommission(text(input, 'commission'), errors);
  if (errors.any) throw invalid('The internal relation was not saved: fix the fields marked below.', errors.errors);
  return { user_id: userId!, category_id: categoryId!, since, commission_bp: commission };
}

function describe(r: InternalRelationInput, users: Map<number, string>, categories: Map<number, string>): string {
  return [users.get(r.user_id) ?? `User #${r.user_id}`, categories.get(r.category_id) ?? `#${r.category_id}`,
    r.since ? `since ${r.since}` : null, r.commission_bp !== null ? `${formatCommission(r.commission_bp)} %` : null].filter(Boolean).join(' · ');
}

async function names(ctx: CrmContext) {
  return {
    users: new Map((await ctx.host.users()).map((u) => [u.id, u.name])),
    // Every category, switched off or not: a relation may keep one switched off since.
    categories: new Map((await ctx.host.knex('crm_internal_relation_categories').select('id', 'name')).map((c: { id: number; name: string }) => [Number(c.id), String(c.name)])),
  };
}

async function requireInternalRelation(knex: Knex, accountId: number, id: number): Promise<InternalRelationInput & { id: number }> {
  const row = Number.isInteger(id) && id > 0 ? await knex('crm_internal_relations').where({ id, account_id: accountId }).first() : null;
  if (!row) throw notFound('Internal relation');
  return { id: Number(row.id), user_id: Number(row.user_id), category_id: Number(row.category_id), since: dateText(row.since), commission_bp: row.commission_bp === null ? null : Number(row.commission_bp) };
}

export async function findInternalRelation(ctx: CrmContext, account: Account, id: number) {
  return requireInternalRelation(ctx.host.knex, account.id, id);
}

type Names = Awaited<ReturnType<typeof names>>;

function duplicateRelation(input: InternalRelationInput, { users, categories }: Names) {
  const user = users.get(input.user_id) ?? `User #${input.user_id}`;
  const category = categories.get(input.category_id) ?? `#${input.category_id}`;
  return invalid('The internal relation was not saved: fix the fields marked below.', { user_id: `${user} is already “${category}” of this account` });
}

/**
 * Saves `write` unless the account has this user in this category already (one relation per account, user and
 * category: migration 035's unique index). A simultaneous save of the same relation passes the look-up and meets
 * the index: it answers the same 422.
 */
async function withoutDuplicate<T>(trx: Knex.Transaction, accountId: number, input: InternalRelationInput, exceptId: number | null, known: Names, write: () => Promise<T>): Promise<T> {
  const q = trx('crm_internal_relations').where({ account_id: accountId, user_id: input.user_id, category_id: input.category_id });
  if (exceptId) q.whereNot('id', exceptId);
  if (await q.first('id')) throw duplicateRelation(input, known);
  try {
    return await write();
  } catch (err) {
    if (isUniqueViolation(err)) throw duplicateRelation(input, known);
    throw err;
  }
}

export async function addInternalRelation(ctx: CrmContext, account: Account, input: InternalRelationInput): Promise<number> {
  const known = await names(ctx);
  return ctx.host.knex.transaction(async (trx) => {
    const [row] = await withoutDuplicate(trx, account.id, input, null, known, () => trx('crm_internal_relations').insert({ account_id: account.id, ...input }).returning('id'));
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'internal_relations', old: null, new: describe(input, known.users, known.categories) }] });
    return insertedId(row);
  });
}

export async function updateInternalRelation(ctx: CrmContext, account: Account, id: number, input: InternalRelationInput): Promise<void> {
  const known = await names(ctx);
  await ctx.host.knex.transaction(async (trx) => {
    const before = await requireInternalRelation(trx, account.id, id);
    await withoutDuplicate(trx, account.id, input, id, known, () => trx('crm_internal_relations').where({ id, account_id: account.id }).update(input));
    const old = describe(before, known.users, known.categories);
    const now = describe(input, known.users, known.categories);
    if (old !== now) await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'internal_relations', old, new: now }] });
  });
}

export async function removeInternalRelation(ctx: CrmContext, account: Account, id: number): Promise<void> {
  const { users, categories } = await names(ctx);
  await ctx.host.knex.transaction(async (trx) => {
    const before = await requireInternalRelation(trx, account.id, id);
    await trx('crm_internal_relations').where({ id, account_id: account.id }).delete();
    await journal(trx, { type: 'account', id: account.id, userId: ctx.user.id, action: 'update', changes: [{ field: 'internal_relations', old: describe(before, users, categories), new: null }] });
  });
}
