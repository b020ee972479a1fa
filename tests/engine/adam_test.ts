// The engine's Adam (lib/engine/adam.ts): one OnednnAdam kernel per variable on onednn (oneDNN passes for large
// variables, a JS loop for small ones), tfjs' own update elsewhere; against tf.train.adam on the cpu backend.
// Run: deno test -A tests/engine/adam_test.ts
import "../_cache_env.ts";
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import { registerOnednnBackend } from "../../lib/engine/onednn/mod.ts";
import { adam, EngineAdam } from "../../lib/engine/adam.ts";
import { kernelStats, resetKernelStats } from "../../lib/engine/onednn/_stats.ts";
import { adamStats } from "../../lib/engine/onednn/_adam.ts";
import { DNNL_MIN_ELEMENTS } from "../../lib/engine/onednn/_elementwise.ts";

const onednn = (await registerOnednnBackend()).available;

/** Variables of a small size (JS loop) and of a large one (oneDNN passes), with fixed values and gradients. */
function problem(seed: number) {
  const shapes = [[7], [3, 5], [DNNL_MIN_ELEMENTS / 64 + 3, 64]];
  const vars = shapes.map((s, i) => tf.variable(tf.randomNormal(s, 0, 1, "float32", seed + i), true, `adam_t${seed}_${i}`));
  // gradients of a loss whose value differs per element, so each element's moments differ
  const loss = () => tf.addN(vars.map((v, i) => tf.sum(tf.mul(tf.square(v), tf.randomUniform(v.shape, 0.1, 2, "float32", 50 + i))))) as tf.Scalar;
  return { vars, loss };
}

/** Runs `steps` minimize steps with the optimizer made by `make` on `backend`; returns every variable's values. */
async function train(backend: string, make: () => tf.Optimizer, steps: number, seed: number, lrs: number[] = []) {
  await tf.setBackend(backend);
  const { vars, loss } = problem(seed);
  const opt = make();
  for (let s = 0; s < steps; s++) {
    if (lrs[s] !== undefined) {
      // (instanceof cannot tell them apart: tfjs' optimizers answer it by duck typing)
      const engine = opt as Partial<EngineAdam>;
      if (engine.setLearningRate) engine.setLearningRate(lrs[s]);
      else (opt as unknown as { learningRate: number }).learningRate = lrs[s];
    }
    tf.tidy(() => void opt.minimize(loss));
  }
  const out = vars.map((v) => v.dataSync().slice());
  const weights = await opt.getWeights();
  const w = weights.map((t) => ({ name: t.name, values: t.tensor.dataSync().slice() }));
  tf.dispose(weights.map((t) => t.tensor));
  opt.dispose();
  tf.dispose(vars);
  return { out, weights: w };
}

/** The largest |a − b| / (1e-6 + 1e-5·|b|): ≤ 1 when within 1e-6 absolute plus 1e-5 relative. */
function excess(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / (1e-6 + 1e-5 * Math.abs(b[i])));
  return worst;
}

Deno.test("adam() is a tf.AdamOptimizer with tfjs' class name and configuration", () => {
  const opt = adam(0.01, 0.5, 0.99, 1e-8);
  assert.ok(opt instanceof tf.AdamOptimizer && opt instanceof EngineAdam);
  assert.equal(opt.getClassName(), "Adam");
  assert.deepEqual(opt.getConfig(), tf.train.adam(0.01, 0.5, 0.99, 1e-8).getConfig());
  opt.dispose();
});

