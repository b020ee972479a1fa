import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Matrix, SingularValueDecomposition } from "ml-matrix";
import { initEngine } from "../../lib/engine/mod.ts";
import { buildGan, DEFAULT_GAN_CONFIG, discriminate, type GanConfig, generate, MinibatchStd, packSamples } from "../../lib/gan/nets.ts";
import { fileIO } from "../../lib/models/io.ts";
import { updateEma } from "../../lib/gan/steps.ts";
import { loadSavedModel } from "../../lib/models/mod.ts";
import {
  AdaController,
  buildGanNets,
  diffAugment,
  discriminatorStep,
  disposeGanNets,
  GAN_PRESETS,
  ganTrainRun,
  generatorStep,
  generatorStepLoss,
  type GanTrainConfig,
  latentsForSeeds,
  loadFaceFeatures,
  lrRampdownScale,
  MODE_SEEKING_FACE,
  modeSeekingFeatureMaps,
  modeSeekingTerm,
  resolveGanConfig,
  resumeGanConfig,
  shiftImages,
  SpectralNorm,
} from "../../lib/gan/train.ts";
import { FACE_FEATURE_SCALES } from "../../lib/gan/features.ts";
import { ageGenderPredict, readWeightMap } from "../../lib/faces/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { IMAGE_BYTES } from "../../lib/data/schema.ts";
import { UserError } from "../../lib/util/errors.ts";
import { frechetDistance, gaussianStats, medianNearest, nearDuplicates, nearestDistances, summariseCounts } from "../../lib/eval/frechet.ts";
import { generateImages, parseSeeds } from "../../lib/gan/generate.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { Rng } from "../../lib/util/rng.ts";
import { withTempDir } from "../_fixtures.ts";
import { compareGanRuns } from "../../lib/gan/compare.ts";
import { controlDuplicates, copyCheck, copyDistances, duplicateSets, formatCopyCheck, parseRealControls, pixelDuplicates, quantiles, ruleFlags, softenPortraits, summariseCopies } from "../../lib/gan/copies.ts";
import { imageStats } from "../../lib/explore/image_stats.ts";
import { robustScale } from "../../lib/explore/knn.ts";
import { logSharpness } from "../../lib/explore/outliers.ts";
import { portraitDescriptors } from "../../lib/models/descriptors.ts";

await initEngine({ verbose: false });

const TINY: GanConfig = { ...DEFAULT_GAN_CONFIG, ...GAN_PRESETS.debug.model! };
const snapshotOf = (vars: { read(): tf.Tensor }[]) => vars.map((v) => Float32Array.from(v.read().dataSync() as Float32Array));
const same = (a: Float32Array[], b: Float32Array[]) => a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, j) => v === b[i][j]));

/** The discriminator saved and loaded back gives `scores` on `img` exactly. */
async function assertSavedScoresSame(d: tfl.LayersModel, img: tf.Tensor4D, scores: tf.Tensor): Promise<void> {
  await withTempDir(async (dir) => {
    await d.save(fileIO(dir));
    const back = await loadSavedModel(dir);
    const s2 = discriminate(back, img);
    assert.deepEqual(Array.from(s2.dataSync()), Array.from(scores.dataSync()));
    tf.dispose(s2);
    back.dispose();
  });
}

/** The synthesis net saved and loaded back draws `images` from the latents `z` exactly. */
async function assertSavedImagesSame(nets: { mapping: tfl.LayersModel; synthesis: tfl.LayersModel }, z: tf.Tensor2D, images: tf.Tensor4D): Promise<void> {
  await withTempDir(async (dir) => {
    await nets.synthesis.save(fileIO(dir));
    const back = await loadSavedModel(dir);
    const again = generate({ mapping: nets.mapping, synthesis: back }, z);
    assert.deepEqual(Array.from(again.dataSync()), Array.from(images.dataSync()));
    tf.dispose(again);
    back.dispose();
  });
}

Deno.test("GAN nets: 108×84×3 images in [-1, 1] from z, one score per image, conditional inputs", () => {
  for (const numClasses of [0, 3]) {
    const m = buildGan({ ...TINY, numClasses });
    const z = latentsForSeeds([1, 2, 3, 4], TINY.latentDim);
    const cls = numClasses ? tf.tensor2d([0, 1, 2, 0], [4, 1], "int32") : undefined;
    const img = generate(m, z, cls);
    assert.deepEqual(img.shape, [4, 108, 84, 3]);
    const v = img.dataSync();
    assert.ok(v.every((x) => x >= -1 && x <= 1));
    const score = discriminate(m.discriminator, img, cls);
    assert.deepEqual(score.shape, [4, 1]);
    if (numClasses) {
      // The class changes the image for the same z.
      const other = generate(m, z, tf.tensor2d([1, 2, 0, 1], [4, 1], "int32"));
      assert.ok(tf.max(tf.abs(tf.sub(other, img))).dataSync()[0] > 1e-4);
    }
    tf.dispose([z, img, score, ...(cls ? [cls] : [])]);
    for (const k of ["mapping", "synthesis", "discriminator"] as const) m[k].dispose();
  }
  assert.throws(() => buildGan({ ...TINY, gWidths: [1, 2, 3] as unknown as GanConfig["gWidths"] }), /gWidths to be 4 positive integers/);
});

Deno.test("minibatch std: each sample gets its group's mean feature std (groups i mod b/g, g the largest divisor ≤ groupSize) as one output feature; identical samples get ~0", () => {
  // 6 samples, 2 features; group size 4 → g = 3 (largest divisor of 6 ≤ 4): groups {0,2,4} and {1,3,5}.
  const vals = [[1, 2], [0, 0], [3, 2], [0, 4], [5, 8], [0, 8]];
  const x = tf.tensor2d(vals);
  const out = new MinibatchStd({ groupSize: 4 }).apply(x) as tf.Tensor2D;
  assert.deepEqual(out.shape, [6, 1]);
  const std = (a: number[]) => Math.sqrt(a.reduce((s, v) => s + (v - a.reduce((p, q) => p + q) / a.length) ** 2, 0) / a.length + 1e-8);
  const group = (rows: number[]) => (std(rows.map((r) => vals[r][0])) + std(rows.map((r) => vals[r][1]))) / 2;
  const want = [0, 1, 2, 3, 4, 5].map((i) => group(i % 2 === 0 ? [0, 2, 4] : [1, 3, 5]));
  const o = out.dataSync();
  want.forEach((w, i) => assert.ok(Math.abs(o[i] - w) < 1e-5, `sample ${i}: ${o[i]} vs ${w}`));
  const same = new MinibatchStd({ groupSize: 4 }).apply(tf.tile(tf.tensor2d([[0.3, -2]]), [4, 1])) as tf.Tensor;
  assert.ok(tf.max(same).dataSync()[0] < 1e-3);
  assert.throws(() => new MinibatchStd({ groupSize: 0 }), /groupSize to be a positive integer/);
  assert.throws(() => new MinibatchStd({ groupSize: 2 }).apply(tf.zeros([2, 3, 3, 1])), /expected flat features/);
  tf.dispose([x, out, same]);
});

Deno.test("packSamples: pack j of a batch holds samples j, j + b/m, … on its channels, in order; a batch not a multiple of m is an error", () => {
  // 4 images of 1×1×3 whose values name the sample: sample i = [i, i + 0.1, i + 0.2].
  const x = tf.tensor4d([0, 1, 2, 3].flatMap((i) => [i, i + 0.1, i + 0.2]), [4, 1, 1, 3]);
  const p = packSamples(x, 2);
  assert.deepEqual(p.shape, [2, 1, 1, 6]);
  assert.deepEqual(Array.from(p.dataSync()).map((v) => Math.round(v * 10) / 10), [0, 0.1, 0.2, 2, 2.1, 2.2, 1, 1.1, 1.2, 3, 3.1, 3.2]);
  assert.equal(packSamples(x, 1), x);
  assert.throws(() => packSamples(x, 3), /a batch of 4 does not split into packs of 3/);
  tf.dispose([x, p]);
});

