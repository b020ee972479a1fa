// The project's Conv2D (lib/models/fused_conv.ts): conv + bias + ReLU as one kernel in training, against
// tfjs' unfused conv2d → add → relu, on the onednn engine, wasm (with the project's training kernels) and the cpu backend.
// Run: deno test -A tests/models/fused_conv_test.ts
import "../_cache_env.ts";
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { registerOnednnBackend } from "../../lib/engine/onednn/mod.ts";
import { initEngine } from "../../lib/engine/mod.ts";
import { Conv2D, conv2d, conv2dBiasRelu, convAddRelu, ConvAddReLU, fusedConvStats } from "../../lib/models/fused_conv.ts";
import { convActivationLayout, setConvActivationLayout } from "../../lib/engine/onednn/_conv.ts";
import { kernelStats, resetKernelStats } from "../../lib/engine/onednn/_stats.ts";
import { registerCustomLayers } from "../../lib/models/mod.ts";

const onednn = (await registerOnednnBackend()).available;
await initEngine({ backend: "wasm", verbose: false }); // registers wasm and its training kernels
const backends = [...(onednn ? ["onednn"] : []), "wasm", "cpu"];

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

for (const backend of backends) {
  for (const [strides, pad] of [[[1, 1], "same"], [[2, 2], "valid"], [[2, 2], "same"]] as [[number, number], "same" | "valid"][]) {
    Deno.test(`conv2dBiasRelu on ${backend}, stride ${strides[0]} ${pad}: output and the gradients of x, filter and bias within 1e-4 of tfjs' conv2d → add → relu`, async () => {
      await tf.setBackend(backend);
      const x = tf.randomNormal([3, 11, 9, 5], 0, 1, "float32", 1) as tf.Tensor4D;
      const w = tf.randomNormal([3, 3, 5, 7], 0, 0.3, "float32", 2) as tf.Tensor4D;
      const b = tf.randomNormal([7], 0, 0.3, "float32", 3) as tf.Tensor1D;
      const up = (y: tf.Tensor) => tf.sum(tf.mul(y, tf.randomNormal(y.shape, 0, 1, "float32", 4)));
      const fused = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => up(conv2dBiasRelu(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, strides, pad)));
      const plain = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => up(tf.relu(tf.add(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, strides, pad), bb))));
      const gf = fused([x, w, b]), gp = plain([x, w, b]);
      const yf = tf.tidy(() => conv2dBiasRelu(x, w, b, strides, pad)), yp = tf.tidy(() => tf.relu(tf.add(tf.conv2d(x, w, strides, pad), b)));
      assert.deepEqual(yf.shape, yp.shape);
      assert.ok(maxDiff(yf, yp) < 1e-4, `output differs by ${maxDiff(yf, yp)}`);
      ["x", "filter", "bias"].forEach((name, i) => assert.ok(maxDiff(gf[i], gp[i]) < 1e-4, `gradient of ${name} differs by ${maxDiff(gf[i], gp[i])}`));
      tf.dispose([x, w, b, yf, yp, ...gf, ...gp]);
    });
  }

  Deno.test(`a model of the project's Conv2D on ${backend}: 3 Adam steps train through the fused path to the weights of tfjs-layers' Conv2D (within 1e-5); exact tensor count after a burn-in step`, async () => {
    await tf.setBackend(backend);
    const build = (make: (a: Parameters<typeof conv2d>[0]) => tf.layers.Layer) => {
      const input = tf.input({ shape: [12, 10, 3] });
      let h = make({ filters: 8, kernelSize: 3, strides: 2, padding: "same", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }) }).apply(input) as tf.SymbolicTensor;
      h = make({ filters: 4, kernelSize: 3, padding: "valid", activation: "relu", kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }).apply(h) as tf.SymbolicTensor });
    };
    const ours = build(conv2d), theirs = build((a) => tf.layers.conv2d(a));
    assert.ok(ours.layers[1] instanceof Conv2D && !(theirs.layers[1] instanceof Conv2D));
    const x = tf.randomNormal([4, 12, 10, 3], 0, 1, "float32", 8);
    const y = tf.oneHot(tf.tensor1d([0, 1, 1, 0], "int32"), 2);
    const optA = tf.train.adam(1e-2), optB = tf.train.adam(1e-2);
    const step = (m: tf.LayersModel, opt: tf.Optimizer) => tf.tidy(() => void opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar));
    const calls = fusedConvStats.trainingCalls;
    step(ours, optA);
    step(theirs, optB);
    assert.equal(fusedConvStats.trainingCalls - calls, 2, "both conv layers should have taken the fused path once");
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) step(ours, optA), step(theirs, optB);
    assert.equal(tf.memory().numTensors, before, "tensors leaked across training steps");
    const wa = ours.getWeights(), wb = theirs.getWeights();
    wa.forEach((t, i) => assert.ok(maxDiff(t, wb[i]) < 1e-5, `weight ${i} differs by ${maxDiff(t, wb[i])}`));
    ours.dispose();
    theirs.dispose();
    optA.dispose();
    optB.dispose();
    tf.dispose([x, y]);
  });
}

