import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestHost, type TestHost } from '../helpers/app';

export const ARTIFACTS = path.resolve(__dirname, '..', 'artifacts');

/** Debian's Chromium, never a downloaded browser; flags keep it off this machine's closed network. */
export async function launchBrowser(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(`No Chromium at ${executablePath}: run the browser tests with npm run test:browser`);
  return chromium.launch({
    executablePath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface LiveHost {
  host: TestHost;
  baseUrl: string;
  close(): Promise<void>;
}

/** The test host listening on a free loopback port, for a real browser to visit. */
export async function startLiveHost(): Promise<LiveHost> {
  const host = await startTestHost();
  const server: Server = await new Promise((resolve) => { const s = host.app.listen(0, '127.0.0.1', () => resolve(s)); });
  const { port } = server.address() as AddressInfo;
  return {
    host,
    baseUrl: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await host.close();
    },
  };
}

export async function signIn(page: Page, baseUrl: string, login: string, password = login): Promise<void> {
  await page.goto(`${baseUrl}/login`);
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL((url) => !url.pathname.startsWith('/login')), page.click('button[type=submit]')]);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

export interface BrowserSession {
  live: LiveHost;
  page: Page;
  /** Console errors and page errors seen so far (a flow's expected ones filtered by `expectedErrors`). */
  consoleErrors: string[];
}

/**
 * Registers beforeAll/afterAll for a browser test file: a live host, Chromium and one page, with console
 * errors collected. `prepare` adds the file's own data before the browser starts.
 */
export function useBrowser(options: { prepare?: (live: LiveHost) => Promise<void>; expectedErrors?: RegExp } = {}): BrowserSession {
  const session = { consoleErrors: [] as string[] } as BrowserSession;
  let browser: Browser | undefined;
  beforeAll(async () => {
    session.live = await startLiveHost();
    await options.prepare?.(session.live);
    browser = await launchBrowser();
    session.page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    session.page.on('console', (msg) => {
      if (msg.type() === 'error' && !(options.expectedErrors && options.expectedErrors.test(msg.text()))) session.consoleErrors.push(msg.text());
    });
    session.page.on('pageerror', (err) => session.consoleErrors.push(err.message));
  });
  afterAll(async () => {
    await browser?.close();
    await session.live?.close();
  });
  return session;
}
