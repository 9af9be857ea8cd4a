// Machines whose devices plugin drivers serve, driven through the lab's scenario ops, and
// hostile plugins written inline.
import { expect } from 'vitest';
import type { OpResult } from '../../../src-main/api';
import { parseMachine } from '../../../src-main/lab/machine-file';
import { Machine } from '../../../src-main/lab/machine';
import { VirtualClock } from '../../../src-main/lab/clock';
import { RssRecorder } from '../../../src-main/lab/rss';
import { Userland } from '../../../src-main/lab/ops';
import type { BoundDevice } from '../../../src-main/drivers/builtin';
import {
  PluginDriver,
  PluginHost,
  type DriverReport,
  type PluginSource,
} from '../../../src-main/drivers/plugin';
import type { SandboxOptions } from '../../../src-main/drivers/sandbox';
import type { Kernel } from '../../../src-main/kernel/kernel';

export const PAGE = 4096;
export const M = 2 ** 20;
export const G = 2 ** 30;
export const ANON = { prot: 'rw', flags: ['private', 'anonymous'] };

/** A small machine: 1 GiB of RAM, and the devices given. */
export function smallMachine(devices: unknown[]): unknown {
  return { ram: [{ start: 0, size: '1G' }], reserved: [], devices };
}

export interface PluginLab {
  machine: Machine;
  k: Kernel;
  u: Userland;
  host: PluginHost;
  reports: DriverReport[];
  /** Run a step; bad input throws. */
  op(step: Record<string, unknown>): OpResult;
  /** The bytes a load or check step read. */
  data(step: Record<string, unknown>): Uint8Array;
  bound(name: string): BoundDevice;
  plugin(name: string): PluginDriver;
  log(): string[];
}

/**
 * Boot `machine` with plugins. `sources` replace drivers by name ({dmirror: "..."}) or one
 * device's driver ({"device:gpu0": {...}}), so a test binds an inline plugin to a device.
 */
export async function pluginLab(
  machine: unknown,
  sources: Record<string, string | PluginSource> = {},
  options: SandboxOptions = {},
): Promise<PluginLab> {
  const spec = parseMachine(machine, 'test');
  const host = new PluginHost(options);
  for (const [key, source] of Object.entries(sources))
    host.overrides.set(
      key,
      typeof source === 'string' ? { name: key, filename: `${key}.ts`, source } : source,
    );
  const reports: DriverReport[] = [];
  host.onReport((r) => reports.push(r));
  await host.prepare(spec.devices);
  const m = new Machine(spec, host);
  const k = m.kernel;
  const clock = new VirtualClock(k);
  const u = new Userland(m, clock, new RssRecorder(k, clock));
  const bound = (name: string): BoundDevice => {
    const d = m.devices.get(name);
    if (!d || 'error' in d) throw new Error(`device ${name} did not probe: ${d ? d.error : 'missing'}`);
    return d;
  };
  return {
    machine: m,
    k,
    u,
    host,
    reports,
    op: (step) => u.run(step).result,
    data: (step) => u.run(step).data!,
    bound,
    plugin: (name) => bound(name).driver as PluginDriver,
    log: () => k.log.lines().map((l) => l.text),
  };
}

/** Strip the common indentation of a template-literal plugin, so line numbers are the file's own. */
export function ts(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = String.raw({ raw: strings }, ...values).replace(/^\n/, '');
  const lines = raw.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** 1-based line of the first line of `source` containing `needle`. */
export function lineOf(source: string, needle: string): number {
  const i = source.split('\n').findIndex((l) => l.includes(needle));
  expect(i).toBeGreaterThanOrEqual(0);
  return i + 1;
}

/** Int32 values of a byte array. */
export function int32s(b: Uint8Array): number[] {
  return Array.from(new Int32Array(b.buffer, b.byteOffset, Math.floor(b.length / 4)));
}
