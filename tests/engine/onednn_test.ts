// Tests of the "onednn" tfjs backend: every overridden kernel against the tfjs cpu backend on random shapes,
// training the small reference CNN, tensor and native memory stability, safety of output-array recycling.
// Run: deno test -A tests/engine/onednn_test.ts   (skipped when libdnnl.so.2 is absent)
import "../_cache_env.ts";
import * as tf from "@tensorflow/tfjs";
import { ONEDNN_KERNELS, registerOnednnBackend } from "../../lib/engine/onednn/mod.ts";
import { cacheStats } from "../../lib/engine/onednn/_ffi.ts";
import { kernelStats, resetKernelStats } from "../../lib/engine/onednn/_stats.ts";
import { poolStats } from "../../lib/engine/onednn/_memory.ts";
import { lazyStats } from "../../lib/engine/onednn/_backend.ts";
import { tapeStats } from "../../lib/engine/onednn/_tape.ts";

const status = await registerOnednnBackend();
const ignore = !status.available;
if (ignore) console.warn(`onednn tests skipped: ${status.reason}`);

// ---- helpers ----

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(1234);

/** A random float32 array of `shape` in [-1, 1) (plain data: tensors are made per backend). */
interface Data {
  shape: number[];
  values: Float32Array;
}
function data(shape: number[], lo = -1, hi = 1): Data {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = lo + (hi - lo) * rand();
  return { shape, values };
}
const T = (d: Data) => tf.tensor(d.values, d.shape, "float32");

/** Runs `fn` on the cpu and onednn backends and returns both results (as plain arrays + shapes). */
async function onBoth(
  fn: () => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: Data[]; dnn: Data[] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const out = tf.tidy(fn);
    const list = Array.isArray(out) ? out : [out];
    const res = list.map((t) => ({
      shape: t.shape.slice(),
      values: new Float32Array(t.dataSync()),
    }));
    tf.dispose(list);
    return res;
  };
  const cpu = await run("cpu");
  const dnn = await run("onednn");
  return { cpu, dnn };
}

/** max |a - ref| / max(1, max |ref|); NaN must match NaN and infinities must match exactly. */
function relErr(a: Float32Array, ref: Float32Array): number {
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const x = a[i], r = ref[i];
    if (x === r || (Number.isNaN(x) && Number.isNaN(r))) continue;
    if (!Number.isFinite(x) || !Number.isFinite(r)) return Infinity;
    maxDiff = Math.max(maxDiff, Math.abs(x - r));
    maxRef = Math.max(maxRef, Math.abs(r));
  }
  return maxDiff / Math.max(1, maxRef);
}

async function expectSame(
  what: string,
  fn: () => tf.Tensor | tf.Tensor[],
  tol = 1e-4,
): Promise<void> {
  const { cpu, dnn } = await onBoth(fn);
  if (cpu.length !== dnn.length) {
    throw new Error(`${what}: ${dnn.length} outputs, cpu gave ${cpu.length}`);
  }
  for (let i = 0; i < cpu.length; i++) {
    if (cpu[i].shape.join(",") !== dnn[i].shape.join(",")) {
      throw new Error(
        `${what}: shape [${dnn[i].shape}] but cpu gives [${cpu[i].shape}]`,
      );
    }
    const e = relErr(dnn[i].values, cpu[i].values);
    if (!(e <= tol)) {
      throw new Error(`${what}: relative error ${e.toExponential(2)} > ${tol}`);
    }
  }
}

/** Asserts that the overrides (not the cpu fallback) ran for these kernels since the last reset. */
function expectHandled(...names: string[]): void {
  const { hits, fallbacks } = kernelStats();
  for (const n of names) {
    if (!hits[n]) {
      throw new Error(
        `${n} never ran on oneDNN/fast path (fallbacks: ${fallbacks[n] ?? 0})`,
      );
    }
  }
}

const run = (
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: Record<string, unknown> = {},
) =>
  tf.engine().runKernel(
    name,
    inputs as unknown as tf.NamedTensorMap,
    attrs as tf.NamedAttrMap,
  ) as tf.Tensor;

// Convolution cases: [batch, h, w, inC, outC, kh, kw, stride, pad]
type Pad = "same" | "valid";
const CONV_CASES: [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  Pad,
][] = [
  [2, 9, 7, 3, 5, 3, 3, 2, "same"],
  [1, 8, 8, 4, 6, 3, 3, 1, "valid"],
  [3, 11, 10, 8, 16, 3, 3, 2, "valid"],
  [2, 7, 9, 5, 7, 1, 1, 1, "same"],
  [1, 13, 6, 17, 3, 5, 3, 2, "same"],
  [2, 10, 12, 32, 64, 3, 3, 2, "same"],
  [1, 6, 5, 1, 1, 2, 2, 1, "valid"],
  [4, 12, 10, 16, 8, 3, 3, 1, "same"],
  [2, 10, 9, 3, 4, 3, 3, 2, "valid"], // last input row unused (oneDNN's right padding 0 with floor division)
];

// ---- registration ----

