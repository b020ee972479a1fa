/**
 * Evaluation of a trained run: `deno task evaluate --exp-name NAME
 * --ckpt best|last --split test|val|all [--dataroot DIR]`. Rebuilds the model
 * from its checkpoint (config.json travels with the weights), predicts the
 * split (or every good image of any folder in the Tiny Portraits layout), and
 * writes per head: a scikit-learn-style report (printed and in test.log), a
 * confusion-matrix heat map, calibration (ECE + reliability chart), subgroup
 * accuracy by the other attributes (bias), a mosaic of the most confident
 * mistakes; plus test_metrics.json with one entry per head. Only rows whose
 * label for that head is present are counted.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { basename, join } from "node:path";
import pl from "nodejs-polars";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { defaultSplitDir, readSplits, splitsExist, type SplitTask } from "../data/split.ts";
import { type Normalization, REFERENCE_NORMALIZATION } from "../data/batches.ts";
import { HEAD_NAMES, type HeadName, HEADS, IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";

import { predictHeads } from "../models/inference.ts";
import { ageGenderPredict } from "../faces/mod.ts";
// Registers the custom layers of every registered model, so saved models load.
import "../models/mod.ts";
import { fileIO } from "../models/io.ts";
import { readJson, resolveCheckpoint } from "../train/checkpoint.ts";
import { argmaxRows, calibration, type ClassificationReport, classificationReport, confusionChart, formatReport, metricsJson, reliabilityChart, subgroupAccuracy, worstMistakes } from "./mod.ts";
import { saveChart } from "../viz/vega.ts";
import { mosaic } from "../viz/mosaic.ts";
import { appendFileAtomic, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

export interface RunModelConfig {
  model: string;
  task: SplitTask;
  heads: Record<string, string[]>;
  normalization: Normalization;
  dataset: { name: string; root: string };
  [k: string]: unknown;
}

/** Name under which face-api's pretrained age/gender net is evaluated as a no-training gender baseline. */
export const FACEAPI_BASELINE = "faceapi_agegender";

/** Anything that maps portraits to per-head probabilities: a trained run or the face-api baseline. */
export interface Predictor {
  config: RunModelConfig;
  dir: string;
  predict(pixels: Uint8Array, rows: ArrayLike<number>): Promise<Record<string, Float32Array>>;
  dispose(): void;
}

/** Loads models/<ckpt> of a run and its config. */
export async function loadRunModel(runDir: string, ckpt: "best" | "last"): Promise<{ model: tfl.LayersModel; config: RunModelConfig; dir: string }> {
  const dir = await resolveCheckpoint(join(runDir, "models", ckpt));
  if (!dir) throw new Error(`no '${ckpt}' checkpoint in ${join(runDir, "models")}; train first (deno task train --exp-name ...)`);
  const config = await readJson<RunModelConfig>(join(dir, "config.json"));
  const model = await tfl.loadLayersModel(fileIO(dir));
  return { model, config, dir };
}

/**
 * A predictor for `runDir`: its trained model, or — when the run's name is
 * FACEAPI_BASELINE — face-api's own age/gender net (gender head only), for
 * which the run folder is created on first use.
 */
export async function loadPredictor(runDir: string, ckpt: "best" | "last", dataroot?: string): Promise<Predictor> {
  if (basename(runDir) === FACEAPI_BASELINE) {
    const config: RunModelConfig = {
      model: FACEAPI_BASELINE,
      task: "gender",
      heads: { gender: [...HEADS.gender.labels] },
      normalization: REFERENCE_NORMALIZATION,
      dataset: { name: dataroot ? basename(dataroot) : "", root: dataroot ?? "" },
      note: "face-api's pretrained age/gender net (no training), gender only",
    };
    await writeJsonAtomic(join(runDir, "config.json"), config);
    return {
      config,
      dir: runDir,
      async predict(pixels, rows) {
        const { male } = await ageGenderPredict(pixels, rows);
        const probs = new Float32Array(rows.length * 2);
        male.forEach((p, i) => (probs[2 * i] = 1 - p, probs[2 * i + 1] = p));
        return { gender: probs };
      },
      dispose() {},
    };
  }
  const { model, config, dir } = await loadRunModel(runDir, ckpt);
  return {
    config,
    dir,
    predict: (pixels, rows) => predictHeads(model, pixels, rows, { norm: config.normalization, heads: Object.keys(config.heads) }),
    dispose: () => model.dispose(),
  };
}

export interface EvaluateOptions {
  runDir: string;
  ckpt: "best" | "last";
  split: "test" | "val" | "all";
  /** Dataset to evaluate on (default: the one the run trained on). */
  dataroot?: string;
  attributes?: string;
  /** Split folder (default assets/splits/<dataset>). */
  splitDir?: string;
  quiet?: boolean;
}

export interface EvaluateResult {
  reports: Record<string, ClassificationReport>;
  metrics: ReturnType<typeof metricsJson>;
  ece: Record<string, number>;
  text: string;
  files: Record<string, string>;
  /** Accuracy of each head by the classes of each other attribute: key `<head>_by_<other>`. */
  subgroups: Record<string, pl.DataFrame>;
  rows: number;
  imgPerSec: number;
}

