// Tests for lib/engine/wasm_train: every kernel it registers is checked against tfjs's cpu backend on random
// shapes, and training the reference CNN on wasm is checked against cpu and for memory leaks.
// Run: deno test -A tests/engine/wasm_train_test.ts

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { registerWasmTrainingKernels, WASM_TRAINING_KERNELS } from "../../lib/engine/wasm_train/mod.ts";
import { COLUMN_BUDGET } from "../../lib/engine/wasm_train/_conv_grad.ts";

const require = createRequire(import.meta.url);
setWasmPaths(require.resolve("@tensorflow/tfjs-backend-wasm/package.json").replace(/package\.json$/, "dist/"));
registerWasmTrainingKernels();
await tf.setBackend("cpu");
await tf.setBackend("wasm");

// ---------------------------------------------------------------------------------------------------------
// helpers

/** Small seeded generator (mulberry32) so failures can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RAND = rng(20240611);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(RAND() * xs.length)];
const int = (lo: number, hi: number): number => lo + Math.floor(RAND() * (hi - lo + 1));

interface Data {
  values: Float32Array | Int32Array | Uint8Array;
  shape: number[];
  dtype: "float32" | "int32" | "bool";
}

function randomData(shape: number[], dtype: Data["dtype"] = "float32", levels = 0): Data {
  const size = shape.reduce((a, b) => a * b, 1);
  if (dtype === "bool") return { values: Uint8Array.from({ length: size }, () => (RAND() < 0.5 ? 1 : 0)), shape, dtype };
  if (dtype === "int32") return { values: Int32Array.from({ length: size }, () => int(-50, 50)), shape, dtype };
  const values = Float32Array.from({ length: size }, () => levels > 0 ? Math.floor(RAND() * levels) : RAND() * 2 - 1);
  return { values, shape, dtype };
}

/** Runs one kernel through the engine on `backend` and returns its output values and shape. */
async function runOn(
  backend: "cpu" | "wasm",
  kernel: string,
  inputs: Record<string, Data>,
  attrs: Record<string, unknown>,
): Promise<{ values: ArrayLike<number>; shape: number[] }> {
  await tf.setBackend(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, d] of Object.entries(inputs)) ts[k] = tf.tensor(d.values, d.shape, d.dtype);
  const out = tf.engine().runKernel(kernel, ts as tf.NamedTensorMap, attrs as tf.NamedAttrMap) as tf.Tensor;
  const result = { values: Array.from(out.dataSync() as ArrayLike<number>), shape: out.shape };
  tf.dispose([out, ...Object.values(ts)]);
  await tf.setBackend("wasm");
  return result;
}

/** max |a - b| <= rel * max |b| (values), equal shapes. */
function assertClose(
  a: { values: ArrayLike<number>; shape: number[] },
  b: { values: ArrayLike<number>; shape: number[] },
  rel: number,
  what: string,
): void {
  assert.deepEqual(a.shape, b.shape, `${what}: shape ${a.shape} vs ${b.shape}`);
  let err = 0;
  let scale = 1e-6;
  for (let i = 0; i < b.values.length; i++) {
    err = Math.max(err, Math.abs(a.values[i] - b.values[i]));
    scale = Math.max(scale, Math.abs(b.values[i]));
  }
  assert.ok(err <= rel * scale, `${what}: max error ${err} > ${rel} x ${scale}`);
}

/** Runs a kernel on wasm and cpu and compares; also checks that wasm keeps no data behind. */
async function compareKernel(
  kernel: string,
  inputs: Record<string, Data>,
  attrs: Record<string, unknown>,
  what: string,
  rel = 1e-4,
): Promise<void> {
  const before = tf.engine().backend.numDataIds();
  const mine = await runOn("wasm", kernel, inputs, attrs);
  assert.equal(tf.engine().backend.numDataIds(), before, `${what}: wasm data ids leaked`);
  const ref = await runOn("cpu", kernel, inputs, attrs);
  assertClose(mine, ref, rel, what);
}

type Pad = "same" | "valid" | number[][];

interface ConvCase {
  n: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  kh: number;
  kw: number;
  strides: [number, number];
  pad: Pad;
}

