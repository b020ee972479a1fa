/**
 * The seconds-fast baseline: face-api's face-recognition ResNet, frozen, run once over every good
 * portrait of a dataset (its 128-D descriptors cached beside the pixel cache by
 * lib/data/feature_cache.ts), and a small head per task head trained on the cached descriptors in
 * seconds. The run folder is an ordinary one: the saved model is the whole network (backbone +
 * trained heads, output names = head names), so `deno task evaluate` and `deno task predict` use it
 * unchanged.
 *
 *   deno task train --dataroot DIR --task gender --model face_descriptors --exp-name desc_gender
 *   deno task evaluate --exp-name desc_gender
 *
 * trainRun (lib/train/run.ts) hands `--model face_descriptors` to `trainDescriptorHead`.
 * Descriptors: by default the face ResNet's crop "both" (lib/models/face_resnet.ts): the aligned face
 * square and the whole portrait (hair included) through the one frozen net, the two 128-D
 * descriptors concatenated ([b,256]); each view is cached on its own, so one-view runs reuse it.
 * Measured on tp_real (README): both views beat either view alone on hair colour and hair type and
 * tie the aligned view on gender; alone, the aligned view beats the portrait view even for hair
 * colour (the frozen net was trained on aligned faces).
 * Head: one hidden ReLU layer (registry default: 256 units, dropout 0.3) or linear (softmax
 * regression, headHidden 0), on descriptors standardised with the training rows' mean / std (folded
 * into the head's first layer when saved); Adam with decoupled weight decay (AdamW), mini-batches
 * of --batch-size (a batch ≥ the training rows is full-batch), warm-up + cosine learning rate as the
 * Trainer; early stopping on validation macro-F1 (mean over heads). Imbalance: inverse-frequency
 * class weights in the loss (single task with --sampling weighted, the default, and multitask);
 * missing labels are masked (maskedSoftmaxCrossEntropy).
 * modelOverrides: headHidden, headDropout, weightDecay; the other keys (crop "aligned" | "portrait"
 * | "both", …) go to the face ResNet's config.
 * Not used: --augment and --tta (the head learns and is chosen on descriptors of the portraits as
 * they are; the saved config says tta "none", so evaluate / predict run without it) and --resume (a run
 * takes seconds; train it again under another name).
 *
 * Tests: deno test -A tests/train/descriptor_head_test.ts
 */
