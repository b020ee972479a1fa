/**
 * Batches for tfjs from the pixel cache: seeded epoch plans (shuffled, or
 * class-weighted sampling with replacement), optional augmentation (lib/data/augment.ts, on the engine), and
 * normalisation by the dataset's per-channel mean/std.
 */
import * as tf from "@tensorflow/tfjs-core";
import { augmentBatch, type AugmentOptions, drawAugments, UNIT_SCALE } from "./augment.ts";
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, MISSING_CODE } from "./schema.ts";
import { Rng } from "../util/rng.ts";

export { AUGMENT_MODES, augmentBatch, type AugmentMode, type AugmentOptions, augmentFor, DEFAULT_AUGMENT, drawAugments } from "./augment.ts";

/** Per-channel mean and std on the 0..1 scale. */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** Measured on the real Tiny Portraits by the reference solution (FACTS.md). */
export const REFERENCE_NORMALIZATION: Normalization = {
  mean: [0.5163, 0.412, 0.3578],
  std: [0.2682, 0.2379, 0.2292],
};

/**
 * Per-channel mean/std (0..1) of the given rows of a pixel buffer; with
 * `maxRows` a seeded subsample is used (exact enough, much faster).
 */
export function channelStats(pixels: Uint8Array, rows: ArrayLike<number>, maxRows = Infinity, seed = 0): Normalization {
  let pick: ArrayLike<number> = rows;
  if (rows.length > maxRows) pick = new Rng(seed).shuffle(Int32Array.from(rows)).subarray(0, maxRows);
  const sum = [0, 0, 0], sq = [0, 0, 0];
  for (let i = 0; i < pick.length; i++) {
    const base = pick[i] * IMAGE_BYTES;
    // Integer accumulation per image keeps float error small on big sets.
    let s0 = 0, s1 = 0, s2 = 0, q0 = 0, q1 = 0, q2 = 0;
    for (let p = base; p < base + IMAGE_BYTES; p += 3) {
      const a = pixels[p], b = pixels[p + 1], c = pixels[p + 2];
      s0 += a, s1 += b, s2 += c;
      q0 += a * a, q1 += b * b, q2 += c * c;
    }
    sum[0] += s0, sum[1] += s1, sum[2] += s2;
    sq[0] += q0, sq[1] += q1, sq[2] += q2;
  }
  const count = pick.length * IMAGE_HEIGHT * IMAGE_WIDTH;
  if (count === 0) throw new Error("channelStats: no rows given");
  const mean = sum.map((s) => s / count / 255) as [number, number, number];
  const std = sq.map((q, c) => Math.sqrt(Math.max(q / count / 65025 - mean[c] ** 2, 1e-12))) as [number, number, number];
  return { mean, std };
}

/**
 * Inverse-frequency weight per row, count^-power (rows with a missing label get weight 0): power 1 draws every
 * class equally often ("weighted" sampling), 0.5 halfway in log terms ("sqrt": a class 4× rarer is drawn 2× less
 * often, so its few rows are repeated less).
 */
export function classBalanceWeights(labels: Int8Array, rows: ArrayLike<number>, power = 1): Float64Array {
  const counts = new Map<number, number>();
  for (let i = 0; i < rows.length; i++) {
    const c = labels[rows[i]];
    if (c !== MISSING_CODE) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const w = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const c = labels[rows[i]];
    w[i] = c === MISSING_CODE ? 0 : counts.get(c)! ** -power;
  }
  return w;
}

/** How training draws its batches: class-balanced, classes ∝ √count, or plain shuffled epochs. */
export const SAMPLINGS = ["weighted", "sqrt", "shuffle"] as const;
export type Sampling = typeof SAMPLINGS[number];

export interface EpochPlanOptions {
  batchSize: number;
  seed: number;
  epoch: number;
  /** Sample with replacement proportionally to these per-row weights (same length as rows). */
  weights?: Float64Array;
  /** Keep the order (evaluation); ignored when weights are given. */
  shuffle?: boolean;
  /** Drop a last, smaller batch. */
  dropLast?: boolean;
  /** Number of samples per epoch (default rows.length). */
  samples?: number;
}

