/**
 * Classification reports like scikit-learn's `classification_report`:
 * per-class precision / recall / F1 / support, accuracy, macro and weighted
 * averages, and the confusion matrix; plus the text layout, a polars frame,
 * the `test_metrics.json` shape, arg-max and the most confident mistakes.
 *
 * Conventions shared by every function here:
 * - `yTrue` holds class indices; `MISSING_CODE` (-1) marks a missing label and that row is ignored.
 * - `probs` is an n×k row-major Float32Array (softmax outputs), k = number of labels.
 * - zero_division=0: a ratio whose denominator is 0 is reported as 0, never NaN. Precision of a class
 *   that is never predicted, recall of a class with no rows, F1 when both are 0, and the accuracy of an
 *   empty report are all 0.
 */
import pl from "nodejs-polars";
import { MISSING_CODE } from "../data/schema.ts";
import type { BootstrapIntervals, Interval } from "./bootstrap.ts";
import type { WorstSubgroup } from "./subgroups.ts";

/** Precision, recall, F1 and support of one class or one average. */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** y true labels (class indices, -1 = missing → row ignored), probabilities n×k row-major. */
export interface ClassificationReport {
  labels: string[];
  perClass: Record<string, ClassScores>;
  accuracy: number;
  /** Unweighted mean over every label (labels with support 0 included, as scikit-learn does when labels are given). */
  macro: ClassScores;
  /** Mean weighted by support. */
  weighted: ClassScores;
  /** confusion[true][pred], counts. */
  confusion: number[][];
  /** Rows with a label (missing rows excluded). */
  n: number;
}

