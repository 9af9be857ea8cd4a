import { describe, it, expect } from 'vitest';
import { bootParams, DEFAULT_MACHINE, parseMachine } from '../../src-main/lab/machine-file';
import { InputError } from '../../src-main/lab/input-error';
import { DEFAULT_CONFIG } from '../../src-main/kernel/include/config';
import { parseSize } from '../../src-main/lab/numbers';

const K = 2 ** 10;
const M = 2 ** 20;
const G = 2 ** 30;

/** The InputError parseMachine throws for `input`. */
function inputError(input: unknown): InputError {
  try {
    parseMachine(input, 'test');
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('parseMachine accepted the input');
}

describe('lab/machine-file: defaults', () => {
  it('an empty machine is the 16 GiB x86-64 default: 640K + 3071M + 13G of RAM, the PCI hole, no device', () => {
    const spec = parseMachine({}, 'default');
    expect(spec.name).toBe('default');
    expect(spec.config).toEqual(DEFAULT_CONFIG);
    expect(spec.config).toEqual({
      pageShift: 12,
      sectionSizeBits: 27,
      maxPhysmemBits: 46,
      physAddrBits: 46,
      maxSwapfilesShift: 5,
    });
    expect(spec.ram).toEqual([
      { start: 0, size: 640 * K },
      { start: M, size: 3071 * M },
      { start: 4 * G, size: 13 * G },
    ]);
    expect(spec.ram.reduce((n, r) => n + r.size, 0)).toBe(16 * G - M + 640 * K);
    expect(spec.reserved).toEqual([
      { name: 'Reserved', start: 640 * K, size: 384 * K },
      { name: 'PCI Bus 0000:00', start: 3 * G, size: G },
    ]);
    expect(spec.devices).toEqual([]);
    expect(DEFAULT_MACHINE.ram).toHaveLength(3);
  });

  it('sizes take numbers, hex and K/M/G/T suffixes; devices get their built-in driver', () => {
    const spec = parseMachine(
      {
        physAddrBits: 40,
        ram: [{ start: '0x0', size: '1G' }],
        reserved: [],
        devices: [
          { name: 'gpu0', kind: 'private', memory: '256M' },
          { name: 'cdm0', kind: 'public', memory: 134217728, start: '8G' },
          { name: 'pmem0', kind: 'pmem', memory: '0x8000000', start: '16G', mode: 'sector' },
        ],
      },
      'm',
    );
    expect(spec.config.physAddrBits).toBe(40);
    expect(spec.ram).toEqual([{ start: 0, size: G }]);
    expect(spec.reserved).toEqual([]);
    expect(spec.devices).toEqual([
      { name: 'gpu0', kind: 'private', memory: 256 * M, driver: 'dmirror' },
      { name: 'cdm0', kind: 'public', memory: 128 * M, start: 8 * G, driver: 'dmirror' },
      { name: 'pmem0', kind: 'pmem', memory: 128 * M, start: 16 * G, driver: 'pmem', mode: 'sector' },
    ]);
    expect(bootParams(spec).expectedDeviceBytes).toBe(512 * M);
    // RAM comes out sorted by address.
    const sorted = parseMachine(
      {
        ram: [
          { start: '4G', size: '1G' },
          { start: 0, size: '1G' },
        ],
      },
      'm',
    );
    expect(sorted.ram.map((r) => r.start)).toEqual([0, 4 * G]);
    expect(parseSize('2T', 'x')).toBe(2 * 2 ** 40);
  });
});

/** A value nested `n` arrays deep. */
const nested = (n: number): unknown => {
  let v: unknown = 0;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

describe('lab/machine-file: every error names its JSON path', () => {
  const cases: [string, unknown, string, RegExp][] = [
    [
      // 5,000 levels would overflow the stack of an error message quoting the value.
      'a value nested 5,000 levels deep',
      { ram: [{ start: 0, size: nested(5000) }] },
      `machine.ram[0].size${'[0]'.repeat(62)}`,
      /nested deeper than 64 levels/,
    ],
    ['not an object', [], 'machine', /expected a JSON object/],
    ['unknown top-level field', { ramm: [] }, 'machine.ramm', /unknown field/],
    [
      'unknown range field',
      { ram: [{ start: 0, size: '1G', name: 'x' }] },
      'machine.ram[0].name',
      /unknown field/,
    ],
    [
      'unknown device field',
      { devices: [{ name: 'g', kind: 'private', memory: '1M', numa: 1 }] },
      'machine.devices[0].numa',
      /unknown field/,
    ],
    [
      'overlapping RAM',
      {
        ram: [
          { start: 0, size: '2G' },
          { start: '1G', size: '1G' },
        ],
      },
      'machine.ram[1]',
      /overlaps machine\.ram\[0\]/,
    ],
    [
      'RAM size not a page multiple',
      { ram: [{ start: 0, size: 4097 }] },
      'machine.ram[0].size',
      /not a multiple of the page size/,
    ],
    [
      'RAM start not page aligned',
      { ram: [{ start: '0x1001', size: '1M' }] },
      'machine.ram[0].start',
      /not aligned to the page size/,
    ],
    ['RAM of size zero', { ram: [{ start: 0, size: 0 }] }, 'machine.ram[0].size', /greater than 0/],
    ['RAM without size', { ram: [{ start: 0 }] }, 'machine.ram[0].size', /missing/],
    [
      'RAM beyond the address space',
      { physAddrBits: 32, ram: [{ start: '3G', size: '2G' }] },
      'machine.ram[0]',
      /32-bit physical address space/,
    ],
    [
      'RAM above the sparse memory model (the default RAM ends at 17G)',
      { maxPhysmemBits: 32 },
      'machine.ram[2]',
      /\[0x100000000, 0x440000000\) ends above the 32-bit reach of the sparse memory model/,
    ],
    ['bad size string', { ram: [{ start: 0, size: '1Q' }] }, 'machine.ram[0].size', /expected a size like/],
    ['ram not an array', { ram: {} }, 'machine.ram', /expected an array/],
    ['pageShift out of range', { pageShift: 11 }, 'machine.pageShift', /integer from 12 to 21/],
    [
      'section not above page',
      { pageShift: 16, sectionSizeBits: 16 },
      'machine.sectionSizeBits',
      /larger than pageShift/,
    ],
    [
      'reserved without a name',
      { reserved: [{ start: 0, size: '4K' }] },
      'machine.reserved[0].name',
      /non-empty string/,
    ],
    [
      'bad device kind',
      { devices: [{ name: 'g', kind: 'coherent', memory: '1M' }] },
      'machine.devices[0].kind',
      /expected one of private, public, pmem/,
    ],
    [
      'device without memory',
      { devices: [{ name: 'g', kind: 'private' }] },
      'machine.devices[0].memory',
      /missing/,
    ],
    [
      'device memory unaligned',
      { devices: [{ name: 'g', kind: 'private', memory: 100 }] },
      'machine.devices[0].memory',
      /page size/,
    ],
    [
      'public device without start',
      { devices: [{ name: 'c', kind: 'public', memory: '128M' }] },
      'machine.devices[0].start',
      /missing: a public device needs its physical start/,
    ],
    [
      'pmem device without start',
      { devices: [{ name: 'p', kind: 'pmem', memory: '128M' }] },
      'machine.devices[0].start',
      /missing: a pmem device needs its physical start/,
    ],
    [
      'private device with a start',
      { devices: [{ name: 'g', kind: 'private', memory: '128M', start: '8G' }] },
      'machine.devices[0].start',
      /hmm_devmem_add\(\) picks a free range/,
    ],
    [
      'mode on a non-pmem device',
      { devices: [{ name: 'g', kind: 'private', memory: '1M', mode: 'raw' }] },
      'machine.devices[0].mode',
      /only a pmem device/,
    ],
    [
      'bad pmem mode',
      { devices: [{ name: 'p', kind: 'pmem', memory: '1M', start: '8G', mode: 'dax' }] },
      'machine.devices[0].mode',
      /fsdax, sector, raw/,
    ],
    [
      'unknown driver',
      { devices: [{ name: 'g', kind: 'private', memory: '1M', driver: 'nouveau' }] },
      'machine.devices[0].driver',
      /unknown driver "nouveau"/,
    ],
    [
      'bad device name',
      { devices: [{ name: 'has space', kind: 'private', memory: '1M' }] },
      'machine.devices[0].name',
      /device name/,
    ],
    [
      'duplicate device names',
      {
        devices: [
          { name: 'gpu0', kind: 'private', memory: '1M' },
          { name: 'gpu0', kind: 'private', memory: '1M' },
        ],
      },
      'machine.devices[1].name',
      /duplicate device name "gpu0"/,
    ],
  ];
  it.each(cases)('%s: InputError at its path', (_what, input, path, detail) => {
    const e = inputError(input);
    expect(e.path).toBe(path);
    expect(e.detail).toMatch(detail);
    expect(e.message.startsWith(`${path}: `)).toBe(true);
  });
});
