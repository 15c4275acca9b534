import path from 'node:path';
import express from 'express';
import type { Knex } from 'knex';
import type { DemoDirectory, HostApi, PluginInstance, PluginModule } from './host';
import { buildRouter } from './http/guard';
import { manifest } from './manifest';
import { ASSET_PATH, PUBLIC_DIR } from './paths';
import { overviewRoutes } from './routes/overview';
import { settingsRoutes } from './routes/settings';
import { accountRoutes } from './routes/accounts';
import { relationRoutes } from './routes/relations';
import { taskAccountRoutes } from './routes/task-accounts';
import { ACCOUNT_ATTACHMENTS, CONTACT_ATTACHMENTS, OPPORTUNITY_ATTACHMENTS, PARTNER_ATTACHMENTS, PRICE_BOOK_ATTACHMENTS, attachmentRoutes } from './routes/attachments';
import { crmAdminRoutes } from './routes/crm-admin';
import { contactRoutes } from './routes/contacts';
import { partnerRoutes } from './routes/partners';
import { opportunityRoutes } from './routes/opportunities';
import { activityRoutes } from './routes/activities';
import { opportunityActionRoutes } from './routes/opportunity-actions';
import { opportunityAdminRoutes } from './routes/opportunity-admin';
import { priceBookRoutes } from './routes/price-books';
import { productRoutes } from './routes/products';
import { productCategoryRoutes } from './routes/product-categories';
import { exchangeRateRoutes } from './routes/exchange-rates';
import { crmMigrations, CRM_MIGRATIONS_TABLE } from '../migrations';
import { seedDemo } from './demo/index';
import { bundleRoutes } from './routes/bundles';
import { priceImportRoutes } from './routes/price-import';
import { priceRoutes } from './routes/prices';
import { quoteRoutes } from './routes/quotes';
import { documentRoutes } from './routes/documents';
import { dashboardRoutes } from './routes/dashboards';
import { targetRoutes } from './routes/targets';
import { saleRoutes } from './routes/sale';
import { contractRoutes } from './routes/contracts';
import { automationAdminRoutes } from './routes/automation-admin';

/** Every route the plugin answers, each behind its declared permission (see http/guard.ts). */
export function crmRoutes() {
  return [...overviewRoutes(), ...settingsRoutes(), ...accountRoutes(), ...relationRoutes(), ...taskAccountRoutes(), ...attachmentRoutes(ACCOUNT_ATTACHMENTS), ...attachmentRoutes(CONTACT_ATTACHMENTS), ...attachmentRoutes(PARTNER_ATTACHMENTS), ...crmAdminRoutes(), ...contactRoutes(), ...partnerRoutes(), ...opportunityRoutes(), ...opportunityAdminRoutes(), ...activityRoutes(), ...opportunityActionRoutes(), ...priceBookRoutes(), ...productRoutes(), ...attachmentRoutes(PRICE_BOOK_ATTACHMENTS), ...productCategoryRoutes(), ...bundleRoutes(), ...priceImportRoutes(), ...priceRoutes(), ...quoteRoutes(), ...attachmentRoutes(OPPORTUNITY_ATTACHMENTS), ...documentRoutes(), ...exchangeRateRoutes(), ...saleRoutes(), ...contractRoutes(), ...automationAdminRoutes(), ...dashboardRoutes(), ...targetRoutes()];
}

/** Builds the plugin's router from the host's services. No global state: two hosts can mount it side by side. */
export function register(host: HostApi): PluginInstance {
  const router = express.Router();
  // htmx is pinned in package.json and served from node_modules, never from a CDN.
  const htmxFile = require.resolve('htmx.org/dist/htmx.min.js');
  router.get(`${ASSET_PATH}/vendor/htmx.min.js`, (_req, res) => res.sendFile(htmxFile, { maxAge: '1d' }));
  router.use(ASSET_PATH, express.static(PUBLIC_DIR, { maxAge: '1h', index: false }));
  router.use(buildRouter(host, crmRoutes()));
  return { router };
}

export const lifecycle = {
  async migrate(knex: Knex): Promise<void> {
    await knex.migrate.latest({
      tableName: CRM_MIGRATIONS_TABLE,
      migrationSource: {
        getMigrations: async () => crmMigrations,
        getMigrationName: (m: (typeof crmMigrations)[number]) => m.name,
        getMigration: async (m: (typeof crmMigrations)[number]) => m,
      },
    });
  },
  seedDemo: (host: HostApi, demo: DemoDirectory) => seedDemo(host, demo),
};

export { manifest };

export const crmPlugin: PluginModule = { manifest, register, lifecycle };
export default crmPlugin;

/** Where the plugin's files are, for hosts that serve or package it. */
export const pluginRoot = path.resolve(PUBLIC_DIR, '..');
