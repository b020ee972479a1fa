/**
 * GAN training (`deno task gan:train`): hinge loss, MSGAN's mode-seeking term, optional spectral normalisation of
 * the discriminator (a projection after each of its steps), optional differentiable augmentation
 * (DiffAugment: colour, translation, cutout — the same random transform family on real and generated images;
 * off by default since the mode-seeking term does better without it on real faces, README), an
 * exponential moving average of the generator's weights (what is sampled and scored),
 * optional class conditioning (projection discriminator). `model.discriminator` "projected" (flag
 * --discriminator projected) puts trainable heads on frozen face-api age/gender features instead of the
 * image discriminator (lib/gan/features.ts; unconditional only).
 *
 * Every `snapshotKimg` thousand real images: an atomic snapshot (all nets, the EMA
 * generator, both optimizers, the state) that `--resume` continues from, a sample grid
 * from fixed latents, and the Fréchet descriptor distance (FDD: Fréchet distance in
 * face-api's 128-D descriptor space) between `metricImages` real and generated
 * portraits, logged to fdd.csv with the training time so far, and two diversity checks in the same
 * descriptor space: `nn_ratio` (median nearest-neighbour distance among the generated portraits over the same
 * among as many real ones: 1 = as spread out as real faces, near 0 = collapsed) and `grid_duplicates` (grid
 * samples whose nearest other grid sample is closer than the closest pair among as many real portraits), with
 * `set_duplicates`, the median of the same count over the sets of grid-size among the metric samples.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { CACHE_DIR_HELP } from "../data/cache.ts";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { loadExclusion } from "../data/bad_images.ts";
import { HEADS, IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { DEFAULT_GAN_CONFIG, G_UPSAMPLES, GAN_DISCRIMINATORS, type GanConfig, ganParams, generate, PROJECTED_VIEWS, type ProjectedView, projectedViews } from "./nets.ts";
import { FaceFeatures, PORTRAIT_SQUARE } from "./features.ts";
import { alignedCrop, PORTRAIT_FRAMING, readWeightMap } from "../faces/mod.ts";
import { portraitDescriptors } from "../models/descriptors.ts";
import { loadSavedModel } from "../models/mod.ts";
import { mergeDefined } from "../util/merge.ts";
import { fileIO } from "../models/io.ts";
import { type CountSummary, frechetDistance, type GaussianStats, gaussianStats, medianNearest, nearDuplicates, nearestDistances, setDuplicates, summariseCounts } from "../eval/frechet.ts";
import { loadOptimizerState, saveOptimizer, writeDirAtomic } from "../train/checkpoint.ts";
import { mosaic } from "../viz/mosaic.ts";
import { saveChart } from "../viz/vega.ts";
import { appendFileAtomic, exists, readJson, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { checkResumeConfig, runDirPath, savedRunConfig, withRunFolder } from "../util/run_dir.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { formatDuration, Progress } from "../util/progress.ts";
import { engineChoice } from "../engine/mod.ts";
import { ReadBehind } from "../engine/read_behind.ts";
import { adam } from "../engine/adam.ts";

export const GAN_CONDITIONS = ["none", "gender", "hair_color"] as const;
export type GanCondition = typeof GAN_CONDITIONS[number];

/**
 * Where the mode-seeking term measures the images' distance: the whole image, the face square's pixels
 * (MODE_SEEKING_FACE), or face-api's age/gender features of the face square (lib/gan/steps.ts modeSeekingFeatureMaps).
 */
export const MODE_SEEKING_REGIONS = ["image", "face", "face-features"] as const;
export type ModeSeekingRegion = typeof MODE_SEEKING_REGIONS[number];
/**
 * The face square of a portrait (alignedCrop of PORTRAIT_FRAMING, the square face-api's age/gender net sees) in
 * whole pixels: eyebrows to chin, with little hair or background.
 */
export const MODE_SEEKING_FACE: PixelRegion = (() => {
  const c = alignedCrop(PORTRAIT_FRAMING), side = Math.round(c.side);
  return { x: Math.round(c.x), y: Math.round(c.y), width: side, height: side };
})();
/** A run's mode-seeking term as its steps add it; `features`: the face-api net loaded for "face-features" (loadFaceFeatures("face")). */
export function modeSeekingOf(
  t: Pick<GanTrainConfig, "modeSeeking" | "modeSeekingForm" | "modeSeekingRegion" | "modeSeekingPool">,
  features: FaceFeatures | null = null,
): ModeSeeking {
  if (t.modeSeekingRegion === "face-features") {
    if (!features) throw new Error("modeSeekingOf: region face-features needs the face features loaded");
    return { weight: t.modeSeeking, form: t.modeSeekingForm, features };
  }
  return { weight: t.modeSeeking, form: t.modeSeekingForm, region: t.modeSeekingRegion === "face" ? MODE_SEEKING_FACE : null, pool: t.modeSeekingPool };
}

export interface GanTrainConfig {
  dataroot: string;
  attributes?: string;
  expName: string;
  checkpointsDir: string;
  /** Thousands of real images shown to the discriminator in all. */
  kimg: number;
  batchSize: number;
  lrG: number;
  lrD: number;
  /**
   * The last fraction of the run over which both learning rates fall to zero along a half cosine (0 = off, the
   * rates stay constant). The run's progress is the larger of its images over `kimg` and its minutes over
   * `maxMinutes`, so with a time budget the ramp ends when the budget does.
   */
  lrRampdown: number;
  beta1: number;
  beta2: number;
  /** Half-life of the generator's weight average, in thousands of images. */
  emaKimg: number;
  /**
   * Spectral normalisation of the discriminator's kernels (a projection after each step). Off by default:
   * measured here, with it the generator collapsed to one flat texture within 60 steps (image std across
   * latents 0.27 → 0.02), without it the samples kept varying.
   */
  spectralNorm: boolean;
  /** DiffAugment policy: comma-separated of color, translation, cutout; "" = none (the default). */
  augment: string;
  /**
   * Adaptive augmentation (StyleGAN2-ADA): each transform of `augment` is applied to each image with a
   * probability p that starts at 0 and follows the discriminator's overfitting, E[sign D(real)], toward this
   * target (0.6 in the paper); 0 = off (every transform on every image).
   */
  adaTarget: number;
  /** Thousands of images over which the adaptive p can move from 0 to 1. */
  adaKimg: number;
  /**
   * Weight of MSGAN's mode-seeking term in the generator's loss (lib/gan/steps.ts modeSeekingTerm: the inverse of
   * how far apart two latents' images are, pixels over latents); 0 = off (runs saved before it existed resume so).
   */
  modeSeeking: number;
  /** "batch" (MSGAN's form), "pairs" (the inverse ratio per pair, averaged) or "all" (every pair of the batch): lib/gan/steps.ts modeSeekingTerm. */
  modeSeekingForm: ModeSeekingForm;
  /** Where the term measures the images' distance: the whole image, the face square (MODE_SEEKING_FACE) or its features. */
  modeSeekingRegion: ModeSeekingRegion;
  /** The term's pixels averaged over pool×pool squares before the distance (1: none; pixels only). */
  modeSeekingPool: number;
  condition: GanCondition;
  snapshotKimg: number;
  /** Stop (with a snapshot) after this many minutes of training, whatever kimg says. */
  maxMinutes: number | null;
  /** Real and generated images per Fréchet descriptor distance (0 = no metric). */
  metricImages: number;
  gridRows: number;
  gridCols: number;
  seed: number;
  resume: boolean;
  /** Cache folder (default: resolveCacheDir in lib/data/cache.ts). */
  cacheDir?: string;
  badImages?: string;
  model: Partial<GanConfig>;
  quiet?: boolean;
}

