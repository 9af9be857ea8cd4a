// Tracepoints: every state change the lab shows is emitted here, and only here.
// Consumers (the lab's trace ring, tests) subscribe; the kernel never knows who listens.

export type TraceEvent =
  | { name: 'mem_hotplug_begin' }
  | { name: 'mem_hotplug_done' }
  | { name: 'add_pages'; start_pfn: number; nr_pages: number; linear: boolean }
  | { name: 'move_pfn_range_to_zone'; zone: string; start_pfn: number; nr_pages: number }
  | { name: 'remove_pages'; start_pfn: number; nr_pages: number }
  | { name: 'devmem_add'; device: string; start: number; end: number; type: string }
  | { name: 'devmem_remove'; device: string; start: number; end: number }
  | { name: 'devmem_free'; device: string; pfn: number }
  | { name: 'devmem_fault'; device: string; pfn: number; mm: number; addr: number; result: number }
  | {
      name: 'migrate_vma';
      mm: number;
      start: number;
      end: number;
      /** Entries collected for migration (holes included). */
      collected: number;
      /** Entries whose migration completed. */
      migrated: number;
    }
  | { name: 'mmu_notifier_invalidate_range_start'; mm: number; start: number; end: number; event: string }
  | { name: 'mmu_notifier_invalidate_range_end'; mm: number; start: number; end: number; event: string }
  | { name: 'mmu_notifier_release'; mm: number }
  | { name: 'page_fault'; mm: number; addr: number; write: boolean; result: number }
  | { name: 'bad_pte'; mm: number; addr: number; pte: number }
  | { name: 'rss_stat'; mm: number; member: number; size: number }
  | { name: 'signal_generate'; pid: number; sig: string; addr: number }
  | { name: 'hmm_mirror_register' | 'hmm_mirror_unregister'; mm: number; mirrors: number }
  | { name: 'hmm_sync_cpu_device_pagetables'; mm: number; start: number; end: number; ret: number }
  | { name: 'hmm_snapshot' | 'hmm_fault'; mm: number; start: number; end: number; ret: number }
  /**
   * A driver plugin's copy engine moved pages (dma_copy of the driver API): one batch of
   * `pages` pages, `bytes` bytes, over the device's link.
   */
  | { name: 'dma_copy'; device: string; pages: number; bytes: number }
  // The HMM test driver's own tracepoints (drivers/dmirror.ts).
  | {
      name: 'dmirror_cmd';
      device: string;
      mm: number;
      /** read, write, migrate, snapshot, release. */
      cmd: string;
      start: number;
      npages: number;
      ret: number;
      cpages: number;
      faults: number;
    }
  /** A range fault or snapshot starts over: why (invalid, invalidated, -EAGAIN, -EBUSY, device-private, gave up). */
  | { name: 'dmirror_retry'; device: string; mm: number; start: number; end: number; reason: string }
  /** sync_cpu_device_pagetables: the device page-table entries of [start, end) dropped. */
  | { name: 'dmirror_sync'; device: string; mm: number; start: number; end: number; cleared: number };

export type TraceName = TraceEvent['name'];
export type TraceSink = (e: TraceEvent) => void;

/**
 * One tracepoint and the sinks that hear it, kept current as sinks come and go. A path that
 * fires once per page holds its tracepoint, as the kernel's code holds its static key, and
 * asks `enabled` without looking the name up.
 */
export class Tracepoint {
  /** Replaced, never changed in place: an emit in progress keeps the list it started with. */
  sinks: readonly TraceSink[] = [];

  constructor(readonly name: TraceName) {}

  /** trace_<name>_enabled(). */
  get enabled(): boolean {
    return this.sinks.length > 0;
  }
}

/**
 * The tracepoints: like the kernel's, each is enabled on its own. A sink hears every event,
 * or only the names it subscribed to, so a hot path whose event nobody wants builds nothing.
 * Sinks hear an event in the order they subscribed (the clock charges before the trace
 * stamps).
 */
export class Tracepoints {
  private readonly sinks: { sink: TraceSink; names: ReadonlySet<TraceName> | null }[] = [];
  private readonly points = new Map<TraceName, Tracepoint>();

  /** The tracepoint of an event name, for a hot path to hold. */
  point(name: TraceName): Tracepoint {
    let tp = this.points.get(name);
    if (!tp) {
      tp = new Tracepoint(name);
      this.points.set(name, tp);
      this.update(tp);
    }
    return tp;
  }

  /** trace_<name>_enabled(): whether anyone listens to this event. */
  on(name: TraceName): boolean {
    return this.point(name).enabled;
  }

  emit(e: TraceEvent): void {
    for (const s of this.point(e.name).sinks) s(e);
  }

  /** Hear every event, or only those named. Returns the unsubscribe. */
  subscribe(sink: TraceSink, names?: readonly TraceName[]): () => void {
    const entry = { sink, names: names ? new Set(names) : null };
    this.sinks.push(entry);
    for (const tp of this.points.values()) this.update(tp);
    return () => {
      const i = this.sinks.indexOf(entry);
      if (i >= 0) this.sinks.splice(i, 1);
      for (const tp of this.points.values()) this.update(tp);
    };
  }

  private update(tp: Tracepoint): void {
    tp.sinks = this.sinks.filter((s) => !s.names || s.names.has(tp.name)).map((s) => s.sink);
  }
}