import type { RunData } from "./_run_data.ts";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { makeBatch } from "../data/batches.ts";
import { type FeatureCache, type FeatureExtractor, loadFeatureCache } from "../data/feature_cache.ts";
import { HEADS, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { TASK_HEADS } from "../data/split.ts";
import { engineChoice } from "../engine/mod.ts";
import { adam } from "../engine/adam.ts";
import { classificationReport, learningCurveChart } from "../eval/mod.ts";
import { type PixelCache } from "../data/cache.ts";
import { cropViews, FACE_API_MEAN_RGB, FACE_RESNET_INPUT_SIZE, type FaceResnetConfig, faceResnetCropBox } from "../models/face_resnet.ts";
import { attachHeads } from "../models/heads.ts";
import { disposeModel, modelEntry } from "../models/mod.ts";
import { mergeDefined } from "../util/merge.ts";
import { saveChart } from "../viz/vega.ts";
import { appendFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { Rng } from "../util/rng.ts";
import { saveCheckpoint } from "./checkpoint.ts";
import { maskedSoftmaxCrossEntropy } from "./losses.ts";
import type { TrainConfig, TrainRunResult } from "./run.ts";
import { classificationTask } from "./tasks.ts";
import { type EpochMetrics, learningRate, type TrainTask } from "./trainer.ts";
import { UserError } from "../util/errors.ts";
import { TASKS } from "../data/tasks.ts";
import { writeCsvAtomic } from "../util/csv.ts";

/** Registry name of the baseline (lib/models/mod.ts). */
export const DESCRIPTOR_MODEL = "face_descriptors";

export interface DescriptorHeadConfig {
  /** Hidden ReLU units before each head's classifier (0 = linear softmax regression). */
  hidden: number;
  /** Dropout on what each head's classifier sees (training only). */
  dropout: number;
  /** Decoupled weight decay on the kernels per step: w ← w·(1 − lr·weightDecay). */
  weightDecay: number;
}

/** Defaults: the registry's head size and dropout (lib/models/mod.ts), weight decay 1e-4. */
export function defaultDescriptorHeadConfig(): DescriptorHeadConfig {
  const e = modelEntry(DESCRIPTOR_MODEL);
  return { hidden: e.headHidden, dropout: e.headDropout, weightDecay: 1e-4 };
}

/** modelOverrides keys that configure the head (the others configure the face ResNet). */
const HEAD_KEYS: Record<string, keyof DescriptorHeadConfig> = { headHidden: "hidden", headDropout: "dropout", weightDecay: "weightDecay" };

function checkHeadConfig(c: DescriptorHeadConfig): void {
  if (!(Number.isInteger(c.hidden) && c.hidden >= 0)) throw new Error(`face_descriptors: expected headHidden to be a non-negative integer, got ${c.hidden}`);
  if (!(typeof c.dropout === "number" && c.dropout >= 0 && c.dropout < 1)) throw new Error(`face_descriptors: expected headDropout to be a number in [0, 1), got ${c.dropout}`);
  if (!(typeof c.weightDecay === "number" && c.weightDecay >= 0 && Number.isFinite(c.weightDecay))) {
    throw new Error(`face_descriptors: expected weightDecay to be a non-negative number, got ${c.weightDecay}`);
  }
}

/**
 * Identity of a face ResNet's descriptors: sha-256 of its weights and of what decides its input
 * (crop box, input size, face-api's mean RGB), 12 hex digits. Normalisation is left out: the
 * first layer undoes it, so the descriptors do not depend on it.
 */
export async function backboneId(backbone: tfl.LayersModel, config: FaceResnetConfig): Promise<string> {
  const h = createHash("sha256");
  h.update(JSON.stringify({ box: faceResnetCropBox(config), h: config.inputHeight, w: config.inputWidth, size: FACE_RESNET_INPUT_SIZE, mean: FACE_API_MEAN_RGB, dim: config.embeddingDim }));
  for (const w of backbone.weights) {
    const v = await w.read().data() as Float32Array;
    h.update(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  }
  return h.digest("hex").slice(0, 12);
}

/** The backbone as a feature extractor for lib/data/feature_cache.ts (inference mode, batched, tidy). */
export async function descriptorExtractor(backbone: tfl.LayersModel, config: FaceResnetConfig): Promise<FeatureExtractor> {
  const dim = backbone.outputs[0].shape[1] as number;
  return {
    name: config.crop,
    id: await backboneId(backbone, config),
    dim,
    async compute(pixels, rows) {
      const x = makeBatch(pixels, rows, { norm: config.normalization });
      const y = tf.tidy(() => backbone.apply(x, { training: false }) as tf.Tensor);
      try {
        return (await y.data()) as Float32Array;
      } finally {
        tf.dispose([x, y]);
      }
    },
  };
}

/**
 * Heads on a [b,dim] descriptor input, built by attachHeads (so layer and output names equal the
 * full model's: `<head>_hidden`, `<head>`); logits out.
 */
export function buildHeadModel(dim: number, heads: readonly string[], config: Pick<DescriptorHeadConfig, "hidden" | "dropout">, seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [dim], name: "descriptor" });
  const features = tfl.model({ inputs: input, outputs: input, name: "descriptor" });
  return attachHeads(features, { heads: heads as (keyof typeof HEADS)[], hidden: config.hidden, dropout: config.dropout, seed });
}

/** Plain copies of the weights of the head layers (names `<head>` and `<head>_hidden`). */
export type HeadWeights = Record<string, { shape: number[]; values: Float32Array }[]>;

function headLayerNames(heads: readonly string[], hidden: number): string[] {
  return heads.flatMap((h) => (hidden > 0 ? [`${h}_hidden`, h] : [h]));
}

/** Reads the head layers' weights of `model` (a head model or a full model). */
export async function getHeadWeights(model: tfl.LayersModel, heads: readonly string[], hidden: number): Promise<HeadWeights> {
  return Object.fromEntries(await Promise.all(headLayerNames(heads, hidden).map(async (name) => [
    name,
    await Promise.all(model.getLayer(name).getWeights().map(async (t) => ({ shape: t.shape.slice(), values: Float32Array.from(await t.data() as Float32Array) }))),
  ])));
}

/** Writes head weights into the layers of the same names of `model`. */
export function setHeadWeights(model: tfl.LayersModel, weights: HeadWeights): void {
  for (const [name, ws] of Object.entries(weights)) {
    const ts = ws.map((w) => tf.tensor(w.values, w.shape));
    try {
      model.getLayer(name).setWeights(ts);
    } finally {
      tf.dispose(ts);
    }
  }
}

/**
 * Folds x ↦ (x − mean)/std into the first layer of each head: kernel K[i,j] → K[i,j]/std[i],
 * bias b[j] → b[j] − Σ_i mean[i]·K[i,j]/std[i]; the head then takes raw descriptors.
 */
export function foldStandardization(weights: HeadWeights, heads: readonly string[], hidden: number, mean: Float64Array, std: Float64Array): HeadWeights {
  const out: HeadWeights = structuredClone(weights);
  for (const h of heads) {
    const [k, b] = out[hidden > 0 ? `${h}_hidden` : h];
    const [dim, units] = k.shape;
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < units; j++) {
        const v = k.values[i * units + j] / std[i];
        k.values[i * units + j] = v;
        b.values[j] -= mean[i] * v;
      }
    }
  }
  return out;
}

