/** Demo stages "explore" and "split": the exploration report and the stratified splits per task. */
import { join } from "node:path";
import pl from "nodejs-polars";
import type { DemoContext } from "./demo.ts";
import { initEngine } from "../engine/mod.ts";
import { runExploration } from "../explore/mod.ts";
import { splitShareChart } from "../explore/charts.ts";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { loadExclusion } from "../data/bad_images.ts";
import { ensureSplits, SPLIT_TASKS, splitReport } from "../data/split.ts";
import { saveChart } from "../viz/vega.ts";
import { writeFileAtomic } from "../util/fs.ts";

/** The demo's descriptor kNN reference sample (the exploration's default is 1,500): the first run stays near 5 minutes. */
const DEMO_KNN_REF = 500;

export async function runExploreStage(ctx: DemoContext): Promise<Record<string, unknown>> {
  await initEngine(ctx.backend ? { backend: ctx.backend, source: "--backend" } : {});
  const out = join(ctx.out, "explore");
  const r = await runExploration({ dataroot: ctx.dataroot, attributes: ctx.attributes, out, outliers: { seed: ctx.seed, knnRefSize: DEMO_KNN_REF } });
  const s = r.summary as Record<string, unknown>;
  console.log(`flagged ${r.flags.length}: ${JSON.stringify(s.flaggedByReason)}`);
  if (r.groundTruth) {
    console.log(`outliers vs planted ground truth: precision ${r.groundTruth.precision.toFixed(3)}, recall ${r.groundTruth.recall.toFixed(3)}`);
  }
  console.log(`exploration report: ${out}`);
  return s;
}

export async function runSplitStage(ctx: DemoContext): Promise<Record<string, unknown>> {
  const ds = await openDataset({ dataroot: ctx.dataroot, attributes: ctx.attributes, quiet: true });
  const dir = ctx.splitDir ?? join("assets", "splits", datasetName(ds.layout));
  const badPath = join(ctx.out, "explore", "bad_images.csv");
  const { exclude, note } = await loadExclusion(datasetName(ds.layout), badPath, { optional: true });
  console.log(note);
  const reports: pl.DataFrame[] = [];
  const sizes: Record<string, Record<string, number>> = {};
  for (const task of SPLIT_TASKS) {
    const { splits } = await ensureSplits(ds.attrs, task, ds.goodRows, { dir, exclude, seed: ctx.seed, force: true, log: console.log });
    sizes[task] = { train: splits.train.length, val: splits.val.length, test: splits.test.length };
    reports.push(splitReport(ds.attrs, task, splits));
  }
  const report = pl.concat(reports);
  const out = join(ctx.out, "split");
  await writeFileAtomic(join(out, "split_report.csv"), report.writeCSV().toString());
  const chart = await saveChart(splitShareChart(report), join(out, "split_report"));
  console.log(`splits in ${dir}; report chart ${chart.png}`);
  return { dir, left_out: exclude.size, sizes };
}