Deno.test({
  name: "registerOnednnBackend reports oneDNN 2.x, is idempotent and lists the overridden kernels",
  ignore,
  async fn() {
    const again = await registerOnednnBackend();
    if (again !== status && JSON.stringify(again) !== JSON.stringify(status)) {
      throw new Error("not idempotent");
    }
    if (!status.version?.startsWith("2.")) {
      throw new Error(`version ${status.version}`);
    }
    const layout = Deno.env.get("ONEDNN_CONV_ACT");
    if (layout !== undefined ? status.convActivations !== layout : !["nhwc", "any"].includes(status.convActivations ?? "")) {
      throw new Error(`convolution activation layout ${status.convActivations} (ONEDNN_CONV_ACT=${layout})`);
    }
    for (
      const k of [
        "Conv2D",
        "FusedConv2D",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
        "BatchMatMul",
      ]
    ) {
      if (!ONEDNN_KERNELS.includes(k)) throw new Error(`${k} not overridden`);
    }
    const cpuKernels = tf.getKernelsForBackend("cpu").map((k) => k.kernelName)
      .sort();
    const ours = tf.getKernelsForBackend("onednn").map((k) => k.kernelName);
    const missing = cpuKernels.filter((k) => !ours.includes(k));
    if (missing.length > 0) {
      throw new Error(`cpu kernels missing on onednn: ${missing.join(", ")}`);
    }
  },
});

Deno.test({
  name: "without the library (here: no --allow-ffi) registerOnednnBackend reports why instead of throwing",
  async fn() {
    const dir = await Deno.makeTempDir();
    const script = `${dir}/probe.ts`;
    const mod = new URL("../../lib/engine/onednn/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { registerOnednnBackend } from "${mod}";\nconsole.log(JSON.stringify(await registerOnednnBackend()));\n`,
    );
    const config = new URL("../../deno.json", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", config, "--allow-read", "--no-prompt", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    await Deno.remove(dir, { recursive: true });
    const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
    if (!out.success) throw new Error(`probe failed: ${new TextDecoder().decode(out.stderr)}`);
    const st = JSON.parse(text);
    if (st.available !== false || !/ffi/.test(st.reason)) throw new Error(`unexpected status ${text}`);
  },
});

Deno.test("the output pool, when full (ONEDNN_POOL_MB=1, in a process of its own), drops the arrays freed longest ago: arrays of a new size are still reused, and the pool stays within its cap", async () => {
  const dir = await Deno.makeTempDir();
  const script = `${dir}/pool.ts`;
  const mem = new URL("../../lib/engine/onednn/_memory.ts", import.meta.url).href;
  await Deno.writeTextFile(
    script,
    `import { alloc, free, poolStats } from "${mem}";
// fill the 1 MiB pool with four 256 KiB arrays of one size (one batch's), then work with another size
const old = [0, 1, 2, 3].map(() => alloc(65536));
old.forEach((a) => free(a));
const full = poolStats().freeBytes;
const a = alloc(50000);
free(a);
const before = poolStats().reused;
const b = alloc(50000);
console.log(JSON.stringify({ full, sameArray: a === b, reused: poolStats().reused - before, freeBytes: poolStats().freeBytes }));
`,
  );
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", config, "--allow-read", "--allow-env", "--no-prompt", script],
    env: { ONEDNN_POOL_MB: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  if (!out.success) throw new Error(`probe failed: ${new TextDecoder().decode(out.stderr)}`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  if (r.full !== 2 ** 20) throw new Error(`the four arrays should fill the pool exactly: ${r.full} bytes`);
  if (!r.sameArray || r.reused !== 1) throw new Error(`an array of the new size was not reused from the full pool: ${JSON.stringify(r)}`);
  if (r.freeBytes !== 3 * 2 ** 18) throw new Error(`the pool should hold the 3 old arrays left after dropping one: ${r.freeBytes} bytes`);
});

// ---- convolutions ----

Deno.test({
  name: "onednn Conv2D and FusedConv2D match the cpu backend on random shapes, strides, paddings, activations",
  ignore,
  async fn() {
    resetKernelStats();
    const acts = [
      "linear",
      "relu",
      "relu6",
      "elu",
      "leakyrelu",
      "sigmoid",
    ] as const;
    for (const [i, [n, h, w, c, o, kh, kw, s, pad]] of CONV_CASES.entries()) {
      const x = data([n, h, w, c]), f = data([kh, kw, c, o]), b = data([o]);
      await expectSame(
        `conv2d ${CONV_CASES[i]}`,
        () => tf.conv2d(T(x) as tf.Tensor4D, T(f) as tf.Tensor4D, s, pad),
      );
      const activation = acts[i % acts.length];
      await expectSame(
        `fused conv2d ${activation} ${CONV_CASES[i]}`,
        () =>
          tf.fused.conv2d({
            x: T(x) as tf.Tensor4D,
            filter: T(f) as tf.Tensor4D,
            strides: s,
            pad,
            bias: T(b),
            activation,
            leakyreluAlpha: 0.1,
          }),
      );
    }
    // dilation 2, NCHW, explicit padding, prelu (cpu fallback inside the override)
    const x = data([2, 11, 9, 4]), f = data([3, 3, 4, 6]);
    await expectSame(
      "conv2d dilation 2",
      () =>
        tf.conv2d(
          T(x) as tf.Tensor4D,
          T(f) as tf.Tensor4D,
          1,
          "same",
          "NHWC",
          2,
        ),
    );
    await expectSame(
      "conv2d explicit padding",
      () =>
        tf.conv2d(T(x) as tf.Tensor4D, T(f) as tf.Tensor4D, 2, [
          [0, 0],
          [1, 2],
          [2, 0],
          [0, 0],
        ]),
    );
    const xc = data([2, 4, 11, 9]);
    await expectSame(
      "conv2d NCHW",
      () =>
        run("Conv2D", { x: T(xc), filter: T(f) }, {
          strides: [1, 1],
          pad: "same",
          dataFormat: "NCHW",
          dilations: [1, 1],
        }),
    );
    await expectSame("fused conv2d prelu", () =>
      tf.fused.conv2d({
        x: T(x) as tf.Tensor4D,
        filter: T(f) as tf.Tensor4D,
        strides: 1,
        pad: "same",
        activation: "prelu",
        preluActivationWeights: tf.scalar(0.3),
      }));
    expectHandled("Conv2D", "FusedConv2D");
  },
});

Deno.test({
  name: "onednn Conv2DBackpropInput matches the cpu backend on random shapes",
  ignore,
  async fn() {
    resetKernelStats();
    for (const c of CONV_CASES) {
      const [n, h, w, ci, o, kh, kw, s, pad] = c;
      const f = data([kh, kw, ci, o]);
      const outShape = tf.tidy(() =>
        tf.conv2d(
          tf.zeros([n, h, w, ci]) as tf.Tensor4D,
          T(f) as tf.Tensor4D,
          s,
          pad,
        ).shape
      );
      const dy = data(outShape);
      await expectSame(
        `conv2dBackpropInput ${c}`,
        () =>
          run("Conv2DBackpropInput", { dy: T(dy), filter: T(f) }, {
            inputShape: [n, h, w, ci],
            strides: [s, s],
            pad,
            dataFormat: "NHWC",
          }),
      );
    }
    expectHandled("Conv2DBackpropInput");
  },
});

Deno.test({
  name: "onednn Conv2DBackpropFilter matches the cpu backend on random shapes",
  ignore,
  async fn() {
    resetKernelStats();
    for (const c of CONV_CASES) {
      const [n, h, w, ci, o, kh, kw, s, pad] = c;
      const x = data([n, h, w, ci]);
      const outShape = tf.tidy(() =>
        tf.conv2d(
          T(x) as tf.Tensor4D,
          tf.zeros([kh, kw, ci, o]) as tf.Tensor4D,
          s,
          pad,
        ).shape
      );
      const dy = data(outShape);
      await expectSame(
        `conv2dBackpropFilter ${c}`,
        () =>
          run("Conv2DBackpropFilter", { x: T(x), dy: T(dy) }, {
            strides: [s, s],
            pad,
            dataFormat: "NHWC",
            filterShape: [kh, kw, ci, o],
          }),
      );
    }
    expectHandled("Conv2DBackpropFilter");
  },
});

Deno.test({
  name: "onednn depthwise convolutions and their gradients match the cpu backend",
  ignore,
  async fn() {
    resetKernelStats();
    for (
      const [n, h, w, c, m, k, s, pad] of [[2, 9, 8, 4, 1, 3, 1, "same"], [
        1,
        11,
        7,
        3,
        2,
        3,
        2,
        "valid",
      ], [
        3,
        8,
        10,
        8,
        2,
        5,
        2,
        "same",
      ]] as [number, number, number, number, number, number, number, Pad][]
    ) {
      const x = data([n, h, w, c]), f = data([k, k, c, m]);
      const what = `depthwise ${[n, h, w, c, m, k, s, pad]}`;
      await expectSame(
        what,
        () => tf.depthwiseConv2d(T(x) as tf.Tensor4D, T(f) as tf.Tensor4D, s, pad),
      );
      await expectSame(`${what} grads`, () => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.square(
              tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad),
            ),
          )
        );
        return g([T(x), T(f)]);
      });
    }
    expectHandled(
      "DepthwiseConv2dNative",
      "DepthwiseConv2dNativeBackpropInput",
      "DepthwiseConv2dNativeBackpropFilter",
    );
  },
});

