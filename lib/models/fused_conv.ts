/**
 * tfjs-layers' Conv2D, with convolution + bias + ReLU as one kernel while training too.
 *
 * tfjs fuses a conv layer's bias and ReLU into one FusedConv2D kernel (one oneDNN primitive with a post-op on the
 * onednn engine) only outside gradient recording: under tf.grads / optimizer.minimize its fused conv2d falls back
 * to Conv2D, then a broadcast Add of the bias, then Relu, two extra passes over every activation of a ReLU conv.
 * This class runs FusedConv2D (bias, relu) in training as well, with its own gradient: dy masked by the ReLU's
 * output (the onednn engine's one-pass OnednnReluGrad where registered, else dy · step(y)), then the two
 * convolution gradients and the bias's sum, the formulas tfjs' fused conv2d gradient uses. Everything else (other
 * activations, no bias, dilation, rank ≠ 2, channels-first, inference) is tfjs-layers' own call.
 *
 * Same class name, configuration and weights as tfjs-layers' Conv2D: `registerFusedConv2D()` makes deserialised
 * "Conv2D" layers this class (lib/models/mod.ts registerCustomLayers), and the project's builders make it with
 * `conv2d()`. Saved models are unchanged and load with plain tfjs-layers too.
 *
 * ConvAddReLU, the end of a residual block (relu(conv(x) + bias + shortcut)), is one oneDNN primitive on the engine
 * (the sum post-op adds the shortcut), in training and inference; the face ResNet builds its blocks with it.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";

// The engine's one-pass ReLU gradient from the output, and its conv + residual + ReLU (registered on onednn only).
import { CONV_ADD_RELU, RELU_GRAD } from "../engine/onednn/mod.ts";

type ConvArgs = Parameters<typeof tfl.layers.conv2d>[0];
type ConvLayer = tfl.layers.Layer & {
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  activation: { getClassName(): string };
  strides: number[];
  padding: "same" | "valid";
  dataFormat: string;
  dilationRate: number[];
  rank: number;
};
// tfjs-layers exports the factory, not the class; its constructor is the class.
const LayersConv2D = tfl.layers.conv2d({ filters: 1, kernelSize: 1 }).constructor as unknown as new (args: ConvArgs) => ConvLayer;

/** Layers made by the fused path (for tests: that training went through it). */
export const fusedConvStats = { trainingCalls: 0 };

let fuse = true;

/**
 * Turns the fusions on or off (bench A/B; the results are the same either way): off, Conv2D trains through
 * tfjs-layers' own call and ConvAddReLU runs tfjs' fused conv2d, add and relu (what the layers it replaces ran).
 * Returns the previous setting.
 */
export function setConvFusion(on: boolean): boolean {
  const was = fuse;
  fuse = on;
  return was;
}

/** Whether the fusions are on (setConvFusion; lib/models/fused_bn.ts follows the same switch). */
export function convFusion(): boolean {
  return fuse;
}

/** dy · step(y) from a ReLU's output y: the engine's one-pass kernel where registered. */
function reluGradFromOutput(dy: tf.Tensor, y: tf.Tensor4D): tf.Tensor4D {
  return (tf.getKernel(RELU_GRAD, tf.getBackend()) !== undefined ? tf.engine().runKernel(RELU_GRAD, { dy, y }, {}) : tf.mul(dy, tf.step(y))) as tf.Tensor4D;
}

/** The gradients of conv2d(x, filter) (NHWC, dilation 1) for the output gradient dz: [dx, dfilter]. */
function convGradients(dz: tf.Tensor4D, x: tf.Tensor4D, filter: tf.Tensor4D, strides: [number, number], pad: "same" | "valid"): [tf.Tensor, tf.Tensor] {
  const engine = tf.engine();
  const attrs = { strides, pad, dataFormat: "NHWC", dimRoundingMode: undefined };
  return [
    engine.runKernel("Conv2DBackpropInput", { dy: dz, filter }, { ...attrs, inputShape: x.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
    engine.runKernel("Conv2DBackpropFilter", { x, dy: dz }, { ...attrs, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor,
  ];
}

/**
 * relu(conv2d(x, filter) + bias) (NHWC, dilation 1) as one FusedConv2D kernel, differentiable: the gradient is
 * tfjs' fused-conv gradient for a ReLU, with the mask read from the output.
 */
export function conv2dBiasRelu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: [number, number], pad: "same" | "valid"): tf.Tensor4D {
  const attrs = { strides, pad, dataFormat: "NHWC", dilations: [1, 1], activation: "relu" } as unknown as tf.NamedAttrMap;
  return withReluConvGradient(([xx, ff, bb]) => tf.engine().runKernel("FusedConv2D", { x: xx, filter: ff, bias: bb }, attrs) as tf.Tensor4D, x, filter, bias, null, strides, pad);
}

/**
 * `forward` (inputs [x, filter, bias?, residual?] → relu(conv2d(x, filter) + bias + residual)) made differentiable:
 * dy masked by the output's sign (also the residual's gradient), the convolution's two gradients, the bias's sum.
 */
function withReluConvGradient(
  forward: (inputs: tf.Tensor[]) => tf.Tensor4D,
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D | null,
  residual: tf.Tensor4D | null,
  strides: [number, number],
  pad: "same" | "valid",
): tf.Tensor4D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const y = forward(inputs);
    save([inputs[0], inputs[1], y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sx, sf, sy] = saved as tf.Tensor4D[];
        const dz = reluGradFromOutput(dy, sy);
        return [...convGradients(dz, sx, sf, strides, pad), ...(bias ? [tf.sum(dz, [0, 1, 2])] : []), ...(residual ? [tf.clone(dz)] : [])];
      },
    };
  });
  return op(...[x, filter, ...(bias ? [bias] : []), ...(residual ? [residual] : [])]) as tf.Tensor4D;
}

