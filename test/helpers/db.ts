import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import { createDatabase } from '../../host/db';

export interface TestDatabase {
  knex: Knex;
  dataDir: string;
  kind: 'sqlite' | 'postgres';
  destroy(): Promise<void>;
}

/**
 * A fresh database for one test file: a new SQLite file by default, or, when DATABASE_URL points at a
 * PostgreSQL server (npm run test:pg), a new database on it that is dropped afterwards.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'crm-test-'));
  const url = process.env.DATABASE_URL;
  if (!url) {
    const knex = createDatabase({ dataDir });
    return {
      knex, dataDir, kind: 'sqlite',
      async destroy() { await knex.destroy(); fs.rmSync(dataDir, { recursive: true, force: true }); },
    };
  }
  const name = `crm_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  const knex = createDatabase({ databaseUrl: dbUrl.toString(), dataDir });
  return {
    knex, dataDir, kind: 'postgres',
    async destroy() {
      await knex.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