Deno.test({
  name: "a convolution input gradient that nothing reads is never computed, and its inputs are released",
  ignore,
  async fn() {
    await tf.setBackend("onednn");
    const x = tf.randomNormal([2, 12, 10, 3]) as tf.Tensor4D;
    const f1 = tf.randomNormal([3, 3, 3, 8]) as tf.Tensor4D, b1 = tf.randomNormal([8]);
    const f2 = tf.randomNormal([3, 3, 8, 4]) as tf.Tensor4D;
    const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.conv2d(
        tf.fused.conv2d({ x, filter: a as tf.Tensor4D, bias: b, strides: 1, pad: "same" }),
        c as tf.Tensor4D,
        2,
        "same",
      ));
    tf.dispose(tf.grads(loss)([f1, b1, f2])); // warm-up
    const ids0 = tf.engine().backend.numDataIds();
    const before = { ...lazyStats };
    const grads = tf.grads(loss)([f1, b1, f2]);
    const made = lazyStats.created - before.created, computed = lazyStats.computed - before.computed;
    tf.dispose(grads);
    const ids1 = tf.engine().backend.numDataIds();
    tf.dispose([x, f1, b1, f2]);
    // the fused layer's input gradient (d loss / d x) is made lazily and dropped unread
    if (made < 1 || computed >= made) throw new Error(`lazy outputs made ${made}, computed ${computed}`);
    if (ids1 !== ids0) throw new Error(`backend data ids ${ids0} -> ${ids1}`);
  },
});

// ---- matmul ----