function randomConvCase(): ConvCase {
  const kh = pick([1, 2, 3, 3, 5]);
  const kw = pick([1, 2, 3, 3, 4]);
  const pad: Pad = pick<Pad>(["same", "same", "valid", [[0, 0], [1, 0], [2, 1], [0, 0]]]);
  const strides = pick<[number, number]>([[1, 1], [2, 2], [2, 2], [3, 3], [1, 2], [2, 1]]);
  return {
    n: pick([1, 1, 2, 3]),
    h: int(kh, 14),
    w: int(kw, 13),
    ci: pick([1, 2, 3, 5, 8, 16]),
    co: pick([1, 3, 4, 7, 16]),
    kh,
    kw,
    strides,
    pad,
  };
}

/** Conv cases: random ones plus the reference CNN's layers (batch 1, smaller spatial size for cpu's sake). */
function convCases(count: number): ConvCase[] {
  const cases = Array.from({ length: count }, randomConvCase);
  for (const [h, w, ci, co] of [[27, 21, 3, 32], [14, 11, 32, 64], [7, 6, 64, 128], [4, 3, 128, 256]]) {
    cases.push({ n: 1, h, w, ci, co, kh: 3, kw: 3, strides: [2, 2], pad: "same" });
  }
  return cases;
}

function convOutShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    [c.n, c.h, c.w, c.ci],
    [c.kh, c.kw, c.ci, c.co],
    c.strides,
    1,
    c.pad as "same",
  );
  return info.outShape;
}

// ---------------------------------------------------------------------------------------------------------
// registration

Deno.test("registerWasmTrainingKernels registers every listed kernel for wasm and can be called again", () => {
  registerWasmTrainingKernels();
  const names = new Set(tf.getKernelsForBackend("wasm").map((k) => k.kernelName));
  for (const name of WASM_TRAINING_KERNELS) assert.ok(names.has(name), `${name} is not registered`);
  assert.ok(WASM_TRAINING_KERNELS.includes("Conv2DBackpropFilter"));
  assert.ok(WASM_TRAINING_KERNELS.includes("Conv2DBackpropInput"));
});

// ---------------------------------------------------------------------------------------------------------
// convolution gradients

Deno.test("wasm Conv2DBackpropFilter matches the cpu backend on random shapes", async () => {
  for (const c of convCases(36)) {
    const dyShape = convOutShape(c);
    await compareKernel("Conv2DBackpropFilter", {
      x: randomData([c.n, c.h, c.w, c.ci]),
      dy: randomData(dyShape),
    }, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      filterShape: [c.kh, c.kw, c.ci, c.co],
    }, `Conv2DBackpropFilter ${JSON.stringify(c)}`);
  }
});

Deno.test("wasm Conv2DBackpropInput matches the cpu backend on random shapes", async () => {
  for (const c of convCases(36)) {
    const dyShape = convOutShape(c);
    await compareKernel("Conv2DBackpropInput", {
      dy: randomData(dyShape),
      filter: randomData([c.kh, c.kw, c.ci, c.co]),
    }, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      inputShape: [c.n, c.h, c.w, c.ci],
    }, `Conv2DBackpropInput ${JSON.stringify(c)}`);
  }
});

Deno.test("wasm convolution gradients give the same result when the batch is split into chunks", async () => {
  const saved = { ...COLUMN_BUDGET };
  COLUMN_BUDGET.dwFloats = 2000; // a few images per product
  COLUMN_BUDGET.dxFloats = 1;
  try {
    for (const c of convCases(6).slice(0, 6)) {
      c.n = 5;
      const dyShape = convOutShape(c);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC", dimRoundingMode: undefined };
      await compareKernel("Conv2DBackpropFilter", { x: randomData([c.n, c.h, c.w, c.ci]), dy: randomData(dyShape) }, {
        ...attrs,
        filterShape: [c.kh, c.kw, c.ci, c.co],
      }, `chunked dW ${JSON.stringify(c)}`);
      await compareKernel("Conv2DBackpropInput", { dy: randomData(dyShape), filter: randomData([c.kh, c.kw, c.ci, c.co]) }, {
        ...attrs,
        inputShape: [c.n, c.h, c.w, c.ci],
      }, `chunked dX ${JSON.stringify(c)}`);
    }
  } finally {
    Object.assign(COLUMN_BUDGET, saved);
  }
});

