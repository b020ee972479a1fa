// Slice for wasm without the full copy: the wasm kernel first copies the whole input out of the heap
// (readSync) and then cuts the slice from that copy, so slicing a few rows of a large tensor costs as much
// as copying all of it. Here the slice is read straight from a view of the heap.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

type Numeric = Float32Array | Int32Array | Uint8Array;

/** Rows at least this long are copied with TypedArray.set, shorter ones element by element. */
const SET_MIN = 64;

/** Copies the box begin..begin+size of src (shape) into dst, row-major. */
export function sliceInto(src: Numeric, shape: number[], begin: number[], size: number[], dst: Numeric): void {
  const rank = shape.length;
  if (rank === 0) {
    dst[0] = src[0];
    return;
  }
  const strides = new Array<number>(rank);
  let st = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = st;
    st *= shape[i];
  }
  // merge the trailing axes that are taken whole into one contiguous row
  let inner = rank - 1;
  let len = size[rank - 1];
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) {
    inner--;
    len *= size[inner];
  }
  let offset = 0;
  for (let i = 0; i < rank; i++) offset += begin[i] * strides[i];
  const rows = size.slice(0, inner).reduce((a, b) => a * b, 1);
  const idx = new Array<number>(inner).fill(0);
  let dstOff = 0;
  for (let r = 0; r < rows; r++) {
    if (len >= SET_MIN) dst.set(src.subarray(offset, offset + len), dstOff);
    else for (let k = 0; k < len; k++) dst[dstOff + k] = src[offset + k];
    dstOff += len;
    for (let ax = inner - 1; ax >= 0; ax--) {
      offset += strides[ax];
      if (++idx[ax] < size[ax]) break;
      offset -= strides[ax] * size[ax];
      idx[ax] = 0;
    }
  }
}

/** Slice kernel for wasm reading from a heap view (strings go to the original kernel). */
export function slice({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x;
  if (x.dtype === "string") return runKernel(wasm, tf.Slice, inputs, attrs, true);
  const a = attrs as unknown as tf.SliceAttrs;
  const [begin, size] = tf.slice_util.parseSliceParams(x as tf.Tensor, a.begin, a.size);
  const out = wasm.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  sliceInto(wasm.typedArrayFromHeap(x) as Numeric, x.shape, begin, size, wasm.typedArrayFromHeap(out) as Numeric);
  return out;
}
