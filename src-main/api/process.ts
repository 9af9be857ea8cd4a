// Processes as the lab reports them: their address spaces, rss counters over simulated
// time and the page-table entries behind a mapping. Addresses are lowercase hex strings
// (user addresses reach 2^47 and the contract is JSON); counts are in pages.
import type { WorkloadCounters } from './run';

/** The rss counters of an mm (mm->rss_stat), in pages. */
export interface RssCounters {
  file: number;
  anon: number;
  swapents: number;
  shmem: number;
}

export type RssCounter = keyof RssCounters;

/** One vm_area_struct. */
export interface VmaInfo {
  start: string;
  end: string;
  /** As /proc/PID/maps prints them: "rw-p", "r--s", "---p". */
  perms: string;
  /** The scenario's mapping name ("" when the area has none). */
  name: string;
  /** The file it maps, absent for anonymous memory. */
  file?: string;
  pages: number;
  /** Flags beyond the permissions worth showing: "hugetlb", "hugepage", "nohugepage". */
  flags: string[];
}

/** A fatal signal the kernel delivered to the process (force_sig). */
export interface SignalInfo {
  sig: string;
  addr: string;
}

export interface ProcessInfo {
  pid: number;
  /** The scenario's name for the process. */
  name: string;
  rss: RssCounters;
  vmas: VmaInfo[];
  signals: SignalInfo[];
  /** Page-table pages in use. */
  ptes: number;
}

/**
 * What one page-table entry holds, read from the kernel's page tables:
 * - none: empty entry
 * - present: a normal page mapped by a present PTE
 * - zero: the shared zero page (or huge zero page), after a read fault of anonymous memory
 * - device-private: a device entry, the page lives in un-addressable device memory
 * - migration: a migration entry, the page is being moved
 * - devmap: a ZONE_DEVICE pfn mapped directly (DAX, public device memory)
 * - huge: part of a PMD- or PUD-mapped huge page
 * - swap: a swap entry of a swap device
 * - bad: an entry that must not exist (a present PTE of an un-addressable page, a hwpoison entry)
 */
export type PteState =
  'none' | 'present' | 'zero' | 'device-private' | 'migration' | 'devmap' | 'huge' | 'swap' | 'bad';

export interface PageTableRow {
  addr: string;
  /** The level whose entry maps this page: 'pte', or 'pmd'/'pud' for a huge leaf. */
  level: 'pte' | 'pmd' | 'pud';
  state: PteState;
  write: boolean;
  dirty: boolean;
  softDirty: boolean;
  young: boolean;
  /** The page frame this address reaches (device pfn for device and migration entries). */
  pfn?: number;
  /** The struct page's counts (the head page's for a compound page). */
  refcount?: number;
  mapcount?: number;
  /** The device owning a ZONE_DEVICE pfn. */
  device?: string;
}

/** Answer to a `pageTable` request: rows for consecutive pages of one vma. */
export interface PageTableView {
  proc: string;
  pid: number;
  /** null when the process has no vma at all. */
  vma: VmaInfo | null;
  /** Address of the first row. */
  start: string;
  /** Page index of the first row within the vma. */
  offset: number;
  rows: PageTableRow[];
}

/** One process's rss counters over simulated time: [t_ns, pages] points, a step function. */
export interface RssSeries {
  proc: string;
  pid: number;
  exited: boolean;
  points: Record<RssCounter, [number, number][]>;
}

/** A summary of bytes read by `load` or `check`: the full data stays in the lab. */
export interface DataSummary {
  bytes: number;
  /** The first int32 values (little endian), at most 16. */
  head: number[];
}

/**
 * The result of one scenario step (../shared/design/SCENARIOS.md). `ret` is 0, a number
 * returned by a driver, or the kernel error name ("-EINVAL").
 */
export interface OpResult extends Partial<WorkloadCounters> {
  op: string;
  ret?: number | string;
  addr?: string;
  /** The fatal signal an access ended with, and the address that faulted. */
  signal?: string;
  faultAddr?: string;
  data?: DataSummary;
  rss?: RssCounters;
  smaps?: Record<string, number>;
  pid?: number;
  cpages?: number;
  faults?: number;
  bytes?: number[];
  /** Simulated time when the step finished, in ns. */
  t: number;
}
