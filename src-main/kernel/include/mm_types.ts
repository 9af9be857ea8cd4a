// include/linux/mm_types.h and mm.h: address spaces and their areas.
import type { file } from '../fs/file';

// vm_flags (include/linux/mm.h).
export const VM_READ = 0x00000001;
export const VM_WRITE = 0x00000002;
export const VM_EXEC = 0x00000004;
export const VM_SHARED = 0x00000008;
export const VM_MAYREAD = 0x00000010;
export const VM_MAYWRITE = 0x00000020;
export const VM_MAYEXEC = 0x00000040;
export const VM_MAYSHARE = 0x00000080;
export const VM_GROWSDOWN = 0x00000100;
export const VM_PFNMAP = 0x00000400;
export const VM_LOCKED = 0x00002000;
export const VM_IO = 0x00004000;
export const VM_DONTCOPY = 0x00020000;
export const VM_DONTEXPAND = 0x00040000;
export const VM_ACCOUNT = 0x00100000;
export const VM_NORESERVE = 0x00200000;
export const VM_HUGETLB = 0x00400000;
/** Every page of the area reads as soft-dirty in pagemap until clear_refs (new areas start so). */
export const VM_SOFTDIRTY = 0x08000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
/** Areas that are not plain memory: no COW, no migration, no mirroring of struct pages. */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;

// rss counters (mm_counter()).
export const MM_FILEPAGES = 0;
export const MM_ANONPAGES = 1;
export const MM_SWAPENTS = 2;
export const MM_SHMEMPAGES = 3;
export const NR_MM_COUNTERS = 4;

/** The anon_vma of a family of processes: every vma that may map its anonymous pages. */
export class anon_vma {
  readonly vmas = new Set<vm_area_struct>();
  constructor(readonly id: number) {}
}

export class vm_area_struct {
  vm_page_prot = 0;
  vm_file: file | null = null;
  /** Offset of vm_start in the file, in pages (anonymous: vm_start's page index). */
  vm_pgoff = 0;
  anon_vma: anon_vma | null = null;
  /** A name for reports (the scenario's mapping name). */
  name = '';

  constructor(
    public vm_mm: mm_struct,
    public vm_start: number,
    public vm_end: number,
    public vm_flags: number,
  ) {}
}

export function vma_is_anonymous(vma: vm_area_struct): boolean {
  return vma.vm_file === null;
}

/** A private writable mapping: writes copy (do_wp_page), fork write-protects. */
export function is_cow_mapping(flags: number): boolean {
  return (flags & (VM_SHARED | VM_MAYWRITE)) === VM_MAYWRITE;
}

export class mm_struct {
  /** Root page table (index of its node in the kernel's page-table pool). */
  pgd = -1;
  /** VMAs sorted by address, disjoint. */
  mmap: vm_area_struct[] = [];
  readonly rss_stat = new Float64Array(NR_MM_COUNTERS);
  /** Page-table pages in use (mm_pgtables_bytes / PAGE_SIZE). */
  nr_ptes = 0;
  /** Base pages of hugetlb mappings (not part of rss). */
  hugetlb_usage = 0;
  mmap_base = 0;
  /** Set by exit_mmap: the address space is being torn down. */
  dying = false;
  /** mmu notifier subscriptions (the HMM mirror hooks in here). */
  readonly notifiers: mmu_notifier[] = [];
  /** struct hmm, created by the first mirror registration. */
  hmm: unknown = null;
  /** Processes sharing this mm (mm_users). */
  mm_users = 1;

  constructor(readonly id: number) {}
}

export function get_mm_counter(mm: mm_struct, member: number): number {
  return mm.rss_stat[member]!;
}

export function add_mm_counter(mm: mm_struct, member: number, value: number): void {
  mm.rss_stat[member]! += value;
}

/** A range of an address space whose page-table entries are about to change. */
export interface mmu_notifier_range {
  mm: mm_struct;
  start: number;
  end: number;
  /** False when the caller cannot sleep (e.g. the OOM reaper): a subscriber may answer -EAGAIN. */
  blockable: boolean;
  /** What is happening, for traces: "unmap", "protection", "migrate", "fork", "cow", "release". */
  event: string;
}

export interface mmu_notifier_ops {
  release?(mn: mmu_notifier, mm: mm_struct): void;
  invalidate_range_start?(mn: mmu_notifier, range: mmu_notifier_range): number;
  invalidate_range_end?(mn: mmu_notifier, range: mmu_notifier_range): void;
}

export interface mmu_notifier {
  ops: mmu_notifier_ops;
}

// vm_fault_t bits (include/linux/mm_types.h).
export const VM_FAULT_OOM = 0x0001;
export const VM_FAULT_SIGBUS = 0x0002;
export const VM_FAULT_MAJOR = 0x0004;
export const VM_FAULT_WRITE = 0x0008;
export const VM_FAULT_HWPOISON = 0x0010;
export const VM_FAULT_SIGSEGV = 0x0040;
export const VM_FAULT_NOPAGE = 0x0100;
export const VM_FAULT_LOCKED = 0x0200;
export const VM_FAULT_RETRY = 0x0400;
export const VM_FAULT_FALLBACK = 0x0800;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON;

// Fault flags.
export const FAULT_FLAG_WRITE = 0x01;
export const FAULT_FLAG_ALLOW_RETRY = 0x04;
export const FAULT_FLAG_REMOTE = 0x80;
/** The fault comes from a device (hmm_vma_fault), not the CPU. */
export const FAULT_FLAG_DEVICE = 0x1000;
