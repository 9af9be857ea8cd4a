// arch/x86/mm/fault.c: a user page fault, from the faulting address to a resolved
// mapping or a signal. And the CPU side of an access: the MMU walk that raises it.
import type { Kernel } from '../../../kernel';
import {
  FAULT_FLAG_WRITE,
  VM_FAULT_ERROR,
  VM_FAULT_HWPOISON,
  VM_FAULT_OOM,
  VM_FAULT_SIGBUS,
  VM_READ,
  VM_WRITE,
  type vm_area_struct,
} from '../../../include/mm_types';
import type { task_struct } from '../../../include/sched';
import {
  _PAGE_PROTNONE,
  pmd_huge,
  pte_flags,
  pte_mkdirty,
  pte_mkyoung,
  pte_none,
  pte_pfn,
  pte_present,
  pte_write,
} from '../../../include/pgtable';
import { is_addressable_page } from '../../../kernel/memremap';
import { handle_mm_fault } from '../../../mm/memory';
import { find_vma } from '../../../mm/mmap';
import { pgd_offset, pmd_offset, pte_offset_map, pud_offset } from '../../../mm/pgtable';

export type Signal = 'SIGSEGV' | 'SIGBUS' | 'SIGKILL';

function access_error(write: boolean, vma: vm_area_struct): boolean {
  if (write) return !(vma.vm_flags & VM_WRITE);
  return !(vma.vm_flags & (VM_READ | VM_WRITE));
}

function force_sig(k: Kernel, task: task_struct, sig: Signal, addr: number): Signal {
  task.signals.push({ sig, addr });
  k.trace.emit({ name: 'signal_generate', pid: task.pid, sig, addr });
  return sig;
}

/** do_user_addr_fault: null when the fault was handled, else the signal delivered. */
export function do_user_addr_fault(
  k: Kernel,
  task: task_struct,
  addr: number,
  write: boolean,
): Signal | null {
  const mm = task.mm;
  if (!mm) return force_sig(k, task, 'SIGSEGV', addr);
  const vma = find_vma(mm, addr);
  if (!vma || vma.vm_start > addr || access_error(write, vma)) return force_sig(k, task, 'SIGSEGV', addr);
  const fault = handle_mm_fault(k, vma, addr, write ? FAULT_FLAG_WRITE : 0);
  if (!(fault & VM_FAULT_ERROR)) return null;
  if (fault & VM_FAULT_OOM) {
    k.printk('err', `Out of memory: pid ${task.pid} (${task.comm}) faulting at 0x${addr.toString(16)}`);
    return force_sig(k, task, 'SIGKILL', addr);
  }
  if (fault & (VM_FAULT_SIGBUS | VM_FAULT_HWPOISON)) return force_sig(k, task, 'SIGBUS', addr);
  return force_sig(k, task, 'SIGSEGV', addr);
}

/**
 * The MMU: the page that addr translates to for this access, or -1 when it faults.
 * Like the hardware it sets the accessed and dirty bits.
 */
export function mmu_translate(k: Kernel, task: task_struct, addr: number, write: boolean): number {
  const mm = task.mm;
  if (!mm || mm.pgd < 0) return -1;
  const e = k.pt.entries;
  const pud = pud_offset(k, pgd_offset(k, mm, addr), addr);
  if (pud < 0) return -1;
  let entry = e[pud]!;
  let slot = pud;
  let span = k.c.PUD_SIZE;
  if (!pmd_huge(entry)) {
    const pmd = pmd_offset(k, pud, addr);
    if (pmd < 0 || pte_none(e[pmd]!)) return -1;
    entry = e[pmd]!;
    slot = pmd;
    span = k.c.PMD_SIZE;
    if (!pmd_huge(entry)) {
      slot = pte_offset_map(k, pmd, addr);
      entry = e[slot]!;
      span = k.c.PAGE_SIZE;
    }
  }
  if (!pte_present(entry) || pte_flags(entry) & _PAGE_PROTNONE) return -1;
  if (write && !pte_write(entry)) return -1;
  // The page within a huge leaf; not `addr % span`, a slow fmod on a double.
  const pfn =
    span === k.c.PAGE_SIZE
      ? pte_pfn(entry)
      : pte_pfn(entry) + Math.floor((addr - Math.floor(addr / span) * span) / k.c.PAGE_SIZE);
  const page = k.mem.pfn_to_page(pfn);
  // Nothing answers the CPU at an un-addressable address: the access faults, and the
  // fault handler finds the bad PTE (F-DEV-6).
  if (page >= 0 && k.mem.pgmap[page] !== 0 && !is_addressable_page(k, page)) return -1;
  e[slot] = write ? pte_mkdirty(pte_mkyoung(entry)) : pte_mkyoung(entry);
  return page;
}

/** Faults one access may take before the lab calls it a livelock. */
const MAX_FAULT_RETRIES = 16;

/**
 * A CPU access to one page: translate, fault, retry. Returns the page, or the signal the
 * access ended with.
 */
export function cpu_access_page(k: Kernel, task: task_struct, addr: number, write: boolean): number | Signal {
  for (let attempt = 0; attempt < MAX_FAULT_RETRIES; attempt++) {
    const page = mmu_translate(k, task, addr, write);
    if (page >= 0) return page;
    const sig = do_user_addr_fault(k, task, addr, write);
    if (sig) return sig;
  }
  k.WARN(`pid ${task.pid}: access at 0x${addr.toString(16)} still faults after ${MAX_FAULT_RETRIES} tries`);
  return force_sig(k, task, 'SIGBUS', addr);
}
