/**
 * Prediction on images from other sources: `deno task predict --exp-name NAME
 * --images DIR [--ckpt best] [--fill blur] [--truth labels.csv]`. Every file is
 * read with sharp (jpg/png/webp/…, any size, colour or grey); the face is found
 * with face-api's detector and re-framed like a Tiny Portrait (head and hair
 * inside 108×84; where the portrait reaches past the photo, as a tight face crop
 * does, the rest is filled as --fill says); with no face the whole image is used
 * and the row says so. Unreadable files are reported and skipped. Writes
 * predictions_<task>.csv (filename, face_found, <head>, <head>_prob per head, and
 * <head>_truth with --truth), pred.log (every file, and the accuracy per head
 * with --truth) and a one-page contact sheet (the first 48 images and the 24
 * least confident of the rest: image, crop, prediction).
 */
import { basename, extname, join } from "node:path";
import pl from "nodejs-polars";
import sharp from "sharp";
import type { JointMode } from "./joint.ts";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { checkFill, DEFAULT_FILL, type FillMode, portraitsFromImages } from "../faces/mod.ts";
import { type EnsembleMode, FACEAPI_BASELINE, loadPredictor } from "./evaluate.ts";
import { withRunLock } from "../util/run_dir.ts";
import type { DecisionBiasMode } from "./decision.ts";
import { argmaxRows } from "./report.ts";
import { mosaic, type MosaicTile } from "../viz/mosaic.ts";
import { appendFileAtomic, writeFileAtomic } from "../util/fs.ts";
import { writeCsvAtomic } from "../util/csv.ts";
import { Progress } from "../util/progress.ts";
import { UserError } from "../util/errors.ts";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif", ".bmp"];

/** What the contact sheet shows at most: the first images, then the least confident of the rest. */
export const SHEET_FIRST = 48;
export const SHEET_LEAST_CONFIDENT = 24;
/** Images per row of the contact sheet (each image is two tiles: the file and its re-framed crop). */
const SHEET_IMAGES_PER_ROW = 4;

export interface PredictOptions {
  runDir: string;
  images: string;
  ckpt: "best" | "last";
  /** Face detector (default "tiny"; see lib/faces detectFaces). */
  detector?: "ssd" | "tiny";
  /** What fills the portrait where it reaches past the photo (default lib/faces DEFAULT_FILL). */
  fill?: FillMode;
  /** CSV with a `filename` column and one column per head to score (e.g. filename,gender). */
  truth?: string;
  /** Photos per forward pass of the face nets (default 16). */
  batchSize?: number;
  /** "auto" (default): apply the run's decision_bias.json; "none": plain arg-max. */
  decisionBias?: DecisionBiasMode;
  /** "auto" (default): the run's own ensemble; "faceapi": force it on; "none": the trained net alone. */
  ensemble?: EnsembleMode;
  /** "auto" (default): as the decision biases were fitted, else the run's own; "bald" or "none" (lib/eval/joint.ts). */
  joint?: JointMode;
  quiet?: boolean;
}

export interface PredictionRow {
  filename: string;
  face_found: boolean;
  /** `<head>`, `<head>_prob`, and `<head>_truth` (null: no truth for this file, an empty CSV field). */
  [head: string]: string | number | boolean | null;
}

/** Right and wrong predictions of one head against the truth CSV. */
export interface HeadScore {
  right: number;
  wrong: number;
  /** right / (right + wrong); NaN when nothing was scored. */
  accuracy: number;
  /** The same among the rows whose face was found. */
  faceFound: { right: number; wrong: number };
}

