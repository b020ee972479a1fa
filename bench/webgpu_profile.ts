/**
 * Where a webgpu training step spends its time, tfjs kernel by tfjs kernel (issue 15). Per network: one cold
 * training step, --steps warm steps (counted and timed), then --profile-steps steps under tf.profile (GPU time per
 * call from timestamp queries, each program then in a compute pass of its own; each call keeps its least time).
 * Printed per kernel name, sorted by GPU time: calls, GPU dispatches, GPU ms and share, host ms in the call (queue
 * submits apart: on a software adapter a submit runs the GPU work), CPU fallbacks (tfjs-webgpu's hand-off of
 * tensors under 1,000 values to the CPU), read-backs of GPU data, uploads of CPU arrays (count, KB), pipelines used,
 * and for convolutions and matmuls the multiply-adds per GPU thread; then every convolution and matmul call with
 * its shapes, dispatches and threads. Dispatches, uploads, pipelines and threads do not depend on the adapter;
 * times on the software adapter (lavapipe) are a CPU's, relative costs only.
 *
 *   deno run -A bench/webgpu_profile.ts [--nets ref,compact_cnn] [--batch 2] [--kernels both|ours|stock]
 *     [--steps 2] [--profile-steps 3] [--top 25] [--json FILE]
 *
 * --kernels stock runs tfjs-webgpu's own kernels, ours the replacements of lib/engine/webgpu/ (what `--backend
 * webgpu` uses); both runs each network once per mode, the profiled steps of the two taking turns, and ends with a
 * summary of the convolution gradients' GPU time against the unchanged forward convolutions'. Networks: ref
 * (reference CNN), compact_cnn (+ gender head), gan_step (discriminator + generator step + weight average).
 * --json FILE keeps every row and call. Deno 2.9 has navigator.gpu without --unstable-webgpu (older Deno needs it).
 */
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseArgs } from "node:util";
import { registerWebgpuKernels, useWebgpuKernels } from "../lib/engine/webgpu/mod.ts";
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "../lib/data/schema.ts";
import { buildCompactCnn, DEFAULT_COMPACT_CNN_CONFIG } from "../lib/models/compact_cnn.ts";
import { attachHeads } from "../lib/models/heads.ts";
import { maskedSoftmaxCrossEntropy } from "../lib/train/losses.ts";
import { DEFAULT_GAN_CONFIG } from "../lib/gan/nets.ts";
import { buildGanNets, discriminatorStep, disposeGanNets, generatorStep, latentsForSeeds, updateEma } from "../lib/gan/steps.ts";
import { Rng } from "../lib/util/rng.ts";
import { buildReferenceCnn } from "./reference_cnn.ts";

/**
 * The networks, stepped as bench/project_nets.ts steps them (there: with the training recipes of lib/train/run.ts),
 * rebuilt here from the light modules only (no sharp, polars or FFI), so that `deno bundle --platform deno
 * bench/webgpu_profile.ts` makes one file that runs on a bare GPU machine, as bench/gan_gpu.ts does.
 */
interface ProfiledNet {
  train(): Promise<void>;
  dispose(): void;
}

const NETS: Record<string, (batch: number) => ProfiledNet> = {
  /** Reference CNN, Adam 1e-3, cross-entropy. */
  ref: (batch) => classifier(buildReferenceCnn(), batch),
  /** compact_cnn + gender head as createClassifier builds it (defaults, seed 1), Adam 1e-3, CE + L2 losses. */
  compact_cnn: (batch) => classifier(attachHeads(buildCompactCnn(DEFAULT_COMPACT_CNN_CONFIG), { heads: ["gender"], hidden: 0, dropout: 0, seed: 1 }), batch),
  /** Discriminator step + generator step (hinge, DiffAugment) + weight average, DEFAULT_GAN_TRAIN's settings. */
  gan_step: (batch) => {
    const nets = buildGanNets({ ...DEFAULT_GAN_CONFIG, seed: 1 });
    const optG = tf.train.adam(2e-4, 0.5, 0.999, 1e-8), optD = tf.train.adam(2e-4, 0.5, 0.999, 1e-8);
    const real = tf.randomUniform([batch, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], -1, 1, "float32", 1) as tf.Tensor4D;
    const z = latentsForSeeds(Array.from({ length: batch }, (_, i) => i), DEFAULT_GAN_CONFIG.latentDim);
    const rng = new Rng(1);
    const beta = Math.pow(0.5, batch / 1000);
    return {
      async train() {
        await discriminatorStep(nets, optD, { real, z }, "color,translation,cutout", rng);
        await generatorStep(nets, optG, { z }, "color,translation,cutout", rng);
        updateEma(nets, beta);
      },
      dispose() {
        tf.dispose([real, z]);
        optG.dispose();
        optD.dispose();
        disposeGanNets(nets);
      },
    };
  },
};

