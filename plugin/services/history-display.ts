import { projectsWithCrmView, type CrmContext } from '../http/guard';
import { FIELD_LABELS } from '../models/opportunity';
import { visibleAccountNames } from './accounts';
import { AUTOMATION_FIELD, automationNoteContract, runLabelReader, type JournaledRun } from './automation';
import { visibleContactIds } from './contacts';
import { visibleContractIds } from './contracts';
import { hiddenFields, opportunityLabel } from './field-rules';
import { visiblePartnerNames } from './partners';
import { referencedId, type HistoryPage } from './journal';
import type { Journal } from '../models/journal';
import { visibleOpportunityRules } from './opportunities';
import { amountInput } from './money';

/** Readable names for journaled fields; a field not listed shows its own name with underscores as spaces. */
const LABELS: Record<string, string> = {
  ...FIELD_LABELS,
  account_type_id: 'Account type', industry_id: 'Industry', account_manager_id: 'Account manager', parent_id: 'Parent account',
  customer_number: 'Customer number', is_supplier: 'Supplier', is_key_account: 'Key account', is_global: 'Global account',
  is_private: 'Private account', service_expires_on: 'Service expires', registration_number: 'Registration number', vat_number: 'VAT number',
  first_name: 'First name', last_name: 'Last name', contact_type_id: 'Contact type', job_title: 'Job title', responsible_id: 'Responsible',
  project_id: 'Project', contracts: 'Contract',
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

/** How a detail naming another record is shown to this reader: as journaled (null), or this text in its place. */
type Seen = Map<number, string | null>;

/** Of `ids`, those the reader may see (one query for the page), with how each is shown. */
type SeenLookup = (ctx: CrmContext, ids: number[]) => Promise<Seen>;

interface Reference {
  /** The id the detail's text names: by default `referenceTo`'s. */
  idOf?: (text: string) => number | null;
  seen: SeenLookup;
  /** In place of a record the reader may not see, or of a text without its id. */
  hidden: string;
}

const asJournaled = (ids: Iterable<number>): Seen => new Map([...ids].map((id) => [id, null]));

/**
 * Details whose text names another record (`referenceTo`): the text shows only where the reader may see that
 * record; otherwise, and for a text without its id, what kind of record it was.
 */
const REFERENCES: Record<string, Reference> = {
  linked_accounts: { seen: visibleAccounts, hidden: 'an account you cannot see' },
  accounts: { seen: visibleAccounts, hidden: 'an account you cannot see' },
  contacts: { seen: async (ctx, ids) => asJournaled(await visibleContactIds(ctx, ids)), hidden: 'a contact you cannot see' },
  // C3, on a contract: the upsell opportunity made from it. Entries journaled before it used referenceTo read
  // `#<id> <name>` under the field "upsell opportunity": told apart by the field, as a name may start with `#1 ` or
  // end with `(#1)`.
  upsell_opportunity: { seen: visibleOpportunities, hidden: 'an opportunity you cannot see' },
  'upsell opportunity': { idOf: leadingId, seen: visibleOpportunities, hidden: 'an opportunity you cannot see' },
  // C3, on an opportunity: a contract sold with it or removed from it, and the contract an upsell was made from. A
  // contract is seen where its own opportunity is, which may not be the one whose history this is. Entries
  // journaled before read `#<id> <name>` under the field "contract".
  contracts: { seen: visibleContracts, hidden: 'a contract you cannot see' },
  upsell_of_contract: { seen: visibleContracts, hidden: 'a contract you cannot see' },
  contract: { idOf: leadingId, seen: visibleContracts, hidden: 'a contract you cannot see' },
};

/**
 * Notes that name another record by its id first, as details did before `referenceTo`: the whole note gives way to
 * `hidden` where the reader may not see the record that id names.
 */
const NOTE_REFERENCES: { idOf: (notes: string) => number | null; seen: SeenLookup; hidden: string }[] = [
  // Up to the upsell_of_contract detail, an upsell's history read “Upsell of contract #<id> <name>”.
  { idOf: (notes) => (notes.startsWith('Upsell of contract ') ? leadingId(notes.slice('Upsell of contract '.length)) : null), seen: visibleContracts, hidden: 'Upsell of a contract you cannot see' },
  // C4, on an opportunity: a run of the automation for one of its contracts, which the reader may not see.
  { idOf: automationNoteContract, seen: visibleContracts, hidden: 'Automation for a contract you cannot see' },
];

/**
 * The contract a run of the automation journaled in this entry was for: the contract whose history it is, or the one
 * the note of its opportunity's entry names (read before the note is masked).
 */
function runContractOf(entry: Journal): number | null {
  if (entry.journalized_type === 'contract') return Number(entry.journalized_id);
  return entry.journalized_type === 'opportunity' && entry.notes ? automationNoteContract(entry.notes) : null;
}

async function visibleContracts(ctx: CrmContext, ids: number[]): Promise<Seen> {
  return asJournaled(await visibleContractIds(ctx, ids));
}

async function visibleAccounts(ctx: CrmContext, ids: number[]): Promise<Seen> {
  return asJournaled((await visibleAccountNames(ctx, ids)).keys());
}

/** Opportunities as the reader may name them: where the field rules of its status hide the name, `Opportunity #<id>` (S5). */
async function visibleOpportunities(ctx: CrmContext, ids: number[]): Promise<Seen> {
  const rulesOf = await visibleOpportunityRules(ctx, ids);
  return new Map([...rulesOf].map(([id, rules]) => [id, hiddenFields(rules).has('name') ? opportunityLabel({ id }, rules) : null]));
}

/** In place of a project the reader may not see. */
const HIDDEN_PROJECT = 'a project you cannot see';

/** The projects whose CRM the reader may open (projectsWithCrmView), as details and notes name them. */
interface ReadableProjects {
  nameOf: Map<number, string>;
  identifiers: Set<string>;
  names: Set<string>;
}

/**
 * Details that name a CRM project: by id (an opportunity's move, its contracts following it) or by identifier (the
 * project a record was created in, an account's project links). Only a project whose CRM the reader may open is named
 * — not one they are no member of, one where CRM is off, nor one the record has since left. An identifier is shown
 * only where a project the reader may open has it, so entries journaled without the project's id follow the same rule.
 * A project the automation made (the `automation` detail) is not one of these: it is named for its own page in the
 * host, so to those who may open that page (runLabelReader, the rule of the contract's runs panel), CRM or not.
 */
const PROJECT_DETAILS: Record<string, (value: string, readable: ReadableProjects) => string> = {
  project_id: (value, readable) => readable.nameOf.get(Number(value)) ?? HIDDEN_PROJECT,
  project: (value, readable) => (readable.identifiers.has(value) ? value : HIDDEN_PROJECT),
  // One identifier (an account's project link), or a price book's: a list on creation, `+<identifier>` when assigned.
  projects: (value, readable) => value.split(',').map((part) => {
    const added = part.startsWith('+') ? '+' : '';
    return `${added}${readable.identifiers.has(part.slice(added.length)) ? part.slice(added.length) : HIDDEN_PROJECT}`;
  }).join(', '),
};

/**
 * Before a move was journaled by the projects' ids (the `project_id` detail), its note named them: “Moved from
 * <name> to <name>”, on a contract followed by “ with its opportunity #<id>”. Each name stays where a project the
 * reader may open has it (“another project” stood for a project gone by then); any other text is not a move note.
 */
const MOVE_NOTE = /^Moved from ([\s\S]+?)( with its opportunity #\d+)?$/;

function moveNoteFor(notes: string, readable: ReadableProjects): string {
  const match = MOVE_NOTE.exec(notes);
  if (!match) return notes;
  const [, moved, suffix = ''] = match;
  const shown = (name: string) => name === 'another project' || readable.names.has(name);
  // A name may hold “ to ” itself: of the ways to read the note, the one naming the most projects the reader may see.
  const readings = [...moved.matchAll(/ to /g)].map((m) => [moved.slice(0, m.index), moved.slice(m.index + ' to '.length)]);
  const score = (names: string[]) => names.filter(shown).length;
  const [from, to] = readings.reduce<string[]>((best, r) => (score(r) > score(best) ? r : best), ['', '']);
  return `Moved from ${shown(from) ? from : HIDDEN_PROJECT} to ${shown(to) ? to : HIDDEN_PROJECT}${suffix}`;
}

const namesProject = (log: HistoryPage) => log.entries.some((entry) => MOVE_NOTE.test(entry.notes ?? '') || (entry.details ?? []).some((d) => PROJECT_DETAILS[d.field]));

/** Read only for a page that names a project: the host's answers for the reader, whatever the number of entries. */
async function readableProjects(ctx: CrmContext): Promise<ReadableProjects> {
  const projects = await projectsWithCrmView(ctx);
  return { nameOf: new Map(projects.map((p) => [p.id, p.name])), identifiers: new Set(projects.map((p) => p.identifier)), names: new Set(projects.map((p) => p.name)) };
}

/** The id a text names in the form `#<id> …`. */
function leadingId(text: string): number | null {
  const match = /^#(\d+)\s/.exec(text);
  return match ? Number(match[1]) : null;
}

/**
 * Turns a record's history page into what a person reads: labels instead of column names, names instead of
 * ids, money in its currency, yes/no for flags. The stored journal keeps the raw values. Details of
 * `hiddenFields` (an opportunity's fields that the field rules hide from this user, see field-rules.ts
 * hiddenFields) are left out: their old and new values are the hidden field's values. `labels` names the fields
 * of a record whose fields the table above does not know (the CRM settings).
 */
export async function presentHistory(
  ctx: CrmContext, log: HistoryPage, options: { currency?: string; hiddenFields?: ReadonlySet<string>; labels?: Readonly<Record<string, string>> } = {},
): Promise<HistoryPage> {
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
  const projects = namesProject(log) ? await readableProjects(ctx) : null;
  // What the automation made is named by the rule of the contract's runs panel (runLabelReader), read only for a page that has runs.
  const runs: JournaledRun[] = log.entries.flatMap((entry) => (entry.details ?? []).filter((d) => d.field === AUTOMATION_FIELD)
    .flatMap((d) => [d.old_value, d.new_value]).flatMap((label) => (label ? [{ contractId: runContractOf(entry), label }] : [])));
  const runLabel = runs.length ? await runLabelReader(ctx, runs) : null;
  const show = (field: string, value: string | null): string | null => {
    if (value === null || value === '') return null;
    const project = PROJECT_DETAILS[field];
    if (project && projects) return project(value, projects);
    const reference = REFERENCES[field];
    if (reference) {
      const id = (reference.idOf ?? referencedId)(value);
      const shown = id === null ? undefined : seen.get(reference.seen)?.get(id);
      return shown === undefined ? reference.hidden : shown ?? value;
    }
    if (field === 'amount_minor' && options.currency && /^-?\d+$/.test(value)) return `${amountInput(Number(value), options.currency)} ${options.currency}`;
    if (value === 'true' || value === 'false') return value === 'true' ? 'yes' : 'no';
    const names = resolved.get(field);
    if (names && /^\d+$/.test(value)) return names.get(Number(value)) ?? `#${value}`;
    return value;
  };
  for (const entry of log.entries) {
    const runContract = runContractOf(entry);
    const showDetail = (field: string, value: string | null) => (field === AUTOMATION_FIELD && value && runLabel ? runLabel({ contractId: runContract, label: value }) : show(field, value));
    for (const note of NOTE_REFERENCES) {
      const id = entry.notes ? note.idOf(entry.notes) : null;
      if (id !== null && seen.get(note.seen)?.get(id) === undefined) entry.notes = note.hidden;
    }
    if (projects && entry.notes) entry.notes = moveNoteFor(entry.notes, projects);
    for (const d of entry.details ?? []) {
      Object.assign(d, { label: options.labels?.[d.field] ?? LABELS[d.field] ?? capitalize(d.field.replace(/^cf:/, '').replace(/_/g, ' ')), old_text: showDetail(d.field, d.old_value), new_text: showDetail(d.field, d.new_value) });
    }
  }
  return log;
}

/**
 * For each kind of record the page's details and notes name (`seen` of REFERENCES and NOTE_REFERENCES), those of
 * the named ones this user may see: a query per kind, whatever the number of entries.
 */
async function visibleReferences(ctx: CrmContext, log: HistoryPage): Promise<Map<SeenLookup, Seen>> {
  const named = new Map<SeenLookup, number[]>();
  const name = (seen: SeenLookup, id: number | null) => { if (id !== null) named.set(seen, [...(named.get(seen) ?? []), id]); };
  for (const entry of log.entries) {
    for (const note of NOTE_REFERENCES) if (entry.notes) name(note.seen, note.idOf(entry.notes));
    for (const d of entry.details ?? []) {
      const reference = REFERENCES[d.field];
      if (!reference) continue;
      for (const v of [d.old_value, d.new_value]) if (v !== null) name(reference.seen, (reference.idOf ?? referencedId)(v));
    }
  }
  const seen = new Map<SeenLookup, Seen>();
  for (const [lookup, ids] of named) seen.set(lookup, await lookup(ctx, ids));
  return seen;
}

/** What an API client reads of a presented history page: each entry's who, when and notes, and its details as shown. */
export function historyJson(log: HistoryPage, users: ReadonlyMap<number, string>) {
  return {
    entries: log.entries.map((j) => ({
      id: j.id, action: j.action, user_id: j.user_id, user: j.user_id === null ? null : users.get(j.user_id) ?? null,
      created_at: new Date(j.created_at).toISOString(), notes: j.notes || null,
      details: (j.details ?? []).map((d) => {
        const shown = d as typeof d & { label?: string; old_text?: string | null; new_text?: string | null };
        return { field: d.field, label: shown.label ?? d.field, old: shown.old_text ?? null, new: shown.new_text ?? null };
      }),
    })),
    pagination: { page: log.page, pages: log.pages, total: log.total },
  };
}
