/**
 * Vega-Lite specs for evaluation: confusion matrix, reliability diagram,
 * learning curves from metrics.csv, and a model comparison. Pure spec
 * builders (data inline); render with lib/viz/vega.ts (`saveChart`, `showChart`).
 */
import type { VegaLiteSpec } from "../viz/vega.ts";
import type { Calibration } from "./calibration.ts";
import type { ClassificationReport } from "./report.ts";

/** Heat map of the confusion matrix: rows = true label, columns = predicted; counts written in the cells, colour = share of the true row. */
export function confusionChart(r: ClassificationReport, title: string): VegaLiteSpec {
  const values: Record<string, unknown>[] = [];
  r.labels.forEach((t, i) => {
    const rowTotal = r.confusion[i].reduce((a, b) => a + b, 0);
    r.labels.forEach((p, j) => {
      const count = r.confusion[i][j];
      values.push({ true: t, predicted: p, count, share: rowTotal ? count / rowTotal : 0 });
    });
  });
  const cell = Math.max(28, Math.min(56, 280 / Math.max(1, r.labels.length)));
  return {
    title: { text: title, subtitle: `n = ${r.n}, accuracy = ${r.accuracy.toFixed(3)}, macro F1 = ${r.macro.f1.toFixed(3)}` },
    data: { values },
    width: cell * r.labels.length,
    height: cell * r.labels.length,
    encoding: {
      x: { field: "predicted", type: "nominal", sort: r.labels, title: "predicted", axis: { labelAngle: -30, orient: "top" } },
      y: { field: "true", type: "nominal", sort: r.labels, title: "true" },
    },
    layer: [
      {
        mark: { type: "rect", tooltip: true },
        encoding: {
          color: { field: "share", type: "quantitative", scale: { scheme: "blues", domain: [0, 1] }, title: "share of true row", legend: { format: "%" } },
          tooltip: [
            { field: "true", type: "nominal" },
            { field: "predicted", type: "nominal" },
            { field: "count", type: "quantitative" },
            { field: "share", type: "quantitative", format: ".1%" },
          ],
        },
      },
      {
        mark: { type: "text", fontSize: 11 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
  };
}

/**
 * Reliability diagram: accuracy vs mean confidence per non-empty bin with the dashed diagonal of
 * perfect calibration, above a bar chart of rows per bin. The ECE is in the subtitle.
 */
export function reliabilityChart(c: Calibration, title: string): VegaLiteSpec {
  const values = c.bins.map((b) => ({ ...b, gap: b.confidence - b.accuracy }));
  const filled = values.filter((b) => b.count > 0);
  const scale = { domain: [0, 1] };
  return {
    title: { text: title, subtitle: `ECE = ${c.ece.toFixed(4)} (top-1 confidence, ${c.bins.length} equal-width bins)` },
    vconcat: [
      {
        width: 260,
        height: 240,
        layer: [
          {
            data: { values: [{ x: 0, y: 0 }, { x: 1, y: 1 }] },
            mark: { type: "line", strokeDash: [4, 4], color: "#888888" },
            encoding: { x: { field: "x", type: "quantitative", scale }, y: { field: "y", type: "quantitative", scale } },
          },
          {
            data: { values: filled },
            mark: { type: "line", point: true, tooltip: true, color: "#4c78a8" },
            encoding: {
              x: { field: "confidence", type: "quantitative", scale, title: "mean confidence" },
              y: { field: "accuracy", type: "quantitative", scale, title: "accuracy" },
              tooltip: [
                { field: "lo", type: "quantitative", format: ".2f" },
                { field: "hi", type: "quantitative", format: ".2f" },
                { field: "count", type: "quantitative" },
                { field: "confidence", type: "quantitative", format: ".3f" },
                { field: "accuracy", type: "quantitative", format: ".3f" },
              ],
            },
          },
        ],
      },
      {
        width: 260,
        height: 80,
        data: { values },
        mark: { type: "bar", tooltip: true, color: "#9ecae9" },
        encoding: {
          x: { field: "lo", type: "quantitative", bin: { binned: true }, scale, title: "confidence bin" },
          x2: { field: "hi" },
          y: { field: "count", type: "quantitative", title: "rows" },
        },
      },
    ],
  };
}

/** Metric names recognised in metrics.csv columns (a column ending in one of these is plotted). */
const METRIC_RE = /(loss|accuracy|acc|f1)$/;

/**
 * Learning curves from metrics.csv rows (one per epoch). Columns `train_<metric>` and `val_<metric>`
 * are folded into (epoch, split, metric, value); Keras-style bare names (`loss`, `gender_accuracy`)
 * count as train. Only metrics ending in loss / accuracy / acc / f1 are drawn, one panel each
 * (e.g. `loss`, `gender_accuracy`, `hair_color_macro_f1`), train and val as two coloured lines.
 * Numbers given as strings (a CSV read as text) are parsed; empty cells are skipped.
 */
export function learningCurveChart(metricsRows: Record<string, number | string>[], title: string): VegaLiteSpec {
  const values: { epoch: number; split: string; metric: string; value: number }[] = [];
  for (const row of metricsRows) {
    const epoch = Number(row.epoch);
    if (!Number.isFinite(epoch)) continue;
    for (const [col, raw] of Object.entries(row)) {
      if (col === "epoch" || !METRIC_RE.test(col) || raw === "" || raw === null || raw === undefined) continue;
      const value = Number(raw);
      if (!Number.isFinite(value)) continue;
      const m = /^(train|val)_(.+)$/.exec(col);
      values.push({ epoch, split: m ? m[1] : "train", metric: m ? m[2] : col, value });
    }
  }
  const metrics = [...new Set(values.map((v) => v.metric))];
  // loss first, then the rest in first-seen order.
  metrics.sort((a, b) => Number(b === "loss") - Number(a === "loss"));
  return {
    title,
    data: { values },
    facet: { field: "metric", type: "nominal", sort: metrics, title: null },
    columns: Math.min(3, Math.max(1, metrics.length)),
    spec: {
      width: 220,
      height: 150,
      mark: { type: "line", point: { size: 20 }, tooltip: true },
      encoding: {
        x: { field: "epoch", type: "quantitative", axis: { tickMinStep: 1 } },
        y: { field: "value", type: "quantitative", scale: { zero: false }, title: null },
        color: { field: "split", type: "nominal", sort: ["train", "val"], scale: { domain: ["train", "val"], range: ["#4c78a8", "#f58518"] } },
      },
    },
    resolve: { scale: { y: "independent" } },
  };
}

/**
 * Grouped bars comparing models: one panel per head, accuracy and macro F1 side by side within it,
 * one bar per model (coloured), value written above each bar.
 */
export function comparisonChart(rows: { model: string; head: string; accuracy: number; macro_f1: number }[], title: string): VegaLiteSpec {
  const values = rows.flatMap((r) => [
    { model: r.model, head: r.head, metric: "accuracy", value: r.accuracy },
    { model: r.model, head: r.head, metric: "macro F1", value: r.macro_f1 },
  ]);
  const models = [...new Set(rows.map((r) => r.model))];
  const heads = [...new Set(rows.map((r) => r.head))];
  const encoding = {
    x: { field: "metric", type: "nominal", sort: ["accuracy", "macro F1"], title: null, axis: { labelAngle: 0 } },
    xOffset: { field: "model", type: "nominal", sort: models },
    y: { field: "value", type: "quantitative", scale: { domain: [0, 1] }, title: null },
  };
  return {
    title,
    data: { values },
    facet: { column: { field: "head", type: "nominal", sort: heads, title: null } },
    spec: {
      width: Math.max(120, 36 * models.length * 2),
      height: 180,
      encoding,
      layer: [
        {
          mark: { type: "bar", tooltip: true },
          encoding: { color: { field: "model", type: "nominal", sort: models } },
        },
        {
          mark: { type: "text", dy: -5, fontSize: 9 },
          encoding: { text: { field: "value", type: "quantitative", format: ".2f" } },
        },
      ],
    },
  };
}
