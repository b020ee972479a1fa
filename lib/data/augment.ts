/**
 * Training augmentation on the engine, one batch at a time: random horizontal flip, zoom, shift and rotation as one
 * tf.image.transform per batch (bilinear, edges replicated; the kernel is lib/engine/transform.ts), then brightness
 * (a factor), saturation (a blend with the luma grey) and contrast (a blend with mid-grey), in this order, clipped to
 * 0..1 and normalised in one pass. Parameters are drawn in JS from a seeded stream, one draw per portrait in row order, so a
 * seed gives the same draws on every backend. (Until this, sharp augmented each portrait in a worker thread: three
 * sharp calls a portrait, ~170 ms of CPU per batch of 32 taken from the training step; this takes ~9 ms.)
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

/** True when the draw leaves colours as they are (brightness, saturation and contrast all 1). */
function keepsColour(d: AugmentDraw): boolean {
  return d.brightness === 1 && d.saturation === 1 && d.contrast === 1;
}

/**
 * The colour jitter and the change of scale, one pass over the pixels (written into `out`, may be `src`): for each
 * image, v = src·std_in + mean_in (0..1), y = clip(M·v + t, 0, 1) with the draw's colour map M, t (below), then
 * (y − mean_out) / std_out. The colour map of a draw is brightness b (a factor), saturation s (a blend with the luma
 * grey: s·I + (1 − s)·1·Lᵀ) and contrast c (a blend with mid-grey: c·(v − ½) + ½), in this order:
 * M = c·b·(s·I + (1 − s)·1·Lᵀ), t = ½·(1 − c). A draw that keeps colours is only rescaled, unclipped.
 * (Four tensor ops did this before: a batched [hw × 3]·[3 × 3] matMul, the offset, relu6 as the clip and a fused
 * matMul back to the normalised scale, a pass over the batch each: 8 ms a batch of 64 where this takes 3–4.)
 */
function colourPass(src: Float32Array, out: Float32Array, draws: readonly AugmentDraw[], from: PixelScale, to: PixelScale): void {
  const px = src.length / draws.length;
  const m = new Float64Array(9), t = new Float64Array(3), inv = to.std.map((s) => 1 / s), off = to.mean.map((mu, j) => -mu * inv[j]);
  draws.forEach((d, k) => {
    const jitter = !keepsColour(d), g = d.contrast * d.brightness;
    // Fold the input's scale into the map: M·(x·std_in + mean_in) + t.
    for (let i = 0; i < 3; i++) {
      t[i] = jitter ? 0.5 * (1 - d.contrast) : 0;
      for (let j = 0; j < 3; j++) {
        const mij = jitter ? g * ((i === j ? d.saturation : 0) + (1 - d.saturation) * LUMA[j]) : i === j ? 1 : 0;
        m[i * 3 + j] = mij * from.std[j];
        t[i] += mij * from.mean[j];
      }
    }
    const lo = jitter ? 0 : -Infinity, hi = jitter ? 1 : Infinity;
    const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = m, [t0, t1, t2] = t, [i0, i1, i2] = inv, [o0, o1, o2] = off;
    for (let p = k * px, end = p + px; p < end; p += 3) {
      const r = src[p], gr = src[p + 1], b = src[p + 2];
      const y0 = m0 * r + m1 * gr + m2 * b + t0, y1 = m3 * r + m4 * gr + m5 * b + t1, y2 = m6 * r + m7 * gr + m8 * b + t2;
      out[p] = (y0 < lo ? lo : y0 > hi ? hi : y0) * i0 + o0;
      out[p + 1] = (y1 < lo ? lo : y1 > hi ? hi : y1) * i1 + o1;
      out[p + 2] = (y2 < lo ? lo : y2 > hi ? hi : y2) * i2 + o2;
    }
  });
}

/**
 * The augmented batch: `x` [n, h, w, 3] normalised by `scale` (default: pixels on the 0..1 scale), one draw per
 * image; the result is normalised by `outScale` (default: the input's). The geometry works on the values as they
 * are (bilinear weights sum to 1, edges are replicated), then one pass (colourPass) jitters the colours, clips them
 * to 0..1 and rescales. When every draw keeps colours ("geometric") and the scales agree, the pass is skipped, so a
 * one-colour portrait keeps its colour exactly. Does not dispose `x`.
 */
export function augmentBatch(x: tf.Tensor4D, draws: readonly AugmentDraw[], scale: PixelScale = UNIT_SCALE, outScale: PixelScale = scale): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (draws.length !== n) throw new Error(`augmentBatch: expected one draw per image (${n}), got ${draws.length}`);
  if (c !== 3) throw new Error(`augmentBatch: expected 3 colour channels, got ${c}`);
  registerTransformKernel();
  const moved: tf.Tensor4D = tf.tidy(() => tf.image.transform(x, tf.tensor2d(augmentMaps(draws, h, w), [n, 8]), "bilinear", "nearest"));
  const sameScale = scale.mean.every((m, j) => m === outScale.mean[j] && scale.std[j] === outScale.std[j]);
  if (sameScale && draws.every(keepsColour)) return moved;
  const out = new Float32Array(n * h * w * c);
  colourPass(moved.dataSync() as Float32Array, out, draws, scale, outScale);
  moved.dispose();
  return tf.tensor4d(out, [n, h, w, c]);
}
