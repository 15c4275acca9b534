import type { Request } from 'express';
import type { CrmContext, CrmRoute } from '../http/guard';
import { CrmError } from '../http/errors';
import { respond, respondAfterChange, type PageResponse } from '../http/respond';
import { SETTING_DEFAULTS } from '../manifest';
import { settingGroups, SETTING_FIELDS, SETTING_LABELS } from '../services/setting-fields';
import { activeWonStatusNames, loadSettings, saveSettings, wonStatusNamed, type CrmSettings } from '../services/settings';
import { settingsHistory } from './admin-forms';

export interface SettingChoice { value: string; label: string; selected: boolean }

/**
 * The choices of the status after sold: the active won statuses by name. A value that names none of them (the
 * status was renamed, re-kinded or switched off since, or the user posted it) is shown as it is and marked, and
 * stays selected: picking another status silently would change what a sale does without anyone choosing it.
 */
function statusAfterSoldChoices(value: string, wonNames: string[]): SettingChoice[] {
  const current = wonStatusNamed(wonNames, value);
  const choices = wonNames.map((name) => ({ value: name, label: name, selected: name === current }));
  if (current !== undefined) return choices;
  return [{ value, label: `${value || '(none)'} (not an active won status)`, selected: true }, ...choices];
}

async function settingsPage(ctx: CrmContext, req: Request, settings: CrmSettings, errors: Record<string, string> = {}, message: string | null = null, status = 200): Promise<PageResponse> {
  const log = await settingsHistory(ctx, 'settings', SETTING_LABELS);
  const users = new Map((await ctx.host.users()).map((u) => [u.id, u.name]));
  const choices: Record<string, SettingChoice[]> = {
    status_after_sold: statusAfterSoldChoices(String(settings.status_after_sold ?? ''), await activeWonStatusNames(ctx.host.knex)),
  };
  return {
    title: 'CRM settings',
    view: 'settings/index',
    status,
    locals: { settings, defaults: SETTING_DEFAULTS, fields: SETTING_FIELDS, groups: settingGroups(), choices, errors, message, log, users, current: 'settings' },
    json: status === 200 ? { settings } : { error: message, fields: errors },
  };
}

/** A checkbox after its hidden "0" twin arrives as ["0", "1"]: the last value is the one the user chose. */
function lastValue(v: unknown): string | undefined {
  const last = Array.isArray(v) ? v[v.length - 1] : v;
  return typeof last === 'string' ? last : undefined;
}

export function settingsRoutes(): CrmRoute[] {
  return [
    {
      method: 'get', path: '/crm/settings', permission: 'manage_crm_settings',
      handler: async (ctx, req, res) => respond(ctx.host, req, res, await settingsPage(ctx, req, await loadSettings(ctx.host.knex))),
    },
    {
      method: 'post', path: '/crm/settings', permission: 'manage_crm_settings',
      handler: async (ctx, req, res) => {
        const input: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries((req.body ?? {}) as Record<string, unknown>)) if (k !== '_csrf') input[k] = lastValue(v);
        try {
          await saveSettings(ctx.host.knex, ctx.user, input);
        } catch (err) {
          if (!(err instanceof CrmError) || err.status !== 422) throw err;
          // The form comes back with what the user typed and the fields named; nothing was saved.
          const typed: CrmSettings = { ...(await loadSettings(ctx.host.knex)) };
          for (const [k, v] of Object.entries(input)) if (k in SETTING_DEFAULTS && v !== undefined) typed[k] = v;
          return respond(ctx.host, req, res, await settingsPage(ctx, req, typed, err.fieldErrors, err.message, 422));
        }
        await respondAfterChange(ctx.host, req, res, '/crm/settings', async () => ({
          ...(await settingsPage(ctx, req, await loadSettings(ctx.host.knex), {}, 'Settings saved.')), trigger: 'crm:settingsSaved',
        }));
      },
    },
  ];
}
