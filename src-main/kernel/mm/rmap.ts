// mm/rmap.c: from a page back to the page-table entries that map it. An anonymous page's
// mapping is its anon_vma (every vma of the process family that may map it), a file
// page's its address_space; page->index places it within a vma.
import type { Kernel } from '../kernel';
import { anon_vma, type vm_area_struct } from '../include/mm_types';
import { PG_anon } from '../include/page-flags';
import type { address_space } from '../fs/file';

export function PageAnon(k: Kernel, page: number): boolean {
  return (k.mem.flags[page]! & PG_anon) !== 0;
}

/** The page's anon_vma or address_space, or null. */
export function page_rmapping(k: Kernel, page: number): anon_vma | address_space | null {
  return (k.mappings[k.mem.mapping[page]!] as anon_vma | address_space | undefined) ?? null;
}

/** The anon_vma of a vma, created on its first anonymous page. */
export function anon_vma_prepare(k: Kernel, vma: vm_area_struct): anon_vma {
  if (!vma.anon_vma) {
    vma.anon_vma = new anon_vma(k.mappings.length);
    k.mappings.push(vma.anon_vma);
    vma.anon_vma.vmas.add(vma);
  }
  return vma.anon_vma;
}

/** linear_page_index: page->index of the page at `addr` in `vma`. */
export function linear_page_index(k: Kernel, vma: vm_area_struct, addr: number): number {
  return (addr - vma.vm_start) / k.c.PAGE_SIZE + vma.vm_pgoff;
}

/** A fresh anonymous page becomes mapped once, at addr. */
export function page_add_new_anon_rmap(k: Kernel, page: number, vma: vm_area_struct, addr: number): void {
  const av = anon_vma_prepare(k, vma);
  const m = k.mem;
  m.flags[page] = (m.flags[page]! | PG_anon) >>> 0;
  m.mapping[page] = av.id;
  m.index[page] = linear_page_index(k, vma, addr);
  m.mapcount[page] = 1;
}

export function page_add_file_rmap(k: Kernel, page: number): void {
  k.mem.mapcount[page]!++;
}

/** One more page-table entry maps the page (fork). */
export function page_dup_rmap(k: Kernel, page: number): void {
  k.mem.mapcount[page]!++;
}

export function page_remove_rmap(k: Kernel, page: number): void {
  if (--k.mem.mapcount[page]! < 0) {
    k.mem.mapcount[page] = 0;
    k.WARN(`page_remove_rmap: pfn 0x${k.mem.page_to_pfn(page).toString(16)} mapcount underflow`);
  }
}

/** vma_address: where `page` would be mapped in `vma`, or -1 outside it. */
export function vma_address(k: Kernel, page: number, vma: vm_area_struct): number {
  const addr = vma.vm_start + (k.mem.index[page]! - vma.vm_pgoff) * k.c.PAGE_SIZE;
  return addr >= vma.vm_start && addr < vma.vm_end ? addr : -1;
}

/** Call fn(vma, addr) for every vma that may map the page; stop when fn returns false. */
export function rmap_walk(k: Kernel, page: number, fn: (vma: vm_area_struct, addr: number) => boolean): void {
  const owner = page_rmapping(k, page);
  if (!owner) return;
  const vmas = owner instanceof anon_vma ? owner.vmas : owner.i_mmap;
  for (const vma of [...vmas]) {
    const addr = vma_address(k, page, vma);
    if (addr >= 0 && !fn(vma, addr)) return;
  }
}
