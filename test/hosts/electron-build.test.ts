// The desktop app's lab as electron-vite builds it: the lab worker chunk, its top-level bindings
// made const (src-main/build/const-bindings.ts), runs a plugin driver's migration in a worker
// thread. Needs no Electron binary: the chunk is a plain Node worker.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabClient } from '../../src-main/hosts/node/lab-client';
import type { LabWorkerData } from '../../src-main/hosts/node/lab-worker';

const repo = resolve(import.meta.dirname, '../..');
let outDir = '';
let chunk = '';

// Inside the repo, so the chunk finds its packages in node_modules as the app's does.
beforeAll(() => {
  mkdirSync(join(repo, 'out'), { recursive: true });
  outDir = mkdtempSync(join(repo, 'out', 'electron-build-test-'));
  execFileSync(
    process.execPath,
    [join(repo, 'node_modules/electron-vite/bin/electron-vite.js'), 'build', '--outDir', outDir],
    { cwd: repo, stdio: 'pipe' },
  );
  const chunks = join(outDir, 'main/chunks');
  chunk = join(
    chunks,
    readdirSync(chunks).find((f) => f.startsWith('lab-worker'))!,
  );
}, 120_000);

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('electron-vite build of the main process', () => {
  it('gives the lab worker chunk const functions and constants', () => {
    const code = readFileSync(chunk, 'utf8');
    expect(code).toMatch(/^const migrate_vma_collect_pmd = function migrate_vma_collect_pmd\(/m);
    expect(code).toMatch(/^const MIGRATE_PFN_UNIT = 64;$/m);
    expect(code).not.toMatch(/^function migrate_vma_/m);
  });

  it('runs the dmirror plugin migration in the built worker', async () => {
    const data: LabWorkerData = {
      driversDir: join(outDir, 'drivers'),
      pluginsDir: join(repo, 'plugins'),
    };
    const lab = new LabClient(new Worker(chunk, { workerData: data }));
    try {
      await lab.request({
        type: 'loadMachine',
        machine: {
          ram: [{ start: 0, size: '1G' }],
          reserved: [],
          devices: [{ name: 'gpu0', kind: 'private', memory: '256M', driver: 'plugin:dmirror' }],
        },
      });
      const op = (step: Record<string, unknown>) => lab.request({ type: 'op', op: step as { op: string } });
      await op({ op: 'spawn', proc: 'p' });
      await op({ op: 'open', proc: 'p', device: 'gpu0' });
      const at = { proc: 'p', at: 'buf' };
      const anon = { prot: 'rw', flags: ['private', 'anonymous'] };
      await op({ op: 'mmap', proc: 'p', name: 'buf', length: '1M', ...anon });
      await op({ op: 'store', ...at, fill: { pattern: 'index' } });
      const moved = await op({ op: 'device', ...at, device: 'gpu0', cmd: 'migrate' });
      expect(moved).toMatchObject({ ret: 0, cpages: 256 });
      const back = await op({ op: 'device', ...at, device: 'gpu0', cmd: 'migrate_to_sys' });
      expect(back).toMatchObject({ ret: 0, cpages: 256 });
      // The index pattern holds each int32's index from the mapping's start.
      const last = await op({ op: 'load', ...at, offset: 255 * 4096, length: 4096 });
      expect(last.signal).toBeUndefined();
      expect(last.data?.head.slice(0, 2)).toEqual([255 * 1024, 255 * 1024 + 1]);
    } finally {
      await lab.close();
    }
  }, 60_000);
});
