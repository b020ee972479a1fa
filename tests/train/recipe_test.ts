import "../_cache_env.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { makeSplits } from "../../lib/data/split.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../../lib/data/schema.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { predictHeads } from "../../lib/models/inference.ts";
import { classificationTask } from "../../lib/train/tasks.ts";
import { maskedSoftmaxCrossEntropy } from "../../lib/train/losses.ts";
import { BACKBONE_OPTIMIZER, Trainer, type TrainerOptions } from "../../lib/train/trainer.ts";
import { recipeFor, resolveTrainConfig } from "../../lib/train/run.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";

await initEngine({ verbose: false });
const TINY = { widths: [8, 16, 16, 32], blocksPerStage: 0, dropout: 0 };

async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "tp_recipe_" });
  await generateSynthetic({ out: join(dir, "data"), count: 60, seed: 3 });
  const ds = await openDataset({ dataroot: join(dir, "data"), quiet: true });
  const splits = makeSplits(ds.attrs, "gender", ds.goodRows, { seed: 1 });
  return { dir, ds, splits };
}

function options(runDir: string, over: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    runDir, epochs: 1, batchSize: 8, lr: 1e-2, warmupEpochs: 0, minLrFraction: 0.1, patience: 5, seed: 1,
    norm: REFERENCE_NORMALIZATION, sampling: "shuffle", stepsPerEpoch: 2, evalBatchSize: 16, resume: false,
    modelConfig: { model: "compact_cnn" }, quiet: true, ...over,
  };
}

/** Trainable weights of the head layer ("gender") and of everything else, copied (batch-norm statistics are not trainable and move in any training step). */
function snapshot(model: { layers: { name: string; trainableWeights: { read(): tf.Tensor }[] }[] }) {
  const head: Float32Array[] = [], backbone: Float32Array[] = [];
  for (const l of model.layers) for (const w of l.trainableWeights) (l.name === "gender" ? head : backbone).push(w.read().dataSync().slice() as Float32Array);
  assert.ok(head.length > 0 && backbone.length > 0);
  return { head, backbone };
}

const same = (a: Float32Array[], b: Float32Array[]) => a.every((w, i) => w.every((v, j) => v === b[i][j]));

Deno.test("backboneLrMult 0 keeps every backbone weight byte-identical while the head learns", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender"], TINY);
    const before = snapshot(model);
    const trainer = new Trainer(model, classificationTask("gender", ds.attrs, splits.train), ds.cache.pixels, options(join(dir, "run"), { backboneLrMult: 0 }));
    await trainer.fit(splits.train, splits.val);
    const after = snapshot(model);
    assert.ok(same(before.backbone, after.backbone), "backbone unchanged");
    assert.ok(!same(before.head, after.head), "head changed");
    trainer.dispose();
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("freezeEpochs 1 holds the backbone in epoch 1, trains it in epoch 2, and --resume restores the backbone's own optimizer", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const task = classificationTask("gender", ds.attrs, splits.train);
    const a = await createClassifier("compact_cnn", ["gender"], TINY);
    const before = snapshot(a.model);
    const t1 = new Trainer(a.model, task, ds.cache.pixels, options(join(dir, "run"), { epochs: 1, freezeEpochs: 1, backboneLrMult: 0.5 }));
    await t1.fit(splits.train, splits.val);
    const afterOne = snapshot(a.model);
    assert.ok(same(before.backbone, afterOne.backbone), "epoch 1: backbone unchanged");
    assert.ok(!same(before.head, afterOne.head), "epoch 1: head changed");
    await Deno.stat(join(dir, "run", "models", "last", `${BACKBONE_OPTIMIZER}.json`));
    t1.dispose();
    a.model.dispose();
    const b = await createClassifier("compact_cnn", ["gender"], { ...TINY, seed: 7 });
    const t2 = new Trainer(b.model, task, ds.cache.pixels, options(join(dir, "run"), { epochs: 2, freezeEpochs: 1, backboneLrMult: 0.5, resume: true }));
    const r = await t2.fit(splits.train, splits.val);
    assert.equal(r.resumedFrom, 1);
    assert.ok(!same(afterOne.backbone, snapshot(b.model).backbone), "epoch 2: backbone trained");
    // The heads' Adam took 2 steps per epoch over both epochs; the backbone's only in epoch 2.
    assert.equal((await t2.optimizer.getWeights())[0].tensor.dataSync()[0], 4);
    assert.equal((await t2.backboneOptimizer!.getWeights())[0].tensor.dataSync()[0], 2);
    t2.dispose();
    b.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a training epoch with two optimizers leaves tf.memory().numTensors exactly unchanged after a burn-in epoch", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender"], TINY);
    const trainer = new Trainer(model, classificationTask("gender", ds.attrs, splits.train), ds.cache.pixels, options(join(dir, "run"), { backboneLrMult: 0.1, labelSmoothing: 0.1, tta: "flip" }));
    await trainer.fit(splits.train, splits.val); // burn-in: both optimizers create their slots
    const n1 = tf.memory().numTensors;
    await trainer.fit(splits.train, splits.val);
    assert.equal(tf.memory().numTensors, n1);
    trainer.dispose();
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("label smoothing ε gives the cross-entropy against (1 − ε)·onehot + ε/k", () => {
  const logits = tf.tensor2d([[2, 0.5, -1], [0, 1, 3]]), labels = tf.tensor1d([0, 2], "int32");
  const eps = 0.2, k = 3;
  const got = maskedSoftmaxCrossEntropy(logits, labels, undefined, eps).dataSync()[0];
  const logp = tf.logSoftmax(logits).arraySync() as number[][];
  const want = [0, 1].map((i) => -logp[i].reduce((s, lp, c) => s + lp * ((c === [0, 2][i] ? 1 - eps : 0) + eps / k), 0)).reduce((a, b) => a + b) / 2;
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  assert.throws(() => maskedSoftmaxCrossEntropy(logits, labels, undefined, 1), /label smoothing must be in \[0, 1\), got 1/);
  tf.dispose([logits, labels]);
});

