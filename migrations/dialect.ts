import type { Knex } from 'knex';

/**
 * Whether a knex instance, query or transaction runs on PostgreSQL (else SQLite): for the few statements and plans
 * that differ. Migrations and the plugin share it (the plugin may not import the host's `isPostgres`).
 */
export const isPg = (db: { client: Knex.Client }): boolean => db.client.config.client === 'pg';
