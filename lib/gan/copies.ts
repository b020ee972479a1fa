/**
 * Does a generator copy its training portraits? (`deno task gan:copies`) A discriminator that wins more and more,
 * as it does without augmentation, may teach the generator the training set itself; the FDD and `nn_ratio` would
 * not show it (copies of real portraits are as spread out as real portraits). So, in the FDD's descriptor space
 * (face-api's 128-D face descriptors): each generated portrait's distance to its nearest training portrait, beside
 * each training portrait's distance to its nearest other one in the same reference set. A generator that copies puts
 * its samples far closer to training portraits than real portraits are to each other; `copies` counts the samples
 * closer than the real distances' 5th percentile (about 5 % of a set of real portraits that are not in the reference).
 *
 * The same run also asks the opposite question, whether the samples repeat one another (partial collapse): on each
 * set of 64 generated portraits, the samples whose nearest other sample of the set is closer than a threshold (the
 * median, over the reference's sets of 64 in a seeded order, of each set's closest pair), beside the same count on
 * the reference's sets. Over several sets, not one: a single grid's count moves with which samples it holds.
 *
 * The count is strict: face-api's descriptors of faces with less detail sit closer together, so real portraits
 * themselves count more near-duplicates once softened. `controls` (gan:copies --real-controls scale:0.5,blur:1.5)
 * put the generated count on that scale: the same count, same threshold, on as many reference portraits as there are
 * generated ones, each shrunk by a factor and scaled back (`scale:F`) or blurred with a Gaussian of σ pixels
 * (`blur:S`), with sharp.
 *
 * The descriptor count calls two faces alike, not two pictures the same: in the README's runs the pairs it counts
 * differ by 16–192 in aligned pixels, where a re-encoded or shifted copy differs by 1–4. So the samples are
 * also judged by the exploration's own rules for bad dataset images (lib/explore/outliers.ts, OUTLIER_DEFAULTS):
 * the per-image ones (blank, exposure, noise; noise as a robust z against the reference portraits checked) and its
 * duplicate test on pixels (mean absolute difference after the best ±2 px shift and brightness gain within
 * duplicateDiff), here on every pair of each set of 64 rather than only on pairs its hash pre-filter proposes, the
 * flagged samples left out as the exploration leaves them out. Both beside the same on as many reference portraits.
 *
 * `trunc` samples at a truncation ψ other than 1 (gan:generate's): below 1 the samples draw towards the mean face,
 * above 1 they spread out. `fdd`, the Fréchet descriptor distance of the generated portraits to the whole reference,
 * gives what a ψ costs in likeness beside what it does to the counts.
 */
import sharp from "sharp";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { cachedDescriptors } from "../explore/descriptor_cache.ts";
import { knnScoresAgainst, robustScale } from "../explore/knn.ts";
import { type CountSummary, frechetDistance, gaussianStats, setDuplicates, setNearestDistances, summariseCounts } from "../eval/frechet.ts";
import { portraitDescriptors } from "../models/descriptors.ts";
import { alignedDifference, type ImageStats, imageStats } from "../explore/image_stats.ts";
import { imageFlag, type ImageRuleReason, logSharpness, OUTLIER_DEFAULTS } from "../explore/outliers.ts";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { UserError } from "../util/errors.ts";
import { Progress } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { checkTrunc, loadGenerator, renderW, seedsToW } from "./generate.ts";

const DIM = 128;

export interface Quantiles {
  p5: number;
  p25: number;
  median: number;
  p75: number;
}

export interface CopyDistances {
  /** Each real reference portrait's distance to its nearest other reference portrait. */
  real: Float32Array;
  /** Each generated portrait's distance to its nearest reference portrait. */
  generated: Float32Array;
}

