// block/blk-core.c: just enough of a request queue for pmem. Its usage counter is a
// percpu_ref that pmem lends to its dev_pagemap (F-PGMAP-6).
import type { Kernel } from '../kernel';
import { percpu_ref, percpu_ref_exit, percpu_ref_init, percpu_ref_kill } from '../lib/percpu-refcount';

export class request_queue {
  readonly q_usage_counter = new percpu_ref();
  dying = false;
}

export function blk_alloc_queue_node(k: Kernel): request_queue | null {
  if (k.fault.should_fail('blk_alloc_queue')) return null;
  const q = new request_queue();
  if (percpu_ref_init(k, q.q_usage_counter, () => {})) return null;
  return q;
}

/** Mark the queue dying and drop its usage counter; users still inside drain later. */
export function blk_cleanup_queue(k: Kernel, q: request_queue): void {
  q.dying = true;
  if (!q.q_usage_counter.dead) percpu_ref_kill(k, q.q_usage_counter);
  percpu_ref_exit(q.q_usage_counter);
}