export interface HeadTrainOptions extends DescriptorHeadConfig {
  epochs: number;
  /** Rows per step (≥ the training rows: full batch). */
  batchSize: number;
  lr: number;
  warmupEpochs: number;
  minLrFraction: number;
  /** Stop after this many epochs without a better validation macro-F1. */
  patience: number;
  seed: number;
  /** Cap on steps per epoch; undefined = one pass over the training rows. */
  stepsPerEpoch?: number;
  /** Called with one line per epoch. */
  log?: (line: string) => void;
}

export interface HeadFit {
  /** [b,dim] raw descriptors → logits per head (task head order), best epoch's weights. */
  model: tfl.LayersModel;
  /** Head weights (raw-descriptor form) of the best and of the last epoch. */
  best: HeadWeights;
  last: HeadWeights;
  history: EpochMetrics[];
  bestEpoch: number;
  bestScore: number;
  stoppedEarly: boolean;
  seconds: number;
}

function checkHeadTrainOptions(o: HeadTrainOptions): void {
  const posInt = (k: "epochs" | "batchSize") => {
    if (!(Number.isInteger(o[k]) && o[k] > 0)) throw new Error(`descriptor head: expected ${k} to be a positive integer, got ${o[k]}`);
  };
  posInt("epochs");
  posInt("batchSize");
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new Error(`descriptor head: expected lr to be a positive number, got ${o.lr}`);
  if (!(Number.isInteger(o.patience) && o.patience > 0)) throw new Error(`descriptor head: expected patience to be a positive integer, got ${o.patience}`);
  if (o.stepsPerEpoch !== undefined && !(Number.isInteger(o.stepsPerEpoch) && o.stepsPerEpoch > 0)) {
    throw new Error(`descriptor head: expected stepsPerEpoch to be a positive integer, got ${o.stepsPerEpoch}`);
  }
  checkHeadConfig(o);
}

/** Copies the rows' feature vectors, standardised, into one [rows × dim] array. */
function gatherRows(features: Float32Array, dim: number, rows: Int32Array, mean: Float64Array, std: Float64Array): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) {
    const o = rows[i] * dim;
    for (let d = 0; d < dim; d++) out[i * dim + d] = (features[o + d] - mean[d]) / std[d];
  }
  return out;
}

