import { describe, it, expect } from 'vitest';
import type { LabEvent, ProcessInfo, RssSeries } from '../../src-main/api';
import { compareFill, fillBytes, parseFill } from '../../src-main/lab/fill';
import { DEFAULT_COSTS } from '../../src-main/lab/clock';
import { LabFailure } from '../../src-main/lab/session';
import { int32s, lab, PAGE, range, refusal } from './helpers';

const ANON = { prot: 'rw', flags: ['private', 'anonymous'] };

/** A process p with a 16-page anonymous rw mapping "buf". */
function withBuffer(pages = 16) {
  const l = lab();
  l.op({ op: 'spawn', proc: 'p' });
  const r = l.op({ op: 'mmap', proc: 'p', name: 'buf', length: pages * PAGE, ...ANON });
  return { ...l, addr: Number(r.addr) };
}

describe('lab/fill: scenario fills', () => {
  it('index counts int32s from the mapping start, so an offset store continues the pattern', () => {
    const fill = parseFill({ pattern: 'index' }, 'op.fill');
    expect(int32s(fillBytes(fill, 0, 16))).toEqual([0, 1, 2, 3]);
    expect(int32s(fillBytes(fill, 8192, 8))).toEqual([2048, 2049]);
  });

  it('negindex holds -i, add shifts either pattern, byte repeats a byte', () => {
    expect(int32s(fillBytes(parseFill({ pattern: 'negindex' }, 'f'), 0, 12))).toEqual([0, -1, -2]);
    expect(int32s(fillBytes(parseFill({ pattern: 'index', add: 5 }, 'f'), 4, 8))).toEqual([6, 7]);
    expect(Array.from(fillBytes(parseFill({ byte: 0xab }, 'f'), 3, 3))).toEqual([0xab, 0xab, 0xab]);
  });

  it('an int32 list starts at the offset and repeats to fill the length', () => {
    const fill = parseFill({ int32: [7, -1, 0xffffffff] }, 'f');
    expect(int32s(fillBytes(fill, 4096, 20))).toEqual([7, -1, -1, 7, -1]);
  });

  it('an unaligned range takes the right bytes of the pattern', () => {
    const bytes = fillBytes(parseFill({ pattern: 'index' }, 'f'), 6, 4);
    // ints 1 and 2 little endian: 01 00 00 00 02 00 00 00 -> bytes 6..9 = 00 00 02 00
    expect(Array.from(bytes)).toEqual([0, 0, 2, 0]);
  });

  it('compareFill names the first differing int', () => {
    const fill = parseFill({ pattern: 'index' }, 'f');
    const data = fillBytes(fill, 0, 64);
    expect(compareFill(data, fill, 0)).toBeNull();
    data[20] = 99;
    expect(compareFill(data, fill, 0)).toEqual({ offset: 20, expected: 5, actual: 99 });
  });

  it('a bad fill is refused naming its path', () => {
    expect(refusal(() => parseFill({ pattern: 'idx' }, 'op.fill'))).toBe(
      'op.fill.pattern: expected "index" or "negindex", got "idx"',
    );
    expect(refusal(() => parseFill({ byte: 256 }, 'op.fill'))).toBe(
      'op.fill.byte: expected an integer from 0 to 255, got 256',
    );
    expect(refusal(() => parseFill({ int32: [1, 'x'] }, 'op.fill'))).toMatch(
      /^op\.fill\.int32\[1\]: expected an int32/,
    );
    expect(refusal(() => parseFill({ pattern: 'index', mul: 2 }, 'op.fill'))).toMatch(
      /^op\.fill\.mul: unknown field/,
    );
    expect(refusal(() => parseFill(3, 'op.fill'))).toMatch(/^op\.fill: expected a fill/);
  });
});