Deno.test("PacGAN discriminator (pack 2, no minibatch std): one score per pack of two, moved by its second sample and not by another pack's, saved and loaded with the same scores", async () => {
  // Without the minibatch std, whose group spread would carry one pack's change into every pack's score.
  const m = buildGan({ ...TINY, pack: 2, mbstdGroup: 0 });
  const img = tf.randomUniform([8, 108, 84, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const s1 = discriminate(m.discriminator, img);
  assert.deepEqual(s1.shape, [4, 1]);
  // Sample 4 is the second member of pack 0 (packs j, j + 4): zeroing it moves pack 0's score only.
  const changed = tf.concat([tf.slice(img, 0, 4), tf.zeros([1, 108, 84, 3]), tf.slice(img, 5, 3)]) as tf.Tensor4D;
  const s3 = discriminate(m.discriminator, changed);
  const [a, b] = [s1.dataSync(), s3.dataSync()];
  assert.ok(Math.abs(a[0] - b[0]) > 1e-6, "pack 0's score ignored its second sample");
  for (const j of [1, 2, 3]) assert.equal(b[j], a[j], `pack ${j}'s score moved`);
  await assertSavedScoresSame(m.discriminator, img, s1);
  assert.throws(() => discriminate(m.discriminator, tf.slice(img, 0, 3) as tf.Tensor4D), /a batch of 3 does not split into packs of 2/);
  assert.throws(() => buildGan({ ...TINY, pack: 2, numClasses: 2 }), /pack 2 needs the unconditional image discriminator/);
  tf.dispose([img, s1, s3, changed]);
  for (const k of ["mapping", "synthesis", "discriminator"] as const) m[k].dispose();
});

Deno.test("PacGAN discriminator with minibatch std (pack 2, mbstdGroup 2): D and G steps (mode-seeking pairs; then all, in the face square) leak no tensor after a burn-in step", async () => {
  const cfg = { ...TINY, pack: 2, mbstdGroup: 2 };
  const nets = buildGanNets(cfg);
  const img = tf.randomUniform([8, 108, 84, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const optD = tf.train.adam(1e-3, 0, 0.99), optG = tf.train.adam(1e-3, 0, 0.99);
  const z = latentsForSeeds([1, 2, 3, 4, 5, 6, 7, 8], cfg.latentDim);
  const rng = new Rng(1);
  const step = async () => {
    await discriminatorStep(nets, optD, { real: img, z }, "color,translation", rng);
    await generatorStep(nets, optG, { z }, "color,translation", rng, { weight: 1, form: "pairs" });
    await generatorStep(nets, optG, { z }, "color,translation", rng, { weight: 1, form: "all", region: MODE_SEEKING_FACE });
  };
  await step();
  const before = tf.memory().numTensors;
  await step();
  assert.equal(tf.memory().numTensors, before, "tensors leaked across D and G steps");
  optD.dispose(), optG.dispose();
  tf.dispose([img, z]);
  disposeGanNets(nets);
});

Deno.test("discriminator with minibatch std (mbstdGroup 2): one score per image, saved and loaded with the same scores, D steps leak no tensor", async () => {
  const cfg = { ...TINY, mbstdGroup: 2 };
  const nets = buildGanNets(cfg);
  const img = tf.randomUniform([4, 108, 84, 3], -1, 1, "float32", 2) as tf.Tensor4D;
  const s1 = discriminate(nets.discriminator, img);
  assert.deepEqual(s1.shape, [4, 1]);
  await assertSavedScoresSame(nets.discriminator, img, s1);
  const optD = tf.train.adam(1e-3, 0, 0.99);
  const z = latentsForSeeds([1, 2, 3, 4], cfg.latentDim);
  const rng = new Rng(1);
  await discriminatorStep(nets, optD, { real: img, z }, "color,translation,cutout", rng);
  const before = tf.memory().numTensors;
  await discriminatorStep(nets, optD, { real: img, z }, "color,translation,cutout", rng);
  assert.equal(tf.memory().numTensors, before, "tensors leaked across D steps");
  optD.dispose();
  tf.dispose([img, s1, z]);
  disposeGanNets(nets);
});

Deno.test("skip-layer excitation and upsampling blur (gSkipExcitation, gUpsampleBlur): closed 112×88 gates leave every sample one flat colour, open ones do not; each blur holds the [1,2,1]ᵀ[1,2,1]/16 kernel on every channel and no step or weight average changes it; saved and loaded with the same images; D and G steps leak no tensor after a burn-in step", async () => {
  const cfg = { ...TINY, gSkipExcitation: true, gUpsampleBlur: true };
  const nets = buildGanNets(cfg);
  const z = latentsForSeeds([1, 2, 3, 4], cfg.latentDim);
  const gate = nets.synthesis.getLayer("sle1_gate"); // the 28×22 features' gates on the 112×88 channels
  assert.deepEqual(gate.outputShape, [null, cfg.gWidths[3]]);
  assert.deepEqual(nets.synthesis.getLayer("sle0_gate").outputShape, [null, cfg.gWidths[2]]);
  const spread = (img: tf.Tensor4D) => tf.tidy(() => tf.sub(tf.max(img, [0, 1, 2]), tf.min(img, [0, 1, 2])).dataSync());
  const open = generate(nets, z);
  assert.ok(Math.max(...spread(open)) > 1e-3, "the generator drew flat images with its gates open");
  await assertSavedImagesSame(nets, z, open);
  // Gates shut (bias -100: sigmoid 0): the 112×88 features are zero, so only to_rgb's bias reaches the pixels.
  const saved = gate.getWeights().map((w) => w.clone());
  gate.setWeights([tf.zerosLike(saved[0]), tf.fill(saved[1].shape, -100)]);
  const shut = generate(nets, z);
  assert.ok(Math.max(...spread(shut)) < 1e-6, "closed gates let the features through");
  gate.setWeights(saved);
  const optD = tf.train.adam(1e-3, 0, 0.99), optG = tf.train.adam(1e-3, 0, 0.99);
  const real = tf.randomUniform([4, 108, 84, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const rng = new Rng(2);
  const step = async () => {
    await discriminatorStep(nets, optD, { real, z }, "", rng);
    await generatorStep(nets, optG, { z }, "", rng, { weight: 1, form: "all", region: MODE_SEEKING_FACE });
    updateEma(nets, 0.9);
  };
  const blurs = ["up1_blur", "up2_blur", "up3_blur"].map((n) => nets.synthesis.getLayer(n));
  const blurKernels = () => blurs.map((l) => Array.from(l.getWeights()[0].dataSync()));
  const expected = blurs.map((l, i) => {
    const ch = cfg.gWidths[i + 1];
    assert.deepEqual(l.getWeights()[0].shape, [3, 3, ch, 1]);
    return [1, 2, 1].flatMap((a) => [1, 2, 1].flatMap((b) => new Array<number>(ch).fill((a * b) / 16)));
  });
  assert.deepEqual(blurKernels(), expected);
  assert.ok(nets.synthesis.trainableWeights.every((w) => !w.name.includes("blur")), "a blur kernel is trainable");
  await step();
  const before = tf.memory().numTensors;
  await step();
  assert.equal(tf.memory().numTensors, before, "tensors leaked across D and G steps");
  assert.deepEqual(blurKernels(), expected, "a step changed a blur kernel");
  const emaKernels = ["up1_blur", "up2_blur", "up3_blur"].map((n) => Array.from(nets.synthesisEma.getLayer(n).getWeights()[0].dataSync()));
  assert.deepEqual(emaKernels, expected, "the weight average changed a blur kernel");
  optD.dispose(), optG.dispose();
  tf.dispose([z, open, shut, real, ...saved]);
  disposeGanNets(nets);
});

Deno.test("nearest upsampling (gUpsample nearest): each up-conv gives what nearest ×2 then its 3×3 kernel give (tf.image.resizeNearestNeighbor + tf.conv2d), with no transposed-conv weights left; a G step changes every up-conv's kernel; saved and loaded with the same images; D and G steps leak no tensor after a burn-in step; an unknown mode is a one-line error", async () => {
  const cfg: GanConfig = { ...TINY, gUpsample: "nearest" };
  const nets = buildGanNets(cfg);
  assert.ok(nets.synthesis.layers.every((l) => !l.name.endsWith("_deconv")), "a transposed convolution is left");
  const w = tf.randomNormal([2, cfg.wDim], 0, 1, "float32", 3);
  for (const [i, size] of [[28, 22], [56, 44], [112, 88]].entries()) {
    const up = nets.synthesis.getLayer(`up${i + 1}_upconv`), below = up.inboundNodes[0].inboundLayers[0];
    assert.deepEqual(up.outputShape, [null, ...size, cfg.gWidths[i + 1]]);
    const probe = tfl.model({ inputs: nets.synthesis.inputs, outputs: [below.output as tfl.SymbolicTensor, up.output as tfl.SymbolicTensor] });
    const [lo, hi] = probe.predict(w) as tf.Tensor4D[];
    const kernel = up.getWeights()[0] as tf.Tensor4D;
    assert.deepEqual(kernel.shape, [3, 3, cfg.gWidths[i], cfg.gWidths[i + 1]]);
    const want = tf.conv2d(tf.image.resizeNearestNeighbor(lo, size as [number, number]), kernel, 1, "same");
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(hi, want))).dataSync()[0] / Math.max(1e-6, tf.max(tf.abs(want)).dataSync()[0]));
    assert.ok(err < 1e-5 && lo.dataSync().some((v) => v !== 0), `up${i + 1}_upconv is not nearest ×2 + 3×3 conv: relative error ${err}`);
    tf.dispose([lo, hi, want]); // the probe shares the synthesis' layers: disposeGanNets frees them
  }
  const z = latentsForSeeds([1, 2, 3, 4], cfg.latentDim);
  const img = generate(nets, z);
  await assertSavedImagesSame(nets, z, img);
  const optD = tf.train.adam(1e-3, 0, 0.99), optG = tf.train.adam(1e-3, 0, 0.99);
  const real = tf.randomUniform([4, 108, 84, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const rng = new Rng(2);
  const upconvs = ["up1_upconv", "up2_upconv", "up3_upconv"].map((n) => nets.synthesis.getLayer(n).weights[0]);
  const step = async () => {
    await discriminatorStep(nets, optD, { real, z }, "", rng);
    await generatorStep(nets, optG, { z }, "", rng, { weight: 1, form: "all", region: MODE_SEEKING_FACE });
    updateEma(nets, 0.9);
  };
  const start = upconvs.map((v) => Array.from(v.read().dataSync()));
  await step();
  upconvs.forEach((v, i) => assert.notDeepEqual(Array.from(v.read().dataSync()), start[i], `up${i + 1}_upconv did not learn`));
  const before = tf.memory().numTensors;
  await step();
  assert.equal(tf.memory().numTensors, before, "tensors leaked across D and G steps");
  assert.throws(() => resolveGanConfig({ dataroot: "x", expName: "y" }, undefined, { model: { gUpsample: "bilinear" } as unknown as GanConfig }),
    (e: Error) => e instanceof UserError && /--g-upsample/.test(e.message) && /transposed, nearest/.test(e.message) && !e.message.includes("\n"));
  optD.dispose(), optG.dispose();
  tf.dispose([w, z, img, real]);
  disposeGanNets(nets);
});

Deno.test("GAN steps: the discriminator step leaves the generator's weights unchanged and vice versa; no tensor leaks", async () => {
  const nets = buildGanNets(TINY);
  const optG = tf.train.adam(1e-3, 0, 0.99), optD = tf.train.adam(1e-3, 0, 0.99);
  const sn = new SpectralNorm(nets.discriminator);
  const rng = new Rng(3);
  const real = tf.randomUniform([4, 108, 84, 3], -1, 1, "float32", 1) as tf.Tensor4D;
  const z = latentsForSeeds([5, 6, 7, 8], TINY.latentDim);
  // The generator's trainable weights; its batch-norm running statistics are buffers that every
  // training-mode forward pass updates (the discriminator step runs the generator too).
  const gVars = [...nets.mapping.trainableWeights, ...nets.synthesis.trainableWeights];
  const dVars = nets.discriminator.weights; // no buffers: every weight
  const round = async () => {
    const g0 = snapshotOf(gVars), d0 = snapshotOf(dVars);
    await discriminatorStep(nets, optD, { real, z }, "color,translation,cutout", rng);
    await sn.project();
    assert.ok(same(snapshotOf(gVars), g0), "a discriminator step changed the generator");
    assert.ok(!same(snapshotOf(dVars), d0), "a discriminator step did not change the discriminator");
    const g1 = snapshotOf(gVars), d1 = snapshotOf(dVars);
    await generatorStep(nets, optG, { z }, "color,translation,cutout", rng);
    assert.ok(same(snapshotOf(dVars), d1), "a generator step changed the discriminator");
    assert.ok(!same(snapshotOf(gVars), g1), "a generator step did not change the generator");
  };
  await round(); // creates the optimizers' slots and the spectral-norm vectors
  const before = tf.memory().numTensors;
  await round();
  await round();
  assert.equal(tf.memory().numTensors, before, "tensors leaked across GAN steps");
  sn.dispose();
  optG.dispose();
  optD.dispose();
  tf.dispose([real, z]);
  disposeGanNets(nets);
});

Deno.test("spectral normalisation brings every discriminator kernel's largest singular value to 1", async () => {
  const m = buildGan(TINY);
  const sn = new SpectralNorm(m.discriminator);
  assert.deepEqual(await sn.project(30), [], "nothing measured unless asked");
  const sigmas = await sn.project(30, true); // measured before this second projection: the state after the first
  for (const s of sigmas) assert.ok(Math.abs(s - 1) < 0.02, `σ ${s}`);
  // Independent check with ml-matrix's SVD on one conv kernel.
  const k = m.discriminator.trainableWeights.find((w) => w.originalName.includes("d2_down/kernel"))!;
  const shape = k.shape as number[];
  const cols = shape.at(-1)!, rows = k.read().size / cols;
  const data = k.read().dataSync();
  const mat = new Matrix(Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols))));
  const top = new SingularValueDecomposition(mat).diagonal[0];
  assert.ok(Math.abs(top - 1) < 0.02, `largest singular value ${top}`);
  sn.dispose();
  for (const key of ["mapping", "synthesis", "discriminator"] as const) m[key].dispose();
});

Deno.test("DiffAugment keeps the shape, passes gradients and repeats under the same seed", () => {
  const x = tf.randomUniform([3, 108, 84, 3], -1, 1, "float32", 2) as tf.Tensor4D;
  const a = diffAugment(x, "color,translation,cutout", new Rng(9));
  const b = diffAugment(x, "color,translation,cutout", new Rng(9));
  assert.deepEqual(a.shape, x.shape);
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  assert.ok(tf.max(tf.abs(tf.sub(a, x))).dataSync()[0] > 0.01, "augmentation changed nothing");
  const g = tf.grad((t: tf.Tensor) => tf.sum(diffAugment(t as tf.Tensor4D, "color,translation,cutout", new Rng(1))))(x);
  assert.ok(tf.sum(tf.abs(g)).dataSync()[0] > 0);
  tf.dispose([x, a, b, g]);
});

Deno.test("shiftImages (DiffAugment's translation): output and gradient equal to the last bit those of tfjs' pad → per-image slice → concat, for shifts of both signs and zero", () => {
  const x = tf.randomUniform([4, 12, 10, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const r = tf.randomNormal([4, 12, 10, 3], 0, 1, "float32", 6);
  const dy = [2, -1, 0, -2], dx = [-1, 1, 0, 2];
  const plainShift = (t: tf.Tensor4D) => {
    const padded = tf.pad(t, [[0, 0], [2, 2], [2, 2], [0, 0]]);
    return tf.concat(dy.map((d, i) => tf.slice(padded, [i, 2 + d, 2 + dx[i], 0], [1, 12, 10, 3])), 0);
  };
  const ours = shiftImages(x, dy, dx), plain = plainShift(x);
  assert.deepEqual(Array.from(ours.dataSync()), Array.from(plain.dataSync()));
  // out[0, y, x] = x[0, y + 2, x − 1]: pixel (0, 1) is x's (2, 0), pixel (0, 0) a zero filled in
  const o = ours.arraySync() as number[][][][], xa = x.arraySync() as number[][][][];
  assert.deepEqual([o[0][0][1], o[0][0][0]], [xa[0][2][0], [0, 0, 0]]);
  const gOurs = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(shiftImages(t as tf.Tensor4D, dy, dx), r)))(x);
  const gPlain = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(plainShift(t as tf.Tensor4D), r)))(x);
  assert.deepEqual(Array.from(gOurs.dataSync()), Array.from(gPlain.dataSync()));
  tf.dispose([x, r, ours, plain, gOurs, gPlain]);
});

