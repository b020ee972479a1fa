// Transpose for wasm: the wasm kernel walks the output element by element, which is fine while consecutive
// outputs read nearby inputs but collapses when they are far apart (about 0.1 s to turn a [64,54,42,32]
// activation into [32,54,42,64], as the filter gradient needs). Such permutations are done here in JS as
// cache-sized 2-D tiles after merging axes that stay together; all others go to the wasm kernel.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

type Numeric = Float32Array | Int32Array | Uint8Array;

const TILE = 32;
/** Input stride (elements) of the output's innermost axis above which the JS tiles beat wasm. */
const FAR_STRIDE = 2048;

/** Drops size-1 axes and merges input axes that stay adjacent and in order. */
export function simplifyPermutation(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const kept = perm.filter((axis) => shape[axis] !== 1);
  // group runs of consecutive input axes in output order
  const groups: number[][] = [];
  for (const axis of kept) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[last.length - 1] + 1 === axis) last.push(axis);
    else groups.push([axis]);
  }
  // order groups by their first input axis to number the merged input axes
  const order = groups.map((g, i) => [g[0], i]).sort((a, b) => a[0] - b[0]);
  const newShape = new Array<number>(groups.length);
  const newIndex = new Array<number>(groups.length);
  order.forEach(([, gi], rank) => {
    newIndex[gi] = rank;
    newShape[rank] = groups[gi].reduce((acc, axis) => acc * shape[axis], 1);
  });
  return { shape: newShape, perm: newIndex };
}

function stridesOf(shape: number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

/** True when consecutive outputs of this permutation read input elements far apart (the slow wasm case). */
export function readsFarApart(shape: number[], perm: number[]): boolean {
  const { shape: s, perm: p } = simplifyPermutation(shape, perm);
  const r = s.length;
  // rank 2 has a tiled wasm path; a short innermost input axis makes JS tiles too thin to pay off
  return r > 2 && p[r - 1] !== r - 1 && s[r - 1] >= 8 && stridesOf(s)[p[r - 1]] >= FAR_STRIDE;
}

/** Writes src (shape, row-major) permuted by perm into dst, as 2-D tiles; the innermost axis must move. */
export function transposeInto(src: Numeric, shape: number[], perm: number[], dst: Numeric): void {
  const { shape: s, perm: p } = simplifyPermutation(shape, perm);
  const r = s.length;
  const inStrides = stridesOf(s);
  const outShape = p.map((axis) => s[axis]);
  const inStrideOfOut = p.map((axis) => inStrides[axis]);
  const outStrides = stridesOf(outShape);

  // tile over output axis j (where the input's contiguous axis went) and the output's last axis
  const j = p.indexOf(r - 1);
  const last = r - 1;
  const others: number[] = [];
  for (let ax = 0; ax < r; ax++) if (ax !== j && ax !== last) others.push(ax);
  const A = outShape[j];
  const B = outShape[last];
  const dstStrideA = outStrides[j];
  const srcStrideB = inStrideOfOut[last];
  const idx = new Array<number>(others.length).fill(0);
  const outer = others.reduce((acc, ax) => acc * outShape[ax], 1);
  let srcBase = 0;
  let dstBase = 0;
  for (let o = 0; o < outer; o++) {
    for (let a0 = 0; a0 < A; a0 += TILE) {
      const a1 = Math.min(A, a0 + TILE);
      for (let b0 = 0; b0 < B; b0 += TILE) {
        const b1 = Math.min(B, b0 + TILE);
        for (let a = a0; a < a1; a++) {
          const dRow = dstBase + a * dstStrideA;
          const sRow = srcBase + a;
          for (let b = b0; b < b1; b++) dst[dRow + b] = src[sRow + b * srcStrideB];
        }
      }
    }
    for (let k = others.length - 1; k >= 0; k--) {
      const ax = others[k];
      srcBase += inStrideOfOut[ax];
      dstBase += outStrides[ax];
      if (++idx[k] < outShape[ax]) break;
      srcBase -= inStrideOfOut[ax] * outShape[ax];
      dstBase -= outStrides[ax] * outShape[ax];
      idx[k] = 0;
    }
  }
}

/** Transpose kernel for wasm: far-apart reads here, everything else (and strings) in the original kernel. */
export function transpose({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const x = inputs.x;
  const perm = (attrs as unknown as tf.TransposeAttrs).perm;
  if (x.dtype === "string" || !readsFarApart(x.shape, perm)) {
    return runKernel(wasm, tf.Transpose, inputs, attrs, true);
  }
  const out = wasm.makeOutput(perm.map((axis) => x.shape[axis]), x.dtype);
  transposeInto(wasm.typedArrayFromHeap(x) as Numeric, x.shape, perm, wasm.typedArrayFromHeap(out) as Numeric);
  return out;
}
