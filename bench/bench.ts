/**
 * deno task bench [--backends onednn,wasm,webgpu,tensorflow,cpu] [--batch 64] [--steps 7] [--no-torch]
 *                 [--ratio-models ref,compact_cnn,gan_step,face_resnet] [--rounds 3] [--model-batch 0]
 *
 * Training and inference img/s of the reference CNN (FACTS.md) on every
 * available tfjs backend, measured in one run (median of several steps after
 * warm-up), GFLOP/s achieved against the machine's measured peak, memory per
 * training step against the batch's activations, the project's models on
 * onednn and wasm, and then onednn against PyTorch on the networks users run
 * (bench/project_nets.ts; their twins in bench/torch_reference.py). The engines
 * take turns: --rounds rounds of [onednn, PyTorch] per network, each
 * measurement after its own warm-up; per network the median ratio over the
 * rounds with its spread, after both engines' parameter counts:
 *   gan_step     parameters onednn 6,244,820 (trainable 6,243,956) = pytorch 6,244,820 (…), batch 32
 *   ratio onednn/pytorch model=gan_step train=0.84 (0.80–0.88, 3 rounds) infer=1.10 (1.02–1.15, 3 rounds)
 * A count that differs is a loud WARNING (the two engines would run different networks). Without
 * PyTorch (or with --no-torch) the ratio lines are skipped with a one-line note.
 * Run it alone: anything else on the machine skews the figures.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { parseFlags, runCli, usage, UsageError } from "../lib/config.ts";
import { initEngine } from "../lib/engine/mod.ts";
import { adam } from "../lib/engine/adam.ts";
import { writeJsonAtomic } from "../lib/util/fs.ts";
import { activationBytes, buildReferenceCnn, forwardFlops, REF_INPUT } from "./reference_cnn.ts";
import { createClassifier } from "../lib/models/mod.ts";
import { type NetBench, RATIO_MODELS, RATIO_NETS, type RatioModel } from "./project_nets.ts";

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
  "ratio-models": { type: "string", default: RATIO_MODELS.join(","), help: `networks timed on onednn and PyTorch in turns (${RATIO_MODELS.join(", ")}; empty for none)` },
  rounds: { type: "int", positive: true, default: 3, help: "rounds of [onednn, PyTorch] per network (--steps timed after --warmup each)" },
  "model-batch": { type: "int", nonNegative: true, default: 0, help: "batch of the compared networks other than ref (0 = each one's training batch; ref takes --batch)" },
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
  const opt = adam(1e-3);
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

/** What bench/torch_reference.py prints (one JSON line). */
export interface TorchResult {
  error?: string;
  model?: string;
  batch?: number;
  train_img_s?: number;
  infer_img_s?: number;
  params?: number;
  trainable_params?: number;
  params_detail?: Record<string, number>;
  threads?: number;
  torch?: string;
  channels_last?: boolean;
  /** The BLAS PyTorch's Linear and ConvTranspose2d run through: openblas, mkl, blis, reference (netlib) or a path. */
  blas?: string;
  omp_wait_policy?: string;
}

let python: string | null = null;

/** Runs bench/torch_reference.py with `args` under the first python3 that has PyTorch (/usr/bin/python3 first). */
async function torchReference(args: string[]): Promise<TorchResult> {
  let last: TorchResult = { error: "no python3 found: apt-get install python3-torch" };
  for (const py of python ? [python] : ["/usr/bin/python3", "python3"]) {
    try {
      const out = await new Deno.Command(py, {
        args: [join(import.meta.dirname!, "torch_reference.py"), ...args, "--threads", String(navigator.hardwareConcurrency)],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
      let r: TorchResult;
      try {
        r = JSON.parse(line);
      } catch {
        const err = new TextDecoder().decode(out.stderr).trim().split("\n").pop() ?? "";
        r = { error: `${py} bench/torch_reference.py ${args.join(" ")} failed (exit ${out.code}): ${err || line || "no output"}` };
      }
      if (!r.error) {
        python = py;
        return r;
      }
      last = r;
    } catch { /* not installed: try the next */ }
  }
  return last;
}

interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1] };
}

