// Page tables: pgd -> pud -> pmd -> pte, each a node of PTRS_PER_TABLE entries in one
// pooled Float64Array (arch pgalloc + mm/pgtable-generic.c). A table is its node number;
// an entry pointing at a lower table holds that number where a pfn would be. Entries are
// addressed by their absolute index in the pool, the simulator's `pte_t *`.
import type { Kernel } from '../kernel';
import type { KernelConsts } from '../include/config';
import type { mm_struct } from '../include/mm_types';
import { _PAGE_TABLE, pfn_pte, pmd_huge, pte_pfn } from '../include/pgtable';

export class PageTablePool {
  entries: Float64Array;
  private nodes = 0;
  private readonly freed: number[] = [];
  /** Tables in use. */
  inUse = 0;
  readonly ptrs: number;
  // 1 / the bytes an entry of each level spans, and 1 / ptrs: powers of two, so a walk
  // multiplies by them exactly instead of dividing (a division is several times slower).
  readonly inv_page: number;
  readonly inv_pmd: number;
  readonly inv_pud: number;
  readonly inv_pgdir: number;
  readonly inv_ptrs: number;

  constructor(c: KernelConsts) {
    this.ptrs = c.PTRS_PER_TABLE;
    this.inv_page = 1 / c.PAGE_SIZE;
    this.inv_pmd = 1 / c.PMD_SIZE;
    this.inv_pud = 1 / c.PUD_SIZE;
    this.inv_pgdir = 1 / c.PGDIR_SIZE;
    this.inv_ptrs = 1 / c.PTRS_PER_TABLE;
    this.entries = new Float64Array(this.ptrs * 64);
  }

  alloc(): number {
    this.inUse++;
    const reused = this.freed.pop();
    if (reused !== undefined) return reused;
    const node = this.nodes++;
    if ((node + 1) * this.ptrs > this.entries.length) {
      const grown = new Float64Array(this.entries.length * 2);
      grown.set(this.entries);
      this.entries = grown;
    }
    return node;
  }

  /** Give back an empty table. */
  free(node: number): void {
    this.inUse--;
    this.entries.fill(0, node * this.ptrs, (node + 1) * this.ptrs);
    this.freed.push(node);
  }

  empty(node: number): boolean {
    const e = this.entries;
    for (let i = node * this.ptrs, end = i + this.ptrs; i < end; i++) if (e[i] !== 0) return false;
    return true;
  }
}

/** Index of `addr`'s entry within a table of the level whose entries span 1 / `inv` bytes. */
function index(k: Kernel, addr: number, inv: number): number {
  const pt = k.pt;
  const n = Math.floor(addr * inv);
  // Not `n % ptrs`: on a double that is a slow fmod call.
  return n - Math.floor(n * pt.inv_ptrs) * pt.ptrs;
}

export function pgd_alloc(k: Kernel, mm: mm_struct): void {
  mm.pgd = k.pt.alloc();
  mm.nr_ptes++;
}

export function pgd_offset(k: Kernel, mm: mm_struct, addr: number): number {
  return mm.pgd * k.pt.ptrs + index(k, addr, k.pt.inv_pgdir);
}

/** The entry below `upper` (a pointer entry) for `addr`, -1 when `upper` is none. */
function lower(k: Kernel, upper: number, addr: number, inv: number): number {
  const e = k.pt.entries[upper]!;
  if (e === 0) return -1;
  return pte_pfn(e) * k.pt.ptrs + index(k, addr, inv);
}

/** Make `upper` point at a new table if it is none; false when that is impossible. */
function ensure(k: Kernel, mm: mm_struct, upper: number): void {
  if (k.pt.entries[upper] !== 0) return;
  const node = k.pt.alloc();
  mm.nr_ptes++;
  k.pt.entries[upper] = pfn_pte(node, _PAGE_TABLE);
}

export function pud_offset(k: Kernel, pgd: number, addr: number): number {
  return lower(k, pgd, addr, k.pt.inv_pud);
}

export function pmd_offset(k: Kernel, pud: number, addr: number): number {
  return pmd_huge(k.pt.entries[pud]!) ? -1 : lower(k, pud, addr, k.pt.inv_pmd);
}

export function pte_offset_map(k: Kernel, pmd: number, addr: number): number {
  return pmd_huge(k.pt.entries[pmd]!) ? -1 : lower(k, pmd, addr, k.pt.inv_page);
}

