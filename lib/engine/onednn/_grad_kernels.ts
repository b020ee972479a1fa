// Private: kernels that exist only on the "onednn" backend, run by the gradients that _tape.ts installs:
// - OnednnBatchNormGrad: the whole gradient of training-mode batch normalization (batch statistics) in one
//   oneDNN batch_normalization backward primitive (JS loops with float64 sums for small tensors);
// - OnednnReluGrad: dy * step(y) from the ReLU *output* y (step(relu(x)) = step(x)): oneDNN eltwise backward, or
//   one branch-free JS pass;
// - OnednnLeakyReluGrad: the same for leakyRelu (dy, or alpha · dy where y ≤ 0), one pass;
// and the forward kernel whose gradient (registered by _tape.ts) ends in OnednnBatchNormGrad, run by
// lib/models/fused_bn.ts:
// - OnednnBatchNormTrain: training-mode batch normalization (the batch moments and the normalised output, ReLU
//   optionally fused) in one oneDNN batch_normalization forward_training primitive;
// and, not gradients, OnednnConvAddRelu (_kernels_conv.ts): a residual block's convolution + shortcut sum + ReLU,
// and OnednnAdam (_adam.ts): Adam's update of one variable.
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { f32, output, type Override } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import { ALG_ELTWISE_RELU_USE_DST_FOR_BWD, dnnlBatchNormBackward, dnnlBatchNormTraining, dnnlEltwiseBackwardFromDst, dnnlSumByMatmul } from "./_dnnl_eltwise.ts";
import { DNNL_MIN_ELEMENTS } from "./_elementwise.ts";
import { DnnlError } from "./_ffi.ts";
import { env } from "./_env.ts";
import { CONV_ADD_RELU, convAddRelu } from "./_kernels_conv.ts";
import { ADAM_UPDATE, adamUpdate } from "./_adam.ts";

export const BATCH_NORM_GRAD = "OnednnBatchNormGrad";
export const BATCH_NORM_TRAIN = "OnednnBatchNormTrain";
export const RELU_GRAD = "OnednnReluGrad";
export const LEAKY_RELU_GRAD = "OnednnLeakyReluGrad";

/**
 * inputs {x, mean, variance, scale?, dy} (mean / variance / scale of length C = the last dim of x, mean and variance
 * the biased batch moments of x over all other axes); attrs {varianceEpsilon}. Outputs [dx, dscale, doffset]:
 * dx = scale * rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dscale = sum(dy * xhat), doffset = sum(dy).
 * Returns null (an error: the gradient only calls it for such inputs) for other dtypes or shapes.
 */
export const batchNormGrad: Override = ({ inputs, backend, attrs }) => {
  const { x, mean, variance, scale, dy } = inputs;
  const xv = f32(backend, x), dyv = f32(backend, dy), mv = f32(backend, mean), vv = f32(backend, variance);
  if (xv === null || dyv === null || mv === null || vv === null || x.shape.length === 0) return null;
  const c = x.shape[x.shape.length - 1];
  const sv = scale != null ? f32(backend, scale) : new Float32Array(c).fill(1);
  if (sv === null || mv.length !== c || vv.length !== c || sv.length !== c) return null;
  if (dyv.length !== xv.length || xv.length % c !== 0 || xv.length === 0) return null;
  const eps = (attrs as { varianceEpsilon?: number } | undefined)?.varianceEpsilon ?? 0.001;
  const dx = alloc(xv.length), dscale = new Float32Array(c), dshift = new Float32Array(c);
  let done = false;
  if (xv.length >= DNNL_MIN_ELEMENTS) {
    try {
      done = dnnlBatchNormBackward(xv, dyv, c, mv, vv, sv as Float32Array<ArrayBuffer>, eps, dx, dscale, dshift);
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (env("ONEDNN_DEBUG")) console.error(`onednn: ${BATCH_NORM_GRAD}: ${e.message}; using JS`);
    }
  }
  if (!done) batchNormGradJs(xv, dyv, c, mv, vv, sv, eps, dx, dscale, dshift);
  const out: TensorInfo[] = [
    output(backend, x.shape.slice(), dx),
    output(backend, [c], dscale),
    output(backend, [c], dshift),
  ];
  return out;
};

