// The Run view's engine in the lab: a scenario played step by step, its `run` workloads in
// slices so the lab keeps answering requests in between (the slices are separate macrotasks),
// at a chosen speed of simulated time per wall-clock second. Slicing never changes the
// simulation: the same scenario and seed give the same trace however it is played.
// While it plays, the aggregated series go out as `series` events, at most 10 a second.
// Each finished step is judged against its `expect` by the CLI's own check (judgeStep), so a
// scenario file passes or fails the same in the app as under `hmm-lab run`.
import type {
  LabEvent,
  RunRequest,
  RunResponses,
  RunStatus,
  RunStepResult,
  SessionFile,
  WorkloadCounters,
} from '../api';
import { RUN_DEMOS } from './demos';
import { InputError } from './input-error';
import { parseMachine, type MachineSpec } from './machine-file';
import { stepPath, type Userland } from './ops';
import { judgeStep, parseScenario, type Scenario } from './scenario';
import { SeriesRecorder, seriesCsv } from './series';
import { fnv1a64, parseSessionFile, SESSION_FORMAT, SESSION_VERSION } from './session-file';
import { formatTrace, TraceRecorder } from './trace';
import { addCounters, observeWorkloads, parseWorkload, WorkloadRun, zeroCounters } from './workload';

/** What the controller needs of the session it serves. */
export interface RunHost {
  /** Start the session over on a new machine, as loadMachine does; returns its userland. */
  boot(spec: MachineSpec): Userland;
  /** The session's userland now (another request may have booted a new machine). */
  userland(): Userland;
  emit(e: LabEvent): void;
  /** A slice changed the kernel: push processes, layout and rss as after an op. */
  changed(): void;
}

/** At most one `series` event per this many wall-clock ms while playing. */
export const SERIES_EVENT_INTERVAL_MS = 100;
/**
 * While playing, processes, layout, mirror and rss go out at most this often: every front end
 * parses each and some fetch more on it, which cost the renderer more than the plots at 10 a
 * second (docs/BENCHMARKS.md, Renderer). A stop pushes them at once.
 */
export const HOST_EVENT_INTERVAL_MS = 1000;
/** Wall-clock budget of one slice, ms: requests wait at most about this long. */
export const SLICE_MS = 25;
/** Scheduler actions one `step` runs. */
export const STEP_ACTIONS = 2048;
/** Trace records a loaded run keeps for saving (the oldest go first). */
export const RUN_TRACE_CAPACITY = 200_000;
/** Simulated ns per wall second a run plays at unless told: 0, as fast as the lab goes. */
export const DEFAULT_SPEED = 0;

const RUN_REQUESTS = new Set<string>([
  'runDemos',
  'runLoad',
  'runControl',
  'runSpeed',
  'runStatus',
  'runSeries',
  'seriesCsv',
  'saveSession',
  'loadSession',
]);

export function isRunRequest(req: { type: string }): req is RunRequest {
  return RUN_REQUESTS.has(req.type);
}

/**
 * The devices of the machine a request boots (a scenario loaded, a session replayed), so the
 * session can make the engines of their plugin drivers first; none when it boots nothing or
 * its machine is malformed (loading then reports why).
 */
export function devicesBooted(req: RunRequest): MachineSpec['devices'] {
  const from = (v: unknown, key: string): unknown =>
    typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  let machine: unknown;
  if (req.type === 'runLoad') {
    machine = from(req.scenario, 'machine');
    // A machine named by path comes with the request.
    if (typeof machine === 'string') machine = req.machineFile;
  } else if (req.type === 'loadSession')
    machine = from(from(req.session, 'scenario'), 'machine') ?? from(req.session, 'machine');
  if (typeof machine !== 'object' || machine === null) return [];
  try {
    return parseMachine(machine, 'scenario').devices;
  } catch {
    return [];
  }
}

interface Loaded {
  /** The scenario as loaded, its machine inline (what reset reloads and a session saves). */
  raw: Record<string, unknown>;
  scenario: Scenario;
  userland: Userland;
  series: SeriesRecorder;
  trace: TraceRecorder;
}

