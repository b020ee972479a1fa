import assert from "node:assert/strict";
import { argmaxRows, classificationReport, formatReport, metricsJson, reportFrame, worstMistakes } from "../../lib/eval/mod.ts";

/** n×k probabilities with `hi` on the predicted class and the rest shared equally. */
function probsFor(pred: number[], k: number, hi = 0.8): Float32Array {
  const p = new Float32Array(pred.length * k).fill((1 - hi) / (k - 1));
  pred.forEach((c, i) => (p[i * k + c] = hi));
  return p;
}

const LABELS = ["cat", "dog", "bird"];
// 10 rows, 3 classes.
const Y = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
const PRED = [0, 0, 0, 1, 1, 1, 2, 2, 0, 0];
// Confusion [true][pred]:  cat: [3, 1, 0] (support 4)   dog: [0, 2, 1] (3)   bird: [2, 0, 1] (3)
// Column sums (predicted): cat 5, dog 3, bird 2.

Deno.test("classificationReport() matches a hand-computed 10-row, 3-class example exactly", () => {
  const r = classificationReport(Y, probsFor(PRED, 3), LABELS);
  assert.deepEqual(r.confusion, [[3, 1, 0], [0, 2, 1], [2, 0, 1]]);
  assert.equal(r.n, 10);
  // cat:  tp 3, precision 3/5, recall 3/4, F1 = 2·3 / (4 + 5) = 6/9 = 2/3
  assert.deepEqual(r.perClass.cat, { precision: 3 / 5, recall: 3 / 4, f1: 2 / 3, support: 4 });
  // dog:  tp 2, precision 2/3, recall 2/3, F1 = 2·2 / (3 + 3) = 2/3
  assert.deepEqual(r.perClass.dog, { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 });
  // bird: tp 1, precision 1/2, recall 1/3, F1 = 2·1 / (3 + 2) = 2/5  (= 2·(1/2)(1/3) / (1/2 + 1/3))
  assert.deepEqual(r.perClass.bird, { precision: 1 / 2, recall: 1 / 3, f1: 2 / 5, support: 3 });
  // accuracy = (3 + 2 + 1) / 10
  assert.equal(r.accuracy, 6 / 10);
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
  // macro precision = (3/5 + 2/3 + 1/2) / 3 = (18/30 + 20/30 + 15/30) / 3 = 53/90
  close(r.macro.precision, 53 / 90, "macro precision");
  // macro recall = (3/4 + 2/3 + 1/3) / 3 = 7/12
  close(r.macro.recall, 7 / 12, "macro recall");
  // macro F1 = (2/3 + 2/3 + 2/5) / 3 = (26/15) / 3 = 26/45
  close(r.macro.f1, 26 / 45, "macro f1");
  assert.equal(r.macro.support, 10);
  // weighted precision = (4·3/5 + 3·2/3 + 3·1/2) / 10 = (2.4 + 2 + 1.5) / 10 = 0.59
  close(r.weighted.precision, 0.59, "weighted precision");
  // weighted recall = (4·3/4 + 3·2/3 + 3·1/3) / 10 = 6/10 (always the accuracy)
  close(r.weighted.recall, 0.6, "weighted recall");
  // weighted F1 = (4·2/3 + 3·2/3 + 3·2/5) / 10 = (40/15 + 30/15 + 18/15) / 10 = 88/150 = 44/75
  close(r.weighted.f1, 44 / 75, "weighted f1");
  assert.equal(r.weighted.support, 10);
});

Deno.test("a class that is never predicted gets precision 0 (zero_division=0), not NaN", () => {
  // bird (2) is never predicted; its two rows go to dog.
  const r = classificationReport([0, 1, 2, 2], probsFor([0, 1, 1, 1], 3), LABELS);
  assert.deepEqual(r.perClass.bird, { precision: 0, recall: 0, f1: 0, support: 2 });
  // dog: tp 1, predicted 3 → precision 1/3, recall 1, F1 = 2 / (1 + 3) = 1/2
  assert.deepEqual(r.perClass.dog, { precision: 1 / 3, recall: 1, f1: 1 / 2, support: 1 });
  // A class with no rows but predicted once: precision 0/1, recall 0/0 → 0, F1 0.
  const r2 = classificationReport([0, 0], probsFor([0, 2], 3), LABELS);
  assert.deepEqual(r2.perClass.bird, { precision: 0, recall: 0, f1: 0, support: 0 });
  for (const rep of [r, r2]) {
    for (const s of [...Object.values(rep.perClass), rep.macro, rep.weighted]) {
      for (const v of Object.values(s)) assert.ok(Number.isFinite(v), "no NaN anywhere");
    }
  }
  // An empty report (every label missing) is all zeros, not NaN.
  const empty = classificationReport([-1, -1], probsFor([0, 1], 3), LABELS);
  assert.equal(empty.n, 0);
  assert.equal(empty.accuracy, 0);
  assert.deepEqual(empty.weighted, { precision: 0, recall: 0, f1: 0, support: 0 });
});

