// fs/dax.c: files on a filesystem on a DAX block device (a pmem namespace in fsdax
// mode). A file's data is one extent of persistent memory, and its mappings point
// straight at those pfns with devmap entries: 1 GiB at the PUD, 2 MiB at the PMD or
// 4 KiB at the PTE, whichever the alignment allows. The mappings take no page
// references (devmap pages are pinned through their dev_pagemap, seed 003).
import type { Kernel } from '../kernel';
import { ENOSPC, type ErrPtr } from '../include/errno';
import {
  FAULT_FLAG_WRITE,
  VM_FAULT_SIGBUS,
  VM_SHARED,
  VM_WRITE,
  type vm_area_struct,
} from '../include/mm_types';
import { pfn_pte, pmd_mkdevmap, pte_mkdevmap, pte_mkdirty, pte_mkwrite } from '../include/pgtable';
import { address_space, file, inode } from './file';

/** The filesystem on one pmem namespace: a bump allocator of extents. */
export class dax_fs {
  private next_pfn: number;

  constructor(
    readonly name: string,
    readonly first_pfn: number,
    readonly end_pfn: number,
  ) {
    this.next_pfn = first_pfn;
  }

  /** An extent of `pages` pages aligned to `align` pages, or -1 when full. */
  alloc(pages: number, align: number): number {
    const start = Math.ceil(this.next_pfn / align) * align;
    if (start + pages > this.end_pfn) return -1;
    this.next_pfn = start + pages;
    return start;
  }
}

/** Create a file of `size` bytes on the DAX filesystem, its extent aligned for huge mappings. */
export function dax_file_create(k: Kernel, fs: dax_fs, name: string, size: number): ErrPtr<file> {
  const pages = Math.ceil(size / k.c.PAGE_SIZE);
  const align = size >= k.c.PUD_SIZE ? k.c.PUD_SIZE / k.c.PAGE_SIZE : k.c.HPAGE_PMD_NR;
  const pfn = fs.alloc(pages, align);
  if (pfn < 0) return -ENOSPC;
  const ino = new inode(name, size, true);
  ino.i_mapping = new address_space(k.mappings.length, ino);
  k.mappings.push(ino.i_mapping);
  ino.dax_pfn = pfn;
  return new file(ino);
}

export function vma_is_dax(vma: vm_area_struct): boolean {
  return vma.vm_file?.f_inode.dax === true;
}

/** The pfn backing addr of a DAX vma, or -1 beyond the end of the file. */
function dax_pfn(k: Kernel, vma: vm_area_struct, addr: number): number {
  const ino = vma.vm_file!.f_inode;
  const pgoff = (addr - vma.vm_start) / k.c.PAGE_SIZE + vma.vm_pgoff;
  return pgoff * k.c.PAGE_SIZE >= ino.i_size ? -1 : ino.dax_pfn + pgoff;
}

/**
 * Whether [addr's `size` block] of the vma can be one huge entry: inside the vma and the
 * file, and the file offset as aligned as the address.
 */
function dax_huge_suitable(k: Kernel, vma: vm_area_struct, addr: number, size: number): boolean {
  const start = Math.floor(addr / size) * size;
  if (start < vma.vm_start || start + size > vma.vm_end) return false;
  const first = dax_pfn(k, vma, start);
  const last = dax_pfn(k, vma, start + size - k.c.PAGE_SIZE);
  return first >= 0 && last >= 0 && first % (size / k.c.PAGE_SIZE) === 0;
}

/** Protection of a DAX entry: writable only for a write to a shared writable mapping. */
function dax_prot(vma: vm_area_struct, flags: number, entry: number): number {
  const write = flags & FAULT_FLAG_WRITE && vma.vm_flags & VM_SHARED && vma.vm_flags & VM_WRITE;
  return write ? pte_mkdirty(pte_mkwrite(entry)) : entry;
}

/**
 * dax_iomap_fault at a huge level (`size` is PUD_SIZE or PMD_SIZE): the entry to install,
 * or 0 to fall back to a smaller size. Private writes always fall back (COW is per page).
 */
export function dax_huge_entry(
  k: Kernel,
  vma: vm_area_struct,
  addr: number,
  size: number,
  flags: number,
): number {
  if (flags & FAULT_FLAG_WRITE && !(vma.vm_flags & VM_SHARED)) return 0;
  if (!dax_huge_suitable(k, vma, addr, size)) return 0;
  const pfn = dax_pfn(k, vma, Math.floor(addr / size) * size);
  return dax_prot(vma, flags, pmd_mkdevmap(pfn_pte(pfn, vma.vm_page_prot)));
}

/** dax_iomap_pte_fault: the devmap PTE for addr, or a negative VM_FAULT_* past the file end. */
export function dax_pte_entry(k: Kernel, vma: vm_area_struct, addr: number, flags: number): number {
  const pfn = dax_pfn(k, vma, addr);
  if (pfn < 0) return -VM_FAULT_SIGBUS;
  return dax_prot(vma, flags, pte_mkdevmap(pfn_pte(pfn, vma.vm_page_prot)));
}

/** The pmem page backing a DAX file's page (for COW of a private mapping and for loads). */
export function dax_file_page(k: Kernel, vma: vm_area_struct, addr: number): number {
  const pfn = dax_pfn(k, vma, addr);
  return pfn < 0 ? -1 : k.mem.pfn_to_page(pfn);
}
