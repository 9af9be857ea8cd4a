import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src-main/hosts/cli/main';
import { SELFTESTS_DIR } from '../../src-main/lab/selftests';
import type { LabEvent, RunResponses, RunStatus, SessionFile } from '../../src-main/api';
import { LabSession } from '../../src-main/lab/session';
import { labFailure } from './helpers';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { formatTrace } from '../../src-main/lab/trace';
import { fnv1a64 } from '../../src-main/lab/session-file';
import { RUN_DEMOS } from '../../src-main/lab/demos';
import { HOST_EVENT_INTERVAL_MS, SERIES_EVENT_INTERVAL_MS } from '../../src-main/lab/run';

/** 16 MiB streamed twice through an 8 MiB device, then read back by the CPU. */
const SCENARIO = {
  name: 'small-oversub',
  seed: 3,
  machine: {
    sectionSizeBits: 22,
    ram: [{ start: 0, size: '512M' }],
    reserved: [],
    devices: [{ name: 'gpu0', kind: 'private', memory: '8M', link: 'pcie3' }],
  },
  steps: [
    { op: 'spawn', proc: 'p' },
    { op: 'open', proc: 'p', device: 'gpu0' },
    { op: 'mmap', proc: 'p', name: 'buf', length: '16M', prot: 'rw', flags: ['private', 'anonymous'] },
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
            accesses: 12000,
          },
          { kind: 'cpu', proc: 'p', at: 'buf', pattern: 'hotset', writes: 0.2, accesses: 4000, start: 5e5 },
        ],
      },
    },
    { op: 'run', workload: { actors: [{ kind: 'cpu', proc: 'p', at: 'buf', writes: 0 }] } },
  ],
};

