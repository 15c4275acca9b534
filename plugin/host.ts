/**
 * The host API: the one narrow, typed contract between the CRM plugin and the platform it is mounted in.
 * The plugin receives an implementation in `register(host)` and never reaches past it: no host imports,
 * no host tables. Anything the plugin needs from the platform is a method here.
 */
import type { Request, Response } from 'express';
import type { Knex } from 'knex';

/** The version of this contract; a manifest's `host` semver range is checked against it at mount time. */
export const HOST_API_VERSION = '1.2.0';

export interface HostUser {
  id: number;
  login: string;
  name: string;
  email: string;
  admin: boolean;
}

export interface HostProject {
  id: number;
  identifier: string;
  name: string;
  parentId: number | null;
  isTemplate: boolean;
}

export interface HostRole {
  id: number;
  name: string;
}

/** A user's role in one project. */
export interface HostMembership {
  projectId: number;
  roleId: number;
}

export interface HostTask {
  id: number;
  projectId: number;
  subject: string;
  status: string;
  assigneeId: number | null;
  dueDate: string | null;
}

export interface NewProjectFromTemplate {
  templateId: number;
  parentId: number | null;
  name: string;
  /** In the host's identifier rules (the reference host's: a lower-case letter, then lower-case letters, digits, - and _; at most 100). */
  identifier: string;
  /**
   * When a project has `identifier` already: 'refuse' (the default) throws HostRefusal; 'next-free' gives the new
   * project the first free one of `identifier-2`, `identifier-3`, … instead, looked up in the same transaction (the
   * host cuts the base so the result still keeps its identifier rules). The returned project carries the
   * identifier used. For identifiers a program makes up, where a clash is nobody's mistake. Since 1.2.
   */
  identifierTaken?: 'refuse' | 'next-free';
  /**
   * Links back to what the project was made for (a CRM contract, its account); the host shows them on the
   * project's overview. Optional: a host may ignore them. Same-origin paths only (starting with `/`).
   */
  links?: HostLink[];
}

export interface HostLink {
  label: string;
  url: string;
}

export interface NewTask {
  projectId: number;
  subject: string;
  description?: string;
  assigneeId?: number | null;
  dueDate?: string | null;
}

/** What the plugin hands the host to render inside the host's own page layout. */
export interface HostPage {
  title: string;
  /** HTML the plugin rendered (already escaped by its templates). */
  body: string;
  /** A project page gets the host's project header and menu, with `activeMenu` highlighted. */
  project?: HostProject | null;
  activeMenu?: string;
  /** Extra stylesheets and scripts (same-origin URLs only: the host's CSP allows scripts from self). */
  stylesheets?: string[];
  scripts?: string[];
  status?: number;
}

export interface HostUrls {
  login(returnTo?: string): string;
  project(project: HostProject): string;
  task(task: { id: number }): string;
  user(user: { id: number }): string;
}

/** A write that should join the caller's transaction passes it here. */
export type HostTransaction = Knex.Transaction;

export interface HostApi {
  /** Version of the contract this host implements (semver). */
  readonly version: string;
  /** The database the plugin keeps its own `crm_*` tables in. */
  readonly knex: Knex;
  /** Directory for files the plugin stores (attachments, generated documents). */
  readonly dataDir: string;

  /** The signed-in user of this request (session or API key), or null. */
  currentUser(req: Request): HostUser | null;
  /**
   * May `user` do `permission`? With a project: in that project (the permission's module must be enabled
   * there). Without one, for a project permission: in at least one project; for a global permission: at all.
   * Admins may do everything, but never in a project where the module is off.
   */
  can(user: HostUser | null, permission: string, project?: HostProject | null): Promise<boolean>;
  /** Projects (not templates) where `user` has `permission`; the permission's module is enabled in each. */
  projectsWhere(user: HostUser, permission: string): Promise<HostProject[]>;
  /** Is `module` switched on in `project`? */
  isModuleEnabled(project: HostProject, module: string): Promise<boolean>;