/**
 * Trains one head per task head on cached features (`features`: n × dim, rows of `train` / `val`
 * index into it) and returns the head model with the best validation macro-F1 (mean over heads),
 * in raw-feature form. Labels, loss weights and class weights come from `task` (TrainTask).
 * Every tensor it creates is disposed except the returned model's weights.
 */
export async function trainDescriptorHeads(features: Float32Array, dim: number, task: TrainTask, train: Int32Array, val: Int32Array, opts: HeadTrainOptions): Promise<HeadFit> {
  checkHeadTrainOptions(opts);
  if (!(Number.isInteger(dim) && dim > 0) || features.length % dim !== 0) throw new Error(`descriptor head: expected features of n × ${dim} floats, got ${features.length}`);
  const n = features.length / dim;
  for (const [name, rows] of [["train", train], ["val", val]] as const) {
    if (rows.length === 0) throw new UserError(`descriptor head: the ${name} split is empty`);
    for (const r of rows) if (!(r >= 0 && r < n)) throw new Error(`descriptor head: ${name} row ${r} is outside the ${n} feature rows`);
  }
  const t0 = performance.now();
  const heads = task.heads.map((h) => h.name);
  // Standardisation from the training rows (float64 sums).
  const mean = new Float64Array(dim), std = new Float64Array(dim);
  for (const r of train) for (let d = 0; d < dim; d++) mean[d] += features[r * dim + d];
  for (let d = 0; d < dim; d++) mean[d] /= train.length;
  for (const r of train) for (let d = 0; d < dim; d++) std[d] += (features[r * dim + d] - mean[d]) ** 2;
  for (let d = 0; d < dim; d++) std[d] = Math.max(Math.sqrt(std[d] / train.length), 1e-6);

  const model = buildHeadModel(dim, heads, opts, opts.seed + 1);
  const optimizer = adam(opts.lr);
  const xTrain = tf.tensor2d(gatherRows(features, dim, train, mean, std), [train.length, dim]);
  const xVal = tf.tensor2d(gatherRows(features, dim, val, mean, std), [val.length, dim]);
  const yTrain = task.heads.map((h) => tf.tensor1d(Int32Array.from(train, (r) => task.labels[h.name][r]), "int32"));
  const classWeights = task.heads.map((h) => (h.classWeights ? tf.tensor1d(h.classWeights) : undefined));
  const varList = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = varList.filter((v) => /kernel/.test(v.name));
  const rng = new Rng(opts.seed * 31 + 7);
  const order = Int32Array.from({ length: train.length }, (_, i) => i);
  const history: EpochMetrics[] = [];
  let best = await getHeadWeights(model, heads, opts.hidden), bestScore = -Infinity, bestEpoch = 0, badEpochs = 0, stoppedEarly = false;
  const scheduled = { lr: opts.lr, epochs: opts.epochs, warmupEpochs: opts.warmupEpochs, minLrFraction: opts.minLrFraction };
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const e0 = performance.now();
      const lr = learningRate(scheduled, epoch);
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      rng.shuffle(order);
      const bs = Math.min(opts.batchSize, train.length);
      const steps = Math.min(Math.ceil(train.length / bs), opts.stepsPerEpoch ?? Infinity);
      let lossSum = 0, seenRows = 0, correct = 0, labelled = 0;
      for (let s = 0; s < steps; s++) {
        const pick = order.subarray(s * bs, Math.min((s + 1) * bs, train.length));
        const idx = tf.tensor1d(pick, "int32");
        let firstPred: tf.Tensor | null = null, firstTruth: tf.Tensor | null = null;
        const loss = optimizer.minimize(() => {
          const out = model.apply(tf.gather(xTrain, idx), { training: true }) as tf.Tensor | tf.Tensor[];
          const outs = Array.isArray(out) ? out : [out];
          let total: tf.Scalar = tf.scalar(0);
          task.heads.forEach((h, i) => {
            const y = tf.gather(yTrain[i], idx) as tf.Tensor1D;
            if (i === 0) firstPred = tf.keep(tf.argMax(outs[0], 1)), firstTruth = tf.keep(y);
            total = tf.add(total, tf.mul(maskedSoftmaxCrossEntropy(outs[i] as tf.Tensor2D, y, classWeights[i]), h.lossWeight));
          });
          return total;
        }, true, varList) as tf.Scalar;
        if (opts.weightDecay > 0) {
          const keep = 1 - lr * opts.weightDecay;
          tf.tidy(() => kernels.forEach((k) => k.assign(tf.mul(k, keep))));
        }
        const l = (await loss.data())[0];
        if (!Number.isFinite(l)) throw new UserError(`descriptor head: training diverged (loss ${l} at epoch ${epoch + 1}); lower --lr`);
        const p = await firstPred!.data(), t = await firstTruth!.data();
        for (let i = 0; i < p.length; i++) if (t[i] >= 0) labelled++, correct += p[i] === t[i] ? 1 : 0;
        lossSum += l * pick.length;
        seenRows += pick.length;
        tf.dispose([idx, loss, firstPred!, firstTruth!]);
      }
      const trainSeconds = (performance.now() - e0) / 1000;
      const probs = tf.tidy(() => {
        const out = model.apply(xVal, { training: false }) as tf.Tensor | tf.Tensor[];
        return (Array.isArray(out) ? out : [out]).map((o) => tf.softmax(o));
      });
      const pv = await Promise.all(probs.map((p) => p.data() as Promise<Float32Array>));
      tf.dispose(probs);
      const m: EpochMetrics = {
        epoch: epoch + 1,
        lr,
        train_loss: lossSum / Math.max(1, seenRows),
        train_accuracy: labelled ? correct / labelled : 0,
        val_loss: 0,
        val_accuracy: 0,
        val_macro_f1: 0,
        img_per_s: seenRows / Math.max(trainSeconds, 1e-9),
        data_wait: 0, // the descriptors are in memory
        seconds: 0,
      };
      const f1s: number[] = [];
      task.heads.forEach((h, i) => {
        const truth = Int32Array.from(val, (r) => task.labels[h.name][r]);
        const rep = classificationReport(truth, pv[i], h.labels);
        m[`val_${h.name}_accuracy`] = rep.accuracy;
        m[`val_${h.name}_macro_f1`] = rep.macro.f1;
        f1s.push(rep.macro.f1);
        // Validation loss as the Trainer reports it: mean −log p over present labels, loss-weighted, no class weights.
        const k = h.labels.length;
        let sum = 0, cnt = 0;
        truth.forEach((c, j) => {
          if (c >= 0) sum -= Math.log(Math.max(pv[i][j * k + c], 1e-12)), cnt++;
        });
        m.val_loss += h.lossWeight * (cnt ? sum / cnt : 0);
      });
      m.val_accuracy = m[`val_${heads[0]}_accuracy`];
      m.val_macro_f1 = f1s.reduce((a, b) => a + b, 0) / f1s.length;
      m.seconds = (performance.now() - e0) / 1000;
      history.push(m);
      const improved = m.val_macro_f1 > bestScore + 1e-6;
      if (improved) {
        bestScore = m.val_macro_f1;
        bestEpoch = epoch + 1;
        badEpochs = 0;
        best = await getHeadWeights(model, heads, opts.hidden);
      } else badEpochs++;
      opts.log?.(`epoch ${epoch + 1}/${opts.epochs}: lr ${lr.toExponential(2)} train loss ${m.train_loss.toFixed(4)} acc ${m.train_accuracy.toFixed(4)} | ` +
        `val loss ${m.val_loss.toFixed(4)} acc ${m.val_accuracy.toFixed(4)} macro-F1 ${m.val_macro_f1.toFixed(4)}${improved ? " (best)" : ""}`);
      if (badEpochs >= opts.patience && epoch + 1 < opts.epochs) {
        opts.log?.(`early stop: no better validation macro-F1 for ${opts.patience} epochs (best ${bestScore.toFixed(4)} at epoch ${bestEpoch})`);
        stoppedEarly = true;
        break;
      }
    }
    const last = foldStandardization(await getHeadWeights(model, heads, opts.hidden), heads, opts.hidden, mean, std);
    const bestRaw = foldStandardization(best, heads, opts.hidden, mean, std);
    setHeadWeights(model, bestRaw);
    return { model, best: bestRaw, last, history, bestEpoch, bestScore, stoppedEarly, seconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    optimizer.dispose();
    tf.dispose([xTrain, xVal, ...yTrain, ...classWeights.filter((w): w is tf.Tensor1D => !!w)]);
  }
}