/**
 * The gan:train job's schema: every GanTrainConfig field a user sets, with its flag, type, limits and
 * help. The CLI builds its flags and help from it; resolveGanConfig checks every config with the same
 * rules (plus the cross-field ones below), so notebooks and the demo get the CLI's messages.
 */
export const GAN_FIELDS = {
  dataroot: { flag: "dataroot", type: "string", help: "Tiny Portraits folder" },
  attributes: { flag: "attributes", type: "string", help: "attributes CSV outside the dataroot" },
  kimg: { flag: "kimg", type: "number", positive: true, help: "thousands of real images to show the discriminator" },
  condition: { flag: "condition", type: "string", choices: GAN_CONDITIONS, help: "condition on a label (projection discriminator)" },
  batchSize: { flag: "batch-size", type: "int", positive: true, help: "batch size (at least 2)" },
  lrG: { flag: "lr-g", type: "number", positive: true, help: "generator learning rate (Adam, β1 0.5, β2 0.999)" },
  lrD: { flag: "lr-d", type: "number", positive: true, help: "discriminator learning rate" },
  lrRampdown: { flag: "lr-rampdown", type: "number", nonNegative: true, below: 1, help: "lower both learning rates to zero along a half cosine over the run's last fraction F (of --kimg, or of --max-minutes when that ends it first; 0 = off, the default)" },
  spectralNorm: { flag: "spectral-norm", type: "boolean", help: "spectral normalisation of the discriminator (projection after each step)" },
  beta1: { flag: "beta1", type: "number", nonNegative: true, below: 1, help: "Adam β1 of both nets" },
  beta2: { flag: "beta2", type: "number", positive: true, below: 1, help: "Adam β2 of both nets" },
  augment: { flag: "augment", type: "string", help: "DiffAugment policy: comma-separated of color, translation, cutout; 'none' = off (the default)" },
  adaTarget: { flag: "ada-target", type: "number", nonNegative: true, below: 1, help: "adaptive augmentation: each transform applied with a probability that steers E[sign D(real)] to this target (0.6 in StyleGAN2-ADA; 0 = off, always applied)" },
  adaKimg: { flag: "ada-kimg", type: "number", positive: true, help: "adaptive augmentation: thousands of images for its probability to move from 0 to 1" },
  modeSeeking: { flag: "mode-seeking", type: "number", nonNegative: true, help: "weight of MSGAN's mode-seeking term in the generator's loss (default 1, as in the paper; 0 = off)" },
  modeSeekingForm: { flag: "mode-seeking-form", type: "string", choices: MODE_SEEKING_FORMS, help: "all (default): every pair of the batch, not only its halves' (root-mean-square distances); pairs: the mean of each pair's own term, so close pairs weigh more; batch: one ratio over the batch (MSGAN's form)" },
  modeSeekingRegion: { flag: "mode-seeking-region", type: "string", choices: MODE_SEEKING_REGIONS, help: "where the mode-seeking term measures the images' distance: face (default: the face square's pixels, so one face on two backgrounds counts as close), image (all its pixels) or face-features (face-api's age/gender features of the face square: one face in two colourings counts as close; collapsed in the README's run)" },
  modeSeekingPool: { flag: "mode-seeking-pool", type: "int", positive: true, help: "average the mode-seeking term's pixels over N×N squares before the distance, so pixel noise cannot pass for a different image (default 1: none)" },
  snapshotKimg: { flag: "snapshot-kimg", type: "number", positive: true, help: "kimg between snapshots (grid, metric, checkpoint)" },
  maxMinutes: { flag: "max-minutes", type: "number", positive: true, help: "stop after this much training time (a CPU budget)" },
  metricImages: { flag: "metric-images", type: "int", nonNegative: true, help: "images per side for the Fréchet descriptor distance (0 = off, else ≥ 16)" },
  emaKimg: { flag: "ema-kimg", type: "number", positive: true, help: "half-life of the generator weight average, kimg" },
  seed: { flag: "seed", type: "int", nonNegative: true, help: "seed" },
  resume: { flag: "resume", type: "boolean", help: "continue from snapshots/latest with the run's saved settings" },
  checkpointsDir: { flag: "checkpoints", type: "string", help: "checkpoints folder (default checkpoints)" },
  cacheDir: { flag: "cache-dir", type: "string", help: CACHE_DIR_HELP },
} as const satisfies Partial<Record<keyof GanTrainConfig, FlagSpec & { flag: string }>>;

/**
 * The model (GanConfig) fields a user sets from the command line, same shape as GAN_FIELDS; their values go
 * into GanTrainConfig.model (undefined = the preset's or the default).
 */
export const GAN_MODEL_FIELDS = {
  discriminator: {
    flag: "discriminator",
    type: "string",
    choices: GAN_DISCRIMINATORS,
    help: "image (conv net on pixels) or projected (heads on frozen face-api age/gender features; --condition none only)",
  },
  gWidths: {
    flag: "g-widths",
    type: "string",
    help: "generator channels at 14×11, 28×22, 56×44, 112×88, comma-separated (default 128,64,32,16)",
  },
  gSkipExcitation: {
    flag: "g-skip-excitation",
    type: "boolean",
    help: "generator: skip-layer excitation (FastGAN): the 14×11 features gate the 56×44 ones' channels, the 28×22 the 112×88 ones' (default off)",
  },
  gUpsampleBlur: {
    flag: "g-upsample-blur",
    type: "boolean",
    help: "generator: a fixed [1,2,1] blur of each channel after every transposed convolution, against its checkerboard (StyleGAN2; default off)",
  },
  gUpsample: {
    flag: "g-upsample",
    type: "string",
    choices: G_UPSAMPLES,
    help: "generator: how each resolution doubles: transposed (a 4×4 stride-2 transposed convolution, the default) or nearest (copy each pixel to 2×2, then a 3×3 convolution: FastGAN's, one kernel for all four output phases, so no checkerboard from them)",
  },
  dWidths: {
    flag: "d-widths",
    type: "string",
    help: "image discriminator channels at 108×84, 54×42, 27×21, 14×11, 7×6 (default 16,32,64,128,256)",
  },
  mbstdGroup: {
    flag: "mbstd-group",
    type: "int",
    nonNegative: true,
    help: "image discriminator: minibatch standard deviation of its flattened 7×6 features over groups of N samples (default 4; 0 = off)",
  },
  pack: {
    flag: "pack",
    type: "int",
    positive: true,
    help: "image discriminator: PacGAN, one score per pack of N samples stacked on the channels (default 2 with --condition none, 1 = off and the only value with a condition or --discriminator projected; the batch a multiple of N)",
  },
  projectedView: {
    flag: "projected-view",
    type: "string",
    choices: PROJECTED_VIEWS,
    help: "what the projected discriminator's frozen net sees: face (the face square), portrait (the whole image), both (default)",
  },
} as const satisfies Partial<Record<keyof GanConfig, FlagSpec & { flag: string }>>;

