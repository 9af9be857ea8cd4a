// The bundled plugins beyond dmirror: chunked-vram (a GPU driver with 2 MiB VRAM chunks,
// block migration and LRU eviction) oversubscribed with its data intact, and pmem-dax (the
// seed-003 pmem driver) probing with the request queue's usage counter as the pagemap ref.
import { describe, expect, it } from 'vitest';
import { check_mirror_coherence, cpu_view_of } from '../../../src-main/kernel/mm/debug_vm';
import { MEMORY_DEVICE_HOST } from '../../../src-main/kernel/include/memremap';
import { layoutSnapshot } from '../../../src-main/lab/layout';
import { pagesInUseScanned } from '../../kernel/helpers';
import { ANON, G, M, PAGE, int32s, pluginLab, smallMachine } from './helpers';

const CHUNK = 2 * M;

describe('plugins/chunked-vram: VRAM in 2 MiB chunks, block faults, LRU eviction', () => {
  it('a GPU fault migrates the aligned 2 MiB block around the address, one copy batch, one chunk', async () => {
    const l = await pluginLab(
      smallMachine([{ name: 'gpu0', kind: 'private', memory: '8M', driver: 'chunked-vram' }]),
    );
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 8 * M, align: '2M', ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    l.op({ op: 'open', proc: 'p', device: 'gpu0' });
    const copies: number[] = [];
    l.k.trace.subscribe((e) => {
      if (e.name === 'dma_copy') copies.push(e.pages);
    });
    const r = l.op({
      op: 'device',
      proc: 'p',
      device: 'gpu0',
      cmd: 'fault',
      at: 'buf',
      offset: CHUNK + 123 * PAGE,
      pages: 1,
    });
    expect(r).toMatchObject({ ret: 0, cpages: CHUNK / PAGE, evicted: 0 });
    expect(copies).toEqual([CHUNK / PAGE]);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    const kinds = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => cpu_view_of(l.k, task.mm!, base + from + i * PAGE).kind);
    expect(new Set(kinds(CHUNK, CHUNK / PAGE))).toEqual(new Set(['device']));
    expect(new Set(kinds(0, CHUNK / PAGE))).toEqual(new Set(['page']));
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'stats', at: 'buf' })).toMatchObject({
      chunks: 4,
      chunksAllocated: 1,
      freePages: 3 * (CHUNK / PAGE),
      gpuFaults: 1,
    });
    expect(l.reports).toEqual([]);
  });

  it('oversubscribed 4x: the GPU reads 32 MiB through 8 MiB of VRAM, evicting LRU chunks; no page loses its data or stamp', async () => {
    const l = await pluginLab(
      smallMachine([{ name: 'gpu0', kind: 'private', memory: '8M', driver: 'chunked-vram' }]),
    );
    const size = 32 * M;
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: size, align: '2M', ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index' } });
    l.op({ op: 'open', proc: 'p', device: 'gpu0' });
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    const k = l.k;
    /** The stamp of the page the CPU (or its device entry) holds at each page of the buffer. */
    const stamps = (): number[] =>
      Array.from({ length: size / PAGE }, (_, i) => {
        const v = cpu_view_of(k, task.mm!, base + i * PAGE);
        return v.kind === 'none' ? -1 : k.mem.stamp[k.mem.pfn_to_page(v.pfn)]!;
      });
    const before = stamps();
    const devmem = l.bound('gpu0').devmem!;
    let peak = 0;
    k.trace.subscribe((e) => {
      if (e.name !== 'migrate_vma') return;
      expect(devmem.pagemap.nr_busy).toBe(pagesInUseScanned(k, devmem.pagemap));
      peak = Math.max(peak, devmem.pagemap.nr_busy);
    });

    // The GPU reads the buffer twice, 2 MiB at a time, into a host buffer.
    let evicted = 0;
    for (let pass = 0; pass < 2; pass++)
      for (let off = 0; off < size; off += CHUNK) {
        l.op({ op: 'buffer', name: `b${pass}-${off}`, size: CHUNK });
        const r = l.op({
          op: 'device',
          proc: 'p',
          device: 'gpu0',
          cmd: 'read',
          at: 'buf',
          offset: off,
          pages: CHUNK / PAGE,
          buffer: `b${pass}-${off}`,
        });
        expect(r).toMatchObject({ ret: 0, cpages: CHUNK / PAGE, faults: 1 });
        evicted += (r as unknown as { evicted: number }).evicted;
        const got = int32s(l.data({ op: 'check', buffer: `b${pass}-${off}` }));
        expect(got[0]).toBe(off / 4);
        expect(got[got.length - 1]).toBe((off + CHUNK) / 4 - 1);
      }
    // 32 blocks through 4 chunks: every fault after the fourth evicts the oldest chunk.
    expect(evicted).toBe((2 * 16 - 4) * (CHUNK / PAGE));
    expect(peak).toBeLessThanOrEqual((8 * M) / PAGE);
    expect(check_mirror_coherence(k)).toEqual([]);

    // The GPU writes one block; it is evicted by later faults; the CPU sees the GPU's data.
    l.op({ op: 'buffer', name: 'w', size: CHUNK, fill: { pattern: 'negindex' } });
    expect(
      l.op({
        op: 'device',
        proc: 'p',
        device: 'gpu0',
        cmd: 'write',
        at: 'buf',
        offset: 0,
        pages: CHUNK / PAGE,
        buffer: 'w',
      }),
    ).toMatchObject({ ret: 0, cpages: CHUNK / PAGE });
    for (let off = CHUNK; off <= 4 * CHUNK; off += CHUNK)
      l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'fault', at: 'buf', offset: off, pages: 1 });
    expect(cpu_view_of(k, task.mm!, base).kind).toBe('page');
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', length: 16 }))).toEqual([0, -1, -2, -3]);

    // Stamps: the pages the GPU only read carry the stamp the CPU's store gave them.
    const after = stamps();
    for (let i = CHUNK / PAGE; i < size / PAGE; i++) expect(after[i]).toBe(before[i]);
    // Everything home again: the CPU reads the whole index pattern.
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'release', at: 'buf' })).toMatchObject({
      ret: 0,
    });
    const all = int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: CHUNK }));
    expect(all.every((v, i) => v === CHUNK / 4 + i)).toBe(true);
    expect(devmem.pagemap.nr_busy).toBe(0);
    expect(pagesInUseScanned(k, devmem.pagemap)).toBe(0);
    expect(l.reports).toEqual([]);
  }, 30_000);

  it('a CPU access to a page in VRAM brings just that page home', async () => {
    const l = await pluginLab(
      smallMachine([{ name: 'gpu0', kind: 'private', memory: '8M', driver: 'chunked-vram' }]),
    );
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'buf', length: 2 * M, align: '2M', ...ANON });
    l.op({ op: 'store', proc: 'p', at: 'buf', fill: { pattern: 'index', add: 5 } });
    l.op({ op: 'open', proc: 'p', device: 'gpu0' });
    l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'migrate', at: 'buf' });
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'buf', offset: 10 * PAGE, length: 8 }))).toEqual([
      10 * 1024 + 5,
      10 * 1024 + 6,
    ]);
    const task = l.u.procs.get('p')!;
    const base = l.u.mappings.get('buf')!.addr;
    expect([9, 10, 11].map((i) => cpu_view_of(l.k, task.mm!, base + i * PAGE).kind)).toEqual([
      'device',
      'page',
      'device',
    ]);
    expect(l.op({ op: 'device', proc: 'p', device: 'gpu0', cmd: 'stats', at: 'buf' })).toMatchObject({
      cpuFaults: 1,
    });
  });
});