/** Softmax probabilities per head ([n×k] row-major) of a head model on `rows` of cached features. */
export async function headProbabilities(model: tfl.LayersModel, features: Float32Array, dim: number, rows: ArrayLike<number>): Promise<Record<string, Float32Array>> {
  const x = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) x.set(features.subarray(rows[i] * dim, (rows[i] + 1) * dim), i * dim);
  const probs = tf.tidy(() => {
    const out = model.apply(tf.tensor2d(x, [rows.length, dim]), { training: false }) as tf.Tensor | tf.Tensor[];
    return (Array.isArray(out) ? out : [out]).map((o) => tf.softmax(o));
  });
  try {
    const values = await Promise.all(probs.map((p) => p.data() as Promise<Float32Array>));
    return Object.fromEntries(model.outputNames.map((name, i) => [name, values[i]]));
  } finally {
    tf.dispose(probs);
  }
}

/**
 * A head model on descriptors with the head weights of a saved face_descriptors model (its
 * `<head>` / `<head>_hidden` layers): the full model's probabilities from cached descriptors.
 */
export async function headModelFrom(model: tfl.LayersModel, heads: readonly string[]): Promise<tfl.LayersModel> {
  const hiddenLayer = model.layers.find((l) => l.name === `${heads[0]}_hidden`);
  const hidden = hiddenLayer ? (hiddenLayer.getWeights()[0].shape[1] as number) : 0;
  const dim = model.getLayer(hidden > 0 ? `${heads[0]}_hidden` : heads[0]).getWeights()[0].shape[0] as number;
  const head = buildHeadModel(dim, heads, { hidden, dropout: 0 }, 1);
  setHeadWeights(head, await getHeadWeights(model, heads, hidden));
  return head;
}

