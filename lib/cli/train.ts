/**
 * deno task train --dataroot DIR --task gender|haircolor|multitask --exp-name NAME
 *   [--model compact_cnn|face_resnet] [--epochs N] [--batch-size N] [--lr X] [--seed N]
 *   [--backbone-lr-mult X] [--freeze-epochs N] [--trainable-from BLOCK] [--crop aligned|portrait]
 *   [--label-smoothing E] [--tta none|flip] [--decision-bias fit|none] [--ensemble faceapi|none] [--joint bald|none]
 * Without --model the task's recipe (lib/train/run.ts, chosen on real faces) is used.
 *   [--preset debug|demo|full] [--backend NAME] [--resume] [--augment full|geometric|none] [--no-augment] [--sampling weighted|shuffle]
 * Trains a classifier into checkpoints/<exp>/ (config.json, metrics.csv, run.log,
 * learning curve, models/best, models/last). Creates the splits when missing.
 */
import { parseFlags, runCli, usage, UsageError } from "../config.ts";
import { HEAD_NAMES, type HeadName } from "../data/schema.ts";
import { initEngine } from "../engine/mod.ts";
import { FACE_RESNET_BLOCKS, FACE_RESNET_CROPS } from "../models/face_resnet.ts";
import { TASKS, type TaskName } from "../data/tasks.ts";
import { DEFAULT_TRAIN_CONFIG, PRESETS, resolveTrainConfig, resumeTrainConfig, TRAIN_FIELDS, type TrainConfig, trainRun } from "../train/run.ts";
import { UserError } from "../util/errors.ts";

/** Flags of the config fields (lib/train/run.ts TRAIN_FIELDS) plus those of the command itself. */
const SPEC = {
  ...(Object.fromEntries(Object.values(TRAIN_FIELDS).map(({ flag, ...spec }) => [flag, spec])) as { [K in keyof typeof TRAIN_FIELDS as typeof TRAIN_FIELDS[K]["flag"]]: Omit<typeof TRAIN_FIELDS[K], "flag"> }),
  "exp-name": { type: "string", help: "run name: checkpoints/<exp-name>/" },
  "trainable-from": { type: "string", choices: FACE_RESNET_BLOCKS, help: "face_resnet: first trainable block (earlier ones frozen)" },
  crop: { type: "string", choices: FACE_RESNET_CROPS, help: "face_resnet / face_descriptors: aligned face, whole portrait, or both views" },
  preset: { type: "string", choices: Object.keys(PRESETS), help: "named preset (debug ≈ 1 minute)" },
  "no-augment": { type: "boolean", default: false, help: "same as --augment none" },
  "loss-weights": { type: "string", help: "per-head loss weights, e.g. gender=1,hair_color=1,hair_type=0.5 (multitask)" },
  backend: { type: "string", help: "force a tfjs backend" },
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
    const modelOverrides = Object.fromEntries(Object.entries({ trainableFrom: f["trainable-from"], crop: f.crop }).filter(([, v]) => v !== undefined));
    const model = f.model ?? TASKS[(f.task ?? DEFAULT_TRAIN_CONFIG.task) as TaskName].defaultModel;
    if (f["trainable-from"] !== undefined && model !== "face_resnet") throw new UsageError(`train: --trainable-from applies to --model face_resnet only`);
    if (f.crop !== undefined && !["face_resnet", "face_descriptors"].includes(model)) throw new UsageError(`train: --crop applies to --model face_resnet and face_descriptors only`);
    await initEngine({ backend: f.backend });
    if (f.resume && f.preset) throw new UserError("train: --resume continues the run with its saved settings; drop --preset");
    // Every schema field from its flag (undefined when not given: the layers below keep their value).
    const overrides = Object.fromEntries(Object.entries(TRAIN_FIELDS).map(([key, spec]) => [key, (f as Record<string, unknown>)[spec.flag]])) as Partial<TrainConfig>;
    if (!f.resume) delete overrides.resume;
    if (f["no-augment"]) {
      if (f.augment !== undefined && f.augment !== "none") throw new UsageError(`train: --no-augment contradicts --augment ${f.augment}; give one`);
      overrides.augment = "none";
    }
    Object.assign(overrides, { modelOverrides, lossWeights });
    const cfg = f.resume
      ? await resumeTrainConfig({ expName: f["exp-name"], checkpointsDir: f.checkpoints }, overrides)
      : resolveTrainConfig({ dataroot: f.dataroot!, expName: f["exp-name"] }, f.preset, overrides);
    const r = await trainRun(cfg);
    console.log(`best validation macro-F1 ${r.bestScore.toFixed(4)} at epoch ${r.bestEpoch}${r.stoppedEarly ? " (stopped early)" : ""}; run in ${r.runDir}`);
  });
}
