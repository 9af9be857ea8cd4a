// Scenario files (../shared/design/SCENARIOS.md): a machine, a seed and steps, each step
// optionally carrying `expect`. The runner boots the machine, runs every step through the
// lab's userland and compares results with expectations, naming step, field, expected and
// actual value for every difference.
import type { OpResult } from '../api';
import { errname, errnum } from '../kernel/include/errno';
import { clockFor } from './clock';
import { compareFill, parseFill } from './fill';
import { InputError } from './input-error';
import { Machine } from './machine';
import type { PluginHost } from '../drivers/plugin';
import { parseMachine, type MachineSpec } from './machine-file';
import { Userland } from './ops';
import { RssRecorder } from './rss';
import { TraceRecorder, type TraceRecord } from './trace';
import { parseSize } from './numbers';

export interface Scenario {
  name: string;
  seed: number;
  machine: MachineSpec;
  steps: Record<string, unknown>[];
}

export interface StepReport {
  index: number;
  op: string;
  ok: boolean;
  result: OpResult;
  failures: string[];
}

export interface ScenarioReport {
  name: string;
  seed: number;
  passed: boolean;
  steps: StepReport[];
  /** Simulated time at the end, ns. */
  t: number;
}

const SCENARIO_FIELDS = ['name', 'machine', 'seed', 'steps', 'description'];

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
  const steps = input.steps.map((s, i) => {
    if (!isObject(s))
      throw new InputError(
        `${source}.steps[${i}]`,
        'expected a step object like {"op": "spawn", "proc": "p"}',
      );
    return s;
  });
  return { name: input.name, seed, machine, steps };
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
        const all = typeof want === 'number' ? got.map(() => want) : want;
        if (!Array.isArray(all))
          throw new InputError(`${path}.expect.bytes`, 'expected a byte, or an array of bytes');
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
        if (!isObject(want))
          throw new InputError(`${path}.expect.${field}`, 'expected an object of counters');
        for (const [key, v] of Object.entries(want))
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
  const steps: StepReport[] = [];
  s.steps.forEach((step, index) => {
    const path = `steps[${index}]`;
    const { expect, ...op } = step;
    if (expect !== undefined && !isObject(expect))
      throw new InputError(`${path}.expect`, 'expected an object of result fields');
    const outcome = userland.run(op, path);
    const failures = expect ? checkExpect(expect, op, outcome.result, outcome.data, path) : [];
    steps.push({ index, op: String(op.op), ok: failures.length === 0, result: outcome.result, failures });
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
