// Helpers for composing wasm kernels inside other kernels.
//
// Kernels run below the engine: they see TensorInfos, not Tensors, so nothing they create is tracked by
// tf.memory(). Every intermediate must be released with backend.disposeData; `Scratch` collects them and
// frees them all at the end of a kernel, except the one result handed back to the engine.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type Info = tf.TensorInfo;
export type Attrs = tf.NamedAttrMap;

/** What the engine passes to a kernel function (inputs are always present for the kernels here). */
export interface KernelArgs {
  inputs: Record<string, Info>;
  backend: unknown;
  attrs?: Attrs;
}

/** Saved original wasm kernels that were replaced, so replacements can fall back to them. */
export const ORIGINAL_KERNELS = new Map<string, tf.KernelConfig>();

/** Looks up the kernel function currently used for `name` on wasm, or the original if `original` is set. */
function kernelFuncFor(name: string, original: boolean): tf.KernelFunc {
  const config = original ? ORIGINAL_KERNELS.get(name) ?? tf.getKernel(name, "wasm") : tf.getKernel(name, "wasm");
  if (config === undefined) throw new Error(`wasm_train: the wasm backend has no '${name}' kernel`);
  return config.kernelFunc;
}

/** Runs one wasm kernel directly (no engine bookkeeping). The caller owns the result. */
export function runKernel(
  backend: BackendWasm,
  name: string,
  inputs: Record<string, Info>,
  attrs: Attrs = {},
  original = false,
): Info {
  const out = kernelFuncFor(name, original)({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`wasm_train: kernel '${name}' returned several outputs`);
  return out;
}

/** Collects intermediate TensorInfos of one kernel call and frees them together. */
export class Scratch {
  private readonly held: Info[] = [];
  constructor(readonly backend: BackendWasm) {}

  /** Runs a kernel and remembers its output for disposal. */
  run(name: string, inputs: Record<string, Info>, attrs: Attrs = {}): Info {
    const out = runKernel(this.backend, name, inputs, attrs);
    this.held.push(out);
    return out;
  }

  /** Remembers an externally made TensorInfo for disposal. */
  track(info: Info): Info {
    this.held.push(info);
    return info;
  }

  /** Makes a float32 tensor on the wasm heap from values. */
  make(shape: number[], values: Float32Array): Info {
    return this.track(this.backend.makeOutput(shape, "float32", undefined, values));
  }

  reshape(x: Info, shape: number[]): Info {
    return this.run("Reshape", { x }, { shape });
  }

  transpose(x: Info, perm: number[]): Info {
    return this.run("Transpose", { x }, { perm });
  }

  slice(x: Info, begin: number[], size: number[]): Info {
    return this.run("Slice", { x }, { begin, size });
  }

  /** Frees one tracked TensorInfo now (to keep peak memory down in loops). */
  release(info: Info): void {
    const i = this.held.indexOf(info);
    if (i < 0) throw new Error("wasm_train: releasing a TensorInfo that is not held");
    this.held.splice(i, 1);
    this.backend.disposeData(info.dataId);
  }

  /** Hands `result` to the caller and frees everything else. */
  finish(result: Info): Info {
    let kept = false;
    for (const info of this.held) {
      if (!kept && info === result) {
        kept = true;
        continue;
      }
      this.backend.disposeData(info.dataId);
    }
    this.held.length = 0;
    return result;
  }

  /** Frees everything (for error paths). */
  dispose(): void {
    for (const info of this.held) this.backend.disposeData(info.dataId);
    this.held.length = 0;
  }
}

/** Runs `body` with a fresh Scratch; returns its result and frees the rest, also on errors. */
export function withScratch(backend: BackendWasm, body: (s: Scratch) => Info): Info {
  const s = new Scratch(backend);
  try {
    return s.finish(body(s));
  } catch (e) {
    s.dispose();
    throw e;
  }
}
