// A small mirroring device driver for the HMM tests: a device page table (address -> pfn,
// write) kept in step with the CPU through sync_cpu_device_pagetables, filled with the
// documented retry loops of both range APIs, and dumpable for check_mirror_coherence.
import type { Kernel } from '../../../src-main/kernel/kernel';
import {
  HMM_PFN_DEVICE_PRIVATE,
  HMM_PFN_VALID,
  HMM_PFN_WRITE,
  hmm_mirror,
  hmm_pfn_to_pfn,
  hmm_range,
  hmm_range_fault,
  hmm_range_register,
  hmm_range_unregister,
  hmm_range_valid,
  hmm_range_wait_until_valid,
  hmm_vma_fault,
  hmm_vma_get_pfns,
  hmm_vma_range_done,
  type hmm_update,
} from '../../../src-main/kernel/mm/hmm_mirror';
import type { mirror_dump, mirror_pte } from '../../../src-main/kernel/mm/debug_vm';
import { EAGAIN, EBUSY } from '../../../src-main/kernel/include/errno';
import { MM_ANONPAGES, type mm_struct, type vm_area_struct } from '../../../src-main/kernel/include/mm_types';
import { get_page } from '../../../src-main/kernel/include/mm';
import { make_device_entry, swp_entry_to_pte } from '../../../src-main/kernel/include/swapops';
import { pmd_alloc, pte_alloc_map } from '../../../src-main/kernel/mm/pgtable';
import { page_add_new_anon_rmap } from '../../../src-main/kernel/mm/rmap';
import { add_rss } from '../../../src-main/kernel/mm/memory';
import { find_vma } from '../../../src-main/kernel/mm/mmap';

/** Driver A's encoding (nouveau-like): flags in the low bits, pfn from bit 3. */
export const A_FLAGS = [1, 2, 4] as const;
export const A_VALUES = [0x10, 0, 0x20] as const; // ERROR, NONE, SPECIAL
export const A_SHIFT = 3;

export function rangeA(npages: number): hmm_range {
  return new hmm_range(new Float64Array(npages), A_FLAGS, A_VALUES, A_SHIFT);
}

/** The entry driver A expects for a pfn with the given flags. */
export function entA(pfn: number, ...flags: number[]): number {
  return pfn * 2 ** A_SHIFT + flags.reduce((s, f) => s + A_FLAGS[f]!, 0);
}

export const VALID = HMM_PFN_VALID;
export const WRITE = HMM_PFN_WRITE;
export const DEVICE_PRIVATE = HMM_PFN_DEVICE_PRIVATE;

export interface TestMirrorOpts {
  /** Ignore sync_cpu_device_pagetables (a buggy driver). */
  ignoreSync?: boolean;
  /** What sync_cpu_device_pagetables answers (-EAGAIN: "would have to sleep"). */
  answer?: number;
  /** Called from release, after the device table is dropped. */
  onRelease?: (m: TestMirror) => void;
}

export class TestMirror extends hmm_mirror implements mirror_dump {
  /** The device page table. */
  readonly pt = new Map<number, { pfn: number; write: boolean }>();
  readonly updates: hmm_update[] = [];
  releases = 0;

  constructor(
    readonly driver: string,
    readonly opts: TestMirrorOpts = {},
  ) {
    super(null);
    this.ops = {
      sync_cpu_device_pagetables: (mirror, update) => {
        const m = mirror as TestMirror;
        m.updates.push({ ...update });
        if (!m.opts.ignoreSync)
          for (const addr of [...m.pt.keys()])
            if (addr >= update.start && addr < update.end) m.pt.delete(addr);
        return m.opts.answer ?? 0;
      },
      release: (mirror) => {
        const m = mirror as TestMirror;
        m.releases++;
        m.pt.clear();
        m.opts.onRelease?.(m);
      },
    };
  }

  *dump(): Iterable<mirror_pte> {
    for (const [addr, e] of this.pt) yield { addr, pfn: e.pfn, write: e.write };
  }