/** lib/train/trainer.ts' step without the data: Adam over every weight, masked cross-entropy + model.losses. */
function classifier(model: tfl.LayersModel, batch: number): ProfiledNet {
  const x = tf.randomNormal([batch, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], 0, 1, "float32", 1);
  const labels = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), "int32");
  const opt = tf.train.adam(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const lossFn = () => {
    const out = model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[];
    const logits = (Array.isArray(out) ? out[0] : out) as tf.Tensor2D;
    const reg = model.losses.length ? tf.addN(model.losses.map((f) => f() as tf.Scalar)) : tf.scalar(0);
    return tf.add(maskedSoftmaxCrossEntropy(logits, labels), reg) as tf.Scalar;
  };
  return {
    async train() {
      const loss = opt.minimize(lossFn, true, vars)!;
      await loss.data(); // async read: webgpu cannot read synchronously in Deno
      loss.dispose();
    },
    dispose() {
      tf.dispose([x, labels]);
      opt.dispose();
      model.dispose();
    },
  };
}

/** The parts of tfjs-webgpu's backend the profiler looks at (private in its typings). */
interface ProgramLike {
  constructor: { name: string };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  shaderKey: string;
}
interface TensorDataLike {
  values: unknown;
  resource?: unknown;
  shape: number[];
  dtype: string;
}
interface WebgpuBackendLike {
  pipelineCache: Record<string, unknown>;
  tensorMap: { get(dataId: object): TensorDataLike | undefined };
  runWebGPUProgram(program: ProgramLike, ...rest: unknown[]): tf.TensorInfo;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[], threshold?: number): boolean;
  uploadToGPU(dataId: object): void;
  readSync(dataId: object): unknown;
  read(dataId: object): Promise<unknown>;
  submitQueue(): void;
}

/** One top-level kernel call (for the per-call detail of convolutions and matmuls). */
interface Call {
  name: string;
  shapes: string;
  macs: number;
  threads: number;
  dispatches: number;
  gpuMs: number;
}

/** What one kernel name did in one step. */
interface Row {
  calls: number;
  dispatches: number;
  compiles: number;
  compileMs: number;
  /** Host time in the kernel call, queue submits excluded. */
  cpuMs: number;
  /** Host time in queue.submit called from the kernel (on the software adapter this runs the GPU work). */
  submitMs: number;
  gpuMs: number;
  cpuFallbacks: number;
  readbacks: number;
  uploads: number;
  uploadBytes: number;
  threads: number;
  macs: number;
  programs: Set<string>;
  /** Distinct pipelines (shader keys) the kernel's dispatches used: what a fresh process compiles for it. */
  pipelines: Set<string>;
}

const OUTSIDE = "(outside kernels)";

class Recorder {
  rows = new Map<string, Row>();
  calls: Call[] = [];
  submits = 0;
  private submitMsInCall = 0;
  private stack: string[] = [];
  private restoreFns: (() => void)[] = [];

  row(name: string): Row {
    let r = this.rows.get(name);
    if (!r) {
      r = { calls: 0, dispatches: 0, compiles: 0, compileMs: 0, cpuMs: 0, submitMs: 0, gpuMs: 0, cpuFallbacks: 0, readbacks: 0, uploads: 0, uploadBytes: 0, threads: 0, macs: 0, programs: new Set(), pipelines: new Set() };
      this.rows.set(name, r);
    }
    return r;
  }

  /** The outermost kernel running now (kernels that call kernels count as the outer one). */
  current(): string {
    return this.stack[0] ?? OUTSIDE;
  }

  reset(): void {
    this.rows = new Map();
    this.calls = [];
    this.submits = 0;
  }

