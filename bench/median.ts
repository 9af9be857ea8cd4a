// The middle value of a benchmark's repeated figures (the upper one of an even count).
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}