/**
 * inputs {x, scale, offset} (scale / offset of length C = the last dim of x); attrs {varianceEpsilon, relu}.
 * Outputs [y, mean, variance]: the biased batch moments of x over all axes but the last, and
 * y = (x - mean) / sqrt(variance + eps) * scale + offset, then max(y, 0) when `relu`. The moments as float64
 * sums in JS where oneDNN does not run (small tensors).
 */
export const batchNormTrain: Override = ({ inputs, backend, attrs }) => {
  const { x, scale, offset } = inputs;
  if (scale == null || offset == null) return null;
  const xv = f32(backend, x), sv = f32(backend, scale), ov = f32(backend, offset);
  if (xv === null || sv === null || ov === null || x.shape.length === 0) return null;
  const c = x.shape[x.shape.length - 1];
  if (sv.length !== c || ov.length !== c || xv.length % c !== 0 || xv.length === 0) return null;
  const a = attrs as { varianceEpsilon?: number; relu?: boolean } | undefined;
  const eps = a?.varianceEpsilon ?? 0.001, relu = a?.relu === true;
  const y = alloc(xv.length), mean = new Float32Array(c), variance = new Float32Array(c);
  let done = false;
  if (xv.length >= DNNL_MIN_ELEMENTS) {
    try {
      done = dnnlBatchNormTraining(xv, c, sv, ov, eps, relu, y, mean, variance);
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (env("ONEDNN_DEBUG")) console.error(`onednn: ${BATCH_NORM_TRAIN}: ${e.message}; using JS`);
    }
  }
  if (!done) batchNormTrainJs(xv, c, sv, ov, eps, relu, y, mean, variance);
  return [output(backend, x.shape.slice(), y), output(backend, [c], mean), output(backend, [c], variance)];
};

function batchNormTrainJs(
  x: Float32Array,
  c: number,
  scale: Float32Array,
  shift: Float32Array,
  eps: number,
  relu: boolean,
  y: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
): void {
  const rows = x.length / c;
  const sum = new Float64Array(c), sq = new Float64Array(c);
  for (let r = 0, i = 0; r < rows; r++) for (let k = 0; k < c; k++, i++) sum[k] += x[i];
  for (let k = 0; k < c; k++) mean[k] = sum[k] / rows;
  for (let r = 0, i = 0; r < rows; r++) {
    for (let k = 0; k < c; k++, i++) {
      const d = x[i] - mean[k];
      sq[k] += d * d;
    }
  }
  const mul = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    variance[k] = sq[k] / rows;
    mul[k] = scale[k] / Math.sqrt(variance[k] + eps);
  }
  for (let r = 0, i = 0; r < rows; r++) {
    for (let k = 0; k < c; k++, i++) {
      const v = (x[i] - mean[k]) * mul[k] + shift[k];
      y[i] = relu && v < 0 ? 0 : v;
    }
  }
}

function batchNormGradJs(
  x: Float32Array,
  dy: Float32Array,
  c: number,
  mean: Float32Array,
  variance: Float32Array,
  scale: Float32Array,
  eps: number,
  dx: Float32Array,
  dscale: Float32Array,
  dshift: Float32Array,
): void {
  const rows = x.length / c;
  const sumDy = new Float64Array(c), sumDyXmu = new Float64Array(c);
  for (let base = 0; base < x.length; base += c) {
    for (let k = 0; k < c; k++) {
      const g = dy[base + k];
      sumDy[k] += g;
      sumDyXmu[k] += g * (x[base + k] - mean[k]);
    }
  }
  const rstd = new Float64Array(c), a = new Float64Array(c), b = new Float64Array(c), m = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    rstd[k] = 1 / Math.sqrt(variance[k] + eps);
    dshift[k] = sumDy[k];
    dscale[k] = sumDyXmu[k] * rstd[k];
    // dx = scale * rstd * (dy - sumDy / N - (x - mean) * rstd^2 * sumDyXmu / N)
    a[k] = scale[k] * rstd[k];
    b[k] = rstd[k] * rstd[k] * sumDyXmu[k] / rows;
    m[k] = sumDy[k] / rows;
  }
  for (let base = 0; base < x.length; base += c) {
    for (let k = 0; k < c; k++) {
      dx[base + k] = a[k] * (dy[base + k] - m[k] - (x[base + k] - mean[k]) * b[k]);
    }
  }
}

/**
 * inputs {dy, y} with y = relu(x): dy * step(x) as tfjs computes it (dy where y > 0; dy * 0, i.e. a signed zero or
 * NaN for an infinite dy, elsewhere; NaN where y is NaN), branch-free on the bits (a data-dependent branch
 * mispredicts on half the activations).
 */
