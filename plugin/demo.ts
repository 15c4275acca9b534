import type { DemoDirectory, HostApi } from './host';
import { ProjectSetting } from './models/settings';

/**
 * The plugin's part of the demo: the main CRM project shows its regional subprojects' records. Each later
 * feature adds its records here, so `npm start` shows it working at once.
 */
export async function seedDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const crm = demo.projects.crm;
  if (!crm) return;
  await ProjectSetting.query(host.knex).insert({ project_id: crm.id, include_subprojects: true, lock_version: 0 } as never)
    .onConflict('project_id').ignore();
}
