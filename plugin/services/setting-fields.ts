import type { SettingName } from '../manifest';

// No imports beyond types: the document token reference (token-data.ts, also loaded by the render worker) names settings too.

export interface SettingField {
  /** The fieldset the settings page shows it in. */
  group: string;
  label: string;
  /** A line under the field, where the label alone does not say what the setting does or what it takes. */
  hint?: string;
}

/** How the settings page (S6, S7), its error messages and its history name each setting. */
export const SETTING_FIELDS: Readonly<Record<SettingName, SettingField>> = {
  default_currency: { group: 'Currencies', label: 'Default currency', hint: 'ISO 4217 code, such as EUR, that new opportunities start with.' },
  reporting_currency: { group: 'Currencies', label: 'Reporting currency', hint: 'Dashboards and sales targets convert every amount to this currency.' },
  show_subproject_records: { group: 'Options', label: 'Show opportunities of all subprojects', hint: 'A project’s CRM pages also list its subprojects’ records, unless the project’s own CRM settings say otherwise.' },
  use_price_book_items: { group: 'Options', label: 'Use CRM items from price books', hint: 'Quotes offer “Add from price book”.' },
  show_sales_activities_on_opportunities: { group: 'Options', label: 'Show sales activities on opportunities' },
  show_item_descriptions_on_quotes: { group: 'Options', label: 'Show item descriptions on quotes', hint: 'On the quote page and in generated quote documents.' },
  account_type_for_opportunities: { group: 'Opportunities', label: 'Account type used for opportunities' },
  status_after_sold: { group: 'Opportunities', label: 'Status after sold', hint: 'The status a sale gives the opportunity: an active status of kind won.' },
  page_size: { group: 'Lists and attachments', label: 'Rows per page', hint: 'On lists such as accounts and opportunities; 1 to 500.' },
  max_attachment_mb: { group: 'Lists and attachments', label: 'Largest attachment (MB)', hint: '1 to 500.' },
  quote_number_format: { group: 'Quotes', label: 'Quote number format', hint: '{YYYY} the year, {YY} its last two digits, {MM} the month, {SEQ4} a running number of 4 digits.' },
  default_tax_rate: { group: 'Quotes', label: 'Default tax rate', hint: 'In percent, 0 to 100 with at most 2 decimals; new quote items start with it.' },
  company_name: { group: 'Your company on generated documents', label: 'Company name' },
  company_address: { group: 'Your company on generated documents', label: 'Company address', hint: 'Type \\n where a new line starts.' },
  company_vat_number: { group: 'Your company on generated documents', label: 'Company VAT number' },
  company_bank: { group: 'Your company on generated documents', label: 'Company bank details' },
};

/** A setting's label; a name that is not a setting shows as it is. */
export function settingLabel(name: string): string {
  return (SETTING_FIELDS as Partial<Record<string, SettingField>>)[name]?.label ?? name;
}

/** The settings page's fieldsets, each with its settings, in the order of the table above. */
export function settingGroups(): { legend: string; names: SettingName[] }[] {
  const groups = new Map<string, SettingName[]>();
  for (const [name, field] of Object.entries(SETTING_FIELDS) as [SettingName, SettingField][]) groups.set(field.group, [...(groups.get(field.group) ?? []), name]);
  return [...groups].map(([legend, names]) => ({ legend, names }));
}

/** Every setting's label by name, for the settings history. */
export const SETTING_LABELS: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(SETTING_FIELDS).map(([name, f]) => [name, f.label]));
