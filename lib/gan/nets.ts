/**
 * A GAN for 108×84 portraits, sized for CPU training:
 *
 *   mapping      z (pixel-normalised) [+ class embedding] → MLP → w
 *   synthesis    w → dense 14×11×c0 → [4×4 transposed conv stride 2 (or nearest ×2 → conv3×3) → batch norm → relu] ×3
 *                → 112×88 → conv3×3 → tanh → centre crop 108×84
 *                (optional: a fixed blur after each transposed conv; skip-layer excitation, FastGAN: the 14×11
 *                features gate the 56×44 ones' channels, the 28×22 features the 112×88 ones')
 *   discriminator  108×84×3·pack (PacGAN: `pack` samples stacked on the channels; 1 = one sample)
 *                → conv3×3 → [conv3×3 stride 2 → lrelu (+ conv3×3)] ×4 → 7×6
 *                → flatten → dense [+ dense(minibatch standard deviation), when mbstdGroup > 0]
 *                → lrelu → score (+ projection ⟨embed(class), features⟩ when conditional)
 *   or, with discriminator "projected" (Projected GAN): heads on the frozen face features of
 *                lib/gan/features.ts (face-api's age/gender TinyXception) of each view (the face square,
 *                the whole portrait, or both), one per view and scale:
 *                28×28×64 → conv3×3 stride 2 → 14×14×p;  14×14×128 → conv3×3 → 14×14×p;
 *                7×7×512 → conv3×3 → 7×7×p;  each → lrelu → conv3×3 → 1-channel logit map → mean
 *                → one score per view and scale [b, views×3] (the hinge loss averages them); unconditional only.
 *
 * The generator's batch norms keep running statistics (buffers, updated by every
 * training-mode pass, used for sampling); the discriminator has no normalisation (optional
 * spectral normalisation, see lib/gan/train.ts). The generator is split into `mapping` and `synthesis` so the
 * truncation trick can work in w space.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { FACE_FEATURE_SCALES, type FaceFeatures } from "./features.ts";
import { batchNormReLU } from "../models/fused_bn.ts";

/** What the discriminator looks at: the pixels (its own conv net) or frozen pretrained face features. */
export const GAN_DISCRIMINATORS = ["image", "projected"] as const;
export type GanDiscriminator = typeof GAN_DISCRIMINATORS[number];
/** What the projected discriminator's frozen net looks at: the face square, the whole portrait, or both. */
export const PROJECTED_VIEWS = ["face", "portrait", "both"] as const;
export type ProjectedView = typeof PROJECTED_VIEWS[number];
/** How the generator doubles its resolution: a learned 4×4 stride-2 transposed convolution, or nearest-neighbour ×2 then a 3×3 convolution. */
export const G_UPSAMPLES = ["transposed", "nearest"] as const;
export type GUpsample = typeof G_UPSAMPLES[number];
/** The views of a ProjectedView setting, in the order the features and heads use. */
export const projectedViews = (v: ProjectedView): ("face" | "portrait")[] => (v === "both" ? ["face", "portrait"] : [v]);

