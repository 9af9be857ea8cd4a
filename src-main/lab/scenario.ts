// Scenario files (../shared/design/SCENARIOS.md): a machine, a seed and steps, each step
// optionally carrying `expect`. The runner boots the machine, runs every step through the
// lab's userland and compares results with expectations, naming step, field, expected and
// actual value for every difference.
import type { OpResult, RunStepResult } from '../api';
import { errname, errnum } from '../kernel/include/errno';
import { clockFor } from './clock';
import { compareFill, parseFill } from './fill';
import { checkDepth, InputError } from './input-error';
import { Machine } from './machine';
import type { PluginHost } from '../drivers/plugin';
import { parseMachine, type MachineSpec } from './machine-file';
import { checkStep, stepPath, Userland, type OpOutcome } from './ops';
import { RssRecorder } from './rss';
import { TraceRecorder, type TraceRecord } from './trace';
import { parseSize } from './numbers';

export interface Scenario {
  name: string;
  seed: number;
  machine: MachineSpec;
  steps: Record<string, unknown>[];
}

export interface StepReport extends RunStepResult {
  result: OpResult;
}

export interface ScenarioReport {
  name: string;
  seed: number;
  passed: boolean;
  steps: StepReport[];
  /** Simulated time at the end, ns. */
  t: number;
}