Deno.test({
  name: "onednn BatchMatMul and _FusedMatMul match the cpu backend with transposes, batches and activations",
  ignore,
  async fn() {
    resetKernelStats();
    const cases: [number[], number[], boolean, boolean][] = [
      [[7, 5], [5, 3], false, false],
      [[5, 7], [5, 3], true, false],
      [[7, 5], [3, 5], false, true],
      [[5, 7], [3, 5], true, true],
      [[4, 6, 9], [4, 9, 2], false, false],
      [[4, 6, 9], [9, 2], false, false],
      [[6, 9], [3, 9, 2], false, false],
      [[2, 3, 9, 6], [2, 3, 2, 9], true, true],
      [[64, 256], [256, 2], false, false],
      [[1, 1], [1, 1], false, false],
    ];
    for (const [as, bs, ta, tb] of cases) {
      const a = data(as), b = data(bs);
      await expectSame(
        `matMul ${as} ${bs} ${ta} ${tb}`,
        () => tf.matMul(T(a), T(b), ta, tb),
      );
      const nOut = tb ? bs[bs.length - 2] : bs[bs.length - 1];
      const bias = data([nOut]);
      for (const activation of ["relu", "linear", "sigmoid"] as const) {
        await expectSame(
          `fused matMul ${activation} ${as} ${bs}`,
          () =>
            tf.fused.matMul({
              a: T(a),
              b: T(b),
              transposeA: ta,
              transposeB: tb,
              bias: T(bias),
              activation,
            }),
        );
      }
    }
    expectHandled("BatchMatMul", "_FusedMatMul");
  },
});

// ---- pooling ----

Deno.test({
  name: "onednn MaxPool, AvgPool and their gradients match the cpu backend",
  ignore,
  async fn() {
    resetKernelStats();
    const cases: [number[], number, number, Pad][] = [
      [[2, 9, 8, 3], 2, 2, "valid"],
      [[1, 9, 7, 5], 3, 2, "same"],
      [[3, 8, 8, 16], 3, 1, "same"],
      [[2, 11, 10, 4], 3, 2, "valid"],
      [[1, 5, 6, 2], 2, 1, "valid"],
    ];
    for (const [shape, k, s, pad] of cases) {
      const x = data(shape);
      const outShape = tf.tidy(() => tf.maxPool(tf.zeros<tf.Rank>(shape) as tf.Tensor4D, k, s, pad).shape as number[]);
      const wts = data(outShape);
      const what = `${shape} k${k} s${s} ${pad}`;
      await expectSame(
        `maxPool ${what}`,
        () => tf.maxPool(T(x) as tf.Tensor4D, k, s, pad),
      );
      await expectSame(
        `avgPool ${what}`,
        () => tf.avgPool(T(x) as tf.Tensor4D, k, s, pad),
      );
      await expectSame(
        `maxPool grad ${what}`,
        () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, pad), T(wts))))(T(x)),
      );
      await expectSame(
        `avgPool grad ${what}`,
        () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.avgPool(a as tf.Tensor4D, k, s, pad))))(T(x)),
      );
    }
    expectHandled("MaxPool", "AvgPool", "MaxPoolGrad", "AvgPoolGrad");
  },
});

Deno.test({
  name: "the cpu backend's ResizeNearestNeighborGrad sums each image's own 2×2 blocks of dy (tfjs 4.22's reads other rows after the first image)",
  ignore,
  async fn() {
    await tf.setBackend("cpu");
    const [n, h, w, c] = [3, 2, 3, 2];
    const dy = data([n, 2 * h, 2 * w, c]);
    const got = tf.tidy(() => {
      const up = (a: tf.Tensor) => tf.image.resizeNearestNeighbor(a as tf.Tensor4D, [2 * h, 2 * w]);
      return tf.grad((a: tf.Tensor) => tf.sum(tf.mul(up(a), T(dy))))(tf.zeros([n, h, w, c])).dataSync();
    });
    const at = (b: number, y: number, x: number, ch: number) => dy.values[((b * 2 * h + y) * 2 * w + x) * c + ch];
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          for (let ch = 0; ch < c; ch++) {
            const want = at(b, 2 * y, 2 * x, ch) + at(b, 2 * y, 2 * x + 1, ch) + at(b, 2 * y + 1, 2 * x, ch) + at(b, 2 * y + 1, 2 * x + 1, ch);
            const i = ((b * h + y) * w + x) * c + ch;
            if (Math.abs(got[i] - want) > 1e-5) throw new Error(`image ${b} (${y},${x},${ch}): got ${got[i]}, want ${want}`);
          }
        }
      }
    }
  },
});

// ---- element-wise, reductions, batch norm ----

Deno.test({
  name: "onednn element-wise binary ops match the cpu backend for every broadcast pattern, small and large",
  ignore,
  async fn() {
    resetKernelStats();
    const pairs: [number[], number[]][] = [
      [[3, 5, 4, 7], [3, 5, 4, 7]],
      [[3, 5, 4, 7], [7]],
      [[7], [3, 5, 4, 7]],
      [[3, 5, 4, 7], []],
      [[], [3, 5, 4, 7]],
      [[6, 1], [6, 9]],
      [[1, 9], [6, 1]],
      [[3, 1, 4, 7], [3, 5, 1, 1]],
      [[16, 40, 30, 8], [1, 1, 1, 8]], // large: oneDNN path
      [[16, 40, 30, 8], [16, 40, 30, 8]],
      [[8], [16, 40, 30, 8]],
      [[16, 40, 30, 8], [16, 1, 1, 8]],
    ];
    const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
      ["add", tf.add],
      ["sub", tf.sub],
      ["mul", tf.mul],
      ["div", tf.div],
      ["squaredDifference", tf.squaredDifference],
      ["maximum", tf.maximum],
      ["minimum", tf.minimum],
    ];
    for (const [as, bs] of pairs) {
      const a = data(as), b = data(bs, 0.5, 2);
      for (const [name, op] of ops) {
        await expectSame(`${name} [${as}] [${bs}]`, () => op(T(a), T(b)), 1e-6);
      }
    }
    expectHandled(
      "Add",
      "Sub",
      "Multiply",
      "RealDiv",
      "SquaredDifference",
      "Maximum",
      "Minimum",
    );
  },
});

