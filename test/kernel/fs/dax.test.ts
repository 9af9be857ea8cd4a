import { describe, it, expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { G, K, M, PAGE, bootSmall, recordTrace, warnings } from '../helpers';
import { A_FLAGS, A_VALUES, TestMirror, VALID, WRITE, entA, rangeA } from '../mm/hmm_test_driver';
import {
  HMM_PFN_NONE,
  HMM_PFN_SPECIAL,
  HMM_UPDATE_INVALIDATE,
  hmm_mirror_register,
  hmm_range_fault,
  hmm_range_register,
  hmm_range_snapshot,
  hmm_range_unregister,
  hmm_vma_get_pfns,
  type hmm_range,
} from '../../../src-main/kernel/mm/hmm_mirror';
import { check_mirror_coherence } from '../../../src-main/kernel/mm/debug_vm';
import { dax_file_create, dax_fs } from '../../../src-main/kernel/fs/dax';
import type { file } from '../../../src-main/kernel/fs/file';
import { EBUSY, EFAULT, EINVAL, IS_ERR } from '../../../src-main/kernel/include/errno';
import {
  _PAGE_ACCESSED,
  _PAGE_PRESENT,
  _PAGE_USER,
  pfn_pte,
  pmd_devmap,
  pte_devmap,
  pte_mkhuge,
  pte_mkspecial,
  pte_none,
} from '../../../src-main/kernel/include/pgtable';
import { get_page, put_page } from '../../../src-main/kernel/include/mm';
import type { mm_struct, vm_area_struct } from '../../../src-main/kernel/include/mm_types';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import { spawn_task } from '../../../src-main/kernel/kernel/fork';
import { copy_from_user, copy_to_user } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  do_mmap,
  find_vma,
} from '../../../src-main/kernel/mm/mmap';
import {
  lookup_pte,
  pgd_offset,
  pmd_alloc,
  pte_alloc_map,
  pud_alloc,
  pud_offset,
} from '../../../src-main/kernel/mm/pgtable';
import { probeDevice, removeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';
import type { percpu_ref } from '../../../src-main/kernel/lib/percpu-refcount';

const RW = PROT_READ | PROT_WRITE;
const PMEM_START = 4 * G;
const PMEM_SIZE = 2 * G;

interface DaxMachine {
  k: Kernel;
  pmem: BoundDevice;
  fs: dax_fs;
  task: task_struct;
  mm: mm_struct;
  m: TestMirror;
}

/** A machine with a 2 GiB fsdax pmem namespace at 4 GiB, a DAX fs on it, and a mirrored process. */
function daxMachine(): DaxMachine {
  const k = bootSmall({ expectedDeviceBytes: PMEM_SIZE });
  const pmem = probeDevice(k, {
    name: 'pmem0',
    kind: 'pmem',
    memory: PMEM_SIZE,
    start: PMEM_START,
    driver: 'pmem',
  });
  if (typeof pmem === 'number') throw new Error(`pmem probe: ${pmem}`);
  const fs = new dax_fs('pmem0', PMEM_START / PAGE, (PMEM_START + PMEM_SIZE) / PAGE);
  const task = spawn_task(k, 'daxuser');
  const m = new TestMirror('daxdev');
  expect(hmm_mirror_register(k, m, task.mm!)).toBe(0);
  return { k, pmem, fs, task, mm: task.mm!, m };
}

/** Create a DAX file of `size` and map it shared, aligned to `align`. */
function mapDax(d: DaxMachine, size: number, align = PAGE): { f: file; addr: number; vma: vm_area_struct } {
  const f = dax_file_create(d.k, d.fs, `f${size}`, size);
  if (IS_ERR(f)) throw new Error(`dax_file_create: ${f}`);
  const addr = do_mmap(d.k, d.mm, { len: size, prot: RW, flags: MAP_SHARED, file: f, align });
  expect(IS_ERR(addr)).toBe(false);
  return { f, addr, vma: find_vma(d.mm, addr)! };
}

function touch(d: DaxMachine, addr: number, write = true): void {
  if (write) expect(copy_to_user(d.k, d.task, addr, new Uint8Array([1]))).toBeNull();
  else expect(copy_from_user(d.k, d.task, addr, new Uint8Array(1))).toBeNull();
}

/** Every value the pgmap's reference count takes from now on. */
function watchRef(ref: percpu_ref): number[] {
  const seen: number[] = [];
  let count = ref.count;
  Object.defineProperty(ref, 'count', {
    get: () => count,
    set: (v: number) => {
      count = v;
      seen.push(v);
    },
    configurable: true,
  });
  return seen;
}

function register(d: DaxMachine, addr: number, npages: number): hmm_range {
  const r = rangeA(npages);
  expect(hmm_range_register(d.k, r, d.m, addr, addr + npages * PAGE, 12)).toBe(0);
  return r;
}

const NONE = A_VALUES[HMM_PFN_NONE];
const SPECIAL = A_VALUES[HMM_PFN_SPECIAL];

describe('F-DAX-1: mirroring a file on a DAX filesystem', () => {
  it('F-DAX-1: the 2017 API refuses a DAX vma with SPECIAL values and -EINVAL (seed 002)', () => {
    const d = daxMachine();
    const { addr, vma } = mapDax(d, 64 * K);
    touch(d, addr);
    const r = rangeA(4);
    r.vma = vma;
    r.start = addr;
    r.end = addr + 4 * PAGE;
    expect(hmm_vma_get_pfns(d.k, r)).toBe(-EINVAL);
    expect([...r.pfns]).toEqual([SPECIAL, SPECIAL, SPECIAL, SPECIAL]);
  });

  it('F-DAX-1: devmap PTEs are reported with their pmem pfns; one cached pgmap reference per table, back to idle after', () => {
    const d = daxMachine();
    const { f, addr } = mapDax(d, 64 * K);
    // Unaligned accesses fault the page they fall in.
    for (let i = 0; i < 16; i++) touch(d, addr + i * PAGE + 123 * i, i % 2 === 0);
    const ptep = lookup_pte(d.k, d.mm, addr);
    expect(pte_devmap(d.k.pt.entries[ptep]!)).toBe(true);
    const ref = d.pmem.pmem!.pgmap!.ref!;
    const idle = ref.count;
    const seen = watchRef(ref);
    const r = register(d, addr, 16);
    expect(hmm_range_snapshot(d.k, r)).toBe(16);
    const pfn = f.f_inode.dax_pfn;
    expect(pfn).toBe(PMEM_START / PAGE);
    // A shared writable mapping's vm_page_prot is writable: read faults map RW too.
    for (let i = 0; i < 16; i++) expect(r.pfns[i]).toBe(entA(pfn + i, VALID, WRITE));
    // get_dev_pagemap per pfn, cached: one reference for the whole PTE table.
    expect(seen).toEqual([idle + 1, idle]);
    expect(ref.count).toBe(idle);
    hmm_range_unregister(r);
  });

  it('F-DAX-1: devmap PMDs give every sub-page from the huge pfn, a reference taken and dropped per PMD', () => {
    const d = daxMachine();
    const { f, addr } = mapDax(d, 4 * M, 2 * M);
    touch(d, addr);
    touch(d, addr + 2 * M, false);
    const pmd = d.k.pt.entries[pmd_alloc(d.k, d.mm, addr)]!;
    expect(pmd_devmap(pmd)).toBe(true);
    const ref = d.pmem.pmem!.pgmap!.ref!;
    const idle = ref.count;
    const seen = watchRef(ref);
    const r = register(d, addr, 1024);
    expect(hmm_range_snapshot(d.k, r)).toBe(1024);
    const pfn = f.f_inode.dax_pfn;
    for (let i = 0; i < 512; i++) expect(r.pfns[i]).toBe(entA(pfn + i, VALID, WRITE));
    for (let i = 512; i < 1024; i++) expect(r.pfns[i]).toBe(entA(pfn + i, VALID, WRITE));
    expect(seen).toEqual([idle + 1, idle, idle + 1, idle]);
    hmm_range_unregister(r);
  });

  it('F-DAX-1: a 1 GiB devmap PUD is reported page by page from its pfn', () => {
    const d = daxMachine();
    const { f, addr } = mapDax(d, G, G);
    touch(d, addr + 5 * M);
    const pud = d.k.pt.entries[pud_alloc(d.k, d.mm, addr)]!;
    expect(pmd_devmap(pud)).toBe(true);
    const ref = d.pmem.pmem!.pgmap!.ref!;
    const idle = ref.count;
    const n = G / PAGE;
    const r = register(d, addr, n);
    expect(hmm_range_snapshot(d.k, r)).toBe(n);
    const pfn = f.f_inode.dax_pfn;
    expect(pfn % n).toBe(0);
    expect(r.pfns[0]).toBe(entA(pfn, VALID, WRITE));
    expect(r.pfns[12345]).toBe(entA(pfn + 12345, VALID, WRITE));
    expect(r.pfns[n - 1]).toBe(entA(pfn + n - 1, VALID, WRITE));
    expect(ref.count).toBe(idle);
    hmm_range_unregister(r);
  });

  it('F-DAX-1: hmm_range_fault maps an untouched DAX file and the device table stays coherent', () => {
    const d = daxMachine();
    const { f, addr } = mapDax(d, 4 * M, 2 * M);
    const r = register(d, addr, 1024);
    r.pfns.fill(A_FLAGS[VALID] + A_FLAGS[WRITE]);
    expect(hmm_range_fault(d.k, r, true)).toBe(1024);
    expect(r.pfns[700]).toBe(entA(f.f_inode.dax_pfn + 700, VALID, WRITE));
    d.m.commit(d.k, r);
    hmm_range_unregister(r);
    expect(check_mirror_coherence(d.k, [d.m])).toEqual([]);
  });

  it('F-DAX-1: -EBUSY when the pgmap is dying (removal waiting on a pinned page)', () => {
    const d = daxMachine();
    const { f, addr } = mapDax(d, 64 * K);
    touch(d, addr);
    const page = d.k.mem.pfn_to_page(f.f_inode.dax_pfn + 3);
    get_page(d.k, page);
    const removed = removeDevice(d.k, d.pmem);
    const ref = d.pmem.pmem!.pgmap!.ref!;
    expect(ref.dead).toBe(true);
    expect(removed.done).toBe(false);
    expect(d.pmem.pmem!.pgmap!.released.done).toBe(false);
    const r = register(d, addr, 4);
    expect(hmm_range_snapshot(d.k, r)).toBe(-EBUSY);
    // The 2019 fault retries -EBUSY while the range is valid; the lab stops the livelock.
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_range_fault(d.k, r, true)).toBe(-EBUSY);
    expect(warnings(d.k).some((w) => w.includes('keeps retrying'))).toBe(true);
    expect([...r.pfns]).toEqual([NONE, NONE, NONE, NONE]);
    hmm_range_unregister(r);
    put_page(d.k, page);
    expect(d.pmem.pmem!.pgmap!.released.done).toBe(true);
  });
});