Deno.test("wasm convolution gradients match the cpu backend with NCHW data", async () => {
  const [n, ci, h, w, co] = [2, 3, 9, 8, 4];
  const attrs = { strides: [2, 2], pad: "same", dataFormat: "NCHW", dimRoundingMode: undefined };
  const x = randomData([n, ci, h, w]);
  const filter = randomData([3, 3, ci, co]);
  const dy = randomData([n, co, 5, 4]);
  await compareKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: [3, 3, ci, co] }, "dW NCHW");
  await compareKernel("Conv2DBackpropInput", { dy, filter }, { ...attrs, inputShape: [n, ci, h, w] }, "dX NCHW");
});

Deno.test("tf.grad of conv2d on wasm matches the cpu backend (the kernels as tfjs-core calls them)", async () => {
  const xd = randomData([2, 11, 9, 3]);
  const wd = randomData([3, 3, 3, 5]);
  const grads = async (backend: "cpu" | "wasm") => {
    await tf.setBackend(backend);
    const x = tf.tensor4d(xd.values, xd.shape as [number, number, number, number]);
    const w = tf.tensor4d(wd.values, wd.shape as [number, number, number, number]);
    const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")))
    )([x, w]);
    const out = [gx, gw].map((g) => ({ values: Array.from(g.dataSync()), shape: g.shape }));
    tf.dispose([x, w, gx, gw]);
    await tf.setBackend("wasm");
    return out;
  };
  const mine = await grads("wasm");
  const ref = await grads("cpu");
  assertClose(mine[0], ref[0], 1e-4, "dx");
  assertClose(mine[1], ref[1], 1e-4, "dw");
});

// ---------------------------------------------------------------------------------------------------------
// pooling gradients