for (const [backend, layout] of [...(onednn ? [["onednn", "nhwc"], ["onednn", "any"]] : []), ["wasm", null], ["cpu", null]] as [string, "nhwc" | "any" | null][]) {
  Deno.test(`convAddRelu on ${backend}${layout ? ` (convolution activations ${layout})` : ""}: relu(conv + bias + residual) within 1e-4 of tfjs' conv2d → add → relu, with and without bias, stride 1 and 2${backend === "onednn" ? "; the engine's kernel ran" : ""}`, async () => {
    await tf.setBackend(backend);
    const was = layout ? convActivationLayout() : null;
    if (layout) setConvActivationLayout(layout);
    try {
      resetKernelStats();
      for (const [strides, pad, h] of [[[1, 1], "same", 9], [[2, 2], "valid", 19]] as [[number, number], "same" | "valid", number][]) {
        const x = tf.randomNormal([3, h, 9, 6], 0, 1, "float32", 11) as tf.Tensor4D;
        const w = tf.randomNormal([3, 3, 6, 8], 0, 0.3, "float32", 12) as tf.Tensor4D;
        const b = tf.randomNormal([8], 0, 0.3, "float32", 13) as tf.Tensor1D;
        const outShape = tf.tidy(() => tf.conv2d(x, w, strides, pad).shape);
        const r = tf.randomNormal(outShape, 0, 1, "float32", 14) as tf.Tensor4D;
        for (const bias of [b, null]) {
          const got = convAddRelu(x, w, bias, r, strides, pad);
          const want = tf.tidy(() => tf.relu(tf.add(bias ? tf.add(tf.conv2d(x, w, strides, pad), bias) : tf.conv2d(x, w, strides, pad), r)));
          assert.ok(maxDiff(got, want) < 1e-4, `stride ${strides[0]}, bias ${bias !== null}: differs by ${maxDiff(got, want)}`);
          tf.dispose([got, want]);
        }
        tf.dispose([x, w, b, r]);
      }
      if (backend === "onednn") assert.ok((kernelStats().hits["OnednnConvAddRelu"] ?? 0) >= 4, `kernel hits ${JSON.stringify(kernelStats().hits)}`);
    } finally {
      if (was) setConvActivationLayout(was);
    }
  });
}

