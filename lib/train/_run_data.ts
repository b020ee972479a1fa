/**
 * The data of a training run, shared by trainRun and the frozen-descriptor trainer: the dataset
 * (pixel cache), its name, and the task's splits (created and announced when missing), leaving out
 * the exploration's bad images.
 */
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { defaultBadImagesPath, defaultSplitDir, ensureSplits } from "../data/split.ts";
import { readBadImages } from "../explore/mod.ts";
import { exists } from "../util/fs.ts";
import type { TrainConfig } from "./run.ts";

export async function openRunData(cfg: TrainConfig, opts: { quiet?: boolean } = {}) {
  const ds = await openDataset({ dataroot: cfg.dataroot, attributes: cfg.attributes, cacheDir: cfg.cacheDir, quiet: opts.quiet });
  const name = datasetName(ds.layout);
  const badPath = cfg.badImages ?? defaultBadImagesPath(name);
  const exclude = (await exists(badPath)) ? await readBadImages(badPath) : new Set<number>();
  const { splits, created } = await ensureSplits(ds.attrs, cfg.task, ds.goodRows, {
    dir: cfg.splitDir ?? defaultSplitDir(name),
    exclude,
    seed: cfg.seed,
    log: (m) => console.log(m),
  });
  return { ds, name, splits, created };
}
