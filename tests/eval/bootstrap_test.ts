// Contracts of the percentile bootstrap (lib/eval/bootstrap.ts), on synthetic label arrays only.
// Run: deno test -A tests/eval/bootstrap_test.ts   (a few seconds)
import assert from "node:assert/strict";
import {
  bootstrapFromPredictions,
  bootstrapIntervals,
  bootstrapProportion,
  classificationReport,
  formatIntervals,
  type Interval,
  metricsJson,
  quantileSorted,
} from "../../lib/eval/mod.ts";
import { Rng } from "../../lib/util/rng.ts";

const LABELS = ["black", "brown", "blond"];

/** n rows of k classes (class shares 50/30/20), predictions right with probability `acc`, else a random other class. */
function synthetic(n: number, acc: number, seed = 3): { y: Int32Array; pred: Int32Array } {
  const rng = new Rng(seed);
  const y = new Int32Array(n), pred = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next();
    y[i] = u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
    pred[i] = rng.chance(acc) ? y[i] : (y[i] + rng.int(1, 2)) % 3;
  }
  return { y, pred };
}

/** One-hot-ish probabilities for predicted classes. */
function probsFor(pred: ArrayLike<number>, k: number): Float32Array {
  const p = new Float32Array(pred.length * k).fill(0.1 / (k - 1));
  for (let i = 0; i < pred.length; i++) p[i * k + pred[i]] = 0.9;
  return p;
}

const width = (ci: Interval) => ci[1] - ci[0];
const inside = (v: number, ci: Interval) => ci[0] <= v && v <= ci[1];

Deno.test("bootstrap interval contains the point estimate and narrows as n grows", () => {
  const widths: Record<number, number> = {};
  for (const n of [100, 10_000]) {
    const { y, pred } = synthetic(n, 0.8);
    const probs = probsFor(pred, 3);
    const r = classificationReport(y, probs, LABELS);
    const ci = bootstrapIntervals(y, probs, LABELS);
    assert.ok(inside(r.accuracy, ci.accuracy), `accuracy ${r.accuracy} in ${ci.accuracy} (n ${n})`);
    assert.ok(inside(r.macro.f1, ci.macroF1), `macro-F1 ${r.macro.f1} in ${ci.macroF1} (n ${n})`);
    for (const l of LABELS) assert.ok(inside(r.perClass[l].f1, ci.perClassF1[l]), `F1 ${l} ${r.perClass[l].f1} in ${ci.perClassF1[l]} (n ${n})`);
    assert.equal(ci.n, n);
    widths[n] = width(ci.accuracy);
  }
  // Width shrinks like 1/√n: 100× the rows → about a tenth of the width.
  assert.ok(widths[10_000] < 0.2 * widths[100], `width ${widths[10_000]} at n 10,000 vs ${widths[100]} at n 100`);
});

Deno.test("the 95% accuracy interval matches the normal approximation p ± 1.96·√(p(1−p)/n) within 15%", () => {
  const { y, pred } = synthetic(2000, 0.8, 11);
  const ci = bootstrapFromPredictions(y, pred, LABELS);
  const p = y.filter((v, i) => v === pred[i]).length / y.length;
  const half = 1.96 * Math.sqrt((p * (1 - p)) / y.length);
  assert.ok(Math.abs(width(ci.accuracy) - 2 * half) < 0.15 * 2 * half, `width ${width(ci.accuracy)} vs normal ${2 * half}`);
  assert.ok(Math.abs((ci.accuracy[0] + ci.accuracy[1]) / 2 - p) < 0.25 * half, `centre ${(ci.accuracy[0] + ci.accuracy[1]) / 2} vs p ${p}`);
});