/** Plans one epoch: a list of row batches. Same (seed, epoch) → same plan. */
export function planEpoch(rows: Int32Array, opts: EpochPlanOptions): Int32Array[] {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new Error(`planEpoch: batchSize must be a positive integer, got ${opts.batchSize}`);
  const rng = new Rng(opts.seed * 1_000_003 + opts.epoch);
  const n = opts.samples ?? rows.length;
  let order: Int32Array;
  if (opts.weights) {
    if (opts.weights.length !== rows.length) throw new Error("planEpoch: weights must have one entry per row");
    const cdf = new Float64Array(rows.length);
    let acc = 0;
    for (let i = 0; i < rows.length; i++) cdf[i] = acc += opts.weights[i];
    if (!(acc > 0)) throw new Error("planEpoch: all sampling weights are zero");
    order = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const u = rng.next() * acc;
      let lo = 0, hi = rows.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] > u) hi = mid;
        else lo = mid + 1;
      }
      order[k] = rows[lo];
    }
  } else {
    order = Int32Array.from(rows);
    if (opts.shuffle ?? true) rng.shuffle(order);
    if (n < order.length) order = order.subarray(0, n);
  }
  const batches: Int32Array[] = [];
  for (let s = 0; s < order.length; s += opts.batchSize) {
    const b = order.subarray(s, Math.min(s + opts.batchSize, order.length));
    if (opts.dropLast && b.length < opts.batchSize) break;
    batches.push(b);
  }
  return batches;
}

export interface BatchOptions {
  norm: Normalization;
}

/**
 * A training batch, normalised; augmented on the engine when `augment` is given (one draw per row from `rng`, in
 * row order): the pixels are gathered on the 0..1 scale, moved, and jittered and normalised in one pass (with
 * colour jitter), or normalised, then moved (geometry only). The caller disposes it.
 */
export function makeTrainBatch(
  pixels: Uint8Array,
  rows: ArrayLike<number>,
  opts: { norm: Normalization; augment?: AugmentOptions; rng: Rng },
): tf.Tensor4D {
  if (!opts.augment) return makeBatch(pixels, rows, { norm: opts.norm });
  const draws = drawAugments(rows.length, opts.augment, opts.rng);
  const colour = opts.augment.brightness > 0 || opts.augment.contrast > 0 || opts.augment.saturation > 0;
  const x = colour ? tf.tensor4d(gatherPixels(pixels, rows), [rows.length, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]) : makeBatch(pixels, rows, { norm: opts.norm });
  const out = colour ? augmentBatch(x, draws, UNIT_SCALE, opts.norm) : augmentBatch(x, draws, opts.norm);
  x.dispose();
  return out;
}

/** Copies the rows' pixels into one float32 [n,H,W,3] array on the 0..1 scale. */
export function gatherPixels(pixels: Uint8Array, rows: ArrayLike<number>): Float32Array {
  return gatherScaled(pixels, rows, [1 / 255, 1 / 255, 1 / 255], [0, 0, 0]);
}

/** The rows' pixels as float32 [n,H,W,3], channel c as byte·a[c] + b[c], in one pass. */
function gatherScaled(pixels: Uint8Array, rows: ArrayLike<number>, a: readonly number[], b: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * IMAGE_BYTES);
  const [a0, a1, a2] = a, [b0, b1, b2] = b;
  for (let i = 0; i < rows.length; i++) {
    const s = rows[i] * IMAGE_BYTES, o = i * IMAGE_BYTES;
    for (let j = 0; j < IMAGE_BYTES; j += 3) {
      out[o + j] = pixels[s + j] * a0 + b0;
      out[o + j + 1] = pixels[s + j + 1] * a1 + b1;
      out[o + j + 2] = pixels[s + j + 2] * a2 + b2;
    }
  }
  return out;
}

/** The input tensor [n,108,84,3] for the given rows: gathered and normalised. The caller owns (and disposes) it. */
export function makeBatch(pixels: Uint8Array, rows: ArrayLike<number>, opts: BatchOptions): tf.Tensor4D {
  const { mean, std } = opts.norm;
  const data = gatherScaled(pixels, rows, std.map((s) => 1 / (255 * s)), mean.map((m, c) => -m / std[c]));
  return tf.tensor4d(data, [rows.length, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]);
}

/** Undoes normalisation to uint8 HWC pixels (for showing augmented batches). */
export async function denormalize(x: tf.Tensor4D, norm: Normalization): Promise<Uint8Array> {
  const t = tf.tidy(() => tf.round(tf.mul(tf.clipByValue(tf.add(tf.mul(x, tf.tensor1d(norm.std)), tf.tensor1d(norm.mean)), 0, 1), 255)));
  const out = Uint8Array.from(await t.data());
  t.dispose();
  return out;
}

/** Integer label tensor [n] for the given rows (missing stays -1). */
export function labelTensor(labels: Int8Array, rows: ArrayLike<number>): tf.Tensor1D {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = labels[rows[i]];
  return tf.tensor1d(out, "int32");
}
