// Private: Slice, PadV2, SplitV, Concat and LeakyRelu on float32 by contiguous row copies / one tight loop (LeakyRelu
// of large tensors by oneDNN). SplitV (the gradient of Concat) is the cpu backend's Slice per piece, called directly
// (so the override of Slice never saw it): 0.14 s for [32,10753] split into 10752 + 1 along the last axis. The cpu
// backend's Slice of a non-contiguous region and its PadV2 go element by element through index arithmetic (a crop
// of 8×112×88×3 took ~1 s); these copy the innermost contiguous run at a time. Slice, PadV2, SplitV and Concat
// are bit-identical to the cpu kernels; oneDNN's LeakyRelu multiplies by alpha in float32 (the cpu kernel in
// float64, then rounds), so a value below zero may differ in its last bit.
import { f32, output, type Override, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import { dnnlEltwise } from "./_dnnl_eltwise.ts";
import { DNNL_MIN_ELEMENTS } from "./_elementwise.ts";
import { ALG_ELTWISE_RELU } from "./_ffi.ts";

/** Copies src[from, from + len) to dst[at…]: short runs element by element (a subarray per run costs more than the copy). */
function copyRun(dst: Float32Array, at: number, src: Float32Array, from: number, len: number): void {
  if (len >= 32) dst.set(src.subarray(from, from + len), at);
  else for (let i = 0; i < len; i++) dst[at + i] = src[from + i];
}

/**
 * Calls `row(srcOffset, dstOffset)` for every innermost run of a box `size` placed at `begin` in `outer` (row-major),
 * where the box itself is laid out densely. Trailing dims that the box covers fully are merged into the run.
 */
function forEachRun(outer: readonly number[], begin: readonly number[], size: readonly number[], row: (big: number, dense: number, len: number) => void): void {
  const r = outer.length;
  // Merge trailing full dims into the run length.
  let k = r - 1;
  let run = size[k];
  while (k > 0 && size[k] === outer[k] && begin[k] === 0) {
    k--;
    run *= size[k];
  }
  const stride = new Array<number>(r);
  stride[r - 1] = 1;
  for (let i = r - 2; i >= 0; i--) stride[i] = stride[i + 1] * outer[i + 1];
  const dims = size.slice(0, k); // iterate over dims < k; dim k starts at begin[k] and runs `run` (with merged tail)
  const count = sizeOf(dims);
  const idx = new Array<number>(k).fill(0);
  let base = 0;
  for (let d = 0; d < r; d++) base += begin[d] * stride[d];
  for (let n = 0; n < count; n++) {
    let o = base;
    for (let d = 0; d < k; d++) o += idx[d] * stride[d];
    row(o, n * run, run);
    for (let d = k - 1; d >= 0; d--) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
}

export const slice: Override = ({ inputs, backend, attrs }) => {
  const x = inputs.x;
  const xv = f32(backend, x);
  const a = attrs as { begin?: number | number[]; size?: number | number[] } | undefined;
  if (xv === null || !a || x.shape.length === 0) return null;
  const r = x.shape.length;
  const begin = Array.isArray(a.begin) ? a.begin : null;
  const rawSize = Array.isArray(a.size) ? a.size : null;
  if (!begin || !rawSize || begin.length !== r || rawSize.length !== r) return null;
  const size = rawSize.map((s, i) => (s === -1 ? x.shape[i] - begin[i] : s));
  if (size.some((s, i) => s < 0 || begin[i] < 0 || begin[i] + s > x.shape[i])) return null;
  const n = sizeOf(size);
  if (n === 0) return null;
  const out = alloc(n);
  forEachRun(x.shape, begin, size, (big, dense, len) => copyRun(out, dense, xv, big, len));
  return output(backend, size, out);
};

export const padV2: Override = ({ inputs, backend, attrs }) => {
  const x = inputs.x;
  const xv = f32(backend, x);
  const a = attrs as { paddings?: [number, number][]; constantValue?: number } | undefined;
  if (xv === null || !a?.paddings || a.paddings.length !== x.shape.length || x.shape.length === 0) return null;
  const pads = a.paddings;
  const outShape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  const n = sizeOf(outShape);
  if (n === 0 || xv.length === 0) return null;
  const out = alloc(n);
  out.fill(a.constantValue ?? 0);
  forEachRun(outShape, pads.map((p) => p[0]), x.shape, (big, dense, len) => copyRun(out, big, xv, dense, len));
  return output(backend, outShape, out);
};

export const leakyRelu: Override = ({ inputs, backend, attrs }) => {
  const xv = f32(backend, inputs.x);
  const alpha = (attrs as { alpha?: number } | undefined)?.alpha;
  if (xv === null || typeof alpha !== "number") return null;
  const out = alloc(xv.length);
  // Large tensors: oneDNN's vectorised relu with a slope (a JS branch on the sign mispredicts on half the activations;
  // 4.6M values took ~6 ms per call). alpha > 0 only: its alpha-0 relu turns NaN into 0, tfjs keeps NaN.
  if (xv.length >= DNNL_MIN_ELEMENTS && alpha > 0 && dnnlEltwise(ALG_ELTWISE_RELU, alpha, 0, xv, out)) {
    return output(backend, [...inputs.x.shape], out);
  }
  for (let i = 0; i < xv.length; i++) {
    const v = xv[i];
    out[i] = v < 0 ? alpha * v : v;
  }
  return output(backend, [...inputs.x.shape], out);
};

/** Normalises a possibly negative axis of a rank-r tensor; null when out of range. */
function axisOf(axis: unknown, r: number): number | null {
  const a = Array.isArray(axis) ? axis[0] : axis;
  if (typeof a !== "number" || !Number.isInteger(a) || a < -r || a >= r) return null;
  return a < 0 ? a + r : a;
}

export const splitV: Override = ({ inputs, backend, attrs }) => {
  const x = inputs.x;
  const xv = f32(backend, x);
  const a = attrs as { numOrSizeSplits?: number | number[]; axis?: number } | undefined;
  const r = x.shape.length;
  const axis = axisOf(a?.axis, r);
  if (xv === null || axis === null || a?.numOrSizeSplits === undefined || xv.length === 0) return null;
  const dim = x.shape[axis];
  let sizes: number[];
  if (typeof a.numOrSizeSplits === "number") {
    const n = a.numOrSizeSplits;
    if (!(Number.isInteger(n) && n > 0 && dim % n === 0)) return null;
    sizes = new Array(n).fill(dim / n);
  } else {
    sizes = [...a.numOrSizeSplits];
    const free = sizes.filter((s) => s === -1).length;
    if (free > 1) return null;
    if (free === 1) sizes[sizes.indexOf(-1)] = dim - sizes.reduce((t, s) => (s === -1 ? t : t + s), 0);
    if (sizes.some((s) => !(Number.isInteger(s) && s >= 0)) || sizes.reduce((t, s) => t + s, 0) !== dim) return null;
  }
  const outs = [];
  let offset = 0;
  for (const s of sizes) {
    const size = x.shape.map((d, i) => (i === axis ? s : d));
    const begin = x.shape.map((_, i) => (i === axis ? offset : 0));
    const out = alloc(sizeOf(size));
    if (s > 0) forEachRun(x.shape, begin, size, (big, dense, len) => copyRun(out, dense, xv, big, len));
    outs.push(output(backend, size, out));
    offset += s;
  }
  return outs;
};

export const concat: Override = ({ inputs, backend, attrs }) => {
  const list = Object.values(inputs);
  if (list.length === 0) return null;
  const r = list[0].shape.length;
  const axis = axisOf((attrs as { axis?: number } | undefined)?.axis, r);
  const vals = list.map((t) => f32(backend, t));
  if (axis === null || r === 0 || vals.some((v) => v === null)) return null;
  if (list.some((t) => t.shape.length !== r || t.shape.some((d, i) => i !== axis && d !== list[0].shape[i]))) return null;
  const outShape = list[0].shape.map((d, i) => (i === axis ? list.reduce((t, x) => t + x.shape[axis], 0) : d));
  const n = sizeOf(outShape);
  if (n === 0) return null;
  const out = alloc(n);
  let offset = 0;
  list.forEach((t, k) => {
    const xv = vals[k]!;
    if (xv.length > 0) {
      const begin = outShape.map((_, i) => (i === axis ? offset : 0));
      forEachRun(outShape, begin, t.shape, (big, dense, len) => copyRun(out, big, xv, dense, len));
    }
    offset += t.shape[axis];
  });
  return output(backend, outShape, out);
};
