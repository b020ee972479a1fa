/**
 * The GAN's training steps, with no data or file dependencies (so a bundle of them runs anywhere tfjs
 * does, e.g. bench/gan_gpu.ts on a GPU machine): DiffAugment, spectral normalisation, the
 * discriminator and generator steps, the generator's weight average, seeded latents.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { buildGan, discriminate, type GanConfig, type GanModels, generate, projectedViews } from "./nets.ts";
import type { FaceFeatures } from "./features.ts";
import { mixSeed, Rng } from "../util/rng.ts";

// ---------------------------------------------------------------- DiffAugment

export const AUGMENTS = ["color", "translation", "cutout"] as const;
export type Augment = typeof AUGMENTS[number];

/**
 * DiffAugment (Zhao et al. 2020) on a batch in [-1, 1]: differentiable in x, random
 * parameters drawn from `rng` (so a step is reproducible). With `p` < 1 each transform of the
 * policy is applied to each image with probability p (the adaptive augmentation of StyleGAN2-ADA,
 * Karras et al. 2020, which moves p); p = 1 draws exactly what the plain policy draws. Call inside a tidy.
 */
export function diffAugment(x: tf.Tensor4D, policy: string, rng: Rng, p = 1): tf.Tensor4D {
  const [b, h, w] = x.shape;
  for (const op of policy.split(",").filter(Boolean) as Augment[]) {
    if (p <= 0) break;
    // Which images the transform touches: all of them at p = 1 (no draw), else each with probability p.
    const on = p >= 1 ? new Array<boolean>(b).fill(true) : Array.from({ length: b }, () => rng.chance(p));
    // One value per image, drawn for every image (the same draws whatever p); `off` where the transform is skipped.
    const per = (lo: number, hi: number, off: number) =>
      tf.tensor4d(Float32Array.from({ length: b }, (_, i) => {
        const v = rng.uniform(lo, hi);
        return on[i] ? v : off;
      }), [b, 1, 1, 1]);
    if (op === "color") {
      x = tf.add(x, per(-0.5, 0.5, 0)); // brightness (±0.25 of the 0..1 range)
      const gray = tf.mean(x, 3, true);
      x = tf.add(tf.mul(tf.sub(x, gray), per(0, 2, 1)), gray); // saturation
      const mean = tf.mean(x, [1, 2, 3], true);
      x = tf.add(tf.mul(tf.sub(x, mean), per(0.5, 1.5, 1)), mean); // contrast
    } else if (op === "translation") {
      const sy = Math.round(h / 8), sx = Math.round(w / 8);
      const dys: number[] = [], dxs: number[] = [];
      for (let i = 0; i < b; i++) {
        const dy = rng.int(-sy, sy), dx = rng.int(-sx, sx);
        dys.push(on[i] ? dy : 0), dxs.push(on[i] ? dx : 0);
      }
      x = shiftImages(x, dys, dxs);
    } else if (op === "cutout") {
      const ch = Math.round(h / 2), cw = Math.round(w / 2);
      const mask = new Float32Array(b * h * w).fill(1);
      for (let i = 0; i < b; i++) {
        const y0 = rng.int(0, h - ch), x0 = rng.int(0, w - cw);
        if (!on[i]) continue;
        for (let y = y0; y < y0 + ch; y++) mask.fill(0, i * h * w + y * w + x0, i * h * w + y * w + x0 + cw);
      }
      x = tf.mul(x, tf.tensor4d(mask, [b, h, w, 1]));
    }
  }
  return x;
}

/**
 * Image i moved by (dy[i], dx[i]) pixels, zeros filled in: out[i, y, x] = x[i, y + dy[i], x + dx[i]]. Its gradient is
 * the opposite move of dy, one pass; tfjs' own gradient of the same slices would pad each image's gradient to the
 * whole padded batch and add the b copies up (b times the work).
 */
