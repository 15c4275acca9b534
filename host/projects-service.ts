import type { Knex } from 'knex';
import { HostRefusal, type HostProject, type HostTask, type NewProjectFromTemplate, type NewTask } from '../plugin/host';
import { toProject, toTask } from './repository';

export const IDENTIFIER_MAX_LENGTH = 100;
export const IDENTIFIER_FORMAT = new RegExp(`^[a-z][a-z0-9_-]{0,${IDENTIFIER_MAX_LENGTH - 1}}$`);

async function inTransaction<T>(knex: Knex, trx: Knex.Transaction | undefined, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return trx ? work(trx) : knex.transaction(work);
}

/** The n-th candidate for `base`: `base` itself, then `base-2`, `base-3`, … with the base cut (and stripped of a trailing - or _) to keep the maximum length. */
const numberedIdentifier = (base: string, n: number) =>
  n === 1 ? base : `${base.slice(0, IDENTIFIER_MAX_LENGTH - `-${n}`.length).replace(/[-_]+$/, '')}-${n}`;

/** Candidates asked for per statement, and how many statements before giving up. */
const FREE_IDENTIFIER_BATCH = 20;
const FREE_IDENTIFIER_BATCHES = 50;

/**
 * `base` when no project has it, else the first of `base-2`, `base-3`, … that none has; read in `t`, so projects the
 * same transaction made count as taken.
 */
async function freeIdentifier(t: Knex.Transaction, base: string): Promise<string> {
  for (let batch = 0; batch < FREE_IDENTIFIER_BATCHES; batch++) {
    const candidates = Array.from({ length: FREE_IDENTIFIER_BATCH }, (_, i) => numberedIdentifier(base, batch * FREE_IDENTIFIER_BATCH + i + 1));
    const taken = new Set((await t('projects').whereIn('identifier', candidates).pluck('identifier')).map(String));
    const free = candidates.find((c) => !taken.has(c));
    if (free) return free;
  }
  throw new HostRefusal(`There is no free identifier left after "${base}".`);
}

export async function createProject(
  knex: Knex,
  input: {
    name: string; identifier: string; parentId: number | null; modules: string[]; isTemplate?: boolean;
    identifierTaken?: NewProjectFromTemplate['identifierTaken'];
  },
  trx?: Knex.Transaction,
): Promise<HostProject> {
  const name = input.name.trim();
  if (!name || name.length > 200) throw new HostRefusal('A project needs a name of at most 200 characters.');
  if (!IDENTIFIER_FORMAT.test(input.identifier)) {
    throw new HostRefusal(`"${input.identifier}" is not a valid identifier: lower-case letters, digits, - and _, starting with a letter, at most ${IDENTIFIER_MAX_LENGTH} characters.`);
  }
  return inTransaction(knex, trx, async (t) => {
    let identifier = input.identifier;
    if (input.identifierTaken === 'next-free') identifier = await freeIdentifier(t, input.identifier);
    else if (await t('projects').where({ identifier }).first()) throw new HostRefusal(`A project with identifier "${identifier}" already exists.`);
    if (input.parentId !== null && !(await t('projects').where({ id: input.parentId }).first())) {
      throw new HostRefusal(`Parent project #${input.parentId} does not exist.`);
    }
    const [row] = await t('projects')
      .insert({ name, identifier, parent_id: input.parentId, is_template: input.isTemplate ?? false })
      .returning('*');
    if (input.modules.length) await t('project_modules').insert(input.modules.map((module) => ({ project_id: row.id, module })));
    return toProject(row);
  });
}

/** A new project with the template's modules, members and tasks, all or nothing. */
export async function createProjectFromTemplate(knex: Knex, input: NewProjectFromTemplate, trx?: Knex.Transaction): Promise<HostProject> {
  return inTransaction(knex, trx, async (t) => {
    const template = await t('projects').where({ id: input.templateId, is_template: true }).first();
    if (!template) throw new HostRefusal(`Project template #${input.templateId} does not exist (any more).`);
    const modules = (await t('project_modules').where({ project_id: template.id })).map((r) => r.module as string);
    const project = await createProject(knex, {
      name: input.name, identifier: input.identifier, identifierTaken: input.identifierTaken, parentId: input.parentId, modules,
    }, t);
    const members = await t('members').where({ project_id: template.id });
    if (members.length) {
      await t('members').insert(members.map((m) => ({ project_id: project.id, user_id: m.user_id, role_id: m.role_id })));
    }
    // Only same-origin paths: the overview renders them as links, and a plugin must not point users elsewhere.
    const links = (input.links ?? []).filter((l) => /^\/(?!\/)/.test(l.url) && l.label.trim()).slice(0, 10);
    if (links.length) {
      await t('project_links').insert(links.map((l) => ({ project_id: project.id, label: l.label.trim().slice(0, 200), url: l.url.slice(0, 500) })));
    }
    const tasks = await t('tasks').where({ project_id: template.id }).orderBy('id');
    if (tasks.length) {
      await t('tasks').insert(tasks.map((task) => ({
        project_id: project.id, subject: task.subject, description: task.description, status: 'new',
        assignee_id: task.assignee_id, due_date: null, author_id: task.author_id,
      })));
    }
    return project;
  });
}

export async function createTask(knex: Knex, input: NewTask & { authorId?: number | null }, trx?: Knex.Transaction): Promise<HostTask> {
  const subject = (input.subject ?? '').trim();
  if (!subject) throw new HostRefusal('A task needs a subject.');
  if (subject.length > 255) throw new HostRefusal('A task subject is at most 255 characters.');
  if (input.dueDate && !/^\d{4}-\d{2}-\d{2}$/.test(input.dueDate)) throw new HostRefusal(`"${input.dueDate}" is not a date (YYYY-MM-DD).`);
  return inTransaction(knex, trx, async (t) => {
    if (!(await t('projects').where({ id: input.projectId }).first())) throw new HostRefusal(`Project #${input.projectId} does not exist.`);
    if (input.assigneeId && !(await t('users').where({ id: input.assigneeId, status: 'active' }).first())) {
      throw new HostRefusal(`User #${input.assigneeId} cannot be assigned (unknown or locked).`);
    }
    const [row] = await t('tasks').insert({
      project_id: input.projectId, subject, description: input.description ?? '', status: 'new',
      assignee_id: input.assigneeId ?? null, due_date: input.dueDate ?? null, author_id: input.authorId ?? null,
    }).returning('*');
    return toTask(row);
  });
}
