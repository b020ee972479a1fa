/**
 * "Distance from face space" (Turk & Pentland's eigenfaces): a cheap,
 * dataset-relative non-face signal for every image of the set.
 *
 * Each image is area-averaged to a small colour thumbnail (6×6 blocks: 14×18×3
 * = 756 values), centred and scaled to unit length (so only the pattern counts,
 * not brightness or contrast). The principal components of a seeded sample of
 * the set span its "face space"; an image's score is the log of the energy its
 * top components cannot explain. Portraits of a set are reconstructed well by
 * the set's own eigenfaces; landscapes, text and other non-faces are not. The
 * score needs no pretrained model and runs over 134k images in about a minute,
 * so the exploration uses it to pick the few percent of candidates that the
 * (slow) face detector and face descriptors then examine.
 *
 * The covariance and projections are tfjs matMuls (the engine's GEMM); the
 * eigen-decomposition of the 756×756 covariance is ml-matrix's.
 */
import * as tf from "@tensorflow/tfjs-core";
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { Rng } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";

export interface FaceSpaceOptions {
  /** Side of the square blocks the image is averaged over (default 6: 14×18 thumbnails). */
  block?: number;
  /** Principal components kept (default 32). */
  components?: number;
  /** Images in the seeded sample the components are fitted on (default 4000). */
  sample?: number;
  seed?: number;
  quiet?: boolean;
}

export interface FaceSpace {
  block: number;
  /** Thumbnail size (pixels) and feature length (width × height × 3). */
  width: number;
  height: number;
  dim: number;
  /** Mean feature (dim) and the top components, one per row (components × dim). */
  mean: Float32Array;
  basis: Float32Array;
  /** Share of the sample's variance each kept component explains. */
  explained: Float32Array;
  /** Rows the components were fitted on. */
  fittedOn: number;
}

export const FACE_SPACE_DEFAULTS = { block: 6, components: 32, sample: 4000 } as const;
/** Fewest sample images per kept component. */
export const SAMPLES_PER_COMPONENT = 20;

function thumbSize(block: number): { width: number; height: number; dim: number } {
  if (!Number.isInteger(block) || block < 1 || block > Math.min(IMAGE_WIDTH, IMAGE_HEIGHT)) {
    throw new Error(`face space: expected block to be an integer in 1..${Math.min(IMAGE_WIDTH, IMAGE_HEIGHT)}, got ${block}`);
  }
  const width = Math.floor(IMAGE_WIDTH / block), height = Math.floor(IMAGE_HEIGHT / block);
  return { width, height, dim: width * height * 3 };
}

/**
 * Features of the given rows of a pixel buffer: block-averaged colour
 * thumbnails, centred and scaled to unit length (a flat image stays all zero).
 */
export function faceSpaceFeatures(pixels: Uint8Array, rows: ArrayLike<number>, block: number = FACE_SPACE_DEFAULTS.block, opts: { quiet?: boolean } = {}): Float32Array {
  const { width: tw, height: th, dim } = thumbSize(block);
  const n = rows.length;
  const progress = new Progress("face-space thumbnails", n, { unit: "img", quiet: opts.quiet ?? n < 10000 });
  const out = new Float32Array(n * dim);
  const colOf = Int32Array.from({ length: tw * block }, (_, x) => Math.floor(x / block));
  for (let i = 0; i < n; i++) {
    const f = out.subarray(i * dim, (i + 1) * dim);
    const base = rows[i] * IMAGE_BYTES;
    for (let y = 0; y < th * block; y++) {
      const rowOff = Math.floor(y / block) * tw;
      let o = base + y * IMAGE_WIDTH * 3;
      for (let x = 0; x < tw * block; x++, o += 3) {
        const q = (rowOff + colOf[x]) * 3;
        f[q] += pixels[o];
        f[q + 1] += pixels[o + 1];
        f[q + 2] += pixels[o + 2];
      }
    }
    let mu = 0;
    for (let q = 0; q < dim; q++) mu += f[q];
    mu /= dim;
    let ss = 0;
    for (let q = 0; q < dim; q++) {
      f[q] -= mu;
      ss += f[q] * f[q];
    }
    const inv = ss > 1e-9 ? 1 / Math.sqrt(ss) : 0;
    for (let q = 0; q < dim; q++) f[q] *= inv;
    progress.tick();
  }
  progress.finish();
  return out;
}

