// Private: fast float32 element-wise kernels: binary ops with broadcasting, unary ops, Tile. The cpu backend runs
// these through a generic per-element callback and, for broadcasting, per-element index arithmetic (10-50x
// slower). Large tensors go to oneDNN's multi-threaded binary / eltwise primitives where one has the same
// semantics; the rest runs generated JS loops (one per op, so V8 compiles each monomorphically), bit-identical to
// the cpu kernels. oneDNN's add/sub/mul/div are bit-identical too; its square, sqrt, pow and logistic are within
// a few float32 ulps.
import { backend_util } from "@tensorflow/tfjs-core";
import { f32, output, type Override, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import {
  ALG_BINARY_DIV,
  ALG_BINARY_SUB,
  ALG_ELTWISE_ABS,
  ALG_ELTWISE_LINEAR,
  ALG_ELTWISE_POW,
  ALG_ELTWISE_SQRT,
  ALG_ELTWISE_SQUARE,
  ALG_ELTWISE_TANH,
  dnnlBinary,
  dnnlEltwise,
  type PostOp,
} from "./_dnnl_eltwise.ts";
import { ALG_BINARY_ADD, ALG_BINARY_MUL, ALG_ELTWISE_LOGISTIC } from "./_ffi.ts";
import { env } from "./_env.ts";

/**
 * Tensors with at least this many elements go to oneDNN's multi-threaded primitives where one fits; smaller ones
 * (and unsupported patterns) run the JS loops. ONEDNN_ELTWISE=js keeps everything in JS.
 */
export const DNNL_MIN_ELEMENTS = env("ONEDNN_ELTWISE") === "js" ? Infinity : 1 << 16;

// ---- broadcasting geometry ----

/**
 * Collapsed broadcast iteration: dims (outermost first) with element strides of a and b (0 where broadcast).
 * Adjacent dims with the same broadcast pattern are merged, so e.g. [64,54,42,32] x [32] becomes
 * dims [145152, 32], strides a [32, 1], b [0, 1].
 */
interface Broadcast {
  dims: number[];
  sa: number[];
  sb: number[];
}

export function broadcastGeometry(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]) {
  const r = outShape.length;
  const pa = new Array<number>(r - aShape.length).fill(1).concat(aShape);
  const pb = new Array<number>(r - bShape.length).fill(1).concat(bShape);
  // pattern per dim: 0 both full, 1 a broadcast, 2 b broadcast, 3 both broadcast (size-1 output dim: dropped)
  const dims: number[] = [], pats: number[] = [];
  for (let i = 0; i < r; i++) {
    const d = outShape[i];
    if (d === 1) continue;
    const pat = (pa[i] === 1 ? 1 : 0) | (pb[i] === 1 ? 2 : 0);
    if (dims.length > 0 && pats[pats.length - 1] === pat) dims[dims.length - 1] *= d;
    else {
      dims.push(d);
      pats.push(pat);
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    pats.push(0);
  }
  const sa = new Array<number>(dims.length), sb = new Array<number>(dims.length);
  let ca = 1, cb = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    sa[i] = pats[i] & 1 ? 0 : ca;
    sb[i] = pats[i] & 2 ? 0 : cb;
    if (!(pats[i] & 1)) ca *= dims[i];
    if (!(pats[i] & 2)) cb *= dims[i];
  }
  return { dims, sa, sb } as Broadcast;
}

type BinaryLoop = (
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  dims: number[],
  sa: number[],
  sb: number[],
) => void;

/** Generates a broadcasting loop for `expr` over doubles `x` (from a) and `y` (from b). */
function makeBinaryLoop(expr: string): BinaryLoop {
  const body = `
    const r = dims.length;
    const n = dims[r - 1], ia = sa[r - 1], ib = sb[r - 1];
    const rows = out.length / n;
    const idx = new Int32Array(r);
    let oa = 0, ob = 0;
    for (let row = 0, o = 0; row < rows; row++, o += n) {
      if (ia === 1 && ib === 1) {
        for (let i = 0; i < n; i++) { const x = a[oa + i], y = b[ob + i]; out[o + i] = ${expr}; }
      } else if (ia === 1 && ib === 0) {
        const y = b[ob];
        for (let i = 0; i < n; i++) { const x = a[oa + i]; out[o + i] = ${expr}; }
      } else if (ia === 0 && ib === 1) {
        const x = a[oa];
        for (let i = 0; i < n; i++) { const y = b[ob + i]; out[o + i] = ${expr}; }
      } else {
        for (let i = 0; i < n; i++) { const x = a[oa + i * ia], y = b[ob + i * ib]; out[o + i] = ${expr}; }
      }
      // advance the odometer over the outer dims
      for (let d = r - 2; d >= 0; d--) {
        idx[d]++;
        oa += sa[d];
        ob += sb[d];
        if (idx[d] < dims[d]) break;
        oa -= sa[d] * dims[d];
        ob -= sb[d] * dims[d];
        idx[d] = 0;
      }
    }`;
  return new Function("a", "b", "out", "dims", "sa", "sb", body) as BinaryLoop;
}