export interface PredictResult {
  rows: PredictionRow[];
  skipped: { filename: string; reason: string }[];
  /** Per head, with `truth` only. */
  scores: Record<string, HeadScore> | null;
  csvPath: string;
  sheetPath: string | null;
  /** Files on the contact sheet, in its order (at most SHEET_FIRST + SHEET_LEAST_CONFIDENT). */
  sheetShown: string[];
  logPath: string;
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) continue;
      // Symbolic links count when they lead to a file.
      if (e.isFile || (e.isSymlink && (await Deno.stat(join(dir, e.name)).catch(() => null))?.isFile)) out.push(e.name);
    }
  } catch {
    throw new UserError(`predict: --images ${dir} is not a readable folder`);
  }
  if (!out.length) throw new Error(`predict: no image files (${IMAGE_EXTENSIONS.join(" ")}) in ${dir}`);
  return out.sort();
}

/** A CSV's header and rows as strings (nodejs-polars; quoted fields, CRLF and a byte-order mark handled). */
export function readCsvRows(text: string): string[][] {
  if (!text.trim()) return [];
  const df = pl.readCSV(text, { inferSchemaLength: 0, hasHeader: true });
  // Blank lines come back as rows of nulls: dropped.
  const rows = df.rows().filter((r) => r.some((v) => v != null)).map((r) => r.map((v) => (v == null ? "" : String(v))));
  return [df.columns, ...rows];
}

/**
 * Reads a truth CSV for `files` and the model's heads: a `filename` column (the file's name inside
 * --images) and a column per head to score, labels spelled as the model's (case ignored; an empty
 * cell is not scored). Returns, per head found in the CSV, each file's label index (-1: unscored).
 * Throws naming the CSV when it has no filename column, no head column, a file missing, or an
 * unknown label.
 */
export async function readTruth(path: string, files: readonly string[], heads: Record<string, readonly string[]>): Promise<Record<string, Int32Array>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new UserError(`predict: cannot read --truth ${path}: ${(err as Error).message}`);
  }
  const [header, ...body] = readCsvRows(text.replace(/^\uFEFF/, ""));
  const cols = (header ?? []).map((c) => c.trim().toLowerCase());
  const fcol = cols.indexOf("filename");
  if (fcol < 0) throw new UserError(`predict: --truth ${path} has no 'filename' column (columns: ${cols.join(", ") || "none"})`);
  const scored = Object.keys(heads).filter((h) => cols.includes(h.toLowerCase()));
  if (!scored.length) {
    throw new UserError(`predict: --truth ${path} has no column for the model's heads (${Object.keys(heads).join(", ")}); columns: ${cols.join(", ")}`);
  }
  const byName = new Map<string, string[]>();
  body.forEach((r) => byName.set(r[fcol]?.trim() ?? "", r));
  const missing = files.filter((f) => !byName.has(f));
  if (missing.length) {
    throw new Error(
      `predict: --truth ${path} has no row for '${missing[0]}'` + (missing.length > 1 ? ` (and ${missing.length - 1} more of the ${files.length} images)` : ""),
    );
  }
  const out: Record<string, Int32Array> = {};
  for (const h of scored) {
    const c = cols.indexOf(h.toLowerCase());
    const labels = heads[h].map((l) => l.toLowerCase());
    out[h] = Int32Array.from(files, (f) => {
      const v = (byName.get(f)![c] ?? "").trim().toLowerCase();
      if (v === "") return -1;
      const k = labels.indexOf(v);
      if (k < 0) throw new UserError(`predict: --truth ${path}: '${f}' has ${h} '${v}', expected one of ${heads[h].join(", ")} (or empty)`);
      return k;
    });
  }
  return out;
}

/**
 * Which rows the contact sheet shows, in this order: the first `first` rows, then the `least` rows
 * of the rest whose least sure head is least sure (lowest top probability), least sure first.
 */
export function sheetRows(confidence: ArrayLike<number>, first = SHEET_FIRST, least = SHEET_LEAST_CONFIDENT): number[] {
  const n = confidence.length;
  const head = Array.from({ length: Math.min(first, n) }, (_, i) => i);
  const rest = Array.from({ length: Math.max(0, n - first) }, (_, i) => i + first)
    .sort((a, b) => confidence[a] - confidence[b] || a - b)
    .slice(0, least);
  return [...head, ...rest];
}

