import { describe, expect, it } from 'vitest';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';
import { formatTrace } from '../../src-main/lab/trace';
import { InputError } from '../../src-main/lab/input-error';

const noFiles = (): never => {
  throw new Error('no machine files here');
};

const COW = {
  name: 'anon_cow',
  seed: 7,
  steps: [
    { op: 'spawn', proc: 'p' },
    { op: 'mmap', proc: 'p', name: 'buf', length: '64K', prot: 'rw', flags: ['private', 'anonymous'] },
    { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } },
    { op: 'fork', proc: 'p', child: 'c' },
    { op: 'store', proc: 'c', at: 'buf', fill: { pattern: 'negindex' } },
    { op: 'load', proc: 'p', at: 'buf', expect: { data: { pattern: 'index' } } },
    { op: 'load', proc: 'c', at: 'buf', offset: '4K', expect: { data: { pattern: 'negindex' } } },
    { op: 'stat', proc: 'c', expect: { rss: { anon: 16 } } },
    { op: 'mprotect', proc: 'p', at: 'buf', prot: 'r', expect: { ret: 0 } },
    { op: 'store', proc: 'p', at: 'buf', length: 4, fill: { byte: 1 }, expect: { signal: 'SIGSEGV' } },
  ],
};

describe('scenario runner', () => {
  it('runs every step and passes when each expectation holds', () => {
    const r = runScenario(parseScenario(COW, 'scenario', noFiles));
    expect(r.steps.map((s) => s.failures)).toEqual(COW.steps.map(() => []));
    expect(r).toMatchObject({ name: 'anon_cow', seed: 7, passed: true });
    expect(r.t).toBeGreaterThan(0);
  });

  it('names the step, the field, the expected and the actual value of every difference', () => {
    const bad = {
      ...COW,
      steps: [
        ...COW.steps,
        { op: 'load', proc: 'c', at: 'buf', expect: { data: { pattern: 'index' } } },
        { op: 'munmap', proc: 'p', at: 'buf', expect: { ret: '-EINVAL' } },
        { op: 'stat', proc: 'p', expect: { rss: { anon: 3 } } },
      ],
    };
    const r = runScenario(parseScenario(bad, 'scenario', noFiles));
    expect(r.passed).toBe(false);
    expect(r.steps.filter((s) => !s.ok).flatMap((s) => s.failures)).toEqual([
      'steps[10].expect.data: at byte offset 4 expected 1, got -1',
      'steps[11].expect.ret: expected "-EINVAL", got 0',
      'steps[12].expect.rss.anon: expected 3, got 0',
    ]);
  });

  it('refuses bad input with the path of the field', () => {
    const parse = (s: unknown): unknown => parseScenario(s, 'scenario', noFiles);
    expect(() => parse({ ...COW, colour: 1 })).toThrow(/scenario\.colour: unknown field/);
    expect(() => parse({ ...COW, seed: -1 })).toThrow(/scenario\.seed: expected a non-negative integer/);
    expect(() => parse({ ...COW, machine: { ram: 3 } })).toThrow(/scenario\.machine\.ram: expected an array/);
    expect(() => parse({ name: 'x', steps: [3] })).toThrow(/^steps\[0\]: expected a step object/);
    const run = (steps: unknown[]): unknown =>
      runScenario(parseScenario({ name: 'x', steps }, 'scenario', noFiles));
    expect(() =>
      run([
        { op: 'spawn', proc: 'p' },
        { op: 'mmap', proc: 'p', name: 'm', length: 'lots', prot: 'rw', flags: ['private', 'anonymous'] },
      ]),
    ).toThrow(/^steps\[1\] \(mmap\)\.length: expected a size/);
    expect(() => run([{ op: 'spawn', proc: 'p', expect: 3 }])).toThrow(InputError);
  });

  it('gives byte-identical traces for the same scenario and seed', () => {
    const once = (): string =>
      formatTrace(runScenario(parseScenario(COW, 'scenario', noFiles), { trace: true }).trace!, 'ftrace');
    const a = once();
    expect(a.split('\n').length).toBeGreaterThan(50);
    expect(a).toContain('page_fault: mm=1 addr=0x');
    expect(once()).toBe(a);
  });

  it('exports the trace as JSON lines and as Chrome trace events', () => {
    const records = runScenario(parseScenario(COW, 'scenario', noFiles), { trace: true }).trace!;
    const lines = formatTrace(records, 'jsonl')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { t: number; name: string });
    expect(lines.length).toBe(records.length);
    expect(lines.some((l) => l.name === 'signal_generate')).toBe(true);
    const chrome = JSON.parse(formatTrace(records, 'chrome')) as {
      traceEvents: { ph: string; ts: number }[];
    };
    expect(chrome.traceEvents.length).toBe(records.length);
    expect(chrome.traceEvents.every((e) => e.ph === 'i')).toBe(true);
  });
});