export interface GanConfig {
  /** Length of z and of w. */
  latentDim: number;
  wDim: number;
  mappingLayers: number;
  /** Generator channels at 14×11, 28×22, 56×44, 112×88. */
  gWidths: [number, number, number, number];
  /** Extra 3×3 convs at the two lowest generator resolutions (cheap, adds capacity). */
  gExtraLowRes: boolean;
  /**
   * Skip-layer excitation (FastGAN, Liu et al. 2021): each sample's 14×11 features, averaged over the positions,
   * → dense → leaky ReLU → dense → sigmoid, scale the channels of its 56×44 features; the 28×22 features do the same for
   * the 112×88 ones. The layers that draw detail learn from the whole face's layout; a shorter gradient path to them.
   * False = off (runs made before it existed).
   */
  gSkipExcitation: boolean;
  /**
   * A fixed [1,2,1]ᵀ[1,2,1]/16 blur of each channel after every transposed convolution (StyleGAN2's low-pass
   * upsampling): it removes the highest frequency, where the stride-2 kernel's four phases leave a checkerboard.
   * Not trained. False = off (runs made before it existed).
   */
  gUpsampleBlur: boolean;
  /**
   * "transposed" (runs made before it existed): a 4×4 stride-2 transposed convolution per doubling. "nearest"
   * (FastGAN's up-block): each pixel copied into a 2×2 block, then a 3×3 convolution: all four output phases use the
   * same weights, so no checkerboard from the upsampling; run as the tied transposed convolution it equals
   * (NearestUpConv), at the same cost.
   */
  gUpsample: GUpsample;
  /** Discriminator channels: stem at 108×84, then at 54×42, 27×21, 14×11, 7×6. */
  dWidths: [number, number, number, number, number];
  /** Classes to condition on (0 = unconditional). */
  numClasses: number;
  /**
   * "image" (default): the conv net on pixels above; "projected": trainable heads on face-api's frozen
   * age/gender features (lib/gan/features.ts; unconditional only; dWidths unused).
   */
  discriminator: GanDiscriminator;
  /**
   * Minibatch standard deviation (ProGAN/StyleGAN) on the discriminator's flattened 7×6 features: the spread of
   * each group of this many samples, projected by a dense layer into the feature layer, lets the discriminator see a
   * batch of near-identical samples (mode collapse) and punish it. 0 = off (runs made before it existed). 4 by
   * default: with the per-pair mode-seeking term, measured on tp_real (README), the fewest near-duplicates per set of 64
   * over two seeds (means 7.8 and 12.0, where the term alone, two seeds: 12.1 and 28.5) at the same FDD.
   */
  mbstdGroup: number;
  /**
   * PacGAN (Lin et al. 2018): the image discriminator judges packs of this many samples of one kind (all real or
   * all generated), stacked on the channels, one score per pack. A pack of two near-identical samples is easy to
   * tell from a pack of two different real portraits, so collapse costs the generator more. 1 = off (one sample
   * per score; runs made before it existed). The batch must be a multiple of it; unconditional only.
   */
  pack: number;
  /** Channels of each projected head's hidden conv. */
  projectedWidth: number;
  /**
   * What the projected discriminator's net sees: the face square (where the net was trained: eyes, nose,
   * mouth at its scale), the whole portrait letterboxed (hair, shoulders, background), or both (heads on each).
   */
  projectedView: ProjectedView;
  seed: number;
}

export const DEFAULT_GAN_CONFIG: GanConfig = {
  latentDim: 128,
  wDim: 128,
  mappingLayers: 2,
  gWidths: [128, 64, 32, 16],
  gExtraLowRes: true,
  gSkipExcitation: false,
  gUpsampleBlur: false,
  gUpsample: "transposed",
  dWidths: [16, 32, 64, 128, 256],
  numClasses: 0,
  discriminator: "image",
  mbstdGroup: 4,
  pack: 1,
  projectedWidth: 64,
  projectedView: "both",
  seed: 1,
};

/** Generated area before the centre crop: 112×88 = 8 × (14×11). */
const GEN_H = 112, GEN_W = 88, BASE_H = 14, BASE_W = 11;

/** x / sqrt(mean(x², channels) + ε) per pixel (ProGAN). No weights, no state. */
export class PixelNorm extends tfl.layers.Layer {
  static className = "PixelNorm";
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-8))));
  }
  override computeOutputShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return shape;
  }
}
/**
 * Minibatch standard deviation (ProGAN; StyleGAN's grouped form, one feature) of flat features [b, f]: the batch is
 * split into groups of `groupSize` (the largest divisor of the batch not above it; sample i joins group i mod (b / g));
 * per group, the standard deviation of every feature across the group's samples, averaged over the features, is
 * each of its samples' output → [b, 1]. No weights. The discriminator adds a dense projection of it to its feature
 * layer, which is a dense layer over [features, std] written without the concat: the gradient of a concat, a SplitV,
 * runs in tfjs' JavaScript at 0.14–0.2 s per call on these shapes.
 */
