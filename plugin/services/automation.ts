import type { Knex } from 'knex';
import type { CrmContext } from '../http/guard';
import { invalid, notFound, staleRecord } from '../http/errors';
import { HostRefusal, type HostApi, type HostProject, type HostTask, type HostUser } from '../host';
import { addDays } from './dates';
import { FieldErrors, text, type FormInput, validId } from './form';
import { changedFields, journal } from './journal';
import { readOnce } from './request-memo';

/**
 * Contract → project automation (SPEC C4). Admins keep rules per product category: "create a project from
 * template T under parent P, named by a pattern" and "create a task with subject S in project Q (or in the project
 * this sale made), assigned to U, due in N days". A sale runs the rules of each new contract's category inside
 * its own transaction, through the host API with that transaction, so the host's project and tasks commit or
 * roll back with the contracts. One run per (contract, rule) — the unique key of crm_automation_runs — makes
 * retries, double submits and "unlock, sell again" harmless.
 */

export type RuleAction = 'project' | 'task';
export const RULE_ACTIONS: { id: RuleAction; label: string }[] = [
  { id: 'project', label: 'Create a project from a template' },
  { id: 'task', label: 'Create a task' },
];
export const AUTOMATION_JOURNAL = 'settings_automation_rules';

export interface AutomationRule {
  id: number;
  category_id: number;
  action: RuleAction;
  template_project_id: number | null;
  parent_project_id: number | null;
  name_pattern: string;
  task_subject: string;
  /** null for a task rule: the project made by this category's project rule for the same contract. */
  task_project_id: number | null;
  assignee_id: number | null;
  due_in_days: number | null;
  position: number;
  active: boolean;
  problem: string | null;
  lock_version: number;
}

const nullableId = (v: unknown) => (v === null || v === undefined ? null : Number(v));

export function toRule(r: Record<string, unknown>): AutomationRule {
  return {
    id: Number(r.id), category_id: Number(r.category_id), action: r.action === 'task' ? 'task' : 'project',
    template_project_id: nullableId(r.template_project_id), parent_project_id: nullableId(r.parent_project_id),
    name_pattern: String(r.name_pattern ?? ''), task_subject: String(r.task_subject ?? ''), task_project_id: nullableId(r.task_project_id),
    assignee_id: nullableId(r.assignee_id), due_in_days: r.due_in_days === null || r.due_in_days === undefined ? null : Number(r.due_in_days),
    position: Number(r.position), active: Boolean(r.active), problem: r.problem ? String(r.problem) : null, lock_version: Number(r.lock_version),
  };
}

/** Project rules before task rules (a task may go into the project made just before), then by position. */
const runOrder = (a: AutomationRule, b: AutomationRule) =>
  (a.action === b.action ? 0 : a.action === 'project' ? -1 : 1) || a.position - b.position || a.id - b.id;

export async function listRules(knex: Knex): Promise<AutomationRule[]> {
  return (await knex('crm_automation_rules').orderBy([{ column: 'category_id' }, { column: 'position' }, { column: 'id' }])).map(toRule);
}

/** Active rules of these categories, in run order, one query. */
export async function activeRulesFor(knex: Knex, categoryIds: number[]): Promise<Map<number, AutomationRule[]>> {
  const out = new Map<number, AutomationRule[]>();
  const ids = [...new Set(categoryIds)];
  if (!ids.length) return out;
  const rows = (await knex('crm_automation_rules').whereIn('category_id', ids).where('active', true)).map(toRule).sort(runOrder);
  for (const rule of rows) out.set(rule.category_id, [...(out.get(rule.category_id) ?? []), rule]);
  return out;
}

// ---- tokens -----------------------------------------------------------------------------------------------------

/** The tokens a name pattern or task subject may use, with what they stand for. */
export const RULE_TOKENS: Record<string, string> = {
  'account.name': 'the account’s name',
  'opportunity.name': 'the opportunity’s name',
  'contract.product': 'the product (or the item’s name when it has none)',
  'contract.name': 'the contract’s name',
  'contract.code': 'the product code',
  'contract.starts_on': 'the contract’s start date',
  'contract.ends_on': 'the contract’s end date (empty for one-time contracts)',
  'quote.number': 'the quote’s number',
};

/** Anything in braces is meant as a token: one not in RULE_TOKENS (a misspelling, another letter case) is named. */
const TOKEN = /\{([^{}]+)\}/g;

