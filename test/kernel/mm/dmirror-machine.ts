// A small machine with a dmirror device (256 MiB of device private memory), and the
// process-side probes the migration tests share.
import { expect } from 'vitest';
import { G, M, bootSmall } from '../helpers';
import type { Kernel } from '../../../src-main/kernel/kernel';
import { probeDevice, type BoundDevice } from '../../../src-main/drivers/builtin';
import type { dmirror_device } from '../../../src-main/drivers/dmirror';
import { spawn_task } from '../../../src-main/kernel/kernel/fork';
import type { task_struct } from '../../../src-main/kernel/include/sched';
import {
  do_mmap,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
  vma_lookup,
} from '../../../src-main/kernel/mm/mmap';
import { lookup_pte } from '../../../src-main/kernel/mm/pgtable';
import { load_stamp, store_stamp } from '../../../src-main/kernel/arch/x86/lib/usercopy';
import {
  device_entry_to_page,
  is_device_entry,
  is_swap_pte,
  pte_to_swp_entry,
} from '../../../src-main/kernel/include/swapops';
import { MM_ANONPAGES, type vm_area_struct } from '../../../src-main/kernel/include/mm_types';
import { pte_pfn, pte_present } from '../../../src-main/kernel/include/pgtable';

export const PS = 4096;

export interface DmirrorMachine {
  k: Kernel;
  bound: BoundDevice;
  d: dmirror_device;
}

export function bootDmirror(deviceBytes = 256 * M, ram = G): DmirrorMachine {
  const k = bootSmall({ ram: [{ start: 0, size: ram }], expectedDeviceBytes: deviceBytes });
  const bound = probeDevice(k, { name: 'gpu0', kind: 'private', memory: deviceBytes, driver: 'dmirror' });
  if (typeof bound === 'number') throw new Error(`probe failed: ${bound}`);
  return { k, bound, d: bound.dmirror! };
}

export function task(k: Kernel, comm = 'hmm-tests'): task_struct {
  return spawn_task(k, comm);
}

/** mmap(NULL, npages pages, prot, MAP_PRIVATE | MAP_ANONYMOUS). */
export function mapAnon(k: Kernel, t: task_struct, npages: number, prot = PROT_READ | PROT_WRITE): number {
  const addr = do_mmap(k, t.mm!, { len: npages * PS, prot, flags: MAP_PRIVATE | MAP_ANONYMOUS });
  if (addr < 0) throw new Error(`mmap failed: ${addr}`);
  return addr;
}

export function vmaAt(t: task_struct, addr: number): vm_area_struct {
  return vma_lookup(t.mm!, addr)!;
}

/** The raw PTE value at addr (0 when no table covers it). */
export function pteAt(k: Kernel, t: task_struct, addr: number): number {
  const ptep = lookup_pte(k, t.mm!, addr);
  return ptep < 0 ? 0 : k.pt.entries[ptep]!;
}

/** The device page a device entry at addr points at, or -1. */
export function devicePageAt(k: Kernel, t: task_struct, addr: number): number {
  const pte = pteAt(k, t, addr);
  if (!is_swap_pte(pte)) return -1;
  const e = pte_to_swp_entry(pte);
  return is_device_entry(k, e) ? device_entry_to_page(k, e) : -1;
}

/** The page a present PTE at addr maps, or -1. */
export function presentPageAt(k: Kernel, t: task_struct, addr: number): number {
  const pte = pteAt(k, t, addr);
  return pte_present(pte) ? k.mem.pfn_to_page(pte_pfn(pte)) : -1;
}

/** Store stamp base + i in page i (a CPU write per page). */
export function storePattern(k: Kernel, t: task_struct, addr: number, npages: number, base: number): void {
  for (let i = 0; i < npages; i++) expect(store_stamp(k, t, addr + i * PS, base + i)).toBeTypeOf('number');
}

/** What the CPU loads from each page (a stamp, or the signal). */
export function loadAll(k: Kernel, t: task_struct, addr: number, npages: number): (number | string)[] {
  const out: (number | string)[] = [];
  for (let i = 0; i < npages; i++) out.push(load_stamp(k, t, addr + i * PS));
  return out;
}

export function pattern(npages: number, base: number): number[] {
  return Array.from({ length: npages }, (_, i) => base + i);
}

export function anonRss(t: task_struct): number {
  return t.mm!.rss_stat[MM_ANONPAGES]!;
}
