import type { CrmContext } from '../http/guard';
import { FIELD_LABELS } from '../models/opportunity';
import { visibleAccountNames } from './accounts';
import { visibleContactIds } from './contacts';
import { visiblePartnerNames } from './partners';
import { referencedId, type HistoryPage } from './journal';
import { amountInput } from './money';

/** Readable names for journaled fields; a field not listed shows its own name with underscores as spaces. */
const LABELS: Record<string, string> = {
  ...FIELD_LABELS,
  account_type_id: 'Account type', industry_id: 'Industry', account_manager_id: 'Account manager', parent_id: 'Parent account',
  customer_number: 'Customer number', is_supplier: 'Supplier', is_key_account: 'Key account', is_global: 'Global account',
  is_private: 'Private account', service_expires_on: 'Service expires', registration_number: 'Registration number', vat_number: 'VAT number',
  first_name: 'First name', last_name: 'Last name', contact_type_id: 'Contact type', job_title: 'Job title', responsible_id: 'Responsible',
  project_id: 'Project',
};

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

type Lookup = (ctx: CrmContext, ids: number[]) => Promise<Map<number, string>>;

const fromTable = (table: string): Lookup => async (ctx, ids) =>
  new Map((await ctx.host.knex(table).whereIn('id', ids).select('id', 'name')).map((r) => [Number(r.id), String(r.name)]));
const users: Lookup = async (ctx) => new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
/** Account names only for accounts this user may see: history must not reveal a private account's name. */
const accounts: Lookup = (ctx, ids) => visibleAccountNames(ctx, ids);

const LOOKUPS: Record<string, Lookup> = {
  status_id: fromTable('crm_opportunity_statuses'), account_type_id: fromTable('crm_account_types'), industry_id: fromTable('crm_industries'),
  contact_type_id: fromTable('crm_contact_types'), partner_id: (ctx, ids) => visiblePartnerNames(ctx, ids), owner_id: users, account_manager_id: users,
  responsible_id: users, account_id: accounts, parent_id: accounts,
};

/**
 * Details whose text names another record (`referenceTo`): the text shows only where the reader may see that
 * record; otherwise, and for a text without its id, what kind of record it was.
 */
const REFERENCES: Record<string, { visible: (ctx: CrmContext, ids: number[]) => Promise<Set<number>>; hidden: string }> = {
  linked_accounts: { visible: visibleAccountIds, hidden: 'an account you cannot see' },
  accounts: { visible: visibleAccountIds, hidden: 'an account you cannot see' },
  contacts: { visible: visibleContactIds, hidden: 'a contact you cannot see' },
};

async function visibleAccountIds(ctx: CrmContext, ids: number[]): Promise<Set<number>> {
  return new Set((await visibleAccountNames(ctx, ids)).keys());
}

/**
 * Turns a record's history page into what a person reads: labels instead of column names, names instead of
 * ids, money in its currency, yes/no for flags. The stored journal keeps the raw values. Details of
 * `hiddenFields` (an opportunity's fields that the field rules hide from this user, see field-rules.ts
 * hiddenFields) are left out: their old and new values are the hidden field's values.
 */
export async function presentHistory(ctx: CrmContext, log: HistoryPage, options: { currency?: string; hiddenFields?: ReadonlySet<string> } = {}): Promise<HistoryPage> {
  const hidden = options.hiddenFields;
  if (hidden?.size) for (const entry of log.entries) if (entry.details) entry.details = entry.details.filter((d) => !hidden.has(d.field));
  const wanted = new Map<string, Set<number>>();
  for (const entry of log.entries) {
    for (const d of entry.details ?? []) {
      if (!LOOKUPS[d.field]) continue;
      for (const v of [d.old_value, d.new_value]) if (v !== null && /^\d+$/.test(v)) (wanted.get(d.field) ?? wanted.set(d.field, new Set()).get(d.field)!).add(Number(v));
    }
  }
  const resolved = new Map<string, Map<number, string>>();
  for (const [field, ids] of wanted) resolved.set(field, await LOOKUPS[field](ctx, [...ids]));
  const seen = await visibleReferences(ctx, log);
  const show = (field: string, value: string | null): string | null => {
    if (value === null || value === '') return null;
    const reference = REFERENCES[field];
    if (reference) {
      const id = referencedId(value);
      return id !== null && seen.get(field)?.has(id) ? value : reference.hidden;
    }
    if (field === 'amount_minor' && options.currency && /^-?\d+$/.test(value)) return `${amountInput(Number(value), options.currency)} ${options.currency}`;
    if (value === 'true' || value === 'false') return value === 'true' ? 'yes' : 'no';
    const names = resolved.get(field);
    if (names && /^\d+$/.test(value)) return names.get(Number(value)) ?? `#${value}`;
    return value;
  };
  for (const entry of log.entries) {
    for (const d of entry.details ?? []) {
      Object.assign(d, { label: LABELS[d.field] ?? capitalize(d.field.replace(/^cf:/, '').replace(/_/g, ' ')), old_text: show(d.field, d.old_value), new_text: show(d.field, d.new_value) });
    }
  }
  return log;
}

/** For each referencing field of the page, the ids its details name that this user may see (a query per field). */
async function visibleReferences(ctx: CrmContext, log: HistoryPage): Promise<Map<string, Set<number>>> {
  const named = new Map<string, number[]>();
  for (const entry of log.entries) {
    for (const d of entry.details ?? []) {
      if (!REFERENCES[d.field]) continue;
      for (const v of [d.old_value, d.new_value]) {
        const id = v === null ? null : referencedId(v);
        if (id !== null) named.set(d.field, [...(named.get(d.field) ?? []), id]);
      }
    }
  }
  const seen = new Map<string, Set<number>>();
  for (const [field, ids] of named) seen.set(field, await REFERENCES[field].visible(ctx, ids));
  return seen;
}
