import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { type FeatureExtractor, loadFeatureCache } from "../../lib/data/feature_cache.ts";
import { HEADS, IMAGE_BYTES, imageFileName } from "../../lib/data/schema.ts";
import { readSplits } from "../../lib/data/split.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { classificationReport } from "../../lib/eval/mod.ts";
import { loadPredictor, loadRunModel } from "../../lib/eval/evaluate.ts";
import { createFaceResnetBackbone, DEFAULT_FACE_RESNET_CONFIG, type FaceResnetConfig } from "../../lib/models/face_resnet.ts";
import {
  buildDescriptorNet,
  descriptorExtractor,
  descriptorFeatures,
  headModelFrom,
  headProbabilities,
  type HeadTrainOptions,
  trainDescriptorHeads,
} from "../../lib/train/descriptor_head.ts";
import { disposeModel } from "../../lib/models/mod.ts";
import { inverseFrequencyWeights } from "../../lib/train/losses.ts";
import { resolveTrainConfig, trainRun } from "../../lib/train/run.ts";
import type { TrainTask } from "../../lib/train/trainer.ts";
import { Rng } from "../../lib/util/rng.ts";
import { makeDataset, noisePng, withTempDir } from "../_fixtures.ts";

await initEngine({ verbose: false });

/** A cheap extractor (per-channel mean of each portrait) that counts the rows it computes. */
function meanExtractor(calls: { rows: number }, id = "0abc"): FeatureExtractor {
  return {
    name: "mean",
    id,
    dim: 3,
    compute(pixels, rows) {
      calls.rows += rows.length;
      const out = new Float32Array(rows.length * 3);
      rows.forEach((r, i) => {
        const px = pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES);
        for (let p = 0; p < px.length; p++) out[i * 3 + (p % 3)] += px[p] / (IMAGE_BYTES / 3);
      });
      return Promise.resolve(out);
    },
  };
}

Deno.test("loadFeatureCache() computes every good row once; a second call loads the file with no forward pass; a truncated file is computed again", async () => {
  await withTempDir(async (dir) => {
    await makeDataset(dir, 11);
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const calls = { rows: 0 };
    const a = await loadFeatureCache(ds.cache, meanExtractor(calls), { batchSize: 4, quiet: true });
    assert.equal(a.built, true);
    assert.equal(calls.rows, ds.goodRows.length);
    assert.equal(a.features.length, ds.rows * 3);
    const b = await loadFeatureCache(ds.cache, meanExtractor(calls), { quiet: true });
    assert.equal(b.built, false);
    assert.equal(calls.rows, ds.goodRows.length, "no rows computed on the second call");
    assert.deepEqual(b.features, a.features);
    assert.equal((await Deno.stat(b.binPath)).size, ds.rows * 3 * 4);
    await Deno.truncate(b.binPath, 8);
    const c = await loadFeatureCache(ds.cache, meanExtractor(calls), { quiet: true });
    assert.equal(c.built, true);
    assert.equal(calls.rows, 2 * ds.goodRows.length);
    assert.deepEqual(c.features, a.features);
  });
});

Deno.test("loadFeatureCache() computes again when the pixel cache key or the extractor id changes, and deletes the superseded file", async () => {
  await withTempDir(async (dir) => {
    await makeDataset(dir, 8);
    const calls = { rows: 0 };
    const ds1 = await openDataset({ dataroot: dir, quiet: true });
    const a = await loadFeatureCache(ds1.cache, meanExtractor(calls), { quiet: true });
    // Replace one image: new pixel cache key.
    await Deno.writeFile(join(dir, imageFileName(1)), await noisePng(4242));
    const ds2 = await openDataset({ dataroot: dir, quiet: true });
    assert.notEqual(ds2.cache.key, ds1.cache.key);
    const b = await loadFeatureCache(ds2.cache, meanExtractor(calls), { quiet: true });
    assert.equal(b.built, true);
    assert.equal(calls.rows, ds1.goodRows.length + ds2.goodRows.length);
    assert.notDeepEqual(b.features.subarray(0, 3), a.features.subarray(0, 3), "row 0 (the replaced image) has new features");
    await assert.rejects(Deno.stat(a.binPath), Deno.errors.NotFound);
    // Same pixels, another extractor id (other weights): computed again, the old id's file deleted.
    const c = await loadFeatureCache(ds2.cache, meanExtractor(calls, "0abd"), { quiet: true });
    assert.equal(c.built, true);
    await assert.rejects(Deno.stat(b.binPath), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(b.binPath.replace(/\.bin$/, ".json")), Deno.errors.NotFound);
  });
});

