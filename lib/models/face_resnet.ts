/**
 * Face ResNet: face-api's face-recognition net (dlib's ResNet-34-like descriptor net, 150×150 input,
 * 128-D output) rebuilt as a trainable tfjs-layers model, with the pretrained weights read from
 * @vladmandic/face-api's package in node_modules (no network). Used as a backbone: portraits in, a
 * 128-D embedding out, heads on top.
 *
 *   const backbone = await createFaceResnetBackbone(DEFAULT_FACE_RESNET_CONFIG);   // build + load weights
 *   const emb = backbone.predict(makeBatch(pixels, rows, {norm: REFERENCE_NORMALIZATION}));   // [b,128]
 *   setTrainableFrom(backbone, "conv256_1");   // staged unfreezing: earlier blocks frozen
 *
 * Input: [b,108,84,3] normalised per channel as lib/data/batches does, x = (pixel/255 − mean)/std with
 * `config.normalization`. The first layer (FaceResnetInput, fixed) undoes that, cuts the face square
 * (`crop`) and resizes it to 150×150 inside the model, and applies face-api's own normalisation
 * ((pixel − mean RGB)/255), so the pretrained weights see what they were trained on.
 * Output: the 128-D embedding (face-api's descriptor: the pretrained fc on the 256-D pooled
 * features), followed by dropout when `config.dropout` > 0. In inference mode and with the pretrained
 * weights it equals face-api's `computeFaceDescriptor` / lib/faces `faceDescriptors` with the same
 * crop (max abs difference ~1e-5; tests/models/face_resnet_test.ts).
 *
 * Structure (layer names are `<block>.<part>`; blocks in FACE_RESNET_BLOCKS order):
 *   face_input                          [b,150,150,3]
 *   conv32_down  conv 7×7/2 valid, relu [b,72,72,32];  max pool 3/2  [b,35,35,32]
 *   conv32_1..3  residual                [b,35,35,32]
 *   conv64_down  residual down          [b,17,17,64];  conv64_1..3   [b,17,17,64]
 *   conv128_down residual down          [b,8,8,128];   conv128_1..2  [b,8,8,128]
 *   conv256_down residual down          [b,4,4,256];   conv256_1..2  [b,4,4,256]
 *   conv256_down_out residual down      [b,2,2,256]
 *   pool (global average) [b,256] → fc (256→128, no bias) [b,128] → dropout
 * residual:      relu(x + conv2(relu(conv1(x))))                     (3×3 same convs)
 * residual down: relu(avgpool2(x) ⧺ zero channels + pad(conv2(relu(conv1 3×3/2 valid(x)))))
 *                where pad adds a zero row and column at the bottom/right when conv1's valid output is
 *                one smaller than the pooled shortcut (face-api's residualDown, exactly).
 * face-api's "conv + bias, then per-channel scale (w, b)" is folded into one Conv2D with bias:
 * kernel = filters·w (per output channel), bias = conv_bias·w + b; the function is identical and
 * each conv runs as one fused conv+bias(+relu) kernel.
 *
 * Cost: 5,607,488 parameters; ~0.6 GFLOP per image forward (~1.8 GFLOP per training image). Speeds
 * on 2 shared cores, batch 16, Adam (noisy):
 *   wasm    forward ~24 img/s; training step ~6.5 img/s all blocks trainable, ~20 img/s from conv256_1
 *   onednn  forward ~55 img/s; training step ~15 img/s all blocks trainable
 *   cpu     forward ~1.8 img/s; training step < 0.12 img/s (did not finish in 140 s)
 * Tests: deno test -A tests/models/face_resnet_test.ts   (~10 s on wasm)
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { type Normalization, REFERENCE_NORMALIZATION } from "../data/batches.ts";
import { alignedCrop, PORTRAIT_FRAMING, PORTRAIT_HEIGHT, PORTRAIT_WIDTH, readWeightMap } from "../faces/mod.ts";
import { ChannelZeroPad, FaceResnetInput } from "./_face_resnet_layers.ts";
import { conv2d, ConvAddReLU } from "./fused_conv.ts";

export { ChannelZeroPad, FaceResnetInput } from "./_face_resnet_layers.ts";

/** Side of the square the net sees (face-api's input size). */
export const FACE_RESNET_INPUT_SIZE = 150;
/** face-api's mean RGB (0..255), subtracted from the 150×150 input before dividing by 255. */
export const FACE_API_MEAN_RGB: readonly [number, number, number] = [122.782, 117.001, 104.298];
/** Width of the pooled features that the fc layer turns into the embedding. */
export const FACE_RESNET_FEATURES = 256;

