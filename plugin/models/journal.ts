import { Model } from 'objection';

export class JournalDetail extends Model {
  static override tableName = 'crm_journal_details';
  id!: number;
  journal_id!: number;
  field!: string;
  old_value!: string | null;
  new_value!: string | null;
}

/** One change to one CRM record: who, when, what action, and the field-by-field old → new values. */
export class Journal extends Model {
  static override tableName = 'crm_journals';
  id!: number;
  journalized_type!: string;
  journalized_id!: number;
  user_id!: number | null;
  action!: string;
  notes!: string;
  created_at!: string | Date;
  details?: JournalDetail[];

  static override get relationMappings() {
    return {
      details: {
        relation: Model.HasManyRelation,
        modelClass: JournalDetail,
        join: { from: 'crm_journals.id', to: 'crm_journal_details.journal_id' },
      },
    };
  }
}
