import { beforeAll, describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { formatTrace } from '../../src-main/lab/trace';
import { DEFAULT_COSTS } from '../../src-main/lab/clock';
import { parseWorkload, WorkloadRun } from '../../src-main/lab/workload';
import { Prng } from '../../src-main/lab/prng';
import { cpu_access_page } from '../../src-main/kernel/arch/x86/mm/fault';
import { prepareEngines } from '../../src-main/drivers/plugin';
import type { TraceEvent } from '../../src-main/kernel/trace/events';
import { lab, PAGE, refusal } from './helpers';

const M = 2 ** 20;

/** A machine with a device of `deviceMiB` served by `driver` (default the built-in dmirror). */
function machine(deviceMiB: number, extra: Record<string, unknown>[] = [], driver?: string) {
  return {
    // 4 MiB sections, so a device can be as small as 4 MiB (hmm_devmem_add rounds up to sections).
    sectionSizeBits: 22,
    ram: [{ start: 0, size: '1G' }],
    reserved: [],
    devices: [
      { name: 'gpu0', kind: 'private', memory: `${deviceMiB}M`, ...(driver && { driver }) },
      ...extra,
    ],
  };
}

/** A process "p" with `mib` MiB mapped at "buf" and gpu0 open. */
function setup(mib: number, deviceMiB = 16, driver?: string) {
  const t = lab(machine(deviceMiB, [], driver));
  t.step({ op: 'spawn', proc: 'p' });
  t.step({ op: 'open', proc: 'p', device: 'gpu0' });
  t.step({
    op: 'mmap',
    proc: 'p',
    name: 'buf',
    length: mib * M,
    prot: 'rw',
    flags: ['private', 'anonymous'],
  });
  return t;
}

/** The oversubscription scenario: 32 MiB through a 16 MiB device, CPU and GPU both writing. */
function oversubscription(seed: number, driver?: string, deviceAccesses = 20000) {
  return parseScenario(
    {
      name: 'oversub',
      seed,
      machine: machine(16, [], driver),
      steps: [
        { op: 'spawn', proc: 'p' },
        { op: 'open', proc: 'p', device: 'gpu0' },
        { op: 'mmap', proc: 'p', name: 'buf', length: '32M', prot: 'rw', flags: ['private', 'anonymous'] },
        {
          op: 'run',
          workload: {
            actors: [
              {
                kind: 'device',
                device: 'gpu0',
                proc: 'p',
                at: 'buf',
                pattern: 'random',
                writes: 0.5,
                accesses: deviceAccesses,
              },
              {
                kind: 'cpu',
                proc: 'p',
                at: 'buf',
                pattern: 'hotset',
                writes: 0.3,
                accesses: 3000,
                start: 1e6,
              },
            ],
          },
          expect: { lost: 0, failed: 0 },
        },
      ],
    },
    'oversub',
    () => ({}),
  );
}

describe('lab/workload: the run op', () => {
  it(
    'the same oversubscription scenario and seed give byte-identical traces; another seed another trace',
    { timeout: 60_000 },
    () => {
      const a = runScenario(oversubscription(5), { trace: true });
      const b = runScenario(oversubscription(5), { trace: true });
      const c = runScenario(oversubscription(6), { trace: true });
      expect(a.passed).toBe(true);
      const ta = formatTrace(a.trace!, 'jsonl');
      expect(a.trace!.length).toBeGreaterThan(10_000);
      expect(formatTrace(b.trace!, 'jsonl')).toBe(ta);
      expect(formatTrace(c.trace!, 'jsonl')).not.toBe(ta);
      expect(a.steps[3]!.result).toEqual(b.steps[3]!.result);
    },
  );

  it('oversubscribed: the driver evicts the pages migrated in longest ago, every read sees the last write (lost 0)', () => {
    const r = runScenario(oversubscription(1));
    const res = r.steps[3]!.result;
    expect(res).toMatchObject({ op: 'run', lost: 0, failed: 0, accesses: 23000 });
    expect(res.evictions).toBeGreaterThan(0);
    // Each page of a batch was migrated to the device; each went home by eviction or a CPU fault.
    expect(res.migratedToDevice).toBe(res.deviceFaults);
    expect(res.migratedToSystem).toBeGreaterThanOrEqual(res.evictions!);
    expect(res.ns).toBeGreaterThan(0);
  });

  it('a GPU kernel streaming twice through twice its device memory faults on every page (LRU worst case), in batches of 256', () => {
    const { step, s } = setup(8, 4);
    const pages = (8 * M) / PAGE;
    const r = step({
      op: 'run',
      workload: {
        actors: [{ kind: 'device', device: 'gpu0', proc: 'p', at: 'buf', writes: 1, accesses: 2 * pages }],
      },
    }).result;
    expect(r).toMatchObject({
      accesses: 2 * pages,
      deviceFaults: 2 * pages,
      faultRounds: (2 * pages) / 256,
      migratedToDevice: 2 * pages,
      // All but the last device-full of pages were evicted again.
      evictions: 2 * pages - (4 * M) / PAGE,
      lost: 0,
    });
    const dev = s.userland.machine.devices.get('gpu0') as { dmirror: { pool: { nr_free: number } } };
    expect(dev.dmirror.pool.nr_free).toBe(0);
  });

  it('a batch costs gpuFaultBatchNs plus the copy at the link speed; the workload batch size is honoured', () => {
    const { step } = setup(4, 16);
    const r = step({
      op: 'run',
      workload: {
        batch: 64,
        actors: [{ kind: 'device', device: 'gpu0', proc: 'p', at: 'buf', writes: 0, accesses: 256 }],
      },
    }).result;
    expect(r).toMatchObject({ faultRounds: 4, deviceFaults: 256, migratedToDevice: 256 });
    const copy = (256 * PAGE) / (DEFAULT_COSTS.links.pcie4 * DEFAULT_COSTS.dmaEfficiency);
    expect(r.ns).toBeGreaterThanOrEqual(
      4 * DEFAULT_COSTS.gpuFaultBatchNs + copy + 256 * DEFAULT_COSTS.unmapPageNs,
    );
    expect(r.ns).toBeLessThan(4 * DEFAULT_COSTS.gpuFaultBatchNs + 2 * copy + 256 * 1000);
  });

  it('a CPU thread writing fresh pages takes one minor fault each: cpuFaultNs + cpuAccessNs per page', () => {
    const { step } = setup(1);
    const r = step({
      op: 'run',
      workload: { actors: [{ kind: 'cpu', proc: 'p', at: 'buf', writes: 1 }] },
    }).result;
    expect(r).toMatchObject({ accesses: 256, cpuFaults: 256, lost: 0, deviceFaults: 0 });
    expect(r.ns).toBe(256 * (DEFAULT_COSTS.cpuFaultNs + DEFAULT_COSTS.cpuAccessNs));
    expect(step({ op: 'stat', proc: 'p' }).result.rss).toMatchObject({ anon: 256 });
  });

  it('a CPU access to a page in device memory faults it home through the driver', () => {
    const { step } = setup(1);
    step({ op: 'store', proc: 'p', at: 'buf', length: 16 * PAGE });
    step({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf', pages: 16 });
    const r = step({
      op: 'run',
      workload: { actors: [{ kind: 'cpu', proc: 'p', at: 'buf', length: 16 * PAGE, writes: 0 }] },
    }).result;
    expect(r).toMatchObject({ accesses: 16, cpuFaults: 16, migratedToSystem: 16, lost: 0 });
  });

  it('patterns: strided visits every page, a hot set with probability 1 stays in its hot pages', () => {
    const { step } = setup(1);
    const strided = step({
      op: 'run',
      workload: {
        actors: [
          {
            kind: 'cpu',
            proc: 'p',
            at: 'buf',
            length: 64 * PAGE,
            pattern: 'strided',
            stride: '16K',
            writes: 1,
          },
        ],
      },
    }).result;
    expect(strided).toMatchObject({ accesses: 64, cpuFaults: 64 });
    const t2 = setup(1);
    const hot = t2.step({
      op: 'run',
      workload: {
        actors: [
          {
            kind: 'cpu',
            proc: 'p',
            at: 'buf',
            pattern: 'hotset',
            hotFraction: 0.125,
            hotProbability: 1,
            writes: 1,
            accesses: 5000,
          },
        ],
      },
    }).result;
    expect(hot.cpuFaults).toBe(32);
  });

  it('two devices: a page the other device holds comes home by the CPU fault hmm_range_fault takes, and is mapped there', () => {
    const t = lab(machine(16, [{ name: 'gpu1', kind: 'private', memory: '16M' }]));
    t.step({ op: 'spawn', proc: 'p' });
    t.step({ op: 'open', proc: 'p', device: 'gpu0' });
    t.step({ op: 'open', proc: 'p', device: 'gpu1' });
    t.step({
      op: 'mmap',
      proc: 'p',
      name: 'buf',
      length: 32 * PAGE,
      prot: 'rw',
      flags: ['private', 'anonymous'],
    });
    const r = t.step({
      op: 'run',
      workload: {
        actors: [
          { kind: 'device', device: 'gpu0', proc: 'p', at: 'buf', writes: 1 },
          { kind: 'device', device: 'gpu1', proc: 'p', at: 'buf', writes: 0, start: 1e6 },
        ],
      },
    }).result;
    // gpu0 migrates all 32; gpu1 cannot migrate another device's pages, so its dmirror faults
    // them in: each comes home (gpu0's fault callback) and gpu1 maps the system page.
    expect(r).toMatchObject({ migratedToDevice: 32, migratedToSystem: 32, evictions: 0, lost: 0, failed: 0 });
  });

  it('a stamp changed behind the workload is counted as lost', () => {
    const { s, k } = setup(1);
    const u = s.userland;
    const spec = parseWorkload(
      {
        actors: [
          { kind: 'cpu', proc: 'p', at: 'buf', length: 8 * PAGE, writes: 1 },
          { kind: 'cpu', proc: 'p', at: 'buf', length: 8 * PAGE, writes: 0, start: 1e9 },
        ],
      },
      'w',
      u,
    );
    const run = new WorkloadRun(u, spec, 1);
    expect(run.advance(Infinity, 1e8)).toBe(false);
    expect(run.counters.accesses).toBe(8);
    const page = cpu_access_page(
      k,
      u.procs.get('p')!,
      u.mappings.get('buf')!.addr + 3 * PAGE,
      false,
    ) as number;
    k.mem.stamp[page] = 12345;
    expect(run.advance()).toBe(true);
    expect(run.counters).toMatchObject({ accesses: 16, lost: 1 });
  });

  it('bad workloads are refused naming the field', () => {
    const { op } = setup(1);
    const run = (workload: unknown) => () => op({ op: 'run', workload });
    const cpu = { kind: 'cpu', proc: 'p', at: 'buf' };
    expect(refusal(run({ actors: [{ ...cpu, pattern: 'zigzag' }] }))).toContain(
      'op.workload.actors[0].pattern: expected one of "sequential", "strided", "random", "hotset", got "zigzag"',
    );
    expect(refusal(run({ actors: [{ ...cpu, proc: 'q' }] }))).toContain(
      'op.workload.actors[0].proc: no process named "q"',
    );
    expect(refusal(run({ actors: [{ ...cpu, stride: '8K' }] }))).toContain(
      'op.workload.actors[0].stride: only a "strided" pattern has a stride',
    );
    expect(refusal(run({ actors: [{ ...cpu, writes: 2 }] }))).toContain(
      'op.workload.actors[0].writes: expected a number from 0 to 1, got 2',
    );
    expect(refusal(run({ actors: [{ ...cpu, kind: 'device', device: 'nope' }] }))).toContain(
      'op.workload.actors[0].device: expected a device whose driver services device faults (a "fault" command, as dmirror\'s), got "nope"',
    );
    expect(refusal(run({ actors: [] }))).toContain(
      'op.workload.actors: expected a non-empty array of actors',
    );
    expect(refusal(run({ actors: [cpu], speed: 1 }))).toContain('op.workload.speed: unknown field');
  });

  it('a device kernel needs its device open in the process', () => {
    const t = lab(machine(16));
    t.step({ op: 'spawn', proc: 'p' });
    t.step({ op: 'mmap', proc: 'p', name: 'buf', length: M, prot: 'rw', flags: ['private', 'anonymous'] });
    expect(
      refusal(() =>
        t.op({ op: 'run', workload: { actors: [{ kind: 'device', device: 'gpu0', proc: 'p', at: 'buf' }] } }),
      ),
    ).toContain('"gpu0" is not open in "p"');
  });
});

describe('lab/workload: device kernels on plugin devices (the driver owns the fault policy)', () => {
  beforeAll(() => prepareEngines(8));

  /** The `fault` commands the driver ran (its dmirror_cmd tracepoints) during fn. */
  function faultCommands(k: ReturnType<typeof lab>['k'], fn: () => void): number {
    let n = 0;
    const off = k.trace.subscribe((e: TraceEvent) => {
      if (e.name === 'dmirror_cmd' && e.cmd === 'fault') n++;
    });
    try {
      fn();
    } finally {
      off();
    }
    return n;
  }

  const stream = (pages: number) => ({
    op: 'run',
    workload: {
      actors: [{ kind: 'device', device: 'gpu0', proc: 'p', at: 'buf', writes: 1, accesses: 2 * pages }],
    },
  });

  it(
    'plugin:dmirror services each fault batch with its fault command: migrations and evictions counted, the device full',
    { timeout: 60_000 },
    () => {
      const { step, s, k } = setup(8, 4, 'plugin:dmirror');
      const pages = (8 * M) / PAGE;
      let r!: ReturnType<typeof step>['result'];
      // A sequential stream faults one run of 256 neighbouring pages per batch.
      expect(faultCommands(k, () => (r = step(stream(pages)).result))).toBe((2 * pages) / 256);
      expect(r).toMatchObject({
        deviceFaults: 2 * pages,
        faultRounds: (2 * pages) / 256,
        migratedToDevice: 2 * pages,
        evictions: 2 * pages - (4 * M) / PAGE,
        migratedToSystem: 2 * pages - (4 * M) / PAGE,
        lost: 0,
        failed: 0,
      });
      const gpu = s.userland.machine.devices.get('gpu0') as {
        driver: { plugin: boolean; memory(): { free: number } };
      };
      expect(gpu.driver.plugin).toBe(true);
      expect(gpu.driver.memory().free).toBe(0);
      // After the run the CPU reads every page back: each holds the stamp the GPU last wrote.
      const back = step({
        op: 'run',
        workload: { actors: [{ kind: 'cpu', proc: 'p', at: 'buf', writes: 0 }] },
      });
      expect(back.result).toMatchObject({
        accesses: pages,
        lost: 0,
        failed: 0,
        migratedToSystem: (4 * M) / PAGE,
      });
    },
  );

  it(
    'the built-in dmirror runs the same policy through the same command: the same counters as the plugin',
    { timeout: 60_000 },
    () => {
      const pages = (8 * M) / PAGE;
      const builtin = setup(8, 4).step(stream(pages)).result;
      const plugin = setup(8, 4, 'plugin:dmirror').step(stream(pages)).result;
      for (const key of [
        'deviceFaults',
        'faultRounds',
        'migratedToDevice',
        'migratedToSystem',
        'evictions',
      ] as const)
        expect([key, plugin[key]]).toEqual([key, builtin[key]]);
      // The plugin's copy engine charges a submission per batch (dmaCopyNs) on top of the bytes.
      expect(plugin.ns).toBeGreaterThan(builtin.ns!);
    },
  );

  it(
    'oversubscribed with CPU and GPU both writing on the plugin: lost 0, and the same seed gives the same trace',
    { timeout: 120_000 },
    () => {
      // Random pages fault one by one: 8000 of them keep the sandboxed driver's run short.
      const a = runScenario(oversubscription(5, 'plugin:dmirror', 8000), { trace: true });
      const b = runScenario(oversubscription(5, 'plugin:dmirror', 8000), { trace: true });
      expect(a.passed).toBe(true);
      const res = a.steps[3]!.result;
      expect(res).toMatchObject({ lost: 0, failed: 0, accesses: 11000 });
      expect(res.evictions).toBeGreaterThan(0);
      expect(res.migratedToDevice).toBe(res.deviceFaults);
      expect(formatTrace(b.trace!, 'jsonl')).toBe(formatTrace(a.trace!, 'jsonl'));
      // The plugin's copy engine moved the pages (each submission charged through dma_copy).
      expect(a.trace!.some((t) => t.event.name === 'dma_copy' && t.event.device === 'gpu0')).toBe(true);
    },
  );

  it(
    'chunked-vram: its fault command migrates whole 2 MiB blocks and evicts chunks; every read sees the last write',
    { timeout: 60_000 },
    () => {
      const { step } = setup(16, 8, 'chunked-vram');
      const pages = (16 * M) / PAGE;
      const r = step({
        op: 'run',
        workload: {
          actors: [
            { kind: 'device', device: 'gpu0', proc: 'p', at: 'buf', writes: 0.5, accesses: 2 * pages },
          ],
        },
      }).result;
      expect(r).toMatchObject({ accesses: 2 * pages, lost: 0, failed: 0 });
      // Blocks arrive whole: a fault brings in the rest of its block, so the device faults on
      // fewer pages than it touches, and migrates more pages than faulted; evicted chunks come
      // back on the next pass.
      expect(r.deviceFaults).toBeLessThan(2 * pages);
      expect(r.migratedToDevice).toBeGreaterThan(r.deviceFaults!);
      expect(r.evictions).toBeGreaterThan(0);
    },
  );
});

describe('lab/prng', () => {
  it('mulberry32 streams are fixed by seed and stream, and spread uniformly', () => {
    const a = new Prng(42, 0);
    const b = new Prng(42, 0);
    const c = new Prng(42, 1);
    const xs = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(xs);
    const counts = new Array<number>(10).fill(0);
    const r = new Prng(1);
    for (let i = 0; i < 100_000; i++) counts[r.below(10)]!++;
    for (const n of counts) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});
