/**
 * Gradients of Mean and Sum without tfjs' `mul(dy, ones(x.shape))`: `ones` fills an array the size of the
 * reduced tensor on the CPU, which the webgpu backend then uploads, every training step (twice per batch norm
 * through tf.moments, once per global average pool: ~140 MB per compact_cnn step at batch 64). On webgpu the
 * gradient is a broadcast of dy on the GPU instead (Tile), the same values; on every other backend tfjs' own
 * gradient runs. The gradient registry is global, so the choice is made per call from the active backend.
 */
import * as tf from "@tensorflow/tfjs-core";

export const GRADIENT_NAMES = ["Mean", "Sum"] as const;

/** The gradient config for `name` that broadcasts on webgpu and defers to `original` elsewhere. */
export function broadcastingGradient(name: typeof GRADIENT_NAMES[number], original: tf.GradConfig): tf.GradConfig {
  return {
    ...original,
    gradFunc: (dy, saved, attrs) => {
      if (tf.getBackend() !== "webgpu") return original.gradFunc(dy, saved, attrs);
      const [x] = saved;
      const axes = tf.util.parseAxisParam((attrs as { axis: number | number[] }).axis, x.shape);
      const expanded = x.shape.slice();
      for (const a of axes) expanded[a] = 1;
      const reduceSize = axes.reduce((n, a) => n * x.shape[a], 1);
      return {
        x: () => {
          const spread = tf.broadcastTo(tf.reshape(dy as tf.Tensor, expanded), x.shape);
          return name === "Mean" ? tf.div(spread, reduceSize) : spread;
        },
      };
    },
  };
}
