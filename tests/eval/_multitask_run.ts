// Test fixture: a multitask run folder with an untrained tiny compact_cnn checkpoint (models/best) on a 60-portrait
// procedural set with its multitask splits, for the tests of decision biases and joint decoding.
import { join } from "node:path";
import { createClassifier } from "../../lib/models/mod.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { type Dataset, openDataset } from "../../lib/data/dataset.ts";
import { ensureSplits } from "../../lib/data/split.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { HEAD_NAMES, HEADS } from "../../lib/data/schema.ts";

export async function tinyMultitaskRun(dir: string, config: Record<string, unknown> = {}): Promise<{ ds: Dataset; splitDir: string; runDir: string; heads: Record<string, string[]> }> {
  const data = join(dir, "data");
  await generateSynthetic({ out: data, count: 60, seed: 5, badFraction: 0, duplicateFraction: 0 });
  const ds = await openDataset({ dataroot: data, quiet: true });
  const splitDir = join(dir, "splits");
  await ensureSplits(ds.attrs, "multitask", ds.goodRows, { dir: splitDir, seed: 0, log: () => {} });
  const runDir = join(dir, "run");
  const { model, normalization } = await createClassifier("compact_cnn", [...HEAD_NAMES], { widths: [8, 8, 8, 8], blocksPerStage: 0 }, 7);
  const heads = Object.fromEntries(HEAD_NAMES.map((h) => [h, [...HEADS[h].labels]]));
  await saveCheckpoint(join(runDir, "models", "best"), {
    model,
    config: { model: "compact_cnn", task: "multitask", heads, normalization: normalization ?? REFERENCE_NORMALIZATION, dataset: { name: "synthetic", root: data }, ...config },
  });
  model.dispose();
  return { ds, splitDir, runDir, heads };
}