export const DEFAULT_GAN_TRAIN: Omit<GanTrainConfig, "dataroot" | "expName"> = {
  checkpointsDir: "checkpoints",
  kimg: 50,
  batchSize: 32,
  lrG: 2e-4,
  lrD: 2e-4,
  lrRampdown: 0,
  beta1: 0.5,
  beta2: 0.999,
  emaKimg: 1,
  spectralNorm: false,
  // No DiffAugment: with the mode-seeking term, measured on tp_real (README), FDD after 60 minutes 0.058 (with
  // DiffAugment 0.139), and 50 img/s instead of 33–37.
  augment: "",
  adaTarget: 0,
  adaKimg: 20,
  // Measured on tp_real (README): FDD 0.12–0.17 from 40 minutes on, 0.139 at 60; the best run without it ended at 0.174.
  // Weight 2 over today's form, region and packs: near-duplicates per 64 means 3.9 and 8.2 over two seeds (1: 5.0, 7.2).
  modeSeeking: 1,
  // Every pair in the face square, with PacGAN's packs of two (model.pack below) and the minibatch std
  // (DEFAULT_GAN_CONFIG.mbstdGroup 4), measured on tp_real (README):
  // near-duplicates per set of 64 means 5.0 and 7.2 over two seeds, where the per-pair term on the whole image had
  // 7.8 and 12.0; FDD 0.047 and 0.045 at 60 minutes (0.046 and 0.043); 77–105 img/s, where the per-pair term's
  // seed 2 ran at 64–86 on the same machine (the discriminator sees half as many inputs).
  modeSeekingForm: "all",
  modeSeekingRegion: "face",
  modeSeekingPool: 1,
  condition: "none",
  snapshotKimg: 2,
  maxMinutes: null,
  metricImages: 500,
  gridRows: 8,
  gridCols: 8,
  seed: 0,
  resume: false,
  // The unconditional image discriminator's default; resolveGanConfig gives the conditional and projected ones 1.
  model: { pack: 2 },
};

/** `debug` is for tests and the notebook (seconds, small nets); `quick` the demo's default stage (about a minute, full-size nets); `demo` a few minutes; `full` a long CPU run. */
export const GAN_PRESETS: Record<string, Partial<GanTrainConfig>> = {
  debug: {
    kimg: 0.064,
    batchSize: 8,
    snapshotKimg: 0.032,
    metricImages: 24,
    emaKimg: 0.01,
    gridRows: 2,
    gridCols: 4,
    model: { latentDim: 32, wDim: 32, gWidths: [32, 16, 8, 8], dWidths: [8, 8, 16, 16, 32], gExtraLowRes: false, projectedWidth: 8 },
  },
  // The demo's first picture of the feature: on the procedural portraits, 0.4 kimg at batch 32 was coloured noise and
  // 3 kimg pale blobs; at batch 16 (twice the steps) 3 kimg drew head-and-shoulder shapes (README).
  quick: { kimg: 3, batchSize: 16, snapshotKimg: 1, metricImages: 64, emaKimg: 0.1 },
  demo: { kimg: 6, batchSize: 16, snapshotKimg: 1, metricImages: 256, emaKimg: 0.3 },
  full: { kimg: 200, snapshotKimg: 5, metricImages: 1000, emaKimg: 2 },
};

export function resolveGanConfig(base: Pick<GanTrainConfig, "dataroot" | "expName">, preset: string | undefined, overrides: Partial<GanTrainConfig>): GanTrainConfig {
  if (preset !== undefined && !(preset in GAN_PRESETS)) throw new UserError(`gan:train: unknown preset '${preset}'; expected one of ${Object.keys(GAN_PRESETS).join(", ")}`);
  const p = preset ? GAN_PRESETS[preset] : {};
  const merged = mergeDefined(mergeDefined({ ...DEFAULT_GAN_TRAIN, ...base } as GanTrainConfig, p), overrides);
  merged.model = { ...(p.model ?? {}), ...(overrides.model ?? {}) };
  const c = merged;
  // Channel lists arrive from the command line as text ("128,64,32,16") and from presets and saved runs as arrays.
  for (const [key, n] of [["gWidths", 4], ["dWidths", 5]] as const) {
    const v: unknown = c.model[key];
    if (v === undefined) continue;
    const list = typeof v === "string" ? v.split(",").map((x) => Number(x.trim())) : v;
    if (!Array.isArray(list) || list.length !== n || !list.every((x) => Number.isInteger(x) && x > 0)) {
      throw new UserError(`gan:train: --${GAN_MODEL_FIELDS[key].flag}: expected ${n} comma-separated positive integers, got '${v}'`);
    }
    (c.model as Record<string, unknown>)[key] = list;
  }
  const fields: [Record<string, unknown>, Record<string, FlagSpec & { flag: string }>][] = [[c as unknown as Record<string, unknown>, GAN_FIELDS], [c.model, GAN_MODEL_FIELDS]];
  for (const [values, specs] of fields) {
    for (const [key, spec] of Object.entries(specs)) {
      if (values[key] !== undefined && values[key] !== null && !Array.isArray(values[key])) checkValue("gan:train", spec.flag, spec, values[key]);
    }
  }
  const bad = (what: string, v: unknown) => new UserError(`gan:train: expected ${what}, got ${JSON.stringify(v)}`);
  if (c.batchSize < 2) throw bad("--batch-size ≥ 2", c.batchSize);
  for (const p of c.augment.split(",").filter(Boolean)) if (!AUGMENTS.includes(p as Augment)) throw bad(`--augment of ${AUGMENTS.join(", ")}`, p);
  if (!(Number.isInteger(c.metricImages) && (c.metricImages === 0 || c.metricImages >= 16))) throw bad("--metric-images 0 or ≥ 16", c.metricImages);
  if (c.adaTarget > 0 && c.augment === "") throw new UserError("gan:train: --ada-target adapts the probability of the --augment transforms; give them too (e.g. --augment color,translation,cutout)");
  // PacGAN applies to the unconditional image discriminator only: the default pack there, one sample elsewhere.
  const packGiven = c.model.pack !== undefined;
  const packs = c.condition === "none" && c.model.discriminator !== "projected";
  const pack = c.model.pack ??= packs ? DEFAULT_GAN_TRAIN.model.pack! : 1;
  if (pack > 1 && c.batchSize % pack !== 0) {
    throw new UserError(`gan:train: --pack ${pack}${packGiven ? "" : " (the default)"} needs a --batch-size that is a multiple of it, got ${c.batchSize}${packGiven ? "" : " (or give --pack 1)"}`);
  }
  if (pack > 1 && !packs) {
    throw new UserError(`gan:train: --pack ${pack} works with the unconditional image discriminator; got --condition ${c.condition}, --discriminator ${c.model.discriminator ?? "image"} (use --pack 1)`);
  }
  if (c.modeSeekingPool !== 1) {
    if (c.modeSeekingRegion === "face-features") throw new UserError(`gan:train: --mode-seeking-pool ${c.modeSeekingPool} averages pixels; --mode-seeking-region face-features measures features (use --mode-seeking-pool 1, or region image or face)`);
    const side = c.modeSeekingRegion === "face" ? Math.min(MODE_SEEKING_FACE.width, MODE_SEEKING_FACE.height) : Math.min(IMAGE_HEIGHT, IMAGE_WIDTH);
    if (c.modeSeekingPool > side) throw new UserError(`gan:train: --mode-seeking-pool ${c.modeSeekingPool} is larger than the ${side}-pixel side it averages in (region ${c.modeSeekingRegion})`);
  }
  if (c.model.discriminator === "projected" && c.condition !== "none") {
    throw new UserError(`gan:train: --discriminator projected is unconditional; got --condition ${c.condition} (use --condition none, or --discriminator image to condition)`);
  }
  return c;
}

