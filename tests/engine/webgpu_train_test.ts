// Training on the webgpu backend against a CPU backend, in one process: a few classifier steps through the real
// Trainer (lib/train/trainer.ts) and a few GAN steps (lib/gan/steps.ts), each from the same initial weights
// (copied by value from one backend to the other) and on the same batches, then losses and weights compared.
// The reference is oneDNN where libdnnl loads, else the pure-JS cpu backend.
// Skipped when there is no WebGPU adapter (navigator.gpu missing, or requestAdapter() giving null); a software
// adapter counts (mesa's lavapipe: about 25 s for this file on 2 cores).
// Run: deno test -A tests/engine/webgpu_train_test.ts   (TP_TEST_VERBOSE=1 prints the measured differences)

import "../_cache_env.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { type BackendName, initEngine } from "../../lib/engine/mod.ts";
import { webgpuAdapterAvailable } from "../../lib/engine/webgpu/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { makeSplits } from "../../lib/data/split.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { classificationTask } from "../../lib/train/tasks.ts";
import { Trainer, type TrainerOptions } from "../../lib/train/trainer.ts";
import { DEFAULT_GAN_CONFIG, type GanConfig } from "../../lib/gan/nets.ts";
import { GAN_PRESETS } from "../../lib/gan/train.ts";
import { buildGanNets, discriminatorStep, disposeGanNets, type GanNets, generatorStep, latentsForSeeds, updateEma } from "../../lib/gan/steps.ts";
import { Rng } from "../../lib/util/rng.ts";
import { faceSpaceFeatures, faceSpaceResidual, fitFaceSpace } from "../../lib/explore/face_space.ts";
import { IMAGE_BYTES } from "../../lib/data/schema.ts";
import { knnScores } from "../../lib/explore/knn.ts";

const GPU = await webgpuAdapterAvailable();
/** The CPU backend webgpu is compared with. */
let REF: BackendName = "cpu";
if (GPU) {
  try {
    await initEngine({ backend: "onednn", verbose: false });
    REF = "onednn";
  } catch {
    await initEngine({ backend: "cpu", verbose: false });
  }
  await initEngine({ backend: "webgpu", verbose: false }); // registers lib/engine/webgpu's kernels over tfjs-webgpu's
}

const VERBOSE = !!Deno.env.get("TP_TEST_VERBOSE");

/**
 * Tolerances, and why results cannot agree exactly. The backends sum in different orders (tiled GPU reductions
 * against oneDNN's or JS loops), so float32 values differ in the last bits (one gradient on one batch: about 1e-6
 * of its size, tests/engine/webgpu_kernels_test.ts checks the kernels at 2e-5). Training amplifies two kinds of
 * tie: an activation within float noise of 0 takes the other side of a ReLU (measured: one of 19,712 inputs of
 * the tiny CNN's stage-2 ReLU, |x| < 1e-4, changes the gradients of every layer below it by about 1%), and Adam,
 * which divides each gradient element by its own running size, moves a weight whose gradient is float noise by
 * ±lr either way. So the test bounds
 *   LOSS_TOL    each loss (a step's, an epoch's mean, the validation loss after the steps), relative;
 *   UPDATE_TOL  each weight tensor's change over the steps: ‖Δwebgpu − Δref‖₂ ≤ UPDATE_TOL · ‖Δref‖₂
 *               (a wrong kernel moves a tensor the wrong way: ≥ 1).
 * Measured on lavapipe against oneDNN and against cpu: classifier losses within 3.4e-4, updates within 7.5e-2 (the
 * ReLU tie above); GAN losses within 2e-6, updates within 1e-2.
 */
const LOSS_TOL = 1e-3;
const UPDATE_TOL = 0.15;

async function use(backend: BackendName): Promise<void> {
  await tf.setBackend(backend);
  const be = tf.findBackend(backend) as unknown as { firstUse?: boolean };
  if (be && "firstUse" in be) be.firstUse = false; // the cpu backend's advert for tfjs-node
}

/** Every weight's values (trainable and not), read asynchronously (webgpu has no synchronous read in Deno). */
async function valuesOf(models: tfl.LayersModel[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const m of models) for (const w of m.getWeights()) out.push(Float32Array.from(await w.data() as Float32Array));
  return out;
}