export interface RatioResult {
  model: RatioModel;
  batch: number;
  params: { onednn: number; onednnTrainable: number; pytorch?: number; pytorchTrainable?: number; detail?: Record<string, { onednn: number; pytorch?: number }> };
  paramsMatch: boolean;
  rounds: { onednn: { train_img_s: number; infer_img_s: number }; pytorch: { train_img_s: number; infer_img_s: number } }[];
  train?: Spread;
  infer?: Spread;
  torch?: string;
  blas?: string;
  error?: string;
}

async function timeNet(net: NetBench, steps: number, warmup: number): Promise<{ train_img_s: number; infer_img_s: number }> {
  const train = await timeSteps(() => net.train(), steps, warmup);
  const infer = await timeSteps(() => net.infer(), steps, warmup);
  return { train_img_s: net.batch / train, infer_img_s: net.batch / infer };
}

const fmtInt = (n: number | undefined) => n === undefined ? "?" : n.toLocaleString("en-US");
const fmtSpread = (s: Spread, n: number) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)}, ${n} round${n === 1 ? "" : "s"})`;

/**
 * One network on onednn and PyTorch in turns: `rounds` × [onednn (warm-up, timed steps), PyTorch (its own
 * process: warm-up, timed steps)], the tfjs model built once. Prints each round, the parameter counts (a
 * WARNING when they differ) and the ratio line.
 */
async function compareNetwork(model: RatioModel, batch: number, opts: { rounds: number; steps: number; warmup: number }): Promise<RatioResult> {
  let net: NetBench;
  try {
    net = await RATIO_NETS[model].build(batch);
  } catch (err) {
    const error = `building it on onednn failed: ${(err as Error).message}`;
    console.log(`ratio onednn/pytorch model=${model} unavailable: ${error}`);
    return { model, batch, params: { onednn: 0, onednnTrainable: 0 }, paramsMatch: false, rounds: [], error };
  }
  const res: RatioResult = {
    model,
    batch,
    params: { onednn: net.params, onednnTrainable: net.trainableParams },
    paramsMatch: false,
    rounds: [],
  };
  const name = model.padEnd(12);
  try {
    for (let r = 0; r < opts.rounds; r++) {
      const one = await timeNet(net, opts.steps, opts.warmup);
      const pt = await torchReference(["--model", model, "--batch", String(batch), "--steps", String(opts.steps), "--warmup", String(opts.warmup)]);
      if (pt.error) {
        res.error = pt.error;
        break;
      }
      if (r === 0) {
        res.torch = pt.torch;
        res.blas = pt.blas;
        res.params.pytorch = pt.params;
        res.params.pytorchTrainable = pt.trainable_params;
        if (net.paramsDetail) {
          res.params.detail = Object.fromEntries(Object.entries(net.paramsDetail).map(([k, v]) => [k, { onednn: v, pytorch: pt.params_detail?.[k] }]));
        }
      }
      const p = { train_img_s: pt.train_img_s!, infer_img_s: pt.infer_img_s! };
      res.rounds.push({ onednn: one, pytorch: p });
      console.log(`${name} round ${r + 1}/${opts.rounds}  onednn train ${one.train_img_s.toFixed(1).padStart(6)} infer ${one.infer_img_s.toFixed(1).padStart(6)} img/s` +
        `  pytorch train ${p.train_img_s.toFixed(1).padStart(6)} infer ${p.infer_img_s.toFixed(1).padStart(6)} img/s  (batch ${batch})`);
    }
  } finally {
    net.dispose();
  }
  if (res.error) {
    console.log(`ratio onednn/pytorch model=${model} unavailable: ${res.error}`);
    return res;
  }
  const pp = res.params;
  const details = Object.entries(pp.detail ?? {});
  res.paramsMatch = pp.onednn === pp.pytorch && pp.onednnTrainable === pp.pytorchTrainable && details.every(([, d]) => d.onednn === d.pytorch);
  const detail = (side: "onednn" | "pytorch") => details.length ? `; ${details.map(([k, d]) => `${k} ${fmtInt(d[side])}`).join(", ")}` : "";
  console.log(`${name} parameters onednn ${fmtInt(pp.onednn)} (trainable ${fmtInt(pp.onednnTrainable)}${detail("onednn")}) ${res.paramsMatch ? "=" : "≠"} ` +
    `pytorch ${fmtInt(pp.pytorch)} (trainable ${fmtInt(pp.pytorchTrainable)}${detail("pytorch")}), batch ${batch}, torch ${res.torch}`);
  if (!res.paramsMatch) {
    const warning = `WARNING !!! ${model}: the parameter counts of onednn and PyTorch DIFFER — the two engines do not run the same network, so its ratio below compares different work; fix bench/torch_reference.py or bench/project_nets.ts !!!`;
    console.log(warning);
  }
  res.train = spread(res.rounds.map((r) => r.onednn.train_img_s / r.pytorch.train_img_s));
  res.infer = spread(res.rounds.map((r) => r.onednn.infer_img_s / r.pytorch.infer_img_s));
  const n = res.rounds.length;
  console.log(`ratio onednn/pytorch model=${model} train=${fmtSpread(res.train, n)} infer=${fmtSpread(res.infer, n)}` +
    (model === "gan_step" ? " (infer = generator forward)" : "") + (res.paramsMatch ? "" : " [PARAMETER COUNTS DIFFER]") +
    (model === "gan_step" && res.blas === "reference" ? " [PyTorch on reference BLAS]" : ""));
  return res;
}

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("bench", Deno.args, SPEC);
    if (f.help) return void console.log(usage("bench", SPEC));
    const ratioModels = f["ratio-models"].split(",").map((x) => x.trim()).filter(Boolean);
    for (const m of ratioModels) {
      if (!(RATIO_MODELS as readonly string[]).includes(m)) {
        throw new UsageError(`bench: expected --ratio-models to be a comma-separated list of ${RATIO_MODELS.join(", ")}, got '${m}'`);
      }
    }
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
    // onednn against PyTorch on the networks users run, the engines taking turns.
    const ratios: RatioResult[] = [];
    let torch: TorchResult = { error: "skipped (--no-torch)" };
    let skipped = "";
    if (!ratioModels.length) skipped = "no --ratio-models";
    else if (f["no-torch"]) skipped = "--no-torch";
    else {
      torch = await torchReference(["--model", ratioModels[0], "--count-only"]);
      if (torch.error) skipped = `PyTorch unavailable: ${torch.error}`;
      else {
        try {
          await initEngine({ backend: "onednn", verbose: false });
        } catch (err) {
          skipped = `onednn backend unavailable: ${(err as Error).message}`;
        }
      }
    }
    if (skipped) console.log(`ratio onednn/pytorch skipped (${skipped})`);
    else {
      console.log(`onednn vs pytorch (torch ${torch.torch}, ${torch.threads} threads${torch.channels_last ? ", channels-last" : ""}, BLAS ${torch.blas || "unknown"}, ` +
        `OMP_WAIT_POLICY=${torch.omp_wait_policy || "unset"} for both): ${f.rounds} round(s) of [onednn, pytorch] per network, ${f.steps} timed steps after ${f.warmup} warm-up each`);
      if (torch.blas === "reference") {
        console.log("WARNING: this PyTorch runs Linear and ConvTranspose2d through netlib's reference BLAS (Debian's default libblas3), " +
          "so gan_step's ratio flatters onednn several-fold; apt-get install libopenblas0-pthread (or an OpenBLAS libblas.so.3 on LD_LIBRARY_PATH) for a fair one");
      }
      for (const m of ratioModels as RatioModel[]) {
        const batch = m === "ref" ? f.batch : f["model-batch"] || RATIO_NETS[m].defaultBatch;
        ratios.push(await compareNetwork(m, batch, { rounds: f.rounds, steps: f.steps, warmup: f.warmup }));
      }
      const ref = ratios.find((r) => r.model === "ref" && r.rounds.length);
      if (ref) {
        const med = (k: "train_img_s" | "infer_img_s") => spread(ref.rounds.map((r) => r.pytorch[k])).median;
        console.log(`pytorch    train ${med("train_img_s").toFixed(1).padStart(7)} img/s  infer ${med("infer_img_s").toFixed(1).padStart(7)} img/s (torch ${ref.torch}, reference CNN, median of ${ref.rounds.length} round${ref.rounds.length === 1 ? "" : "s"})`);
      }
      const bad = ratios.filter((r) => !r.error && !r.paramsMatch).map((r) => r.model);
      if (bad.length) console.log(`WARNING !!! parameter counts differ between onednn and PyTorch for: ${bad.join(", ")} — those ratios are not comparable !!!`);
    }
    await writeJsonAtomic(join(f.out, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), { flops, peak, results, modelResults, torch, ratios });
  });
}