export {
  AdaController,
  AUGMENTS,
  buildGanNets,
  classTensor,
  diffAugment,
  discriminatorStep,
  disposeGanNets,
  type GanNets,
  generatorStep,
  generatorStepLoss,
  latentsForSeeds,
  MODE_SEEKING_FORMS,
  type ModeSeeking,
  type ModeSeekingForm,
  modeSeekingFeatureMaps,
  modeSeekingTerm,
  type PixelRegion,
  shiftImages,
  SpectralNorm,
  type StepInput,
  updateEma,
} from "./steps.ts";
import {
  AdaController,
  AUGMENTS,
  type Augment,
  buildGanNets,
  classTensor,
  discriminatorStepLoss,
  disposeGanNets,
  type GanNets,
  generatorStepLoss,
  latentsForSeeds,
  MODE_SEEKING_FORMS,
  type ModeSeeking,
  type ModeSeekingForm,
  type PixelRegion,
  SpectralNorm,
  updateEma,
} from "./steps.ts";
import { UserError } from "../util/errors.ts";
import { checkValue, type FlagSpec } from "../config.ts";
import { writeCsvAtomic } from "../util/csv.ts";

/** Real batch in [-1, 1], randomly mirrored. */
function realBatch(pixels: Uint8Array, rows: ArrayLike<number>, rng: Rng): tf.Tensor4D {
  const b = rows.length;
  const out = new Float32Array(b * IMAGE_BYTES);
  const rowLen = IMAGE_WIDTH * 3;
  for (let i = 0; i < b; i++) {
    const src = rows[i] * IMAGE_BYTES, dst = i * IMAGE_BYTES;
    const flip = rng.chance(0.5);
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      for (let x = 0; x < IMAGE_WIDTH; x++) {
        const s = src + y * rowLen + (flip ? IMAGE_WIDTH - 1 - x : x) * 3, d = dst + y * rowLen + x * 3;
        out[d] = pixels[s] / 127.5 - 1;
        out[d + 1] = pixels[s + 1] / 127.5 - 1;
        out[d + 2] = pixels[s + 2] / 127.5 - 1;
      }
    }
  }
  return tf.tensor4d(out, [b, IMAGE_HEIGHT, IMAGE_WIDTH, 3]);
}

/** Generated images [-1, 1] → uint8 RGB rows. */
export async function toPixels(x: tf.Tensor4D): Promise<Uint8Array> {
  const t = tf.tidy(() => tf.cast(tf.clipByValue(tf.round(tf.mul(tf.add(x, 1), 127.5)), 0, 255), "int32"));
  const data = await t.data();
  t.dispose();
  return Uint8Array.from(data as Int32Array);
}

/** Renders images from latents with the EMA generator, in batches. */
export async function renderLatents(map: tfl.LayersModel, syn: tfl.LayersModel, z: tf.Tensor2D, cls?: tf.Tensor2D, batch = 64): Promise<Uint8Array> {
  const n = z.shape[0];
  const out = new Uint8Array(n * IMAGE_BYTES);
  for (let s = 0; s < n; s += batch) {
    const k = Math.min(batch, n - s);
    const img = tf.tidy(() => generate({ mapping: map, synthesis: syn }, tf.slice(z, [s, 0], [k, -1]), cls ? tf.slice(cls, [s, 0], [k, -1]) : undefined));
    out.set(await toPixels(img), s * IMAGE_BYTES);
    img.dispose();
  }
  return out;
}

/**
 * The frozen feature net of a "projected" discriminator: face-api's age/gender weights (read as lib/faces
 * reads them; the fc head's tensors are disposed), seeing the face square ageGenderPredict uses
 * (alignedCrop of PORTRAIT_FRAMING), the whole portrait (PORTRAIT_SQUARE), or both in that order. The caller
 * owns it (buildGanNets hands it to the nets).
 */
export async function loadFaceFeatures(view: ProjectedView = DEFAULT_GAN_CONFIG.projectedView): Promise<FaceFeatures> {
  const map = await readWeightMap("age_gender_model");
  const squares = projectedViews(view).map((v) => (v === "face" ? alignedCrop(PORTRAIT_FRAMING) : PORTRAIT_SQUARE));
  const features = new FaceFeatures(map, squares);
  const kept = new Set<tf.Tensor>(features.tensors());
  tf.dispose(Object.values(map).filter((t) => !kept.has(t)));
  return features;
}

// ------------------------------------------------------------------ runner

