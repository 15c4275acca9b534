import manifestJson from '../plugin.json';
import type { PluginManifest } from './host';

/** plugin.json, typed. A test validates it against plugin.schema.json. */
export const manifest = manifestJson as unknown as PluginManifest;

export const PERMISSIONS = new Set(manifest.permissions.map((p) => p.name));

export function requirePermissionName(name: string): string {
  if (!PERMISSIONS.has(name)) throw new Error(`"${name}" is not a permission declared in plugin.json`);
  return name;
}

export type SettingValue = string | number | boolean;
/** The names of the plugin's settings, as plugin.json declares them. */
export type SettingName = keyof typeof manifestJson.settings;
export const SETTING_DEFAULTS: Readonly<Record<string, SettingValue>> = manifest.settings;
