// Tests for lib/engine/webgpu: each kernel it registers for the webgpu backend is checked against tfjs' cpu
// backend on small random shapes (strides 1, 2 and 3, 'same' and 'valid', channel counts across the 32-wide
// tiles, weight gradients split across workgroups), a gradient through tf.conv2d on webgpu against cpu, and the
// gradients of mean and sum it replaces on webgpu.
// Skipped when there is no WebGPU adapter (navigator.gpu missing, as in Deno before 2.9 without --unstable-webgpu,
// or requestAdapter() giving null). A software adapter counts: mesa's lavapipe (Vulkan) or llvmpipe (GL).
// Run: deno test -A tests/engine/webgpu_kernels_test.ts   (--unstable-webgpu is harmless, needed before Deno 2.9)

import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { SYNC_READ_MESSAGE, WEBGPU_GRADIENT_NAMES, WEBGPU_KERNEL_NAMES, webgpuAdapterAvailable, webgpuKernelsActive } from "../../lib/engine/webgpu/mod.ts";
import { Rng } from "../../lib/util/rng.ts";
import { planFilterGrad } from "../../lib/engine/webgpu/_conv_grad_filter.ts";

const GPU = await webgpuAdapterAvailable();
if (GPU) {
  const { initEngine } = await import("../../lib/engine/mod.ts");
  await initEngine({ backend: "webgpu", verbose: false }); // registers our kernels over tfjs-webgpu's
}

/** Max |ours − cpu| allowed, relative to the largest |cpu| value (float32 sums in another order). */
const REL_TOL = 2e-5;

// ---------------------------------------------------------------------------------------------------------
// helpers

/** Seeded (lib/util/rng.ts) so failures can be reproduced. */
const SEEDED = new Rng(20250915);
const RAND = () => SEEDED.next();

interface Data {
  values: Float32Array;
  shape: number[];
}

function randomData(shape: number[]): Data {
  const size = shape.reduce((a, b) => a * b, 1);
  return { values: Float32Array.from({ length: size }, () => RAND() * 2 - 1), shape };
}

