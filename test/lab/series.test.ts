import { describe, expect, it } from 'vitest';
import { start_kernel } from '../../src-main/kernel/init/main';
import { DEFAULT_CONFIG } from '../../src-main/kernel/include/config';
import { VirtualClock } from '../../src-main/lab/clock';
import {
  FIRST_BUCKET_NS,
  LATENCY_EDGES,
  latencyBucket,
  SERIES_BUCKETS,
  SeriesRecorder,
  seriesCsv,
} from '../../src-main/lab/series';
import { RssRecorder } from '../../src-main/lab/rss';

function kernel() {
  const k = start_kernel({
    config: DEFAULT_CONFIG,
    ram: [{ start: 0, size: 2 ** 28 }],
    reserved: [],
    expectedDeviceBytes: 0,
  });
  const clock = new VirtualClock(k);
  return { k, clock };
}

const fault = { name: 'page_fault', mm: 1, addr: 0, write: true, result: 0 } as const;

describe('lab/series: aggregation into time buckets', () => {
  it('a million events keep at most SERIES_BUCKETS buckets per series, and every event counted', () => {
    const { k, clock } = kernel();
    let used = 100;
    const rec = new SeriesRecorder(k, clock, null, () => [{ name: 'gpu0', pages: 65536, used }]);
    for (let i = 0; i < 1_000_000; i++) {
      clock.now += 1 + (i % 7) * 1000;
      k.trace.emit(fault);
      if (i % 1000 === 0) {
        rec.migrated('gpu0', true, 256, clock.now);
        rec.migrated('gpu0', false, 128, clock.now);
        rec.deviceFaults('gpu0', 256, clock.now);
        rec.occupancy('gpu0', (used = (used + 256) % 65536), clock.now);
        rec.latency(true, 45_000 + i);
      }
      rec.latency(false, 1300);
    }
    const s = rec.snapshot();
    expect(s.t.length).toBeLessThanOrEqual(SERIES_BUCKETS);
    expect(s.t.length).toBeGreaterThan(SERIES_BUCKETS / 2);
    expect(s.cpuFaults.length).toBe(s.t.length);
    expect(s.cpuFaults.reduce((a, b) => a + b, 0)).toBe(1_000_000);
    expect(s.devices[0]!.toDeviceTotal.at(-1)).toBe(1000 * 256);
    expect(s.devices[0]!.toSystemTotal.at(-1)).toBe(1000 * 128);
    expect(s.deviceFaults.reduce((a, b) => a + b, 0)).toBe(1000 * 256);
    expect(s.latency.cpu[latencyBucket(1300)]).toBe(1_000_000);
    expect(s.devices[0]!.occupancy.at(-1)).toBe(used);
    // Buckets are a power-of-two multiple of the first width and cover the whole run.
    expect(Number.isInteger(Math.log2(s.bucketNs / FIRST_BUCKET_NS))).toBe(true);
    expect(s.t.at(-1)! + s.bucketNs).toBeGreaterThan(clock.now);
    expect(JSON.stringify(s).length).toBeLessThan(40_000);
  });

  it('widening merges buckets pairwise: counts add up, a gauge keeps its latest report', () => {
    const { k, clock } = kernel();
    const rec = new SeriesRecorder(k, clock, null);
    rec.occupancy('gpu0', 5, 0);
    rec.occupancy('gpu0', 7, FIRST_BUCKET_NS * 1.5);
    rec.migrated('gpu0', true, 3, 0);
    rec.migrated('gpu0', true, 4, FIRST_BUCKET_NS * 1.5);
    clock.now = FIRST_BUCKET_NS * SERIES_BUCKETS; // one bucket too far: the width doubles
    k.trace.emit(fault);
    const s = rec.snapshot();
    expect(s.bucketNs).toBe(2 * FIRST_BUCKET_NS);
    expect(s.devices[0]!.toDevice[0]).toBe(7);
    expect(s.devices[0]!.occupancy[0]).toBe(7);
    // Between reports the gauge holds its value.
    expect(s.devices[0]!.occupancy.at(-1)).toBe(7);
    expect(s.cpuFaults.at(-1)).toBe(1);
  });

  it('a CPU fault on a device page (devmem_fault) counts as a migration home', () => {
    const { k, clock } = kernel();
    const rec = new SeriesRecorder(k, clock, null);
    k.trace.emit({ name: 'devmem_fault', device: 'gpu0', pfn: 1, mm: 1, addr: 0, result: 0 });
    k.trace.emit({ name: 'devmem_fault', device: 'gpu0', pfn: 1, mm: 1, addr: 0, result: 2 });
    expect(rec.snapshot().devices[0]!.toSystemTotal.at(-1)).toBe(1);
  });

  it('latency buckets: four per octave from 128 ns, each value in the bucket whose edges hold it', () => {
    for (const ns of [0, 100, 128, 1300, 45_000, 123_456_789, 1e12]) {
      const i = latencyBucket(ns);
      expect(LATENCY_EDGES[i]!).toBeLessThanOrEqual(Math.max(ns, 0));
      if (i + 1 < LATENCY_EDGES.length) expect(ns).toBeLessThan(LATENCY_EDGES[i + 1]! + 1);
    }
    expect(LATENCY_EDGES.slice(0, 6)).toEqual([0, 128, 152, 181, 215, 256]);
  });

  it('rss is resampled onto the buckets; CSV gives one line per bucket under a header', () => {
    const { k, clock } = kernel();
    const rss = new RssRecorder(k, clock);
    rss.register(1, 'p', 1);
    const rec = new SeriesRecorder(k, clock, rss);
    clock.now = 2500;
    k.trace.emit({ name: 'rss_stat', mm: 1, member: 1, size: 10 });
    clock.now = 4200;
    rec.migrated('gpu0', true, 2, 1200);
    const s = rec.snapshot();
    expect(s.rss[0]!.proc).toBe('p');
    expect(s.rss[0]!.counters.anon).toEqual([0, 0, 10, 10, 10]);
    expect(seriesCsv(s, 'migrations')).toBe(
      't_ns,gpu0 to device,gpu0 to system\n0,0,0\n1000,2,0\n2000,0,0\n3000,0,0\n4000,0,0\n',
    );
    expect(seriesCsv(s, 'rss').split('\n')[0]).toBe('t_ns,p file,p anon,p swapents,p shmem');
    expect(seriesCsv(s, 'latency').split('\n').slice(0, 2)).toEqual([
      'from_ns,to_ns,cpu faults,device faults',
      '0,128,0,0',
    ]);
  });
});