describe('F-DAX-2: special PTEs and non-devmap huge PUDs', () => {
  it('F-DAX-2: a pte_special PTE that is not devmap reports SPECIAL; snapshot stops there, fault fails -EFAULT', () => {
    const d = daxMachine();
    const addr = do_mmap(d.k, d.mm, { len: 4 * PAGE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    touch(d, addr);
    // A special mapping of a pfn (remap_pfn_range style), crafted in a plain vma.
    const ptep = pte_alloc_map(d.k, d.mm, pmd_alloc(d.k, d.mm, addr + 2 * PAGE), addr + 2 * PAGE);
    d.k.pt.entries[ptep] = pte_mkspecial(pfn_pte(PMEM_START / PAGE + 77, _PAGE_PRESENT | _PAGE_USER));
    const r = register(d, addr, 4);
    r.pfns.fill(0x99);
    expect(hmm_range_snapshot(d.k, r)).toBe(2);
    expect(r.pfns[2]).toBe(SPECIAL);
    expect(r.pfns[3]).toBe(0x99);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_range_fault(d.k, r, true)).toBe(-EFAULT);
    hmm_range_unregister(r);
  });

  it('F-DAX-2: the zero page, special on x86, is mirrored as a valid read-only page (the lab follows the later zero-page fix, not seed 004)', () => {
    const d = daxMachine();
    const addr = do_mmap(d.k, d.mm, { len: PAGE, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS });
    touch(d, addr, false);
    const r = register(d, addr, 1);
    expect(hmm_range_snapshot(d.k, r)).toBe(1);
    expect(r.pfns[0]).toBe(entA(d.k.zero_pfn, VALID));
    hmm_range_unregister(r);
  });

  it('F-DAX-2: a huge PUD that is not devmap is split (invalidating its 1 GiB) and the range walked by PMD', () => {
    const d = daxMachine();
    const addr = do_mmap(d.k, d.mm, { len: G, prot: RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, align: G });
    const pudp = pud_alloc(d.k, d.mm, addr);
    d.k.pt.entries[pudp] = pte_mkhuge(
      pfn_pte(PMEM_START / PAGE, _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED),
    );
    expect(pudp).toBe(pud_offset(d.k, pgd_offset(d.k, d.mm, addr), addr));
    const trace = recordTrace(d.k);
    const r = register(d, addr + 4 * M, 4);
    r.pfns.fill(A_FLAGS[VALID]);
    expect(hmm_range_fault(d.k, r, true)).toBe(4);
    expect(trace).toContainEqual({
      name: 'mmu_notifier_invalidate_range_start',
      mm: d.mm.id,
      start: addr,
      end: addr + G,
      event: 'split',
    });
    expect(d.m.updates).toContainEqual({
      start: addr,
      end: addr + G,
      event: HMM_UPDATE_INVALIDATE,
      blockable: true,
    });
    // After the split the hole was faulted at PTE level and walked through the PMD.
    expect(pte_none(d.k.pt.entries[pudp]!)).toBe(false);
    expect(pmd_devmap(d.k.pt.entries[pudp]!)).toBe(false);
    expect([...r.pfns]).toEqual([0, 1, 2, 3].map(() => entA(d.k.zero_pfn, VALID)));
    hmm_range_unregister(r);
  });
});
