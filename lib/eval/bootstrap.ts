/**
 * Error bars for small test sets: seeded percentile bootstrap over rows.
 * Each resample draws n labelled rows with replacement, counts them into a
 * k×k confusion matrix of (true, arg-max predicted) cells and reads accuracy,
 * every class's F1 and macro-F1 off it, exactly as `classificationReport`
 * computes them (zero_division=0, macro over every label). The interval is
 * the (1 − level)/2 and (1 + level)/2 quantiles of the resampled values
 * (linear interpolation, numpy's default). Same input and seed → same interval.
 *
 *   const ci = bootstrapIntervals(yTrue, probs, HEADS.gender.labels);   // 1,000 resamples, seed 1
 *   console.log(formatIntervals(classificationReport(yTrue, probs, labels), ci));
 *
 * Speed: about 50 M row draws per second on one core: 27k rows × 1,000 resamples take about half a second.
 */
import { MISSING_CODE } from "../data/schema.ts";
import { Rng } from "../util/rng.ts";
import { argmaxRows, checkShape, type ClassificationReport } from "./report.ts";

/** [lower, upper] bound of an interval. */
export type Interval = [number, number];

export interface BootstrapOptions {
  /** Number of resamples (default 1000). */
  resamples?: number;
  /** Seed of the resampling Rng (default 1): a fixed seed makes the interval repeat exactly. */
  seed?: number;
  /** Coverage of the interval, in (0, 1) (default 0.95). */
  level?: number;
}

export const DEFAULT_BOOTSTRAP: Required<BootstrapOptions> = { resamples: 1000, seed: 1, level: 0.95 };

/** Percentile-bootstrap intervals of one classification report's headline numbers. */
export interface BootstrapIntervals {
  accuracy: Interval;
  macroF1: Interval;
  /** F1 interval of every label, keyed by label name. */
  perClassF1: Record<string, Interval>;
  /** Labelled rows resampled (rows with label -1 are ignored). */
  n: number;
  resamples: number;
  seed: number;
  level: number;
}

function resolve(fn: string, opts: BootstrapOptions): Required<BootstrapOptions> {
  const o = { ...DEFAULT_BOOTSTRAP };
  for (const [k, v] of Object.entries(opts)) if (v !== undefined) (o as Record<string, number>)[k] = v;
  if (!(Number.isInteger(o.resamples) && o.resamples >= 1)) throw new Error(`${fn}: expected resamples to be a positive integer, got ${o.resamples}`);
  if (!Number.isFinite(o.seed)) throw new Error(`${fn}: expected seed to be a finite number, got ${o.seed}`);
  if (!(o.level > 0 && o.level < 1)) throw new Error(`${fn}: expected level in (0, 1), got ${o.level}`);
  return o;
}

/** Quantile q of ascending-sorted values, linear interpolation between order statistics (numpy's default). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new Error("quantileSorted: expected at least one value");
  if (!(q >= 0 && q <= 1)) throw new Error(`quantileSorted: expected q in [0, 1], got ${q}`);
  const pos = q * (n - 1);
  const lo = Math.floor(pos), hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** The level-coverage percentile interval of resampled values (sorts `values` in place). */
function percentileInterval(values: Float64Array, level: number): Interval {
  values.sort();
  return [quantileSorted(values, (1 - level) / 2), quantileSorted(values, (1 + level) / 2)];
}

/**
 * Bootstrap intervals from predicted class indices: `yTrue` and `pred` hold class indices in [0, k)
 * (`yTrue` may hold -1 = missing; those rows are dropped before resampling). With no labelled row
 * every interval is [0, 0], like the report's zero_division=0 numbers.
 */
