import { describe, it, expect } from 'vitest';
import { bootSmall, warnings } from '../helpers';
import {
  percpu_ref,
  percpu_ref_exit,
  percpu_ref_get,
  percpu_ref_get_many,
  percpu_ref_init,
  percpu_ref_is_zero,
  percpu_ref_kill,
  percpu_ref_put,
  percpu_ref_put_many,
  percpu_ref_tryget_live,
} from '../../../src-main/kernel/lib/percpu-refcount';
import { ENOMEM } from '../../../src-main/kernel/include/errno';

describe('lib/percpu-refcount.c', () => {
  it('F-PGMAP-5: init (live) -> kill (no new tryget_live) -> release at zero -> exit', () => {
    const k = bootSmall({ ram: [{ start: 0, size: 256 * 2 ** 20 }] });
    const ref = new percpu_ref();
    const released: percpu_ref[] = [];
    expect(percpu_ref_init(k, ref, (r) => released.push(r))).toBe(0);
    expect([ref.count, ref.dead, ref.exited]).toEqual([1, false, false]);

    // Live: tryget_live succeeds and counts.
    expect(percpu_ref_tryget_live(ref)).toBe(true);
    percpu_ref_get(ref);
    percpu_ref_get_many(ref, 3);
    expect(ref.count).toBe(6);
    percpu_ref_put_many(ref, 3);
    percpu_ref_put(ref);
    expect(ref.count).toBe(2);
    expect(released).toEqual([]);

    // Kill drops the initial reference; holders keep it alive but tryget_live fails.
    percpu_ref_kill(k, ref);
    expect([ref.count, ref.dead]).toEqual([1, true]);
    expect(percpu_ref_tryget_live(ref)).toBe(false);
    expect(ref.count).toBe(1);
    // A blind get still works on a dying ref (the cached get_dev_pagemap path).
    percpu_ref_get(ref);
    percpu_ref_put(ref);
    expect(released).toEqual([]);
    expect(percpu_ref_is_zero(ref)).toBe(false);

    // The last put runs the release callback, once.
    percpu_ref_put(ref);
    expect(percpu_ref_is_zero(ref)).toBe(true);
    expect(released).toEqual([ref]);

    percpu_ref_exit(ref);
    expect(ref.exited).toBe(true);
    expect(ref.release).toBeNull();
    expect(warnings(k)).toEqual([]);
  });

  it('F-PGMAP-5: an unused ref is released by kill itself', () => {
    const k = bootSmall({ ram: [{ start: 0, size: 256 * 2 ** 20 }] });
    const ref = new percpu_ref();
    let releases = 0;
    percpu_ref_init(k, ref, () => releases++);
    percpu_ref_kill(k, ref);
    expect([ref.count, ref.dead, releases]).toEqual([0, true, 1]);
    expect(percpu_ref_tryget_live(ref)).toBe(false);
  });

  it('F-PGMAP-5: killing twice WARNs; a put below zero is a BUG; init can fail with -ENOMEM', () => {
    const k = bootSmall({ ram: [{ start: 0, size: 256 * 2 ** 20 }] });
    const ref = new percpu_ref();
    percpu_ref_init(k, ref, () => {});
    percpu_ref_get(ref);
    percpu_ref_kill(k, ref);
    percpu_ref_kill(k, ref);
    expect(warnings(k)).toEqual(['WARNING: percpu_ref_kill() called more than once!']);
    expect(ref.count).toBe(1);
    percpu_ref_put(ref);
    expect(() => percpu_ref_put(ref)).toThrow('BUG: percpu_ref count below zero');

    const fresh = new percpu_ref();
    k.fault.inject('percpu_ref_init');
    expect(percpu_ref_init(k, fresh, () => {})).toBe(-ENOMEM);
    expect(fresh.count).toBe(0);
    expect(percpu_ref_tryget_live(fresh)).toBe(false);
  });
});