/**
 * The trainable blocks, input to output; names equal face-api's weight prefixes. `setTrainableFrom`
 * and `trainableFrom` take one of these.
 */
export const FACE_RESNET_BLOCKS = [
  "conv32_down",
  "conv32_1",
  "conv32_2",
  "conv32_3",
  "conv64_down",
  "conv64_1",
  "conv64_2",
  "conv64_3",
  "conv128_down",
  "conv128_1",
  "conv128_2",
  "conv256_down",
  "conv256_1",
  "conv256_2",
  "conv256_down_out",
  "fc",
] as const;
export type FaceResnetBlock = typeof FACE_RESNET_BLOCKS[number];

/**
 * How the portrait becomes the net's 150×150 square:
 * - "aligned": the face square lib/faces uses for descriptors (face-api's dlib alignment placed where
 *   Tiny Portraits put eyes and mouth: ~50 px from (17, 35) in a 108×84 portrait), resized;
 * - "portrait": the whole portrait, padded to a square with black (as lib/faces crop "portrait"), resized;
 * - "both": two views through the same (shared) ResNet, the aligned face and the whole portrait, their
 *   embeddings concatenated ([b,256]): the face for gender, the hair for hair colour and type, at twice
 *   the compute of one view and no extra weights.
 */
export type FaceResnetCrop = "aligned" | "portrait" | "both";
export const FACE_RESNET_CROPS: readonly FaceResnetCrop[] = ["aligned", "portrait", "both"];
/** The single views a crop is made of. */
export function cropViews(crop: FaceResnetCrop): ("aligned" | "portrait")[] {
  return crop === "both" ? ["aligned", "portrait"] : [crop];
}

export interface FaceResnetConfig {
  /** Input portrait size (108 × 84). Other sizes scale the crop proportionally. */
  inputHeight: number;
  inputWidth: number;
  /** Region(s) of the portrait fed to the net (default "aligned", what the pretrained weights expect). */
  crop: FaceResnetCrop;
  /** Per-channel mean / std (0..1) the input batches were normalised with; undone inside the model. */
  normalization: Normalization;
  /** Load face-api's weights (createFaceResnetBackbone does; buildFaceResnetBackbone only builds). */
  pretrained: boolean;
  /** First trainable block (staged unfreezing); earlier blocks are frozen. undefined = all trainable. */
  trainableFrom?: string;
  /** Size of the embedding (the fc's output); 128 with pretrained weights. */
  embeddingDim: number;
  /** Dropout rate on the embedding during training (0 = no dropout layer). */
  dropout: number;
}

export const DEFAULT_FACE_RESNET_CONFIG: FaceResnetConfig = {
  inputHeight: PORTRAIT_HEIGHT,
  inputWidth: PORTRAIT_WIDTH,
  crop: "aligned",
  normalization: { mean: [...REFERENCE_NORMALIZATION.mean], std: [...REFERENCE_NORMALIZATION.std] },
  pretrained: true,
  trainableFrom: undefined,
  embeddingDim: 128,
  // Heads bring their own dropout (lib/models/mod.ts); 0 keeps the embedding = face-api's descriptor.
  dropout: 0,
};

function posInt(v: unknown): boolean {
  return typeof v === "number" && Number.isInteger(v) && v > 0;
}

