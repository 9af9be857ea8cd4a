// Bad scenario steps are refused naming the step, its op and the field
// (`steps[3] (mmap).length: expected ...`): what can be checked without running is checked
// for every step before the first runs; names (processes, mappings, devices) when the step runs.
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src-main/lab/input-error';
import { parseScenario, runScenario } from '../../src-main/lab/scenario';

const MACHINE = {
  ram: [{ start: 0, size: '1G' }],
  reserved: [],
  devices: [{ name: 'gpu0', kind: 'private', memory: '64M' }],
};
const SETUP = [
  { op: 'spawn', proc: 'p' },
  { op: 'open', proc: 'p', device: 'gpu0' },
  { op: 'mmap', proc: 'p', name: 'buf', length: '1M', prot: 'rw', flags: ['private', 'anonymous'] },
];

const noFiles = (): never => {
  throw new Error('no machine files here');
};

/** The InputError of parsing or running the setup steps followed by `step`. */
function refusal(step: unknown, runIt = true): string {
  try {
    const s = parseScenario({ name: 'x', machine: MACHINE, steps: [...SETUP, step] }, 'scenario', noFiles);
    if (runIt) runScenario(s);
  } catch (e) {
    if (e instanceof InputError) return e.message;
    throw e;
  }
  return 'accepted';
}

const cpu = { kind: 'cpu', proc: 'p', at: 'buf' };
const run = (actor: Record<string, unknown>): unknown => ({ op: 'run', workload: { actors: [actor] } });

