import path from 'node:path';

export interface HostConfig {
  port: number;
  dataDir: string;
  databaseUrl?: string;
  sessionSecret: string;
  /** Cookies marked Secure (set when served over HTTPS). */
  secureCookies: boolean;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): HostConfig {
  const dataDir = path.resolve(env.DATA_DIR || 'data');
  const port = Number(env.PORT || 3000);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`PORT must be a port number, got "${env.PORT}"`);
  return {
    port,
    dataDir,
    databaseUrl: env.DATABASE_URL || undefined,
    sessionSecret: env.SESSION_SECRET || '',
    secureCookies: env.SECURE_COOKIES === '1',
  };
}