describe('lab/ops: processes and mappings', () => {
  it('spawn gives a pid; mmap returns a page-aligned address as lowercase hex and ret 0', () => {
    const l = lab();
    expect(l.op({ op: 'spawn', proc: 'p' })).toMatchObject({ op: 'spawn', pid: 1 });
    const r = l.op({ op: 'mmap', proc: 'p', name: 'buf', length: '64K', ...ANON });
    expect(r.ret).toBe(0);
    expect(r.addr).toMatch(/^0x[0-9a-f]+$/);
    expect(Number(r.addr) % PAGE).toBe(0);
    const procs = l.s.handle({ type: 'processes' }) as ProcessInfo[];
    expect(procs[0]!.vmas).toEqual([
      {
        start: r.addr,
        end: `0x${(Number(r.addr) + 0x10000).toString(16)}`,
        perms: 'rw-p',
        name: 'buf',
        pages: 16,
        flags: [],
      },
    ]);
  });

  it('mmap with 2M alignment puts the mapping on a 2 MiB boundary', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    const r = l.op({ op: 'mmap', proc: 'p', name: 'buf', length: '4M', align: '2M', ...ANON });
    expect(Number(r.addr) % 2 ** 21).toBe(0);
  });

  it('the kernel errors come back as names: length 0, private and shared at once', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    expect(l.op({ op: 'mmap', proc: 'p', name: 'a', length: 0, ...ANON }).ret).toBe('-EINVAL');
    expect(
      l.op({
        op: 'mmap',
        proc: 'p',
        name: 'a',
        length: PAGE,
        prot: 'rw',
        flags: ['private', 'shared', 'anonymous'],
      }),
    ).toMatchObject({ ret: '-EINVAL' });
    l.op({ op: 'mmap', proc: 'p', name: 'b', length: 4 * PAGE, ...ANON });
    expect(l.op({ op: 'munmap', proc: 'p', at: 'b', offset: 100, length: PAGE }).ret).toBe('-EINVAL');
  });

  it('store of the index pattern loads back whole; an offset load sees the pattern from the mapping start', () => {
    const { step } = withBuffer();
    expect(
      step({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } }).result.signal,
    ).toBeUndefined();
    const all = step({ op: 'load', proc: 'p', at: 'buf' });
    expect(all.data).toHaveLength(16 * PAGE);
    expect(compareFill(all.data!, parseFill({ pattern: 'index' }, 'f'), 0)).toBeNull();
    const part = step({ op: 'load', proc: 'p', at: 'buf', offset: '8K', length: 16 });
    expect(int32s(part.data!)).toEqual([2048, 2049, 2050, 2051]);
    expect(part.result.data).toEqual({ bytes: 16, head: [2048, 2049, 2050, 2051] });
  });

  it('an int32 list stored at an offset reads back from that offset', () => {
    const { step } = withBuffer();
    step({ op: 'store', proc: 'p', at: 'buf', offset: PAGE, length: 24, fill: { int32: [1, 2, 3] } });
    const r = step({ op: 'load', proc: 'p', at: 'buf', offset: PAGE - 4, length: 32 });
    expect(int32s(r.data!)).toEqual([0, 1, 2, 3, 1, 2, 3, 0]);
  });

  it('fork: the child reads the parent data; writes after fork stay in the writer (COW isolation)', () => {
    const { step, op } = withBuffer(4);
    step({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    expect(op({ op: 'fork', proc: 'p', child: 'c' })).toMatchObject({ ret: 0, pid: 2 });
    expect(int32s(step({ op: 'load', proc: 'c', at: 'buf', length: 8 }).data!)).toEqual([0, 1]);

    step({ op: 'store', proc: 'c', at: 'buf', offset: PAGE, length: PAGE, fill: { byte: 0xff } });
    step({
      op: 'store',
      proc: 'p',
      at: 'buf',
      offset: 2 * PAGE,
      length: PAGE,
      fill: { pattern: 'negindex' },
    });

    const parent = step({ op: 'load', proc: 'p', at: 'buf' }).data!;
    const child = step({ op: 'load', proc: 'c', at: 'buf' }).data!;
    const ints = (d: Uint8Array, page: number) => int32s(d).slice(page * 1024, page * 1024 + 2);
    expect(ints(parent, 1)).toEqual([1024, 1025]);
    expect(ints(child, 1)).toEqual([-1, -1]);
    expect(ints(parent, 2)).toEqual([-2048, -2049]);
    expect(ints(child, 2)).toEqual([2048, 2049]);
    expect(ints(child, 3)).toEqual([3072, 3073]);
  });

  it('stat: anon rss counts written pages, not read ones; fork copies it; munmap drops it', () => {
    const { op } = withBuffer(16);
    op({ op: 'load', proc: 'p', at: 'buf', length: 4 * PAGE });
    expect(op({ op: 'stat', proc: 'p' }).rss).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 0 });
    op({ op: 'store', proc: 'p', at: 'buf', offset: 4 * PAGE, length: 10 * PAGE });
    expect(op({ op: 'stat', proc: 'p' }).rss).toEqual({ file: 0, anon: 10, swapents: 0, shmem: 0 });
    op({ op: 'fork', proc: 'p', child: 'c' });
    expect(op({ op: 'stat', proc: 'c' }).rss!.anon).toBe(10);
    expect(op({ op: 'munmap', proc: 'p', at: 'buf', offset: 8 * PAGE })).toMatchObject({ ret: 0 });
    expect(op({ op: 'stat', proc: 'p' }).rss!.anon).toBe(4);
    expect(op({ op: 'stat', proc: 'c' }).rss!.anon).toBe(10);
  });

  it('a shared file mapping reads the file fill and counts shmem pages (tmpfs)', () => {
    const { step, op } = lab();
    op({ op: 'file', name: 'f', size: 3 * PAGE, fill: { pattern: 'index', add: 100 } });
    op({ op: 'spawn', proc: 'p' });
    op({ op: 'mmap', proc: 'p', name: 'm', length: 3 * PAGE, prot: 'r', flags: ['shared'], file: 'f' });
    const r = step({ op: 'load', proc: 'p', at: 'm' });
    expect(int32s(r.data!).slice(0, 3)).toEqual([100, 101, 102]);
    expect(int32s(r.data!).at(-1)).toBe(3 * 1024 - 1 + 100);
    expect(op({ op: 'stat', proc: 'p' }).rss).toEqual({ file: 0, anon: 0, swapents: 0, shmem: 3 });
  });

  it('a store to a read-only mapping is SIGSEGV at its first address, recorded on the process', () => {
    const { op, s } = lab();
    op({ op: 'spawn', proc: 'p' });
    const { addr } = op({
      op: 'mmap',
      proc: 'p',
      name: 'ro',
      length: 2 * PAGE,
      prot: 'r',
      flags: ['private', 'anonymous'],
    });
    expect(op({ op: 'load', proc: 'p', at: 'ro' }).signal).toBeUndefined();
    const r = op({ op: 'store', proc: 'p', at: 'ro', offset: PAGE, length: 4, fill: { byte: 1 } });
    expect(r.signal).toBe('SIGSEGV');
    expect(r.faultAddr).toBe(`0x${(Number(addr) + PAGE).toString(16)}`);
    const [p] = s.handle({ type: 'processes' }) as ProcessInfo[];
    expect(p!.signals).toEqual([{ sig: 'SIGSEGV', addr: r.faultAddr }]);
  });

  it('after munmap a load of the mapping is SIGSEGV', () => {
    const { op } = withBuffer(2);
    op({ op: 'store', proc: 'p', at: 'buf' });
    op({ op: 'munmap', proc: 'p', at: 'buf' });
    expect(op({ op: 'load', proc: 'p', at: 'buf' }).signal).toBe('SIGSEGV');
  });

  it('exit tears the address space down and forgets the process name', () => {
    const { op, s, k } = withBuffer(4);
    op({ op: 'store', proc: 'p', at: 'buf' });
    const free = k.node.node_zones.reduce((n, z) => n + z.nr_free_pages, 0);
    op({ op: 'exit', proc: 'p' });
    expect(k.node.node_zones.reduce((n, z) => n + z.nr_free_pages, 0)).toBeGreaterThanOrEqual(free + 4);
    expect(s.handle({ type: 'processes' })).toEqual([]);
    expect(refusal(() => op({ op: 'stat', proc: 'p' }))).toBe(
      'op.proc: no process named "p" (spawn one first)',
    );
  });

  it('buffer and check: a host buffer holds its fill; check reads a slice of it', () => {
    const { step } = lab();
    step({ op: 'buffer', name: 'b', size: 64, fill: { pattern: 'negindex' } });
    const r = step({ op: 'check', buffer: 'b', offset: 8, length: 8 });
    expect(int32s(r.data!)).toEqual([-2, -3]);
  });
});

