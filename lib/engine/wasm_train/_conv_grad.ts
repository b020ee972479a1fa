// Conv2DBackpropFilter and Conv2DBackpropInput for the wasm backend, built on its XNNPACK kernels.
//
// dW: im2col + one matrix product per batch chunk:
//   dW[(u, v, ci), co] = sum_{n,i,j} x[n, i*s + u - pad, j*s + v - pad, ci] * dy[n, i, j, co]
// col [N*Ho*Wo, kh*kw*Ci] is gathered in JS (runs of Ci contiguous values), transposed by wasm, and
// multiplied with dy [N*Ho*Wo, Co] by XNNPACK (which only runs untransposed, unbatched products; wasm's other
// BatchMatMul path is a scalar loop). Measured against the alternative of a forward convolution with batch
// and channels swapped (x as [Ci, H, W, N], dy as a dilated [Ho, Wo, N, Co] filter), this was as fast or
// faster on every layer of the reference CNN (XNNPACK handles the 3x3 outputs per "image" poorly).
//
// dX, stride 1: a forward convolution of dy with the flipped, transposed filter.
// dX, strided: col = dy [N*Ho*Wo, Co] x W^T [Co, kh*kw*Ci] as one XNNPACK matrix product (exactly the
// forward's multiply-adds, in the shape XNNPACK runs best), then col2im: each column block is added into
// dx at its strided position (plain JS, one pass). Convolving a zero-dilated dy instead would cost 4x the
// multiply-adds for stride 2, and wasm's own kernel is a scalar loop.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, type Scratch, withScratch } from "./_kernel_call.ts";

type Shape4 = [number, number, number, number];
type DimRounding = "floor" | "round" | "ceil" | undefined;
type PadAttr = "same" | "valid" | number | tf.backend_util.ExplicitPadding;

/**
 * Floats of an im2col buffer per matrix product; larger batches are done in chunks of images (bounds
 * memory). The filter gradient runs faster with fewer, longer products; the input gradient does not care.
 * Mutable so tests can force chunking.
 */
export const COLUMN_BUDGET = { dwFloats: 16 * 1024 * 1024, dxFloats: 4 * 1024 * 1024 };

interface ConvGradArgs {
  strides: number | [number, number];
  pad: PadAttr;
  dataFormat: "NHWC" | "NCHW";
  dimRoundingMode: DimRounding;
}

/** NCHW -> NHWC shape. */
function toChannelsLastShape(shape: number[]): Shape4 {
  return [shape[0], shape[2], shape[3], shape[1]];
}

function convInfoFor(
  xShapeNhwc: Shape4,
  filterShape: Shape4,
  args: ConvGradArgs,
): tf.backend_util.Conv2DInfo {
  let pad = args.pad;
  if (typeof pad === "object" && args.dataFormat === "NCHW") {
    // explicit paddings are given in the data format's axis order
    pad = [pad[0], pad[2], pad[3], pad[1]] as tf.backend_util.ExplicitPadding;
  }
  return tf.backend_util.computeConv2DInfo(
    xShapeNhwc,
    filterShape,
    args.strides,
    1,
    pad,
    args.dimRoundingMode,
    false,
    "channelsLast",
  );
}

/** Conv2DBackpropFilter: x [N,H,W,Ci], dy [N,Ho,Wo,Co] -> dW [kh,kw,Ci,Co]. */
export function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const args: ConvGradArgs = {
    strides: a.strides,
    pad: a.pad as PadAttr,
    dataFormat: a.dataFormat,
    dimRoundingMode: a.dimRoundingMode,
  };
  return withScratch(wasm, (s) => {
    let x = inputs.x;
    let dy = inputs.dy;
    if (args.dataFormat === "NCHW") {
      x = s.transpose(x, [0, 2, 3, 1]);
      dy = s.transpose(dy, [0, 2, 3, 1]);
    }
    const info = convInfoFor(x.shape as Shape4, a.filterShape as Shape4, args);
    return filterGradNhwc(s, x, dy, info);
  });
}

/**
 * Writes the im2col matrix col [count*Ho*Wo, kh*kw*Ci] of images [n0, n0+count) of x:
 * col[(n*Ho + i)*Wo + j, (u*kw + v)*Ci + c] = x[n0 + n, i*sh + u - top, j*sw + v - left, c] (0 outside).
 */
