import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier, disposeModel } from "../../lib/models/mod.ts";
import { foldBatchNorms } from "../../lib/models/fold.ts";
import { predictHeads } from "../../lib/models/inference.ts";
import { makeBatch, REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { IMAGE_BYTES } from "../../lib/data/schema.ts";

await initEngine({ verbose: false });

/** Gives every batch norm moving statistics and an affine part far from the identity (a fresh one is almost a no-op). */
function randomiseBatchNorms(model: tfl.LayersModel, seed: number): void {
  for (const layer of model.layers.filter((l) => l.getClassName() === "BatchNormalization")) {
    const c = layer.weights[0].shape[0]!;
    layer.setWeights(tf.tidy(() => [
      tf.randomUniform([c], 0.5, 1.5, "float32", seed++), // gamma
      tf.randomUniform([c], -0.5, 0.5, "float32", seed++), // beta
      tf.randomUniform([c], -0.3, 0.3, "float32", seed++), // moving mean
      tf.randomUniform([c], 0.5, 2, "float32", seed++), // moving variance
    ]));
  }
}

Deno.test("foldBatchNorms on compact_cnn: no BatchNormalization or lone ReLU layer is left, each conv gains a bias (and relu where one followed), the logits match the unfolded model's within 1e-4, and disposing the copy frees every tensor it made", async () => {
  const { model } = await createClassifier("compact_cnn", ["gender", "hair_color"]);
  randomiseBatchNorms(model, 11);
  const x = tf.randomNormal([4, 108, 84, 3], 0, 1, "float32", 5);
  const foldAndCompare = async () => {
    const folded = await foldBatchNorms(model);
    const [a, b] = [model.predict(x) as tf.Tensor[], folded.model.predict(x) as tf.Tensor[]];
    const diffs = a.map((t, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(t, b[i]))).dataSync()[0]));
    tf.dispose([...a, ...b]);
    return { folded, diffs };
  };
  disposeModel((await foldAndCompare()).folded.model); // burn-in: tfjs-layers and the engine cache constants on a first call
  const before = tf.memory().numTensors;
  const { folded, diffs } = await foldAndCompare();
  assert.ok(folded.copy);
  const bns = model.layers.filter((l) => l.getClassName() === "BatchNormalization").length;
  assert.equal(folded.folds.size, bns, "every conv → batch norm chain folds in compact_cnn");
  assert.equal(folded.model.layers.filter((l) => l.getClassName() === "BatchNormalization").length, 0);
  // The ReLUs left are those after a residual Add; every conv → bn → relu became one conv with relu.
  const relus = folded.model.layers.filter((l) => l.getClassName() === "ReLU").map((l) => l.name);
  assert.ok(relus.length > 0 && relus.every((n) => n.endsWith("_out")), `ReLU layers left: ${relus}`);
  assert.equal(folded.model.getLayer("stem_conv").getConfig().activation, "relu");
  assert.equal(folded.model.getLayer("stem_conv").getConfig().useBias, true);
  assert.equal(folded.model.getLayer("stage1_block1b_conv").getConfig().activation, "linear", "conv → bn → add keeps no activation");
  diffs.forEach((d, i) => assert.ok(d < 1e-4, `output ${i}: max difference ${d}`));
  disposeModel(folded.model);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  disposeModel(model);
});

Deno.test("foldBatchNorms returns a model without a conv → batch norm chain (face_resnet) as itself, and predictHeads gives the unfolded compact_cnn's softmax within 1e-5, leaving no tensor behind", async () => {
  const { model: resnet } = await createClassifier("face_resnet", ["gender"], { pretrained: false });
  const same = await foldBatchNorms(resnet);
  assert.equal(same.copy, false);
  assert.equal(same.model, resnet);
  disposeModel(resnet);

  const { model } = await createClassifier("compact_cnn", ["gender"]);
  randomiseBatchNorms(model, 21);
  const n = 6;
  const pixels = new Uint8Array(n * IMAGE_BYTES).map((_, i) => (i * 7919) % 256);
  const rows = [0, 1, 2, 3, 4, 5];
  await predictHeads(model, pixels, rows, { norm: REFERENCE_NORMALIZATION, batchSize: 4 }); // burn-in
  const before = tf.memory().numTensors;
  const probs = (await predictHeads(model, pixels, rows, { norm: REFERENCE_NORMALIZATION, batchSize: 4 })).gender;
  assert.equal(tf.memory().numTensors, before);
  const x = makeBatch(pixels, rows, { norm: REFERENCE_NORMALIZATION });
  const want = tf.tidy(() => tf.softmax(model.predict(x) as tf.Tensor).dataSync());
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(want[i] - probs[i]) < 1e-5, `probability ${i}: ${probs[i]} vs ${want[i]}`);
  x.dispose();
  disposeModel(model);
});