/** Sets every weight of `models` (in getWeights() order) from plain arrays: a copy by value onto the current backend. */
function setValues(models: tfl.LayersModel[], values: Float32Array[]): void {
  let k = 0;
  for (const m of models) {
    const ts = m.getWeights().map((w) => tf.tensor(values[k++], w.shape, w.dtype));
    m.setWeights(ts);
    tf.dispose(ts);
  }
  assert.equal(k, values.length, "weight count");
}

interface Compare {
  /** Largest |a − b| over every weight. */
  maxDiff: number;
  /** Largest ‖Δa − Δb‖₂ / ‖Δb‖₂ over the weight tensors that changed, with its index. */
  maxUpdateRel: number;
  worst: number;
}

/** Compares the weights after training on two backends (a: webgpu, b: the reference), given the common start. */
function compareWeights(start: Float32Array[], a: Float32Array[], b: Float32Array[]): Compare {
  let maxDiff = 0, maxUpdateRel = 0, worst = -1;
  start.forEach((s, t) => {
    let dd = 0, nb = 0;
    for (let i = 0; i < s.length; i++) {
      const da = a[t][i] - s[i], db = b[t][i] - s[i];
      maxDiff = Math.max(maxDiff, Math.abs(a[t][i] - b[t][i]));
      dd += (da - db) ** 2, nb += db * db;
    }
    if (nb === 0 && dd === 0) return; // not trained in these steps (the other network's weights)
    const r = nb > 0 ? Math.sqrt(dd / nb) : Infinity;
    if (!(r <= maxUpdateRel)) maxUpdateRel = r, worst = t;
  });
  return { maxDiff, maxUpdateRel, worst };
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-12, Math.abs(b));
const backendDataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();

// ---------------------------------------------------------------------------------------------------------
// classifier: the Trainer

const TINY_CNN = { widths: [8, 16, 16, 32], blocksPerStage: 0, dropout: 0 };
const CNN_STEPS = 3;