/** The pud entry for addr, allocating the pud table. */
export function pud_alloc(k: Kernel, mm: mm_struct, addr: number): number {
  const pgd = pgd_offset(k, mm, addr);
  ensure(k, mm, pgd);
  return pud_offset(k, pgd, addr);
}

/** The pmd entry for addr, allocating tables on the way; -1 under a huge pud. */
export function pmd_alloc(k: Kernel, mm: mm_struct, addr: number): number {
  const pud = pud_alloc(k, mm, addr);
  if (pmd_huge(k.pt.entries[pud]!)) return -1;
  ensure(k, mm, pud);
  return pmd_offset(k, pud, addr);
}

/** The pte entry for addr under `pmd`, allocating the pte table; -1 under a huge pmd. */
export function pte_alloc_map(k: Kernel, mm: mm_struct, pmd: number, addr: number): number {
  if (pmd_huge(k.pt.entries[pmd]!)) return -1;
  ensure(k, mm, pmd);
  return pte_offset_map(k, pmd, addr);
}

/** Walk without allocating: the pud, pmd and pte entries for addr (-1 where absent). */
export interface Walk {
  pud: number;
  pmd: number;
  pte: number;
}

export function walk_lookup(k: Kernel, mm: mm_struct, addr: number, out: Walk): Walk {
  out.pud = out.pmd = out.pte = -1;
  if (mm.pgd < 0) return out;
  out.pud = pud_offset(k, pgd_offset(k, mm, addr), addr);
  if (out.pud < 0) return out;
  out.pmd = pmd_offset(k, out.pud, addr);
  if (out.pmd < 0) return out;
  out.pte = pte_offset_map(k, out.pmd, addr);
  return out;
}

/** The pte entry for addr, or -1 when no pte table covers it (or it is mapped huge). */
export function lookup_pte(k: Kernel, mm: mm_struct, addr: number): number {
  if (mm.pgd < 0) return -1;
  const pud = pud_offset(k, pgd_offset(k, mm, addr), addr);
  if (pud < 0) return -1;
  const pmd = pmd_offset(k, pud, addr);
  if (pmd < 0) return -1;
  return pte_offset_map(k, pmd, addr);
}

/** Free the table `entry` points at if nothing in it is left, and clear `entry`. */
function free_table_if_empty(k: Kernel, mm: mm_struct, entry: number): void {
  const pt = k.pt;
  const node = pte_pfn(pt.entries[entry]!);
  if (!pt.empty(node)) return;
  pt.free(node);
  pt.entries[entry] = 0;
  mm.nr_ptes--;
}

/**
 * free_pgd_range: after [start, end) was unmapped, free the page-table pages below it
 * that are now empty, bottom up.
 */
export function free_pgtables(k: Kernel, mm: mm_struct, start: number, end: number): void {
  const { PMD_SIZE, PUD_SIZE, PGDIR_SIZE } = k.c;
  const e = k.pt.entries;
  for (let a = Math.floor(start / PGDIR_SIZE) * PGDIR_SIZE; a < end; a += PGDIR_SIZE) {
    const pgd = pgd_offset(k, mm, a);
    if (e[pgd] === 0) continue;
    for (
      let b = Math.max(a, Math.floor(start / PUD_SIZE) * PUD_SIZE);
      b < Math.min(end, a + PGDIR_SIZE);
      b += PUD_SIZE
    ) {
      const pud = pud_offset(k, pgd, b);
      if (e[pud] === 0 || pmd_huge(e[pud]!)) continue;
      for (
        let c = Math.max(b, Math.floor(start / PMD_SIZE) * PMD_SIZE);
        c < Math.min(end, b + PUD_SIZE);
        c += PMD_SIZE
      ) {
        const pmd = pmd_offset(k, pud, c);
        if (e[pmd] !== 0 && !pmd_huge(e[pmd]!)) free_table_if_empty(k, mm, pmd);
      }
      free_table_if_empty(k, mm, pud);
    }
    free_table_if_empty(k, mm, pgd);
  }
}

/** Free every table of an address space (exit_mmap), the pgd last. */
export function pgd_free(k: Kernel, mm: mm_struct): void {
  free_pgtables(k, mm, 0, k.c.TASK_SIZE + k.c.PAGE_SIZE);
  if (mm.pgd >= 0) {
    k.pt.free(mm.pgd);
    mm.nr_ptes--;
    mm.pgd = -1;
  }
}
