/**
 * The task registry: everything a task means, in one place. Split, train, evaluate, the demo and the
 * notebooks read it; adding a task (or a head to one) touches this file and, for a new label, schema.ts.
 *
 *   TASKS.haircolor.heads        // ["hair_color"]
 *   TASKS.multitask.sampling     // "shuffle": heads are masked per row, class weights balance the classes
 */
import { HEAD_NAMES, type HeadName } from "./schema.ts";

export interface TaskSpec {
  /** Heads the task trains; the first is its main head (class-balanced sampling, the one-class check). */
  heads: readonly HeadName[];
  /** Heads whose label a row must have to take part (rows with n/a there are left out of the task). */
  required: readonly HeadName[];
  /** Heads whose labels make a row's stratum for the split. */
  strata: readonly HeadName[];
  /**
   * How training draws batches: "weighted" = class-balanced on the main head; "shuffle" = plain epochs
   * (multitask: one row cannot be balanced for three heads at once).
   */
  sampling: "weighted" | "shuffle";
  /** Inverse-frequency class weights in each head's loss. */
  classWeights: boolean;
  /** Loss weight per head (--loss-weights overrides). Hair type is the noisiest label: 0.5, a documented fixed choice. */
  lossWeights: Readonly<Partial<Record<HeadName, number>>>;
  /** The model `train` uses without --model (chosen on real faces: README, "Recipes"). */
  defaultModel: string;
}

export const TASKS = {
  gender: { heads: ["gender"], required: ["gender"], strata: ["gender"], sampling: "weighted", classWeights: false, lossWeights: { gender: 1 }, defaultModel: "face_resnet" },
  haircolor: { heads: ["hair_color"], required: ["hair_color"], strata: ["hair_color"], sampling: "weighted", classWeights: false, lossWeights: { hair_color: 1 }, defaultModel: "face_resnet" },
  multitask: {
    heads: HEAD_NAMES,
    required: ["gender"],
    strata: HEAD_NAMES,
    sampling: "shuffle",
    classWeights: true,
    lossWeights: { gender: 1, hair_color: 1, hair_type: 0.5 },
    defaultModel: "face_resnet",
  },
} as const satisfies Record<string, TaskSpec>;

export type TaskName = keyof typeof TASKS;
export const TASK_NAMES = Object.keys(TASKS) as TaskName[];

/** A task's spec, or a clear error for an unknown name. */
export function taskSpec(name: string): TaskSpec {
  const t = (TASKS as Record<string, TaskSpec>)[name];
  if (!t) throw new Error(`unknown task '${name}'; expected one of ${TASK_NAMES.join(", ")}`);
  return t;
}
