// mm/mmu_notifier.c: the one point every page-table change passes through, so secondary
// MMUs (HMM mirrors, device page tables) can drop what they cached.
import type { Kernel } from '../kernel';
import type { mm_struct, mmu_notifier, mmu_notifier_range } from '../include/mm_types';

export function mmu_notifier_register(mn: mmu_notifier, mm: mm_struct): number {
  mm.notifiers.push(mn);
  return 0;
}

export function mmu_notifier_unregister(mn: mmu_notifier, mm: mm_struct): void {
  const i = mm.notifiers.indexOf(mn);
  if (i >= 0) mm.notifiers.splice(i, 1);
}

/**
 * Announce that [start, end) of mm is about to change. Returns 0, or -EAGAIN when a
 * non-blockable range met a subscriber that had to sleep.
 */
export function mmu_notifier_invalidate_range_start(k: Kernel, range: mmu_notifier_range): number {
  if (k.trace.on('mmu_notifier_invalidate_range_start'))
    k.trace.emit({
      name: 'mmu_notifier_invalidate_range_start',
      mm: range.mm.id,
      start: range.start,
      end: range.end,
      event: range.event,
    });
  let ret = 0;
  for (const mn of [...range.mm.notifiers]) {
    const r = mn.ops.invalidate_range_start?.(mn, range) ?? 0;
    if (r) ret = r;
  }
  return ret;
}

export function mmu_notifier_invalidate_range_end(k: Kernel, range: mmu_notifier_range): void {
  for (const mn of [...range.mm.notifiers]) mn.ops.invalidate_range_end?.(mn, range);
  if (k.trace.on('mmu_notifier_invalidate_range_end'))
    k.trace.emit({
      name: 'mmu_notifier_invalidate_range_end',
      mm: range.mm.id,
      start: range.start,
      end: range.end,
      event: range.event,
    });
}

/** The address space is going away: subscribers tear down their mirrors. */
export function mmu_notifier_release(k: Kernel, mm: mm_struct): void {
  for (const mn of [...mm.notifiers]) mn.ops.release?.(mn, mm);
  k.trace.emit({ name: 'mmu_notifier_release', mm: mm.id });
}

export function mmu_notifier_range_init(
  mm: mm_struct,
  start: number,
  end: number,
  event: string,
  blockable = true,
): mmu_notifier_range {
  return { mm, start, end, event, blockable };
}
