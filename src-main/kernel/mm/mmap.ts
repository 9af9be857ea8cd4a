// mm/mmap.c: creating and destroying areas of an address space.
import type { Kernel } from '../kernel';
import { EINVAL, ENOMEM, EPERM, type ErrPtr } from '../include/errno';
import {
  VM_EXEC,
  VM_HUGETLB,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_READ,
  VM_SHARED,
  VM_SOFTDIRTY,
  VM_WRITE,
  vm_area_struct,
  type mm_struct,
} from '../include/mm_types';
import { vm_get_page_prot } from '../include/pgtable';
import { ALIGN } from '../include/config';
import type { file } from '../fs/file';
import { fput, get_file } from '../fs/file_table';
import { free_pgtables } from './pgtable';
import { unmap_vmas } from './memory';
import { shmem_zero_setup } from './filemap';
import { vma_adjust_trans_huge } from './huge_memory';

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const PROT_EXEC = 4;
export const PROT_SEM = 8;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_HUGETLB = 0x40000;

/** find_vma: the first vma ending above addr (it may start above addr too), or null. */
export function find_vma(mm: mm_struct, addr: number): vm_area_struct | null {
  const v = mm.mmap;
  let lo = 0;
  let hi = v.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v[mid]!.vm_end <= addr) lo = mid + 1;
    else hi = mid;
  }
  return v[lo] ?? null;
}

/** The vma containing addr, or null. */
export function vma_lookup(mm: mm_struct, addr: number): vm_area_struct | null {
  const vma = find_vma(mm, addr);
  return vma && vma.vm_start <= addr ? vma : null;
}

export function vm_flags_to_prot(flags: number): number {
  return vm_get_page_prot((flags & VM_READ) !== 0, (flags & VM_WRITE) !== 0, (flags & VM_SHARED) !== 0);
}

/** Keep vm_page_prot in step with vm_flags. */
export function vma_set_page_prot(vma: vm_area_struct): void {
  vma.vm_page_prot = vm_flags_to_prot(vma.vm_flags);
}

/** The lowest address a user mapping may take (CONFIG_DEFAULT_MMAP_MIN_ADDR, 64 KiB on x86). */
export function mmap_min_addr(k: Kernel): number {
  return ALIGN(65536, k.c.PAGE_SIZE);
}

/**
 * Top-down search for a free [addr, addr + len) aligned to `align`, below mmap_base. A
 * hint is taken as is when the range there is free (arch_get_unmapped_area_topdown).
 */
export function get_unmapped_area(k: Kernel, mm: mm_struct, len: number, align: number, hint = 0): number {
  if (len > k.c.TASK_SIZE) return -ENOMEM;
  if (hint) {
    const addr = ALIGN(Math.max(hint, mmap_min_addr(k)), align);
    const next = find_vma(mm, addr);
    if (k.c.TASK_SIZE - len >= addr && (!next || addr + len <= next.vm_start)) return addr;
  }
  let top = mm.mmap_base;
  for (let i = mm.mmap.length - 1; i >= -1; i--) {
    const vma = mm.mmap[i];
    const floor = vma ? vma.vm_end : mmap_min_addr(k);
    if (vma && vma.vm_start >= top) continue;
    const start = Math.floor((top - len) / align) * align;
    if (start >= floor) return start;
    if (vma) top = Math.min(top, vma.vm_start);
  }
  return -ENOMEM;
}

function insert_vma(k: Kernel, mm: mm_struct, vma: vm_area_struct): void {
  const i = mm.mmap.findIndex((v) => v.vm_start > vma.vm_start);
  if (i < 0) mm.mmap.push(vma);
  else mm.mmap.splice(i, 0, vma);
  if (vma.vm_file) vma.vm_file.f_mapping.i_mmap.add(vma);
  if (vma.anon_vma) vma.anon_vma.vmas.add(vma);
  void k;
}

/** Take a vma out of mm; it drops its file reference. */
function remove_vma(k: Kernel, mm: mm_struct, vma: vm_area_struct): void {
  const i = mm.mmap.indexOf(vma);
  if (i < 0)
    throw new Error(
      `BUG: vma [0x${vma.vm_start.toString(16)}, 0x${vma.vm_end.toString(16)}) is not in mm${mm.id}`,
    );
  mm.mmap.splice(i, 1);
  vma.vm_file?.f_mapping.i_mmap.delete(vma);
  vma.anon_vma?.vmas.delete(vma);
  if (vma.vm_file) fput(k, vma.vm_file);
}

/** __split_vma: cut vma at addr; the new upper part is returned. */
export function split_vma(k: Kernel, mm: mm_struct, vma: vm_area_struct, addr: number): vm_area_struct {
  vma_adjust_trans_huge(k, vma, addr);
  const upper = new vm_area_struct(mm, addr, vma.vm_end, vma.vm_flags);
  upper.vm_page_prot = vma.vm_page_prot;
  upper.vm_file = vma.vm_file ? get_file(vma.vm_file) : null;
  upper.vm_pgoff = vma.vm_pgoff + (addr - vma.vm_start) / k.c.PAGE_SIZE;
  upper.anon_vma = vma.anon_vma;
  upper.name = vma.name;
  vma.vm_end = addr;
  insert_vma(k, mm, upper);
  return upper;
}

