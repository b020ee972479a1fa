/**
 * Quick speed check and kernel profile of the "onednn" tfjs backend on the reference CNN of FACTS.md
 * (input 108x84x3; conv3x3/2 32 + BatchNorm, conv3x3/2 64, conv3x3/2 128, conv3x3/2 256, ReLU each,
 * global average pool, dense 2; Adam; batch 64).
 *
 *   deno run -A bench/onednn_profile.ts [--backend onednn|cpu] [--batch 64] [--steps 5] [--infer] [--profile]
 *     [--ab] [--memory]
 *   deno run -A bench/onednn_profile.ts --model compact_cnn|gan_step|face_resnet [--batch N] [--steps 5] [--infer]
 *     [--profile | --ab-layout | --ab-fold | --ab-fusion | --ab-bn | --ab-adam]
 *
 * With --model, one of the project's networks as bench/project_nets.ts builds and steps it (at its training batch
 * unless --batch): step times (and with --infer forward-pass times), and with --profile the kernels of a training
 * step (and of a forward pass) by time, each with its share, and (onednn) the kernels that ran as the cpu
 * backend's JavaScript; with --ab-layout instead, steps alternating between convolution activations in NHWC and in
 * oneDNN's blocked layouts (compareLayouts); with --ab-fold, forward passes alternating between the batch-norm-folded
 * copy that evaluation runs (lib/models/fold.ts) and the model as trained (classifiers only); with --ab-fusion, training
 * steps (with --infer forward passes too) alternating between the fusions of lib/models/fused_conv.ts on and off; with
 * --ab-bn, training steps alternating between batch norm as one engine kernel (lib/models/fused_bn.ts) and tfjs-layers'
 * moments + batchNorm; with --ab-adam, training steps alternating between the engine's Adam update (lib/engine/adam.ts) and tfjs' own. PROFILE_CALLS=Kernel lists every call of one kernel, PROFILE_CONTEXT=1
 * the kernels around its slow calls (oneDNN may finish a kernel's work when the next one reads its output: the time
 * then shows there).
 *
 * Prints training img/s (model.trainOnBatch, a fresh input tensor every step), inference img/s (model.predict)
 * with --infer, and with --profile the kernels of a training step sorted by time (each call's minimum over
 * --steps profiled steps). With --ab, training steps alternate between the tape rewrites of _tape.ts on and off
 * (same process, interleaved: a fair comparison on a busy machine). With --memory, tf.profile's peak bytes of a
 * training step against the bytes of all layer outputs (as bench.ts reports), with the rewrites on and off, and
 * the largest tensors alive at the peak. On a machine shared with other work the numbers are rough: compare best
 * and median.
 */
import * as tf from "@tensorflow/tfjs";
import { parseArgs } from "node:util";
const env = (k: string) => Deno.env.get(k);
import { registerOnednnBackend } from "../lib/engine/onednn/mod.ts";
import { setTapeRewrites, tapeStats } from "../lib/engine/onednn/_tape.ts";
import { setConvActivationLayout } from "../lib/engine/onednn/_conv.ts";
import { kernelStats, resetKernelStats } from "../lib/engine/onednn/_stats.ts";
import { ONEDNN_KERNELS } from "../lib/engine/onednn/mod.ts";
import { adam, setEngineAdam } from "../lib/engine/adam.ts";
import { type NetBench, RATIO_MODELS, RATIO_NETS, type RatioModel } from "./project_nets.ts";
import { conv2d, setConvFusion } from "../lib/models/fused_conv.ts";
import { setBatchNormKernel } from "../lib/models/fused_bn.ts";