function session() {
  const s = new LabSession();
  const events: LabEvent[] = [];
  s.onEvent((e) => events.push(e));
  const req = <K extends keyof RunResponses>(r: { type: K } & Record<string, unknown>): RunResponses[K] =>
    s.handle(r as never) as RunResponses[K];
  return { s, events, req };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(req: ReturnType<typeof session>['req'], state: RunStatus['state']): Promise<RunStatus> {
  for (let i = 0; i < 600; i++) {
    const st = req({ type: 'runStatus' });
    if (st.state === state) return st;
    await sleep(50);
  }
  throw new Error(`run never reached ${state}`);
}

describe('lab/run: playing a scenario in slices', () => {
  it(
    'played in slices, the run gives the counters and trace of the scenario run in one go',
    { timeout: 30_000 },
    async () => {
      const { req, events } = session();
      expect(req({ type: 'runLoad', scenario: SCENARIO })).toMatchObject({
        state: 'ready',
        steps: 5,
        stepsDone: 0,
      });
      req({ type: 'runControl', action: 'step' });
      const stepped = req({ type: 'runStatus' });
      expect(stepped).toMatchObject({ state: 'paused', stepsDone: 3 });
      expect(stepped.accessesDone).toBeGreaterThan(0);

      let yielded = 0;
      const tick = setInterval(() => yielded++, 1);
      const t0 = Date.now();
      const played = events.length;
      req({ type: 'runControl', action: 'play', speed: 0 });
      const done = await until(req, 'done');
      const wall = Date.now() - t0;
      clearInterval(tick);
      // The lab answered timers (and so requests) while the run played.
      expect(yielded).toBeGreaterThan(0);
      expect(done.counters).toMatchObject({ lost: 0, failed: 0 });
      expect(done.counters.evictions).toBeGreaterThan(0);

      const one = runScenario(
        parseScenario(SCENARIO, 's', () => ({})),
        { trace: true },
      );
      const [a, b] = [one.steps[3]!.result, one.steps[4]!.result];
      for (const key of ['accesses', 'cpuFaults', 'deviceFaults', 'migratedToDevice', 'evictions'] as const)
        expect(done.counters[key]).toBe(a[key]! + b[key]!);
      expect(done.t).toBe(one.t);
      const saved = req({ type: 'saveSession' });
      expect(saved.trace.digest).toBe(fnv1a64(formatTrace(one.trace!, 'jsonl')));

      // Series events are throttled: never one per kernel event.
      const series = events.filter((e) => e.type === 'series');
      expect(series.length).toBeGreaterThan(1);
      expect(series.length).toBeLessThanOrEqual(Math.ceil(wall / SERIES_EVENT_INTERVAL_MS) + 6);
      // Layout, processes and mirror go out less often still while it plays, and once at the end.
      const layouts = events.slice(played).filter((e) => e.type === 'layout');
      expect(layouts.length).toBeGreaterThan(0);
      expect(layouts.length).toBeLessThanOrEqual(Math.ceil(wall / HOST_EVENT_INTERVAL_MS) + 2);
      const last = series.at(-1) as Extract<LabEvent, { type: 'series' }>;
      expect(last.status.state).toBe('done');
      expect(last.series.devices[0]!.toDeviceTotal.at(-1)).toBe(done.counters.migratedToDevice);
    },
  );

  it('a workload on a plugin device plays in slices as it runs in one go: its fault batches served by the plugin', async () => {
    const scenario = {
      ...SCENARIO,
      name: 'plugin-oversub',
      machine: {
        ...SCENARIO.machine,
        devices: [{ ...SCENARIO.machine.devices[0]!, driver: 'plugin:dmirror' }],
      },
      steps: [
        ...SCENARIO.steps.slice(0, 3),
        {
          op: 'run',
          workload: {
            actors: [
              {
                kind: 'device',
                device: 'gpu0',
                proc: 'p',
                at: 'buf',
                pattern: 'sequential',
                writes: 0.5,
                accesses: 8192,
              },
              {
                kind: 'cpu',
                proc: 'p',
                at: 'buf',
                pattern: 'hotset',
                writes: 0.2,
                accesses: 2000,
                start: 5e5,
              },
            ],
          },
        },
        SCENARIO.steps[4]!,
      ],
    };
    const { req, s } = session();
    await req({ type: 'runLoad', scenario });
    const cmds: string[] = [];
    const off = s.userland.machine.kernel.trace.subscribe((e) => {
      if (e.name === 'dmirror_cmd') cmds.push(e.cmd);
    });
    req({ type: 'runControl', action: 'play', speed: 0 });
    const done = await until(req, 'done');
    off();
    expect(cmds.length).toBeGreaterThan(0);
    expect(new Set(cmds)).toEqual(new Set(['fault']));
    expect(done.counters).toMatchObject({ lost: 0, failed: 0 });
    expect(done.counters.evictions).toBeGreaterThan(0);
    expect(done.counters.migratedToDevice).toBe(done.counters.deviceFaults);

    const one = runScenario(
      parseScenario(scenario, 's', () => ({})),
      { trace: true },
    );
    expect(one.passed).toBe(true);
    const [a, b] = [one.steps[3]!.result, one.steps[4]!.result];
    for (const key of ['accesses', 'cpuFaults', 'deviceFaults', 'migratedToDevice', 'evictions'] as const)
      expect(done.counters[key]).toBe(a[key]! + b[key]!);
    expect(done.t).toBe(one.t);
    const saved = req({ type: 'saveSession' });
    expect(saved.drivers).toEqual({ gpu0: 'plugin:dmirror' });
    expect(saved.trace.digest).toBe(fnv1a64(formatTrace(one.trace!, 'jsonl')));
  }, 120_000);

  it(
    'a session saved mid-run loads back at the same point, its replayed trace matching',
    { timeout: 30_000 },
    () => {
      const { req } = session();
      req({ type: 'runLoad', scenario: SCENARIO });
      for (let i = 0; i < 3; i++) req({ type: 'runControl', action: 'step' });
      const before = req({ type: 'runStatus' });
      const saved = JSON.parse(JSON.stringify(req({ type: 'saveSession' }))) as SessionFile;
      expect(saved).toMatchObject({
        format: 'hmm-lab-session',
        version: 1,
        drivers: { gpu0: 'dmirror' },
        position: { stepsDone: 3 },
      });
      expect(saved.position.actions).toBeGreaterThan(0);
      expect(saved.trace.text!.split('\n').length).toBe(saved.trace.records + 1);

      const other = session();
      const r = other.req({ type: 'loadSession', session: saved });
      expect(r.verified).toBe(true);
      expect(r.message).toContain('the trace matches');
      expect(r.status).toMatchObject({
        state: 'paused',
        stepsDone: 3,
        t: before.t,
        counters: before.counters,
      });

      // Without the trace text the digest still checks the replay; a wrong digest is reported.
      const { text: _text, ...digestOnly } = saved.trace;
      expect(other.req({ type: 'loadSession', session: { ...saved, trace: digestOnly } }).verified).toBe(
        true,
      );
      const wrong = other.req({
        type: 'loadSession',
        session: { ...saved, trace: { ...digestOnly, digest: '0'.repeat(16) } },
      });
      expect(wrong.verified).toBe(false);
    },
  );

  it('bad sessions and scenarios are refused naming the field', () => {
    const { s, req } = session();
    expect(
      labFailure(() => req({ type: 'loadSession', session: { format: 'hmm-lab-session', version: 2 } }))
        .message,
    ).toContain('session.version: expected 1');
    const saved = (() => {
      req({ type: 'runLoad', scenario: SCENARIO });
      return req({ type: 'saveSession' });
    })();
    expect(
      labFailure(() =>
        req({ type: 'loadSession', session: { ...saved, trace: { ...saved.trace, text: 'x' } } }),
      ).message,
    ).toContain('session.trace.text: does not match trace.digest');
    const bad = {
      ...SCENARIO,
      steps: [...SCENARIO.steps.slice(0, 3), { op: 'run', workload: { actors: [{ kind: 'gpu' }] } }],
    };
    req({ type: 'runLoad', scenario: bad });
    req({ type: 'runControl', action: 'step' });
    expect(req({ type: 'runStatus' })).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('steps[3] (run).workload.actors[0].kind: expected "cpu" or "device"'),
    });
    // Booting another machine unloads the run.
    s.handle({ type: 'loadMachine', machine: {} });
    expect(req({ type: 'runStatus' }).state).toBe('empty');
    expect(labFailure(() => req({ type: 'seriesCsv', plot: 'faults' })).message).toContain(
      'no scenario loaded',
    );
  });

  it('a name the step runs with is refused naming step and op, after the steps before it were judged', () => {
    const { req } = session();
    req({
      type: 'runLoad',
      scenario: { ...SCENARIO, steps: [SCENARIO.steps[0], { op: 'store', proc: 'p', at: 'nope' }] },
    });
    req({ type: 'runControl', action: 'step' });
    expect(req({ type: 'runStatus' })).toMatchObject({
      state: 'failed',
      stepsDone: 1,
      results: [{ index: 0, op: 'spawn', ok: true, failures: [] }],
      error: expect.stringContaining('steps[1] (store).at: no mapping named "nope"'),
    });
  });

  it('the bundled demos load, and each passes a step', async () => {
    const { req } = session();
    expect(req({ type: 'runDemos' }).map((d) => d.id)).toEqual(RUN_DEMOS.map((d) => d.id));
    // The default demo's GPU is served by the dmirror plugin.
    expect(RUN_DEMOS[0]!.scenario).toMatchObject({ machine: { devices: [{ driver: 'plugin:dmirror' }] } });
    for (const demo of RUN_DEMOS) {
      // A demo with plugin devices may wait for their engines: the answer is then a promise.
      expect((await req({ type: 'runLoad', scenario: demo.scenario })).state).toBe('ready');
      req({ type: 'runControl', action: 'step' });
      const st = req({ type: 'runStatus' });
      expect([demo.id, st.state, st.error]).toEqual([demo.id, 'paused', undefined]);
    }
  });
});