export function shiftImages(x: tf.Tensor4D, dy: readonly number[], dx: readonly number[]): tf.Tensor4D {
  const move = (t: tf.Tensor4D, sign: number): tf.Tensor4D => {
    const [b, h, w, c] = t.shape;
    const sy = Math.max(0, ...dy.map(Math.abs)), sx = Math.max(0, ...dx.map(Math.abs));
    if (sy === 0 && sx === 0) return t.clone();
    const padded = tf.pad(t, [[0, 0], [sy, sy], [sx, sx], [0, 0]]);
    const parts = Array.from({ length: b }, (_, i) => tf.slice(padded, [i, sy + sign * dy[i], sx + sign * dx[i], 0], [1, h, w, c]));
    return tf.concat(parts, 0) as tf.Tensor4D;
  };
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: move(args[0] as tf.Tensor4D, 1),
    gradFunc: (g: tf.Tensor) => move(g as tf.Tensor4D, -1),
  }));
  return f(x) as tf.Tensor4D;
}

/**
 * The adaptive augmentation's controller (StyleGAN2-ADA): r = E[sign D(real)] over the last `interval` steps
 * measures the discriminator's overfitting; p rises when r is above `target`, falls below it, by at most
 * (images in the interval) / (kimg · 1000), so p can cross 0 → 1 in `kimg` thousand images.
 */
export class AdaController {
  private sum = 0;
  private images = 0;
  constructor(readonly target: number, readonly kimg: number, public p = 0, readonly interval = 4) {}

  /** Adds one step's mean sign of the real scores; moves p after every `interval` steps (step counted from 0). */
  observe(meanSign: number, batch: number, step: number): void {
    this.sum += meanSign * batch;
    this.images += batch;
    if ((step + 1) % this.interval !== 0) return;
    const r = this.sum / this.images;
    this.p = Math.min(1, Math.max(0, this.p + Math.sign(r - this.target) * this.images / (this.kimg * 1000)));
    this.sum = this.images = 0;
  }

  /** What a snapshot saves (the accumulator too, so a resumed run moves p as the uninterrupted one). */
  getState(): { p: number; sum: number; images: number } {
    return { p: this.p, sum: this.sum, images: this.images };
  }

  setState(s: { p: number; sum: number; images: number }): void {
    this.p = s.p, this.sum = s.sum, this.images = s.images;
  }
}

// ---------------------------------------------------------- spectral norm

/**
 * Spectral normalisation as a projection: after each discriminator step every conv and
 * dense kernel W (as a [fan-in, out] matrix) is divided by its largest singular value σ,
 * estimated by power iteration with a persistent vector per kernel (Miyato et al. 2018
 * run the same iteration inside the forward pass).
 */
export class SpectralNorm {
  /** Power-iteration vector per kernel, by position in kernels() (names change between processes). */
  private us: (tf.Tensor2D | null)[] = [];
  constructor(private readonly model: tfl.LayersModel, private readonly seed = 0) {}

  private kernels(): tfl.LayerVariable[] {
    return this.model.trainableWeights.filter((w) => /kernel/.test(w.originalName) && w.shape.length >= 2);
  }

  /**
   * Projects every kernel to spectral norm 1. With `measure`, resolves to the σ found per kernel (before the
   * projection), read back once at the end; without, nothing is read back (no GPU round trip per step).
   */
  async project(iterations = 1, measure = false): Promise<number[]> {
    const sigmas: tf.Scalar[] = [];
    this.kernels().forEach((v, k) => {
      const shape = v.shape as number[];
      const cols = shape[shape.length - 1], rows = shape.reduce((a, b) => a * b, 1) / cols;
      let u = this.us[k] ?? null;
      let its = iterations;
      if (!u) {
        u = tf.tidy(() => tf.randomNormal([cols, 1], 0, 1, "float32", mixSeed(this.seed, k)) as tf.Tensor2D);
        its = Math.max(its, 5);
      }
      const [uNew, sigma] = tf.tidy(() => {
        const wm = tf.reshape(v.read(), [rows, cols]) as tf.Tensor2D;
        let uu = u!;
        let vv = tf.zeros([rows, 1]) as tf.Tensor2D;
        for (let i = 0; i < its; i++) {
          const wu = tf.matMul(wm, uu);
          vv = tf.div(wu, tf.add(tf.norm(wu), 1e-12));
          const wv = tf.matMul(wm, vv, true, false);
          uu = tf.div(wv, tf.add(tf.norm(wv), 1e-12));
        }
        const s = tf.sum(tf.mul(vv, tf.matMul(wm, uu)));
        v.write(tf.div(v.read(), tf.maximum(s, 1e-6)));
        return [uu, s];
      });
      u.dispose();
      this.us[k] = uNew as tf.Tensor2D;
      if (measure) sigmas.push(sigma as tf.Scalar);
      else sigma.dispose();
    });
    if (!measure) return [];
    const all = tf.stack(sigmas);
    tf.dispose(sigmas);
    const out = Array.from(await all.data());
    all.dispose();
    return out;
  }

