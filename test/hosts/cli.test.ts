import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli as run } from './helpers';
import type { LayoutSnapshot, ResourceNode } from '../../src-main/api';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { formatTap, loadSelftestIndex, runSelftests, SELFTESTS_DIR } from '../../src-main/lab/selftests';
import { RUN_DEMOS } from '../../src-main/lab/demos';

const dir = mkdtempSync(join(tmpdir(), 'hmm-lab-cli-'));

function machineFile(name: string, machine: unknown): string {
  const path = join(dir, `${name}.machine.json`);
  writeFileSync(path, typeof machine === 'string' ? machine : JSON.stringify(machine));
  return path;
}

function scenarioFile(name: string, scenario: unknown): string {
  const path = join(dir, `${name}.scenario.json`);
  writeFileSync(path, JSON.stringify(scenario));
  return path;
}

async function layout(machine: unknown): Promise<LayoutSnapshot> {
  const r = await run('layout', '--machine', machineFile('m', machine), '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as LayoutSnapshot;
}

function top(l: LayoutSnapshot, name: string): ResourceNode | undefined {
  return l.resources.find((r) => r.name === name);
}

describe('hmm-lab layout', () => {
  it('F-DEVMEM-1: places devices as hmm_devmem_add does, the second one aligned step below the first', async () => {
    const l = await layout({
      devices: [
        { name: 'gpu0', kind: 'private', memory: '256M' },
        { name: 'gpu1', kind: 'private', memory: '200M' },
      ],
    });
    // 2^46 - 256 MiB; gpu1's 200 MiB rounds up to a 256 MiB section multiple and steps down.
    expect(top(l, 'gpu0')).toMatchObject({
      start: '0x3ffff0000000',
      end: '0x3fffffffffff',
      desc: 'DEVICE_PRIVATE_MEMORY',
    });
    expect(top(l, 'gpu1')).toMatchObject({
      start: '0x3fffe0000000',
      end: '0x3fffefffffff',
      desc: 'DEVICE_PRIVATE_MEMORY',
    });
    expect(l.resources.map((r) => r.name)).toEqual([
      'System RAM',
      'Reserved',
      'System RAM',
      'PCI Bus 0000:00',
      'System RAM',
      'gpu1',
      'gpu0',
    ]);
  });

  it('F-DEVMEM-1: skips candidate ranges that intersect a resource, in steps of the size', async () => {
    const l = await layout({
      reserved: [{ name: 'Firmware', start: '0x3fffe8000000', size: '4K' }],
      devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }],
    });
    // The top slot is free; with 1 GiB devices the slot holding Firmware would be skipped.
    expect(top(l, 'gpu0')!.start).toBe('0x3ffff0000000');
    const big = await layout({
      reserved: [{ name: 'Firmware', start: '0x3fffe8000000', size: '4K' }],
      devices: [{ name: 'gpu0', kind: 'private', memory: '1G' }],
    });
    expect(top(big, 'gpu0')).toMatchObject({ start: '0x3fff80000000', end: '0x3fffbfffffff' });
  });

  it('caps the search at MAX_PHYSMEM_BITS when iomem is larger', async () => {
    const l = await layout({
      physAddrBits: 48,
      maxPhysmemBits: 46,
      devices: [{ name: 'gpu0', kind: 'private', memory: '128M' }],
    });
    expect(top(l, 'gpu0')!.start).toBe('0x3ffff8000000');
  });

  it('prints the tree as /proc/iomem does, children indented', async () => {
    const r = await run('layout');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      '000000100000-0000bfffffff : System RAM\n  000001000000-000001dfffff : Kernel code',
    );
    expect(r.out).toContain('0000c0000000-0000ffffffff : PCI Bus 0000:00');
    expect(r.out).toContain('000100000000-00043fffffff : System RAM');
  });

  it('describes public and pmem devices with their descriptors', async () => {
    const l = await layout({
      devices: [
        { name: 'cxl0', kind: 'public', memory: '512M', start: '0x480000000' },
        { name: 'pmem0', kind: 'pmem', memory: '1G', start: '0x500000000' },
      ],
    });
    expect(top(l, 'cxl0 memory')).toMatchObject({ start: '0x480000000', desc: 'DEVICE_PUBLIC_MEMORY' });
    const pmem = top(l, 'Persistent Memory')!;
    expect(pmem).toMatchObject({ start: '0x500000000', end: '0x53fffffff', desc: 'PERSISTENT_MEMORY' });
    expect(pmem.children[0]).toMatchObject({ name: 'pmem0', flags: ['MEM', 'BUSY'] });
    expect(l.devices.find((d) => d.name === 'pmem0')!.pgmapType).toBe('MEMORY_DEVICE_HOST');
  });

  const bad: [string, unknown, RegExp][] = [
    [
      'overlapping RAM',
      {
        ram: [
          { start: 0, size: '2G' },
          { start: '1G', size: '2G' },
        ],
      },
      /machine\.ram\[1\]: overlaps machine\.ram\[0\]/,
    ],
    [
      'a size not page-aligned',
      { ram: [{ start: 0, size: 5000 }] },
      /machine\.ram\[0\]\.size: 5000 is not a multiple of the page size \(4096\)/,
    ],
    [
      'an unknown field',
      { devices: [{ name: 'g', kind: 'private', memory: '1M', colour: 'red' }] },
      /machine\.devices\[0\]\.colour: unknown field/,
    ],
    ['an unknown top-level field', { rams: [] }, /machine\.rams: unknown field/],
    [
      'a device larger than the free physical space',
      { devices: [{ name: 'huge', kind: 'private', memory: '63T' }] },
      /machine\.devices\[0\]: device "huge" failed to probe: -ERANGE \(hmm_devmem_add found no free physical range/,
    ],
    [
      'a bad size string',
      { ram: [{ start: 0, size: '12Q' }] },
      /machine\.ram\[0\]\.size: expected a size like/,
    ],
    [
      'a public device without start',
      { devices: [{ name: 'c', kind: 'public', memory: '1G' }] },
      /machine\.devices\[0\]\.start: missing/,
    ],
    ['not JSON', '{"ram": [', /not valid JSON/],
  ];
  for (const [what, machine, message] of bad) {
    it(`exits 2 naming the problem for ${what}`, async () => {
      const file = machineFile('bad', machine);
      const r = await run('layout', '--machine', file);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain(file);
      expect(r.err).toMatch(message);
    });
  }

  it('exits 2 for a missing file and for unknown commands and options', async () => {
    expect(await run('layout', '--machine', join(dir, 'nope.json'))).toMatchObject({
      code: 2,
      err: expect.stringMatching(/cannot read: ENOENT/),
    });
    expect(await run('frobnicate')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/unknown command "frobnicate"/),
    });
    expect(await run('layout', '--bogus')).toMatchObject({ code: 2, err: expect.stringMatching(/--bogus/) });
  });

  // The first run bundles the lab: seconds on a loaded machine.
  it('runs as the installed bin', { timeout: 60_000 }, () => {
    const file = machineFile('bin', { devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }] });
    const out = execFileSync(process.execPath, ['bin/hmm-lab.mjs', 'layout', '--machine', file, '--json'], {
      encoding: 'utf8',
    });
    expect((JSON.parse(out) as LayoutSnapshot).devices[0]).toMatchObject({
      name: 'gpu0',
      start: '0x3ffff0000000',
    });
    // From out/cli/ the bundle finds the project's plugins/ all the same.
    const unknown = machineFile('bin-driver', {
      devices: [{ name: 'gpu0', kind: 'private', memory: '256M', driver: 'nonesuch' }],
    });
    const r = spawnSync(process.execPath, ['bin/hmm-lab.mjs', 'layout', '--machine', unknown], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown driver "nonesuch" .*chunked-vram.*pmem-dax/);
  });

  it(
    'the bin runs the CLI bundled into out/cli/ (const bindings), made again when a source changes',
    {
      timeout: 120_000,
    },
    () => {
      const bundle = 'out/cli/hmm-lab.mjs';
      const help = () => execFileSync(process.execPath, ['bin/hmm-lab.mjs', 'help'], { encoding: 'utf8' });
      expect(help()).toContain('usage: hmm-lab');
      const made = statSync(bundle).mtimeMs;
      expect(readFileSync(bundle, 'utf8')).toMatch(/^const parseMachine = function parseMachine\(/m);
      help();
      expect(statSync(bundle).mtimeMs).toBe(made);

      const source = 'src-main/lab/machine-file.ts';
      const { atime, mtime } = statSync(source);
      try {
        utimesSync(source, atime, new Date(mtime.getTime() + 1000));
        expect(help()).toContain('usage: hmm-lab');
        expect(statSync(bundle).mtimeMs).toBeGreaterThan(made);
      } finally {
        utimesSync(source, atime, mtime);
      }
    },
  );
});

