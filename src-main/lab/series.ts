// Plot series of a run, aggregated in the lab from the kernel's tracepoints and the workload
// engine's reports: a fixed number of time buckets per series whatever the number of events.
// When simulated time runs past the last bucket, neighbouring buckets merge pairwise and the
// bucket width doubles, so a run of a million events keeps a few kilobytes of series and the
// front end draws the same few hundred points.
import type {
  DeviceSeries,
  LatencyHistogram,
  ProcessRssSeries,
  RssCounter,
  RunPlot,
  RunSeries,
} from '../api';
import type { Kernel } from '../kernel/kernel';
import type { TraceEvent } from '../kernel/trace/events';
import type { VirtualClock } from './clock';
import { RSS_COUNTERS, type RssRecorder } from './rss';
import type { WorkloadObserver } from './workload';

/** Time buckets per series. */
export const SERIES_BUCKETS = 240;
/** The first bucket width, ns; it doubles as needed. */
export const FIRST_BUCKET_NS = 1000;
/** Latency histogram: buckets per octave, and the octaves from 2^LAT_MIN_LOG2 ns up. */
const LAT_PER_OCTAVE = 4;
const LAT_MIN_LOG2 = 7;
const LAT_MAX_LOG2 = 31;
const LAT_BUCKETS = 2 + (LAT_MAX_LOG2 - LAT_MIN_LOG2) * LAT_PER_OCTAVE;

/** Lower edges of the latency buckets: [0, 128 ns), then four per octave, the last open-ended. */
export const LATENCY_EDGES: readonly number[] = [
  0,
  ...Array.from({ length: LAT_BUCKETS - 1 }, (_, i) => Math.round(2 ** (LAT_MIN_LOG2 + i / LAT_PER_OCTAVE))),
];

export function latencyBucket(ns: number): number {
  if (!(ns >= 2 ** LAT_MIN_LOG2)) return 0;
  return Math.min(LAT_BUCKETS - 1, 1 + Math.floor((Math.log2(ns) - LAT_MIN_LOG2) * LAT_PER_OCTAVE));
}

/** A device as the series need it: its name, size and pages in use now. */
export interface DeviceGauge {
  name: string;
  pages: number;
  used: number;
}

interface DeviceTrack {
  name: string;
  pages: number;
  toDevice: Float64Array;
  toSystem: Float64Array;
  /** Pages in use at the last report in each bucket; NaN where none came. */
  occupancy: Float64Array;
}

export class SeriesRecorder implements WorkloadObserver {
  /** Start of the first bucket, and the width of every bucket, ns. */
  readonly t0: number;
  width = FIRST_BUCKET_NS;
  events = 0;
  private readonly cpuFaults = new Float64Array(SERIES_BUCKETS);
  private readonly deviceFaultsPerBucket = new Float64Array(SERIES_BUCKETS);
  private readonly devices = new Map<string, DeviceTrack>();
  private readonly latCpu = new Float64Array(LAT_BUCKETS);
  private readonly latDevice = new Float64Array(LAT_BUCKETS);
  /** The highest bucket any event reached. */
  private last = 0;
  private readonly unsubscribe: () => void;

  /**
   * `gauges` reports the machine's devices (read when a snapshot is taken); `rss` the
   * processes' counters, resampled onto the buckets.
   */
  constructor(
    k: Kernel,
    private readonly clock: VirtualClock,
    private readonly rss: RssRecorder | null,
    private readonly gauges: () => DeviceGauge[] = () => [],
  ) {
    this.t0 = clock.now;
    for (const g of gauges()) this.gauge(g);
    this.unsubscribe = k.trace.subscribe((e) => this.onTrace(e), ['page_fault', 'devmem_fault']);
  }

  detach(): void {
    this.unsubscribe();
  }

