/**
 * Vega-Lite specs for the exploration report: class balance, missing values,
 * cross-table heat maps, pixel-statistics histograms and outlier counts.
 * Pure spec builders (data inline); render with lib/viz/vega.ts.
 */
import type pl from "nodejs-polars";
import type { VegaLiteSpec } from "../viz/vega.ts";

type Rec = Record<string, unknown>;
const records = (df: pl.DataFrame) => df.toRecords() as Rec[];

/** Bars per class, one panel per attribute; n/a in grey. */
export function classBalanceChart(classCounts: pl.DataFrame): VegaLiteSpec {
  return {
    title: "Class balance per attribute (n/a = not annotated)",
    data: { values: records(classCounts) },
    facet: { field: "attribute", type: "nominal", title: null },
    spec: {
      width: 190,
      height: 160,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: { field: "class", type: "nominal", sort: null, title: null },
        y: { field: "count", type: "quantitative" },
        color: {
          condition: { test: "datum.class === 'n/a'", value: "#bbbbbb" },
          value: "#4c78a8",
        },
      },
    },
    resolve: { scale: { x: "independent", y: "independent" } },
  };
}

export function missingChart(missing: pl.DataFrame): VegaLiteSpec {
  return {
    title: "Missing values per column",
    width: 260,
    height: 120,
    data: { values: records(missing) },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "column", type: "nominal", sort: null, title: null },
      x: { field: "missing_share", type: "quantitative", axis: { format: "%" }, title: "share of rows missing" },
    },
  };
}

/** Heat map of a wide cross table (first column = row label). */
export function crossTableChart(table: pl.DataFrame, title: string): VegaLiteSpec {
  const rowField = table.columns[0];
  const values: Rec[] = [];
  for (const r of records(table)) {
    for (const c of table.columns.slice(1)) values.push({ row: r[rowField], col: c, count: Number(r[c]) });
  }
  return {
    title,
    data: { values },
    width: 40 * (table.columns.length - 1),
    height: 40 * table.height,
    encoding: {
      x: { field: "col", type: "nominal", sort: null, title: null },
      y: { field: "row", type: "nominal", title: rowField },
    },
    layer: [
      { mark: "rect", encoding: { color: { field: "count", type: "quantitative", scale: { scheme: "blues" } } } },
      {
        mark: { type: "text", fontSize: 10 },
        encoding: { text: { field: "count", type: "quantitative" } },
      },
    ],
  };
}

/** Histograms of per-image statistics (log count scale), with the outlier thresholds as red rules. */
export function pixelStatsChart(values: Rec[], thresholds: Rec[]): VegaLiteSpec {
  const panel = (stat: string) => ({
    width: 200,
    height: 140,
    layer: [
      {
        data: { values },
        mark: "bar",
        encoding: {
          x: { field: stat, type: "quantitative", bin: { maxbins: 50 }, title: stat },
          y: { aggregate: "count", type: "quantitative", scale: { type: "symlog" }, title: "images" },
        },
      },
      {
        data: { values: thresholds.filter((t) => t.statistic === stat) },
        mark: { type: "rule", color: "red", strokeWidth: 2 },
        encoding: { x: { field: "value", type: "quantitative" } },
      },
    ],
  });
  return {
    title: "Per-image statistics (red: outlier thresholds)",
    hconcat: ["brightness", "contrast", "log10_sharpness"].map(panel),
  };
}

export function outlierReasonsChart(counts: Rec[]): VegaLiteSpec {
  return {
    title: "Flagged images per reason",
    width: 260,
    height: 140,
    data: { values: counts },
    mark: { type: "bar", tooltip: true },
    encoding: {
      y: { field: "reason", type: "nominal", sort: "-x", title: null },
      x: { field: "count", type: "quantitative" },
    },
  };
}

/** Share of each class in each split, per head (split report). */
export function splitShareChart(report: pl.DataFrame): VegaLiteSpec {
  return {
    title: "Class shares per split (bars of one class should be equal)",
    data: { values: records(report) },
    facet: { row: { field: "label", type: "nominal", title: null } },
    spec: {
      width: 360,
      height: 110,
      mark: { type: "bar", tooltip: true },
      encoding: {
        x: { field: "class", type: "nominal", sort: null, title: null },
        xOffset: { field: "split", sort: ["train", "val", "test"] },
        y: { field: "share", type: "quantitative", axis: { format: "%" } },
        color: { field: "split", type: "nominal", sort: ["train", "val", "test"] },
      },
    },
    resolve: { scale: { x: "independent" } },
  };
}