export function bootstrapFromPredictions(
  yTrue: ArrayLike<number>,
  pred: ArrayLike<number>,
  labels: readonly string[],
  opts: BootstrapOptions = {},
): BootstrapIntervals {
  const fn = "bootstrapFromPredictions";
  const o = resolve(fn, opts);
  const k = labels.length;
  if (k < 1) throw new Error(`${fn}: expected at least one label`);
  if (pred.length !== yTrue.length) throw new Error(`${fn}: expected yTrue and pred of one length, got ${yTrue.length} and ${pred.length}`);
  // One confusion cell (true·k + pred) per labelled row.
  const cells: number[] = [];
  for (let i = 0; i < yTrue.length; i++) {
    const y = yTrue[i], p = pred[i];
    if (y === MISSING_CODE) continue;
    if (!(Number.isInteger(y) && y >= 0 && y < k)) throw new Error(`${fn}: expected a label in 0..${k - 1} or ${MISSING_CODE} (missing) at row ${i}, got ${y}`);
    if (!(Number.isInteger(p) && p >= 0 && p < k)) throw new Error(`${fn}: expected a prediction in 0..${k - 1} at row ${i}, got ${p}`);
    cells.push(y * k + p);
  }
  const n = cells.length;
  const base = { n, resamples: o.resamples, seed: o.seed, level: o.level };
  if (n === 0) {
    const zero = (): Interval => [0, 0];
    return { accuracy: zero(), macroF1: zero(), perClassF1: Object.fromEntries(labels.map((l) => [l, zero()])), ...base };
  }
  const cell = Int32Array.from(cells);
  const B = o.resamples;
  const acc = new Float64Array(B), macro = new Float64Array(B);
  const f1 = Array.from({ length: k }, () => new Float64Array(B));
  const conf = new Int32Array(k * k);
  const rng = new Rng(o.seed);
  for (let b = 0; b < B; b++) {
    conf.fill(0);
    for (let i = 0; i < n; i++) conf[cell[Math.floor(rng.next() * n)]]++;
    let correct = 0, sumF1 = 0;
    for (let c = 0; c < k; c++) {
      const tp = conf[c * k + c];
      let support = 0, predicted = 0;
      for (let j = 0; j < k; j++) {
        support += conf[c * k + j];
        predicted += conf[j * k + c];
      }
      const f = support + predicted === 0 ? 0 : (2 * tp) / (support + predicted);
      f1[c][b] = f;
      sumF1 += f;
      correct += tp;
    }
    acc[b] = correct / n;
    macro[b] = sumF1 / k;
  }
  return {
    accuracy: percentileInterval(acc, o.level),
    macroF1: percentileInterval(macro, o.level),
    perClassF1: Object.fromEntries(labels.map((l, c) => [l, percentileInterval(f1[c], o.level)])),
    ...base,
  };
}

/**
 * Bootstrap intervals for accuracy, macro-F1 and every class's F1 of arg-max predictions:
 * `yTrue` class indices (-1 = missing → row ignored), `probs` n×k row-major, k = labels.length.
 */
export function bootstrapIntervals(yTrue: ArrayLike<number>, probs: Float32Array, labels: readonly string[], opts: BootstrapOptions = {}): BootstrapIntervals {
  checkShape("bootstrapIntervals", yTrue, probs, labels.length);
  return bootstrapFromPredictions(yTrue, argmaxRows(probs, labels.length), labels, opts);
}

/**
 * Bootstrap interval of a proportion, `correct` out of `n` rows (e.g. one subgroup's accuracy):
 * the same row resampling as `bootstrapFromPredictions`, for a table that only kept the counts.
 */
export function bootstrapProportion(correct: number, n: number, opts: BootstrapOptions = {}): Interval {
  const fn = "bootstrapProportion";
  const o = resolve(fn, opts);
  if (!(Number.isInteger(n) && n >= 0 && Number.isInteger(correct) && correct >= 0 && correct <= n)) {
    throw new Error(`${fn}: expected integers 0 ≤ correct ≤ n, got correct ${correct}, n ${n}`);
  }
  if (n === 0) return [0, 0];
  const rng = new Rng(o.seed);
  const v = new Float64Array(o.resamples);
  for (let b = 0; b < o.resamples; b++) {
    let c = 0;
    for (let i = 0; i < n; i++) if (rng.next() * n < correct) c++;
    v[b] = c / n;
  }
  return percentileInterval(v, o.level);
}

/** "0.9757 [0.9656, 0.9848]" */
export function formatInterval(value: number, ci: Interval, digits = 4): string {
  return `${value.toFixed(digits)} [${ci[0].toFixed(digits)}, ${ci[1].toFixed(digits)}]`;
}

/**
 * Text block for test.log, one line per number:
 *
 * ```
 * 95% bootstrap intervals (1000 resamples of 100 rows, seed 1):
 *   accuracy     0.8500 [0.7800, 0.9200]
 *   macro-F1     0.8497 [0.7779, 0.9190]
 *   F1 female    0.8421 [0.7500, 0.9167]
 *   F1 male      0.8571 [0.7797, 0.9231]
 * ```
 */
export function formatIntervals(r: ClassificationReport, ci: BootstrapIntervals, digits = 4): string {
  const names = ["accuracy", "macro-F1", ...r.labels.map((l) => `F1 ${l}`)];
  const width = Math.max(...names.map((s) => s.length));
  const values: [number, Interval][] = [[r.accuracy, ci.accuracy], [r.macro.f1, ci.macroF1], ...r.labels.map((l): [number, Interval] => [r.perClass[l].f1, ci.perClassF1[l]])];
  const lines = [`${+(ci.level * 100).toFixed(1)}% bootstrap intervals (${ci.resamples} resamples of ${ci.n} rows, seed ${ci.seed}):`];
  values.forEach(([v, c], i) => lines.push(`  ${names[i].padEnd(width)}  ${formatInterval(v, c, digits)}`));
  return lines.join("\n");
}