/** The reference CNN (uncompiled). */
export function buildReferenceCnn(
  inputShape: [number, number, number],
  filters = [32, 64, 128, 256],
): tf.LayersModel {
  const input = tf.input({ shape: inputShape }); // [B, 108, 84, 3]
  let x = tf.layers.conv2d({ filters: filters[0], kernelSize: 3, strides: 2, padding: "same" })
    .apply(input); // [B, 54, 42, 32]
  x = tf.layers.batchNormalization().apply(x);
  x = tf.layers.activation({ activation: "relu" }).apply(x);
  for (const f of filters.slice(1)) {
    // [B, 27, 21, 64] -> [B, 14, 11, 128] -> [B, 7, 6, 256]
    x = conv2d({ filters: f, kernelSize: 3, strides: 2, padding: "same", activation: "relu" })
      .apply(x);
  }
  x = tf.layers.globalAveragePooling2d({}).apply(x); // [B, 256]
  const out = tf.layers.dense({ units: 2, activation: "softmax" }).apply(x) as tf.SymbolicTensor; // [B, 2]
  return tf.model({ inputs: input, outputs: out });
}

/** The middle of the sorted times (the upper one of an even count). */
const median = (ms: number[]) => ms.slice().sort((a, b) => a - b)[Math.floor(ms.length / 2)];

function summary(label: string, ms: number[], batch: number): string {
  const med = median(ms), best = Math.min(...ms);
  const rate = (t: number) => (batch / t * 1000).toFixed(0);
  return `${label}: median ${med.toFixed(1)} ms (${rate(med)} img/s), best ${best.toFixed(1)} ms (${rate(best)} img/s)`;
}

async function profile(step: () => Promise<void>, steps: number, top = 25): Promise<void> {
  // The kernel sequence is the same every step, so each call's time is its minimum over the steps.
  let kernels: { name: string; ms: number; shapes: string }[] = [];
  for (let s = 0; s < steps; s++) {
    const info = await tf.profile(step);
    const cur = await Promise.all(info.kernels.map(async (k) => ({
      name: k.name,
      ms: Number(await k.kernelTimeMs),
      shapes: JSON.stringify(k.inputShapes),
    })));
    kernels = s === 0 ? cur : kernels.map((k, i) => ({ ...k, ms: Math.min(k.ms, cur[i]?.ms ?? k.ms) }));
  }
  const byName = new Map<string, { ms: number; n: number; shapes: string }>();
  let total = 0;
  for (const k of kernels) {
    if (!k.name.endsWith("__op")) total += k.ms; // "__op" entries wrap kernels listed separately
    const e = byName.get(k.name) ?? { ms: 0, n: 0, shapes: "" };
    e.ms += k.ms;
    e.n++;
    if (e.shapes.length < 80) e.shapes += k.shapes + " ";
    byName.set(k.name, e);
  }
  console.log(`profile: ${kernels.length} kernels, ${total.toFixed(1)} ms in kernels`);
  const calls = env("PROFILE_CALLS"); // e.g. PROFILE_CALLS=Mean: every call of that kernel, slowest first
  if (calls) {
    for (const k of kernels.filter((k) => k.name === calls).sort((a, b) => b.ms - a.ms)) console.log(`  ${k.ms.toFixed(2).padStart(8)} ms ${calls} ${k.shapes}`);
    if (env("PROFILE_CONTEXT")) { // the kernels around each call of 2 ms or more
      kernels.forEach((k, i) => {
        if (k.name !== calls || k.ms < 2) return;
        console.log("  --");
        for (const c of kernels.slice(Math.max(0, i - 4), i + 3)) console.log(`  ${c.ms.toFixed(2).padStart(8)} ms ${c.name} ${c.shapes}`);
      });
    }
  }
  for (const [name, e] of [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top)) {
    const share = name.endsWith("__op") ? "     " : `${(100 * e.ms / total).toFixed(1).padStart(4)}%`;
    console.log(
      `${e.ms.toFixed(1).padStart(8)} ms ${share} ${String(e.n).padStart(4)}x ${name.padEnd(22)} ${e.shapes.slice(0, 80)}`,
    );
  }
}