export class MinibatchStd extends tfl.layers.Layer {
  static className = "MinibatchStd";
  readonly groupSize: number;
  constructor(args: { groupSize: number; name?: string }) {
    super(args);
    if (!(Number.isInteger(args.groupSize) && args.groupSize >= 1)) throw new Error(`MinibatchStd: expected groupSize to be a positive integer, got ${args.groupSize}`);
    this.groupSize = args.groupSize;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
    if (x.rank !== 2) throw new Error(`MinibatchStd: expected flat features [batch, features], got shape [${x.shape}]`);
    return tf.tidy(() => {
      const [b, f] = x.shape;
      let g = Math.min(this.groupSize, b);
      while (b % g) g--;
      const y = tf.reshape(x, [g, b / g, f]);
      const centred = tf.sub(y, tf.mean(y, 0, true));
      const std = tf.sqrt(tf.add(tf.mean(tf.square(centred), 0), 1e-8)); // [b/g, f]
      const perGroup = tf.mean(std, 1, true); // [b/g, 1]
      return tf.tile(perGroup, [g, 1]); // row i ← group i mod (b/g)
    });
  }
  override computeOutputShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
    return [s[0], 1];
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groupSize: this.groupSize };
  }
}

type Initializer = ReturnType<typeof tfl.initializers.heNormal>;

/**
 * FastGAN's up-block convolution, nearest-neighbour ×2 then a 3×3 convolution ("same", no bias), computed as the
 * transposed 4×4 stride-2 convolution it equals: along each axis, output row 2i takes source rows i−1 and i with
 * weights K₀ and K₁+K₂, row 2i+1 rows i and i+1 with K₀+K₁ and K₂, so the 4×4 kernel is [K₂, K₁+K₂, K₀+K₁, K₀]
 * per axis (NEAREST_TAPS · K · NEAREST_TAPSᵀ: one matrix product with their Kronecker product, then a transpose to
 * conv2dTranspose's layout). One trainable 3×3 kernel shared by the four output phases (no checkerboard from learned
 * phases), at the transposed convolution's cost (upsampling first costs 2.25× the multiply-adds) and on oneDNN's
 * convolution: tfjs' ResizeNearestNeighbor runs in JavaScript (seconds per batch at 112×88) and oneDNN 2.6.3's jit
 * resampling crashes on NHWC tensors of these sizes (tried, also from C).
 */
export class NearestUpConv extends tfl.layers.Layer {
  static className = "NearestUpConv";
  readonly filters: number;
  private readonly kernelInitializer: Initializer;
  private kernel: tfl.LayerVariable | null = null;
  constructor(args: { filters: number; kernelInitializer?: Initializer; name?: string }) {
    super(args);
    if (!(Number.isInteger(args.filters) && args.filters >= 1)) throw new Error(`NearestUpConv: expected filters to be a positive integer, got ${args.filters}`);
    this.filters = args.filters;
    this.kernelInitializer = args.kernelInitializer ?? tfl.initializers.heNormal({});
  }
  override build(shape: tfl.Shape | tfl.Shape[]): void {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
    this.kernel = this.addWeight("kernel", [3, 3, s[3]!, this.filters], "float32", this.kernelInitializer);
    this.built = true;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return tf.tidy(() => {
      const [b, h, w, ci] = x.shape, co = this.filters;
      // [4·4, 3·3] · [3·3, ci·co] → the 4×4 kernel, then to conv2dTranspose's [4, 4, co, ci].
      const k4 = tf.matMul(tf.tensor2d(NEAREST_TAPS_2D), tf.reshape(this.kernel!.read(), [9, ci * co]));
      const w4 = tf.transpose(tf.reshape(k4, [4, 4, ci, co]), [0, 1, 3, 2]) as tf.Tensor4D;
      return tf.conv2dTranspose(x, w4, [b, 2 * h, 2 * w, co], 2, "same");
    });
  }
  override computeOutputShape(shape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    const s = (Array.isArray(shape[0]) ? shape[0] : shape) as tfl.Shape;
    return [s[0], s[1] === null ? null : 2 * s[1]!, s[2] === null ? null : 2 * s[2]!, this.filters];
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters };
  }
}
/** Along one axis: tap r of the 4×4 kernel = Σ_s NEAREST_TAPS[r][s] · tap s of the 3×3 one (NearestUpConv). */
const NEAREST_TAPS = [[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]];
/** Both axes at once (the Kronecker product NEAREST_TAPS ⊗ NEAREST_TAPS): tap (a, b) from taps (r, s), row-major. */
const NEAREST_TAPS_2D = NEAREST_TAPS.flatMap((ra) => NEAREST_TAPS.map((rb) => ra.flatMap((x) => rb.map((y) => x * y))));

