import type { Knex } from 'knex';
import type { DemoDirectory, HostApi, HostProject, PluginModule } from '../plugin/host';
import { hashPassword } from './passwords';
import type { PermissionRegistry } from './permissions';
import { createProject } from './projects-service';
import { toUser } from './repository';

export const DEMO_USERS = [
  { login: 'admin', password: 'admin', name: 'Ada Admin', admin: true, role: null },
  { login: 'director', password: 'director', name: 'Diane Director', admin: false, role: 'Sales director' },
  { login: 'rep1', password: 'rep1', name: 'Rick Rep', admin: false, role: 'Sales rep' },
  { login: 'rep2', password: 'rep2', name: 'Rita Rep', admin: false, role: 'Sales rep' },
  { login: 'pm', password: 'pm', name: 'Paul Manager', admin: false, role: 'Project manager' },
] as const;

/**
 * Which permissions each demo role gets. Plugin permissions are picked by the shape of their names, so a
 * permission a plugin adds later lands in a sensible role without editing this file.
 */
export function demoRolePermissions(registry: PermissionRegistry): Record<string, string[]> {
  const all = registry.all();
  const plugin = all.filter((p) => p.source !== 'host');
  const tasks = ['view_tasks', 'add_tasks', 'edit_tasks'];
  return {
    Manager: [...all.filter((p) => p.scope === 'project').map((p) => p.name), 'add_projects'],
    'Sales director': [...tasks, ...plugin.map((p) => p.name)],
    'Sales rep': [...tasks, ...plugin.filter((p) => p.scope === 'project' && !p.name.startsWith('delete_') && p.name !== 'manage_crm_page').map((p) => p.name)],
    'Project manager': [...tasks, 'manage_project', ...plugin.filter((p) => p.name.startsWith('view_') || p.name === 'manage_crm_page').map((p) => p.name)],
    Reporter: ['view_tasks'],
  };
}

/** Fills an empty database with the demo platform, then lets each plugin add its demo data. Runs once. */
export async function seedDemoData(knex: Knex, registry: PermissionRegistry, plugins: PluginModule[], hostApi: HostApi): Promise<boolean> {
  if (await knex('host_settings').where({ name: 'demo_seeded' }).first()) return false;
  const directory: DemoDirectory = { users: {}, projects: {} };
  await knex.transaction(async (trx) => {
    const roleIds: Record<string, number> = {};
    const permissions = demoRolePermissions(registry);
    let position = 0;
    for (const [name, perms] of Object.entries(permissions)) {
      const [role] = await trx('roles').insert({ name, position: position++ }).returning('id');
      roleIds[name] = Number(role.id ?? role);
      await trx('role_permissions').insert(perms.map((permission) => ({ role_id: roleIds[name], permission })));
    }
    for (const u of DEMO_USERS) {
      const [row] = await trx('users').insert({
        login: u.login, name: u.name, email: `${u.login}@example.com`, password_hash: await hashPassword(u.password), admin: u.admin,
      }).returning('*');
      directory.users[u.login] = toUser(row);
    }
    const pluginModules = plugins.map((p) => p.manifest.module.id);
    const project = async (key: string, input: Parameters<typeof createProject>[1]): Promise<HostProject> =>
      (directory.projects[key] = await createProject(knex, input, trx));
    const crm = await project('crm', { name: 'CRM', identifier: 'crm', parentId: null, modules: ['tasks', ...pluginModules] });
    for (const region of ['Europe', 'Americas', 'Asia']) {
      await project(`crm-${region.toLowerCase()}`, { name: region, identifier: `crm-${region.toLowerCase()}`, parentId: crm.id, modules: ['tasks', ...pluginModules] });
    }
    const internal = await project('internal', { name: 'Internal tools', identifier: 'internal', parentId: null, modules: ['tasks'] });
    const template = await project('implementation-template', {
      name: 'Implementation (template)', identifier: 'implementation-template', parentId: null, modules: ['tasks'], isTemplate: true,
    });

    const member = (login: string, p: HostProject, role: string) =>
      trx('members').insert({ project_id: p.id, user_id: directory.users[login].id, role_id: roleIds[role] });
    const regions = ['crm-europe', 'crm-americas', 'crm-asia'].map((k) => directory.projects[k]);
    for (const p of [crm, ...regions]) await member('director', p, 'Sales director');
    await member('rep1', crm, 'Sales rep');
    await member('rep1', directory.projects['crm-europe'], 'Sales rep');
    await member('rep2', crm, 'Sales rep');
    await member('rep2', directory.projects['crm-americas'], 'Sales rep');
    await member('pm', crm, 'Project manager');
    await member('pm', internal, 'Manager');
    await member('pm', template, 'Manager');

    const taskRows = [
      { project_id: template.id, subject: 'Kick-off meeting with the customer' },
      { project_id: template.id, subject: 'Install and configure' },
      { project_id: template.id, subject: 'Training and handover' },
      { project_id: internal.id, subject: 'Renew the office VPN certificate' },
      { project_id: crm.id, subject: 'Prepare the quarterly sales review' },
    ];
    await trx('tasks').insert(taskRows.map((t) => ({ ...t, description: '', status: 'new', author_id: directory.users.admin.id })));
    await trx('host_settings').insert({ name: 'demo_seeded', value: new Date().toISOString() });
  });
  for (const plugin of plugins) await plugin.lifecycle.seedDemo(hostApi, directory);
  return true;
}
