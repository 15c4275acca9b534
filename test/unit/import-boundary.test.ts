import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(ts|js|ejs)$/.test(entry.name) ? [full] : [];
  });
}

/** Every module specifier a file imports or requires. */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /\bimport\s+['"]([^'"]+)['"]/g, /\binclude\(\s*['"]([^'"]+)['"]/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]);
  return found;
}

describe('the plugin stands on the host API alone (P1, DESIGN)', () => {
  const pluginDirs = ['plugin', 'migrations', 'views', 'public'].map((d) => path.join(ROOT, d));
  const files = pluginDirs.flatMap(sourceFiles);

  test('there are plugin files to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  test('no plugin file imports anything from host/', () => {
    const offenders: string[] = [];
    for (const file of files) {
      for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        if (target === path.join(ROOT, 'host') || target.startsWith(path.join(ROOT, 'host') + path.sep)) {
          offenders.push(`${path.relative(ROOT, file)} → ${spec}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  test('the check itself catches such an import', () => {
    const target = path.resolve(path.join(ROOT, 'plugin', 'routes'), '../../host/repository');
    expect(specifiers("import { HostRepository } from '../../host/repository';")).toEqual(['../../host/repository']);
    expect(target.startsWith(path.join(ROOT, 'host') + path.sep)).toBe(true);
  });

  test('no plugin query names a host table', () => {
    const hostTables = ['users', 'projects', 'members', 'roles', 'role_permissions', 'project_modules', 'tasks', 'sessions', 'host_settings'];
    const offenders: string[] = [];
    for (const file of files.filter((f) => f.endsWith('.ts'))) {
      const source = fs.readFileSync(file, 'utf8');
      for (const table of hostTables) {
        if (new RegExp(`(knex|trx|query)\\(\\s*['"]${table}['"]`).test(source) || new RegExp(`\\.(from|join|inTable|leftJoin)\\(\\s*['"]${table}['"]`).test(source)) {
          offenders.push(`${path.relative(ROOT, file)} → ${table}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
