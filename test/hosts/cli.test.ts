import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src-main/hosts/cli/main';
import type { LayoutSnapshot, ResourceNode } from '../../src-main/api';

const dir = mkdtempSync(join(tmpdir(), 'hmm-lab-cli-'));

function machineFile(name: string, machine: unknown): string {
  const path = join(dir, `${name}.machine.json`);
  writeFileSync(path, typeof machine === 'string' ? machine : JSON.stringify(machine));
  return path;
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (s) => out.push(s),
    (s) => err.push(s),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function layout(machine: unknown): Promise<LayoutSnapshot> {
  const r = await run('layout', '--machine', machineFile('m', machine), '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.out) as LayoutSnapshot;
}

function top(l: LayoutSnapshot, name: string): ResourceNode | undefined {
  return l.resources.find((r) => r.name === name);
}

describe('hmm-lab layout', () => {
  it('F-DEVMEM-1: places devices as hmm_devmem_add does, the second one aligned step below the first', async () => {
    const l = await layout({
      devices: [
        { name: 'gpu0', kind: 'private', memory: '256M' },
        { name: 'gpu1', kind: 'private', memory: '200M' },
      ],
    });
    // 2^46 - 256 MiB; gpu1's 200 MiB rounds up to a 256 MiB section multiple and steps down.
    expect(top(l, 'gpu0')).toMatchObject({
      start: '0x3ffff0000000',
      end: '0x3fffffffffff',
      desc: 'DEVICE_PRIVATE_MEMORY',
    });
    expect(top(l, 'gpu1')).toMatchObject({
      start: '0x3fffe0000000',
      end: '0x3fffefffffff',
      desc: 'DEVICE_PRIVATE_MEMORY',
    });
    expect(l.resources.map((r) => r.name)).toEqual([
      'System RAM',
      'Reserved',
      'System RAM',
      'PCI Bus 0000:00',
      'System RAM',
      'gpu1',
      'gpu0',
    ]);
  });

  it('F-DEVMEM-1: skips candidate ranges that intersect a resource, in steps of the size', async () => {
    const l = await layout({
      reserved: [{ name: 'Firmware', start: '0x3fffe8000000', size: '4K' }],
      devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }],
    });
    // The top slot is free; with 1 GiB devices the slot holding Firmware would be skipped.
    expect(top(l, 'gpu0')!.start).toBe('0x3ffff0000000');
    const big = await layout({
      reserved: [{ name: 'Firmware', start: '0x3fffe8000000', size: '4K' }],
      devices: [{ name: 'gpu0', kind: 'private', memory: '1G' }],
    });
    expect(top(big, 'gpu0')).toMatchObject({ start: '0x3fff80000000', end: '0x3fffbfffffff' });
  });

  it('caps the search at MAX_PHYSMEM_BITS when iomem is larger', async () => {
    const l = await layout({
      physAddrBits: 48,
      maxPhysmemBits: 46,
      devices: [{ name: 'gpu0', kind: 'private', memory: '128M' }],
    });
    expect(top(l, 'gpu0')!.start).toBe('0x3ffff8000000');
  });

  it('prints the tree as /proc/iomem does, children indented', async () => {
    const r = await run('layout');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      '000000100000-0000bfffffff : System RAM\n  000001000000-000001dfffff : Kernel code',
    );
    expect(r.out).toContain('0000c0000000-0000ffffffff : PCI Bus 0000:00');
    expect(r.out).toContain('000100000000-00043fffffff : System RAM');
  });

  it('describes public and pmem devices with their descriptors', async () => {
    const l = await layout({
      devices: [
        { name: 'cxl0', kind: 'public', memory: '512M', start: '0x480000000' },
        { name: 'pmem0', kind: 'pmem', memory: '1G', start: '0x500000000' },
      ],
    });
    expect(top(l, 'cxl0 memory')).toMatchObject({ start: '0x480000000', desc: 'DEVICE_PUBLIC_MEMORY' });
    const pmem = top(l, 'Persistent Memory')!;
    expect(pmem).toMatchObject({ start: '0x500000000', end: '0x53fffffff', desc: 'PERSISTENT_MEMORY' });
    expect(pmem.children[0]).toMatchObject({ name: 'pmem0', flags: ['MEM', 'BUSY'] });
    expect(l.devices.find((d) => d.name === 'pmem0')!.pgmapType).toBe('MEMORY_DEVICE_HOST');
  });

  const bad: [string, unknown, RegExp][] = [
    [
      'overlapping RAM',
      {
        ram: [
          { start: 0, size: '2G' },
          { start: '1G', size: '2G' },
        ],
      },
      /machine\.ram\[1\]: overlaps machine\.ram\[0\]/,
    ],
    [
      'a size not page-aligned',
      { ram: [{ start: 0, size: 5000 }] },
      /machine\.ram\[0\]\.size: 5000 is not a multiple of the page size \(4096\)/,
    ],
    [
      'an unknown field',
      { devices: [{ name: 'g', kind: 'private', memory: '1M', colour: 'red' }] },
      /machine\.devices\[0\]\.colour: unknown field/,
    ],
    ['an unknown top-level field', { rams: [] }, /machine\.rams: unknown field/],
    [
      'a device larger than the free physical space',
      { devices: [{ name: 'huge', kind: 'private', memory: '63T' }] },
      /machine\.devices\[0\]: device "huge" failed to probe: -ERANGE \(hmm_devmem_add found no free physical range/,
    ],
    [
      'a bad size string',
      { ram: [{ start: 0, size: '12Q' }] },
      /machine\.ram\[0\]\.size: expected a size like/,
    ],
    [
      'a public device without start',
      { devices: [{ name: 'c', kind: 'public', memory: '1G' }] },
      /machine\.devices\[0\]\.start: missing/,
    ],
    ['not JSON', '{"ram": [', /not valid JSON/],
  ];
  for (const [what, machine, message] of bad) {
    it(`exits 2 naming the problem for ${what}`, async () => {
      const file = machineFile('bad', machine);
      const r = await run('layout', '--machine', file);
      expect(r.code).toBe(2);
      expect(r.out).toBe('');
      expect(r.err).toContain(file);
      expect(r.err).toMatch(message);
    });
  }

  it('exits 2 for a missing file and for unknown commands and options', async () => {
    expect(await run('layout', '--machine', join(dir, 'nope.json'))).toMatchObject({
      code: 2,
      err: expect.stringMatching(/cannot read: ENOENT/),
    });
    expect(await run('frobnicate')).toMatchObject({
      code: 2,
      err: expect.stringMatching(/unknown command "frobnicate"/),
    });
    expect(await run('layout', '--bogus')).toMatchObject({ code: 2, err: expect.stringMatching(/--bogus/) });
  });

  it('runs as the installed bin', () => {
    const file = machineFile('bin', { devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }] });
    const out = execFileSync(process.execPath, ['bin/hmm-lab.mjs', 'layout', '--machine', file, '--json'], {
      encoding: 'utf8',
    });
    expect((JSON.parse(out) as LayoutSnapshot).devices[0]).toMatchObject({
      name: 'gpu0',
      start: '0x3ffff0000000',
    });
  });
});