  /** Wraps every kernel registered for webgpu now and the backend methods that matter; restore() undoes it. */
  install(backend: WebgpuBackendLike): void {
    for (const cfg of tf.getKernelsForBackend("webgpu")) {
      const inner = cfg.kernelFunc;
      const name = cfg.kernelName;
      tf.unregisterKernel(name, "webgpu");
      tf.registerKernel({
        ...cfg,
        kernelFunc: (args) => {
          if (this.stack.length) return inner(args); // nested: counted in the outer kernel
          const r = this.row(name);
          const inputs = args.inputs as Record<string, tf.TensorInfo>;
          const macs = macsOf(name, inputs, args.attrs as Record<string, unknown>);
          const call: Call = { name, shapes: Object.values(inputs).filter((t) => t != null).map((t) => `[${t.shape}]`).join(" "), macs, threads: r.threads, dispatches: r.dispatches, gpuMs: 0 };
          r.calls++;
          r.macs += macs;
          this.stack.push(name);
          this.submitMsInCall = 0;
          const t0 = performance.now();
          try {
            return inner(args);
          } finally {
            r.cpuMs += performance.now() - t0 - this.submitMsInCall;
            r.submitMs += this.submitMsInCall;
            call.threads = r.threads - call.threads;
            call.dispatches = r.dispatches - call.dispatches;
            this.stack.pop();
            this.calls.push(call); // in order of completion, as tf.profile lists them
          }
        },
      });
      this.restoreFns.push(() => {
        tf.unregisterKernel(name, "webgpu");
        tf.registerKernel(cfg);
      });
    }
    type Method = "runWebGPUProgram" | "shouldExecuteOnCPU" | "uploadToGPU" | "readSync" | "read" | "submitQueue";
    const patch = <K extends Method>(key: K, make: (orig: WebgpuBackendLike[K]) => WebgpuBackendLike[K]) => {
      const orig = (backend[key] as (...a: unknown[]) => unknown).bind(backend);
      backend[key] = make(orig as WebgpuBackendLike[K]);
      this.restoreFns.push(() => {
        delete (backend as unknown as Record<string, unknown>)[key];
      });
    };
    patch("runWebGPUProgram", (orig) => (program, ...rest) => {
      const before = Object.keys(backend.pipelineCache).length;
      const t0 = performance.now();
      const out = orig(program, ...rest);
      const r = this.row(this.current());
      r.dispatches++;
      r.programs.add(program.constructor.name === "Object" ? program.shaderKey.split("_")[0] : program.constructor.name);
      r.pipelines.add(program.shaderKey);
      r.threads += program.dispatch.reduce((a, b) => a * b, 1) * program.workgroupSize.reduce((a, b) => a * b, 1);
      if (Object.keys(backend.pipelineCache).length > before) {
        r.compiles++;
        r.compileMs += performance.now() - t0;
      }
      return out;
    });
    patch("shouldExecuteOnCPU", (orig) => (inputs, threshold) => {
      const yes = orig(inputs, threshold);
      if (yes) this.row(this.current()).cpuFallbacks++;
      return yes;
    });
    patch("uploadToGPU", (orig) => (dataId) => {
      const d = backend.tensorMap.get(dataId);
      if (d && d.resource == null && d.values != null) {
        const r = this.row(this.current());
        r.uploads++;
        r.uploadBytes += 4 * d.shape.reduce((a, b) => a * b, 1);
      }
      orig(dataId);
    });
    patch("readSync", (orig) => (dataId) => {
      const d = backend.tensorMap.get(dataId);
      if (d && d.values == null) this.row(this.current()).readbacks++;
      return orig(dataId);
    });
    patch("read", (orig) => (dataId) => {
      const d = backend.tensorMap.get(dataId);
      if (d && d.values == null) this.row(this.current()).readbacks++;
      return orig(dataId);
    });
    patch("submitQueue", (orig) => () => {
      this.submits++;
      const t0 = performance.now();
      orig();
      const ms = performance.now() - t0;
      if (this.stack.length) this.submitMsInCall += ms;
      else this.row(OUTSIDE).submitMs += ms;
    });
  }