describe('scenario steps: errors name the step, the op and the field', () => {
  // Refused by parseScenario, before any step runs.
  const atParse: [string, unknown, string][] = [
    [
      'unknown op',
      { op: 'mmapp', proc: 'p' },
      'steps[3].op: unknown op "mmapp" (expected one of: spawn, fork, exit, open, close, file, mmap, munmap, mprotect, madvise, mremap, store, load, buffer, device, check, stat, run)',
    ],
    ['no op', { proc: 'p' }, 'steps[3].op: expected an op name, got undefined'],
    [
      'missing field',
      { op: 'fork', proc: 'p' },
      'steps[3] (fork).child: expected a name (a non-empty string), got undefined',
    ],
    [
      'bad size string',
      { op: 'munmap', proc: 'p', at: 'buf', length: '4 KiB' },
      'steps[3] (munmap).length: expected a size like 4096, "0x1000" or "256M", got "4 KiB"',
    ],
    [
      'bad prot',
      { op: 'mprotect', proc: 'p', at: 'buf', prot: 'w' },
      'steps[3] (mprotect).prot: expected one of "none", "r", "rw", got "w"',
    ],
    // Names every object has are not names of the table.
    [
      'prot named like a property of every object',
      { op: 'mprotect', proc: 'p', at: 'buf', prot: 'toString' },
      'steps[3] (mprotect).prot: expected one of "none", "r", "rw", got "toString"',
    ],
    [
      'mmap flag named like a property of every object',
      { op: 'mmap', proc: 'p', name: 'b2', length: '1M', prot: 'rw', flags: ['private', 'constructor'] },
      'steps[3] (mmap).flags[1]: expected one of private, shared, anonymous, hugetlb, fixed, got "constructor"',
    ],
    [
      'advice named like a property of every object',
      { op: 'madvise', proc: 'p', at: 'buf', advice: '__proto__' },
      'steps[3] (madvise).advice: expected one of "hugepage", "nohugepage", "dontneed", "free", got "__proto__"',
    ],
    [
      'unknown field',
      { op: 'load', proc: 'p', at: 'buf', size: 4 },
      'steps[3] (load).size: unknown field for "load" (expected one of: proc, at, offset, length)',
    ],
    [
      'bad expect',
      { op: 'load', proc: 'p', at: 'buf', expect: [0] },
      'steps[3] (load).expect: expected an object of result fields, got [0]',
    ],
    [
      'bad expect.ret',
      { op: 'munmap', proc: 'p', at: 'buf', expect: { ret: 'EINVALID' } },
      'steps[3] (munmap).expect.ret: expected 0, an errno like -22 or a kernel error name like "-EINVAL", got "EINVALID"',
    ],
    [
      'bad expect.signal',
      { op: 'store', proc: 'p', at: 'buf', expect: { signal: 11 } },
      'steps[3] (store).expect.signal: expected a signal name like "SIGSEGV", or null for none, got 11',
    ],
    [
      'bad expect.rss',
      { op: 'stat', proc: 'p', expect: { rss: { anon: '1' } } },
      'steps[3] (stat).expect.rss.anon: expected a number, got "1"',
    ],
    [
      'bad expect.bytes',
      { op: 'device', device: 'gpu0', proc: 'p', cmd: 'snapshot', at: 'buf', expect: { bytes: [1, 300] } },
      'steps[3] (device).expect.bytes: expected a byte (0 to 255), or an array of bytes, got [1,300]',
    ],
    [
      'a step nested 5,000 levels deep (an error quoting it would overflow the stack)',
      { op: 'spawn', proc: JSON.parse(`${'['.repeat(5000)}${']'.repeat(5000)}`) as unknown },
      `scenario.steps[3].proc${'[0]'.repeat(62)}: nested deeper than 64 levels`,
    ],
    [
      'workload that is no object',
      { op: 'run', workload: [cpu] },
      'steps[3] (run).workload: expected a workload object like {"actors": [{"kind": "cpu", ...}]}, got [{"kind":"cpu","proc":"p","at":"buf"}]',
    ],
  ];
  for (const [what, step, message] of atParse)
    it(`${what}: ${message}`, () => {
      expect(refusal(step, false)).toBe(message);
    });

  // Names are known only once the steps before have run.
  const atRun: [string, unknown, string][] = [
    [
      'unknown process',
      { op: 'store', proc: 'q', at: 'buf' },
      'steps[3] (store).proc: no process named "q" (known: p)',
    ],
    [
      'unknown mapping',
      { op: 'load', proc: 'p', at: 'nope' },
      'steps[3] (load).at: no mapping named "nope" (known: buf)',
    ],
    [
      'unknown device',
      { op: 'open', proc: 'p', device: 'gpu9' },
      'steps[3] (open).device: no device named "gpu9" (known: gpu0)',
    ],
    [
      'unknown device command',
      { op: 'device', device: 'gpu0', proc: 'p', cmd: 'teleport', at: 'buf' },
      'steps[3] (device).cmd: expected one of "read"',
    ],
    [
      'a device command over more than 1G of pages (snapshot keeps a byte per page)',
      { op: 'device', device: 'gpu0', proc: 'p', cmd: 'snapshot', at: 'buf', pages: 8589934592 },
      'steps[3] (device).pages: expected at most 262144 pages (1G) per device command, got 8589934592',
    ],
    [
      'actor of an unknown kind',
      run({ ...cpu, kind: 'gpu' }),
      'steps[3] (run).workload.actors[0].kind: expected "cpu" or "device", got "gpu"',
    ],
    [
      'actor of an unknown process',
      run({ ...cpu, proc: 'q' }),
      'steps[3] (run).workload.actors[0].proc: no process named "q" (spawn it before the run)',
    ],
    [
      'actor on an unknown mapping',
      run({ ...cpu, at: 'nope' }),
      'steps[3] (run).workload.actors[0].at: no mapping named "nope" (mmap it before the run)',
    ],
    [
      'actor past the mapping',
      run({ ...cpu, length: '2M' }),
      'steps[3] (run).workload.actors[0].length: expected from one page to 1048576 bytes (the rest of the mapping), got 2097152',
    ],
    [
      'actor with a bad pattern',
      run({ ...cpu, pattern: 'zigzag' }),
      'steps[3] (run).workload.actors[0].pattern: expected one of "sequential", "strided", "random", "hotset", got "zigzag"',
    ],
  ];
  for (const [what, step, message] of atRun)
    it(`${what}: ${message}`, () => {
      // parseScenario takes the step; running it refuses it.
      expect(refusal(step, false)).toBe('accepted');
      expect(refusal(step)).toContain(message);
    });

  it('a device command or a workload on a 64T mapping: refused, not a RangeError', () => {
    const huge = {
      op: 'mmap',
      proc: 'p',
      name: 'huge',
      length: '64T',
      prot: 'rw',
      flags: 'private|anonymous',
    };
    const refused = (step: unknown) => () =>
      runScenario(
        parseScenario({ name: 'x', machine: MACHINE, steps: [...SETUP, huge, step] }, 'scenario', noFiles),
      );
    expect(refused({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'snapshot', at: 'huge' })).toThrow(
      'steps[4] (device).at: expected at most 262144 pages (1G) per device command, got 17179869184',
    );
    expect(refused(run({ ...cpu, at: 'huge', accesses: 1000, pattern: 'random' }))).toThrow(
      'steps[4] (run).workload.actors[0].at: "huge" has 17179869184 pages: a workload runs on mappings of at most 268435456 pages',
    );
  });

  it('a device kernel on a device the process has not opened', () => {
    const steps = [SETUP[0], SETUP[2], run({ ...cpu, kind: 'device', device: 'gpu0' })];
    const s = parseScenario({ name: 'x', machine: MACHINE, steps }, 'scenario', noFiles);
    expect(() => runScenario(s)).toThrow(
      'steps[2] (run).workload.actors[0].device: "gpu0" is not open in "p" (open it first: {"op": "open", "proc": "p", "device": "gpu0"})',
    );
  });

  it('a bad last step is refused before the first one runs', () => {
    const steps = [
      ...SETUP,
      { op: 'store', proc: 'p', at: 'buf' },
      { op: 'load', proc: 'p', at: 'buf', lenght: 4 },
    ];
    expect(() => parseScenario({ name: 'x', machine: MACHINE, steps }, 'scenario', noFiles)).toThrow(
      /^steps\[4\] \(load\)\.lenght: unknown field for "load"/,
    );
  });

  it('failed expectations keep naming the step and field', () => {
    const steps = [...SETUP, { op: 'munmap', proc: 'p', at: 'buf', expect: { ret: '-EINVAL' } }];
    const r = runScenario(parseScenario({ name: 'x', machine: MACHINE, steps }, 'scenario', noFiles));
    expect(r.steps[3]!.failures).toEqual(['steps[3].expect.ret: expected "-EINVAL", got 0']);
  });
});