Deno.test({
  name: "onednn unary ops match the cpu backend, including zeros, negative zero and NaN",
  ignore,
  async fn() {
    resetKernelStats();
    for (const n of [37, 100_003]) {
      const x = data([n], -3, 3);
      x.values[0] = 0;
      x.values[1] = -0;
      x.values[2] = NaN;
      x.values[3] = Infinity;
      x.values[4] = -Infinity;
      const pos = data([n], 0.01, 4), mid = data([n], -3, 3);
      const ops: [string, () => tf.Tensor, number][] = [
        ["relu", () => tf.relu(T(x)), 0],
        ["relu6", () => tf.relu6(T(x)), 0],
        ["step", () => tf.step(T(x)), 0],
        ["step alpha", () => tf.step(T(x), 0.25), 0],
        ["square", () => tf.square(T(x)), 1e-6],
        ["neg", () => tf.neg(T(x)), 0],
        ["abs", () => tf.abs(T(x)), 0],
        ["exp", () => tf.exp(T(mid)), 1e-5],
        ["sigmoid", () => tf.sigmoid(T(mid)), 1e-5],
        ["tanh", () => tf.tanh(T(x)), 1e-6],
        ["sqrt", () => tf.sqrt(T(pos)), 1e-6],
        ["rsqrt", () => tf.rsqrt(T(pos)), 1e-5],
        ["log", () => tf.log(T(pos)), 1e-5],
        ["reciprocal", () => tf.reciprocal(T(pos)), 1e-5],
      ];
      for (const [name, fn, tol] of ops) {
        await expectSame(`${name} n=${n}`, fn, tol);
      }
    }
    expectHandled(
      "Relu",
      "Step",
      "Square",
      "Sqrt",
      "Exp",
      "Log",
      "Neg",
      "Abs",
      "Sigmoid",
      "Tanh",
      "Rsqrt",
    );
  },
});

Deno.test({
  name: "onednn Sum, Mean, Tile and FusedBatchNorm match the cpu backend",
  ignore,
  async fn() {
    resetKernelStats();
    const x = data([6, 5, 4, 9]);
    const big = data([32, 20, 16, 8]);
    for (
      const axes of [[0, 1, 2], [1, 2], [3], [2, 3], [0], [0, 3], [1], null]
    ) {
      for (const keepDims of [false, true]) {
        await expectSame(
          `sum ${axes} ${keepDims}`,
          () => tf.sum(T(x), axes ?? undefined, keepDims),
          1e-5,
        );
        await expectSame(
          `mean ${axes} ${keepDims}`,
          () => tf.mean(T(x), axes ?? undefined, keepDims),
          1e-5,
        );
        await expectSame(
          `big mean ${axes}`,
          () => tf.mean(T(big), axes ?? undefined, keepDims),
          1e-5,
        );
      }
    }
    const t1 = data([1, 1, 1, 8]), t2 = data([2, 3, 1]), t3 = data([5]);
    await expectSame("tile", () => tf.tile(T(t1), [4, 5, 3, 1]), 0);
    await expectSame("tile 2", () => tf.tile(T(t2), [3, 1, 4]), 0);
    await expectSame("tile 3", () => tf.tile(T(t3), [3]), 0);
    const c = 9;
    const mean = data([c]),
      variance = data([c], 0.1, 2),
      scale = data([c]),
      offset = data([c]);
    await expectSame(
      "batchNorm",
      () => tf.batchNorm(T(x), T(mean), T(variance), T(offset), T(scale), 0.001),
      1e-5,
    );
    await expectSame(
      "batchNorm no scale/offset",
      () => tf.batchNorm(T(x), T(mean), T(variance)),
      1e-5,
    );
    const bx = data([16, 40, 30, 8]), bm = data([8]), bv = data([8], 0.1, 2);
    const bs = data([8]), bo = data([8]);
    await expectSame("large batchNorm", () => tf.batchNorm(T(bx), T(bm), T(bv), T(bo), T(bs), 0.001), 1e-5);
    await expectSame("large batchNorm no scale", () => tf.batchNorm(T(bx), T(bm), T(bv), T(bo)), 1e-5);
    expectHandled("Sum", "Mean", "Tile", "FusedBatchNorm");
  },
});