Deno.test({
  name: `classifier training through the Trainer on webgpu matches the CPU backend (${CNN_STEPS} Adam steps from the same weights on the same batches: ` +
    `losses within ${LOSS_TOL} relative, each weight tensor's update within ${UPDATE_TOL} of its size), and a second epoch leaves ` +
    `tf.memory().numTensors and the backend's buffers exactly unchanged`,
  ignore: !GPU,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "tp_wgtrain_" });
    try {
      await generateSynthetic({ out: join(dir, "data"), count: 40, seed: 5 });
      const ds = await openDataset({ dataroot: join(dir, "data"), quiet: true });
      const splits = makeSplits(ds.attrs, "gender", ds.goodRows, { seed: 1 });
      assert.ok(splits.train.length >= CNN_STEPS * 8, `${splits.train.length} training rows`);
      const task = classificationTask("gender", ds.attrs, splits.train);
      const options = (runDir: string): TrainerOptions => ({
        runDir, epochs: 1, batchSize: 8, lr: 1e-3, warmupEpochs: 0, minLrFraction: 0.1, patience: 5, seed: 1,
        norm: REFERENCE_NORMALIZATION, sampling: "shuffle", stepsPerEpoch: CNN_STEPS, evalBatchSize: 16, resume: false,
        modelConfig: { model: "compact_cnn" }, quiet: true,
      });

      await use(REF);
      const ref = await createClassifier("compact_cnn", ["gender"], TINY_CNN);
      const start = await valuesOf([ref.model]);
      const refTrainer = new Trainer(ref.model, task, ds.cache.pixels, options(join(dir, "ref")));
      const refRun = await refTrainer.fit(splits.train, splits.val);
      const refAfter = await valuesOf([ref.model]);
      refTrainer.dispose();
      ref.model.dispose();

      await use("webgpu");
      const gpu = await createClassifier("compact_cnn", ["gender"], { ...TINY_CNN, seed: 7 }); // other init: overwritten
      setValues([gpu.model], start);
      const trainer = new Trainer(gpu.model, task, ds.cache.pixels, options(join(dir, "webgpu")));
      const run = await trainer.fit(splits.train, splits.val);
      const after = await valuesOf([gpu.model]);

      const [h, hr] = [run.history[0], refRun.history[0]];
      const c = compareWeights(start, after, refAfter);
      if (VERBOSE) {
        console.log(`classifier, webgpu vs ${REF}: train loss ${h.train_loss} vs ${hr.train_loss} (rel ${rel(h.train_loss, hr.train_loss).toExponential(2)}), ` +
          `val loss ${h.val_loss} vs ${hr.val_loss} (rel ${rel(h.val_loss, hr.val_loss).toExponential(2)}); weights: max |diff| ${c.maxDiff.toExponential(2)}, ` +
          `largest update difference ${c.maxUpdateRel.toExponential(2)} of the update (${gpu.model.weights[c.worst]?.name})`);
      }
      for (const k of ["train_loss", "val_loss"] as const) {
        assert.ok(Number.isFinite(h[k]), `webgpu ${k} ${h[k]}`);
        assert.ok(rel(h[k], hr[k]) <= LOSS_TOL, `${k}: webgpu ${h[k]}, ${REF} ${hr[k]}`);
      }
      assert.ok(after.every((w) => w.every(Number.isFinite)), "webgpu weights finite");
      assert.ok(c.maxUpdateRel <= UPDATE_TOL, `weight tensor ${c.worst}'s update differs by ${c.maxUpdateRel} of its size`);

      // The first fit was the burn-in (Adam's slots exist now): a second epoch leaves nothing behind.
      const n = tf.memory().numTensors, ids = backendDataIds();
      await trainer.fit(splits.train, splits.val);
      assert.equal(tf.memory().numTensors, n, "tensors left behind by a webgpu epoch");
      assert.equal(backendDataIds(), ids, "webgpu buffers left behind by an epoch");
      trainer.dispose();
      gpu.model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------------------
// GAN: discriminator and generator steps

const TINY_GAN: GanConfig = { ...DEFAULT_GAN_CONFIG, ...GAN_PRESETS.debug.model! };
const GAN_LR = 1e-3, GAN_ROUNDS = 2, GAN_BATCH = 4, AUGMENT = "color,translation,cutout";

/** The GAN's models in a fixed order (generator, discriminator, the generator's average). */
const ganModels = (n: GanNets) => [n.mapping, n.synthesis, n.discriminator, n.mappingEma, n.synthesisEma];

/** Real images in [-1, 1] and latents, made in JS (the same values on every backend). */
function ganBatches(): { real: Float32Array[]; seeds: number[][] } {
  const rng = new Rng(11), size = GAN_BATCH * 108 * 84 * 3;
  const real = Array.from({ length: GAN_ROUNDS + 1 }, () => Float32Array.from({ length: size }, () => rng.uniform(-1, 1)));
  const seeds = Array.from({ length: 2 * (GAN_ROUNDS + 1) }, (_, i) => Array.from({ length: GAN_BATCH }, (_, j) => 100 * i + j));
  return { real, seeds };
}

/** One round as gan:train runs it (without spectral norm, its default): D step, G step, generator average. */
async function ganRound(nets: GanNets, optD: tf.Optimizer, optG: tf.Optimizer, b: ReturnType<typeof ganBatches>, i: number, rng: Rng) {
  const real = tf.tensor4d(b.real[i], [GAN_BATCH, 108, 84, 3]);
  const z1 = latentsForSeeds(b.seeds[2 * i], TINY_GAN.latentDim), z2 = latentsForSeeds(b.seeds[2 * i + 1], TINY_GAN.latentDim);
  try {
    const d = await discriminatorStep(nets, optD, { real, z: z1 }, AUGMENT, rng);
    const g = await generatorStep(nets, optG, { z: z2 }, AUGMENT, rng);
    updateEma(nets, 0.5);
    return { d, g };
  } finally {
    tf.dispose([real, z1, z2]);
  }
}

Deno.test({
  name: `GAN discriminator and generator steps on webgpu match the CPU backend (${GAN_ROUNDS} rounds from the same weights on the same batches and ` +
    `augmentations: losses within ${LOSS_TOL} relative, each weight tensor's update within ${UPDATE_TOL} of its size), and a further round ` +
    `leaves tf.memory().numTensors and the backend's buffers exactly unchanged`,
  ignore: !GPU,
  async fn() {
    const b = ganBatches();
    const train = async (backend: BackendName, start: Float32Array[] | null) => {
      await use(backend);
      const nets = buildGanNets(start ? { ...TINY_GAN, seed: 9 } : TINY_GAN);
      if (start) setValues(ganModels(nets), start);
      const initial = await valuesOf(ganModels(nets));
      const optD = tf.train.adam(GAN_LR, 0, 0.99, 1e-8), optG = tf.train.adam(GAN_LR, 0, 0.99, 1e-8);
      const rng = new Rng(3);
      const losses: { d: number; g: number }[] = [];
      for (let i = 0; i < GAN_ROUNDS; i++) losses.push(await ganRound(nets, optD, optG, b, i, rng));
      const after = await valuesOf(ganModels(nets));
      return { nets, optD, optG, rng, initial, losses, after };
    };
    const ref = await train(REF, null);
    disposeGanNets(ref.nets);
    ref.optD.dispose();
    ref.optG.dispose();
    const gpu = await train("webgpu", ref.initial);
    try {
      const c = compareWeights(ref.initial, gpu.after, ref.after);
      if (VERBOSE) {
        const names = ganModels(gpu.nets).flatMap((m) => m.weights.map((w) => w.name));
        console.log(`GAN, webgpu vs ${REF}: losses ${JSON.stringify(gpu.losses)} vs ${JSON.stringify(ref.losses)}; weights: max |diff| ${c.maxDiff.toExponential(2)}, ` +
          `largest update difference ${c.maxUpdateRel.toExponential(2)} of the update (${names[c.worst]})`);
      }
      gpu.losses.forEach((l, i) => {
        for (const k of ["d", "g"] as const) {
          assert.ok(Number.isFinite(l[k]), `webgpu loss ${k} ${l[k]} in round ${i}`);
          assert.ok(rel(l[k], ref.losses[i][k]) <= LOSS_TOL, `round ${i} loss ${k}: webgpu ${l[k]}, ${REF} ${ref.losses[i][k]}`);
        }
      });
      assert.ok(gpu.after.every((w) => w.every(Number.isFinite)), "webgpu weights finite");
      assert.ok(c.maxUpdateRel <= UPDATE_TOL, `weight tensor ${c.worst}'s update differs by ${c.maxUpdateRel} of its size`);

      // The rounds so far were the burn-in (Adam's slots exist now): one more leaves nothing behind.
      const n = tf.memory().numTensors, ids = backendDataIds();
      await ganRound(gpu.nets, gpu.optD, gpu.optG, b, GAN_ROUNDS, gpu.rng);
      assert.equal(tf.memory().numTensors, n, "tensors left behind by a webgpu GAN round");
      assert.equal(backendDataIds(), ids, "webgpu buffers left behind by a GAN round");
    } finally {
      disposeGanNets(gpu.nets);
      gpu.optD.dispose();
      gpu.optG.dispose();
    }
  },
});

Deno.test({
  name: "the exploration's face space, face-space residuals and kNN distances run on webgpu (asynchronous reads) and match the CPU " +
    "backend within 1e-3 relative",
  ignore: !GPU,
  async fn() {
    const rng = new Rng(11);
    const dim = faceSpaceFeatures(new Uint8Array(IMAGE_BYTES), [0]).length, n = 120;
    const feats = Float32Array.from({ length: n * dim }, () => rng.normal());
    const emb = Float32Array.from({ length: n * 16 }, () => rng.normal());
    const run = async (backend: BackendName) => {
      await use(backend);
      const before = tf.memory().numTensors;
      const space = await fitFaceSpace(feats, { components: 4, sample: n });
      const residual = await faceSpaceResidual(space, feats, { quiet: true, chunk: 50 });
      const knn = await knnScores(emb, 16, { k: 5, refSize: 80, quiet: true, chunk: 32 });
      assert.equal(tf.memory().numTensors, before);
      return { mean: space.mean, residual, knn };
    };
    const ref = await run(REF), gpu = await run("webgpu");
    const close = (a: Float32Array, b: Float32Array, what: string) =>
      a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-3 * Math.max(1, Math.abs(v)), `${what}[${i}]: ${b[i]} on webgpu vs ${v}`));
    close(ref.mean, gpu.mean, "mean");
    close(ref.residual, gpu.residual, "residual");
    close(ref.knn, gpu.knn, "kNN score");
  },
});
