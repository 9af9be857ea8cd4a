// Probes for the address-space tests: processes, user accesses, page-table reads and a
// hand-made device entry, all through the kernel's own functions.
import { expect } from 'vitest';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { IS_ERR } from '../../../src-main/kernel/include/errno';
import { get_page } from '../../../src-main/kernel/include/mm';
import {
  get_mm_counter,
  MM_ANONPAGES,
  MM_FILEPAGES,
  MM_SHMEMPAGES,
  MM_SWAPENTS,
  type mm_struct,
  type vm_area_struct,
} from '../../../src-main/kernel/include/mm_types';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import {
  make_device_entry,
  make_migration_entry,
  pte_swp_mksoft_dirty,
  swp_entry_to_pte,
} from '../../../src-main/kernel/include/swapops';
import { spawn_task } from '../../../src-main/kernel/kernel/fork';
import { copy_from_user, copy_to_user } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import { hmm_devmem_add, type hmm_devmem } from '../../../src-main/kernel/mm/hmm';
import { device } from '../../../src-main/kernel/drivers/base/core';
import {
  do_mmap,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  vma_lookup,
  type MmapRequest,
} from '../../../src-main/kernel/mm/mmap';
import { lookup_pte, pmd_alloc, pte_alloc_map } from '../../../src-main/kernel/mm/pgtable';
import { add_rss, pmd_lookup } from '../../../src-main/kernel/mm/memory';
import { page_add_new_anon_rmap } from '../../../src-main/kernel/mm/rmap';
import { find_or_create_page, shmem_file_setup } from '../../../src-main/kernel/mm/filemap';
import type { file } from '../../../src-main/kernel/fs/file';
import { M, recordingOps } from '../helpers';

export const RW = PROT_READ | PROT_WRITE;
export const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

export function nr_free_pages(k: Kernel): number {
  return k.node.node_zones.reduce((n, z) => n + z.nr_free_pages, 0);
}

export function rss(mm: mm_struct): { file: number; anon: number; swapents: number; shmem: number } {
  return {
    file: get_mm_counter(mm, MM_FILEPAGES),
    anon: get_mm_counter(mm, MM_ANONPAGES),
    swapents: get_mm_counter(mm, MM_SWAPENTS),
    shmem: get_mm_counter(mm, MM_SHMEMPAGES),
  };
}

export function spawn(k: Kernel, comm = 'p'): task_struct {
  return spawn_task(k, comm);
}

/** mmap that must succeed. */
export function map(k: Kernel, task: task_struct, req: Partial<MmapRequest> & { len: number }): number {
  const addr = do_mmap(k, task.mm!, { prot: RW, flags: ANON, ...req });
  if (IS_ERR(addr)) throw new Error(`mmap failed: ${addr}`);
  return addr;
}

export function vma(task: task_struct, addr: number): vm_area_struct {
  const v = vma_lookup(task.mm!, addr);
  if (!v) throw new Error(`no vma at 0x${addr.toString(16)}`);
  return v;
}

/** A store that must not fault fatally. */
export function store(k: Kernel, task: task_struct, addr: number, bytes: number[] | Uint8Array): void {
  expect(copy_to_user(k, task, addr, Uint8Array.from(bytes))).toBeNull();
}

/** A load that must not fault fatally. */
export function load(k: Kernel, task: task_struct, addr: number, len: number): number[] {
  const out = new Uint8Array(len);
  expect(copy_from_user(k, task, addr, out)).toBeNull();
  return [...out];
}

/** The signal a store ends with, or null. */
export function storeSignal(k: Kernel, task: task_struct, addr: number, byte = 1): string | null {
  return copy_to_user(k, task, addr, Uint8Array.of(byte))?.signal ?? null;
}

export function loadSignal(k: Kernel, task: task_struct, addr: number): string | null {
  return copy_from_user(k, task, addr, new Uint8Array(1))?.signal ?? null;
}

/** The PTE mapping addr (0 when no table covers it). */
export function pteAt(k: Kernel, mm: mm_struct, addr: number): number {
  const ptep = lookup_pte(k, mm, addr);
  return ptep < 0 ? 0 : k.pt.entries[ptep]!;
}

/** The PMD entry covering addr (0 when none). */
export function pmdAt(k: Kernel, mm: mm_struct, addr: number): number {
  const pmd = pmd_lookup(k, mm, addr);
  return pmd < 0 ? 0 : k.pt.entries[pmd]!;
}

/** The page mapped at addr (the MMU's view), or -1. */
export function pageAt(k: Kernel, mm: mm_struct, addr: number): number {
  const pte = pteAt(k, mm, addr);
  return pte && (pte % 4096) & 0x101 ? k.mem.pfn_to_page(Math.floor(pte / 4096)) : -1;
}

/** A tmpfs file of `pages` pages whose page i holds bytes [fill + i, fill + i, ...]. */
export function tmpfsFile(k: Kernel, name: string, pages: number, fill: number): file {
  const f = shmem_file_setup(k, name, pages * k.c.PAGE_SIZE);
  for (let i = 0; i < pages; i++)
    k.contents.kmap(find_or_create_page(k, f.f_mapping, i), k.c.PAGE_SIZE).fill(fill + i);
  return f;
}

/** A device-private memory region (hmm_devmem) of 128 MiB. */
export function deviceMemory(k: Kernel): hmm_devmem {
  const devmem = hmm_devmem_add(k, recordingOps(), new device('gpu0'), 128 * M);
  if (IS_ERR(devmem)) throw new Error(`hmm_devmem_add failed: ${devmem}`);
  return devmem;
}

/**
 * Put a device entry for an un-addressable page at addr of an anonymous vma, as a
 * migration to the device leaves it: the page referenced, anon-mapped at addr, counted
 * in rss. Returns the PTE slot.
 */
export function installDeviceEntry(
  k: Kernel,
  task: task_struct,
  addr: number,
  page: number,
  write: boolean,
  softDirty: boolean,
): number {
  const mm = task.mm!;
  const ptep = pte_alloc_map(k, mm, pmd_alloc(k, mm, addr), addr);
  expect(k.pt.entries[ptep]).toBe(0);
  get_page(k, page);
  page_add_new_anon_rmap(k, page, vma(task, addr), addr);
  add_rss(k, mm, MM_ANONPAGES, 1);
  const pte = swp_entry_to_pte(make_device_entry(k, page, write));
  k.pt.entries[ptep] = softDirty ? pte_swp_mksoft_dirty(pte) : pte;
  return ptep;
}

/** Replace the present PTE at addr by a migration entry for its page, as migration does. */
export function installMigrationEntry(k: Kernel, mm: mm_struct, addr: number, write: boolean): number {
  const ptep = lookup_pte(k, mm, addr);
  const page = k.mem.pfn_to_page(Math.floor(k.pt.entries[ptep]! / 4096));
  k.pt.entries[ptep] = pte_swp_mksoft_dirty(swp_entry_to_pte(make_migration_entry(k, page, write)));
  return ptep;
}
