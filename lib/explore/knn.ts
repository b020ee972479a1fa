/**
 * Dataset-relative outlier score: the mean distance from each item to its k
 * nearest neighbours among a seeded reference sample, in an embedding space
 * (face descriptors). Distances come from one tfjs matMul per chunk
 * (‖a‖² + ‖b‖² − 2ab), so the backend's fast GEMM does the work.
 * Robust z-scores (median / MAD) make thresholds independent of the scale.
 */
import * as tf from "@tensorflow/tfjs-core";
import { Rng } from "../util/rng.ts";
import { Progress } from "../util/progress.ts";

export interface KnnOptions {
  k?: number;
  /** Reference sample size (all items when smaller). */
  refSize?: number;
  seed?: number;
  /** Items per matMul chunk. */
  chunk?: number;
  quiet?: boolean;
}

/** Mean distance to the k nearest items of a seeded reference sample of `emb` itself (excluding the item). */
export function knnScores(emb: Float32Array, dim: number, opts: KnnOptions = {}): Promise<Float32Array> {
  const n = emb.length / dim;
  const refN = Math.min(n, opts.refSize ?? 4000);
  const refIdx = new Rng(opts.seed ?? 0).shuffle(Int32Array.from({ length: n }, (_, i) => i)).subarray(0, refN).sort();
  const refData = new Float32Array(refN * dim);
  refIdx.forEach((v, i) => refData.set(emb.subarray(v * dim, (v + 1) * dim), i * dim));
  const selfPos = new Int32Array(n).fill(-1);
  refIdx.forEach((v, i) => (selfPos[v] = i));
  return knnScoresAgainst(emb, refData, dim, opts, selfPos);
}

/**
 * Mean distance from each query item to its k nearest items of `ref`.
 * `selfPos[i]` (optional) is the position of query i inside ref, skipped.
 */
export async function knnScoresAgainst(query: Float32Array, refData: Float32Array, dim: number, opts: KnnOptions = {}, selfPos?: Int32Array): Promise<Float32Array> {
  const n = query.length / dim, refN = refData.length / dim;
  const k = Math.min(opts.k ?? 10, Math.max(1, refN - 1));
  const scores = new Float32Array(n);
  const chunk = opts.chunk ?? 1024;
  const progress = new Progress("kNN distances", n, { unit: "items", quiet: opts.quiet });
  const ref = tf.tensor2d(refData, [refN, dim]);
  const refSq = tf.tidy(() => tf.reshape(tf.sum(tf.square(ref), 1), [1, refN]));
  try {
    for (let s = 0; s < n; s += chunk) {
      const m = Math.min(chunk, n - s);
      const d2 = tf.tidy(() => {
        const a = tf.tensor2d(query.subarray(s * dim, (s + m) * dim), [m, dim]);
        const aSq = tf.reshape(tf.sum(tf.square(a), 1), [m, 1]);
        return tf.relu(tf.sub(tf.add(aSq, refSq), tf.mul(2, tf.matMul(a, ref, false, true))));
      });
      const dist = await d2.data() as Float32Array;
      d2.dispose();
      const best = new Float32Array(k);
      for (let i = 0; i < m; i++) {
        const self = selfPos ? selfPos[s + i] : -1;
        best.fill(Infinity);
        const rowOff = i * refN;
        for (let j = 0; j < refN; j++) {
          if (j === self) continue;
          const v = dist[rowOff + j];
          if (v < best[k - 1]) {
            let p = k - 1;
            while (p > 0 && best[p - 1] > v) {
              best[p] = best[p - 1];
              p--;
            }
            best[p] = v;
          }
        }
        let sum = 0, cnt = 0;
        for (let q = 0; q < k; q++) if (Number.isFinite(best[q])) sum += Math.sqrt(best[q]), cnt++;
        scores[s + i] = cnt ? sum / cnt : 0;
      }
      progress.tick(m);
    }
  } finally {
    tf.dispose([ref, refSq]);
  }
  progress.finish();
  return scores;
}

/** Median and 1.4826·MAD of a sample (the robust centre and scale). */
export function robustScale(x: Float32Array): { median: number; scale: number } {
  const sorted = Float32Array.from(x).sort();
  const median = sorted[sorted.length >> 1] ?? 0;
  const dev = Float32Array.from(x, (v) => Math.abs(v - median)).sort();
  return { median, scale: (dev[dev.length >> 1] ?? 0) * 1.4826 || 1e-9 };
}

/** Robust z-scores: (x − median) / (1.4826 · MAD). */
export function robustZ(x: Float32Array): Float32Array {
  const { median, scale } = robustScale(x);
  return Float32Array.from(x, (v) => (v - median) / scale);
}