/** Splits modelOverrides into the head's config and the face ResNet's overrides. */
export function descriptorConfigs(overrides: Record<string, unknown>): { head: DescriptorHeadConfig; backbone: Record<string, unknown> } {
  const head = defaultDescriptorHeadConfig();
  // Both views unless a crop is given: on tp_real they beat either view alone on the hair heads and
  // tie the aligned view on gender.
  const backbone: Record<string, unknown> = { crop: "both" };
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    if (k in HEAD_KEYS) (head as unknown as Record<string, unknown>)[HEAD_KEYS[k]] = v;
    else backbone[k] = v;
  }
  checkHeadConfig(head);
  if (backbone.trainableFrom !== undefined) throw new UserError("face_descriptors: the backbone is frozen; trainableFrom does not apply (use --model face_resnet to fine-tune)");
  return { head, backbone };
}

/** The frozen descriptor network and one feature extractor per view of its crop. */
export interface DescriptorNet {
  /** [b,H,W,3] portraits → [b,128·views] descriptors (views in cropViews order): the face_descriptors backbone. */
  model: tfl.LayersModel;
  config: FaceResnetConfig;
  views: ("aligned" | "portrait")[];
  extractors: FeatureExtractor[];
  dim: number;
}

/**
 * Builds the registry's face_descriptors backbone (frozen; pretrained weights when
 * config.pretrained) and an extractor per view: for crop "both", sub-models from the portrait to
 * each input of the "views" concatenation (the shared body's output for that view), so each view
 * caches under the id a one-view net of the same weights has. Free it with disposeDescriptorModel.
 */