/** The selftest `migrate` (machine by path), its device step expecting a wrong count, a CPU run expecting no access. */
function migrateScenario(): Record<string, unknown> {
  const file = JSON.parse(readFileSync(join(SELFTESTS_DIR, 'migrate.scenario.json'), 'utf8')) as {
    steps: Record<string, unknown>[];
  };
  const steps = file.steps.map((s) => structuredClone(s));
  steps[5]!.expect = { ret: 0, cpages: 1000 };
  const run = {
    op: 'run',
    workload: { actors: [{ kind: 'cpu', proc: 'test', at: 'buffer', writes: 0 }] },
    expect: { lost: 0, accesses: 1 },
  };
  return { ...file, steps: [...steps.slice(0, 7), run, ...steps.slice(7)] };
}

describe('lab/run: scenario files from the app', () => {
  const machineFile = JSON.parse(
    readFileSync(join(SELFTESTS_DIR, 'dmirror.machine.json'), 'utf8'),
  ) as unknown;

  it("judges every step as `hmm-lab run` does: a missed expect is FAIL with the CLI's text", async () => {
    const scenario = migrateScenario();
    const { req } = session();
    req({ type: 'runLoad', scenario, machineFile });
    req({ type: 'runControl', action: 'play', speed: 0 });
    const done = await until(req, 'done');
    expect(done.results.map((r) => [r.index, r.op, r.ok])).toEqual([
      [0, 'spawn', true],
      [1, 'open', true],
      [2, 'buffer', true],
      [3, 'mmap', true],
      [4, 'store', true],
      [5, 'device', false],
      [6, 'check', true],
      [7, 'run', false],
      [8, 'munmap', true],
      [9, 'close', true],
    ]);
    expect(done.results[5]!.failures).toEqual(['steps[5].expect.cpages: expected 1000, got 1024']);
    // The device command's migration is plotted as a workload's would be.
    const { series } = req({ type: 'runSeries' });
    expect(series.devices.find((d) => d.name === 'dmirror0')?.toDeviceTotal.at(-1)).toBe(1024);
    expect(done.results[7]!.failures).toEqual([
      expect.stringMatching(/^steps\[7\]\.expect\.accesses: expected 1, got \d+$/),
    ]);

    // The CLI, given the same files, prints the same failures.
    const dir = mkdtempSync(join(tmpdir(), 'hmm-lab-run-'));
    writeFileSync(join(dir, 'dmirror.machine.json'), JSON.stringify(machineFile));
    writeFileSync(join(dir, 'migrate.scenario.json'), JSON.stringify(scenario));
    const out: string[] = [];
    expect(await main(['run', join(dir, 'migrate.scenario.json')], (l) => out.push(l))).toBe(1);
    const failures = done.results.flatMap((r) => r.failures.map((f) => `  ${f}`));
    expect(out.slice(1)).toEqual(failures);

    // The machine is kept inline: a saved session and a reset need no file.
    expect(req({ type: 'saveSession' }).machine).toEqual(machineFile);
    expect(req({ type: 'runControl', action: 'reset' })).toMatchObject({ state: 'ready', results: [] });
  });

  it('a plugin device of a machine file gets its engine before the machine boots', async () => {
    const file = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../plugins/dmirror/migrate.scenario.json'), 'utf8'),
    ) as Record<string, unknown>;
    const { req } = session();
    const st = await req({
      type: 'runLoad',
      scenario: { ...file, machine: 'gpu.machine.json' },
      machineFile: file.machine,
    });
    expect(st.state).toBe('ready');
    req({ type: 'runControl', action: 'play', speed: 0 });
    const done = await until(req, 'done');
    expect(done.results.length).toBe((file.steps as unknown[]).length);
    expect(done.results.filter((r) => !r.ok)).toEqual([]);
  });

  it('a machine named by path must come with the scenario; its errors name the file and field', () => {
    const scenario = migrateScenario();
    const { req } = session();
    expect(labFailure(() => req({ type: 'runLoad', scenario })).message).toBe(
      'scenario.machine: the scenario names the machine file "dmirror.machine.json": open it together with the scenario',
    );
    expect(
      labFailure(() =>
        req({
          type: 'runLoad',
          scenario,
          machineFile: { devices: [{ name: 'd', kind: 'gpu', memory: '1M' }] },
        }),
      ).message,
    ).toContain('dmirror.machine.json.devices[0].kind');
    // Steps are checked before the machine boots, naming step and op.
    const steps = [...(scenario.steps as unknown[])];
    steps[3] = { ...(steps[3] as object), length: 'lots' };
    expect(
      labFailure(() => req({ type: 'runLoad', scenario: { ...scenario, steps }, machineFile })).message,
    ).toContain('steps[3] (mmap).length: expected a size');
    expect(req({ type: 'runStatus' }).state).toBe('empty');
  });
});
