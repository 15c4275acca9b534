/**
 * Where the bench data lives. SQLite: a file under `bench/.data/` (git-ignored), cached by scale, seed,
 * generator version and the list of migrations, so a second run reuses it. PostgreSQL (`DATABASE_URL`):
 * a database of its own on that server, generated afresh each run unless `BENCH_REUSE_DB=1`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import type { PluginModule } from '../plugin/host';
import { PLUGIN_ROOT } from '../plugin/paths';
import { migrateAll } from '../host/app';
import { createDatabase } from '../host/db';
import { hostMigrations } from '../host/migrations';
import { crmMigrations } from '../migrations';
import { GENERATOR_VERSION, generateDataset, type GenerateResult } from './generate';

export const BENCH_DATA_DIR = path.join(PLUGIN_ROOT, 'bench', '.data');

export interface BenchDatabase {
  knex: Knex;
  kind: 'sqlite' | 'postgres';
  /** The SQLite directory (also the host's data dir), or a temp dir for files on PostgreSQL. */
  dataDir: string;
  /** The database name on PostgreSQL, the file on SQLite. */
  where: string;
  /** How the data set was made (rows and rows/s per table), when it was generated. */
  generation: GenerateResult | null;
  /** True when an earlier run's data set was reused instead of generated. */
  reused: boolean;
  close(): Promise<void>;
}

/** Changes whenever the data a run would generate changes: scale, seed, generator, any migration. */
export function datasetKey(scale: number, seed: number): string {
  const input = JSON.stringify({ v: GENERATOR_VERSION, scale, seed, host: hostMigrations.map((m) => m.name), crm: crmMigrations.map((m) => m.name) });
  return crypto.createHash('sha256').update(input).digest('hex').slice(0, 10);
}

const scaleTag = (scale: number) => (scale >= 1 ? `x${scale}` : `1-${Math.round(1 / scale)}`);

/**
 * Opens the bench database for `scale`, generating it when there is none to reuse. `fresh` (PostgreSQL)
 * drops and regenerates even if one exists — the default for a run unless BENCH_REUSE_DB=1.
 */
export async function openBenchDatabase(options: {
  scale: number; seed: number; plugins: PluginModule[]; databaseUrl?: string; fresh?: boolean; log?: (line: string) => void;
}): Promise<BenchDatabase> {
  const { scale, seed, plugins } = options;
  const log = options.log ?? (() => undefined);
  const key = datasetKey(scale, seed);
  fs.mkdirSync(BENCH_DATA_DIR, { recursive: true });
  const url = options.databaseUrl;
  if (url) return openPostgres(url, key, options.fresh ?? true, scale, seed, plugins, log);

  const dir = path.join(BENCH_DATA_DIR, `sqlite-${scaleTag(scale)}-seed${seed}-${key}`);
  const marker = path.join(dir, 'dataset.json');
  let generation: GenerateResult | null;
  let reused = true;
  if (!fs.existsSync(marker)) {
    reused = false;
    // Generated beside the final place and renamed when complete: an interrupted run leaves no half data set.
    const tmp = `${dir}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const knex = createDatabase({ dataDir: tmp });
    try {
      await migrateAll(knex, plugins);
      generation = await generateDataset(knex, plugins, { scale, seed, log });
      await knex.raw('pragma wal_checkpoint(truncate)');
    } finally {
      await knex.destroy();
    }
    fs.writeFileSync(path.join(tmp, 'dataset.json'), JSON.stringify({ key, generation }, null, 2));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
    // Older data sets of the same scale and seed (another generator version or migration list) are stale.
    for (const name of fs.readdirSync(BENCH_DATA_DIR)) {
      if (name.startsWith(`sqlite-${scaleTag(scale)}-seed${seed}-`) && name !== path.basename(dir) && !name.includes('.tmp-')) {
        fs.rmSync(path.join(BENCH_DATA_DIR, name), { recursive: true, force: true });
      }
    }
  } else {
    generation = (JSON.parse(fs.readFileSync(marker, 'utf8')) as { generation: GenerateResult }).generation;
  }
  const knex = createDatabase({ dataDir: dir });
  // Migrations are part of the key, so this finds nothing to do; it keeps the host's start-up path honest.
  await migrateAll(knex, plugins);
  return { knex, kind: 'sqlite', dataDir: dir, where: path.join(dir, 'crm.sqlite3'), generation, reused, close: () => knex.destroy() };
}

async function openPostgres(url: string, key: string, fresh: boolean, scale: number, seed: number, plugins: PluginModule[], log: (line: string) => void): Promise<BenchDatabase> {
  const name = `crm_bench_${scaleTag(scale).replace('-', '_')}_${key}`;
  const admin = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 1 } });
  let exists: boolean;
  try {
    exists = Boolean((await admin.raw('select 1 from pg_database where datname = ?', [name])).rows.length);
    if (exists && fresh) {
      await admin.raw(`drop database ${name} with (force)`);
      exists = false;
    }
    if (!exists) await admin.raw(`create database ${name}`);
  } finally {
    await admin.destroy();
  }
  const dbUrl = new URL(url);
  dbUrl.pathname = `/${name}`;
  const dataDir = fs.mkdtempSync(path.join(BENCH_DATA_DIR, 'pg-files-'));
  const knex = createDatabase({ databaseUrl: dbUrl.toString(), dataDir });
  let generation: GenerateResult | null;
  let reused = true;
  await migrateAll(knex, plugins);
  const marker = await knex('host_settings').where({ name: 'bench_dataset' }).first();
  if (marker) {
    generation = (JSON.parse(String(marker.value)) as { generation: GenerateResult }).generation;
  } else {
    if (exists) {
      await knex.destroy();
      throw new Error(`${name} exists but holds no complete data set (an interrupted run?): run again without BENCH_REUSE_DB=1.`);
    }
    reused = false;
    generation = await generateDataset(knex, plugins, { scale, seed, log });
    await knex('host_settings').insert({ name: 'bench_dataset', value: JSON.stringify({ key, generation }) });
  }
  return {
    knex, kind: 'postgres', dataDir, where: `PostgreSQL database ${name}`, generation, reused,
    async close() {
      await knex.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