export function unknownTokens(pattern: string): string[] {
  return [...pattern.matchAll(TOKEN)].map((m) => m[1]).filter((t) => !(t in RULE_TOKENS));
}

export function fillTokens(pattern: string, values: Record<string, string>): string {
  return pattern.replace(TOKEN, (whole, name: string) => (name in RULE_TOKENS ? values[name] ?? '' : whole)).replace(/\s+/g, ' ').trim();
}

/** A host identifier from a name: lower-case ASCII letters, digits and dashes, starting with a letter. */
export function identifierFrom(name: string, suffix: string): string {
  const slug = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60).replace(/-+$/, '');
  const base = /^[a-z]/.test(slug) ? slug : `p-${slug}`.replace(/-+$/, '');
  return `${base}-${suffix}`;
}

// ---- admin: reading and saving rules ----------------------------------------------------------------------------

export type RuleData = Omit<AutomationRule, 'id' | 'position' | 'active' | 'problem' | 'lock_version'>;
const RULE_FIELDS = ['category_id', 'action', 'template_project_id', 'parent_project_id', 'name_pattern', 'task_subject', 'task_project_id', 'assignee_id', 'due_in_days'] as const;

/**
 * A rule from the settings form, every problem at once: a category; for a project rule a template the host
 * offers, an existing parent project (or none) and a name pattern with known tokens; for a task rule a subject,
 * an existing project or "the new project" (then the category needs an active project rule), an active assignee
 * or none, and 0–3650 days.
 */
export async function readRuleInput(ctx: CrmContext, input: FormInput): Promise<RuleData> {
  const knex = ctx.host.knex;
  const errors = new FieldErrors();
  const categoryId = errors.id(input, 'category_id', 'Product category');
  if (!categoryId && !errors.errors.category_id) errors.add('category_id', 'Choose a product category');
  if (categoryId && !(await knex('crm_product_categories').where({ id: categoryId }).first('id'))) errors.add('category_id', 'Choose a product category from the list');
  const action = text(input, 'action');
  if (action !== 'project' && action !== 'task') errors.add('action', 'Choose what the rule creates');
  const data: RuleData = {
    category_id: categoryId ?? 0, action: action === 'task' ? 'task' : 'project', template_project_id: null, parent_project_id: null,
    name_pattern: '', task_subject: '', task_project_id: null, assignee_id: null, due_in_days: null,
  };
  const checkTokens = (key: string, value: string) => {
    const unknown = unknownTokens(value);
    if (unknown.length) errors.add(key, `Unknown token${unknown.length > 1 ? 's' : ''}: ${unknown.map((t) => `{${t}}`).join(', ')}`);
  };
  if (action === 'project') {
    const templateId = errors.id(input, 'template_project_id', 'Template');
    const templates = await ctx.host.projectTemplates();
    if (!templateId) errors.add('template_project_id', 'Choose a project template');
    else if (!templates.some((t) => t.id === templateId)) errors.add('template_project_id', 'Choose a project template from the list');
    const parentId = errors.id(input, 'parent_project_id', 'Parent project');
    if (parentId) {
      const parent = await ctx.host.projectById(parentId);
      if (!parent || parent.isTemplate) errors.add('parent_project_id', 'Choose a parent project from the list');
    }
    data.name_pattern = errors.text(input, 'name_pattern', 'Name pattern', { max: 200, required: true });
    checkTokens('name_pattern', data.name_pattern);
    data.template_project_id = templateId;
    data.parent_project_id = parentId;
  } else if (action === 'task') {
    data.task_subject = errors.text(input, 'task_subject', 'Task subject', { max: 200, required: true });
    checkTokens('task_subject', data.task_subject);
    const projectId = errors.id(input, 'task_project_id', 'Project');
    if (projectId) {
      const project = await ctx.host.projectById(projectId);
      if (!project || project.isTemplate) errors.add('task_project_id', 'Choose a project from the list');
    } else if (categoryId && !errors.errors.task_project_id) {
      const projectRule = await knex('crm_automation_rules').where({ category_id: categoryId, action: 'project', active: true }).first('id');
      if (!projectRule) errors.add('task_project_id', 'Choose a project: this category has no active project rule whose new project could take the task');
    }
    data.task_project_id = projectId;
    const assigneeId = errors.id(input, 'assignee_id', 'Assignee');
    if (assigneeId && !(await ctx.host.users()).some((u) => u.id === assigneeId)) errors.add('assignee_id', 'Choose an assignee from the list');
    data.assignee_id = assigneeId;
    const due = text(input, 'due_in_days');
    if (due !== '') {
      if (!/^\d{1,4}$/.test(due) || Number(due) > 3650) errors.add('due_in_days', 'Due in days must be a whole number from 0 to 3650');
      else data.due_in_days = Number(due);
    }
  }
  if (errors.any) throw invalid(`The rule was not saved: fix the fields marked below.`, errors.errors);
  return data;
}