Deno.test("DiffAugment with a probability p: p = 1 gives the plain policy's images, p = 0 the input itself, p = 0.5 leaves some of 16 images untouched and changes others", () => {
  const x = tf.randomUniform([16, 108, 84, 3], -1, 1, "float32", 3) as tf.Tensor4D;
  const policy = "color,translation,cutout";
  const plain = diffAugment(x, policy, new Rng(4));
  const p1 = diffAugment(x, policy, new Rng(4), 1);
  assert.deepEqual(Array.from(p1.dataSync()), Array.from(plain.dataSync()));
  const p0 = diffAugment(x, policy, new Rng(4), 0);
  assert.deepEqual(Array.from(p0.dataSync()), Array.from(x.dataSync()));
  const half = diffAugment(x, policy, new Rng(4), 0.5);
  const diffPerImage = Array.from(tf.max(tf.abs(tf.sub(half, x)), [1, 2, 3]).dataSync());
  // An image no transform touched differs by float rounding only (x + 0, (x − gray)·1 + gray); a touched one by ≥ 0.1.
  const untouched = diffPerImage.filter((d) => d < 1e-5).length;
  // Each image escapes all three transforms with probability 1/8: between 1 and 15 of 16 for this seed.
  assert.ok(untouched >= 1 && untouched < 16, `untouched ${untouched} of 16: ${diffPerImage}`);
  tf.dispose([x, plain, p1, p0, half]);
});

Deno.test("adaptive augmentation: p moves by (images of 4 steps) / (kimg · 1000) after every 4th step, up when E[sign D(real)] is above the target, down below it, clamped to [0, 1]; its saved state restores the same moves", () => {
  const ada = new AdaController(0.6, 1); // 1 kimg: 4 steps of 25 images move p by 0.1
  for (let s = 0; s < 3; s++) ada.observe(1, 25, s);
  assert.equal(ada.p, 0, "p moved before the 4th step");
  ada.observe(1, 25, 3);
  assert.ok(Math.abs(ada.p - 0.1) < 1e-12, `p ${ada.p}`);
  for (let s = 4; s < 8; s++) ada.observe(0.2, 25, s);
  assert.ok(Math.abs(ada.p) < 1e-12, `p ${ada.p}`);
  for (let s = 8; s < 12; s++) ada.observe(-1, 25, s);
  assert.equal(ada.p, 0, "p went below 0");
  for (let s = 12; s < 100; s++) ada.observe(0.9, 25, s);
  assert.equal(ada.p, 1, "p went above 1");
  // Mean over the 4 steps decides: 0.9, 0.9, 0.1, 0.1 → 0.5 < 0.6, p falls.
  const a = new AdaController(0.6, 1, 0.5), b = new AdaController(0.6, 1);
  a.observe(0.9, 25, 0), a.observe(0.9, 25, 1);
  b.setState(a.getState());
  for (const c of [a, b]) c.observe(0.1, 25, 2), c.observe(0.1, 25, 3);
  assert.ok(Math.abs(a.p - 0.4) < 1e-12 && a.p === b.p, `p ${a.p} / restored ${b.p}`);
});

Deno.test("lrRampdownScale: 1 before the ramp (and throughout with fraction 0), then a half cosine to 0 at the end, clamped outside 0..1", () => {
  for (const p of [0, 0.3, 0.5]) assert.equal(lrRampdownScale(p, 0.5), 1);
  assert.ok(Math.abs(lrRampdownScale(0.75, 0.5) - 0.5) < 1e-12);
  assert.ok(Math.abs(lrRampdownScale(0.875, 0.5) - 0.5 * (1 + Math.cos(0.75 * Math.PI))) < 1e-12);
  assert.ok(Math.abs(lrRampdownScale(1, 0.5)) < 1e-12 && Math.abs(lrRampdownScale(1.2, 0.5)) < 1e-12);
  assert.equal(lrRampdownScale(-1, 0.5), 1);
  for (const p of [0, 0.9, 1]) assert.equal(lrRampdownScale(p, 0), 1);
  // decreasing across the ramp
  const xs = Array.from({ length: 11 }, (_, i) => lrRampdownScale(0.7 + 0.03 * i, 0.3));
  assert.ok(xs.every((x, i) => i === 0 || x < xs[i - 1]), xs.join(" "));
});

Deno.test("gan:train --lr-rampdown 0.5: the first half's snapshot equals the run without it bit for bit, the last differs, its log gives the half cosine's factor for the last step (0.146 at 7/8), and --resume refuses another fraction", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 6 });
    // 8 steps of 8 images, a snapshot after the 4th: steps 0–3 run at progress ≤ 0.375, before the ramp.
    const cfg = (name: string, lrRampdown: number, resume = false) =>
      resolveGanConfig({ dataroot: data, expName: name }, "debug", { checkpointsDir: join(dir, "ck"), kimg: 0.064, snapshotKimg: 0.032, metricImages: 0, lrRampdown, resume, quiet: true });
    await ganTrainRun(cfg("flat", 0));
    await ganTrainRun(cfg("ramp", 0.5));
    const weights = (run: string, snap: string) => Deno.readFile(join(dir, "ck", run, "snapshots", snap, "synthesisEma", "weights.bin"));
    assert.deepEqual(await weights("ramp", "network-kimg00000_032"), await weights("flat", "network-kimg00000_032"));
    assert.notDeepEqual(await weights("ramp", "network-kimg00000_064"), await weights("flat", "network-kimg00000_064"));
    const log = await Deno.readTextFile(join(dir, "ck", "ramp", "run.log"));
    const factors = [...log.matchAll(/learning rates ×([0-9.]+)/g)].map((m) => m[1]);
    assert.deepEqual(factors, ["1.000", "0.146"]);
    assert.ok(!(await Deno.readTextFile(join(dir, "ck", "flat", "run.log"))).includes("learning rates ×"));
    await assert.rejects(() => ganTrainRun(cfg("ramp", 0.3, true)), /lrRampdown/);
  });
});

Deno.test("gan:train with --ada-target: augment p logged per snapshot moves off 0, and a run stopped after its first snapshot and resumed ends with the uninterrupted run's p and weights", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 6 });
    // 16 steps of 8 images; p may move by 1 every 4 steps (32 images), and this run's discriminator (without the
    // minibatch std) scores its real images above 0 from about its 8th step: p leaves 0 (at a target of 0.1) in the
    // second half.
    const cfg = (name: string, kimg: number, resume = false) =>
      resolveGanConfig({ dataroot: data, expName: name }, "debug", { checkpointsDir: join(dir, "ck"), kimg, snapshotKimg: 0.072, metricImages: 0, augment: "color,translation,cutout", adaTarget: 0.1, adaKimg: 0.032, resume, quiet: true, model: { mbstdGroup: 0 } as GanConfig });
    const straight = await ganTrainRun(cfg("straight", 0.128));
    const ps = straight.state.snapshots.map((s) => s.augment_p!);
    assert.ok(ps.every((p) => p >= 0 && p <= 1) && ps.some((p) => p > 0), `p ${ps}`);
    // The first half stops after 9 steps, inside a 4-step interval: the controller's partial sums must resume too.
    await ganTrainRun(cfg("halves", 0.072));
    const resumed = await ganTrainRun(cfg("halves", 0.128, true));
    assert.deepEqual(resumed.state.snapshots.map((s) => s.augment_p), ps);
    const w = async (run: string) => {
      const b = await Deno.readFile(join(dir, "ck", run, "snapshots", "latest", "discriminator", "weights.bin"));
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    };
    const [wh, ws] = [await w("halves"), await w("straight")];
    let maxDiff = 0;
    for (let i = 0; i < wh.length; i++) maxDiff = Math.max(maxDiff, Math.abs(wh[i] - ws[i]));
    assert.equal(maxDiff, 0, `resumed run differs from the uninterrupted one by ${maxDiff}`);
    await assert.rejects(() => ganTrainRun({ ...cfg("halves", 0.2, true), adaTarget: 0.5 }), /adaTarget/);
  });
});

Deno.test("gan:train: --ada-target without --augment transforms (the default is none) is a user error naming both flags", () => {
  assert.throws(() => resolveGanConfig({ dataroot: "d", expName: "e" }, undefined, { adaTarget: 0.6 }), (e: Error) => e instanceof UserError && /--ada-target/.test(e.message) && /--augment/.test(e.message));
  assert.equal(resolveGanConfig({ dataroot: "d", expName: "e" }, undefined, { adaTarget: 0.6, augment: "color" }).adaTarget, 0.6);
});

