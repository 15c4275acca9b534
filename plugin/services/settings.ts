import type { Knex } from 'knex';
import type { HostUser } from '../host';
import { invalid, staleRecord } from '../http/errors';
import { SETTING_DEFAULTS, type SettingValue } from '../manifest';
import { CrmSetting, ProjectSetting } from '../models/settings';
import { readUnderVersions } from './data-version';
import { journal } from './journal';
import { isCurrencyCode } from './money';
import { parsePercent } from './quote-pricing';
import { readOnce } from './request-memo';
import { settingLabel } from './setting-fields';

export type CrmSettings = Record<string, SettingValue>;

/** The plugin's settings: the manifest's defaults, overridden by what an admin saved. */
export async function loadSettings(knex: Knex): Promise<CrmSettings> {
  const settings = await readUnderVersions(knex, 'settings', ['crm_settings'], [], async () => {
    const stored = await CrmSetting.query(knex);
    const read: CrmSettings = { ...SETTING_DEFAULTS };
    for (const row of stored) if (row.name in SETTING_DEFAULTS) read[row.name] = JSON.parse(row.value) as SettingValue;
    return read;
  });
  return { ...settings };
}

/** Turns form text into a setting of the same type as its default, or says why it cannot (naming the setting by its label). */
export function parseSetting(name: string, raw: string | undefined): SettingValue {
  const def = SETTING_DEFAULTS[name];
  if (def === undefined) throw invalid(`Unknown setting “${name}”.`, { [name]: `Unknown setting “${name}”` });
  const label = settingLabel(name);
  const refuse = (problem: string) => invalid(`${label} ${problem}.`, { [name]: `${label} ${problem}` });
  if (typeof def === 'boolean') return raw === '1' || raw === 'true' || raw === 'on';
  if (typeof def === 'number') {
    const n = Number(raw);
    if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > 500) throw refuse('must be a whole number from 1 to 500');
    return n;
  }
  const text = (raw ?? '').trim();
  if (name === 'default_tax_rate') {
    // The rule every tax rate follows (quote items): a percentage from 0 to 100 with at most 2 decimals.
    const rate = parsePercent(text);
    if (!rate.ok) throw refuse(rate.error);
  }
  if (!text || text.length > 200) throw refuse('must be 1–200 characters');
  if (name.endsWith('_currency') && !isCurrencyCode(text)) throw refuse('must be an ISO 4217 code such as EUR');
  return text;
}

/** The statuses the setting status_after_sold may name (a sale sets it, sale.ts wonStatus), in their order. */
export async function activeWonStatusNames(knex: Knex): Promise<string[]> {
  return knex('crm_opportunity_statuses').where({ kind: 'won', active: true }).orderBy([{ column: 'position' }, { column: 'id' }]).pluck('name');
}

/** The active won status `name` means, whatever the letter case (as a sale reads it), or undefined. */
export function wonStatusNamed(wonNames: readonly string[], name: string): string | undefined {
  return wonNames.find((w) => w.toLowerCase() === name.toLowerCase());
}

/** Saves every setting in `input` (all or nothing), journaling old → new values. */
export async function saveSettings(knex: Knex, user: HostUser, input: Record<string, string | undefined>): Promise<CrmSettings> {
  const current = await loadSettings(knex);
  const next: CrmSettings = {};
  const errors: Record<string, string> = {};
  for (const name of Object.keys(SETTING_DEFAULTS)) {
    try {
      next[name] = parseSetting(name, input[name]);
    } catch (err) {
      Object.assign(errors, (err as { fieldErrors?: Record<string, string> }).fieldErrors ?? {});
    }
  }
  // An unknown name has no field on the page to mark: the message itself names it.
  const unknown = Object.keys(input).filter((k) => !(k in SETTING_DEFAULTS) && k !== '_csrf');
  for (const name of unknown) errors[name] = `Unknown setting “${name}”`;
  if (typeof next.status_after_sold === 'string' && !wonStatusNamed(await activeWonStatusNames(knex), next.status_after_sold)) {
    errors.status_after_sold = `${settingLabel('status_after_sold')}: choose an active status of kind won`;
  }
  if (Object.keys(errors).length) {
    const sentences = ['Settings were not saved.', ...unknown.map((name) => `${errors[name]}.`)];
    if (Object.keys(errors).length > unknown.length) sentences.push('Fix the fields marked below.');
    throw invalid(sentences.join(' '), errors);
  }
  await knex.transaction(async (trx) => {
    const changes = Object.keys(next).filter((k) => next[k] !== current[k]).map((k) => ({ field: k, old: current[k], new: next[k] }));
    for (const c of changes) {
      await CrmSetting.query(trx).insert({ name: c.field, value: JSON.stringify(c.new), lock_version: 0 } as never)
        .onConflict('name').merge({ value: JSON.stringify(c.new) } as never);
    }
    await journal(trx, { type: 'settings', id: 0, userId: user.id, action: 'update', changes });
  });
  return loadSettings(knex);
}

export interface ProjectCrmSettings {
  projectId: number;
  includeSubprojects: boolean;
  lockVersion: number;
}

export async function loadProjectSettings(knex: Knex, projectId: number, settings?: CrmSettings): Promise<ProjectCrmSettings> {
  // A dashboard resolves each module's scope, and each resolution asks for the project's settings.
  const row = await readOnce(knex, `project-settings:${projectId}`, async () => ProjectSetting.query(knex).findById(projectId));
  if (row) return { projectId, includeSubprojects: Boolean(row.include_subprojects), lockVersion: row.lock_version };
  const defaults = settings ?? (await loadSettings(knex));
  return { projectId, includeSubprojects: Boolean(defaults.show_subproject_records), lockVersion: 0 };
}

/**
 * P4: whether a project's CRM pages include its subprojects' records. Optimistic locking: the caller sends
 * the lock version it saw; if someone saved in between, nothing changes and the caller gets 409.
 */
export async function setIncludeSubprojects(
  knex: Knex, user: HostUser, projectId: number, include: boolean, expectedLockVersion: number,
): Promise<ProjectCrmSettings> {
  return knex.transaction(async (trx) => {
    const before = await loadProjectSettings(trx, projectId);
    await ProjectSetting.query(trx).insert({ project_id: projectId, include_subprojects: before.includeSubprojects, lock_version: 0 } as never)
      .onConflict('project_id').ignore();
    const updated = await ProjectSetting.query(trx)
      .where({ project_id: projectId, lock_version: expectedLockVersion })
      .patch({ include_subprojects: include, lock_version: expectedLockVersion + 1, updated_at: new Date().toISOString() } as never);
    if (updated === 0) throw staleRecord('The project CRM settings');
    await journal(trx, {
      type: 'project_settings', id: projectId, userId: user.id, action: 'update',
      changes: before.includeSubprojects === include ? [] : [{ field: 'include_subprojects', old: before.includeSubprojects, new: include }],
    });
    return { projectId, includeSubprojects: include, lockVersion: expectedLockVersion + 1 };
  });
}
