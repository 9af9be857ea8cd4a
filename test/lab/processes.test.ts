import { describe, it, expect } from 'vitest';
import type { PageTableRow, PageTableView, ProcessInfo } from '../../src-main/api';
import { lookup_pte } from '../../src-main/kernel/mm/pgtable';
import {
  make_device_entry,
  make_migration_entry,
  swp_entry_to_pte,
} from '../../src-main/kernel/include/swapops';
import { pte_pfn } from '../../src-main/kernel/include/pgtable';
import { lab, PAGE, refusal } from './helpers';

const ANON = { prot: 'rw', flags: ['private', 'anonymous'] };

function table(l: ReturnType<typeof lab>, proc: string, at?: string, extra: object = {}): PageTableView {
  return l.s.handle({ type: 'pageTable', proc, ...(at && { at }), ...extra }) as PageTableView;
}

const states = (rows: PageTableRow[]) => rows.map((r) => r.state);

describe('lab/processes: process snapshots', () => {
  it('lists live processes with rss, vmas in /proc/PID/maps terms and page-table pages', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'file', name: 'data', size: 2 * PAGE });
    const a = l.op({ op: 'mmap', proc: 'p', name: 'heap', length: 4 * PAGE, ...ANON });
    const b = l.op({
      op: 'mmap',
      proc: 'p',
      name: 'map',
      length: 2 * PAGE,
      prot: 'r',
      flags: ['shared'],
      file: 'data',
    });
    l.op({ op: 'store', proc: 'p', at: 'heap', length: 2 * PAGE });
    const [p] = l.s.handle({ type: 'processes' }) as ProcessInfo[];
    expect(p).toMatchObject({
      pid: 1,
      name: 'p',
      rss: { file: 0, anon: 2, swapents: 0, shmem: 0 },
      signals: [],
    });
    // Top-down allocation: the second mapping lies below the first.
    expect(p!.vmas).toEqual([
      {
        start: b.addr,
        end: `0x${(Number(b.addr) + 2 * PAGE).toString(16)}`,
        perms: 'r--s',
        name: 'map',
        file: 'data',
        pages: 2,
        flags: [],
      },
      {
        start: a.addr,
        end: `0x${(Number(a.addr) + 4 * PAGE).toString(16)}`,
        perms: 'rw-p',
        name: 'heap',
        pages: 4,
        flags: [],
      },
    ]);
    // pgd + pud + pmd + pte tables.
    expect(p!.ptes).toBe(4);
  });
});

