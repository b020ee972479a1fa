/**
 * deno task train --dataroot DIR --task gender|haircolor|multitask --exp-name NAME
 *   [--model compact_cnn|face_resnet] [--epochs N] [--batch-size N] [--lr X] [--seed N]
 *   [--backbone-lr-mult X] [--freeze-epochs N] [--trainable-from BLOCK] [--crop aligned|portrait]
 *   [--label-smoothing E] [--tta none|flip] [--decision-bias fit|none]
 * Without --model the task's recipe (lib/train/run.ts, chosen on real faces) is used.
 *   [--preset debug|demo|full] [--backend NAME] [--resume] [--no-augment] [--sampling weighted|shuffle]
 * Trains a classifier into checkpoints/<exp>/ (config.json, metrics.csv, run.log,
 * learning curve, models/best, models/last). Creates the splits when missing.
 */
import { parseFlags, runCli, usage, UsageError } from "../config.ts";
import { HEAD_NAMES, type HeadName } from "../data/schema.ts";
import { initEngine } from "../engine/mod.ts";
import { MODEL_NAMES } from "../models/mod.ts";
import { FACE_RESNET_BLOCKS, FACE_RESNET_CROPS } from "../models/face_resnet.ts";
import { TTA_MODES, type TtaMode } from "../models/inference.ts";
import { SPLIT_TASKS, type SplitTask } from "../data/split.ts";
import { PRESETS, resolveTrainConfig, resumeTrainConfig, type TrainConfig, trainRun } from "../train/run.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  dataroot: { type: "string", help: "Tiny Portraits folder" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  task: { type: "string", choices: SPLIT_TASKS, help: "what to learn (default gender)" },
  "exp-name": { type: "string", help: "run name: checkpoints/<exp-name>/" },
  model: { type: "string", choices: MODEL_NAMES, help: "registered model (default: the task's recipe, face_resnet)" },
  epochs: { type: "int", positive: true, help: "epochs" },
  "batch-size": { type: "int", positive: true, help: "batch size" },
  lr: { type: "number", positive: true, help: "peak learning rate of the heads (Adam, warm-up + cosine)" },
  "backbone-lr-mult": { type: "number", nonNegative: true, help: "backbone learning rate = lr × this (0 freezes it)" },
  "freeze-epochs": { type: "int", nonNegative: true, help: "first epochs train the heads only" },
  "trainable-from": { type: "string", choices: FACE_RESNET_BLOCKS, help: "face_resnet: first trainable block (earlier ones frozen)" },
  crop: { type: "string", choices: FACE_RESNET_CROPS, help: "face_resnet / face_descriptors: aligned face, whole portrait, or both views" },
  "label-smoothing": { type: "number", nonNegative: true, help: "label smoothing ε in [0, 1)" },
  tta: { type: "string", choices: TTA_MODES, help: "test-time augmentation for validation/evaluation/prediction" },
  ensemble: { type: "string", choices: ["faceapi", "none"], help: "faceapi: evaluation and prediction average the gender head with face-api's pretrained age/gender net" },
  "decision-bias": { type: "string", choices: ["fit", "none"], help: "fit: per-class decision biases of the multi-class heads on the validation split at the end (deno task calibrate)" },
  seed: { type: "int", nonNegative: true, help: "seed (splits, init, sampling, augmentation)" },
  patience: { type: "int", positive: true, help: "early-stopping patience in epochs" },
  "steps-per-epoch": { type: "int", positive: true, help: "cap steps per epoch" },
  preset: { type: "string", choices: Object.keys(PRESETS), help: "named preset (debug ≈ 1 minute)" },
  sampling: { type: "string", choices: ["weighted", "shuffle"], help: "class-balanced or plain batches" },
  "no-augment": { type: "boolean", default: false, help: "turn augmentation off" },
  "loss-weights": { type: "string", help: "per-head loss weights, e.g. gender=1,hair_color=1,hair_type=0.5 (multitask)" },
  backend: { type: "string", help: "force a tfjs backend" },
  resume: { type: "boolean", default: false, help: "continue the run from models/last" },
  checkpoints: { type: "string", help: "checkpoints folder (default checkpoints)" },
  "split-dir": { type: "string", help: "split folder (default assets/splits/<dataset>)" },
  "cache-dir": { type: "string", help: "cache folder (default $TP_CACHE_DIR/<dataset>-<hash>, else <dataroot>/.tp_cache if writable, else ~/.cache/tiny-portraits/…)" },
} as const;

