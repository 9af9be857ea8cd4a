// Sizes and addresses in machine and scenario files: JSON numbers, decimal or hex
// strings, or a binary K/M/G/T suffix. Output writes lowercase hex.
import { InputError } from './input-error';

const SUFFIX: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

export function parseSize(value: unknown, path: string): number {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string') {
    const s = value.trim();
    const m = /^(0x[0-9a-f]+|\d+)([KMGT])?$/i.exec(s);
    if (!m)
      throw new InputError(
        path,
        `expected a size like 4096, "0x1000" or "256M", got ${JSON.stringify(value)}`,
      );
    n = Number(m[1]) * (m[2] ? SUFFIX[m[2].toUpperCase()]! : 1);
  } else throw new InputError(path, `expected a number or a size string, got ${JSON.stringify(value)}`);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InputError(path, `expected a non-negative integer below 2^53, got ${JSON.stringify(value)}`);
  return n;
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** 268435456 -> "256 MiB". */
export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v} ${units[i]}`;
}
