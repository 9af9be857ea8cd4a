// Presentation of the lab's numbers: addresses stay exact (BigInt), sizes read as people read them.

export function parseAddr(hex: string): bigint {
  return BigInt(/^0x/i.test(hex) ? hex : `0x${hex}`);
}

/** Lowercase hex padded to eight digits, as /proc/iomem prints it. */
export function formatAddr(addr: bigint): string {
  return `0x${addr.toString(16).padStart(8, '0')}`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** 4096n -> "4 KiB", 0x3fff0000000n -> "4 TiB" ... with at most two decimals. */
export function formatSize(bytes: bigint): string {
  let unit = 0;
  while (unit < UNITS.length - 1 && bytes >= 1n << BigInt(10 * (unit + 1))) unit++;
  const scaled = Number(bytes) / 2 ** (10 * unit);
  const text = scaled.toFixed(2).replace(/\.?0+$/, '');
  return `${text} ${UNITS[unit]}`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
