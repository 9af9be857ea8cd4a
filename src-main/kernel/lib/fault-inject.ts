// Fault injection (like CONFIG_FAULT_INJECTION's failslab): a test arms a named call
// site to fail, so every error path of the seeds can be driven and its unwind checked.

export type FaultSite =
  | 'kmalloc'
  | 'percpu_ref_init'
  | 'devm_add_action'
  | 'request_region'
  | 'pgmap_index_insert'
  | 'add_pages'
  | 'alloc_pages'
  | 'blk_alloc_queue';

export class FaultInjector {
  private readonly armed = new Map<FaultSite, { skip: number; times: number }>();

  /** Fail the call site after `skip` successful calls, `times` times (default once). */
  inject(site: FaultSite, opts: { skip?: number; times?: number } = {}): void {
    this.armed.set(site, { skip: opts.skip ?? 0, times: opts.times ?? 1 });
  }

  clear(): void {
    this.armed.clear();
  }

  should_fail(site: FaultSite): boolean {
    // Asked once per page allocated: nothing armed is the common case, answered unhashed.
    if (this.armed.size === 0) return false;
    const a = this.armed.get(site);
    if (!a) return false;
    if (a.skip > 0) {
      a.skip--;
      return false;
    }
    if (--a.times <= 0) this.armed.delete(site);
    return true;
  }
}
