// The project's BatchNormalization and BatchNormReLU (lib/models/fused_bn.ts): training-mode batch norm (and its
// ReLU) as one engine kernel (OnednnBatchNormTrain, its gradient OnednnBatchNormGrad), against tfjs' own graph
// (tf.moments + batchNorm, then relu).
// Run: deno test -A tests/models/fused_bn_test.ts
import "../_cache_env.ts";
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { registerOnednnBackend } from "../../lib/engine/onednn/mod.ts";
import { BatchNormalization, batchNormalization, BatchNormReLU, batchNormReLU, batchNormTrain, fusedBatchNormStats, hasBatchNormTrainKernel } from "../../lib/models/fused_bn.ts";
import { foldBatchNorms } from "../../lib/models/fold.ts";
import { setConvFusion } from "../../lib/models/fused_conv.ts";
import { kernelStats, resetKernelStats } from "../../lib/engine/onednn/_stats.ts";
import { registerCustomLayers } from "../../lib/models/mod.ts";

const onednn = (await registerOnednnBackend()).available;

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** tfjs' training-mode batch norm (what tfjs-layers computes): [y, mean, variance]. */
function reference(x: tf.Tensor, scale: tf.Tensor, offset: tf.Tensor, eps: number, relu: boolean): tf.Tensor[] {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.batchNorm(x, mean, variance, offset, scale, eps);
  return [relu ? tf.relu(y) : y, mean, variance];
}

// [2, 9, 7, 6] runs the JavaScript loops, [8, 30, 30, 40] (288,000 elements) the oneDNN primitives.
for (const shape of [[2, 9, 7, 6], [8, 30, 30, 40]]) {
  for (const relu of [false, true]) {
    Deno.test({
      name: `batchNormTrain on onednn, x ${shape.join("×")}${relu ? " with ReLU" : ""}: output, batch mean and variance, and the gradients of x, scale and offset within 1e-4 of tf.moments + tf.batchNorm`,
      ignore: !onednn,
      fn: async () => {
        await tf.setBackend("onednn");
        const x = tf.add(tf.mul(tf.randomNormal(shape, 0, 1, "float32", 1), 2), 0.5);
        const scale = tf.randomNormal([shape[3]], 1, 0.3, "float32", 2) as tf.Tensor1D;
        const offset = tf.randomNormal([shape[3]], 0, 0.3, "float32", 3) as tf.Tensor1D;
        const r = tf.randomNormal(shape, 0, 1, "float32", 4);
        const ours = batchNormTrain(x, scale, offset, 1e-3, relu), theirs = reference(x, scale, offset, 1e-3, relu);
        ["output", "mean", "variance"].forEach((what, i) => assert.ok(maxDiff(ours[i], theirs[i]) < 1e-4, `${what} differs by ${maxDiff(ours[i], theirs[i])}`));
        const up = (y: tf.Tensor) => tf.sum(tf.mul(y, r));
        const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => up(batchNormTrain(a, b as tf.Tensor1D, c as tf.Tensor1D, 1e-3, relu)[0]))([x, scale, offset]);
        const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => up(reference(a, b, c, 1e-3, relu)[0]))([x, scale, offset]);
        ["x", "scale", "offset"].forEach((what, i) => {
          const tol = 1e-4 * Math.max(1, tf.tidy(() => tf.max(tf.abs(g2[i])).dataSync()[0]));
          assert.ok(maxDiff(g1[i], g2[i]) < tol, `gradient of ${what} differs by ${maxDiff(g1[i], g2[i])}`);
        });
        tf.dispose([x, scale, offset, r, ...ours, ...theirs, ...g1, ...g2]);
      },
    });
  }
}

