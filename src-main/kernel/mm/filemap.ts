// mm/filemap.c and mm/shmem.c: the page cache of the lab's in-memory files. A fault
// finds the page at its offset, or allocates a zeroed one (tmpfs semantics: files are
// memory). Beyond the end of the file is SIGBUS.
import type { Kernel } from '../kernel';
import { VM_FAULT_OOM, VM_FAULT_SIGBUS, type vm_area_struct } from '../include/mm_types';
import { PG_dirty, PG_swapbacked, PG_uptodate } from '../include/page-flags';
import { address_space, file, inode } from '../fs/file';
import { alloc_page, GFP_HIGHUSER_MOVABLE } from './page_alloc';
import { clear_highpage } from './highmem';
import { put_page } from '../include/mm';

/** Create a file of `size` bytes on the lab's tmpfs. */
export function shmem_file_setup(k: Kernel, name: string, size: number): file {
  const ino = new inode(name, size, false);
  ino.i_mapping = new address_space(k.mappings.length, ino);
  k.mappings.push(ino.i_mapping);
  return new file(ino);
}

/**
 * shmem_zero_setup: a shared anonymous mapping is backed by an unlinked tmpfs object, so
 * processes sharing it (fork) share its pages, and its last unmap frees them.
 */
export function shmem_zero_setup(k: Kernel, size: number): file {
  const f = shmem_file_setup(k, 'dev/zero', size);
  f.f_inode.i_nlink = 0;
  return f;
}

/** find_or_create_page: the cache page at pgoff (-1 when no memory is left). */
export function find_or_create_page(k: Kernel, mapping: address_space, pgoff: number): number {
  const cached = mapping.pages.get(pgoff);
  if (cached !== undefined) return cached;
  const page = alloc_page(k, GFP_HIGHUSER_MOVABLE);
  if (page < 0) return -1;
  clear_highpage(k, page);
  const m = k.mem;
  m.flags[page] = (m.flags[page]! | PG_swapbacked | PG_uptodate) >>> 0;
  m.mapping[page] = mapping.id;
  m.index[page] = pgoff;
  // The page cache holds the allocation's reference.
  mapping.pages.set(pgoff, page);
  return page;
}

/** The page to map for a fault at pgoff of vma's file; a negative VM_FAULT_* on failure. */
export function filemap_fault(k: Kernel, vma: vm_area_struct, pgoff: number): number {
  const mapping = vma.vm_file!.f_mapping;
  if (pgoff * k.c.PAGE_SIZE >= mapping.host.i_size) return -VM_FAULT_SIGBUS;
  const page = find_or_create_page(k, mapping, pgoff);
  return page < 0 ? -VM_FAULT_OOM : page;
}

export function set_page_dirty(k: Kernel, page: number): void {
  k.mem.flags[page] = (k.mem.flags[page]! | PG_dirty) >>> 0;
}

/** Drop a file's cached pages (the file is deleted and unmapped). */
export function truncate_inode_pages(k: Kernel, mapping: address_space): void {
  for (const page of mapping.pages.values()) {
    k.mem.mapping[page] = 0;
    put_page(k, page);
  }
  mapping.pages.clear();
}