/** Checks a config; throws with a message naming the bad field and value. */
export function validateFaceResnetConfig(c: FaceResnetConfig): void {
  const bad = (field: string, want: string, got: unknown) =>
    new Error(`face_resnet: expected ${field} to be ${want}, got ${typeof got === "string" ? `'${got}'` : JSON.stringify(got)}`);
  if (!posInt(c.inputHeight)) throw bad("inputHeight", "a positive integer", c.inputHeight);
  if (!posInt(c.inputWidth)) throw bad("inputWidth", "a positive integer", c.inputWidth);
  if (!FACE_RESNET_CROPS.includes(c.crop)) throw bad("crop", FACE_RESNET_CROPS.map((s) => `'${s}'`).join(" or "), c.crop);
  const n = c.normalization;
  if (!n || !Array.isArray(n.mean) || n.mean.length !== 3 || !n.mean.every(Number.isFinite)) {
    throw bad("normalization.mean", "3 finite numbers", n?.mean);
  }
  if (!Array.isArray(n.std) || n.std.length !== 3 || !n.std.every((s) => Number.isFinite(s) && s > 0)) {
    throw bad("normalization.std", "3 positive numbers", n.std);
  }
  if (typeof c.pretrained !== "boolean") throw bad("pretrained", "true or false", c.pretrained);
  if (!posInt(c.embeddingDim)) throw bad("embeddingDim", "a positive integer", c.embeddingDim);
  if (c.pretrained && c.embeddingDim !== 128) throw bad("embeddingDim", "128 with pretrained weights", c.embeddingDim);
  if (!(typeof c.dropout === "number" && c.dropout >= 0 && c.dropout < 1)) throw bad("dropout", "a number in [0, 1)", c.dropout);
  if (c.trainableFrom !== undefined && !(FACE_RESNET_BLOCKS as readonly string[]).includes(c.trainableFrom)) {
    throw bad("trainableFrom", `one of ${FACE_RESNET_BLOCKS.join(", ")}`, c.trainableFrom);
  }
}

/** Defaults with the given overrides; overrides that are `undefined` never replace defaults. */
export function faceResnetConfig(overrides: Partial<FaceResnetConfig> = {}): FaceResnetConfig {
  const c: FaceResnetConfig = { ...DEFAULT_FACE_RESNET_CONFIG, normalization: DEFAULT_FACE_RESNET_CONFIG.normalization };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (c as unknown as Record<string, unknown>)[k] = v;
  }
  validateFaceResnetConfig(c);
  return c;
}

/** The crop as a tf.image.cropAndResize box [y1, x1, y2, x2] on an inputHeight × inputWidth image. */
export function faceResnetCropBox(c: Pick<FaceResnetConfig, "crop" | "inputHeight" | "inputWidth">): [number, number, number, number] {
  if (c.crop === "both") throw new Error(`faceResnetCropBox: crop 'both' is two boxes; ask for 'aligned' and 'portrait' (cropViews)`);
  const H = c.inputHeight, W = c.inputWidth, S = FACE_RESNET_INPUT_SIZE;
  let x: number, y: number, sw: number, sh: number;
  if (c.crop === "aligned") {
    // lib/faces' aligned square in 108×84 pixels, scaled to this input size.
    const sq = alignedCrop(PORTRAIT_FRAMING);
    const ky = H / PORTRAIT_HEIGHT, kx = W / PORTRAIT_WIDTH;
    [x, y, sw, sh] = [sq.x * kx, sq.y * ky, sq.side * kx, sq.side * ky];
  } else {
    const side = Math.max(H, W);
    [x, y, sw, sh] = [(W - side) / 2, (H - side) / 2, side, side];
  }
  // cropAndResize samples pixel centres at y1*(H-1) .. y2*(H-1): map the square's edges to output
  // pixel centres (the same formula lib/faces uses).
  return [
    (y + 0.5 * sh / S - 0.5) / (H - 1),
    (x + 0.5 * sw / S - 0.5) / (W - 1),
    (y + sh - 0.5 * sh / S - 0.5) / (H - 1),
    (x + sw - 0.5 * sw / S - 0.5) / (W - 1),
  ];
}

type Sym = tfl.SymbolicTensor;

