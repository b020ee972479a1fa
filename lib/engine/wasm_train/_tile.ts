// Tile for wasm by block copies: the wasm kernel walks the output element by element (0.5 s to broadcast
// a [1,1,1,32] tensor to a batch of 64 feature maps in batch-norm gradients). Here each source row is copied
// once and whole blocks are then replicated with copyWithin, doubling the copied span each time.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

type Numeric = Float32Array | Int32Array | Uint8Array;

/** Copies dst[start, start+len) so that it appears `times` times in a row. */
function replicate(dst: Numeric, start: number, len: number, times: number): void {
  const total = len * times;
  let filled = len;
  while (filled < total) {
    const n = Math.min(filled, total - filled);
    dst.copyWithin(start + filled, start, start + n);
    filled += n;
  }
}

function tileInto(src: Numeric, shape: number[], reps: number[], dst: Numeric): void {
  const rank = shape.length;
  const srcStrides = new Array<number>(rank);
  const dstStrides = new Array<number>(rank);
  let s = 1;
  let d = 1;
  for (let i = rank - 1; i >= 0; i--) {
    srcStrides[i] = s;
    dstStrides[i] = d;
    s *= shape[i];
    d *= shape[i] * reps[i];
  }
  const fill = (axis: number, srcOff: number, dstOff: number): void => {
    if (axis === rank - 1) {
      dst.set(src.subarray(srcOff, srcOff + shape[axis]), dstOff);
    } else {
      for (let j = 0; j < shape[axis]; j++) {
        fill(axis + 1, srcOff + j * srcStrides[axis], dstOff + j * dstStrides[axis]);
      }
    }
    if (reps[axis] > 1) replicate(dst, dstOff, shape[axis] * dstStrides[axis], reps[axis]);
  };
  fill(0, 0, 0);
}

/** Tile kernel for wasm (numeric dtypes; strings go to the original kernel). */
export function tile({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x;
  const reps = (attrs as unknown as tf.TileAttrs).reps;
  if (x.dtype === "string" || x.shape.length === 0) return runKernel(wasm, tf.Tile, inputs, attrs, true);
  const outShape = x.shape.map((dim, i) => dim * reps[i]);
  const out = wasm.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  tileInto(wasm.typedArrayFromHeap(x) as Numeric, x.shape, reps, wasm.typedArrayFromHeap(out) as Numeric);
  return out;
}
