// Private: float32 Sum / Mean reductions and FusedBatchNorm (inference formula). The cpu backend transposes the
// reduced axes innermost first (a full copy with per-element index arithmetic); here the reduced axes are
// collapsed into one block [outer, reduced, inner] and summed in place: large tensors by a oneDNN matmul with a
// ones vector, small ones by JS loops with float64 accumulators.
import { backend_util, util } from "@tensorflow/tfjs-core";
import { f32, output, type Override, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import { dnnlBatchNormInference, dnnlSumByMatmul } from "./_dnnl_eltwise.ts";
import { DNNL_MIN_ELEMENTS } from "./_elementwise.ts";

/** [outer, reduced, inner] when the reduced axes (ignoring size-1 dims) are contiguous; else null. */
export function reduceGeometry(shape: readonly number[], axes: readonly number[]): [number, number, number] | null {
  const red = new Set(axes);
  let outer = 1, mid = 1, inner = 1;
  let phase = 0; // 0: before the reduced block, 1: inside, 2: after
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (d === 1) continue;
    if (red.has(i)) {
      if (phase === 2) return null;
      phase = 1;
      mid *= d;
    } else {
      if (phase === 1) phase = 2;
      if (phase === 0) outer *= d;
      else inner *= d;
    }
  }
  return [outer, mid, inner];
}

function sumInto(x: Float32Array, outer: number, mid: number, inner: number, out: Float32Array, scale: number) {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let s = 0;
      const base = o * mid;
      for (let j = 0; j < mid; j++) s += x[base + j];
      out[o] = s * scale;
    }
    return;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    let base = o * mid * inner;
    for (let j = 0; j < mid; j++, base += inner) {
      for (let k = 0; k < inner; k++) acc[k] += x[base + k];
    }
    const ob = o * inner;
    for (let k = 0; k < inner; k++) out[ob + k] = acc[k] * scale;
  }
}

function reduction(mean: boolean): Override {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    if (xv === null || xv.length === 0) return null;
    const a = (attrs ?? {}) as { axis?: number | number[]; keepDims?: boolean };
    const axes = util.parseAxisParam(a.axis ?? null as unknown as number[], x.shape);
    const geo = reduceGeometry(x.shape, axes);
    if (geo === null) return null;
    const [outer, mid, inner] = geo;
    let [outShape] = backend_util.computeOutAndReduceShapes(x.shape, axes);
    if (a.keepDims) outShape = backend_util.expandShapeToKeepDim(outShape, axes);
    const out = alloc(outer * inner);
    if (out.length !== sizeOf(outShape)) return null;
    const scale = mean ? 1 / mid : 1;
    // Large sums run as a oneDNN matmul with a ones vector (fp32 accumulation, relative error ~1e-6 on 1e5
    // terms); small ones in JS with float64 accumulators like the cpu kernel.
    if (xv.length < DNNL_MIN_ELEMENTS || mid < 2 || !dnnlSumByMatmul(xv, out, outer, mid, inner, scale)) {
      sumInto(xv, outer, mid, inner, out, scale);
    }
    return output(backend, outShape, out);
  };
}

export const sum = reduction(false);
export const mean = reduction(true);

/**
 * FusedBatchNorm forward: y = offset + (x - mean) * scale / sqrt(variance + eps), parameters per last-axis
 * channel (length C) or scalars (length 1), as the cpu kernel's modulo indexing means in those cases.
 */
export const fusedBatchNorm: Override = ({ inputs, backend, attrs }) => {
  const { x, mean, variance, scale, offset } = inputs;
  const xv = f32(backend, x), mv = f32(backend, mean), vv = f32(backend, variance);
  if (xv === null || mv === null || vv === null || x.shape.length === 0) return null;
  const sv: Float32Array<ArrayBuffer> | null = scale ? f32(backend, scale) : new Float32Array([1]);
  const ov: Float32Array<ArrayBuffer> | null = offset ? f32(backend, offset) : new Float32Array([0]);
  if (sv === null || ov === null) return null;
  const c = x.shape[x.shape.length - 1];
  const okLen = (n: number) => n === c || n === 1;
  if (![mv.length, vv.length, sv.length, ov.length].every(okLen) || xv.length % c !== 0) return null;
  const eps = (attrs as { varianceEpsilon?: number } | undefined)?.varianceEpsilon ?? 0.001;
  const out = alloc(xv.length);
  const full = (v: Float32Array<ArrayBuffer> | null) => v === null || v.length === c;
  if (
    xv.length >= DNNL_MIN_ELEMENTS && mv.length === c && vv.length === c && full(sv) && full(ov) &&
    dnnlBatchNormInference(xv, out, c, mv, vv, scale ? sv : null, offset ? ov : null, eps)
  ) {
    return output(backend, x.shape.slice(), out);
  }
  // per-channel a*x + b, with the cpu kernel's rounding order kept for the scale factor.
  const mul = new Float64Array(c), add = new Float64Array(c), mu = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    mu[k] = mv[mv.length === 1 ? 0 : k];
    mul[k] = sv[sv.length === 1 ? 0 : k] / Math.sqrt(vv[vv.length === 1 ? 0 : k] + eps);
    add[k] = ov[ov.length === 1 ? 0 : k];
  }
  for (let base = 0; base < xv.length; base += c) {
    for (let k = 0; k < c; k++) out[base + k] = add[k] + (xv[base + k] - mu[k]) * mul[k];
  }
  return output(backend, x.shape.slice(), out);
};