Deno.test("mode-seeking term: 1 / (mean|G(z₁)−G(z₂)| / mean|z₁−z₂| + 1e-5) over the batch's two halves; near 1e5 for a collapsed batch", () => {
  const fake = tf.tensor4d([0, 0, 1, 1, 2, 2, 5, 5], [4, 1, 2, 1]); // halves [0,0],[1,1] vs [2,2],[5,5]: mean |Δ| = 3
  const z = tf.tensor2d([0, 0, 1, 1, 1, 0, 1, 3], [4, 2]); // mean |Δz| = (1 + 0 + 0 + 2) / 4 = 0.75
  const t = modeSeekingTerm(fake, z);
  assert.ok(Math.abs(t.dataSync()[0] - 1 / (3 / 0.75 + 1e-5)) < 1e-6, `term ${t.dataSync()[0]}`);
  const same = tf.tensor4d([1, 2, 1, 2], [2, 1, 2, 1]);
  const collapsed = modeSeekingTerm(same, tf.tensor2d([0, 1, 2, 3], [2, 2]));
  assert.ok(Math.abs(collapsed.dataSync()[0] - 1e5) < 1, `collapsed ${collapsed.dataSync()[0]}`);
  assert.throws(() => modeSeekingTerm(tf.zeros([1, 1, 2, 1]) as tf.Tensor4D, tf.zeros([1, 2]) as tf.Tensor2D), /at least 2/);
  tf.dispose([fake, z, t, same, collapsed]);
});

Deno.test("mode-seeking term, pairs form: the mean over pairs of 1 / (dᵢ + 1e-5); equals the batch form when every pair is as far apart, and one collapsed pair of two makes it ~1e5 / 2 where the batch form stays small", () => {
  const z = tf.tensor2d([0, 0, 0, 0, 1, 1, 1, 1], [4, 2]); // both pairs |Δz| = 1
  const even = tf.tensor4d([0, 0, 1, 1, 2, 2, 3, 3], [4, 1, 2, 1]); // pair distances 2 and 2
  const [be, pe] = [modeSeekingTerm(even, z, "batch"), modeSeekingTerm(even, z, "pairs")];
  assert.ok(Math.abs(be.dataSync()[0] - pe.dataSync()[0]) < 1e-6 && Math.abs(pe.dataSync()[0] - 1 / (2 + 1e-5)) < 1e-6, `${be.dataSync()[0]} vs ${pe.dataSync()[0]}`);
  const oneCollapsed = tf.tensor4d([0, 0, 1, 1, 0, 0, 5, 5], [4, 1, 2, 1]); // pair 1 identical, pair 2 at distance 4
  const [bc, pc] = [modeSeekingTerm(oneCollapsed, z, "batch"), modeSeekingTerm(oneCollapsed, z, "pairs")];
  assert.ok(Math.abs(bc.dataSync()[0] - 1 / (2 + 1e-5)) < 1e-6, `batch ${bc.dataSync()[0]}`);
  assert.ok(Math.abs(pc.dataSync()[0] - (1e5 + 1 / (4 + 1e-5)) / 2) < 1, `pairs ${pc.dataSync()[0]}`);
  tf.dispose([z, even, be, pe, oneCollapsed, bc, pc]);
});

Deno.test("mode-seeking term, all form: the mean over every pair i < j of 1 / (rms image distance / rms latent distance + 1e-5), with 1e-10 under each root; a twin pair outside the fixed halves' pairing makes it large where the pairs form stays small", () => {
  // Images of 2 pixels: 0 = [0, 0], 1 = [0, 0] (twin of 0), 2 = [3, 3], 3 = [6, 6]: rms distance |a − b|.
  const fake = tf.tensor4d([0, 0, 0, 0, 3, 3, 6, 6], [4, 1, 2, 1]);
  const z = tf.tensor2d([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], [4, 4]); // one-hot: every pair at rms √(2/4)
  const img = [0, 0, 3, 6];
  let expected = 0;
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) expected += 1 / (Math.sqrt((img[i] - img[j]) ** 2 + 1e-10) / Math.sqrt(0.5 + 1e-10) + 1e-5) / 6;
  const all = modeSeekingTerm(fake, z, "all"), pairs = modeSeekingTerm(fake, z, "pairs");
  assert.ok(Math.abs(all.dataSync()[0] - expected) / expected < 1e-2, `all ${all.dataSync()[0]} vs ${expected}`);
  assert.ok(all.dataSync()[0] > 6e3, `the twins 0 and 1 (1 / (1.4e-5 + 1e-5) / 6 ≈ 6,900) should dominate: ${all.dataSync()[0]}`);
  assert.ok(pairs.dataSync()[0] < 1, `pairs pairs 0–2 and 1–3 only: ${pairs.dataSync()[0]}`);
  tf.dispose([fake, z, all, pairs]);
});

Deno.test("mode-seeking term in a region: images that differ only outside it count as collapsed there (every form), a region on their difference measures it; a region outside the image is an error", () => {
  // 2 images of 3×3×1 that differ only in the top row; the region is the bottom-right 2×2.
  const fake = tf.tensor4d([9, 9, 9, 1, 2, 3, 4, 5, 6, 0, 0, 0, 1, 2, 3, 4, 5, 6], [2, 3, 3, 1]);
  const z = tf.tensor2d([0, 1], [2, 1]);
  const region = { x: 1, y: 1, width: 2, height: 2 };
  for (const form of ["batch", "pairs", "all"] as const) {
    const [whole, inside] = [modeSeekingTerm(fake, z, form), modeSeekingTerm(fake, z, form, region)];
    assert.ok(whole.dataSync()[0] < 1, `${form}: whole image ${whole.dataSync()[0]}`);
    // Collapsed: d = 0, so 1 / 1e-5; the all form's root adds its 1e-10 (d = 1e-5 over a latent distance of 1).
    const collapsed = form === "all" ? 1 / (1e-5 + 1e-5) : 1e5;
    assert.ok(Math.abs(inside.dataSync()[0] - collapsed) / collapsed < 1e-3, `${form}: region ${inside.dataSync()[0]}`);
    tf.dispose([whole, inside]);
  }
  const moved = modeSeekingTerm(fake, z, "pairs", { x: 0, y: 0, width: 3, height: 1 }); // the top row only: 9 vs 0
  assert.ok(Math.abs(moved.dataSync()[0] - 1 / (9 + 1e-5)) < 1e-6, `top row ${moved.dataSync()[0]}`);
  assert.throws(() => modeSeekingTerm(fake, z, "all", { x: 2, y: 1, width: 2, height: 2 }), /region .* is not whole pixels inside a 3×3 image/);
  tf.dispose([fake, z, moved]);
});

Deno.test("mode-seeking term with a pool: a checkerboard of ±1 against a flat image counts as collapsed over 2×2 squares and as far apart without; the pool applies after the region; a pool larger than the measured side is an error, and gan:train refuses one with face-features or larger than the face square", () => {
  // 2 images of 4×4×1: flat 0, and a checkerboard of ±1 (each 2×2 square averages to 0).
  const board = Array.from({ length: 16 }, (_, k) => ((Math.floor(k / 4) + (k % 4)) % 2 ? 1 : -1));
  const fake = tf.tensor4d([...new Array(16).fill(0), ...board], [2, 4, 4, 1]);
  const z = tf.tensor2d([0, 1], [2, 1]);
  const [plain, pooled, inRegion] = [modeSeekingTerm(fake, z, "pairs"), modeSeekingTerm(fake, z, "pairs", null, 2), modeSeekingTerm(fake, z, "pairs", { x: 1, y: 0, width: 3, height: 2 }, 2)];
  assert.ok(Math.abs(plain.dataSync()[0] - 1 / (1 + 1e-5)) < 1e-6, `unpooled: mean |difference| 1, ${plain.dataSync()[0]}`);
  assert.ok(Math.abs(pooled.dataSync()[0] - 1e5) / 1e5 < 1e-3, `pooled 2×2: collapsed, ${pooled.dataSync()[0]}`);
  // The region's first 2×2 square (columns 1–2) averages to 0 as well; its third column is dropped.
  assert.ok(Math.abs(inRegion.dataSync()[0] - 1e5) / 1e5 < 1e-3, `region then pool: collapsed, ${inRegion.dataSync()[0]}`);
  assert.throws(() => modeSeekingTerm(fake, z, "all", null, 5), /pool 5 is not a whole number from 1 to 4 \(the measured 4×4\)/);
  tf.dispose([fake, z, plain, pooled, inRegion]);
  const resolve = (over: Partial<GanTrainConfig>) => resolveGanConfig({ dataroot: "d", expName: "x" }, undefined, over);
  assert.throws(() => resolve({ modeSeekingRegion: "face-features", modeSeekingPool: 2 }), /--mode-seeking-pool 2 averages pixels; --mode-seeking-region face-features measures features/);
  assert.throws(() => resolve({ modeSeekingRegion: "face", modeSeekingPool: 51 }), /--mode-seeking-pool 51 is larger than the 50-pixel side it averages in \(region face\)/);
  assert.equal(resolve({ modeSeekingRegion: "face", modeSeekingPool: 5 }).modeSeekingPool, 5);
});

Deno.test("generator step with --mode-seeking: returns the adversarial loss of the step without it, moves the generator's weights elsewhere, and leaks no tensors after a burn-in step", async () => {
  const run = async (lambda: number) => {
    const nets = buildGanNets(TINY);
    const opt = tf.train.adam(1e-3, 0, 0.99);
    const z = latentsForSeeds([1, 2, 3, 4], TINY.latentDim);
    const loss = await generatorStep(nets, opt, { z }, "", new Rng(1), { weight: lambda });
    const before = tf.memory().numTensors;
    await generatorStep(nets, opt, { z }, "", new Rng(2), { weight: lambda });
    assert.equal(tf.memory().numTensors, before, `tensors leaked across G steps (mode-seeking ${lambda})`);
    const w = nets.synthesis.getWeights()[0].dataSync().slice();
    opt.dispose();
    z.dispose();
    disposeGanNets(nets);
    return { loss, w };
  };
  const [plain, seeking] = [await run(0), await run(1)];
  assert.equal(seeking.loss, plain.loss, "the first step's returned loss is the adversarial term alone, the same for both");
  assert.ok(seeking.w.some((v, i) => v !== plain.w[i]), "the mode-seeking term changed no weight");
});

