// The editor's loadDriver request and the driverError event, through a lab session: a
// driver's source replaces the running machine's driver, device by device, while processes
// and their data stay; its faults come back as events naming the callback and the line.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DriverError, LabEvent, LoadDriverResult, OpResult } from '../../../src-main/api';
import { LabSession } from '../../../src-main/lab/session';
import { prepareEngines } from '../../../src-main/drivers/plugin';
import { ANON, PAGE, lineOf } from './helpers';

const DMIRROR = readFileSync(new URL('../../../plugins/dmirror/dmirror.ts', import.meta.url), 'utf8');

async function session() {
  await prepareEngines();
  const s = new LabSession();
  const events: LabEvent[] = [];
  s.onEvent((e) => events.push(e));
  const op = (step: Record<string, unknown>) => s.handle({ type: 'op', op: step as never }) as OpResult;
  const load = (name: string, source: string) =>
    s.handle({ type: 'loadDriver', name, source }) as LoadDriverResult;
  const errors = () => events.flatMap((e) => (e.type === 'driverError' ? [e.error as DriverError] : []));
  return { s, events, op, load, errors };
}

describe('loadDriver: the editor loads a driver into the running machine', () => {
  it('replaces the demo gpu0 driver with the dmirror plugin; the process keeps the device open and its data', async () => {
    const { s, events, op, load } = await session();
    op({ op: 'spawn', proc: 'p' });
    op({ op: 'mmap', proc: 'p', name: 'buf', length: 16 * PAGE, ...ANON });
    op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    op({ op: 'open', proc: 'p', device: 'gpu0' });
    expect(op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' })).toMatchObject({
      ret: 0,
      cpages: 16,
    });

    events.length = 0;
    expect(load('dmirror', DMIRROR)).toEqual({ ok: true, devices: ['gpu0'] });
    expect(events.some((e) => e.type === 'layout')).toBe(true);
    const dmesg = s.handle({ type: 'dmesg' }) as { text: string }[];
    expect(dmesg.map((l) => l.text)).toContain(
      'dmirror gpu0: 65536 pages of device memory at pfn 0x3ffff0000',
    );
    // The old driver's device memory came home with its data; the new one serves the process.
    expect(op({ op: 'load', proc: 'p', at: 'buf', offset: 3 * PAGE, length: 8 }).data!.head).toEqual([
      3072, 3073,
    ]);
    op({ op: 'buffer', name: 'b', size: 16 * PAGE });
    expect(
      op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf', buffer: 'b' }),
    ).toMatchObject({
      ret: 0,
      cpages: 16,
    });
    const check = op({ op: 'check', buffer: 'b' });
    expect(check.data!.head.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(op({ op: 'load', proc: 'p', at: 'buf', offset: 15 * PAGE, length: 8 }).data!.head).toEqual([
      15 * 1024,
      15 * 1024 + 1,
    ]);
  });

  it('a source that does not compile is refused with its diagnostics; the machine keeps its driver', async () => {
    const { op, load } = await session();
    const bad = 'export function probe(dev: DeviceInfo): number {\n  return = 0;\n}\n';
    const r = load('dmirror', bad);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({ diagnostics: [{ kind: 'compile', file: 'dmirror.ts', line: 2 }] });
    op({ op: 'spawn', proc: 'p' });
    expect(op({ op: 'open', proc: 'p', device: 'gpu0' })).toMatchObject({ ret: 0 });
  });

  it('a plugin that loops in fault sends a driverError (timeout, fault, its line); the access gets SIGBUS; a fixed reload goes on', async () => {
    const { op, load, errors } = await session();
    const looping = DMIRROR.replace(
      'export function fault(vma: Vma, addr: number, _page: Page, _flags: number): number {',
      'export function fault(vma: Vma, addr: number, _page: Page, _flags: number): number {\n  while (addr > 0) addr++; // stuck',
    );
    expect(load('dmirror', looping)).toEqual({ ok: true, devices: ['gpu0'] });
    op({ op: 'spawn', proc: 'p' });
    op({ op: 'mmap', proc: 'p', name: 'buf', length: 4 * PAGE, ...ANON });
    op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    op({ op: 'open', proc: 'p', device: 'gpu0' });
    op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' });
    expect(op({ op: 'load', proc: 'p', at: 'buf', length: 4 })).toMatchObject({ signal: 'SIGBUS' });
    const [e] = errors();
    expect(e).toMatchObject({
      kind: 'timeout',
      callback: 'fault',
      file: 'dmirror.ts',
      device: 'gpu0',
      driver: 'dmirror',
    });
    expect([lineOf(looping, '// stuck'), lineOf(looping, 'export function fault')]).toContain(e!.line);

    expect(load('dmirror', DMIRROR)).toEqual({ ok: true, devices: ['gpu0'] });
    expect(op({ op: 'load', proc: 'p', at: 'buf' }).data!.head.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' })).toMatchObject({
      ret: 0,
      cpages: 4,
    });
  });

  it('a driver no device uses is only checked; a bad name is refused', async () => {
    const { s, load } = await session();
    expect(load('chunked-vram', 'export function probe(): number { return 0; }')).toEqual({
      ok: true,
      devices: [],
    });
    expect(() => s.handle({ type: 'loadDriver', name: '../x', source: '' })).toThrow(
      /expected a driver name/,
    );
  });
});
