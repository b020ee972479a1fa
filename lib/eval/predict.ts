/**
 * Prediction on images from other sources: `deno task predict --exp-name NAME
 * --images DIR [--ckpt best]`. Every file is read with sharp (jpg/png/webp/…,
 * any size, colour or grey); the face is found with face-api's detector and
 * re-framed like a Tiny Portrait (head and hair inside 108×84); with no face the
 * whole image is used and the row says so. Unreadable files are reported and
 * skipped. Writes predictions_<task>.csv (filename, face_found, <head>,
 * <head>_prob per head), pred.log and a contact sheet (image, crop, prediction).
 */
import { basename, extname, join } from "node:path";
import sharp from "sharp";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { portraitFromImage } from "../faces/mod.ts";
import { loadPredictor } from "./evaluate.ts";
import { argmaxRows } from "./report.ts";
import { mosaic, type MosaicTile } from "../viz/mosaic.ts";
import { appendFileAtomic, csvField, writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".avif", ".bmp"];

export interface PredictOptions {
  runDir: string;
  images: string;
  ckpt: "best" | "last";
  detector?: "ssd" | "tiny";
  quiet?: boolean;
}

export interface PredictionRow {
  filename: string;
  face_found: boolean;
  [head: string]: string | number | boolean;
}

export interface PredictResult {
  rows: PredictionRow[];
  skipped: { filename: string; reason: string }[];
  csvPath: string;
  sheetPath: string | null;
  logPath: string;
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())) out.push(e.name);
  } catch {
    throw new Error(`predict: --images ${dir} is not a readable folder`);
  }
  if (!out.length) throw new Error(`predict: no image files (${IMAGE_EXTENSIONS.join(" ")}) in ${dir}`);
  return out.sort();
}

export async function predictFolder(opts: PredictOptions): Promise<PredictResult> {
  const predictor = await loadPredictor(opts.runDir, opts.ckpt);
  const { config } = predictor;
  try {
    const files = await listImages(opts.images);
    const crops: Uint8Array[] = [];
    const kept: { filename: string; faceFound: boolean; path: string }[] = [];
    const skipped: { filename: string; reason: string }[] = [];
    const progress = new Progress("find faces", files.length, { unit: "img", quiet: opts.quiet });
    for (const f of files) {
      const path = join(opts.images, f);
      try {
        const p = await portraitFromImage(path, { detector: opts.detector ?? "ssd" });
        crops.push(p.pixels);
        kept.push({ filename: f, faceFound: p.faceFound, path });
      } catch (err) {
        skipped.push({ filename: f, reason: (err as Error).message });
      }
      progress.tick();
    }
    progress.finish(skipped.length ? `(${skipped.length} unreadable, skipped)` : "");
    const pixels = new Uint8Array(crops.length * IMAGE_BYTES);
    crops.forEach((c, i) => pixels.set(c, i * IMAGE_BYTES));
    const heads = Object.keys(config.heads);
    const probs = crops.length ? await predictor.predict(pixels, Array.from(crops.keys())) : {};
    const preds = Object.fromEntries(heads.map((h) => [h, crops.length ? argmaxRows(probs[h], config.heads[h].length) : new Int32Array(0)]));
    const rows: PredictionRow[] = kept.map((k, i) => {
      const row: PredictionRow = { filename: k.filename, face_found: k.faceFound };
      for (const h of heads) {
        const labels = config.heads[h], best = preds[h][i];
        row[h] = labels[best];
        row[`${h}_prob`] = Number(probs[h][i * labels.length + best].toFixed(4));
      }
      return row;
    });
    const cols = ["filename", "face_found", ...heads.flatMap((h) => [h, `${h}_prob`])];
    const csvPath = join(opts.runDir, `predictions_${config.task}.csv`);
    await writeFileAtomic(csvPath, [cols.join(","), ...rows.map((r) => cols.map((c) => csvField(r[c])).join(","))].join("\n") + "\n");
    let sheetPath: string | null = null;
    if (rows.length) {
      const tiles: MosaicTile[] = [];
      for (const [i, k] of kept.entries()) {
        const thumb = await sharp(k.path).rotate().resize(IMAGE_WIDTH * 2, IMAGE_HEIGHT * 2, { fit: "contain", background: "#ffffff" }).removeAlpha().png().toBuffer();
        tiles.push({ image: thumb, caption: basename(k.filename).slice(0, 18) });
        const label = heads.map((h) => `${rows[i][h]} ${(rows[i][`${h}_prob`] as number).toFixed(2)}`).join(", ");
        tiles.push({ image: { raw: crops[i], width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 }, caption: (k.faceFound ? "" : "no face: ") + label });
      }
      sheetPath = join(opts.runDir, `predictions_${config.task}.png`);
      await writeFileAtomic(sheetPath, await mosaic(tiles, { columns: 6, tileWidth: IMAGE_WIDTH * 2, tileHeight: IMAGE_HEIGHT * 2, title: `${config.task} predictions (image, re-framed crop: label probability)` }));
    }
    const logPath = join(opts.runDir, "pred.log");
    const lines = [
      `${new Date().toISOString()} predict ${opts.images} with ${opts.runDir} (${opts.ckpt}): ${rows.length} predicted, ${rows.filter((r) => !r.face_found).length} without a face, ${skipped.length} skipped`,
      ...rows.map((r) => `  ${r.filename}: ${r.face_found ? "" : "(no face, whole image) "}${heads.map((h) => `${h}=${r[h]} (${r[`${h}_prob`]})`).join(" ")}`),
      ...skipped.map((s) => `  SKIPPED ${s.filename}: ${s.reason}`),
    ];
    await appendFileAtomic(logPath, lines.join("\n") + "\n");
    if (!opts.quiet) console.log(lines.join("\n"));
    return { rows, skipped, csvPath, sheetPath, logPath };
  } finally {
    predictor.dispose();
  }
}
