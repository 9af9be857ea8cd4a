// include/linux/memremap.h: the kinds of ZONE_DEVICE memory.

export const MEMORY_DEVICE_HOST = 0;
export const MEMORY_DEVICE_PRIVATE = 1;
export const MEMORY_DEVICE_PUBLIC = 2;

export type MemoryType =
  typeof MEMORY_DEVICE_HOST | typeof MEMORY_DEVICE_PRIVATE | typeof MEMORY_DEVICE_PUBLIC;

export const MEMORY_TYPE_NAMES = [
  'MEMORY_DEVICE_HOST',
  'MEMORY_DEVICE_PRIVATE',
  'MEMORY_DEVICE_PUBLIC',
] as const;
