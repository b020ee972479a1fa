/**
 * deno task bench [--backends onednn,wasm,webgpu,tensorflow,cpu] [--batch 64] [--steps 7] [--no-torch]
 *
 * Training and inference img/s of the reference CNN (FACTS.md) on every
 * available tfjs backend, measured in one run (median of several steps after
 * warm-up), GFLOP/s achieved against the machine's measured peak, memory per
 * training step against the batch's activations, and the same network in
 * PyTorch (bench/torch_reference.py) for the ratio line:
 *   ratio onednn/pytorch train=0.83 infer=1.10
 * Run it alone: anything else on the machine skews the figures.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { parseFlags, runCli, usage } from "../lib/config.ts";
import { initEngine } from "../lib/engine/mod.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { activationBytes, buildReferenceCnn, forwardFlops, REF_INPUT } from "./reference_cnn.ts";
import { createClassifier } from "../lib/models/mod.ts";

const SPEC = {
  backends: { type: "string", default: "onednn,wasm,webgpu,tensorflow,cpu", help: "backends to measure" },
  batch: { type: "int", positive: true, default: 64, help: "batch size" },
  steps: { type: "int", positive: true, default: 7, help: "timed steps (median)" },
  warmup: { type: "int", nonNegative: true, default: 2, help: "untimed steps first" },
  "cpu-batch": { type: "int", positive: true, default: 2, help: "batch for the (very slow) cpu backend's training" },
  "no-torch": { type: "boolean", default: false, help: "skip the PyTorch reference" },
  models: { type: "string", default: "compact_cnn,face_resnet", help: "project models to measure too (registry names; empty for none)" },
  "model-backends": { type: "string", default: "onednn,wasm", help: "backends for the project models" },
  "model-steps": { type: "int", positive: true, default: 3, help: "timed steps for the project models" },
  out: { type: "string", default: "bench/results", help: "where the JSON result goes" },
} as const;

export interface BackendResult {
  backend: string;
  available: boolean;
  reason: string;
  batch?: number;
  trainImgPerSec?: number;
  inferImgPerSec?: number;
  trainGflops?: number;
  inferGflops?: number;
  peakBytesPerStep?: number;
  activationBytes?: number;
  tensorsLeakedPerStep?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function timeSteps(fn: () => Promise<void> | void, steps: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await fn();
    ts.push((performance.now() - t) / 1000);
  }
  return median(ts);
}

function makeStep(model: tfl.LayersModel, opt: tf.Optimizer, x: tf.Tensor, y: tf.Tensor) {
  return async () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor), true) as tf.Scalar;
    await loss.data(); // async read: webgpu cannot read synchronously
    loss.dispose();
  };
}

async function measure(
  name: string,
  batch: number,
  steps: number,
  warmup: number,
  flops: number,
  build: () => Promise<tfl.LayersModel> = () => Promise.resolve(buildReferenceCnn()),
): Promise<BackendResult> {
  try {
    await initEngine({ backend: name, verbose: false });
  } catch (err) {
    return { backend: name, available: false, reason: (err as Error).message };
  }
  const model = await build();
  const x = tf.randomNormal([batch, ...REF_INPUT], 0, 1, "float32", 1);
  const classes = model.outputs[0].shape[1] as number;
  const y = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % classes), "int32"), classes);
  const opt = tf.train.adam(1e-3);
  const step = makeStep(model, opt, x, y);
  const cpu = name === "cpu";
  const trainSec = await timeSteps(step, cpu ? 1 : steps, cpu ? 0 : warmup);
  const before = tf.memory().numTensors;
  await step();
  const leaked = tf.memory().numTensors - before;
  const prof = await tf.profile(() => step());
  const xi = tf.randomNormal([cpu ? batch : 64, ...REF_INPUT]);
  const inferSec = await timeSteps(async () => {
    const out = model.predict(xi) as tf.Tensor;
    await out.data();
    out.dispose();
  }, cpu ? 2 : steps, cpu ? 1 : warmup);
  const inferBatch = xi.shape[0];
  tf.dispose([x, y, xi]);
  opt.dispose();
  model.dispose();
  const train = batch / trainSec, infer = inferBatch / inferSec;
  return {
    backend: name,
    available: true,
    reason: "",
    batch,
    trainImgPerSec: train,
    inferImgPerSec: infer,
    trainGflops: (train * 3 * flops) / 1e9,
    inferGflops: (infer * flops) / 1e9,
    peakBytesPerStep: prof.peakBytes,
    activationBytes: activationBytes(model, batch),
    tensorsLeakedPerStep: leaked,
  };
}

/** Practical peak: the best GFLOP/s of large float32 matMuls on the fastest backend available. */
async function measurePeak(name: string): Promise<number> {
  await initEngine({ backend: name, verbose: false });
  const n = 1536;
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  const sec = await timeSteps(async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }, 5, 1);
  tf.dispose([a, b]);
  return (2 * n ** 3) / sec / 1e9;
}

async function theoreticalPeak(): Promise<string> {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    const mhz = Number(/cpu MHz\s*:\s*([\d.]+)/.exec(info)?.[1] ?? 0);
    const avx512 = /\bavx512f\b/.test(info), fma = /\bfma\b/.test(info);
    const lanes = avx512 ? 16 : 8;
    const cores = navigator.hardwareConcurrency;
    // 2 FMA units × lanes × 2 flops per cycle per core.
    const gf = (cores * 2 * lanes * (fma ? 2 : 1) * mhz) / 1000;
    return `${gf.toFixed(0)} GFLOP/s theoretical (${cores} cores × ${avx512 ? "AVX-512" : "AVX2"} × 2 FMA units at ${mhz.toFixed(0)} MHz)`;
  } catch {
    return "theoretical peak unknown";
  }
}