Deno.test("tta 'flip' gives the mean of the probabilities of each portrait and of its mirror image", async () => {
  const { dir, ds } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender", "hair_color"], TINY);
    const rows = [0, 1, 2, 3, 4];
    // The mirror images, made by hand, as rows 0..4 of a second buffer.
    const mirrored = new Uint8Array(rows.length * IMAGE_BYTES);
    rows.forEach((r, i) => {
      for (let y = 0; y < IMAGE_HEIGHT; y++) {
        for (let x = 0; x < IMAGE_WIDTH; x++) {
          for (let c = 0; c < 3; c++) mirrored[i * IMAGE_BYTES + (y * IMAGE_WIDTH + x) * 3 + c] = ds.cache.pixels[r * IMAGE_BYTES + (y * IMAGE_WIDTH + (IMAGE_WIDTH - 1 - x)) * 3 + c];
        }
      }
    });
    const opts = { norm: REFERENCE_NORMALIZATION };
    const plain = await predictHeads(model, ds.cache.pixels, rows, opts);
    const mirror = await predictHeads(model, mirrored, rows.map((_, i) => i), opts);
    const tta = await predictHeads(model, ds.cache.pixels, rows, { ...opts, tta: "flip" });
    for (const h of ["gender", "hair_color"]) {
      tta[h].forEach((p, i) => assert.ok(Math.abs(p - (plain[h][i] + mirror[h][i]) / 2) < 1e-6, `${h}[${i}]`));
    }
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveTrainConfig: without --model a task gets its recipe's model and settings (decision biases fitted for hair colour and multitask only, the face-api gender ensemble for gender and multitask, joint decoding of baldness for multitask, geometric augmentation for hair colour and multitask); preset and flags override it", () => {
  const base = { dataroot: "d", expName: "e" };
  const g = resolveTrainConfig(base, undefined, { task: "gender" });
  assert.equal(g.model, "face_resnet");
  assert.deepEqual({ lr: g.lr, mult: g.backboneLrMult, ls: g.labelSmoothing, tta: g.tta }, {
    lr: recipeFor("gender", "face_resnet").lr,
    mult: recipeFor("gender", "face_resnet").backboneLrMult,
    ls: recipeFor("gender", "face_resnet").labelSmoothing,
    tta: recipeFor("gender", "face_resnet").tta,
  });
  assert.equal(resolveTrainConfig(base, undefined, { task: "gender" }).modelOverrides.crop, undefined, "gender: the model's default, aligned");
  assert.equal(resolveTrainConfig(base, undefined, { task: "haircolor" }).modelOverrides.crop, "both");
  assert.deepEqual(["gender", "haircolor", "multitask"].map((task) => resolveTrainConfig(base, undefined, { task: task as "gender" }).decisionBias), ["none", "fit", "fit"]);
  assert.equal(resolveTrainConfig(base, undefined, { task: "haircolor", decisionBias: "none" }).decisionBias, "none", "the flag overrides the recipe");
  assert.deepEqual(["gender", "haircolor", "multitask"].map((task) => resolveTrainConfig(base, undefined, { task: task as "gender" }).ensemble), ["faceapi", "none", "faceapi"]);
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "haircolor", ensemble: "faceapi" }), /--ensemble faceapi averages the gender head; task haircolor has none/);
  assert.deepEqual(["gender", "haircolor", "multitask"].map((task) => resolveTrainConfig(base, undefined, { task: task as "gender" }).joint), ["none", "none", "bald"]);
  assert.equal(resolveTrainConfig(base, undefined, { task: "multitask" }).sampling, "shuffle", "the effective config records multitask's plain sampling");
  assert.deepEqual(["gender", "haircolor", "multitask"].map((task) => resolveTrainConfig(base, undefined, { task: task as "gender" }).augment), ["full", "geometric", "geometric"]);
  assert.equal(resolveTrainConfig(base, undefined, { task: "multitask", augment: "none" }).augment, "none", "the flag overrides the recipe");
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "multitask", sampling: "weighted" }), /multitask samples plainly/);
  const flagged = resolveTrainConfig(base, "debug", { task: "haircolor", backboneLrMult: 0.5, modelOverrides: { trainableFrom: "conv256_1" } });
  assert.deepEqual([flagged.backboneLrMult, flagged.epochs, flagged.stepsPerEpoch], [0.5, 3, 12]);
  assert.deepEqual(flagged.modelOverrides, { crop: "both", trainableFrom: "conv256_1" }, "flag overrides merge with the recipe's");
  const cnn = resolveTrainConfig(base, undefined, { task: "gender", model: "compact_cnn" });
  assert.deepEqual([cnn.model, cnn.backboneLrMult, cnn.tta], ["compact_cnn", 1, "none"]);
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "gender", model: "vgg" }), /unknown model 'vgg'/);
  // The schema's rules check configs from code too, with the CLI's messages.
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "gender", labelSmoothing: 1 }), /train: expected --label-smoothing to be a non-negative number below 1, got '1'/);
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "gender", epochs: 0 }), /train: expected --epochs to be a positive integer, got '0'/);
  assert.throws(() => resolveTrainConfig(base, undefined, { task: "gender", tta: "rot" as "flip" }), /train: expected --tta to be one of none, flip, got 'rot'/);
});