/** Fits the face space (mean + top principal components) on a seeded sample of the feature rows. */
export async function fitFaceSpace(features: Float32Array, opts: FaceSpaceOptions = {}): Promise<FaceSpace> {
  const block = opts.block ?? FACE_SPACE_DEFAULTS.block;
  const { width, height, dim } = thumbSize(block);
  const n = features.length / dim;
  if (!Number.isInteger(n) || n < 2) throw new Error(`face space: expected at least 2 feature rows of ${dim} values, got ${features.length} values`);
  const s = Math.min(n, opts.sample ?? FACE_SPACE_DEFAULTS.sample);
  // At least 20 sample images per component: with fewer, one odd image can
  // earn a component of its own and so look perfectly face-like.
  const m = Math.max(1, Math.min(opts.components ?? FACE_SPACE_DEFAULTS.components, dim, Math.floor(s / SAMPLES_PER_COMPONENT)));
  const pick = new Rng(opts.seed ?? 0).shuffle(Int32Array.from({ length: n }, (_, i) => i)).subarray(0, s).sort();
  const sample = new Float32Array(s * dim);
  pick.forEach((r, i) => sample.set(features.subarray(r * dim, (r + 1) * dim), i * dim));
  const [meanT, covT] = tf.tidy(() => {
    const x = tf.tensor2d(sample, [s, dim]);
    const mean = tf.mean(x, 0);
    const c = tf.sub(x, mean);
    return [mean, tf.div(tf.matMul(c, c, true, false), s)];
  });
  const [mean, cov] = await Promise.all([meanT.data() as Promise<Float32Array>, covT.data() as Promise<Float32Array>]);
  tf.dispose([meanT, covT]);
  const rowsOf: number[][] = Array.from({ length: dim }, (_, i) => Array.from(cov.subarray(i * dim, (i + 1) * dim)));
  const evd = new EigenvalueDecomposition(new Matrix(rowsOf), { assumeSymmetric: true });
  const values = evd.realEigenvalues; // ascending
  const vectors = evd.eigenvectorMatrix;
  const total = values.reduce((a, v) => a + Math.max(v, 0), 0) || 1;
  const basis = new Float32Array(m * dim);
  const explained = new Float32Array(m);
  for (let c = 0; c < m; c++) {
    const col = dim - 1 - c;
    explained[c] = Math.max(values[col], 0) / total;
    for (let q = 0; q < dim; q++) basis[c * dim + q] = vectors.get(q, col);
  }
  return { block, width, height, dim, mean: Float32Array.from(mean), basis, explained, fittedOn: s };
}

/**
 * Log residual energy of each feature row outside the face space:
 * log(‖x − mean‖² − ‖Bᵀ(x − mean)‖²). Higher = less face-like.
 */
export async function faceSpaceResidual(space: FaceSpace, features: Float32Array, opts: { chunk?: number; quiet?: boolean } = {}): Promise<Float32Array> {
  const { dim } = space;
  const n = features.length / dim;
  const m = space.basis.length / dim;
  const out = new Float32Array(n);
  const chunk = opts.chunk ?? 4096;
  const basis = tf.tensor2d(space.basis, [m, dim]);
  const mean = tf.tensor1d(space.mean);
  const progress = new Progress("face-space residuals", n, { unit: "img", quiet: opts.quiet });
  try {
    for (let s0 = 0; s0 < n; s0 += chunk) {
      const k = Math.min(chunk, n - s0);
      const r = tf.tidy(() => {
        const c = tf.sub(tf.tensor2d(features.subarray(s0 * dim, (s0 + k) * dim), [k, dim]), mean);
        const total = tf.sum(tf.square(c), 1);
        const proj = tf.sum(tf.square(tf.matMul(c, basis, false, true)), 1);
        return tf.log(tf.add(tf.relu(tf.sub(total, proj)), 1e-9));
      });
      out.set(await r.data() as Float32Array, s0);
      r.dispose();
      progress.tick(k);
    }
  } finally {
    tf.dispose([basis, mean]);
  }
  progress.finish();
  return out;
}

/**
 * Renders the mean face and the top components as 84×108 RGB tiles (nearest
 * upsampling; components stretched to 0..255 around mid-grey) for a mosaic.
 */
export function eigenfaceImages(space: FaceSpace, count = 7): { raw: Uint8Array; width: number; height: number; channels: 3 }[] {
  const { dim, block, width: tw } = space;
  const vecs: Float32Array[] = [space.mean, ...Array.from({ length: Math.min(count, space.basis.length / dim) }, (_, c) => space.basis.subarray(c * dim, (c + 1) * dim))];
  return vecs.map((v) => {
    let lo = Infinity, hi = -Infinity;
    for (const x of v) lo = Math.min(lo, x), hi = Math.max(hi, x);
    const amp = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const raw = new Uint8Array(IMAGE_BYTES);
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      for (let x = 0; x < IMAGE_WIDTH; x++) {
        const ty = Math.min(Math.floor(y / block), space.height - 1), tx = Math.min(Math.floor(x / block), tw - 1);
        for (let ch = 0; ch < 3; ch++) {
          raw[(y * IMAGE_WIDTH + x) * 3 + ch] = Math.round(127.5 + 127.5 * v[(ty * tw + tx) * 3 + ch] / amp);
        }
      }
    }
    return { raw, width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 as const };
  });
}
