// A lab session on a small machine, and a step runner that keeps the bytes loads read.
import { LabFailure, LabSession } from '../../src-main/lab/session';
import type { LabEvent, OpResult } from '../../src-main/api';
import type { OpOutcome } from '../../src-main/lab/ops';
import { InputError } from '../../src-main/lab/input-error';

/** 1 GiB of RAM and one 256 MiB device-private GPU. */
export const SMALL = {
  ram: [{ start: 0, size: '1G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }],
};

export const PAGE = 4096;

export function lab(machine: unknown = SMALL) {
  const s = new LabSession({ machine, machineName: 'small' });
  const events: LabEvent[] = [];
  s.onEvent((e) => events.push(e));
  /** Run a step through the session's userland: the outcome keeps the bytes read. */
  const step = (op: Record<string, unknown>): OpOutcome => s.userland.run(op);
  /** Run a step as a front end does: through handle(). */
  const op = (op: Record<string, unknown>): OpResult => s.handle({ type: 'op', op: op as never }) as OpResult;
  const k = s.userland.machine.kernel;
  return { s, events, step, op, k };
}

/** The LabFailure fn throws (its code, message and path are the front end's). */
export function labFailure(fn: () => unknown): LabFailure {
  try {
    fn();
  } catch (e) {
    if (e instanceof LabFailure) return e;
    throw e;
  }
  throw new Error('expected a LabFailure');
}

/** The message of the InputError or LabFailure fn throws. */
export function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputError || e instanceof LabFailure) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
}

export function int32s(data: Uint8Array): number[] {
  return Array.from(new Int32Array(data.buffer, data.byteOffset, Math.floor(data.length / 4)));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}