/** Runs one kernel through the engine on `backend`; returns its values and shape. */
async function runOn(backend: "cpu" | "webgpu", kernel: string, inputs: Record<string, Data>, attrs: Record<string, unknown>) {
  await use(backend);
  const ts = Object.fromEntries(Object.entries(inputs).map(([k, d]) => [k, tf.tensor(d.values, d.shape, "float32")]));
  const out = tf.engine().runKernel(kernel, ts, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const values = await out.data();
  const shape = out.shape.slice();
  tf.dispose([out, ...Object.values(ts)]);
  return { values, shape };
}

async function use(backend: "cpu" | "webgpu"): Promise<void> {
  await tf.setBackend(backend);
  const be = tf.findBackend(backend) as unknown as { firstUse?: boolean };
  if ("firstUse" in be) be.firstUse = false; // the cpu backend's advert for tfjs-node
}

/**
 * Watches the webgpu backend's uploads of CPU arrays of at least 1,000 values until stop(); on cpu it watches
 * nothing. (Smaller tensors are computed on the CPU by tfjs-webgpu's design, WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD,
 * and uploaded when a GPU kernel needs them.)
 */
function countUploads(backend: "cpu" | "webgpu") {
  let largest = 0;
  const be = tf.backend() as unknown as {
    uploadToGPU(dataId: object): void;
    tensorMap: { get(id: object): { values: ArrayLike<number> | null; resource?: unknown } | undefined };
  };
  if (backend === "webgpu") {
    const orig = be.uploadToGPU.bind(be);
    be.uploadToGPU = (dataId: object) => {
      const d = be.tensorMap.get(dataId);
      if (d && d.resource == null && d.values && d.values.length >= 1000) largest = Math.max(largest, d.values.length);
      orig(dataId);
    };
  }
  return {
    largest: () => largest,
    stop: () => {
      if (backend === "webgpu") delete (be as unknown as Record<string, unknown>).uploadToGPU;
    },
  };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  assert.equal(a.length, b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

interface ConvCase {
  x: [number, number, number, number]; // NHWC
  kernel: [number, number];
  outC: number;
  strides: [number, number];
  pad: "same" | "valid";
}

/** Output height and width of a convolution (dilation 1). */
function outHW(c: ConvCase): [number, number] {
  const [, h, w] = c.x;
  if (c.pad === "same") return [Math.ceil(h / c.strides[0]), Math.ceil(w / c.strides[1])];
  return [Math.floor((h - c.kernel[0]) / c.strides[0]) + 1, Math.floor((w - c.kernel[1]) / c.strides[1]) + 1];
}

// Input channels below MIN_TILED_IN_CHANNELS (16) take tfjs' own Conv2DBackpropInput: two cases keep that path.
const CASES: ConvCase[] = [
  { x: [2, 9, 7, 3], kernel: [3, 3], outC: 5, strides: [1, 1], pad: "same" }, // an image: dx by tfjs' kernel
  { x: [2, 9, 7, 16], kernel: [3, 3], outC: 8, strides: [2, 2], pad: "same" }, // odd sizes, stride 2
  { x: [1, 10, 8, 20], kernel: [3, 3], outC: 4, strides: [2, 2], pad: "valid" },
  { x: [2, 8, 8, 33], kernel: [1, 1], outC: 35, strides: [1, 1], pad: "valid" }, // channels across two tiles
  { x: [3, 11, 6, 16], kernel: [5, 5], outC: 40, strides: [2, 2], pad: "same" },
  { x: [2, 7, 9, 17], kernel: [2, 2], outC: 6, strides: [3, 3], pad: "same" }, // stride > kernel: phases with no tap
  { x: [2, 6, 5, 18], kernel: [3, 3], outC: 3, strides: [1, 2], pad: "same" }, // unequal strides
  { x: [1, 12, 10, 64], kernel: [3, 3], outC: 96, strides: [2, 2], pad: "same" }, // K = 576: many row tiles
  { x: [4, 40, 36, 8], kernel: [3, 3], outC: 8, strides: [1, 1], pad: "same" }, // M = 5760: split across workgroups
  { x: [2, 27, 21, 64], kernel: [3, 3], outC: 32, strides: [2, 2], pad: "same" }, // a reference-CNN layer, batch 2
  { x: [2, 28, 22, 16], kernel: [4, 4], outC: 32, strides: [2, 2], pad: "same" }, // the GAN's upsampling (uneven pads)
];

const describe = (c: ConvCase) => `x [${c.x}] ${c.kernel.join("×")}→${c.outC} stride ${c.strides.join(",")} ${c.pad}`;

// ---------------------------------------------------------------------------------------------------------
// tests

Deno.test({
  name: "webgpu kernels module lists the convolution gradients it replaces",
  fn() {
    assert.deepEqual([...WEBGPU_KERNEL_NAMES].sort(), ["Conv2DBackpropFilter", "Conv2DBackpropInput"]);
    assert.deepEqual([...WEBGPU_GRADIENT_NAMES].sort(), ["Mean", "Sum"]);
  },
});

Deno.test({
  name: "the weight gradient of a large M is split across workgroups, of a large K×co is not",
  fn() {
    const small = planFilterGrad(4 * 40 * 36, 3 * 3 * 8, 8);
    assert.ok(small.splits > 1 && small.chunk % 32 === 0 && small.splits * small.chunk >= 4 * 40 * 36, JSON.stringify(small));
    assert.ok((small.splits - 1) * small.chunk < 4 * 40 * 36, "no empty chunk");
    assert.equal(planFilterGrad(64 * 7 * 6, 3 * 3 * 256, 256).splits, 2); // 576 tiles of 32×32: nearly enough alone
    assert.equal(planFilterGrad(64 * 7 * 6, 3 * 3 * 512, 512).splits, 1); // 2,304 tiles
    assert.deepEqual(planFilterGrad(0, 27, 32), { splits: 1, chunk: 0 });
  },
});

Deno.test({
  name: "starting the webgpu backend registers our kernels over tfjs-webgpu's",
  ignore: !GPU,
  fn() {
    assert.equal(webgpuKernelsActive(), true);
  },
});

Deno.test({
  name: `Conv2DBackpropFilter on webgpu matches cpu within ${REL_TOL} of the largest value (${CASES.length} shapes)`,
  ignore: !GPU,
  async fn() {
    for (const c of CASES) {
      const [oh, ow] = outHW(c);
      const x = randomData(c.x), dy = randomData([c.x[0], oh, ow, c.outC]);
      const attrs = { strides: c.strides, pad: c.pad, dataFormat: "NHWC", filterShape: [...c.kernel, c.x[3], c.outC] };
      const ref = await runOn("cpu", "Conv2DBackpropFilter", { x, dy }, attrs);
      const got = await runOn("webgpu", "Conv2DBackpropFilter", { x, dy }, attrs);
      assert.deepEqual(got.shape, ref.shape, describe(c));
      const { diff, scale } = maxDiff(got.values, ref.values);
      if (Deno.env.get("TP_TEST_VERBOSE")) console.log(`${describe(c)}: max |diff| ${diff.toExponential(2)}, max |value| ${scale.toFixed(2)}`);
      assert.ok(diff <= REL_TOL * scale, `${describe(c)}: max |diff| ${diff} against max |value| ${scale}`);
    }
  },
});

Deno.test({
  name: `Conv2DBackpropInput on webgpu matches cpu within ${REL_TOL} of the largest value (${CASES.length} shapes)`,
  ignore: !GPU,
  async fn() {
    for (const c of CASES) {
      const [oh, ow] = outHW(c);
      const dy = randomData([c.x[0], oh, ow, c.outC]), filter = randomData([...c.kernel, c.x[3], c.outC]);
      const attrs = { inputShape: c.x, strides: c.strides, pad: c.pad, dataFormat: "NHWC" };
      const ref = await runOn("cpu", "Conv2DBackpropInput", { dy, filter }, attrs);
      const got = await runOn("webgpu", "Conv2DBackpropInput", { dy, filter }, attrs);
      assert.deepEqual(got.shape, ref.shape, describe(c));
      const { diff, scale } = maxDiff(got.values, ref.values);
      if (Deno.env.get("TP_TEST_VERBOSE")) console.log(`${describe(c)}: max |diff| ${diff.toExponential(2)}, max |value| ${scale.toFixed(2)}`);
      assert.ok(diff <= REL_TOL * scale, `${describe(c)}: max |diff| ${diff} against max |value| ${scale}`);
    }
  },
});

Deno.test({
  name: "gradients through tf.conv2d (input and kernel) on webgpu match cpu, and leave no tensor or GPU buffer behind",
  ignore: !GPU,
  async fn() {
    // M = 2·20·18 = 720 rows: the weight gradient is split in two, so its partial sums are made and freed.
    const x = randomData([2, 40, 36, 16]), w = randomData([3, 3, 16, 7]);
    assert.ok(planFilterGrad(2 * 20 * 18, 3 * 3 * 16, 7).splits > 1);
    const dataIds = () => (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
    const grads = async (backend: "cpu" | "webgpu") => {
      await use(backend);
      const before = tf.memory().numTensors, idsBefore = dataIds();
      const xt = tf.tensor4d(x.values, x.shape as [number, number, number, number]);
      const wt = tf.tensor4d(w.values, w.shape as [number, number, number, number]);
      const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")));
      const [gx, gw] = tf.grads(f)([xt, wt]);
      const out = { gx: await gx.data(), gw: await gw.data() };
      tf.dispose([xt, wt, gx, gw]);
      assert.equal(tf.memory().numTensors, before, `${backend}: tensors left behind`);
      assert.equal(dataIds(), idsBefore, `${backend}: backend data left behind`);
      return out;
    };
    const ref = await grads("cpu"), got = await grads("webgpu");
    for (const k of ["gx", "gw"] as const) {
      const { diff, scale } = maxDiff(got[k], ref[k]);
      assert.ok(diff <= REL_TOL * scale, `${k}: max |diff| ${diff} against max |value| ${scale}`);
    }
  },
});

Deno.test({
  name: "gradients of mean and sum on webgpu (broadcast on the GPU, no array of ones) match cpu, and leave no tensor behind",
  ignore: !GPU,
  async fn() {
    const x = randomData([3, 9, 8, 6]); // over 1,000 values: tfjs-webgpu keeps smaller ones on the CPU
    const weights = randomData([3, 9, 8, 6]); // makes the gradient depend on the position
    const cases: { op: "mean" | "sum"; axis: number | number[]; keepDims: boolean }[] = [
      { op: "mean", axis: [0, 1, 2], keepDims: false }, // tf.moments of a batch norm
      { op: "mean", axis: [1, 2], keepDims: false }, // global average pool
      { op: "sum", axis: [0, 1, 2], keepDims: false }, // a bias gradient's reduction
      { op: "sum", axis: -1, keepDims: true },
      { op: "mean", axis: 1, keepDims: true },
    ];
    for (const c of cases) {
      const grad = async (backend: "cpu" | "webgpu") => {
        await use(backend);
        const before = tf.memory().numTensors;
        const xt = tf.tensor(x.values, x.shape), wt = tf.tensor(weights.values, weights.shape);
        tf.dispose(await Promise.all([xt, wt].map(async (t) => { // on the GPU before counting uploads
          const y = tf.mul(t, 1);
          await y.data();
          return y;
        })));
        const f = (a: tf.Tensor) => tf.sum(tf.square(tf[c.op](tf.mul(a, wt), c.axis, c.keepDims)));
        const uploads = countUploads(backend);
        const g = tf.grad(f)(xt);
        const values = await g.data();
        assert.equal(uploads.largest(), 0, `${backend} ${JSON.stringify(c)}: an array of ${uploads.largest()} values uploaded`);
        uploads.stop();
        tf.dispose([xt, wt, g]);
        assert.equal(tf.memory().numTensors, before, `${backend} ${JSON.stringify(c)}: tensors left behind`);
        return values;
      };
      const ref = await grad("cpu"), got = await grad("webgpu");
      const { diff, scale } = maxDiff(got, ref);
      assert.ok(diff <= REL_TOL * scale, `${JSON.stringify(c)}: max |diff| ${diff} against max |value| ${scale}`);
    }
  },
});

Deno.test({
  name: "a synchronous read (dataSync) of a GPU tensor on webgpu gives the right values or an error that says to use await data(); values on the CPU read fine",
  ignore: !GPU,
  async fn() {
    await use("webgpu");
    const small = tf.tensor1d([1, 2, 3]); // kept on the CPU by tfjs-webgpu until a GPU kernel needs it
    assert.deepEqual(Array.from(small.dataSync()), [1, 2, 3]);
    const x = randomData([40, 40]);
    const onGpu = tf.tidy(() => tf.sum(tf.mul(tf.tensor2d(x.values, [40, 40]), 2)));
    try {
      const v = onGpu.dataSync()[0]; // in Deno this throws: tfjs-webgpu has no 2d canvas to read through
      assert.ok(Math.abs(v - (await onGpu.data())[0]) <= 1e-6 * Math.abs(v), "a synchronous read that works reads the right value");
    } catch (err) {
      assert.ok((err as Error).message.startsWith(SYNC_READ_MESSAGE), (err as Error).message);
    }
    const next = tf.tidy(() => tf.add(onGpu, 1)); // the backend still works after a failed synchronous read
    assert.ok(Math.abs((await next.data())[0] - (await onGpu.data())[0] - 1) < 1e-3);
    tf.dispose([small, onGpu, next]);
  },
});
