import type { ManifestPermission, PluginManifest } from '../plugin/host';

export interface PermissionDef extends ManifestPermission {
  /** Project permissions belong to a module; they count only where that module is enabled. Null: always on. */
  module: string | null;
  /** Where the permission comes from ("host" or a plugin id): the role editor groups by it. */
  source: string;
}

export interface ModuleDef {
  id: string;
  name: string;
  source: string;
}

const HOST_PERMISSIONS: Omit<PermissionDef, 'source'>[] = [
  { name: 'manage_project', scope: 'project', group: 'Project', label: 'Manage modules and members', module: null },
  { name: 'view_tasks', scope: 'project', group: 'Tasks', label: 'View tasks', module: 'tasks' },
  { name: 'add_tasks', scope: 'project', group: 'Tasks', label: 'Add tasks', module: 'tasks' },
  { name: 'edit_tasks', scope: 'project', group: 'Tasks', label: 'Edit tasks', module: 'tasks' },
  { name: 'add_projects', scope: 'global', group: 'Projects', label: 'Create projects', module: null },
];

const HOST_MODULES: ModuleDef[] = [{ id: 'tasks', name: 'Tasks', source: 'host' }];

/**
 * Every permission and module the host knows: its own plus those each mounted plugin declares in its
 * manifest. The role editor, the module settings and `can()` all read from here, so a permission added to
 * a plugin's manifest appears everywhere with no host change.
 */
export class PermissionRegistry {
  private readonly byName = new Map<string, PermissionDef>();
  readonly modules: ModuleDef[] = [...HOST_MODULES];

  constructor(manifests: PluginManifest[]) {
    for (const p of HOST_PERMISSIONS) this.add({ ...p, source: 'host' });
    for (const manifest of manifests) {
      this.modules.push({ id: manifest.module.id, name: manifest.module.name, source: manifest.id });
      for (const p of manifest.permissions) {
        this.add({ ...p, module: p.scope === 'project' ? manifest.module.id : null, source: manifest.id });
      }
    }
  }

  private add(def: PermissionDef): void {
    if (this.byName.has(def.name)) throw new Error(`Permission "${def.name}" is declared twice`);
    this.byName.set(def.name, def);
  }

  get(name: string): PermissionDef | undefined {
    return this.byName.get(name);
  }

  require(name: string): PermissionDef {
    const def = this.byName.get(name);
    if (!def) throw new Error(`Unknown permission "${name}"`);
    return def;
  }

  all(): PermissionDef[] {
    return [...this.byName.values()];
  }

  isModule(id: string): boolean {
    return this.modules.some((m) => m.id === id);
  }
}
