/**
 * Evaluation of a trained run: `deno task evaluate --exp-name NAME
 * --ckpt best|last --split test|val|all [--dataroot DIR]`. Rebuilds the model
 * from its checkpoint (config.json travels with the weights), predicts the
 * split (or every good image of any folder in the Tiny Portraits layout), and
 * writes per head: a scikit-learn-style report (printed and in test.log), a
 * confusion-matrix heat map, calibration (ECE + reliability chart), subgroup
 * accuracy by the other attributes (bias), a mosaic of the most confident
 * mistakes; plus test_metrics.json with one entry per head. Only rows whose
 * label for that head is present are counted. Small test sets get error bars:
 * 95% bootstrap intervals (1,000 seeded resamples of the rows) for accuracy,
 * macro-F1 and every class's F1. With `--face-check` face-api's tiny
 * detector looks for a face in every evaluated portrait and each head's
 * accuracy is also reported for face found / no face found. The summary at
 * the end of the text names the worst subgroup (lowest accuracy among
 * subgroups with at least 10 rows).
 */
import { writeCsvAtomic } from "../util/csv.ts";
import type * as tfl from "@tensorflow/tfjs-layers";
import { basename, join } from "node:path";
import pl from "nodejs-polars";
import { type Dataset, openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { defaultSplitDir, readSplits, splitsExist, type SplitTask } from "../data/split.ts";
import { type Normalization, REFERENCE_NORMALIZATION } from "../data/batches.ts";
import { HEAD_NAMES, type HeadName, HEADS, IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";

import { predictHeads, type TtaMode } from "../models/inference.ts";
import { ageGenderPredict, detectFaces } from "../faces/mod.ts";
import { disposeModel, loadSavedModel } from "../models/mod.ts";
import { resolveCheckpoint } from "../models/io.ts";
import {
  argmaxRows,
  type BootstrapIntervals,
  bootstrapIntervals,
  type BootstrapOptions,
  bootstrapProportion,
  calibration,
  type ClassificationReport,
  classificationReport,
  confusionChart,
  formatInterval,
  formatIntervals,
  formatReport,
  type HeadMetricsExtras,
  metricsJson,
  reliabilityChart,
  subgroupAccuracy,
  WORST_SUBGROUP_MIN_ROWS,
  type WorstSubgroup,
  worstMistakes,
  worstSubgroup,
} from "./mod.ts";
import { checkJointHeads, type Joint, jointBald, type JointMode } from "./joint.ts";
import { applyDecisionBias, crossFitDecisionBias, DECISION_BIAS_FILE, type DecisionBiasFile, type DecisionBiasMode, fitDecisionBias, readDecisionBias, writeDecisionBias } from "./decision.ts";
import { saveChart } from "../viz/vega.ts";
import { withRunLock } from "../util/run_dir.ts";
import { mosaic } from "../viz/mosaic.ts";
import { appendFileAtomic, readJson, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { UserError } from "../util/errors.ts";

export interface RunModelConfig {
  model: string;
  task: SplitTask;
  heads: Record<string, string[]>;
  normalization: Normalization;
  dataset: { name: string; root: string };
  /** Test-time augmentation the run was selected with (absent in older runs: none). */
  tta?: TtaMode;
  [k: string]: unknown;
}

/** Name under which face-api's pretrained age/gender net is evaluated as a no-training gender baseline. */
export const FACEAPI_BASELINE = "faceapi_agegender";

/** Anything that maps portraits to per-head probabilities: a trained run or the face-api baseline. */
export interface Predictor {
  config: RunModelConfig;
  dir: string;
  /** Decision biases applied to each head's probabilities (decision_bias.json); empty when none. */
  decisionBias?: Record<string, number[]>;
  /** "faceapi": the gender head is averaged with face-api's age/gender net. */
  ensemble?: Ensemble;
  /** "bald": the hair-colour head's baldness joined with the hair-type head's (lib/eval/joint.ts). */
  joint?: Joint;
  predict(pixels: Uint8Array, rows: ArrayLike<number>): Promise<Record<string, Float32Array>>;
  dispose(): void;
}

/** Loads models/<ckpt> of a run and its config. */
export async function loadRunModel(runDir: string, ckpt: "best" | "last"): Promise<{ model: tfl.LayersModel; config: RunModelConfig; dir: string }> {
  const dir = await resolveCheckpoint(join(runDir, "models", ckpt));
  if (!dir) throw new UserError(`no '${ckpt}' checkpoint in ${join(runDir, "models")}; train first (deno task train --exp-name ...)`);
  const config = await readJson<RunModelConfig>(join(dir, "config.json"));
  const model = await loadSavedModel(dir);
  return { model, config, dir };
}

/**
 * A predictor for `runDir`: its trained model, or — when the run's name is
 * FACEAPI_BASELINE — face-api's own age/gender net (gender head only), for
 * which the run folder is created on first use.
 */
export interface PredictorOptions {
  /** The dataset folder, for the face-api baseline's config. */
  dataroot?: string;
  /** Test-time augmentation (default: the run's own). */
  tta?: TtaMode;
  /** "auto" (default): apply the run's decision_bias.json when it was fitted for this checkpoint; "none": plain arg-max. */
  decisionBias?: DecisionBiasMode;
  /** "auto" (default): the run's own ensemble (config.json `ensemble`); "faceapi": force it on; "none": the trained net alone. */
  ensemble?: EnsembleMode;
  /** "auto" (default): as the applied decision biases were fitted, else the run's own (config.json `joint`); "bald" or "none" (lib/eval/joint.ts). */
  joint?: JointMode;
}

export type EnsembleMode = "auto" | Ensemble;

/** Ensembles a run can ask for: "faceapi" averages its gender head with face-api's pretrained age/gender net (equal weights). */
export const ENSEMBLES = ["faceapi", "none"] as const;
export type Ensemble = typeof ENSEMBLES[number];

/** probs (n×2, [female, male]) averaged with face-api's age/gender net on the same portraits. */
async function withFaceapiGender(probs: Float32Array, pixels: Uint8Array, rows: ArrayLike<number>): Promise<Float32Array> {
  const { male } = await ageGenderPredict(pixels, rows);
  const out = new Float32Array(probs.length);
  male.forEach((p, i) => {
    out[2 * i + 1] = 0.5 * probs[2 * i + 1] + 0.5 * p;
    out[2 * i] = 1 - out[2 * i + 1];
  });
  return out;
}

export async function loadPredictor(runDir: string, ckpt: "best" | "last", opts: PredictorOptions = {}): Promise<Predictor> {
  const { dataroot, tta } = opts;
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
  const file = (opts.decisionBias ?? "auto") === "auto" ? await readDecisionBias(runDir) : null;
  const biases: Record<string, number[]> = {};
  if (file && file.ckpt === ckpt) {
    for (const [head, h] of Object.entries(file.heads)) {
      const labels = config.heads[head];
      if (!labels || labels.join() !== h.labels.join()) throw new UserError(`${join(runDir, DECISION_BIAS_FILE)}: head '${head}' does not match the run's labels; delete the file or refit it with deno task calibrate`);
      if (h.bias.some((b) => b !== 0)) biases[head] = h.bias;
    }
  }
  const mode = opts.ensemble ?? "auto";
  const ensemble: Ensemble = mode === "auto" ? (config.ensemble as Ensemble | undefined) ?? "none" : mode;
  if (ensemble === "faceapi" && !("gender" in config.heads)) throw new UserError(`--ensemble faceapi averages the gender head; ${runDir} has none (${Object.keys(config.heads).join(", ")})`);
  // The biases were fitted on the probabilities of one joint decoding (absent in older files: none); they only
  // make sense with that one.
  const fittedJoint: Joint | null = Object.keys(biases).length ? file!.joint ?? "none" : null;
  const jointMode = opts.joint ?? "auto";
  const joint: Joint = jointMode !== "auto" ? jointMode : fittedJoint ?? (config.joint as Joint | undefined) ?? "none";
  if (fittedJoint !== null && joint !== fittedJoint) {
    throw new UserError(`${join(runDir, DECISION_BIAS_FILE)} was fitted with joint decoding '${fittedJoint}', not '${joint}'; refit it with deno task calibrate --exp-name ${basename(runDir)} --joint ${joint}, or pass --decision-bias none`);
  }
  if (joint === "bald") checkJointHeads(config.heads, runDir);
  return {
    config,
    dir,
    decisionBias: biases,
    ensemble,
    joint,
    async predict(pixels, rows) {
      const probs = await predictHeads(model, pixels, rows, { norm: config.normalization, heads: Object.keys(config.heads), tta: tta ?? config.tta ?? "none" });
      if (ensemble === "faceapi") probs.gender = await withFaceapiGender(probs.gender, pixels, rows);
      if (joint === "bald") probs.hair_color = jointBald(probs.hair_color, config.heads.hair_color, probs.hair_type, config.heads.hair_type);
      for (const [head, b] of Object.entries(biases)) probs[head] = applyDecisionBias(probs[head], b.length, b);
      return probs;
    },
    dispose: () => disposeModel(model),
  };
}

/**
 * The dataset a run is evaluated on (`dataroot`, default the one it trained on) and the rows of one of its
 * splits (or every good image with "all"), leaving out rows whose images are no longer usable.
 */
async function openSplitRows(
  command: string,
  runDir: string,
  config: RunModelConfig,
  split: "train" | "val" | "test" | "all",
  o: { dataroot?: string; attributes?: string; splitDir?: string; cacheDir?: string; quiet?: boolean; dataset?: Dataset },
): Promise<{ ds: Dataset; dataroot: string; rows: Int32Array }> {
  const dataroot = o.dataroot ?? config.dataset.root;
  if (!dataroot) throw new UserError(`${command}: pass --dataroot DIR for ${basename(runDir)}`);
  const ds = o.dataset ?? await openDataset({ dataroot, attributes: o.attributes, cacheDir: o.cacheDir, quiet: o.quiet });
  if (split === "all") return { ds, dataroot, rows: ds.goodRows };
  const splitDir = o.splitDir ?? defaultSplitDir(datasetName(ds.layout));
  if (!(await splitsExist(splitDir, config.task))) {
    throw new UserError(`${command}: no ${config.task} splits in ${splitDir}; run deno task split --dataroot ${dataroot}${command === "evaluate" ? " (or use --split all)" : ""}`);
  }
  return { ds, dataroot, rows: (await readSplits(splitDir, config.task, ds.attrs, { usable: ds.goodRows }))[split] };
}

export interface CalibrateOptions {
  runDir: string;
  ckpt?: "best" | "last";
  dataroot?: string;
  attributes?: string;
  splitDir?: string;
  /** Cache folder (default: resolveCacheDir in lib/data/cache.ts). */
  cacheDir?: string;
  /** Heads to fit (default: every head with more than two classes; on tp_real the fit lowered gender's test accuracy in both runs it was tried on). */
  heads?: string[];
  quiet?: boolean;
  /** The dataset already open (train's calibration pass): used instead of opening `dataroot` again. */
  dataset?: Dataset;
  /** Joint decoding to fit the biases under ("auto", the default: the run's own; lib/eval/joint.ts). */
  joint?: JointMode;
}

/**
 * Fits the run's decision biases on its validation split (arg-max macro-F1, see decision.ts) for
 * the chosen heads and writes `<run>/decision_bias.json`; evaluate and predict apply them from then on.
 */
export async function calibrateRun(opts: CalibrateOptions): Promise<{ file: DecisionBiasFile; path: string; text: string }> {
  return await withRunLock(opts.runDir, "calibrate", () => calibrateLocked(opts), { quiet: opts.quiet, create: false });
}

async function calibrateLocked(opts: CalibrateOptions): Promise<{ file: DecisionBiasFile; path: string; text: string }> {
  const ckpt = opts.ckpt ?? "best";
  const predictor = await loadPredictor(opts.runDir, ckpt, { dataroot: opts.dataroot, decisionBias: "none", joint: opts.joint });
  try {
    const { config } = predictor;
    // The heads are checked before anything is opened or predicted.
    const chosen = opts.heads ?? Object.keys(config.heads).filter((h) => config.heads[h].length > 2);
    for (const h of chosen) if (!(h in config.heads)) throw new UserError(`calibrate: the run has no head '${h}'; its heads are ${Object.keys(config.heads).join(", ")}`);
    if (chosen.length === 0) throw new UserError(`calibrate: ${opts.runDir} has only two-class heads (${Object.keys(config.heads).join(", ")}); name them with --heads to fit them anyway`);
    const { ds, rows } = await openSplitRows("calibrate", opts.runDir, config, "val", opts);
    const probs = await predictor.predict(ds.cache.pixels, rows);
    const file: DecisionBiasFile = { ckpt, split: "val", tta: config.tta ?? "none", joint: predictor.joint ?? "none", heads: {}, createdAt: new Date().toISOString() };
    const jointNote = predictor.joint === "bald" ? " (hair colour joined with the hair-type head's baldness)" : "";
    const lines = [`decision biases of ${opts.runDir} (${ckpt}) fitted on ${rows.length} validation rows${jointNote}:`];
    for (const head of chosen as HeadName[]) {
      const labels = config.heads[head];
      const yTrue = Int32Array.from(rows, (r) => ds.attrs.labels[head][r]);
      const fit = fitDecisionBias(yTrue, probs[head], labels.length);
      const cross = crossFitDecisionBias(yTrue, probs[head], labels.length);
      file.heads[head] = {
        labels, bias: fit.bias, val_macro_f1_before: fit.before, val_macro_f1_after: fit.after,
        val_macro_f1_crossfit: { mean: cross.mean, sd: cross.sd, plain: cross.plain }, rows: fit.n,
      };
      lines.push(`  ${head}: ${labels.map((l, i) => `${l} ${fit.bias[i] >= 0 ? "+" : ""}${fit.bias[i].toFixed(1)}`).join(", ")}; validation macro-F1 ${fit.before.toFixed(4)} → ${fit.after.toFixed(4)}` +
        `; held out (fitted on one half, scored on the other, ${cross.fits} fits): ${cross.plain.toFixed(4)} → ${cross.mean.toFixed(4)} ± ${cross.sd.toFixed(4)}`);
    }
    const path = await writeDecisionBias(opts.runDir, file);
    lines.push(`written: ${path}`);
    return { file, path, text: lines.join("\n") };
  } finally {
    predictor.dispose();
  }
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
  /** Cache folder (default: resolveCacheDir in lib/data/cache.ts). */
  cacheDir?: string;
  quiet?: boolean;
  /** Test-time augmentation instead of the run's own (config.json `tta`). */
  tta?: TtaMode;
  /** "auto" (default): apply the run's decision_bias.json; "none": plain arg-max. */
  decisionBias?: DecisionBiasMode;
  /** "auto" (default): the run's own ensemble; "faceapi": force it on; "none": the trained net alone. */
  ensemble?: EnsembleMode;
  /** "auto" (default): as the decision biases were fitted, else the run's own; "bald" or "none" (lib/eval/joint.ts). */
  joint?: JointMode;
  /** Bootstrap settings for the intervals (default 1,000 resamples, seed 1, 95%). */
  bootstrap?: BootstrapOptions;
  /** Run face-api's tiny detector on every evaluated portrait and report accuracy for face found / not found (default false). */
  faceCheck?: boolean;
  /** Lowest detector score that counts as a face found (default 0.5, the detector's own default). */
  faceMinScore?: number;
  /** Smallest subgroup that can be named the worst (default WORST_SUBGROUP_MIN_ROWS = 10). */
  worstMinRows?: number;
}

/** Group labels of the face-check table `<head>_by_face`: group 0 = a face was found, 1 = none. */
export const FACE_GROUPS = ["face found", "no face found"] as const;

/**
 * Face check of portraits: face-api's tiny detector on each row of `pixels` (108×84, padded as
 * detectFaces does for thumbnails), with a progress bar. Returns each row's best detector score
 * (0 when nothing scored at least 0.01) and its group: 0 when the score reaches `minScore`, else 1.
 */
export async function faceCheck(pixels: Uint8Array, rows: ArrayLike<number>, opts: { minScore?: number; quiet?: boolean } = {}): Promise<{ score: Float32Array; group: Int32Array }> {
  const minScore = opts.minScore ?? 0.5;
  if (!(minScore > 0 && minScore <= 1)) throw new Error(`faceCheck: expected minScore in (0, 1], got ${minScore}`);
  const score = new Float32Array(rows.length);
  const group = new Int32Array(rows.length);
  const progress = new Progress("face check", rows.length, { unit: "img", quiet: opts.quiet });
  for (let i = 0; i < rows.length; i++) {
    const faces = await detectFaces(pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES), IMAGE_WIDTH, IMAGE_HEIGHT, { detector: "tiny", minScore: 0.01 });
    score[i] = faces.reduce((m, f) => Math.max(m, f.score), 0);
    group[i] = score[i] >= minScore ? 0 : 1;
    progress.tick();
  }
  progress.finish(`${group.filter((g) => g === 0).length} with a face (score ≥ ${minScore})`);
  return { score, group };
}

export interface EvaluateResult {
  reports: Record<string, ClassificationReport>;
  metrics: ReturnType<typeof metricsJson>;
  ece: Record<string, number>;
  text: string;
  files: Record<string, string>;
  /**
   * Accuracy of each head by the classes of each other attribute: key `<head>_by_<other>`; with
   * `faceCheck` also `<head>_by_face` (groups FACE_GROUPS).
   */
  subgroups: Record<string, pl.DataFrame>;
  /** Bootstrap intervals of accuracy, macro-F1 and per-class F1, per head. */
  intervals: Record<string, BootstrapIntervals>;
  /** The lowest-accuracy subgroup with at least `worstMinRows` rows across every subgroup table, with its interval; null when none is that large. */
  worstSubgroup: WorstSubgroup | null;
  rows: number;
  imgPerSec: number;
}

/** Evaluates a run holding its folder's lock (one writer per run folder). */
export async function evaluateRun(opts: EvaluateOptions): Promise<EvaluateResult> {
  return await withRunLock(opts.runDir, "evaluate", () => evaluateLocked(opts), { quiet: opts.quiet, create: basename(opts.runDir) === FACEAPI_BASELINE });
}

async function evaluateLocked(opts: EvaluateOptions): Promise<EvaluateResult> {
  const s = opts.faceMinScore, m = opts.worstMinRows;
  if (s !== undefined && !(s > 0 && s <= 1)) throw new UserError(`evaluate: expected --face-min-score in (0, 1], got ${s}`);
  if (m !== undefined && !(Number.isInteger(m) && m >= 1)) throw new Error(`evaluate: expected worstMinRows to be a positive integer, got ${m}`);
  const predictor = await loadPredictor(opts.runDir, opts.ckpt, { dataroot: opts.dataroot, tta: opts.tta, decisionBias: opts.decisionBias, ensemble: opts.ensemble, joint: opts.joint });
  const { config, dir } = predictor;
  try {
    const { ds, rows } = await openSplitRows("evaluate", opts.runDir, config, opts.split, opts);
    const heads = Object.keys(config.heads) as HeadName[];
    const t0 = performance.now();
    const probs = await predictor.predict(ds.cache.pixels, rows);
    const imgPerSec = rows.length / ((performance.now() - t0) / 1000);
    const reports: Record<string, ClassificationReport> = {};
    const ece: Record<string, number> = {};
    const files: Record<string, string> = {};
    const subgroups: Record<string, pl.DataFrame> = {};
    const bootstrap = opts.bootstrap ?? {};
    const minRows = opts.worstMinRows ?? WORST_SUBGROUP_MIN_ROWS;
    const intervals: Record<string, BootstrapIntervals> = {};
    const extras: Record<string, HeadMetricsExtras> = {};
    const faces = opts.faceCheck ? await faceCheck(ds.cache.pixels, rows, { minScore: opts.faceMinScore, quiet: opts.quiet }) : null;
    if (faces) {
      const p = join(opts.runDir, `face_check_${opts.split}.csv`);
      const indices = Array.from(rows, (r) => ds.attrs.index[r]);
      await writeCsvAtomic(p, indices.map((ix, i) => ({ index: ix, face_score: Number(faces.score[i].toFixed(4)), face_found: faces.group[i] === 0 })));
      files.face_check = p;
    }
    const withCi = (w: WorstSubgroup | null): WorstSubgroup | null => (w ? { ...w, accuracy_ci: bootstrapProportion(w.correct, w.n, bootstrap) } : null);
    const lines = [`evaluation of ${dir} (${config.model}, task ${config.task}, test-time augmentation ${opts.tta ?? config.tta ?? "none"}) on ${opts.split === "all" ? "all good images" : `the ${opts.split} split`} of ${ds.layout.root}: ${rows.length} rows, ${imgPerSec.toFixed(1)} img/s`];
    if (predictor.ensemble === "faceapi") lines.push("gender: averaged with face-api's pretrained age/gender net (--ensemble none for the trained net alone)");
    if (predictor.joint === "bald") lines.push("hair_color: 'bald' joined with the hair-type head's baldness (--joint none for each head alone)");
    const biased = Object.entries(predictor.decisionBias ?? {});
    if (biased.length) lines.push(`decision biases (${DECISION_BIAS_FILE}, fitted on the validation split; --decision-bias none for plain arg-max): ${biased.map(([h, b]) => `${h} [${b.map((x) => x.toFixed(1)).join(", ")}]`).join("; ")}`);
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
      intervals[head] = bootstrapIntervals(yTrue, probs[head], labels, bootstrap);
      lines.push(formatIntervals(r, intervals[head]));
      files[`confusion_${head}`] = (await saveChart(confusionChart(r, `${head}: confusion matrix (${opts.split})`), join(opts.runDir, `confusion_${head}`))).png;
      files[`reliability_${head}`] = (await saveChart(reliabilityChart(cal, `${head}: reliability (${opts.split})`), join(opts.runDir, `reliability_${head}`))).png;
      // Bias: accuracy of this head within each class of the other attributes.
      const pred = argmaxRows(probs[head], k);
      const tables: [string, Int32Array, readonly string[]][] = HEAD_NAMES.filter((h) => h !== head)
        .map((other) => [other, Int32Array.from(rows, (row) => ds.attrs.labels[other][row]), HEADS[other].labels]);
      if (faces) tables.push(["face", faces.group, FACE_GROUPS]);
      const headTables: Record<string, pl.DataFrame> = {};
      for (const [other, groups, groupLabels] of tables) {
        const df = subgroupAccuracy(yTrue, pred, groups, groupLabels);
        const p = join(opts.runDir, `subgroups_${head}_by_${other}.csv`);
        await writeFileAtomic(p, df.writeCSV().toString());
        files[`subgroups_${head}_by_${other}`] = p;
        subgroups[`${head}_by_${other}`] = headTables[`${head}_by_${other}`] = df;
        lines.push("", `${head} accuracy by ${other === "face" ? "face found (face-api tiny detector)" : other}:`, df.toString());
      }
      extras[head] = { intervals: intervals[head], worstSubgroup: withCi(worstSubgroup(headTables, minRows)), decisionBias: predictor.decisionBias?.[head], ensemble: head === "gender" && predictor.ensemble === "faceapi" ? "faceapi" : undefined, joint: head === "hair_color" && predictor.joint === "bald" ? "bald" : undefined };
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
    const metrics = metricsJson(reports, extras);
    const worst = withCi(worstSubgroup(subgroups, minRows));
    lines.push("", "summary:");
    const width = Math.max(...heads.map((h) => h.length));
    for (const head of heads) {
      const r = reports[head], ci = intervals[head];
      lines.push(`  ${head.padEnd(width)}  accuracy ${formatInterval(r.accuracy, ci.accuracy)}  macro-F1 ${formatInterval(r.macro.f1, ci.macroF1)}  (${r.n} rows)`);
    }
    lines.push(worst
      ? `  worst subgroup (≥ ${minRows} rows): ${describeSubgroup(worst)}: ${formatInterval(worst.accuracy, worst.accuracy_ci!)} (${worst.correct}/${worst.n} rows)`
      : `  worst subgroup: none (no subgroup has ≥ ${minRows} rows)`);
    const name = opts.split === "test" ? "test_metrics.json" : `${opts.split}_metrics.json`;
    await writeJsonAtomic(files.metrics = join(opts.runDir, name), metrics);
    const text = lines.join("\n");
    const logPath = join(opts.runDir, "test.log");
    await appendFileAtomic(logPath, `${new Date().toISOString()}\n${text}\n\n`);
    files.log = logPath;
    return { reports, metrics, ece, text, files, subgroups, intervals, worstSubgroup: worst, rows: rows.length, imgPerSec };
  } finally {
    predictor.dispose();
  }
}

/**
 * "hair_color accuracy where hair_type = bald" for table `hair_color_by_hair_type`, group `bald`;
 * "gender accuracy where face check = no face found" for `gender_by_face`.
 */
export function describeSubgroup(w: Pick<WorstSubgroup, "table" | "group">): string {
  const at = w.table.indexOf("_by_");
  if (at < 0) return `${w.table} = ${w.group}`;
  const by = w.table.slice(at + 4);
  return `${w.table.slice(0, at)} accuracy where ${by === "face" ? "face check" : by} = ${w.group}`;
}

/**
 * One row per head: model, head, accuracy, macro_f1 (for comparison tables); plus accuracy_lo,
 * accuracy_hi, macro_f1_lo, macro_f1_hi (bootstrap interval) when every head has them.
 */
export function metricsFrame(model: string, metrics: ReturnType<typeof metricsJson>): pl.DataFrame {
  const entries = Object.entries(metrics);
  const withCi = entries.length > 0 && entries.every(([, m]) => m.accuracy_ci && m.macro_f1_ci);
  return pl.DataFrame(entries.map(([head, m]) => ({
    model,
    label: head,
    accuracy: m.accuracy,
    macro_f1: m.macro_f1,
    ...(withCi ? { accuracy_lo: m.accuracy_ci![0], accuracy_hi: m.accuracy_ci![1], macro_f1_lo: m.macro_f1_ci![0], macro_f1_hi: m.macro_f1_ci![1] } : {}),
  })));
}