  /** The power-iteration vectors (saved in snapshots so a resumed run continues exactly); read asynchronously. */
  async getState(): Promise<number[][]> {
    return await Promise.all(this.us.map(async (u) => (u ? Array.from(await u.data()) : [])));
  }

  setState(state: number[][]): void {
    this.dispose();
    this.us = state.map((a) => (a.length ? tf.tensor2d(a, [a.length, 1]) : null));
  }

  dispose(): void {
    for (const u of this.us) u?.dispose();
    this.us = [];
  }
}

// ------------------------------------------------------------------ steps

export interface GanNets extends GanModels {
  mappingEma: tfl.LayersModel;
  synthesisEma: tfl.LayersModel;
}

export interface StepInput {
  real: tf.Tensor4D;
  realClass?: tf.Tensor2D;
  z: tf.Tensor2D;
  fakeClass?: tf.Tensor2D;
  /** Probability of each augmentation per image (diffAugment's p; default 1). */
  augmentP?: number;
}

const gVarsOf = (n: GanModels) => [...n.mapping.trainableWeights, ...n.synthesis.trainableWeights].map((w) => w.read() as tf.Variable);
const dVarsOf = (n: GanModels) => n.discriminator.trainableWeights.map((w) => w.read() as tf.Variable);

/**
 * One discriminator step (hinge loss, averaged over the scores: one per image, or one per image, view and feature
 * scale for the projected discriminator); only the discriminator's weights change. Returns the loss as a scalar
 * tensor, not read (the caller reads it when it suits: on webgpu a read waits for the GPU). `realSign`, when given,
 * receives the mean sign of the real images' scores (what AdaController observes), a tensor the caller disposes.
 */
export function discriminatorStepLoss(nets: GanModels, opt: tf.Optimizer, inp: StepInput, augment: string, rng: Rng, realSign?: (s: tf.Scalar) => void): tf.Scalar {
  return opt.minimize(() => {
    const fake = generate(nets, inp.z, inp.fakeClass, true);
    const dReal = discriminate(nets.discriminator, diffAugment(inp.real, augment, rng, inp.augmentP), inp.realClass, nets.features);
    const dFake = discriminate(nets.discriminator, diffAugment(fake, augment, rng, inp.augmentP), inp.fakeClass, nets.features);
    if (realSign) realSign(tf.keep(tf.mean(tf.sign(dReal))) as tf.Scalar);
    return tf.add(tf.mean(tf.relu(tf.sub(1, dReal))), tf.mean(tf.relu(tf.add(1, dFake)))) as tf.Scalar;
  }, true, dVarsOf(nets)) as tf.Scalar;
}

/**
 * How the mode-seeking term averages: over the batch (MSGAN's form), over each of the batch's fixed pairs, or over
 * every pair of the batch (see modeSeekingTerm).
 */
export const MODE_SEEKING_FORMS = ["batch", "pairs", "all"] as const;
export type ModeSeekingForm = typeof MODE_SEEKING_FORMS[number];

