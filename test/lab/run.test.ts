import { describe, expect, it } from 'vitest';
import type { LabEvent, RunResponses, RunStatus, SessionFile } from '../../src-main/api';
import { LabFailure, LabSession } from '../../src-main/lab/session';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { formatTrace } from '../../src-main/lab/trace';
import { fnv1a64 } from '../../src-main/lab/session-file';
import { RUN_DEMOS } from '../../src-main/lab/demos';
import { SERIES_EVENT_INTERVAL_MS } from '../../src-main/lab/run';

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

function failure(fn: () => unknown): LabFailure {
  try {
    fn();
  } catch (e) {
    if (e instanceof LabFailure) return e;
    throw e;
  }
  throw new Error('no LabFailure');
}

describe('lab/run: playing a scenario in slices', () => {
  it('played in slices, the run gives the counters and trace of the scenario run in one go', async () => {
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
    const last = series.at(-1) as Extract<LabEvent, { type: 'series' }>;
    expect(last.status.state).toBe('done');
    expect(last.series.devices[0]!.toDeviceTotal.at(-1)).toBe(done.counters.migratedToDevice);
  });

  it('a session saved mid-run loads back at the same point, its replayed trace matching', () => {
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
    expect(r.status).toMatchObject({ state: 'paused', stepsDone: 3, t: before.t, counters: before.counters });

    // Without the trace text the digest still checks the replay; a wrong digest is reported.
    const { text: _text, ...digestOnly } = saved.trace;
    expect(other.req({ type: 'loadSession', session: { ...saved, trace: digestOnly } }).verified).toBe(true);
    const wrong = other.req({
      type: 'loadSession',
      session: { ...saved, trace: { ...digestOnly, digest: '0'.repeat(16) } },
    });
    expect(wrong.verified).toBe(false);
  });

  it('bad sessions and scenarios are refused naming the field', () => {
    const { s, req } = session();
    expect(
      failure(() => req({ type: 'loadSession', session: { format: 'hmm-lab-session', version: 2 } })).message,
    ).toContain('session.version: expected 1');
    const saved = (() => {
      req({ type: 'runLoad', scenario: SCENARIO });
      return req({ type: 'saveSession' });
    })();
    expect(
      failure(() => req({ type: 'loadSession', session: { ...saved, trace: { ...saved.trace, text: 'x' } } }))
        .message,
    ).toContain('session.trace.text: does not match trace.digest');
    expect(
      failure(() => req({ type: 'runLoad', scenario: { ...SCENARIO, machine: 'm.json' } })).message,
    ).toContain('scenario.machine: a scenario loaded in the app carries its machine inline');
    const bad = {
      ...SCENARIO,
      steps: [...SCENARIO.steps.slice(0, 3), { op: 'run', workload: { actors: [{ kind: 'gpu' }] } }],
    };
    req({ type: 'runLoad', scenario: bad });
    req({ type: 'runControl', action: 'step' });
    expect(req({ type: 'runStatus' })).toMatchObject({
      state: 'failed',
      error: expect.stringContaining('steps[3].workload.actors[0].kind: expected "cpu" or "device"'),
    });
    // Booting another machine unloads the run.
    s.handle({ type: 'loadMachine', machine: {} });
    expect(req({ type: 'runStatus' }).state).toBe('empty');
    expect(failure(() => req({ type: 'seriesCsv', plot: 'faults' })).message).toContain('no scenario loaded');
  });

  it('the bundled demos load, and each passes a step', () => {
    const { req } = session();
    expect(req({ type: 'runDemos' }).map((d) => d.id)).toEqual(RUN_DEMOS.map((d) => d.id));
    for (const demo of RUN_DEMOS) {
      expect(req({ type: 'runLoad', scenario: demo.scenario }).state).toBe('ready');
      req({ type: 'runControl', action: 'step' });
      const st = req({ type: 'runStatus' });
      expect([demo.id, st.state, st.error]).toEqual([demo.id, 'paused', undefined]);
    }
  });
});
