/**
 * tf.image.cropAndResize's bilinear sampling along one axis as a matrix, so that a crop with a fixed box
 * becomes two matrix products (rows, then columns) that oneDNN runs, with a gradient (tfjs has none for
 * cropAndResize). Output position i reads input position p = first + i·step; a p outside 0..inSize−1
 * gives a zero row (cropAndResize's extrapolation value 0), else weights 1−f and f on floor(p), ceil(p).
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * The [out, count] sampling matrix, restricted to the input range `from`..`from + count − 1` it reads (the
 * caller slices that range first). Throws when every position lies outside the input.
 */
export function bilinearAxisMatrix(inSize: number, first: number, step: number, out: number): { m: Float32Array; from: number; count: number } {
  const taps: [number, number, number][] = [];
  let lo = inSize, hi = -1;
  for (let i = 0; i < out; i++) {
    const p = first + i * step;
    if (p < 0 || p > inSize - 1) continue;
    const a = Math.floor(p), b = Math.ceil(p), f = p - a;
    taps.push([i, a, 1 - f], [i, b, f]);
    lo = Math.min(lo, a), hi = Math.max(hi, b);
  }
  if (hi < lo) throw new Error(`bilinearAxisMatrix: positions ${first} + i·${step} (i < ${out}) all lie outside 0..${inSize - 1}`);
  const count = hi - lo + 1;
  const m = new Float32Array(out * count);
  for (const [i, j, w] of taps) m[i * count + (j - lo)] += w;
  return { m, from: lo, count };
}

/** Row sums of a sampling matrix: 1 where the output position reads the image, 0 where it falls outside. */
export function coverage(s: { m: Float32Array; count: number }): Float32Array {
  const out = new Float32Array(s.m.length / s.count);
  for (let i = 0; i < out.length; i++) for (let j = 0; j < s.count; j++) out[i] += s.m[i * s.count + j];
  return out;
}

/**
 * Resamples a region [b, h, w, c] (already cut to the rows and columns the matrices read) with the [S, h] and [S, w]
 * sampling matrices: two matrix products with the fixed matrices broadcast over the batch (no transposes): columns
 * rx [S,w] × [b·h, w, c] → [b·h, S, c]; rows ry [S,h] × [b, h, S·c] → [b, S, S·c]. Returns [b, S, S, c].
 */
export function resampleRegion(part: tf.Tensor4D, ry: tf.Tensor2D, rx: tf.Tensor2D): tf.Tensor4D {
  const [b, h, w, c] = part.shape, s = ry.shape[0];
  const cols = tf.matMul(rx, tf.reshape(part, [b * h, w, c]));
  const rows = tf.matMul(ry, tf.reshape(cols, [b, h, s * c]));
  return tf.reshape(rows, [b, s, s, c]);
}
