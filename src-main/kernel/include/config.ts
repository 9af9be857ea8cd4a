// Compile-time constants of a real kernel are per-machine settings here (x86-64 defaults).

export interface KernelConfig {
  pageShift: number;
  sectionSizeBits: number;
  maxPhysmemBits: number;
  physAddrBits: number;
  maxSwapfilesShift: number;
}

export const DEFAULT_CONFIG: KernelConfig = {
  pageShift: 12,
  sectionSizeBits: 27,
  maxPhysmemBits: 46,
  physAddrBits: 46,
  maxSwapfilesShift: 5,
};

/** Values derived from a KernelConfig, computed once per machine. */
export interface KernelConsts {
  PAGE_SHIFT: number;
  PAGE_SIZE: number;
  PA_SECTION_SHIFT: number;
  PA_SECTION_SIZE: number;
  PAGES_PER_SECTION: number;
  NR_MEM_SECTIONS: number;
  MAX_PHYSMEM_BITS: number;
  /** Entries per page-table page: a page of 8-byte entries. */
  PTRS_PER_TABLE: number;
  PMD_SHIFT: number;
  PMD_SIZE: number;
  PUD_SHIFT: number;
  PUD_SIZE: number;
  PGDIR_SHIFT: number;
  PGDIR_SIZE: number;
  /** Top of user space (x86-64: 2^47 less a guard page). */
  TASK_SIZE: number;
  /** HPAGE_PMD_NR: base pages in a PMD-mapped huge page. */
  HPAGE_PMD_NR: number;
}

export function kernelConsts(c: KernelConfig): KernelConsts {
  // Four levels (pgd, pud, pmd, pte), each a page of 8-byte entries: 9 bits a level at 4 KiB.
  const bits = c.pageShift - 3;
  return {
    PAGE_SHIFT: c.pageShift,
    PAGE_SIZE: 2 ** c.pageShift,
    PA_SECTION_SHIFT: c.sectionSizeBits,
    PA_SECTION_SIZE: 2 ** c.sectionSizeBits,
    PAGES_PER_SECTION: 2 ** (c.sectionSizeBits - c.pageShift),
    NR_MEM_SECTIONS: 2 ** (c.maxPhysmemBits - c.sectionSizeBits),
    MAX_PHYSMEM_BITS: c.maxPhysmemBits,
    PTRS_PER_TABLE: 2 ** bits,
    PMD_SHIFT: c.pageShift + bits,
    PMD_SIZE: 2 ** (c.pageShift + bits),
    PUD_SHIFT: c.pageShift + 2 * bits,
    PUD_SIZE: 2 ** (c.pageShift + 2 * bits),
    PGDIR_SHIFT: c.pageShift + 3 * bits,
    PGDIR_SIZE: 2 ** (c.pageShift + 3 * bits),
    TASK_SIZE: Math.min(2 ** 47, 2 ** (c.pageShift + 4 * bits - 1)) - 2 ** c.pageShift,
    HPAGE_PMD_NR: 2 ** bits,
  };
}

/** ALIGN(x, a) for a power-of-two a. Physical addresses pass 2^32, so no bitwise operators. */
export function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}

export function ALIGN_DOWN(x: number, a: number): number {
  return Math.floor(x / a) * a;
}

export function IS_ALIGNED(x: number, a: number): boolean {
  return x % a === 0;
}