export class RunController {
  private loaded: Loaded | null = null;
  private state: RunStatus['state'] = 'empty';
  private error: string | undefined;
  private stepsDone = 0;
  /** The finished steps, judged against their `expect`. */
  private results: RunStepResult[] = [];
  private current: WorkloadRun | null = null;
  private readonly counters = zeroCounters();
  private speed = DEFAULT_SPEED;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  /** Wall-clock ms and simulated ns when play started or the speed last changed. */
  private playWall = 0;
  private playSim = 0;
  private lastEmit = 0;
  private lastChanged = 0;
  private emitTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly host: RunHost) {}

  handle(req: RunRequest): RunResponses[keyof RunResponses] {
    switch (req.type) {
      case 'runDemos':
        return RUN_DEMOS.map((d) => structuredClone(d));
      case 'runLoad':
        this.load(req.scenario, req.machineFile);
        return this.status();
      case 'runControl':
        if (req.speed !== undefined) this.setSpeed(req.speed);
        this.control(req.action);
        return this.status();
      case 'runSpeed':
        this.setSpeed(req.speed);
        return this.status();
      case 'runStatus':
        return this.status();
      case 'runSeries':
        return { status: this.status(), series: this.live().series.snapshot() };
      case 'seriesCsv':
        return seriesCsv(this.live().series.snapshot(), req.plot);
      case 'saveSession':
        return this.save(req.trace ?? true);
      case 'loadSession':
        return this.loadSession(req.session);
    }
  }

  /** The loaded run, if the session still runs its machine. */
  private live(): Loaded {
    if (!this.loaded || this.loaded.userland !== this.host.userland()) {
      if (this.loaded) this.unload();
      throw new InputError('run', 'no scenario loaded (pick a demo or load a scenario first)');
    }
    return this.loaded;
  }

  status(): RunStatus {
    const l = this.loaded && this.loaded.userland === this.host.userland() ? this.loaded : null;
    const counters: WorkloadCounters = { ...this.counters };
    if (this.current) addCounters(counters, this.current.counters);
    return {
      state: l ? this.state : 'empty',
      scenario: l?.scenario.name ?? '',
      seed: l?.scenario.seed ?? 0,
      steps: l?.scenario.steps.length ?? 0,
      stepsDone: this.stepsDone,
      accessesPlanned: this.current?.accessesPlanned ?? 0,
      accessesDone: this.current?.accessesDone ?? 0,
      speed: this.speed,
      t: l ? l.userland.clock.now : this.host.userland().clock.now,
      counters,
      results: l ? [...this.results] : [],
      ...(this.error !== undefined && { error: this.error }),
    };
  }

  // ---- loading -------------------------------------------------------------------------

  /** Load a scenario; one that names a machine file by path comes with its contents. */
  private load(raw: unknown, machineFile?: unknown): void {
    let inline = raw as Record<string, unknown>;
    const scenario = parseScenario(raw, 'scenario', (path) => {
      if (machineFile === undefined)
        throw new InputError(
          'scenario.machine',
          `the scenario names the machine file "${path}": open it together with the scenario`,
        );
      inline = { ...inline, machine: machineFile };
      return machineFile;
    });
    this.stop();
    this.unload();
    const userland = this.host.boot(scenario.machine);
    const failed = userland.machine.probeFailures();
    if (failed.length)
      throw new InputError(
        'scenario.machine.devices',
        `device "${failed[0]!.name}" failed to probe: ${failed[0]!.error}`,
      );
    userland.seed = scenario.seed;
    const k = userland.machine.kernel;
    const series = new SeriesRecorder(k, userland.clock, userland.rss, () => deviceGauges(userland));
    observeWorkloads(userland, series);
    this.loaded = {
      raw: inline,
      scenario,
      userland,
      series,
      trace: new TraceRecorder(k, userland.clock, RUN_TRACE_CAPACITY),
    };
    this.stepsDone = 0;
    this.results = [];
    this.current = null;
    Object.assign(this.counters, zeroCounters());
    this.error = undefined;
    this.state = 'ready';
    this.emitSeries(true);
  }

  private unload(): void {
    if (!this.loaded) return;
    this.loaded.series.detach();
    this.loaded.trace.detach();
    this.loaded = null;
    this.current = null;
  }

  // ---- playing -------------------------------------------------------------------------

  private setSpeed(speed: number): void {
    if (typeof speed !== 'number' || !(speed >= 0) || !Number.isFinite(speed))
      throw new InputError(
        'speed',
        `expected simulated ns per second (0 for as fast as possible), got ${JSON.stringify(speed)}`,
      );
    this.speed = speed;
    this.rebase();
  }

  private rebase(): void {
    this.playWall = Date.now();
    this.playSim = this.loaded?.userland.clock.now ?? 0;
  }

  private control(action: 'play' | 'pause' | 'step' | 'reset'): void {
    const l = this.live();
    switch (action) {
      case 'play':
        if (this.state === 'done' || this.state === 'failed' || this.state === 'playing') break;
        this.state = 'playing';
        this.rebase();
        this.schedule();
        break;
      case 'pause':
        if (this.state !== 'playing') break;
        this.stop();
        this.state = 'paused';
        break;
      case 'step':
        if (this.state === 'done' || this.state === 'failed') break;
        this.stop();
        this.state = 'paused';
        this.slice(STEP_ACTIONS, Infinity, () => false);
        break;
      case 'reset':
        this.load(l.raw);
        return;
    }
    this.emitSeries(true);
  }

  private stop(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer as ReturnType<typeof setTimeout>);
      clearImmediate(this.timer as ReturnType<typeof setImmediate>);
    }
    this.timer = undefined;
  }

  private schedule(): void {
    const tick = (): void => {
      this.timer = undefined;
      if (this.state !== 'playing' || !this.loaded || this.loaded.userland !== this.host.userland()) return;
      const deadline = Date.now() + SLICE_MS;
      const until =
        this.speed > 0 ? this.playSim + (this.speed * (Date.now() - this.playWall)) / 1000 : Infinity;
      this.slice(Infinity, until, () => Date.now() >= deadline);
      // Fallen more than a second behind the requested speed: do not try to catch up in a burst.
      if (this.speed > 0 && until - this.loaded.userland.clock.now > this.speed) this.rebase();
      if (this.state === 'playing') {
        this.timer = this.speed > 0 ? setTimeout(tick, 1000 / 30) : setImmediate(tick);
        this.emitSeries(false);
      } else this.emitSeries(true);
    };
    this.timer = setImmediate(tick);
  }

  /**
   * Run on: non-run steps whole (one action each), run steps action by action, until
   * `maxActions`, simulated time `until`, `stop()` or `stepLimit` steps done. Ends the run
   * ('done') after the last step; a bad step fails it.
   */
  private slice(maxActions: number, until: number, stop: () => boolean, stepLimit = Infinity): void {
    const l = this.live();
    const steps = l.scenario.steps;
    let budget = maxActions;
    try {
      while (budget > 0) {
        if (this.current) {
          const before = this.current.actions;
          const done = this.current.advance(budget, until, stop);
          budget -= this.current.actions - before;
          if (!done) break;
          addCounters(this.counters, this.current.counters);
          // The result the `run` op gives when it runs in one go (Userland.run).
          this.judge({ result: { op: 'run', ...this.current.counters, t: l.userland.clock.now } });
          this.current = null;
          continue;
        }
        if (this.stepsDone >= steps.length) {
          this.state = 'done';
          break;
        }
        if (this.stepsDone >= stepLimit || stop() || l.userland.clock.now > until) break;
        // parseScenario checked every step's fields; names are checked as each runs.
        const { expect: _expect, ...step } = steps[this.stepsDone]!;
        const path = stepPath(`steps[${this.stepsDone}]`, step);
        if (step.op === 'run') {
          const spec = parseWorkload(step.workload, `${path}.workload`, l.userland);
          this.current = new WorkloadRun(l.userland, spec, l.userland.seed, l.series);
        } else {
          const outcome = l.userland.run(step, path);
          // A device command's migrations reach the plots as a workload's do.
          const { cpages } = outcome.result;
          if (step.op === 'device' && cpages && (step.cmd === 'migrate' || step.cmd === 'migrate_to_sys'))
            l.series.migrated(String(step.device), step.cmd === 'migrate', cpages, l.userland.clock.now);
          this.judge(outcome);
          budget--;
        }
      }
    } catch (e) {
      this.stop();
      this.state = 'failed';
      this.error = e instanceof Error ? e.message : String(e);
      this.current = null;
    }
  }

  /** The current step finished with `outcome`: judge it as `hmm-lab run` does, go on to the next. */
  private judge(outcome: Parameters<typeof judgeStep>[2]): void {
    const { result: _result, ...judged } = judgeStep(
      this.stepsDone,
      this.live().scenario.steps[this.stepsDone]!,
      outcome,
    );
    this.results.push(judged);
    this.stepsDone++;
  }

  // ---- events --------------------------------------------------------------------------

  /** Push the series now (`force`), or at most once per SERIES_EVENT_INTERVAL_MS. */
  private emitSeries(force: boolean): void {
    const wait = this.lastEmit + SERIES_EVENT_INTERVAL_MS - Date.now();
    if (!force && wait > 0) {
      if (!this.emitTimer) {
        this.emitTimer = setTimeout(() => this.emitSeries(true), wait);
        this.emitTimer.unref?.();
      }
      return;
    }
    clearTimeout(this.emitTimer);
    this.emitTimer = undefined;
    if (!this.loaded || this.loaded.userland !== this.host.userland()) return;
    this.lastEmit = Date.now();
    if (this.state !== 'playing' || this.lastEmit - this.lastChanged >= HOST_EVENT_INTERVAL_MS) {
      this.lastChanged = this.lastEmit;
      this.host.changed();
    }
    this.host.emit({ type: 'series', status: this.status(), series: this.loaded.series.snapshot() });
  }

  // ---- sessions ------------------------------------------------------------------------

  private save(withTrace: boolean): SessionFile {
    const l = this.live();
    const text = formatTrace(l.trace.records, 'jsonl');
    const drivers: Record<string, string> = {};
    for (const d of l.scenario.machine.devices) drivers[d.name] = d.driver;
    return {
      format: SESSION_FORMAT,
      version: SESSION_VERSION,
      machine: l.raw.machine ?? 'default',
      scenario: structuredClone(l.raw),
      drivers,
      position: { stepsDone: this.stepsDone, actions: this.current?.actions ?? 0 },
      speed: this.speed,
      counters: this.status().counters,
      trace: {
        format: 'jsonl',
        records: l.trace.length,
        dropped: l.trace.dropped,
        digest: fnv1a64(text),
        ...(withTrace && { text }),
      },
    };
  }

  /** Load a saved session: boot its machine, replay to its position, check the trace. */
  private loadSession(v: unknown): RunResponses['loadSession'] {
    const file = parseSessionFile(v);
    const scenario = { ...file.scenario };
    if (scenario.machine === undefined && file.machine !== undefined) scenario.machine = file.machine;
    // The drivers the session was made with must be the ones this lab binds.
    const spec = parseMachine(
      scenario.machine === 'default' || scenario.machine === undefined ? {} : scenario.machine,
      'session',
      'session.scenario.machine',
    );
    for (const [dev, driver] of Object.entries(file.drivers)) {
      const d = spec.devices.find((x) => x.name === dev);
      if (d && d.driver !== driver)
        throw new InputError(
          `session.drivers.${dev}`,
          `the session used driver "${driver}", this lab binds "${d.driver}"`,
        );
    }
    this.load(scenario);
    this.speed = file.speed;
    const { stepsDone, actions } = file.position;
    const never = (): boolean => false;
    this.slice(Infinity, Infinity, never, stepsDone);
    if (actions > 0 && this.state !== 'failed') this.slice(actions, Infinity, never, stepsDone + 1);
    if (this.state === 'ready' || this.state === 'playing') this.state = 'paused';
    const l = this.live();
    const digest = fnv1a64(formatTrace(l.trace.records, 'jsonl'));
    const verified = digest === file.trace.digest && l.trace.dropped === file.trace.dropped;
    this.emitSeries(true);
    return {
      status: this.status(),
      verified,
      message: verified
        ? `replayed ${this.stepsDone} steps: the trace matches the saved one (${l.trace.length} records)`
        : `replayed, but the trace differs from the saved one (digest ${digest}, saved ${file.trace.digest})`,
    };
  }
}

/** The machine's devices with a driver the lab drives: size and pages in use, for the occupancy plot. */
function deviceGauges(userland: Userland): { name: string; pages: number; used: number }[] {
  const out: { name: string; pages: number; used: number }[] = [];
  for (const [name, d] of userland.machine.devices) {
    if ('error' in d || !d.driver) continue;
    const mem = d.driver.memory();
    out.push({ name, pages: mem.pages, used: mem.pages - mem.free });
  }
  return out;
}