Deno.test("gan:train --resume of a run saved before --lr-rampdown, --ada-target, --mode-seeking, --mode-seeking-form, --mode-seeking-region and --mode-seeking-pool existed (its config.json lacks them) continues with the first three off, the batch form, the whole image and no pool; giving another value is refused", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 24, seed: 7 });
    const cfg = (kimg: number, resume = false, extra: Partial<GanTrainConfig> = {}) =>
      resolveGanConfig({ dataroot: data, expName: "old" }, "debug", { checkpointsDir: join(dir, "ck"), kimg, snapshotKimg: 0.016, metricImages: 0, resume, quiet: true, ...extra });
    await ganTrainRun(cfg(0.016));
    const path = join(dir, "ck", "old", "config.json");
    const saved = JSON.parse(await Deno.readTextFile(path));
    for (const k of ["lrRampdown", "adaTarget", "adaKimg", "modeSeeking", "modeSeekingForm", "modeSeekingRegion", "modeSeekingPool"]) delete saved[k];
    await Deno.writeTextFile(path, JSON.stringify(saved));
    // As the CLI resumes: the saved settings, the missing ones as the run had them (off), whatever today's defaults.
    const resumeCfg = await resumeGanConfig({ expName: "old", checkpointsDir: join(dir, "ck") }, { kimg: 0.032, quiet: true });
    assert.equal(resumeCfg.lrRampdown, 0);
    assert.equal(resumeCfg.modeSeeking, 0);
    assert.equal(resumeCfg.adaTarget, 0);
    assert.equal(resumeCfg.modeSeekingForm, "batch");
    assert.equal(resumeCfg.modeSeekingRegion, "image");
    assert.equal(resumeCfg.modeSeekingPool, 1);
    const resumed = await ganTrainRun(resumeCfg);
    assert.equal(resumed.resumedFrom, 0.016);
    await assert.rejects(() => ganTrainRun({ ...resumeCfg, kimg: 0.048, modeSeeking: 2 }), /modeSeeking 0 → 2/);
    await assert.rejects(() => ganTrainRun({ ...resumeCfg, kimg: 0.048, modeSeekingForm: "pairs" }), /modeSeekingForm "batch" → "pairs"/);
    await assert.rejects(() => ganTrainRun({ ...resumeCfg, kimg: 0.048, modeSeekingRegion: "face" }), /modeSeekingRegion "image" → "face"/);
    await assert.rejects(() => ganTrainRun({ ...resumeCfg, kimg: 0.048, modeSeekingPool: 4 }), /modeSeekingPool 1 → 4/);
    await assert.rejects(() => ganTrainRun({ ...resumeCfg, kimg: 0.048, lrRampdown: 0.5 }), /lrRampdown 0 → 0.5/);
  });
});

Deno.test("Fréchet distance: exact on known Gaussians, ≈ 0 for a set against itself, large against noise", () => {
  // Diagonal covariances: d² = ‖μ1−μ2‖² + Σ (σ1 − σ2)².
  const mk = (mean: number[], sd: number[], n: number, seed: number) => {
    const rng = new Rng(seed), out = new Float64Array(n * mean.length);
    for (let i = 0; i < n; i++) for (let j = 0; j < mean.length; j++) out[i * mean.length + j] = mean[j] + sd[j] * rng.normal();
    return out;
  };
  const a = gaussianStats(mk([0, 0, 0], [1, 2, 0.5], 20000, 1), 3);
  const b = gaussianStats(mk([1, -1, 0], [2, 2, 1], 20000, 2), 3);
  const expected = 1 + 1 + 0 + (1 - 2) ** 2 + 0 + (0.5 - 1) ** 2;
  assert.ok(Math.abs(frechetDistance(a, b) - expected) < 0.1, `got ${frechetDistance(a, b)}, expected ${expected}`);
  assert.ok(frechetDistance(a, a) < 1e-6);
  const feats = mk(new Array(16).fill(0.1), new Array(16).fill(0.05), 400, 3);
  const noise = mk(new Array(16).fill(0), new Array(16).fill(1), 400, 4);
  const fa = gaussianStats(feats, 16);
  assert.ok(frechetDistance(fa, fa) < 1e-9);
  assert.ok(frechetDistance(fa, gaussianStats(noise, 16)) > 10);
  assert.throws(() => gaussianStats(new Float32Array(3), 3), /at least 2 rows/);
});

Deno.test("diversity: nearest-neighbour distances exact on a hand-made set; two samples of one Gaussian have median ratio ≈ 1, copies of one point 0; near-duplicates counted below a threshold", async () => {
  // Points on a line in 2-D: 0, 1, 3, 7 → nearest 1, 1, 2, 4.
  assert.deepEqual(Array.from(await nearestDistances(Float32Array.from([0, 0, 1, 0, 3, 0, 7, 0]), 2)).map((d) => Math.round(d * 1e4) / 1e4), [1, 1, 2, 4]);
  assert.equal(await nearDuplicates(Float32Array.from([0, 0, 1, 0, 3, 0, 7, 0]), 2, 1.5), 2);
  const rng = new Rng(11);
  const sample = () => Float32Array.from({ length: 200 * 16 }, () => rng.normal());
  const ratio = (await medianNearest(sample(), 16)) / (await medianNearest(sample(), 16));
  assert.ok(ratio > 0.9 && ratio < 1.1, `ratio ${ratio}`);
  const one = Array.from({ length: 16 }, () => rng.normal());
  const copies = Float32Array.from({ length: 50 * 16 }, (_, i) => one[i % 16] + 1e-4 * rng.normal());
  assert.ok((await medianNearest(copies, 16)) < 1e-2);
  assert.equal(await nearDuplicates(copies, 16, 0.1), 50);
  await assert.rejects(() => nearestDistances(new Float32Array(16), 16), /at least 2 rows/);
});

Deno.test("gan:train runs, snapshots (with the real-against-real FDD floor, below the untrained generator's FDD, the diversity columns in fdd.csv with the near-duplicate count over the metric samples' sets, and the grid-duplicate count of real sets in run.log), resumes exactly where a fresh run would be (also after its --max-minutes budget stopped it, with a larger one), gan:generate is deterministic per seed, and gan:copies measures the generator against its training set (its FDD too; at ψ 0 one distance for every sample and a larger FDD; ψ outside 0..2 refused)", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 5 });
    const base = (name: string, kimg: number, resume = false) =>
      resolveGanConfig({ dataroot: data, expName: name }, "debug", { checkpointsDir: join(dir, "ck"), kimg, snapshotKimg: 0.016, metricImages: 16, resume, quiet: true });
    const straight = await ganTrainRun(base("straight", 0.032));
    assert.equal(straight.state.snapshots.length, 2);
    assert.ok(straight.state.snapshots.every((s) => s.fdd !== null && s.fdd > 0));
    const floor = straight.state.snapshots[0].fdd_floor!;
    assert.ok(floor > 0 && straight.state.snapshots.every((s) => s.fdd_floor === floor && s.fdd! > floor), `floor ${floor}`);
    assert.match((await Deno.readTextFile(join(straight.runDir, "fdd.csv"))).split("\n")[0], /fdd_floor.*nn_ratio,grid_duplicates,augment_p,set_duplicates/);
    // The duplicate count's scale on real portraits: one line at the start, from the other real sets of the grid's size.
    assert.match(await Deno.readTextFile(join(straight.runDir, "run.log")), /grid duplicates among \d+ real portraits \(the same count on [1-9]\d* other real sets\): median \d+, mean \d+\.\d, \d+–\d+/);
    // Diversity: a ratio of nearest-neighbour distances (positive) and a count of the grid's 8 samples.
    assert.ok(straight.state.snapshots.every((s) => s.nn_ratio! > 0 && Number.isInteger(s.grid_duplicates) && s.grid_duplicates! >= 0 && s.grid_duplicates! <= 8));
    // The same count over the 16 metric samples' two sets of 8: a median of two counts, each 0..8.
    assert.ok(straight.state.snapshots.every((s) => Number.isInteger(s.set_duplicates) && s.set_duplicates! >= 0 && s.set_duplicates! <= 8), JSON.stringify(straight.state.snapshots.map((s) => s.set_duplicates)));
    assert.match(await Deno.readTextFile(join(straight.runDir, "run.log")), /grid samples near-duplicates \(median \d+, \d+–\d+ over 2 sets of 8 metric samples\)/);
    for (const f of ["fdd.csv", "fdd.png", "samples/grid-latest.png", "snapshots/latest/state.json", "snapshots/network-kimg00000_032/generator.json"]) {
      assert.ok((await Deno.stat(join(straight.runDir, f))).isFile, f);
    }
    await assert.rejects(() => ganTrainRun(base("straight", 0.032)), /already holds a run \(config.json, .*\); pass --resume/);
    // Half, then resume to the end: same weights as the straight run.
    await ganTrainRun(base("halves", 0.016));
    const resumed = await ganTrainRun(base("halves", 0.032, true));
    assert.equal(resumed.resumedFrom, 0.016);
    assert.equal(resumed.state.step, straight.state.step);
    // Bit-equal: the project's Adam restores β^t as the running product the steps make (tfjs' recomputes a power).
    const w = async (run: string) => {
      const b = await Deno.readFile(join(dir, "ck", run, "snapshots", "latest", "synthesisEma", "weights.bin"));
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    };
    const [wh, ws] = [await w("halves"), await w("straight")];
    assert.equal(wh.length, ws.length);
    let maxDiff = 0;
    for (let i = 0; i < wh.length; i++) maxDiff = Math.max(maxDiff, Math.abs(wh[i] - ws[i]));
    console.log("MAXDIFF", maxDiff);
    assert.ok(maxDiff < 1e-4, `resumed run differs from the uninterrupted one by ${maxDiff}`);
    // A run stopped by its --max-minutes budget (after its first round) and resumed with a larger one ends where the
    // uninterrupted run does.
    await ganTrainRun({ ...base("budget", 0.032), maxMinutes: 1e-6 });
    const extended = await ganTrainRun({ ...base("budget", 0.032, true), maxMinutes: 100 });
    assert.equal(extended.state.step, straight.state.step);
    const wb = await w("budget");
    let budgetDiff = 0;
    for (let i = 0; i < wb.length; i++) budgetDiff = Math.max(budgetDiff, Math.abs(wb[i] - ws[i]));
    assert.ok(budgetDiff < 1e-4, `budget-stopped and extended run differs from the uninterrupted one by ${budgetDiff}`);
    // The losses inherit the same rounding (on an AVX-512 CPU they differed in the 7th digit): equal within 1e-5 relative.
    const [ld, sd] = [resumed.state.snapshots.map((r) => r.loss_d), straight.state.snapshots.map((r) => r.loss_d)];
    assert.equal(ld.length, sd.length);
    ld.forEach((l, i) => assert.ok(Math.abs(l - sd[i]) <= 1e-5 * Math.abs(sd[i]), `snapshot ${i}: loss_d ${l} vs ${sd[i]}`));

    const out1 = join(dir, "gen1"), out2 = join(dir, "gen2");
    const r1 = await generateImages({ network: straight.runDir, seeds: [85, 265, 297], trunc: 1, out: out1, interpSteps: 4 });
    const r2 = await generateImages({ network: join(straight.runDir, "snapshots", "latest"), seeds: [265], trunc: 1, out: out2, interpSteps: 0 });
    assert.equal(r1.files.length, 3);
    assert.ok(r1.interpolation && (await Deno.stat(r1.interpolation)).isFile);
    assert.deepEqual(await Deno.readFile(r1.files[1]), await Deno.readFile(r2.files[0]), "same seed, different image");
    assert.notDeepEqual(await Deno.readFile(r1.files[0]), await Deno.readFile(r1.files[1]));
    const t0 = await generateImages({ network: straight.runDir, seeds: [1, 2], trunc: 0, out: join(dir, "gen3"), interpSteps: 0 });
    assert.deepEqual(await Deno.readFile(t0.files[0]), await Deno.readFile(t0.files[1]), "ψ = 0 must give the mean face for every seed");
    assert.deepEqual(parseSeeds("3,5-7"), [3, 5, 6, 7]);
    assert.throws(() => parseSeeds("a"), /comma-separated integers/);

    const before = tf.memory().numTensors;
    const c = await copyCheck({ network: straight.runDir, dataroot: data, images: 12, realImages: 30, quiet: true });
    assert.equal(tf.memory().numTensors, before, "gan:copies leaves tensors behind");
    assert.equal(c.generatedImages, 12);
    assert.equal(c.realImages, 30);
    assert.equal(c.trainedOn, c.dataset);
    for (const q of [c.real, c.generated]) assert.ok(0 < q.p5 && q.p5 <= q.p25 && q.p25 <= q.median && q.median <= q.p75, JSON.stringify(q));
    assert.ok(Number.isInteger(c.copies) && c.copies >= 0 && c.copies <= 12);
    assert.match(formatCopyCheck(c), /copies \(generated closer to a real portrait than the real p5\): \d+ of 12/);
    assert.equal(c.duplicates, null, "12 generated portraits make no set of 64");
    assert.equal(c.pixelDuplicates, null, "12 generated portraits make no set of 64 for the pixel test either");
    assert.equal(c.sampleRules.generated.images, 12);
    assert.equal(c.sampleRules.real.images, 12, "the rules judge as many reference portraits as generated ones");
    assert.equal(c.sampleRules.flagged.length, c.sampleRules.generated.blank + c.sampleRules.generated.exposure + c.sampleRules.generated.noise);
    assert.match(formatCopyCheck(c), /the exploration's per-image rules: generated blank \d+, exposure \d+, noise \d+ of 12; reference blank \d+, exposure \d+, noise \d+ of 12/);
    assert.ok(c.trunc === 1 && Number.isFinite(c.fdd) && c.fdd > 0, `ψ ${c.trunc}, FDD ${c.fdd}`);
    assert.match(formatCopyCheck(c), /Fréchet descriptor distance, 12 generated against the 30 reference portraits: \d+\.\d{4}\n/);
    // ψ = 0: every sample is the mean face, one distance to the reference for all, and a worse likeness.
    const c0 = await copyCheck({ network: straight.runDir, dataroot: data, images: 12, realImages: 30, quiet: true, trunc: 0 });
    assert.ok(c0.trunc === 0 && c0.generated.p5 === c0.generated.p75, JSON.stringify(c0.generated));
    assert.ok(c0.fdd > c.fdd, `FDD at ψ 0 ${c0.fdd}, at ψ 1 ${c.fdd}`);
    assert.match(formatCopyCheck(c0), /truncation ψ 0\n/);
    await assert.rejects(() => copyCheck({ network: straight.runDir, dataroot: data, trunc: 2.5 }), (e: Error) => e instanceof UserError && /--trunc in 0\.\.2/.test(e.message));
    await assert.rejects(() => copyCheck({ network: join(dir, "nowhere"), dataroot: data }), /no generator in/);
  });
});

