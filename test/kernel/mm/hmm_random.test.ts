// A seeded random walk over the mirror: CPU stores and loads, device reads and writes
// through a test mirror driver (both range APIs and their retry loops), migration to
// dmirror's device memory and back, fork, exit, mprotect, munmap and remap. After every
// operation every device page table must be coherent with the CPU's
// (check_mirror_coherence), and every byte anyone reads must match a reference model.
import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { PAGE, SECTION, bootSmall, pagesInUseScanned } from '../helpers';
import { TestMirror, device_fault_2017, device_fault_2019 } from './hmm_test_driver';
import { hmm_mirror_register, type hmm_mirror } from '../../../src-main/kernel/mm/hmm_mirror';
import { check_mirror_coherence, type mirror_pte } from '../../../src-main/kernel/mm/debug_vm';
import { IS_ERR } from '../../../src-main/kernel/include/errno';
import { is_device_private_page } from '../../../src-main/kernel/kernel/memremap';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import { spawn_task, do_fork } from '../../../src-main/kernel/kernel/fork';
import { do_exit } from '../../../src-main/kernel/kernel/exit';
import { copy_from_user, copy_to_user } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  do_mmap,
  do_munmap,
  find_vma,
} from '../../../src-main/kernel/mm/mmap';
import { do_mprotect } from '../../../src-main/kernel/mm/mprotect';
import { probeDevice } from '../../../src-main/drivers/builtin';
import type { dmirror, dmirror_device } from '../../../src-main/drivers/dmirror';

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REGIONS = 2;
const REGION_PAGES = 32;
const RW = PROT_READ | PROT_WRITE;

interface Proc {
  name: string;
  task: task_struct;
  mirror: TestMirror;
  /** Bytes each page should hold (absent: zeroes). */
  model: Map<number, Uint8Array>;
  /** Pages mprotect made read-only. */
  ro: Set<number>;
}

class RandomRun {
  readonly k: Kernel;
  readonly dmirror: dmirror_device;
  readonly rand: () => number;
  readonly procs: Proc[] = [];
  readonly regions: number[] = [];
  /** Mirrors to check: the live test mirrors, dmirror's, and those of processes that just exited. */
  readonly checked = new Set<hmm_mirror>();
  readonly log: string[] = [];
  readonly counts = new Map<string, number>();
  private nextName = 0;
  /** Device-private pages the test device saw, pages dmirror migrated. */
  devpriv = 0;
  migrated = 0;

  constructor(seed: number) {
    this.rand = mulberry32(seed);
    this.k = bootSmall();
    const bound = probeDevice(this.k, {
      name: 'dmirror0',
      kind: 'private',
      memory: SECTION,
      driver: 'dmirror',
    });
    if (typeof bound === 'number' || !bound.dmirror) throw new Error(`dmirror probe: ${String(bound)}`);
    this.dmirror = bound.dmirror;
    const task = spawn_task(this.k, 'p0');
    for (let r = 0; r < REGIONS; r++) {
      const addr = do_mmap(this.k, task.mm!, {
        len: REGION_PAGES * PAGE,
        prot: RW,
        flags: MAP_PRIVATE | MAP_ANONYMOUS,
      });
      expect(IS_ERR(addr)).toBe(false);
      this.regions.push(addr);
    }
    this.addProc(task, new Map(), new Set());
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }

  /** A random page address and a count of pages within one region. */
  span(max: number): { addr: number; n: number } {
    const base = this.pick(this.regions);
    const first = this.int(REGION_PAGES);
    const n = 1 + this.int(Math.min(max, REGION_PAGES - first));
    return { addr: base + first * PAGE, n };
  }

  addProc(task: task_struct, model: Map<number, Uint8Array>, ro: Set<number>): Proc {
    const name = `p${this.nextName++}`;
    const mirror = new TestMirror(`testdev/${name}`);
    expect(hmm_mirror_register(this.k, mirror, task.mm!)).toBe(0);
    const p = { name, task, mirror, model, ro };
    this.procs.push(p);
    this.checked.add(mirror);
    return p;
  }

