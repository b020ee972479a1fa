/**
 * The exploration report: `deno task explore --dataroot DIR [--out DIR]`.
 * One pass over the pixel cache gives the description tables (polars, CSV),
 * vega-lite charts (SVG + PNG), per-image statistics and normalisation
 * constants, scored outliers (`bad_images.csv` + mosaic) and `summary.json`.
 * On the procedural set it scores the outliers against the planted ground truth.
 */
import { join } from "node:path";
import pl from "nodejs-polars";
import { type Dataset, openDataset, type OpenOptions } from "../data/dataset.ts";
import { channelStats, type Normalization } from "../data/batches.ts";
import { HEAD_NAMES, HEADS, IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH, MISSING } from "../data/schema.ts";
import { labelName } from "../data/attributes.ts";
import { listImageFiles } from "../data/layout.ts";
import { type Description, describeAttributes } from "./describe.ts";
import { type ImageStats, imageStats } from "./image_stats.ts";
import { eigenfaceImages } from "./face_space.ts";
import { findOutliers, OUTLIER_DEFAULTS, OUTLIER_REASONS, type OutlierFlag, type OutlierOptions } from "./outliers.ts";
import { classBalanceChart, crossTableChart, missingChart, outlierReasonsChart, pixelStatsChart } from "./charts.ts";
import { saveChart, type VegaLiteSpec } from "../viz/vega.ts";
import { mosaic, type MosaicTile } from "../viz/mosaic.ts";
import { exists, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { writeCsvAtomic } from "../util/csv.ts";

export * from "./describe.ts";
export * from "./image_stats.ts";
export * from "./outliers.ts";
export * from "./knn.ts";
export * from "./face_space.ts";
export * from "./charts.ts";

export const BAD_IMAGES_FILE = "bad_images.csv";
import { GROUND_TRUTH_FILE } from "../data/synthetic/mod.ts";

export interface ExploreOptions extends OpenOptions {
  out: string;
  outliers?: Partial<OutlierOptions>;
  quiet?: boolean;
}

export interface GroundTruthScore {
  planted: number;
  flagged: number;
  truePositives: number;
  precision: number;
  recall: number;
  /** Recall per planted kind (landscape, text, blank, noise, near_duplicate). */
  recallByKind: Record<string, number>;
}

export interface ExploreResult {
  ds: Dataset;
  description: Description;
  stats: ImageStats;
  normalization: Normalization;
  flags: OutlierFlag[];
  charts: Record<string, VegaLiteSpec>;
  groundTruth: GroundTruthScore | null;
  summary: Record<string, unknown>;
  files: Record<string, string>;
}


/**
 * Scores flags against the procedural set's planted ground truth. Which image of a duplicate pair is
 * flagged is arbitrary (the exploration flags the later file), so a planted near-duplicate counts as
 * found when either it or its original is flagged, and a flagged original is not a false positive.
 */
export async function scoreGroundTruth(path: string, flags: OutlierFlag[]): Promise<GroundTruthScore> {
  const gt = pl.readCSV(await Deno.readTextFile(path), { inferSchemaLength: 0 }).toRecords() as Record<string, string>[];
  const planted = new Map<number, string>();
  const originalOf = new Map<number, number>();
  for (const r of gt) {
    const idx = Number(r.image_index);
    planted.set(idx, r.kind === "bad" ? r.detail : r.kind);
    const m = r.kind === "near_duplicate" ? /(\d+)/.exec(r.detail) : null;
    if (m) originalOf.set(idx, Number(m[1]));
  }
  const flagged = new Set(flags.map((f) => f.index));
  const partners = new Set(originalOf.values());
  let tp = 0;
  const hitsByKind: Record<string, [number, number]> = {};
  for (const [idx, kind] of planted) {
    hitsByKind[kind] ??= [0, 0];
    hitsByKind[kind][1]++;
    const orig = originalOf.get(idx);
    if (flagged.has(idx) || (orig !== undefined && flagged.has(orig))) tp++, hitsByKind[kind][0]++;
  }
  const correct = [...flagged].filter((i) => planted.has(i) || partners.has(i)).length;
  return {
    planted: planted.size,
    flagged: flagged.size,
    truePositives: tp,
    precision: flagged.size ? correct / flagged.size : 1,
    recall: planted.size ? tp / planted.size : 1,
    recallByKind: Object.fromEntries(Object.entries(hitsByKind).map(([k, [h, t]]) => [k, h / t])),
  };
}

function tile(ds: Dataset, row: number, caption: string): MosaicTile {
  return {
    image: { raw: ds.cache.pixels.subarray(row * IMAGE_BYTES, (row + 1) * IMAGE_BYTES), width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 },
    caption,
  };
}

/** Runs the whole exploration and writes every artefact under `opts.out`. */
export async function runExploration(opts: ExploreOptions): Promise<ExploreResult> {
  const t0 = performance.now();
  const out = opts.out;
  await Deno.mkdir(out, { recursive: true });
  // Exploration is where problems get found: rows with bad labels are listed and left out, the rest is explored.
  const ds = await openDataset({ ...opts, keepGoing: true });
  const files: Record<string, string> = {};
  files.bad_rows = join(out, "bad_rows.csv");
  await writeCsvAtomic(files.bad_rows, ds.attrs.problems.map((p) => ({ csv_line: p.line, message: p.message })), ["csv_line", "message"]);
  const description = describeAttributes(ds.attrs);
  const tables: Record<string, pl.DataFrame> = {
    class_counts: description.classCounts,
    imbalance: description.imbalance,
    missing: description.missing,
    gender_x_hair_color: description.genderByHairColor,
    gender_x_hair_type: description.genderByHairType,
  };
  for (const [name, df] of Object.entries(tables)) {
    files[name] = join(out, `${name}.csv`);
    await writeFileAtomic(files[name], df.writeCSV().toString());
  }

  const tStats = performance.now();
  const stats = imageStats(ds.cache.pixels, ds.goodRows, { quiet: opts.quiet });
  const normalization = channelStats(ds.cache.pixels, ds.goodRows);
  await writeJsonAtomic(files.normalization = join(out, "normalization.json"), normalization);
  const statsSeconds = (performance.now() - tStats) / 1000;

  const tOut = performance.now();
  const outliers = await findOutliers(ds, stats, { quiet: opts.quiet, ...opts.outliers });
  const outlierSeconds = (performance.now() - tOut) / 1000;
  const flags = outliers.flags;
  await writeCsvAtomic(files.bad_images = join(out, BAD_IMAGES_FILE), flags.map((f) => ({ file: f.file, image_index: f.index, reason: f.reason, score: Number(f.score.toFixed(4)), detail: f.detail })), ["file", "image_index", "reason", "score", "detail"]);

  // Per-image statistics as a table (polars) for notebooks and scripts.
  const statsFrame = pl.DataFrame({
    image_index: pl.Series("image_index", Array.from(stats.rows, (r) => ds.attrs.index[r]), pl.Int64),
    brightness: Array.from(stats.brightness),
    contrast: Array.from(stats.contrast),
    sharpness: Array.from(stats.sharpness),
    clipped: Array.from(stats.clipped),
    mean_r: Array.from(stats.rows, (_, i) => stats.channelMean[i * 3]),
    mean_g: Array.from(stats.rows, (_, i) => stats.channelMean[i * 3 + 1]),
    mean_b: Array.from(stats.rows, (_, i) => stats.channelMean[i * 3 + 2]),
    nonface_z: Array.from(outliers.nonFaceZ, (v) => (Number.isFinite(v) ? v : null)),
    face_score: Array.from(outliers.faceScore, (v) => (Number.isFinite(v) ? v : null)),
    face_space_z: Array.from(outliers.faceSpaceZ, (v) => (Number.isFinite(v) ? v : null)),
  });
  await writeFileAtomic(files.image_stats = join(out, "image_stats.csv"), statsFrame.writeCSV().toString());

  // Charts.
  const reasonCounts = OUTLIER_REASONS.map((reason) => ({ reason, count: flags.filter((f) => f.reason === reason).length }));
  const sample = Math.max(1, Math.floor(stats.rows.length / 20000));
  const statValues = [];
  for (let i = 0; i < stats.rows.length; i += sample) {
    statValues.push({ brightness: stats.brightness[i], contrast: stats.contrast[i], log10_sharpness: Math.log10(stats.sharpness[i] + 1e-9) });
  }
  const o = { ...OUTLIER_DEFAULTS, ...opts.outliers };
  const thresholds = [
    { statistic: "brightness", value: o.darkBrightness },
    { statistic: "brightness", value: o.brightBrightness },
    { statistic: "contrast", value: o.blankContrast },
  ];
  const charts: Record<string, VegaLiteSpec> = {
    class_balance: classBalanceChart(description.classCounts),
    missing_values: missingChart(description.missing),
    gender_x_hair_color: crossTableChart(description.genderByHairColor, "Gender × hair colour"),
    gender_x_hair_type: crossTableChart(description.genderByHairType, "Gender × hair type"),
    pixel_stats: pixelStatsChart(statValues, thresholds),
    outlier_reasons: outlierReasonsChart(reasonCounts),
  };
  for (const [name, spec] of Object.entries(charts)) files[`chart_${name}`] = (await saveChart(spec, join(out, name))).png;

  // Mosaics: extremes of each statistic, and the flagged images.
  const extremes: MosaicTile[] = [];
  const rowLabels: string[] = [];
  const per = 8;
  const order = (arr: Float32Array, desc: boolean) =>
    Array.from(arr.keys()).sort((a, b) => (desc ? arr[b] - arr[a] : arr[a] - arr[b])).slice(0, per);
  for (const [label, arr, desc] of [
    ["darkest", stats.brightness, false],
    ["brightest", stats.brightness, true],
    ["lowest contrast", stats.contrast, false],
    ["blurriest", stats.sharpness, false],
    ["sharpest", stats.sharpness, true],
  ] as const) {
    if (stats.rows.length === 0) break;
    rowLabels.push(label);
    for (const i of order(arr, desc)) extremes.push(tile(ds, stats.rows[i], `${arr[i].toPrecision(2)}`));
    while (extremes.length % per) extremes.push(tile(ds, stats.rows[0], ""));
  }
  if (extremes.length) {
    files.extremes_mosaic = join(out, "extremes_mosaic.png");
    await writeFileAtomic(files.extremes_mosaic, await mosaic(extremes, { columns: per, rowLabels, title: "Tails of the per-image statistics" }));
  }
  const shown = [...flags].filter((f) => f.reason !== "broken").sort((a, b) => b.score - a.score).slice(0, 64);
  if (shown.length) {
    files.flagged_mosaic = join(out, "flagged_mosaic.png");
    await writeFileAtomic(files.flagged_mosaic, await mosaic(shown.map((f) => tile(ds, f.row, `${f.reason} ${f.score.toFixed(2)}`)), {
      columns: 8,
      title: `Flagged images (${flags.length} in all, highest scores first)`,
    }));
  }

  if (outliers.faceSpace) {
    // The eigenfaces behind the face-space score, then the least face-like images by that score.
    const eig = eigenfaceImages(outliers.faceSpace, 7).map((image, c) => ({
      image,
      caption: c === 0 ? "mean" : `PC${c} ${(outliers.faceSpace!.explained[c - 1] * 100).toFixed(1)}%`,
    }));
    const z = outliers.faceSpaceZ;
    const far = Array.from(z.keys()).filter((i) => Number.isFinite(z[i])).sort((a, b) => z[b] - z[a]).slice(0, 16);
    files.face_space_mosaic = join(out, "face_space_mosaic.png");
    await writeFileAtomic(files.face_space_mosaic, await mosaic([...eig, ...far.map((i) => tile(ds, stats.rows[i], `z ${z[i].toFixed(1)}`))], {
      columns: 8,
      rowLabels: ["eigenfaces", "least face-like", ""],
      title: `Face space (${outliers.faceSpace.basis.length / outliers.faceSpace.dim} components) and the images it explains worst`,
    }));
  }

  const gtPath = join(ds.layout.root, GROUND_TRUTH_FILE);
  const groundTruth = (await exists(gtPath)) ? await scoreGroundTruth(gtPath, flags) : null;
  const valueCounts: Record<string, Record<string, number>> = {};
  for (const h of HEAD_NAMES) {
    const counts: Record<string, number> = Object.fromEntries([...HEADS[h].labels, ...(h === "gender" ? [] : [MISSING])].map((c) => [c, 0]));
    for (const code of ds.attrs.labels[h]) counts[labelName(h, code)]++;
    valueCounts[HEADS[h].column] = counts;
  }
  const imagesFound = (await listImageFiles(ds.layout)).size;
  const summary = {
    dataroot: ds.layout.root,
    rows: ds.rows,
    /** CSV rows left out for bad values (bad_rows.csv); training refuses the CSV until they are fixed. */
    badRows: ds.attrs.problems.length,
    imagesFound,
    imagesDecoded: ds.goodRows.length,
    unlistedFiles: ds.unlistedFiles.length,
    valueCounts,
    flagged: flags.length,
    flaggedImages: new Set(flags.map((f) => f.index)).size,
    flaggedByReason: Object.fromEntries(reasonCounts.map((r) => [r.reason, r.count])),
    nonFaceCandidates: outliers.candidates,
    normalization,
    groundTruth,
    timings: {
      totalSeconds: (performance.now() - t0) / 1000,
      cacheSeconds: ds.cache.seconds,
      cacheBuilt: ds.cache.built,
      statsSeconds,
      outlierSeconds,
      faceSpaceSeconds: outliers.faceSpaceSeconds,
      descriptorSeconds: outliers.descriptorSeconds,
      detectorSeconds: outliers.detectorSeconds,
    },
  };
  await writeJsonAtomic(files.summary = join(out, "summary.json"), summary);
  return { ds, description, stats, normalization, flags, charts, groundTruth, summary, files };
}
