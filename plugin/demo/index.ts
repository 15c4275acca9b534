import type { DemoDirectory, HostApi } from '../host';
import { ProjectSetting } from '../models/settings';
import { seedAccountsDemo } from './accounts';
import { seedContactsDemo } from './contacts';
import { seedSettingsDemo } from './settings';
import { seedRelationsDemo } from './relations';
import { seedOpportunitiesDemo } from './opportunities';
import { seedActivitiesDemo } from './activities';
import { seedPriceBooksDemo } from './price-books';
import { seedBundlesDemo } from './bundles';
import { seedQuotesDemo } from './quotes';
import { seedExchangeRatesDemo } from './exchange-rates';
import { seedContractsDemo } from './contracts';
import { seedDashboardsDemo } from './dashboards';

/**
 * The plugin's part of the demo. Each feature adds its records through its own function here, so that
 * `npm start` shows it working at once. The functions run in order: later ones may use earlier records.
 */
export async function seedDemo(host: HostApi, demo: DemoDirectory): Promise<void> {
  const crm = demo.projects.crm;
  if (!crm) return;
  // The main CRM project shows its regional subprojects' records (P4).
  await ProjectSetting.query(host.knex).insert({ project_id: crm.id, include_subprojects: true, lock_version: 0 } as never)
    .onConflict('project_id').ignore();
  await seedAccountsDemo(host, demo);
  await seedSettingsDemo(host, demo);
  await seedRelationsDemo(host, demo);
  await seedContactsDemo(host, demo);
  await seedOpportunitiesDemo(host, demo);
  await seedActivitiesDemo(host, demo);
  await seedPriceBooksDemo(host, demo);
  await seedBundlesDemo(host, demo);
  await seedQuotesDemo(host, demo);
  await seedExchangeRatesDemo(host, demo);
  await seedContractsDemo(host, demo);
  await seedDashboardsDemo(host, demo);
}