export interface CopyCheck {
  network: string;
  /** The dataset the generator was trained on (its generator.json) and the one checked against. */
  trainedOn: string;
  dataset: string;
  generatedImages: number;
  realImages: number;
  /** The truncation ψ the generated portraits were drawn with (1 = none). */
  trunc: number;
  /** Fréchet descriptor distance of the generated portraits to the reference portraits. */
  fdd: number;
  real: Quantiles;
  generated: Quantiles;
  /** Generated portraits closer to a reference portrait than real.p5. */
  copies: number;
  /** generated.median / real.median: below 1, samples sit nearer the training portraits than these do to each other. */
  medianRatio: number;
  /** Near-duplicates among the generated portraits per set of 64, beside the reference's (null: fewer than 64 of either). */
  duplicates: DuplicateSets | null;
  /** The same count on softened reference portraits, one per control asked for (empty without duplicates). */
  controls: ControlCount[];
  /** The exploration's per-image rules on the generated portraits and on as many reference portraits. */
  sampleRules: { generated: RuleCounts; real: RuleCounts; flagged: FlaggedSample[] };
  /** The exploration's pixel duplicate test per set of 64 (null: fewer than 64 of either). */
  pixelDuplicates: PixelDuplicateSets | null;
}

/** Portraits judged and how many each per-image rule flagged. */
export interface RuleCounts {
  images: number;
  blank: number;
  exposure: number;
  noise: number;
}

/** A generated portrait a per-image rule flagged: its seed (gan:generate --seeds), the rule and what it saw. */
export interface FlaggedSample {
  seed: number;
  reason: ImageRuleReason;
  detail: string;
}

export interface PixelDuplicateSets {
  setSize: number;
  /** A sample counts when another of its set is within this aligned mean absolute difference (0..255). */
  within: number;
  generated: CountSummary;
  real: CountSummary;
  /** Each set's closest pair (aligned difference), summarised over the sets. */
  generatedClosest: Pick<CountSummary, "median" | "min">;
  realClosest: Pick<CountSummary, "median" | "min">;
  /** The pairs of these sets the descriptor count calls near-duplicates: how many, and their aligned differences. */
  generatedLookalikes: LookalikePairs;
  realLookalikes: LookalikePairs;
}

/** Pairs and the smallest, median and largest aligned difference among them (NaN when there are none). */
export interface LookalikePairs {
  pairs: number;
  min: number;
  median: number;
  max: number;
}

function lookalikeSummary(d: number[]): LookalikePairs {
  if (!d.length) return { pairs: 0, min: NaN, median: NaN, max: NaN };
  const s = summariseCounts(d);
  return { pairs: s.sets, min: s.min, median: s.median, max: s.max };
}

/** The per-image rules on images 0..n−1 of `stats`, noise as a robust z against `sharp` (logSharpness's median and scale). */
export function ruleFlags(stats: ImageStats, sharp: { median: number; scale: number }): (ReturnType<typeof imageFlag>)[] {
  const logS = logSharpness(stats);
  return Array.from(logS, (v, i) => imageFlag(stats, i, (v - sharp.median) / sharp.scale));
}

function countRules(flags: ReturnType<typeof ruleFlags>): RuleCounts {
  const n = (r: ImageRuleReason) => flags.filter((f) => f?.reason === r).length;
  return { images: flags.length, blank: n("blank"), exposure: n("exposure"), noise: n("noise") };
}

/**
 * The exploration's duplicate test on pixels within each whole set of `setSize` consecutive portraits of `rows` (rows
 * index 108×84 RGB portraits in `pixels`; a trailing partial set is left out): per set, how many portraits have
 * another of the set within `within` aligned mean absolute difference, and the set's closest pair. Portraits with
 * `skip[k]` set (flagged by a per-image rule) take no part. With `lookalike` (row k's descriptor at k·128), also the
 * aligned difference of every pair of a set whose descriptors are closer than `below`: the pairs the descriptor count
 * calls near-duplicates, as pictures.
 */
