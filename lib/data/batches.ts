/**
 * Batches for tfjs from the pixel cache: seeded epoch plans (shuffled, or
 * class-weighted sampling with replacement), optional augmentation done with
 * tfjs image ops (random horizontal flip, small shift/scale through
 * tf.image.transform, brightness/contrast/saturation jitter), and
 * normalisation by the dataset's per-channel mean/std.
 */
import * as tf from "@tensorflow/tfjs-core";
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH, MISSING_CODE } from "./schema.ts";
import { Rng } from "../util/rng.ts";

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

/** Inverse-frequency weight per row (rows with a missing label get weight 0). */
export function classBalanceWeights(labels: Int8Array, rows: ArrayLike<number>): Float64Array {
  const counts = new Map<number, number>();
  for (let i = 0; i < rows.length; i++) {
    const c = labels[rows[i]];
    if (c !== MISSING_CODE) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  const w = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const c = labels[rows[i]];
    w[i] = c === MISSING_CODE ? 0 : 1 / counts.get(c)!;
  }
  return w;
}

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

export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  flip: number;
  /** Max shift as a fraction of width/height. */
  shift: number;
  /** Max relative zoom in or out. */
  scale: number;
  /** Max brightness offset (0..1 scale). */
  brightness: number;
  /** Max relative contrast change. */
  contrast: number;
  /** Max relative saturation change. */
  saturation: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { flip: 0.5, shift: 0.06, scale: 0.08, brightness: 0.1, contrast: 0.15, saturation: 0.15 };

export interface BatchOptions {
  norm: Normalization;
  /** Augmentation parameters, or undefined for none. */
  augment?: AugmentOptions;
  /** Drives augmentation; pass one Rng per run for repeatable batches. */
  rng?: Rng;
}

/** Copies the rows' pixels into one float32 [n,H,W,3] array on the 0..1 scale. */
export function gatherPixels(pixels: Uint8Array, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * IMAGE_BYTES);
  const k = 1 / 255;
  for (let i = 0; i < rows.length; i++) {
    const src = pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
    const o = i * IMAGE_BYTES;
    for (let j = 0; j < IMAGE_BYTES; j++) out[o + j] = src[j] * k;
  }
  return out;
}

/**
 * Builds the input tensor [n,108,84,3] for the given rows: gathered,
 * optionally augmented, normalised. The caller owns (and disposes) it.
 */
export function makeBatch(pixels: Uint8Array, rows: ArrayLike<number>, opts: BatchOptions): tf.Tensor4D {
  const n = rows.length;
  const data = gatherPixels(pixels, rows);
  const aug = opts.augment;
  const rng = opts.rng ?? new Rng(0);
  // Draw per-sample parameters in JS first so the tidy body is pure tensor work.
  let flips: Float32Array | null = null, transforms: Float32Array | null = null, jitter: Float32Array | null = null;
  if (aug) {
    flips = new Float32Array(n);
    transforms = new Float32Array(n * 8);
    jitter = new Float32Array(n * 3);
    const cx = (IMAGE_WIDTH - 1) / 2, cy = (IMAGE_HEIGHT - 1) / 2;
    for (let i = 0; i < n; i++) {
      flips[i] = rng.next() < aug.flip ? 1 : 0;
      const s = 1 + rng.uniform(-aug.scale, aug.scale);
      const dx = rng.uniform(-aug.shift, aug.shift) * IMAGE_WIDTH;
      const dy = rng.uniform(-aug.shift, aug.shift) * IMAGE_HEIGHT;
      // Output pixel (x, y) samples input (x/s + cx(1-1/s) + dx, y/s + cy(1-1/s) + dy).
      transforms.set([1 / s, 0, cx * (1 - 1 / s) + dx, 0, 1 / s, cy * (1 - 1 / s) + dy, 0, 0], i * 8);
      jitter[i * 3] = rng.uniform(-aug.brightness, aug.brightness);
      jitter[i * 3 + 1] = 1 + rng.uniform(-aug.contrast, aug.contrast);
      jitter[i * 3 + 2] = 1 + rng.uniform(-aug.saturation, aug.saturation);
    }
  }
  return tf.tidy(() => {
    let x: tf.Tensor4D = tf.tensor4d(data, [n, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS]);
    if (aug && flips && transforms && jitter) {
      const f = tf.reshape(tf.tensor1d(flips, "float32"), [n, 1, 1, 1]);
      x = tf.add(tf.mul(tf.reverse(x, 2), f), tf.mul(x, tf.sub(1, f)));
      // One call per image: tfjs-backend-cpu 4.22's Transform kernel returns
      // after the first image of a batch (the rest come back zero).
      const t = tf.tensor2d(transforms, [n, 8]);
      const parts = tf.split(x, n, 0).map((img, i) => tf.image.transform(img as tf.Tensor4D, tf.slice(t, [i, 0], [1, 8]), "bilinear", "nearest"));
      x = tf.concat(parts, 0) as tf.Tensor4D;
      const j = tf.tensor2d(jitter, [n, 3]);
      const col = (c: number) => tf.reshape(tf.slice(j, [0, c], [n, 1]), [n, 1, 1, 1]);
      const gray = tf.mean(x, 3, true);
      x = tf.add(gray, tf.mul(tf.sub(x, gray), col(2)));
      const m = tf.mean(x, [1, 2, 3], true);
      x = tf.add(tf.add(m, tf.mul(tf.sub(x, m), col(1))), col(0));
      x = tf.clipByValue(x, 0, 1);
    }
    const mean = tf.tensor1d(opts.norm.mean), std = tf.tensor1d(opts.norm.std);
    return tf.div(tf.sub(x, mean), std) as tf.Tensor4D;
  });
}

/** Undoes normalisation to uint8 HWC pixels (for showing augmented batches). */
export function denormalize(x: tf.Tensor4D, norm: Normalization): Uint8Array {
  const t = tf.tidy(() => tf.round(tf.mul(tf.clipByValue(tf.add(tf.mul(x, tf.tensor1d(norm.std)), tf.tensor1d(norm.mean)), 0, 1), 255)));
  const out = Uint8Array.from(t.dataSync());
  t.dispose();
  return out;
}

/** Integer label tensor [n] for the given rows (missing stays -1). */
export function labelTensor(labels: Int8Array, rows: ArrayLike<number>): tf.Tensor1D {
  const out = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = labels[rows[i]];
  return tf.tensor1d(out, "int32");
}