describe('lab/ops: mprotect, madvise, mremap', () => {
  it('mprotect r makes a store SIGSEGV; rw again lets it through; a hole is -ENOMEM', () => {
    const { op } = withBuffer(4);
    expect(op({ op: 'mprotect', proc: 'p', at: 'buf', prot: 'r' }).ret).toBe(0);
    expect(op({ op: 'store', proc: 'p', at: 'buf', length: 4 }).signal).toBe('SIGSEGV');
    expect(op({ op: 'mprotect', proc: 'p', at: 'buf', offset: PAGE, length: PAGE, prot: 'rw' }).ret).toBe(0);
    expect(op({ op: 'store', proc: 'p', at: 'buf', offset: PAGE, length: 4 }).signal).toBeUndefined();
    op({ op: 'munmap', proc: 'p', at: 'buf', offset: 2 * PAGE, length: PAGE });
    expect(op({ op: 'mprotect', proc: 'p', at: 'buf', prot: 'r' }).ret).toBe('-ENOMEM');
  });

  it('madvise dontneed drops the anon pages: rss 0, the memory reads zeroes again', () => {
    const { op, step } = withBuffer(4);
    op({ op: 'store', proc: 'p', at: 'buf', fill: { byte: 7 } });
    expect(op({ op: 'madvise', proc: 'p', at: 'buf', advice: 'dontneed' }).ret).toBe(0);
    expect(op({ op: 'stat', proc: 'p' }).rss!.anon).toBe(0);
    expect(Array.from(step({ op: 'load', proc: 'p', at: 'buf', length: 8 }).data!)).toEqual(Array(8).fill(0));
    expect(refusal(() => op({ op: 'madvise', proc: 'p', at: 'buf', advice: 'willneed' }))).toBe(
      'op.advice: expected one of "hugepage", "nohugepage", "dontneed", "free", got "willneed"',
    );
  });

  it('mremap grows a mapping in place when the space above it is free', () => {
    const { op, addr } = withBuffer(4);
    expect(op({ op: 'mremap', proc: 'p', at: 'buf', newLength: 8 * PAGE })).toMatchObject({
      ret: 0,
      addr: `0x${addr.toString(16)}`,
    });
    expect(op({ op: 'load', proc: 'p', at: 'buf', offset: 7 * PAGE }).signal).toBeUndefined();
  });

  it('mremap moves a mapping that cannot grow in place, with its data and its name', () => {
    const { op, step } = lab();
    op({ op: 'spawn', proc: 'p' });
    op({ op: 'mmap', proc: 'p', name: 'top', length: PAGE, ...ANON });
    // Top-down: buf lands right below "top", so it has no room to grow.
    const { addr } = op({ op: 'mmap', proc: 'p', name: 'buf', length: 4 * PAGE, ...ANON });
    op({ op: 'store', proc: 'p', at: 'buf' });
    const r = op({ op: 'mremap', proc: 'p', at: 'buf', newLength: 64 * PAGE });
    expect(r.ret).toBe(0);
    expect(r.addr).not.toBe(addr);
    const data = step({ op: 'load', proc: 'p', at: 'buf' }).data!;
    expect(data).toHaveLength(64 * PAGE);
    expect(int32s(data).slice(4095, 4097)).toEqual([4095, 0]);
    expect(op({ op: 'stat', proc: 'p' }).rss!.anon).toBe(4);
    expect(refusal(() => op({ op: 'mremap', proc: 'p', at: 'buf', newLength: PAGE, newOffset: 0 }))).toBe(
      'op.newOffset: expected only with newAddr',
    );
  });

  it('mremap to a fixed place given as another mapping plus newOffset', () => {
    const { op, step } = withBuffer(2);
    const dst = op({ op: 'mmap', proc: 'p', name: 'dst', length: 8 * PAGE, ...ANON });
    op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'negindex' } });
    const r = op({
      op: 'mremap',
      proc: 'p',
      at: 'buf',
      newLength: 2 * PAGE,
      newAddr: 'dst',
      newOffset: 4 * PAGE,
    });
    expect(r).toMatchObject({ ret: 0, addr: `0x${(Number(dst.addr) + 4 * PAGE).toString(16)}` });
    expect(int32s(step({ op: 'load', proc: 'p', at: 'dst', offset: 4 * PAGE, length: 8 }).data!)).toEqual([
      0, -1,
    ]);
  });
});

