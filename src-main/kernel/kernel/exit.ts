// kernel/exit.c: a task leaving, and its address space with it.
import type { Kernel } from '../kernel';
import type { mm_struct } from '../include/mm_types';
import type { task_struct } from '../include/sched';
import { mmu_notifier_release } from '../mm/mmu_notifier';
import { unmap_vmas } from '../mm/memory';
import { vma_unlink } from '../mm/mmap';
import { pgd_free } from '../mm/pgtable';

/** exit_mmap: tell the mirrors, zap everything, free the page tables. */
export function exit_mmap(k: Kernel, mm: mm_struct): void {
  mm.dying = true;
  mmu_notifier_release(k, mm);
  const vmas = [...mm.mmap];
  if (vmas.length) unmap_vmas(k, mm, vmas, vmas[0]!.vm_start, vmas[vmas.length - 1]!.vm_end, 'release');
  for (const vma of vmas) vma_unlink(k, mm, vma);
  pgd_free(k, mm);
}

export function mmput(k: Kernel, mm: mm_struct): void {
  if (--mm.mm_users === 0) exit_mmap(k, mm);
}

export function do_exit(k: Kernel, task: task_struct): void {
  if (task.exited) return;
  task.exited = true;
  if (task.mm) mmput(k, task.mm);
  task.mm = null;
  k.tasks.delete(task.pid);
}