/** Registers the GAN's custom layers for tfjs deserialisation (registerCustomLayers in mod.ts calls it). */
export function registerGanLayers(): void {
  tf.serialization.registerClass(PixelNorm);
  tf.serialization.registerClass(MinibatchStd);
  tf.serialization.registerClass(NearestUpConv);
}

type T = tfl.SymbolicTensor;

export interface GanModels {
  mapping: tfl.LayersModel;
  synthesis: tfl.LayersModel;
  /** For "projected": the trainable heads only, inputs the FACE_FEATURE_SCALES maps. */
  discriminator: tfl.LayersModel;
  /** The frozen feature net a "projected" discriminator sees the image through (never trained or saved). */
  features?: FaceFeatures;
}

function checkConfig(c: GanConfig): void {
  const pos = (v: number) => Number.isInteger(v) && v > 0;
  if (!pos(c.latentDim) || !pos(c.wDim) || !pos(c.mappingLayers)) {
    throw new Error(`gan: expected positive integer latentDim, wDim, mappingLayers, got ${c.latentDim}, ${c.wDim}, ${c.mappingLayers}`);
  }
  if (c.gWidths.length !== 4 || !c.gWidths.every(pos)) throw new Error(`gan: expected gWidths to be 4 positive integers, got ${JSON.stringify(c.gWidths)}`);
  if (c.dWidths.length !== 5 || !c.dWidths.every(pos)) throw new Error(`gan: expected dWidths to be 5 positive integers, got ${JSON.stringify(c.dWidths)}`);
  if (!Number.isInteger(c.numClasses) || c.numClasses < 0) throw new Error(`gan: expected numClasses ≥ 0, got ${c.numClasses}`);
  if (!G_UPSAMPLES.includes(c.gUpsample)) throw new Error(`gan: expected gUpsample to be one of ${G_UPSAMPLES.join(", ")}, got '${c.gUpsample}'`);
  if (!GAN_DISCRIMINATORS.includes(c.discriminator)) throw new Error(`gan: expected discriminator to be one of ${GAN_DISCRIMINATORS.join(", ")}, got '${c.discriminator}'`);
  if (!Number.isInteger(c.mbstdGroup) || c.mbstdGroup < 0) throw new Error(`gan: expected mbstdGroup to be an integer ≥ 0, got ${c.mbstdGroup}`);
  if (!pos(c.pack)) throw new Error(`gan: expected pack to be a positive integer, got ${c.pack}`);
  if (c.pack > 1 && (c.discriminator !== "image" || c.numClasses > 0)) throw new Error(`gan: pack ${c.pack} needs the unconditional image discriminator`);
  if (!pos(c.projectedWidth)) throw new Error(`gan: expected projectedWidth to be a positive integer, got ${c.projectedWidth}`);
  if (!PROJECTED_VIEWS.includes(c.projectedView)) throw new Error(`gan: expected projectedView to be one of ${PROJECTED_VIEWS.join(", ")}, got '${c.projectedView}'`);
  if (c.discriminator === "projected" && c.numClasses > 0) throw new Error(`gan: the projected discriminator is unconditional; got numClasses ${c.numClasses}`);
}

