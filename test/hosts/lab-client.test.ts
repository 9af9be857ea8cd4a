// LabClient over a real worker thread running lab-worker.ts, bundled as the web host runs it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LabEvent } from '../../src-main/api';
import { LabRequestError, type LabClient } from '../../src-main/hosts/node/lab-client';
import { startBundledLab } from '../../src-main/hosts/node/bundled-worker';

let lab: LabClient | undefined;
afterEach(async () => {
  await lab?.close();
  lab = undefined;
});

describe('lab worker and client', () => {
  it('boots the default demo machine off the calling thread', async () => {
    lab = startBundledLab();
    const layout = await lab.request({ type: 'layout' });
    expect(layout.machine).toBe('demo');
    expect(layout.devices.map((d) => [d.name, d.kind])).toEqual([['gpu0', 'private']]);
  });

  it('forwards layout events and answers in request order', async () => {
    lab = startBundledLab();
    const events: LabEvent[] = [];
    lab.onEvent((e) => events.push(e));
    const [added, removed] = await Promise.all([
      lab.request({ type: 'addDevice', device: { name: 'gpu1', kind: 'private', memory: '256M' } }),
      lab.request({ type: 'removeDevice', name: 'gpu1' }),
    ]);
    expect(added.devices.map((d) => d.name)).toEqual(['gpu0', 'gpu1']);
    expect(removed.devices.map((d) => d.name)).toEqual(['gpu0']);
    expect(events.filter((e) => e.type === 'layout').length).toBeGreaterThanOrEqual(2);
  });

  it('rejects with a LabRequestError carrying the lab code', async () => {
    lab = startBundledLab();
    const err = await lab.request({ type: 'removeDevice', name: 'nope' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LabRequestError);
    expect(err).toMatchObject({ code: 'EINPUT', message: expect.stringContaining('nope') });
  });

  it('answers every request with the boot error when the machine is bad', async () => {
    lab = startBundledLab({ machine: { ram: 'lots' } });
    await expect(lab.request({ type: 'layout' })).rejects.toMatchObject({ code: 'EINPUT' });
  });

  it('rejects pending and later requests with EWORKER once closed', async () => {
    lab = startBundledLab();
    const pending = lab.request({ type: 'layout' }).catch((e: unknown) => e);
    await lab.close();
    expect(await pending).toMatchObject({ code: 'EWORKER' });
    await expect(lab.request({ type: 'layout' })).rejects.toMatchObject({ code: 'EWORKER' });
    lab = undefined;
  });
});

describe('the bundled lab worker', () => {
  it('is bundled into out/lab with const bindings (src-main/build/)', async () => {
    lab = startBundledLab();
    await lab.request({ type: 'layout' });
    const code = readFileSync(resolve(import.meta.dirname, '../../out/lab/lab-worker.mjs'), 'utf8');
    expect(code).toMatch(/^const migrate_vma_collect_pmd = function migrate_vma_collect_pmd\(/m);
    expect(code).not.toMatch(/^function migrate_vma_/m);
  });
});
