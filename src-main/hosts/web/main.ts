// The web host: the renderer build (out/web) over HTTP and the LabApi over a WebSocket at /api, on
// 127.0.0.1 only, so the same renderer runs in any browser and the end-to-end tests run in Chromium.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LabApi, LabRequest, WireMessage } from '../../api';
import { projectPath } from '../../build/project-dir';
import { startBundledLab } from '../node/bundled-worker';

export interface WebHostOptions {
  /** 0 picks any free port. */
  port?: number;
  /** The renderer build to serve; defaults to out/web. */
  root?: string;
  /**
   * The lab to serve; defaults to a new default-machine lab in a worker, bundled as the app runs
   * it, closed with the host.
   */
  lab?: LabApi & { close?: () => Promise<void> };
  /** The user's data folder (driver sources in its drivers/) for the default lab; default ~/.hmm-lab. */
  dataDir?: string;
}

export interface WebHost {
  url: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 5178;
const DEFAULT_ROOT = projectPath(import.meta.url, 'out/web');
const PLUGINS_DIR = projectPath(import.meta.url, 'plugins');
export const DEFAULT_DATA_DIR = join(homedir(), '.hmm-lab');
const MAX_MESSAGE = 1 << 20;

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

// Monaco (the Drivers view) starts its workers from blob: URLs and writes <style> elements and style
// attributes: hence worker-src blob: and inline styles; scripts stay 'self' only.
function csp(port: number): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function isLabRequest(v: unknown): v is LabRequest {
  return !!v && typeof v === 'object' && 'type' in v && typeof v.type === 'string';
}

function errorOf(err: unknown): { code: string; message: string } {
  const code =
    err && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : 'EINTERNAL';
  return { code, message: err instanceof Error ? err.message : String(err) };
}

export async function startWebHost(opts: WebHostOptions = {}): Promise<WebHost> {
  const root = resolve(opts.root ?? DEFAULT_ROOT);
  const lab =
    opts.lab ??
    startBundledLab({
      driversDir: join(resolve(opts.dataDir ?? DEFAULT_DATA_DIR), 'drivers'),
      pluginsDir: PLUGINS_DIR,
    });
  const ownsLab = !opts.lab;
  let port = opts.port ?? DEFAULT_PORT;
  // Only our own origin: no DNS rebinding through Host, no cross-site WebSocket through Origin.
  const allowedHosts = (): string[] => [`127.0.0.1:${port}`, `localhost:${port}`];

  async function serveStatic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!allowedHosts().includes(req.headers.host ?? '')) {
      res.writeHead(421).end('Misdirected request');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end('Bad request');
      return;
    }
    if (pathname.endsWith('/')) pathname += 'index.html';
    const file = resolve(join(root, pathname));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('Forbidden');
      return;
    }
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
      const body = await readFile(file);
      const type = MIME[extname(file)] ?? 'application/octet-stream';
      res.writeHead(200, {
        'Content-Type': type,
        'Content-Length': body.length,
        'Content-Security-Policy': csp(port),
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': type.startsWith('text/html') ? 'no-store' : 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      const missingBuild = pathname === '/index.html';
      res
        .writeHead(missingBuild ? 503 : 404, { 'Content-Type': 'text/plain; charset=utf-8' })
        .end(missingBuild ? `Renderer not built in ${root}: run npm run build:web` : 'Not found');
    }
  }

  const server = createServer((req, res) => {
    serveStatic(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req, socket, head) => {
    const origin = req.headers.origin;
    const okOrigin = origin === undefined || allowedHosts().some((h) => origin === `http://${h}`);
    const okPath = new URL(req.url ?? '/', 'http://x').pathname === '/api';
    if (!okPath || !okOrigin || !allowedHosts().includes(req.headers.host ?? '')) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  const send = (ws: WebSocket, msg: WireMessage): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };

  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      let id: number;
      let req: unknown;
      try {
        const msg = JSON.parse(String(data)) as { id?: unknown; req?: unknown };
        if (typeof msg.id !== 'number') throw new Error('no id');
        id = msg.id;
        req = msg.req;
      } catch {
        ws.close(1007, 'expected a WireRequest');
        return;
      }
      if (!isLabRequest(req)) {
        send(ws, { id, ok: false, error: { code: 'EINPUT', message: 'not a lab request' } });
        return;
      }
      lab.request(req).then(
        (res) => send(ws, { id, ok: true, res }),
        (err: unknown) => send(ws, { id, ok: false, error: errorOf(err) }),
      );
    });
  });

  const unsubscribe = lab.onEvent((event) => {
    for (const ws of wss.clients) send(ws, { event });
  });

  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      ok();
    });
  });
  const address = server.address();
  if (address && typeof address === 'object') port = address.port;

  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    async close() {
      unsubscribe();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((ok) => wss.close(() => ok()));
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      if (ownsLab) await lab.close?.();
    },
  };
}

/** The value of `--name VALUE` or `--name=VALUE`, if given. */
function option(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  return argv[i]!.includes('=') ? argv[i]!.slice(name.length + 1) : argv[i + 1];
}

function parsePort(argv: string[], env: NodeJS.ProcessEnv): number {
  const raw = option(argv, '--port') ?? env.PORT;
  if (raw === undefined || raw === '') return DEFAULT_PORT;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${raw}`);
  return port;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dataDir = option(argv, '--data');
  if (dataDir === '' || (dataDir === undefined && argv.includes('--data')))
    throw new Error('--data: expected a folder');
  const host = await startWebHost({ port: parsePort(argv, process.env), ...(dataDir && { dataDir }) });
  console.log(`HMM Lab: ${host.url}`);
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    host.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(`hmm-lab web: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