/** Peak tensor bytes of one training step (rewrites on and off) against the bytes of all layer outputs. */
async function memory(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, batch: number): Promise<void> {
  let act = 0;
  for (const layer of model.layers) {
    const out = layer.outputShape as number[];
    act += out.slice(1).reduce((a, b) => a * b, 1) * batch * 4;
  }
  for (const on of [true, false]) {
    setTapeRewrites(on);
    await model.trainOnBatch(xs, ys);
    const info = await tf.profile(async () => void await model.trainOnBatch(xs, ys));
    // the kernel after which the tensor bytes were highest
    let top = info.kernels[0], at = 0;
    info.kernels.forEach((k, i) => {
      if (k.totalBytesSnapshot > (top?.totalBytesSnapshot ?? -1)) [top, at] = [k, i];
    });
    if (env("PROFILE_TRACE")) {
      for (const [i, k] of info.kernels.entries()) {
        if (k.bytesAdded === 0 && Math.abs(i - at) > 3) continue;
        console.log(
          `${String(i).padStart(4)} ${k.name.padEnd(24)} +${(k.bytesAdded / 2 ** 20).toFixed(1).padStart(6)} ` +
            `= ${(k.totalBytesSnapshot / 2 ** 20).toFixed(1).padStart(6)} MiB ${JSON.stringify(k.outputShapes)}`,
        );
      }
    }
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    console.log(
      `rewrites ${on ? "on " : "off"}: step peak ${mib(info.peakBytes)} MiB = ${(info.peakBytes / act).toFixed(2)}x ` +
        `activations (${mib(act)} MiB); highest after ${top?.name} (${mib(top?.totalBytesSnapshot ?? 0)} MiB)`,
    );
  }
  setTapeRewrites(true);
}

/** Step times and the op-by-op profile of one of the project's networks (bench/project_nets.ts). */
async function profileProjectNet(name: string, batchArg: number | undefined, steps: number, infer: boolean, withProfile: boolean, backend: string, ab: "layout" | "fold" | "fusion" | "bn" | "adam" | null = null): Promise<void> {
  if (!(RATIO_MODELS as readonly string[]).includes(name)) throw new Error(`onednn_profile: --model ${name}: expected one of ${RATIO_MODELS.join(", ")}`);
  if (backend === "onednn") {
    const st = await registerOnednnBackend();
    if (!st.available) throw new Error(`onednn_profile: onednn not available: ${JSON.stringify(st)}`);
  }
  await tf.setBackend(backend);
  const spec = RATIO_NETS[name as RatioModel];
  const net = await spec.build(batchArg ?? spec.defaultBatch);
  const batch = net.batch;
  console.log(`${name} (${spec.description}), batch ${batch}, ${net.params.toLocaleString("en-US")} parameters, backend ${tf.getBackend()}`);
  await net.train(); // primitive creation
  if (ab === "layout") {
    await compareLayouts(net, steps, infer);
    return net.dispose();
  }
  if (ab === "fold") {
    await compareFold(net, steps);
    return net.dispose();
  }
  if (ab === "fusion" || ab === "bn" || ab === "adam") {
    const [what, set] = ab === "fusion" ? ["fusion", setConvFusion] : ab === "bn" ? ["batch-norm kernel", setBatchNormKernel] : ["engine Adam", setEngineAdam];
    await compareToggle(net, steps, infer, what, set);
    return net.dispose();
  }
  const train: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await net.train();
    train.push(performance.now() - t);
  }
  console.log(`${summary("train step", train, batch)}; tensors ${tf.memory().numTensors}`);
  if (!withProfile) {
    if (infer) await timeInference(net, steps);
    return net.dispose();
  }
  if (backend === "onednn") {
    // One step: the kernels oneDNN has no override for, plus those whose override declined (fallbacks).
    resetKernelStats();
    const info = await tf.profile(() => net.train());
    const { hits, fallbacks } = kernelStats();
    const js = new Map<string, number>(Object.entries(fallbacks));
    for (const k of info.kernels) if (!k.name.endsWith("__op") && !ONEDNN_KERNELS.includes(k.name) && !(k.name in hits)) js.set(k.name, (js.get(k.name) ?? 0) + 1);
    console.log(`kernels on the cpu backend's JS in a step (no oneDNN kernel, or the override declined): ${[...js].map(([k, n]) => `${k}×${n}`).join(", ") || "none"}`);
  }
  await profile(() => net.train(), steps, 30);
  if (infer) {
    await timeInference(net, steps);
    await profile(() => net.infer(), steps, 20);
  }
  net.dispose();
}