export function pixelDuplicates(
  pixels: Uint8Array,
  rows: ArrayLike<number>,
  skip: ArrayLike<boolean>,
  setSize = DUPLICATE_SET_SIZE,
  within = OUTLIER_DEFAULTS.duplicateDiff,
  lookalike?: { descriptors: Float32Array; below: number },
): { counts: number[]; closest: number[]; lookalikePixels: number[] } {
  const counts: number[] = [], closest: number[] = [], lookalikePixels: number[] = [];
  const descDistance = (a: number, b: number) => {
    const d = lookalike!.descriptors;
    let s = 0;
    for (let k = 0; k < DIM; k++) s += (d[a * DIM + k] - d[b * DIM + k]) ** 2;
    return Math.sqrt(s);
  };
  const img = (k: number) => pixels.subarray(rows[k] * IMAGE_BYTES, (rows[k] + 1) * IMAGE_BYTES);
  for (let s = 0; s + setSize <= rows.length; s += setSize) {
    const near = new Float64Array(setSize).fill(Infinity);
    for (let a = 0; a < setSize; a++) {
      if (skip[s + a]) continue;
      for (let b = a + 1; b < setSize; b++) {
        if (skip[s + b]) continue;
        const d = alignedDifference(img(s + a), img(s + b));
        near[a] = Math.min(near[a], d);
        near[b] = Math.min(near[b], d);
        if (lookalike && descDistance(s + a, s + b) < lookalike.below) lookalikePixels.push(d);
      }
    }
    counts.push(near.filter((d) => d <= within).length);
    const c = Math.min(...near);
    if (Number.isFinite(c)) closest.push(c); // not when a rule flagged all but one of the set
  }
  return { counts, closest, lookalikePixels };
}

const closestSummary = (closest: number[]) => {
  const { median, min } = lookalikeSummary(closest);
  return { median, min };
};

/** A way to take detail out of real portraits: shrink by `factor` and scale back, or a Gaussian blur of σ pixels. */
export type RealControl = { kind: "scale"; factor: number } | { kind: "blur"; sigma: number };

export interface ControlCount {
  control: string;
  counts: CountSummary;
}

export const controlName = (c: RealControl): string => (c.kind === "scale" ? `scale:${c.factor}` : `blur:${c.sigma}`);

/** "scale:0.5,blur:1.5" → controls; anything else is a UserError naming the item. */
export function parseRealControls(text: string): RealControl[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((item) => {
    const [kind, value, ...rest] = item.split(":");
    const v = Number(value);
    if (rest.length === 0 && value !== undefined && value.trim() !== "" && Number.isFinite(v)) {
      if (kind === "scale" && v > 0 && v < 1) return { kind: "scale", factor: v };
      if (kind === "blur" && v >= 0.3 && v <= 100) return { kind: "blur", sigma: v };
    }
    throw new UserError(`gan:copies: bad --real-controls item '${item}'; expected scale:F (0 < F < 1, e.g. scale:0.5) or blur:S (0.3 ≤ S ≤ 100 pixels, e.g. blur:1.5)`);
  });
}

/** The portraits at `rows` of `pixels` (108×84 RGB each), softened by `c` with sharp, packed in order. */
export async function softenPortraits(pixels: Uint8Array, rows: ArrayLike<number>, c: RealControl): Promise<Uint8Array> {
  const raw = { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 } as const;
  const out = new Uint8Array(rows.length * IMAGE_BYTES);
  for (let i = 0; i < rows.length; i++) {
    const src = pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES);
    let soft: Uint8Array;
    if (c.kind === "blur") soft = await sharp(src, { raw }).blur(c.sigma).raw().toBuffer();
    else {
      const w = Math.max(1, Math.round(IMAGE_WIDTH * c.factor)), h = Math.max(1, Math.round(IMAGE_HEIGHT * c.factor));
      const small = await sharp(src, { raw }).resize(w, h, { fit: "fill" }).raw().toBuffer();
      soft = await sharp(small, { raw: { width: w, height: h, channels: 3 } }).resize(IMAGE_WIDTH, IMAGE_HEIGHT, { fit: "fill" }).raw().toBuffer();
    }
    if (soft.length !== IMAGE_BYTES) throw new Error(`softenPortraits: sharp returned ${soft.length} bytes for one portrait, expected ${IMAGE_BYTES}`);
    out.set(soft, i * IMAGE_BYTES);
  }
  return out;
}

