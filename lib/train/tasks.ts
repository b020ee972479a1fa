/**
 * Training tasks: which heads a task trains, their label codes, loss weights
 * and class weights. The Trainer knows nothing of this.
 *
 * Imbalance: single-task runs sample class-balanced batches (weighted
 * sampling on the task's head). The multitask run samples plainly and weights
 * each head's loss by inverse class frequency instead, since one row cannot
 * be balanced for three heads at once. Loss weights (multitask default
 * gender 1, hair_color 1, hair_type 0.5 — a documented fixed choice: hair type
 * is the noisiest label) are configurable with --loss-weights.
 */
import type { Attributes } from "../data/attributes.ts";
import { type HeadName, HEADS } from "../data/schema.ts";
import type { SplitTask } from "../data/split.ts";
import { type TaskSpec, TASKS } from "../data/tasks.ts";
import type { TrainTask } from "./trainer.ts";
import { inverseFrequencyWeights } from "./losses.ts";

export interface TaskOptions {
  /** Inverse-frequency class weights in the loss (default: the task's, TASKS[task].classWeights). */
  classWeights?: boolean;
  lossWeights?: Partial<Record<HeadName, number>>;
}

export function classificationTask(task: SplitTask, attrs: Attributes, trainRows: Int32Array, opts: TaskOptions = {}): TrainTask {
  const spec: TaskSpec = TASKS[task];
  const heads = spec.heads;
  const useClassWeights = opts.classWeights ?? spec.classWeights;
  return {
    name: task,
    heads: heads.map((h) => ({
      name: h,
      labels: HEADS[h].labels,
      lossWeight: opts.lossWeights?.[h] ?? spec.lossWeights[h] ?? 1,
      classWeights: useClassWeights
        ? inverseFrequencyWeights(Array.from(trainRows, (r) => attrs.labels[h][r]), HEADS[h].labels.length)
        : undefined,
    })),
    labels: Object.fromEntries(heads.map((h) => [h, attrs.labels[h]])),
  };
}
