/**
 * Automatic outlier detection, every flag with a reason and a score in 0..1:
 *   broken     image missing / not a PNG / corrupt / wrong size or channels
 *   blank      almost no contrast (uniform colour)
 *   exposure   extreme brightness or mostly clipped pixels
 *   noise      sharpness far beyond the rest of the set (random pixels)
 *   duplicate  exact or near duplicate (dHash within 3 bits) of an earlier image
 *   non_face   face-api's tiny face detector (on the image padded by half its
 *              size, FACTS.md) finds no face even at a very low score, or the
 *              image lies far from its nearest neighbours in face-descriptor
 *              space (face-api's 128-D ResNet; dataset-relative, so it adapts
 *              to any set), or both signals are weak together.
 * Thresholds are robust z-scores (median/MAD) or absolute limits, documented
 * in OUTLIER_DEFAULTS.
 */
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../data/schema.ts";
import type { Dataset } from "../data/dataset.ts";
import { type ImageStats, nearDuplicatePairs } from "./image_stats.ts";
import { knnScores, robustZ } from "./knn.ts";
import { detectFaces } from "../faces/mod.ts";
import { cachedDescriptors } from "./descriptor_cache.ts";
import { Progress } from "../util/progress.ts";

export const OUTLIER_REASONS = ["broken", "blank", "exposure", "noise", "duplicate", "non_face"] as const;
export type OutlierReason = typeof OUTLIER_REASONS[number];

export interface OutlierFlag {
  row: number;
  index: number;
  file: string;
  reason: OutlierReason;
  score: number;
  detail: string;
}

export interface OutlierOptions {
  /** Luma std below this = blank. */
  blankContrast: number;
  /** Mean luma below / above these = exposure. */
  darkBrightness: number;
  brightBrightness: number;
  /** Share of clipped pixels above this = exposure. */
  maxClipped: number;
  /** Robust z of log sharpness above this = noise. */
  noiseZ: number;
  /** dHash Hamming distance ≤ this = near duplicate. */
  duplicateBits: number;
  /** Best detector score below this = non-face (face-api tiny detector, padded, input 320). */
  faceScoreMin: number;
  /** Descriptor kNN robust z above zHigh = non-face; above zLow = non-face when the face score is below faceScoreWeak. */
  nonFaceZLow: number;
  nonFaceZHigh: number;
  faceScoreWeak: number;
  /** Run face-api's face detector on every image. */
  detector: boolean;
  /** Compute face descriptors (kNN signal). */
  descriptors: boolean;
  knnK: number;
  knnRefSize: number;
  seed: number;
  quiet?: boolean;
}

export const OUTLIER_DEFAULTS: OutlierOptions = {
  blankContrast: 0.025,
  darkBrightness: 0.06,
  brightBrightness: 0.94,
  maxClipped: 0.6,
  noiseZ: 8,
  duplicateBits: 3,
  faceScoreMin: 0.04,
  nonFaceZLow: 3.5,
  nonFaceZHigh: 6,
  faceScoreWeak: 0.3,
  detector: true,
  descriptors: true,
  knnK: 10,
  knnRefSize: 4000,
  seed: 0,
};

export interface OutlierResult {
  flags: OutlierFlag[];
  /** Per stats position: descriptor kNN robust z (NaN when descriptors were off). */
  nonFaceZ: Float32Array;
  /** Per stats position: best face-detector score (NaN when the detector was off or the image was already flagged). */
  faceScore: Float32Array;
  descriptorSeconds: number;
  detectorSeconds: number;
}

const clamp01 = (v: number) => Math.max(0, Math.min(1, v));