/** Near-duplicates per set of `setSize` among the portraits at `rows`, softened by `c`, below the threshold `below`. */
export async function controlDuplicates(pixels: Uint8Array, rows: ArrayLike<number>, c: RealControl, below: number, setSize = DUPLICATE_SET_SIZE): Promise<CountSummary> {
  if (rows.length < setSize) throw new Error(`controlDuplicates: ${rows.length} portraits make no set of ${setSize}`);
  const soft = await softenPortraits(pixels, rows, c);
  const desc = await portraitDescriptors(soft, Int32Array.from({ length: rows.length }, (_, i) => i));
  return summariseCounts(await setDuplicates(desc, DIM, setSize, below));
}

/** Portraits per set in the near-duplicate count (the training grid's 8×8). */
export const DUPLICATE_SET_SIZE = 64;

export interface DuplicateSets {
  setSize: number;
  /** The threshold: the median over the reference's sets of each set's closest-pair distance. */
  below: number;
  real: CountSummary;
  generated: CountSummary;
}

/**
 * Near-duplicates per set of `setSize`: the real rows in a seeded random order cut into sets, the threshold the
 * median of their closest-pair distances, then per set (real, and generated in their order) the rows whose nearest
 * other row of the set is closer than it. Null when either side has fewer than `setSize` rows. `threshold`: the
 * real side's duplicateThreshold, when the caller has it already.
 */
export async function duplicateSets(
  generated: Float32Array,
  real: Float32Array,
  setSize = DUPLICATE_SET_SIZE,
  dim = DIM,
  seed = 1,
  threshold?: Awaited<ReturnType<typeof duplicateThreshold>>,
): Promise<DuplicateSets | null> {
  const nGen = generated.length / dim;
  const t = threshold !== undefined ? threshold : await duplicateThreshold(real, setSize, dim, seed);
  if (!t || nGen < setSize) return null;
  return {
    setSize,
    below: t.below,
    real: summariseCounts(t.realNearest.map((d) => d.filter((x) => x < t.below).length)),
    generated: summariseCounts(await setDuplicates(generated, dim, setSize, t.below)),
  };
}

/** duplicateSets' threshold and the real sets' nearest distances it comes from (null: fewer than `setSize` real rows). */
export async function duplicateThreshold(real: Float32Array, setSize = DUPLICATE_SET_SIZE, dim = DIM, seed = 1): Promise<{ below: number; realNearest: Float32Array[] } | null> {
  const nReal = real.length / dim;
  if (nReal < setSize) return null;
  const order = new Rng(seed).shuffle(Int32Array.from({ length: nReal }, (_, i) => i));
  const shuffled = new Float32Array(Math.floor(nReal / setSize) * setSize * dim);
  for (let i = 0; i * dim < shuffled.length; i++) shuffled.set(real.subarray(order[i] * dim, (order[i] + 1) * dim), i * dim);
  // Each real set's nearest distances, once: their minimum sets the threshold, then they are counted against it.
  const realNearest = await setNearestDistances(shuffled, dim, setSize);
  const closest = realNearest.map((d) => Math.min(...d)).sort((a, b) => a - b);
  return { below: closest[(closest.length - 1) >> 1], realNearest };
}

/** Nearest-neighbour distances of both sets against the real reference (rows of `dim` floats each). */
export async function copyDistances(generated: Float32Array, real: Float32Array, dim = DIM): Promise<CopyDistances> {
  const nReal = real.length / dim, nGen = generated.length / dim;
  if (!Number.isInteger(nReal) || nReal < 2) throw new Error(`copyDistances: expected at least 2 real rows of ${dim}, got ${real.length} values`);
  if (!Number.isInteger(nGen) || nGen < 1) throw new Error(`copyDistances: expected generated rows of ${dim}, got ${generated.length} values`);
  const self = Int32Array.from({ length: nReal }, (_, i) => i);
  return {
    real: await knnScoresAgainst(real, real, dim, { k: 1, quiet: true }, self),
    generated: await knnScoresAgainst(generated, real, dim, { k: 1, quiet: true }),
  };
}