function im2col(x: Float32Array, col: Float32Array, n0: number, count: number, info: tf.backend_util.Conv2DInfo) {
  const { inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw } = info;
  const { strideHeight: sh, strideWidth: sw, inChannels: ci } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  let o = 0;
  for (let b = n0; b < n0 + count; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let u = 0; u < kh; u++) {
          const r = i * sh + u - top;
          for (let v = 0; v < kw; v++, o += ci) {
            const c0 = j * sw + v - left;
            if (r < 0 || r >= H || c0 < 0 || c0 >= W) {
              for (let c = 0; c < ci; c++) col[o + c] = 0;
              continue;
            }
            const d = ((b * H + r) * W + c0) * ci;
            for (let c = 0; c < ci; c++) col[o + c] = x[d + c];
          }
        }
      }
    }
  }
}

function filterGradNhwc(s: Scratch, x: Info, dy: Info, info: tf.backend_util.Conv2DInfo): Info {
  const { batchSize: n, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw } = info;
  const { inChannels: ci, outChannels: co } = info;
  const k = kh * kw * ci;
  const perImage = Ho * Wo;
  const chunk = Math.max(1, Math.min(n, Math.floor(COLUMN_BUDGET.dwFloats / (perImage * k))));
  let dw: Info | null = null;
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const count = Math.min(chunk, n - n0);
    const rows = count * perImage;
    const col = s.track(s.backend.makeOutput([rows, k], "float32"));
    im2col(s.backend.typedArrayFromHeap(x) as Float32Array, s.backend.typedArrayFromHeap(col) as Float32Array, n0, count, info);
    const colT = s.transpose(col, [1, 0]); // [k, rows]: XNNPACK's matrix product wants no transposed operand
    s.release(col);
    const a = s.reshape(colT, [1, k, rows]);
    const dyPart = count === n ? dy : s.slice(dy, [n0, 0, 0, 0], [count, Ho, Wo, co]);
    const b = s.reshape(dyPart, [1, rows, co]);
    const part = s.run("BatchMatMul", { a, b }, { transposeA: false, transposeB: false }); // [1, k, Co]
    for (const t of [a, colT, b]) s.release(t);
    if (dyPart !== dy) s.release(dyPart);
    if (dw === null) {
      dw = part;
    } else {
      const acc = s.backend.typedArrayFromHeap(dw) as Float32Array;
      const add = s.backend.typedArrayFromHeap(part) as Float32Array;
      for (let i = 0; i < acc.length; i++) acc[i] += add[i];
      s.release(part);
    }
  }
  return s.reshape(dw as Info, [kh, kw, ci, co]);
}

/** Conv2DBackpropInput: dy [N,Ho,Wo,Co], filter [kh,kw,Ci,Co] -> dx of shape attrs.inputShape. */
export function conv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const args: ConvGradArgs = {
    strides: a.strides,
    pad: a.pad as PadAttr,
    dataFormat: a.dataFormat,
    dimRoundingMode: a.dimRoundingMode,
  };
  return withScratch(wasm, (s) => {
    let dy = inputs.dy;
    const nchw = args.dataFormat === "NCHW";
    const inShape = nchw ? toChannelsLastShape(a.inputShape) : a.inputShape as Shape4;
    if (nchw) dy = s.transpose(dy, [0, 2, 3, 1]);
    const info = convInfoFor(inShape, inputs.filter.shape as Shape4, args);
    const dx = inputGradNhwc(s, dy, inputs.filter, info);
    return nchw ? s.transpose(dx, [0, 3, 1, 2]) : dx;
  });
}

/** Flipped filter G[mh, mw, co, ci] = W[kh-1-mh, kw-1-mw, ci, co] for stride-1 input gradients. */
function flippedFilter(w: Float32Array, kh: number, kw: number, ci: number, co: number): Float32Array {
  const g = new Float32Array(w.length);
  for (let mh = 0; mh < kh; mh++) {
    for (let mw = 0; mw < kw; mw++) {
      const gBase = (mh * kw + mw) * co * ci;
      const wBase = ((kh - 1 - mh) * kw + (kw - 1 - mw)) * ci * co;
      for (let c = 0; c < ci; c++) {
        const wRow = wBase + c * co;
        for (let o = 0; o < co; o++) g[gBase + o * ci + c] = w[wRow + o];
      }
    }
  }
  return g;
}

/**
 * Stride-1 convolution of src [N, Hs, Ws, C] with filter [M_h, M_w, C, C'] whose output row q reads src rows
 * q + offH .. q + offH + M_h - 1 (zeros outside), for q in [0, outH); likewise for columns.
 */