describe('lab/ops: the dmirror device', () => {
  it('migrate needs the device open in the process; unknown devices and commands are refused', () => {
    const { op } = withBuffer(2);
    expect(refusal(() => op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf' }))).toBe(
      'op.device: "gpu0" is not open in "p" (open it first)',
    );
    expect(refusal(() => op({ op: 'open', device: 'gpu9', proc: 'p' }))).toBe(
      'op.device: no device named "gpu9" (known: gpu0)',
    );
    expect(op({ op: 'open', device: 'gpu0', proc: 'p' })).toMatchObject({ ret: 0 });
    expect(refusal(() => op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'teleport', at: 'buf' }))).toBe(
      'op.cmd: expected one of "read", "write", "migrate", "migrate_to_sys", "snapshot", "release", "fault", got "teleport"',
    );
    expect(op({ op: 'close', device: 'gpu0', proc: 'p' })).toMatchObject({ ret: 0 });
    expect(refusal(() => op({ op: 'close', device: 'gpu0', proc: 'p' }))).toBe(
      'op.device: "gpu0" is not open in "p"',
    );
  });

  it('migrate copies the pages to device memory (cpages), reads them back into a buffer, and the CPU still sees the data', () => {
    const { op, step, s } = withBuffer(4);
    op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    op({ op: 'open', device: 'gpu0', proc: 'p' });
    op({ op: 'buffer', name: 'b', size: 4 * PAGE });
    expect(
      op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf', buffer: 'b' }),
    ).toMatchObject({
      ret: 0,
      cpages: 4,
    });
    expect(
      compareFill(step({ op: 'check', buffer: 'b' }).data!, parseFill({ pattern: 'index' }, 'f'), 0),
    ).toBeNull();
    const layout = s.handle({ type: 'layout' }) as { devices: { name: string; pagesInUse: number }[] };
    expect(layout.devices.find((d) => d.name === 'gpu0')!.pagesInUse).toBe(4);
    // A CPU load faults the page back (hmm_devmem fault -> migrate to system memory).
    expect(int32s(step({ op: 'load', proc: 'p', at: 'buf', offset: PAGE, length: 8 }).data!)).toEqual([
      1024, 1025,
    ]);
    expect(op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate_to_sys', at: 'buf' })).toMatchObject({
      ret: 0,
      cpages: 3,
    });
    expect(
      compareFill(step({ op: 'load', proc: 'p', at: 'buf' }).data!, parseFill({ pattern: 'index' }, 'f'), 0),
    ).toBeNull();
  });

  it('the device copy is charged at PCIe 4.0 x16 speed on the virtual clock', () => {
    const { op } = withBuffer(64);
    op({ op: 'store', proc: 'p', at: 'buf', fill: { byte: 1 } });
    op({ op: 'open', device: 'gpu0', proc: 'p' });
    const before = op({ op: 'stat', proc: 'p' }).t;
    const after = op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf' }).t;
    expect(after - before).toBeGreaterThanOrEqual(
      DEFAULT_COSTS.syscallNs + Math.ceil((64 * PAGE) / DEFAULT_COSTS.deviceCopyBytesPerNs),
    );
  });

  it('stat with at adds the smaps of the mapping', () => {
    const { op } = withBuffer(4);
    op({ op: 'store', proc: 'p', at: 'buf', length: 2 * PAGE });
    const r = op({ op: 'stat', proc: 'p', at: 'buf' });
    expect(r.rss!.anon).toBe(2);
    expect(r.smaps).toMatchObject({ Size: 16, Rss: 8, Anonymous: 8 });
  });
});