/** 5th, 25th, 50th and 75th percentiles (nearest rank). */
export function quantiles(d: Float32Array): Quantiles {
  if (!d.length) throw new Error("quantiles: no values");
  const s = Float32Array.from(d).sort();
  const q = (p: number) => s[Math.round(p * (s.length - 1))];
  return { p5: q(0.05), p25: q(0.25), median: q(0.5), p75: q(0.75) };
}

/** Summary of copyDistances. */
export function summariseCopies(d: CopyDistances): Pick<CopyCheck, "real" | "generated" | "copies" | "medianRatio"> {
  const real = quantiles(d.real), generated = quantiles(d.generated);
  return { real, generated, copies: d.generated.filter((x) => x < real.p5).length, medianRatio: generated.median / real.median };
}

export interface CopyCheckOptions {
  /** A run folder, its snapshots/latest, or a snapshots/network-* folder. */
  network: string;
  dataroot: string;
  /** Generated portraits (seeds 2,000,000 on, apart from the grid's and the FDD's latents). Default 500. */
  images?: number;
  /** Real portraits in the reference, a seeded sample of the dataset's readable ones (default 10,000, or all). */
  realImages?: number;
  cacheDir?: string;
  quiet?: boolean;
  /** Softened real portraits to count near-duplicates on as well (controlDuplicates). */
  controls?: RealControl[];
  /** Truncation ψ of the generated portraits, 0..2 (default 1: none). */
  trunc?: number;
}