describe('lab/processes: the page-table inspector', () => {
  it('none before any access; the zero page after a read fault; present, writable and dirty after a write', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    const { addr } = l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 4 * PAGE, ...ANON });
    expect(states(table(l, 'p', 'buf').rows)).toEqual(['none', 'none', 'none', 'none']);

    l.op({ op: 'load', proc: 'p', at: 'buf', length: PAGE });
    l.op({ op: 'store', proc: 'p', at: 'buf', offset: 2 * PAGE, length: 4 });
    const view = table(l, 'p', 'buf');
    expect(view).toMatchObject({ proc: 'p', pid: 1, start: addr, offset: 0, vma: { name: 'buf', pages: 4 } });
    expect(states(view.rows)).toEqual(['zero', 'none', 'present', 'none']);
    const [zero, , present] = view.rows;
    expect(zero).toMatchObject({ addr, level: 'pte', write: false, dirty: false, pfn: l.k.zero_pfn });
    // The zero page is special: no struct page counts are shown.
    expect(zero!.refcount).toBeUndefined();
    expect(present).toMatchObject({
      addr: `0x${(Number(addr) + 2 * PAGE).toString(16)}`,
      level: 'pte',
      write: true,
      dirty: true,
      softDirty: true,
      refcount: 1,
      mapcount: 1,
    });
    expect(present!.pfn).toBe(
      pte_pfn(l.k.pt.entries[lookup_pte(l.k, l.s.userland.procs.get('p')!.mm!, Number(present!.addr))]!),
    );
    expect(present!.device).toBeUndefined();
  });

  it('fork write-protects both copies and shares the page (refcount 2, mapcount 2); a child write copies it', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 2 * PAGE, ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf' });
    l.op({ op: 'fork', proc: 'p', child: 'c' });
    const [p0, p1] = table(l, 'p', 'buf').rows;
    const [c0] = table(l, 'c', 'buf').rows;
    expect(p0).toMatchObject({ state: 'present', write: false, refcount: 2, mapcount: 2 });
    expect(c0).toMatchObject({ state: 'present', write: false, refcount: 2, mapcount: 2, pfn: p0!.pfn });

    l.op({ op: 'store', proc: 'c', at: 'buf', length: 4, fill: { byte: 9 } });
    const [after] = table(l, 'c', 'buf').rows;
    expect(after).toMatchObject({ state: 'present', write: true, refcount: 1, mapcount: 1 });
    expect(after!.pfn).not.toBe(p0!.pfn);
    expect(table(l, 'p', 'buf').rows[0]).toMatchObject({ pfn: p0!.pfn, refcount: 1, mapcount: 1 });
    expect(table(l, 'p', 'buf').rows[1]).toMatchObject({ pfn: p1!.pfn, refcount: 2 });
  });

  it('decodes device-private and migration entries, with the device page and its owner', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 2 * PAGE, ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf' });
    const mm = l.s.userland.procs.get('p')!.mm!;
    const { k } = l;
    const addr = l.s.userland.mappings.get('buf')!.addr;
    // Entries written the way migrate_vma does, to test the decoder alone.
    const devPfn = 0x3ffff0000;
    const devPage = k.mem.pfn_to_page(devPfn);
    const ram = table(l, 'p', 'buf').rows[1]!.pfn!;
    k.pt.entries[lookup_pte(k, mm, addr)] = swp_entry_to_pte(make_device_entry(k, devPage, true));
    k.pt.entries[lookup_pte(k, mm, addr + PAGE)] = swp_entry_to_pte(
      make_migration_entry(k, k.mem.pfn_to_page(ram), false),
    );
    const [dev, mig] = table(l, 'p', 'buf').rows;
    expect(dev).toMatchObject({
      state: 'device-private',
      level: 'pte',
      write: true,
      pfn: devPfn,
      device: 'gpu0',
      refcount: 1,
    });
    expect(mig).toMatchObject({ state: 'migration', write: false, pfn: ram });
    expect(mig!.device).toBeUndefined();
  });

  it('F-DEV-6: a present PTE of un-addressable device memory is shown as bad', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: PAGE, ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf' });
    const mm = l.s.userland.procs.get('p')!.mm!;
    const ptep = lookup_pte(l.k, mm, l.s.userland.mappings.get('buf')!.addr);
    const e = l.k.pt.entries[ptep]!;
    l.k.pt.entries[ptep] = 0x3ffff0001 * 4096 + (e % 4096);
    expect(table(l, 'p', 'buf').rows[0]).toMatchObject({ state: 'bad', pfn: 0x3ffff0001, device: 'gpu0' });
  });

  it('a hugetlb page is one PMD leaf: every row is huge at level pmd with consecutive pfns and the head counts', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({
      op: 'mmap',
      proc: 'p',
      name: 'h',
      length: '2M',
      prot: 'rw',
      flags: ['private', 'anonymous', 'hugetlb'],
    });
    l.op({ op: 'store', proc: 'p', at: 'h', length: 4 });
    const view = table(l, 'p', 'h');
    expect(view.rows).toHaveLength(512);
    expect(new Set(states(view.rows))).toEqual(new Set(['huge']));
    expect(view.rows[0]).toMatchObject({ level: 'pmd', write: true, dirty: true, refcount: 1, mapcount: 1 });
    expect(view.rows[511]!.pfn! - view.rows[0]!.pfn!).toBe(511);
    expect(view.vma!.flags).toEqual(['hugetlb']);
  });

  it('pages through a large vma 4096 rows at a time; defaults to the first vma', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'big', length: '32M', ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'big', offset: 5000 * PAGE, length: 4 });
    const first = table(l, 'p');
    expect(first.rows).toHaveLength(4096);
    expect(first.vma!.name).toBe('big');
    const second = table(l, 'p', 'big', { offset: 4096, pages: 1000 });
    expect(second.offset).toBe(4096);
    expect(second.rows).toHaveLength(1000);
    expect(second.rows[904]!.state).toBe('present');
    expect(second.start).toBe(`0x${(Number(first.start) + 4096 * PAGE).toString(16)}`);
    // At a hex address inside the vma.
    const at = table(l, 'p', second.rows[904]!.addr, { pages: 1 });
    expect(at.rows.map((r) => [r.addr, r.state])).toEqual([[second.rows[904]!.addr, 'present']]);
  });

  it('refuses unknown processes, addresses outside any vma and oversized requests', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    expect(table(l, 'p')).toMatchObject({ vma: null, rows: [] });
    expect(refusal(() => table(l, 'q'))).toBe('proc: no process named "q"');
    expect(refusal(() => table(l, 'p', '0x1000'))).toBe('at: no vma of "p" at 0x1000');
    expect(refusal(() => table(l, 'p', undefined, { pages: 4097 }))).toBe(
      'pages: expected 1 to 4096 pages, got 4097',
    );
  });
});