for (const backend of backends) {
  Deno.test(`convAddRelu on ${backend} in training: the gradients of x, filter, bias and residual within 1e-4 of tfjs' conv2d → add → add → relu`, async () => {
    await tf.setBackend(backend);
    const x = tf.randomNormal([2, 9, 7, 5], 0, 1, "float32", 21) as tf.Tensor4D;
    const w = tf.randomNormal([3, 3, 5, 5], 0, 0.3, "float32", 22) as tf.Tensor4D;
    const b = tf.randomNormal([5], 0, 0.3, "float32", 23) as tf.Tensor1D;
    const r = tf.randomNormal([2, 9, 7, 5], 0, 1, "float32", 24) as tf.Tensor4D;
    const up = (y: tf.Tensor) => tf.sum(tf.mul(y, tf.randomNormal(y.shape, 0, 1, "float32", 25)));
    const fused = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) => up(convAddRelu(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, rr as tf.Tensor4D, [1, 1], "same")));
    const plain = tf.grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, rr: tf.Tensor) => up(tf.relu(tf.add(tf.add(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, "same"), bb), rr))));
    const gf = fused([x, w, b, r]), gp = plain([x, w, b, r]);
    ["x", "filter", "bias", "residual"].forEach((name, i) => assert.ok(maxDiff(gf[i], gp[i]) < 1e-4, `gradient of ${name} differs by ${maxDiff(gf[i], gp[i])}`));
    tf.dispose([x, w, b, r, ...gf, ...gp]);
  });

  Deno.test(`a residual block ended by ConvAddReLU on ${backend}: 3 Adam steps reach the weights of conv → add → relu layers (within 1e-5); exact tensor count after a burn-in step`, async () => {
    await tf.setBackend(backend);
    const build = (fusedEnd: boolean) => {
      const input = tf.input({ shape: [10, 8, 4] });
      const init = (seed: number) => tf.initializers.glorotUniform({ seed });
      const y = conv2d({ filters: 4, kernelSize: 3, padding: "same", activation: "relu", kernelInitializer: init(1) }).apply(input) as tf.SymbolicTensor;
      const end = fusedEnd
        ? new ConvAddReLU({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(2) }).apply([y, input]) as tf.SymbolicTensor
        : tf.layers.reLU().apply(tf.layers.add().apply([tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: "same", kernelInitializer: init(2) }).apply(y) as tf.SymbolicTensor, input]) as tf.SymbolicTensor) as tf.SymbolicTensor;
      const out = tf.layers.dense({ units: 2, kernelInitializer: init(3) }).apply(tf.layers.flatten().apply(end) as tf.SymbolicTensor) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: out });
    };
    const ours = build(true), theirs = build(false);
    const x = tf.randomNormal([4, 10, 8, 4], 0, 1, "float32", 26);
    const y = tf.oneHot(tf.tensor1d([0, 1, 1, 0], "int32"), 2);
    const optA = tf.train.adam(1e-2), optB = tf.train.adam(1e-2);
    const step = (m: tf.LayersModel, opt: tf.Optimizer) => tf.tidy(() => void opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }) as tf.Tensor) as tf.Scalar));
    step(ours, optA);
    step(theirs, optB);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) step(ours, optA), step(theirs, optB);
    assert.equal(tf.memory().numTensors, before, "tensors leaked across training steps");
    const wa = ours.getWeights(), wb = theirs.getWeights();
    assert.equal(wa.length, wb.length);
    wa.forEach((t, i) => assert.ok(maxDiff(t, wb[i]) < 1e-5, `weight ${i} differs by ${maxDiff(t, wb[i])}`));
    [ours, theirs].forEach((m) => m.dispose());
    [optA, optB].forEach((o) => o.dispose());
    tf.dispose([x, y]);
  });
}

Deno.test("the project's Conv2D saves as tfjs-layers' 'Conv2D' and deserialises as the project's Conv2D once registerCustomLayers ran; predictions equal", async () => {
  await tf.setBackend("cpu");
  const input = tf.input({ shape: [8, 8, 2] });
  const out = conv2d({ filters: 3, kernelSize: 3, padding: "same", activation: "relu", name: "c" }).apply(input) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const json = model.toJSON(null, false) as unknown as { config: { layers: { class_name: string }[] } };
  assert.equal(json.config.layers[1].class_name, "Conv2D");
  registerCustomLayers();
  const artifacts = { modelTopology: model.toJSON(null, false) as unknown as tf.io.ModelJSON["modelTopology"], weightSpecs: [] as tf.io.WeightsManifestEntry[], weightData: new ArrayBuffer(0) };
  const encoded = await tf.io.encodeWeights(model.getWeights().map((t, i) => ({ name: model.weights[i].originalName, tensor: t })));
  artifacts.weightSpecs = encoded.specs;
  artifacts.weightData = encoded.data;
  const back = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  assert.ok(back.layers[1] instanceof Conv2D, `deserialised as ${back.layers[1].constructor.name}`);
  const x = tf.randomNormal([2, 8, 8, 2], 0, 1, "float32", 9);
  const [a, b] = [model.predict(x) as tf.Tensor, back.predict(x) as tf.Tensor];
  assert.equal(maxDiff(a, b), 0);
  tf.dispose([x, a, b]);
  model.dispose();
  back.dispose();
});
