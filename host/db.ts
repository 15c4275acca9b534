import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { Knex } from 'knex';

/**
 * One knex instance for the host and its plugins: SQLite under `dataDir` by default, PostgreSQL when a
 * `postgres://` URL is given. Everything above this file uses knex's portable forms only.
 */
export function createDatabase(options: { databaseUrl?: string; dataDir: string }): Knex {
  const url = options.databaseUrl;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    // No JIT: its compile runs per query and pays off only for long analytic ones. The planner's cost estimate of
    // a list query under LIMIT counts every row the page might walk, so it crossed jit_above_cost and spent 0.5 s
    // compiling a plan that runs in a few ms (the account list at 100,000 accounts).
    return knexFactory({ client: 'pg', connection: { connectionString: url, options: '-c jit=off' }, pool: { min: 0, max: 10 } });
  }
  if (url) throw new Error(`DATABASE_URL must be a postgres:// URL (got "${url.split(':')[0]}:…")`);
  fs.mkdirSync(options.dataDir, { recursive: true });
  return knexFactory({
    client: 'better-sqlite3',
    connection: { filename: path.join(options.dataDir, 'crm.sqlite3') },
    useNullAsDefault: true,
    pool: {
      // SQLite enforces foreign keys only when asked, per connection; WAL lets readers run beside a writer.
      afterCreate(conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) {
        reusePreparedStatements(conn);
        conn.pragma('foreign_keys = ON');
        conn.pragma('journal_mode = WAL');
        conn.pragma('busy_timeout = 5000');
        // Durable with WAL (a power loss may drop the last commits, never corrupt), without an fsync per write.
        conn.pragma('synchronous = NORMAL');
        // Gathers the statistics the query planner needs where they are missing or stale (cheap, bounded
        // work, as SQLite recommends for long-lived connections): without them it may walk the wrong index.
        conn.pragma('optimize = 0x10002');
        done(null, conn);
      },
    },
  });
}

interface SqliteConnection {
  pragma(sql: string): unknown;
  prepare(sql: string): unknown;
}

/** How many distinct statements a connection keeps compiled: every query shape of the plugin fits many times over. */
const STATEMENT_CACHE_SIZE = 500;

/**
 * knex compiles (prepares) every statement afresh; SQLite's compile of a list query costs about as much as
 * running it on a small database. The queries of a page are the same few shapes with other bindings, so each
 * connection keeps its compiled statements by SQL text, least recently used first out. Reuse is safe here:
 * knex runs a statement to the end (`all`/`run`) before the next starts, and SQLite recompiles a kept statement
 * by itself when the schema changes.
 */
function reusePreparedStatements(conn: SqliteConnection): void {
  const prepare = conn.prepare.bind(conn);
  const kept = new Map<string, unknown>();
  conn.prepare = (sql: string) => {
    let statement = kept.get(sql);
    if (statement) kept.delete(sql);
    else statement = prepare(sql);
    kept.set(sql, statement);
    if (kept.size > STATEMENT_CACHE_SIZE) kept.delete(kept.keys().next().value as string);
    return statement;
  };
}

export function isPostgres(knex: Knex): boolean {
  return knex.client.config.client === 'pg';
}

/** A knex migration source over a static list, so migrations load the same from dist/ and under jest. */
export interface Migration {
  name: string;
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

export function listMigrationSource(migrations: Migration[]): Knex.MigrationSource<Migration> {
  return {
    getMigrations: async () => migrations,
    getMigrationName: (m) => m.name,
    getMigration: async (m) => m,
  };
}

export async function runMigrations(knex: Knex, tableName: string, migrations: Migration[]): Promise<void> {
  await knex.migrate.latest({ tableName, migrationSource: listMigrationSource(migrations) });
}