const BINARY_EXPR: Record<string, string> = {
  Add: "x + y",
  Sub: "x - y",
  Multiply: "x * y",
  RealDiv: "x / y",
  SquaredDifference: "(x - y) * (x - y)",
  Maximum: "Math.max(x, y)",
  Minimum: "Math.min(x, y)",
};

/**
 * oneDNN form of a binary op: algorithm and post-ops for a (op) b, and for the swapped b (op) a (used when a is
 * the broadcast operand; oneDNN only broadcasts its second source). null: JS only.
 */
const BINARY_DNNL: Record<string, { alg: number; post: PostOp[]; swapped: PostOp[] | null } | null> = {
  Add: { alg: ALG_BINARY_ADD, post: [], swapped: [] },
  Multiply: { alg: ALG_BINARY_MUL, post: [], swapped: [] },
  Sub: { alg: ALG_BINARY_SUB, post: [], swapped: [{ alg: ALG_ELTWISE_LINEAR, alpha: -1, beta: 0 }] },
  RealDiv: { alg: ALG_BINARY_DIV, post: [], swapped: null },
  SquaredDifference: {
    alg: ALG_BINARY_SUB,
    post: [{ alg: ALG_ELTWISE_SQUARE, alpha: 0, beta: 0 }],
    swapped: [{ alg: ALG_ELTWISE_SQUARE, alpha: 0, beta: 0 }],
  },
  // Maximum / Minimum: oneDNN's max/min do not propagate NaN like Math.max/min; JS only.
  Maximum: null,
  Minimum: null,
};

function binary(name: string): Override {
  const loop = makeBinaryLoop(BINARY_EXPR[name]);
  const dn = BINARY_DNNL[name];
  return ({ inputs, backend }) => {
    const { a, b } = inputs;
    const av = f32(backend, a), bv = f32(backend, b);
    if (av === null || bv === null) return null;
    const outShape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const n = sizeOf(outShape);
    if (n === 0) return null;
    const g = broadcastGeometry(a.shape, b.shape, outShape);
    const out = alloc(n);
    if (n >= DNNL_MIN_ELEMENTS && dn !== null) {
      const aFull = g.sa.every((s) => s !== 0), bFull = g.sb.every((s) => s !== 0);
      if (aFull && dnnlBinary(dn.alg, dn.post, av, bv, out, g.dims, g.sb)) return output(backend, outShape, out);
      if (!aFull && bFull && dn.swapped !== null && dnnlBinary(dn.alg, dn.swapped, bv, av, out, g.dims, g.sa)) {
        return output(backend, outShape, out);
      }
    }
    loop(av, bv, out, g.dims, g.sa, g.sb);
    return output(backend, outShape, out);
  };
}

export const add = binary("Add");
export const sub = binary("Sub");
export const multiply = binary("Multiply");
export const realDiv = binary("RealDiv");
export const squaredDifference = binary("SquaredDifference");
export const maximum = binary("Maximum");
export const minimum = binary("Minimum");

// ---- unary ----

/**
 * `src` as floats (x) and as int32 bits (v, for branch-free sign tests); the result goes to `out` as a float,
 * or as int32 bits to `outBits` when the expression starts with "bits:".
 */
type UnaryLoop = (src: Float32Array, bits: Int32Array, out: Float32Array, outBits: Int32Array, alpha: number) => void;

function makeUnaryLoop(expr: string): UnaryLoop {
  const [target, e] = expr.startsWith("bits:") ? ["outBits", expr.slice(5)] : ["out", expr];
  return new Function(
    "src",
    "bits",
    "out",
    "outBits",
    "alpha",
    `for (let i = 0, n = out.length; i < n; i++) { const x = src[i], v = bits[i]; ${target}[i] = ${e}; }`,
  ) as UnaryLoop;
}

// Branches on data signs mispredict half the time on activations (relu with a branch: ~35 ms for 4.6M values,
// branch-free: ~6 ms), so relu and step work on the bits: relu keeps v where the sign bit is clear, else +0
// (so -0 and -Infinity give 0); a NaN (exponent all ones, mantissa non-zero) is kept as is, as Math.max does.
const UNARY_EXPR: Record<string, string> = {
  Relu: "bits:(v & 0x7fffffff) > 0x7f800000 ? v : v & ~(v >> 31)",
  Relu6: "x < 0 ? 0 : (x > 6 ? 6 : x)",
  // 1 for x > 0 (int bits positive and non-zero; -0 excluded), alpha otherwise; NaN stays NaN (never-taken
  // branch). StepAlpha is the general form.
  // (0x3f800000 is 1.0f; (v | -v) >> 31 is all ones for v != 0, ~(v >> 31) for a clear sign bit.)
  Step: "bits:(v & 0x7fffffff) > 0x7f800000 ? v : (0x3f800000 & ~(v >> 31) & ((v | -v) >> 31))",
  StepAlpha: "x > 0 ? 1 : (x !== x ? NaN : alpha)",
  Square: "x * x",
  Sqrt: "Math.sqrt(x)",
  Rsqrt: "1 / Math.sqrt(x)",
  Neg: "-x",
  Exp: "Math.exp(x)",
  Log: "Math.log(x)",
  Abs: "Math.abs(x)",
  Sigmoid: "1 / (1 + Math.exp(-x))",
  Tanh: "Math.tanh(x)",
  Reciprocal: "1 / x",
};