describe('hmm-lab run', () => {
  const scenario = (name: string, expectRet: unknown): string =>
    machineFile(name, {
      name,
      machine: 'gpu.machine.json',
      steps: [
        { op: 'spawn', proc: 'p' },
        { op: 'mmap', proc: 'p', name: 'buf', length: '8K', prot: 'rw', flags: ['private', 'anonymous'] },
        { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } },
        { op: 'munmap', proc: 'p', at: 'buf', expect: { ret: expectRet } },
      ],
    });
  machineFile('gpu', { devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }] });

  it('exits 0 when every expectation holds, loading the machine file beside the scenario', async () => {
    const r = await run('run', scenario('ok', 0));
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^PASS ok \(.*ok\.machine\.json\): 4 steps/);
  });

  it('exits 2 naming a --trace path it cannot write: before the run, or after it with the report kept', async () => {
    const file = scenario('traced', 0);
    expect(await run('run', file, '--trace', '')).toMatchObject({
      code: 2,
      out: '',
      err: expect.stringMatching(/run: --trace: expected a file name/),
    });
    for (const [path, code] of [
      [dir, 'EISDIR'],
      [join(dir, 'no-such-dir/t.json'), 'ENOENT'],
    ]) {
      const r = await run('run', file, '--trace', path!);
      expect(r).toMatchObject({ code: 2, out: '' });
      expect(r.err).toBe(`hmm-lab: ${path}: cannot write the trace: ${code}`);
    }
    // A device that takes no bytes: the run's report comes first, then the error.
    const r = await run('run', file, '--trace', '/dev/full');
    expect(r.code).toBe(2);
    expect(r.out).toMatch(/^PASS traced/);
    expect(r.err).toBe('hmm-lab: /dev/full: cannot write the trace: ENOSPC');
  });

  it('exits 1 naming the failed expectation', async () => {
    const r = await run('run', scenario('bad', '-EINVAL'), '--json');
    expect(r.code).toBe(1);
    const [report] = JSON.parse(r.out) as { passed: boolean; steps: { failures: string[] }[] }[];
    expect(report!.passed).toBe(false);
    expect(report!.steps[3]!.failures).toEqual(['steps[3].expect.ret: expected "-EINVAL", got 0']);
  });

  it('exits 2 for bad input, naming the file and the field', async () => {
    const file = machineFile('broken', {
      name: 'broken',
      steps: [
        { op: 'spawn', proc: 'p' },
        { op: 'fly', proc: 'p' },
      ],
    });
    const r = await run('run', file);
    expect(r.code).toBe(2);
    expect(r.err).toContain(file);
    expect(r.err).toMatch(/steps\[1\]\.op: unknown op "fly"/);
    // Refused before anything runs or is written.
    const trace = join(dir, 'never.json');
    expect((await run('run', file, '--trace', trace)).code).toBe(2);
    expect(existsSync(trace)).toBe(false);
    expect((await run('run')).code).toBe(2);
  });

  it('writes the trace in the format its name asks for', async () => {
    const trace = join(dir, 'run.json');
    expect((await run('run', scenario('traced', 0), '--trace', trace)).code).toBe(0);
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string }[] })
      .traceEvents;
    expect(events.map((e) => e.name)).toContain('page_fault');
  });
});

