/**
 * The CRM sections of the right sidebar, in the order the seeds list them. `issue` marks a section whose
 * pages are not built yet: its link leads to a clearly marked placeholder until that issue lands.
 */
export interface CrmSection {
  id: string;
  label: string;
  permission: string;
  issue?: string;
}

export const SECTIONS: CrmSection[] = [
  { id: 'leads', label: 'Leads', permission: 'view_leads', issue: 'Leads and campaigns' },
  { id: 'opportunities', label: 'Opportunities', permission: 'view_opportunities' },
  { id: 'activities', label: 'Sales activities', permission: 'view_opportunities' },
  { id: 'accounts', label: 'Accounts', permission: 'view_accounts' },
  { id: 'personal_contacts', label: 'Personal contacts', permission: 'view_personal_contacts' },
  { id: 'partners', label: 'Partners', permission: 'view_partners' },
  { id: 'campaigns', label: 'Campaigns', permission: 'view_campaigns', issue: 'Leads and campaigns' },
  { id: 'contracts', label: 'Contracts', permission: 'view_contracts' },
  { id: 'price_books', label: 'Price books', permission: 'view_price_books' },
];