Deno.test("wasm MaxPoolGrad and AvgPoolGrad match the cpu backend on random shapes, ties included", async () => {
  for (let t = 0; t < 24; t++) {
    const filterSize = pick([1, 2, 3]);
    const strides = pick([1, 2, 3]);
    const pad = pick(["same", "valid"] as const);
    const shape = [pick([1, 2]), int(filterSize, 11), int(filterSize, 10), pick([1, 3, 8])];
    const info = tf.backend_util.computePool2DInfo(
      shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
    );
    const input = randomData(shape, "float32", t % 3 === 0 ? 3 : 0); // every third case has many ties
    const dy = randomData(info.outShape);
    await tf.setBackend("wasm");
    const pooled = tf.maxPool(tf.tensor4d(input.values, shape as [number, number, number, number]), filterSize, strides, pad);
    const output: Data = { values: pooled.dataSync() as Float32Array, shape: pooled.shape, dtype: "float32" };
    pooled.dispose();
    const attrs = { filterSize, strides, pad, dimRoundingMode: undefined };
    const what = JSON.stringify({ shape, filterSize, strides, pad });
    await compareKernel("MaxPoolGrad", { dy, input, output }, attrs, `MaxPoolGrad ${what}`);
    await compareKernel("AvgPoolGrad", { dy, input }, attrs, `AvgPoolGrad ${what}`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// matrix products, reductions and data movement

Deno.test("wasm BatchMatMul matches the cpu backend with transposed, batched and broadcast operands", async () => {
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[1, 33, 17], [1, 33, 40], true, false],
    [[1, 20, 64], [1, 9, 64], false, true],
    [[3, 4, 6], [3, 6, 2], false, false],
    [[3, 6, 4], [3, 2, 6], true, true],
    [[1, 4, 6], [2, 6, 5], false, false],
  ];
  for (const [as, bs, transposeA, transposeB] of cases) {
    await compareKernel("BatchMatMul", { a: randomData(as), b: randomData(bs) }, { transposeA, transposeB }, `BatchMatMul ${as} ${bs} ${transposeA} ${transposeB}`);
  }
});

Deno.test("wasm Sum and Mean match the cpu backend over random axes", async () => {
  for (let t = 0; t < 30; t++) {
    const rank = int(1, 5);
    const shape = Array.from({ length: rank }, () => int(1, 7));
    const axes = [...Array(rank).keys()].filter(() => RAND() < 0.5);
    const axis = axes.length === 0 ? [0] : axes;
    const keepDims = RAND() < 0.3;
    const dtype = t % 5 === 4 ? "int32" : "float32";
    const x = randomData(shape, dtype);
    await compareKernel("Sum", { x }, { axis, keepDims }, `Sum ${shape} ${axis} ${keepDims} ${dtype}`);
    await compareKernel("Mean", { x }, { axis, keepDims }, `Mean ${shape} ${axis} ${keepDims} ${dtype}`);
  }
  // the batch-norm / bias-gradient shape
  const x = randomData([4, 9, 7, 32]);
  await compareKernel("Sum", { x }, { axis: [0, 1, 2], keepDims: false }, "Sum NHWC->C");
  await compareKernel("Mean", { x }, { axis: [0, 1, 2], keepDims: true }, "Mean NHWC->C");
});

Deno.test("wasm Transpose matches the cpu backend on random and far-strided permutations", async () => {
  const cases: [number[], number[]][] = [
    [[4, 50, 60, 16], [3, 1, 2, 0]],
    [[8, 700, 9], [2, 1, 0]],
    [[3, 40, 50, 12], [3, 0, 1, 2]],
    [[6, 5, 4, 3, 2], [4, 2, 0, 3, 1]],
  ];
  for (let t = 0; t < 24; t++) {
    const rank = int(1, 5);
    const shape = Array.from({ length: rank }, () => int(1, 6));
    const perm = [...Array(rank).keys()].sort(() => RAND() - 0.5);
    cases.push([shape, perm]);
  }
  for (const [[shape, perm], t] of cases.map((c, i) => [c, i] as const)) {
    const dtype = pick(["float32", "float32", "int32", "bool"] as const);
    await compareKernel("Transpose", { x: randomData(shape, dtype) }, { perm }, `Transpose ${shape} ${perm} ${dtype} #${t}`, 0);
  }
});

Deno.test("wasm Slice matches the cpu backend on random boxes", async () => {
  for (let t = 0; t < 30; t++) {
    const rank = int(1, 5);
    const shape = Array.from({ length: rank }, () => int(1, 9));
    const begin = shape.map((d) => int(0, d - 1));
    const size = shape.map((d, i) => (RAND() < 0.2 ? -1 : int(1, d - begin[i])));
    const dtype = pick(["float32", "int32", "bool"] as const);
    await compareKernel("Slice", { x: randomData(shape, dtype) }, { begin, size }, `Slice ${shape} ${begin} ${size}`, 0);
  }
  await compareKernel("Slice", { x: randomData([2, 30, 40, 70]) }, { begin: [1, 3, 0, 0], size: [1, 20, 40, 70] }, "Slice rows", 0);
});

Deno.test("wasm Tile matches the cpu backend on random repetitions", async () => {
  for (let t = 0; t < 20; t++) {
    const rank = int(1, 4);
    const shape = Array.from({ length: rank }, () => int(1, 5));
    const reps = shape.map(() => int(1, 4));
    const dtype = pick(["float32", "int32", "bool"] as const);
    await compareKernel("Tile", { x: randomData(shape, dtype) }, { reps }, `Tile ${shape} ${reps}`, 0);
  }
  await compareKernel("Tile", { x: randomData([1, 1, 1, 32]) }, { reps: [4, 9, 7, 1] }, "Tile batch-norm", 0);
});

Deno.test("wasm Identity and same-dtype Cast share data that outlives the input; other casts (to bool too) match cpu", async () => {
  await tf.setBackend("wasm");
  const before = tf.engine().backend.numDataIds();
  const x = tf.tensor([1.5, -2, 3]);
  const y = tf.clone(x);
  const z = tf.cast(x, "float32");
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1.5, -2, 3]);
  assert.deepEqual(Array.from(z.dataSync()), [1.5, -2, 3]);
  tf.dispose([y, z]);
  assert.equal(tf.engine().backend.numDataIds(), before);
  await compareKernel("Cast", { x: randomData([3, 4]) }, { dtype: "int32" }, "Cast float32->int32", 0);
  await compareKernel("Cast", { x: randomData([3, 4], "int32") }, { dtype: "bool" }, "Cast int32->bool", 0);
  await compareKernel("Cast", { x: randomData([3, 4]) }, { dtype: "bool" }, "Cast float32->bool", 0);
  await compareKernel("Cast", { x: randomData([3, 4], "bool") }, { dtype: "float32" }, "Cast bool->float32", 0);
  await compareKernel("Identity", { x: randomData([5], "bool") }, {}, "Identity bool", 0);
});

// ---------------------------------------------------------------------------------------------------------
// training

/**
 * The reference CNN of FACTS.md: conv3x3/2 32 + BN, conv3x3/2 64, 128, 256 (ReLU each), GAP, dense 2; seeded
 * initial weights (with unseeded ones, 4 Adam steps at lr 0.01 sometimes ended above the first loss).
 */
