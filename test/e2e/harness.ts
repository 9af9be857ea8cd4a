// What every end-to-end test stands on: the web renderer built once, the web host on a free
// port with a real lab behind it, a WebSocket client of that lab for setting state up, and
// Debian's Chromium on one of the lab's views, collecting page errors.
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Locator, type Page, type WebSocketRoute } from 'playwright-core';
import WebSocket from 'ws';
import { startWebHost, type WebHost } from '../../src-main/hosts/web/main';
import { WsLabClient } from '../../src-renderer/src/api/ws-client';

export const repo = resolve(import.meta.dirname, '../..');
const webRoot = resolve(repo, 'out/web');

/** The Chromium flags of a headless, offline test run (no GPU, no sandbox in containers). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export interface LabPage {
  host: WebHost;
  lab: WsLabClient;
  browser: Browser;
  page: Page;
  /** Uncaught exceptions and console errors of the page; a test ends by expecting none. */
  pageErrors: string[];
  /** Save a screenshot of the page under docs/ (the README's pictures). */
  screenshot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Open the lab's view at `route` (e.g. '#/mirror') and wait for `ready` to be on the page. */
export async function openLab(
  route: string,
  ready: string,
  opts: {
    dataDir?: string;
    /** Set up on the page before it loads, e.g. a `page.routeWebSocket` between it and the lab. */
    beforeLoad?: (page: Page) => Promise<void>;
  } = {},
): Promise<LabPage> {
  if (!existsSync(resolve(webRoot, 'index.html'))) {
    const { build } = await import('vite');
    await build({ configFile: resolve(repo, 'vite.web.config.ts'), logLevel: 'warn' });
  }
  const host = await startWebHost({ port: 0, root: webRoot, ...(opts.dataDir && { dataDir: opts.dataDir }) });
  const lab = new WsLabClient(`${host.url.replace(/^http/, 'ws')}api`, (u) => new WebSocket(u));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await opts.beforeLoad?.(page);
  await page.goto(`${host.url}${route}`);
  await page.locator(ready).waitFor();
  return {
    host,
    lab,
    browser,
    page,
    pageErrors,
    async screenshot(name) {
      mkdirSync(resolve(repo, 'docs'), { recursive: true });
      await page.screenshot({ path: resolve(repo, 'docs', name) });
    },
    async close() {
      await browser.close();
      lab.close();
      await host.close();
    },
  };
}

/**
 * A double click on `target` whose second click comes after the first click's reply (`answered`
 * waits for it): by then the reply may have put another button under the pointer.
 */
export async function doubleClickAfterReply(
  page: Page,
  target: Locator,
  answered: () => Promise<unknown>,
): Promise<void> {
  const box = (await target.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down({ clickCount: 1 });
  await page.mouse.up({ clickCount: 1 });
  await answered();
  await page.mouse.down({ clickCount: 2 });
  await page.mouse.up({ clickCount: 2 });
}

/** Between a page and its lab: passes everything, but holds requests of one type when asked to. */
export interface LabRoute {
  /** Put the route between the page and the lab (an `openLab` `beforeLoad`). */
  attach(page: Page): Promise<void>;
  /** Hold the page's lab requests of this type until `release`. */
  hold(type: string): void;
  /** How many requests are held. */
  readonly held: number;
  /** Let the held requests go on (changed by `edit` first, if given), and stop holding. */
  release(edit?: (req: Record<string, unknown>) => Record<string, unknown>): void;
  /** Send a message to the page as if the lab had (once the page has connected). */
  fromLab(message: unknown): void;
  /** While set, nothing the lab sends reaches the page (as if it were cut off from it). */
  muted: boolean;
  /** How many times the page has connected. */
  readonly connections: number;
  /** Close the page's connections at both ends; the page reconnects through the route. */
  disconnect(): Promise<void>;
}

export function labRoute(): LabRoute {
  let holding: string | null = null;
  const held: ((edit?: (req: Record<string, unknown>) => Record<string, unknown>) => void)[] = [];
  const open: { page: WebSocketRoute; server: WebSocketRoute }[] = [];
  let connections = 0;
  let muted = false;
  return {
    get muted() {
      return muted;
    },
    set muted(on) {
      muted = on;
    },
    async attach(page) {
      await page.routeWebSocket(/\/api$/, (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => {
          const msg = typeof m === 'string' ? (JSON.parse(m) as { req?: Record<string, unknown> }) : {};
          if (holding && msg.req?.type === holding)
            held.push((edit) => server.send(edit ? JSON.stringify({ ...msg, req: edit(msg.req!) }) : m));
          else server.send(m);
        });
        server.onMessage((m) => {
          if (!muted) ws.send(m);
        });
        open.push({ page: ws, server });
        connections++;
      });
    },
    hold(type) {
      holding = type;
    },
    get held() {
      return held.length;
    },
    release(edit) {
      holding = null;
      for (const send of held.splice(0)) send(edit);
    },
    fromLab(message) {
      const last = open.at(-1);
      if (!last) throw new Error('the page has not connected');
      last.page.send(JSON.stringify(message));
    },
    get connections() {
      return connections;
    },
    async disconnect() {
      for (const c of open.splice(0)) {
        await c.page.close();
        await c.server.close();
      }
    },
  };
}

/** Go to the view `id` through the nav and wait for it (its root has the class `${id}-view`). */
export async function showView(page: Page, id: string): Promise<void> {
  await page.locator(`.nav a.nav-item[href="#/${id}"]`).click();
  await page.locator(`.${id}-view`).waitFor();
}
