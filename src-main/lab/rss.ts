// rss counters over simulated time, from the kernel's rss_stat tracepoint stamped by the
// virtual clock. A series keeps at most MAX_POINTS points per counter: past that it is
// thinned (every other point goes, the minimum spacing doubles), so a million faults cost
// a few thousand points while the latest value is always exact. A live process's series
// ends at the current simulated time, holding its last value.
import type { RssCounter, RssSeries } from '../api';
import type { Kernel } from '../kernel/kernel';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS } from '../kernel/include/mm_types';
import type { VirtualClock } from './clock';

export const RSS_COUNTERS: readonly RssCounter[] = ['file', 'anon', 'swapents', 'shmem'];

const MEMBER: Record<number, RssCounter> = {
  [MM_FILEPAGES]: 'file',
  [MM_ANONPAGES]: 'anon',
  [MM_SWAPENTS]: 'swapents',
  [MM_SHMEMPAGES]: 'shmem',
};

export const MAX_POINTS = 2048;

class Track {
  t: number[] = [];
  v: number[] = [];
  /** Points closer than this (ns) to the one before the last replace the last. */
  private gap = 0;

  add(t: number, v: number): void {
    const n = this.t.length;
    if (n && this.v[n - 1] === v) return;
    if (n && (this.t[n - 1] === t || (n >= 2 && t - this.t[n - 2]! < this.gap))) {
      this.t[n - 1] = t;
      this.v[n - 1] = v;
      return;
    }
    this.t.push(t);
    this.v.push(v);
    if (this.t.length > MAX_POINTS) this.thin();
  }

  private thin(): void {
    const t: number[] = [];
    const v: number[] = [];
    const n = this.t.length;
    for (let i = 0; i < n; i += 2) {
      t.push(this.t[i]!);
      v.push(this.v[i]!);
    }
    if ((n - 1) % 2) {
      t.push(this.t[n - 1]!);
      v.push(this.v[n - 1]!);
    }
    this.t = t;
    this.v = v;
    this.gap = Math.max(1, this.gap * 2, (t[t.length - 1]! - t[0]!) / MAX_POINTS);
  }

  /** The points, and the last value held until `now` (a live process's counter stands until it changes). */
  points(now?: number): [number, number][] {
    const out = this.t.map((t, i): [number, number] => [t, this.v[i]!]);
    const last = out[out.length - 1];
    if (now !== undefined && last && now > last[0]) out.push([now, last[1]]);
    return out;
  }
}

interface Series {
  proc: string;
  pid: number;
  exited: boolean;
  tracks: Record<RssCounter, Track>;
}

export class RssRecorder {
  private readonly byMm = new Map<number, Series>();
  private readonly order: Series[] = [];
  /** Grows with every sample: hosts compare it (and the clock) to decide whether to push an `rss` event. */
  version = 0;
  private readonly unsubscribe: () => void;

  constructor(
    k: Kernel,
    private readonly clock: VirtualClock,
  ) {
    this.unsubscribe = k.trace.subscribe(
      (e) => {
        if (e.name !== 'rss_stat') return;
        const counter = MEMBER[e.member];
        if (!counter) return;
        const s = this.byMm.get(e.mm) ?? this.register(e.mm, `mm${e.mm}`, 0);
        s.tracks[counter].add(this.clock.now, e.size);
        this.version++;
      },
      ['rss_stat'],
    );
  }

  /**
   * A new process: its series starts at zero now. A forked child's counters arrive while
   * fork copies the page tables, before it has a name: registering then names that series.
   */
  register(mmId: number, proc: string, pid: number): Series {
    const known = this.byMm.get(mmId);
    if (known) {
      known.proc = proc;
      known.pid = pid;
      this.version++;
      return known;
    }
    const tracks = {} as Record<RssCounter, Track>;
    for (const c of RSS_COUNTERS) {
      tracks[c] = new Track();
      tracks[c].add(this.clock.now, 0);
    }
    const s: Series = { proc, pid, exited: false, tracks };
    this.byMm.set(mmId, s);
    this.order.push(s);
    this.version++;
    return s;
  }

  /** The process is gone: its counters drop to zero now and its series ends. */
  exited(mmId: number): void {
    const s = this.byMm.get(mmId);
    if (!s) return;
    for (const c of RSS_COUNTERS) s.tracks[c].add(this.clock.now, 0);
    s.exited = true;
    this.byMm.delete(mmId);
    this.version++;
  }

  series(): RssSeries[] {
    return this.order.map((s) => {
      const points = {} as Record<RssCounter, [number, number][]>;
      const now = s.exited ? undefined : this.clock.now;
      for (const c of RSS_COUNTERS) points[c] = s.tracks[c].points(now);
      return { proc: s.proc, pid: s.pid, exited: s.exited, points };
    });
  }

  detach(): void {
    this.unsubscribe();
  }
}
