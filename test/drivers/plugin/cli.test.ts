// Plugins from the command line and in scenario files: `run --driver NAME=PATH`, a machine
// file naming a plugin by path (relative to it), and
// `test-driver` running the ported hmm-tests against the dmirror plugin.
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli as run } from '../../hosts/helpers';

const root = new URL('../../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'hmm-lab-plugins-'));
const DMIRROR = readFileSync(join(root, 'plugins/dmirror/dmirror.ts'), 'utf8');

const steps = [
  { op: 'spawn', proc: 'p' },
  { op: 'open', proc: 'p', device: 'gpu0' },
  { op: 'mmap', proc: 'p', name: 'b', length: '64K', prot: 'rw', flags: ['private', 'anonymous'] },
  { op: 'store', proc: 'p', at: 'b' },
  { op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'b', expect: { ret: 0, cpages: 16 } },
  { op: 'load', proc: 'p', at: 'b', expect: { data: { pattern: 'index' } } },
];

describe('hmm-lab and driver plugins', () => {
  it(
    'run --driver gpu0=PATH makes the plugin at PATH the device driver; its faults go to stderr',
    { timeout: 30_000 },
    async () => {
      const plugin = join(dir, 'mine.ts');
      writeFileSync(plugin, DMIRROR);
      const scenario = join(dir, 's.scenario.json');
      const machine = { devices: [{ name: 'gpu0', kind: 'private', memory: '64M', driver: 'dmirror' }] };
      writeFileSync(scenario, JSON.stringify({ name: 's', machine, steps }));
      const trace = join(dir, 's.trace.jsonl');
      const r = await run('run', scenario, '--driver', `gpu0=${plugin}`, '--trace', trace);
      expect(r).toMatchObject({ code: 0, err: '' });
      expect(readFileSync(trace, 'utf8')).toContain('"dma_copy"');

      // A plugin that throws in fault: the access gets SIGBUS, the message names the line.
      const bad = join(dir, 'bad.ts');
      writeFileSync(
        bad,
        DMIRROR.replace('const start = addr - (addr % PAGE_SIZE);', 'throw new Error("nope");'),
      );
      const r2 = await run('run', scenario, '--driver', `gpu0=${bad}`);
      expect(r2.code).toBe(1);
      expect(r2.err).toMatch(/^gpu0: bad\.ts:\d+:\d+: fault: nope \(throw\)$/m);
      expect(r2.out).toContain('steps[5].expect.data');

      expect((await run('run', scenario, '--driver', 'gpu0')).code).toBe(2);
      expect(await run('run', scenario, '--driver', `gpu0=${join(dir, 'nope.ts')}`)).toMatchObject({
        code: 2,
        err: expect.stringContaining('nope.ts: cannot read: ENOENT'),
      });
    },
  );

  it('a machine file names a plugin by path, relative to itself', { timeout: 30_000 }, async () => {
    const sub = join(dir, 'machines');
    mkdirSync(join(sub, 'drivers'), { recursive: true });
    writeFileSync(join(sub, 'drivers', 'gpu.ts'), DMIRROR);
    writeFileSync(
      join(sub, 'gpu.machine.json'),
      JSON.stringify({
        devices: [{ name: 'gpu0', kind: 'private', memory: '64M', driver: './drivers/gpu.ts' }],
      }),
    );
    const scenario = join(dir, 'rel.scenario.json');
    writeFileSync(scenario, JSON.stringify({ name: 'rel', machine: 'machines/gpu.machine.json', steps }));
    expect(await run('run', scenario)).toMatchObject({ code: 0, err: '' });
    const layout = await run('layout', '--machine', join(sub, 'gpu.machine.json'));
    expect(layout.out).toContain('device gpu0 (private, driver ./drivers/gpu.ts): 0x');
  });

  it(
    'test-driver plugin:dmirror passes every ported hmm-test the built-in passes',
    { timeout: 120_000 },
    async () => {
      const r = await run('test-driver', 'plugin:dmirror');
      expect(r.err).toBe('');
      expect(r.out).toMatch(/^# PASSED: 38 \/ 38 tests passed\.$/m);
      expect(r.code).toBe(0);
    },
  );
});
