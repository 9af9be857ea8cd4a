import { describe, it, expect } from 'vitest';
import { lab, labFailure } from './helpers';
import { LabSession } from '../../src-main/lab/session';
import type { LabEvent, LayoutSnapshot, LogLine } from '../../src-main/api';

describe('lab/session: LabSession', () => {
  it('layout reports the iomem tree, the device, its sections and zones as the kernel has them', () => {
    const { s } = lab();
    const layout = s.handle({ type: 'layout' }) as LayoutSnapshot;
    expect(layout.machine).toBe('small');
    expect([layout.physAddrBits, layout.pageSize, layout.sectionSize]).toEqual([46, 4096, '0x8000000']);
    expect(layout.resources.map((r) => [r.name, r.start, r.end, r.desc, r.flags])).toEqual([
      ['System RAM', '0x0', '0x3fffffff', 'NONE', ['MEM', 'SYSRAM', 'BUSY']],
      ['gpu0', '0x3ffff0000000', '0x3fffffffffff', 'DEVICE_PRIVATE_MEMORY', ['MEM', 'BUSY']],
    ]);
    expect(layout.resources[0]!.children.map((c) => c.name)).toEqual([
      'Kernel code',
      'Kernel rodata',
      'Kernel data',
      'Kernel bss',
    ]);
    expect(layout.devices).toEqual([
      {
        name: 'gpu0',
        kind: 'private',
        driver: 'dmirror',
        start: '0x3ffff0000000',
        end: '0x3fffffffffff',
        pgmapType: 'MEMORY_DEVICE_PRIVATE',
        pages: 65536,
        pagesInUse: 0,
      },
    ]);
    expect(layout.sections.map((x) => x.nr)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 524286, 524287]);
    expect(layout.sections.at(-1)).toEqual({
      nr: 524287,
      start: '0x3ffff8000000',
      end: '0x3fffffffffff',
      zone: 'Device',
      device: 'gpu0',
    });
    expect(layout.sections[0]!.zone).toBe('DMA32');
    expect(layout.zones.map((z) => [z.name, z.startPfn, z.spannedPages])).toEqual([
      ['DMA', 0, 4096],
      ['DMA32', 4096, 258048],
      ['Device', 0x3ffff0000, 65536],
    ]);
  });

  it('F-DEVMEM-1: addDevice places a second device one aligned step below the first and pushes the layout', () => {
    const { s, events } = lab();
    const layout = s.handle({
      type: 'addDevice',
      device: { name: 'gpu1', kind: 'private', memory: '256M' },
    }) as LayoutSnapshot;
    const gpu1 = layout.devices.find((d) => d.name === 'gpu1')!;
    expect([gpu1.start, gpu1.end, gpu1.pgmapType]).toEqual([
      '0x3fffe0000000',
      '0x3fffefffffff',
      'MEMORY_DEVICE_PRIVATE',
    ]);
    const layoutEvents = events.filter((e) => e.type === 'layout');
    expect(layoutEvents).toHaveLength(1);
    expect(layoutEvents[0]).toEqual({ type: 'layout', layout });
  });

  it('F-DEVMEM-1: addDevice with no room fails with LabFailure code "-ERANGE" and logs the probe failure', () => {
    const { s, events } = lab();
    const e = labFailure(() =>
      s.handle({ type: 'addDevice', device: { name: 'huge', kind: 'private', memory: '40T' } }),
    );
    expect(e.code).toBe('-ERANGE');
    expect(e.message).toBe('huge: probe failed with -ERANGE');
    const layout = s.handle({ type: 'layout' }) as LayoutSnapshot;
    expect(layout.devices.map((d) => d.name)).toEqual(['gpu0']);
    expect(layout.resources.map((r) => r.name)).toEqual(['System RAM', 'gpu0']);
    const logs = events
      .filter((x): x is Extract<LabEvent, { type: 'log' }> => x.type === 'log')
      .map((x) => x.line);
    expect(logs.map((l) => [l.level, l.text])).toEqual([
      ['err', 'huge: probe of dmirror failed with error -ERANGE'],
    ]);
  });

  it('addDevice with bad input fails with "EINPUT" naming the field', () => {
    const { s } = lab();
    const e = labFailure(() =>
      s.handle({ type: 'addDevice', device: { name: 'c', kind: 'public', memory: '128M' } }),
    );
    expect(e.code).toBe('EINPUT');
    expect(e.message).toBe('device.start: missing: a public device needs its physical start');
    const dup = labFailure(() =>
      s.handle({ type: 'addDevice', device: { name: 'gpu0', kind: 'private', memory: '128M' } }),
    );
    expect(dup.code).toBe('EINPUT');
    expect(dup.message).toMatch(/a device named "gpu0" already exists/);
  });

  it('removeDevice unplugs the device and emits a layout event without it', () => {
    const { s, events } = lab();
    const layout = s.handle({ type: 'removeDevice', name: 'gpu0' }) as LayoutSnapshot;
    expect(layout.devices).toEqual([]);
    expect(layout.resources.map((r) => r.name)).toEqual(['System RAM']);
    expect(layout.sections.map((x) => x.nr)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(layout.zones.map((z) => z.name)).toEqual(['DMA', 'DMA32']);
    const last = events.filter((e) => e.type === 'layout').at(-1) as Extract<LabEvent, { type: 'layout' }>;
    expect(last.layout.devices).toEqual([]);
    expect(labFailure(() => s.handle({ type: 'removeDevice', name: 'gpu0' })).code).toBe('EINPUT');
  });

  it('dmesg returns the kernel log with sequence numbers and levels', () => {
    const { s } = lab();
    const lines = s.handle({ type: 'dmesg' }) as LogLine[];
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ seq: 1, level: 'info' });
    expect(lines[0]!.text).toMatch(/^Memory: \d+K available$/);
    labFailure(() =>
      s.handle({ type: 'addDevice', device: { name: 'huge', kind: 'private', memory: '40T' } }),
    );
    const after = s.handle({ type: 'dmesg' }) as LogLine[];
    expect(after.at(-1)).toEqual({
      seq: 2,
      level: 'err',
      text: 'huge: probe of dmirror failed with error -ERANGE',
    });
  });

  it('a machine whose device does not fit boots, and reports the device with its error', () => {
    const { s } = lab({
      physAddrBits: 32,
      ram: [{ start: 0, size: '1G' }],
      reserved: [],
      devices: [{ name: 'big', kind: 'private', memory: '3G' }],
    });
    const layout = s.handle({ type: 'layout' }) as LayoutSnapshot;
    expect(layout.devices).toEqual([
      { name: 'big', kind: 'private', driver: 'dmirror', pages: 0, pagesInUse: 0, error: '-ERANGE' },
    ]);
  });

  it('loadMachine replaces the machine; bad machine input is "EINPUT" with the JSON path', () => {
    const { s, events } = lab();
    const layout = s.handle({
      type: 'loadMachine',
      machine: { ram: [{ start: 0, size: '512M' }], reserved: [] },
      name: 'half',
    }) as LayoutSnapshot;
    expect(layout.machine).toBe('half');
    expect(layout.devices).toEqual([]);
    expect(events.at(-1)).toEqual({ type: 'layout', layout });
    const e = labFailure(() =>
      s.handle({ type: 'loadMachine', machine: { ram: [{ start: 0, size: 4097 }] } }),
    );
    expect(e.code).toBe('EINPUT');
    expect(e.message).toMatch(/^machine\.ram\[0\]\.size: /);
    expect(labFailure(() => new LabSession({ machine: { foo: 1 } })).message).toMatch(
      /^machine\.foo: unknown field/,
    );
    // A firmware map the kernel cannot boot: the error names the machine and both ranges.
    const boot = labFailure(() =>
      s.handle({
        type: 'loadMachine',
        name: 'clash',
        machine: { ram: [{ start: 0, size: '1G' }], reserved: [{ name: 'X', start: '512M', size: '1G' }] },
      }),
    );
    expect(boot.code).toBe('EINPUT');
    expect(boot.message).toBe(
      'clash: reserved range "X" [mem 0x20000000-0x5fffffff] partially overlaps System RAM [mem 0x0-0x3fffffff]',
    );
    expect(labFailure(() => s.handle({ type: 'nope' } as never)).code).toBe('EINPUT');
  });
});
