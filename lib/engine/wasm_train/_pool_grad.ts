// MaxPoolGrad and AvgPoolGrad for wasm in plain JS. The wasm kernels are scalar loops that recompute window
// positions per element (about 0.3 s for the max-pool gradient of a 32x108x84x32 activation); here each
// window is visited once, with all channels of a pixel handled together. Semantics follow tfjs's cpu
// backend: the first maximum of a window (row-major) takes the gradient; the average divides by the full
// window size.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel } from "./_kernel_call.ts";

/** MaxPoolGrad: dy, input (x), output -> dx of x's shape. */
export function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const { dy, input } = inputs;
  const a = attrs as unknown as tf.MaxPoolGradAttrs;
  if (input.dtype !== "float32" || dy.dtype !== "float32") {
    return runKernel(wasm, tf.MaxPoolGrad, inputs, attrs, true);
  }
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
  const { batchSize: n, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = wasm.makeOutput(input.shape, "float32");
  const x = wasm.typedArrayFromHeap(input) as Float32Array;
  const g = wasm.typedArrayFromHeap(dy) as Float32Array;
  const dx = wasm.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < Ho; i++) {
      const r0 = Math.max(0, i * sh - top);
      const r1 = Math.min(H, i * sh - top + fh);
      for (let j = 0; j < Wo; j++) {
        const c0 = Math.max(0, j * sw - left);
        const c1 = Math.min(W, j * sw - left + fw);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) {
            const base = ((b * H + r) * W + col) * C;
            for (let c = 0; c < C; c++) {
              const v = x[base + c];
              if (v > best[c]) {
                best[c] = v;
                where[c] = base + c;
              }
            }
          }
        }
        const gBase = ((b * Ho + i) * Wo + j) * C;
        for (let c = 0; c < C; c++) if (where[c] >= 0) dx[where[c]] += g[gBase + c];
      }
    }
  }
  return out;
}

/** AvgPoolGrad: dy, input (x) -> dx of x's shape. */
export function avgPoolGrad({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const { dy, input } = inputs;
  const a = attrs as unknown as tf.AvgPoolGradAttrs;
  if (dy.dtype !== "float32") return runKernel(wasm, tf.AvgPoolGrad, inputs, attrs, true);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
  );
  const { batchSize: n, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const scale = 1 / (info.filterHeight * info.filterWidth);
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = wasm.makeOutput(input.shape, "float32");
  const g = wasm.typedArrayFromHeap(dy) as Float32Array;
  const dx = wasm.typedArrayFromHeap(out) as Float32Array;
  dx.fill(0);
  const share = new Float32Array(C);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < Ho; i++) {
      const r0 = Math.max(0, i * sh - top);
      const r1 = Math.min(H, i * sh - top + fh);
      for (let j = 0; j < Wo; j++) {
        const c0 = Math.max(0, j * sw - left);
        const c1 = Math.min(W, j * sw - left + fw);
        const gBase = ((b * Ho + i) * Wo + j) * C;
        for (let c = 0; c < C; c++) share[c] = g[gBase + c] * scale;
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) {
            const base = ((b * H + r) * W + col) * C;
            for (let c = 0; c < C; c++) dx[base + c] += share[c];
          }
        }
      }
    }
  }
  return out;
}
