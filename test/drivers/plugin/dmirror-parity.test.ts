// The dmirror plugin (plugins/dmirror/dmirror.ts) against the built-in TypeScript dmirror
// (src-main/drivers/dmirror.ts), the kernel tests' reference driver: the same steps of
// tools/testing/selftests/mm/hmm-tests.c run on two machines, one per driver, must give the
// same results (ret, cpages, faults, snapshot bytes, data read back), the same CPU page
// tables, and no incoherent device mapping.
import { describe, expect, it } from 'vitest';
import type { OpResult } from '../../../src-main/api';
import { check_mirror_coherence, cpu_view_of } from '../../../src-main/kernel/mm/debug_vm';
import { page_pgmap } from '../../../src-main/kernel/kernel/memremap';
import { ANON, PAGE, pluginLab, smallMachine, type PluginLab } from './helpers';

const NPAGES = 64;

function machine(driver: string): unknown {
  return smallMachine([
    { name: 'gpu0', kind: 'private', memory: '256M', driver },
    { name: 'gpu1', kind: 'private', memory: '256M', driver },
  ]);
}

/** Both labs: the built-in driver's and the plugin's. */
async function both(): Promise<{ builtin: PluginLab; plugin: PluginLab }> {
  return { builtin: await pluginLab(machine('dmirror')), plugin: await pluginLab(machine('plugin:dmirror')) };
}

/** A result without its simulated time (the plugin's copy engine charges per batch). */
function comparable(r: OpResult, data?: Uint8Array): Record<string, unknown> {
  const { t: _t, ...rest } = r;
  return data ? { ...rest, bytesRead: Array.from(data) } : rest;
}

/** The CPU's view of every page of the mapping: kind, device or system, write. */
function cpuPages(l: PluginLab, proc: string, at: string): string[] {
  const task = l.u.procs.get(proc)!;
  const m = l.u.mappings.get(at)!;
  const out: string[] = [];
  for (let off = 0; off < m.length; off += PAGE) {
    const v = cpu_view_of(l.k, task.mm!, m.addr + off);
    if (v.kind === 'none') out.push('none');
    else {
      const page = l.k.mem.pfn_to_page(v.pfn);
      out.push(`${v.kind}:${page_pgmap(l.k, page)?.dev.name ?? 'ram'}:${v.write ? 'w' : 'r'}`);
    }
  }
  return out;
}

/** Run the same steps on both labs; every result, every read and the CPU page tables must agree. */
function same(labs: { builtin: PluginLab; plugin: PluginLab }, steps: Record<string, unknown>[]): OpResult[] {
  const results: OpResult[] = [];
  for (const [i, step] of steps.entries()) {
    const a = labs.builtin.u.run(step);
    const b = labs.plugin.u.run(step);
    expect(comparable(b.result, b.data), `step ${i}: ${JSON.stringify(step)}`).toEqual(
      comparable(a.result, a.data),
    );
    expect(check_mirror_coherence(labs.plugin.k), `step ${i}`).toEqual([]);
    results.push(b.result);
  }
  for (const [at, proc] of [...labs.builtin.u.mappings].map(([n, m]) => [n, m.proc] as const))
    if (labs.builtin.u.procs.has(proc))
      expect(cpuPages(labs.plugin, proc, at), `mapping ${at}`).toEqual(cpuPages(labs.builtin, proc, at));
  expect(labs.plugin.reports).toEqual([]);
  return results;
}

const setup = [
  { op: 'spawn', proc: 'p' },
  { op: 'mmap', proc: 'p', name: 'buf', length: NPAGES * PAGE, ...ANON },
  { op: 'open', proc: 'p', device: 'gpu0' },
  { op: 'open', proc: 'p', device: 'gpu1' },
  { op: 'buffer', name: 'b', size: NPAGES * PAGE },
];
const dev = (cmd: string, extra: Record<string, unknown> = {}) => ({
  op: 'device',
  proc: 'p',
  device: 'gpu0',
  cmd,
  at: 'buf',
  ...extra,
});

