// A device's mirror of a process as the lab reports it: the CPU page table and the device
// page table side by side, and the trace of what the mirror went through (registration,
// invalidations, faults, snapshots, retries, commands). Addresses are lowercase hex strings.
import type { PageTableRow, VmaInfo } from './process';

/** What the device's page table holds for one address. */
export interface DeviceEntry {
  pfn: number;
  write: boolean;
  /**
   * Where the page lives: system RAM (`system`), the zero page (`zero`), or device private
   * memory (`device`, with the device's name in `device`).
   */
  memory: 'system' | 'zero' | 'device';
  device?: string;
}

export interface MirrorRow {
  addr: string;
  /** A vma covers the address (false in a hole of the range: unmapped). */
  mapped: boolean;
  /** The CPU's entry, decoded as the page-table inspector does. */
  cpu: PageTableRow;
  /** The device's entry, null when it maps nothing there. */
  dev: DeviceEntry | null;
  /**
   * Why the device entry is not backed by the CPU's (what check_mirror_coherence would
   * report: another pfn, write where the CPU is read-only, nothing mapped); absent when coherent.
   */
  mismatch?: string;
}

/**
 * Answer to a `mirror` request: `pages` rows (default 64, at most 4096) from `offset` pages
 * into the mapping `at`, across vma boundaries and holes.
 */
export interface MirrorView {
  proc: string;
  pid: number;
  device: string;
  /** The process has the device open (a device command needs it). */
  open: boolean;
  /** The driver mirrors the process's mm (hmm_mirror_register done, not yet released). */
  mirrored: boolean;
  /** The vma at the range's first address, null when there is none. */
  vma: VmaInfo | null;
  start: string;
  offset: number;
  rows: MirrorRow[];
  /** Entries in the device's page table for this process, over the whole address space. */
  deviceEntries: number;
  /** check_mirror_coherence's reports for this mirror (empty when it is coherent). */
  reports: string[];
}

export type MirrorEventKind =
  'register' | 'unregister' | 'invalidate' | 'fault' | 'snapshot' | 'retry' | 'command' | 'release';

/**
 * One line of the mirror trace. Consecutive events of one kind over adjacent ranges are
 * coalesced: `count` says how many tracepoints the line stands for.
 */
export interface MirrorEvent {
  seq: number;
  /** Simulated time of the first tracepoint, ns. */
  t: number;
  kind: MirrorEventKind;
  /** The process by its scenario name ("" when the lab does not know it) and its mm id. */
  proc: string;
  mm: number;
  device?: string;
  start?: string;
  end?: string;
  /** The kernel's answer ("0", "-EAGAIN"), for events that have one. */
  ret?: string;
  count: number;
  /** Device page-table entries dropped (invalidate). */
  cleared?: number;
  /** What happened, in one line: "munmap", "read cpages 16 faults 1", "-EBUSY". */
  detail: string;
}
