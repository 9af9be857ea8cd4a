// Plugins that break the rules, at the driver level: the kernel reports what they did,
// naming the callback (and, for a fault of the plugin itself, its source line), instead of
// crashing or corrupting the machine; the lab keeps running.
import { describe, expect, it } from 'vitest';
import { check_mirror_coherence, cpu_view_of } from '../../../src-main/kernel/mm/debug_vm';
import { is_zone_device_page } from '../../../src-main/kernel/include/mm';
import { ANON, PAGE, int32s, lineOf, pluginLab, smallMachine, ts } from './helpers';

/**
 * A small private-memory driver: migrate to and from device memory, a device page table
 * filled by finalize_and_map, the CPU fault back. `fault`, `free`, `sync` and the dst
 * entries are the parts a test replaces with a broken version.
 */
function driver(
  parts: { fault?: string; free?: string; sync?: string; dst?: string; extra?: string } = {},
): string {
  return ts`
    import {
      PAGE_SIZE, VM_FAULT_SIGBUS, MIGRATE_PFN_MIGRATE, MIGRATE_PFN_DEVICE, MIGRATE_PFN_VALID,
      MIGRATE_PFN_LOCKED, MIGRATE_PFN_WRITE, devmem_pfn_first, devmem_pfn_last, device_pt_map,
      device_pt_map_range, device_pt_unmap, dma_copy, find_vma, get_page, hmm_devmem_add,
      hmm_mirror_register, hmm_range_alloc, hmm_range_fault, hmm_range_pfns, hmm_range_register,
      hmm_range_set_pfns, hmm_range_unregister, hmm_vma_alloc_locked_page, lock_page, migrate_vma,
      page_is_mine, page_to_pfn, pfn_to_page, put_page, vma_mm,
    } from 'hmm-lab';
    let next = 0;
    let end = 0;
    const freeList: number[] = [];
    const mirrors = new Map<number, number>();
    let dpages: number[] = [];
    export function probe(dev: { memory: number }): number {
      const d = hmm_devmem_add(dev.memory);
      if (d < 0) return d;
      next = devmem_pfn_first(d);
      end = devmem_pfn_last(d);
      return 0;
    }
    export function open(mm: number): number {
      const m = hmm_mirror_register(mm);
      if (m < 0) return m;
      mirrors.set(mm, m);
      return 0;
    }
    function alloc(): number {
      const page = freeList.pop() ?? (next < end ? pfn_to_page(next++) : -1);
      if (page >= 0) { get_page(page); lock_page(page); }
      return page;
    }
    export function alloc_and_copy(vma: number, src: number[], start: number, _end: number, priv: number): number[] {
      const dst = src.map(() => 0);
      dpages = src.map(() => -1);
      const to: number[] = [];
      const from: number[] = [];
      for (let i = 0; i < src.length; i++) {
        const f = src[i] % 64;
        if (!(f & MIGRATE_PFN_MIGRATE)) continue;
        const spage = f & MIGRATE_PFN_VALID ? pfn_to_page(Math.floor(src[i] / 64)) : -1;
        let dpage: number;
        if (priv === 0) {
          if (f & MIGRATE_PFN_DEVICE) continue;
          dpage = alloc();
        } else {
          if (!(f & MIGRATE_PFN_DEVICE) || !page_is_mine(spage)) continue;
          dpage = hmm_vma_alloc_locked_page(vma, start + i * PAGE_SIZE);
        }
        if (dpage < 0) continue;
        to.push(dpage);
        from.push(spage);
        dpages[i] = dpage;
        dst[i] = ${parts.dst ?? 'page_to_pfn(dpage) * 64 + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED + MIGRATE_PFN_WRITE'};
      }
      if (to.length) dma_copy(to, from);
      return dst;
    }
    export function finalize_and_map(vma: number, src: number[], dst: number[], start: number, _e: number, priv: number): void {
      const mirror = mirrors.get(vma_mm(vma));
      if (!mirror) return;
      for (let i = 0; i < src.length; i++) {
        if (!(src[i] % 64 & MIGRATE_PFN_MIGRATE) || !(dst[i] % 64 & MIGRATE_PFN_VALID)) continue;
        const addr = start + i * PAGE_SIZE;
        if (priv === 0) device_pt_map(mirror, addr, dpages[i], true);
        else device_pt_unmap(mirror, addr, addr + PAGE_SIZE);
      }
    }
    export function fault(vma: number, addr: number, _page: number, _flags: number): number {
      ${parts.fault ?? 'const start = addr - (addr % PAGE_SIZE); return migrate_vma(vma, start, start + PAGE_SIZE, 1) ? VM_FAULT_SIGBUS : 0;'}
    }
    export function free(page: number): void {
      ${parts.free ?? 'freeList.push(page);'}
    }
    export function sync_cpu_device_pagetables(mirror: number, start: number, end: number): number {
      ${parts.sync ?? 'device_pt_unmap(mirror, start, end);'}
      return 0;
    }
    export const commands = {
      migrate(a: { mm: number; addr: number; pages: number }) {
        const vma = find_vma(a.mm, a.addr);
        return { ret: migrate_vma(vma, a.addr, a.addr + a.pages * PAGE_SIZE, 0) };
      },
      read(a: { mm: number; addr: number; pages: number }) {
        const mirror = mirrors.get(a.mm)!;
        const r = hmm_range_alloc(a.pages, [1, 2, 4], [8, 0, 10], 4);
        hmm_range_register(r, mirror, a.addr, a.addr + a.pages * PAGE_SIZE);
        hmm_range_set_pfns(r, new Array(a.pages).fill(1));
        const ret = hmm_range_fault(r, true);
        const pfns = hmm_range_pfns(r);
        hmm_range_unregister(r);
        if (ret < 0) return { ret };
        device_pt_map_range(mirror, a.addr, pfns.map((v) => pfn_to_page(Math.floor(v / 16)) * 2));
        return { ret: 0, cpages: a.pages };
      },
    };
    ${parts.extra ?? ''}
  `;
}

