// Machine files (*.machine.json, ../shared/design/SCENARIOS.md): parsed and validated
// into a MachineSpec. Every error names the JSON path and what was expected.
import { DEFAULT_CONFIG, type KernelConfig } from '../kernel/include/config';
import type { BootParams, MemRange } from '../kernel/init/main';
import { BUILTIN_DRIVERS, type DeviceConfig, type DeviceKind } from '../drivers/builtin';
import { bundledPlugins, isPluginDriver } from '../drivers/plugin/sources';
import { checkDepth, InputError } from './input-error';
import { hex, humanSize, parseSize } from './numbers';
import { COST_KEYS, LINK_KINDS, type CostOverrides, type LinkKind } from './clock';

export interface MachineSpec {
  name: string;
  config: KernelConfig;
  ram: MemRange[];
  reserved: (MemRange & { name: string })[];
  devices: (DeviceConfig & { link?: LinkKind })[];
  /** Costs that replace the defaults of lab/clock.ts (docs/COSTS.md). */
  costs?: CostOverrides;
  /** The link of devices that name none. */
  link?: LinkKind;
  /** The machine file's directory: a device's plugin driver path is relative to it. */
  dir?: string;
}

const G = 2 ** 30;
const M = 2 ** 20;
const K = 2 ** 10;

/** The default machine: 16 GiB of RAM on x86-64, with the PCI hole below 4 GiB. */
export const DEFAULT_MACHINE = {
  ram: [
    { start: 0, size: 640 * K },
    { start: M, size: 3 * G - M },
    { start: 4 * G, size: 13 * G },
  ],
  reserved: [
    { name: 'Reserved', start: 640 * K, size: 384 * K },
    { name: 'PCI Bus 0000:00', start: 3 * G, size: G },
  ],
} as const;

/** The machine the lab opens on: the default one with a 256 MiB device-private GPU. */
export const DEMO_MACHINE = {
  devices: [{ name: 'gpu0', kind: 'private', memory: '256M', driver: 'dmirror' }],
};

