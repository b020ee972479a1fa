/**
 * The Trainer: a loop that knows nothing about faces (minGPT's Trainer). A
 * task supplies heads (names, label vocabularies, loss weights, class
 * weights) and per-row label codes; the Trainer owns batching, the masked
 * multi-head loss, Adam with warm-up + cosine schedule, validation metrics,
 * early stopping on validation macro-F1, progress (img/s, ETA), metrics.csv,
 * run.log, the learning-curve chart, and atomic checkpoints
 * (models/best, models/last) with resume from `last`.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { type AugmentOptions, classBalanceWeights, type Sampling, labelTensor, makeTrainBatch, type Normalization, planEpoch } from "../data/batches.ts";
import type { HeadName } from "../data/schema.ts";
import { maskedSoftmaxCrossEntropy } from "./losses.ts";
import { loadOptimizerState, resolveCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { classificationReport, learningCurveChart } from "../eval/mod.ts";
import { saveChart } from "../viz/vega.ts";
import { predictHeads, type TtaMode } from "../models/inference.ts";
import { Progress, type ProgressOptions } from "../util/progress.ts";
import { Rng } from "../util/rng.ts";
import { appendFileAtomic, readJson } from "../util/fs.ts";
import { UserError } from "../util/errors.ts";
import { loadSavedModel } from "../models/mod.ts";
import { writeCsvAtomic } from "../util/csv.ts";
import { ReadBehind } from "../engine/read_behind.ts";
import { adam } from "../engine/adam.ts";

/** File stem of the backbone's optimizer state in a checkpoint (models/last/optimizer_backbone.{json,bin}). */
export const BACKBONE_OPTIMIZER = "optimizer_backbone";

export interface HeadSpec {
  name: HeadName;
  labels: readonly string[];
  /** Weight of this head's loss in the total. */
  lossWeight: number;
  /** Per-class loss weights (undefined = uniform). */
  classWeights?: Float32Array;
}

export interface TrainTask {
  name: string;
  heads: HeadSpec[];
  /** Label codes per head over all dataset rows (-1 = missing). */
  labels: Record<string, Int8Array>;
}

export interface TrainerOptions {
  runDir: string;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Linear warm-up epochs before the cosine decay. */
  warmupEpochs: number;
  /** Minimum lr at the end of the cosine, as a fraction of lr. */
  minLrFraction: number;
  /**
   * Learning rate of the backbone (every trainable weight outside the heads) as a multiple of `lr`
   * (discriminative fine-tuning: the heads learn at lr, a pretrained backbone at lr × this). 1 = one
   * optimizer for everything. The backbone gets its own Adam, saved beside the heads' one.
   */
  backboneLrMult?: number;
  /** Epochs at the start during which only the heads train (the backbone is held fixed). */
  freezeEpochs?: number;
  /** Label smoothing ε of every head's cross-entropy (0 = none). */
  labelSmoothing?: number;
  /** Test-time augmentation of the validation predictions (as evaluation will use). */
  tta?: TtaMode;
  /** Stop after this many epochs without a better validation macro-F1. */
  patience: number;
  seed: number;
  norm: Normalization;
  augment?: AugmentOptions;
  /** "weighted": class-balanced sampling on `samplingHead`; "sqrt": classes drawn ∝ √count; "shuffle": plain epochs. */
  sampling: Sampling;
  samplingHead?: HeadName;
  /** Cap on training steps per epoch (presets); undefined = one pass. */
  stepsPerEpoch?: number;
  evalBatchSize: number;
  resume: boolean;
  /** Saved with the weights (config.json): preprocessing, labels, model name and config, task. */
  modelConfig: Record<string, unknown>;
  quiet?: boolean;
  /** Where the per-epoch progress lines go and how often (default: stderr, every few seconds); tests collect them. */
  progress?: Pick<ProgressOptions, "sink" | "logIntervalMs">;
}

export interface EpochMetrics {
  epoch: number;
  lr: number;
  train_loss: number;
  train_accuracy: number;
  val_loss: number;
  val_accuracy: number;
  val_macro_f1: number;
  img_per_s: number;
  /** Share of the epoch's training time spent making its batches (gather, augment, normalise), when no step runs. */
  data_wait: number;
  seconds: number;
  [key: string]: number;
}

export interface TrainResult {
  history: EpochMetrics[];
  bestEpoch: number;
  bestScore: number;
  stoppedEarly: boolean;
  resumedFrom: number | null;
}

interface TrainerState {
  epoch: number;
  bestScore: number;
  bestEpoch: number;
  badEpochs: number;
  history: EpochMetrics[];
}

