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

Deno.test("foldBatchNorms on compact_cnn: no BatchNormalization, BatchNormReLU or ReLU layer is left, each conv gains a bias (and relu where one followed), each residual end is one ConvAddReLU, the logits match the unfolded model's within 1e-4, and disposing the copy frees every tensor it made", async () => {
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
  const isBn = (l: tfl.layers.Layer) => ["BatchNormalization", "TpBatchNormReLU"].includes(l.getClassName());
  const bns = model.layers.filter(isBn).length;
  assert.ok(model.layers.some((l) => l.getClassName() === "TpBatchNormReLU"), "compact_cnn builds BatchNormReLU layers");
  assert.equal(folded.folds.size, bns, "every conv → batch norm chain folds in compact_cnn");
  assert.equal(folded.model.layers.filter(isBn).length, 0);
  // Every conv → bn → relu became one conv with relu, every residual end (conv → bn → add → relu) one ConvAddReLU.
  const relus = folded.model.layers.filter((l) => l.getClassName() === "ReLU").map((l) => l.name);
  assert.deepEqual(relus, [], `ReLU layers left: ${relus}`);
  const adds = model.layers.filter((l) => l.getClassName() === "Add").length;
  assert.ok(adds > 0 && folded.residuals.size === adds, `${folded.residuals.size} residual ends fused of ${adds} adds`);
  assert.equal(folded.model.layers.filter((l) => l.getClassName() === "ConvAddReLU").length, adds);
  assert.equal(folded.model.getLayer("stem_conv").getConfig().activation, "relu");
  assert.equal(folded.model.getLayer("stem_conv").getConfig().useBias, true);
  assert.equal(folded.model.getLayer("stage1_block1b_conv").getConfig().activation, "linear", "conv → bn → add keeps no activation");
  diffs.forEach((d, i) => assert.ok(d < 1e-4, `output ${i}: max difference ${d}`));
  disposeModel(folded.model);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
  disposeModel(model);
});

Deno.test("face_resnet ends each block with one ConvAddReLU (an Add and ReLU layer only behind zero-padding) and foldBatchNorms returns it as itself; a net with conv → add → relu residual ends (face_resnet as built before) folds them into ConvAddReLU layers reading the shortcut, logits within 1e-4 on the engine and on cpu", async () => {
  const { model: resnet } = await createClassifier("face_resnet", ["gender"], { pretrained: false });
  const kinds = resnet.layers.map((l) => l.getClassName());
  const count = (k: string) => kinds.filter((c) => c === k).length;
  assert.equal(count("ConvAddReLU"), 12); // 10 residual blocks, and 2 of the 4 down blocks (the other 2 pad their conv path)
  assert.equal(count("Add"), count("ZeroPadding2D"));
  const same = await foldBatchNorms(resnet);
  assert.equal(same.copy, false);
  disposeModel(resnet);

  // Two residual blocks the old way: conv(relu) → conv(linear) → add(shortcut) → relu; the second conv's shortcut is
  // the first block's output.
  const input = tfl.input({ shape: [10, 8, 4] });
  let h: tfl.SymbolicTensor = input;
  for (let b = 0; b < 2; b++) {
    const y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", biasInitializer: "randomNormal", name: `b${b}_conv1` }).apply(h) as tfl.SymbolicTensor;
    const z = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", biasInitializer: "randomNormal", name: `b${b}_conv2` }).apply(y) as tfl.SymbolicTensor;
    h = tfl.layers.reLU({ name: `b${b}_relu` }).apply(tfl.layers.add({ name: `b${b}_add` }).apply([z, h]) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
  }
  const model = tfl.model({ inputs: input, outputs: tfl.layers.flatten().apply(h) as tfl.SymbolicTensor });
  const x = tf.randomUniform([2, 10, 8, 4], -1, 1, "float32", 6);
  const backend = tf.getBackend();
  for (const b of [backend, "cpu"]) {
    await tf.setBackend(b);
    const folded = await foldBatchNorms(model);
    assert.equal(folded.copy, true);
    assert.deepEqual([...folded.residuals.keys()], ["b0_conv2", "b1_conv2"]);
    assert.deepEqual(folded.model.layers.map((l) => l.getClassName()).filter((k) => k === "Add" || k === "ReLU"), []);
    const fused = folded.model.getLayer("b1_conv2") as unknown as { inboundNodes: { inboundLayers: { name: string }[] }[] };
    assert.deepEqual(fused.inboundNodes[0].inboundLayers.map((l) => l.name), ["b1_conv1", "b0_conv2"]);
    const [a, c] = tf.tidy(() => [model.predict(x) as tf.Tensor, folded.model.predict(x) as tf.Tensor]);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]);
    assert.ok(diff < 1e-4, `${b}: folded outputs differ by ${diff}`);
    tf.dispose([a, c]);
    disposeModel(folded.model);
  }
  await tf.setBackend(backend);
  x.dispose();
  model.dispose();
});

Deno.test("foldBatchNorms returns a model with nothing to fold (a dense net) as itself, and predictHeads gives the unfolded compact_cnn's softmax within 1e-5, leaving no tensor behind", async () => {
  const input = tfl.input({ shape: [4] });
  const dense = tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2 }).apply(input) as tfl.SymbolicTensor });
  const same = await foldBatchNorms(dense);
  assert.equal(same.copy, false);
  assert.equal(same.model, dense);
  dense.dispose();

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
