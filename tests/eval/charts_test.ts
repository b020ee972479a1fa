import assert from "node:assert/strict";
import {
  calibration,
  classificationReport,
  comparisonChart,
  confusionChart,
  learningCurveChart,
  reliabilityChart,
} from "../../lib/eval/mod.ts";
import { chartToSvg } from "../../lib/viz/vega.ts";

const LABELS = ["black", "brown", "blond", "gray", "bald"];
const y = [0, 1, 2, 3, 4, 0, 1, 2, -1, 0];
const probs = new Float32Array(y.length * 5);
y.forEach((c, i) => {
  const p = (i % 3 === 0 ? (Math.max(c, 0) + 1) % 5 : Math.max(c, 0));
  for (let j = 0; j < 5; j++) probs[i * 5 + j] = j === p ? 0.4 + 0.05 * i : (0.6 - 0.05 * i) / 4;
});

Deno.test("every evaluation chart renders to SVG", async () => {
  const r = classificationReport(y, probs, LABELS);
  const specs = {
    confusion: confusionChart(r, "hair colour"),
    reliability: reliabilityChart(calibration(y, probs, 5, 10), "hair colour"),
    learning: learningCurveChart([
      { epoch: 1, train_loss: 1.2, val_loss: 1.3, train_gender_accuracy: 0.6, val_gender_accuracy: "0.55", val_hair_color_macro_f1: 0.3, lr: 0.001 },
      { epoch: 2, train_loss: 0.9, val_loss: 1.1, train_gender_accuracy: 0.7, val_gender_accuracy: "0.65", val_hair_color_macro_f1: "" },
    ], "multitask"),
    comparison: comparisonChart([
      { model: "cnn", head: "gender", accuracy: 0.9, macro_f1: 0.89 },
      { model: "resnet", head: "gender", accuracy: 0.95, macro_f1: 0.94 },
      { model: "cnn", head: "hair_color", accuracy: 0.7, macro_f1: 0.5 },
      { model: "resnet", head: "hair_color", accuracy: 0.8, macro_f1: 0.6 },
    ], "models"),
  };
  for (const [name, spec] of Object.entries(specs)) {
    const svg = await chartToSvg(spec);
    assert.ok(svg.startsWith("<svg") && svg.length > 1000, `${name} renders`);
  }
  // Learning-curve data is folded: split × metric, lr and empty cells left out.
  const values = specs.learning.data.values as { split: string; metric: string }[];
  assert.deepEqual([...new Set(values.map((v) => `${v.split}:${v.metric}`))].sort(), [
    "train:gender_accuracy", "train:loss", "val:gender_accuracy", "val:hair_color_macro_f1", "val:loss",
  ]);
  assert.equal(values.length, 9);
  // Confusion chart: one cell per (true, pred) with counts summing to n.
  const cells = specs.confusion.data.values as { count: number }[];
  assert.equal(cells.length, 25);
  assert.equal(cells.reduce((a, c) => a + c.count, 0), r.n);
});
