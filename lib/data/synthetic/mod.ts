/**
 * Procedural "Tiny Portraits": the project's embedded default dataset, so that every stage
 * (exploration, outlier detection, classifiers, GAN) runs offline without the real images.
 *
 * `generateSynthetic()` writes a folder laid out exactly like the real dataset's flat layout:
 *   Tiny_Portraits_Attributes.csv   Image_Index,Gender,Hair_Color,Hair_Type (`n/a` = missing)
 *   Tiny_Portrait_%06d.png          84 wide x 108 high, RGB (no alpha)
 *   synthetic_ground_truth.csv      file,image_index,kind,detail — the planted non-face images
 *                                   (kind `bad`, detail landscape|text|blank|noise) and near-duplicates
 *                                   (kind `near_duplicate`, detail = the original's file name)
 * Labels follow the real joint distribution (see `_labels.ts`) and drive what is drawn (`_draw.ts`);
 * images go through seeded blur / noise / JPEG artefacts (`_render.ts`). Same (count, seed) gives
 * byte-identical files: each row's randomness is derived from (seed, row), independent of the
 * parallel rendering order.
 *
 * Run:  deno run -A lib/cli/synth.ts --out data/synth --count 10000 --seed 1 [--mosaic classes.png]
 * Use:  import { generateSynthetic } from "./lib/data/synthetic/mod.ts";
 *       await generateSynthetic({ out: "data/synth", count: 2000, seed: 1 });
 */