Deno.test("rows with a missing label (-1) are ignored by the report", () => {
  // The hand example with three missing rows interleaved; their predictions must not count anywhere.
  const y = [-1, ...Y.slice(0, 5), -1, ...Y.slice(5), -1];
  const pred = [2, ...PRED.slice(0, 5), 1, ...PRED.slice(5), 0];
  const withMissing = classificationReport(y, probsFor(pred, 3), LABELS);
  const without = classificationReport(Y, probsFor(PRED, 3), LABELS);
  assert.deepEqual(withMissing, without);
  assert.equal(withMissing.n, 10);
});

Deno.test("classificationReport() rejects a wrong probability shape and out-of-range labels", () => {
  assert.throws(() => classificationReport([0, 1], new Float32Array(5), LABELS), /n×k/);
  assert.throws(() => classificationReport([0, 3], probsFor([0, 1], 3), LABELS), /label in 0\.\.2/);
});

Deno.test("formatReport() lays the report out like scikit-learn's classification_report", () => {
  const text = formatReport(classificationReport(Y, probsFor(PRED, 3), LABELS));
  // What sklearn.metrics.classification_report(Y, PRED, target_names=LABELS) prints.
  const expected = [
    "              precision    recall  f1-score   support",
    "",
    "         cat       0.60      0.75      0.67         4",
    "         dog       0.67      0.67      0.67         3",
    "        bird       0.50      0.33      0.40         3",
    "",
    "    accuracy                           0.60        10",
    "   macro avg       0.59      0.58      0.58        10",
    "weighted avg       0.59      0.60      0.59        10",
    "",
  ].join("\n");
  assert.equal(text, expected);
  const titled = formatReport(classificationReport([0, 1, 2, 2], probsFor([0, 1, 1, 1], 3), LABELS), "test split");
  assert.ok(titled.startsWith("test split\n"));
  assert.match(titled, /zero_division=0: never predicted, precision reported as 0: bird/);
});

Deno.test("reportFrame() has one row per class then accuracy, macro avg and weighted avg", () => {
  const r = classificationReport(Y, probsFor(PRED, 3), LABELS);
  const df = reportFrame(r);
  assert.deepEqual(df.columns, ["class", "precision", "recall", "f1", "support"]);
  const recs = df.toRecords() as { class: string; precision: number | null; recall: number | null; f1: number; support: number }[];
  assert.deepEqual(recs.map((x) => x.class), ["cat", "dog", "bird", "accuracy", "macro avg", "weighted avg"]);
  assert.equal(recs[2].f1, 2 / 5);
  assert.equal(recs[3].precision, null);
  assert.equal(recs[3].f1, 0.6);
  assert.equal(Number(recs[3].support), 10);
  assert.equal(recs[4].f1, r.macro.f1);
});

Deno.test("metricsJson() gives accuracy, macro_f1 and per_class for every head", () => {
  const r = classificationReport(Y, probsFor(PRED, 3), LABELS);
  const m = metricsJson({ hair_type: r });
  assert.deepEqual(Object.keys(m), ["hair_type"]);
  assert.equal(m.hair_type.accuracy, 0.6);
  assert.equal(m.hair_type.macro_f1, r.macro.f1);
  assert.deepEqual(m.hair_type.per_class.bird, { precision: 0.5, recall: 1 / 3, f1: 0.4, support: 3 });
  assert.deepEqual(JSON.parse(JSON.stringify(m)), m, "round-trips through JSON");
});

Deno.test("argmaxRows() picks the largest per row and the lowest index on ties", () => {
  const p = new Float32Array([0.1, 0.7, 0.2, 0.5, 0.5, 0, 0.2, 0.3, 0.5]);
  assert.deepEqual([...argmaxRows(p, 3)], [1, 0, 2]);
});

Deno.test("worstMistakes() lists wrong predictions most confident first, ties by row, up to the limit", () => {
  const k = 2;
  const probs = new Float32Array([
    0.9, 0.1, // row 0: true 1, pred 0 @0.9  wrong
    0.2, 0.8, // row 1: true 1, pred 1       right
    0.25, 0.75, // row 2: true 0, pred 1 @0.75 wrong
    0.0, 1.0, // row 3: missing label        ignored
    0.75, 0.25, // row 4: true 1, pred 0 @0.75 wrong (ties row 2)
    0.6, 0.4, // row 5: true 1, pred 0 @0.6  wrong
  ]);
  const y = [1, 1, 0, -1, 1, 1];
  const all = worstMistakes(y, probs, k, 10);
  assert.deepEqual(all.map((m) => m.row), [0, 2, 4, 5]);
  assert.deepEqual(all[1], { row: 2, trueLabel: 0, predLabel: 1, confidence: 0.75 });
  assert.ok(Math.abs(all[0].confidence - 0.9) < 1e-6);
  assert.deepEqual(worstMistakes(y, probs, k, 2).map((m) => m.row), [0, 2]);
  assert.deepEqual(worstMistakes(y, probs, k, 0), []);
});