export async function evaluateRun(opts: EvaluateOptions): Promise<EvaluateResult> {
  const predictor = await loadPredictor(opts.runDir, opts.ckpt, opts.dataroot);
  const { config, dir } = predictor;
  try {
    const dataroot = opts.dataroot ?? config.dataset.root;
    if (!dataroot) throw new Error(`evaluate: pass --dataroot DIR for ${basename(opts.runDir)}`);
    const ds = await openDataset({ dataroot, attributes: opts.attributes, quiet: opts.quiet });
    let rows: Int32Array;
    if (opts.split === "all") rows = ds.goodRows;
    else {
      const splitDir = opts.splitDir ?? defaultSplitDir(datasetName(ds.layout));
      if (!(await splitsExist(splitDir, config.task))) throw new Error(`evaluate: no ${config.task} splits in ${splitDir}; run deno task split --dataroot ${dataroot} (or use --split all)`);
      rows = (await readSplits(splitDir, config.task, ds.attrs))[opts.split];
    }
    const heads = Object.keys(config.heads) as HeadName[];
    const t0 = performance.now();
    const probs = await predictor.predict(ds.cache.pixels, rows);
    const imgPerSec = rows.length / ((performance.now() - t0) / 1000);
    const reports: Record<string, ClassificationReport> = {};
    const ece: Record<string, number> = {};
    const files: Record<string, string> = {};
    const subgroups: Record<string, pl.DataFrame> = {};
    const lines = [`evaluation of ${dir} (${config.model}, task ${config.task}) on ${opts.split === "all" ? "all good images" : `the ${opts.split} split`} of ${ds.layout.root}: ${rows.length} rows, ${imgPerSec.toFixed(1)} img/s`];
    for (const head of heads) {
      const labels = HEADS[head].labels;
      const k = labels.length;
      const yTrue = Int32Array.from(rows, (r) => ds.attrs.labels[head][r]);
      const r = classificationReport(yTrue, probs[head], labels);
      reports[head] = r;
      lines.push("", formatReport(r, `${head} (${r.n} rows with a label)`));
      const cal = calibration(yTrue, probs[head], k);
      ece[head] = cal.ece;
      lines.push(`expected calibration error (15 bins): ${cal.ece.toFixed(4)}`);
      files[`confusion_${head}`] = (await saveChart(confusionChart(r, `${head}: confusion matrix (${opts.split})`), join(opts.runDir, `confusion_${head}`))).png;
      files[`reliability_${head}`] = (await saveChart(reliabilityChart(cal, `${head}: reliability (${opts.split})`), join(opts.runDir, `reliability_${head}`))).png;
      // Bias: accuracy of this head within each class of the other attributes.
      const pred = argmaxRows(probs[head], k);
      for (const other of HEAD_NAMES.filter((h) => h !== head)) {
        const groups = Int32Array.from(rows, (row) => ds.attrs.labels[other][row]);
        const df = subgroupAccuracy(yTrue, pred, groups, HEADS[other].labels);
        const p = join(opts.runDir, `subgroups_${head}_by_${other}.csv`);
        await writeFileAtomic(p, df.writeCSV().toString());
        files[`subgroups_${head}_by_${other}`] = p;
        subgroups[`${head}_by_${other}`] = df;
        lines.push("", `${head} accuracy by ${other}:`, df.toString());
      }
      const worst = worstMistakes(yTrue, probs[head], k, 32);
      if (worst.length) {
        const tiles = worst.map((m) => ({
          image: { raw: ds.cache.pixels.subarray(rows[m.row] * IMAGE_BYTES, (rows[m.row] + 1) * IMAGE_BYTES), width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 as const },
          caption: `${labels[m.trueLabel]}→${labels[m.predLabel]} ${m.confidence.toFixed(2)}`,
        }));
        files[`mistakes_${head}`] = join(opts.runDir, `mistakes_${head}.png`);
        await writeFileAtomic(files[`mistakes_${head}`], await mosaic(tiles, { columns: 8, title: `${head}: most confident mistakes (true→predicted, confidence)` }));
      }
    }
    const metrics = metricsJson(reports);
    const name = opts.split === "test" ? "test_metrics.json" : `${opts.split}_metrics.json`;
    await writeJsonAtomic(files.metrics = join(opts.runDir, name), metrics);
    const text = lines.join("\n");
    const logPath = join(opts.runDir, "test.log");
    await appendFileAtomic(logPath, `${new Date().toISOString()}\n${text}\n\n`);
    files.log = logPath;
    return { reports, metrics, ece, text, files, subgroups, rows: rows.length, imgPerSec };
  } finally {
    predictor.dispose();
  }
}

/** One row per head: model, head, accuracy, macro_f1 (for comparison tables). */
export function metricsFrame(model: string, metrics: ReturnType<typeof metricsJson>): pl.DataFrame {
  return pl.DataFrame(Object.entries(metrics).map(([head, m]) => ({ model, label: head, accuracy: m.accuracy, macro_f1: m.macro_f1 })));
}