/** A machine whose gpu0 runs `source` (as driver "test"), and a built-in dmirror gpu1. */
async function labWith(source: string, options = {}) {
  const l = await pluginLab(
    smallMachine([
      { name: 'gpu0', kind: 'private', memory: '128M', driver: 'plugin:dmirror' },
      { name: 'gpu1', kind: 'private', memory: '128M', driver: 'dmirror' },
    ]),
    { 'device:gpu0': { name: 'dmirror', filename: 'dmirror.ts', source } },
    options,
  );
  l.op({ op: 'spawn', proc: 'p' });
  l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 8 * PAGE, ...ANON });
  l.op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
  expect(l.op({ op: 'open', proc: 'p', device: 'gpu0' })).toMatchObject({ ret: 0 });
  return l;
}

describe('hostile plugins: faults of the plugin itself', () => {
  it('F-DEV-2: a fault callback that loops forever stops with kind timeout naming fault and its line; the access gets SIGBUS; the lab keeps working', async () => {
    const source = driver({
      fault: 'let spins = 0; while (addr >= 0) spins++; // spin\n      return spins;',
    });
    const l = await labWith(source, { budget: 50 });
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' })).toMatchObject({
      ret: 0,
    });

    const load = l.op({ op: 'load', proc: 'p', at: 'buf', length: PAGE });
    expect(load.signal).toBe('SIGBUS');
    expect(l.reports).toHaveLength(1);
    expect(l.reports[0]).toMatchObject({
      kind: 'timeout',
      callback: 'fault',
      file: 'dmirror.ts',
      device: 'gpu0',
    });
    // QuickJS places the interrupt at the loop, or at the start of the function it spins in.
    expect([lineOf(source, '// spin'), lineOf(source, 'export function fault')]).toContain(
      l.reports[0]!.line,
    );
    expect(l.reports[0]!.message).toMatch(/ran past its budget of 50 interrupt polls/);
    const drv = l.plugin('gpu0');
    expect(drv.failure).toMatchObject({ kind: 'timeout', callback: 'fault' });
    expect(l.log()).toContain('dmirror gpu0: driver stopped (timeout); the device is marked failed');

    // The failed device: its pages stay where the kernel left them (device entries, no
    // half migration), its faults get SIGBUS at once, its commands -ENODEV.
    const task = l.u.procs.get('p')!;
    const v = cpu_view_of(l.k, task.mm!, l.u.mappings.get('buf')!.addr);
    expect(v.kind).toBe('device');
    expect(l.op({ op: 'load', proc: 'p', at: 'buf', offset: PAGE, length: PAGE }).signal).toBe('SIGBUS');
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' })).toMatchObject({
      ret: '-ENODEV',
    });
    expect(l.reports).toHaveLength(1);

    // The lab keeps working: other memory, other processes, the other device.
    l.op({ op: 'spawn', proc: 'q' });
    l.op({ op: 'mmap', proc: 'q', name: 'other', length: 4 * PAGE, ...ANON });
    l.op({ op: 'store', proc: 'q', at: 'other', fill: { pattern: 'negindex' } });
    l.op({ op: 'open', proc: 'q', device: 'gpu1' });
    expect(l.op({ op: 'device', proc: 'q', device: 'gpu1', cmd: 'migrate', at: 'other' })).toMatchObject({
      ret: 0,
    });
    expect(int32s(l.data({ op: 'load', proc: 'q', at: 'other', length: 16 }))).toEqual([0, -1, -2, -3]);

    // Reloading a fixed driver brings the pages home with their data.
    l.host.overrides.set('device:gpu0', { name: 'dmirror', filename: 'dmirror.ts', source: driver() });
    expect(l.machine.rebind('gpu0')).toBe(0);
    l.u.reopen('gpu0');
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf' })).slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: 7 * PAGE, length: 8 }))).toEqual([
      7 * 1024,
      7 * 1024 + 1,
    ]);
  });

  it('a fault callback that throws is reported with its line; the device stays usable', async () => {
    const source = driver({ fault: 'throw new Error("no way home");' });
    const l = await labWith(source);
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' });
    expect(l.op({ op: 'load', proc: 'p', at: 'buf', length: PAGE }).signal).toBe('SIGBUS');
    expect(l.reports[0]).toMatchObject({
      kind: 'throw',
      callback: 'fault',
      message: 'no way home',
      line: lineOf(source, 'no way home'),
    });
    expect(l.plugin('gpu0').failure).toBeNull();
  });

  it('a plugin reaching for require, process or fetch finds none of them', async () => {
    const probe = ts`
      export function probe(): number {
        const seen = [typeof require, typeof process, typeof fetch, typeof globalThis.process];
        if (seen.some((t) => t !== 'undefined')) throw new Error('escaped: ' + seen.join());
        return 0;
      }
      export function run(): number {
        return (require as (m: string) => { readFileSync(p: string): string })('fs').readFileSync('/etc/passwd').length;
      }
      export const commands = {
        escape() {
          return { ret: run() };
        },
        fetch() {
          return { ret: (fetch as unknown as (u: string) => number)('http://127.0.0.1/') };
        },
      };
    `;
    const l = await labWith(
      probe.replace(
        'export function probe(): number {',
        'export function open(): number { return 0; }\nexport function probe(): number {',
      ),
    );
    expect(l.reports).toEqual([]);
    l.op({ op: 'open', proc: 'p', device: 'gpu0' });
    for (const cmd of ['escape', 'fetch'])
      expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd, at: 'buf' })).toMatchObject({
        ret: '-EIO',
      });
    expect(l.reports.map((r) => [r.kind, r.callback, r.message])).toEqual([
      ['throw', 'commands.escape', "ReferenceError: 'require' is not defined"],
      ['throw', 'commands.fetch', "ReferenceError: 'fetch' is not defined"],
    ]);

    // A static import of anything but 'hmm-lab' never loads: the probe fails, naming the line.
    const bad = ts`
      import { readFileSync } from 'node:fs';
      export function probe(): number { return readFileSync('/etc/passwd').length; }
    `;
    const l2 = await pluginLab(
      smallMachine([{ name: 'gpu0', kind: 'private', memory: '128M', driver: 'plugin:dmirror' }]),
      { dmirror: bad },
    );
    expect(l2.machine.probeFailures()).toEqual([{ name: 'gpu0', error: '-ENOEXEC' }]);
    expect(l2.reports).toMatchObject([{ kind: 'compile', callback: '<load>', line: 1 }]);
    expect(l2.reports[0]!.message).toMatch(/plugins may import only 'hmm-lab', not 'node:fs'/);
  });
});

