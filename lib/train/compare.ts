/**
 * "Train the models side by side" as the demo and notebooks 03–05 do it, written once: the same
 * config rules for every model of a comparison, so both show the same thing.
 *
 *   const cfg = comparisonConfig({ dataroot, task: "gender", preset: "debug", expPrefix: "nb", checkpointsDir }, "face_resnet");
 *   const run = await trainFresh(cfg);
 */
import { join } from "node:path";
import type { SplitTask } from "../data/split.ts";
import { resolveTrainConfig, type TrainConfig, trainRun, type TrainRunResult } from "./run.ts";

/** The models a comparison trains: from scratch, fine-tuned, and the seconds-fast frozen baseline. */
export const COMPARED_MODELS = ["compact_cnn", "face_resnet", "face_descriptors"] as const;

export interface ComparisonOptions {
  dataroot: string;
  attributes?: string;
  task: SplitTask;
  /** Preset of the trained nets (debug, demo: short runs; full or none: the recipe). */
  preset?: string;
  seed?: number;
  checkpointsDir: string;
  splitDir?: string;
  /** Run names are `<expPrefix>_<task>_<model>`. */
  expPrefix: string;
}

/**
 * One model's config in a comparison: the task's recipe under the preset. Short presets (debug, demo)
 * fine-tune only the pretrained ResNet's last blocks (conv256_down on); the frozen-descriptor baseline
 * trains in seconds with its own defaults, so no preset cuts it short.
 */
export function comparisonConfig(o: ComparisonOptions, model: string): TrainConfig {
  const short = o.preset === "debug" || o.preset === "demo";
  return resolveTrainConfig({ dataroot: o.dataroot, expName: `${o.expPrefix}_${o.task}_${model}` }, model === "face_descriptors" ? undefined : o.preset, {
    attributes: o.attributes,
    task: o.task,
    model,
    seed: o.seed,
    checkpointsDir: o.checkpointsDir,
    splitDir: o.splitDir,
    modelOverrides: model === "face_resnet" && short ? { trainableFrom: "conv256_down" } : {},
  });
}

/** Trains `cfg` into a fresh run folder (an earlier run of the same name is deleted first). */
export async function trainFresh(cfg: TrainConfig, opts: { quiet?: boolean } = { quiet: true }): Promise<TrainRunResult> {
  await Deno.remove(join(cfg.checkpointsDir, cfg.expName), { recursive: true }).catch(() => {});
  return await trainRun(cfg, opts);
}
