/**
 * Decision biases: per-class offsets added to the log-probabilities before the arg-max, fitted on
 * the validation split to maximise macro-F1. A classifier trained with class-balanced sampling
 * over-predicts the rare classes on data with the true class shares (on tp_real's hair colour:
 * gray precision 0.61 at recall 0.92); a bias per class moves each decision boundary back. The
 * probabilities keep their meaning (softmax of log p + b), only the arg-max changes for rows near
 * a boundary.
 *
 *   const fit = fitDecisionBias(yVal, probsVal, labels.length);   // coordinate ascent on a 0.1 grid
 *   const adjusted = applyDecisionBias(probsTest, labels.length, fit.bias);
 *
 * A run's biases live in `<run>/decision_bias.json` (written by `train` at the end of a run whose
 * recipe asks for them, or by `deno task calibrate`); evaluate and predict apply them unless told
 * `--decision-bias none`.
 */
import { join } from "node:path";
import { MISSING_CODE } from "../data/schema.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { checkShape } from "./report.ts";
import { Rng } from "../util/rng.ts";
import type { Joint } from "./joint.ts";

/** File name of a run's fitted biases. */
export const DECISION_BIAS_FILE = "decision_bias.json";
export const DECISION_BIAS_MODES = ["auto", "none"] as const;
/** "auto": apply the run's decision_bias.json when it exists; "none": plain arg-max. */
export type DecisionBiasMode = typeof DECISION_BIAS_MODES[number];

export interface DecisionBiasFitOptions {
  /** Largest |bias| tried (default 2). */
  range?: number;
  /** Grid step (default 0.1). */
  step?: number;
  /** Passes of coordinate ascent over the classes (default 3). */
  rounds?: number;
}

export interface DecisionBiasFit {
  /** Offset per class added to log p (0 for a class whose change never helped). */
  bias: number[];
  /** Macro-F1 of the rows before and after the biases. */
  before: number;
  after: number;
  /** Labelled rows the fit used. */
  n: number;
}

/** Macro-F1 (every label, zero_division 0) of arg-max(log p + bias) over labelled rows. */
function macroF1(y: Int32Array, logp: Float32Array, k: number, bias: ArrayLike<number>): number {
  const tp = new Float64Array(k), fp = new Float64Array(k), fn = new Float64Array(k);
  for (let i = 0; i < y.length; i++) {
    let best = 0, bv = -Infinity;
    for (let c = 0; c < k; c++) {
      const v = logp[i * k + c] + bias[c];
      if (v > bv) bv = v, best = c;
    }
    if (best === y[i]) tp[best]++;
    else fp[best]++, fn[y[i]]++;
  }
  let s = 0;
  for (let c = 0; c < k; c++) {
    const d = 2 * tp[c] + fp[c] + fn[c];
    s += d > 0 ? (2 * tp[c]) / d : 0;
  }
  return s / k;
}

/**
 * Fits one bias per class on labelled rows (`yTrue` -1 = missing, ignored) by coordinate ascent:
 * each round tries every grid value for each class in turn and keeps it only when macro-F1 rises
 * strictly, so a class stays at 0 unless moving it helps. Deterministic for the same input.
 */
export function fitDecisionBias(yTrue: ArrayLike<number>, probs: Float32Array, k: number, opts: DecisionBiasFitOptions = {}): DecisionBiasFit {
  const nAll = checkShape("fitDecisionBias", yTrue, probs, k);
  const range = opts.range ?? 2, step = opts.step ?? 0.1, rounds = opts.rounds ?? 3;
  if (!(range > 0 && step > 0 && step <= range)) throw new Error(`fitDecisionBias: expected 0 < step ≤ range, got step ${step}, range ${range}`);
  if (!(Number.isInteger(rounds) && rounds >= 1)) throw new Error(`fitDecisionBias: expected rounds to be a positive integer, got ${rounds}`);
  const keep: number[] = [];
  for (let i = 0; i < nAll; i++) if (yTrue[i] !== MISSING_CODE) keep.push(i);
  const y = Int32Array.from(keep, (i) => yTrue[i]);
  const logp = new Float32Array(keep.length * k);
  keep.forEach((i, j) => {
    for (let c = 0; c < k; c++) logp[j * k + c] = Math.log(Math.max(probs[i * k + c], 1e-12));
  });
  const bias = new Array<number>(k).fill(0);
  const before = macroF1(y, logp, k, bias);
  let best = before;
  const steps = Math.round(range / step);
  for (let r = 0; r < rounds; r++) {
    let moved = false;
    for (let c = 0; c < k; c++) {
      for (let s = -steps; s <= steps; s++) {
        const trial = bias.slice();
        trial[c] = Math.round(s * step * 1e6) / 1e6;
        const m = macroF1(y, logp, k, trial);
        if (m > best + 1e-12) best = m, bias[c] = trial[c], moved = true;
      }
    }
    if (!moved) break;
  }
  return { bias, before, after: best, n: y.length };
}

