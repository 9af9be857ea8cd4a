// The web host end to end over its real transports: a LabSession in a worker, the WebSocket at /api,
// and the renderer's own WebSocket client (with the `ws` package standing in for the browser's).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { LabEvent, LayoutSnapshot } from '../../src-main/api';
import { startWebHost, type WebHost } from '../../src-main/hosts/web/main';
import { LabSession } from '../../src-main/lab/session';
import { WsLabClient, type SocketLike } from '../../src-renderer/src/api/ws-client';

const openWs = (url: string): SocketLike => new WebSocket(url);

let host: WebHost;
let root: string;
const clients: WsLabClient[] = [];

function connect(): WsLabClient {
  const client = new WsLabClient(`${host.url.replace(/^http/, 'ws')}api`, openWs);
  clients.push(client);
  return client;
}

function nextLayout(client: WsLabClient): Promise<LayoutSnapshot> {
  return new Promise((resolve) => {
    const off = client.onEvent((e: LabEvent) => {
      if (e.type !== 'layout') return;
      off();
      resolve(e.layout);
    });
  });
}

/** Resolves with the HTTP status the server answered a WebSocket upgrade with. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => resolve(-1));
  });
}

/** GET with the path sent as written (fetch would normalise it). */
function rawGet(path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port: host.port, path, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hmm-lab-web-'));
  await writeFile(join(root, 'index.html'), '<!doctype html><title>HMM Lab</title>');
  host = await startWebHost({ port: 0, root });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await host?.close();
  await rm(root, { recursive: true, force: true });
});

describe('web host: LabApi over WebSocket', () => {
  it('answers layout with what a LabSession of the default machine reports', async () => {
    const direct = new LabSession().handle({ type: 'layout' }) as LayoutSnapshot;
    const layout = await connect().request({ type: 'layout' });
    expect(layout).toEqual(direct);
    const gpu0 = layout.devices.find((d) => d.name === 'gpu0');
    expect(gpu0).toMatchObject({ kind: 'private', pgmapType: 'MEMORY_DEVICE_PRIVATE' });
    expect(layout.resources.find((r) => r.name === 'gpu0')?.desc).toBe('DEVICE_PRIVATE_MEMORY');
  });

  it('F-DEVMEM-1: a hotplugged device lands one aligned step below gpu0, and every client hears of it', async () => {
    const a = connect();
    const b = connect();
    const before = await a.request({ type: 'layout' });
    const gpu0 = before.devices.find((d) => d.name === 'gpu0')!;
    const heard = nextLayout(b);
    await b.request({ type: 'layout' }); // b is connected before a acts

    const after = await a.request({
      type: 'addDevice',
      device: { name: 'gpu1', kind: 'private', memory: '256M' },
    });
    const size = 256n << 20n;
    const gpu1 = after.devices.find((d) => d.name === 'gpu1');
    expect(gpu1?.start).toBe(`0x${(BigInt(gpu0.start!) - size).toString(16)}`);
    expect(gpu1?.end).toBe(`0x${(BigInt(gpu0.start!) - 1n).toString(16)}`);
    expect((await heard).devices.map((d) => d.name)).toEqual(['gpu0', 'gpu1']);

    const removed = await a.request({ type: 'removeDevice', name: 'gpu1' });
    expect(removed.devices.map((d) => d.name)).toEqual(['gpu0']);
    expect(removed.resources.some((r) => r.name === 'gpu1')).toBe(false);
  });

  it('rejects a refused request with the lab error code and message', async () => {
    const client = connect();
    await expect(client.request({ type: 'removeDevice', name: 'nope' })).rejects.toMatchObject({
      code: 'EINPUT',
      message: expect.stringContaining('nope'),
    });
    await expect(
      client.request({ type: 'addDevice', device: { name: 'cdm0', kind: 'public', memory: '256M' } }),
    ).rejects.toMatchObject({ code: 'EINPUT' });
    // The connection survives a refusal.
    expect((await client.request({ type: 'layout' })).machine).toBe('demo');
  });

  it('answers a malformed request with EINPUT', async () => {
    const client = connect();
    await expect(client.request({ type: 'bogus' } as never)).rejects.toMatchObject({ code: 'EINPUT' });
  });

  it('refuses WebSocket upgrades from another origin or on another path', async () => {
    const api = `${host.url.replace(/^http/, 'ws')}api`;
    expect(await upgradeStatus(api)).toBe(101);
    expect(await upgradeStatus(api, { Origin: host.url.slice(0, -1) })).toBe(101);
    expect(await upgradeStatus(api, { Origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(`${host.url.replace(/^http/, 'ws')}other`)).toBe(403);
  });
});

describe('web host: static files', () => {
  it('serves index.html with a CSP that allows no remote origin', async () => {
    const res = await fetch(host.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('HMM Lab');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${host.port}`);
    expect(csp).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|localhost)/);
  });

  it('stays inside its root and answers only its own Host', async () => {
    expect(await rawGet('/..%2f..%2fetc%2fpasswd')).toBe(403);
    expect(await rawGet('/missing.js')).toBe(404);
    expect(await rawGet('/', { Host: 'evil.example' })).toBe(421);
  });
});

describe('WebSocket client: reconnection', () => {
  it('reports the lost connection, refuses requests until it is back (ENOTCONN), then reconnects', async () => {
    const first = await startWebHost({ port: 0, root });
    const client = new WsLabClient(`ws://127.0.0.1:${first.port}/api`, openWs);
    clients.push(client);
    const statuses: string[] = [];
    client.onStatus((s) => statuses.push(s));
    await client.request({ type: 'layout' });

    const closed = new Promise<void>((resolve) => client.onStatus((s) => s === 'closed' && resolve()));
    await first.close();
    await closed;
    // The lab that answers next may be a fresh one: a step asked for now must not reach it.
    await expect(client.request({ type: 'layout' })).rejects.toMatchObject({ code: 'ENOTCONN' });
    const second = await startWebHost({ port: first.port, root });
    try {
      await new Promise<void>((resolve) => client.onStatus((s) => s === 'open' && resolve()));
      expect((await client.request({ type: 'layout' })).machine).toBe('demo');
      expect(statuses.slice(0, 3)).toEqual(['connecting', 'open', 'closed']);
      expect(statuses.at(-2)).toBe('connecting');
      expect(statuses.at(-1)).toBe('open');
    } finally {
      client.close();
      await second.close();
    }
  });

  it('sends what was asked before the first connection once it is made', async () => {
    const host = await startWebHost({ port: 0, root });
    const port = host.port;
    await host.close();
    const client = new WsLabClient(`ws://127.0.0.1:${port}/api`, openWs);
    clients.push(client);
    const layout = client.request({ type: 'layout' });
    const later = await startWebHost({ port, root });
    try {
      expect((await layout).machine).toBe('demo');
    } finally {
      client.close();
      await later.close();
    }
  });
});