/** "gender=1,hair_color=0.5" → { gender: 1, hair_color: 0.5 }, with errors naming the bad part. */
export function parseLossWeights(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(",")) {
    const [name, value] = part.split("=").map((x) => x.trim());
    if (!HEAD_NAMES.includes(name as HeadName)) throw new UsageError(`train: --loss-weights: unknown head '${name}'; expected ${HEAD_NAMES.join(", ")}`);
    const v = Number(value);
    if (!(value !== undefined && value !== "" && Number.isFinite(v) && v >= 0)) throw new UsageError(`train: --loss-weights: expected ${name}=<non-negative number>, got '${part}'`);
    out[name] = v;
  }
  return out;
}

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("train", Deno.args, SPEC);
    if (f.help) return void console.log(usage("train", SPEC));
    if (!f["exp-name"] || (!f.dataroot && !f.resume)) throw new UserError("train: --dataroot DIR and --exp-name NAME are required (--resume needs only --exp-name)\n" + usage("train", SPEC));
    const lossWeights = f["loss-weights"] ? parseLossWeights(f["loss-weights"]) : undefined;
    const ls = f["label-smoothing"];
    if (ls !== undefined && ls >= 1) throw new UsageError(`train: expected --label-smoothing to be in [0, 1), got '${ls}'`);
    const modelOverrides = Object.fromEntries(Object.entries({ trainableFrom: f["trainable-from"], crop: f.crop }).filter(([, v]) => v !== undefined));
    const model = f.model ?? "face_resnet";
    if (f["trainable-from"] !== undefined && model !== "face_resnet") throw new UsageError(`train: --trainable-from applies to --model face_resnet only`);
    if (f.crop !== undefined && !["face_resnet", "face_descriptors"].includes(model)) throw new UsageError(`train: --crop applies to --model face_resnet and face_descriptors only`);
    await initEngine({ backend: f.backend });
    if (f.resume && f.preset) throw new UserError("train: --resume continues the run with its saved settings; drop --preset");
    const overrides: Partial<TrainConfig> = {
      attributes: f.attributes,
      task: f.task as SplitTask,
      model: f.model,
      epochs: f.epochs,
      batchSize: f["batch-size"],
      lr: f.lr,
      backboneLrMult: f["backbone-lr-mult"],
      freezeEpochs: f["freeze-epochs"],
      labelSmoothing: ls,
      tta: f.tta as TtaMode | undefined,
      decisionBias: f["decision-bias"] as "fit" | "none" | undefined,
      ensemble: f.ensemble as "faceapi" | "none" | undefined,
      modelOverrides,
      seed: f.seed,
      patience: f.patience,
      stepsPerEpoch: f["steps-per-epoch"],
      sampling: f.sampling as "weighted" | "shuffle" | undefined,
      augment: f["no-augment"] ? false : undefined,
      lossWeights,
      resume: f.resume,
      checkpointsDir: f.checkpoints,
      dataroot: f.dataroot,
      splitDir: f["split-dir"],
      cacheDir: f["cache-dir"],
    };
    const cfg = f.resume
      ? await resumeTrainConfig({ expName: f["exp-name"], checkpointsDir: f.checkpoints }, overrides)
      : resolveTrainConfig({ dataroot: f.dataroot!, expName: f["exp-name"] }, f.preset, overrides);
    const r = await trainRun(cfg);
    console.log(`best validation macro-F1 ${r.bestScore.toFixed(4)} at epoch ${r.bestEpoch}${r.stoppedEarly ? " (stopped early)" : ""}; run in ${r.runDir}`);
  });
}