/** Builds mapping, synthesis and discriminator (uncompiled, seeded initialisers). */
export function buildGan(config: GanConfig = DEFAULT_GAN_CONFIG): GanModels {
  checkConfig(config);
  let seed = config.seed * 1000;
  const init = (gain = 1) => tfl.initializers.varianceScaling({ scale: gain, mode: "fanIn", distribution: "normal", seed: seed++ });
  const lrelu = (h: T, name: string) => tfl.layers.leakyReLU({ alpha: 0.2, name }).apply(h) as T;
  // The generator uses ReLU (DCGAN): its kernel and gradient run on oneDNN; leaky ReLU stays in the discriminator.
  const conv = (h: T, filters: number, strides: number, name: string, gain = 2, useBias = true) =>
    tfl.layers.conv2d({ filters, kernelSize: 3, strides, padding: "same", useBias, kernelInitializer: init(gain), name }).apply(h) as T;
  const cond = config.numClasses > 0;

  // Mapping: z [+ class] → w.
  const z = tfl.input({ shape: [config.latentDim], name: "z" });
  const mapInputs: T[] = [z];
  let h = new PixelNorm({ name: "z_norm" }).apply(z) as T;
  if (cond) {
    const c = tfl.input({ shape: [1], name: "class", dtype: "int32" });
    mapInputs.push(c);
    const e = tfl.layers.flatten({ name: "class_flat" }).apply(
      tfl.layers.embedding({ inputDim: config.numClasses, outputDim: config.latentDim, embeddingsInitializer: tfl.initializers.randomNormal({ seed: seed++ }), name: "class_embed" }).apply(c) as T,
    ) as T;
    h = tfl.layers.concatenate({ name: "z_class" }).apply([h, new PixelNorm({ name: "class_norm" }).apply(e) as T]) as T;
  }
  for (let i = 0; i < config.mappingLayers; i++) {
    h = tfl.layers.dense({ units: config.wDim, kernelInitializer: init(2), name: `map${i + 1}` }).apply(h) as T;
    h = lrelu(h, `map${i + 1}_lrelu`);
  }
  const mapping = tfl.model({ inputs: mapInputs, outputs: h, name: "mapping" });

  // Synthesis: w → 108×84×3 in [-1, 1]. Batch norm before each ReLU (DCGAN): its batch statistics keep the
  // samples of a batch apart, where pixel norm let every sample collapse to one flat image within ~60 steps
  // (measured). Sampling uses the running statistics.
  const [c0, c1, c2, c3] = config.gWidths;
  const bnRelu = (h: T, name: string) => batchNormReLU({ momentum: 0.9, name: `${name}_bn` }).apply(h) as T; // one engine kernel in training
  const w = tfl.input({ shape: [config.wDim], name: "w" });
  let g = tfl.layers.dense({ units: BASE_H * BASE_W * c0, useBias: false, kernelInitializer: init(2), name: "const_dense" }).apply(w) as T;
  g = tfl.layers.reshape({ targetShape: [BASE_H, BASE_W, c0], name: "const_reshape" }).apply(g) as T;
  g = bnRelu(g, "base");
  if (config.gExtraLowRes) g = bnRelu(conv(g, c0, 1, "base_conv", 2, false), "base_conv");
  // Skip-layer excitation: per-channel gates in (0, 1) from a lower resolution's features, pooled over positions.
  const excite = (low: T, high: T, ch: number, name: string) => {
    let s = tfl.layers.globalAveragePooling2d({ name: `${name}_pool` }).apply(low) as T;
    s = lrelu(tfl.layers.dense({ units: ch, kernelInitializer: init(2), name: `${name}_dense1` }).apply(s) as T, `${name}_lrelu`);
    s = tfl.layers.dense({ units: ch, activation: "sigmoid", kernelInitializer: init(1), name: `${name}_gate` }).apply(s) as T;
    s = tfl.layers.reshape({ targetShape: [1, 1, ch], name: `${name}_reshape` }).apply(s) as T;
    return tfl.layers.multiply({ name: `${name}_scale` }).apply([high, s]) as T;
  };
  const blurs: tfl.layers.Layer[] = []; // fixed low-pass filters, set once the model is built
  const lower: T[] = [g]; // the features at 14×11, then 28×22, that gate two resolutions up
  [c1, c2, c3].forEach((ch, i) => {
    const name = `up${i + 1}`; // 28×22, 56×44, 112×88
    if (config.gUpsample === "nearest") {
      g = new NearestUpConv({ filters: ch, kernelInitializer: init(2), name: `${name}_upconv` }).apply(g) as T;
    } else {
      // Transposed 4×4 stride-2 convolution (kernel divisible by the stride: every output pixel gets as many taps, yet
      // the four phases' learned weights can still differ: a checkerboard, which gUpsampleBlur filters out);
      // oneDNN runs it and both its gradients.
      g = tfl.layers.conv2dTranspose({ filters: ch, kernelSize: 4, strides: 2, padding: "same", useBias: false, kernelInitializer: init(2), name: `${name}_deconv` }).apply(g) as T;
    }
    if (config.gUpsampleBlur) {
      const blur = tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: "same", useBias: false, trainable: false, depthwiseInitializer: "zeros", name: `${name}_blur` });
      g = blur.apply(g) as T;
      blurs.push(blur);
    }
    g = bnRelu(g, name);
    if (config.gExtraLowRes && i === 0) g = bnRelu(conv(g, ch, 1, `${name}_conv2`, 2, false), `${name}_conv2`);
    if (config.gSkipExcitation && i >= 1) g = excite(lower[i - 1], g, ch, `sle${i - 1}`);
    lower.push(g);
  });
  g = conv(g, IMAGE_CHANNELS, 1, "to_rgb", 1);
  g = tfl.layers.activation({ activation: "tanh", name: "tanh" }).apply(g) as T;
  const dy = (GEN_H - IMAGE_HEIGHT) / 2, dx = (GEN_W - IMAGE_WIDTH) / 2;
  g = tfl.layers.cropping2D({ cropping: [[dy, dy], [dx, dx]], name: "crop" }).apply(g) as T;
  const synthesis = tfl.model({ inputs: w, outputs: g, name: "synthesis" });
  for (const blur of blurs) {
    const ch = blur.getWeights()[0].shape[2]!;
    const taps = [1, 2, 1].flatMap((a) => [1, 2, 1].flatMap((b) => new Array<number>(ch).fill((a * b) / 16)));
    tf.tidy(() => blur.setWeights([tf.tensor4d(taps, [3, 3, ch, 1])]));
  }

  if (config.discriminator === "projected") return { mapping, synthesis, discriminator: buildProjectedHeads(config, init, lrelu) };

  // Discriminator: image [+ class] → score.
  const img = tfl.input({ shape: [IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS * config.pack], name: "image" });
  const dInputs: T[] = [img];
  let d = lrelu(conv(img, config.dWidths[0], 1, "d_stem"), "d_stem_lrelu");
  config.dWidths.slice(1).forEach((ch, i) => {
    const name = `d${i + 1}`; // 54×42, 27×21, 14×11, 7×6
    d = lrelu(conv(d, ch, 2, `${name}_down`), `${name}_down_lrelu`);
    if (i === 1 || i === 2) d = lrelu(conv(d, ch, 1, `${name}_conv`), `${name}_conv_lrelu`);
  });
  const flat = tfl.layers.flatten({ name: "d_flatten" }).apply(d) as T;
  let pre = tfl.layers.dense({ units: config.dWidths[4], kernelInitializer: init(2), name: "d_features" }).apply(flat) as T;
  if (config.mbstdGroup > 0) {
    const std = new MinibatchStd({ groupSize: config.mbstdGroup, name: "d_mbstd" }).apply(flat) as T;
    const fromStd = tfl.layers.dense({ units: config.dWidths[4], useBias: false, kernelInitializer: init(2), name: "d_mbstd_features" }).apply(std) as T;
    pre = tfl.layers.add({ name: "d_features_mbstd" }).apply([pre, fromStd]) as T;
  }
  const feat = lrelu(pre, "d_features_lrelu");
  let score = tfl.layers.dense({ units: 1, kernelInitializer: init(1), name: "d_score" }).apply(feat) as T;
  if (cond) {
    const c = tfl.input({ shape: [1], name: "class", dtype: "int32" });
    dInputs.push(c);
    const e = tfl.layers.flatten({ name: "d_class_flat" }).apply(
      tfl.layers.embedding({ inputDim: config.numClasses, outputDim: config.dWidths[4], embeddingsInitializer: tfl.initializers.randomNormal({ stddev: 0.05, seed: seed++ }), name: "d_class_embed" }).apply(c) as T,
    ) as T;
    const proj = tfl.layers.dot({ axes: 1, name: "d_projection" }).apply([feat, e]) as T;
    score = tfl.layers.add({ name: "d_score_cond" }).apply([score, proj]) as T;
  }
  const discriminator = tfl.model({ inputs: dInputs, outputs: score, name: "discriminator" });
  return { mapping, synthesis, discriminator };
}

