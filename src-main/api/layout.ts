// The physical memory layout as the lab reports it: the iomem_resource tree, the
// hotplugged devices and the memory sections. Addresses are lowercase hex strings
// (physical addresses exceed 32 bits and the contract is JSON), `end` is inclusive.

/** A resource descriptor, the kernel's IORES_DESC_* name without its prefix. */
export type ResourceDesc =
  | 'NONE'
  | 'CRASH_KERNEL'
  | 'ACPI_TABLES'
  | 'ACPI_NV_STORAGE'
  | 'PERSISTENT_MEMORY'
  | 'PERSISTENT_MEMORY_LEGACY'
  | 'DEVICE_PRIVATE_MEMORY'
  | 'DEVICE_PUBLIC_MEMORY';

export interface ResourceNode {
  name: string;
  start: string;
  end: string;
  desc: ResourceDesc;
  /** IORESOURCE_* flag names, e.g. ["MEM", "SYSRAM", "BUSY"]. */
  flags: string[];
  children: ResourceNode[];
}

export type DeviceKind = 'private' | 'public' | 'pmem';

/** A device probed by its driver, with the memory it hotplugged (if any). */
export interface DeviceInfo {
  name: string;
  kind: DeviceKind;
  driver: string;
  /** The claimed physical range, absent when the probe failed or mapped nothing. */
  start?: string;
  end?: string;
  /** The dev_pagemap type: MEMORY_DEVICE_PRIVATE, MEMORY_DEVICE_PUBLIC or MEMORY_DEVICE_HOST. */
  pgmapType?: string;
  pages: number;
  /** Pages of the device memory currently in use (refcount above the idle 1). */
  pagesInUse: number;
  /** Kernel error name when the probe failed, e.g. "-ERANGE". */
  error?: string;
}

/** A present memory section (SPARSEMEM): PA_SECTION_SIZE of physical space with a memmap. */
export interface SectionInfo {
  nr: number;
  start: string;
  end: string;
  zone: ZoneName | 'none';
  /** The device holding the section in the pgmap index, for ZONE_DEVICE sections. */
  device?: string;
}

export type ZoneName = 'DMA' | 'DMA32' | 'Normal' | 'Movable' | 'Device';

export interface ZoneInfo {
  name: ZoneName;
  startPfn: number;
  spannedPages: number;
  presentPages: number;
  freePages: number;
}

export interface LayoutSnapshot {
  machine: string;
  physAddrBits: number;
  pageSize: number;
  sectionSize: string;
  resources: ResourceNode[];
  devices: DeviceInfo[];
  sections: SectionInfo[];
  zones: ZoneInfo[];
}
