/**
 * GPU check, self-contained (no sharp, polars or FFI, so `deno bundle` makes one file of it that runs
 * on a bare GPU machine): the tfjs webgpu backend on the reference CNN (training and inference, batch
 * 64) and on the GAN's discriminator + generator steps (DEFAULT_GAN_CONFIG's nets, batch 32, DiffAugment
 * color,translation,cutout and no mode-seeking term: the step as first measured, not gan:train's of today).
 *
 *   deno run -A --unstable-webgpu bench/gan_gpu.ts [--backend webgpu|cpu] [--kernels ours|stock] [--out FILE.json]
 *
 * Prints one line per measurement and writes them as JSON to --out. On webgpu the convolution gradients of
 * lib/engine/webgpu/ replace tfjs-webgpu's, as `--backend webgpu` does (--kernels stock: tfjs-webgpu's own).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { useWebgpuKernels } from "../lib/engine/webgpu/mod.ts";
import { buildReferenceCnn } from "./reference_cnn.ts";
import { DEFAULT_GAN_CONFIG } from "../lib/gan/nets.ts";
import { buildGanNets, discriminatorStep, generatorStep, latentsForSeeds } from "../lib/gan/steps.ts";
import { Rng } from "../lib/util/rng.ts";

const { values } = parseArgs({ args: Deno.args, options: { backend: { type: "string", default: "webgpu" }, kernels: { type: "string", default: "ours" }, out: { type: "string" }, steps: { type: "string", default: "10" } } });
const backend = values.backend!;
if (values.kernels !== "ours" && values.kernels !== "stock") throw new Error(`gan_gpu: expected --kernels ours|stock, got '${values.kernels}'`);
useWebgpuKernels(values.kernels === "ours");
if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialise`);
await tf.ready();
const adapter = backend === "webgpu" ? await (navigator as unknown as { gpu: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> } }).gpu.requestAdapter() : null;
// GPUAdapterInfo's fields are getters on its prototype: a spread copies none of them.
const info = adapter?.info;
const results: Record<string, unknown> = { backend, kernels: values.kernels, adapter: info ? { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description } : null, deno: Deno.version.deno };
console.log(`backend ${backend}`, JSON.stringify(results.adapter));
const steps = Number(values.steps);

async function timed(name: string, images: number, step: () => Promise<void>): Promise<void> {
  await step(); // warm-up: shader compilation
  await step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const s = (performance.now() - t0) / 1000;
  results[name] = { img_per_s: (images * steps) / s, ms_per_step: (1000 * s) / steps, numTensors: tf.memory().numTensors };
  console.log(`${name}: ${((images * steps) / s).toFixed(1)} img/s (${((1000 * s) / steps).toFixed(1)} ms/step)`);
}

// Reference CNN, batch 64.
{
  const model = buildReferenceCnn();
  const opt = tf.train.adam(1e-3);
  const x = tf.randomUniform([64, 108, 84, 3]);
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 2), "int32"), 2);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  await timed("reference_cnn_train", 64, async () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!;
    await loss.data();
    loss.dispose();
  });
  await timed("reference_cnn_infer", 64, async () => {
    const p = model.predict(x) as tf.Tensor;
    await p.data();
    p.dispose();
  });
  tf.dispose([x, y]);
  opt.dispose();
  model.dispose();
}

// GAN steps, default config, batch 32.
{
  const nets = buildGanNets(DEFAULT_GAN_CONFIG);
  const optG = tf.train.adam(2e-4, 0.5, 0.999), optD = tf.train.adam(2e-4, 0.5, 0.999);
  const real = tf.randomUniform([32, 108, 84, 3], -1, 1) as tf.Tensor4D;
  const z = latentsForSeeds(Array.from({ length: 32 }, (_, i) => i), DEFAULT_GAN_CONFIG.latentDim);
  const rng = new Rng(1);
  await timed("gan_step", 32, async () => {
    await discriminatorStep(nets, optD, { real, z }, "color,translation,cutout", rng);
    await generatorStep(nets, optG, { z }, "color,translation,cutout", rng);
  });
  tf.dispose([real, z]);
}
if (values.out) await Deno.writeTextFile(values.out, JSON.stringify(results, null, 2));
