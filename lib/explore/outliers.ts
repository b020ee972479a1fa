/**
 * Automatic outlier detection, every flag with a reason and a score in 0..1:
 *   broken     image missing / not a PNG / corrupt / wrong size or channels
 *   blank      almost no contrast (uniform colour)
 *   exposure   extreme brightness or mostly clipped pixels
 *   noise      sharpness far beyond the rest of the set (random pixels)
 *   duplicate  exact or near duplicate (dHash within 3 bits) of an earlier image
 *   non_face   a cascade. (1) Every image gets a cheap dataset-relative
 *              score, its distance from the set's own "face space"
 *              (eigenfaces, face_space.ts). (2) Only the few percent least
 *              face-like (screenShare, at least screenMin, plus any above
 *              screenZ) go on to face-api's tiny face detector (on the image
 *              padded by half its size, FACTS.md) and to the kNN distance in
 *              face-descriptor space (face-api's 128-D ResNet) against a seeded
 *              reference sample of the set. (3) A candidate is a non-face when
 *              the detector finds no face even at a very low score, or it lies
 *              far from its descriptor neighbours, or it is far from the face
 *              space or its neighbours and the detector's best score is weak.
 *              screenShare 1 examines every image.
 * Thresholds are robust z-scores (median/MAD) or absolute limits, documented
 * in OUTLIER_DEFAULTS.
 */
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../data/schema.ts";
import type { Dataset } from "../data/dataset.ts";
import { alignedDifference, coarseDifference, type ImageStats, nearDuplicatePairs } from "./image_stats.ts";
import { knnScores, knnScoresAgainst, robustScale, robustZ } from "./knn.ts";
import { faceSpaceFeatures, faceSpaceResidual, type FaceSpace, fitFaceSpace } from "./face_space.ts";
import { Rng } from "../util/rng.ts";
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
  /** dHash Hamming distance ≤ this = duplicate candidate. */
  duplicateBits: number;
  /** Candidates whose plain mean abs difference (0..255, every 3rd pixel) exceeds this are not duplicates. */
  duplicateCoarse: number;
  /** Mean abs difference (0..255) after the best ±2 px shift and brightness gain ≤ this = duplicate. */
  duplicateDiff: number;
  /** Best detector score below this = non-face (face-api tiny detector, padded, input 320). */
  faceScoreMin: number;
  /** Descriptor kNN robust z above zHigh = non-face; above zLow = non-face when the face score is below faceScoreWeak. */
  nonFaceZLow: number;
  nonFaceZHigh: number;
  faceScoreWeak: number;
  /** Face-space robust z above this = non-face when the face score is below faceScoreWeak. */
  faceSpaceZ: number;
  /** Share of the unflagged images (least face-like first) examined by the detector and descriptors; 1 = all. */
  screenShare: number;
  /** At least this many candidates (all images when fewer). */
  screenMin: number;
  /** Images whose face-space z exceeds this are always candidates. */
  screenZ: number;
  /** Compute the face-space score (without it every image is a candidate). */
  faceSpace: boolean;
  /** Run face-api's face detector on the candidates. */
  detector: boolean;
  /** Compute face descriptors (kNN signal) for the candidates and the reference sample. */
  descriptors: boolean;
  knnK: number;
  /** Size of the seeded reference sample for the descriptor kNN. */
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
  duplicateCoarse: 20,
  duplicateDiff: 8,
  faceScoreMin: 0.04,
  nonFaceZLow: 3.5,
  nonFaceZHigh: 6,
  faceScoreWeak: 0.3,
  faceSpaceZ: 4,
  screenShare: 0.03,
  screenMin: 300,
  screenZ: 3,
  faceSpace: true,
  detector: true,
  descriptors: true,
  knnK: 10,
  knnRefSize: 1500,
  seed: 0,
};

export interface OutlierResult {
  flags: OutlierFlag[];
  /** Per stats position: descriptor kNN robust z (NaN unless the image was a candidate and descriptors were on). */
  nonFaceZ: Float32Array;
  /** Per stats position: best face-detector score (NaN unless the image was a candidate and the detector was on). */
  faceScore: Float32Array;
  /** Per stats position: face-space residual robust z (NaN when off). */
  faceSpaceZ: Float32Array;
  /** The fitted face space (null when off or too few images). */
  faceSpace: FaceSpace | null;
  /** Number of images the detector / descriptors examined. */
  candidates: number;
  faceSpaceSeconds: number;
  descriptorSeconds: number;
  detectorSeconds: number;
}

