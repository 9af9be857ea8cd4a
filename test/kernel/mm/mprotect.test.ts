import { describe, it, expect } from 'vitest';
import { bootSmall, M, PAGE, recordTrace } from '../helpers';
import {
  ANON,
  RW,
  deviceMemory,
  installDeviceEntry,
  installMigrationEntry,
  load,
  loadSignal,
  map,
  pageAt,
  pmdAt,
  pteAt,
  spawn,
  store,
  storeSignal,
  tmpfsFile,
  vma,
} from './address_space';
import { EACCES, EINVAL, ENOMEM } from '../../../src-main/kernel/include/errno';
import {
  MAP_HUGETLB,
  MAP_SHARED,
  PROT_EXEC,
  PROT_GROWSDOWN,
  PROT_GROWSUP,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../../src-main/kernel/mm/mmap';
import { do_mprotect } from '../../../src-main/kernel/mm/mprotect';
import {
  VM_EXEC,
  VM_MAYWRITE,
  VM_READ,
  VM_SOFTDIRTY,
  VM_WRITE,
} from '../../../src-main/kernel/include/mm_types';
import {
  pte_dirty,
  pte_pfn,
  pte_present,
  pte_protnone,
  pte_soft_dirty,
  pte_write,
} from '../../../src-main/kernel/include/pgtable';
import {
  is_device_entry,
  is_migration_entry,
  is_write_device_entry,
  is_write_migration_entry,
  pte_swp_soft_dirty,
  pte_to_swp_entry,
  swp_offset,
  swp_type,
} from '../../../src-main/kernel/include/swapops';
import { page_count } from '../../../src-main/kernel/include/mm';

const HPAGE = 2 * M;

function flagsOf(v: { vm_flags: number }): number {
  return v.vm_flags & (VM_READ | VM_WRITE | VM_EXEC);
}

describe('mm/mprotect.c: do_mprotect', () => {
  it('removing write: a write is SIGSEGV, reads still work, the PTE is read-only', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    store(k, p, a, [5]);
    expect(do_mprotect(k, p.mm!, a, 2 * PAGE, PROT_READ)).toBe(0);
    expect(flagsOf(vma(p, a))).toBe(VM_READ);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(false);
    expect(storeSignal(k, p, a)).toBe('SIGSEGV');
    expect(p.signals.at(-1)).toEqual({ sig: 'SIGSEGV', addr: a });
    expect(load(k, p, a, 1)).toEqual([5]);
  });

  it('a private writable mapping stays read-only in the PTE until the write fault, which reuses the page', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    store(k, p, a, [1]);
    const page = pageAt(k, p.mm!, a);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(0);
    expect(do_mprotect(k, p.mm!, a, PAGE, RW)).toBe(0);
    const pte = pteAt(k, p.mm!, a);
    expect(pte_write(pte)).toBe(false);
    // pte_modify kept the pfn and the dirty and soft-dirty bits.
    expect(pte_pfn(pte)).toBe(k.mem.page_to_pfn(page));
    expect(pte_dirty(pte) && pte_soft_dirty(pte)).toBe(true);
    store(k, p, a, [2]);
    expect(pageAt(k, p.mm!, a)).toBe(page);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(true);
    expect(load(k, p, a, 1)).toEqual([2]);
  });

  it('a shared mapping gets write back in its PTEs at once', () => {
    const k = bootSmall();
    const p = spawn(k);
    const f = tmpfsFile(k, 'f', 1, 0);
    const a = map(k, p, { len: PAGE, file: f, flags: MAP_SHARED });
    store(k, p, a, [1]);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(0);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(false);
    expect(do_mprotect(k, p.mm!, a, PAGE, RW)).toBe(0);
    expect(pte_write(pteAt(k, p.mm!, a))).toBe(true);
  });

  it('PROT_NONE keeps the page mapped but inaccessible; restoring gives the data back', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    store(k, p, a, [7]);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_NONE)).toBe(0);
    const pte = pteAt(k, p.mm!, a);
    expect(pte_protnone(pte) && pte_present(pte)).toBe(true);
    expect(loadSignal(k, p, a)).toBe('SIGSEGV');
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(0);
    expect(load(k, p, a, 1)).toEqual([7]);
  });

  it('a range inside a vma splits it in three; only the middle changes', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 4 * PAGE });
    for (let i = 0; i < 4; i++) store(k, p, a + i * PAGE, [i]);
    expect(do_mprotect(k, p.mm!, a + PAGE, 2 * PAGE, PROT_READ | PROT_EXEC)).toBe(0);
    expect(p.mm!.mmap.map((v) => [v.vm_start - a, v.vm_end - a, flagsOf(v)])).toEqual([
      [0, PAGE, VM_READ | VM_WRITE],
      [PAGE, 3 * PAGE, VM_READ | VM_EXEC],
      [3 * PAGE, 4 * PAGE, VM_READ | VM_WRITE],
    ]);
    expect(vma(p, a + PAGE).vm_pgoff).toBe(a / PAGE + 1);
    expect([0, 1, 2, 3].map((i) => pte_write(pteAt(k, p.mm!, a + i * PAGE)))).toEqual([
      true,
      false,
      false,
      true,
    ]);
    expect(storeSignal(k, p, a + 2 * PAGE)).toBe('SIGSEGV');
    store(k, p, a + 3 * PAGE, [9]);
  });

  it('the protection change is one mmu notifier invalidation with the "protection" event', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    store(k, p, a, [1]);
    const trace = recordTrace(k);
    expect(do_mprotect(k, p.mm!, a, 2 * PAGE, PROT_READ)).toBe(0);
    expect(trace.filter((e) => e.name.startsWith('mmu_notifier'))).toEqual([
      {
        name: 'mmu_notifier_invalidate_range_start',
        mm: p.mm!.id,
        start: a,
        end: a + 2 * PAGE,
        event: 'protection',
      },
      {
        name: 'mmu_notifier_invalidate_range_end',
        mm: p.mm!.id,
        start: a,
        end: a + 2 * PAGE,
        event: 'protection',
      },
    ]);
  });

  it('errors: -EINVAL for an unaligned start, unknown prot bits and PROT_GROWSUP; a zero length is 0', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    expect(do_mprotect(k, p.mm!, a + 1, PAGE, PROT_READ)).toBe(-EINVAL);
    expect(do_mprotect(k, p.mm!, a, PAGE, 0x10)).toBe(-EINVAL);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ | PROT_GROWSUP)).toBe(-EINVAL);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ | PROT_GROWSUP | PROT_GROWSDOWN)).toBe(-EINVAL);
    // PROT_GROWSDOWN needs a VM_GROWSDOWN (stack) area.
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ | PROT_GROWSDOWN)).toBe(-EINVAL);
    expect(do_mprotect(k, p.mm!, a, 0, PROT_NONE)).toBe(0);
    expect(flagsOf(vma(p, a))).toBe(VM_READ | VM_WRITE);
  });

  it('errors: -ENOMEM for an unmapped start or a hole, after changing the vmas before the hole', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 3 * PAGE });
    expect(do_mprotect(k, p.mm!, a - PAGE, 2 * PAGE, PROT_READ)).toBe(-ENOMEM);
    expect(flagsOf(vma(p, a))).toBe(VM_READ | VM_WRITE);
    expect(do_mprotect(k, p.mm!, a + 3 * PAGE, PAGE, PROT_READ)).toBe(-ENOMEM);
    // A hole in the middle: [a, a + P) changes, then the hole is found.
    const b = map(k, p, { addr: a - 2 * PAGE, len: PAGE });
    expect(b).toBe(a - 2 * PAGE);
    expect(do_mprotect(k, p.mm!, b, 3 * PAGE, PROT_READ)).toBe(-ENOMEM);
    expect(flagsOf(vma(p, b))).toBe(VM_READ);
    expect(flagsOf(vma(p, a))).toBe(VM_READ | VM_WRITE);
  });

  it('errors: -EACCES for a protection the area may never have (no VM_MAYWRITE)', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE, prot: PROT_READ, flags: MAP_SHARED, file: tmpfsFile(k, 'ro', 1, 0) });
    // What mmap gives a shared mapping of a file opened read-only.
    vma(p, a).vm_flags &= ~VM_MAYWRITE;
    expect(do_mprotect(k, p.mm!, a, PAGE, RW)).toBe(-EACCES);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ | PROT_EXEC)).toBe(0);
  });

  it('F-DEV-5: removing write turns a write device entry into a read one, soft-dirty kept', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: 2 * PAGE });
    const page = k.mem.pfn_to_page(devmem.pfn_first);
    const ptep = installDeviceEntry(k, p, a, page, true, true);
    const clean = installDeviceEntry(k, p, a + PAGE, page + 1, true, false);
    expect(is_write_device_entry(k, pte_to_swp_entry(k.pt.entries[ptep]!))).toBe(true);
    expect(do_mprotect(k, p.mm!, a, 2 * PAGE, PROT_READ)).toBe(0);
    const pte = k.pt.entries[ptep]!;
    const entry = pte_to_swp_entry(pte);
    expect(is_device_entry(k, entry)).toBe(true);
    expect(is_write_device_entry(k, entry)).toBe(false);
    expect(swp_type(entry)).toBe(k.swp.SWP_DEVICE);
    expect(swp_offset(entry)).toBe(devmem.pfn_first);
    expect(pte_swp_soft_dirty(pte)).toBe(true);
    const pte2 = k.pt.entries[clean]!;
    expect(swp_type(pte_to_swp_entry(pte2))).toBe(k.swp.SWP_DEVICE);
    expect(pte_swp_soft_dirty(pte2)).toBe(false);
    // The page keeps its mapping reference.
    expect(page_count(k, page)).toBe(2);
  });

  it('F-DEV-5: the kernel makes no protection check on swap entries: any change drops write from a device entry', () => {
    const k = bootSmall();
    const devmem = deviceMemory(k);
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    const ptep = installDeviceEntry(k, p, a, k.mem.pfn_to_page(devmem.pfn_first), true, true);
    // Same flags: mprotect_fixup has nothing to do.
    expect(do_mprotect(k, p.mm!, a, PAGE, RW)).toBe(0);
    expect(swp_type(pte_to_swp_entry(k.pt.entries[ptep]!))).toBe(k.swp.SWP_DEVICE_WRITE);
    // Adding exec still goes through change_pte_range.
    expect(do_mprotect(k, p.mm!, a, PAGE, RW | PROT_EXEC)).toBe(0);
    expect(swp_type(pte_to_swp_entry(k.pt.entries[ptep]!))).toBe(k.swp.SWP_DEVICE);
    expect(pte_swp_soft_dirty(k.pt.entries[ptep]!)).toBe(true);
  });

  it('F-DEV-5: a write migration entry becomes a read one too, soft-dirty kept', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    store(k, p, a, [1]);
    const page = pageAt(k, p.mm!, a);
    const ptep = installMigrationEntry(k, p.mm!, a, true);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(0);
    const entry = pte_to_swp_entry(k.pt.entries[ptep]!);
    expect(is_migration_entry(k, entry) && !is_write_migration_entry(k, entry)).toBe(true);
    expect(swp_offset(entry)).toBe(k.mem.page_to_pfn(page));
    expect(pte_swp_soft_dirty(k.pt.entries[ptep]!)).toBe(true);
  });

  it('a hugetlb area changes its huge entries; it cannot be split off a huge page boundary', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: 2 * HPAGE, flags: ANON | MAP_HUGETLB });
    store(k, p, a, [1]);
    store(k, p, a + HPAGE, [2]);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(-EINVAL);
    expect(do_mprotect(k, p.mm!, a, HPAGE, PROT_READ)).toBe(0);
    expect(pte_write(pmdAt(k, p.mm!, a))).toBe(false);
    expect(pte_write(pmdAt(k, p.mm!, a + HPAGE))).toBe(true);
    expect(storeSignal(k, p, a + 5 * PAGE)).toBe('SIGSEGV');
    expect(load(k, p, a, 1)).toEqual([1]);
  });

  it('VM_SOFTDIRTY and the other flags survive a protection change', () => {
    const k = bootSmall();
    const p = spawn(k);
    const a = map(k, p, { len: PAGE });
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_READ)).toBe(0);
    expect(vma(p, a).vm_flags & VM_SOFTDIRTY).toBe(VM_SOFTDIRTY);
    expect(vma(p, a).vm_flags & VM_MAYWRITE).toBe(VM_MAYWRITE);
    expect(do_mprotect(k, p.mm!, a, PAGE, PROT_WRITE)).toBe(0);
    expect(flagsOf(vma(p, a))).toBe(VM_WRITE);
    store(k, p, a, [1]);
  });
});
