// Identity and same-dtype Cast without copying: tfjs tensors are immutable, so (as in the cpu and webgl
// backends) the output can share the input's data with one more reference. The wasm kernels copy, which
// shows up as ~4 ms per activation-sized tensor in every batch-norm and ReLU gradient.
// Also fixes wasm 4.22's cast of numbers to bool, which truncates bytes (int32 -5 became 251, not true).

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

function share(wasm: BackendWasm, x: Info): Info {
  wasm.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Identity kernel for wasm: shares the data (strings go to the original kernel). */
export function identity({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  if (inputs.x.dtype === "string") return runKernel(wasm, tf.Identity, inputs, attrs, true);
  return share(wasm, inputs.x);
}

/** Cast kernel for wasm: shares the data when the dtype does not change, else the original kernel. */
export function cast({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x;
  const dtype = (attrs as unknown as tf.CastAttrs).dtype;
  if (x.dtype === dtype && dtype !== "string") return share(wasm, x);
  if (dtype === "bool" && (x.dtype === "int32" || x.dtype === "float32")) {
    const out = wasm.makeOutput(x.shape, "bool");
    const src = wasm.typedArrayFromHeap(x) as Float32Array | Int32Array;
    const dst = wasm.typedArrayFromHeap(out) as Uint8Array;
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return runKernel(wasm, tf.Cast, inputs, attrs, true);
}