export interface GanSnapshotRecord {
  kimg: number;
  step: number;
  train_seconds: number;
  loss_d: number;
  loss_g: number;
  fdd: number | null;
  /** FDD between two disjoint sets of real portraits (the floor of the scale); null when not measured. */
  fdd_floor: number | null;
  img_per_s: number;
  /** Median nearest-neighbour descriptor distance, generated over real (metric sets); null without the metric. */
  nn_ratio?: number | null;
  /** Grid samples closer to another grid sample than the closest pair of as many real portraits; null without the metric. */
  grid_duplicates?: number | null;
  /** The adaptive augmentation's probability at the snapshot (1 when it is off). */
  augment_p?: number;
  /**
   * The grid_duplicates count on each whole set of grid-size among the metric samples, its median (the run's log
   * gives the range); null without the metric or with fewer metric images than the grid holds.
   */
  set_duplicates?: number | null;
}

interface GanState {
  step: number;
  /** Spectral-norm power-iteration vectors. */
  sn?: number[][];
  /** The adaptive augmentation's controller (absent when it is off). */
  ada?: { p: number; sum: number; images: number };
  imagesShown: number;
  trainSeconds: number;
  snapshots: GanSnapshotRecord[];
}

export interface GanRunResult {
  runDir: string;
  config: GanTrainConfig;
  state: GanState;
  params: { mapping: number; synthesis: number; discriminator: number };
  resumedFrom: number | null;
  /** Class names when conditional. */
  classes: string[];
}

const NETS = ["mapping", "synthesis", "discriminator", "mappingEma", "synthesisEma"] as const;
export const LATEST = join("snapshots", "latest");

/** What a generator folder holds besides its two models: everything gan:generate needs. */
export interface GeneratorMeta {
  model: GanConfig;
  condition: GanCondition;
  classes: string[];
  kimg: number;
  dataset: string;
}

async function saveSnapshot(dir: string, nets: GanNets, opts: { optG: tf.Optimizer; optD: tf.Optimizer; state: GanState; meta: GeneratorMeta }): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    for (const k of NETS) {
      await Deno.mkdir(join(tmp, k));
      await nets[k].save(fileIO(join(tmp, k)));
    }
    await Deno.mkdir(join(tmp, "opt_g"));
    await Deno.mkdir(join(tmp, "opt_d"));
    await saveOptimizer(join(tmp, "opt_g"), opts.optG);
    await saveOptimizer(join(tmp, "opt_d"), opts.optD);
    await writeJsonAtomic(join(tmp, "state.json"), opts.state);
    await writeJsonAtomic(join(tmp, "generator.json"), opts.meta);
  });
}

/** Saves only the EMA generator (what gan:generate loads) as `dir` (atomic). */
async function saveGenerator(dir: string, nets: GanNets, meta: GeneratorMeta): Promise<void> {
  await writeDirAtomic(dir, async (tmp) => {
    await Deno.mkdir(join(tmp, "mappingEma"));
    await Deno.mkdir(join(tmp, "synthesisEma"));
    await nets.mappingEma.save(fileIO(join(tmp, "mappingEma")));
    await nets.synthesisEma.save(fileIO(join(tmp, "synthesisEma")));
    await writeJsonAtomic(join(tmp, "generator.json"), meta);
  });
}

function fddChart(records: GanSnapshotRecord[]) {
  const values = records.filter((r) => r.fdd !== null).map((r) => ({ kimg: r.kimg, minutes: r.train_seconds / 60, fdd: r.fdd }));
  const floor = records.findLast((r) => r.fdd_floor != null)?.fdd_floor ?? null;
  const line = {
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "kimg", type: "quantitative", title: "thousands of real images shown" },
      y: { field: "fdd", type: "quantitative", title: "FDD", scale: { zero: false } },
      tooltip: [{ field: "kimg" }, { field: "minutes", format: ".1f" }, { field: "fdd", format: ".4f" }],
    },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: floor === null
      ? "Fréchet descriptor distance (lower = closer to the real portraits)"
      : `Fréchet descriptor distance (lower = closer to the real portraits; dashed: real against real, ${floor.toFixed(3)})`,
    width: 420,
    height: 220,
    data: { values },
    layer: withFloor(line, floor),
  };
}

/** A chart's layers: `line`, and the real-against-real FDD floor as a dashed rule when there is one (also gan:compare's). */
export function withFloor(line: Record<string, unknown>, floor: number | null): Record<string, unknown>[] {
  if (floor === null) return [line];
  return [line, { data: { values: [{ floor }] }, mark: { type: "rule", strokeDash: [4, 4], color: "gray" }, encoding: { y: { field: "floor", type: "quantitative" } } }];
}

/**
 * The learning rates' factor at `progress` (0 at the start, 1 at the end) of a run whose last `fraction` ramps
 * them down: 1 before the ramp, then a half cosine from 1 to 0 (StyleGAN's projector schedule), 1 throughout when
 * `fraction` is 0.
 */
export function lrRampdownScale(progress: number, fraction: number): number {
  if (!(fraction > 0)) return 1;
  const t = (Math.min(1, Math.max(0, progress)) - (1 - fraction)) / fraction;
  return t <= 0 ? 1 : 0.5 * (1 + Math.cos(Math.PI * t));
}

/**
 * The config of `--resume`: the run's saved config.json, then the explicitly given options over it
 * (ganTrainRun refuses changes to GAN_RESUME_FIXED_KEYS; kimg, snapshots and the time limit may change).
 */
export async function resumeGanConfig(base: { expName: string; checkpointsDir?: string }, overrides: Partial<GanTrainConfig>): Promise<GanTrainConfig> {
  const checkpointsDir = base.checkpointsDir ?? DEFAULT_GAN_TRAIN.checkpointsDir;
  const keys = [...Object.keys(DEFAULT_GAN_TRAIN), "dataroot", "attributes", "badImages", "cacheDir"];
  // A setting newer than the run takes the value that reproduces it (not today's default).
  const cfg = { ...TRAIN_SAVED_BEFORE, ...await savedRunConfig(runDirPath(checkpointsDir, base.expName, "gan:train"), "gan:train", keys) } as Partial<GanTrainConfig>;
  const merged = { ...mergeDefined(cfg as GanTrainConfig, overrides), checkpointsDir, expName: base.expName, resume: true };
  // A model flag joins the saved model (a change is refused); fields newer than the run take their old behaviour.
  merged.model = { ...SAVED_BEFORE, ...(cfg.model ?? {}), ...(overrides.model ?? {}) };
  return resolveGanConfig({ dataroot: merged.dataroot, expName: merged.expName }, undefined, merged);
}

/** Model fields added after runs were saved, with the value that reproduces such a run (its config.json lacks them). */
const SAVED_BEFORE: Partial<GanConfig> = { mbstdGroup: 0, pack: 1, gSkipExcitation: false, gUpsampleBlur: false, gUpsample: "transposed" };
/** The same for training settings: off for runs saved before adaptive augmentation and the mode-seeking term, its batch form before --mode-seeking-form. */
const TRAIN_SAVED_BEFORE: Partial<GanTrainConfig> = { lrRampdown: 0, adaTarget: 0, adaKimg: DEFAULT_GAN_TRAIN.adaKimg, modeSeeking: 0, modeSeekingForm: "batch", modeSeekingRegion: "image", modeSeekingPool: 1 };