/**
 * The projected discriminator's trainable part: one head per view and FACE_FEATURE_SCALES map, each a 3×3 conv
 * (stride 2 on the 28×28 map) → lrelu → 3×3 conv to a 1-channel logit map, averaged over its positions:
 * [b, views × 3], one score per view and scale. No normalisation (spectral norm stays optional, as for the image
 * discriminator).
 */
function buildProjectedHeads(
  config: GanConfig,
  init: (gain?: number) => ReturnType<typeof tfl.initializers.varianceScaling>,
  lrelu: (h: T, name: string) => T,
): tfl.LayersModel {
  const maps = projectedViews(config.projectedView).flatMap((view) => FACE_FEATURE_SCALES.map((s) => ({ view, ...s })));
  const inputs = maps.map((m) => tfl.input({ shape: [m.size, m.size, m.channels], name: `features_${m.view}_${m.name}` }));
  const scores = maps.map((m, i) => {
    const name = `p_${m.view}_${m.name}`;
    const stride = m.size > 14 ? 2 : 1; // 28×28 → 14×14, 14×14, 7×7
    let h = tfl.layers.conv2d({ filters: config.projectedWidth, kernelSize: 3, strides: stride, padding: "same", kernelInitializer: init(2), name: `${name}_conv` }).apply(inputs[i]) as T;
    h = lrelu(h, `${name}_lrelu`);
    h = tfl.layers.conv2d({ filters: 1, kernelSize: 3, padding: "same", kernelInitializer: init(1), name: `${name}_logits` }).apply(h) as T;
    return tfl.layers.globalAveragePooling2d({ name: `${name}_score` }).apply(h) as T; // [b,1]
  });
  const out = tfl.layers.concatenate({ name: "p_scores" }).apply(scores) as T; // [b, views × 3]
  return tfl.model({ inputs, outputs: out, name: "discriminator" });
}