Deno.test("checkClasses() refuses a training split with one class in the task's main head and only warns for another head", async () => {
  const { checkClasses } = await import("../../lib/train/_run_data.ts");
  const labels = { gender: Int8Array.from([0, 0, 0, 0]), hair_color: Int8Array.from([0, 1, -1, 2]), hair_type: Int8Array.from([-1, -1, -1, -1]) };
  const train = Int32Array.from([0, 1, 2, 3]);
  assert.throws(() => checkClasses(labels, "gender", train), /the gender training split has only 'female' for gender \(4 rows\); a classifier needs at least two classes/);
  checkClasses(labels, "haircolor", train);
  labels.gender[1] = 1;
  checkClasses(labels, "multitask", train); // hair_type has no labelled row: a warning, not an error
});

Deno.test("comparisonConfig(): short presets fine-tune only the ResNet's last blocks, full is the recipe, and the descriptor baseline never takes the preset", async () => {
  const { comparisonConfig } = await import("../../lib/train/compare.ts");
  const o = { dataroot: "d", task: "haircolor" as const, checkpointsDir: "c", expPrefix: "nb" };
  const short = comparisonConfig({ ...o, preset: "debug" }, "face_resnet");
  assert.equal(short.expName, "nb_haircolor_face_resnet");
  assert.deepEqual(short.modelOverrides, { crop: "both", trainableFrom: "conv256_down" });
  assert.equal(short.stepsPerEpoch, 12);
  const full = comparisonConfig({ ...o, preset: "full" }, "face_resnet");
  assert.deepEqual(full.modelOverrides, { crop: "both" });
  assert.equal(full.epochs, 12);
  const desc = comparisonConfig({ ...o, preset: "debug" }, "face_descriptors");
  assert.equal(desc.stepsPerEpoch, undefined);
});