describe('lab/processes: entries made by the kernel itself', () => {
  it('dmirror migrate turns the rows device-private (device pfn, owner gpu0); migrate_to_sys brings them back', () => {
    const l = lab();
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 4 * PAGE, ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf' });
    l.op({ op: 'open', device: 'gpu0', proc: 'p' });
    l.op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate', at: 'buf' });
    const dev = table(l, 'p', 'buf').rows;
    expect(states(dev)).toEqual(Array(4).fill('device-private'));
    expect(dev[0]).toMatchObject({ level: 'pte', write: true, device: 'gpu0', mapcount: 1 });
    expect(dev.map((r) => r.pfn! >= 0x3ffff0000)).toEqual(Array(4).fill(true));
    l.op({ op: 'device', device: 'gpu0', proc: 'p', cmd: 'migrate_to_sys', at: 'buf' });
    const back = table(l, 'p', 'buf').rows;
    expect(states(back)).toEqual(Array(4).fill('present'));
    expect(back.map((r) => r.device)).toEqual(Array(4).fill(undefined));
    expect(back.every((r) => r.pfn! < 0x3ffff0000)).toBe(true);
    expect(back[0]).toMatchObject({ refcount: 1, mapcount: 1 });
  });

  it('a DAX file on a pmem device is mapped by devmap entries pointing into the namespace', () => {
    const l = lab({
      ram: [{ start: 0, size: '1G' }],
      reserved: [],
      devices: [{ name: 'pmem0', kind: 'pmem', start: '4G', memory: '1G' }],
    });
    l.op({ op: 'file', name: 'f', size: 4 * PAGE, dax: true, fill: { pattern: 'index' } });
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'm', length: 4 * PAGE, prot: 'r', flags: ['shared'], file: 'f' });
    const r = l.step({ op: 'load', proc: 'p', at: 'm', offset: PAGE, length: 8 });
    expect(Array.from(new Int32Array(r.data!.buffer))).toEqual([1024, 1025]);
    const rows = table(l, 'p', 'm').rows;
    expect(rows[1]).toMatchObject({ state: 'devmap', device: 'pmem0' });
    expect(rows[1]!.pfn! * PAGE).toBeGreaterThanOrEqual(4 * 2 ** 30);
  });
});