Deno.test("copy check: generated rows that are training rows (plus 1e-4 noise) are all copies with median ratio ≈ 0; fresh draws of the same Gaussian give about 5 % copies and a ratio ≈ 1", async () => {
  const rng = new Rng(12);
  const dim = 16, n = 400;
  const real = Float32Array.from({ length: n * dim }, () => rng.normal());
  const copied = Float32Array.from({ length: 40 * dim }, (_, i) => real[(Math.floor(i / dim) * 7) * dim + (i % dim)] + 1e-4 * rng.normal());
  const a = summariseCopies(await copyDistances(copied, real, dim));
  assert.equal(a.copies, 40);
  assert.ok(a.medianRatio < 0.01, `ratio ${a.medianRatio}`);
  const fresh = Float32Array.from({ length: 200 * dim }, () => rng.normal());
  const b = summariseCopies(await copyDistances(fresh, real, dim));
  assert.ok(b.copies <= 25, `copies ${b.copies} of 200`);
  assert.ok(b.medianRatio > 0.9 && b.medianRatio < 1.1, `ratio ${b.medianRatio}`);
  assert.deepEqual(quantiles(Float32Array.from([4, 1, 3, 2, 5])), { p5: 1, p25: 2, median: 3, p75: 4 });
  await assert.rejects(() => copyDistances(new Float32Array(dim), new Float32Array(dim), dim), /at least 2 real rows/);
});

Deno.test("near-duplicate sets: generated rows where every row has a twin (1e-4 apart) count all 64 of each set, fresh draws of the real Gaussian count about what real sets do; fewer than 64 rows gives null", async () => {
  const rng = new Rng(13);
  const dim = 16;
  const real = Float32Array.from({ length: 640 * dim }, () => rng.normal());
  const base = Float32Array.from({ length: 64 * dim }, () => rng.normal());
  const twins = Float32Array.from({ length: 128 * dim }, (_, i) => base[i % (64 * dim)] + 1e-4 * rng.normal()); // rows i and i + 64 are twins
  // Twins land in different sets of 64 (rows 0–63, 64–127): reorder so that each set holds 32 twin pairs.
  const paired = new Float32Array(twins.length);
  for (let k = 0; k < 128; k++) paired.set(twins.subarray(((k % 2) * 64 + (k >> 1)) * dim, ((k % 2) * 64 + (k >> 1) + 1) * dim), k * dim);
  const a = (await duplicateSets(paired, real, 64, dim))!;
  assert.equal(a.real.sets, 10);
  assert.deepEqual([a.generated.sets, a.generated.min, a.generated.max], [2, 64, 64]);
  assert.ok(a.below > 0 && a.real.median <= 4, JSON.stringify(a));
  const fresh = Float32Array.from({ length: 640 * dim }, () => rng.normal());
  const b = (await duplicateSets(fresh, real, 64, dim))!;
  assert.ok(Math.abs(b.generated.mean - b.real.mean) <= 2, JSON.stringify(b));
  assert.equal(await duplicateSets(real.subarray(0, 63 * dim), real, 64, dim), null);
  assert.deepEqual(summariseCounts([3, 0, 5, 1]), { sets: 4, median: 1, mean: 2.25, min: 0, max: 5 });
});

Deno.test("pixel duplicates: a 1-pixel-shifted, 10 % brighter copy placed in a set of 64 procedural portraits makes that set count 2 (0 when the copy is skipped as flagged, 0 in the set without it) and, with descriptors alike only for that pair, is the one look-alike pair measured; per-image rules flag a grey tile blank, a dark one exposure, random pixels noise against a narrow enough sharpness reference, and no portrait", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 140, seed: 6, badFraction: 0, duplicateFraction: 0 });
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const rows = Array.from(ds.goodRows).slice(0, 128);
    assert.equal(rows.length, 128);
    const px = new Uint8Array(131 * IMAGE_BYTES);
    rows.forEach((r, k) => px.set(ds.cache.pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES), k * IMAGE_BYTES));
    // Portrait 10 of the first set becomes portrait 0 moved one pixel right, 10 % brighter.
    for (let y = 0; y < 108; y++) {
      for (let x = 0; x < 84; x++) {
        for (let ch = 0; ch < 3; ch++) px[10 * IMAGE_BYTES + (y * 84 + x) * 3 + ch] = Math.min(255, Math.round(1.1 * px[(y * 84 + Math.max(0, x - 1)) * 3 + ch]));
      }
    }
    const order = Array.from({ length: 128 }, (_, k) => k);
    const none = new Array(128).fill(false);
    const a = pixelDuplicates(px, order, none);
    assert.deepEqual(a.counts, [2, 0], `closest pairs ${a.closest}`);
    assert.ok(a.closest[0] <= 8 && a.closest[1] > 8, `closest pairs ${a.closest}`);
    // Descriptors 10 apart for every portrait but the copy, which shares portrait 0's: one look-alike pair, the copy's.
    const desc = new Float32Array(128 * 128);
    for (let k = 0; k < 128; k++) desc[k * 128] = (k === 10 ? 0 : k) * 10;
    const withLookalikes = pixelDuplicates(px, order, none, 64, 8, { descriptors: desc, below: 1 });
    assert.deepEqual(withLookalikes.lookalikePixels, [a.closest[0]]);
    assert.deepEqual(a.lookalikePixels, [], "no descriptors given, no look-alike pairs");
    const skipped = pixelDuplicates(px, order, none.map((_, k) => k === 10));
    assert.deepEqual(skipped.counts, [0, 0]);
    assert.equal(pixelDuplicates(px, order.slice(0, 63), none).counts.length, 0, "63 portraits make no set of 64");
    // Three tiles after the portraits: flat grey, near-black with faint texture, random pixels.
    const rng = new Rng(3);
    for (let p = 0; p < IMAGE_BYTES; p++) {
      px[128 * IMAGE_BYTES + p] = 128;
      px[129 * IMAGE_BYTES + p] = (Math.floor(p / 3) % 2) * 25; // mean luma 0.05, luma std 0.05
      px[130 * IMAGE_BYTES + p] = rng.int(0, 255);
    }
    const all = imageStats(px, Int32Array.from({ length: 131 }, (_, k) => k), { quiet: true });
    const portraitsOnly = imageStats(px, Int32Array.from({ length: 128 }, (_, k) => k), { quiet: true });
    // Noise is a robust z of log sharpness against the reference given: these procedural portraits spread so widely
    // (robust scale 0.32 in log10) that random pixels sit at z 5.6, under the rule's 8; against a reference half as
    // spread they are flagged.
    const ref = robustScale(logSharpness(portraitsOnly));
    const flags = ruleFlags(all, ref);
    assert.deepEqual(flags.slice(128).map((f) => f?.reason), ["blank", "exposure", undefined]);
    assert.equal(flags.slice(0, 128).filter((f) => f !== null).length, 0, JSON.stringify(flags.slice(0, 128).filter((f) => f)));
    assert.equal(ruleFlags(all, { median: ref.median, scale: ref.scale / 2 })[130]?.reason, "noise");
  });
});