/** Parameter counts of the three nets. */
export function ganParams(m: GanModels): { mapping: number; synthesis: number; discriminator: number } {
  return { mapping: m.mapping.countParams(), synthesis: m.synthesis.countParams(), discriminator: m.discriminator.countParams() };
}

/**
 * Generator forward pass: w = mapping(z[, class]); image = synthesis(w). `training` = batch statistics in
 * the batch norms (and their running statistics updated); otherwise the running statistics (sampling).
 */
export function generate(m: Pick<GanModels, "mapping" | "synthesis">, z: tf.Tensor2D, cls?: tf.Tensor2D, training = false): tf.Tensor4D {
  return tf.tidy(() => {
    const w = m.mapping.apply(cls ? [z, cls] : z) as tf.Tensor2D;
    return m.synthesis.apply(w, { training }) as tf.Tensor4D;
  });
}

/**
 * PacGAN's packs of a batch [b, h, w, c] → [b / m, h, w, c·m]: pack j holds samples j, j + b/m, j + 2b/m, … on its
 * channels, in that order (one concat; its gradient is the matching split). b must be a multiple of m.
 */
export function packSamples(x: tf.Tensor4D, m: number): tf.Tensor4D {
  const b = x.shape[0];
  if (!(Number.isInteger(m) && m >= 1) || b % m !== 0) throw new Error(`packSamples: a batch of ${b} does not split into packs of ${m}`);
  if (m === 1) return x;
  return tf.tidy(() => tf.concat(tf.split(x, m, 0), 3) as tf.Tensor4D);
}

/** Samples per score of an image discriminator: its input's channels over the image's (PacGAN's pack, 1 = off). */
export function discriminatorPack(d: tfl.LayersModel): number {
  return (d.inputs[0].shape[3] ?? IMAGE_CHANNELS) / IMAGE_CHANNELS;
}

/**
 * Discriminator forward pass: scores [b,1] (image), [b/pack, 1] for an image discriminator on packs (PacGAN; the
 * batch packed here), or [b,3] (projected: pass its frozen `features`, through which the image reaches the heads;
 * gradients flow through them to the image).
 */
export function discriminate(d: tfl.LayersModel, x: tf.Tensor4D, cls?: tf.Tensor2D, features?: FaceFeatures): tf.Tensor2D {
  if (features) {
    if (cls) throw new Error("discriminate: the projected discriminator is unconditional");
    return tf.tidy(() => d.apply(features.forward(x)) as tf.Tensor2D);
  }
  const pack = discriminatorPack(d);
  if (pack === 1) return d.apply(cls ? [x, cls] : x) as tf.Tensor2D;
  if (cls) throw new Error("discriminate: a discriminator on packs is unconditional");
  return tf.tidy(() => d.apply(packSamples(x, pack)) as tf.Tensor2D);
}