/** Separable synthetic descriptors: gender and hair colour centroids on their own dimensions plus noise; 20% of hair labels missing. */
function separableSet(n: number, dim: number, seed: number): { features: Float32Array; task: TrainTask } {
  const rng = new Rng(seed);
  const centroids = (k: number) => Array.from({ length: k }, () => Float32Array.from({ length: dim }, () => rng.uniform(-2, 2)));
  const g = centroids(2), c = centroids(5);
  const gender = new Int8Array(n), hair = new Int8Array(n);
  const features = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    gender[i] = rng.int(0, 1);
    const hc = rng.int(0, 4);
    hair[i] = rng.next() < 0.2 ? -1 : hc;
    for (let d = 0; d < dim; d++) features[i * dim + d] = 5 + g[gender[i]][d] + c[hc][d] + 0.3 * (rng.next() - 0.5);
  }
  const train = Array.from({ length: Math.floor(n * 0.7) }, (_, i) => i);
  return {
    features,
    task: {
      name: "multitask",
      heads: [
        { name: "gender", labels: HEADS.gender.labels, lossWeight: 1, classWeights: inverseFrequencyWeights(train.map((r) => gender[r]), 2) },
        { name: "hair_color", labels: HEADS.hair_color.labels, lossWeight: 1, classWeights: inverseFrequencyWeights(train.map((r) => hair[r]), 5) },
      ],
      labels: { gender, hair_color: hair },
    },
  };
}

const HEAD_OPTS: HeadTrainOptions = {
  epochs: 40, batchSize: 64, lr: 1e-2, warmupEpochs: 0, minLrFraction: 0.02, patience: 40, seed: 3, hidden: 0, dropout: 0, weightDecay: 1e-4,
};

Deno.test("trainDescriptorHeads() reaches ≥ 95% validation accuracy per head on separable synthetic descriptors, linear and hidden-layer, and the returned raw-descriptor head reproduces the best epoch's validation macro-F1", async () => {
  const n = 600, dim = 16;
  const { features, task } = separableSet(n, dim, 11);
  const train = Int32Array.from({ length: 420 }, (_, i) => i), val = Int32Array.from({ length: n - 420 }, (_, i) => 420 + i);
  for (const hidden of [0, 16]) {
    const fit = await trainDescriptorHeads(features, dim, task, train, val, { ...HEAD_OPTS, hidden });
    try {
      const best = fit.history[fit.bestEpoch - 1];
      assert.ok(best.val_gender_accuracy >= 0.95, `hidden ${hidden}: gender ${best.val_gender_accuracy}`);
      assert.ok(best.val_hair_color_accuracy >= 0.95, `hidden ${hidden}: hair colour ${best.val_hair_color_accuracy}`);
      assert.deepEqual(fit.model.outputNames, ["gender", "hair_color"]);
      // Standardisation is folded into the saved head: raw descriptors in, the same predictions out.
      const probs = await headProbabilities(fit.model, features, dim, val);
      const f1s = task.heads.map((h) => classificationReport(Int32Array.from(val, (r) => task.labels[h.name][r]), probs[h.name], h.labels).macro.f1);
      assert.ok(Math.abs((f1s[0] + f1s[1]) / 2 - fit.bestScore) < 1e-6, `recomputed ${f1s} vs best ${fit.bestScore}`);
    } finally {
      fit.model.dispose();
    }
  }
});

Deno.test("trainDescriptorHeads() and the two-view descriptor net leave tf.memory().numTensors unchanged after a burn-in, and disposing the net frees all its tensors", async () => {
  const { features, task } = separableSet(200, 8, 5);
  const train = Int32Array.from({ length: 140 }, (_, i) => i), val = Int32Array.from({ length: 60 }, (_, i) => 140 + i);
  const opts = { ...HEAD_OPTS, epochs: 3, hidden: 8, dropout: 0.2 };
  (await trainDescriptorHeads(features, 8, task, train, val, opts)).model.dispose();
  const n0 = tf.memory().numTensors;
  const fit = await trainDescriptorHeads(features, 8, task, train, val, opts);
  await headProbabilities(fit.model, features, 8, val);
  fit.model.dispose();
  assert.equal(tf.memory().numTensors, n0, "head training");

  const net = await buildDescriptorNet({ ...DEFAULT_FACE_RESNET_CONFIG, crop: "both" });
  try {
    const pixels = new Uint8Array(3 * IMAGE_BYTES).map((_, i) => (i * 7) % 251);
    for (const ex of net.extractors) await ex.compute(pixels, Int32Array.from([0, 1, 2]));
    const n1 = tf.memory().numTensors;
    const d = await net.extractors[1].compute(pixels, Int32Array.from([2, 0]));
    assert.equal(d.length, 2 * 128);
    assert.equal(tf.memory().numTensors, n1, "descriptor pass");
  } finally {
    disposeModel(net.model);
  }
  assert.equal(tf.memory().numTensors, n0, "building and disposing the two-view net");
});

