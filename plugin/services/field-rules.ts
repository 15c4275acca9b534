import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { FIELD_LABELS, RULED_FIELDS, type OpportunityField } from '../models/opportunity';
import { readUnderVersions } from './data-version';
import { readOnce } from './request-memo';

/** S5: per role and opportunity status, a field may be read-only, required or hidden. */
export type FieldRule = 'read_only' | 'required' | 'hidden';
export const FIELD_RULES: FieldRule[] = ['read_only', 'required', 'hidden'];
/** Read once per request and shared (viewerFieldRules): read-only. */
export type FieldRules = ReadonlyMap<OpportunityField, FieldRule>;

const NO_RULES: FieldRules = new Map();

/** The (projects, statuses) where a field is hidden from this user: the rules of one of their roles. */
export interface HiddenPlaces {
  projectIds: number[];
  statusIds: number[];
}

/**
 * The field rules for every opportunity this user may meet: their role per project (admins, who hold every
 * permission without a role, have none) and that role's rules per status. Read once per request in one query,
 * so a list applies them to each row in memory.
 */
export interface ViewerFieldRules {
  /** The rules for an opportunity in `projectId` at `statusId`. */
  at(projectId: number, statusId: number): FieldRules;
  /** Where `field` is hidden from this user (see hiddenFields), for conditions in SQL; empty when nowhere. */
  hiddenPlaces(field: OpportunityField): HiddenPlaces[];
  /** Everything the rules hide, as a string: a part of the cache key of anything computed under them. */
  readonly key: string;
}

export function viewerFieldRules(ctx: CrmContext): Promise<ViewerFieldRules> {
  return readOnce(ctx.host.knex, `viewer-field-rules:${ctx.user.id}`, async () => {
    if (ctx.user.admin) return ruleBook(new Map(), new Map());
    const roleOfProject = new Map<number, number>();
    // The first membership in a project decides, as everywhere the rules are read.
    for (const m of await ctx.host.memberships(ctx.user)) if (!roleOfProject.has(m.projectId)) roleOfProject.set(m.projectId, m.roleId);
    const roleIds = [...new Set(roleOfProject.values())];
    const rows = roleIds.length ? await fieldPermissionRows(ctx.host.knex, roleIds) : [];
    const rulesOfRole = new Map<number, Map<number, Map<OpportunityField, FieldRule>>>();
    for (const r of rows) {
      if (!(RULED_FIELDS as string[]).includes(r.field) || !(FIELD_RULES as string[]).includes(r.rule)) continue;
      const byStatus = rulesOfRole.get(Number(r.role_id)) ?? rulesOfRole.set(Number(r.role_id), new Map()).get(Number(r.role_id))!;
      const rules = byStatus.get(Number(r.status_id)) ?? byStatus.set(Number(r.status_id), new Map()).get(Number(r.status_id))!;
      rules.set(r.field as OpportunityField, r.rule as FieldRule);
    }
    return ruleBook(roleOfProject, rulesOfRole);
  });
}

/** The field rules of these roles, kept under the table's version (every page with an opportunity on it reads them). */
function fieldPermissionRows(knex: Knex, roleIds: number[]): Promise<{ role_id: number; status_id: number; field: string; rule: string }[]> {
  const ids = [...roleIds].sort((a, b) => a - b);
  return readUnderVersions(knex, 'field-permissions', ['crm_field_permissions'], ids, async () =>
    knex('crm_field_permissions').whereIn('role_id', ids).select('role_id', 'status_id', 'field', 'rule'));
}

function ruleBook(roleOfProject: Map<number, number>, rulesOfRole: Map<number, Map<number, FieldRules>>): ViewerFieldRules {
  const placesOf = (field: OpportunityField): HiddenPlaces[] => [...rulesOfRole].flatMap(([roleId, byStatus]) => {
    const statusIds = [...byStatus].filter(([, rules]) => hiddenFields(rules).has(field)).map(([statusId]) => statusId).sort((a, b) => a - b);
    const projectIds = [...roleOfProject].filter(([, role]) => role === roleId).map(([projectId]) => projectId).sort((a, b) => a - b);
    return statusIds.length && projectIds.length ? [{ projectIds, statusIds }] : [];
  });
  const hidden = new Map(RULED_FIELDS.map((f) => [f, placesOf(f)]));
  return {
    at: (projectId, statusId) => {
      const roleId = roleOfProject.get(projectId);
      return (roleId === undefined ? undefined : rulesOfRole.get(roleId)?.get(statusId)) ?? NO_RULES;
    },
    hiddenPlaces: (field) => hidden.get(field) ?? [],
    key: JSON.stringify([...hidden].filter(([, places]) => places.length)),
  };
}

