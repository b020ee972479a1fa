/** Demo stage "engine": choose the tfjs backend and time a small training step on it. */
import * as tf from "@tensorflow/tfjs-core";
import type { DemoContext } from "./demo.ts";
import { initEngine } from "../engine/mod.ts";

export async function runEngineStage(ctx: DemoContext): Promise<Record<string, unknown>> {
  const choice = await initEngine({ backend: ctx.backend });
  // One small conv layer, forward + gradient, as a smoke test of the chosen backend.
  const x = tf.randomNormal([8, 108, 84, 3], 0, 1, "float32", ctx.seed) as tf.Tensor4D;
  const w = tf.variable(tf.randomNormal([3, 3, 3, 16], 0, 0.1, "float32", ctx.seed + 1) as tf.Tensor4D);
  // Reading the loss and gradients back waits for the backend to finish the step (asynchronously: webgpu has no sync read).
  const step = async () => {
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.relu(tf.conv2d(x, w as tf.Tensor4D, 2, "same"))) as tf.Scalar);
    const all = [value, ...Object.values(grads)];
    try {
      await Promise.all(all.map((t) => t.data()));
    } finally {
      tf.dispose(all);
    }
  };
  await step(); // warm-up
  const t0 = performance.now();
  const reps = 3;
  for (let i = 0; i < reps; i++) await step();
  const ms = (performance.now() - t0) / reps;
  tf.dispose([x, w]);
  console.log(`conv3x3/2 forward+backward on 8 images: ${ms.toFixed(1)} ms per step on ${choice.backend}`);
  return { backend: choice.backend, reason: choice.reason, convStepMs: ms };
}
