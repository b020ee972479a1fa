/**
 * A compact CNN trained from scratch, designed for 108×84 portraits and for
 * the engine's fast kernels (3×3 convolutions, batch norm, ReLU — what oneDNN
 * and XNNPACK do best). Residual stages halve the resolution each time:
 *   108×84×3 → stem 54×42×w0 → 27×21×w1 → 14×11×w2 → 7×6×w3 → GAP → dropout → [b, w3]
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { batchNormalization, batchNormReLU } from "./fused_bn.ts";

export interface CompactCnnConfig {
  inputHeight: number;
  inputWidth: number;
  /** Channels of the stem and of each stage. */
  widths: number[];
  /** Residual blocks per stage after its strided conv (0 = plain conv stack). */
  blocksPerStage: number;
  /** Dropout on the pooled features. */
  dropout: number;
  /** L2 weight decay on conv kernels (0 = none). */
  weightDecay: number;
  seed: number;
}

export const DEFAULT_COMPACT_CNN_CONFIG: CompactCnnConfig = {
  inputHeight: IMAGE_HEIGHT,
  inputWidth: IMAGE_WIDTH,
  widths: [32, 64, 128, 256],
  blocksPerStage: 1,
  dropout: 0.2,
  weightDecay: 1e-4,
  seed: 1,
};

type T = tfl.SymbolicTensor;

/** Backbone: [b, H, W, 3] (normalised) → [b, widths.at(-1)] features. Uncompiled. */
export function buildCompactCnn(config: CompactCnnConfig = DEFAULT_COMPACT_CNN_CONFIG): tfl.LayersModel {
  let seed = config.seed * 1000;
  const reg = config.weightDecay > 0 ? tfl.regularizers.l2({ l2: config.weightDecay }) : undefined;
  const conv = (h: T, filters: number, strides: number, name: string, relu = true): T => {
    h = tfl.layers.conv2d({
      filters,
      kernelSize: 3,
      strides,
      padding: "same",
      useBias: false,
      kernelInitializer: tfl.initializers.heNormal({ seed: seed++ }),
      kernelRegularizer: reg,
      name: `${name}_conv`,
    }).apply(h) as T;
    // batch norm and ReLU as one layer (one engine kernel in training; lib/models/fused_bn.ts)
    return (relu ? batchNormReLU : batchNormalization)({ name: `${name}_bn` }).apply(h) as T;
  };
  const input = tfl.input({ shape: [config.inputHeight, config.inputWidth, IMAGE_CHANNELS], name: "image" });
  let h = conv(input, config.widths[0], 2, "stem"); // 54×42
  config.widths.slice(1).forEach((w, s) => {
    h = conv(h, w, 2, `stage${s + 1}_down`); // 27×21 → 14×11 → 7×6
    for (let b = 0; b < config.blocksPerStage; b++) {
      const skip = h;
      let r = conv(h, w, 1, `stage${s + 1}_block${b + 1}a`);
      r = conv(r, w, 1, `stage${s + 1}_block${b + 1}b`, false);
      h = tfl.layers.reLU({ name: `stage${s + 1}_block${b + 1}_out` }).apply(tfl.layers.add({ name: `stage${s + 1}_block${b + 1}_add` }).apply([skip, r]) as T) as T;
    }
  });
  h = tfl.layers.globalAveragePooling2d({ name: "pool" }).apply(h) as T;
  if (config.dropout > 0) h = tfl.layers.dropout({ rate: config.dropout, seed: seed++, name: "pool_dropout" }).apply(h) as T;
  return tfl.model({ inputs: input, outputs: h, name: "compact_cnn" });
}