Deno.test({
  name: "onednn Slice, PadV2, SplitV and Concat match the cpu backend bit for bit, LeakyRelu (oneDNN above 65,536 values) within float32 rounding with NaN, ±0 and ±Infinity kept",
  ignore,
  async fn() {
    resetKernelStats();
    const x = data([4, 112, 88, 3]), v = data([50]), c = data([3, 5, 6]), p = data([2, 3, 4]);
    await expectSame("crop", () => tf.slice(T(x), [0, 2, 2, 0], [4, 108, 84, 3]), 0);
    await expectSame("one image, shifted", () => tf.slice(T(x), [2, 5, 0, 0], [1, 100, 88, 3]), 0);
    await expectSame("size -1", () => tf.slice(T(x), [1, 0, 3, 1], [-1, -1, 80, 2]), 0);
    await expectSame("1-D", () => tf.slice(T(v), [7], [20]), 0);
    await expectSame("channels only", () => tf.slice(T(c), [0, 0, 2], [3, 5, 3]), 0);
    await expectSame("pad", () => tf.pad(T(x), [[0, 0], [13, 13], [11, 11], [0, 0]]), 0);
    await expectSame("pad value, all dims", () => tf.pad(T(p), [[1, 2], [0, 3], [2, 1]], 0.5), 0);
    await expectSame("pad gradient of a crop", () => tf.grad((a: tf.Tensor) => tf.sum(tf.slice(a, [0, 2, 2, 0], [4, 108, 84, 3])))(T(x)), 0);
    const xs = data([4, 112, 88, 3]);
    xs.values.set([0, -0, NaN, Infinity, -Infinity, 1e-40, -1e-40, -3, 3], 0);
    await expectSame("leakyRelu, large (oneDNN)", () => tf.leakyRelu(T(xs), 0.2), 1e-7);
    await expectSame("leakyRelu, small (JS)", () => tf.leakyRelu(T(p), 0.2), 0);
    const f = data([32, 10753]), m = data([2, 7, 6, 5]);
    await expectSame("split last axis, sizes", () => tf.split(T(f), [10752, 1], 1), 0);
    await expectSame("split, count, middle axis", () => tf.split(T(x), 4, 2), 0);
    await expectSame("split, -1 and negative axis", () => tf.split(T(m), [2, -1, 0], -1), 0);
    await expectSame("concat last axis", () => tf.concat([T(m), T(m), tf.slice(T(m), [0, 0, 0, 1], [2, 7, 6, 2])], 3), 0);
    await expectSame("concat first axis, 1-D", () => tf.concat([T(v), T(v)], 0), 0);
    await expectSame("concat gradient (a split)", () => tf.grad((a: tf.Tensor) => tf.sum(tf.square(tf.concat([a, tf.ones([32, 1])], 1))))(T(f)), 0);
    expectHandled("Slice", "PadV2", "LeakyRelu", "SplitV", "Concat");
  },
});

// ---- gradients (tape rewrites of _tape.ts) ----

/** Training-mode batch norm as tfjs-layers' BatchNormalization computes it: tf.moments, then tf.batchNorm. */
function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor | null, beta: tf.Tensor | null, eps = 1e-3): tf.Tensor {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  return tf.batchNorm(x, mean, variance, beta ?? undefined, gamma ?? undefined, eps);
}

Deno.test({
  name: "the training-mode BatchNorm gradient (one oneDNN primitive) matches the cpu backend's tape gradient",
  ignore,
  async fn() {
    for (const shape of [[32, 20, 16, 24], [4, 5, 3, 8], [6, 40, 7]]) {
      const x = data(shape, -2, 3), w = data(shape);
      const c = shape[shape.length - 1];
      const g = data([c], 0.5, 1.5), b = data([c]);
      resetKernelStats();
      const before = tapeStats.batchNorm;
      // loss = sum(w * bn(x)): non-trivial dy; gradients for x, gamma, beta
      await expectSame(`batchNorm grads ${shape}`, () => {
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(T(w), batchNormTraining(xx, gg, bb)));
        return tf.grads(f)([T(x), T(g), T(b)]);
      }, 2e-4);
      if (tapeStats.batchNorm === before) throw new Error(`${shape}: the BatchNorm tape node was not rewritten`);
      expectHandled("OnednnBatchNormGrad");
      // a loss that also reads the moments (their own gradient paths stay exact). (tfjs cannot take the
      // gradient of a batchNorm without scale or offset on any backend.)
      await expectSame(`batchNorm grads, moments in the loss ${shape}`, () => {
        const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
          const axes = Array.from({ length: xx.rank - 1 }, (_, i) => i);
          const { mean, variance } = tf.moments(xx, axes);
          const y = tf.batchNorm(xx, mean, variance, bb, gg, 1e-3);
          return tf.add(tf.sum(tf.mul(T(w), y)), tf.sum(tf.mul(tf.square(mean), tf.sqrt(variance))));
        };
        return tf.grads(f)([T(x), T(g), T(b)]);
      }, 2e-4);
    }
    // mean / variance that are not the moments of x: the tape gradient is kept (no rewrite)
    const x = data([8, 6, 5, 4]), m = data([4]), v = data([4], 0.5, 2), g = data([4]), b = data([4]);
    const before = tapeStats.batchNorm;
    await expectSame("batchNorm grads with given statistics", () => {
      const f = (xx: tf.Tensor, mm: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(tf.square(tf.batchNorm(xx, mm, vv, T(b), T(g))));
      return tf.grads(f)([T(x), T(m), T(v)]);
    });
    if (tapeStats.batchNorm !== before) throw new Error("a batchNorm with given statistics was rewritten");
  },
});