async function torchReference(batch: number, steps: number): Promise<{ train_img_s?: number; infer_img_s?: number; error?: string; torch?: string }> {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const out = await new Deno.Command(py, {
        args: [join(import.meta.dirname!, "torch_reference.py"), "--batch", String(batch), "--steps", String(steps), "--threads", String(navigator.hardwareConcurrency)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
      const r = JSON.parse(line);
      if (!r.error) return r;
      if (py === "python3") return r;
    } catch { /* try the next */ }
  }
  return { error: "no python3 with PyTorch: apt-get install python3-torch" };
}

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("bench", Deno.args, SPEC);
    if (f.help) return void console.log(usage("bench", SPEC));
    await initEngine({ backend: "cpu", verbose: false });
    const probe = buildReferenceCnn();
    const flops = forwardFlops(probe);
    probe.dispose();
    console.log(`reference CNN: ${(flops / 1e6).toFixed(1)} MFLOP forward per image, ~${((3 * flops) / 1e9).toFixed(3)} GFLOP per training image; batch ${f.batch}`);
    const results: BackendResult[] = [];
    for (const name of f.backends.split(",").map((s) => s.trim()).filter(Boolean)) {
      let r: BackendResult;
      try {
        r = await measure(name, name === "cpu" ? f["cpu-batch"] : f.batch, f.steps, f.warmup, flops);
      } catch (err) {
        r = { backend: name, available: false, reason: `failed while measuring: ${(err as Error).message}` };
      }
      results.push(r);
      if (!r.available) console.log(`${name.padEnd(10)} unavailable: ${r.reason}`);
      else {
        console.log(
          `${name.padEnd(10)} train ${r.trainImgPerSec!.toFixed(1).padStart(7)} img/s (${r.trainGflops!.toFixed(1)} GFLOP/s, batch ${r.batch})` +
            `  infer ${r.inferImgPerSec!.toFixed(1).padStart(7)} img/s (${r.inferGflops!.toFixed(1)} GFLOP/s)` +
            `  step peak ${(r.peakBytesPerStep! / 2 ** 20).toFixed(0)} MiB = ${(r.peakBytesPerStep! / r.activationBytes!).toFixed(2)}× activations, leak ${r.tensorsLeakedPerStep} tensors/step`,
        );
      }
    }
    const fastest = results.filter((r) => r.available && r.backend !== "cpu").sort((a, b) => b.trainImgPerSec! - a.trainImgPerSec!)[0];
    let peak = 0;
    if (fastest) {
      peak = await measurePeak(fastest.backend);
      console.log(`practical peak: ${peak.toFixed(0)} GFLOP/s (1536² matMul on ${fastest.backend}); ${await theoreticalPeak()}`);
      for (const r of results.filter((r) => r.available)) {
        console.log(`${r.backend.padEnd(10)} ${((100 * r.trainGflops!) / peak).toFixed(0)}% of practical peak training, ${((100 * r.inferGflops!) / peak).toFixed(0)}% inference`);
      }
    }
    // The project's own classifiers (gender head), same measurement.
    const modelResults: (BackendResult & { model: string; params: number })[] = [];
    for (const modelName of f.models.split(",").map((x) => x.trim()).filter(Boolean)) {
      for (const name of f["model-backends"].split(",").map((x) => x.trim()).filter(Boolean)) {
        let params = 0, mflops = 0;
        const build = async () => {
          const { model } = await createClassifier(modelName, ["gender"]);
          params = model.countParams();
          mflops = forwardFlops(model);
          return model;
        };
        let r: BackendResult;
        try {
          r = await measure(name, f.batch, f["model-steps"], 1, 0, build);
          if (r.available) r.trainGflops = (r.trainImgPerSec! * 3 * mflops) / 1e9, r.inferGflops = (r.inferImgPerSec! * mflops) / 1e9;
        } catch (err) {
          r = { backend: name, available: false, reason: `failed while measuring: ${(err as Error).message}` };
        }
        modelResults.push({ ...r, model: modelName, params });
        console.log(r.available
          ? `${modelName.padEnd(12)} ${name.padEnd(7)} train ${r.trainImgPerSec!.toFixed(1).padStart(6)} img/s  infer ${r.inferImgPerSec!.toFixed(1).padStart(6)} img/s  (${(params / 1e6).toFixed(2)} M parameters, conv+dense ${(mflops / 1e6).toFixed(0)} MFLOP/image, batch ${f.batch})`
          : `${modelName.padEnd(12)} ${name.padEnd(7)} unavailable: ${r.reason}`);
      }
    }
    const torch = f["no-torch"] ? { error: "skipped (--no-torch)" } : await torchReference(f.batch, f.steps);
    if (torch.error) console.log(`pytorch    unavailable: ${torch.error}`);
    else console.log(`pytorch    train ${torch.train_img_s!.toFixed(1).padStart(7)} img/s  infer ${torch.infer_img_s!.toFixed(1).padStart(7)} img/s (torch ${torch.torch})`);
    await writeJsonAtomic(join(f.out, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), { flops, peak, results, modelResults, torch });
    const one = results.find((r) => r.backend === "onednn" && r.available);
    if (one && !torch.error) {
      console.log(`ratio onednn/pytorch train=${(one.trainImgPerSec! / torch.train_img_s!).toFixed(2)} infer=${(one.inferImgPerSec! / torch.infer_img_s!).toFixed(2)}`);
    } else {
      console.log(`ratio onednn/pytorch unavailable (${!one ? "onednn backend unavailable" : "pytorch unavailable"})`);
    }
  });
}
