/**
 * One pass over the pixel cache computing, per image: brightness (mean
 * luma), contrast (luma std), sharpness (variance of the 4-neighbour
 * Laplacian of luma), the share of clipped pixels, per-channel means, and a
 * 64-bit difference hash (dHash on a 9×8 area-averaged luma thumbnail) for
 * duplicate search. Everything is on the 0..1 scale.
 */
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { Progress } from "../util/progress.ts";

export interface ImageStats {
  /** Rows these stats are for (dataset rows). */
  rows: Int32Array;
  brightness: Float32Array;
  contrast: Float32Array;
  sharpness: Float32Array;
  clipped: Float32Array;
  /** rows × 3 per-channel means. */
  channelMean: Float32Array;
  /** rows × 2 uint32 halves of the 64-bit dHash. */
  hash: Uint32Array;
}

const W = IMAGE_WIDTH, H = IMAGE_HEIGHT, HW = W * H;

/** Computes the stats for the given rows of a pixel buffer. */
export function imageStats(pixels: Uint8Array, rows: Int32Array, opts: { quiet?: boolean } = {}): ImageStats {
  const n = rows.length;
  const out: ImageStats = {
    rows,
    brightness: new Float32Array(n),
    contrast: new Float32Array(n),
    sharpness: new Float32Array(n),
    clipped: new Float32Array(n),
    channelMean: new Float32Array(n * 3),
    hash: new Uint32Array(n * 2),
  };
  const luma = new Float32Array(HW);
  const thumb = new Float32Array(72);
  const progress = new Progress("image statistics", n, { unit: "img", quiet: opts.quiet });
  // Area-average bins for the 9×8 thumbnail.
  const xb = Int32Array.from({ length: W }, (_, x) => Math.min(8, Math.floor((x * 9) / W)));
  const yb = Int32Array.from({ length: H }, (_, y) => Math.min(7, Math.floor((y * 8) / H)));
  const binCount = new Float32Array(72);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) binCount[yb[y] * 9 + xb[x]]++;
  for (let i = 0; i < n; i++) {
    const base = rows[i] * IMAGE_BYTES;
    let s = 0, sq = 0, clip = 0, c0 = 0, c1 = 0, c2 = 0;
    thumb.fill(0);
    for (let p = 0, o = base; p < HW; p++, o += 3) {
      const r = pixels[o], g = pixels[o + 1], b = pixels[o + 2];
      c0 += r, c1 += g, c2 += b;
      const l = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
      luma[p] = l;
      s += l;
      sq += l * l;
      if ((r <= 3 && g <= 3 && b <= 3) || (r >= 252 && g >= 252 && b >= 252)) clip++;
      thumb[yb[(p / W) | 0] * 9 + xb[p % W]] += l;
    }
    const mean = s / HW;
    out.brightness[i] = mean;
    out.contrast[i] = Math.sqrt(Math.max(sq / HW - mean * mean, 0));
    out.clipped[i] = clip / HW;
    out.channelMean[i * 3] = c0 / HW / 255;
    out.channelMean[i * 3 + 1] = c1 / HW / 255;
    out.channelMean[i * 3 + 2] = c2 / HW / 255;
    let ls = 0, lsq = 0, cnt = 0;
    for (let y = 1; y < H - 1; y++) {
      for (let x = 1; x < W - 1; x++) {
        const p = y * W + x;
        const lap = luma[p - 1] + luma[p + 1] + luma[p - W] + luma[p + W] - 4 * luma[p];
        ls += lap;
        lsq += lap * lap;
        cnt++;
      }
    }
    out.sharpness[i] = lsq / cnt - (ls / cnt) ** 2;
    let lo = 0, hi = 0;
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const bit = y * 8 + x;
        const a = thumb[y * 9 + x] / binCount[y * 9 + x], b = thumb[y * 9 + x + 1] / binCount[y * 9 + x + 1];
        if (a > b) {
          if (bit < 32) lo |= 1 << bit;
          else hi |= 1 << (bit - 32);
        }
      }
    }
    out.hash[i * 2] = lo >>> 0;
    out.hash[i * 2 + 1] = hi >>> 0;
    progress.tick();
  }
  progress.finish();
  return out;
}