export interface CrossFit {
  /** Mean and standard deviation of the held-out halves' macro-F1 with biases fitted on the other half. */
  mean: number;
  sd: number;
  /** Mean held-out macro-F1 of the plain arg-max on the same halves. */
  plain: number;
  /** Fits made: 2 per repeat. */
  fits: number;
}

/**
 * What the biases are worth on rows they were not fitted on: the labelled rows are split into two random halves
 * `repeats` times; biases fitted on each half score macro-F1 on the other (`fitDecisionBias`'s after-figure is
 * in-sample, and on a few hundred rows with rare classes it overstates the gain). Seeded, deterministic.
 */
export function crossFitDecisionBias(yTrue: ArrayLike<number>, probs: Float32Array, k: number, opts: DecisionBiasFitOptions & { repeats?: number; seed?: number } = {}): CrossFit {
  const nAll = checkShape("crossFitDecisionBias", yTrue, probs, k);
  const repeats = opts.repeats ?? 10;
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error(`crossFitDecisionBias: expected repeats to be a positive integer, got ${repeats}`);
  const labelled = Int32Array.from({ length: nAll }, (_, i) => i).filter((i) => yTrue[i] !== MISSING_CODE);
  if (labelled.length < 4) throw new Error(`crossFitDecisionBias: expected at least 4 labelled rows, got ${labelled.length}`);
  const rng = new Rng(opts.seed ?? 1);
  const part = (rows: Int32Array) => ({ y: Int32Array.from(rows, (i) => yTrue[i]), p: Float32Array.from({ length: rows.length * k }, (_, j) => probs[rows[Math.floor(j / k)] * k + (j % k)]) });
  const held: number[] = [], plain: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const order = rng.shuffle(Int32Array.from(labelled));
    const halves = [order.subarray(0, order.length >> 1), order.subarray(order.length >> 1)].map(part);
    for (const [fitOn, scoreOn] of [[0, 1], [1, 0]]) {
      const fit = fitDecisionBias(halves[fitOn].y, halves[fitOn].p, k, opts);
      const logp = halves[scoreOn].p.map((v) => Math.log(Math.max(v, 1e-12)));
      held.push(macroF1(halves[scoreOn].y, logp, k, fit.bias));
      plain.push(macroF1(halves[scoreOn].y, logp, k, new Array(k).fill(0)));
    }
  }
  const mean = held.reduce((a, b) => a + b, 0) / held.length;
  const sd = Math.sqrt(held.reduce((a, b) => a + (b - mean) ** 2, 0) / held.length);
  return { mean, sd, plain: plain.reduce((a, b) => a + b, 0) / plain.length, fits: held.length };
}

/** softmax(log p + bias) per row: the probabilities whose arg-max is the biased decision. */
export function applyDecisionBias(probs: Float32Array, k: number, bias: readonly number[]): Float32Array {
  if (bias.length !== k) throw new Error(`applyDecisionBias: expected ${k} biases, got ${bias.length}`);
  if (probs.length % k !== 0) throw new Error(`applyDecisionBias: ${probs.length} probabilities is not a multiple of ${k} classes`);
  const out = new Float32Array(probs.length);
  for (let i = 0; i < probs.length; i += k) {
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, (out[i + c] = Math.log(Math.max(probs[i + c], 1e-12)) + bias[c]));
    let z = 0;
    for (let c = 0; c < k; c++) z += (out[i + c] = Math.exp(out[i + c] - m));
    for (let c = 0; c < k; c++) out[i + c] /= z;
  }
  return out;
}

/** What decision_bias.json holds. */
export interface DecisionBiasFile {
  /** Checkpoint the biases were fitted for. */
  ckpt: "best" | "last";
  split: "val";
  tta: string;
  /** Joint decoding the probabilities were fitted under (lib/eval/joint.ts; absent in older files: "none"). */
  joint?: Joint;
  heads: Record<string, {
    labels: string[];
    bias: number[];
    val_macro_f1_before: number;
    val_macro_f1_after: number;
    /** Held-out estimate (crossFitDecisionBias: mean and sd over 2 × 10 half splits); absent in older files. */
    val_macro_f1_crossfit?: { mean: number; sd: number; plain: number };
    rows: number;
  }>;
  createdAt: string;
}

export async function readDecisionBias(runDir: string): Promise<DecisionBiasFile | null> {
  const p = join(runDir, DECISION_BIAS_FILE);
  return (await exists(p)) ? await readJson<DecisionBiasFile>(p) : null;
}

export async function writeDecisionBias(runDir: string, file: DecisionBiasFile): Promise<string> {
  const p = join(runDir, DECISION_BIAS_FILE);
  await writeJsonAtomic(p, file);
  return p;
}