const ruleLabel = (r: Pick<RuleData, 'action' | 'name_pattern' | 'task_subject'>) => (r.action === 'project' ? `project “${r.name_pattern}”` : `task “${r.task_subject}”`);

export async function requireRule(knex: Knex, id: number): Promise<AutomationRule> {
  const row = validId(id) ? await knex('crm_automation_rules').where({ id }).first() : undefined;
  if (!row) throw notFound('Automation rule');
  return toRule(row);
}

export async function createRule(knex: Knex, user: HostUser, data: RuleData): Promise<AutomationRule> {
  return knex.transaction(async (trx) => {
    const [{ max }] = await trx('crm_automation_rules').where({ category_id: data.category_id }).max({ max: 'position' });
    const [row] = await trx('crm_automation_rules').insert({ ...data, position: Number(max ?? 0) + 1, active: true, problem: null, lock_version: 0 }).returning('*');
    const rule = toRule(row);
    await journal(trx, { type: AUTOMATION_JOURNAL, id: rule.id, userId: user.id, action: 'create', changes: changedFields({}, data, [...RULE_FIELDS]), notes: `Rule #${rule.id}: ${ruleLabel(data)}` });
    return rule;
  });
}

/** Saving a rule clears its problem: the admin has looked at it; the next sale checks it again. */
export async function updateRule(knex: Knex, user: HostUser, rule: AutomationRule, data: RuleData, lockVersion: number): Promise<void> {
  if (!Number.isInteger(lockVersion)) throw invalid('The form is missing its lock version; reload the page.', { lock_version: 'missing' });
  await knex.transaction(async (trx) => {
    const n = await trx('crm_automation_rules').where({ id: rule.id, lock_version: lockVersion }).update({ ...data, problem: null, lock_version: lockVersion + 1 });
    if (n === 0) throw staleRecord('This rule');
    await journal(trx, { type: AUTOMATION_JOURNAL, id: rule.id, userId: user.id, action: 'update', changes: changedFields(rule as unknown as Record<string, unknown>, data, [...RULE_FIELDS]), notes: `Rule #${rule.id}` });
  });
}

/**
 * A project rule may not go (off or deleted) while an active task rule of its category puts its task into "the new
 * project" and no other active project rule makes one: every sale of the category would be refused until then.
 */
async function refuseIfTasksNeedIt(trx: Knex.Transaction, rule: AutomationRule): Promise<void> {
  if (rule.action !== 'project' || !rule.active) return;
  const otherMaker = await trx('crm_automation_rules').where({ category_id: rule.category_id, action: 'project', active: true }).whereNot({ id: rule.id }).first('id');
  if (otherMaker) return;
  const needing = await trx('crm_automation_rules').where({ category_id: rule.category_id, action: 'task', active: true }).whereNull('task_project_id').orderBy('id').first('id');
  if (needing) {
    throw invalid(`Rule #${needing.id} puts its task into the project this rule makes: deactivate that rule, or give it a project, first.`, { rule: 'needed by a task rule' });
  }
}

export async function setRuleActive(knex: Knex, user: HostUser, rule: AutomationRule, active: boolean): Promise<void> {
  await knex.transaction(async (trx) => {
    if (!active) await refuseIfTasksNeedIt(trx, rule);
    await trx('crm_automation_rules').where({ id: rule.id }).update({ active, lock_version: rule.lock_version + 1, ...(active ? { problem: null } : {}) });
    await journal(trx, { type: AUTOMATION_JOURNAL, id: rule.id, userId: user.id, action: 'update', changes: [{ field: 'active', old: rule.active, new: active }], notes: `Rule #${rule.id}` });
  });
}

