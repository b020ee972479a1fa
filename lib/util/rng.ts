/**
 * Seeded pseudo-random numbers (splitmix32) for everything that must repeat
 * exactly for a seed: shuffles, sampling, augmentation, procedural portraits.
 */
// In the procedural generator everything random in an image is drawn from an `Rng` whose seed is derived from
// (dataset seed, row, stream) by `mixSeed`, so an image's content never depends on the order in
// which rows are rendered, and adding a new random draw to one stream leaves the others alone.

/** Murmur3-style 32-bit finaliser: a bijection on uint32 with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Combines any number of integers (each taken modulo 2^32) into one 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) {
    // Fold in the high bits too, so seeds above 2^32 still differ.
    const lo = p >>> 0;
    const hi = Math.floor(p / 4294967296) >>> 0;
    h = fmix32(h ^ fmix32(lo + 0x9e3779b9));
    if (hi !== 0) h = fmix32(h ^ fmix32(hi + 0x7f4a7c15));
  }
  return h;
}

/** Streams within one row; one seed per purpose. */
export const STREAM = {
  plan: 1,
  labels: 2,
  hidden: 3,
  draw: 4,
  post: 5,
  bad: 6,
  duplicate: 7,
} as const;

/** splitmix32 generator. */
export class Rng {
  #state: number;
  #spare: number | null = null;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** Next uint32. */
  nextU32(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    return fmix32(this.#state);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Gaussian via Box-Muller (the second value of each pair is kept for the next call). */
  normal(mean = 0, sd = 1): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return mean + sd * z;
    }
    let u = this.next();
    while (u <= 1e-12) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return mean + sd * r * Math.cos(2 * Math.PI * v);
  }

  /** Gaussian clipped to [lo, hi]. */
  clippedNormal(mean: number, sd: number, lo: number, hi: number): number {
    return Math.min(hi, Math.max(lo, this.normal(mean, sd)));
  }

  /** One element, uniformly. */
  choice<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<A extends { length: number; [i: number]: unknown }>(a: A): A {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** One key of a weight table (weights need not sum to 1). */
  weighted<T extends string>(table: Readonly<Record<T, number>>): T {
    const keys = Object.keys(table) as T[];
    let total = 0;
    for (const k of keys) total += table[k];
    let r = this.next() * total;
    for (const k of keys) {
      r -= table[k];
      if (r < 0) return k;
    }
    return keys[keys.length - 1];
  }
}

/** The generator for one (seed, row, stream). */
export function rngFor(seed: number, row: number, stream: number): Rng {
  return new Rng(mixSeed(seed, row, stream));
}
