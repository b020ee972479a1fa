/**
 * Flags shared by the commands that read a trained run (evaluate, calibrate, predict): which run and
 * checkpoint, where its data, splits and caches are, which backend. One place for their names and help.
 */
import { TRAIN_FIELDS } from "../train/run.ts";
import { DECISION_BIAS_MODES } from "../eval/decision.ts";
import { ENSEMBLES } from "../eval/evaluate.ts";
import { JOINT_MODES } from "../eval/joint.ts";

export const RUN_FLAGS = {
  "exp-name": { type: "string", help: "run name under checkpoints/" },
  ckpt: { type: "string", choices: ["best", "last"], default: "best", help: "which checkpoint" },
  checkpoints: { type: "string", default: "checkpoints", help: "checkpoints folder" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

export const RUN_DATA_FLAGS = {
  dataroot: { type: "string", help: "a Tiny Portraits folder (default: the one the run trained on)" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  "split-dir": { type: "string", help: TRAIN_FIELDS.splitDir.help },
  "cache-dir": { type: "string", help: TRAIN_FIELDS.cacheDir.help },
} as const;

/** Joint decoding of baldness (multitask: hair colour × the hair-type head's baldness, lib/eval/joint.ts). */
export const JOINT_FLAG = {
  type: "string",
  choices: JOINT_MODES,
  default: "auto",
  help: "bald: the hair-colour head's 'bald' joined with the hair-type head's (multitask); auto = as the decision biases were fitted, else the run's recipe",
} as const;

/** How a run's predictions are made: its ensemble and decision biases (evaluate, predict). */
export const PREDICTION_FLAGS = {
  ensemble: { type: "string", choices: ["auto", ...ENSEMBLES], default: "auto", help: "gender averaged with face-api's age/gender net: auto = when the run asks (its recipe), faceapi = always, none = never" },
  "decision-bias": { type: "string", choices: DECISION_BIAS_MODES, default: "auto", help: "auto: the run's decision_bias.json when it has one; none: plain arg-max" },
  joint: JOINT_FLAG,
} as const;
