// The device op's dmirror commands through the lab (results as hmm-tests.c reads them) and the
// Mirror view's data: the two page tables side by side and the coalesced mirror trace.
import { describe, expect, it } from 'vitest';
import type { LabEvent, MirrorEvent, MirrorView } from '../../src-main/api';
import type { dmirror_device } from '../../src-main/drivers/dmirror';
import { compareFill, parseFill } from '../../src-main/lab/fill';
import { lab, PAGE, refusal } from './helpers';

function withMapping(npages: number) {
  const l = lab();
  l.op({ op: 'spawn', proc: 'p' });
  l.op({
    op: 'mmap',
    proc: 'p',
    name: 'buf',
    length: npages * PAGE,
    prot: 'rw',
    flags: ['private', 'anonymous'],
  });
  l.op({ op: 'open', proc: 'p', device: 'gpu0' });
  const view = (extra: Record<string, unknown> = {}): MirrorView =>
    l.s.handle({
      type: 'mirror',
      proc: 'p',
      device: 'gpu0',
      at: 'buf',
      pages: npages,
      ...extra,
    }) as MirrorView;
  const mirrorEvents = (): MirrorEvent[] =>
    l.events.flatMap((e: LabEvent) => (e.type === 'mirror' ? e.events : []));
  return { ...l, view, mirrorEvents };
}

describe('lab/ops: dmirror commands in the device op', () => {
  it('read, write, snapshot and release answer ret, cpages, faults and bytes as hmm-tests.c reads them', () => {
    const { op, step } = withMapping(4);
    op({ op: 'store', proc: 'p', at: 'buf', length: 2 * PAGE, fill: { pattern: 'index' } });
    op({ op: 'buffer', name: 'm', size: 4 * PAGE });
    const dev = { op: 'device', device: 'gpu0', proc: 'p', at: 'buf' };
    expect(op({ ...dev, cmd: 'read', buffer: 'm' })).toMatchObject({ ret: 0, cpages: 4, faults: 1 });
    expect(
      compareFill(
        step({ op: 'check', buffer: 'm', length: 2 * PAGE }).data!,
        parseFill({ pattern: 'index' }, 'f'),
        0,
      ),
    ).toBeNull();
    expect(op({ ...dev, cmd: 'snapshot' })).toMatchObject({ ret: 0, cpages: 4, bytes: [2, 2, 0x11, 0x11] });

    op({ op: 'buffer', name: 'w', size: 4 * PAGE, fill: { pattern: 'negindex' } });
    expect(op({ ...dev, cmd: 'write', buffer: 'w' })).toMatchObject({ ret: 0, cpages: 4, faults: 1 });
    expect(
      compareFill(
        step({ op: 'load', proc: 'p', at: 'buf' }).data!,
        parseFill({ pattern: 'negindex' }, 'f'),
        0,
      ),
    ).toBeNull();
    expect(op({ ...dev, cmd: 'snapshot' }).bytes).toEqual([2, 2, 2, 2]);

    expect(op({ ...dev, cmd: 'migrate' })).toMatchObject({ ret: 0, cpages: 4, faults: 0 });
    expect(op({ ...dev, cmd: 'snapshot', pages: 1 }).bytes).toEqual([0x22]);
    expect(op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'release' })).toMatchObject({
      ret: 0,
      cpages: 4,
    });
    expect(op({ ...dev, cmd: 'snapshot', pages: 1 }).bytes).toEqual([2]);
  });

  it('a read of a PROT_NONE mapping is -EPERM; write needs a buffer; release needs no mapping', () => {
    const { op } = withMapping(2);
    op({ op: 'mprotect', proc: 'p', at: 'buf', prot: 'none' });
    const dev = { op: 'device', device: 'gpu0', proc: 'p', at: 'buf' };
    expect(op({ ...dev, cmd: 'read' })).toMatchObject({ ret: '-EPERM' });
    expect(refusal(() => op({ ...dev, cmd: 'write' }))).toBe(
      'op.buffer: expected a buffer: "write" writes its bytes into the pages',
    );
    expect(op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'release' })).toMatchObject({
      ret: 0,
      cpages: 0,
    });
  });
});