for (const fusedRelu of [false, true]) {
  const what = fusedRelu ? "BatchNormReLU (against BatchNormalization → ReLU)" : "BatchNormalization";
  Deno.test({
    name: `a model of the project's ${what} on onednn: 2 Adam steps through the one kernel give tfjs-layers' weights and moving statistics (within 1e-5); exact tensor count after a burn-in step`,
    ignore: !onednn,
    fn: async () => {
      await tf.setBackend("onednn");
      const build = (ours: boolean) => {
        const input = tf.input({ shape: [20, 16, 3] });
        let h = tf.layers.conv2d({ filters: 32, kernelSize: 3, padding: "same", useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(input) as tf.SymbolicTensor;
        if (ours) h = (fusedRelu ? batchNormReLU : batchNormalization)({ momentum: 0.9 }).apply(h) as tf.SymbolicTensor;
        else h = tf.layers.reLU().apply(tf.layers.batchNormalization({ momentum: 0.9 }).apply(h)) as tf.SymbolicTensor;
        if (!fusedRelu && ours) h = tf.layers.reLU().apply(h) as tf.SymbolicTensor;
        h = tf.layers.globalAveragePooling2d({}).apply(h) as tf.SymbolicTensor;
        return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }).apply(h) as tf.SymbolicTensor });
      };
      const ours = build(true), theirs = build(false);
      assert.ok(ours.layers[2] instanceof (fusedRelu ? BatchNormReLU : BatchNormalization) && !(theirs.layers[2] instanceof BatchNormalization));
      const x = tf.randomNormal([8, 20, 16, 3], 0, 1, "float32", 8);
      const y = tf.oneHot(tf.tensor1d([0, 1, 1, 0, 1, 0, 0, 1], "int32"), 2);
      const optA = tf.train.adam(1e-2), optB = tf.train.adam(1e-2);
      const step = (m: tf.LayersModel, opt: tf.Optimizer) => tf.tidy(() => void opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar));
      const calls = fusedBatchNormStats.trainingCalls;
      resetKernelStats();
      step(ours, optA);
      step(theirs, optB);
      assert.equal(fusedBatchNormStats.trainingCalls - calls, 1, "the project's layer should have trained through the kernel once");
      assert.ok((kernelStats().hits["OnednnBatchNormTrain"] ?? 0) >= 1, "OnednnBatchNormTrain should have run");
      const before = tf.memory().numTensors;
      step(ours, optA);
      step(theirs, optB);
      assert.equal(tf.memory().numTensors, before, "no tensor may be left behind by a training step");
      ours.getWeights().forEach((w, i) => assert.ok(maxDiff(w, theirs.getWeights()[i]) < 1e-5, `weight ${i} (${w.shape}) differs by ${maxDiff(w, theirs.getWeights()[i])}`));
      // inference (moving statistics) the same too, and the batch norm folds into the convolution with its ReLU
      const pa = ours.predict(x) as tf.Tensor, pb = theirs.predict(x) as tf.Tensor;
      assert.ok(maxDiff(pa, pb) < 1e-5, `inference differs by ${maxDiff(pa, pb)}`);
      const folded = await foldBatchNorms(ours);
      assert.equal(folded.folds.size, 1, "the conv → batch norm chain should fold");
      assert.ok(folded.folds.values().next().value!.relu !== null, "the ReLU should fold into the convolution too");
      const pf = folded.model.predict(x) as tf.Tensor;
      assert.ok(maxDiff(pf, pb) < 1e-4, `the folded copy differs by ${maxDiff(pf, pb)}`);
      folded.model.dispose();
      ours.dispose();
      theirs.dispose();
      tf.dispose([x, y, pa, pb, pf]);
      optA.dispose();
      optB.dispose();
    },
  });
}

Deno.test("the project's BatchNormalization: 'BatchNormalization' layers deserialise as it; training on the cpu backend and with the fusions off is tfjs-layers' own path", async () => {
  registerCustomLayers();
  const m = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3] }), tf.layers.batchNormalization()] });
  const back = await tf.models.modelFromJSON({ modelTopology: m.toJSON(null, false) } as unknown as tf.io.ModelJSON);
  assert.ok(back.layers[1] instanceof BatchNormalization, "a deserialised BatchNormalization should be the project's class");
  await tf.setBackend("cpu");
  assert.equal(hasBatchNormTrainKernel(), false);
  const x = tf.randomNormal([5, 3], 0, 1, "float32", 9);
  const calls = fusedBatchNormStats.trainingCalls;
  tf.tidy(() => back.apply(x, { training: true }) as tf.Tensor);
  if (onednn) {
    await tf.setBackend("onednn");
    const was = setConvFusion(false);
    tf.tidy(() => back.apply(x, { training: true }) as tf.Tensor);
    setConvFusion(was);
  }
  assert.equal(fusedBatchNormStats.trainingCalls, calls, "neither call should have taken the kernel path");
  tf.dispose(x);
  m.dispose();
  back.dispose();
});