/** Predicts every image of `opts.images` with the run's model; see the file header. */
export async function predictFolder(opts: PredictOptions): Promise<PredictResult> {
  return await withRunLock(opts.runDir, "predict", () => predictLocked(opts), { quiet: opts.quiet, create: basename(opts.runDir) === FACEAPI_BASELINE });
}

async function predictLocked(opts: PredictOptions): Promise<PredictResult> {
  const fill = opts.fill ?? DEFAULT_FILL;
  checkFill("predict", fill);
  const predictor = await loadPredictor(opts.runDir, opts.ckpt, { decisionBias: opts.decisionBias, ensemble: opts.ensemble, joint: opts.joint });
  const { config } = predictor;
  try {
    const files = await listImages(opts.images);
    const truth = opts.truth ? await readTruth(opts.truth, files, config.heads) : null;
    const progress = new Progress("find faces", files.length, { unit: "img", quiet: opts.quiet });
    const found = await portraitsFromImages(files.map((f) => join(opts.images, f)), {
      detector: opts.detector ?? "tiny",
      fill,
      batchSize: opts.batchSize,
      onProgress: (done) => progress.tick(done - progress.done),
    });
    const crops: Uint8Array[] = [];
    const kept: { filename: string; faceFound: boolean; path: string; index: number }[] = [];
    const skipped: { filename: string; reason: string }[] = [];
    found.forEach((p, index) => {
      const filename = files[index];
      if (p instanceof Error) return void skipped.push({ filename, reason: p.message });
      crops.push(p.pixels);
      kept.push({ filename, faceFound: p.faceFound, path: join(opts.images, filename), index });
    });
    progress.finish(skipped.length ? `(${skipped.length} unreadable, skipped)` : "");
    const findRate = progress.rate;
    const pixels = new Uint8Array(crops.length * IMAGE_BYTES);
    crops.forEach((c, i) => pixels.set(c, i * IMAGE_BYTES));
    const heads = Object.keys(config.heads);
    const probs = crops.length ? await predictor.predict(pixels, Array.from(crops.keys())) : {};
    const preds = Object.fromEntries(heads.map((h) => [h, crops.length ? argmaxRows(probs[h], config.heads[h].length) : new Int32Array(0)]));
    const confidence = new Float32Array(kept.length).fill(1);
    const rows: PredictionRow[] = kept.map((k, i) => {
      const row: PredictionRow = { filename: k.filename, face_found: k.faceFound };
      for (const h of heads) {
        const labels = config.heads[h], best = preds[h][i];
        const p = probs[h][i * labels.length + best];
        row[h] = labels[best];
        row[`${h}_prob`] = Number(p.toFixed(4));
        confidence[i] = Math.min(confidence[i], p);
        if (truth?.[h]) row[`${h}_truth`] = truth[h][k.index] >= 0 ? labels[truth[h][k.index]] : null;
      }
      return row;
    });
    const scores = truth ? scoreRows(rows, heads.filter((h) => truth[h])) : null;
    const cols = ["filename", "face_found", ...heads.flatMap((h) => [h, `${h}_prob`, ...(truth?.[h] ? [`${h}_truth`] : [])])];
    const csvPath = join(opts.runDir, `predictions_${config.task}.csv`);
    await writeCsvAtomic(csvPath, rows, cols);
    let sheetPath: string | null = null, sheetWhat = "";
    const shown = sheetRows(confidence);
    if (rows.length) {
      const tiles: MosaicTile[] = [];
      for (const i of shown) {
        const k = kept[i], r = rows[i];
        const thumb = await sharp(k.path).rotate().resize(IMAGE_WIDTH * 2, IMAGE_HEIGHT * 2, { fit: "contain", background: "#ffffff" }).removeAlpha().png().toBuffer();
        tiles.push({ image: thumb, caption: basename(k.filename).slice(0, 18) });
        const wrong = heads.some((h) => r[`${h}_truth`] && r[`${h}_truth`] !== r[h]);
        const label = heads.map((h) => `${r[h]} ${(r[`${h}_prob`] as number).toFixed(2)}`).join(", ");
        tiles.push({ image: { raw: crops[i], width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 }, caption: (wrong ? "WRONG " : "") + (k.faceFound ? "" : "no face: ") + label });
      }
      const first = Math.min(SHEET_FIRST, rows.length);
      sheetWhat = shown.length < rows.length
        ? `${shown.length} of ${rows.length} images: the first ${first}, then the ${shown.length - first} least confident; all in ${basename(csvPath)}`
        : `all ${rows.length} images`;
      sheetPath = join(opts.runDir, `predictions_${config.task}.png`);
      await writeFileAtomic(
        sheetPath,
        await mosaic(tiles, {
          columns: 2 * SHEET_IMAGES_PER_ROW,
          tileWidth: IMAGE_WIDTH * 2,
          tileHeight: IMAGE_HEIGHT * 2,
          title: `${config.task} predictions (image, re-framed crop: label probability), ${sheetWhat}`,
        }),
      );
    }
    const logPath = join(opts.runDir, "pred.log");
    const faceless = rows.filter((r) => !r.face_found).length;
    const lines = [
      `${new Date().toISOString()} predict ${opts.images} with ${opts.runDir} (${opts.ckpt}), detector ${opts.detector ?? "tiny"}, fill ${fill}: ` +
      `${rows.length} predicted, ${faceless} without a face, ${skipped.length} skipped; faces found at ${findRate.toFixed(1)} img/s`,
      ...rows.map((r) => `  ${r.filename}: ${r.face_found ? "" : "(no face, whole image) "}${heads.map((h) => `${h}=${r[h]} (${r[`${h}_prob`]})`).join(" ")}`),
      ...skipped.map((s) => `  SKIPPED ${s.filename}: ${s.reason}`),
      ...(sheetPath ? [`  contact sheet ${sheetPath}: ${sheetWhat}`] : []),
      ...Object.entries(scores ?? {}).map(([h, s]) => `  accuracy ${h} against ${opts.truth}: ${formatScore(s)}`),
    ];
    await appendFileAtomic(logPath, lines.join("\n") + "\n");
    if (!opts.quiet) console.log(lines.join("\n"));
    return { rows, skipped, scores, csvPath, sheetPath, sheetShown: shown.map((i) => rows[i].filename), logPath };
  } finally {
    predictor.dispose();
  }
}