  expected(p: Proc, addr: number, off: number): number {
    return p.model.get(addr)?.[off] ?? 0;
  }

  /** The byte a device reads at pfn + off. */
  deviceLoad(pfn: number, off: number): number {
    return this.k.contents.peek(this.k.mem.pfn_to_page(pfn))?.[off] ?? 0;
  }

  fail(msg: string): never {
    throw new Error(`${msg}\nlast ops:\n${this.log.slice(-15).join('\n')}`);
  }

  step(): void {
    const k = this.k;
    const p = this.pick(this.procs);
    const r = this.rand();
    const op =
      r < 0.22
        ? 'cpu_write'
        : r < 0.34
          ? 'cpu_read'
          : r < 0.48
            ? 'dev_read'
            : r < 0.6
              ? 'dev_write'
              : r < 0.66
                ? 'dev_tlb_read'
                : r < 0.74
                  ? 'migrate'
                  : r < 0.79
                    ? 'migrate_to_sys'
                    : r < 0.83
                      ? 'dmirror_read'
                      : r < 0.855
                        ? 'fork'
                        : r < 0.875
                          ? 'exit'
                          : r < 0.95
                            ? 'mprotect'
                            : 'remap';
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    const mm = p.task.mm!;
    switch (op) {
      case 'cpu_write': {
        const { addr } = this.span(1);
        const off = this.int(PAGE);
        const val = 1 + this.int(255);
        this.log.push(`${p.name} cpu_write 0x${addr.toString(16)}+${off}=${val}`);
        const fault = copy_to_user(k, p.task, addr + off, new Uint8Array([val]));
        if (p.ro.has(addr)) {
          if (fault?.signal !== 'SIGSEGV') this.fail(`${p.name}: store to a read-only page did not SIGSEGV`);
          p.task.signals.length = 0;
        } else {
          if (fault) this.fail(`${p.name}: store at 0x${addr.toString(16)} faulted ${fault.signal}`);
          this.modelStore(p, addr, off, val);
        }
        break;
      }
      case 'cpu_read': {
        const { addr } = this.span(1);
        const off = this.int(PAGE);
        this.log.push(`${p.name} cpu_read 0x${addr.toString(16)}+${off}`);
        const out = new Uint8Array(1);
        const fault = copy_from_user(k, p.task, addr + off, out);
        if (fault) this.fail(`${p.name}: load at 0x${addr.toString(16)} faulted ${fault.signal}`);
        if (out[0] !== this.expected(p, addr, off))
          this.fail(
            `${p.name}: CPU read ${out[0]} at 0x${addr.toString(16)}+${off}, model ${this.expected(p, addr, off)}`,
          );
        break;
      }
      case 'dev_read':
      case 'dev_write': {
        const write = op === 'dev_write';
        const span = this.span(4);
        const addr = span.addr;
        let n = span.n;
        if (write) for (let i = 0; i < n; i++) if (p.ro.has(addr + i * PAGE)) n = i;
        if (n === 0) break;
        const api = this.int(2) ? 2019 : 2017;
        if (api === 2017) {
          // The 2017 API works inside one vma (mprotect may have split the region).
          const vma = find_vma(mm, addr)!;
          n = Math.min(n, (vma.vm_end - addr) / PAGE);
        }
        this.log.push(`${p.name} ${op}/${api} 0x${addr.toString(16)} x${n}`);
        const { ret } =
          api === 2017
            ? device_fault_2017(k, p.mirror, mm, addr, n, write)
            : device_fault_2019(k, p.mirror, addr, n, write);
        if (ret < 0) this.fail(`${p.name}: device fault (${api}) failed ${ret}`);
        for (let i = 0; i < n; i++) {
          const a = addr + i * PAGE;
          const e = p.mirror.pt.get(a);
          if (!e) continue;
          const off = this.int(PAGE);
          if (this.deviceLoad(e.pfn, off) !== this.expected(p, a, off))
            this.fail(
              `${p.name}: device read ${this.deviceLoad(e.pfn, off)} at 0x${a.toString(16)}+${off}, model ${this.expected(p, a, off)}`,
            );
          if (is_device_private_page(k, k.mem.pfn_to_page(e.pfn))) this.devpriv++;
          if (!write || !e.write || is_device_private_page(k, k.mem.pfn_to_page(e.pfn))) continue;
          const val = 1 + this.int(255);
          const page = k.mem.pfn_to_page(e.pfn);
          k.contents.kmap(page, PAGE)[off] = val;
          k.mem.stamp[page] = (k.mem.stamp[page]! + 1) >>> 0;
          this.modelStore(p, a, off, val);
        }
        break;
      }
      case 'dev_tlb_read': {
        // The device uses what its page table still holds, without asking the CPU.
        for (const [a, e] of p.mirror.pt) {
          const off = this.int(PAGE);
          if (this.deviceLoad(e.pfn, off) !== this.expected(p, a, off))
            this.fail(`${p.name}: stale device mapping at 0x${a.toString(16)} (pfn 0x${e.pfn.toString(16)})`);
        }
        break;
      }
      case 'migrate':
      case 'migrate_to_sys': {
        const { addr, n } = this.span(REGION_PAGES);
        this.log.push(`${p.name} ${op} 0x${addr.toString(16)} x${n}`);
        const res =
          op === 'migrate'
            ? this.dmirror.migrate(p.task, addr, n)
            : this.dmirror.migrate_to_sys(p.task, addr, n);
        if (res.ret) this.fail(`${p.name}: dmirror ${op} failed ${res.ret}`);
        this.migrated += res.cpages;
        this.adoptDmirror();
        break;
      }
      case 'dmirror_read': {
        const m = this.dmirror.mirrors.get(mm);
        if (!m) break;
        for (const pte of this.dmirrorDump(m)) {
          const off = this.int(PAGE);
          if (this.deviceLoad(pte.pfn, off) !== this.expected(p, pte.addr, off))
            this.fail(
              `${p.name}: dmirror reads ${this.deviceLoad(pte.pfn, off)} at 0x${pte.addr.toString(16)}+${off}`,
            );
        }
        break;
      }
      case 'fork': {
        if (this.procs.length >= 3) break;
        this.log.push(`${p.name} fork`);
        const child = do_fork(k, p.task, 'child');
        if (IS_ERR(child)) this.fail(`fork failed ${child}`);
        const model = new Map([...p.model].map(([a, b]) => [a, b.slice()]));
        this.addProc(child, model, new Set(p.ro));
        break;
      }
      case 'exit': {
        if (this.procs.length < 2) break;
        this.log.push(`${p.name} exit`);
        do_exit(k, p.task);
        this.procs.splice(this.procs.indexOf(p), 1);
        // The exited process's mirrors are checked once more (release must have emptied
        // them), then forgotten.
        this.checkCoherence();
        this.checked.delete(p.mirror);
        for (const m of this.checked) if (!m.hmm) this.checked.delete(m);
        break;
      }
      case 'mprotect': {
        const { addr, n } = this.span(8);
        const ro = this.int(2) === 0;
        this.log.push(`${p.name} mprotect 0x${addr.toString(16)} x${n} ${ro ? 'r' : 'rw'}`);
        expect(do_mprotect(k, mm, addr, n * PAGE, ro ? PROT_READ : RW)).toBe(0);
        for (let i = 0; i < n; i++) {
          if (ro) p.ro.add(addr + i * PAGE);
          else p.ro.delete(addr + i * PAGE);
        }
        break;
      }
      case 'remap': {
        const base = this.pick(this.regions);
        this.log.push(`${p.name} remap 0x${base.toString(16)}`);
        expect(do_munmap(k, mm, base, REGION_PAGES * PAGE)).toBe(0);
        const again = do_mmap(k, mm, {
          addr: base,
          len: REGION_PAGES * PAGE,
          prot: RW,
          flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        });
        expect(again).toBe(base);
        for (let i = 0; i < REGION_PAGES; i++) {
          p.model.delete(base + i * PAGE);
          p.ro.delete(base + i * PAGE);
        }
        break;
      }
    }
    this.checkCoherence();
    this.checkBusyCounts();
  }

