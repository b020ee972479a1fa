/**
 * The reference CNN of ../shared/FACTS.md, used to compare engines:
 * input 108×84×3; conv3x3/2 32 + BN, conv3x3/2 64, conv3x3/2 128,
 * conv3x3/2 256 (ReLU each), global average pool, dense 2. The ReLU convolutions are the project's Conv2D
 * (lib/models/fused_conv.ts: conv + bias + ReLU one kernel in training too), as in the project's own nets.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { conv2d } from "../lib/models/fused_conv.ts";

export const REF_INPUT: [number, number, number] = [108, 84, 3];

export function buildReferenceCnn(seed = 1): tfl.LayersModel {
  const init = (s: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + s });
  const x = tfl.input({ shape: REF_INPUT });
  let h = tfl.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: "same", useBias: false, kernelInitializer: init(1) }).apply(x) as tfl.SymbolicTensor; // 54×42×32
  h = tfl.layers.batchNormalization().apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.reLU().apply(h) as tfl.SymbolicTensor;
  for (const [i, filters] of [64, 128, 256].entries()) {
    // 27×21×64 → 14×11×128 → 7×6×256
    h = conv2d({ filters, kernelSize: 3, strides: 2, padding: "same", activation: "relu", kernelInitializer: init(i + 2) }).apply(h) as tfl.SymbolicTensor;
  }
  h = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor; // 256
  const y = tfl.layers.dense({ units: 2, kernelInitializer: init(9) }).apply(h) as tfl.SymbolicTensor; // logits
  return tfl.model({ inputs: x, outputs: y, name: "reference_cnn" });
}

/** Forward FLOPs per image (multiply-add = 2) of the conv and dense layers. */
export function forwardFlops(model: tfl.LayersModel): number {
  let flops = 0;
  for (const layer of model.layers) {
    const cfg = layer.getConfig() as Record<string, unknown>;
    const out = layer.outputShape as number[];
    if (layer.getClassName() === "Conv2D") {
      const inShape = (layer.input as tfl.SymbolicTensor).shape as number[];
      const k = cfg.kernelSize as number[];
      flops += 2 * out[1] * out[2] * out[3] * k[0] * k[1] * inShape[inShape.length - 1];
    } else if (layer.getClassName() === "Dense") {
      const inShape = (layer.input as tfl.SymbolicTensor).shape as number[];
      flops += 2 * (inShape[inShape.length - 1] as number) * out[out.length - 1];
    }
  }
  return flops;
}

/** Bytes of all layer outputs for a batch (float32): the activations a training step must keep. */
export function activationBytes(model: tfl.LayersModel, batch: number): number {
  let n = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape as number[];
    n += out.slice(1).reduce((a, b) => a * b, 1);
  }
  return n * batch * 4;
}