/** A rule that has run keeps its runs (and so the links to what it made): it is switched off instead of deleted. */
export async function deleteRule(knex: Knex, user: HostUser, rule: AutomationRule): Promise<void> {
  await knex.transaction(async (trx) => {
    if (await trx('crm_automation_runs').where({ rule_id: rule.id }).first('id')) {
      throw invalid('This rule has already run for contracts: deactivate it instead, so their history keeps its links.', { rule: 'has runs' });
    }
    await refuseIfTasksNeedIt(trx, rule);
    await trx('crm_automation_rules').where({ id: rule.id }).delete();
    await journal(trx, { type: AUTOMATION_JOURNAL, id: rule.id, userId: user.id, action: 'delete', changes: [], notes: `Rule #${rule.id}: ${ruleLabel(rule)} deleted` });
  });
}

/** Marks a rule as unable to run (shown in settings until an admin saves it again). Its own short write. */
export async function flagRule(knex: Knex, ruleId: number, problem: string): Promise<void> {
  await knex('crm_automation_rules').where({ id: ruleId }).update({ problem: problem.slice(0, 300) });
}

// ---- planning and running ---------------------------------------------------------------------------------------

/** What the host objects a rule refers to resolve to, looked up before the sale's transaction. */
export interface RuleTargets {
  templates: Map<number, HostProject>;
  projects: Map<number, HostProject>;
  users: Map<number, HostUser>;
}

/**
 * Looks up every template, project and user the rules name, once, outside any transaction (on SQLite the
 * transaction holds the only connection, so the host must not be asked for anything inside it but the writes).
 */
export async function resolveTargets(host: HostApi, rules: AutomationRule[]): Promise<RuleTargets> {
  const templates = new Map((await host.projectTemplates()).map((t) => [t.id, t]));
  const projects = new Map<number, HostProject>();
  for (const id of new Set(rules.flatMap((r) => [r.parent_project_id, r.task_project_id]).filter((x): x is number => x !== null))) {
    const p = await host.projectById(id);
    if (p && !p.isTemplate) projects.set(id, p);
  }
  const users = new Map((await host.users()).map((u) => [u.id, u]));
  return { templates, projects, users };
}

/** Why this rule cannot run now (its template is gone …), or null. */
export function ruleProblem(rule: AutomationRule, targets: RuleTargets, categoryRules: AutomationRule[]): string | null {
  if (rule.action === 'project') {
    if (!rule.template_project_id || !targets.templates.has(rule.template_project_id)) return `Rule #${rule.id}: its project template #${rule.template_project_id ?? '—'} does not exist any more.`;
    if (rule.parent_project_id && !targets.projects.has(rule.parent_project_id)) return `Rule #${rule.id}: its parent project #${rule.parent_project_id} does not exist any more.`;
    return null;
  }
  if (rule.task_project_id && !targets.projects.has(rule.task_project_id)) return `Rule #${rule.id}: the project #${rule.task_project_id} for its task does not exist any more.`;
  if (!rule.task_project_id && !categoryRules.some((r) => r.action === 'project')) return `Rule #${rule.id}: its task goes into the new project, but no active project rule of the category makes one.`;
  if (rule.assignee_id && !targets.users.has(rule.assignee_id)) return `Rule #${rule.id}: its assignee #${rule.assignee_id} is not an active user any more.`;
  return null;
}

export interface ContractFacts {
  /** null while only planned. */
  id: number | null;
  name: string;
  product: string;
  code: string;
  starts_on: string;
  ends_on: string | null;
  account_id: number | null;
  account_name: string;
  opportunity_id: number;
  opportunity_name: string;
  quote_number: string;
}

const tokenValues = (c: ContractFacts): Record<string, string> => ({
  'account.name': c.account_name, 'opportunity.name': c.opportunity_name, 'contract.product': c.product, 'contract.name': c.name,
  'contract.code': c.code, 'contract.starts_on': c.starts_on, 'contract.ends_on': c.ends_on ?? '', 'quote.number': c.quote_number,
});

/** What a rule will make for a contract, in words, for the confirmation page. */
export function describeRun(rule: AutomationRule, contract: ContractFacts, targets: RuleTargets, saleDate: string): string {
  const values = tokenValues(contract);
  if (rule.action === 'project') {
    const template = rule.template_project_id ? targets.templates.get(rule.template_project_id) : undefined;
    const parent = rule.parent_project_id ? targets.projects.get(rule.parent_project_id) : undefined;
    return `Project “${projectName(rule, values)}” from the template ${template ? template.name : `#${rule.template_project_id}`}` +
      (parent ? ` under ${parent.name}` : ' (top level)');
  }
  const project = rule.task_project_id ? targets.projects.get(rule.task_project_id)?.name ?? `#${rule.task_project_id}` : 'the new project';
  const assignee = rule.assignee_id ? targets.users.get(rule.assignee_id)?.name ?? `#${rule.assignee_id}` : null;
  return `Task “${fillTokens(rule.task_subject, values).slice(0, 255)}” in ${project}` +
    (assignee ? `, assigned to ${assignee}` : '') + (rule.due_in_days !== null ? `, due ${addDays(saleDate, rule.due_in_days)}` : '');
}