// "$schema" lets editors find docs/schema/machine.schema.json.
export const TOP_FIELDS = [
  '$schema',
  'pageShift',
  'sectionSizeBits',
  'maxPhysmemBits',
  'physAddrBits',
  'maxSwapfilesShift',
  'ram',
  'reserved',
  'devices',
  'costs',
  'link',
];
export const KINDS: DeviceKind[] = ['private', 'public', 'pmem'];
export const DEVICE_FIELDS = ['name', 'kind', 'memory', 'driver', 'start', 'mode', 'link'];
export const PMEM_MODES = ['fsdax', 'sector', 'raw'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFields(obj: Record<string, unknown>, allowed: string[], path: string): void {
  for (const key of Object.keys(obj))
    if (!allowed.includes(key))
      throw new InputError(`${path}.${key}`, `unknown field (expected one of: ${allowed.join(', ')})`);
}

function intField(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  def: number,
  min: number,
  max: number,
): number {
  const v = obj[key];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new InputError(
      `${path}.${key}`,
      `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  return v;
}

function list(obj: Record<string, unknown>, key: string, path: string): unknown[] | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new InputError(`${path}.${key}`, 'expected an array');
  return v;
}

function range(v: unknown, path: string, page: number, fields: string[]): MemRange & Record<string, unknown> {
  if (!isObject(v)) throw new InputError(path, 'expected an object with "start" and "size"');
  checkFields(v, fields, path);
  if (v.start === undefined) throw new InputError(`${path}.start`, 'missing');
  if (v.size === undefined) throw new InputError(`${path}.size`, 'missing');
  const start = parseSize(v.start, `${path}.start`);
  const size = parseSize(v.size, `${path}.size`);
  if (size === 0) throw new InputError(`${path}.size`, 'must be greater than 0');
  if (start % page)
    throw new InputError(`${path}.start`, `${hex(start)} is not aligned to the page size (${page})`);
  if (size % page)
    throw new InputError(`${path}.size`, `${size} is not a multiple of the page size (${page})`);
  return { ...v, start, size };
}

/** Parse a machine object (already JSON-decoded). `source` names it in errors ("machine"). */
export function parseMachine(input: unknown, name: string, source = 'machine'): MachineSpec {
  if (!isObject(input)) throw new InputError(source, 'expected a JSON object');
  checkDepth(input, source);
  checkFields(input, TOP_FIELDS, source);
  const config: KernelConfig = {
    pageShift: intField(input, 'pageShift', source, DEFAULT_CONFIG.pageShift, 12, 21),
    sectionSizeBits: intField(input, 'sectionSizeBits', source, DEFAULT_CONFIG.sectionSizeBits, 15, 40),
    maxPhysmemBits: intField(input, 'maxPhysmemBits', source, DEFAULT_CONFIG.maxPhysmemBits, 32, 52),
    physAddrBits: intField(input, 'physAddrBits', source, DEFAULT_CONFIG.physAddrBits, 32, 52),
    // A PTE has five bits for the swap type (x86-64), so at most 2^5 types.
    maxSwapfilesShift: intField(input, 'maxSwapfilesShift', source, DEFAULT_CONFIG.maxSwapfilesShift, 3, 5),
  };
  if (config.sectionSizeBits <= config.pageShift)
    throw new InputError(`${source}.sectionSizeBits`, `must be larger than pageShift (${config.pageShift})`);
  if (config.maxPhysmemBits - config.sectionSizeBits > 24)
    throw new InputError(
      `${source}.sectionSizeBits`,
      `gives more than 2^24 sections for maxPhysmemBits ${config.maxPhysmemBits}`,
    );
  const page = 2 ** config.pageShift;
  const space = 2 ** config.physAddrBits;

  const ramIn = list(input, 'ram', source);
  const ram = ramIn
    ? ramIn.map((r, i) => range(r, `${source}.ram[${i}]`, page, ['start', 'size']))
    : DEFAULT_MACHINE.ram.map((r) => ({ ...r }));
  const resIn = list(input, 'reserved', source);
  const reserved = resIn
    ? resIn.map((r, i) => {
        const path = `${source}.reserved[${i}]`;
        const res = range(r, path, page, ['name', 'start', 'size']);
        if (typeof res.name !== 'string' || !res.name)
          throw new InputError(`${path}.name`, 'expected a non-empty string');
        return { name: res.name, start: res.start, size: res.size };
      })
    : DEFAULT_MACHINE.reserved.map((r) => ({ ...r }));

  const named = [
    ...ram.map((r, i) => ({ ...r, path: `${source}.ram[${i}]` })),
    ...reserved.map((r, i) => ({ ...r, path: `${source}.reserved[${i}]` })),
  ];
  for (const r of named)
    if (r.start + r.size > space)
      throw new InputError(
        r.path,
        `[${hex(r.start)}, ${hex(r.start + r.size)}) exceeds the ${config.physAddrBits}-bit physical address space`,
      );
  // RAM needs a memmap, and the sparse memory model has sections below 2^maxPhysmemBits only.
  ram.forEach((r, i) => {
    if (r.start + r.size > 2 ** config.maxPhysmemBits)
      throw new InputError(
        `${source}.ram[${i}]`,
        `[${hex(r.start)}, ${hex(r.start + r.size)}) ends above the ${config.maxPhysmemBits}-bit reach of the sparse memory model (maxPhysmemBits)`,
      );
  });
  const sortedRam = ram.map((r, i) => ({ ...r, i })).sort((a, b) => a.start - b.start);
  for (let j = 1; j < sortedRam.length; j++) {
    const a = sortedRam[j - 1]!;
    const b = sortedRam[j]!;
    if (b.start < a.start + a.size)
      throw new InputError(
        `${source}.ram[${b.i}]`,
        `overlaps ${source}.ram[${a.i}] ([${hex(a.start)}, ${hex(a.start + a.size)}))`,
      );
  }

  const devIn = list(input, 'devices', source) ?? [];
  const devices = devIn.map((d, i) => parseDevice(d, `${source}.devices[${i}]`, page, space));
  const names = new Set<string>();
  devices.forEach((d, i) => {
    if (names.has(d.name))
      throw new InputError(`${source}.devices[${i}].name`, `duplicate device name "${d.name}"`);
    names.add(d.name);
  });
  return {
    name,
    config,
    ram: sortedRam.map(({ start, size }) => ({ start, size })),
    reserved,
    devices,
    ...(input.costs !== undefined && { costs: parseCosts(input.costs, `${source}.costs`) }),
    ...(input.link !== undefined && { link: parseLink(input.link, `${source}.link`) }),
  };
}

function parseLink(v: unknown, path: string): LinkKind {
  if (typeof v !== 'string' || !LINK_KINDS.includes(v as LinkKind))
    throw new InputError(path, `expected one of ${LINK_KINDS.join(', ')}, got ${JSON.stringify(v)}`);
  return v as LinkKind;
}

function positive(v: unknown, path: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new InputError(path, `expected a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** A machine file's `costs`: any keys of the cost model, each a positive number (`links` by link). */
export function parseCosts(v: unknown, path: string): CostOverrides {
  if (!isObject(v)) throw new InputError(path, 'expected an object of costs, like {"cpuFaultNs": 1300}');
  checkFields(v, COST_KEYS, path);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v)) {
    if (key === 'links') {
      if (!isObject(value)) throw new InputError(`${path}.links`, 'expected an object of GB/s by link');
      checkFields(value, [...LINK_KINDS], `${path}.links`);
      const links: Record<string, number> = {};
      for (const [l, bw] of Object.entries(value)) links[l] = positive(bw, `${path}.links.${l}`);
      out.links = links;
    } else out[key] = positive(value, `${path}.${key}`);
  }
  if (out.dmaEfficiency !== undefined && (out.dmaEfficiency as number) > 1)
    throw new InputError(`${path}.dmaEfficiency`, `expected at most 1, got ${String(out.dmaEfficiency)}`);
  if (out.faultBatchSize !== undefined && !Number.isInteger(out.faultBatchSize))
    throw new InputError(`${path}.faultBatchSize`, `expected an integer, got ${String(out.faultBatchSize)}`);
  return out as CostOverrides;
}

export function parseDevice(
  d: unknown,
  path: string,
  page: number,
  space: number,
): DeviceConfig & { link?: LinkKind } {
  if (!isObject(d)) throw new InputError(path, 'expected a device object');
  checkFields(d, DEVICE_FIELDS, path);
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9_.-]{1,32}$/.test(d.name))
    throw new InputError(`${path}.name`, 'expected a device name of 1-32 letters, digits, "_", "." or "-"');
  if (typeof d.kind !== 'string' || !KINDS.includes(d.kind as DeviceKind))
    throw new InputError(
      `${path}.kind`,
      `expected one of ${KINDS.join(', ')}, got ${JSON.stringify(d.kind)}`,
    );
  const kind = d.kind as DeviceKind;
  if (d.memory === undefined) throw new InputError(`${path}.memory`, 'missing');
  const memory = parseSize(d.memory, `${path}.memory`);
  if (memory === 0) throw new InputError(`${path}.memory`, 'must be greater than 0');
  if (memory % page)
    throw new InputError(`${path}.memory`, `${memory} is not a multiple of the page size (${page})`);
  if (memory >= space)
    throw new InputError(`${path}.memory`, `${humanSize(memory)} does not fit in the physical address space`);
  const driver = d.driver === undefined ? BUILTIN_DRIVERS[kind] : d.driver;
  // A built-in driver for the kind, a bundled plugin by name, or a plugin file by path.
  if (typeof driver !== 'string' || (driver !== BUILTIN_DRIVERS[kind] && !isPluginDriver(driver)))
    throw new InputError(
      `${path}.driver`,
      `unknown driver ${JSON.stringify(driver)} for a ${kind} device (available: ${[
        BUILTIN_DRIVERS[kind],
        ...bundledPlugins().map((p) => (BUILTIN_DRIVERS[kind] === p || p === 'dmirror' ? `plugin:${p}` : p)),
      ].join(', ')}, or a path to a .ts plugin)`,
    );
  const cfg: DeviceConfig & { link?: LinkKind } = { name: d.name, kind, memory, driver };
  if (d.link !== undefined) cfg.link = parseLink(d.link, `${path}.link`);
  if (kind === 'private') {
    if (d.start !== undefined)
      throw new InputError(
        `${path}.start`,
        'a private device has no start: hmm_devmem_add() picks a free range',
      );
  } else {
    if (d.start === undefined)
      throw new InputError(`${path}.start`, `missing: a ${kind} device needs its physical start`);
    const start = parseSize(d.start, `${path}.start`);
    if (start % page)
      throw new InputError(`${path}.start`, `${hex(start)} is not aligned to the page size (${page})`);
    if (start + memory > space)
      throw new InputError(`${path}.start`, `the device range ends beyond the physical address space`);
    cfg.start = start;
  }
  if (d.mode !== undefined) {
    if (kind !== 'pmem') throw new InputError(`${path}.mode`, 'only a pmem device has a mode');
    if (!PMEM_MODES.includes(d.mode as (typeof PMEM_MODES)[number]))
      throw new InputError(
        `${path}.mode`,
        `expected one of ${PMEM_MODES.join(', ')}, got ${JSON.stringify(d.mode)}`,
      );
    cfg.mode = d.mode as (typeof PMEM_MODES)[number];
  }
  return cfg;
}

/** Boot parameters for the kernel, with the device memory it will hotplug. */
export function bootParams(spec: MachineSpec): BootParams {
  return {
    config: spec.config,
    ram: spec.ram,
    reserved: spec.reserved,
    expectedDeviceBytes: spec.devices.reduce((n, d) => n + d.memory, 0),
  };
}