function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Hamming distance between hashes i and j. */
export function hashDistance(hash: Uint32Array, i: number, j: number): number {
  return popcount(hash[i * 2] ^ hash[j * 2]) + popcount(hash[i * 2 + 1] ^ hash[j * 2 + 1]);
}

/**
 * All pairs (i < j, positions in the stats arrays) whose hashes differ in at
 * most `maxBits` bits. Multi-index hashing: with maxBits ≤ 3, two such hashes
 * agree exactly on at least one of four 16-bit blocks, so only images sharing
 * a block are compared — near-linear on 134k images.
 */
export function nearDuplicatePairs(hash: Uint32Array, maxBits = 3, maxBucket = 30000): { i: number; j: number; bits: number }[] {
  if (maxBits > 3) throw new Error("nearDuplicatePairs: maxBits above 3 needs more blocks");
  const n = hash.length / 2;
  const seen = new Set<number>();
  const pairs: { i: number; j: number; bits: number }[] = [];
  for (let block = 0; block < 4; block++) {
    const buckets = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const word = hash[i * 2 + (block >> 1)];
      const key = (block & 1) ? word >>> 16 : word & 0xffff;
      const b = buckets.get(key);
      if (b) b.push(i);
      else buckets.set(key, [i]);
    }
    for (const members of buckets.values()) {
      // A bucket holds images sharing 16 hash bits; look-alike portraits make buckets of thousands on 134k
      // images (6,091 at most, measured) and every pair in them must be compared, or duplicates are missed.
      // Only a degenerate bucket (flat images, all one hash) is skipped.
      if (members.length < 2 || members.length > maxBucket) continue;
      for (let a = 0; a < members.length; a++) {
        for (let b = a + 1; b < members.length; b++) {
          const i = members[a], j = members[b];
          const key = i * n + j;
          if (seen.has(key)) continue;
          const d = hashDistance(hash, i, j);
          if (d <= maxBits) {
            seen.add(key);
            pairs.push({ i, j, bits: d });
          }
        }
      }
    }
  }
  return pairs.sort((p, q) => p.i - q.i || p.j - q.j);
}

/**
 * Mean absolute difference (0..255) between two 108×84 RGB images after the best alignment: b is scaled
 * by the ratio of the images' mean brightness and shifted by up to `maxShift` pixels each way; the
 * border that a shift uncovers is left out. Near-duplicates (a re-encoded, slightly shifted or
 * brightened copy) score ~1–4; distinct look-alike portraits score above 13 (measured on 134k
 * procedural portraits).
 */
export function alignedDifference(a: Uint8Array, b: Uint8Array, maxShift = 2): number {
  let sa = 0, sb = 0;
  for (let p = 0; p < a.length; p++) sa += a[p], sb += b[p];
  const gain = sb > 0 ? sa / sb : 1;
  const W = IMAGE_WIDTH, H = IMAGE_HEIGHT, m = maxShift;
  let best = Infinity;
  for (let dy = -m; dy <= m; dy++) {
    for (let dx = -m; dx <= m; dx++) {
      let s = 0;
      for (let y = m; y < H - m; y++) {
        let o = (y * W + m) * 3, q = ((y + dy) * W + m + dx) * 3;
        for (let x = m; x < W - m; x++, o += 3, q += 3) {
          s += Math.abs(a[o] - gain * b[q]) + Math.abs(a[o + 1] - gain * b[q + 1]) + Math.abs(a[o + 2] - gain * b[q + 2]);
        }
        if (s > best * (H - 2 * m) * (W - 2 * m) * 3) break; // already worse than the best shift
      }
      best = Math.min(best, s / ((H - 2 * m) * (W - 2 * m) * 3));
    }
  }
  return best;
}

/** Mean absolute difference over every `step`-th row and column (a cheap pre-filter). */
export function coarseDifference(a: Uint8Array, b: Uint8Array, step = 3): number {
  let s = 0, c = 0;
  for (let y = 0; y < IMAGE_HEIGHT; y += step) {
    for (let x = 0; x < IMAGE_WIDTH; x += step) {
      const o = (y * IMAGE_WIDTH + x) * 3;
      s += Math.abs(a[o] - b[o]) + Math.abs(a[o + 1] - b[o + 1]) + Math.abs(a[o + 2] - b[o + 2]);
      c += 3;
    }
  }
  return s / c;
}
