import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { M, PAGE, SECTION, bootSmall, recordTrace, recordingOps } from '../helpers';
import {
  A_FLAGS,
  A_VALUES,
  DEVICE_PRIVATE,
  TestMirror,
  VALID,
  WRITE,
  device_fault_2017,
  device_snapshot_2017,
  entA,
  install_device_entry,
  rangeA,
} from './hmm_test_driver';
import {
  HMM_PFN_ERROR,
  HMM_PFN_NONE,
  HMM_PFN_SPECIAL,
  HMM_UPDATE_INVALIDATE,
  hmm,
  hmm_mirror,
  hmm_mirror_register,
  hmm_mirror_unregister,
  hmm_pfn_to_page,
  hmm_pfn_to_pfn,
  hmm_range,
  hmm_range_fault,
  hmm_range_register,
  hmm_range_snapshot,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_range_wait_until_valid,
  hmm_vma_fault,
  hmm_vma_get_pfns,
  hmm_vma_range_done,
} from '../../../src-main/kernel/mm/hmm_mirror';
import { check_mirror_coherence, debug_vm_check_mirrors } from '../../../src-main/kernel/mm/debug_vm';
import { EAGAIN, EBUSY, EFAULT, EINVAL, ENOMEM, EPERM, IS_ERR } from '../../../src-main/kernel/include/errno';
import {
  FAULT_FLAG_WRITE,
  VM_FAULT_SIGBUS,
  VM_HUGEPAGE,
  VM_PFNMAP,
  type mm_struct,
  type vm_area_struct,
} from '../../../src-main/kernel/include/mm_types';
import {
  _PAGE_PRESENT,
  _PAGE_DIRTY,
  pfn_pte,
  pte_mkwrite,
  pte_pfn,
} from '../../../src-main/kernel/include/pgtable';
import {
  make_hwpoison_entry,
  make_migration_entry,
  swp_entry_to_pte,
} from '../../../src-main/kernel/include/swapops';
import { put_page } from '../../../src-main/kernel/include/mm';
import { spawn_task, do_fork } from '../../../src-main/kernel/kernel/fork';
import { do_exit } from '../../../src-main/kernel/kernel/exit';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import { copy_from_user, copy_to_user } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  do_mmap,
  do_munmap,
  find_vma,
} from '../../../src-main/kernel/mm/mmap';
import { do_mprotect } from '../../../src-main/kernel/mm/mprotect';
import {
  mmu_notifier_invalidate_range_end,
  mmu_notifier_invalidate_range_start,
  mmu_notifier_range_init,
} from '../../../src-main/kernel/mm/mmu_notifier';
import { lookup_pte, pmd_alloc, pte_alloc_map } from '../../../src-main/kernel/mm/pgtable';
import { probeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';
import { hmm_devmem_add, type hmm_devmem_ops } from '../../../src-main/kernel/mm/hmm';
import { device } from '../../../src-main/kernel/drivers/base/core';
import { alloc_page, GFP_HIGHUSER_MOVABLE } from '../../../src-main/kernel/mm/page_alloc';
import { page_add_new_anon_rmap, page_remove_rmap } from '../../../src-main/kernel/mm/rmap';

const RW = PROT_READ | PROT_WRITE;

interface Proc {
  k: Kernel;
  task: task_struct;
  mm: mm_struct;
  addr: number;
  vma: vm_area_struct;
}

/** A process with one private anonymous mapping of `npages`. */
function proc(npages = 8, k: Kernel = bootSmall()): Proc {
  const task = spawn_task(k, 'proc');
  const mm = task.mm!;
  const addr = do_mmap(k, mm, { len: npages * PAGE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  return { k, task, mm, addr, vma: find_vma(mm, addr)! };
}

function cpu_write(p: Proc, addr: number, byte = 1): void {
  expect(copy_to_user(p.k, p.task, addr, new Uint8Array([byte]))).toBeNull();
}

function cpu_read(p: Proc, addr: number): void {
  expect(copy_from_user(p.k, p.task, addr, new Uint8Array(1))).toBeNull();
}

/** The pfn the CPU maps at addr (a 4 KiB PTE). */
function cpu_pfn(p: Proc, addr: number): number {
  return pte_pfn(p.k.pt.entries[lookup_pte(p.k, p.mm, addr)]!);
}

function mirror(p: Proc, name = 'testdev', opts = {}): TestMirror {
  const m = new TestMirror(name, opts);
  expect(hmm_mirror_register(p.k, m, p.mm)).toBe(0);
  return m;
}

/** A 2017 range over [addr, addr + npages) of vma, pfns pre-filled with `fill`. */
function range2017(vma: vm_area_struct, addr: number, npages: number, fill = 0x99): hmm_range {
  const r = rangeA(npages);
  r.vma = vma;
  r.start = addr;
  r.end = addr + npages * PAGE;
  r.pfns.fill(fill);
  return r;
}

/** A private device (hmm_devmem) bound by the built-in driver, for device pages. */
function privateDevice(k: Kernel): BoundDevice {
  const bound = probeDevice(k, { name: 'gpu0', kind: 'private', memory: SECTION, driver: 'dmirror' });
  if (typeof bound === 'number') throw new Error(`probe failed: ${bound}`);
  return bound;
}

const ZERO = (k: Kernel): number => k.zero_pfn;
const NONE = A_VALUES[HMM_PFN_NONE];
const ERROR = A_VALUES[HMM_PFN_ERROR];
const SPECIAL = A_VALUES[HMM_PFN_SPECIAL];

describe('F-MIR-1: one struct hmm per mm', () => {
  it('F-MIR-1: the first register creates the struct hmm and registers its mmu notifier; the second reuses it', () => {
    const p = proc();
    const trace = recordTrace(p.k);
    expect(p.mm.hmm).toBeNull();
    const m1 = new TestMirror('dev1');
    expect(hmm_mirror_register(p.k, m1, p.mm)).toBe(0);
    const h = p.mm.hmm as hmm;
    expect(h).toBeInstanceOf(hmm);
    expect(h.mm).toBe(p.mm);
    expect(m1.hmm).toBe(h);
    expect(p.mm.notifiers).toEqual([h.mmu_notifier]);
    const m2 = new TestMirror('dev2');
    // A second registration allocates nothing: an armed kmalloc failure is not reached.
    p.k.fault.inject('kmalloc');
    expect(hmm_mirror_register(p.k, m2, p.mm)).toBe(0);
    p.k.fault.clear();
    expect(p.mm.hmm).toBe(h);
    expect(m2.hmm).toBe(h);
    expect(p.mm.notifiers).toHaveLength(1);
    // list_add: the newest mirror is first.
    expect(h.mirrors).toEqual([m2, m1]);
    expect(trace.filter((e) => e.name === 'hmm_mirror_register')).toEqual([
      { name: 'hmm_mirror_register', mm: p.mm.id, mirrors: 1 },
      { name: 'hmm_mirror_register', mm: p.mm.id, mirrors: 2 },
    ]);
  });

  it('F-MIR-1: -EINVAL for a null mm, a null mirror or a mirror without ops, creating nothing', () => {
    const p = proc();
    expect(hmm_mirror_register(p.k, new TestMirror('dev'), null)).toBe(-EINVAL);
    expect(hmm_mirror_register(p.k, null, p.mm)).toBe(-EINVAL);
    const noOps = new hmm_mirror(null);
    expect(hmm_mirror_register(p.k, noOps, p.mm)).toBe(-EINVAL);
    expect(noOps.hmm).toBeNull();
    expect(p.mm.hmm).toBeNull();
    expect(p.mm.notifiers).toEqual([]);
  });

  it('F-MIR-1: -ENOMEM when the struct hmm cannot be allocated; a later register succeeds', () => {
    const p = proc();
    const m = new TestMirror('dev');
    p.k.fault.inject('kmalloc');
    expect(hmm_mirror_register(p.k, m, p.mm)).toBe(-ENOMEM);
    expect(m.hmm).toBeNull();
    expect(p.mm.hmm).toBeNull();
    expect(p.mm.notifiers).toEqual([]);
    expect(hmm_mirror_register(p.k, m, p.mm)).toBe(0);
    expect(p.mm.notifiers).toHaveLength(1);
  });
});

describe('F-MIR-2: unregister', () => {
  it('F-MIR-2: unregistering one of two mirrors keeps the hmm and its notifier; only the other is synced', () => {
    const p = proc();
    const m1 = mirror(p, 'dev1');
    const m2 = mirror(p, 'dev2');
    const h = p.mm.hmm as hmm;
    hmm_mirror_unregister(p.k, m1);
    expect(m1.hmm).toBeNull();
    expect(p.mm.hmm).toBe(h);
    expect(h.mm).toBe(p.mm);
    expect(h.mirrors).toEqual([m2]);
    expect(p.mm.notifiers).toEqual([h.mmu_notifier]);
    expect(do_munmap(p.k, p.mm, p.addr, PAGE)).toBe(0);
    expect(m1.updates).toEqual([]);
    expect(m2.updates).toHaveLength(1);
  });

  it('F-MIR-2: the last unregister removes the mmu notifier and clears mm->hmm', () => {
    const p = proc();
    const m = mirror(p);
    const h = p.mm.hmm as hmm;
    const trace = recordTrace(p.k);
    hmm_mirror_unregister(p.k, m);
    expect(m.hmm).toBeNull();
    expect(h.mm).toBeNull();
    expect(p.mm.hmm).toBeNull();
    expect(p.mm.notifiers).toEqual([]);
    expect(trace).toContainEqual({ name: 'hmm_mirror_unregister', mm: p.mm.id, mirrors: 0 });
    // Unregistering again does nothing; invalidations reach no one.
    hmm_mirror_unregister(p.k, m);
    expect(do_munmap(p.k, p.mm, p.addr, PAGE)).toBe(0);
    expect(m.updates).toEqual([]);
    expect(trace.filter((e) => e.name === 'hmm_sync_cpu_device_pagetables')).toEqual([]);
  });

  it('F-MIR-2: a register racing with an unregister that took the hmm (hmm->mm == NULL) retries with a fresh hmm', () => {
    const p = proc();
    const m1 = mirror(p, 'dev1');
    const dying = p.mm.hmm as hmm;
    // hmm_mirror_unregister(m1) on another CPU, stopped after dropping mirrors_sem:
    // the mirror is off the list and hmm->mm is NULL, but mm->hmm still points at it.
    dying.mirrors.splice(0);
    m1.hmm = null;
    dying.mm = null;
    const m2 = new TestMirror('dev2');
    expect(hmm_mirror_register(p.k, m2, p.mm)).toBe(0);
    const fresh = p.mm.hmm as hmm;
    expect(fresh).not.toBe(dying);
    expect(m2.hmm).toBe(fresh);
    expect(fresh.mm).toBe(p.mm);
    expect(fresh.mirrors).toEqual([m2]);
    expect(p.mm.notifiers).toContain(fresh.mmu_notifier);
    expect(dying.mirrors).toEqual([]);
  });
});

describe('F-MIR-3: invalidations', () => {
  it('F-MIR-3: munmap marks overlapping ranges invalid, zeroes exactly the overlapping pfns, then syncs every mirror', () => {
    const p = proc(8);
    const other = do_mmap(p.k, p.mm, { len: 4 * PAGE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    for (let i = 0; i < 8; i++) cpu_write(p, p.addr + i * PAGE);
    const m1 = mirror(p, 'dev1');
    const m2 = mirror(p, 'dev2');
    const r = range2017(p.vma, p.addr, 8);
    const untouched = range2017(find_vma(p.mm, other)!, other, 4);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    expect(hmm_vma_get_pfns(p.k, untouched)).toBe(0);
    const before = [...r.pfns];
    const order: string[] = [];
    for (const m of [m1, m2]) {
      const sync = m.ops!.sync_cpu_device_pagetables;
      m.ops!.sync_cpu_device_pagetables = (mm_, u) => {
        // The ranges are already invalid when the mirrors hear of the update.
        expect(r.valid).toBe(false);
        order.push(m.driver);
        return sync(mm_, u);
      };
    }
    const start = p.addr + 2 * PAGE;
    expect(do_munmap(p.k, p.mm, start, 3 * PAGE)).toBe(0);
    expect(r.valid).toBe(false);
    expect([...r.pfns]).toEqual([before[0], before[1], 0, 0, 0, before[5], before[6], before[7]]);
    expect(untouched.valid).toBe(true);
    const update = { start, end: start + 3 * PAGE, event: HMM_UPDATE_INVALIDATE, blockable: true };
    expect(m1.updates).toEqual([update]);
    expect(m2.updates).toEqual([update]);
    expect(order).toEqual(['dev2', 'dev1']);
    expect(hmm_vma_range_done(p.k, r)).toBe(false);
    expect(hmm_vma_range_done(p.k, untouched)).toBe(true);
  });

  it('F-MIR-3: an update ending exactly at a range start invalidates it (end < start is the test) but zeroes nothing', () => {
    const p = proc(8);
    for (let i = 0; i < 8; i++) cpu_write(p, p.addr + i * PAGE);
    mirror(p);
    const r = range2017(p.vma, p.addr + 4 * PAGE, 4);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    const before = [...r.pfns];
    expect(do_munmap(p.k, p.mm, p.addr + 2 * PAGE, 2 * PAGE)).toBe(0);
    expect(r.valid).toBe(false);
    expect([...r.pfns]).toEqual(before);
    expect(hmm_vma_range_done(p.k, r)).toBe(false);
  });

  it('F-MIR-3: mprotect invalidates the changed range with its start and end', () => {
    const p = proc(8);
    for (let i = 0; i < 8; i++) cpu_write(p, p.addr + i * PAGE);
    const m = mirror(p);
    const r = range2017(p.vma, p.addr, 8);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    const before = [...r.pfns];
    expect(do_mprotect(p.k, p.mm, p.addr + 4 * PAGE, 2 * PAGE, PROT_READ)).toBe(0);
    expect(m.updates).toEqual([
      { start: p.addr + 4 * PAGE, end: p.addr + 6 * PAGE, event: HMM_UPDATE_INVALIDATE, blockable: true },
    ]);
    expect([...r.pfns]).toEqual([...before.slice(0, 4), 0, 0, ...before.slice(6)]);
    expect(hmm_vma_range_done(p.k, r)).toBe(false);
  });

  it('F-MIR-3: fork invalidates the whole COW vma of the parent; the COW write then invalidates the written page', () => {
    const p = proc(8);
    for (let i = 0; i < 8; i++) cpu_write(p, p.addr + i * PAGE);
    const m = mirror(p);
    const child = do_fork(p.k, p.task, 'child');
    expect(IS_ERR(child)).toBe(false);
    expect(m.updates).toEqual([
      { start: p.vma.vm_start, end: p.vma.vm_end, event: HMM_UPDATE_INVALIDATE, blockable: true },
    ]);
    const r = range2017(p.vma, p.addr, 8);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    // Write-protected for COW: VALID without WRITE.
    expect(r.pfns[3]).toBe(entA(cpu_pfn(p, p.addr + 3 * PAGE), VALID));
    const shared = cpu_pfn(p, p.addr + 3 * PAGE);
    cpu_write(p, p.addr + 3 * PAGE, 7);
    expect(cpu_pfn(p, p.addr + 3 * PAGE)).not.toBe(shared);
    expect(m.updates[1]).toEqual({
      start: p.addr + 3 * PAGE,
      end: p.addr + 4 * PAGE,
      event: HMM_UPDATE_INVALIDATE,
      blockable: true,
    });
    expect(r.pfns[3]).toBe(0);
    expect(r.pfns[2]).toBe(entA(cpu_pfn(p, p.addr + 2 * PAGE), VALID));
    expect(hmm_vma_range_done(p.k, r)).toBe(false);
  });

  it('F-MIR-3: the COW of an unaligned store invalidates exactly its page (handle_mm_fault works on address & PAGE_MASK)', () => {
    const p = proc(2);
    cpu_read(p, p.addr + PAGE);
    const m = mirror(p);
    cpu_write(p, p.addr + PAGE + 0x93f);
    expect(m.updates).toEqual([
      { start: p.addr + PAGE, end: p.addr + 2 * PAGE, event: HMM_UPDATE_INVALIDATE, blockable: true },
    ]);
  });

  it('F-MIR-3: 2019: a registered range is only marked invalid; its pfns stay for the walk to go on', () => {
    const p = proc(4);
    const { k, addr } = p;
    for (let i = 0; i < 4; i++) cpu_write(p, addr + i * PAGE);
    const m = mirror(p);
    const r = rangeA(4);
    expect(hmm_range_register(k, r, m, addr, addr + 4 * PAGE, 12)).toBe(0);
    expect(hmm_range_snapshot(k, r)).toBe(4);
    const before = [...r.pfns];
    const inv = mmu_notifier_range_init(p.mm, addr + PAGE, addr + 2 * PAGE, 'unmap');
    expect(mmu_notifier_invalidate_range_start(k, inv)).toBe(0);
    expect(hmm_range_valid(r)).toBe(false);
    expect([...r.pfns]).toEqual(before);
    mmu_notifier_invalidate_range_end(k, inv);
    expect(hmm_range_valid(r)).toBe(true);
    hmm_range_unregister(r);
  });

  it('F-MIR-3: a non-blockable update answered -EAGAIN fails with -EAGAIN and stops at that mirror', () => {
    const p = proc(8);
    const m1 = mirror(p, 'dev1');
    const m2 = mirror(p, 'dev2', { answer: -EAGAIN });
    const r = range2017(p.vma, p.addr, 8);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    const range = mmu_notifier_range_init(p.mm, p.addr, p.addr + 2 * PAGE, 'oom', false);
    expect(mmu_notifier_invalidate_range_start(p.k, range)).toBe(-EAGAIN);
    // The ranges were marked before any mirror was asked.
    expect(r.valid).toBe(false);
    expect(m2.updates).toEqual([
      { start: p.addr, end: p.addr + 2 * PAGE, event: HMM_UPDATE_INVALIDATE, blockable: false },
    ]);
    expect(m1.updates).toEqual([]);
    // A blockable update ignores the answer: everyone is asked and the start succeeds.
    const blocking = mmu_notifier_range_init(p.mm, p.addr, p.addr + 2 * PAGE, 'unmap');
    expect(mmu_notifier_invalidate_range_start(p.k, blocking)).toBe(0);
    expect(m1.updates).toHaveLength(1);
    mmu_notifier_invalidate_range_end(p.k, blocking);
    hmm_vma_range_done(p.k, r);
  });

  it('F-MIR-3: invalidate_range_end updates the tracked ranges only, never the mirrors', () => {
    const p = proc(8);
    for (let i = 0; i < 8; i++) cpu_write(p, p.addr + i * PAGE);
    const m = mirror(p);
    const r = range2017(p.vma, p.addr, 8);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    const before = [...r.pfns];
    mmu_notifier_invalidate_range_end(
      p.k,
      mmu_notifier_range_init(p.mm, p.addr + PAGE, p.addr + 2 * PAGE, 'x'),
    );
    expect(m.updates).toEqual([]);
    expect(r.valid).toBe(false);
    expect([...r.pfns]).toEqual([before[0], 0, ...before.slice(2)]);
    expect(hmm_vma_range_done(p.k, r)).toBe(false);
  });
});

describe('F-MIR-4: exit', () => {
  it("F-MIR-4: exit runs each mirror's release in list order and empties the mirrors list before the unmap", () => {
    const p = proc(8);
    cpu_write(p, p.addr);
    const order: string[] = [];
    const m1 = mirror(p, 'dev1', { onRelease: (m: TestMirror) => order.push(m.driver) });
    // A release may unregister its own mirror: mirrors_sem is dropped around the call.
    const m2 = mirror(p, 'dev2', {
      onRelease: (m: TestMirror) => {
        order.push(m.driver);
        hmm_mirror_unregister(p.k, m);
      },
    });
    const h = p.mm.hmm as hmm;
    do_exit(p.k, p.task);
    expect(order).toEqual(['dev2', 'dev1']);
    expect(m1.releases).toBe(1);
    expect(m2.releases).toBe(1);
    expect(h.mirrors).toEqual([]);
    // The exit's unmap came after release: no mirror was asked to sync it.
    expect(m1.updates).toEqual([]);
    expect(m2.updates).toEqual([]);
    expect(m2.hmm).toBeNull();
    expect(m1.hmm).toBe(h);
  });

  it('F-MIR-4: a mirror without a release callback is just taken off the list', () => {
    const p = proc(8);
    const bare = new hmm_mirror({ sync_cpu_device_pagetables: () => 0 });
    expect(hmm_mirror_register(p.k, bare, p.mm)).toBe(0);
    const h = p.mm.hmm as hmm;
    do_exit(p.k, p.task);
    expect(h.mirrors).toEqual([]);
  });
});

/** Pages: 0 hole, 1 zero page (read), 2 written, 3 device write, 4 device read, 5 hole, 6 migration, 7 hwpoison. */
function snapshotLayout(p: Proc): { dev3: number; dev4: number; page2: number } {
  const { k, vma, addr } = p;
  const bound = privateDevice(k);
  cpu_read(p, addr + PAGE);
  cpu_write(p, addr + 2 * PAGE);
  const dev3 = bound.pool!.alloc();
  const dev4 = bound.pool!.alloc();
  install_device_entry(k, vma, addr + 3 * PAGE, dev3, true);
  install_device_entry(k, vma, addr + 4 * PAGE, dev4, false);
  cpu_write(p, addr + 6 * PAGE);
  const ptep6 = lookup_pte(k, p.mm, addr + 6 * PAGE);
  const migrating = k.mem.pfn_to_page(pte_pfn(k.pt.entries[ptep6]!));
  k.pt.entries[ptep6] = swp_entry_to_pte(make_migration_entry(k, migrating, true));
  const ptep7 = pte_alloc_map(k, p.mm, pmd_alloc(k, p.mm, addr + 7 * PAGE), addr + 7 * PAGE);
  k.pt.entries[ptep7] = swp_entry_to_pte(make_hwpoison_entry(k, alloc_page(k, GFP_HIGHUSER_MOVABLE)));
  return { dev3, dev4, page2: cpu_pfn(p, addr + 2 * PAGE) };
}

describe('F-RANGE-1: snapshot', () => {
  it('F-RANGE-1: hmm_vma_get_pfns reads NONE, VALID(+WRITE), VALID+DEVICE_PRIVATE(+WRITE), NONE for migration and ERROR, without faulting', () => {
    const p = proc(8);
    const { k, addr } = p;
    const { dev3, dev4, page2 } = snapshotLayout(p);
    mirror(p);
    const ptes = [...Array(8).keys()].map((i) => {
      const e = lookup_pte(k, p.mm, addr + i * PAGE);
      return e < 0 ? 0 : k.pt.entries[e]!;
    });
    const trace = recordTrace(k);
    const r = range2017(p.vma, addr, 8);
    expect(hmm_vma_get_pfns(k, r)).toBe(0);
    expect([...r.pfns]).toEqual([
      NONE,
      entA(ZERO(k), VALID),
      entA(page2, VALID, WRITE),
      entA(k.mem.page_to_pfn(dev3), VALID, WRITE, DEVICE_PRIVATE),
      entA(k.mem.page_to_pfn(dev4), VALID, DEVICE_PRIVATE),
      NONE,
      NONE,
      ERROR,
    ]);
    expect(hmm_pfn_to_page(k, r, r.pfns[3]!)).toBe(dev3);
    expect(trace.filter((e) => e.name === 'page_fault')).toEqual([]);
    expect(
      [...Array(8).keys()].map((i) => {
        const e = lookup_pte(k, p.mm, addr + i * PAGE);
        return e < 0 ? 0 : k.pt.entries[e]!;
      }),
    ).toEqual(ptes);
    expect(r.valid).toBe(true);
    expect(hmm_vma_range_done(k, r)).toBe(true);
  });

  it('F-RANGE-1: the walk stops at the bad entry: pfns after it are left as the driver filled them', () => {
    const p = proc(8);
    const { k, addr } = p;
    mirror(p);
    const ptep = pte_alloc_map(k, p.mm, pmd_alloc(k, p.mm, addr + 2 * PAGE), addr + 2 * PAGE);
    k.pt.entries[ptep] = swp_entry_to_pte(make_hwpoison_entry(k, alloc_page(k, GFP_HIGHUSER_MOVABLE)));
    const r = range2017(p.vma, addr, 8, 0x77);
    expect(hmm_vma_get_pfns(k, r)).toBe(0);
    expect([...r.pfns]).toEqual([NONE, NONE, ERROR, 0x77, 0x77, 0x77, 0x77, 0x77]);
    hmm_vma_range_done(k, r);
  });

  it('F-RANGE-1: hmm_range_snapshot gives the same values and returns the pages walked before the bad entry', () => {
    const p = proc(8);
    const { k, addr } = p;
    const { dev3, dev4, page2 } = snapshotLayout(p);
    const m = mirror(p);
    const r = rangeA(8);
    expect(hmm_range_register(k, r, m, addr, addr + 8 * PAGE, 12)).toBe(0);
    expect(hmm_range_snapshot(k, r)).toBe(7);
    expect([...r.pfns]).toEqual([
      NONE,
      entA(ZERO(k), VALID),
      entA(page2, VALID, WRITE),
      entA(k.mem.page_to_pfn(dev3), VALID, WRITE, DEVICE_PRIVATE),
      entA(k.mem.page_to_pfn(dev4), VALID, DEVICE_PRIVATE),
      NONE,
      NONE,
      ERROR,
    ]);
    expect(hmm_range_valid(r)).toBe(true);
    hmm_range_unregister(r);
  });
});

/** hmm_devmem ops whose fault migrates the page back to a fresh system page by hand. */
function migratingOps(k: Kernel, faults: { addr: number; page: number; flags: number }[]): hmm_devmem_ops {
  return {
    fault(_devmem, vma, addr, page, flags) {
      faults.push({ addr, page, flags });
      const ptep = lookup_pte(k, vma.vm_mm, addr);
      const copy = alloc_page(k, GFP_HIGHUSER_MOVABLE);
      page_remove_rmap(k, page);
      put_page(k, page);
      page_add_new_anon_rmap(k, copy, vma, addr);
      k.pt.entries[ptep] = pte_mkwrite(pfn_pte(k.mem.page_to_pfn(copy), vma.vm_page_prot | _PAGE_DIRTY));
      return 0;
    },
    free() {},
  };
}

describe('F-RANGE-2: fault', () => {
  it('F-RANGE-2: a request of 0 faults nothing, VALID read-faults a hole, WRITE write-faults a read-only page', () => {
    const p = proc(4);
    const { k, addr } = p;
    mirror(p);
    const trace = recordTrace(k);
    const faults = (): [number, boolean][] =>
      trace
        .splice(0)
        .filter((e) => e.name === 'page_fault')
        .map((e) => [(e as { addr: number }).addr, (e as { write: boolean }).write]);
    const r = range2017(p.vma, addr, 4, 0);
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    expect(faults()).toEqual([]);
    expect([...r.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    expect(hmm_vma_range_done(k, r)).toBe(true);
    const one = range2017(p.vma, addr, 1, A_FLAGS[VALID]);
    expect(hmm_vma_fault(k, one, true)).toBe(0);
    expect(faults()).toEqual([[addr, false]]);
    expect(one.pfns[0]).toBe(entA(ZERO(k), VALID));
    expect(hmm_vma_range_done(k, one)).toBe(true);
    // Present and readable: a read request faults nothing.
    one.pfns[0] = A_FLAGS[VALID];
    expect(hmm_vma_fault(k, one, true)).toBe(0);
    expect(faults()).toEqual([]);
    expect(hmm_vma_range_done(k, one)).toBe(true);
    // Present read-only (the zero page): a write request write-faults it (COW).
    one.pfns[0] = A_FLAGS[VALID] + A_FLAGS[WRITE];
    expect(hmm_vma_fault(k, one, true)).toBe(0);
    expect(faults()).toEqual([[addr, true]]);
    expect(cpu_pfn(p, addr)).not.toBe(ZERO(k));
    expect(one.pfns[0]).toBe(entA(cpu_pfn(p, addr), VALID, WRITE));
    // The COW invalidated the page under the tracked range: the driver must go again.
    expect(hmm_vma_range_done(k, one)).toBe(false);
    one.pfns[0] = A_FLAGS[VALID] + A_FLAGS[WRITE];
    expect(hmm_vma_fault(k, one, true)).toBe(0);
    expect(faults()).toEqual([]);
    expect(hmm_vma_range_done(k, one)).toBe(true);
  });

  it('F-RANGE-2: from the first page needing a fault, hmm_vma_walk_hole_ faults to the end of the walk with its fault type, later requests overwritten by NONE', () => {
    const p = proc(4);
    const { k, addr } = p;
    mirror(p);
    cpu_write(p, addr);
    const r = range2017(p.vma, addr, 4, 0);
    r.pfns[1] = A_FLAGS[VALID];
    r.pfns[2] = A_FLAGS[VALID] + A_FLAGS[WRITE];
    const trace = recordTrace(k);
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    // Seed 002: pages 1-3 are read-faulted by the first pass; the second pass from
    // hmm_vma_walk.last finds requests of NONE and only reads them.
    expect(
      trace
        .filter((e) => e.name === 'page_fault')
        .map((e) => [(e as { addr: number }).addr, (e as { write: boolean }).write]),
    ).toEqual([
      [addr + PAGE, false],
      [addr + 2 * PAGE, false],
      [addr + 3 * PAGE, false],
    ]);
    expect([...r.pfns]).toEqual([
      entA(cpu_pfn(p, addr), VALID, WRITE),
      entA(ZERO(k), VALID),
      entA(ZERO(k), VALID),
      entA(ZERO(k), VALID),
    ]);
    expect(hmm_vma_range_done(k, r)).toBe(true);
  });

  it('F-RANGE-2: device-private pages are never faulted unless DEVICE_PRIVATE is requested; then the pgmap fault callback runs', () => {
    const k = bootSmall();
    const p = proc(2, k);
    mirror(p);
    const faults: { addr: number; page: number; flags: number }[] = [];
    const devmem = hmm_devmem_add(k, migratingOps(k, faults), new device('gpu1'), SECTION);
    if (typeof devmem === 'number') throw new Error(`${devmem}`);
    const dev = k.mem.pfn_to_page(devmem.pfn_first);
    install_device_entry(k, p.vma, p.addr, dev, false);
    // A write request without DEVICE_PRIVATE: the device entry is reported, not faulted.
    const r = range2017(p.vma, p.addr, 1, A_FLAGS[VALID] + A_FLAGS[WRITE]);
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    expect(faults).toEqual([]);
    expect(r.pfns[0]).toBe(entA(devmem.pfn_first, VALID, DEVICE_PRIVATE));
    expect(hmm_vma_range_done(k, r)).toBe(true);
    // With DEVICE_PRIVATE: the pagemap's fault migrates it back, then the walk retries.
    r.pfns[0] = A_FLAGS[VALID] + A_FLAGS[WRITE] + A_FLAGS[DEVICE_PRIVATE];
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    expect(faults).toEqual([{ addr: p.addr, page: dev, flags: expect.any(Number) as number }]);
    expect(faults[0]!.flags & FAULT_FLAG_WRITE).toBe(FAULT_FLAG_WRITE);
    expect(r.pfns[0]).toBe(entA(cpu_pfn(p, p.addr), VALID, WRITE));
    expect(k.mem.refcount[dev]).toBe(1);
    expect(hmm_vma_range_done(k, r)).toBe(true);
  });

  it('F-RANGE-2: a failing fault returns -EFAULT, stops tracking the range and clears pfns from hmm_vma_walk.last on', () => {
    const k = bootSmall();
    const p = proc(4, k);
    mirror(p);
    const ops = recordingOps(VM_FAULT_SIGBUS);
    const devmem = hmm_devmem_add(k, ops, new device('gpu1'), SECTION);
    if (typeof devmem === 'number') throw new Error(`${devmem}`);
    const dev = k.mem.pfn_to_page(devmem.pfn_first);
    cpu_write(p, p.addr);
    install_device_entry(k, p.vma, p.addr + PAGE, dev, true);
    const r = range2017(p.vma, p.addr, 4, A_FLAGS[VALID] + A_FLAGS[DEVICE_PRIVATE]);
    const trace = recordTrace(k);
    expect(hmm_vma_fault(k, r, true)).toBe(-EFAULT);
    expect(ops.faults).toEqual([expect.objectContaining({ addr: p.addr + PAGE, page: dev })]);
    expect(trace).toContainEqual(
      expect.objectContaining({ name: 'devmem_fault', addr: p.addr + PAGE, result: VM_FAULT_SIGBUS }),
    );
    // hmm_vma_do_fault wrote ERROR for page 1, then hmm_pfns_clear() from the failing PTE
    // (hmm_vma_walk.last) to the end made it and the rest NONE.
    expect([...r.pfns]).toEqual([entA(cpu_pfn(p, p.addr), VALID, WRITE), NONE, NONE, NONE]);
    // hmm_vma_fault called hmm_vma_range_done: the range is no longer tracked.
    expect((p.mm.hmm as hmm).ranges.has(r)).toBe(false);
  });

  it('F-RANGE-2: a fault on a migration entry waits for the migration and retries the walk (-EAGAIN loop)', () => {
    const p = proc(2);
    const { k, addr } = p;
    mirror(p);
    cpu_write(p, addr);
    const ptep = lookup_pte(k, p.mm, addr);
    const pte = k.pt.entries[ptep]!;
    const page = k.mem.pfn_to_page(pte_pfn(pte));
    k.pt.entries[ptep] = swp_entry_to_pte(make_migration_entry(k, page, true));
    // The migration finishes while the fault waits on it.
    const off = k.log.subscribe((l) => {
      if (l.text.includes('waits on migration')) k.pt.entries[ptep] = pte;
    });
    const r = range2017(p.vma, addr, 2, A_FLAGS[VALID]);
    const waits = k.migration_waits;
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    off();
    expect(k.migration_waits).toBe(waits + 1);
    expect([...r.pfns]).toEqual([entA(pte_pfn(pte), VALID, WRITE), entA(ZERO(k), VALID)]);
    expect(hmm_vma_range_done(k, r)).toBe(true);
  });

  it('F-RANGE-2: when the migration is still running after the wait, the retried walk finds its request overwritten by NONE and reads NONE', () => {
    const p = proc(1);
    const { k, addr } = p;
    mirror(p);
    cpu_write(p, addr);
    const ptep = lookup_pte(k, p.mm, addr);
    const page = k.mem.pfn_to_page(pte_pfn(k.pt.entries[ptep]!));
    k.pt.entries[ptep] = swp_entry_to_pte(make_migration_entry(k, page, true));
    const r = range2017(p.vma, addr, 1, A_FLAGS[VALID]);
    const waits = k.migration_waits;
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    expect(k.migration_waits).toBe(waits + 1);
    expect(r.pfns[0]).toBe(NONE);
    expect(hmm_vma_range_done(k, r)).toBe(true);
  });

  it('F-RANGE-2: hmm_range_fault faults every requested page in one call and returns the pages filled', () => {
    const p = proc(8);
    const { k, addr } = p;
    const m = mirror(p);
    const r = rangeA(8);
    expect(hmm_range_register(k, r, m, addr, addr + 8 * PAGE, 12)).toBe(0);
    r.pfns.fill(A_FLAGS[VALID] + A_FLAGS[WRITE]);
    expect(hmm_range_fault(k, r, true)).toBe(8);
    for (let i = 0; i < 8; i++) expect(r.pfns[i]).toBe(entA(cpu_pfn(p, addr + i * PAGE), VALID, WRITE));
    expect(hmm_range_valid(r)).toBe(true);
    hmm_range_unregister(r);
  });
});

describe('F-RANGE-3: range validity and the retry loop', () => {
  it('F-RANGE-3: hmm_vma_range_done is true for an untouched range and after an invalidation elsewhere', () => {
    const p = proc(8);
    mirror(p);
    const r = range2017(p.vma, p.addr, 4);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    expect(do_munmap(p.k, p.mm, p.addr + 5 * PAGE, PAGE)).toBe(0);
    expect(hmm_vma_range_done(p.k, r)).toBe(true);
    expect((p.mm.hmm as hmm).ranges.size).toBe(0);
  });

  it('F-RANGE-3: the documented loop retries after a CPU write invalidated the range and converges on the new page', () => {
    const p = proc(4);
    const { k, addr } = p;
    const m = mirror(p);
    let hits = 0;
    const off = k.trace.subscribe((e) => {
      // Between hmm_vma_fault and hmm_vma_range_done, the CPU writes page 2 (COW of the zero page).
      if (e.name === 'hmm_fault' && hits++ === 0) cpu_write(p, addr + 2 * PAGE, 5);
    });
    const { ret, tries } = device_fault_2017(k, m, p.mm, addr, 4, false);
    off();
    expect(ret).toBe(0);
    expect(tries).toBe(2);
    expect(m.pt.get(addr + 2 * PAGE)).toEqual({ pfn: cpu_pfn(p, addr + 2 * PAGE), write: true });
    expect(m.pt.get(addr)).toEqual({ pfn: ZERO(k), write: false });
    expect(check_mirror_coherence(k, [m])).toEqual([]);
  });

  it('F-RANGE-3: 2019: a range is invalid while an invalidation runs; snapshot and fault then answer -EAGAIN', () => {
    const p = proc(4);
    const { k, addr } = p;
    for (let i = 0; i < 4; i++) cpu_write(p, addr + i * PAGE);
    const m = mirror(p);
    const r = rangeA(4);
    expect(hmm_range_register(k, r, m, addr, addr + 4 * PAGE, 12)).toBe(0);
    expect(hmm_range_valid(r)).toBe(true);
    const inv = mmu_notifier_range_init(p.mm, addr, addr + PAGE, 'unmap');
    expect(mmu_notifier_invalidate_range_start(k, inv)).toBe(0);
    expect(hmm_range_valid(r)).toBe(false);
    expect(hmm_range_wait_until_valid(r)).toBe(false);
    expect(hmm_range_snapshot(k, r)).toBe(-EAGAIN);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_range_fault(k, r, true)).toBe(-EAGAIN);
    // A range registered during the invalidation starts invalid too.
    const late = rangeA(4);
    expect(hmm_range_register(k, late, m, addr, addr + 4 * PAGE, 12)).toBe(0);
    expect(hmm_range_valid(late)).toBe(false);
    mmu_notifier_invalidate_range_end(k, inv);
    expect(hmm_range_valid(r)).toBe(true);
    expect(hmm_range_valid(late)).toBe(true);
    expect(hmm_range_snapshot(k, r)).toBe(4);
    hmm_range_unregister(r);
    hmm_range_unregister(late);
  });

  it('F-RANGE-3: 2019: a fault whose range goes invalid mid-walk returns -EBUSY with the rest cleared; the retry succeeds', () => {
    const p = proc(4);
    const { k, addr } = p;
    const m = mirror(p);
    const r = rangeA(4);
    expect(hmm_range_register(k, r, m, addr, addr + 4 * PAGE, 12)).toBe(0);
    r.pfns.fill(A_FLAGS[VALID]);
    // Another thread starts unmapping page 3 while the device faults page 0.
    const inv = mmu_notifier_range_init(p.mm, addr + 3 * PAGE, addr + 4 * PAGE, 'unmap');
    let started = false;
    const off = k.trace.subscribe((e) => {
      if (e.name === 'page_fault' && !started) {
        started = true;
        mmu_notifier_invalidate_range_start(k, inv);
      }
    });
    expect(hmm_range_fault(k, r, true)).toBe(-EBUSY);
    off();
    expect([...r.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    expect(hmm_range_valid(r)).toBe(false);
    mmu_notifier_invalidate_range_end(k, inv);
    expect(hmm_range_valid(r)).toBe(true);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_range_fault(k, r, true)).toBe(4);
    expect(r.pfns[3]).toBe(entA(ZERO(k), VALID));
    hmm_range_unregister(r);
  });
});

describe('F-RANGE-4: refusals', () => {
  it('F-RANGE-4: -EINVAL for a range outside its vma', () => {
    const p = proc(4);
    mirror(p);
    const before = range2017(p.vma, p.addr - PAGE, 2);
    expect(hmm_vma_get_pfns(p.k, before)).toBe(-EINVAL);
    const past = range2017(p.vma, p.addr + 3 * PAGE, 2);
    expect(hmm_vma_get_pfns(p.k, past)).toBe(-EINVAL);
    expect(hmm_vma_fault(p.k, past, true)).toBe(-EINVAL);
    expect((p.mm.hmm as hmm).ranges.size).toBe(0);
  });

  it('F-RANGE-4: -EINVAL when no mirror was registered on the mm', () => {
    const p = proc(4);
    const r = range2017(p.vma, p.addr, 4);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(-EINVAL);
    expect(hmm_vma_fault(p.k, r, true)).toBe(-EINVAL);
    // hmm_range_register needs a registered mirror too.
    const r2 = rangeA(4);
    expect(hmm_range_register(p.k, r2, new TestMirror('x'), p.addr, p.addr + 4 * PAGE, 12)).toBe(-EFAULT);
  });

  it('F-RANGE-4: -EPERM with every pfn cleared for a PROT_NONE vma, in both APIs', () => {
    const p = proc(4);
    const m = mirror(p);
    const none = do_mmap(p.k, p.mm, { len: 4 * PAGE, prot: PROT_NONE, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    const r = range2017(find_vma(p.mm, none)!, none, 4, 0x99);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(-EPERM);
    expect([...r.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    r.pfns.fill(0x99);
    expect(hmm_vma_fault(p.k, r, true)).toBe(-EPERM);
    expect([...r.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    const r2 = rangeA(4);
    expect(hmm_range_register(p.k, r2, m, none, none + 4 * PAGE, 12)).toBe(0);
    r2.pfns.fill(0x99);
    expect(hmm_range_snapshot(p.k, r2)).toBe(-EPERM);
    expect([...r2.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    hmm_range_unregister(r2);
  });

  it('F-RANGE-4: 2017: hugetlb and VM_SPECIAL vmas are refused with SPECIAL values and -EINVAL', () => {
    const p = proc(4);
    mirror(p);
    const huge = do_mmap(p.k, p.mm, {
      len: 2 * M,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
    });
    const r = range2017(find_vma(p.mm, huge)!, huge, 4);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(-EINVAL);
    expect([...r.pfns]).toEqual([SPECIAL, SPECIAL, SPECIAL, SPECIAL]);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_vma_fault(p.k, r, true)).toBe(-EINVAL);
    expect([...r.pfns]).toEqual([SPECIAL, SPECIAL, SPECIAL, SPECIAL]);
    p.vma.vm_flags |= VM_PFNMAP;
    const s = range2017(p.vma, p.addr, 4);
    expect(hmm_vma_get_pfns(p.k, s)).toBe(-EINVAL);
    expect([...s.pfns]).toEqual([SPECIAL, SPECIAL, SPECIAL, SPECIAL]);
    expect((p.mm.hmm as hmm).ranges.size).toBe(0);
  });

  it('F-RANGE-4: 2019: hugetlb is walked one entry per huge page with page_shift 21, per base page with 12, else -EINVAL', () => {
    const p = proc(4);
    const { k } = p;
    const m = mirror(p);
    const huge = do_mmap(k, p.mm, { len: 4 * M, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB });
    cpu_write(p, huge);
    cpu_write(p, huge + 2 * M);
    const pmdPfn = (a: number): number => pte_pfn(k.pt.entries[pmd_alloc(k, p.mm, a)]!);
    const big = rangeA(2);
    expect(hmm_range_register(k, big, m, huge, huge + 4 * M, 21)).toBe(0);
    expect(hmm_range_snapshot(k, big)).toBe(1024);
    expect([...big.pfns]).toEqual([
      entA(pmdPfn(huge), VALID, WRITE),
      entA(pmdPfn(huge + 2 * M), VALID, WRITE),
    ]);
    hmm_range_unregister(big);
    const small = rangeA(1024);
    expect(hmm_range_register(k, small, m, huge, huge + 4 * M, 12)).toBe(0);
    expect(hmm_range_snapshot(k, small)).toBe(1024);
    expect(small.pfns[0]).toBe(entA(pmdPfn(huge), VALID, WRITE));
    expect(small.pfns[511]).toBe(entA(pmdPfn(huge) + 511, VALID, WRITE));
    expect(small.pfns[513]).toBe(entA(pmdPfn(huge + 2 * M) + 1, VALID, WRITE));
    hmm_range_unregister(small);
    const odd = rangeA(512);
    expect(hmm_range_register(k, odd, m, huge, huge + 4 * M, 13)).toBe(0);
    expect(hmm_range_snapshot(k, odd)).toBe(-EINVAL);
    hmm_range_unregister(odd);
    // page_shift 21 on a normal vma is -EINVAL too.
    const normal = rangeA(1);
    const aligned = do_mmap(k, p.mm, {
      len: 2 * M,
      prot: RW,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
      align: 2 * M,
    });
    expect(hmm_range_register(k, normal, m, aligned, aligned + 2 * M, 21)).toBe(0);
    expect(hmm_range_snapshot(k, normal)).toBe(-EINVAL);
    hmm_range_unregister(normal);
  });

  it('F-RANGE-4: 2019: -EFAULT for a hole in the address space or a VM_PFNMAP/VM_IO vma', () => {
    const p = proc(4);
    const m = mirror(p);
    const r = rangeA(4);
    expect(hmm_range_register(p.k, r, m, p.addr - 4 * PAGE, p.addr, 12)).toBe(0);
    expect(hmm_range_snapshot(p.k, r)).toBe(-EFAULT);
    hmm_range_unregister(r);
    p.vma.vm_flags |= VM_PFNMAP;
    const s = rangeA(4);
    expect(hmm_range_register(p.k, s, m, p.addr, p.addr + 4 * PAGE, 12)).toBe(0);
    expect(hmm_range_snapshot(p.k, s)).toBe(-EFAULT);
    hmm_range_unregister(s);
  });
});

describe('F-RANGE-5: pmd level', () => {
  function thp(): Proc & { head: number } {
    const k = bootSmall();
    const task = spawn_task(k, 'thp');
    const mm = task.mm!;
    const addr = do_mmap(k, mm, { len: 2 * M, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, align: 2 * M });
    const vma = find_vma(mm, addr)!;
    vma.vm_flags |= VM_HUGEPAGE;
    const p = { k, task, mm, addr, vma };
    cpu_write(p, addr);
    const pmd = k.pt.entries[pmd_alloc(k, mm, addr)]!;
    return { ...p, head: pte_pfn(pmd) };
  }

  it('F-RANGE-5: a THP pmd gives every sub-page from the huge pfn, also from the middle of it', () => {
    const p = thp();
    mirror(p);
    const r = range2017(p.vma, p.addr, 512);
    expect(hmm_vma_get_pfns(p.k, r)).toBe(0);
    for (let i = 0; i < 512; i++) expect(r.pfns[i]).toBe(entA(p.head + i, VALID, WRITE));
    hmm_vma_range_done(p.k, r);
    const mid = range2017(p.vma, p.addr + 100 * PAGE, 3);
    expect(hmm_vma_get_pfns(p.k, mid)).toBe(0);
    expect([...mid.pfns]).toEqual([100, 101, 102].map((i) => entA(p.head + i, VALID, WRITE)));
    hmm_vma_range_done(p.k, mid);
  });

  it('F-RANGE-5: a bad pmd and a non-present pmd give ERROR for their whole span', () => {
    const p = proc(4);
    const { k, addr } = p;
    mirror(p);
    cpu_write(p, addr);
    const pmdp = pmd_alloc(k, p.mm, addr);
    const saved = k.pt.entries[pmdp]!;
    // Present, not huge, and not a table pointer's flags: pmd_bad.
    k.pt.entries[pmdp] = pfn_pte(pte_pfn(saved), _PAGE_PRESENT);
    const r = range2017(p.vma, addr, 4);
    expect(hmm_vma_get_pfns(k, r)).toBe(0);
    expect([...r.pfns]).toEqual([ERROR, ERROR, ERROR, ERROR]);
    hmm_vma_range_done(k, r);
    // Not present (a swap-like pmd): ERROR too, and a fault request does not fault it.
    k.pt.entries[pmdp] = pfn_pte(pte_pfn(saved), _PAGE_DIRTY);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_vma_fault(k, r, true)).toBe(0);
    expect([...r.pfns]).toEqual([ERROR, ERROR, ERROR, ERROR]);
    hmm_vma_range_done(k, r);
    k.pt.entries[pmdp] = saved;
  });
});

describe('F-RANGE-6: driver encodings', () => {
  it('F-RANGE-6: two drivers with their own flags, values and pfn_shift get their own encodings of one page table', () => {
    const p = proc(4);
    const { k, addr } = p;
    const bound = privateDevice(k);
    mirror(p, 'devA');
    cpu_read(p, addr + PAGE);
    cpu_write(p, addr + 2 * PAGE);
    const dev = bound.pool!.alloc();
    install_device_entry(k, p.vma, addr + 3 * PAGE, dev, true);
    const a = range2017(p.vma, addr, 4);
    // Driver B: pfn from bit 12, flags high, its own ERROR/NONE/SPECIAL.
    const B_FLAGS = [0x800, 0x400, 0x200];
    const B_VALUES = [0x3, 0x1, 0x2];
    const b = new hmm_range(new Float64Array(4), B_FLAGS, B_VALUES, 12);
    b.vma = p.vma;
    b.start = addr;
    b.end = addr + 4 * PAGE;
    expect(hmm_vma_get_pfns(k, a)).toBe(0);
    expect(hmm_vma_get_pfns(k, b)).toBe(0);
    const page2 = cpu_pfn(p, addr + 2 * PAGE);
    const devpfn = k.mem.page_to_pfn(dev);
    expect([...a.pfns]).toEqual([
      NONE,
      entA(ZERO(k), VALID),
      entA(page2, VALID, WRITE),
      entA(devpfn, VALID, WRITE, DEVICE_PRIVATE),
    ]);
    expect([...b.pfns]).toEqual([
      0x1,
      ZERO(k) * 4096 + 0x800,
      page2 * 4096 + 0x800 + 0x400,
      devpfn * 4096 + 0x800 + 0x400 + 0x200,
    ]);
    for (let i = 1; i < 4; i++) expect(hmm_pfn_to_pfn(b, b.pfns[i]!)).toBe(hmm_pfn_to_pfn(a, a.pfns[i]!));
    expect(hmm_pfn_to_pfn(b, b.pfns[0]!)).toBe(-1);
    hmm_vma_range_done(k, a);
    hmm_vma_range_done(k, b);
  });
});

describe('mirror coherence (debug_vm)', () => {
  function coherentRun(m: TestMirror, p: Proc): string[] {
    const { k, addr } = p;
    const reports: string[] = [];
    const off = debug_vm_check_mirrors(k, () => [m]);
    const sub = k.log.subscribe((l) => {
      if (l.text.startsWith('BUG: mirror')) reports.push(l.text);
    });
    const fill = (): void => void device_fault_2017(k, m, p.mm, addr, 8, true);
    for (let i = 0; i < 8; i++) cpu_write(p, addr + i * PAGE);
    fill();
    expect(m.pt.size).toBe(8);
    reports.push(...check_mirror_coherence(k, [m]));
    // fork write-protects the COW pages: the device loses its write mappings.
    const child = do_fork(k, p.task, 'child');
    reports.push(...check_mirror_coherence(k, [m]));
    device_snapshot_2017(k, m, p.vma, addr, 8);
    reports.push(...check_mirror_coherence(k, [m]));
    // COW: the parent's write moves page 1 to a new pfn.
    cpu_write(p, addr + PAGE, 9);
    reports.push(...check_mirror_coherence(k, [m]));
    fill();
    do_mprotect(k, p.mm, addr + 2 * PAGE, 2 * PAGE, PROT_READ);
    reports.push(...check_mirror_coherence(k, [m]));
    device_snapshot_2017(k, m, find_vma(p.mm, addr)!, addr, 2);
    do_munmap(k, p.mm, addr + 6 * PAGE, 2 * PAGE);
    reports.push(...check_mirror_coherence(k, [m]));
    if (!IS_ERR(child)) do_exit(k, child);
    do_exit(k, p.task);
    reports.push(...check_mirror_coherence(k, [m]));
    off();
    sub();
    return reports;
  }

  it('a well-behaved mirror stays coherent through fork, COW, mprotect, munmap and exit', () => {
    const p = proc(8);
    const m = mirror(p, 'gooddev');
    expect(coherentRun(m, p)).toEqual([]);
    expect(m.pt.size).toBe(0);
  });

  it('a driver ignoring sync_cpu_device_pagetables is caught with a report naming it', () => {
    const p = proc(8);
    const { k, addr } = p;
    const m = mirror(p, 'baddev', { ignoreSync: true });
    for (let i = 0; i < 8; i++) cpu_write(p, addr + i * PAGE);
    device_fault_2017(k, m, p.mm, addr, 8, true);
    expect(check_mirror_coherence(k)).toEqual([]);
    const pfn7 = cpu_pfn(p, addr + 7 * PAGE);
    const pfn0 = cpu_pfn(p, addr);
    do_munmap(k, p.mm, addr + 7 * PAGE, PAGE);
    do_mprotect(k, p.mm, addr, PAGE, PROT_READ);
    const hex = (n: number): string => `0x${n.toString(16)}`;
    expect(check_mirror_coherence(k)).toEqual([
      `BUG: mirror baddev maps ${hex(addr)} -> pfn ${hex(pfn0)} (write) but the CPU maps pfn ${hex(pfn0)} read-only (sync_cpu_device_pagetables did not invalidate)`,
      `BUG: mirror baddev maps ${hex(addr + 7 * PAGE)} -> pfn ${hex(pfn7)} (write) but the CPU has no mapping there (sync_cpu_device_pagetables did not invalidate)`,
    ]);
    // In debug mode the report is printed at the invalidation's end.
    const off = debug_vm_check_mirrors(k);
    const dmesg: string[] = [];
    const sub = k.log.subscribe((l) => l.level === 'err' && dmesg.push(l.text));
    do_munmap(k, p.mm, addr + 6 * PAGE, PAGE);
    off();
    sub();
    expect(dmesg).toContain(
      `BUG: mirror baddev maps ${hex(addr + 6 * PAGE)} -> pfn ${hex(m.pt.get(addr + 6 * PAGE)!.pfn)} (write) but the CPU has no mapping there (sync_cpu_device_pagetables did not invalidate)`,
    );
  });

  it('a device mapping a page the CPU replaced by COW is reported with the new pfn', () => {
    const p = proc(2);
    const { k, addr } = p;
    const m = mirror(p, 'baddev', { ignoreSync: true });
    cpu_read(p, addr);
    device_fault_2017(k, m, p.mm, addr, 1, false);
    cpu_write(p, addr);
    const hex = (n: number): string => `0x${n.toString(16)}`;
    expect(check_mirror_coherence(k, [m])).toEqual([
      `BUG: mirror baddev maps ${hex(addr)} -> pfn ${hex(ZERO(k))} but the CPU maps pfn ${hex(cpu_pfn(p, addr))} there (sync_cpu_device_pagetables did not invalidate)`,
    ]);
  });

  it('a device-private pfn must match the CPU device entry; a release that keeps entries is reported', () => {
    const p = proc(2);
    const { k, addr } = p;
    const bound = privateDevice(k);
    const dev = bound.pool!.alloc();
    install_device_entry(k, p.vma, addr, dev, false);
    const m = mirror(p, 'devpriv', { ignoreSync: true });
    const r = range2017(p.vma, addr, 1);
    expect(hmm_vma_get_pfns(k, r)).toBe(0);
    expect(hmm_vma_range_done(k, r)).toBe(true);
    m.commit(k, r);
    expect(check_mirror_coherence(k, [m])).toEqual([]);
    m.pt.set(addr, { pfn: k.mem.page_to_pfn(dev), write: true });
    const hex = (n: number): string => `0x${n.toString(16)}`;
    expect(check_mirror_coherence(k, [m])).toEqual([
      `BUG: mirror devpriv maps ${hex(addr)} -> pfn ${hex(k.mem.page_to_pfn(dev))} (write) but the CPU maps device entry of pfn ${hex(k.mem.page_to_pfn(dev))} read-only (sync_cpu_device_pagetables did not invalidate)`,
    ]);
    // A release that forgets to drop its table.
    m.ops!.release = () => {};
    const sub: string[] = [];
    const off = debug_vm_check_mirrors(k, () => [m]);
    const unsub = k.log.subscribe((l) => l.level === 'err' && sub.push(l.text));
    do_exit(k, p.task);
    off();
    unsub();
    expect(sub[0]).toBe(
      `BUG: mirror devpriv maps ${hex(addr)} -> pfn ${hex(k.mem.page_to_pfn(dev))} (write) but mm${p.mm.id} is exiting (release did not stop the device)`,
    );
  });
});