  projectById(id: number): Promise<HostProject | null>;
  projectByIdentifier(identifier: string): Promise<HostProject | null>;
  /** Every descendant of `project` (children, grandchildren, …), in tree order. */
  subprojects(project: HostProject): Promise<HostProject[]>;
  /** Ancestors from the root down to the parent of `project`. */
  ancestors(project: HostProject): Promise<HostProject[]>;
  projectTemplates(): Promise<HostProject[]>;

  /** Copies the template's modules, members and tasks into a new project; throws HostRefusal if it cannot. */
  createProjectFromTemplate(input: NewProjectFromTemplate, trx?: HostTransaction): Promise<HostProject>;
  createTask(input: NewTask, trx?: HostTransaction): Promise<HostTask>;
  taskById(id: number): Promise<HostTask | null>;
  /** The tasks of these ids that exist, in one call (order not guaranteed): for lists of linked tasks. Since 1.1. */
  tasksByIds(ids: number[]): Promise<HostTask[]>;
  /**
   * Tasks whose subject contains `text` (case-insensitive), only in projects where `user` may view tasks,
   * newest first, at most `limit`. For pickers ("link an existing task"); a host without search returns [].
   */
  searchTasks(user: HostUser, text: string, limit: number): Promise<HostTask[]>;

  /**
   * The host's roles, for settings that vary by role (record visibility, default filters), in the host's order of
   * roles — the reference host's: their order on its roles admin page. A user with several roles gets the default
   * filter of the first (services/saved-filters.ts).
   */
  roles(): Promise<HostRole[]>;
  /** The user's role in every project they are a member of. */
  memberships(user: HostUser): Promise<HostMembership[]>;

  /** Active users, ordered by name. */
  users(): Promise<HostUser[]>;
  userById(id: number): Promise<HostUser | null>;

  urls: HostUrls;
  /** The CSRF token the host expects in `_csrf` (forms) or `X-CSRF-Token` (htmx) for this request. */
  csrfToken(req: Request): string;
  /** Sends `page` wrapped in the host's layout. */
  renderPage(req: Request, res: Response, page: HostPage): Promise<void>;
}

/** The host declined a request made through the API (a template that is gone, a duplicate identifier …). */
export class HostRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostRefusal';
  }
}

/** What a plugin module exports; the host mounts any module of this shape. */
export interface PluginModule {
  manifest: PluginManifest;
  /** Builds the plugin's routers from the host's services; no global side effects. */
  register(host: HostApi): PluginInstance;
  lifecycle: PluginLifecycle;
}

export interface PluginInstance {
  /** Mounted by the host at its root, after its session, authentication and CSRF middleware. */
  router: import('express').Router;
}

export interface PluginLifecycle {
  /** Runs the plugin's own migrations, tracked in its own migrations table. */
  migrate(knex: Knex): Promise<void>;
  /** Adds the plugin's demo data on a freshly seeded host (called once, after the host's own demo data). */
  seedDemo(host: HostApi, demo: DemoDirectory): Promise<void>;
}

/** The demo users and projects the host seeded, by login and identifier, for a plugin's demo data. */
export interface DemoDirectory {
  users: Record<string, HostUser>;
  projects: Record<string, HostProject>;
}

export interface ManifestPermission {
  name: string;
  scope: 'project' | 'global';
  group: string;
  label: string;
}

export interface ManifestMenu {
  menu: 'project' | 'global' | 'admin';
  id: string;
  label: string;
  path: string;
  /** Shown to users holding any of these. */
  permission: string[];
}

export interface PluginManifest {
  id: string;
  name: string;
  version: string;
  description?: string;
  host: string;
  entry: string;
  module: { id: string; name: string; description?: string };
  permissions: ManifestPermission[];
  menus: ManifestMenu[];
  settings: Record<string, string | number | boolean>;
}