/** Model fields a resumed run must keep (they shape the saved weights). */
const GAN_RESUME_FIXED_MODEL_KEYS = ["discriminator", "gWidths", "dWidths", "mbstdGroup", "pack", "latentDim", "wDim", "mappingLayers", "gExtraLowRes", "gSkipExcitation", "gUpsampleBlur", "gUpsample"] as const;

/** Settings a resumed GAN run must keep (kimg, snapshot interval, time limit may change). */
export const GAN_RESUME_FIXED_KEYS = ["batchSize", "lrG", "lrD", "lrRampdown", "beta1", "beta2", "emaKimg", "spectralNorm", "augment", "adaTarget", "adaKimg", "modeSeeking", "modeSeekingForm", "modeSeekingRegion", "modeSeekingPool", "condition", "seed"] as const;

/**
 * Trains (or resumes) a GAN run under checkpoints/<exp>/, holding the folder's lock: a fresh run
 * needs an empty folder, a resumed one must keep GAN_RESUME_FIXED_KEYS (checked before any write).
 */
export async function ganTrainRun(cfg: GanTrainConfig): Promise<GanRunResult> {
  const runDir = runDirPath(cfg.checkpointsDir, cfg.expName, "gan:train");
  return await withRunFolder(runDir, "gan:train", { resume: cfg.resume, cfg, fixedKeys: GAN_RESUME_FIXED_KEYS, quiet: cfg.quiet, savedBefore: TRAIN_SAVED_BEFORE }, () => ganTrainLocked(cfg, runDir));
}