/** Right/wrong per head of rows that carry `<head>_truth` (empty truth: not scored). */
function scoreRows(rows: PredictionRow[], heads: string[]): Record<string, HeadScore> {
  const out: Record<string, HeadScore> = {};
  for (const h of heads) {
    const s: HeadScore = { right: 0, wrong: 0, accuracy: NaN, faceFound: { right: 0, wrong: 0 } };
    for (const r of rows) {
      const t = r[`${h}_truth`];
      if (t === undefined || t === null) continue;
      const ok = t === r[h];
      s[ok ? "right" : "wrong"]++;
      if (r.face_found) s.faceFound[ok ? "right" : "wrong"]++;
    }
    s.accuracy = s.right / (s.right + s.wrong);
    out[h] = s;
  }
  return out;
}

/** "950/1000 right (95.0%); with a face found 940/985 (95.4%)". */
export function formatScore(s: HeadScore): string {
  const pct = (r: number, n: number) => (n ? `${((100 * r) / n).toFixed(1)}%` : "n/a");
  const n = s.right + s.wrong, nf = s.faceFound.right + s.faceFound.wrong;
  return `${s.right}/${n} right (${pct(s.right, n)}); with a face found ${s.faceFound.right}/${nf} (${pct(s.faceFound.right, nf)})`;
}
