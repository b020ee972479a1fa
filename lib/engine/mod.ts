/**
 * Chooses the TensorFlow.js backend once at start-up and says which one runs
 * and why. Order when nothing is forced:
 *   tensorflow (if @tensorflow/tfjs-node-gpu or -node is installed and loads)
 *   → onednn (tfjs kernels on oneDNN through Deno FFI, when libdnnl is present)
 *   → wasm (fast inference; training kernels registered by lib/engine/wasm_train)
 *   → cpu (pure JS reference; very slow to train).
 * Force one with `--backend NAME` or `TP_BACKEND=NAME` (also `webgpu`); a
 * forced backend that cannot start is an error that says why.
 */
import * as tf from "@tensorflow/tfjs-core";
// The union package registers every op's gradient (tfjs-core alone has none) and the cpu backend.
import "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { registerOnednnBackend } from "./onednn/mod.ts";
import { registerResizeNearestGradKernel } from "./resize_grad.ts";
import { registerWasmTrainingKernels } from "./wasm_train/mod.ts";
import { explainSyncReads, registerWebgpuKernels } from "./webgpu/mod.ts";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { UserError } from "../util/errors.ts";

export const BACKENDS = ["tensorflow", "onednn", "wasm", "cpu", "webgpu"] as const;
export type BackendName = typeof BACKENDS[number];
/** Automatic order (webgpu is only used when forced). */
export const AUTO_ORDER: readonly BackendName[] = ["tensorflow", "onednn", "wasm", "cpu"];

export interface Attempt {
  backend: BackendName;
  ok: boolean;
  reason: string;
}

export interface EngineChoice {
  backend: BackendName;
  reason: string;
  forced: boolean;
  attempts: Attempt[];
}

export interface EngineOptions {
  /** Force a backend; default: TP_BACKEND, else automatic. */
  backend?: string;
  /** Print the choice to stderr (default true). */
  verbose?: boolean;
  /** Who forces `backend`, for the message (default "--backend"). */
  source?: string;
}

const require = createRequire(import.meta.url);
let current: EngineChoice | null = null;

/** The choice made by the last initEngine() call, if any. */
export function engineChoice(): EngineChoice | null {
  return current;
}

async function tryTensorflow(): Promise<string | null> {
  for (const pkg of ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]) {
    let entry: string;
    try {
      entry = require.resolve(pkg);
    } catch {
      continue;
    }
    try {
      await import(pathToFileURL(entry).href);
      if (await tf.setBackend("tensorflow")) return `${pkg} loaded (libtensorflow)`;
    } catch (err) {
      throw new Error(`${pkg} is installed but failed to load: ${(err as Error).message}`);
    }
  }
  return null;
}

async function tryOnednn(): Promise<string | null> {
  const st = await registerOnednnBackend();
  if (!st.available) throw new Error(st.reason);
  if (!(await tf.setBackend("onednn"))) throw new Error("onednn backend failed to initialise");
  return `oneDNN ${st.version ?? ""} via Deno FFI (${st.library ?? "libdnnl"}; convolutions in ${st.convActivations === "nhwc" ? "NHWC" : "blocked layouts"})`.replace("  ", " ");
}

let wasmPathsSet = false;
async function tryWasm(): Promise<string> {
  if (!wasmPathsSet) {
    const dist = require.resolve("@tensorflow/tfjs-backend-wasm/package.json").replace(/package\.json$/, "dist/");
    setWasmPaths(dist);
    wasmPathsSet = true;
  }
  registerWasmTrainingKernels();
  if (!(await tf.setBackend("wasm"))) throw new Error("wasm backend failed to initialise");
  return "WebAssembly (XNNPACK, single thread) with training kernels";
}

async function tryWebgpu(): Promise<string> {
  // deno-lint-ignore no-explicit-any
  const gpu = (navigator as any).gpu;
  if (!gpu) throw new UserError("navigator.gpu is missing (run Deno with --unstable-webgpu)");
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter (install mesa-vulkan-drivers or a GPU driver)");
  await import("@tensorflow/tfjs-backend-webgpu");
  registerWebgpuKernels(); // tiled convolution gradients over tfjs-webgpu's naive ones (lib/engine/webgpu/)
  if (!(await tf.setBackend("webgpu"))) throw new Error("webgpu backend failed to initialise");
  explainSyncReads(tf.backend() as unknown as Parameters<typeof explainSyncReads>[0]); // dataSync says to use data()
  const info = adapter.info ?? {};
  return `WebGPU on ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" ") || "an adapter"}`;
}

async function start(name: BackendName): Promise<string | null> {
  switch (name) {
    case "tensorflow":
      return await tryTensorflow();
    case "onednn":
      return await tryOnednn();
    case "wasm":
      return await tryWasm();
    case "webgpu":
      return await tryWebgpu();
    case "cpu":
      registerResizeNearestGradKernel(); // tfjs' own reads the wrong dy rows after a batch's first image
      await tf.setBackend("cpu");
      return "pure JavaScript reference backend";
  }
}

/**
 * Initialises tfjs with the best (or the forced) backend and prints the
 * choice. Throws when a forced backend is unknown or unavailable.
 */
export async function initEngine(opts: EngineOptions = {}): Promise<EngineChoice> {
  const forcedName = opts.backend ?? Deno.env.get("TP_BACKEND") ?? undefined;
  const attempts: Attempt[] = [];
  let choice: EngineChoice | null = null;
  if (forcedName) {
    if (!(BACKENDS as readonly string[]).includes(forcedName)) {
      throw new UserError(`unknown backend '${forcedName}'; expected one of ${BACKENDS.join(", ")}`);
    }
    const name = forcedName as BackendName;
    let reason: string | null;
    try {
      reason = await start(name);
    } catch (err) {
      throw new Error(`backend '${name}' was requested but is not available: ${(err as Error).message}`);
    }
    if (reason === null) throw new UserError(`backend '${name}' was requested but is not installed`);
    attempts.push({ backend: name, ok: true, reason });
    choice = { backend: name, reason: `forced by ${opts.backend ? (opts.source ?? "--backend") : "TP_BACKEND"}: ${reason}`, forced: true, attempts };
  } else {
    for (const name of AUTO_ORDER) {
      try {
        const reason = await start(name);
        if (reason === null) {
          attempts.push({ backend: name, ok: false, reason: "not installed" });
          continue;
        }
        attempts.push({ backend: name, ok: true, reason });
        const skipped = attempts.filter((a) => !a.ok).map((a) => `${a.backend}: ${a.reason}`);
        choice = {
          backend: name,
          reason: reason + (skipped.length ? ` (skipped ${skipped.join("; ")})` : ""),
          forced: false,
          attempts,
        };
        break;
      } catch (err) {
        attempts.push({ backend: name, ok: false, reason: (err as Error).message });
      }
    }
  }
  if (!choice) throw new Error("no tfjs backend could start: " + attempts.map((a) => `${a.backend}: ${a.reason}`).join("; "));
  await tf.ready();
  // The cpu backend (and onednn, built on it) greets Node-like runtimes with
  // an advert for tfjs-node on first use; we already said what runs and why.
  const be = tf.findBackend(choice.backend) as unknown as { firstUse?: boolean } | null;
  if (be && "firstUse" in be) be.firstUse = false;
  current = choice;
  if (opts.verbose ?? true) console.error(`[engine] backend ${choice.backend} — ${choice.reason}`);
  return choice;
}