describe('hmm-lab run', () => {
  const scenario = (name: string, expectRet: unknown): string =>
    machineFile(name, {
      name,
      machine: 'gpu.machine.json',
      steps: [
        { op: 'spawn', proc: 'p' },
        { op: 'mmap', proc: 'p', name: 'buf', length: '8K', prot: 'rw', flags: ['private', 'anonymous'] },
        { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } },
        { op: 'munmap', proc: 'p', at: 'buf', expect: { ret: expectRet } },
      ],
    });
  machineFile('gpu', { devices: [{ name: 'gpu0', kind: 'private', memory: '256M' }] });

  it('exits 0 when every expectation holds, loading the machine file beside the scenario', async () => {
    const r = await run('run', scenario('ok', 0));
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/^PASS ok \(.*ok\.machine\.json\): 4 steps/);
  });

  it('exits 1 naming the failed expectation', async () => {
    const r = await run('run', scenario('bad', '-EINVAL'), '--json');
    expect(r.code).toBe(1);
    const [report] = JSON.parse(r.out) as { passed: boolean; steps: { failures: string[] }[] }[];
    expect(report!.passed).toBe(false);
    expect(report!.steps[3]!.failures).toEqual(['steps[3].expect.ret: expected "-EINVAL", got 0']);
  });

  it('exits 2 for bad input, naming the file and the field', async () => {
    const file = machineFile('broken', {
      name: 'broken',
      steps: [
        { op: 'spawn', proc: 'p' },
        { op: 'fly', proc: 'p' },
      ],
    });
    const r = await run('run', file);
    expect(r.code).toBe(2);
    expect(r.err).toContain(file);
    expect(r.err).toMatch(/steps\[1\]\.op: unknown op "fly"/);
    expect((await run('run')).code).toBe(2);
  });

  it('writes the trace in the format its name asks for', async () => {
    const trace = join(dir, 'run.json');
    expect((await run('run', scenario('traced', 0), '--trace', trace)).code).toBe(0);
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string }[] })
      .traceEvents;
    expect(events.map((e) => e.name)).toContain('page_fault');
  });
});