  /** Put the valid entries of a range in the device page table (under the device lock). */
  commit(k: Kernel, range: hmm_range): void {
    const ps = range.page_shift ? 2 ** range.page_shift : k.c.PAGE_SIZE;
    for (let i = 0; i < range.pfns.length; i++) {
      const v = range.pfns[i]!;
      const pfn = hmm_pfn_to_pfn(range, v);
      const addr = range.start + i * ps;
      if (pfn < 0) this.pt.delete(addr);
      else this.pt.set(addr, { pfn, write: ((v % 2 ** range.pfn_shift) & range.flags[WRITE]!) !== 0 });
    }
  }
}

/** A request for npages: VALID, plus WRITE when asked. */
function request(range: hmm_range, write: boolean): void {
  range.pfns.fill(range.flags[VALID]! + (write ? range.flags[WRITE]! : 0));
}

/**
 * A device fault with the 2017 API and its documented loop: fault, take the device lock,
 * hmm_vma_range_done, retry if invalidated meanwhile, else commit. Returns 0 or -errno,
 * and the number of attempts.
 */
export function device_fault_2017(
  k: Kernel,
  m: TestMirror,
  mm: mm_struct,
  addr: number,
  npages: number,
  write: boolean,
): { ret: number; tries: number; range: hmm_range } {
  const range = rangeA(npages);
  for (let tries = 1; ; tries++) {
    const vma = find_vma(mm, addr);
    if (!vma) return { ret: -14, tries, range };
    range.vma = vma;
    range.start = addr;
    range.end = addr + npages * k.c.PAGE_SIZE;
    request(range, write);
    const ret = hmm_vma_fault(k, range, true);
    if (ret === -EAGAIN) continue;
    if (ret) return { ret, tries, range };
    if (!hmm_vma_range_done(k, range)) continue;
    m.commit(k, range);
    return { ret: 0, tries, range };
  }
}

/** A snapshot with the 2017 API (hmm_vma_get_pfns + range_done), committed when still valid. */
export function device_snapshot_2017(
  k: Kernel,
  m: TestMirror,
  vma: vm_area_struct,
  addr: number,
  npages: number,
): { ret: number; valid: boolean; range: hmm_range } {
  const range = rangeA(npages);
  range.vma = vma;
  range.start = addr;
  range.end = addr + npages * k.c.PAGE_SIZE;
  const ret = hmm_vma_get_pfns(k, range);
  if (ret) return { ret, valid: false, range };
  const valid = hmm_vma_range_done(k, range);
  if (valid) m.commit(k, range);
  return { ret, valid, range };
}

/**
 * A device fault with the 2019 API: register the range, wait until valid, fault, take
 * the device lock and commit only while hmm_range_valid. Returns the pages faulted or
 * -errno, and the number of attempts.
 */
export function device_fault_2019(
  k: Kernel,
  m: TestMirror,
  addr: number,
  npages: number,
  write: boolean,
  page_shift = k.c.PAGE_SHIFT,
): { ret: number; tries: number; range: hmm_range } {
  const range = rangeA(npages);
  let ret = hmm_range_register(k, range, m, addr, addr + npages * 2 ** page_shift, page_shift);
  if (ret) return { ret, tries: 0, range };
  for (let tries = 1; tries < 100; tries++) {
    if (!hmm_range_wait_until_valid(range)) continue;
    request(range, write);
    ret = hmm_range_fault(k, range, true);
    if (ret === -EAGAIN || ret === -EBUSY) continue;
    if (ret < 0) break;
    if (!hmm_range_valid(range)) continue;
    m.commit(k, range);
    hmm_range_unregister(range);
    return { ret, tries, range };
  }
  hmm_range_unregister(range);
  return { ret, tries: 100, range };
}

/**
 * Map a device-private page at addr by hand, as a migration to the device would leave it:
 * a device entry (write or read), the page pinned and counted like an anonymous page.
 */
export function install_device_entry(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  page: number,
  write: boolean,
): void {
  const mm = vma.vm_mm;
  const ptep = pte_alloc_map(k, mm, pmd_alloc(k, mm, addr), addr);
  get_page(k, page);
  page_add_new_anon_rmap(k, page, vma, addr);
  add_rss(k, mm, MM_ANONPAGES, 1);
  k.pt.entries[ptep] = swp_entry_to_pte(make_device_entry(k, page, write));
}