describe('hostile plugins: kernel rules', () => {
  it('F-DEVMEM-5: freeing a device page twice is a Bad page state report naming free; the page is not freed again', async () => {
    const l = await labWith(driver({ free: 'freeList.push(page); put_page(page);' }));
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf', pages: 1 });
    const page = l.k.mem.pfn_to_page(l.plugin('gpu0').bound.devmem!.pfn_first);
    expect(l.k.mem.refcount[page]).toBe(2);
    l.op({ op: 'munmap', proc: 'p', at: 'buf', length: PAGE });
    expect(l.reports).toHaveLength(1);
    expect(l.reports[0]).toMatchObject({ kind: 'rule', callback: 'free', device: 'gpu0' });
    expect(l.reports[0]!.message).toMatch(
      /^BUG: Bad page state: pfn:0x[0-9a-f]+ count:1 mapcount:0: page dumped because: put_page of a page dmirror holds no reference to \(freed twice\?\) in dmirror\.free \(gpu0\)$/,
    );
    expect(l.log()).toContain(l.reports[0]!.message);
    // The kernel's count is untouched: the page idles at 1, its pagemap still holds.
    expect(l.k.mem.refcount[page]).toBe(1);
    expect(l.plugin('gpu0').failure).toBeNull();
  });

  it('a bad pfn in dst is warned about and that page is not migrated: it keeps its data in system memory', async () => {
    const l = await labWith(
      driver({
        dst: 'i === 2 ? 0x7fffffffff * 64 + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED : page_to_pfn(dpage) * 64 + MIGRATE_PFN_VALID + MIGRATE_PFN_LOCKED + MIGRATE_PFN_WRITE',
      }),
    );
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf', pages: 4 });
    expect(l.reports).toHaveLength(2);
    expect(l.reports[0]).toMatchObject({ kind: 'rule', callback: 'alloc_and_copy' });
    expect(l.reports[0]!.message).toMatch(
      /^WARNING: dst\[2\] = 0x1fffffffffc5 for 0x[0-9a-f]+: pfn 0x7fffffffff has no struct page \(bad pfn\); the page is not migrated in dmirror\.alloc_and_copy/,
    );
    // The device page the plugin took for it and never handed over is left locked: reported
    // when the command returns, and unlocked.
    expect(l.reports[1]).toMatchObject({ kind: 'rule', callback: 'commands.migrate' });
    expect(l.reports[1]!.message).toMatch(/page left locked by dmirror when commands.migrate returned/);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    expect([0, 1, 2, 3].map((i) => cpu_view_of(l.k, task.mm!, base + i * PAGE).kind)).toEqual([
      'device',
      'device',
      'page',
      'device',
    ]);
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: 2 * PAGE, length: 8 }))).toEqual([
      2048, 2049,
    ]);
  });

  it('migrating to a device page it never referenced or locked is a Bad page state; the page stays home', async () => {
    const l = await labWith(
      driver({ extra: '' }).replace('if (page >= 0) { get_page(page); lock_page(page); }', ''),
    );
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf', pages: 2 });
    expect(l.reports.map((r) => r.callback)).toEqual(['alloc_and_copy', 'alloc_and_copy']);
    expect(l.reports[0]!.message).toMatch(
      /^BUG: Bad page state: .* migrates to a page it does not own \(not referenced and locked by it\) in dmirror\.alloc_and_copy/,
    );
    const task = l.u.procs.get('p')!;
    const v = cpu_view_of(l.k, task.mm!, l.u.mappings.get('buf')!.addr);
    expect(v.kind).toBe('page');
    expect(is_zone_device_page(l.k, l.k.mem.pfn_to_page((v as { pfn: number }).pfn))).toBe(false);
  });

  it('F-MIR-3: a driver that ignores sync_cpu_device_pagetables is caught by check_mirror_coherence, naming the driver and the callback', async () => {
    const l = await labWith(driver({ sync: '/* ignores invalidations */' }));
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'read', at: 'buf' })).toMatchObject({
      ret: 0,
      cpages: 8,
    });
    expect(l.reports).toEqual([]);
    l.op({ op: 'munmap', proc: 'p', at: 'buf', offset: 2 * PAGE, length: 2 * PAGE });
    expect(l.reports).toHaveLength(1);
    expect(l.reports[0]).toMatchObject({
      kind: 'rule',
      callback: 'sync_cpu_device_pagetables',
      device: 'gpu0',
    });
    expect(l.reports[0]!.message).toMatch(
      /^BUG: mirror dmirror gpu0 maps 0x[0-9a-f]+ -> pfn 0x[0-9a-f]+ and 1 more but the CPU has no mapping there \(check_mirror_coherence: sync_cpu_device_pagetables did not invalidate\) in dmirror\.sync_cpu_device_pagetables \(gpu0\)$/,
    );
    // The stale entries were dropped (the entry fails): the machine is coherent again.
    expect(check_mirror_coherence(l.k)).toEqual([]);
    expect(l.plugin('gpu0').pageTable(l.u.procs.get('p')!.mm!)!.size).toBe(6);
  });

  it('mapping a page the CPU does not map there is refused with a warning', async () => {
    const extra = ts`
      export const more = {};
      commands.bogus = (a: { mm: number; addr: number }) => ({ ret: device_pt_map(mirrors.get(a.mm)!, a.addr, pfn_to_page(0x100), true) });
    `;
    const src = driver({ extra }).replace(
      'export const commands = {',
      'export const commands: Record<string, (a: { mm: number; addr: number; pages: number }) => { ret: number }> = {',
    );
    const l = await labWith(src);
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'bogus', at: 'buf' })).toMatchObject({
      ret: '-EINVAL',
    });
    expect(l.reports).toHaveLength(1);
    expect(l.reports[0]!.message).toMatch(
      /^WARNING: device_pt_map: maps 0x[0-9a-f]+ -> pfn 0x100 \(write\) but the CPU maps pfn 0x[0-9a-f]+ there in dmirror\.commands\.bogus/,
    );
    expect(check_mirror_coherence(l.k)).toEqual([]);
  });

  it('a mutex locked twice is a recursive-locking BUG; one left held is released with a warning', async () => {
    const extra = ts`
      import { mutex_init, mutex_lock, mutex_unlock } from 'hmm-lab';
      const lock = mutex_init('dmirror->mutex');
      (commands as Record<string, unknown>).twice = () => { mutex_lock(lock); mutex_lock(lock); return { ret: 0 }; };
      (commands as Record<string, unknown>).leak = () => { mutex_lock(lock); return { ret: 0 }; };
      (commands as Record<string, unknown>).unbalanced = () => { mutex_unlock(lock); return { ret: 0 }; };
    `;
    const l = await labWith(driver({ extra }));
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'twice', at: 'buf' })).toMatchObject({
      ret: '-EDEADLK',
    });
    expect(l.reports.map((r) => [r.kind, r.callback])).toEqual([
      ['rule', 'commands.twice'],
      ['throw', 'commands.twice'],
      ['rule', 'commands.twice'],
    ]);
    expect(l.reports[0]!.message).toMatch(
      /^BUG: possible recursive locking detected: mutex dmirror->mutex is already held/,
    );
    expect(l.reports[2]!.message).toMatch(
      /^WARNING: lock held when returning to the kernel: mutex dmirror->mutex/,
    );
    l.reports.length = 0;
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'unbalanced', at: 'buf' });
    expect(l.reports[0]!.message).toMatch(/^WARNING: bad unlock balance detected!/);
  });
});