  private onTrace(e: TraceEvent): void {
    if (e.name === 'page_fault') {
      this.cpuFaults[this.slot(this.clock.now)]!++;
      this.events++;
    } else if (e.name === 'devmem_fault' && e.result === 0) {
      // A CPU fault on a device page: the driver migrated it home.
      this.migrated(e.device, false, 1, this.clock.now);
    }
  }

  // ---- WorkloadObserver ----------------------------------------------------------------

  migrated(device: string, toDevice: boolean, pages: number, t: number): void {
    if (!pages) return;
    const d = this.device(device);
    (toDevice ? d.toDevice : d.toSystem)[this.slot(t)]! += pages;
    this.events++;
  }

  deviceFaults(_device: string, pages: number, t: number): void {
    this.deviceFaultsPerBucket[this.slot(t)]! += pages;
    this.events++;
  }

  latency(device: boolean, ns: number): void {
    (device ? this.latDevice : this.latCpu)[latencyBucket(ns)]!++;
    this.events++;
  }

  occupancy(device: string, pages: number, t: number): void {
    this.device(device).occupancy[this.slot(t)] = pages;
    this.events++;
  }

  // ---- buckets -------------------------------------------------------------------------

  private device(name: string): DeviceTrack {
    let d = this.devices.get(name);
    if (!d) {
      const occupancy = new Float64Array(SERIES_BUCKETS).fill(NaN);
      d = {
        name,
        pages: 0,
        toDevice: new Float64Array(SERIES_BUCKETS),
        toSystem: new Float64Array(SERIES_BUCKETS),
        occupancy,
      };
      this.devices.set(name, d);
    }
    return d;
  }

  /** The bucket of time t, widening the buckets until it fits. */
  private slot(t: number): number {
    let i = Math.floor((t - this.t0) / this.width);
    if (i < 0) i = 0;
    while (i >= SERIES_BUCKETS) {
      this.widen();
      i = Math.floor((t - this.t0) / this.width);
    }
    if (i > this.last) this.last = i;
    return i;
  }

  /** Merge neighbouring buckets pairwise: counts add, a gauge keeps its later report. */
  private widen(): void {
    const sum = (a: Float64Array): void => {
      for (let i = 0; i < SERIES_BUCKETS / 2; i++) a[i] = a[2 * i]! + a[2 * i + 1]!;
      a.fill(0, SERIES_BUCKETS / 2);
    };
    const keepLast = (a: Float64Array): void => {
      for (let i = 0; i < SERIES_BUCKETS / 2; i++)
        a[i] = Number.isNaN(a[2 * i + 1]!) ? a[2 * i]! : a[2 * i + 1]!;
      a.fill(NaN, SERIES_BUCKETS / 2);
    };
    sum(this.cpuFaults);
    sum(this.deviceFaultsPerBucket);
    for (const d of this.devices.values()) {
      sum(d.toDevice);
      sum(d.toSystem);
      keepLast(d.occupancy);
    }
    this.width *= 2;
    this.last = Math.floor(this.last / 2);
  }

  /** A device's size and pages in use now (not an event: snapshots read them). */
  private gauge(g: DeviceGauge): void {
    const d = this.device(g.name);
    d.pages = g.pages;
    d.occupancy[this.slot(this.clock.now)] = g.used;
  }

  // ---- snapshots -----------------------------------------------------------------------