/** Learning rate at (fractional) epoch e: linear warm-up then cosine to minLrFraction·lr. */
export function learningRate(o: Pick<TrainerOptions, "lr" | "epochs" | "warmupEpochs" | "minLrFraction">, e: number): number {
  if (e < o.warmupEpochs) return o.lr * (e + 1) / (o.warmupEpochs + 1);
  const t = (e - o.warmupEpochs) / Math.max(1, o.epochs - o.warmupEpochs);
  return o.lr * (o.minLrFraction + (1 - o.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, t))));
}

export class Trainer {
  readonly model: tfl.LayersModel;
  readonly task: TrainTask;
  readonly opts: TrainerOptions;
  readonly pixels: Uint8Array;
  readonly optimizer: tf.AdamOptimizer;
  /** The backbone's optimizer when it learns at its own rate (backboneLrMult ≠ 1 or freezeEpochs > 0). */
  readonly backboneOptimizer: tf.AdamOptimizer | null;
  private logLines: string[] = [];

  constructor(model: tfl.LayersModel, task: TrainTask, pixels: Uint8Array, opts: TrainerOptions) {
    const outs = model.outputNames;
    for (const h of task.heads) {
      if (!outs.includes(h.name)) throw new Error(`Trainer: the model has no output named '${h.name}' (outputs: ${outs.join(", ")})`);
    }
    this.model = model;
    this.task = task;
    this.pixels = pixels;
    this.opts = opts;
    this.optimizer = adam(opts.lr);
    const mult = opts.backboneLrMult ?? 1;
    if (!(mult >= 0 && Number.isFinite(mult))) throw new Error(`Trainer: backboneLrMult must be a non-negative number, got ${mult}`);
    this.backboneOptimizer = mult !== 1 || (opts.freezeEpochs ?? 0) > 0 ? adam(opts.lr * mult) : null;
  }

  /** Trainable weights split into the heads' (layers named after a head, or `<head>_hidden`) and the rest. */
  private weightGroups(): { head: tf.Variable[]; backbone: tf.Variable[] } {
    const headLayers = new Set(this.task.heads.flatMap((h) => [h.name, `${h.name}_hidden`]));
    const headIds = new Set<number>();
    for (const l of this.model.layers) if (headLayers.has(l.name)) for (const w of l.trainableWeights) headIds.add(w.id);
    const head: tf.Variable[] = [], backbone: tf.Variable[] = [];
    for (const w of this.model.trainableWeights) (headIds.has(w.id) ? head : backbone).push(w.read() as tf.Variable);
    return { head, backbone };
  }

  private log(line: string): void {
    const stamped = `${new Date().toISOString()} ${line}`;
    this.logLines.push(stamped);
    if (!this.opts.quiet) console.log(line);
  }

  private async flushLog(): Promise<void> {
    await appendFileAtomic(join(this.opts.runDir, "run.log"), this.logLines.map((l) => l + "\n").join(""));
    this.logLines = [];
  }

  /** Total masked loss over heads for a batch (inside the caller's tidy). */
  private lossOf(outputs: tf.Tensor[], labels: tf.Tensor1D[], classWeights: (tf.Tensor1D | undefined)[]): tf.Scalar {
    let total: tf.Scalar = tf.scalar(0);
    this.task.heads.forEach((h, i) => {
      const l = maskedSoftmaxCrossEntropy(outputs[i] as tf.Tensor2D, labels[i], classWeights[i], this.opts.labelSmoothing ?? 0);
      total = tf.add(total, tf.mul(l, h.lossWeight));
    });
    return total;
  }

  private headOrder(): number[] {
    return this.task.heads.map((h) => this.model.outputNames.indexOf(h.name));
  }

  private labelTensors(rows: Int32Array): tf.Tensor1D[] {
    return this.task.heads.map((h) => labelTensor(this.task.labels[h.name], rows));
  }

  /** Probabilities per head ([n×k] row-major, task head order) and the mean masked loss over `rows`. */
  async predict(rows: Int32Array): Promise<{ probs: Float32Array[]; loss: number }> {
    const heads = this.task.heads.map((h) => h.name);
    const byHead = await predictHeads(this.model, this.pixels, rows, { norm: this.opts.norm, batchSize: this.opts.evalBatchSize, heads, tta: this.opts.tta });
    const probs = heads.map((h) => byHead[h]);
    // Loss from the probabilities: mean over heads' present labels of −log p, weighted like training (no class weights).
    let loss = 0;
    this.task.heads.forEach((h, i) => {
      const k = h.labels.length, codes = this.task.labels[h.name];
      let sum = 0, n = 0;
      for (let j = 0; j < rows.length; j++) {
        const c = codes[rows[j]];
        if (c >= 0) sum -= Math.log(Math.max(probs[i][j * k + c], 1e-12)), n++;
      }
      loss += h.lossWeight * (n ? sum / n : 0);
    });
    return { probs, loss };
  }