function conv(name: string, filters: number, kernel: number, stride: number, padding: "same" | "valid", relu: boolean) {
  return conv2d({
    name,
    filters,
    kernelSize: kernel,
    strides: stride,
    padding,
    useBias: true,
    activation: relu ? "relu" : "linear",
    kernelInitializer: "heNormal",
  });
}

/** The block's second conv with the shortcut sum and the ReLU: relu(conv2(y) + shortcut), one layer (ConvAddReLU). */
function conv2AddRelu(block: string, filters: number, y: Sym, shortcut: Sym): Sym {
  return new ConvAddReLU({ name: `${block}.conv2`, filters, kernelSize: 3, strides: 1, padding: "same", useBias: true, activation: "linear", kernelInitializer: "heNormal" })
    .apply([y, shortcut]) as Sym;
}

/** relu(x + conv2(relu(conv1(x)))), both 3×3 same. */
function residual(x: Sym, block: string): Sym {
  const c = x.shape[3] as number;
  const y = conv(`${block}.conv1`, c, 3, 1, "same", true).apply(x) as Sym;
  return conv2AddRelu(block, c, y, x);
}

/** face-api's residualDown: strided valid conv path + average-pooled, zero-channel-padded shortcut. */
function residualDown(x: Sym, block: string, filters: number): Sym {
  const cin = x.shape[3] as number;
  let y = conv(`${block}.conv1`, filters, 3, 2, "valid", true).apply(x) as Sym;
  let s = tfl.layers.averagePooling2d({ name: `${block}.shortcut`, poolSize: 2, strides: 2, padding: "valid" }).apply(x) as Sym;
  if (filters > cin) s = new ChannelZeroPad({ name: `${block}.shortcut_pad`, extra: filters - cin }).apply(s) as Sym;
  // conv2 (3×3 same) keeps conv1's size; where that is the shortcut's, one ConvAddReLU ends the block.
  const dh = (s.shape[1] as number) - (y.shape[1] as number), dw = (s.shape[2] as number) - (y.shape[2] as number);
  if (dh < 0 || dw < 0) throw new Error(`face_resnet: ${block} conv path ${y.shape} is larger than its shortcut ${s.shape}`);
  if (dh === 0 && dw === 0) return conv2AddRelu(block, filters, y, s);
  y = conv(`${block}.conv2`, filters, 3, 1, "same", false).apply(y) as Sym;
  y = tfl.layers.zeroPadding2d({ name: `${block}.pad`, padding: [[0, dh], [0, dw]] }).apply(y) as Sym;
  const sum = tfl.layers.add({ name: `${block}.add` }).apply([y, s]) as Sym;
  return tfl.layers.reLU({ name: `${block}.relu` }).apply(sum) as Sym;
}

/**
 * Builds the backbone (uncompiled; weights randomly initialised — call loadFaceResnetWeights, or use
 * createFaceResnetBackbone, for the pretrained ones). Input "portrait" [b,inputHeight,inputWidth,3]
 * normalised with config.normalization; output [b,embeddingDim], the 128-D embedding (face-api's
 * descriptor), after dropout when config.dropout > 0 (training only). Named "face_resnet".
 * Blocks before config.trainableFrom are frozen. Speeds: see the header of this file.
 */
export function buildFaceResnetBackbone(config: FaceResnetConfig = DEFAULT_FACE_RESNET_CONFIG): tfl.LayersModel {
  validateFaceResnetConfig(config);
  const { inputHeight: H, inputWidth: W } = config;
  const input = tfl.input({ shape: [H, W, 3], name: "portrait" });
  const views = cropViews(config.crop).map((view, i) =>
    new FaceResnetInput({
      name: i === 0 ? "face_input" : `face_input_${view}`,
      mean: [...config.normalization.mean],
      std: [...config.normalization.std],
      box: faceResnetCropBox({ ...config, crop: view }),
      size: FACE_RESNET_INPUT_SIZE,
      meanRgb: [...FACE_API_MEAN_RGB],
    }).apply(input) as Sym // [b,150,150,3]
  );
  let out: Sym;
  if (views.length === 1) out = faceResnetBody(views[0], config);
  else {
    // One body, applied to each view (shared weights): a nested model, so the layers exist once.
    const square = tfl.input({ shape: [FACE_RESNET_INPUT_SIZE, FACE_RESNET_INPUT_SIZE, 3], name: "face_square" });
    const body = tfl.model({ inputs: square, outputs: faceResnetBody(square, config), name: "face_resnet_body" });
    out = tfl.layers.concatenate({ name: "views" }).apply(views.map((v) => body.apply(v) as Sym)) as Sym; // [b,2·embeddingDim]
  }
  if (config.dropout > 0) out = tfl.layers.dropout({ name: "embedding_dropout", rate: config.dropout }).apply(out) as Sym;
  const model = tfl.model({ inputs: input, outputs: out, name: "face_resnet" });
  setTrainableFrom(model, config.trainableFrom);
  return model;
}