describe('plugins/dmirror: the same behaviour as the built-in dmirror', () => {
  it('migrate: every page moves to device memory and reads back through the device page table', async () => {
    const labs = await both();
    const r = same(labs, [
      ...setup,
      { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } },
      dev('migrate', { buffer: 'b' }),
      { op: 'check', buffer: 'b' },
      dev('snapshot'),
    ]);
    expect(r[6]).toMatchObject({ ret: 0, cpages: NPAGES });
    expect(r[8]!.bytes).toEqual(new Array(NPAGES).fill(0x20 | 0x02));
    expect(cpuPages(labs.plugin, 'p', 'buf')).toEqual(new Array(NPAGES).fill('device:gpu0:w'));
  });

  it('F-DEV-2: a CPU access to a migrated page faults it back through the plugin fault callback', async () => {
    const labs = await both();
    same(labs, [
      ...setup,
      { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index', add: 7 } },
      dev('migrate'),
      { op: 'load', proc: 'p', at: 'buf', length: (NPAGES / 2) * PAGE },
      dev('snapshot'),
      // A second migrate still reads every page back (migrate_fault).
      dev('migrate', { buffer: 'b' }),
      { op: 'check', buffer: 'b' },
      { op: 'store', proc: 'p', at: 'buf', offset: PAGE, length: PAGE, fill: { byte: 0x5a } },
      { op: 'load', proc: 'p', at: 'buf' },
    ]);
    const faults = labs.plugin.log().filter((l) => l.includes('SIGBUS'));
    expect(faults).toEqual([]);
  });

  it('migrate_to_sys brings the pages home; release evicts what is left', async () => {
    const labs = await both();
    const r = same(labs, [
      ...setup,
      { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'negindex' } },
      dev('migrate'),
      dev('migrate_to_sys', { offset: 8 * PAGE, pages: 8 }),
      dev('snapshot'),
      { op: 'device', proc: 'p', device: 'gpu0', cmd: 'release' },
      dev('snapshot'),
      { op: 'load', proc: 'p', at: 'buf' },
    ]);
    expect(r[7]).toMatchObject({ ret: 0, cpages: 8 });
    expect(r[9]).toMatchObject({ ret: 0, cpages: NPAGES - 8 });
    expect(labs.plugin.plugin('gpu0').memory().free).toBe(labs.plugin.plugin('gpu0').memory().pages);
  });

  it('read, write and snapshot: zero page and holes read as zeroes; a device write is what the CPU loads', async () => {
    const labs = await both();
    same(labs, [
      ...setup,
      { op: 'store', proc: 'p', at: 'buf', length: 8 * PAGE, fill: { pattern: 'index' } },
      { op: 'load', proc: 'p', at: 'buf', offset: 8 * PAGE, length: 8 * PAGE },
      dev('snapshot'),
      dev('read', { buffer: 'b' }),
      { op: 'check', buffer: 'b' },
      dev('snapshot'),
      { op: 'buffer', name: 'w', size: NPAGES * PAGE, fill: { pattern: 'negindex' } },
      dev('write', { buffer: 'w' }),
      { op: 'load', proc: 'p', at: 'buf' },
      dev('snapshot'),
      // Read-only and PROT_NONE ranges (anon_write_prot, anon_read_prot).
      { op: 'mprotect', proc: 'p', at: 'buf', offset: 16 * PAGE, length: 8 * PAGE, prot: 'r' },
      dev('write', { buffer: 'w' }),
      { op: 'mprotect', proc: 'p', at: 'buf', offset: 24 * PAGE, length: 8 * PAGE, prot: 'none' },
      dev('read', { buffer: 'b', offset: 24 * PAGE, pages: 8 }),
      dev('snapshot'),
      // A hole: -EFAULT.
      { op: 'munmap', proc: 'p', at: 'buf', offset: 40 * PAGE, length: 4 * PAGE },
      dev('read', { buffer: 'b', offset: 32 * PAGE, pages: 16 }),
      dev('snapshot'),
    ]);
  });

  it('two devices and fork: a page on the other device comes home; the child copies on write', async () => {
    const labs = await both();
    same(labs, [
      ...setup,
      { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } },
      { op: 'device', proc: 'p', device: 'gpu1', cmd: 'migrate', at: 'buf', pages: 16 },
      dev('snapshot'),
      dev('read', { buffer: 'b' }),
      dev('snapshot'),
      dev('migrate', { pages: 32 }),
      { op: 'fork', proc: 'p', child: 'c' },
      { op: 'open', proc: 'c', device: 'gpu0' },
      { op: 'buffer', name: 'w', size: NPAGES * PAGE, fill: { byte: 3 } },
      { op: 'device', proc: 'c', device: 'gpu0', cmd: 'write', at: 'buf', buffer: 'w' },
      { op: 'load', proc: 'p', at: 'buf' },
      { op: 'load', proc: 'c', at: 'buf' },
      dev('snapshot'),
      { op: 'exit', proc: 'c' },
      { op: 'device', proc: 'p', device: 'gpu0', cmd: 'release' },
      { op: 'load', proc: 'p', at: 'buf' },
    ]);
  });
});

describe('plugins/dmirror: fault_in, the device faulting a range in where it is', () => {
  it('256-page rounds through hmm_range_fault; a page on the other device comes home; the device maps what the CPU maps', async () => {
    const l = await pluginLab(machine('plugin:dmirror'));
    const pages = 600;
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'big', length: pages * PAGE, ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'big', fill: { pattern: 'index' } });
    l.op({ op: 'open', proc: 'p', device: 'gpu0' });
    l.op({ op: 'open', proc: 'p', device: 'gpu1' });
    l.op({ op: 'device', proc: 'p', device: 'gpu1', cmd: 'migrate', at: 'big', pages: 4 });
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'fault_in', at: 'big' })).toMatchObject({
      ret: 0,
      cpages: pages,
      faults: 3,
    });
    expect(check_mirror_coherence(l.k)).toEqual([]);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('big')!.addr;
    // gpu1's pages came home (asked for again with HMM_PFN_DEVICE_PRIVATE); nothing migrated to gpu0.
    expect(cpuPages(l, 'p', 'big')).toEqual(new Array(pages).fill('page:ram:w'));
    const pt = l.plugin('gpu0').pageTable(task.mm!)!;
    expect(pt.size).toBe(pages);
    for (const i of [0, 3, 255, 256, 599]) {
      const cpu = cpu_view_of(l.k, task.mm!, base + i * PAGE) as { pfn: number };
      expect(pt.get(base / PAGE + i)).toBe(l.k.mem.pfn_to_page(cpu.pfn) * 2 + 1);
    }
    expect(l.reports).toEqual([]);
  });
});
