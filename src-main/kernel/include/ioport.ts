// include/linux/ioport.h: resource flags and descriptors.

export const IORESOURCE_TYPE_BITS = 0x00001f00;
export const IORESOURCE_IO = 0x00000100;
export const IORESOURCE_MEM = 0x00000200;
export const IORESOURCE_SYSRAM = 0x01000000;
export const IORESOURCE_MUXED = 0x00400000;
export const IORESOURCE_BUSY = 0x80000000;
export const IORESOURCE_SYSTEM_RAM = IORESOURCE_MEM | IORESOURCE_SYSRAM;

const FLAG_NAMES: [number, string][] = [
  [IORESOURCE_IO, 'IO'],
  [IORESOURCE_MEM, 'MEM'],
  [IORESOURCE_SYSRAM, 'SYSRAM'],
  [IORESOURCE_MUXED, 'MUXED'],
  [IORESOURCE_BUSY, 'BUSY'],
];

export function resourceFlagNames(flags: number): string[] {
  return FLAG_NAMES.filter(([bit]) => (flags & bit) >>> 0 === bit >>> 0).map(([, name]) => name);
}

// F-RES-3: the descriptors of the seeds. 001 named 6 UNADDRESSABLE_MEMORY; later kernels DEVICE_PRIVATE_MEMORY.
export const IORES_DESC_NONE = 0;
export const IORES_DESC_CRASH_KERNEL = 1;
export const IORES_DESC_ACPI_TABLES = 2;
export const IORES_DESC_ACPI_NV_STORAGE = 3;
export const IORES_DESC_PERSISTENT_MEMORY = 4;
export const IORES_DESC_PERSISTENT_MEMORY_LEGACY = 5;
export const IORES_DESC_DEVICE_PRIVATE_MEMORY = 6;
export const IORES_DESC_UNADDRESSABLE_MEMORY = IORES_DESC_DEVICE_PRIVATE_MEMORY;
export const IORES_DESC_DEVICE_PUBLIC_MEMORY = 7;

export const IORES_DESC_NAMES = [
  'NONE',
  'CRASH_KERNEL',
  'ACPI_TABLES',
  'ACPI_NV_STORAGE',
  'PERSISTENT_MEMORY',
  'PERSISTENT_MEMORY_LEGACY',
  'DEVICE_PRIVATE_MEMORY',
  'DEVICE_PUBLIC_MEMORY',
] as const;

export type IoresDescName = (typeof IORES_DESC_NAMES)[number];

// region_intersects() answers.
export const REGION_DISJOINT = 0;
export const REGION_INTERSECTS = 1;
export const REGION_MIXED = 2;