  /** Every device mapping's count of pages in use agrees with its pages' refcounts. */
  checkBusyCounts(): void {
    for (const pgmap of this.k.pgmaps) {
      if (!pgmap) continue;
      const scanned = pagesInUseScanned(this.k, pgmap);
      if (pgmap.nr_busy !== scanned)
        this.fail(`pgmap ${pgmap.id}: nr_busy ${pgmap.nr_busy}, ${scanned} pages in use`);
    }
  }

  checkCoherence(): void {
    const reports = check_mirror_coherence(this.k, this.checked);
    if (reports.length) this.fail(reports.join('\n'));
  }

  modelStore(p: Proc, addr: number, off: number, val: number): void {
    let b = p.model.get(addr);
    if (!b) {
      b = new Uint8Array(PAGE);
      p.model.set(addr, b);
    }
    b[off] = val;
  }

  /** dmirror's device page table as mirror_ptes, over the regions of its process. */
  *dmirrorDump(m: dmirror): Iterable<mirror_pte> {
    for (const base of this.regions)
      for (let i = 0; i < REGION_PAGES; i++) {
        const addr = base + i * PAGE;
        const v = m.pt.get(addr / PAGE);
        if (v === undefined) continue;
        yield { addr, pfn: this.k.mem.page_to_pfn(Math.floor(v / 2)), write: v % 2 === 1 };
      }
  }

