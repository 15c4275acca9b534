import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { FIELD_LABELS, RULED_FIELDS, type OpportunityField } from '../models/opportunity';

/** S5: per role and opportunity status, a field may be read-only, required or hidden. */
export type FieldRule = 'read_only' | 'required' | 'hidden';
export const FIELD_RULES: FieldRule[] = ['read_only', 'required', 'hidden'];
export type FieldRules = Map<OpportunityField, FieldRule>;

/**
 * The rules that apply to this user for an opportunity in `projectId` at `statusId`: those of the user's
 * role in that project. Admins (who hold every permission without a role) have no rules.
 */
export async function fieldRulesFor(ctx: CrmContext, projectId: number, statusId: number): Promise<FieldRules> {
  if (ctx.user.admin) return new Map();
  const roleId = (await ctx.host.memberships(ctx.user)).find((m) => m.projectId === projectId)?.roleId;
  if (roleId === undefined) return new Map();
  return rulesOfRole(ctx.host.knex, roleId, statusId);
}

export async function rulesOfRole(knex: Knex, roleId: number, statusId: number): Promise<FieldRules> {
  const rows = await knex('crm_field_permissions').where({ role_id: roleId, status_id: statusId }).select('field', 'rule');
  return new Map(rows.filter((r) => (RULED_FIELDS as string[]).includes(r.field)).map((r) => [r.field as OpportunityField, r.rule as FieldRule]));
}

const isEmpty = (v: unknown) => v === null || v === undefined || v === '';

/** Required fields (by these rules) that `record` leaves empty, as user-facing labels. */
export function missingRequired(rules: FieldRules, record: Record<string, unknown>): string[] {
  return RULED_FIELDS.filter((f) => rules.get(f) === 'required' && isEmpty(record[f])).map((f) => FIELD_LABELS[f]);
}