/** A region of the image, in whole pixels, that the mode-seeking term measures in: rows y…y+height, columns x…x+width. */
export interface PixelRegion {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The mode-seeking term of MSGAN (Mao et al. 2019) on a generated batch: for a pair of latents, d = the images'
 * distance over the latents' distance, and the term is 1 / (d + 1e-5): small when different latents give different
 * images, large when they collapse onto the same one. `form`:
 * - "batch" (MSGAN's code): the batch's first half paired with its second, d = mean|G(z₁) − G(z₂)| / mean|z₁ − z₂|
 *   over all pairs at once, so a few collapsed pairs barely move it;
 * - "pairs": the same pairs, d per pair (mean absolute differences), 1 / (dᵢ + 1e-5) averaged over the pairs, so each
 *   close pair adds its own large term (1/d is convex: its gradient grows as 1/dᵢ², where the batch form's is shared);
 * - "all": every pair of the batch (b(b − 1)/2 of them, where "pairs" sees b/2 fixed ones), d per pair with
 *   root-mean-square distances (from one Gram matrix per side, so the cost does not grow with the pairs' pixels;
 *   1e-10 under the root keeps a twin pair's gradient finite), the inverse averaged over the pairs: a sample with a
 *   near-twin anywhere in the batch adds a large term, as Normalized Diversification (Liu et al. 2019) measures
 *   every pair.
 * `region` (whole pixels inside the image) measures the images' distance there only, e.g. the face, so that two
 * samples of one face on different backgrounds count as close. `pool` averages the (region's) pixels over pool×pool
 * squares first (the rows and columns left over are dropped), so that pixel noise, which averages out, cannot pass for
 * a different image. Batch of at least 2.
 */
export function modeSeekingTerm(fake: tf.Tensor4D, z: tf.Tensor2D, form: ModeSeekingForm = "batch", region: PixelRegion | null = null, pool = 1): tf.Scalar {
  return tf.tidy(() => {
    const n = fake.shape[0];
    const half = Math.floor(n / 2);
    if (half < 1) throw new Error(`modeSeekingTerm: needs a batch of at least 2, got ${n}`);
    if (region) {
      const [, h, w] = fake.shape;
      const { x, y, width, height } = region;
      if (![x, y, width, height].every(Number.isInteger) || x < 0 || y < 0 || width < 1 || height < 1 || x + width > w || y + height > h) {
        throw new Error(`modeSeekingTerm: region ${JSON.stringify(region)} is not whole pixels inside a ${h}×${w} image`);
      }
      fake = tf.slice(fake, [0, y, x, 0], [n, height, width, -1]);
    }
    if (pool !== 1) {
      const [, h, w] = fake.shape;
      if (!Number.isInteger(pool) || pool < 1 || pool > Math.min(h, w)) throw new Error(`modeSeekingTerm: pool ${pool} is not a whole number from 1 to ${Math.min(h, w)} (the measured ${h}×${w})`);
      fake = tf.avgPool(fake, pool, pool, "valid");
    }
    if (form === "all") {
      const rms = (t: tf.Tensor) => {
        const flat = tf.reshape(t, [n, -1]);
        const sq = tf.sum(tf.square(flat), 1, true); // [n, 1]
        const d2 = tf.relu(tf.sub(tf.add(sq, tf.transpose(sq)), tf.mul(2, tf.matMul(flat, flat, false, true))));
        return tf.sqrt(tf.add(tf.div(d2, flat.shape[1]!), 1e-10)); // [n, n]
      };
      const upper = tf.tensor1d(pairIndices(n), "int32"); // i < j of the flattened [n, n]
      const d = tf.div(tf.gather(tf.reshape(rms(fake), [-1]), upper), tf.gather(tf.reshape(rms(z), [-1]), upper));
      return tf.mean(tf.div(1, tf.add(d, 1e-5))) as tf.Scalar;
    }
    const pair = <T extends tf.Tensor>(t: T): [T, T] => [tf.slice(t, 0, half) as T, tf.slice(t, half, half) as T];
    const [f1, f2] = pair(fake), [z1, z2] = pair(z);
    if (form === "batch") {
      const d = tf.div(tf.mean(tf.abs(tf.sub(f1, f2))), tf.mean(tf.abs(tf.sub(z1, z2))));
      return tf.div(1, tf.add(d, 1e-5)) as tf.Scalar;
    }
    const perPair = (a: tf.Tensor, b: tf.Tensor) => tf.mean(tf.reshape(tf.abs(tf.sub(a, b)), [half, -1]), 1);
    const d = tf.div(perPair(f1, f2), perPair(z1, z2)); // [half]
    return tf.mean(tf.div(1, tf.add(d, 1e-5))) as tf.Scalar;
  });
}

/**
 * What the mode-seeking term compares in the "face-features" region: each sample's deepest map of `features` (face-api's
 * age/gender net on the face square, [n,7,7,512]) scaled to unit root-mean-square, so that the RMS distance of two
 * samples is √(2 − 2·cos) of their maps, whatever the maps' scale. Differentiable in `fake`.
 */
export function modeSeekingFeatureMaps(features: FaceFeatures, fake: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const maps = features.forward(fake);
    const exit = maps[maps.length - 1];
    return tf.mul(exit, tf.rsqrt(tf.add(tf.mean(tf.square(exit), [1, 2, 3], true), 1e-8))) as tf.Tensor4D;
  });
}

/** The flat indices i·n + j of an n×n matrix's pairs i < j, row by row; built once per batch size (every G step asks). */
const pairIndexCache = new Map<number, Int32Array>();
function pairIndices(n: number): Int32Array {
  let out = pairIndexCache.get(n);
  if (!out) {
    out = new Int32Array((n * (n - 1)) / 2);
    for (let i = 0, k = 0; i < n; i++) for (let j = i + 1; j < n; j++) out[k++] = i * n + j;
    pairIndexCache.set(n, out);
  }
  return out;
}

/** The generator's mode-seeking term as a step adds it (modeSeekingTerm). */
export interface ModeSeeking {
  /** Its weight λ in the generator's loss; 0 = off. */
  weight: number;
  /** Default "batch". */
  form?: ModeSeekingForm;
  /** Pixels the distance is measured in (default: the whole image). */
  region?: PixelRegion | null;
  /** Average over pool×pool pixels before the distance (default 1: none). */
  pool?: number;
  /** Measure on modeSeekingFeatureMaps of these features instead of pixels (no region, no pool). */
  features?: FaceFeatures | null;
}

/**
 * One generator step (−D(G(z)), plus `ms.weight` × modeSeekingTerm when above 0); only the generator's weights
 * change. Returns the adversarial loss tensor (without the mode-seeking term), not read.
 */
export function generatorStepLoss(
  nets: GanModels,
  opt: tf.Optimizer,
  inp: Pick<StepInput, "z" | "fakeClass" | "augmentP">,
  augment: string,
  rng: Rng,
  ms: ModeSeeking = { weight: 0 },
): tf.Scalar {
  const pool = ms.pool ?? 1;
  if (ms.features && (ms.region || pool !== 1)) throw new Error("generatorStepLoss: the mode-seeking term measures features or pixels (a region, a pool), not both");
  const kept: { adversarial?: tf.Scalar } = {};
  const total = opt.minimize(() => {
    const fake = generate(nets, inp.z, inp.fakeClass, true);
    const lossG = tf.neg(tf.mean(discriminate(nets.discriminator, diffAugment(fake, augment, rng, inp.augmentP), inp.fakeClass, nets.features))) as tf.Scalar;
    if (!(ms.weight > 0)) return lossG;
    kept.adversarial = tf.keep(tf.clone(lossG));
    const measured = ms.features ? modeSeekingFeatureMaps(ms.features, fake) : fake;
    return tf.add(lossG, tf.mul(ms.weight, modeSeekingTerm(measured, inp.z, ms.form ?? "batch", ms.region ?? null, pool))) as tf.Scalar;
  }, true, gVarsOf(nets)) as tf.Scalar;
  if (kept.adversarial === undefined) return total;
  total.dispose();
  return kept.adversarial;
}

async function readLoss(loss: tf.Scalar): Promise<number> {
  const v = ((await loss.data()) as Float32Array)[0];
  loss.dispose();
  return v;
}

/** discriminatorStepLoss, then its loss read (asynchronously, which webgpu needs). */
export function discriminatorStep(nets: GanModels, opt: tf.Optimizer, inp: StepInput, augment: string, rng: Rng): Promise<number> {
  return readLoss(discriminatorStepLoss(nets, opt, inp, augment, rng));
}

/** generatorStepLoss, then its loss read. */
export function generatorStep(...args: Parameters<typeof generatorStepLoss>): Promise<number> {
  return readLoss(generatorStepLoss(...args));
}

/** Per model: the names of the weights of its untrainable layers (gUpsampleBlur's fixed kernels), found once. */
const FIXED_WEIGHTS = new WeakMap<tfl.LayersModel, Set<string>>();
function fixedWeights(m: tfl.LayersModel): Set<string> {
  let names = FIXED_WEIGHTS.get(m);
  if (names === undefined) {
    names = new Set(m.layers.filter((l) => !l.trainable).flatMap((l) => l.weights.map((w) => w.name)));
    FIXED_WEIGHTS.set(m, names);
  }
  return names;
}

/** ema ← β·ema + (1−β)·current for every weight of the generator (but the fixed ones of untrainable layers). */
export function updateEma(nets: GanNets, beta: number): void {
  const pairs: [tfl.LayersModel, tfl.LayersModel][] = [[nets.mappingEma, nets.mapping], [nets.synthesisEma, nets.synthesis]];
  for (const [ema, cur] of pairs) {
    const ew = ema.weights, cw = cur.weights;
    // Layers built untrainable hold constants: nothing to average.
    const fixed = fixedWeights(cur);
    for (let i = 0; i < ew.length; i++) {
      if (fixed.has(cw[i].name)) continue;
      tf.tidy(() => {
        ew[i].write(tf.add(tf.mul(ew[i].read(), beta), tf.mul(cw[i].read(), 1 - beta)));
      });
    }
  }
}

/**
 * Builds the nets plus the EMA copy of the generator (same start weights). A "projected" discriminator needs
 * its frozen `features` (lib/gan/train.ts loadFaceFeatures()); the nets own them from here on.
 */
export function buildGanNets(config: GanConfig, features?: FaceFeatures): GanNets {
  if (config.discriminator === "projected" && !features) throw new Error("buildGanNets: the projected discriminator needs its frozen face features (loadFaceFeatures())");
  if (config.discriminator !== "projected" && features) throw new Error("buildGanNets: face features given for an image discriminator");
  if (features && features.viewCount !== projectedViews(config.projectedView).length) {
    throw new Error(`buildGanNets: the face features have ${features.viewCount} views, projectedView '${config.projectedView}' needs ${projectedViews(config.projectedView).length}`);
  }
  const nets = buildGan(config);
  const copy = buildGan(config);
  copy.mapping.setWeights(nets.mapping.getWeights());
  copy.synthesis.setWeights(nets.synthesis.getWeights());
  copy.discriminator.dispose();
  return { ...nets, features, mappingEma: copy.mapping, synthesisEma: copy.synthesis };
}

/** Disposes every net, and the frozen face features of a projected discriminator. */
export function disposeGanNets(n: GanNets): void {
  for (const m of [n.mapping, n.synthesis, n.discriminator, n.mappingEma, n.synthesisEma]) m.dispose();
  n.features?.dispose();
}

// -------------------------------------------------------------- data / latents

/** Seeded standard-normal latents: row i from seeds[i] (same seed → same latent, any batch). */
export function latentsForSeeds(seeds: ArrayLike<number>, dim: number): tf.Tensor2D {
  const z = new Float32Array(seeds.length * dim);
  for (let i = 0; i < seeds.length; i++) {
    const rng = new Rng(mixSeed(0x6a7, seeds[i]));
    for (let j = 0; j < dim; j++) z[i * dim + j] = rng.normal();
  }
  return tf.tensor2d(z, [seeds.length, dim]);
}


/** Class codes as the [n, 1] int32 tensor the conditional nets take. */
export function classTensor(codes: ArrayLike<number>): tf.Tensor2D {
  return tf.tensor2d(Int32Array.from(codes), [codes.length, 1], "int32");
}