export async function copyCheck(o: CopyCheckOptions): Promise<CopyCheck> {
  const images = o.images ?? 500, realImages = o.realImages ?? 10_000;
  if (!(Number.isInteger(images) && images >= 1)) throw new UserError(`gan:copies: expected --images to be a positive integer, got ${images}`);
  if (!(Number.isInteger(realImages) && realImages >= 2)) throw new UserError(`gan:copies: expected --real-images to be an integer ≥ 2, got ${realImages}`);
  const trunc = o.trunc ?? 1;
  checkTrunc(trunc, "gan:copies");
  const controls = o.controls ?? [];
  if (controls.length && images < DUPLICATE_SET_SIZE) throw new UserError(`gan:copies: --real-controls counts sets of ${DUPLICATE_SET_SIZE}; use --images ${DUPLICATE_SET_SIZE} or more (got ${images})`);
  const g = await loadGenerator(o.network);
  try {
    const ds = await openDataset({ dataroot: o.dataroot, cacheDir: o.cacheDir, quiet: o.quiet });
    const rows = new Rng(0).shuffle(Int32Array.from(ds.goodRows)).subarray(0, Math.min(realImages, ds.goodRows.length)).sort();
    if (rows.length < 2) throw new UserError(`gan:copies: ${rows.length} readable portraits in ${o.dataroot}; the check needs at least 2`);
    // The controls' portraits: as many as generated ones, a seeded sample of the reference (shuffled, so that each
    // set of 64 mixes the whole dataset rather than following its file order).
    const controlRows = new Rng(2).shuffle(Int32Array.from(rows)).subarray(0, Math.min(images, rows.length));
    const progress = new Progress("descriptors", rows.length + images + (1 + controls.length) * controlRows.length, { unit: "images", quiet: o.quiet });
    const real = await cachedDescriptors(ds, rows, { onProgress: (d) => progress.tick(d - progress.done) });
    // The per-image rules and the pixel duplicate test on the controls' reference portraits, then on each batch of
    // generated ones (256 at a time, whole sets of 64) with the noise rule's scale taken from the reference.
    const realStats = imageStats(ds.cache.pixels, Int32Array.from(controlRows), { quiet: true });
    const sharp = robustScale(logSharpness(realStats));
    const realFlags = ruleFlags(realStats, sharp);
    const threshold = await duplicateThreshold(real);
    const at = new Map(Array.from(rows, (r, k) => [r, k]));
    const controlDesc = new Float32Array(controlRows.length * DIM);
    controlRows.forEach((r, k) => controlDesc.set(real.subarray(at.get(r)! * DIM, (at.get(r)! + 1) * DIM), k * DIM));
    const lookalike = (descriptors: Float32Array) => (threshold ? { descriptors, below: threshold.below } : undefined);
    const realPixel = pixelDuplicates(ds.cache.pixels, controlRows, realFlags.map((f) => f !== null), undefined, undefined, lookalike(controlDesc));
    progress.tick(controlRows.length);
    const genFlags: ReturnType<typeof ruleFlags> = [], flagged: FlaggedSample[] = [];
    const genPixel = { counts: [] as number[], closest: [] as number[], lookalikePixels: [] as number[] };
    const generated: Float32Array[] = [];
    const cond = g.meta.classes.length > 0;
    for (let s = 0; s < images; s += 256) {
      const seeds = Array.from({ length: Math.min(256, images - s) }, (_, i) => 2_000_000 + s + i);
      const w = seedsToW(g, seeds, seeds.map((_, i) => (cond ? (s + i) % g.meta.classes.length : null)), trunc);
      let pixels: Uint8Array;
      try {
        pixels = await renderW(g, w);
      } finally {
        w.dispose();
      }
      const local = Int32Array.from(seeds, (_, i) => i);
      const desc = await portraitDescriptors(pixels, local);
      generated.push(desc);
      const f = ruleFlags(imageStats(pixels, local, { quiet: true }), sharp);
      f.forEach((x, i) => x && flagged.push({ seed: seeds[i], reason: x.reason, detail: x.detail }));
      genFlags.push(...f);
      const p = pixelDuplicates(pixels, local, f.map((x) => x !== null), undefined, undefined, lookalike(desc));
      genPixel.counts.push(...p.counts);
      genPixel.closest.push(...p.closest);
      genPixel.lookalikePixels.push(...p.lookalikePixels);
      progress.tick(seeds.length);
    }
    const gen = new Float32Array(images * DIM);
    generated.reduce((at, part) => (gen.set(part, at), at + part.length), 0);
    const summary = summariseCopies(await copyDistances(gen, real));
    const duplicates = await duplicateSets(gen, real, DUPLICATE_SET_SIZE, DIM, 1, threshold);
    const counts: ControlCount[] = [];
    if (duplicates) {
      for (const c of controls) {
        counts.push({ control: controlName(c), counts: await controlDuplicates(ds.cache.pixels, controlRows, c, duplicates.below) });
        progress.tick(controlRows.length);
      }
    }
    progress.finish();
    const fdd = frechetDistance(gaussianStats(gen, DIM), gaussianStats(real, DIM));
    const pixelDup: PixelDuplicateSets | null = genPixel.counts.length && realPixel.counts.length
      ? {
        setSize: DUPLICATE_SET_SIZE,
        within: OUTLIER_DEFAULTS.duplicateDiff,
        generated: summariseCounts(genPixel.counts),
        real: summariseCounts(realPixel.counts),
        generatedClosest: closestSummary(genPixel.closest),
        realClosest: closestSummary(realPixel.closest),
        generatedLookalikes: lookalikeSummary(genPixel.lookalikePixels),
        realLookalikes: lookalikeSummary(realPixel.lookalikePixels),
      }
      : null;
    return {
      network: g.dir,
      trainedOn: g.meta.dataset,
      dataset: datasetName(ds.layout),
      generatedImages: images,
      realImages: rows.length,
      trunc,
      fdd,
      ...summary,
      duplicates,
      controls: counts,
      sampleRules: { generated: countRules(genFlags), real: countRules(realFlags), flagged },
      pixelDuplicates: pixelDup,
    };
  } finally {
    g.dispose();
  }
}