describe('lab/ops: bad steps are refused whole, naming the field', () => {
  const cases: [string, Record<string, unknown>, string | RegExp][] = [
    [
      'size',
      { op: 'mmap', proc: 'p', name: 'x', length: 'abc', ...ANON },
      'op.length: expected a size like 4096, "0x1000" or "256M", got "abc"',
    ],
    [
      'missing size',
      { op: 'mmap', proc: 'p', name: 'x', ...ANON },
      'op.length: expected a size like 4096, "0x1000" or "256M", got nothing',
    ],
    [
      'prot',
      { op: 'mmap', proc: 'p', name: 'x', length: PAGE, prot: 'rwx', flags: ['private', 'anonymous'] },
      'op.prot: expected one of "none", "r", "rw", got "rwx"',
    ],
    [
      'flag',
      { op: 'mmap', proc: 'p', name: 'x', length: PAGE, prot: 'rw', flags: ['private', 'anon'] },
      /^op\.flags\[1\]: expected one of private, shared, anonymous, hugetlb, fixed, got "anon"$/,
    ],
    ['proc', { op: 'store', proc: 'q', at: 'buf' }, 'op.proc: no process named "q" (known: p)'],
    ['mapping', { op: 'store', proc: 'p', at: 'nope' }, 'op.at: no mapping named "nope" (known: buf)'],
    [
      'unknown field',
      { op: 'munmap', proc: 'p', at: 'buf', lenght: 4 },
      /^op\.lenght: unknown field for "munmap" \(expected one of: proc, at, offset, length\)$/,
    ],
    ['unknown op', { op: 'mmapp', proc: 'p' }, /^op\.op: unknown op "mmapp"/],
    [
      'fill',
      { op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'up' } },
      'op.fill.pattern: expected "index" or "negindex", got "up"',
    ],
    [
      'offset past the end',
      { op: 'load', proc: 'p', at: 'buf', offset: '1M' },
      "op.offset: expected at most 65536 (the mapping's size), got 1048576",
    ],
    ['duplicate process', { op: 'spawn', proc: 'p' }, 'op.proc: a process named "p" already exists'],
    [
      'fork child',
      { op: 'fork', proc: 'p' },
      'op.child: expected a name (a non-empty string), got undefined',
    ],
    [
      'file',
      { op: 'mmap', proc: 'p', name: 'x', length: PAGE, prot: 'r', flags: ['shared'], file: 'f' },
      'op.file: no file named "f" (make one with the file op first)',
    ],
  ];
  for (const [what, step, message] of cases)
    it(`${what}: ${typeof message === 'string' ? message : message.source}`, () => {
      const { op } = withBuffer();
      const err = (() => {
        try {
          op(step);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(LabFailure);
      expect((err as LabFailure).code).toBe('EINPUT');
      if (typeof message === 'string') expect((err as LabFailure).message).toBe(message);
      else expect((err as LabFailure).message).toMatch(message);
    });

  it('a refused step changes nothing: no vma, no fault', () => {
    const { op, s } = withBuffer();
    const before = JSON.stringify(s.handle({ type: 'processes' }));
    expect(() => op({ op: 'store', proc: 'p', at: 'buf', length: 8, fill: { byte: -1 } })).toThrow(
      /op\.fill\.byte/,
    );
    expect(JSON.stringify(s.handle({ type: 'processes' }))).toBe(before);
  });
});

describe('lab/clock and rss: simulated time from tracepoints', () => {
  it('each CPU fault costs 1.3 us, a syscall 250 ns, a copy 10 bytes per ns', () => {
    const { op } = withBuffer(16);
    const t0 = op({ op: 'stat', proc: 'p' }).t;
    const t1 = op({ op: 'store', proc: 'p', at: 'buf', length: 4 * PAGE }).t;
    expect(t1 - t0).toBe(
      4 * DEFAULT_COSTS.cpuFaultNs + Math.ceil((4 * PAGE) / DEFAULT_COSTS.userCopyBytesPerNs),
    );
    // Mapped pages fault no more: only the copy costs.
    const t2 = op({ op: 'store', proc: 'p', at: 'buf', length: 4 * PAGE }).t;
    expect(t2 - t1).toBe(Math.ceil((4 * PAGE) / DEFAULT_COSTS.userCopyBytesPerNs));
    const t3 = op({ op: 'munmap', proc: 'p', at: 'buf' }).t;
    expect(t3 - t2).toBe(DEFAULT_COSTS.syscallNs + DEFAULT_COSTS.mmuNotifierNs);
  });

  it('rss series: one anon point per faulted page, stamped 1.3 us apart, from zero at spawn', () => {
    const { op, s } = withBuffer(8);
    const t0 = op({ op: 'stat', proc: 'p' }).t;
    const { t } = op({ op: 'store', proc: 'p', at: 'buf', length: 3 * PAGE });
    const [series] = s.handle({ type: 'rssSeries' }) as RssSeries[];
    expect(series!.proc).toBe('p');
    // The last value holds until now, the end of the store.
    expect(series!.points.anon).toEqual([
      [DEFAULT_COSTS.syscallNs, 0],
      [t0, 1],
      [t0 + 1300, 2],
      [t0 + 2600, 3],
      [t, 3],
    ]);
    expect(series!.points.file).toEqual([
      [DEFAULT_COSTS.syscallNs, 0],
      [t, 0],
    ]);
  });

  it('rss series stay a few thousand points however many faults', () => {
    const { op, s } = withBuffer(8192);
    op({ op: 'store', proc: 'p', at: 'buf', length: 8192 * PAGE, fill: { byte: 1 } });
    const [series] = s.handle({ type: 'rssSeries' }) as RssSeries[];
    expect(series!.points.anon.length).toBeLessThanOrEqual(2048 + 1);
    expect(series!.points.anon.at(-1)![1]).toBe(8192);
  });

  it('the session pushes processes after each changing op, and rss events coalesced', async () => {
    const { op, events } = withBuffer(64);
    for (let i = 0; i < 64; i++) op({ op: 'store', proc: 'p', at: 'buf', offset: i * PAGE, length: 4 });
    const procs = events.filter((e): e is Extract<LabEvent, { type: 'processes' }> => e.type === 'processes');
    expect(procs.length).toBe(2 + 64);
    expect(procs.map((e) => e.seq)).toEqual(range(1, 67));
    expect(procs.at(-1)!.processes[0]!.rss.anon).toBe(64);
    await new Promise((r) => setTimeout(r, 300));
    const rss = events.filter((e): e is Extract<LabEvent, { type: 'rss' }> => e.type === 'rss');
    expect(rss.length).toBeGreaterThanOrEqual(1);
    expect(rss.length).toBeLessThanOrEqual(3);
    expect(rss.at(-1)!.series[0]!.points.anon.at(-1)![1]).toBe(64);
  });

  it('loadMachine starts over: no processes, no series, time from zero', () => {
    const { op, s } = withBuffer(4);
    op({ op: 'store', proc: 'p', at: 'buf' });
    s.handle({ type: 'loadMachine', machine: { ram: [{ start: 0, size: '512M' }], reserved: [] } });
    expect(s.handle({ type: 'processes' })).toEqual([]);
    expect(s.handle({ type: 'rssSeries' })).toEqual([]);
    expect(op({ op: 'spawn', proc: 'p' })).toMatchObject({ pid: 1, t: DEFAULT_COSTS.syscallNs });
  });
});
