/**
 * One training run end to end: dataset → splits (created if missing) → task
 * → model from the registry → Trainer → checkpoints/<exp>/. Used by the
 * `train` CLI, the demo and the notebooks.
 *
 * Config in layers (STYLE.md): typed defaults ← named preset ← explicit
 * options; the final config is written to checkpoints/<exp>/config.json.
 */
import { join } from "node:path";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { defaultBadImagesPath, defaultSplitDir, ensureSplits, type SplitTask, TASK_HEADS } from "../data/split.ts";
import { DEFAULT_AUGMENT } from "../data/batches.ts";
import { IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { createClassifier, mergeDefined } from "../models/mod.ts";
import { readBadImages } from "../explore/mod.ts";
import { classificationTask } from "./tasks.ts";
import { type TrainResult, Trainer } from "./trainer.ts";
import { DESCRIPTOR_MODEL, trainDescriptorHead } from "./descriptor_head.ts";
import { engineChoice } from "../engine/mod.ts";
import { exists, writeJsonAtomic } from "../util/fs.ts";

export interface TrainConfig {
  dataroot: string;
  attributes?: string;
  task: SplitTask;
  expName: string;
  model: string;
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  patience: number;
  warmupEpochs: number;
  stepsPerEpoch?: number;
  augment: boolean;
  sampling: "weighted" | "shuffle";
  /** Loss weights per head (multitask). */
  lossWeights?: Record<string, number>;
  /** Model config overrides (registry defaults otherwise). */
  modelOverrides: Record<string, unknown>;
  checkpointsDir: string;
  splitDir?: string;
  badImages?: string;
  resume: boolean;
  evalBatchSize: number;
}

export const DEFAULT_TRAIN_CONFIG: Omit<TrainConfig, "dataroot" | "expName"> = {
  task: "gender",
  model: "compact_cnn",
  epochs: 30,
  batchSize: 64,
  lr: 1e-3,
  seed: 0,
  patience: 6,
  warmupEpochs: 1,
  augment: true,
  sampling: "weighted",
  modelOverrides: {},
  checkpointsDir: "checkpoints",
  resume: false,
  evalBatchSize: 128,
};

/** Named presets: `debug` trains in about a minute; `full` is the real-data recipe. */
export const PRESETS: Record<string, Partial<TrainConfig>> = {
  debug: { epochs: 3, batchSize: 32, stepsPerEpoch: 12, patience: 3, warmupEpochs: 0 },
  demo: { epochs: 5, batchSize: 32, stepsPerEpoch: 20, patience: 5, warmupEpochs: 1 },
  full: { epochs: 40, batchSize: 64, patience: 8, warmupEpochs: 2 },
};

export function resolveTrainConfig(base: Pick<TrainConfig, "dataroot" | "expName">, preset: string | undefined, overrides: Partial<TrainConfig>): TrainConfig {
  if (preset !== undefined && !(preset in PRESETS)) throw new Error(`train: unknown preset '${preset}'; expected one of ${Object.keys(PRESETS).join(", ")}`);
  const withPreset = mergeDefined({ ...DEFAULT_TRAIN_CONFIG, ...base } as TrainConfig, preset ? PRESETS[preset] : {});
  return mergeDefined(withPreset, overrides);
}

export interface TrainRunResult extends TrainResult {
  runDir: string;
  config: TrainConfig;
  splitsCreated: boolean;
  params: number;
}

export async function trainRun(cfg: TrainConfig, opts: { quiet?: boolean } = {}): Promise<TrainRunResult> {
  // Frozen descriptors + a head trained on them in seconds: its own short loop (lib/train/descriptor_head.ts).
  if (cfg.model === DESCRIPTOR_MODEL) return trainDescriptorHead(cfg, opts);
  const runDir = join(cfg.checkpointsDir, cfg.expName);
  if (!cfg.resume && (await exists(join(runDir, "models", "last")))) {
    throw new Error(`train: ${runDir} already holds a run; pass --resume to continue it or pick another --exp-name`);
  }
  const ds = await openDataset({ dataroot: cfg.dataroot, attributes: cfg.attributes, quiet: opts.quiet });
  const name = datasetName(ds.layout);
  const badPath = cfg.badImages ?? defaultBadImagesPath(name);
  const exclude = (await exists(badPath)) ? await readBadImages(badPath) : new Set<number>();
  const { splits, created } = await ensureSplits(ds.attrs, cfg.task, ds.goodRows, {
    dir: cfg.splitDir ?? defaultSplitDir(name),
    exclude,
    seed: cfg.seed,
    log: (m) => console.log(m),
  });
  const heads = TASK_HEADS[cfg.task];
  const task = classificationTask(cfg.task, ds.attrs, splits.train, { lossWeights: cfg.lossWeights });
  // The face ResNet sees the aligned face crop by default. The hair-colour task
  // needs the hair, so it looks at the whole portrait (demo preset: test macro-F1
  // 0.648 vs 0.433 with the face crop). Multitask keeps the face crop: with the
  // whole portrait its gender head fell from 0.917 to 0.677 macro-F1 and hair did
  // not gain (0.446 vs 0.481). Override with modelOverrides.crop.
  const taskDefaults: Record<string, unknown> = cfg.model === "face_resnet" && cfg.task === "haircolor" ? { crop: "portrait" } : {};
  const created_ = await createClassifier(cfg.model, heads, { ...taskDefaults, ...cfg.modelOverrides }, cfg.seed + 1);
  const params = created_.model.countParams();
  const modelConfig = {
    model: created_.name,
    modelConfig: created_.config,
    task: cfg.task,
    heads: Object.fromEntries(task.heads.map((h) => [h.name, h.labels])),
    input: { height: IMAGE_HEIGHT, width: IMAGE_WIDTH, channels: 3, layout: "NHWC", scale: "pixel/255" },
    normalization: created_.normalization,
    dataset: { name, root: ds.layout.root },
    params,
  };
  await writeJsonAtomic(join(runDir, "config.json"), { ...cfg, ...modelConfig, backend: engineChoice()?.backend ?? null, createdAt: new Date().toISOString() });
  console.log(`train: ${cfg.task} with ${cfg.model} (${params.toLocaleString("en")} parameters) on ${splits.train.length} train / ${splits.val.length} val rows → ${runDir}`);
  const trainer = new Trainer(created_.model, task, ds.cache.pixels, {
    runDir,
    epochs: cfg.epochs,
    batchSize: cfg.batchSize,
    lr: cfg.lr,
    warmupEpochs: cfg.warmupEpochs,
    minLrFraction: 0.02,
    patience: cfg.patience,
    seed: cfg.seed,
    norm: created_.normalization,
    augment: cfg.augment ? DEFAULT_AUGMENT : undefined,
    sampling: cfg.task === "multitask" ? "shuffle" : cfg.sampling,
    samplingHead: heads[0],
    stepsPerEpoch: cfg.stepsPerEpoch,
    evalBatchSize: cfg.evalBatchSize,
    resume: cfg.resume,
    modelConfig,
    quiet: opts.quiet,
  });
  try {
    const result = await trainer.fit(splits.train, splits.val);
    return { ...result, runDir, config: cfg, splitsCreated: created, params };
  } finally {
    trainer.dispose();
    created_.model.dispose();
  }
}
