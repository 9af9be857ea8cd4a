// mm/debug_vm.c in spirit (CONFIG_DEBUG_VM): consistency checks a kernel developer turns
// on to catch a bug where it happens rather than where it corrupts memory. Here: every
// HMM mirror's device page table must stay a subset of the CPU page table it mirrors.
// A device PTE whose CPU PTE changed without the mirror dropping it means the driver's
// sync_cpu_device_pagetables (or release) did not do its job: the device can then read
// or write a page the process no longer owns.
import type { Kernel } from '../kernel';
import type { mm_struct } from '../include/mm_types';
import { pmd_huge, pte_none, pte_pfn, pte_present, pte_protnone, pte_write } from '../include/pgtable';
import {
  is_device_private_entry,
  is_write_device_private_entry,
  pte_to_swp_entry,
  swp_offset,
} from '../include/swapops';
import type { hmm, hmm_mirror } from './hmm_mirror';
import { pgd_offset, pmd_offset, pte_offset_map, pud_offset } from './pgtable';

/** One entry of a device page table: the device maps `addr` to `pfn`, writable or not. */
export interface mirror_pte {
  addr: number;
  pfn: number;
  write: boolean;
}

/**
 * What a mirror offers the checker: the name of its driver and a dump of its device page
 * table. A driver opts in by giving its hmm_mirror these two members.
 */
export interface mirror_dump {
  readonly driver: string;
  dump(): Iterable<mirror_pte>;
}

export function mirror_is_dumpable(mirror: hmm_mirror): mirror is hmm_mirror & mirror_dump {
  const m = mirror as Partial<mirror_dump>;
  return typeof m.dump === 'function' && typeof m.driver === 'string';
}

/** What the CPU maps at addr: the pfn and write permission, or why it maps nothing there. */
export type cpu_view =
  | { kind: 'page'; pfn: number; write: boolean }
  | { kind: 'device'; pfn: number; write: boolean }
  | { kind: 'none'; why: string };

const hex = (n: number): string => `0x${n.toString(16)}`;

/** Read the CPU page table of mm at addr (no faulting, no accessed bits). */
export function cpu_view_of(k: Kernel, mm: mm_struct, addr: number): cpu_view {
  const none = (why: string): cpu_view => ({ kind: 'none', why });
  if (mm.pgd < 0) return none('has no page table');
  const e = k.pt.entries;
  const pgd = pgd_offset(k, mm, addr);
  if (pte_none(e[pgd]!)) return none('has no mapping there');
  const pud = pud_offset(k, pgd, addr);
  let entry = e[pud]!;
  let span = k.c.PUD_SIZE;
  if (!pte_none(entry) && !pmd_huge(entry)) {
    const pmd = pmd_offset(k, pud, addr);
    entry = e[pmd]!;
    span = k.c.PMD_SIZE;
    if (!pte_none(entry) && !pmd_huge(entry)) {
      entry = e[pte_offset_map(k, pmd, addr)]!;
      span = k.c.PAGE_SIZE;
    }
  }
  if (pte_none(entry)) return none('has no mapping there');
  if (!pte_present(entry)) {
    const swp = pte_to_swp_entry(entry);
    if (span === k.c.PAGE_SIZE && is_device_private_entry(k, swp))
      return { kind: 'device', pfn: swp_offset(swp), write: is_write_device_private_entry(k, swp) };
    return none(`has a non-present entry ${hex(entry)} there`);
  }
  if (pte_protnone(entry)) return none('maps it PROT_NONE');
  const pfn = pte_pfn(entry) + Math.floor((addr % span) / k.c.PAGE_SIZE);
  return { kind: 'page', pfn, write: pte_write(entry) };
}

/** Why a device PTE is not backed by the CPU's, or null when it is. */
export function mirror_pte_incoherence(k: Kernel, mm: mm_struct, pte: mirror_pte): string | null {
  const cpu = cpu_view_of(k, mm, pte.addr);
  if (cpu.kind === 'none') return cpu.why;
  const what = cpu.kind === 'device' ? 'device entry of pfn' : 'pfn';
  if (cpu.pfn !== pte.pfn) return `maps ${what} ${hex(cpu.pfn)} there`;
  if (pte.write && !cpu.write) return `maps ${what} ${hex(cpu.pfn)} read-only`;
  return null;
}

/** Every mirror of every live task's address space. */
function all_mirrors(k: Kernel): hmm_mirror[] {
  const seen = new Set<mm_struct>();
  const out: hmm_mirror[] = [];
  for (const task of k.tasks.values()) {
    const mm = task.mm;
    if (!mm || seen.has(mm)) continue;
    seen.add(mm);
    const h = mm.hmm as hmm | null;
    if (h) out.push(...h.mirrors);
  }
  return out;
}

/**
 * check_mirror_coherence: every device PTE of every dumpable mirror (those given, or
 * every mirror of every live address space) must point at the page the CPU page table
 * maps at that address, with at least its rights; a device-private pfn must match the
 * CPU's device entry. Returns one "BUG:" report per violation, naming the driver and the
 * callback that should have dropped the entry.
 */
export function check_mirror_coherence(k: Kernel, mirrors?: Iterable<hmm_mirror>): string[] {
  const reports: string[] = [];
  for (const mirror of mirrors ?? all_mirrors(k)) {
    if (!mirror_is_dumpable(mirror)) continue;
    const h = mirror.hmm;
    const mm = h?.mm ?? null;
    const released = h !== null && mm !== null && (mm.dying || !h.mirrors.includes(mirror));
    for (const pte of mirror.dump()) {
      const head = (): string =>
        `BUG: mirror ${mirror.driver} maps ${hex(pte.addr)} -> pfn ${hex(pte.pfn)}${pte.write ? ' (write)' : ''}`;
      if (!h) {
        reports.push(`${head()} but is not registered (hmm_mirror_unregister without dropping it)`);
        continue;
      }
      if (!mm) continue; // a racing unregister owns the hmm
      if (released) {
        reports.push(`${head()} but mm${mm.id} is exiting (release did not stop the device)`);
        continue;
      }
      const why = mirror_pte_incoherence(k, mm, pte);
      if (why) reports.push(`${head()} but the CPU ${why} (sync_cpu_device_pagetables did not invalidate)`);
    }
  }
  return reports;
}

/**
 * The debug mode: check every mirror once each invalidation has ended and when an
 * address space is released, printing each report at KERN_ERR. Returns the switch-off.
 */
export function debug_vm_check_mirrors(k: Kernel, mirrors?: () => Iterable<hmm_mirror>): () => void {
  return k.trace.subscribe(() => {
    for (const report of check_mirror_coherence(k, mirrors?.())) k.printk('err', report);
  }, ['mmu_notifier_invalidate_range_end', 'mmu_notifier_release']);
}
