/**
 * Fréchet distance between two sets of feature vectors, each summarised by a
 * Gaussian (mean μ, covariance Σ):
 *
 *   d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½)
 *
 * (the FID formula; Tr((Σ₁Σ₂)^½) is computed through the symmetric PSD matrix
 * Σ₁^½ Σ₂ Σ₁^½, whose eigenvalues are those of Σ₁Σ₂). The eigen-decompositions
 * are ml-matrix's. For generated portraits the features are face-api's 128-D
 * face descriptors ("Fréchet descriptor distance", FDD): see `descriptorStats`.
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { portraitDescriptors } from "../models/descriptors.ts";
import { knnScores } from "../explore/knn.ts";

export interface GaussianStats {
  dim: number;
  count: number;
  mean: Float64Array;
  /** dim × dim, row-major. */
  cov: Float64Array;
}

/** Mean and (unbiased) covariance of `count` rows of `dim` features. */
export function gaussianStats(features: Float32Array | Float64Array, dim: number): GaussianStats {
  const n = features.length / dim;
  if (!Number.isInteger(n) || n < 2) throw new Error(`gaussianStats: expected at least 2 rows of ${dim} features, got ${features.length} values`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += features[i * dim + j];
  for (let j = 0; j < dim; j++) mean[j] /= n;
  const cov = new Float64Array(dim * dim);
  const c = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) c[j] = features[i * dim + j] - mean[j];
    for (let a = 0; a < dim; a++) {
      const ca = c[a];
      if (ca === 0) continue;
      const row = a * dim;
      for (let b = a; b < dim; b++) cov[row + b] += ca * c[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b] / (n - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  }
  return { dim, count: n, mean, cov };
}

function toMatrix(a: Float64Array, dim: number): Matrix {
  return new Matrix(Array.from({ length: dim }, (_, i) => Array.from(a.subarray(i * dim, (i + 1) * dim))));
}

/** Symmetric PSD square root V·diag(√max(λ,0))·Vᵀ. */
function sqrtPsd(m: Matrix): Matrix {
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const v = e.eigenvectorMatrix;
  const d = Matrix.diag(e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0))));
  return v.mmul(d).mmul(v.transpose());
}

/** Fréchet distance (d², as FID reports it) between two Gaussians. */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.dim !== b.dim) throw new Error(`frechetDistance: dimensions differ (${a.dim} vs ${b.dim})`);
  const dim = a.dim;
  let meanTerm = 0;
  for (let j = 0; j < dim; j++) meanTerm += (a.mean[j] - b.mean[j]) ** 2;
  const s1 = toMatrix(a.cov, dim), s2 = toMatrix(b.cov, dim);
  const r = sqrtPsd(s1);
  const inner = r.mmul(s2).mmul(r);
  // Symmetrise against round-off before the symmetric solver.
  const sym = inner.add(inner.transpose()).div(2);
  const eig = new EigenvalueDecomposition(sym, { assumeSymmetric: true }).realEigenvalues;
  const trSqrt = eig.reduce((s, l) => s + Math.sqrt(Math.max(l, 0)), 0);
  let tr = 0;
  for (let j = 0; j < dim; j++) tr += a.cov[j * dim + j] + b.cov[j * dim + j];
  return Math.max(0, meanTerm + tr - 2 * trSqrt);
}

/** Gaussian of face-api's 128-D descriptors (aligned crop; lib/models/descriptors.ts) of rows of a 108×84 portrait buffer. */
export async function descriptorStats(pixels: Uint8Array, rows: ArrayLike<number>): Promise<GaussianStats> {
  return gaussianStats(await portraitDescriptors(pixels, rows), 128);
}

/**
 * Diversity in the same descriptor space (for generated images, where the FDD alone does not show collapse):
 * each row's Euclidean distance to its nearest other row of the same set (one tfjs matMul, lib/explore/knn.ts).
 */
export async function nearestDistances(features: Float32Array, dim: number): Promise<Float32Array> {
  const n = features.length / dim;
  if (!Number.isInteger(n) || n < 2) throw new Error(`nearestDistances: expected at least 2 rows of ${dim} features, got ${features.length} values`);
  return await knnScores(features, dim, { k: 1, refSize: n, quiet: true });
}

/** Median of `nearestDistances`: compare a generated set's with a real set's of the same size (ratio 1 = as spread out). */
export async function medianNearest(features: Float32Array, dim: number): Promise<number> {
  const d = (await nearestDistances(features, dim)).sort();
  return d.length % 2 ? d[(d.length - 1) / 2] : (d[d.length / 2 - 1] + d[d.length / 2]) / 2;
}

/** Rows whose nearest other row is closer than `below` (e.g. the closest pair of as many real images): near-duplicates. */
export async function nearDuplicates(features: Float32Array, dim: number, below: number): Promise<number> {
  return (await nearestDistances(features, dim)).filter((d) => d < below).length;
}

/**
 * nearDuplicates on each whole set of `size` consecutive rows (a trailing partial set is left out): one count per
 * set. A single set's count moves a lot with which samples it holds; the spread over sets is the figure to trust.
 */
export async function setDuplicates(features: Float32Array, dim: number, size: number, below: number): Promise<number[]> {
  return (await setNearestDistances(features, dim, size)).map((d) => d.filter((x) => x < below).length);
}

/** nearestDistances within each whole set of `size` consecutive rows (a trailing partial set is left out). */
export async function setNearestDistances(features: Float32Array, dim: number, size: number): Promise<Float32Array[]> {
  if (!(Number.isInteger(size) && size >= 2)) throw new Error(`setNearestDistances: expected a set size ≥ 2, got ${size}`);
  const out: Float32Array[] = [];
  for (let s = 0; (s + size) * dim <= features.length; s += size) out.push(await nearestDistances(features.subarray(s * dim, (s + size) * dim), dim));
  return out;
}

/** Median (the lower middle for an even count), mean and range of per-set counts. */
export interface CountSummary {
  sets: number;
  median: number;
  mean: number;
  min: number;
  max: number;
}

export function summariseCounts(counts: number[]): CountSummary {
  if (!counts.length) throw new Error("summariseCounts: no counts");
  const s = [...counts].sort((a, b) => a - b);
  return { sets: s.length, median: s[(s.length - 1) >> 1], mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0], max: s[s.length - 1] };
}