/** The ResNet from its 150×150 input to the embedding [b,embeddingDim]. */
function faceResnetBody(square: Sym, config: FaceResnetConfig): Sym {
  let x = square;

  x = conv("conv32_down.conv", 32, 7, 2, "valid", true).apply(x) as Sym; // [b,72,72,32]
  x = tfl.layers.maxPooling2d({ name: "conv32_down.pool", poolSize: 3, strides: 2, padding: "valid" }).apply(x) as Sym; // [b,35,35,32]
  x = residual(x, "conv32_1");
  x = residual(x, "conv32_2");
  x = residual(x, "conv32_3"); // [b,35,35,32]
  x = residualDown(x, "conv64_down", 64); // [b,17,17,64]
  x = residual(x, "conv64_1");
  x = residual(x, "conv64_2");
  x = residual(x, "conv64_3");
  x = residualDown(x, "conv128_down", 128); // [b,8,8,128]
  x = residual(x, "conv128_1");
  x = residual(x, "conv128_2");
  x = residualDown(x, "conv256_down", 256); // [b,4,4,256] (conv path 3×3, zero-padded)
  x = residual(x, "conv256_1");
  x = residual(x, "conv256_2");
  x = residualDown(x, "conv256_down_out", 256); // [b,2,2,256] (conv path 1×1, zero-padded)
  x = tfl.layers.globalAveragePooling2d({ name: "pool" }).apply(x) as Sym; // [b,256]
  return tfl.layers.dense({ name: "fc", units: config.embeddingDim, useBias: false }).apply(x) as Sym; // [b,128]
}

/** Builds the backbone and, when config.pretrained, loads face-api's weights into it. */
export async function createFaceResnetBackbone(config: FaceResnetConfig = DEFAULT_FACE_RESNET_CONFIG): Promise<tfl.LayersModel> {
  const model = buildFaceResnetBackbone(config);
  if (config.pretrained) await loadFaceResnetWeights(model);
  return model;
}

/** Block a layer belongs to, from its name `<block>.<part>` (fc: the layer "fc"); null for others. */
function blockOf(layerName: string): FaceResnetBlock | null {
  const b = layerName === "fc" ? "fc" : layerName.split(".")[0];
  return (FACE_RESNET_BLOCKS as readonly string[]).includes(b) && (b === "fc" || layerName.includes(".")) ? b as FaceResnetBlock : null;
}

/** Every non-container layer of a model, descending into nested models. */
function leafLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  const out: tfl.layers.Layer[] = [];
  const visit = (layers: tfl.layers.Layer[]) => {
    for (const l of layers) {
      const inner = (l as unknown as { layers?: tfl.layers.Layer[] }).layers;
      if (Array.isArray(inner)) visit(inner);
      else out.push(l);
    }
  };
  visit(model.layers);
  return out;
}

/**
 * Staged unfreezing: layers of blocks before `blockName` become non-trainable, those of `blockName`
 * and later blocks trainable; `undefined` makes every block trainable. Works on the backbone or on
 * any model that contains its layers (heads and other layers are left as they are). Call it before
 * compiling (a compiled LayersModel collects its trainable weights at compile time); with
 * optimizer.minimize pass `varList` from model.trainableWeights or rely on the variables' flags, which
 * this updates too.
 */