for (const backend of [...(onednn ? ["onednn"] : []), "cpu"]) {
  Deno.test(`adam() on ${backend}: 5 steps (learning rate changed between steps: setLearningRate, tfjs' field for tf.train.adam) give tf.train.adam's variables and moments on cpu within 1e-6 + 1e-5 relative, same slot names`, async () => {
    const lrs = [0.05, 0.05, 0.02, 0.02, 0.01];
    const ref = await train("cpu", () => tf.train.adam(0.05, 0.9, 0.999, 1e-7), 5, 11, lrs);
    resetKernelStats();
    const { dnnl, js } = adamStats;
    const ours = await train(backend, () => adam(0.05, 0.9, 0.999, 1e-7), 5, 11, lrs);
    if (backend === "onednn") {
      assert.equal(kernelStats().hits.OnednnAdam, 15, "3 variables × 5 steps through the kernel");
      assert.deepEqual([adamStats.dnnl - dnnl, adamStats.js - js], [5, 10], "the large variable by oneDNN, the 2 small ones by the JS loop");
    }
    ours.out.forEach((o, i) => assert.ok(excess(o, ref.out[i]) <= 1, `variable ${i} off by ${excess(o, ref.out[i])}× the tolerance`));
    assert.deepEqual(ours.weights.map((w) => w.name), ref.weights.map((w) => w.name));
    ours.weights.forEach((w, i) => assert.ok(excess(w.values, ref.weights[i].values) <= 1, `${w.name} off by ${excess(w.values, ref.weights[i].values)}× the tolerance`));
  });
}

if (onednn) {
  Deno.test("adam() on onednn with β1 = 0 (the oneDNN chains divide by β1, so the JS loop takes every variable): tf.train.adam's variables within 1e-6 + 1e-5 relative", async () => {
    const ref = await train("cpu", () => tf.train.adam(0.05, 0, 0.99, 1e-7), 3, 13);
    const { dnnl, js } = adamStats;
    const ours = await train("onednn", () => adam(0.05, 0, 0.99, 1e-7), 3, 13);
    assert.deepEqual([adamStats.dnnl - dnnl, adamStats.js - js], [0, 9]);
    ours.out.forEach((o, i) => assert.ok(excess(o, ref.out[i]) <= 1, `variable ${i} off by ${excess(o, ref.out[i])}× the tolerance`));
  });

  Deno.test("adam() on onednn: a step after a burn-in step leaves the tensor count unchanged; moments saved by it load into tf.train.adam, and 2 more steps of each give the same variables within 1e-6 + 1e-5 relative", async () => {
    await tf.setBackend("onednn");
    const { vars, loss } = problem(21);
    const opt = adam(0.01);
    tf.tidy(() => void opt.minimize(loss));
    const before = tf.memory().numTensors;
    tf.tidy(() => void opt.minimize(loss));
    assert.equal(tf.memory().numTensors, before);
    // continue 2 steps with ours and, from the same state, with tfjs' optimizer
    const saved = await opt.getWeights();
    const start = vars.map((v) => v.clone());
    const theirs = tf.train.adam(0.01);
    await theirs.setWeights(saved);
    const run = (o: tf.Optimizer) => {
      vars.forEach((v, i) => v.assign(start[i]));
      for (let s = 0; s < 2; s++) tf.tidy(() => void o.minimize(loss));
      return vars.map((v) => v.dataSync().slice());
    };
    const a = run(opt), b = run(theirs);
    a.forEach((x, i) => assert.ok(excess(x, b[i]) <= 1, `variable ${i} off by ${excess(x, b[i])}× the tolerance`));
    tf.dispose([...saved.map((t) => t.tensor), ...start, ...vars]);
    opt.dispose();
    theirs.dispose();
  });
}

Deno.test("adam() restored from its saved weights after 5 steps takes the next 3 steps bit-equal to the uninterrupted optimizer (β^t restored as the running product)", async () => {
  await tf.setBackend("cpu");
  const { vars, loss } = problem(31);
  const opt = adam(0.01);
  for (let s = 0; s < 5; s++) tf.tidy(() => void opt.minimize(loss));
  const saved = await opt.getWeights();
  const start = vars.map((v) => v.clone());
  const restored = adam(0.01);
  await restored.setWeights(saved);
  const run = (o: tf.Optimizer) => {
    vars.forEach((v, i) => v.assign(start[i]));
    for (let s = 0; s < 3; s++) tf.tidy(() => void o.minimize(loss));
    return vars.map((v) => v.dataSync().slice());
  };
  const a = run(opt), b = run(restored);
  a.forEach((x, i) => assert.deepEqual(x, b[i], `variable ${i} differs`));
  tf.dispose([...saved.map((t) => t.tensor), ...start, ...vars]);
  opt.dispose();
  restored.dispose();
});
