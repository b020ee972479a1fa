/**
 * Batched inference of a multi-head classifier over dataset rows: softmax
 * probabilities per head ([n×k] row-major), every batch tidy.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { makeBatch, type Normalization } from "../data/batches.ts";
import { foldBatchNorms } from "./fold.ts";
import { disposeModel } from "./mod.ts";

/** Test-time augmentation: "none", or "flip" (mean of the softmax of the portrait and of its mirror image). */
export const TTA_MODES = ["none", "flip"] as const;
export type TtaMode = typeof TTA_MODES[number];

export interface PredictOptions {
  norm: Normalization;
  /** Test-time augmentation (default "none"). */
  tta?: TtaMode;
  batchSize?: number;
  /** Head names in the order wanted (default: the model's output order). */
  heads?: string[];
  onProgress?: (done: number, total: number) => void;
}

/**
 * Softmax probabilities per head for `rows` of a pixel buffer. Runs an inference copy of the model with its
 * batch norms folded into the convolutions (lib/models/fold.ts; same outputs up to float rounding).
 */
export async function predictHeads(trained: tfl.LayersModel, pixels: Uint8Array, rows: ArrayLike<number>, opts: PredictOptions): Promise<Record<string, Float32Array>> {
  const folded = await foldBatchNorms(trained);
  try {
    return await predictWith(folded.model, pixels, rows, opts);
  } finally {
    if (folded.copy) disposeModel(folded.model);
  }
}

async function predictWith(model: tfl.LayersModel, pixels: Uint8Array, rows: ArrayLike<number>, opts: PredictOptions): Promise<Record<string, Float32Array>> {
  const heads = opts.heads ?? model.outputNames;
  const order = heads.map((h) => {
    const i = model.outputNames.indexOf(h);
    if (i < 0) throw new Error(`the model has no output '${h}' (outputs: ${model.outputNames.join(", ")})`);
    return i;
  });
  const sizes = order.map((i) => model.outputs[i].shape[1] as number);
  const out: Record<string, Float32Array> = Object.fromEntries(heads.map((h, j) => [h, new Float32Array(rows.length * sizes[j])]));
  const bs = opts.batchSize ?? 128;
  for (let s = 0; s < rows.length; s += bs) {
    const batch = Array.from({ length: Math.min(bs, rows.length - s) }, (_, i) => rows[s + i]);
    const x = makeBatch(pixels, batch, { norm: opts.norm });
    const probs = tf.tidy(() => {
      const run = (input: tf.Tensor) => {
        const y = model.apply(input, { training: false }) as tf.Tensor | tf.Tensor[];
        const ys = Array.isArray(y) ? y : [y];
        return order.map((i) => tf.softmax(ys[i]));
      };
      const plain = run(x);
      if (opts.tta !== "flip") return plain;
      const mirrored = run(tf.reverse(x, 2)); // [b,H,W,3]: axis 2 is the width
      return plain.map((p, j) => tf.mul(tf.add(p, mirrored[j]), 0.5));
    });
    for (let j = 0; j < heads.length; j++) out[heads[j]].set(await probs[j].data(), s * sizes[j]);
    tf.dispose([x, ...probs]);
    opts.onProgress?.(s + batch.length, rows.length);
  }
  return out;
}
