/**
 * Training augmentation on the engine, one batch at a time: random horizontal flip, zoom, shift and rotation as one
 * tf.image.transform per batch (bilinear, edges replicated; the kernel is lib/engine/transform.ts), then brightness
 * (a factor), saturation (a blend with the luma grey) and contrast (a blend with mid-grey) as tensor ops, in this
 * order, clipped to 0..1. Parameters are drawn in JS from a seeded stream, one draw per portrait in row order, so a
 * seed gives the same draws on every backend. (Until this, sharp augmented each portrait in a worker thread: three
 * sharp calls a portrait, ~170 ms of CPU per batch of 32 taken from the training step; this takes ~10 ms.)
 */
import * as tf from "@tensorflow/tfjs-core";
import { registerTransformKernel } from "../engine/transform.ts";
import type { Rng } from "../util/rng.ts";
import { IMAGE_HEIGHT, IMAGE_WIDTH } from "./schema.ts";

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

/** The random parameters of one portrait's augmentation. */
export interface AugmentDraw {
  flip: boolean;
  /** Zoom factor (> 1 enlarges). */
  scale: number;
  /** Shift in pixels. */
  dx: number;
  dy: number;
  /** Rotation in degrees. */
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
}

/** One draw per portrait, in row order, from `rng` (so a seed repeats exactly). */
export function drawAugments(n: number, a: AugmentOptions, rng: Rng): AugmentDraw[] {
  return Array.from({ length: n }, () => ({
    flip: rng.next() < a.flip,
    scale: 1 + rng.uniform(-a.scale, a.scale),
    dx: rng.uniform(-a.shift, a.shift) * IMAGE_WIDTH,
    dy: rng.uniform(-a.shift, a.shift) * IMAGE_HEIGHT,
    angle: rng.uniform(-a.rotate, a.rotate),
    brightness: 1 + rng.uniform(-a.brightness, a.brightness),
    contrast: 1 + rng.uniform(-a.contrast, a.contrast),
    saturation: 1 + rng.uniform(-a.saturation, a.saturation),
  }));
}

/**
 * tf.image.transform's maps [n × 8] (output pixel → source pixel) for the draws on an h×w image: the portrait
 * is flipped, zoomed and rotated about its centre, then shifted by (dx, dy).
 */
function augmentMaps(draws: readonly AugmentDraw[], h = IMAGE_HEIGHT, w = IMAGE_WIDTH): Float32Array {
  const cx = (w - 1) / 2, cy = (h - 1) / 2;
  const out = new Float32Array(draws.length * 8);
  draws.forEach((d, i) => {
    const t = (d.angle * Math.PI) / 180, cos = Math.cos(t) / d.scale, sin = Math.sin(t) / d.scale, f = d.flip ? -1 : 1;
    // source = c + F·R(−θ)·(p − c − d) / s, F mirrors x about the centre.
    const a0 = f * cos, a1 = f * sin, b0 = -sin, b1 = cos;
    const ox = cx + d.dx, oy = cy + d.dy;
    out.set([a0, a1, cx - a0 * ox - a1 * oy, b0, b1, cy - b0 * ox - b1 * oy, 0, 0], i * 8);
  });
  return out;
}

const LUMA = [0.299, 0.587, 0.114];

/** Per-channel mean and std of a normalised batch (pixels = x·std + mean on the 0..1 scale). */
export interface PixelScale {
  mean: readonly number[];
  std: readonly number[];
}

/** Pixels on the 0..1 scale as they are. */
export const UNIT_SCALE: PixelScale = { mean: [0, 0, 0], std: [1, 1, 1] };

/**
 * The colour jitter of each draw as one affine map per image on the 0..1 scale, rows y = x·Mᵀ + t: brightness b
 * scales, saturation s blends with the luma grey (s·I + (1 − s)·1·Lᵀ), contrast c blends with mid-grey
 * (c·(v − ½) + ½), in this order: M = c·b·(s·I + (1 − s)·1·Lᵀ), t = ½·(1 − c). Returned for normalised input
 * (x = (pixels − mean) / std) and multiplied by 6, for the relu6 that clips: Mᵀ as [n × 3 × 3] (M·diag(std),
 * transposed, ×6) and t as [n × 3] ((M·mean + t) × 6).
 */
function colourMaps(draws: readonly AugmentDraw[], scale: PixelScale = UNIT_SCALE): { mt: Float32Array; t: Float32Array } {
  const mt = new Float32Array(draws.length * 9), t = new Float32Array(draws.length * 3);
  draws.forEach((d, k) => {
    const g = d.contrast * d.brightness;
    for (let i = 0; i < 3; i++) {
      let shift = 0.5 * (1 - d.contrast);
      for (let j = 0; j < 3; j++) {
        const m = g * ((i === j ? d.saturation : 0) + (1 - d.saturation) * LUMA[j]);
        mt[k * 9 + j * 3 + i] = 6 * m * scale.std[j];
        shift += m * scale.mean[j];
      }
      t[k * 3 + i] = 6 * shift;
    }
  });
  return { mt, t };
}

/**
 * The augmented batch: `x` [n, h, w, 3] normalised by `scale` (default: pixels on the 0..1 scale), one draw per
 * image; the result has the same scale. The geometry works on the normalised values as they are (bilinear weights
 * sum to 1, edges are replicated). The colour jitter is a batched 3×3 matrix product plus each image's offset, in
 * pixels ×6, clipped by relu6 (clip(v, 0, 1) = relu6(6v) / 6), then one fused product back to the normalised scale.
 * When every draw's colour factors are 1 ("geometric") the colour step is skipped, so a one-colour portrait keeps
 * its colour exactly. Does not dispose `x`.
 */
export function augmentBatch(x: tf.Tensor4D, draws: readonly AugmentDraw[], scale: PixelScale = UNIT_SCALE): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (draws.length !== n) throw new Error(`augmentBatch: expected one draw per image (${n}), got ${draws.length}`);
  registerTransformKernel();
  return tf.tidy(() => {
    const moved: tf.Tensor4D = tf.image.transform(x, tf.tensor2d(augmentMaps(draws, h, w), [n, 8]), "bilinear", "nearest");
    if (draws.every((d) => d.brightness === 1 && d.saturation === 1 && d.contrast === 1)) return moved;
    const { mt, t } = colourMaps(draws, scale);
    // (The offset as a bias of the product, one row per image, runs in oneDNN 2.6's reference matmul, 100× slower.)
    const jittered6 = tf.add(tf.matMul(tf.reshape(moved, [n, h * w, c]), tf.tensor3d(mt, [n, 3, 3])), tf.tensor3d(t, [n, 1, 3]));
    const clipped6 = tf.relu6(jittered6);
    const back = new Float32Array(9);
    for (let j = 0; j < 3; j++) back[j * 4] = 1 / (6 * scale.std[j]);
    const normalised = tf.fused.matMul({ a: tf.reshape(clipped6, [n * h * w, c]), b: tf.tensor2d(back, [3, 3]), bias: tf.tensor1d(scale.mean.map((m, j) => -m / scale.std[j])) });
    return tf.reshape(normalised, [n, h, w, c]);
  });
}
