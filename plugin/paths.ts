import fs from 'node:fs';
import path from 'node:path';

/** The plugin's root (where plugin.json is), from source under jest or from dist/ after a build. */
function findPluginRoot(start: string): string {
  let dir = start;
  while (!fs.existsSync(path.join(dir, 'plugin.json')) || !fs.existsSync(path.join(dir, 'views'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`No plugin root above ${start}`);
    dir = parent;
  }
  return dir;
}

export const PLUGIN_ROOT = findPluginRoot(__dirname);
export const VIEWS_DIR = path.join(PLUGIN_ROOT, 'views');
export const PUBLIC_DIR = path.join(PLUGIN_ROOT, 'public');
export const TEMPLATES_DIR = path.join(PLUGIN_ROOT, 'templates');
/** Where the plugin's static files are served; htmx is served from node_modules under the same path. */
export const ASSET_PATH = '/plugin_assets/crm';