export function setTrainableFrom(backbone: tfl.LayersModel, blockName: string | undefined): void {
  let from = 0;
  if (blockName !== undefined) {
    from = (FACE_RESNET_BLOCKS as readonly string[]).indexOf(blockName);
    if (from < 0) throw new Error(`setTrainableFrom: expected a block name, one of ${FACE_RESNET_BLOCKS.join(", ")}; got '${blockName}'`);
  }
  let seen = 0;
  for (const layer of leafLayers(backbone)) {
    const b = blockOf(layer.name);
    if (b === null) continue;
    layer.trainable = FACE_RESNET_BLOCKS.indexOf(b) >= from;
    seen++;
  }
  if (seen === 0) throw new Error(`setTrainableFrom: model '${backbone.name}' has no face ResNet layers`);
}

const WEIGHTS_STEM = "face_recognition_model";

/** face-api's recognition weights as a named tensor map (manifest + shards, dequantised). */
function readFaceApiWeights(): Promise<tf.NamedTensorMap> {
  return readWeightMap(WEIGHTS_STEM);
}

/** Conv layer name ↔ face-api weight prefix, for every conv of the net. */
function convPairs(): [string, string][] {
  const pairs: [string, string][] = [["conv32_down.conv", "conv32_down"]];
  for (const b of FACE_RESNET_BLOCKS) {
    if (b === "conv32_down" || b === "fc") continue;
    pairs.push([`${b}.conv1`, `${b}/conv1`], [`${b}.conv2`, `${b}/conv2`]);
  }
  return pairs;
}

/**
 * Loads face-api's pretrained recognition weights (node_modules/@vladmandic/face-api/model/
 * face_recognition_model-*, no network) into a backbone built by buildFaceResnetBackbone, or any
 * model containing its layers. Each conv gets kernel = `<p>/conv/filters` · `<p>/scale/weights` and
 * bias = `<p>/conv/bias` · `<p>/scale/weights` + `<p>/scale/biases`; "fc" gets `fc` [256,128].
 */
export async function loadFaceResnetWeights(backbone: tfl.LayersModel): Promise<void> {
  const map = await readFaceApiWeights();
  try {
    const layers = new Map(leafLayers(backbone).map((l) => [l.name, l]));
    const get = (name: string) => {
      const l = layers.get(name);
      if (!l) throw new Error(`loadFaceResnetWeights: model '${backbone.name}' has no layer '${name}' (build it with buildFaceResnetBackbone)`);
      return l;
    };
    const want = (key: string) => {
      const t = map[key];
      if (!t) throw new Error(`loadFaceResnetWeights: face-api's weights lack '${key}'`);
      return t;
    };
    for (const [layerName, prefix] of convPairs()) {
      const layer = get(layerName);
      const filters = want(`${prefix}/conv/filters`), bias = want(`${prefix}/conv/bias`);
      const w = want(`${prefix}/scale/weights`), b = want(`${prefix}/scale/biases`);
      const [kShape, bShape] = layer.getWeights().map((t) => t.shape);
      if (String(kShape) !== String(filters.shape) || String(bShape) !== String(bias.shape)) {
        throw new Error(`loadFaceResnetWeights: layer '${layerName}' has shapes ${kShape} / ${bShape}, face-api's '${prefix}' ${filters.shape} / ${bias.shape}`);
      }
      const [kernel, folded] = tf.tidy(() => [tf.mul(filters, w), tf.add(tf.mul(bias, w), b)]);
      layer.setWeights([kernel, folded]);
      kernel.dispose();
      folded.dispose();
    }
    const fc = get("fc");
    const fcW = want("fc");
    const [fcShape] = fc.getWeights().map((t) => t.shape);
    if (String(fcShape) !== String(fcW.shape)) {
      throw new Error(`loadFaceResnetWeights: layer 'fc' has shape ${fcShape}, face-api's fc ${fcW.shape} (embeddingDim must be 128)`);
    }
    fc.setWeights([fcW]);
  } finally {
    for (const t of Object.values(map)) t.dispose();
  }
}