const projectName = (rule: AutomationRule, values: Record<string, string>) => fillTokens(rule.name_pattern, values).slice(0, 200) || `Contract ${values['contract.name']}`.slice(0, 200);

/** A host refusal while a rule ran: the sale is rolled back; the rule gets the message as its problem. */
export class AutomationRefusal extends Error {
  constructor(readonly ruleId: number, message: string) {
    super(message);
    this.name = 'AutomationRefusal';
  }
}

export interface RunRecord {
  rule_id: number;
  created_project_id: number | null;
  created_task_id: number | null;
  /** As journaled in the `automation` detail: `<Project|Task> … created by rule #<rule id>` (see runLabelReader). */
  label: string;
}

/** The journal detail of a run, on the contract and on its opportunity. */
export const AUTOMATION_FIELD = 'automation';

const AUTOMATION_NOTE = 'Automation for contract ';

/**
 * The note of a run's entry on the opportunity. It names the contract by its id first, which decides who reads its
 * name (history-display.ts), as the note always has: entries of every age are read the same way.
 */
const automationNote = (contract: { id: number; name: string }) => `${AUTOMATION_NOTE}#${contract.id} ${contract.name}`;

/** The contract a run's note on an opportunity names (automationNote), or null for any other note. */
export function automationNoteContract(notes: string): number | null {
  const match = notes.startsWith(AUTOMATION_NOTE) ? /^#(\d+)\s/.exec(notes.slice(AUTOMATION_NOTE.length)) : null;
  return match ? Number(match[1]) : null;
}

/**
 * Runs the rules for one contract inside the sale's transaction. A (contract, rule) pair that already ran is
 * skipped: the unique key of crm_automation_runs is the idempotency key. Every run is journaled on the contract
 * and on the opportunity.
 */
export async function runRules(
  trx: Knex.Transaction, host: HostApi, user: HostUser, contract: ContractFacts & { id: number }, rules: AutomationRule[], targets: RuleTargets, saleDate: string,
): Promise<RunRecord[]> {
  const done = new Set((await trx('crm_automation_runs').where({ contract_id: contract.id }).pluck('rule_id')).map(Number));
  const values = tokenValues(contract);
  const records: RunRecord[] = [];
  let newProject: HostProject | null = null;
  const manyProjects = rules.filter((r) => r.action === 'project').length > 1;
  for (const rule of rules) {
    if (done.has(rule.id)) continue;
    let record: RunRecord;
    try {
      if (rule.action === 'project') {
        const name = projectName(rule, values);
        const project = await host.createProjectFromTemplate({
          templateId: rule.template_project_id ?? 0, parentId: rule.parent_project_id, name,
          // Someone may have made a project of that identifier by hand: the host then numbers it on (…-2) rather than
          // refuse, since the sale would be refused again and again (on SQLite the next attempt gets the same contract id).
          identifier: identifierFrom(name, manyProjects ? `${contract.id}-${rule.id}` : String(contract.id)), identifierTaken: 'next-free',
          links: [
            { label: `CRM contract: ${contract.name}`.slice(0, 200), url: `/crm/contracts/${contract.id}` },
            ...(contract.account_id ? [{ label: `CRM account: ${contract.account_name}`.slice(0, 200), url: `/crm/accounts/${contract.account_id}` }] : []),
          ],
        }, trx);
        newProject ??= project;
        record = { rule_id: rule.id, created_project_id: project.id, created_task_id: null, label: `Project “${project.name}” (${project.identifier}) created by rule #${rule.id}` };
      } else {
        const projectId = rule.task_project_id ?? newProject?.id;
        if (!projectId) throw new HostRefusal('no project rule of this category made a project for the task');
        const task = await host.createTask({
          projectId, subject: fillTokens(rule.task_subject, values).slice(0, 255) || contract.name,
          description: `From CRM contract #${contract.id} (${contract.name}).`, assigneeId: rule.assignee_id,
          dueDate: rule.due_in_days !== null ? addDays(saleDate, rule.due_in_days) : null,
        }, trx);
        record = { rule_id: rule.id, created_project_id: null, created_task_id: task.id, label: `Task #${task.id} “${task.subject}” created by rule #${rule.id}` };
      }
    } catch (err) {
      if (err instanceof HostRefusal) throw new AutomationRefusal(rule.id, `Rule #${rule.id} could not run for “${contract.name}”: ${err.message}`);
      throw err;
    }
    await trx('crm_automation_runs').insert({
      contract_id: contract.id, rule_id: rule.id, created_project_id: record.created_project_id, created_task_id: record.created_task_id, user_id: user.id,
    });
    const change = [{ field: AUTOMATION_FIELD, old: null, new: record.label }];
    await journal(trx, { type: 'contract', id: contract.id, userId: user.id, action: 'update', changes: change });
    await journal(trx, { type: 'opportunity', id: contract.opportunity_id, userId: user.id, action: 'update', changes: change, notes: automationNote(contract) });
    records.push(record);
  }
  return records;
}

