// kernel/fork.c: new address spaces and copying one at fork.
import type { Kernel } from '../kernel';
import { ENOMEM, type ErrPtr } from '../include/errno';
import { mm_struct, vm_area_struct, VM_DONTCOPY } from '../include/mm_types';
import { task_struct } from '../include/sched';
import { pgd_alloc } from '../mm/pgtable';
import { copy_page_range } from '../mm/memory';
import { vma_link } from '../mm/mmap';
import { get_file } from '../fs/file_table';
import { do_exit } from './exit';

/** mm_alloc: an empty address space; mmap areas grow down from below the stack. */
export function mm_alloc(k: Kernel): mm_struct {
  const mm = new mm_struct(++k.last_mm_id);
  pgd_alloc(k, mm);
  mm.mmap_base = k.c.TASK_SIZE - 2 ** 27 - (k.c.TASK_SIZE % k.c.PMD_SIZE);
  return mm;
}

/** A new process with an empty address space (what exec leaves before mapping anything). */
export function spawn_task(k: Kernel, comm: string): task_struct {
  const task = new task_struct(++k.last_pid, comm, mm_alloc(k));
  k.tasks.set(task.pid, task);
  return task;
}

/** dup_mmap: the child gets every vma and, through copy_page_range, its page tables. */
function dup_mmap(k: Kernel, mm: mm_struct, oldmm: mm_struct): number {
  for (const mpnt of oldmm.mmap) {
    if (mpnt.vm_flags & VM_DONTCOPY) continue;
    const tmp = new vm_area_struct(mm, mpnt.vm_start, mpnt.vm_end, mpnt.vm_flags);
    tmp.vm_page_prot = mpnt.vm_page_prot;
    tmp.vm_file = mpnt.vm_file ? get_file(mpnt.vm_file) : null;
    tmp.vm_pgoff = mpnt.vm_pgoff;
    tmp.name = mpnt.name;
    // anon_vma_fork: the child's vma joins the family so rmap finds shared pages in it.
    tmp.anon_vma = mpnt.anon_vma;
    vma_link(k, mm, tmp);
    const err = copy_page_range(k, mm, oldmm, mpnt);
    if (err) return err;
  }
  return 0;
}

/** fork(): a copy of `parent` with a copy-on-write duplicate of its address space. */
export function do_fork(k: Kernel, parent: task_struct, comm: string): ErrPtr<task_struct> {
  if (!parent.mm) return -ENOMEM;
  const mm = mm_alloc(k);
  mm.mmap_base = parent.mm.mmap_base;
  const err = dup_mmap(k, mm, parent.mm);
  const child = new task_struct(++k.last_pid, comm, mm);
  k.tasks.set(child.pid, child);
  if (err) {
    do_exit(k, child);
    return err;
  }
  return child;
}