/** tfjs-layers' Conv2D (same className, config, weights), fused in training where conv2dBiasRelu applies. */
export class Conv2D extends LayersConv2D {
  static className = "Conv2D";

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    if (
      fuse && tf.engine().state.gradientDepth > 0 && this.activation.getClassName() === "relu" && this.bias != null && this.rank === 2 &&
      this.dataFormat === "channelsLast" && this.dilationRate.every((d) => d === 1) && x.rank === 4 && x.dtype === "float32"
    ) {
      fusedConvStats.trainingCalls++;
      return conv2dBiasRelu(x as tf.Tensor4D, this.kernel.read() as tf.Tensor4D, this.bias.read() as tf.Tensor1D, this.strides as [number, number], this.padding);
    }
    return super.call(inputs, kwargs);
  }
}

/**
 * relu(conv2d(x, filter) + bias + residual) (NHWC, dilation 1): a residual block's second convolution, its shortcut
 * sum and its ReLU. Where the engine has the kernel (onednn), one primitive whose sum post-op adds the residual;
 * elsewhere tfjs' fused conv2d, add and relu. Differentiable: the gradient masks dy by the output's sign (the
 * engine's OnednnReluGrad where registered), which is the residual's gradient, then the convolution's two gradients
 * and the bias's sum.
 */
export function convAddRelu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D | null, residual: tf.Tensor4D, strides: [number, number], pad: "same" | "valid"): tf.Tensor4D {
  const engine = tf.engine();
  if (!fuse) return tf.tidy(() => tf.relu(tf.add(tf.fused.conv2d({ x, filter, strides, pad, bias: bias ?? undefined }), residual)));
  const forward = (xx: tf.Tensor4D, ff: tf.Tensor4D, bb: tf.Tensor1D | null, rr: tf.Tensor4D): tf.Tensor4D => {
    if (tf.getKernel(CONV_ADD_RELU, tf.getBackend()) !== undefined) {
      const inputs: tf.NamedTensorMap = bb ? { x: xx, filter: ff, bias: bb, residual: rr } : { x: xx, filter: ff, residual: rr };
      return engine.runKernel(CONV_ADD_RELU, inputs, { strides, pad, activation: "relu" } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    }
    return tf.tidy(() => tf.relu(tf.add(tf.fused.conv2d({ x: xx, filter: ff, strides, pad, bias: bb ?? undefined }), rr)));
  };
  if (engine.state.gradientDepth === 0) return forward(x, filter, bias, residual);
  return withReluConvGradient((ts) => forward(ts[0] as tf.Tensor4D, ts[1] as tf.Tensor4D, bias ? ts[2] as tf.Tensor1D : null, ts[ts.length - 1] as tf.Tensor4D), x, filter, bias, residual, strides, pad);
}

/**
 * relu(Conv2D(x) + residual) as one layer with inputs [x, residual]: the end of a residual block (the face ResNet
 * builds its blocks with it; lib/models/fold.ts makes one of a linear Conv2D → Add → ReLU in the inference copy of
 * models saved before). The Conv2D's configuration and weights (kernel, bias), its layer name that of the conv.
 */
export class ConvAddReLU extends Conv2D {
  static override className = "ConvAddReLU";

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shapes = inputShape as tfl.Shape[];
    super.build(shapes[0]);
    const spec = (this as unknown as { inputSpec: unknown[] }).inputSpec;
    (this as unknown as { inputSpec: unknown[] }).inputSpec = [spec[0], { ndim: 4 }];
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return super.computeOutputShape((inputShape as tfl.Shape[])[0]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const [x, residual] = inputs as tf.Tensor[];
    if (this.activation.getClassName() !== "linear" || this.rank !== 2 || this.dataFormat !== "channelsLast" || !this.dilationRate.every((d) => d === 1)) {
      throw new Error(`ConvAddReLU ${this.name}: expected a linear channels-last 2-D convolution without dilation`);
    }
    return convAddRelu(x as tf.Tensor4D, this.kernel.read() as tf.Tensor4D, (this.bias?.read() ?? null) as tf.Tensor1D | null, residual as tf.Tensor4D, this.strides as [number, number], this.padding);
  }
}

/** tfl.layers.conv2d, as the fused-in-training Conv2D. */
export function conv2d(args: ConvArgs): tfl.layers.Layer {
  return new Conv2D(args);
}

/** Deserialised "Conv2D" layers become this Conv2D (replacing tfjs-layers' registration), and ConvAddReLU registers. Idempotent. */
export function registerFusedConv2D(): void {
  tf.serialization.registerClass(Conv2D as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
  tf.serialization.registerClass(ConvAddReLU as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
