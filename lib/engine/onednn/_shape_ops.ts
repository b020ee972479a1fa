// Private: Slice, PadV2 and LeakyRelu on float32 by contiguous row copies / one tight loop (LeakyRelu of large tensors
// by oneDNN). The cpu backend's Slice of a non-contiguous region and its PadV2 go element by element through index
// arithmetic (a crop of 8×112×88×3 took ~1 s); these copy the innermost contiguous run at a time. Slice and PadV2
// are bit-identical to the cpu kernels; oneDNN's LeakyRelu multiplies by alpha in float32 (the cpu kernel in
// float64, then rounds), so a value below zero may differ in its last bit.
import { f32, output, type Override, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import { dnnlEltwise } from "./_dnnl_eltwise.ts";
import { DNNL_MIN_ELEMENTS } from "./_elementwise.ts";
import { ALG_ELTWISE_RELU } from "./_ffi.ts";

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
  forEachRun(x.shape, begin, size, (big, dense, len) => out.set(xv.subarray(big, big + len), dense));
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
  forEachRun(outShape, pads.map((p) => p[0]), x.shape, (big, dense, len) => out.set(xv.subarray(dense, dense + len), big));
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