import { join } from "node:path";
import { ATTRIBUTES_FILE, CSV_HEADER, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../schema.ts";
import { type BadKind, badSource, sampleBadKind } from "./_bad.ts";
import { portraitSvg } from "./_draw.ts";
import { type Labels, resolveAppearance, sampleLabels } from "./_labels.ts";
import { nearDuplicate, postProcess } from "./_render.ts";
import { rngFor, STREAM } from "../../util/rng.ts";
import { mosaic, type MosaicTile } from "../../viz/mosaic.ts";
import { writeFileAtomic } from "../../util/fs.ts";

export type { Gender, HairColor, HairType, Labels } from "./_labels.ts";
export type { BadKind } from "./_bad.ts";

export { ATTRIBUTES_FILE, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../schema.ts";
/** Header of the attributes file, as in the real dataset. */
export const ATTRIBUTES_HEADER = CSV_HEADER.join(",");
/** The answer key for planted bad images and near-duplicates (not part of the real dataset). */
export const GROUND_TRUTH_FILE = "synthetic_ground_truth.csv";
/** Header of the ground-truth file. */
export const GROUND_TRUTH_HEADER = "file,image_index,kind,detail";

export interface SynthOptions {
  /**
   * Output folder, created if missing. Files of the same name are replaced and an earlier CSV is removed
   * first; other files (e.g. PNGs of a larger earlier run) are left alone, so prefer an empty folder.
   */
  out: string;
  /** Number of rows / images. */
  count: number;
  /** Dataset seed (integer). */
  seed: number;
  /** Images rendered at once (default 8). */
  concurrency?: number;
  /** Share of planted non-face images (default 0.005); rounded to a whole number of images. */
  badFraction?: number;
  /** Share of planted near-duplicates (default 0.002); rounded to a whole number of images. */
  duplicateFraction?: number;
  /** Called after each image is written. */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthSummary {
  count: number;
  seconds: number;
  imagesPerSecond: number;
  /** Planted non-face images. */
  bad: number;
  /** Planted near-duplicates. */
  duplicates: number;
  csvPath: string;
  groundTruthPath: string;
}

type RowKind =
  | { kind: "portrait" }
  | { kind: "bad"; bad: BadKind }
  | { kind: "near_duplicate"; original: number };

interface Plan {
  indices: number[];
  kinds: RowKind[];
  labels: Labels[];
}

function fail(what: string, expected: string, got: unknown): never {
  throw new Error(
    `generateSynthetic: expected ${what} to be ${expected}, got '${got}'`,
  );
}

function validate(o: SynthOptions): Required<Omit<SynthOptions, "onProgress">> {
  if (typeof o.out !== "string" || o.out === "") {
    fail("out", "a folder path", o.out);
  }
  if (!Number.isInteger(o.count) || o.count < 1) {
    fail("count", "a positive integer", o.count);
  }
  if (!Number.isSafeInteger(o.seed)) fail("seed", "an integer", o.seed);
  const concurrency = o.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    fail("concurrency", "a positive integer", concurrency);
  }
  const badFraction = o.badFraction ?? 0.005;
  const duplicateFraction = o.duplicateFraction ?? 0.002;
  for (
    const [k, v] of [["badFraction", badFraction], [
      "duplicateFraction",
      duplicateFraction,
    ]] as const
  ) {
    if (typeof v !== "number" || !(v >= 0 && v < 1)) {
      fail(k, "a number in [0, 1)", v);
    }
  }
  if (badFraction + duplicateFraction >= 1) {
    fail(
      "badFraction + duplicateFraction",
      "below 1",
      badFraction + duplicateFraction,
    );
  }
  return {
    out: o.out,
    count: o.count,
    seed: o.seed,
    concurrency,
    badFraction,
    duplicateFraction,
  };
}

/**
 * Decides every row's index, kind and labels. Image indices start at 0 and skip 0-2 numbers between
 * rows (mean gap 1.5, like the real 0..202597 over 134,734 rows). Exactly round(count * fraction) bad
 * images and near-duplicates are planted at seeded positions; a duplicate copies a portrait row's labels.
 */
function makePlan(
  count: number,
  seed: number,
  badFraction: number,
  duplicateFraction: number,
): Plan {
  const rng = rngFor(seed, 0, STREAM.plan);
  const indices = new Array<number>(count);
  let idx = 0;
  for (let r = 0; r < count; r++) {
    indices[r] = idx;
    idx += 1 + Number(rng.weighted({ "0": 0.6, "1": 0.3, "2": 0.1 }));
  }
  let nBad = Math.round(count * badFraction);
  let nDup = Math.round(count * duplicateFraction);
  if (nBad + nDup > count - 1) {
    nBad = Math.min(nBad, count - 1);
    nDup = Math.max(0, count - 1 - nBad);
  }
  // Partial Fisher-Yates: the first nBad + nDup entries are the planted rows.
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = 0; i < nBad + nDup; i++) {
    const j = rng.int(i, count - 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const kinds: RowKind[] = new Array(count).fill(null).map(() => ({
    kind: "portrait" as const,
  }));
  for (let i = 0; i < nBad; i++) {
    const row = order[i];
    kinds[row] = {
      kind: "bad",
      bad: sampleBadKind(rngFor(seed, row, STREAM.bad)),
    };
  }
  const planted = new Set(order.slice(0, nBad + nDup));
  for (let i = nBad; i < nBad + nDup; i++) {
    let original = rng.int(0, count - 1);
    while (planted.has(original)) original = rng.int(0, count - 1);
    kinds[order[i]] = { kind: "near_duplicate", original };
  }
  const labels = new Array<Labels>(count);
  for (let r = 0; r < count; r++) {
    labels[r] = sampleLabels(rngFor(seed, r, STREAM.labels));
  }
  for (let r = 0; r < count; r++) {
    const k = kinds[r];
    if (k.kind === "near_duplicate") labels[r] = labels[k.original];
  }
  return { indices, kinds, labels };
}

/** One row of the attributes CSV that `generateSynthetic` writes. */
export interface SyntheticRow extends Labels {
  /** Image_Index. */
  index: number;
  /** The image's file name. */
  file: string;
}

/**
 * The rows of the attributes CSV that `generateSynthetic` writes for the same count, seed and
 * fractions, computed without rendering any image (cheap: useful for label statistics and tests).
 */
export function syntheticRows(
  count: number,
  seed: number,
  opts: { badFraction?: number; duplicateFraction?: number } = {},
): SyntheticRow[] {
  const o = validate({ out: "-", count, seed, ...opts });
  const plan = makePlan(o.count, o.seed, o.badFraction, o.duplicateFraction);
  return plan.labels.map((l, r) => ({
    ...l,
    index: plan.indices[r],
    file: imageFileName(plan.indices[r]),
  }));
}

/** The PNG of a portrait row (deterministic in seed and row). */
async function renderPortrait(
  seed: number,
  row: number,
  labels: Labels,
): Promise<Uint8Array> {
  const look = resolveAppearance(labels, rngFor(seed, row, STREAM.hidden));
  const svg = portraitSvg(labels, look, rngFor(seed, row, STREAM.draw));
  return await postProcess({ svg }, rngFor(seed, row, STREAM.post));
}

async function renderRow(
  seed: number,
  row: number,
  plan: Plan,
): Promise<Uint8Array> {
  const k = plan.kinds[row];
  if (k.kind === "portrait") {
    return await renderPortrait(seed, row, plan.labels[row]);
  }
  if (k.kind === "bad") {
    const src = badSource(k.bad, rngFor(seed, row, STREAM.draw));
    return await postProcess(src, rngFor(seed, row, STREAM.post), {
      noise: k.bad === "blank" ? [0, 2] : [1, 6],
    });
  }
  const original = await renderPortrait(
    seed,
    k.original,
    plan.labels[k.original],
  );
  return await nearDuplicate(original, rngFor(seed, row, STREAM.duplicate));
}

/**
 * Generates a synthetic Tiny Portraits folder (see the header of this file). Images are written
 * first, then the ground-truth file, then the attributes CSV, each atomically, so an interrupted run
 * never leaves a CSV that names missing images.
 */
export async function generateSynthetic(
  opts: SynthOptions,
): Promise<SynthSummary> {
  const o = validate(opts);
  const t0 = performance.now();
  await Deno.mkdir(o.out, { recursive: true });
  // A CSV from an earlier run would describe a half-rewritten folder until this run finishes.
  for (const f of [ATTRIBUTES_FILE, GROUND_TRUTH_FILE]) {
    await Deno.remove(join(o.out, f)).catch(() => {});
  }
  const plan = makePlan(o.count, o.seed, o.badFraction, o.duplicateFraction);

  let next = 0, done = 0;
  const worker = async () => {
    while (true) {
      const row = next++;
      if (row >= o.count) return;
      const png = await renderRow(o.seed, row, plan);
      await writeFileAtomic(join(o.out, imageFileName(plan.indices[row])), png);
      done++;
      opts.onProgress?.(done, o.count);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, o.count) }, worker),
  );

  const truth = [GROUND_TRUTH_HEADER];
  let bad = 0, duplicates = 0;
  for (let r = 0; r < o.count; r++) {
    const k = plan.kinds[r];
    const file = imageFileName(plan.indices[r]);
    if (k.kind === "bad") {
      truth.push(`${file},${plan.indices[r]},bad,${k.bad}`);
      bad++;
    } else if (k.kind === "near_duplicate") {
      truth.push(
        `${file},${plan.indices[r]},near_duplicate,${
          imageFileName(plan.indices[k.original])
        }`,
      );
      duplicates++;
    }
  }
  const groundTruthPath = join(o.out, GROUND_TRUTH_FILE);
  await writeFileAtomic(groundTruthPath, truth.join("\n") + "\n");

  const lines = [ATTRIBUTES_HEADER];
  for (let r = 0; r < o.count; r++) {
    const l = plan.labels[r];
    lines.push(`${plan.indices[r]},${l.gender},${l.hairColor},${l.hairType}`);
  }
  const csvPath = join(o.out, ATTRIBUTES_FILE);
  await writeFileAtomic(csvPath, lines.join("\n") + "\n");

  const seconds = (performance.now() - t0) / 1000;
  return {
    count: o.count,
    seconds,
    imagesPerSecond: o.count / seconds,
    bad,
    duplicates,
    csvPath,
    groundTruthPath,
  };
}

/** The classes shown by `writeClassMosaic`, one mosaic row each. */
const MOSAIC_CLASSES: { column: 1 | 2 | 3; value: string; label: string }[] = [
  { column: 1, value: "female", label: "female" },
  { column: 1, value: "male", label: "male" },
  { column: 2, value: "black", label: "black hair" },
  { column: 2, value: "brown", label: "brown hair" },
  { column: 2, value: "blond", label: "blond hair" },
  { column: 2, value: "gray", label: "gray hair" },
  { column: 2, value: "bald", label: "bald" },
  { column: 3, value: "straight", label: "straight" },
  { column: 3, value: "wavy", label: "wavy" },
];

/**
 * Writes a PNG grid with one row per class value (female, male, black, brown, blond, gray, bald,
 * straight, wavy) showing the first `perClass` (default 10) images of that class, read from the
 * attributes CSV and PNGs in `dataroot`. Images listed in the ground-truth file, if present, are skipped.
 */
export async function writeClassMosaic(
  dataroot: string,
  outPng: string,
  opts: { perClass?: number } = {},
): Promise<void> {
  const perClass = opts.perClass ?? 10;
  if (!Number.isInteger(perClass) || perClass < 1) {
    throw new Error(
      `writeClassMosaic: expected perClass to be a positive integer, got '${perClass}'`,
    );
  }
  const csv = (await Deno.readTextFile(join(dataroot, ATTRIBUTES_FILE))).trim()
    .split(/\r?\n/);
  const skip = new Set<string>();
  try {
    const truth = (await Deno.readTextFile(join(dataroot, GROUND_TRUTH_FILE)))
      .trim().split(/\r?\n/).slice(1);
    for (const line of truth) skip.add(line.split(",")[0]);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const rows = csv.slice(1).map((l) => l.split(",")).filter((c) =>
    !skip.has(imageFileName(Number(c[0])))
  );
  const tiles: MosaicTile[] = [];
  const rowLabels: string[] = [];
  for (const cls of MOSAIC_CLASSES) {
    const picked = rows.filter((c) => c[cls.column] === cls.value).slice(
      0,
      perClass,
    );
    rowLabels.push(
      `${cls.label} (${
        rows.filter((c) => c[cls.column] === cls.value).length
      })`,
    );
    for (let i = 0; i < perClass; i++) {
      if (i < picked.length) {
        const file = imageFileName(Number(picked[i][0]));
        tiles.push({
          image: await Deno.readFile(join(dataroot, file)),
          caption: picked[i][0],
        });
      } else {
        tiles.push({ image: blankTile() });
      }
    }
  }
  const png = await mosaic(tiles, {
    columns: perClass,
    rowLabels,
    title: `Classes in ${dataroot}`,
  });
  await Deno.writeFile(outPng, png);
}

function blankTile(): {
  raw: Uint8Array;
  width: number;
  height: number;
  channels: 3;
} {
  return {
    raw: new Uint8Array(IMAGE_WIDTH * IMAGE_HEIGHT * 3).fill(235),
    width: IMAGE_WIDTH,
    height: IMAGE_HEIGHT,
    channels: 3,
  };
}

/**
 * The procedural set used by the demo and notebooks: `<dataDir>/synthetic-<count>-s<seed>`,
 * generated on first use (complete when its CSV and ground truth exist). Returns its path.
 */
export async function ensureProceduralDataset(opts: { count: number; seed: number; dataDir?: string; quiet?: boolean }): Promise<string> {
  const dir = join(opts.dataDir ?? "data", `synthetic-${opts.count}-s${opts.seed}`);
  let complete = true;
  for (const f of [ATTRIBUTES_FILE, GROUND_TRUTH_FILE]) {
    try {
      await Deno.stat(join(dir, f));
    } catch {
      complete = false;
    }
  }
  if (!complete) {
    const s = await generateSynthetic({ out: dir, count: opts.count, seed: opts.seed });
    if (!opts.quiet) {
      console.error(`generated ${s.count} procedural portraits in ${dir} (${s.bad} non-face, ${s.duplicates} near-duplicates) in ` +
        `${s.seconds.toFixed(1)} s, ${s.imagesPerSecond.toFixed(0)} img/s`);
    }
  }
  return dir;
}