Deno.test("bootstrap is deterministic for a seed, and another seed gives another interval", () => {
  const { y, pred } = synthetic(300, 0.7);
  const a = bootstrapFromPredictions(y, pred, LABELS, { seed: 5 });
  const b = bootstrapFromPredictions(y, pred, LABELS, { seed: 5 });
  const c = bootstrapFromPredictions(y, pred, LABELS, { seed: 6 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.accuracy, c.accuracy);
  // The default seed is fixed too.
  assert.deepEqual(bootstrapFromPredictions(y, pred, LABELS), bootstrapFromPredictions(y, pred, LABELS));
  assert.equal(a.resamples, 1000);
  assert.equal(a.level, 0.95);
});

Deno.test("a perfect classifier has interval [1, 1] for accuracy, macro-F1 and every class's F1", () => {
  const { y } = synthetic(500, 1);
  const ci = bootstrapIntervals(y, probsFor(y, 3), LABELS);
  assert.deepEqual(ci.accuracy, [1, 1]);
  assert.deepEqual(ci.macroF1, [1, 1]);
  for (const l of LABELS) assert.deepEqual(ci.perClassF1[l], [1, 1]);
});

Deno.test("rows with a missing label (-1) are ignored by the bootstrap, and no labelled row gives [0, 0]", () => {
  const { y, pred } = synthetic(200, 0.75);
  const yMissing = Int32Array.from([-1, ...y.slice(0, 100), -1, -1, ...y.slice(100)]);
  const predMissing = Int32Array.from([2, ...pred.slice(0, 100), 0, 1, ...pred.slice(100)]);
  assert.deepEqual(bootstrapFromPredictions(yMissing, predMissing, LABELS), bootstrapFromPredictions(y, pred, LABELS));
  const empty = bootstrapFromPredictions([-1, -1], [0, 1], LABELS);
  assert.equal(empty.n, 0);
  assert.deepEqual(empty.accuracy, [0, 0]);
  assert.deepEqual(empty.perClassF1.blond, [0, 0]);
});

Deno.test("bootstrapProportion(correct, n) equals the row bootstrap's accuracy interval for the same rows", () => {
  // 37 right then 13 wrong: the row bootstrap draws the same indices, and an index below 37 is a right row.
  const y = new Int32Array(50), pred = new Int32Array(50);
  for (let i = 37; i < 50; i++) pred[i] = 1;
  const rows = bootstrapFromPredictions(y, pred, ["a", "b"], { seed: 9 });
  assert.deepEqual(bootstrapProportion(37, 50, { seed: 9 }), rows.accuracy);
  assert.deepEqual(bootstrapProportion(0, 0), [0, 0]);
  assert.deepEqual(bootstrapProportion(14, 14), [1, 1]);
});

Deno.test("27,000 rows × 1,000 resamples take under 10 s", () => {
  const { y, pred } = synthetic(27_000, 0.97);
  const t0 = performance.now();
  const ci = bootstrapFromPredictions(y, pred, LABELS);
  const s = (performance.now() - t0) / 1000;
  assert.ok(s < 10, `took ${s.toFixed(1)} s`);
  assert.ok(width(ci.accuracy) > 0 && width(ci.accuracy) < 0.01);
});

Deno.test("quantileSorted() interpolates linearly between order statistics, like numpy.quantile", () => {
  const v = [1, 2, 3, 4];
  assert.equal(quantileSorted(v, 0), 1);
  assert.equal(quantileSorted(v, 1), 4);
  assert.equal(quantileSorted(v, 0.25), 1.75); // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75
  assert.equal(quantileSorted(v, 0.5), 2.5);
  assert.throws(() => quantileSorted([], 0.5), /at least one value/);
});

Deno.test("the bootstrap rejects bad options, shapes, labels and predictions with one clear line", () => {
  const y = [0, 1], pred = [0, 1];
  assert.throws(() => bootstrapFromPredictions(y, pred, LABELS, { resamples: 0 }), /expected resamples to be a positive integer, got 0/);
  assert.throws(() => bootstrapFromPredictions(y, pred, LABELS, { level: 1 }), /expected level in \(0, 1\), got 1/);
  assert.throws(() => bootstrapFromPredictions(y, [0], LABELS), /one length/);
  assert.throws(() => bootstrapFromPredictions([0, 3], pred, LABELS), /label in 0\.\.2 or -1 \(missing\) at row 1, got 3/);
  assert.throws(() => bootstrapFromPredictions(y, [0, 5], LABELS), /prediction in 0\.\.2 at row 1, got 5/);
  assert.throws(() => bootstrapIntervals(y, new Float32Array(5), LABELS), /n×k/);
  assert.throws(() => bootstrapProportion(5, 4), /0 ≤ correct ≤ n/);
});

Deno.test("formatIntervals() prints value and [lower, upper] for accuracy, macro-F1 and each class's F1", () => {
  const { y, pred } = synthetic(100, 0.8);
  const probs = probsFor(pred, 3);
  const r = classificationReport(y, probs, LABELS);
  const ci = bootstrapIntervals(y, probs, LABELS);
  const lines = formatIntervals(r, ci).split("\n");
  assert.equal(lines[0], "95% bootstrap intervals (1000 resamples of 100 rows, seed 1):");
  assert.match(lines[1], new RegExp(`^  accuracy\\s+${r.accuracy.toFixed(4)} \\[${ci.accuracy[0].toFixed(4)}, ${ci.accuracy[1].toFixed(4)}\\]$`));
  assert.match(lines[2], /^ {2}macro-F1\s+\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]$/);
  assert.deepEqual(lines.slice(3).map((l) => l.trim().split(/\s+/)[1]), LABELS);
});

Deno.test("metricsJson() keeps accuracy, macro_f1 and per_class and adds accuracy_ci, macro_f1_ci and per-class f1_ci", () => {
  const { y, pred } = synthetic(100, 0.8);
  const probs = probsFor(pred, 3);
  const r = classificationReport(y, probs, LABELS);
  const ci = bootstrapIntervals(y, probs, LABELS);
  const plain = metricsJson({ hair_color: r });
  assert.deepEqual(Object.keys(plain.hair_color), ["accuracy", "macro_f1", "per_class"]);
  const m = metricsJson({ hair_color: r }, { hair_color: { intervals: ci } }).hair_color;
  assert.equal(m.accuracy, plain.hair_color.accuracy);
  assert.equal(m.macro_f1, plain.hair_color.macro_f1);
  assert.deepEqual(m.accuracy_ci, ci.accuracy);
  assert.deepEqual(m.macro_f1_ci, ci.macroF1);
  for (const l of LABELS) {
    const { f1_ci, ...scores } = m.per_class[l];
    assert.deepEqual(scores, plain.hair_color.per_class[l]);
    assert.deepEqual(f1_ci, ci.perClassF1[l]);
  }
});
