// Sum and Mean over a contiguous block of axes that are not the innermost ones (e.g. [0, 1, 2] of an NHWC
// tensor, as in bias gradients and batch-norm statistics). The wasm kernels first transpose the input so the
// reduced axes come last, which costs more than the sum itself; here one pass over the data accumulates
// rows of the innermost block in float64. Other cases go to the original wasm kernels.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

/** [outer, reduced, inner] sizes when `axes` form one contiguous block that leaves an inner block, else null. */
function blockSplit(shape: number[], axes: number[]): [number, number, number] | null {
  if (axes.length === 0) return null;
  const sorted = [...axes].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1] + 1) return null;
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  if (last === shape.length - 1) return null; // innermost reductions are already fast in wasm
  const size = (from: number, to: number) => shape.slice(from, to).reduce((a, b) => a * b, 1);
  return [size(0, first), size(first, last + 1), size(last + 1, shape.length)];
}

function reduceBlock(kernelName: string, divide: boolean, { inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x;
  const { axis, keepDims } = attrs as unknown as { axis: number | number[]; keepDims: boolean };
  const axes = tf.util.parseAxisParam(axis, x.shape);
  const split = x.dtype === "float32" ? blockSplit(x.shape, axes) : null;
  if (split === null) return runKernel(wasm, kernelName, inputs, attrs, true);
  const [outer, reduced, inner] = split;
  let outShape = x.shape.filter((_, i) => !axes.includes(i));
  if (keepDims) outShape = tf.backend_util.expandShapeToKeepDim(outShape, axes);
  const out = wasm.makeOutput(outShape, "float32");
  const src = wasm.typedArrayFromHeap(x) as Float32Array;
  const dst = wasm.typedArrayFromHeap(out) as Float32Array;
  const acc = new Float64Array(inner);
  const scale = divide ? 1 / reduced : 1;
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    let base = o * reduced * inner;
    let r = 0;
    // four rows per pass: a quarter of the accumulator traffic
    for (; r + 4 <= reduced; r += 4, base += 4 * inner) {
      const b1 = base + inner;
      const b2 = b1 + inner;
      const b3 = b2 + inner;
      for (let c = 0; c < inner; c++) acc[c] += src[base + c] + src[b1 + c] + src[b2 + c] + src[b3 + c];
    }
    for (; r < reduced; r++, base += inner) {
      for (let c = 0; c < inner; c++) acc[c] += src[base + c];
    }
    const outBase = o * inner;
    for (let c = 0; c < inner; c++) dst[outBase + c] = acc[c] * scale;
  }
  return out;
}

/** Sum kernel for wasm with a fast path for leading/middle axis blocks. */
export function sum(args: KernelArgs): Info {
  return reduceBlock(tf.Sum, false, args);
}

/** Mean kernel for wasm with a fast path for leading/middle axis blocks. */
export function mean(args: KernelArgs): Info {
  return reduceBlock(tf.Mean, true, args);
}