  /** Trains on `train`, validates on `val` each epoch. Resumes from models/last when opts.resume. */
  async fit(train: Int32Array, val: Int32Array): Promise<TrainResult> {
    const o = this.opts;
    await Deno.mkdir(join(o.runDir, "models"), { recursive: true });
    const lastDir = join(o.runDir, "models", "last"), bestDir = join(o.runDir, "models", "best");
    let state: TrainerState = { epoch: 0, bestScore: -Infinity, bestEpoch: -1, badEpochs: 0, history: [] };
    let resumedFrom: number | null = null;
    if (o.resume) {
      const dir = await resolveCheckpoint(lastDir);
      if (!dir) this.log(`resume: no checkpoint in ${lastDir} yet (stopped during the first epoch); starting at epoch 1`);
    }
    if (o.resume && (await resolveCheckpoint(lastDir))) {
      const dir = (await resolveCheckpoint(lastDir))!;
      const saved = await loadSavedModel(dir);
      this.model.setWeights(saved.getWeights());
      saved.dispose();
      await loadOptimizerState(dir, this.optimizer);
      if (this.backboneOptimizer) await loadOptimizerState(dir, this.backboneOptimizer, BACKBONE_OPTIMIZER);
      state = await readJson<TrainerState>(join(dir, "state.json"));
      resumedFrom = state.epoch;
      this.log(`resumed from ${dir} after epoch ${state.epoch} (best macro-F1 ${state.bestScore.toFixed(4)} at epoch ${state.bestEpoch})`);
    }
    const samplingLabels = this.task.labels[o.samplingHead ?? this.task.heads[0].name];
    const weights = o.sampling === "shuffle" ? undefined : classBalanceWeights(samplingLabels, train, o.sampling === "sqrt" ? 0.5 : 1);
    const classWeights = this.task.heads.map((h) => (h.classWeights ? tf.tensor1d(h.classWeights) : undefined));
    const allVars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const groups = this.weightGroups();
    const mult = o.backboneLrMult ?? 1;
    const order = this.headOrder();
    let stoppedEarly = false;
    try {
      for (let epoch = state.epoch; epoch < o.epochs; epoch++) {
        const lr = learningRate(o, epoch);
        (this.optimizer as unknown as { learningRate: number }).learningRate = lr;
        const frozen = epoch < (o.freezeEpochs ?? 0) || mult === 0;
        if (this.backboneOptimizer) (this.backboneOptimizer as unknown as { learningRate: number }).learningRate = lr * mult;
        // One optimizer for everything, or the heads' and the backbone's apart (nothing for a frozen backbone).
        const varList = !this.backboneOptimizer ? allVars : frozen ? groups.head : [...groups.head, ...groups.backbone];
        const samples = o.stepsPerEpoch ? Math.min(train.length, o.stepsPerEpoch * o.batchSize) : train.length;
        const plan = planEpoch(train, { batchSize: o.batchSize, seed: o.seed, epoch, weights, samples, dropLast: train.length > o.batchSize });
        // Augmentation draws from a stream of its own per epoch, so a resumed run sees what the uninterrupted one saw.
        const rng = new Rng(o.seed * 31 + 7919 * (epoch + 1));
        const progress = new Progress(`epoch ${epoch + 1}/${o.epochs}`, plan.reduce((a, b) => a + b.length, 0), { unit: "img", quiet: o.quiet, ...o.progress });
        let lossSum = 0, correct = 0, seen = 0, rowsDone = 0;
        const t0 = performance.now();
        let dataMs = 0;
        // Each step's loss and first-head hits are read while the next step runs (lib/engine/read_behind.ts).
        const behind = new ReadBehind<number>(([l, hits, valid], rows) => {
          if (!Number.isFinite(l)) throw new UserError(`training diverged: loss ${l} at epoch ${epoch + 1}; lower --lr`);
          correct += hits, seen += valid;
          lossSum += l * rows;
          rowsDone += rows;
          progress.tick(rows, `loss ${(lossSum / rowsDone).toFixed(4)}`);
        });
        for (const rows of plan) {
          const dataStart = performance.now();
          const x = makeTrainBatch(this.pixels, rows, { norm: o.norm, augment: o.augment, rng });
          dataMs += performance.now() - dataStart;
          const labels = this.labelTensors(rows);
          let firstLogits: tf.Tensor | null = null;
          const lossFn = () => {
            const out = this.model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[];
            const outs = Array.isArray(out) ? out : [out];
            const ordered = order.map((i) => outs[i]);
            firstLogits = tf.keep(tf.argMax(ordered[0], 1));
            const reg = this.model.losses.length ? tf.addN(this.model.losses.map((f) => f())) : tf.scalar(0);
            return tf.add(this.lossOf(ordered, labels, classWeights), reg) as tf.Scalar;
          };
          let loss: tf.Scalar;
          if (!this.backboneOptimizer) loss = this.optimizer.minimize(lossFn, true, varList) as tf.Scalar;
          else {
            const { value, grads } = tf.variableGrads(lossFn, varList);
            const pick = (vars: tf.Variable[]) => vars.map((v) => ({ name: v.name, tensor: grads[v.name] }));
            this.optimizer.applyGradients(pick(groups.head));
            if (!frozen) this.backboneOptimizer.applyGradients(pick(groups.backbone));
            tf.dispose(Object.values(grads));
            loss = value;
          }
          const stats = tf.tidy(() => {
            const truth = labels[0], valid = tf.greaterEqual(truth, 0);
            const hits = tf.logicalAnd(valid, tf.equal(firstLogits as unknown as tf.Tensor, truth));
            return tf.stack([loss, tf.sum(tf.cast(hits, "float32")), tf.sum(tf.cast(valid, "float32"))]);
          });
          tf.dispose([x, loss, ...labels, firstLogits as unknown as tf.Tensor]);
          await behind.push(stats, rows.length);
        }
        await behind.flush();
        const trainSeconds = (performance.now() - t0) / 1000;
        progress.finish(`loss ${(lossSum / Math.max(1, progress.done)).toFixed(4)}`);
        const { probs, loss: valLoss } = await this.predict(val);
        const m: EpochMetrics = {
          epoch: epoch + 1,
          lr,
          train_loss: lossSum / Math.max(1, progress.done),
          train_accuracy: seen ? correct / seen : 0,
          val_loss: valLoss,
          val_accuracy: 0,
          val_macro_f1: 0,
          img_per_s: progress.done / trainSeconds,
          data_wait: dataMs / 1000 / trainSeconds,
          seconds: (performance.now() - t0) / 1000,
        };
        const f1s: number[] = [];
        this.task.heads.forEach((h, i) => {
          const r = classificationReport(Int32Array.from(val, (row) => this.task.labels[h.name][row]), probs[i], h.labels);
          m[`val_${h.name}_accuracy`] = r.accuracy;
          m[`val_${h.name}_macro_f1`] = r.macro.f1;
          f1s.push(r.macro.f1);
        });
        m.val_accuracy = m[`val_${this.task.heads[0].name}_accuracy`];
        m.val_macro_f1 = f1s.reduce((a, b) => a + b, 0) / f1s.length;
        state.history.push(m);
        state.epoch = epoch + 1;
        const improved = m.val_macro_f1 > state.bestScore + 1e-6;
        if (improved) {
          state.bestScore = m.val_macro_f1;
          state.bestEpoch = epoch + 1;
          state.badEpochs = 0;
        } else state.badEpochs++;
        const config = { ...o.modelConfig, epoch: epoch + 1, val_macro_f1: m.val_macro_f1 };
        if (improved) await saveCheckpoint(bestDir, { model: this.model, config });
        await saveCheckpoint(lastDir, {
          model: this.model,
          config,
          optimizer: this.optimizer,
          extraOptimizers: this.backboneOptimizer ? { [BACKBONE_OPTIMIZER]: this.backboneOptimizer } : undefined,
          state: state as unknown as Record<string, unknown>,
        });
        await this.writeMetrics(state.history);
        this.log(`epoch ${epoch + 1}/${o.epochs}: lr ${lr.toExponential(2)} train loss ${m.train_loss.toFixed(4)} acc ${m.train_accuracy.toFixed(4)} | ` +
          `val loss ${m.val_loss.toFixed(4)} acc ${m.val_accuracy.toFixed(4)} macro-F1 ${m.val_macro_f1.toFixed(4)}${improved ? " (best)" : ""} | ` +
          `${m.img_per_s.toFixed(1)} img/s, ${(100 * m.data_wait).toFixed(0)}% making batches`);
        await this.flushLog();
        if (state.badEpochs >= o.patience && epoch + 1 < o.epochs) {
          this.log(`early stop: no better validation macro-F1 for ${o.patience} epochs (best ${state.bestScore.toFixed(4)} at epoch ${state.bestEpoch})`);
          await this.flushLog();
          stoppedEarly = true;
          break;
        }
      }
    } finally {
      tf.dispose(classWeights.filter((w): w is tf.Tensor1D => !!w));
    }
    return { history: state.history, bestEpoch: state.bestEpoch, bestScore: state.bestScore, stoppedEarly, resumedFrom };
  }

  private async writeMetrics(history: EpochMetrics[]): Promise<void> {
    await writeCsvAtomic(join(this.opts.runDir, "metrics.csv"), history);
    await saveChart(learningCurveChart(history as unknown as Record<string, number | string>[], `Learning curves — ${this.task.name}`), join(this.opts.runDir, "learning_curve"));
  }

  dispose(): void {
    this.optimizer.dispose();
    this.backboneOptimizer?.dispose();
  }
}
