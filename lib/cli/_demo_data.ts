/** Demo stage "data": dataset, validation, cache, mosaics, class balance, normalisation, augmentation preview. */
import { dirname, join } from "node:path";
import type { DemoContext } from "./demo.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { ensureProceduralDataset, writeClassMosaic } from "../data/synthetic/mod.ts";
import { IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { describeAttributes } from "../explore/describe.ts";
import { classBalanceChart } from "../explore/charts.ts";
import { describeProblems, openDataset, writeProblemsCsv } from "../data/dataset.ts";
import { channelStats, DEFAULT_AUGMENT, denormalize, makeTrainBatch, planEpoch } from "../data/batches.ts";
import { saveChart } from "../viz/vega.ts";
import { mosaic } from "../viz/mosaic.ts";
import { Rng } from "../util/rng.ts";
import { initEngine } from "../engine/mod.ts";
import * as tf from "@tensorflow/tfjs-core";

export async function runDataStage(ctx: DemoContext): Promise<Record<string, unknown>> {
  const out = join(ctx.out, "data");
  await Deno.mkdir(out, { recursive: true });
  if (ctx.synthetic) await ensureProceduralDataset({ count: ctx.count, seed: ctx.seed, dataDir: dirname(ctx.dataroot) });
  const ds = await openDataset({ dataroot: ctx.dataroot, attributes: ctx.attributes });
  console.log(`${ds.cache.built ? "built" : "loaded"} pixel cache in ${ds.cache.seconds.toFixed(1)} s: ${ds.cache.binPath}`);
  console.log(describeProblems(ds));
  await writeProblemsCsv(ds, join(out, "problems.csv"));

  // Class balance: the exploration's own table and chart.
  const classCounts = describeAttributes(ds.attrs).classCounts;
  const chart = await saveChart(classBalanceChart(classCounts), join(out, "class_balance"));
  console.log(`class balance chart: ${chart.png}`);

  if (ctx.synthetic) {
    await writeClassMosaic(ctx.dataroot, join(out, "class_mosaic.png"));
    console.log(`class mosaic: ${join(out, "class_mosaic.png")}`);
  }

  const norm = channelStats(ds.cache.pixels, ds.goodRows, 20000, ctx.seed);
  await writeJsonAtomic(join(out, "normalization.json"), norm);
  console.log(`per-channel mean ${norm.mean.map((v) => v.toFixed(4)).join(", ")}, std ${norm.std.map((v) => v.toFixed(4)).join(", ")}`);

  // Augmentation preview: the same 8 portraits, plain and augmented 3 ways.
  await initEngine({ backend: "cpu", verbose: false });
  const rows = planEpoch(ds.goodRows, { batchSize: 8, seed: ctx.seed, epoch: 0 })[0];
  const rng = new Rng(ctx.seed);
  const tiles: { raw: Uint8Array; width: number; height: number; channels: 3; caption?: string }[] = [];
  for (let k = 0; k < 4; k++) {
    const x = makeTrainBatch(ds.cache.pixels, rows, { norm, augment: k === 0 ? undefined : DEFAULT_AUGMENT, rng });
    const px = await denormalize(x, norm);
    x.dispose();
    for (let i = 0; i < rows.length; i++) {
      const sz = IMAGE_HEIGHT * IMAGE_WIDTH * 3;
      tiles.push({ raw: px.subarray(i * sz, (i + 1) * sz), width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3, caption: k === 0 ? "original" : `aug ${k}` });
    }
  }
  await Deno.writeFile(join(out, "augment_preview.png"), await mosaic(tiles.map((t) => ({ image: t, caption: t.caption })), { columns: rows.length, title: "rows: original, then 3 random augmentations" }));
  console.log(`augmentation preview: ${join(out, "augment_preview.png")} (tensors alive: ${tf.memory().numTensors})`);

  return {
    rows: ds.rows,
    imagesOk: ds.goodRows.length,
    problems: ds.problems.length,
    unlisted: ds.unlistedFiles.length,
    cacheSeconds: ds.cache.seconds,
    cacheBuilt: ds.cache.built,
    normalization: norm,
    labelCounts: classCounts.toRecords(),
  };
}
