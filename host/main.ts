import { crmPlugin } from '../plugin/index';
import { createHostApp, migrateAll } from './app';
import { configFromEnv } from './config';
import { createDatabase, isPostgres } from './db';
import { DEMO_USERS, seedDemoData } from './seed';

/** `npm start`: the reference host with the CRM plugin, migrated and (on first start) seeded with demo data. */
async function main(): Promise<void> {
  const config = configFromEnv();
  const knex = createDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const plugins = [crmPlugin];
  await migrateAll(knex, plugins);
  const host = await createHostApp({ knex, dataDir: config.dataDir, plugins, sessionSecret: config.sessionSecret || undefined, secureCookies: config.secureCookies });
  const seeded = process.env.SEED_DEMO === '0' ? false : await seedDemoData(knex, host.registry, plugins, host.hostApi);
  const server = host.app.listen(config.port, () => {
    const where = isPostgres(knex) ? 'PostgreSQL (DATABASE_URL)' : `SQLite in ${config.dataDir}`;
    console.log(`Reference PM with the CRM plugin on ${where}${seeded ? ', demo data seeded' : ''}.`);
    console.log(`Open http://localhost:${config.port}/login and sign in as admin / admin.`);
    console.log(`Other demo logins: ${DEMO_USERS.filter((u) => !u.admin).map((u) => `${u.login} / ${u.password} (${u.role})`).join(', ')}.`);
  });
  const stop = () => server.close(() => void knex.destroy().then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