/**
 * --ab-layout: training steps (and with --infer forward passes) alternate between convolution activations in NHWC
 * and in oneDNN's blocked layouts (ONEDNN_CONV_ACT=nhwc / any), in one process, so that a busy machine slows both
 * alike; each layout's plans are made in a warm-up step first.
 */
async function compareLayouts(net: NetBench, steps: number, infer: boolean): Promise<void> {
  const layouts = ["nhwc", "any"] as const;
  const kinds = infer ? (["train", "infer"] as const) : (["train"] as const);
  const ms: Record<string, number[]> = {};
  for (const layout of layouts) {
    setConvActivationLayout(layout);
    for (const kind of kinds) {
      await net[kind]();
      ms[`${kind} ${layout}`] = [];
    }
  }
  for (let i = 0; i < steps; i++) {
    for (const layout of layouts) {
      setConvActivationLayout(layout);
      for (const kind of kinds) {
        const t = performance.now();
        await net[kind]();
        ms[`${kind} ${layout}`].push(performance.now() - t);
      }
    }
  }
  for (const kind of kinds) {
    const nhwc = ms[`${kind} nhwc`], blocked = ms[`${kind} any`];
    console.log(summary(`${kind} NHWC`, nhwc, net.batch));
    console.log(summary(`${kind} blocked`, blocked, net.batch));
    console.log(`${kind}: NHWC / blocked img/s = ${(median(blocked) / median(nhwc)).toFixed(2)} (medians of ${steps} interleaved steps)`);
  }
}

/** --ab-fold: forward passes alternating between the folded inference copy and the model as trained, in one process. */
async function compareFold(net: NetBench, steps: number): Promise<void> {
  const unfolded = net.inferUnfolded;
  if (!unfolded) throw new Error("onednn_profile: --ab-fold needs a classifier (ref, compact_cnn, face_resnet)");
  const folded: number[] = [], plain: number[] = [];
  await net.infer(), await unfolded();
  for (let i = 0; i < steps; i++) {
    for (const [run, ms] of [[() => net.infer(), folded], [unfolded, plain]] as const) {
      const t = performance.now();
      await run();
      ms.push(performance.now() - t);
    }
  }
  console.log(summary("inference folded", folded, net.batch));
  console.log(summary("inference as trained", plain, net.batch));
  console.log(`inference: folded / as trained img/s = ${(median(plain) / median(folded)).toFixed(2)} (medians of ${steps} interleaved passes)`);
}

/**
 * --ab-fusion / --ab-bn / --ab-adam: training steps (and with --infer forward passes) alternating between a speed-up
 * on and off, in one process, interleaved: the fusions of lib/models/fused_conv.ts (off: tfjs-layers' conv call, and
 * tfjs' conv2d, add and relu for ConvAddReLU; batch norm's kernel too), batch norm in training as one engine kernel
 * (lib/models/fused_bn.ts; off: tfjs-layers' moments + batchNorm), or the engine's Adam update (lib/engine/adam.ts; off: tfjs' 12 element-wise
 * ops per variable). Both settings compute the same (the tests check it), so one net serves both.
 */
async function compareToggle(net: NetBench, steps: number, infer: boolean, what: string, set: (on: boolean) => void): Promise<void> {
  const kinds = infer ? (["train", "infer"] as const) : (["train"] as const);
  const ms: Record<string, number[]> = {};
  for (const on of [false, true]) {
    set(on);
    for (const kind of kinds) await net[kind](), ms[`${kind} ${on}`] = [];
  }
  for (let i = 0; i < steps; i++) {
    for (const on of [false, true]) {
      set(on);
      for (const kind of kinds) {
        const t = performance.now();
        await net[kind]();
        ms[`${kind} ${on}`].push(performance.now() - t);
      }
    }
  }
  set(true);
  for (const kind of kinds) {
    console.log(summary(`${kind} ${what} off`, ms[`${kind} false`], net.batch));
    console.log(summary(`${kind} ${what} on`, ms[`${kind} true`], net.batch));
    console.log(`${kind}: ${what} on / off img/s = ${(median(ms[`${kind} false`]) / median(ms[`${kind} true`])).toFixed(2)} (medians of ${steps} interleaved steps)`);
  }
}

