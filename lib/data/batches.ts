/**
 * Batches for tfjs from the pixel cache: seeded epoch plans (shuffled, or
 * class-weighted sampling with replacement), optional augmentation done with
 * sharp on the uint8 pixels, in parallel on libuv's thread pool (random
 * horizontal flip, small zoom and shift with edge replication, small
 * rotation, brightness/saturation via modulate, contrast via linear), and
 * normalisation by the dataset's per-channel mean/std.
 * (tf.image.transform was the first choice: its cpu kernel costs ~1.2 s per
 * batch of 32 here and in tfjs 4.22 returns zeros for all but the first image.)
 */
import * as tf from "@tensorflow/tfjs-core";
import sharp from "sharp";
import { mapLimit } from "../util/fs.ts";
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

export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  flip: number;
  /** Max shift as a fraction of width/height. */
  shift: number;
  /** Max relative zoom in or out. */
  scale: number;
  /** Max rotation in degrees. */
  rotate: number;
  /** Max relative brightness change. */
  brightness: number;
  /** Max relative contrast change. */
  contrast: number;
  /** Max relative saturation change. */
  saturation: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { flip: 0.5, shift: 0.06, scale: 0.08, rotate: 6, brightness: 0.12, contrast: 0.15, saturation: 0.15 };

/**
 * Named augmentations for `train --augment`: "full" = DEFAULT_AUGMENT; "geometric" = flip, zoom, shift and rotation
 * only, the colours left as photographed (for labels that are colours: hair colour); "none".
 */
export const AUGMENT_MODES = ["full", "geometric", "none"] as const;
export type AugmentMode = typeof AUGMENT_MODES[number];
export function augmentFor(mode: AugmentMode): AugmentOptions | undefined {
  if (mode === "none") return undefined;
  return mode === "geometric" ? { ...DEFAULT_AUGMENT, brightness: 0, contrast: 0, saturation: 0 } : DEFAULT_AUGMENT;
}

export interface BatchOptions {
  norm: Normalization;
}

interface AugmentDraw {
  flip: boolean;
  scale: number;
  dx: number;
  dy: number;
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
}

/** Draws the random parameters of one augmentation (in JS, seeded). */
function drawAugment(a: AugmentOptions, rng: Rng): AugmentDraw {
  return {
    flip: rng.next() < a.flip,
    scale: 1 + rng.uniform(-a.scale, a.scale),
    dx: Math.round(rng.uniform(-a.shift, a.shift) * IMAGE_WIDTH),
    dy: Math.round(rng.uniform(-a.shift, a.shift) * IMAGE_HEIGHT),
    angle: rng.uniform(-a.rotate, a.rotate),
    brightness: 1 + rng.uniform(-a.brightness, a.brightness),
    contrast: 1 + rng.uniform(-a.contrast, a.contrast),
    saturation: 1 + rng.uniform(-a.saturation, a.saturation),
  };
}

/** One augmented portrait (uint8 HWC, same size) through sharp. */
async function augmentOne(src: Uint8Array, d: AugmentDraw): Promise<Uint8Array> {
  const raw = { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: IMAGE_CHANNELS as 3 } };
  // Zoom (≥ 1 here; zoom-out is a zoom-in of a border-extended image), rotate, then cut the window.
  const pad = Math.ceil(Math.max(IMAGE_WIDTH, IMAGE_HEIGHT) * (Math.max(0, 1 - d.scale) + 0.12));
  let img = sharp(src, raw);
  if (d.flip) img = img.flop();
  const extended = await img.extend({ top: pad, bottom: pad, left: pad, right: pad, extendWith: "copy" }).raw().toBuffer();
  const W = IMAGE_WIDTH + 2 * pad, H = IMAGE_HEIGHT + 2 * pad;
  const zw = Math.round(W * d.scale), zh = Math.round(H * d.scale);
  const rotated = await sharp(extended, { raw: { width: W, height: H, channels: 3 } })
    .resize(zw, zh, { kernel: "linear" })
    .rotate(d.angle, { background: "#808080" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const left = Math.round((rotated.info.width - IMAGE_WIDTH) / 2) + d.dx, top = Math.round((rotated.info.height - IMAGE_HEIGHT) / 2) + d.dy;
  let cut = sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: 3 } })
    .extract({ left: Math.max(0, left), top: Math.max(0, top), width: IMAGE_WIDTH, height: IMAGE_HEIGHT });
  // Colour jitter only when drawn ("geometric" draws 1 for all three: the pixels keep their colours exactly).
  if (d.brightness !== 1 || d.saturation !== 1) cut = cut.modulate({ brightness: d.brightness, saturation: d.saturation });
  if (d.contrast !== 1) cut = cut.linear(d.contrast, 128 * (1 - d.contrast));
  const out = await cut.raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Augments the rows' portraits with sharp (all in flight: each portrait takes three sharp calls, and each call
 * after the first starts only when the main thread is free, which it is not while a training step runs) and
 * returns their pixels packed as a new [n × IMAGE_BYTES] uint8 buffer, rows in order.
 * Parameters are drawn from `rng` in row order when called, so a seed repeats exactly.
 */
export async function augmentRows(pixels: Uint8Array, rows: ArrayLike<number>, aug: AugmentOptions, rng: Rng): Promise<Uint8Array> {
  const draws = Array.from({ length: rows.length }, () => drawAugment(aug, rng));
  const out = new Uint8Array(rows.length * IMAGE_BYTES);
  await mapLimit(draws, draws.length, async (d, i) => {
    const src = pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
    out.set(await augmentOne(src, d), i * IMAGE_BYTES);
  });
  return out;
}

/** A training batch: augmented (when `augment` is given) and normalised. The caller disposes it. */
export async function makeTrainBatch(pixels: Uint8Array, rows: ArrayLike<number>, opts: { norm: Normalization; augment?: AugmentOptions; rng: Rng }): Promise<tf.Tensor4D> {
  if (!opts.augment) return makeBatch(pixels, rows, { norm: opts.norm });
  const aug = await augmentRows(pixels, rows, opts.augment, opts.rng);
  return makeBatch(aug, Array.from({ length: rows.length }, (_, i) => i), { norm: opts.norm });
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

/** The input tensor [n,108,84,3] for the given rows: gathered and normalised. The caller owns (and disposes) it. */
export function makeBatch(pixels: Uint8Array, rows: ArrayLike<number>, opts: BatchOptions): tf.Tensor4D {
  const data = gatherPixels(pixels, rows);
  const { mean, std } = opts.norm;
  for (let i = 0; i < data.length; i += 3) {
    data[i] = (data[i] - mean[0]) / std[0];
    data[i + 1] = (data[i + 1] - mean[1]) / std[1];
    data[i + 2] = (data[i + 2] - mean[2]) / std[2];
  }
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