const clamp01 = (v: number) => Math.max(0, Math.min(1, v));

/** log10 of each image's sharpness: the scale the noise rule's robust z is taken on. */
export const logSharpness = (stats: ImageStats): Float32Array => Float32Array.from(stats.sharpness, (v) => Math.log10(v + 1e-9));

/** The rules that judge one image by itself: blank, then exposure, then noise. */
export type ImageRuleReason = "blank" | "exposure" | "noise";

/**
 * The per-image rules for image `i` of `stats` (blank, then exposure, then noise; the first that holds), or null.
 * `sharpZ` is its log sharpness (logSharpness) as a robust z against the set it is judged in.
 */
export function imageFlag(stats: ImageStats, i: number, sharpZ: number, o: OutlierOptions = OUTLIER_DEFAULTS): { reason: ImageRuleReason; score: number; detail: string } | null {
  const c = stats.contrast[i], b = stats.brightness[i], clip = stats.clipped[i];
  if (c < o.blankContrast) return { reason: "blank", score: 1 - c / o.blankContrast / 2, detail: `luma std ${c.toFixed(4)} < ${o.blankContrast}` };
  if (b < o.darkBrightness || b > o.brightBrightness || clip > o.maxClipped) {
    return {
      reason: "exposure",
      score: clamp01(Math.max((o.darkBrightness - b) / o.darkBrightness, (b - o.brightBrightness) / (1 - o.brightBrightness), clip)) * 0.5 + 0.5,
      detail: `mean luma ${b.toFixed(3)}, clipped ${(clip * 100).toFixed(1)}%`,
    };
  }
  if (sharpZ > o.noiseZ) return { reason: "noise", score: clamp01(0.5 + (sharpZ - o.noiseZ) / (2 * o.noiseZ)), detail: `sharpness robust z ${sharpZ.toFixed(1)} > ${o.noiseZ}` };
  return null;
}

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
  const sharpZ = robustZ(logSharpness(stats));
  for (let i = 0; i < n; i++) {
    const f = imageFlag(stats, i, sharpZ[i], o);
    if (f) add(i, f.reason, f.score, f.detail);
  }
  // Duplicates: pairs within a few dHash bits, confirmed on pixels after the best small shift and
  // brightness gain; the later image of each pair is flagged (the first stays usable).
  for (const { i, j, bits } of nearDuplicatePairs(stats.hash, o.duplicateBits)) {
    if (flagged[j] || flagged[i]) continue;
    const a = ds.cache.pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
    const b = ds.cache.pixels.subarray(rows[j] * IMAGE_BYTES, (rows[j] + 1) * IMAGE_BYTES);
    if (coarseDifference(a, b) > o.duplicateCoarse) continue; // same hash, clearly different pixels
    const diff = alignedDifference(a, b);
    if (diff > o.duplicateDiff) continue;
    add(j, "duplicate", 1 - bits / 16 - diff / 50, `${diff === 0 ? "exact" : "near"} duplicate of ${fileOf(i)} (${bits} hash bits, aligned mean abs diff ${diff.toFixed(2)})`);
  }
  // Non-face, step 1: distance from the set's face space, for every image.
  const nonFaceZ = new Float32Array(n).fill(NaN);
  const faceScore = new Float32Array(n).fill(NaN);
  const spaceZ = new Float32Array(n).fill(NaN);
  let faceSpace: FaceSpace | null = null;
  let faceSpaceSeconds = 0, descriptorSeconds = 0, detectorSeconds = 0;
  const open = Int32Array.from({ length: n }, (_, i) => i).filter((i) => !flagged[i]);
  if (o.faceSpace && open.length > 8) {
    const t0 = performance.now();
    const openRows = Int32Array.from(open, (i) => rows[i]);
    const feats = faceSpaceFeatures(ds.cache.pixels, openRows, undefined, { quiet: o.quiet });
    faceSpace = await fitFaceSpace(feats, { seed: o.seed });
    const z = robustZ(await faceSpaceResidual(faceSpace, feats, { quiet: o.quiet }));
    open.forEach((i, k) => (spaceZ[i] = z[k]));
    faceSpaceSeconds = (performance.now() - t0) / 1000;
  }
  // Step 2: the candidates, least face-like first.
  let candidates: Int32Array;
  if (faceSpace && o.screenShare < 1) {
    const ranked = Int32Array.from(open).sort((a, b) => spaceZ[b] - spaceZ[a]);
    let take = Math.min(ranked.length, Math.max(o.screenMin, Math.ceil(o.screenShare * n)));
    while (take < ranked.length && spaceZ[ranked[take]] > o.screenZ) take++;
    candidates = ranked.slice(0, take).sort();
  } else candidates = open;
  if (o.descriptors && candidates.length && open.length > o.knnK + 1) {
    const t0 = performance.now();
    // Reference: a seeded sample of the unflagged images; candidates are scored against it.
    const ref = new Rng(o.seed).shuffle(Int32Array.from(open)).subarray(0, Math.min(o.knnRefSize, open.length)).sort();
    const need = [...new Set([...ref, ...candidates])].sort((a, b) => a - b);
    const progress = new Progress("face descriptors", need.length, { unit: "img", quiet: o.quiet });
    const desc = await cachedDescriptors(ds, need.map((i) => rows[i]), { onProgress: (d: number) => progress.tick(d - progress.done) });
    progress.finish();
    const posOf = new Map(need.map((i, k) => [i, k]));
    const pick = (idx: ArrayLike<number>) => {
      const outArr = new Float32Array(idx.length * 128);
      for (let k = 0; k < idx.length; k++) {
        const p = posOf.get(idx[k])!;
        outArr.set(desc.subarray(p * 128, (p + 1) * 128), k * 128);
      }
      return outArr;
    };
    const refDesc = pick(ref);
    const knn = { k: o.knnK, quiet: o.quiet };
    const { median, scale } = robustScale(await knnScores(refDesc, 128, { ...knn, refSize: ref.length }));
    const refPos = new Map(Array.from(ref, (i, k) => [i, k]));
    const selfPos = Int32Array.from(candidates, (i) => refPos.get(i) ?? -1);
    const scores = await knnScoresAgainst(pick(candidates), refDesc, 128, knn, selfPos);
    candidates.forEach((i, k) => (nonFaceZ[i] = (scores[k] - median) / scale));
    descriptorSeconds = (performance.now() - t0) / 1000;
  }
  if (o.detector && candidates.length) {
    const t0 = performance.now();
    const progress = new Progress("face detector", candidates.length, { unit: "img", quiet: o.quiet });
    for (const i of candidates) {
      const px = ds.cache.pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
      const faces = await detectFaces(px, IMAGE_WIDTH, IMAGE_HEIGHT, { minScore: 0.01 });
      faceScore[i] = faces.length ? Math.max(...faces.map((f) => f.score)) : 0;
      progress.tick();
    }
    progress.finish();
    detectorSeconds = (performance.now() - t0) / 1000;
  }
  // Step 3: the decision, on the candidates.
  for (const i of candidates) {
    const z = nonFaceZ[i], det = faceScore[i], fz = spaceZ[i];
    const also = (Number.isFinite(z) ? `, descriptor kNN z ${z.toFixed(1)}` : "") + (Number.isFinite(fz) ? `, face-space z ${fz.toFixed(1)}` : "");
    if (det < o.faceScoreMin) {
      add(i, "non_face", clamp01(0.7 + 0.3 * (1 - det / o.faceScoreMin)), `no face found (best detector score ${det.toFixed(3)} < ${o.faceScoreMin})` + also);
    } else if (z > o.nonFaceZHigh) {
      add(i, "non_face", clamp01(0.5 + (z - o.nonFaceZHigh) / 20), `descriptor kNN robust z ${z.toFixed(1)} > ${o.nonFaceZHigh}` +
        (Number.isFinite(det) ? ` (detector score ${det.toFixed(2)})` : ""));
    } else if (z > o.nonFaceZLow && det < o.faceScoreWeak) {
      add(i, "non_face", clamp01(0.3 + (z - o.nonFaceZLow) / 10), `descriptor kNN robust z ${z.toFixed(1)} > ${o.nonFaceZLow} and weak face score ${det.toFixed(2)} < ${o.faceScoreWeak}`);
    } else if (fz > o.faceSpaceZ && det < o.faceScoreWeak) {
      add(i, "non_face", clamp01(0.3 + (fz - o.faceSpaceZ) / 10), `face-space robust z ${fz.toFixed(1)} > ${o.faceSpaceZ} and weak face score ${det.toFixed(2)} < ${o.faceScoreWeak}`);
    }
  }
  flags.sort((a, b) => a.row - b.row || a.reason.localeCompare(b.reason));
  return { flags, nonFaceZ, faceScore, faceSpaceZ: spaceZ, faceSpace, candidates: candidates.length, faceSpaceSeconds, descriptorSeconds, detectorSeconds };
}