async function timeInference(net: NetBench, steps: number): Promise<void> {
  await net.infer();
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await net.infer();
    ms.push(performance.now() - t);
  }
  console.log(summary("inference", ms, net.batch));
}

if (import.meta.main) {
  const { values: opts } = parseArgs({
    args: Deno.args,
    options: {
      backend: { type: "string", default: "onednn" },
      batch: { type: "string", default: "64" },
      steps: { type: "string", default: "5" },
      profile: { type: "boolean", default: false },
      infer: { type: "boolean", default: false },
      ab: { type: "boolean", default: false },
      "ab-layout": { type: "boolean", default: false },
      "ab-fold": { type: "boolean", default: false },
      "ab-fusion": { type: "boolean", default: false },
      "ab-bn": { type: "boolean", default: false },
      "ab-adam": { type: "boolean", default: false },
      memory: { type: "boolean", default: false },
      model: { type: "string" },
    },
    strict: true,
  });
  if (opts.model !== undefined) {
    await profileProjectNet(opts.model, opts.batch === "64" ? undefined : Number(opts.batch), Number(opts.steps), opts.infer!, opts.profile!, opts.backend!, opts["ab-layout"] ? "layout" : opts["ab-fold"] ? "fold" : opts["ab-fusion"] ? "fusion" : opts["ab-bn"] ? "bn" : opts["ab-adam"] ? "adam" : null);
    Deno.exit(0);
  }
  const batch = Number(opts.batch), steps = Number(opts.steps);
  if (!(batch > 0) || !(steps > 0)) throw new Error("onednn_profile: --batch and --steps must be positive");
  if (opts.backend === "onednn") {
    const st = await registerOnednnBackend();
    console.log(`onednn: ${JSON.stringify(st)}`);
    if (!st.available) Deno.exit(1);
  }
  await tf.setBackend(opts.backend!);
  const shape = [batch, 108, 84, 3];
  const model = buildReferenceCnn([108, 84, 3]);
  model.compile({ optimizer: adam(1e-3), loss: "categoricalCrossentropy" });
  // A fresh input tensor every step, as in real training (a reused one would let the backend keep its
  // reordered copy across steps).
  const pixels = tf.tidy(() => tf.randomUniform(shape).dataSync().slice());
  const ys = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), "int32"), 2);
  let xs = tf.tensor(pixels.slice(), shape);
  const nextBatch = () => {
    xs.dispose();
    xs = tf.tensor(pixels.slice(), shape);
  };
  const t0 = performance.now();
  await model.trainOnBatch(xs, ys);
  console.log(`first step (primitive creation): ${(performance.now() - t0).toFixed(0)} ms`);
  const train: number[] = [], trainOff: number[] = [];
  let loss = 0;
  if (opts.ab) {
    setTapeRewrites(false);
    await model.trainOnBatch(xs, ys); // warm the plans of the unrewritten gradients too
  }
  for (let i = 0; i < steps; i++) {
    for (const on of opts.ab ? [true, false] : [true]) {
      if (opts.ab) setTapeRewrites(on);
      nextBatch();
      const t = performance.now();
      loss = await model.trainOnBatch(xs, ys) as number;
      (on ? train : trainOff).push(performance.now() - t);
    }
  }
  setTapeRewrites(true);
  console.log(`${summary("train", train, batch)}; loss ${loss.toFixed(4)}; tensors ${tf.memory().numTensors}`);
  if (opts.ab) console.log(summary("train, tape rewrites off", trainOff, batch));
  console.log(`tape rewrites: ${JSON.stringify(tapeStats)}`);
  if (opts.memory) await memory(model, xs, ys, batch);
  if (opts.infer) {
    const infer: number[] = [];
    for (let i = 0; i <= steps; i++) {
      nextBatch();
      const t = performance.now();
      const y = model.predict(xs) as tf.Tensor;
      y.dataSync();
      y.dispose();
      if (i > 0) infer.push(performance.now() - t);
    }
    console.log(summary("infer", infer, batch));
  }
  console.log(`rss ${(Deno.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  if (opts.profile) {
    await profile(async () => {
      nextBatch();
      await model.trainOnBatch(xs, ys);
    }, steps);
  }
}