/** The vmas covering [start, end), split so none sticks out of it. */
export function vmas_in_range(k: Kernel, mm: mm_struct, start: number, end: number): vm_area_struct[] {
  const out: vm_area_struct[] = [];
  for (
    let vma = find_vma(mm, start);
    vma && vma.vm_start < end;
    vma = find_vma(mm, out[out.length - 1]!.vm_end)
  ) {
    let v = vma;
    if (v.vm_start < start) v = split_vma(k, mm, v, start);
    if (v.vm_end > end) split_vma(k, mm, v, end);
    out.push(v);
  }
  return out;
}

export interface MmapRequest {
  addr?: number;
  len: number;
  prot: number;
  flags: number;
  file?: file | null;
  /** Offset into the file, in bytes. */
  offset?: number;
  align?: number;
  name?: string;
}

/** do_mmap: map a new area; returns its address or -errno. */
export function do_mmap(k: Kernel, mm: mm_struct, req: MmapRequest): ErrPtr<number> {
  const hugetlb = (req.flags & MAP_HUGETLB) !== 0;
  const granule = hugetlb ? k.c.PMD_SIZE : k.c.PAGE_SIZE;
  if (req.len <= 0) return -EINVAL;
  const len = Math.ceil(req.len / granule) * granule;
  const shared = (req.flags & MAP_SHARED) !== 0;
  if (shared === ((req.flags & MAP_PRIVATE) !== 0)) return -EINVAL;
  if (!req.file && !(req.flags & MAP_ANONYMOUS)) return -EINVAL;
  const offset = req.offset ?? 0;
  if (offset % k.c.PAGE_SIZE) return -EINVAL;
  let addr: number;
  if (req.flags & MAP_FIXED) {
    addr = req.addr ?? 0;
    if (hugetlb && addr % granule) return -EINVAL;
    if (len > k.c.TASK_SIZE || addr > k.c.TASK_SIZE - len) return -ENOMEM;
    if (addr % k.c.PAGE_SIZE) return -EINVAL;
    // security_mmap_addr: only CAP_SYS_RAWIO maps below mmap_min_addr.
    if (addr < mmap_min_addr(k)) return -EPERM;
    do_munmap(k, mm, addr, len);
  } else {
    addr = get_unmapped_area(k, mm, len, Math.max(granule, req.align ?? 0), req.addr ?? 0);
    if (addr < 0) return addr;
  }
  // New areas start soft-dirty, so a tracker tells a remapped range from an untouched one.
  let flags = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | VM_SOFTDIRTY;
  if (req.prot & PROT_READ) flags |= VM_READ;
  if (req.prot & PROT_WRITE) flags |= VM_WRITE;
  if (req.prot & PROT_EXEC) flags |= VM_EXEC;
  if (shared) flags |= VM_SHARED | VM_MAYSHARE;
  if (hugetlb) flags |= VM_HUGETLB;
  const vma = new vm_area_struct(mm, addr, addr + len, flags);
  if (req.file) vma.vm_file = get_file(req.file);
  // A shared anonymous area is a tmpfs object (shmem_zero_setup), not anonymous memory.
  else if (shared && !hugetlb) vma.vm_file = shmem_zero_setup(k, len);
  vma.vm_pgoff = vma.vm_file ? offset / k.c.PAGE_SIZE : addr / k.c.PAGE_SIZE;
  vma.name = req.name ?? '';
  vma_set_page_prot(vma);
  insert_vma(k, mm, vma);
  return addr;
}

/** unmap_region + remove: drop [start, start+len) from mm. 0 or -EINVAL. */
export function do_munmap(k: Kernel, mm: mm_struct, start: number, len: number): number {
  if (start % k.c.PAGE_SIZE || len <= 0 || start + len > k.c.TASK_SIZE + k.c.PAGE_SIZE) return -EINVAL;
  let end = start + Math.ceil(len / k.c.PAGE_SIZE) * k.c.PAGE_SIZE;
  // A hugetlb area is unmapped in whole huge pages.
  for (const v of mm.mmap)
    if (v.vm_flags & VM_HUGETLB && v.vm_start < end && v.vm_end > start) {
      if (start % k.c.PMD_SIZE) return -EINVAL;
      end = Math.ceil(end / k.c.PMD_SIZE) * k.c.PMD_SIZE;
    }
  const vmas = vmas_in_range(k, mm, start, end);
  if (!vmas.length) return 0;
  unmap_vmas(k, mm, vmas, start, end);
  for (const vma of vmas) remove_vma(k, mm, vma);
  free_pgtables(k, mm, start, end);
  return 0;
}

/** Add a vma made elsewhere (fork, mremap) to mm. */
export function vma_link(k: Kernel, mm: mm_struct, vma: vm_area_struct): void {
  insert_vma(k, mm, vma);
}

export function vma_unlink(k: Kernel, mm: mm_struct, vma: vm_area_struct): void {
  remove_vma(k, mm, vma);
}