/** Flags outliers among the dataset's good rows (stats must be for ds.goodRows) plus its broken rows. */
export async function findOutliers(ds: Dataset, stats: ImageStats, opts: Partial<OutlierOptions> = {}): Promise<OutlierResult> {
  const o = { ...OUTLIER_DEFAULTS, ...opts };
  const flags: OutlierFlag[] = [];
  for (const p of ds.problems) {
    flags.push({ row: p.row, index: p.index, file: imageFileName(p.index), reason: "broken", score: 1, detail: `${p.kind}: ${p.message}` });
  }
  const rows = stats.rows;
  const n = rows.length;
  const fileOf = (i: number) => imageFileName(ds.attrs.index[rows[i]]);
  const flagged = new Uint8Array(n);
  const add = (i: number, reason: OutlierReason, score: number, detail: string) => {
    flags.push({ row: rows[i], index: ds.attrs.index[rows[i]], file: fileOf(i), reason, score: clamp01(score), detail });
    flagged[i] = 1;
  };
  const logSharp = Float32Array.from(stats.sharpness, (v) => Math.log10(v + 1e-9));
  const sharpZ = robustZ(logSharp);
  for (let i = 0; i < n; i++) {
    const c = stats.contrast[i], b = stats.brightness[i], clip = stats.clipped[i];
    if (c < o.blankContrast) add(i, "blank", 1 - c / o.blankContrast / 2, `luma std ${c.toFixed(4)} < ${o.blankContrast}`);
    else if (b < o.darkBrightness || b > o.brightBrightness || clip > o.maxClipped) {
      add(i, "exposure", clamp01(Math.max((o.darkBrightness - b) / o.darkBrightness, (b - o.brightBrightness) / (1 - o.brightBrightness), clip)) * 0.5 + 0.5,
        `mean luma ${b.toFixed(3)}, clipped ${(clip * 100).toFixed(1)}%`);
    } else if (sharpZ[i] > o.noiseZ) add(i, "noise", clamp01(0.5 + (sharpZ[i] - o.noiseZ) / (2 * o.noiseZ)), `sharpness robust z ${sharpZ[i].toFixed(1)} > ${o.noiseZ}`);
  }
  // Duplicates: flag the later image of each pair (the first stays usable).
  for (const { i, j, bits } of nearDuplicatePairs(stats.hash, o.duplicateBits)) {
    if (flagged[j] || flagged[i]) continue;
    const a = ds.cache.pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
    const b = ds.cache.pixels.subarray(rows[j] * IMAGE_BYTES, (rows[j] + 1) * IMAGE_BYTES);
    let diff = 0;
    for (let p = 0; p < IMAGE_BYTES; p++) diff += Math.abs(a[p] - b[p]);
    const mad = diff / IMAGE_BYTES;
    if (mad > 12) continue; // same coarse structure, different pixels: not a duplicate
    add(j, "duplicate", 1 - bits / 16 - mad / 100, `${mad === 0 ? "exact" : "near"} duplicate of ${fileOf(i)} (${bits} hash bits, mean abs diff ${mad.toFixed(2)})`);
  }
  // Non-face: the detector's best face score on the padded image, and the
  // kNN distance in face-descriptor space (dataset-relative).
  const nonFaceZ = new Float32Array(n).fill(NaN);
  const faceScore = new Float32Array(n).fill(NaN);
  let descriptorSeconds = 0, detectorSeconds = 0;
  if (o.descriptors && n > o.knnK + 1) {
    const t0 = performance.now();
    const progress = new Progress("face descriptors", n, { unit: "img", quiet: o.quiet });
    const desc = await cachedDescriptors(ds, rows, { onProgress: (d: number) => progress.tick(d - progress.done) });
    progress.finish();
    descriptorSeconds = (performance.now() - t0) / 1000;
    nonFaceZ.set(robustZ(knnScores(desc, 128, { k: o.knnK, refSize: o.knnRefSize, seed: o.seed, quiet: o.quiet })));
  }
  if (o.detector) {
    const t0 = performance.now();
    const progress = new Progress("face detector", n, { unit: "img", quiet: o.quiet });
    for (let i = 0; i < n; i++) {
      if (!flagged[i]) {
        const px = ds.cache.pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
        const faces = await detectFaces(px, IMAGE_WIDTH, IMAGE_HEIGHT, { minScore: 0.01 });
        faceScore[i] = faces.length ? Math.max(...faces.map((f) => f.score)) : 0;
      }
      progress.tick();
    }
    progress.finish();
    detectorSeconds = (performance.now() - t0) / 1000;
  }
  for (let i = 0; i < n; i++) {
    if (flagged[i]) continue;
    const z = nonFaceZ[i], det = faceScore[i];
    if (det < o.faceScoreMin) {
      add(i, "non_face", clamp01(0.7 + 0.3 * (1 - det / o.faceScoreMin)),
        `no face found (best detector score ${det.toFixed(3)} < ${o.faceScoreMin})` + (Number.isFinite(z) ? `, descriptor kNN z ${z.toFixed(1)}` : ""));
    } else if (z > o.nonFaceZHigh) {
      add(i, "non_face", clamp01(0.5 + (z - o.nonFaceZHigh) / 20), `descriptor kNN robust z ${z.toFixed(1)} > ${o.nonFaceZHigh}` +
        (Number.isFinite(det) ? ` (detector score ${det.toFixed(2)})` : ""));
    } else if (z > o.nonFaceZLow && det < o.faceScoreWeak) {
      add(i, "non_face", clamp01(0.3 + (z - o.nonFaceZLow) / 10), `descriptor kNN robust z ${z.toFixed(1)} > ${o.nonFaceZLow} and weak face score ${det.toFixed(2)} < ${o.faceScoreWeak}`);
    }
  }
  flags.sort((a, b) => a.row - b.row || a.reason.localeCompare(b.reason));
  return { flags, nonFaceZ, faceScore, descriptorSeconds, detectorSeconds };
}