/** a / b, or 0 when b is 0 (scikit-learn's zero_division=0). */
function ratio(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** Checks that `probs` is n×k; returns n. */
export function checkShape(fn: string, yTrue: ArrayLike<number>, probs: Float32Array, k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new Error(`${fn}: expected k to be a positive integer, got ${k}`);
  const n = yTrue.length;
  if (probs.length !== n * k) {
    throw new Error(`${fn}: expected probs of length n×k = ${n}×${k} = ${n * k}, got ${probs.length}`);
  }
  return n;
}

/** Throws unless y is MISSING_CODE or a class index in [0, k). */
function checkLabel(fn: string, y: number, row: number, k: number): void {
  if (y !== MISSING_CODE && !(Number.isInteger(y) && y >= 0 && y < k)) {
    throw new Error(`${fn}: expected a label in 0..${k - 1} or ${MISSING_CODE} (missing) at row ${row}, got ${y}`);
  }
}

/** Index of the largest value of each row of an n×k matrix (ties → the lowest index, like numpy; NaN never wins). */
export function argmaxRows(probs: Float32Array, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 1) throw new Error(`argmaxRows: expected k to be a positive integer, got ${k}`);
  if (probs.length % k !== 0) throw new Error(`argmaxRows: expected a length divisible by k = ${k}, got ${probs.length}`);
  const n = probs.length / k;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bestV = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = probs[i * k + j];
      if (v > bestV) {
        bestV = v;
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}

/**
 * Precision, recall, F1 and support per class, accuracy, macro / weighted averages and the
 * confusion matrix of arg-max predictions. Rows with label -1 are ignored. zero_division=0.
 * F1 is computed as 2·tp / (2·tp + fp + fn), which equals the harmonic mean of precision and recall.
 */
export function classificationReport(yTrue: ArrayLike<number>, probs: Float32Array, labels: readonly string[]): ClassificationReport {
  const k = labels.length;
  const nAll = checkShape("classificationReport", yTrue, probs, k);
  const pred = argmaxRows(probs, k);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let n = 0, correct = 0;
  for (let i = 0; i < nAll; i++) {
    const y = yTrue[i];
    checkLabel("classificationReport", y, i, k);
    if (y === MISSING_CODE) continue;
    confusion[y][pred[i]] += 1;
    n += 1;
    if (y === pred[i]) correct += 1;
  }
  const perClass: Record<string, ClassScores> = {};
  const macro: ClassScores = { precision: 0, recall: 0, f1: 0, support: n };
  const weighted: ClassScores = { precision: 0, recall: 0, f1: 0, support: n };
  for (let c = 0; c < k; c++) {
    const tp = confusion[c][c];
    let support = 0, predicted = 0;
    for (let j = 0; j < k; j++) {
      support += confusion[c][j];
      predicted += confusion[j][c];
    }
    const s: ClassScores = {
      precision: ratio(tp, predicted),
      recall: ratio(tp, support),
      f1: ratio(2 * tp, support + predicted), // 2tp + fp + fn = support + predicted
      support,
    };
    perClass[labels[c]] = s;
    for (const m of ["precision", "recall", "f1"] as const) {
      macro[m] += s[m];
      weighted[m] += s[m] * support;
    }
  }
  for (const m of ["precision", "recall", "f1"] as const) {
    macro[m] /= k;
    weighted[m] = ratio(weighted[m], n);
  }
  return { labels: [...labels], perClass, accuracy: ratio(correct, n), macro, weighted, confusion, n };
}

/**
 * Text laid out like scikit-learn's `classification_report` (digits = 2 by default):
 *
 * ```
 *               precision    recall  f1-score   support
 *
 *       female       0.90      0.80      0.85        50
 *         male       0.82      0.91      0.86        50
 *
 *     accuracy                           0.85       100
 *    macro avg       0.86      0.85      0.85       100
 * weighted avg       0.86      0.85      0.85       100
 * ```
 *
 * With zero_division=0, a class that is never predicted shows precision 0.00 and a class with
 * no rows recall 0.00; a footnote line says so when it happens.
 */
export function formatReport(r: ClassificationReport, title?: string, digits = 2): string {
  const width = Math.max("weighted avg".length, ...r.labels.map((l) => l.length));
  const num = (v: number) => v.toFixed(digits).padStart(9);
  const int = (v: number) => String(v).padStart(9);
  const name = (s: string) => s.padStart(width);
  const row = (label: string, s: ClassScores) => `${name(label)}  ${num(s.precision)} ${num(s.recall)} ${num(s.f1)} ${int(s.support)}`;
  const lines: string[] = [];
  if (title) lines.push(title, "");
  lines.push(`${name("")}  ${["precision", "recall", "f1-score", "support"].map((h) => h.padStart(9)).join(" ")}`, "");
  for (const l of r.labels) lines.push(row(l, r.perClass[l]));
  lines.push("");
  lines.push(`${name("accuracy")}  ${"".padStart(9)} ${"".padStart(9)} ${num(r.accuracy)} ${int(r.n)}`);
  lines.push(row("macro avg", r.macro));
  lines.push(row("weighted avg", r.weighted));
  const neverPredicted = r.labels.filter((_, c) => r.confusion.every((rowC) => rowC[c] === 0));
  const noRows = r.labels.filter((l) => r.perClass[l].support === 0);
  if (neverPredicted.length || noRows.length) {
    lines.push("");
    if (neverPredicted.length) lines.push(`zero_division=0: never predicted, precision reported as 0: ${neverPredicted.join(", ")}`);
    if (noRows.length) lines.push(`zero_division=0: no rows, recall reported as 0: ${noRows.join(", ")}`);
  }
  return lines.join("\n") + "\n";
}

/**
 * The report as a polars frame: columns `class`, `precision`, `recall`, `f1`, `support`; one row per
 * class, then `accuracy` (precision and recall null, f1 = accuracy, support = n), `macro avg`, `weighted avg`.
 */
export function reportFrame(r: ClassificationReport): pl.DataFrame {
  const names = [...r.labels, "accuracy", "macro avg", "weighted avg"];
  const scores: (ClassScores | null)[] = [...r.labels.map((l) => r.perClass[l]), null, r.macro, r.weighted];
  return pl.DataFrame([
    pl.Series("class", names, pl.Utf8),
    pl.Series("precision", scores.map((s) => s?.precision ?? null), pl.Float64),
    pl.Series("recall", scores.map((s) => s?.recall ?? null), pl.Float64),
    pl.Series("f1", scores.map((s) => s?.f1 ?? r.accuracy), pl.Float64),
    pl.Series("support", scores.map((s) => s?.support ?? r.n), pl.Int64),
  ]);
}

/** One head's entry in `checkpoints/<exp>/test_metrics.json`. */
export interface HeadMetrics {
  accuracy: number;
  /** 95% bootstrap interval of accuracy (when intervals were computed). */
  accuracy_ci?: Interval;
  macro_f1: number;
  macro_f1_ci?: Interval;
  /** Per class: precision, recall, f1, support, and `f1_ci` when intervals were computed. */
  per_class: Record<string, ClassScores & { f1_ci?: Interval }>;
  /** This head's lowest-accuracy subgroup (null: none with enough rows); absent when not computed. */
  worst_subgroup?: WorstSubgroup | null;
  /** Per-class offsets added to log p before the arg-max (decision_bias.json); absent when none were applied. */
  decision_bias?: number[];
  /** "faceapi" when this head was averaged with face-api's age/gender net; absent otherwise. */
  ensemble?: string;
  /** "bald" when this head's baldness was joined with the hair-type head's (lib/eval/joint.ts); absent otherwise. */
  joint?: string;
}

/** What `metricsJson` adds to a head's entry besides the report's numbers. */
export interface HeadMetricsExtras {
  intervals?: BootstrapIntervals;
  worstSubgroup?: WorstSubgroup | null;
  decisionBias?: number[];
  ensemble?: string;
  joint?: string;
}

/**
 * The shape of `checkpoints/<exp>/test_metrics.json`: one entry per head (`gender`, `hair_color`, ...)
 * with `accuracy`, `macro_f1`, `per_class`; plus `accuracy_ci`, `macro_f1_ci`, per-class `f1_ci` and
 * `worst_subgroup` (and `decision_bias`) for the heads that `extras` has them for.
 */
export function metricsJson(reports: Record<string, ClassificationReport>, extras: Record<string, HeadMetricsExtras> = {}): Record<string, HeadMetrics> {
  const out: Record<string, HeadMetrics> = {};
  for (const [head, r] of Object.entries(reports)) {
    const ci = extras[head]?.intervals;
    const per_class: HeadMetrics["per_class"] = {};
    for (const l of r.labels) per_class[l] = ci ? { ...r.perClass[l], f1_ci: ci.perClassF1[l] } : { ...r.perClass[l] };
    out[head] = ci
      ? { accuracy: r.accuracy, accuracy_ci: ci.accuracy, macro_f1: r.macro.f1, macro_f1_ci: ci.macroF1, per_class }
      : { accuracy: r.accuracy, macro_f1: r.macro.f1, per_class };
    const worst = extras[head]?.worstSubgroup;
    if (worst !== undefined) out[head].worst_subgroup = worst;
    const bias = extras[head]?.decisionBias;
    if (bias !== undefined) out[head].decision_bias = bias;
    const ens = extras[head]?.ensemble;
    if (ens !== undefined) out[head].ensemble = ens;
    const joint = extras[head]?.joint;
    if (joint !== undefined) out[head].joint = joint;
  }
  return out;
}

/** A wrong prediction: row position, true and predicted class indices, probability of the predicted class. */
export interface Mistake {
  row: number;
  trueLabel: number;
  predLabel: number;
  confidence: number;
}

/**
 * Wrong arg-max predictions, most confident first (ties: lower row first), at most `limit`.
 * Rows with a missing label (-1) are skipped. Good for a mosaic of "what the model gets badly wrong".
 */
export function worstMistakes(yTrue: ArrayLike<number>, probs: Float32Array, k: number, limit: number): Mistake[] {
  const n = checkShape("worstMistakes", yTrue, probs, k);
  if (!(Number.isInteger(limit) && limit >= 0)) throw new Error(`worstMistakes: expected limit to be a non-negative integer, got ${limit}`);
  const pred = argmaxRows(probs, k);
  const out: Mistake[] = [];
  for (let i = 0; i < n; i++) {
    const y = yTrue[i];
    checkLabel("worstMistakes", y, i, k);
    if (y === MISSING_CODE || y === pred[i]) continue;
    out.push({ row: i, trueLabel: y, predLabel: pred[i], confidence: probs[i * k + pred[i]] });
  }
  out.sort((a, b) => b.confidence - a.confidence || a.row - b.row);
  return out.slice(0, limit);
}