Deno.test("the portrait view of a crop 'both' descriptor net gives the descriptors of a one-view portrait net, and shares its cache id", async () => {
  const config: FaceResnetConfig = { ...DEFAULT_FACE_RESNET_CONFIG, crop: "portrait" };
  const one = await createFaceResnetBackbone(config);
  const two = await buildDescriptorNet({ ...DEFAULT_FACE_RESNET_CONFIG, crop: "both" });
  try {
    const single = await descriptorExtractor(one, config);
    assert.equal(two.extractors[1].id, single.id);
    assert.notEqual(two.extractors[0].id, single.id);
    const pixels = new Uint8Array(2 * IMAGE_BYTES).map((_, i) => (i * 13) % 241);
    const a = await single.compute(pixels, Int32Array.from([0, 1])), b = await two.extractors[1].compute(pixels, Int32Array.from([0, 1]));
    let diff = 0;
    a.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - b[i]))));
    assert.ok(diff < 1e-5, `max |Δ| ${diff}`);
  } finally {
    one.dispose();
    disposeModel(two.model);
  }
});

Deno.test("a face_descriptors run from trainRun is a normal run folder, and loadPredictor gives the probabilities of its head on the cached descriptors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_desc_" });
  try {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 48, seed: 9, badFraction: 0, duplicateFraction: 0 });
    // An empty bad-image list of its own, so that no list in reports/ is picked up.
    await Deno.writeTextFile(join(dir, "no_bad_images.csv"), "file,image_index,reason,score,detail\n");
    const cfg = resolveTrainConfig({ dataroot: data, expName: "desc" }, "debug", {
      task: "multitask",
      model: "face_descriptors",
      checkpointsDir: join(dir, "ckpt"),
      splitDir: join(dir, "splits"),
      badImages: join(dir, "no_bad_images.csv"),
    });
    const r = await trainRun(cfg, { quiet: true });
    const runDir = join(dir, "ckpt", "desc");
    for (const f of ["config.json", "metrics.csv", "run.log", "learning_curve.png", "models/best/model.json", "models/best/config.json", "models/last/model.json"]) {
      await Deno.stat(join(runDir, f));
    }
    const saved = JSON.parse(await Deno.readTextFile(join(runDir, "config.json")));
    for (const k of ["model", "modelConfig", "task", "heads", "input", "normalization", "dataset", "params"]) assert.ok(k in saved, `config.json has '${k}'`);
    assert.equal(saved.model, "face_descriptors");
    const csv = (await Deno.readTextFile(join(runDir, "metrics.csv"))).trim().split("\n");
    assert.equal(csv.length, 1 + r.history.length);
    assert.ok(csv[0].startsWith("epoch,lr,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1"));

    const ds = await openDataset({ dataroot: data, quiet: true });
    const rows = (await readSplits(join(dir, "splits"), "multitask", ds.attrs)).test;
    assert.equal(saved.modelConfig.crop, "both");
    // The frozen net rebuilt from config.json has the caches' ids: its descriptors load from the files, no forward pass.
    const net = await buildDescriptorNet(saved.modelConfig as FaceResnetConfig);
    const desc = await descriptorFeatures(ds.cache, net, { quiet: true });
    disposeModel(net.model);
    assert.deepEqual(desc.caches.map((c) => c.built), [false, false]);
    assert.equal(desc.dim, 256);
    const { model, config } = await loadRunModel(runDir, "best");
    const head = await headModelFrom(model, Object.keys(config.heads));
    const fromDescriptors = await headProbabilities(head, desc.features, desc.dim, rows);
    head.dispose();
    disposeModel(model);

    const predictor = await loadPredictor(runDir, "best");
    try {
      await predictor.predict(ds.cache.pixels, rows.subarray(0, 2));
      const n0 = tf.memory().numTensors;
      const fromPixels = await predictor.predict(ds.cache.pixels, rows);
      assert.equal(tf.memory().numTensors, n0, "prediction leaves no tensors");
      for (const h of Object.keys(config.heads)) {
        let diff = 0;
        fromPixels[h].forEach((p, i) => (diff = Math.max(diff, Math.abs(p - fromDescriptors[h][i]))));
        assert.ok(diff < 1e-4, `${h}: max |Δp| ${diff}`);
      }
    } finally {
      predictor.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
