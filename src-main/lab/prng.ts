// The lab's seeded pseudo-random numbers: mulberry32 (Tommy Ettinger's 32-bit generator),
// seeded through a splitmix-style mix so nearby seeds give unrelated streams. No Math.random
// anywhere in a run: the same seed gives the same numbers on every platform.

/** Mix a seed with a stream number (an actor's index) into a 32-bit state. */
export function mixSeed(seed: number, stream = 0): number {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export class Prng {
  private state: number;

  constructor(seed: number, stream = 0) {
    this.state = mixSeed(seed, stream);
  }

  /** The next 32-bit unsigned integer. */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [0, n), for n up to 2^32 (2^53 through two draws). */
  below(n: number): number {
    if (n <= 4294967296) return Math.floor(this.float() * n);
    return Math.floor(((this.next() * 4294967296 + this.next()) / 2 ** 64) * n);
  }
}
