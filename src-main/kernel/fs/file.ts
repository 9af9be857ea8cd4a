// struct file, inode and address_space of the lab's in-memory filesystem (tmpfs-like,
// or DAX on a pmem device): a file's pages are cached in its mapping by page offset.
import type { vm_area_struct } from '../include/mm_types';

export class address_space {
  /** Page cache: page offset -> page (index in the memmap). */
  readonly pages = new Map<number, number>();
  /** VMAs mapping this file (i_mmap), for rmap walks. */
  readonly i_mmap = new Set<vm_area_struct>();

  constructor(
    readonly id: number,
    readonly host: inode,
  ) {}
}

export class inode {
  i_mapping!: address_space;
  /** Directory entries naming the inode; 0 for an unlinked one (shmem_zero_setup's), freed with its last file. */
  i_nlink = 1;

  /** A DAX file's first pfn on its persistent memory (its one extent); -1 otherwise. */
  dax_pfn = -1;

  constructor(
    readonly name: string,
    public i_size: number,
    /** Backed directly by persistent memory pfns (fs/dax.c), not the page cache. */
    readonly dax: boolean,
  ) {}
}

export class file {
  /** References: the opener's, and one per vma mapping the file (get_file/fput). */
  f_count = 1;

  constructor(readonly f_inode: inode) {}

  get f_mapping(): address_space {
    return this.f_inode.i_mapping;
  }
}
