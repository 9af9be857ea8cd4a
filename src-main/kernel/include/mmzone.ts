// include/linux/mmzone.h: zones of a node. The zone number lives in page->flags.

export const ZONE_DMA = 0;
export const ZONE_DMA32 = 1;
export const ZONE_NORMAL = 2;
export const ZONE_MOVABLE = 3;
export const ZONE_DEVICE = 4;
export const MAX_NR_ZONES = 5;

export const ZONE_NAMES = ['DMA', 'DMA32', 'Normal', 'Movable', 'Device'] as const;

/** Largest buddy order + 1 (4 MiB blocks with 4 KiB pages). */
export const MAX_ORDER = 11;