export async function buildDescriptorNet(config: FaceResnetConfig): Promise<DescriptorNet> {
  const entry = modelEntry(DESCRIPTOR_MODEL);
  const model = entry.buildBackbone(config);
  await entry.loadPretrained!(model, config);
  const views = cropViews(config.crop);
  if (views.length === 1) return { model, config, views, extractors: [await descriptorExtractor(model, config)], dim: model.outputs[0].shape[1] as number };
  const outs = model.getLayer("views").input as tfl.SymbolicTensor[];
  const extractors = await Promise.all(views.map((view, i) =>
    descriptorExtractor(tfl.model({ inputs: model.inputs, outputs: outs[i], name: `face_resnet_${view}` }), { ...config, crop: view })
  ));
  return { model, config, views, extractors, dim: extractors.reduce((s, e) => s + e.dim, 0) };
}

/**
 * The descriptors of every good row of a dataset for a DescriptorNet: each view's from its feature
 * cache (computed on first use), concatenated per row → n × net.dim floats.
 */
export async function descriptorFeatures(pixels: PixelCache, net: DescriptorNet, opts: { batchSize?: number; quiet?: boolean } = {}): Promise<{ features: Float32Array; dim: number; caches: FeatureCache[] }> {
  const caches: FeatureCache[] = [];
  for (const [i, e] of net.extractors.entries()) {
    caches.push(await loadFeatureCache(pixels, e, { batchSize: opts.batchSize, quiet: opts.quiet, label: `descriptors (${net.views[i]})` }));
  }
  if (caches.length === 1) return { features: caches[0].features, dim: caches[0].dim, caches };
  const n = pixels.status.length, dim = net.dim;
  const features = new Float32Array(n * dim);
  let off = 0;
  for (const c of caches) {
    for (let r = 0; r < n; r++) features.set(c.features.subarray(r * c.dim, (r + 1) * c.dim), r * dim + off);
    off += c.dim;
  }
  return { features, dim, caches };
}

/**
 * One face_descriptors run end to end, into checkpoints/<exp>/ with the layout trainRun writes:
 * dataset → splits (created if missing) → face ResNet (frozen) + heads → descriptors of every good
 * row (cached) → heads trained on them → models/best and models/last (the whole network),
 * config.json, metrics.csv, run.log, learning curve.
 */