function windowConv(
  s: Scratch,
  src: Info,
  filter: Info,
  offH: number,
  offW: number,
  outH: number,
  outW: number,
): Info {
  const [n, hs, ws] = src.shape;
  const [mh, mw, , cOut] = filter.shape;
  const first = [Math.max(0, offH), Math.max(0, offW)];
  const last = [Math.min(hs - 1, outH + offH + mh - 2), Math.min(ws - 1, outW + offW + mw - 2)];
  if (first[0] > last[0] || first[1] > last[1]) {
    return s.run("Fill", {}, { shape: [n, outH, outW, cOut], value: 0, dtype: "float32" });
  }
  let x = src;
  if (first[0] > 0 || first[1] > 0 || last[0] < hs - 1 || last[1] < ws - 1) {
    x = s.slice(src, [0, first[0], first[1], 0], [n, last[0] - first[0] + 1, last[1] - first[1] + 1, src.shape[3]]);
  }
  return s.run("Conv2D", { x, filter }, {
    strides: [1, 1],
    pad: [[0, 0], [first[0] - offH, outH + offH + mh - 2 - last[0]], [
      first[1] - offW,
      outW + offW + mw - 2 - last[1],
    ], [0, 0]],
    dataFormat: "NHWC",
    dilations: [1, 1],
    dimRoundingMode: "floor",
  });
}

/**
 * dx += col2im(col) for images [n0, n0 + count): col rows are (n, i, j), columns (u, v, c), and
 * col[n, i, j, u, v, c] lands on dx[n, i*sh + u - top, j*sw + v - left, c].
 */
function col2imAdd(col: Float32Array, dx: Float32Array, n0: number, count: number, info: tf.backend_util.Conv2DInfo) {
  const { inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo, filterHeight: kh, filterWidth: kw } = info;
  const { strideHeight: sh, strideWidth: sw, inChannels: ci } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const tapRow = kw * ci;
  let o = 0;
  for (let b = n0; b < n0 + count; b++) {
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        for (let u = 0; u < kh; u++) {
          const r = i * sh + u - top;
          if (r < 0 || r >= H) {
            o += tapRow;
            continue;
          }
          const rowBase = (b * H + r) * W;
          for (let v = 0; v < kw; v++, o += ci) {
            const c0 = j * sw + v - left;
            if (c0 < 0 || c0 >= W) continue;
            const d = (rowBase + c0) * ci;
            for (let c = 0; c < ci; c++) dx[d + c] += col[o + c];
          }
        }
      }
    }
  }
}

function inputGradNhwc(s: Scratch, dy: Info, filter: Info, info: tf.backend_util.Conv2DInfo): Info {
  const { batchSize: n, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const { inChannels: ci, outChannels: co } = info;
  if (sh === 1 && sw === 1) {
    // a plain convolution of dy with the flipped filter
    const w = s.backend.readSync(filter.dataId) as Float32Array;
    const g = s.make([kh, kw, co, ci], flippedFilter(w, kh, kw, ci, co));
    return windowConv(s, dy, g, info.padInfo.top - (kh - 1), info.padInfo.left - (kw - 1), H, W);
  }
  // strided: col = dy [N*Ho*Wo, Co] x W^T [Co, kh*kw*Ci] in batch chunks, each scattered into dx
  const k = kh * kw * ci;
  const wt = s.reshape(s.transpose(s.reshape(filter, [k, co]), [1, 0]), [1, co, k]);
  const dx = s.track(s.backend.makeOutput([n, H, W, ci], "float32"));
  (s.backend.typedArrayFromHeap(dx) as Float32Array).fill(0);
  const perImage = Ho * Wo;
  const chunk = Math.max(1, Math.min(n, Math.floor(COLUMN_BUDGET.dxFloats / (perImage * k))));
  for (let n0 = 0; n0 < n; n0 += chunk) {
    const count = Math.min(chunk, n - n0);
    const rows = count * perImage;
    const dyPart = count === n ? dy : s.slice(dy, [n0, 0, 0, 0], [count, Ho, Wo, co]);
    const a = s.reshape(dyPart, [1, rows, co]);
    const col = s.run("BatchMatMul", { a, b: wt }, { transposeA: false, transposeB: false }); // [1, rows, k]
    // the heap may have grown during the product: take fresh views
    col2imAdd(
      s.backend.typedArrayFromHeap(col) as Float32Array,
      s.backend.typedArrayFromHeap(dx) as Float32Array,
      n0,
      count,
      info,
    );
    s.release(col);
    s.release(a);
    if (dyPart !== dy) s.release(dyPart);
  }
  return dx;
}