Deno.test("near-duplicate controls: procedural portraits blurred with σ 4 count more near-duplicates per set of 16 than the same portraits unsoftened (same threshold), scale:0.5 keeps their size and changes them, tensors freed; bad --real-controls items are one-line errors", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 72, seed: 4, badFraction: 0, duplicateFraction: 0 });
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const rows = Array.from(ds.goodRows).slice(0, 64);
    assert.equal(rows.length, 64);
    const desc = await portraitDescriptors(ds.cache.pixels, rows);
    const sharpSets = (await duplicateSets(desc, desc, 16))!;
    const before = tf.memory().numTensors;
    const blurred = await controlDuplicates(ds.cache.pixels, rows, { kind: "blur", sigma: 4 }, sharpSets.below, 16);
    assert.equal(tf.memory().numTensors, before, "controlDuplicates leaves tensors behind");
    assert.equal(blurred.sets, 4);
    assert.ok(blurred.mean >= sharpSets.real.mean + 2, `blurred ${JSON.stringify(blurred)} against unsoftened ${JSON.stringify(sharpSets.real)}`);
    const small = await softenPortraits(ds.cache.pixels, rows.slice(0, 2), { kind: "scale", factor: 0.5 });
    assert.equal(small.length, 2 * IMAGE_BYTES);
    assert.notDeepEqual(small.subarray(0, IMAGE_BYTES), ds.cache.pixels.subarray(rows[0] * IMAGE_BYTES, (rows[0] + 1) * IMAGE_BYTES));
  });
  assert.deepEqual(parseRealControls("scale:0.5, blur:1.5"), [{ kind: "scale", factor: 0.5 }, { kind: "blur", sigma: 1.5 }]);
  for (const bad of ["scale:2", "blur:0.1", "sharpen:1", "scale", "blur:1:2"]) {
    assert.throws(() => parseRealControls(bad), (e: Error) => e instanceof UserError && e.message.includes(`'${bad}'`) && e.message.split("\n").length === 1, bad);
  }
});

// ------------------------------------------------------------ projected discriminator

const PROJECTED: GanConfig = { ...TINY, discriminator: "projected" };
const tensorData = (ts: tf.Tensor[]) => ts.map((t) => Float32Array.from(t.dataSync() as Float32Array));

Deno.test("projected features: face-api's own age/gender head on them gives ageGenderPredict's age and male probability (same crop, normalisation, weights)", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 8, seed: 3 });
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const rows = Array.from(ds.goodRows).slice(0, 6);
    const ref = await ageGenderPredict(ds.cache.pixels, rows);
    const features = await loadFaceFeatures("face");
    const fc = await readWeightMap("age_gender_model");
    const px = Float32Array.from({ length: rows.length * IMAGE_BYTES }, (_, k) => ds.cache.pixels[rows[Math.floor(k / IMAGE_BYTES)] * IMAGE_BYTES + (k % IMAGE_BYTES)] / 127.5 - 1);
    const x = tf.tensor4d(px, [rows.length, 108, 84, 3]);
    const maps = features.forward(x);
    assert.deepEqual(maps.map((m) => m.shape), FACE_FEATURE_SCALES.map((s) => [rows.length, s.size, s.size, s.channels]));
    // face-api's AgeGenderNet.runNet: avgPool 7×7 stride 2 → fc age, fc gender → softmax ([male, female]).
    const [age, male] = tf.tidy(() => {
      const pooled = tf.reshape(tf.avgPool(maps[2], 7, 2, "valid"), [rows.length, 512]);
      const a = tf.add(tf.matMul(pooled, fc["fc/age/weights"] as tf.Tensor2D), fc["fc/age/bias"]);
      const g = tf.softmax(tf.add(tf.matMul(pooled, fc["fc/gender/weights"] as tf.Tensor2D), fc["fc/gender/bias"]));
      return [a.dataSync(), tf.slice(g, [0, 0], [rows.length, 1]).dataSync()];
    });
    rows.forEach((_, i) => {
      assert.ok(Math.abs(age[i] - ref.age[i]) < 1e-3, `row ${i}: age ${age[i]} vs ageGenderPredict ${ref.age[i]}`);
      assert.ok(Math.abs(male[i] - ref.male[i]) < 1e-4, `row ${i}: male ${male[i]} vs ageGenderPredict ${ref.male[i]}`);
    });
    tf.dispose([x, ...maps, ...Object.values(fc)]);
    features.dispose();
  });
});

Deno.test("projected features, view 'both': the face view's maps equal a face-only net's, and a pixel changed outside the face square (top corner) moves the portrait view's maps and leaves the face view's unchanged", async () => {
  const both = await loadFaceFeatures("both"), face = await loadFaceFeatures("face");
  const a = tf.randomUniform([2, 108, 84, 3], -1, 1, "float32", 4) as tf.Tensor4D;
  const mask = tf.buffer([1, 108, 84, 1]);
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) mask.set(1, 0, y, x, 0);
  const b = tf.tidy(() => tf.add(a, tf.mul(mask.toTensor(), 1.5))) as tf.Tensor4D;
  const [ma, mb, mf] = [both.forward(a), both.forward(b), face.forward(a)];
  const vals = (ts: tf.Tensor[]) => ts.map((t) => t.dataSync() as Float32Array);
  const [va, vb, vf] = [vals(ma), vals(mb), vals(mf)];
  const n = FACE_FEATURE_SCALES.length;
  assert.equal(ma.length, 2 * n);
  for (let k = 0; k < n; k++) {
    assert.ok(va[k].every((v, i) => Math.abs(v - vf[k][i]) <= 1e-4 * Math.max(1, Math.abs(v))), `face view map ${k} differs from the face-only net's`);
    assert.deepEqual(vb[k], va[k], `face view map ${k} moved with a pixel outside the face square`);
    assert.ok(vb[n + k].some((v, i) => Math.abs(v - va[n + k][i]) > 1e-4), `portrait view map ${k} did not see the corner`);
  }
  tf.dispose([a, b, ...ma, ...mb, ...mf]);
  both.dispose();
  face.dispose();
});

Deno.test("projected GAN steps: a D step changes only the heads, a G step only the generator, the frozen age/gender weights never change; no tensor leaks after a burn-in round", async () => {
  const nets = buildGanNets(PROJECTED, await loadFaceFeatures());
  const optG = tf.train.adam(1e-3, 0, 0.99), optD = tf.train.adam(1e-3, 0, 0.99);
  const rng = new Rng(3);
  const real = tf.randomUniform([4, 108, 84, 3], -1, 1, "float32", 1) as tf.Tensor4D;
  const z = latentsForSeeds([5, 6, 7, 8], PROJECTED.latentDim);
  const gVars = [...nets.mapping.trainableWeights, ...nets.synthesis.trainableWeights];
  const dVars = nets.discriminator.weights;
  const frozen = nets.features!.tensors();
  const frozen0 = tensorData(frozen);
  // The heads give one score per image, view (face square and whole portrait) and feature scale.
  const scores = discriminate(nets.discriminator, real, undefined, nets.features);
  assert.deepEqual(scores.shape, [4, 2 * FACE_FEATURE_SCALES.length]);
  scores.dispose();
  const round = async () => {
    const g0 = snapshotOf(gVars), d0 = snapshotOf(dVars);
    await discriminatorStep(nets, optD, { real, z }, "color,translation,cutout", rng);
    assert.ok(same(snapshotOf(gVars), g0), "a discriminator step changed the generator");
    assert.ok(!same(snapshotOf(dVars), d0), "a discriminator step did not change the heads");
    const g1 = snapshotOf(gVars), d1 = snapshotOf(dVars);
    await generatorStep(nets, optG, { z }, "color,translation,cutout", rng);
    assert.ok(same(snapshotOf(dVars), d1), "a generator step changed the heads");
    assert.ok(!same(snapshotOf(gVars), g1), "a generator step did not change the generator");
  };
  await round(); // creates the optimizers' slots
  const before = tf.memory().numTensors;
  await round();
  await round();
  assert.equal(tf.memory().numTensors, before, "tensors leaked across projected GAN steps");
  assert.ok(same(tensorData(frozen), frozen0), "the frozen age/gender weights changed");
  optG.dispose();
  optD.dispose();
  tf.dispose([real, z]);
  const held = tf.memory().numTensors;
  disposeGanNets(nets);
  assert.ok(held - tf.memory().numTensors > frozen.length, "disposeGanNets did not free the frozen features");
  assert.ok(frozen.every((t) => t.isDisposed), "disposeGanNets left frozen feature tensors alive");
});

Deno.test("mode-seeking in face features: each sample's exit map at unit RMS; a portrait changed only outside the face square counts as collapsed there and not in pixels; a G step with them changes only the generator, keeps the frozen weights and leaks no tensor after a burn-in step; a pixel region with features is an error", async () => {
  const face = await loadFaceFeatures("face");
  const a = tf.randomUniform([1, 108, 84, 3], -1, 1, "float32", 5) as tf.Tensor4D;
  const mask = tf.buffer([1, 108, 84, 1]);
  for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) mask.set(1, 0, y, x, 0);
  const pair = tf.tidy(() => tf.concat([a, tf.add(a, tf.mul(mask.toTensor(), 1.5))])) as tf.Tensor4D;
  const maps = modeSeekingFeatureMaps(face, pair);
  assert.deepEqual(maps.shape, [2, 7, 7, 512]);
  const meanSquare = tf.tidy(() => tf.mean(tf.square(maps), [1, 2, 3]).dataSync());
  meanSquare.forEach((v, i) => assert.ok(Math.abs(v - 1) < 1e-3, `sample ${i}: mean square ${v}`));
  const z = tf.tensor2d([0, 1], [2, 1]);
  const [pixels, features] = [modeSeekingTerm(pair, z, "all"), modeSeekingTerm(maps, z, "all")];
  assert.ok(pixels.dataSync()[0] < 100, `pixels see the corner: ${pixels.dataSync()[0]}`);
  // Equal maps: d = √1e-10 over a latent distance of 1, so 1 / (1e-5 + 1e-5).
  assert.ok(Math.abs(features.dataSync()[0] - 5e4) / 5e4 < 1e-2, `features should not see the corner: ${features.dataSync()[0]}`);
  tf.dispose([a, pair, maps, z, pixels, features]);

  const nets = buildGanNets(TINY);
  const opt = tf.train.adam(1e-3, 0, 0.99);
  const zs = latentsForSeeds([1, 2, 3, 4], TINY.latentDim);
  const frozen = face.tensors(), frozen0 = tensorData(frozen);
  const dVars = nets.discriminator.weights, gVars = [...nets.mapping.trainableWeights, ...nets.synthesis.trainableWeights];
  const d0 = snapshotOf(dVars), g0 = snapshotOf(gVars);
  await generatorStep(nets, opt, { z: zs }, "", new Rng(1), { weight: 1, form: "all", features: face }); // creates the optimizer's slots
  const before = tf.memory().numTensors;
  await generatorStep(nets, opt, { z: zs }, "", new Rng(2), { weight: 1, form: "all", features: face });
  assert.equal(tf.memory().numTensors, before, "tensors leaked across G steps with face features");
  assert.ok(same(snapshotOf(dVars), d0), "a generator step changed the discriminator");
  assert.ok(!same(snapshotOf(gVars), g0), "a generator step did not change the generator");
  assert.ok(same(tensorData(frozen), frozen0), "the frozen age/gender weights changed");
  assert.throws(() => generatorStepLoss(nets, opt, { z: zs }, "", new Rng(3), { weight: 1, form: "all", region: MODE_SEEKING_FACE, features: face }), /features or pixels \(a region, a pool\), not both/);
  opt.dispose();
  zs.dispose();
  disposeGanNets(nets);
  face.dispose();
});