  restore(): void {
    for (const f of this.restoreFns.reverse()) f();
    this.restoreFns = [];
  }
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Multiply-adds of the kernels whose cost is arithmetic (0 for the rest). */
function macsOf(name: string, inputs: Record<string, tf.TensorInfo>, attrs: Record<string, unknown>): number {
  switch (name) {
    case "Conv2D":
    case "FusedConv2D": {
      const [, , , ci] = inputs.x.shape, [kh, kw, , co] = inputs.filter.shape;
      const out = convOut(inputs.x.shape, [kh, kw], attrs);
      return out * co * kh * kw * ci;
    }
    case "Conv2DBackpropFilter": // x, dy; filterShape
      return prod(attrs.filterShape as number[]) * prod(inputs.dy.shape.slice(0, 3));
    case "Conv2DBackpropInput": { // dy, filter
      const [kh, kw, ci] = inputs.filter.shape;
      return prod(inputs.dy.shape) * kh * kw * ci;
    }
    case "BatchMatMul":
    case "_FusedMatMul": {
      const a = inputs.a.shape, b = inputs.b.shape;
      const m = attrs.transposeA ? a[a.length - 1] : a[a.length - 2];
      const k = attrs.transposeA ? a[a.length - 2] : a[a.length - 1];
      const n = attrs.transposeB ? b[b.length - 2] : b[b.length - 1];
      return Math.max(prod(a.slice(0, -2)), prod(b.slice(0, -2))) * m * n * k;
    }
    default:
      return 0;
  }
}

/** Output pixels × batch of a convolution (NHWC). */
function convOut(x: number[], k: number[], attrs: Record<string, unknown>): number {
  const s = attrs.strides as number | number[];
  const [sh, sw] = typeof s === "number" ? [s, s] : s;
  const same = attrs.pad === "same";
  const oh = same ? Math.ceil(x[1] / sh) : Math.floor((x[1] - k[0]) / sh) + 1;
  const ow = same ? Math.ceil(x[2] / sw) : Math.floor((x[2] - k[1]) / sw) + 1;
  return x[0] * oh * ow;
}

interface Phase {
  net: string;
  kernels: "ours" | "stock";
  batch: number;
  coldMs: number;
  warmMs: number[];
  profiledMs: number;
  submitsPerStep: number;
  cold: Map<string, Row>;
  warm: Map<string, Row>;
  /** The profiled step's convolution and matmul calls, in order, with their GPU time. */
  detail: Call[];
}

const fmt = (x: number, d = 1) => x.toFixed(d);

function printTable(p: Phase, top: number): void {
  const rows = [...p.warm.entries()].map(([name, r]) => ({ name, r, cold: p.cold.get(name) }));
  const gpuTotal = rows.reduce((a, x) => a + x.r.gpuMs, 0);
  const cpuTotal = rows.reduce((a, x) => a + x.r.cpuMs, 0);
  const sum = (f: (r: Row) => number) => rows.reduce((a, x) => a + f(x.r), 0);
  const submitTotal = sum((r) => r.submitMs);
  const pipelines = new Set([...p.cold.values()].flatMap((r) => [...r.pipelines])).size;
  const coldCompiles = [...p.cold.values()].reduce((a, r) => a + r.compiles, 0);
  const coldCompileMs = [...p.cold.values()].reduce((a, r) => a + r.compileMs, 0);
  const warmSorted = p.warmMs.slice().sort((a, b) => a - b);
  console.log(`\n== ${p.net}, batch ${p.batch}, kernels ${p.kernels} ==`);
  console.log(
    `step wall: cold ${fmt(p.coldMs)} ms, warm median ${fmt(warmSorted[Math.floor(warmSorted.length / 2)])} ms, profiled (best) ${fmt(p.profiledMs)} ms; ` +
      `per warm step: ${sum((r) => r.calls)} kernel calls, ${sum((r) => r.dispatches)} dispatches, ${p.submitsPerStep} queue submits, ` +
      `${sum((r) => r.uploads)} uploads (${sum((r) => r.uploadBytes)} B), ${sum((r) => r.readbacks)} read-backs, ${sum((r) => r.cpuFallbacks)} CPU fallbacks, ` +
      `${sum((r) => r.compiles)} compilations; the step uses ${pipelines} pipelines, of which its first run here compiled ${coldCompiles} ` +
      `(${fmt(coldCompileMs)} ms; the other mode's run may have compiled the shared ones)`,
  );
  console.log(`GPU time in kernels ${fmt(gpuTotal)} ms (timestamp queries, least per call); host time in kernel calls ${fmt(cpuTotal)} ms, in queue submits ${fmt(submitTotal)} ms`);
  const head = ["kernel", "calls", "disp", "GPU ms", "GPU %", "host ms", "submit ms", "cpuFB", "rdbk", "upl", "upl KB", "pipes", "MACs/thread", "programs"];
  const w = [24, 5, 5, 9, 5, 8, 9, 5, 4, 4, 7, 5, 11, 0];
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(" ");
  console.log(line(head));
  const sorted = rows.sort((a, b) => b.r.gpuMs - a.r.gpuMs || b.r.cpuMs - a.r.cpuMs);
  for (const { name, r, cold } of sorted.slice(0, top)) {
    console.log(line([
      name.slice(0, 24),
      String(r.calls),
      String(r.dispatches),
      fmt(r.gpuMs, 2),
      fmt(gpuTotal ? (100 * r.gpuMs) / gpuTotal : 0),
      fmt(r.cpuMs, 1),
      fmt(r.submitMs, 1),
      String(r.cpuFallbacks),
      String(r.readbacks),
      String(r.uploads),
      fmt(r.uploadBytes / 1024, 1),
      String(cold?.pipelines.size ?? r.pipelines.size),
      r.macs && r.threads ? fmt(r.macs / r.threads, 0) : "",
      [...r.programs].join(",").slice(0, 70),
    ]));
  }
  if (sorted.length > top) console.log(`… ${sorted.length - top} more kernel names`);
  if (p.detail.length) {
    console.log(`per call (profiled steps): kernel, input shapes, dispatches, GPU threads, MACs per thread, GPU ms`);
    for (const c of p.detail) {
      console.log(
        `  ${c.name.padEnd(22)} ${c.shapes.padEnd(44)} ${String(c.dispatches).padStart(3)} ${String(c.threads).padStart(9)} ` +
          `${(c.threads ? fmt(c.macs / c.threads, 0) : "-").padStart(8)} ${fmt(c.gpuMs, 2).padStart(9)}`,
      );
    }
  }
}

/**
 * The gradient kernels' GPU time against the forward convolutions' in the same profiled steps: the forward
 * kernels are the same in both modes and do the same multiply-adds as each gradient, so the ratio shows the
 * change without the drift of a shared machine between runs.
 */
function printComparison(stock: Phase, ours: Phase): void {
  const gpu = (p: Phase, names: string[]) => p.detail.filter((c) => names.includes(c.name)).reduce((a, c) => a + c.gpuMs, 0);
  const fwd = ["Conv2D", "FusedConv2D"];
  const line = (name: string) => {
    const s = gpu(stock, [name]), o = gpu(ours, [name]);
    return `${name} ${fmt(s)} → ${fmt(o)} ms (${fmt(s / gpu(stock, fwd), 2)}× → ${fmt(o / gpu(ours, fwd), 2)}× the forward convolutions' time)`;
  };
  const total = (p: Phase) => [...p.warm.values()].reduce((a, r) => a + r.gpuMs, 0);
  const disp = (p: Phase) => [...p.warm.values()].reduce((a, r) => a + r.dispatches, 0);
  console.log(`\n== ${stock.net}, batch ${stock.batch}: stock → ours (profiled steps taking turns) ==`);
  console.log(`GPU time in kernels ${fmt(total(stock))} → ${fmt(total(ours))} ms; forward convolutions ${fmt(gpu(stock, fwd))} / ${fmt(gpu(ours, fwd))} ms (unchanged kernels)`);
  console.log(line("Conv2DBackpropFilter"));
  console.log(line("Conv2DBackpropInput"));
  const upl = (p: Phase) => [...p.warm.values()].reduce((a, r) => a + r.uploadBytes, 0);
  console.log(`dispatches per step ${disp(stock)} → ${disp(ours)}; bytes uploaded per step ${upl(stock)} → ${upl(ours)}`);
}

function toJson(p: Phase) {
  const rows = (m: Map<string, Row>) => Object.fromEntries([...m.entries()].map(([k, r]) => [k, { ...r, programs: [...r.programs], pipelines: [...r.pipelines] }]));
  return { ...p, cold: rows(p.cold), warm: rows(p.warm) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      nets: { type: "string", default: "ref,compact_cnn" },
      batch: { type: "string", default: "2" },
      kernels: { type: "string", default: "both" },
      steps: { type: "string", default: "2" },
      "profile-steps": { type: "string", default: "3" },
      top: { type: "string", default: "25" },
      json: { type: "string" },
    },
    strict: true,
  });
  const batch = Number(values.batch), steps = Number(values.steps), top = Number(values.top);
  const profileSteps = Number(values["profile-steps"]);
  for (const [flag, v] of [["--batch", batch], ["--steps", steps], ["--profile-steps", profileSteps], ["--top", top]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`webgpu_profile: expected ${flag} to be a positive integer, got '${v}'`);
  }
  if (!["stock", "ours", "both"].includes(values.kernels!)) throw new Error(`webgpu_profile: expected --kernels ours|stock|both, got '${values.kernels}'`);
  const modes: ("ours" | "stock")[] = values.kernels === "both" ? ["stock", "ours"] : [values.kernels as "ours" | "stock"];
  const nets = values.nets!.split(",").filter(Boolean);
  for (const n of nets) if (!(n in NETS)) throw new Error(`webgpu_profile: unknown net '${n}'; expected some of ${Object.keys(NETS).join(", ")}`);

  // As lib/engine/mod.ts starts webgpu (without its other backends, which need FFI and wasm files).
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: Record<string, string> } | null> } }).gpu;
  const adapter = gpu ? await gpu.requestAdapter() : null;
  if (!adapter) throw new Error("webgpu_profile: no WebGPU adapter (a GPU driver with Vulkan, or mesa-vulkan-drivers for a software one)");
  registerWebgpuKernels();
  if (!(await tf.setBackend("webgpu"))) throw new Error("webgpu_profile: the webgpu backend failed to initialise");
  const info = adapter.info ?? {};
  console.log(`adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ")}; Deno ${Deno.version.deno}`);
  const backend = tf.backend() as unknown as WebgpuBackendLike;
  const rec = new Recorder();
  const phases: Phase[] = [];
  for (const net of nets) {
    const bench = NETS[net](batch);
    const byMode = new Map<"ours" | "stock", Phase>();
    const run = async <T>(mode: "ours" | "stock", f: () => Promise<T>): Promise<T> => {
      useWebgpuKernels(mode === "ours");
      rec.install(backend);
      try {
        return await f();
      } finally {
        rec.restore();
      }
    };
    try {
      for (const mode of modes) {
        await run(mode, async () => {
          rec.reset();
          let t0 = performance.now();
          await bench.train();
          const coldMs = performance.now() - t0;
          const cold = rec.rows;
          const warmMs: number[] = [];
          let warm = new Map<string, Row>(), submitsPerStep = 0;
          for (let s = 0; s < steps; s++) {
            rec.reset();
            t0 = performance.now();
            await bench.train();
            warmMs.push(performance.now() - t0);
            warm = rec.rows;
            submitsPerStep = rec.submits;
          }
          byMode.set(mode, { net, kernels: mode, batch, coldMs, warmMs, profiledMs: Infinity, submitsPerStep, cold, warm, detail: [] });
        });
      }
      // GPU time per call under tf.profile (timestamp queries), the modes taking turns step by step so that both
      // see the same machine; each call keeps its least time over --profile-steps steps. Calls of one name come in
      // the same order in tf.profile's list and the recorder's (tf.profile lists a kernel after the clones its
      // tape makes, so the orders differ across names).
      for (let s = 0; s < profileSteps; s++) {
        for (const mode of modes) {
          const phase = byMode.get(mode)!;
          await run(mode, async () => {
            rec.reset();
            const t0 = performance.now();
            const info = await tf.profile(() => bench.train());
            phase.profiledMs = Math.min(phase.profiledMs, performance.now() - t0);
            const queues = new Map<string, Call[]>();
            for (const c of rec.calls) queues.set(c.name, [...(queues.get(c.name) ?? []), c]);
            for (const k of info.kernels) {
              if (k.name.endsWith("__op")) continue;
              const ms = Number(await k.kernelTimeMs);
              const c = queues.get(k.name)?.shift();
              if (c && Number.isFinite(ms)) c.gpuMs = ms;
            }
            if (s === 0) phase.detail = rec.calls;
            else phase.detail.forEach((c, i) => (c.gpuMs = Math.min(c.gpuMs, rec.calls[i]?.gpuMs ?? c.gpuMs)));
          });
        }
      }
    } finally {
      bench.dispose();
    }
    for (const mode of modes) {
      const phase = byMode.get(mode)!;
      for (const c of phase.detail) {
        const r = phase.warm.get(c.name);
        if (r) r.gpuMs += c.gpuMs;
      }
      phase.detail = phase.detail.filter((c) => c.macs > 0);
      phases.push(phase);
      printTable(phase, top);
    }
    if (modes.length === 2) printComparison(byMode.get("stock")!, byMode.get("ours")!);
  }
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(phases.map(toJson), null, 2));
}

if (import.meta.main) await main();