Deno.test({
  name: "Relu, LeakyRelu, bias-add, Sub, Mean and Square gradients with leaner tape entries match the cpu backend",
  ignore,
  async fn() {
    const shape = [16, 24, 20, 32];
    const x = data(shape), bias = data([32]), w = data(shape);
    // special values: zeros, -0, NaN, infinities in x and in the incoming gradient
    x.values.set([0, -0, NaN, Infinity, -Infinity, 1e-40, -1e-40], 0);
    w.values.set([Infinity, -Infinity, NaN, 2, 3, -1, -2, Infinity, -Infinity], 0);
    const relu0 = tapeStats.relu, shape0 = tapeStats.shapeOnly;
    resetKernelStats();
    await expectSame("conv-like bias + relu chain grads", () => {
      const f = (xx: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(T(w), tf.relu(tf.add(xx, bb))));
      return tf.grads(f)([T(x), T(bias)]);
    });
    expectHandled("OnednnReluGrad");
    if (tapeStats.relu === relu0 || tapeStats.shapeOnly === shape0) throw new Error("tape nodes not rewritten");
    // no NaN in x: the gradient takes oneDNN's pass (a NaN output sends it to the JS pass), infinite dy included
    const x2 = data(shape);
    x2.values.set([0, -0, Infinity, -Infinity, 1e-40, -1e-40, -1, 1, 0], 0);
    await expectSame("relu grads without NaN (oneDNN), ±Infinity in dy", () => {
      const f = (xx: tf.Tensor) => tf.sum(tf.mul(T(w), tf.relu(xx)));
      return tf.grads(f)([T(x2)]);
    });
    const leaky0 = tapeStats.leakyRelu;
    resetKernelStats();
    await expectSame("leaky relu grads (alpha 0.2), x used again after it", () => {
      const f = (xx: tf.Tensor) => tf.add(tf.sum(tf.mul(T(w), tf.leakyRelu(xx, 0.2))), tf.sum(tf.mul(xx, 0.5)));
      return tf.grads(f)([T(x)]);
    });
    expectHandled("OnednnLeakyReluGrad");
    if (tapeStats.leakyRelu === leaky0) throw new Error("LeakyRelu tape node not rewritten");
    const small = data([3, 5, 7]), col = data([3, 1, 7]);
    await expectSame("sub / mean / square grads", () => {
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.square(tf.sub(a, b)), tf.mean(tf.sub(b, a), [1], true)));
      return tf.grads(f)([T(small), T(col)]);
    }, 1e-5);
    // the input of relu is used elsewhere too (its gradient must add up)
    await expectSame("relu input reused", () => {
      const f = (xx: tf.Tensor) => {
        const s = tf.add(xx, 0.25);
        return tf.add(tf.sum(tf.relu(s)), tf.sum(tf.mul(s, s)));
      };
      return tf.grads(f)([T(small)]);
    }, 1e-5);
  },
});

// ---- training ----

/** The reference CNN's layer structure (FACTS.md) on a small input. */
function referenceCnn(inputShape: [number, number, number]): tf.LayersModel {
  const input = tf.input({ shape: inputShape });
  let x = tf.layers.conv2d({
    filters: 32,
    kernelSize: 3,
    strides: 2,
    padding: "same",
  }).apply(input);
  x = tf.layers.batchNormalization().apply(x);
  x = tf.layers.activation({ activation: "relu" }).apply(x);
  for (const filters of [64, 128, 256]) {
    x = tf.layers.conv2d({
      filters,
      kernelSize: 3,
      strides: 2,
      padding: "same",
      activation: "relu",
    }).apply(x);
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x);
  const out = tf.layers.dense({ units: 2, activation: "softmax" }).apply(
    x,
  ) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

Deno.test({
  name: "training the small reference CNN gives the same losses and weights on onednn and cpu",
  ignore,
  async fn() {
    const inputShape: [number, number, number] = [22, 18, 3];
    const xs = data([4, ...inputShape], 0, 1);
    const labels = [0, 1, 1, 0];
    // Seeded kernels (the other weights start as constants), so the comparison is reproducible.
    const kernels = new Map<number, Data>();
    const train = async (backend: string) => {
      await tf.setBackend(backend);
      const model = referenceCnn(inputShape);
      model.setWeights(
        model.getWeights().map((w, i) => {
          if (w.shape.length < 2) return w;
          const fanIn = w.shape.slice(0, -1).reduce((p, d) => p * d, 1), a = Math.sqrt(3 / fanIn);
          if (!kernels.has(i)) kernels.set(i, data(w.shape, -a, a));
          return T(kernels.get(i)!);
        }),
      );
      model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
      const x = T(xs), y = tf.oneHot(tf.tensor1d(labels, "int32"), 2);
      const losses: number[] = [];
      for (let i = 0; i < 4; i++) losses.push(await model.trainOnBatch(x, y) as number);
      const weights = model.getWeights().map((w) => new Float32Array(w.dataSync()));
      tf.dispose([x, y]);
      model.dispose();
      return { losses, weights };
    };
    const cpu = await train("cpu");
    resetKernelStats();
    const dnn = await train("onednn");
    const report = `losses cpu ${cpu.losses.join(", ")}; onednn ${dnn.losses.join(", ")}`;
    for (let i = 0; i < cpu.losses.length; i++) {
      const e = Math.abs(cpu.losses[i] - dnn.losses[i]) / Math.max(1, Math.abs(cpu.losses[i]));
      if (!(e < 1e-4)) throw new Error(`step ${i}: relative loss difference ${e.toExponential(2)}; ${report}`);
    }
    if (cpu.losses[3] >= cpu.losses[0]) throw new Error(`loss did not decrease: ${report}`);
    for (let i = 0; i < cpu.weights.length; i++) {
      // Weight 1 is the bias of the conv feeding BatchNorm: its true gradient is 0, so Adam turns rounding
      // noise into +-lr steps on either backend; it is not comparable.
      if (i === 1) continue;
      const e = relErr(dnn.weights[i], cpu.weights[i]);
      if (!(e < 1e-4)) throw new Error(`weight ${i}: relative error ${e.toExponential(2)}`);
    }
    expectHandled("FusedConv2D", "Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "FusedBatchNorm", "Mean");
  },
});

Deno.test({
  name: "training on onednn leaves tf.memory().numTensors unchanged across steps",
  ignore,
  async fn() {
    await tf.setBackend("onednn");
    const model = referenceCnn([30, 26, 3]);
    model.compile({
      optimizer: tf.train.adam(1e-3),
      loss: "categoricalCrossentropy",
    });
    const x = tf.randomUniform([8, 30, 26, 3]),
      y = tf.oneHot(tf.tensor1d([0, 1, 0, 1, 1, 0, 0, 1], "int32"), 2);
    await model.trainOnBatch(x, y);
    await model.trainOnBatch(x, y);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await model.trainOnBatch(x, y);
    const after = tf.memory().numTensors;
    tf.dispose([x, y]);
    model.dispose();
    if (after !== before) throw new Error(`numTensors ${before} -> ${after}`);
  },
});

// ---- native memory, caches, recycling ----

Deno.test({
  name: "repeated same-shape calls reuse cached primitives and do not grow native memory",
  ignore,
  async fn() {
    await tf.setBackend("onednn");
    const x = tf.randomNormal([8, 40, 36, 16]) as tf.Tensor4D,
      f = tf.randomNormal([3, 3, 16, 32]) as tf.Tensor4D;
    const step = () =>
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            tf.relu(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, "same")),
          )
        );
        const [dx, df] = g([x, f]);
        return tf.add(tf.sum(dx), tf.sum(df)).dataSync()[0];
      });
    for (let i = 0; i < 3; i++) step();
    const c0 = cacheStats();
    const rss0 = Deno.memoryUsage().rss;
    for (let i = 0; i < 40; i++) step();
    const c1 = cacheStats();
    const grow = (Deno.memoryUsage().rss - rss0) / 2 ** 20;
    tf.dispose([x, f]);
    if (c1.created !== c0.created) {
      throw new Error(`plans created: ${c0.created} -> ${c1.created}`);
    }
    if (c1.scratchBytes !== c0.scratchBytes) {
      throw new Error(`scratch: ${c0.scratchBytes} -> ${c1.scratchBytes}`);
    }
    if (grow > 64) {
      throw new Error(
        `rss grew by ${grow.toFixed(1)} MiB over 40 identical steps`,
      );
    }
  },
});

