/**
 * tfjs-layers' BatchNormalization, with training-mode normalisation as one engine kernel.
 *
 * In training, tfjs-layers' BatchNormalization computes tf.moments(x) (Mean, Sub, Square, Mean: four passes over x
 * and two full-size temporaries) and then the normalisation, FusedBatchNorm, a fifth pass. Where the engine has the
 * kernel (onednn: OnednnBatchNormTrain), this class runs the moments and the normalisation as one oneDNN
 * batch_normalization forward_training primitive, whose gradient is oneDNN's batch-norm backward (OnednnBatchNormGrad,
 * the gradient the tape rewrites of lib/engine/onednn/_tape.ts already gave the five-kernel graph). The moving mean
 * and variance are updated from the same batch moments with the same formula (tfjs-layers keeps the biased variance).
 * Everything else (inference, other backends, an axis other than the last, no centre or no scale) is tfjs-layers'
 * own call.
 *
 * Same class name, configuration and weights as tfjs-layers' BatchNormalization: `registerFusedBatchNorm()` makes
 * deserialised "BatchNormalization" layers this class (lib/models/mod.ts registerCustomLayers), and the project's
 * builders make it with `batchNormalization()`. Saved models are unchanged and load with plain tfjs-layers too.
 * `setBatchNormKernel(false)` turns this path off (bench A/B: onednn_profile --ab-bn), and so does
 * `setConvFusion(false)` (lib/models/fused_conv.ts) with the convolution fusions.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { BATCH_NORM_TRAIN } from "../engine/onednn/mod.ts";
import { convFusion } from "./fused_conv.ts";

type BnArgs = NonNullable<Parameters<typeof tfl.layers.batchNormalization>[0]>;
type Variable = { read(): tf.Tensor; write(t: tf.Tensor): void };
type BnLayer = tfl.layers.Layer & {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: Variable | null;
  beta: Variable | null;
  movingMean: Variable;
  movingVariance: Variable;
};
// tfjs-layers exports the factory, not the class; its constructor is the class.
const LayersBatchNormalization = tfl.layers.batchNormalization({}).constructor as unknown as new (args: BnArgs) => BnLayer;

/** Layers that trained through the engine kernel (for tests: that training went through it). */
export const fusedBatchNormStats = { trainingCalls: 0 };

let useKernel = true;

/** Turns the one-kernel training path on or off (bench A/B; the results are the same either way); returns the previous setting. */
export function setBatchNormKernel(on: boolean): boolean {
  const was = useKernel;
  useKernel = on;
  return was;
}

/**
 * Training-mode batch normalization of x over all axes but the last, as the engine's one kernel:
 * [y, mean, variance] with y = (x − mean) / √(variance + ε) · scale + offset (then max(y, 0) when `relu`) and the
 * biased batch moments. Differentiable in x, scale and offset. Only where `hasBatchNormTrainKernel()`.
 */
export function batchNormTrain(x: tf.Tensor, scale: tf.Tensor1D, offset: tf.Tensor1D, epsilon: number, relu = false): [tf.Tensor, tf.Tensor1D, tf.Tensor1D] {
  const attrs = { varianceEpsilon: epsilon, relu } as unknown as tf.NamedAttrMap;
  return tf.engine().runKernel(BATCH_NORM_TRAIN, { x, scale, offset }, attrs) as unknown as [tf.Tensor, tf.Tensor1D, tf.Tensor1D];
}

/** Whether the current backend runs batchNormTrain (the onednn engine). */
export function hasBatchNormTrainKernel(): boolean {
  return tf.getKernel(BATCH_NORM_TRAIN, tf.getBackend()) !== undefined;
}

/** tfjs-layers' BatchNormalization (same className, config, weights), one engine kernel in training. */
export class BatchNormalization extends LayersBatchNormalization {
  static className = "BatchNormalization";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    return this.normalize(inputs, kwargs, false);
  }

  /** The layer's output, then max(·, 0) when `relu` (fused into the kernel where it runs). */
  protected normalize(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>, relu: boolean): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (
      kwargs["training"] !== true || !useKernel || !convFusion() || !hasBatchNormTrainKernel() || x.dtype !== "float32" || x.rank < 2 ||
      (this.axis !== -1 && this.axis !== x.rank - 1) || this.gamma === null || this.beta === null
    ) {
      if (!relu) return super.call(inputs, kwargs) as tf.Tensor;
      return tf.tidy(() => tf.relu(super.call(inputs, kwargs) as tf.Tensor));
    }
    fusedBatchNormStats.trainingCalls++;
    return tf.tidy(() => {
      const [y, mean, variance] = batchNormTrain(x, this.gamma!.read() as tf.Tensor1D, this.beta!.read() as tf.Tensor1D, this.epsilon, relu);
      // tfjs-layers' moving averages: v ← v − (v − value) · (1 − momentum)
      for (const [v, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const orig = v.read();
          v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
        });
      }
      return y;
    });
  }
}

/**
 * A BatchNormalization followed by a ReLU, as one layer: in training on the engine one kernel for both (oneDNN's
 * fuse_norm_relu; the gradient masks dy by the output's sign, then OnednnBatchNormGrad), elsewhere the batch norm
 * then tf.relu. BatchNormalization's configuration and weights; lib/models/fold.ts folds it into the convolution
 * before it as a batch norm and a ReLU. The project's builders make it for conv → batch norm → ReLU.
 */
export class BatchNormReLU extends BatchNormalization {
  static override className = "TpBatchNormReLU";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    return this.normalize(inputs, kwargs, true);
  }
}

/** tfl.layers.batchNormalization followed by a ReLU, as one BatchNormReLU layer. */
export function batchNormReLU(args: BnArgs = {}): tfl.layers.Layer {
  return new BatchNormReLU(args);
}

/** tfl.layers.batchNormalization, as the one-kernel-in-training BatchNormalization. */
export function batchNormalization(args: BnArgs = {}): tfl.layers.Layer {
  return new BatchNormalization(args);
}

/** Deserialised "BatchNormalization" layers become this class (replacing tfjs-layers' registration), and BatchNormReLU registers. Idempotent. */
export function registerFusedBatchNorm(): void {
  tf.serialization.registerClass(BatchNormalization as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
  tf.serialization.registerClass(BatchNormReLU as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
