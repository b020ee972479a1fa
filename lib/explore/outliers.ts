/**
 * Automatic outlier detection, every flag with a reason and a score in 0..1:
 *   broken     image missing / not a PNG / corrupt / wrong size or channels
 *   blank      almost no contrast (uniform colour)
 *   exposure   extreme brightness or mostly clipped pixels
 *   noise      sharpness far beyond the rest of the set (random pixels)
 *   duplicate  exact or near duplicate (dHash within 3 bits) of an earlier image
 *   non_face   far from its nearest neighbours in face-descriptor space
 *              (face-api's 128-D ResNet descriptors; dataset-relative, works on
 *              procedural portraits too) and, where the detector is enabled,
 *              no face found by face-api's detector on the padded image
 * Thresholds are robust z-scores (median/MAD) or absolute limits, documented
 * in OUTLIER_DEFAULTS.
 */
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../data/schema.ts";
import type { Dataset } from "../data/dataset.ts";
import { type ImageStats, nearDuplicatePairs } from "./image_stats.ts";
import { knnScores, robustZ } from "./knn.ts";
import { detectFaces, faceDescriptors } from "../faces/mod.ts";
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
  /** Robust z of kNN descriptor distance: above zHigh always non-face; above zLow non-face unless a face is detected. */
  nonFaceZLow: number;
  nonFaceZHigh: number;
  /** Run the face detector on kNN candidates (zLow < z ≤ zHigh). */
  detector: boolean;
  /** Compute descriptors (the expensive part); without them no non_face flags. */
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
  nonFaceZLow: 3.5,
  nonFaceZHigh: 6,
  detector: true,
  descriptors: true,
  knnK: 10,
  knnRefSize: 4000,
  seed: 0,
};

export interface OutlierResult {
  flags: OutlierFlag[];
  /** Per stats position: kNN robust z (NaN when descriptors were off). */
  nonFaceZ: Float32Array;
  descriptorSeconds: number;
  descriptorsPerSecond: number;
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
  // Non-face: kNN distance in face-descriptor space, checked by the detector.
  const nonFaceZ = new Float32Array(n).fill(NaN);
  let descriptorSeconds = 0;
  if (o.descriptors && n > o.knnK + 1) {
    const t0 = performance.now();
    const progress = new Progress("face descriptors", n, { unit: "img", quiet: o.quiet });
    const desc = await faceDescriptors(ds.cache.pixels, rows, { onProgress: (d) => { progress.done = d; progress.tick(0); } });
    progress.finish();
    descriptorSeconds = (performance.now() - t0) / 1000;
    const z = robustZ(knnScores(desc, 128, { k: o.knnK, refSize: o.knnRefSize, seed: o.seed, quiet: o.quiet }));
    nonFaceZ.set(z);
    for (let i = 0; i < n; i++) {
      if (flagged[i] || z[i] <= o.nonFaceZLow) continue;
      if (z[i] > o.nonFaceZHigh) {
        add(i, "non_face", clamp01(0.6 + (z[i] - o.nonFaceZHigh) / 20), `descriptor kNN robust z ${z[i].toFixed(1)} > ${o.nonFaceZHigh}`);
        continue;
      }
      if (!o.detector) {
        add(i, "non_face", clamp01(0.3 + (z[i] - o.nonFaceZLow) / 10), `descriptor kNN robust z ${z[i].toFixed(1)} > ${o.nonFaceZLow} (detector off)`);
        continue;
      }
      const px = ds.cache.pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
      const faces = await detectFaces(px, IMAGE_WIDTH, IMAGE_HEIGHT);
      if (faces.length === 0) {
        add(i, "non_face", clamp01(0.4 + (z[i] - o.nonFaceZLow) / 10), `descriptor kNN robust z ${z[i].toFixed(1)} > ${o.nonFaceZLow} and no face detected`);
      }
    }
  }
  flags.sort((a, b) => a.row - b.row || a.reason.localeCompare(b.reason));
  return { flags, nonFaceZ, descriptorSeconds, descriptorsPerSecond: descriptorSeconds ? n / descriptorSeconds : 0 };
}
