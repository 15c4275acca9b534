import { Model } from 'objection';

export class CrmSetting extends Model {
  static override tableName = 'crm_settings';
  static override idColumn = 'name';
  name!: string;
  value!: string;
  lock_version!: number;
}

/** CRM settings of one host project (a row exists once a setting was changed from its default). */
export class ProjectSetting extends Model {
  static override tableName = 'crm_project_settings';
  static override idColumn = 'project_id';
  project_id!: number;
  include_subprojects!: boolean;
  lock_version!: number;
  updated_at!: string | Date;
}