export const reluGrad: Override = ({ inputs, backend }) => {
  const { dy, y } = inputs;
  const dv = f32(backend, dy), yv = f32(backend, y);
  if (dv === null || yv === null || dv.length !== yv.length) return null;
  const n = dv.length;
  const out = alloc(n);
  // oneDNN's relu backward from the output on both cores (4x the JS pass below on 5.3 M values): dy where y > 0,
  // else 0·dy. It masks a NaN y to 0·dy where tfjs' dy·step(y) is NaN, so the rows' sums of y (one multi-threaded
  // read) must have no NaN; otherwise the JS pass gives tfjs' result.
  const rows = Math.min(256, n & -n);
  if (n >= DNNL_MIN_ELEMENTS && rows >= 16) {
    try {
      const sums = new Float32Array(rows);
      if (dnnlEltwiseBackwardFromDst(ALG_ELTWISE_RELU_USE_DST_FOR_BWD, 0, 0, yv, dv, out) && dnnlSumByMatmul(yv, sums, rows, n / rows, 1, 1) && !sums.some(Number.isNaN)) {
        return output(backend, dy.shape.slice(), out);
      }
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (env("ONEDNN_DEBUG")) console.error(`onednn: ${RELU_GRAD}: ${e.message}; using JS`);
    }
  }
  const yb = new Int32Array(yv.buffer, yv.byteOffset, n), db = new Int32Array(dv.buffer, dv.byteOffset, n);
  const ob = new Int32Array(out.buffer, out.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const v = yb[i], d = db[i];
    // m: all ones for y > 0 (positive non-zero bits), else 0; the zero keeps dy's sign bit (dy * 0 = -0 for dy < 0)
    const m = (-v & ~v) >> 31;
    // all ones where y is NaN, or where dy is infinite / NaN and y <= 0 (dy * 0 is NaN there); rare: predictable
    const special = ((0x7f800000 - (v & 0x7fffffff)) >> 31) | ((0x7f7fffff - (d & 0x7fffffff)) >> 31 & ~m);
    ob[i] = special !== 0 ? 0x7fc00000 : d & (m | 0x80000000);
  }
  return output(backend, dy.shape.slice(), out);
};

/**
 * inputs {dy, y} with y = leakyRelu(x, alpha), alpha ≥ 0 in attrs: dx = dy where y > 0, else alpha · dy (tfjs'
 * where(x > 0, dy, dy · alpha): y > 0 exactly where x > 0 for alpha ≥ 0, and a NaN y takes the alpha branch as a
 * NaN x does). One pass instead of the cpu backend's Greater and Select plus a Multiply.
 */
export const leakyReluGrad: Override = ({ inputs, backend, attrs }) => {
  const { dy, y } = inputs;
  const dv = f32(backend, dy), yv = f32(backend, y);
  const alpha = (attrs as { alpha?: number } | undefined)?.alpha;
  if (dv === null || yv === null || dv.length !== yv.length || alpha === undefined || !(alpha >= 0)) return null;
  const out = alloc(dv.length);
  // oneDNN's vectorised pass (compare and blend; a JS branch on the sign mispredicts on half the activations).
  let done = false;
  if (dv.length >= DNNL_MIN_ELEMENTS) {
    try {
      done = dnnlEltwiseBackwardFromDst(ALG_ELTWISE_RELU_USE_DST_FOR_BWD, alpha, 0, yv, dv, out);
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (env("ONEDNN_DEBUG")) console.error(`onednn: ${LEAKY_RELU_GRAD}: ${e.message}; using JS`);
    }
  }
  if (!done) for (let i = 0, n = dv.length; i < n; i++) out[i] = yv[i] > 0 ? dv[i] : alpha * dv[i];
  return output(backend, dy.shape.slice(), out);
};

/** Kernels registered only on the onednn backend (no cpu counterpart). */
export const EXTRA_KERNELS: Record<string, Override> = {
  [CONV_ADD_RELU]: convAddRelu,
  [BATCH_NORM_GRAD]: batchNormGrad,
  [BATCH_NORM_TRAIN]: batchNormTrain,
  [RELU_GRAD]: reluGrad,
  [LEAKY_RELU_GRAD]: leakyReluGrad,
  [ADAM_UPDATE]: adamUpdate,
};