async function ganTrainLocked(cfg: GanTrainConfig, runDir: string): Promise<GanRunResult> {
  const latest = join(runDir, LATEST);
  const log = async (line: string) => {
    if (!cfg.quiet) console.log(line);
    await appendFileAtomic(join(runDir, "run.log"), `${new Date().toISOString()} ${line}\n`);
  };
  const hasRun = (await exists(join(latest, "state.json"))) || (await exists(join(`${latest}.old`, "state.json")));
  if (cfg.resume && !hasRun) throw new UserError(`gan:train: --resume but no snapshot in ${latest}; train without --resume first`);
  if (cfg.resume) {
    // The discriminator kind lives in the model config (older runs: "image"); a resume keeps it.
    const savedModel = { ...DEFAULT_GAN_CONFIG, ...SAVED_BEFORE, ...((await readJson<{ model?: Partial<GanConfig> }>(join(runDir, "config.json"))).model ?? {}) };
    const wanted = { ...DEFAULT_GAN_CONFIG, ...cfg.model };
    const projected = wanted.discriminator === "projected" || savedModel.discriminator === "projected";
    const keys = [...GAN_RESUME_FIXED_MODEL_KEYS, ...(projected ? ["projectedWidth", "projectedView"] : [])];
    checkResumeConfig(runDir, savedModel as unknown as Record<string, unknown>, wanted as unknown as Record<string, unknown>, keys, "gan:train");
  }
  await Deno.mkdir(join(runDir, "samples"), { recursive: true });

  const ds = await openDataset({ dataroot: cfg.dataroot, attributes: cfg.attributes, cacheDir: cfg.cacheDir, quiet: cfg.quiet });
  const name = datasetName(ds.layout);
  const { exclude } = await loadExclusion(name, cfg.badImages);
  const labels = cfg.condition === "none" ? null : ds.attrs.labels[cfg.condition];
  const classes = cfg.condition === "none" ? [] : [...HEADS[cfg.condition].labels];
  const rows = Int32Array.from(ds.goodRows).filter((r) => !exclude.has(ds.attrs.index[r]) && (!labels || labels[r] >= 0));
  if (rows.length < cfg.batchSize) throw new UserError(`gan:train: ${rows.length} usable images in ${cfg.dataroot}, fewer than one batch of ${cfg.batchSize}`);
  const modelConfig: GanConfig = { ...DEFAULT_GAN_CONFIG, ...cfg.model, numClasses: classes.length, seed: cfg.seed + 1 };
  const meta: GeneratorMeta = { model: modelConfig, condition: cfg.condition, classes, kimg: 0, dataset: name };

  const nets = buildGanNets(modelConfig, modelConfig.discriminator === "projected" ? await loadFaceFeatures(modelConfig.projectedView) : undefined);
  const msFeatures = cfg.modeSeeking > 0 && cfg.modeSeekingRegion === "face-features" ? await loadFaceFeatures("face") : null;
  const ms = cfg.modeSeeking > 0 ? modeSeekingOf(cfg, msFeatures) : { weight: 0 };
  const optG = adam(cfg.lrG, cfg.beta1, cfg.beta2, 1e-8);
  const optD = adam(cfg.lrD, cfg.beta1, cfg.beta2, 1e-8);
  const sn = new SpectralNorm(nets.discriminator, cfg.seed);
  const ada = cfg.adaTarget > 0 ? new AdaController(cfg.adaTarget, cfg.adaKimg) : null;
  let state: GanState = { step: 0, imagesShown: 0, trainSeconds: 0, snapshots: [] };
  let resumedFrom: number | null = null;
  if (cfg.resume) {
    const dir = (await exists(join(latest, "state.json"))) ? latest : `${latest}.old`;
    for (const k of NETS) {
      const saved = await loadSavedModel(join(dir, k));
      nets[k].setWeights(saved.getWeights());
      saved.dispose();
    }
    await loadOptimizerState(join(dir, "opt_g"), optG);
    await loadOptimizerState(join(dir, "opt_d"), optD);
    state = await readJson<GanState>(join(dir, "state.json"));
    if (state.sn) sn.setState(state.sn);
    if (ada && state.ada) ada.setState(state.ada);
    resumedFrom = state.imagesShown / 1000;
    await log(`resumed from ${dir} at ${(state.imagesShown / 1000).toFixed(3)} kimg (step ${state.step})`);
  }
  await writeJsonAtomic(join(runDir, "config.json"), { ...cfg, model: modelConfig, classes, backend: engineChoice()?.backend ?? tf.getBackend() });

  // Fixed latents for the grids and the metric (same every snapshot and after resume).
  const gridN = cfg.gridRows * cfg.gridCols;
  const gridZ = latentsForSeeds(Array.from({ length: gridN }, (_, i) => i), modelConfig.latentDim);
  const gridCls = classes.length ? classTensor(Array.from({ length: gridN }, (_, i) => Math.floor(i / cfg.gridCols) % classes.length)) : undefined;
  const metricZ = cfg.metricImages ? latentsForSeeds(Array.from({ length: cfg.metricImages }, (_, i) => 1_000_000 + i), modelConfig.latentDim) : null;
  const metricRng = new Rng(mixSeed(cfg.seed, 77));
  const shuffled = cfg.metricImages ? metricRng.shuffle(Int32Array.from(rows)) : new Int32Array(0);
  const metricRows = shuffled.subarray(0, Math.min(cfg.metricImages, rows.length));
  const metricCls = classes.length && metricZ ? classTensor(Array.from({ length: cfg.metricImages }, (_, i) => labels![metricRows[i % metricRows.length]])) : undefined;
  let realStats: GaussianStats | null = null;
  let fddFloor: number | null = null;
  // Diversity references from the same real descriptors: their median nearest-neighbour distance, and the closest
  // pair among the first grid-size of them (a generated grid pair closer than that counts as a duplicate).
  let realNearest = NaN, duplicateBelow = NaN;
  if (cfg.metricImages) {
    const t0 = performance.now();
    const realDesc = await portraitDescriptors(ds.cache.pixels, metricRows);
    realStats = gaussianStats(realDesc, 128);
    realNearest = await medianNearest(realDesc, 128);
    const gridReal = Math.min(gridN, metricRows.length);
    if (gridReal >= 2) duplicateBelow = Math.min(...await nearestDistances(realDesc.subarray(0, gridReal * 128), 128));
    await log(`real descriptor statistics: ${metricRows.length} images in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    // The floor of the scale: FDD between two disjoint sets of real portraits of the same size (what a perfect
    // generator would score at this many images).
    let otherDesc: Float32Array = new Float32Array(0);
    if (shuffled.length >= 2 * cfg.metricImages) {
      otherDesc = await portraitDescriptors(ds.cache.pixels, shuffled.subarray(cfg.metricImages, 2 * cfg.metricImages));
      fddFloor = frechetDistance(realStats, gaussianStats(otherDesc, 128));
      await log(`FDD floor (real against other real portraits, ${cfg.metricImages} each): ${fddFloor.toFixed(4)}`);
    } else await log(`FDD floor: not measured (needs ${2 * cfg.metricImages} images, the dataset has ${shuffled.length})`);
    // The grid-duplicate count's own scale: the same count on other sets of gridN real portraits (0 for the set that
    // set the threshold, by its definition; a few for others).
    const realSets = gridReal >= 2 && Number.isFinite(duplicateBelow)
      ? [...await setDuplicates(realDesc.subarray(gridReal * 128), 128, gridReal, duplicateBelow), ...await setDuplicates(otherDesc, 128, gridReal, duplicateBelow)]
      : [];
    if (realSets.length) {
      const c = summariseCounts(realSets);
      await log(`grid duplicates among ${gridReal} real portraits (the same count on ${c.sets} other real sets): median ${c.median}, mean ${c.mean.toFixed(1)}, ${c.min}–${c.max}`);
    }
  }

  const total = Math.round(cfg.kimg * 1000);
  const snapEvery = Math.max(cfg.batchSize, Math.round(cfg.snapshotKimg * 1000));
  const budget = cfg.maxMinutes !== null ? cfg.maxMinutes * 60 : Infinity;
  // The learning rates' factor of the latest step (lrRampdownScale; 1 without --lr-rampdown).
  let lrScale = 1;
  const params = ganParams(nets);
  const dKind = nets.features ? ` (projected: heads on frozen age/gender features, ${nets.features.countParams()} weights not trained)` : "";
  await log(`GAN ${cfg.expName}: ${rows.length} images, condition ${cfg.condition}, params G ${params.mapping + params.synthesis} D ${params.discriminator}${dKind}, ` +
    `batch ${cfg.batchSize}${modelConfig.pack > 1 ? ` (packs of ${modelConfig.pack})` : ""}, ${cfg.kimg} kimg${cfg.maxMinutes !== null ? ` or ${cfg.maxMinutes} min` : ""}, augment '${cfg.augment}'${ada ? ` (adaptive: target ${cfg.adaTarget}, p from ${ada.p.toFixed(3)})` : ""}${cfg.modeSeeking > 0 ? `, mode-seeking ${cfg.modeSeeking} (${cfg.modeSeekingForm}, ${cfg.modeSeekingRegion}${cfg.modeSeekingPool > 1 ? `, pool ${cfg.modeSeekingPool}` : ""})` : ""}, backend ${tf.getBackend()}`);

  const snapshot = async (lossD: number, lossG: number, rate: number) => {
    const kimg = state.imagesShown / 1000;
    const tag = `kimg${kimg.toFixed(3).replace(".", "_").padStart(9, "0")}`;
    const grid = await renderLatents(nets.mappingEma, nets.synthesisEma, gridZ, gridCls);
    const tiles = Array.from({ length: gridN }, (_, i) => ({ image: { raw: grid.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 as const } }));
    const png = await mosaic(tiles, {
      columns: cfg.gridCols,
      rowLabels: classes.length ? Array.from({ length: cfg.gridRows }, (_, r) => classes[r % classes.length]) : undefined,
      title: `${cfg.expName} — ${kimg.toFixed(2)} kimg, ${(state.trainSeconds / 60).toFixed(1)} min (EMA generator, fixed latents)`,
    });
    await writeFileAtomic(join(runDir, "samples", `grid-${tag}.png`), png);
    await writeFileAtomic(join(runDir, "samples", "grid-latest.png"), png);
    let fdd: number | null = null, nnRatio: number | null = null, gridDuplicates: number | null = null, setDups: CountSummary | null = null;
    if (metricZ && realStats) {
      const fake = await renderLatents(nets.mappingEma, nets.synthesisEma, metricZ, metricCls);
      const fakeDesc = await portraitDescriptors(fake, Int32Array.from({ length: cfg.metricImages }, (_, i) => i));
      fdd = frechetDistance(realStats, gaussianStats(fakeDesc, 128));
      nnRatio = (await medianNearest(fakeDesc, 128)) / realNearest;
      if (Number.isFinite(duplicateBelow) && gridN >= 2) {
        gridDuplicates = await nearDuplicates(await portraitDescriptors(grid, Int32Array.from({ length: gridN }, (_, i) => i)), 128, duplicateBelow);
        // The same count on each set of gridN metric samples: one grid's count is one draw of it.
        if (cfg.metricImages >= gridN) setDups = summariseCounts(await setDuplicates(fakeDesc, 128, gridN, duplicateBelow));
      }
    }
    const rec: GanSnapshotRecord = {
      kimg, step: state.step, train_seconds: state.trainSeconds, loss_d: lossD, loss_g: lossG, fdd, fdd_floor: fddFloor, img_per_s: rate,
      nn_ratio: nnRatio, grid_duplicates: gridDuplicates, augment_p: ada ? ada.p : 1, set_duplicates: setDups?.median ?? null,
    };
    state.snapshots.push(rec);
    meta.kimg = kimg;
    state.sn = await sn.getState();
    if (ada) state.ada = ada.getState();
    await saveSnapshot(latest, nets, { optG, optD, state, meta });
    await saveGenerator(join(runDir, "snapshots", `network-${tag}`), nets, meta);
    await writeCsvAtomic(join(runDir, "fdd.csv"), state.snapshots as unknown as Record<string, unknown>[], Object.keys(rec));
    if (state.snapshots.some((r) => r.fdd !== null)) await saveChart(fddChart(state.snapshots), join(runDir, "fdd"));
    await log(`snapshot ${kimg.toFixed(3)} kimg, ${(state.trainSeconds / 60).toFixed(1)} min: loss D ${lossD.toFixed(3)} G ${lossG.toFixed(3)}` +
      `${fdd !== null ? `, FDD ${fdd.toFixed(4)}, nearest-neighbour ratio ${nnRatio!.toFixed(2)}` : ""}` +
      `${gridDuplicates !== null ? `, ${gridDuplicates}/${gridN} grid samples near-duplicates` : ""}` +
      `${setDups ? ` (median ${setDups.median}, ${setDups.min}–${setDups.max} over ${setDups.sets} sets of ${gridN} metric samples)` : ""}${ada ? `, augment p ${ada.p.toFixed(3)}` : ""}${cfg.lrRampdown > 0 ? `, learning rates ×${lrScale.toFixed(3)}` : ""}, ${rate.toFixed(1)} img/s → ${join(runDir, "samples", `grid-${tag}.png`)}`);
  };

  // Counts this session's images only (a resumed run's rate and ETA would otherwise include the earlier ones).
  const progress = new Progress(`GAN ${cfg.expName}${state.imagesShown ? ` (from ${(state.imagesShown / 1000).toFixed(2)} kimg)` : ""}`, Math.max(0, total - state.imagesShown), { unit: "img", quiet: cfg.quiet });
  let lossDSum = 0, lossGSum = 0, steps = 0, windowImages = 0, windowSeconds = 0;
  try {
    // Each round's two losses are read while the next round runs (lib/engine/read_behind.ts).
    const behind = new ReadBehind<number>(([ld, lg, sign], step) => {
      if (!Number.isFinite(ld) || !Number.isFinite(lg)) throw new UserError(`GAN training diverged at step ${step}: loss D ${ld}, G ${lg}; lower --lr-g/--lr-d`);
      lossDSum += ld, lossGSum += lg, steps++;
      ada?.observe(sign, cfg.batchSize, step);
    });
    while (state.imagesShown < total && state.trainSeconds < budget) {
      const t0 = performance.now();
      lrScale = lrRampdownScale(Math.max(state.imagesShown / total, state.trainSeconds / budget), cfg.lrRampdown);
      optG.setLearningRate(cfg.lrG * lrScale);
      optD.setLearningRate(cfg.lrD * lrScale);
      const rng = new Rng(mixSeed(cfg.seed, state.step, 0x9a));
      const batchRows = Int32Array.from({ length: cfg.batchSize }, () => rows[rng.int(0, rows.length - 1)]);
      const fakeRows = Int32Array.from({ length: cfg.batchSize }, () => rows[rng.int(0, rows.length - 1)]);
      const zData = () => tf.tidy(() => tf.randomNormal([cfg.batchSize, modelConfig.latentDim], 0, 1, "float32", rng.int(0, 2 ** 30)) as tf.Tensor2D);
      const real = realBatch(ds.cache.pixels, batchRows, rng);
      const realClass = labels ? classTensor(Array.from(batchRows, (r) => labels[r])) : undefined;
      const fakeClass = labels ? classTensor(Array.from(fakeRows, (r) => labels[r])) : undefined;
      const z1 = zData(), z2 = zData();
      let realSign: tf.Scalar | null = null;
      try {
        const augmentP = ada ? ada.p : 1;
        const ldT = discriminatorStepLoss(nets, optD, { real, realClass, z: z1, fakeClass, augmentP }, cfg.augment, rng, ada ? (s) => (realSign = s) : undefined);
        if (cfg.spectralNorm) await sn.project();
        const lgT = generatorStepLoss(nets, optG, { z: z2, fakeClass, augmentP }, cfg.augment, rng, ms);
        const losses = tf.stack(realSign ? [ldT, lgT, realSign] : [ldT, lgT]);
        tf.dispose([ldT, lgT]);
        state.imagesShown += cfg.batchSize;
        const beta = Math.pow(0.5, cfg.batchSize / Math.max(1e-9, cfg.emaKimg * 1000));
        updateEma(nets, Math.min(beta, (1 + state.step) / (10 + state.step)));
        await behind.push(losses, state.step);
        state.step++;
      } finally {
        tf.dispose([real, z1, z2, ...(realClass ? [realClass] : []), ...(fakeClass ? [fakeClass] : []), ...(realSign ? [realSign] : [])]);
      }
      const dt = (performance.now() - t0) / 1000;
      state.trainSeconds += dt;
      windowImages += cfg.batchSize, windowSeconds += dt;
      const budgetLeft = Number.isFinite(budget) ? `, budget left ${formatDuration(Math.max(0, budget - state.trainSeconds))}` : "";
      const pNow = (ada ? `, augment p ${ada.p.toFixed(2)}` : "") + (lrScale < 1 ? `, lr ×${lrScale.toFixed(2)}` : "");
      progress.tick(cfg.batchSize, steps ? `loss D ${(lossDSum / steps).toFixed(3)} G ${(lossGSum / steps).toFixed(3)}${pNow}${budgetLeft}` : `${pNow}${budgetLeft}`.slice(2));
      const crossed = Math.floor(state.imagesShown / snapEvery) > Math.floor((state.imagesShown - cfg.batchSize) / snapEvery);
      if (crossed || state.imagesShown >= total || state.trainSeconds >= budget) {
        await behind.flush();
        await snapshot(lossDSum / steps, lossGSum / steps, windowImages / windowSeconds);
        lossDSum = lossGSum = steps = windowImages = windowSeconds = 0;
      }
    }
    progress.finish();
    if (state.trainSeconds >= budget && state.imagesShown < total) await log(`stopped at the ${cfg.maxMinutes}-minute budget (${(state.imagesShown / 1000).toFixed(2)} kimg)`);
  } finally {
    sn.dispose();
    tf.dispose([gridZ, ...(gridCls ? [gridCls] : []), ...(metricZ ? [metricZ] : []), ...(metricCls ? [metricCls] : [])]);
    optG.dispose();
    optD.dispose();
    disposeGanNets(nets);
    msFeatures?.dispose();
  }
  return { runDir, config: cfg, state, params, resumedFrom, classes };
}