describe('lab/mirror: the Mirror view', () => {
  it('rows pair the CPU entry with the device entry; a CPU store drops the device entry with an invalidation line', () => {
    const { op, view, mirrorEvents, k } = withMapping(4);
    expect(view()).toMatchObject({ open: true, mirrored: true, deviceEntries: 0, reports: [] });
    expect(mirrorEvents().map((e) => e.kind)).toEqual(['register']);

    op({ op: 'device', device: 'gpu0', proc: 'p', at: 'buf', cmd: 'read' });
    let v = view();
    expect(v.deviceEntries).toBe(4);
    expect(v.rows.map((r) => [r.cpu.state, r.dev?.memory, r.dev?.pfn === k.zero_pfn])).toEqual(
      Array(4).fill(['zero', 'zero', true]),
    );
    const read = mirrorEvents().slice(1);
    expect(read.map((e) => [e.kind, e.detail])).toEqual([
      ['fault', 'valid'],
      ['command', 'read cpages 4 faults 1'],
    ]);

    op({ op: 'store', proc: 'p', at: 'buf', offset: PAGE, length: 2 * PAGE });
    v = view();
    expect(v.rows.map((r) => r.dev !== null)).toEqual([true, false, false, true]);
    expect(v.rows[1]!.cpu.state).toBe('present');
    // Two COW invalidations of adjacent pages make one line.
    const inval = mirrorEvents().filter((e) => e.kind === 'invalidate');
    expect(inval).toEqual([
      expect.objectContaining({
        proc: 'p',
        device: 'gpu0',
        start: `0x${(Number(v.start) + PAGE).toString(16)}`,
        end: `0x${(Number(v.start) + 3 * PAGE).toString(16)}`,
        count: 2,
        cleared: 2,
        detail: 'cow',
      }),
    ]);
    expect(v.reports).toEqual([]);
  });

  it('munmap of part of the range drops those device entries; exit releases the mirror', () => {
    const { op, view, mirrorEvents } = withMapping(4);
    op({ op: 'store', proc: 'p', at: 'buf' });
    op({ op: 'device', device: 'gpu0', proc: 'p', at: 'buf', cmd: 'read' });
    op({ op: 'munmap', proc: 'p', at: 'buf', offset: 2 * PAGE, length: 2 * PAGE });
    const v = view();
    expect(v.rows.map((r) => [r.mapped, r.cpu.state, r.dev?.memory ?? null])).toEqual([
      [true, 'present', 'system'],
      [true, 'present', 'system'],
      [false, 'none', null],
      [false, 'none', null],
    ]);
    expect(v.deviceEntries).toBe(2);
    expect(mirrorEvents().at(-1)).toMatchObject({ kind: 'invalidate', cleared: 2, detail: 'unmap' });
    op({ op: 'exit', proc: 'p' });
    expect(
      mirrorEvents()
        .slice(-2)
        .map((e) => e.kind),
    ).toEqual(['unregister', 'release']);
  });

  it('a device entry the CPU no longer backs (a driver that missed an invalidation) is marked as the coherence check reports it', () => {
    const { op, view, s } = withMapping(2);
    op({ op: 'store', proc: 'p', at: 'buf' });
    op({ op: 'device', device: 'gpu0', proc: 'p', at: 'buf', cmd: 'read' });
    const mdevice = s.userland.machine.devices.get('gpu0') as { dmirror: dmirror_device };
    const mm = s.userland.procs.get('p')!.mm!;
    const v0 = view();
    // Point page 1's device entry at page 0's page, writable: what a buggy sync would leave.
    const pt = mdevice.dmirror.mirrors.get(mm)!.pt;
    pt.set(Number(v0.rows[1]!.addr) / PAGE, pt.get(Number(v0.rows[0]!.addr) / PAGE)!);
    const v = view();
    expect(v.rows[0]!.mismatch).toBeUndefined();
    expect(v.rows[1]!.mismatch).toBe(`the CPU maps pfn 0x${v.rows[1]!.cpu.pfn!.toString(16)} there`);
    expect(v.reports).toHaveLength(1);
    expect(v.reports[0]).toContain('BUG: mirror dmirror gpu0 maps');
  });

  it('a device that is not dmirror, or an unknown process, is refused with the field named', () => {
    const { s } = withMapping(1);
    expect(refusal(() => s.handle({ type: 'mirror', proc: 'p', device: 'nope' }))).toBe(
      'device: no device named "nope" (known: gpu0)',
    );
    expect(refusal(() => s.handle({ type: 'mirror', proc: 'q', device: 'gpu0' }))).toBe(
      'proc: no process named "q"',
    );
  });
});