Deno.test({
  name: "recycled output arrays never overwrite data handed out by dataSync or held by cpu-kernel views",
  ignore,
  async fn() {
    await tf.setBackend("onednn");
    const src = tf.randomNormal([64, 32, 8]);
    // 1. an array returned by dataSync stays intact after its tensor is disposed and others are computed
    const a = tf.relu(src);
    const va = a.dataSync();
    const copy = va.slice();
    a.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.relu(tf.neg(src)));
    // 2. a slice (cpu kernel, a subarray view of its input) stays intact after its input is disposed
    const b = tf.mul(src, 2);
    const s = tf.slice(b, [3], [10]);
    const sCopy = s.dataSync().slice();
    b.dispose();
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(src, -3));
    const sNow = s.dataSync();
    tf.dispose([s, src]);
    if (!va.every((v, i) => v === copy[i])) {
      throw new Error("a dataSync()'d array was overwritten");
    }
    if (!sNow.every((v, i) => v === sCopy[i])) {
      throw new Error("a slice view was overwritten");
    }
    if (poolStats().reused === 0) {
      throw new Error("the output pool was never used");
    }
  },
});

Deno.test({
  name: "in both convolution activation layouts (ONEDNN_CONV_ACT=nhwc and any) and in NHWC with oneDNN capped at AVX2 (the RGB input layer in NHWC too), each in a process of its own, the backend reports the layout set, and convolutions, their gradients and reference-CNN training match the cpu backend",
  ignore,
  async fn() {
    const tests = /^(registerOnednnBackend reports|onednn Conv2D|onednn Conv2DBackprop|onednn depthwise|training the small reference CNN)/;
    const avx2 = { DNNL_MAX_CPU_ISA: "AVX2", ONEDNN_MAX_CPU_ISA: "AVX2" };
    for (const [layout, isa] of [["nhwc", {}], ["any", {}], ["nhwc", avx2]] as const) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["test", "-A", "--no-check", "--filter", `/${tests.source}/`, import.meta.filename!],
        env: { ONEDNN_CONV_ACT: layout, ...isa },
        stdout: "piped",
        stderr: "piped",
      }).output();
      // deno-lint-ignore no-control-regex
      const text = new TextDecoder().decode(out.stdout).replace(/\x1b\[[0-9;]*m/g, "");
      const summary = /ok \| (\d+) passed \| 0 failed/.exec(text);
      if (out.code !== 0 || !summary || Number(summary[1]) !== 6) {
        throw new Error(`ONEDNN_CONV_ACT=${layout} ${JSON.stringify(isa)}: exit ${out.code}\n${text.slice(-3000)}${new TextDecoder().decode(out.stderr).slice(-1000)}`);
      }
    }
  },
});