describe('plugins/pmem-dax: the seed-003 pmem driver', () => {
  const pmem = (mode?: string) =>
    smallMachine([
      { name: 'pmem0', kind: 'pmem', start: '8G', memory: '256M', driver: 'pmem-dax', ...(mode && { mode }) },
    ]);

  it('F-PGMAP-6: fsdax maps the namespace with the request queue usage counter as the pagemap ref, as the built-in does', async () => {
    const l = await pluginLab(pmem());
    const b = l.bound('pmem0');
    const p = b.pmem!;
    expect(p.pgmap!.ref).toBe(p.pmem_queue!.q_usage_counter);
    expect(p.pgmap!.type).toBe(MEMORY_DEVICE_HOST);
    expect([p.phys_addr, p.size, p.virt_addr]).toEqual([8 * G, 256 * M, 8 * G]);
    expect(p.pmem_queue!.dying).toBe(false);
    // The raw round found a pfn info block and dropped its queue.
    expect(p.dropped_queues).toHaveLength(1);
    expect(p.dropped_queues[0]!.dying).toBe(true);
    expect(p.dropped_queues[0]!.q_usage_counter.dead).toBe(true);

    // The same iomem and device layout as the built-in pmem driver's.
    const builtin = await pluginLab(
      smallMachine([{ name: 'pmem0', kind: 'pmem', start: '8G', memory: '256M', driver: 'pmem' }]),
    );
    const strip = (x: ReturnType<typeof layoutSnapshot>) => ({
      ...x,
      machine: '',
      devices: x.devices.map((d) => ({ ...d, driver: '' })),
    });
    expect(strip(layoutSnapshot(l.machine))).toEqual(strip(layoutSnapshot(builtin.machine)));

    // Files on it map directly (DAX) and keep their data.
    l.op({ op: 'file', name: 'f', size: 4 * M, dax: true, fill: { pattern: 'index' } });
    l.op({ op: 'spawn', proc: 'p' });
    l.op({ op: 'mmap', proc: 'p', name: 'm', length: 4 * M, prot: 'rw', flags: ['shared'], file: 'f' });
    expect(int32s(l.data({ op: 'load', proc: 'p', at: 'm', offset: M, length: 8 }))).toEqual([
      M / 4,
      M / 4 + 1,
    ]);

    // Unbinding runs the plugin's devres action: the queue is cleaned up, the pages go.
    const q = p.pmem_queue!;
    l.op({ op: 'exit', proc: 'p' });
    let gone = false;
    l.machine.remove('pmem0', () => (gone = true));
    expect(gone).toBe(true);
    expect(q.dying).toBe(true);
    expect(q.q_usage_counter.exited).toBe(true);
    expect(l.reports).toEqual([]);
  });

  it('raw and sector namespaces get no struct pages', async () => {
    for (const mode of ['raw', 'sector']) {
      const l = await pluginLab(pmem(mode));
      expect(l.machine.probeFailures()).toEqual([]);
      expect(l.bound('pmem0').pmem).toBeUndefined();
      expect(l.k.pgmap_index.size).toBe(0);
    }
  });
});
