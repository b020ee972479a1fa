/**
 * The data of a training run, shared by trainRun and the frozen-descriptor trainer: the dataset
 * (pixel cache), its name, and the task's splits (created and announced when missing), leaving out
 * the exploration's bad images.
 */
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { defaultSplitDir, ensureSplits } from "../data/split.ts";
import { loadExclusion } from "../data/bad_images.ts";
import { UserError } from "../util/errors.ts";
import { type HeadName, HEADS } from "../data/schema.ts";
import { type SplitTask, TASK_HEADS } from "../data/split.ts";
import type { TrainConfig } from "./run.ts";

export type RunData = Awaited<ReturnType<typeof openRunData>>;

export async function openRunData(cfg: TrainConfig, opts: { quiet?: boolean } = {}) {
  const ds = await openDataset({ dataroot: cfg.dataroot, attributes: cfg.attributes, cacheDir: cfg.cacheDir, quiet: opts.quiet });
  const name = datasetName(ds.layout);
  const { exclude } = await loadExclusion(name, cfg.badImages);
  const { splits, created } = await ensureSplits(ds.attrs, cfg.task, ds.goodRows, {
    dir: cfg.splitDir ?? defaultSplitDir(name),
    exclude,
    seed: cfg.seed,
    log: (m) => console.log(m),
  });
  checkClasses(ds.attrs.labels, cfg.task, splits.train);
  return { ds, name, splits, created };
}

/**
 * A classifier needs two classes to learn from: a training split with one class (or none) in the task's
 * main head is refused; in another head it is a warning.
 */
export function checkClasses(labels: Record<HeadName, Int8Array>, task: SplitTask, train: Int32Array): void {
  TASK_HEADS[task].forEach((head, i) => {
    const present = new Set<number>();
    for (const r of train) if (labels[head][r] >= 0) present.add(labels[head][r]);
    if (present.size >= 2) return;
    const which = present.size ? `only '${HEADS[head].labels[[...present][0]]}'` : "no labelled row";
    const msg = `train: the ${task} training split has ${which} for ${head} (${train.length} rows)`;
    if (i === 0) throw new UserError(`${msg}; a classifier needs at least two classes: check the attributes CSV, or re-split with deno task split --force`);
    console.error(`warning: ${msg}; its head learns nothing useful`);
  });
}
