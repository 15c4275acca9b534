import type { Request } from 'express';
import type { Knex } from 'knex';
import type { Passport } from 'passport';
import type { PermissionRegistry } from './permissions';
import type { Layout } from './render';
import type { HostRepository } from './repository';

/** What the host's own route modules share. */
export interface HostContext {
  knex: Knex;
  repo: HostRepository;
  registry: PermissionRegistry;
  layout: Layout;
  passport: InstanceType<typeof Passport>;
  csrfToken(req: Request): string;
}