export async function trainDescriptorHead(cfg: TrainConfig, opts: { quiet?: boolean }, data: RunData): Promise<TrainRunResult> {
  if (cfg.model !== DESCRIPTOR_MODEL) throw new Error(`trainDescriptorHead: expected model '${DESCRIPTOR_MODEL}', got '${cfg.model}'`);
  const runDir = join(cfg.checkpointsDir, cfg.expName);
  if (cfg.resume) throw new UserError(`train: ${DESCRIPTOR_MODEL} has no --resume (its head trains in seconds); pick another --exp-name`);
  const { head: headCfg, backbone: backboneOverrides } = descriptorConfigs(cfg.modelOverrides);
  const logLines: string[] = [];
  const log = (line: string) => {
    logLines.push(`${new Date().toISOString()} ${line}`);
    if (!opts.quiet) console.log(line);
  };
  const { ds, name, splits, created } = data;
  const heads = TASK_HEADS[cfg.task];
  const task = classificationTask(cfg.task, ds.attrs, splits.train, {
    lossWeights: cfg.lossWeights,
    classWeights: TASKS[cfg.task].classWeights || cfg.sampling === "weighted",
  });
  const entry = modelEntry(DESCRIPTOR_MODEL);
  const config = mergeDefined(entry.defaults as FaceResnetConfig, backboneOverrides as Partial<FaceResnetConfig>);
  const net = await buildDescriptorNet(config);
  const model = attachHeads(net.model, { heads, hidden: headCfg.hidden, dropout: headCfg.dropout, seed: cfg.seed + 1 });
  let fit: HeadFit | null = null;
  try {
    const params = model.countParams();
    const normalization = entry.normalization(config);
    const modelConfig = {
      model: DESCRIPTOR_MODEL,
      modelConfig: config,
      task: cfg.task,
      heads: Object.fromEntries(task.heads.map((h) => [h.name, h.labels])),
      input: { height: IMAGE_HEIGHT, width: IMAGE_WIDTH, channels: 3, layout: "NHWC", scale: "pixel/255" },
      normalization,
      dataset: { name, root: ds.layout.root },
      params,
      tta: "none",
      ensemble: cfg.ensemble,
      joint: cfg.joint,
    };
    const runConfig = { ...cfg, ...modelConfig, descriptorHead: headCfg, backend: engineChoice()?.backend ?? null, createdAt: new Date().toISOString() };
    await writeJsonAtomic(join(runDir, "config.json"), runConfig);
    log(`train: ${cfg.task} with ${DESCRIPTOR_MODEL} (crop ${config.crop}, ${headCfg.hidden ? `${headCfg.hidden}-unit hidden layer` : "linear"} head; ` +
      `${params.toLocaleString("en")} parameters, ${model.trainableWeights.reduce((s, w) => s + tf.util.sizeFromShape(w.shape as number[]), 0).toLocaleString("en")} trainable) ` +
      `on ${splits.train.length} train / ${splits.val.length} val rows → ${runDir}`);
    if (cfg.augment !== "none") log("train: augmentation does not apply (the descriptors are of the unaugmented portraits)");

    const desc = await descriptorFeatures(ds.cache, net, { batchSize: Math.min(cfg.evalBatchSize, 64), quiet: opts.quiet });
    desc.caches.forEach((c, i) =>
      log(c.built
        ? `descriptors: ${c.rows.length} portraits (${net.views[i]} view) in ${c.seconds.toFixed(1)} s (${(c.rows.length / c.seconds).toFixed(1)} img/s) → ${c.binPath}`
        : `descriptors: loaded ${c.rows.length} cached (${net.views[i]} view) in ${c.seconds.toFixed(2)} s from ${c.binPath}`)
    );

    fit = await trainDescriptorHeads(desc.features, desc.dim, task, splits.train, splits.val, {
      ...headCfg,
      epochs: cfg.epochs,
      batchSize: cfg.batchSize,
      lr: cfg.lr,
      warmupEpochs: cfg.warmupEpochs,
      minLrFraction: 0.02,
      patience: cfg.patience,
      seed: cfg.seed,
      stepsPerEpoch: cfg.stepsPerEpoch,
      log,
    });
    log(`head: ${fit.history.length} epochs in ${fit.seconds.toFixed(1)} s; best validation macro-F1 ${fit.bestScore.toFixed(4)} at epoch ${fit.bestEpoch}`);

    const lastEpoch = fit.history[fit.history.length - 1];
    await Deno.mkdir(join(runDir, "models"), { recursive: true });
    setHeadWeights(model, fit.last);
    await saveCheckpoint(join(runDir, "models", "last"), { model, config: { ...modelConfig, epoch: lastEpoch.epoch, val_macro_f1: lastEpoch.val_macro_f1 } });
    setHeadWeights(model, fit.best);
    await saveCheckpoint(join(runDir, "models", "best"), { model, config: { ...modelConfig, epoch: fit.bestEpoch, val_macro_f1: fit.bestScore } });

    await writeCsvAtomic(join(runDir, "metrics.csv"), fit.history);
    await saveChart(learningCurveChart(fit.history as unknown as Record<string, number | string>[], `Learning curves — ${cfg.task} (${DESCRIPTOR_MODEL})`), join(runDir, "learning_curve"));
    await appendFileAtomic(join(runDir, "run.log"), logLines.map((l) => l + "\n").join(""));
    return {
      history: fit.history,
      bestEpoch: fit.bestEpoch,
      bestScore: fit.bestScore,
      stoppedEarly: fit.stoppedEarly,
      resumedFrom: null,
      runDir,
      config: cfg,
      splitsCreated: created,
      params,
    };
  } finally {
    fit?.model.dispose();
    disposeModel(model);
  }
}