/** The report's lines. */
export function formatCopyCheck(c: CopyCheck): string {
  const q = (x: Quantiles) => `p5 ${x.p5.toFixed(3)}, p25 ${x.p25.toFixed(3)}, median ${x.median.toFixed(3)}, p75 ${x.p75.toFixed(3)}`;
  return [
    `generator ${c.network} (trained on ${c.trainedOn}), reference: ${c.realImages} portraits of ${c.dataset}` +
    (c.trainedOn !== c.dataset ? " (not its training set: a check of likeness, not of copying)" : "") + (c.trunc !== 1 ? `, truncation ψ ${c.trunc}` : ""),
    `Fréchet descriptor distance, ${c.generatedImages} generated against the ${c.realImages} reference portraits: ${c.fdd.toFixed(4)}`,
    `nearest-neighbour descriptor distance, real → other real:     ${q(c.real)}`,
    `nearest-neighbour descriptor distance, generated → real (${c.generatedImages}): ${q(c.generated)}`,
    `copies (generated closer to a real portrait than the real p5): ${c.copies} of ${c.generatedImages} ` +
    `(${(100 * c.copies / c.generatedImages).toFixed(1)} %; about 5 % for real portraits outside the reference); median ratio ${c.medianRatio.toFixed(2)}`,
    ...(c.duplicates ? [formatDuplicates(c.duplicates)] : []),
    ...c.controls.map((k) => `the same count on ${k.counts.sets * (c.duplicates?.setSize ?? DUPLICATE_SET_SIZE)} reference portraits softened by ${k.control}: ${formatCounts(k.counts)}`),
    formatRules(c.sampleRules),
    ...(c.pixelDuplicates ? [formatPixelDuplicates(c.pixelDuplicates)] : []),
  ].join("\n");
}

/** How many flagged seeds the report lists (all of them are in the JSON). */
const LISTED_SEEDS = 8;

function formatRules(r: CopyCheck["sampleRules"]): string {
  const counts = (k: RuleCounts) => `blank ${k.blank}, exposure ${k.exposure}, noise ${k.noise} of ${k.images}`;
  const seeds = r.flagged.slice(0, LISTED_SEEDS).map((f) => `${f.seed} ${f.reason}: ${f.detail}`).join("; ");
  return `the exploration's per-image rules: generated ${counts(r.generated)}; reference ${counts(r.real)}` +
    (r.flagged.length ? `\n  flagged seeds (gan:generate --seeds): ${seeds}${r.flagged.length > LISTED_SEEDS ? `; and ${r.flagged.length - LISTED_SEEDS} more` : ""}` : "");
}

function formatPixelDuplicates(d: PixelDuplicateSets): string {
  return `pixel duplicates per set of ${d.setSize} (another sample of the set within aligned mean abs difference ${d.within}, the exploration's duplicate test; flagged samples left out): ` +
    `generated ${formatCounts(d.generated)}; real ${formatCounts(d.real)}; closest pair per set: generated min ${d.generatedClosest.min.toFixed(1)}, ` +
    `median ${d.generatedClosest.median.toFixed(1)}; real min ${d.realClosest.min.toFixed(1)}, median ${d.realClosest.median.toFixed(1)}` +
    `\n  the descriptor count's near-duplicate pairs in these sets, as pictures (aligned mean abs difference; a shifted or re-encoded copy: 1–4): ` +
    `generated ${formatLookalikes(d.generatedLookalikes)}; real ${formatLookalikes(d.realLookalikes)}`;
}

const formatLookalikes = (l: LookalikePairs) => (l.pairs ? `${l.pairs} pairs, ${l.min.toFixed(1)}–${l.max.toFixed(1)}, median ${l.median.toFixed(1)}` : "0 pairs");

const formatCounts = (c: CountSummary) => `median ${c.median}, mean ${c.mean.toFixed(1)}, ${c.min}–${c.max} over ${c.sets} sets`;

function formatDuplicates(d: DuplicateSets): string {
  return `near-duplicates per set of ${d.setSize} (nearest other in the set closer than ${d.below.toFixed(3)}, the reference sets' median closest pair): ` +
    `generated ${formatCounts(d.generated)}; real ${formatCounts(d.real)}`;
}