describe('the ported hmm-tests (test/selftests)', () => {
  const scenarios = readdirSync(SELFTESTS_DIR)
    .filter((f) => f.endsWith('.scenario.json'))
    .sort()
    .map((f) => join(SELFTESTS_DIR, f));

  it('hmm-lab run test/selftests/*.scenario.json passes every one', { timeout: 120_000 }, async () => {
    const r = await run('run', ...scenarios);
    expect(r.err).toBe('');
    const lines = r.out.split('\n');
    expect(lines).toHaveLength(scenarios.length);
    for (const line of lines) expect(line).toMatch(/^PASS /);
    expect(r.code).toBe(0);
  });

  it(
    'hmm-lab test-driver dmirror prints kselftest TAP: every TEST_F in order, skips with their reason',
    {
      timeout: 120_000,
    },
    async () => {
      const index = loadSelftestIndex();
      const r = await run('test-driver', 'dmirror');
      expect(r).toMatchObject({ code: 0, err: '' });
      const lines = r.out.split('\n');
      expect(lines.slice(0, 2)).toEqual(['TAP version 13', `1..${index.length}`]);
      expect(lines.slice(2, 2 + index.length)).toEqual(
        index.map((e, i) => `ok ${i + 1} ${e.fixture}.${e.test}${e.skip ? ` # SKIP ${e.skip}` : ''}`),
      );
      expect(lines).toContain('ok 2 hmm.anon_read');
      expect(lines).toContain('ok 22 hmm2.snapshot');
      const skip = index.filter((e) => e.skip).length;
      expect(lines.at(-1)).toBe(
        `# Totals: pass:${index.length - skip} fail:0 xfail:0 xpass:0 skip:${skip} error:0`,
      );
    },
  );

  it('reports a failed expectation as "not ok" with the first failure, and counts it', () => {
    const sel = mkdtempSync(join(tmpdir(), 'hmm-lab-selftests-'));
    const steps = (faults: number): unknown[] => [
      { op: 'spawn', proc: 'p' },
      { op: 'open', proc: 'p', device: 'dmirror0' },
      { op: 'mmap', proc: 'p', name: 'b', length: '8K', prot: 'rw', flags: ['private', 'anonymous'] },
      { op: 'device', device: 'dmirror0', proc: 'p', cmd: 'read', at: 'b', pages: 2, expect: { faults } },
    ];
    const machine = { devices: [{ name: 'dmirror0', kind: 'private', memory: '256M', driver: 'dmirror' }] };
    writeFileSync(
      join(sel, 'good.scenario.json'),
      JSON.stringify({ name: 'good', machine, steps: steps(1) }),
    );
    writeFileSync(join(sel, 'bad.scenario.json'), JSON.stringify({ name: 'bad', machine, steps: steps(2) }));
    writeFileSync(
      join(sel, 'hmm-tests.json'),
      JSON.stringify({
        tests: [
          { fixture: 'hmm', test: 'good', scenario: 'good.scenario.json' },
          { fixture: 'hmm', test: 'bad', scenario: 'bad.scenario.json' },
          { fixture: 'hmm', test: 'gone', skip: 'not in the seed era' },
        ],
      }),
    );
    const runFile = (file: string): ReturnType<typeof runScenario> =>
      runScenario(parseScenario(JSON.parse(readFileSync(file, 'utf8')), file, () => ({})));
    expect(formatTap(runSelftests(runFile, sel))).toEqual([
      'TAP version 13',
      '1..3',
      'ok 1 hmm.good',
      '# hmm.bad: steps[3].expect.faults: expected 2, got 1',
      'not ok 2 hmm.bad # steps[3].expect.faults: expected 2, got 1',
      'ok 3 hmm.gone # SKIP not in the seed era',
      '# FAILED: 2 / 3 tests passed.',
      '# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0',
    ]);
  });

  it('test-driver exits 2 without a driver, or with one it cannot bind', async () => {
    expect((await run('test-driver')).code).toBe(2);
    expect(await run('test-driver', join(dir, 'nope.ts'))).toMatchObject({
      code: 2,
      out: '',
      err: expect.stringContaining('nope.ts'),
    });
  });

  it('a plugin that does not compile is bad input (exit 2, its first error), for test-driver and run --driver', async () => {
    const broken = join(dir, 'broken.ts');
    writeFileSync(broken, 'export function fault( {\n');
    const refusal = `hmm-lab: ${broken}: does not compile: broken.ts:2:1: TS1005: '}' expected.`;
    expect(await run('test-driver', broken)).toEqual({ code: 2, out: '', err: refusal });
    const scenario = machineFile('uses-broken', { name: 'b', machine: 'gpu.machine.json', steps: [] });
    expect(await run('run', scenario, '--driver', `gpu0=${broken}`)).toEqual({
      code: 2,
      out: '',
      err: refusal,
    });
  });
});

describe('every bundled scenario', () => {
  const bundled = readdirSync('plugins')
    .flatMap((p) => readdirSync(join('plugins', p)).map((f) => join('plugins', p, f)))
    .filter((f) => f.endsWith('.scenario.json'))
    .sort();

  it(
    'hmm-lab run plugins/*/*.scenario.json passes every one, with no driver report',
    { timeout: 120_000 },
    async () => {
      expect(bundled.length).toBeGreaterThanOrEqual(4);
      const r = await run('run', ...bundled);
      expect(r.err).toBe('');
      const lines = r.out.split('\n');
      expect(lines).toHaveLength(bundled.length);
      bundled.forEach((file, i) => expect(lines[i]).toMatch(new RegExp(`^PASS .*\\(${file}\\)`)));
      expect(r.code).toBe(0);
    },
  );

  it(
    "hmm-lab run passes the Run view's demos, every workload losing no write",
    { timeout: 300_000 },
    async () => {
      const files = RUN_DEMOS.map((d) => scenarioFile(`demo-${d.id}`, d.scenario));
      const r = await run('run', ...files, '--json');
      expect(r).toMatchObject({ code: 0, err: '' });
      const reports = JSON.parse(r.out) as { passed: boolean; steps: { op: string; result: object }[] }[];
      expect(reports.map((rep) => rep.passed)).toEqual(RUN_DEMOS.map(() => true));
      const runs = reports.flatMap((rep) => rep.steps.filter((st) => st.op === 'run'));
      expect(runs.length).toBeGreaterThanOrEqual(RUN_DEMOS.length);
      for (const st of runs) expect(st.result).toMatchObject({ lost: 0, failed: 0 });
    },
  );
});

describe('hmm-lab run --trace: the same scenario and seed give the same bytes', () => {
  // The Run view's oversubscription demo, shrunk: the CPU fills 8 MiB, a GPU kernel with
  // 4 MiB of memory (its driver the demo's) touches twice as many pages, so batches evict, and
  // the CPU reads it all back. The kernel accesses random pages, not the demo's sequential
  // ones, so the seed shows in the trace.
  const demo = RUN_DEMOS.find((d) => d.id === 'oversubscription')!.scenario;
  const file = (seed: number): string => {
    const s = structuredClone(demo) as {
      seed: number;
      machine: { sectionSizeBits?: number; devices: { memory: string }[] };
      steps: { op: string; length?: string; workload?: { actors: Record<string, unknown>[] } }[];
    };
    s.seed = seed;
    // Device memory is hotplugged in whole sections: 4 MiB ones, so the GPU has just 4 MiB.
    s.machine.sectionSizeBits = 22;
    s.machine.devices[0]!.memory = '4M';
    const [mmap, gpu] = [s.steps[2]!, s.steps[4]!.workload?.actors[0]];
    expect([mmap.op, gpu?.kind]).toEqual(['mmap', 'device']);
    mmap.length = '8M';
    Object.assign(gpu!, { accesses: 4096, pattern: 'random' });
    return scenarioFile(`oversub-${seed}`, s);
  };
  const traced = async (scenario: string, trace: string): Promise<string> => {
    const path = join(dir, trace);
    const r = await run('run', scenario, '--trace', path, '--json');
    expect(r).toMatchObject({ code: 0, err: '' });
    const [report] = JSON.parse(r.out) as { steps: { result: Record<string, number> }[] }[];
    // Oversubscribed: the GPU evicts, and every read sees the last write.
    expect(report!.steps[4]!.result).toMatchObject({ lost: 0, failed: 0, evictions: expect.any(Number) });
    expect(report!.steps[4]!.result.evictions).toBeGreaterThan(0);
    return readFileSync(path, 'utf8');
  };

  for (const [format, name] of [
    ['ftrace text', 'trace.txt'],
    ['JSON lines', 'trace.jsonl'],
    ['Chrome JSON', 'trace.json'],
  ] as const)
    it(
      `${format} (${name}): identical twice, different with another seed`,
      { timeout: 120_000 },
      async () => {
        const a = await traced(file(1), `a-${name}`);
        expect(a.length).toBeGreaterThan(100_000);
        expect(a).toContain('migrate');
        expect(await traced(file(1), `b-${name}`)).toBe(a);
        expect(await traced(file(2), `c-${name}`)).not.toBe(a);
      },
    );

  it('in a fresh process too (the installed bin)', { timeout: 120_000 }, async () => {
    const scenario = file(1);
    const a = await traced(scenario, 'p-trace.jsonl');
    const path = join(dir, 'q-trace.jsonl');
    execFileSync(process.execPath, ['bin/hmm-lab.mjs', 'run', scenario, '--trace', path], {
      encoding: 'utf8',
    });
    expect(readFileSync(path, 'utf8')).toBe(a);
  });
});
