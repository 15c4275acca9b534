import type { Knex } from 'knex';

/** Whether a migration runs on PostgreSQL (else SQLite): for the few statements knex has no portable form of. */
export const isPg = (knex: Knex): boolean => knex.client.config.client === 'pg';
