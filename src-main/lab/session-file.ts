// Saved sessions (docs/SESSIONS.md): the machine, the scenario with its seed, the drivers, how
// far the run went and its trace. Loading replays the scenario to the same position, which the
// lab's determinism makes exact, and checks the replayed trace against the saved digest.
import type { SessionFile, WorkloadCounters } from '../api';
import { InputError } from './input-error';

export const SESSION_FORMAT = 'hmm-lab-session';
export const SESSION_VERSION = 1;

/**
 * FNV-1a, 64 bits, over the UTF-8 bytes of `text`, as 16 hex digits. Computed in 16-bit
 * limbs (no BigInt), so hashing a trace of a million lines stays fast.
 */
export function fnv1a64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i]!;
    // h *= 0x100000001b3 (the FNV prime: 2^40 + 0x1b3), limb by limb.
    const t0 = h0 * 0x1b3;
    let t1 = h1 * 0x1b3;
    let t2 = h2 * 0x1b3;
    let t3 = h3 * 0x1b3;
    t2 += h0 << 8;
    t3 += h1 << 8;
    t1 += t0 >>> 16;
    h0 = t0 & 0xffff;
    t2 += t1 >>> 16;
    h1 = t1 & 0xffff;
    h3 = (t3 + (t2 >>> 16)) & 0xffff;
    h2 = t2 & 0xffff;
  }
  const hex = (n: number): string => n.toString(16).padStart(4, '0');
  return hex(h3) + hex(h2) + hex(h1) + hex(h0);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function count(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new InputError(path, `expected a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** Check a session file's envelope; the scenario inside is checked when it is loaded. */
export function parseSessionFile(v: unknown, path = 'session'): SessionFile {
  if (!isObject(v)) throw new InputError(path, 'expected a session object (a file saved by HMM Lab)');
  if (v.format !== SESSION_FORMAT)
    throw new InputError(`${path}.format`, `expected "${SESSION_FORMAT}", got ${JSON.stringify(v.format)}`);
  if (v.version !== SESSION_VERSION)
    throw new InputError(
      `${path}.version`,
      `expected ${SESSION_VERSION} (this lab reads version ${SESSION_VERSION} sessions), got ${JSON.stringify(v.version)}`,
    );
  if (!isObject(v.scenario)) throw new InputError(`${path}.scenario`, 'expected a scenario object');
  if (!isObject(v.position)) throw new InputError(`${path}.position`, 'expected {"stepsDone", "actions"}');
  const position = {
    stepsDone: count(v.position.stepsDone, `${path}.position.stepsDone`),
    actions: count(v.position.actions, `${path}.position.actions`),
  };
  const speed = v.speed === undefined ? 0 : v.speed;
  if (typeof speed !== 'number' || !(speed >= 0))
    throw new InputError(
      `${path}.speed`,
      `expected simulated ns per second (0 or more), got ${JSON.stringify(speed)}`,
    );
  const trace = v.trace;
  if (!isObject(trace))
    throw new InputError(`${path}.trace`, 'expected {"format", "records", "dropped", "digest"}');
  if (trace.format !== 'jsonl') throw new InputError(`${path}.trace.format`, 'expected "jsonl"');
  if (typeof trace.digest !== 'string' || !/^[0-9a-f]{16}$/.test(trace.digest))
    throw new InputError(`${path}.trace.digest`, 'expected 16 hex digits');
  if (trace.text !== undefined && typeof trace.text !== 'string')
    throw new InputError(`${path}.trace.text`, 'expected the JSON-lines trace as a string');
  if (typeof trace.text === 'string' && fnv1a64(trace.text) !== trace.digest)
    throw new InputError(`${path}.trace.text`, 'does not match trace.digest: the file was changed');
  return {
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    machine: v.machine,
    scenario: v.scenario,
    drivers: isObject(v.drivers) ? (v.drivers as Record<string, string>) : {},
    position,
    speed,
    counters: (isObject(v.counters) ? v.counters : {}) as unknown as WorkloadCounters,
    trace: {
      format: 'jsonl',
      records: count(trace.records, `${path}.trace.records`),
      dropped: count(trace.dropped, `${path}.trace.dropped`),
      digest: trace.digest,
      ...(typeof trace.text === 'string' && { text: trace.text }),
    },
  };
}