export interface RunView {
  id: number;
  contract_id: number;
  rule_id: number;
  created_at: string;
  /** What the rule made, said to every reader of the contract. */
  made: RuleAction;
  /** Name, identifier and link: only for a reader who may open the project in the host (readersOfMade), else null. */
  project: { name: string; identifier: string; url: string } | null;
  /** Likewise for a task: only for a reader who may view tasks in its project. */
  task: { id: number; subject: string; url: string } | null;
  /** The made project or task no longer exists in the host. */
  gone: boolean;
}

interface RunRow {
  id: number;
  contract_id: number;
  rule_id: number;
  created_project_id: number | null;
  created_task_id: number | null;
  created_at: string;
}

const toRunRow = (r: Record<string, unknown>): RunRow => ({
  id: Number(r.id), contract_id: Number(r.contract_id), rule_id: Number(r.rule_id), created_project_id: nullableId(r.created_project_id),
  created_task_id: nullableId(r.created_task_id), created_at: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
});

/** Distinct, in order: a memo key names the same ids however a caller lists them. */
const idList = (ids: number[]): number[] => [...new Set(ids)].sort((a, b) => a - b);

/**
 * The runs of these contracts, read once per request (readOnce, keyed by the ids): the contract page reads them for
 * its runs list (runsOf) and for its history's automation entries (runLabelReader). Shared: do not change the answer.
 */
function runRowsOf(knex: Knex, contractIds: number[]): Promise<RunRow[]> {
  const ids = idList(contractIds);
  if (!ids.length) return Promise.resolve([]);
  return readOnce(knex, `automation-runs:${ids.join(',')}`, async () => (await knex('crm_automation_runs').whereIn('contract_id', ids).orderBy('id')).map(toRunRow));
}

/** Whether the reader may open a made project or task in the host. */
interface MadeReaders {
  project(projectId: number): boolean;
  task(task: HostTask): boolean;
}

/** The tasks these runs made that the host still has, in one host call once per request (keyed by the ids). Shared: do not change the answer. */
function madeTasks(host: HostApi, rows: RunRow[]): Promise<Map<number, HostTask>> {
  const ids = idList(rows.flatMap((r) => (r.created_task_id === null ? [] : [r.created_task_id])));
  if (!ids.length) return Promise.resolve(new Map());
  return readOnce(host.knex, `made-tasks:${ids.join(',')}`, async () => new Map((await host.tasksByIds(ids)).map((t) => [t.id, t])));
}

/**
 * Who may open what these runs made, as the host decides it: a project its admins and members (any role — the
 * reference host opens a project's page to them, where projectsWhere(…, 'view_tasks') would leave out a member whose
 * role may not see tasks, or a project with tasks off); a task those who may view tasks in its project (the host's task
 * page asks view_tasks there). Not the CRM view that names the projects records live in (projectsWithCrmView in
 * history-display.ts): a made project is named for its own page in the host and usually has no CRM at all, so that
 * rule would hide it from its own members. The host is asked only what the runs need, once per request: the contract
 * page asks for its runs panel and for its history.
 */