Deno.test("projected GAN: the generator's loss gradient reaches every generator weight through the frozen features, finite and non-zero", async () => {
  const nets = buildGanNets(PROJECTED, await loadFaceFeatures());
  const z = latentsForSeeds([1, 2, 3, 4], PROJECTED.latentDim);
  const gVars = [...nets.mapping.trainableWeights, ...nets.synthesis.trainableWeights].map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(discriminate(nets.discriminator, generate(nets, z, undefined, true), undefined, nets.features))) as tf.Scalar, gVars);
  for (const v of gVars) {
    const g = grads[v.name];
    assert.ok(g, `no gradient for ${v.name}`);
    const d = g.dataSync();
    assert.ok(d.every(Number.isFinite), `non-finite gradient for ${v.name}`);
    assert.ok(d.some((x) => x !== 0), `zero gradient for ${v.name}`);
  }
  tf.dispose([value, z, ...Object.values(grads)]);
  assert.throws(() => buildGanNets(PROJECTED), /needs its frozen face features/);
  disposeGanNets(nets);
});

Deno.test("gan:train --discriminator projected (debug preset): stopped after its first snapshot and resumed, it ends with the weights of an uninterrupted run; a resume cannot switch the discriminator", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 5 });
    const base = (name: string, kimg: number, resume = false, discriminator: GanConfig["discriminator"] = "projected") =>
      resolveGanConfig({ dataroot: data, expName: name }, "debug", { checkpointsDir: join(dir, "ck"), kimg, snapshotKimg: 0.016, metricImages: 0, resume, quiet: true, model: { discriminator } });
    const straight = await ganTrainRun(base("straight", 0.032));
    assert.equal(straight.state.snapshots.length, 2);
    const saved = JSON.parse(await Deno.readTextFile(join(straight.runDir, "config.json")));
    assert.equal(saved.model.discriminator, "projected");
    // The snapshot holds the trainable heads only (their inputs are the feature maps), never the frozen net.
    const dModel = JSON.parse(await Deno.readTextFile(join(straight.runDir, "snapshots", "latest", "discriminator", "model.json")));
    assert.ok(!JSON.stringify(dModel).includes("entry_flow"), "frozen age/gender weights saved in the snapshot");
    assert.ok(JSON.stringify(dModel.modelTopology).includes("features_portrait_exit"));
    await ganTrainRun(base("halves", 0.016));
    await assert.rejects(() => ganTrainRun(base("halves", 0.032, true, "image")), /--resume would change discriminator "projected" → "image"/);
    const resumed = await ganTrainRun(base("halves", 0.032, true));
    assert.equal(resumed.resumedFrom, 0.016);
    assert.equal(resumed.state.step, straight.state.step);
    const w = async (run: string, net: string) => {
      const b = await Deno.readFile(join(dir, "ck", run, "snapshots", "latest", net, "weights.bin"));
      return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
    };
    // Equal up to float rounding (a restored Adam recomputes β^t as a power; see the image-discriminator test).
    for (const net of ["synthesisEma", "synthesis", "discriminator"]) {
      const [wh, ws] = [await w("halves", net), await w("straight", net)];
      assert.equal(wh.length, ws.length);
      let maxDiff = 0;
      for (let i = 0; i < wh.length; i++) maxDiff = Math.max(maxDiff, Math.abs(wh[i] - ws[i]));
      assert.ok(maxDiff < 1e-4, `${net}: resumed run differs from the uninterrupted one by ${maxDiff}`);
    }
    const gen = await generateImages({ network: resumed.runDir, seeds: [1, 2], trunc: 1, out: join(dir, "gen"), interpSteps: 0 });
    assert.equal(gen.files.length, 2);
  });
});

Deno.test("--g-widths/--d-widths: comma lists become the model's channels (presets' arrays pass); a wrong count or a non-integer is a one-line error; a resume cannot change them, --mbstd-group, --pack, --g-skip-excitation, --g-upsample-blur or --g-upsample; --pack defaults to 2 only unconditional with the image discriminator, needs a batch that is a multiple of it and no condition", async () => {
  const c = resolveGanConfig({ dataroot: "x", expName: "y" }, undefined, { model: { gWidths: "64, 32,16,8", dWidths: "8,8,16,16,32" } as unknown as GanConfig });
  assert.deepEqual([c.model.gWidths, c.model.dWidths], [[64, 32, 16, 8], [8, 8, 16, 16, 32]]);
  assert.deepEqual(resolveGanConfig({ dataroot: "x", expName: "y" }, "debug", {}).model.gWidths, [32, 16, 8, 8]);
  for (const [flag, v] of [["g-widths", "64,32,16"], ["d-widths", "8,8,16,16,3.5"], ["g-widths", "a,b,c,d"]]) {
    const key = flag === "g-widths" ? "gWidths" : "dWidths";
    assert.throws(() => resolveGanConfig({ dataroot: "x", expName: "y" }, undefined, { model: { [key]: v } as unknown as GanConfig }),
      (e: Error) => e instanceof UserError && e.message === `gan:train: --${flag}: expected ${key === "gWidths" ? 4 : 5} comma-separated positive integers, got '${v}'`);
  }
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 5 });
    const cfg = (resume: boolean, model: Partial<GanConfig>) =>
      resolveGanConfig({ dataroot: data, expName: "w" }, "debug", { checkpointsDir: join(dir, "ck"), kimg: 0.016, snapshotKimg: 0.016, metricImages: 0, resume, quiet: true, model });
    await ganTrainRun(cfg(false, {}));
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { gWidths: [16, 16, 8, 8] }), kimg: 0.032 }), /--resume would change gWidths \[32,16,8,8\] → \[16,16,8,8\]/);
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { mbstdGroup: 2 }), kimg: 0.032 }), /--resume would change mbstdGroup 4 → 2/);
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { pack: 1 }), kimg: 0.032 }), /--resume would change pack 2 → 1/);
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { gSkipExcitation: true }), kimg: 0.032 }), /--resume would change gSkipExcitation false → true/);
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { gUpsampleBlur: true }), kimg: 0.032 }), /--resume would change gUpsampleBlur false → true/);
    await assert.rejects(() => ganTrainRun({ ...cfg(true, { gUpsample: "nearest" }), kimg: 0.032 }), /--resume would change gUpsample "transposed" → "nearest"/);
    const packOf = (o: Partial<GanTrainConfig>) => resolveGanConfig({ dataroot: data, expName: "p" }, "debug", o).model.pack;
    assert.deepEqual([packOf({}), packOf({ condition: "gender" }), packOf({ model: { discriminator: "projected" } }), packOf({ model: { pack: 1 } })], [2, 1, 1, 1]);
    assert.throws(() => resolveGanConfig({ dataroot: data, expName: "p" }, "debug", { batchSize: 10, model: { pack: 3 } as GanConfig }),
      (e: Error) => e instanceof UserError && /--pack 3 needs a --batch-size that is a multiple of it, got 10$/.test(e.message));
    assert.throws(() => resolveGanConfig({ dataroot: data, expName: "p" }, "debug", { batchSize: 9 }),
      (e: Error) => e instanceof UserError && /--pack 2 \(the default\) needs a --batch-size that is a multiple of it, got 9 \(or give --pack 1\)$/.test(e.message));
    assert.throws(() => resolveGanConfig({ dataroot: data, expName: "p" }, "debug", { condition: "gender", model: { pack: 2 } as GanConfig }),
      (e: Error) => e instanceof UserError && /--pack 2 works with the unconditional image discriminator; got --condition gender/.test(e.message));
  });
});

Deno.test("--discriminator projected with --condition gender is refused with a one-line error (resolveGanConfig and the gan:train command)", async () => {
  const message = /^gan:train: --discriminator projected is unconditional; got --condition gender \(use --condition none, or --discriminator image to condition\)$/;
  assert.throws(
    () => resolveGanConfig({ dataroot: "x", expName: "y" }, "debug", { condition: "gender", model: { discriminator: "projected" } }),
    (e: Error) => e instanceof UserError && message.test(e.message),
  );
  assert.throws(() => resolveGanConfig({ dataroot: "x", expName: "y" }, undefined, { model: { discriminator: "patch" as GanConfig["discriminator"] } }), /expected --discriminator to be one of image, projected, got 'patch'/);
  const cli = join(import.meta.dirname!, "..", "..", "lib", "cli", "gan_train.ts");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "--dataroot", "/nonexistent", "--exp-name", "x", "--condition", "gender", "--discriminator", "projected"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  // stderr: the engine's one-line notice, then the error alone (no stack trace).
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) => !l.startsWith("[engine]"));
  assert.equal(out.code, 2);
  assert.equal(err.length, 1, err.join("\n"));
  assert.match(err[0].replace(/^error: /, ""), message);
});

Deno.test("gan:compare puts two runs (image and projected discriminator) on one FDD-by-minutes chart, reads each run's FDD at the marks from its snapshots (none past where a run stopped), with each run's last diversity figures, and names a run without fdd.csv", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 40, seed: 5 });
    const run = (name: string, discriminator: GanConfig["discriminator"]) =>
      ganTrainRun(resolveGanConfig({ dataroot: data, expName: name }, "debug", { checkpointsDir: join(dir, "ck"), kimg: 0.032, snapshotKimg: 0.016, metricImages: 16, quiet: true, model: { discriminator } }));
    const a = await run("img", "image"), b = await run("proj", "projected");
    const out = join(dir, "cmp");
    // Both runs trained for seconds: at a mark of 0.05 minutes (within the slack of a budget stop) each reads its last
    // snapshot's FDD; at 60 minutes, which neither reached, none.
    const r = await compareGanRuns({ checkpointsDir: join(dir, "ck"), expNames: ["img", "proj"], out, marks: [0.05, 60] });
    assert.equal(r.points.length, 4);
    assert.deepEqual(r.table.map((t) => [t.run, t.discriminator]), [["img", "image"], ["proj", "projected"]]);
    assert.equal(r.table[0]["fdd_at_0.05_min"], a.state.snapshots.at(-1)!.fdd);
    assert.equal(r.table[1]["fdd_at_0.05_min"], b.state.snapshots.at(-1)!.fdd);
    assert.deepEqual(r.table.map((t) => t.fdd_at_60_min), [null, null]);
    // The diversity columns come from each run's last snapshot (CSV round trip: within float printing).
    assert.ok(Math.abs((r.table[0].nn_ratio as number) - a.state.snapshots.at(-1)!.nn_ratio!) < 1e-9);
    assert.equal(r.table[1].grid_duplicates, b.state.snapshots.at(-1)!.grid_duplicates);
    assert.ok(Math.abs(r.floor! - (a.state.snapshots[0].fdd_floor! + b.state.snapshots[0].fdd_floor!) / 2) < 1e-9);
    for (const f of ["fdd_by_minutes.png", "fdd_by_minutes.csv", "fdd_at_minutes.csv"]) assert.ok((await Deno.stat(join(out, f))).isFile, f);
    await assert.rejects(() => compareGanRuns({ checkpointsDir: join(dir, "ck"), expNames: ["img", "nope"], out }), /nope.*fdd\.csv not found/);
  });
});