  /** Give each dmirror mirror what check_mirror_coherence needs (its driver name and a dump). */
  adoptDmirror(): void {
    for (const m of this.dmirror.mirrors.values()) {
      if (this.checked.has(m)) continue;
      Object.assign(m, { driver: 'dmirror', dump: () => this.dmirrorDump(m) });
      this.checked.add(m);
    }
  }

  /** Read every page of every process through the CPU and compare with the model. */
  verifyAll(): void {
    for (const p of this.procs)
      for (const base of this.regions)
        for (let i = 0; i < REGION_PAGES; i++) {
          const addr = base + i * PAGE;
          const out = new Uint8Array(PAGE);
          const fault = copy_from_user(this.k, p.task, addr, out);
          if (fault) this.fail(`${p.name}: verify load at 0x${addr.toString(16)} faulted`);
          const want = p.model.get(addr) ?? new Uint8Array(PAGE);
          for (let off = 0; off < PAGE; off++)
            if (out[off] !== want[off])
              this.fail(`${p.name}: 0x${addr.toString(16)}+${off} holds ${out[off]}, model ${want[off]}`);
        }
  }
}

describe('HMM mirror: seeded random operations', () => {
  for (const seed of [1]) {
    it(
      `seed ${seed}: 10,000 operations keep every mirror coherent and every byte right`,
      { timeout: 30_000 },
      () => {
        const run = new RandomRun(seed);
        for (let i = 0; i < 10_000; i++) {
          run.step();
          if (i % 1000 === 999) run.verifyAll();
        }
        run.verifyAll();
        // Every kind of operation ran.
        expect([...run.counts.keys()].sort()).toEqual(
          [
            'cpu_read',
            'cpu_write',
            'dev_read',
            'dev_tlb_read',
            'dev_write',
            'dmirror_read',
            'exit',
            'fork',
            'migrate',
            'migrate_to_sys',
            'mprotect',
            'remap',
          ].sort(),
        );
        // Pages really moved to device memory, were seen there and faulted back.
        expect(run.migrated).toBeGreaterThan(2000);
        expect(run.devpriv).toBeGreaterThan(200);
        expect(run.dmirror.faults).toBeGreaterThan(200);
        expect(run.k.log.text()).not.toMatch(/BUG|WARNING/);
      },
    );
  }
});
