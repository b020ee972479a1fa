// Tests for lib/engine/transform.ts (tf.image.transform's kernel on cpu and onednn): checked against tfjs' own cpu
// kernel one image at a time (it gets the first image of a batch right) and against the wasm backend's C++ kernel.
// Run: deno test -A tests/engine/transform_test.ts

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { registerTransformKernel, transformKernel } from "../../lib/engine/transform.ts";
import { registerOnednnBackend } from "../../lib/engine/onednn/mod.ts";
import { Rng } from "../../lib/util/rng.ts";

const require = createRequire(import.meta.url);
setWasmPaths(require.resolve("@tensorflow/tfjs-backend-wasm/package.json").replace(/package\.json$/, "dist/"));
const tfjsCpuTransform = tf.getKernel("Transform", "cpu")!.kernelFunc;
registerTransformKernel();
const onednn = await registerOnednnBackend();

const MODES = ["constant", "reflect", "wrap", "nearest"] as const;
const INTERPOLATIONS = ["nearest", "bilinear"] as const;

/**
 * Random images [b, h, w, c] and random near-identity maps (some samples land outside the image): projective, or
 * affine (the kernel's fast path with edge fill, bilinear sampling and 3 channels).
 */
function inputs(seed: number, b: number, h: number, w: number, c: number, affine = false) {
  const rng = new Rng(seed);
  const image = Float32Array.from({ length: b * h * w * c }, () => rng.uniform(-1, 1));
  const maps = new Float32Array(b * 8);
  for (let i = 0; i < b; i++) {
    maps.set([1 + rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(-4, 4), rng.uniform(-0.3, 0.3), 1 + rng.uniform(-0.3, 0.3), rng.uniform(-4, 4), affine ? 0 : rng.uniform(-0.01, 0.01), affine ? 0 : rng.uniform(-0.01, 0.01)], i * 8);
  }
  return { image, maps, shape: [b, h, w, c] as [number, number, number, number] };
}

/** tf.image.transform on `backend` for every fill mode and interpolation, as plain arrays. */
async function transformOn(backend: string, x: ReturnType<typeof inputs>, outputShape?: [number, number]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const out: Float32Array[] = [];
  for (const mode of MODES) {
    for (const interp of INTERPOLATIONS) {
      const y = tf.tidy(() => tf.image.transform(tf.tensor4d(x.image, x.shape), tf.tensor2d(x.maps, [x.shape[0], 8]), interp, mode, 0.25, outputShape));
      out.push(await y.data() as Float32Array);
      y.dispose();
    }
  }
  return out;
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst < 1e-5, `${what}: max difference ${worst}`);
}

Deno.test("the cpu Transform kernel equals the wasm backend's for every image, interpolation and fill mode but reflect, projective and affine maps, also with another output size", async () => {
  for (const [seed, outputShape, affine] of [[1, undefined, false], [2, [9, 13], false], [5, undefined, true], [6, [9, 13], true]] as const) {
    const x = inputs(seed, 3, 11, 7, 3, affine);
    const ours = await transformOn("cpu", x, outputShape as [number, number] | undefined);
    const wasm = await transformOn("wasm", x, outputShape as [number, number] | undefined);
    // wasm's reflect compares a coordinate with -len where len is unsigned (Transform.cc): wrong left of the image.
    ours.forEach((o, k) => MODES[k >> 1] !== "reflect" && assertClose(o, wasm[k], `${affine ? "affine" : "projective"} ${MODES[k >> 1]}/${INTERPOLATIONS[k & 1]}, output ${outputShape ?? "same"}`));
  }
  await tf.setBackend("cpu");
});

Deno.test("the cpu Transform kernel equals tfjs' own cpu kernel run one image at a time (what tfjs gets right) for every fill mode and interpolation, projective and affine maps; tfjs' returns the fill value for a batch's second image", async () => {
  await tf.setBackend("cpu");
  for (const [channels, affine] of [[2, false], [3, false], [3, true]] as const) {
    const x = inputs(3, 3, 10, 8, channels, affine), size = 80 * channels;
    const backend = tf.backend();
    const run = (fn: tf.KernelFunc, from: number, n: number, interpolation: string, fillMode: string) =>
      tf.tidy(() => {
        const image = tf.tensor4d(x.image.subarray(from * size, (from + n) * size), [n, 10, 8, channels]), transforms = tf.tensor2d(x.maps.subarray(from * 8, (from + n) * 8), [n, 8]);
        const info = fn({ inputs: { image, transforms }, attrs: { interpolation, fillMode, fillValue: 0.5 }, backend }) as tf.TensorInfo;
        return tf.engine().makeTensorFromTensorInfo(info).dataSync() as Float32Array;
      });
    for (const mode of MODES) {
      for (const interp of INTERPOLATIONS) {
        const batch = run(transformKernel, 0, 3, interp, mode);
        for (let i = 0; i < 3; i++) assertClose(batch.subarray(i * size, (i + 1) * size), run(tfjsCpuTransform, i, 1, interp, mode), `${channels} channels, ${affine ? "affine" : "projective"} ${mode}/${interp}, image ${i}`);
      }
    }
    if (channels === 2) assert.ok(run(tfjsCpuTransform, 0, 2, "bilinear", "reflect").subarray(size).every((v) => v === 0.5), "tfjs 4.22's cpu kernel fills the second image (if this fails, tfjs fixed it)");
  }
});

Deno.test("the onednn backend runs the same Transform kernel as cpu", { ignore: !onednn.available }, async () => {
  const x = inputs(4, 4, 12, 9, 3);
  const cpu = await transformOn("cpu", x), dnn = await transformOn("onednn", x);
  cpu.forEach((c, k) => assert.deepEqual(dnn[k], c));
  await tf.setBackend("cpu");
});
