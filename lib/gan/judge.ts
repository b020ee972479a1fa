/**
 * What our classifiers say about generated portraits: the share of each class per head
 * among `count` generated images (seeds 0..count-1, ψ = 1) next to the share among real
 * images, judged by the same trained run. A generator that has learned the data should
 * match the real shares (a collapsed one piles onto a few classes).
 */
import pl from "nodejs-polars";
import { openDataset } from "../data/dataset.ts";
import { loadPredictor } from "../eval/evaluate.ts";
import { loadGenerator, renderW, seedsToW } from "./generate.ts";
import { Rng } from "../util/rng.ts";
import type { VegaLiteSpec } from "../viz/vega.ts";

export interface AttributeJudgement {
  table: pl.DataFrame;
  chart: VegaLiteSpec;
  judge: string;
}

function shares(probs: Float32Array, k: number): number[] {
  const n = probs.length / k, counts = new Array(k).fill(0);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    counts[best]++;
  }
  return counts.map((c) => c / Math.max(n, 1));
}

export async function judgeGenerated(o: { network: string; judgeRun: string; dataroot: string; count: number; seed?: number }): Promise<AttributeJudgement> {
  const g = await loadGenerator(o.network);
  const predictor = await loadPredictor(o.judgeRun, "best");
  try {
    const seeds = Array.from({ length: o.count }, (_, i) => i);
    const cond = g.meta.classes.length > 0;
    const w = seedsToW(g, seeds, seeds.map((i) => (cond ? i % g.meta.classes.length : null)), 1);
    const fake = await renderW(g, w);
    w.dispose();
    const ds = await openDataset({ dataroot: o.dataroot, quiet: true });
    const realRows = new Rng(o.seed ?? 0).shuffle(Int32Array.from(ds.goodRows)).subarray(0, o.count);
    const pf = await predictor.predict(fake, seeds);
    const pr = await predictor.predict(ds.cache.pixels, realRows);
    const rows: { head: string; class: string; real_share: number; generated_share: number }[] = [];
    for (const [head, labels] of Object.entries(predictor.config.heads)) {
      const sr = shares(pr[head], labels.length), sf = shares(pf[head], labels.length);
      labels.forEach((c, i) => rows.push({ head, class: c, real_share: sr[i], generated_share: sf[i] }));
    }
    const table = pl.DataFrame(rows);
    const long = rows.flatMap((r) => [
      { label: `${r.head}: ${r.class}`, images: "real", share: r.real_share },
      { label: `${r.head}: ${r.class}`, images: "generated", share: r.generated_share },
    ]);
    const chart: VegaLiteSpec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: `Attributes of ${o.count} generated vs real portraits, as judged by ${predictor.config.model} (${predictor.config.task})`,
      data: { values: long },
      width: { step: 36 },
      height: 200,
      mark: "bar",
      encoding: {
        x: { field: "label", type: "nominal", title: null, sort: null },
        xOffset: { field: "images", type: "nominal" },
        y: { field: "share", type: "quantitative", axis: { format: "%" }, title: "share of images" },
        color: { field: "images", type: "nominal" },
      },
    };
    return { table, chart, judge: o.judgeRun };
  } finally {
    predictor.dispose();
    g.dispose();
  }
}