  /** The series up to now: every bucket from the first to the one holding the current time. */
  snapshot(): RunSeries {
    for (const g of this.gauges()) this.gauge(g);
    const n = Math.max(this.last, this.slot(this.clock.now)) + 1;
    const t = Array.from({ length: n }, (_, i) => this.t0 + i * this.width);
    const devices: DeviceSeries[] = [...this.devices.values()].map((d) => {
      const toDevice = Array.from(d.toDevice.subarray(0, n));
      const toSystem = Array.from(d.toSystem.subarray(0, n));
      const occupancy: number[] = [];
      let held = 0;
      for (let i = 0; i < n; i++) {
        const v = d.occupancy[i]!;
        if (!Number.isNaN(v)) held = v;
        occupancy.push(held);
      }
      return {
        name: d.name,
        pages: d.pages,
        toDevice,
        toSystem,
        toDeviceTotal: running(toDevice),
        toSystemTotal: running(toSystem),
        occupancy,
      };
    });
    const latency: LatencyHistogram = {
      edges: [...LATENCY_EDGES],
      cpu: Array.from(this.latCpu),
      device: Array.from(this.latDevice),
    };
    return {
      t,
      bucketNs: this.width,
      devices,
      cpuFaults: Array.from(this.cpuFaults.subarray(0, n)),
      deviceFaults: Array.from(this.deviceFaultsPerBucket.subarray(0, n)),
      rss: this.rssOnBuckets(t),
      latency,
      events: this.events,
    };
  }

  /** Each process's rss counters at the end of every bucket. */
  private rssOnBuckets(t: number[]): ProcessRssSeries[] {
    if (!this.rss) return [];
    const ends = t.map((x) => x + this.width);
    return this.rss.series().map((s) => {
      const counters = {} as Record<RssCounter, (number | null)[]>;
      for (const c of RSS_COUNTERS) {
        const pts = s.points[c];
        const out: (number | null)[] = new Array<number | null>(ends.length).fill(null);
        let j = -1;
        for (let i = 0; i < ends.length; i++) {
          while (j + 1 < pts.length && pts[j + 1]![0] < ends[i]!) j++;
          if (j < 0) continue;
          // An exited process's series stops at its last point.
          if (s.exited && j === pts.length - 1 && ends[i]! - this.width > pts[j]![0]) continue;
          out[i] = pts[j]![1];
        }
        counters[c] = out;
      }
      return { proc: s.proc, counters };
    });
  }
}

function running(a: number[]): number[] {
  let sum = 0;
  return a.map((v) => (sum += v));
}

function csvCell(v: number | string | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  return /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function csv(header: string[], rows: (number | string | null)[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\n') + '\n';
}

/** One plot's series as CSV: a header, then one line per time bucket (or latency bucket). */
export function seriesCsv(s: RunSeries, plot: RunPlot): string {
  const rowsOver = (cols: (number | null)[][]): (number | null)[][] =>
    s.t.map((t, i) => [t, ...cols.map((c) => c[i] ?? null)]);
  switch (plot) {
    case 'migrations':
      return csv(
        ['t_ns', ...s.devices.flatMap((d) => [`${d.name} to device`, `${d.name} to system`])],
        rowsOver(s.devices.flatMap((d) => [d.toDevice, d.toSystem])),
      );
    case 'cumulative':
      return csv(
        ['t_ns', ...s.devices.flatMap((d) => [`${d.name} to device total`, `${d.name} to system total`])],
        rowsOver(s.devices.flatMap((d) => [d.toDeviceTotal, d.toSystemTotal])),
      );
    case 'faults':
      return csv(['t_ns', 'cpu faults', 'device faults'], rowsOver([s.cpuFaults, s.deviceFaults]));
    case 'occupancy':
      return csv(
        ['t_ns', ...s.devices.map((d) => `${d.name} pages in use`)],
        rowsOver(s.devices.map((d) => d.occupancy)),
      );
    case 'rss':
      return csv(
        ['t_ns', ...s.rss.flatMap((p) => RSS_COUNTERS.map((c) => `${p.proc} ${c}`))],
        rowsOver(s.rss.flatMap((p) => RSS_COUNTERS.map((c) => p.counters[c]))),
      );
    case 'latency': {
      const e = s.latency.edges;
      return csv(
        ['from_ns', 'to_ns', 'cpu faults', 'device faults'],
        e.map((lo, i) => [lo, e[i + 1] ?? null, s.latency.cpu[i]!, s.latency.device[i]!]),
      );
    }
  }
}