/**
 * oneDNN eltwise form of a unary op [alg, alpha, beta]; absent: JS only. Left out on purpose (checked on
 * special values): relu / clip map NaN to 0 (tfjs keeps NaN), exp maps NaN to Infinity, log flushes denormal
 * inputs to FLT_MIN.
 */
const UNARY_DNNL: Record<string, [number, number, number]> = {
  Square: [ALG_ELTWISE_SQUARE, 0, 0],
  Sqrt: [ALG_ELTWISE_SQRT, 0, 0],
  Neg: [ALG_ELTWISE_LINEAR, -1, 0],
  Abs: [ALG_ELTWISE_ABS, 0, 0],
  Sigmoid: [ALG_ELTWISE_LOGISTIC, 0, 0],
  Tanh: [ALG_ELTWISE_TANH, 0, 0],
  Rsqrt: [ALG_ELTWISE_POW, 1, -0.5],
  Reciprocal: [ALG_ELTWISE_POW, 1, -1],
};

function unary(name: string): Override {
  const loop = makeUnaryLoop(UNARY_EXPR[name]);
  const dn = UNARY_DNNL[name];
  const withAlpha = name === "Step" ? makeUnaryLoop(UNARY_EXPR.StepAlpha) : loop;
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    if (xv === null) return null;
    const n = xv.length;
    if (n === 0 || n !== sizeOf(x.shape)) return null;
    const out = alloc(n);
    if (n >= DNNL_MIN_ELEMENTS && dn !== undefined && dnnlEltwise(dn[0], dn[1], dn[2], xv, out)) {
      return output(backend, x.shape.slice(), out);
    }
    const alpha = (attrs as { alpha?: number } | undefined)?.alpha ?? 0;
    const bits = new Int32Array(xv.buffer, xv.byteOffset, n), outBits = new Int32Array(out.buffer, out.byteOffset, n);
    (alpha === 0 ? loop : withAlpha)(xv, bits, out, outBits, alpha);
    return output(backend, x.shape.slice(), out);
  };
}

export const relu = unary("Relu");
export const relu6 = unary("Relu6");
export const step = unary("Step");
export const square = unary("Square");
export const sqrt = unary("Sqrt");
export const rsqrt = unary("Rsqrt");
export const neg = unary("Neg");
export const exp = unary("Exp");
export const log = unary("Log");
export const abs = unary("Abs");
export const sigmoid = unary("Sigmoid");
export const tanh = unary("Tanh");
export const reciprocal = unary("Reciprocal");

// ---- Tile ----

/** Tile by block copies: place x in the corner, then replicate along each dim from the innermost out. */
export const tile: Override = ({ inputs, backend, attrs }) => {
  const x = inputs.x;
  const xv = f32(backend, x);
  const reps = (attrs as { reps?: number[] } | undefined)?.reps;
  if (xv === null || reps == null || reps.length !== x.shape.length || x.shape.length === 0) return null;
  const r = x.shape.length;
  const xs = x.shape;
  const os = xs.map((d, i) => d * reps[i]);
  const n = sizeOf(os);
  if (n === 0) return null;
  const out = alloc(n);
  const ostr = new Array<number>(r);
  ostr[r - 1] = 1;
  for (let i = r - 2; i >= 0; i--) ostr[i] = ostr[i + 1] * os[i + 1];
  // 1. copy x's rows into the corner block
  const rowLen = xs[r - 1];
  const rows = xv.length / rowLen;
  const idx = new Array<number>(r).fill(0);
  for (let row = 0; row < rows; row++) {
    let o = 0;
    for (let d = 0; d < r - 1; d++) o += idx[d] * ostr[d];
    out.set(xv.subarray(row * rowLen, (row + 1) * rowLen), o);
    for (let d = r - 2; d >= 0; d--) {
      if (++idx[d] < xs[d]) break;
      idx[d] = 0;
    }
  }
  // 2. replicate along dim d (innermost first): for each corner position in dims < d, copy the block
  //    [0, xs[d]) x (full dims > d) reps[d] - 1 times.
  for (let d = r - 1; d >= 0; d--) {
    if (reps[d] === 1) continue;
    const block = xs[d] * ostr[d];
    const outer = sizeOf(xs.slice(0, d));
    const oidx = new Array<number>(d).fill(0);
    for (let k = 0; k < outer; k++) {
      let base = 0;
      for (let e = 0; e < d; e++) base += oidx[e] * ostr[e];
      for (let t = 1; t < reps[d]; t++) out.copyWithin(base + t * block, base, base + block);
      for (let e = d - 1; e >= 0; e--) {
        if (++oidx[e] < xs[e]) break;
        oidx[e] = 0;
      }
    }
  }
  return output(backend, os, out);
};
