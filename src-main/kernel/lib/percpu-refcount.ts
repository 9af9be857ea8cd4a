// percpu_ref: a reference count with a "live" state. F-PGMAP-5: init (live) -> kill (no
// new tryget_live) -> release callback when the count reaches zero -> exit.
import type { Kernel } from '../kernel';
import { ENOMEM } from '../include/errno';

export class percpu_ref {
  count = 0;
  dead = false;
  exited = false;
  release: ((ref: percpu_ref) => void) | null = null;
}

export function percpu_ref_init(k: Kernel, ref: percpu_ref, release: (ref: percpu_ref) => void): number {
  if (k.fault.should_fail('percpu_ref_init')) return -ENOMEM;
  ref.count = 1;
  ref.dead = false;
  ref.exited = false;
  ref.release = release;
  return 0;
}

export function percpu_ref_get(ref: percpu_ref): void {
  ref.count++;
}

export function percpu_ref_get_many(ref: percpu_ref, nr: number): void {
  ref.count += nr;
}

/** A new reference only while the ref is live. */
export function percpu_ref_tryget_live(ref: percpu_ref): boolean {
  if (ref.dead || ref.count === 0) return false;
  ref.count++;
  return true;
}

export function percpu_ref_put(ref: percpu_ref): void {
  percpu_ref_put_many(ref, 1);
}

export function percpu_ref_put_many(ref: percpu_ref, nr: number): void {
  ref.count -= nr;
  if (ref.count < 0) throw new Error('BUG: percpu_ref count below zero');
  if (ref.count === 0) ref.release?.(ref);
}

/** Drop the initial reference and refuse new live ones. */
export function percpu_ref_kill(k: Kernel, ref: percpu_ref): void {
  if (ref.dead) {
    k.WARN('percpu_ref_kill() called more than once!');
    return;
  }
  ref.dead = true;
  percpu_ref_put(ref);
}

export function percpu_ref_is_zero(ref: percpu_ref): boolean {
  return ref.count === 0;
}

export function percpu_ref_exit(ref: percpu_ref): void {
  ref.exited = true;
  ref.release = null;
}