function referenceCnn(height: number, width: number): tfl.LayersModel {
  let seed = 7;
  const kernelInitializer = () => tfl.initializers.glorotUniform({ seed: seed++ });
  const input = tfl.input({ shape: [height, width, 3] });
  let h = tfl.layers.conv2d({ filters: 32, kernelSize: 3, strides: 2, padding: "same", useBias: false, kernelInitializer: kernelInitializer() })
    .apply(input) as tfl.SymbolicTensor;
  h = tfl.layers.batchNormalization().apply(h) as tfl.SymbolicTensor;
  h = tfl.layers.activation({ activation: "relu" }).apply(h) as tfl.SymbolicTensor;
  for (const filters of [64, 128, 256]) {
    h = tfl.layers.conv2d({ filters, kernelSize: 3, strides: 2, padding: "same", activation: "relu", kernelInitializer: kernelInitializer() })
      .apply(h) as tfl.SymbolicTensor;
  }
  h = tfl.layers.globalAveragePooling2d({}).apply(h) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: 2, kernelInitializer: kernelInitializer() }).apply(h) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output });
}

/** Trains `steps` Adam steps on one fixed batch and returns the losses. */
async function trainLosses(
  backend: "cpu" | "wasm",
  weights: Data[],
  x: Data,
  y: Data,
  steps: number,
): Promise<number[]> {
  await tf.setBackend(backend);
  const model = referenceCnn(x.shape[1], x.shape[2]);
  model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
  const optimizer = tf.train.adam(0.01);
  const xs = tf.tensor(x.values, x.shape);
  const ys = tf.tensor(y.values, y.shape);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const loss = optimizer.minimize(
      () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: true }) as tf.Tensor),
      true,
    ) as tf.Scalar;
    losses.push(loss.dataSync()[0]);
    loss.dispose();
  }
  optimizer.dispose();
  model.dispose();
  tf.dispose([xs, ys]);
  await tf.setBackend("wasm");
  return losses;
}

function oneHotLabels(n: number): Data {
  const values = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) values[i * 2 + (i % 2)] = 1;
  return { values, shape: [n, 2], dtype: "float32" };
}

Deno.test("Adam steps of the reference CNN give the cpu backend's losses on wasm", async () => {
  // cpu's own filter gradient needs ~15 s per 108x84 image, so the layers run on a 36x28 input here
  await tf.setBackend("wasm");
  const init = referenceCnn(36, 28);
  const weights: Data[] = init.getWeights().map((w) => ({
    values: w.dataSync() as Float32Array,
    shape: w.shape,
    dtype: "float32",
  }));
  init.dispose();
  const x = randomData([3, 36, 28, 3]);
  const y = oneHotLabels(3);
  const mine = await trainLosses("wasm", weights, x, y, 4);
  const ref = await trainLosses("cpu", weights, x, y, 4);
  for (let i = 0; i < ref.length; i++) {
    assert.ok(Math.abs(mine[i] - ref[i]) <= 1e-3 * Math.max(1, Math.abs(ref[i])), `step ${i}: wasm ${mine} cpu ${ref}`);
  }
  assert.ok(mine[mine.length - 1] < mine[0], `loss did not fall: ${mine}`);
});

Deno.test("training the full-size reference CNN on wasm keeps tensor and wasm data counts stable", async () => {
  await tf.setBackend("wasm");
  const model = referenceCnn(108, 84);
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomNormal([4, 108, 84, 3]);
  const y = tf.tensor(oneHotLabels(4).values, [4, 2]);
  const step = () => {
    const loss = optimizer.minimize(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor),
      true,
    ) as tf.Scalar;
    const value = loss.dataSync()[0];
    loss.dispose();
    return value;
  };
  step();
  step(); // warm-up: optimizer slots exist from here on
  const tensors = tf.memory().numTensors;
  const dataIds = tf.engine().backend.numDataIds();
  for (let i = 0; i < 3; i++) assert.ok(Number.isFinite(step()));
  assert.equal(tf.memory().numTensors, tensors, "numTensors grew");
  assert.equal(tf.engine().backend.numDataIds(), dataIds, "wasm data ids grew");
  optimizer.dispose();
  model.dispose();
  tf.dispose([x, y]);
});