// "$schema" lets editors find docs/schema/scenario.schema.json.
export const SCENARIO_FIELDS = ['$schema', 'name', 'machine', 'seed', 'steps', 'description'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parse a scenario object. `loadMachine(path)` reads a machine file a scenario names by
 * path (relative to the scenario); "default" is the default machine.
 */
export function parseScenario(
  input: unknown,
  source: string,
  loadMachine: (path: string) => unknown,
): Scenario {
  if (!isObject(input)) throw new InputError(source, 'expected a JSON object with "name" and "steps"');
  checkDepth(input, source);
  for (const key of Object.keys(input))
    if (!SCENARIO_FIELDS.includes(key))
      throw new InputError(
        `${source}.${key}`,
        `unknown field (expected one of: ${SCENARIO_FIELDS.join(', ')})`,
      );
  if (typeof input.name !== 'string' || !input.name)
    throw new InputError(`${source}.name`, 'expected a non-empty string');
  const seed = input.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
    throw new InputError(`${source}.seed`, `expected a non-negative integer, got ${JSON.stringify(seed)}`);
  const m = input.machine ?? 'default';
  let machine: MachineSpec;
  if (m === 'default') machine = parseMachine({}, 'default', `${source}.machine`);
  else if (typeof m === 'string') machine = parseMachine(loadMachine(m), m, m);
  else machine = parseMachine(m, `${input.name} (inline)`, `${source}.machine`);
  if (!Array.isArray(input.steps)) throw new InputError(`${source}.steps`, 'expected an array of steps');
  // Every step is checked before any runs, so a typo in the last step fails at once.
  const steps = input.steps.map((s: unknown, i) => {
    const path = stepPath(`steps[${i}]`, s);
    checkStep(s, path);
    const step = s as Record<string, unknown>;
    if (step.expect !== undefined) checkExpectShape(step.expect, `${path}.expect`);
    return step;
  });
  return { name: input.name, seed, machine, steps };
}

function isByte(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255;
}

/**
 * The fields of `expect` whose form is known: a wrong one is bad input, not a failed
 * expectation. Other fields (run counters, a driver's own results) compare as JSON.
 */
function checkExpectShape(expect: unknown, path: string): void {
  if (!isObject(expect))
    throw new InputError(path, `expected an object of result fields, got ${JSON.stringify(expect)}`);
  const { ret, signal, data, bytes } = expect;
  if (
    ret !== undefined &&
    !(typeof ret === 'number' && Number.isInteger(ret)) &&
    !(typeof ret === 'string' && (ret === '0' || errnum(ret) !== undefined))
  )
    throw new InputError(
      `${path}.ret`,
      `expected 0, an errno like -22 or a kernel error name like "-EINVAL", got ${JSON.stringify(ret)}`,
    );
  if (signal !== undefined && signal !== null && (typeof signal !== 'string' || !/^SIG[A-Z]+$/.test(signal)))
    throw new InputError(
      `${path}.signal`,
      `expected a signal name like "SIGSEGV", or null for none, got ${JSON.stringify(signal)}`,
    );
  if (data !== undefined) parseFill(data, `${path}.data`);
  if (bytes !== undefined && !isByte(bytes) && !(Array.isArray(bytes) && bytes.every(isByte)))
    throw new InputError(
      `${path}.bytes`,
      `expected a byte (0 to 255), or an array of bytes, got ${JSON.stringify(bytes)}`,
    );
  for (const field of ['rss', 'smaps']) {
    const counters = expect[field];
    if (counters === undefined) continue;
    if (!isObject(counters))
      throw new InputError(`${path}.${field}`, 'expected an object of counters, like {"anon": 16}');
    for (const [key, v] of Object.entries(counters))
      if (typeof v !== 'number')
        throw new InputError(`${path}.${field}.${key}`, `expected a number, got ${JSON.stringify(v)}`);
  }
}

/** expect.ret / result ret as an error name or "0", so 0, "0" and -22/"-EINVAL" compare. */
function retName(v: unknown): string {
  if (typeof v === 'number') return errname(v);
  if (typeof v === 'string') return errnum(v) !== undefined ? (v.startsWith('-') ? v : `-${v}`) : v;
  return JSON.stringify(v);
}

/** Check one step's result against its expectations; the messages name each field. */
function checkExpect(
  expect: Record<string, unknown>,
  step: Record<string, unknown>,
  result: OpResult,
  data: Uint8Array | undefined,
  path: string,
): string[] {
  const failures: string[] = [];
  const differ = (field: string, want: unknown, got: unknown): void => {
    failures.push(
      `${path}.expect.${field}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got ?? null)}`,
    );
  };
  for (const [field, want] of Object.entries(expect)) {
    switch (field) {
      case 'ret':
        if (retName(want) !== retName(result.ret ?? 0)) differ(field, want, result.ret ?? 0);
        break;
      case 'signal':
        if ((want ?? null) !== (result.signal ?? null)) differ(field, want, result.signal);
        break;
      case 'data': {
        if (!data) {
          failures.push(`${path}.expect.data: the step read no data to check`);
          break;
        }
        const fill = parseFill(want, `${path}.expect.data`);
        const start = step.offset === undefined ? 0 : parseSize(step.offset, `${path}.offset`);
        const miss = compareFill(data, fill, start);
        if (miss)
          failures.push(
            `${path}.expect.data: at byte offset ${miss.offset} expected ${miss.expected}, got ${miss.actual}`,
          );
        break;
      }
      case 'bytes': {
        const got = result.bytes ?? [];
        // A byte or an array of bytes (checkExpectShape).
        const all = typeof want === 'number' ? got.map(() => want) : (want as number[]);
        const at = all.findIndex((b, i) => b !== got[i]);
        if (at >= 0 || all.length !== got.length)
          failures.push(
            `${path}.expect.bytes: at page ${at < 0 ? all.length : at} expected ${JSON.stringify(all[at])}, got ${JSON.stringify(got[at] ?? null)}`,
          );
        break;
      }
      case 'rss':
      case 'smaps': {
        const got = (result[field] ?? {}) as Record<string, number>;
        for (const [key, v] of Object.entries(want as Record<string, number>))
          if (got[key] !== v) differ(`${field}.${key}`, v, got[key]);
        break;
      }
      default: {
        const got = (result as unknown as Record<string, unknown>)[field];
        if (JSON.stringify(got) !== JSON.stringify(want)) differ(field, want, got);
      }
    }
  }
  return failures;
}

export interface RunOptions {
  /** Keep the trace of the run. */
  trace?: boolean;
  /** Which plugins serve the machine's devices (engines prepared: await plugins.prepare()). */
  plugins?: PluginHost;
}

/**
 * Judge what step `index` of a scenario gave against its `expect`: the one check behind
 * `hmm-lab run` and the app's Run view. Input errors name the op too (`steps[3] (mmap).length`,
 * stepPath); failed expectations name the step alone (`steps[3].expect.ret`).
 */
export function judgeStep(
  index: number,
  step: Record<string, unknown>,
  outcome: Pick<OpOutcome, 'result' | 'data'>,
): StepReport {
  const { expect, ...op } = step;
  const failures = expect
    ? checkExpect(expect as Record<string, unknown>, op, outcome.result, outcome.data, `steps[${index}]`)
    : [];
  return { index, op: String(op.op), ok: failures.length === 0, result: outcome.result, failures };
}

/** Boot the scenario's machine and run its steps; bad input throws InputError. */
export function runScenario(s: Scenario, opts: RunOptions = {}): ScenarioReport & { trace?: TraceRecord[] } {
  const machine = new Machine(s.machine, opts.plugins);
  const failed = machine.probeFailures();
  if (failed.length)
    throw new InputError(
      `${s.name}: machine.devices`,
      `device "${failed[0]!.name}" failed to probe: ${failed[0]!.error}`,
    );
  const k = machine.kernel;
  const clock = clockFor(machine);
  const rss = new RssRecorder(k, clock);
  const recorder = opts.trace ? new TraceRecorder(k, clock) : null;
  const userland = new Userland(machine, clock, rss);
  userland.seed = s.seed;
  const steps = s.steps.map((step, index) => {
    const { expect: _expect, ...op } = step;
    return judgeStep(index, step, userland.run(op, stepPath(`steps[${index}]`, op)));
  });
  recorder?.detach();
  clock.detach();
  rss.detach();
  return {
    name: s.name,
    seed: s.seed,
    passed: steps.every((st) => st.ok),
    steps,
    t: clock.now,
    ...(recorder ? { trace: recorder.records } : {}),
  };
}