/**
 * The rules that apply to this user for an opportunity in `projectId` at `statusId`: those of the user's
 * role in that project. Admins have no rules.
 */
export async function fieldRulesFor(ctx: CrmContext, projectId: number, statusId: number): Promise<FieldRules> {
  return (await viewerFieldRules(ctx)).at(projectId, statusId);
}

/**
 * The fields these rules hide. An amount is never shown without its currency (lists, totals, documents and
 * history print them together), so a hidden currency hides the amount as well.
 */
export function hiddenFields(rules: FieldRules): Set<OpportunityField> {
  const hidden = new Set(RULED_FIELDS.filter((f) => rules.get(f) === 'hidden'));
  if (hidden.has('currency')) hidden.add('amount_minor');
  return hidden;
}

/**
 * What is shown in place of a field, or computed from it: it goes with the field. (`<field>_hidden` says that the
 * field points to a record the reader may not see: where the rules hide the field, not even that is said.)
 */
const SHOWN_WITH: Partial<Record<OpportunityField, readonly string[]>> = {
  amount_minor: ['amount', 'weighted_minor'],
  account_id: ['account_name', 'account_hidden'],
  contact_id: ['contact_hidden'],
  partner_id: ['partner_hidden'],
};

/** Keys that the field rules may take out of an opportunity (or of a row, card or JSON made from one). */
export type HideableKey = OpportunityField | 'amount' | 'weighted_minor' | 'account_name' | 'account_hidden' | 'contact_hidden' | 'partner_hidden';
/** An opportunity as a user may see it: the hideable keys may be missing. */
export type SeenOpportunity<T> = Omit<T, HideableKey> & Partial<Pick<T, Extract<keyof T, HideableKey>>>;

/**
 * What this user may see of an opportunity — a record, a list row, a kanban card, its JSON or its document data:
 * a copy without the fields that the rules of its status hide for the user's role (S5), nor what stands for
 * them. The one place that decides; everything that shows an opportunity's fields goes through it.
 */
export function visibleOpportunityFields<T extends object>(record: T, rules: FieldRules): SeenOpportunity<T> {
  const hidden = hiddenFields(rules);
  if (!hidden.size) return record as SeenOpportunity<T>;
  const copy = { ...record } as Record<string, unknown>;
  for (const field of hidden) for (const key of [field, ...(SHOWN_WITH[field] ?? [])]) delete copy[key];
  return copy as SeenOpportunity<T>;
}

/**
 * How an opportunity is named to this user: its name, or `Opportunity #<id>` where `rules` (those of its status,
 * S5) hide the name. The one way pages, titles, headings, links and confirm texts name an opportunity. A row that
 * went through visibleOpportunityFields has already lost a hidden name: name it without rules.
 */
export function opportunityLabel(opp: { id: number; name?: string | null }, rules: FieldRules = NO_RULES): string {
  return (hiddenFields(rules).has('name') ? null : opp.name) ?? `Opportunity #${opp.id}`;
}

/** opportunityLabel under the rules of the opportunity's project and status for this user (read once per request). */
export async function opportunityLabelFor(ctx: CrmContext, opp: { id: number; name: string; project_id: number; status_id: number }): Promise<string> {
  return opportunityLabel(opp, await fieldRulesFor(ctx, opp.project_id, opp.status_id));
}

/**
 * SQL on `crm_opportunities` aliased `o`: true where `field` is hidden from this user, or null when it is hidden
 * nowhere (the query then stays as it was). The ids are the host's integer ids, bound as parameters.
 */
export function hiddenSql(knex: Knex, rules: ViewerFieldRules, field: OpportunityField): Knex.Raw | null {
  const places = rules.hiddenPlaces(field);
  if (!places.length) return null;
  const list = (ids: number[]) => ids.map(() => '?').join(', ');
  return knex.raw(`(${places.map((p) => `(o.project_id in (${list(p.projectIds)}) and o.status_id in (${list(p.statusIds)}))`).join(' or ')})`,
    places.flatMap((p) => [...p.projectIds, ...p.statusIds]));
}

const isEmpty = (v: unknown) => v === null || v === undefined || v === '';

/** Required fields (by these rules) that `record` leaves empty, as user-facing labels. */
export function missingRequired(rules: FieldRules, record: Record<string, unknown>): string[] {
  return RULED_FIELDS.filter((f) => rules.get(f) === 'required' && isEmpty(record[f])).map((f) => FIELD_LABELS[f]);
}