async function readersOfMade(ctx: Pick<CrmContext, 'host' | 'user'>, rows: RunRow[], tasks: Map<number, HostTask>): Promise<MadeReaders> {
  const { host, user } = ctx;
  const needsMembers = !user.admin && rows.some((r) => r.created_project_id !== null);
  const [memberOf, viewsTasksIn] = await Promise.all([
    needsMembers ? readOnce(host.knex, `member-project-ids:${user.id}`, async () => new Set((await host.memberships(user)).map((m) => m.projectId))) : new Set<number>(),
    tasks.size ? readOnce(host.knex, `view-tasks-project-ids:${user.id}`, async () => new Set((await host.projectsWhere(user, 'view_tasks')).map((p) => p.id))) : new Set<number>(),
  ]);
  return { project: (projectId) => user.admin || memberOf.has(projectId), task: (task) => viewsTasksIn.has(task.projectId) };
}

/**
 * The runs of these contracts, each named and linked as the reader may open what it made: the made tasks in one host
 * call, each made project once. Contracts without runs ask the host nothing.
 */
export async function runsOf(ctx: CrmContext, contractIds: number[]): Promise<Map<number, RunView[]>> {
  const { host } = ctx;
  const out = new Map<number, RunView[]>();
  const rows = await runRowsOf(host.knex, contractIds);
  if (!rows.length) return out;
  const tasks = await madeTasks(host, rows);
  const mayOpen = await readersOfMade(ctx, rows, tasks);
  // The host API has no lookup of several projects by id: each made project is asked for once (a contract's rules
  // make one project each, so a page asks as many times as it shows made projects), side by side.
  const madeProjectIds = idList(rows.flatMap((r) => (r.created_project_id === null ? [] : [r.created_project_id])));
  const projects = new Map<number, HostProject | null>(await Promise.all(madeProjectIds.map(async (id) => [id, await host.projectById(id)] as const)));
  for (const r of rows) {
    const projectId = r.created_project_id;
    const project = projectId !== null ? projects.get(projectId) ?? null : null;
    const task = r.created_task_id !== null ? tasks.get(r.created_task_id) ?? null : null;
    const view: RunView = {
      id: r.id, contract_id: r.contract_id, rule_id: r.rule_id, created_at: r.created_at, made: projectId !== null ? 'project' : 'task',
      project: project && mayOpen.project(project.id) ? { name: project.name, identifier: project.identifier, url: host.urls.project(project) } : null,
      task: task && mayOpen.task(task) ? { id: task.id, subject: task.subject, url: host.urls.task(task) } : null,
      gone: (projectId !== null && !project) || (r.created_task_id !== null && !task),
    };
    out.set(view.contract_id, [...(out.get(view.contract_id) ?? []), view]);
  }
  return out;
}

/** A run's journaled label: what it made and by which rule (RunRecord's label). */
const RUN_LABEL = /^(Project|Task) [\s\S]* created by rule #(\d+)$/;

/** A journaled run: its contract (null where its entry does not say) and its label. */
export interface JournaledRun {
  contractId: number | null;
  label: string;
}

/**
 * How the journaled labels of these runs read to the reader: as journaled where they may open what the run made
 * (readersOfMade, the rule of the contract's runs panel), else what it made and by which rule, without its name,
 * identifier or number. A run is found by its contract and rule (the idempotency key of crm_automation_runs), so
 * entries of every age read the same: one query for the runs and the host's answers for the page, not one per entry.
 */
export async function runLabelReader(ctx: CrmContext, journaled: JournaledRun[]): Promise<(run: JournaledRun) => string> {
  const rows = await runRowsOf(ctx.host.knex, journaled.flatMap((j) => (j.contractId === null ? [] : [j.contractId])));
  const runOf = new Map(rows.map((r) => [`${r.contract_id}:${r.rule_id}`, r]));
  const tasks = await madeTasks(ctx.host, rows);
  const mayOpen = await readersOfMade(ctx, rows, tasks);
  return ({ contractId, label }) => {
    const match = RUN_LABEL.exec(label);
    if (!match) return 'Created by an automation rule';
    const [, kind, ruleId] = match;
    const run = runOf.get(`${contractId}:${ruleId}`);
    const task = run && run.created_task_id !== null ? tasks.get(run.created_task_id) : undefined;
    const openable = Boolean(run && (kind === 'Project' ? run.created_project_id !== null && mayOpen.project(run.created_project_id) : task && mayOpen.task(task)));
    return openable ? label : `${kind} created by rule #${ruleId}`;
  };
}
