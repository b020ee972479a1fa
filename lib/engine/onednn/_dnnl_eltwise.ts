// Private: multi-threaded oneDNN binary / eltwise primitives and matmul-based sums for large float32 tensors in
// plain row-major layout. Callers fall back to the JS loops (_elementwise.ts, _reduce.ts) when these return null:
// unsupported broadcast pattern, or oneDNN would only offer its slow reference implementation.
import {
  ARG_DIFF_DST,
  ARG_DIFF_SCALE,
  ARG_DIFF_SHIFT,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_MEAN,
  ARG_SCALE,
  ARG_SHIFT,
  ARG_SRC,
  ARG_SRC_1,
  ARG_VARIANCE,
  ARG_WEIGHTS,
  ARG_WORKSPACE,
  BN_FUSE_NORM_RELU,
  BN_USE_GLOBAL_STATS,
  BN_USE_SCALE,
  BN_USE_SHIFT,
  cachedPlan,
  check,
  createPd,
  INTERNAL_SLOT,
  lib,
  makeAttr,
  type Md,
  mdStrides,
  mdTag,
  opDesc,
  Plan,
  type PostOp,
  PROP_BACKWARD,
  PROP_FWD_INFERENCE,
  PROP_FWD_TRAINING,
  queryMd,
  Q_WORKSPACE_MD,
  TAG_NHWC,
} from "./_ffi.ts";
import { postKey } from "./_backend.ts";

export const ALG_BINARY_SUB = 131061;
export const ALG_BINARY_DIV = 131060;
export const ALG_ELTWISE_SQUARE = 79;
export const ALG_ELTWISE_SQRT = 111;
export const ALG_ELTWISE_ABS = 95;
export const ALG_ELTWISE_POW = 32;
export const ALG_ELTWISE_LINEAR = 127;
export const ALG_ELTWISE_TANH = 47;
/** relu with slope alpha below zero whose gradient reads the output: diff_src = dst > 0 ? diff_dst : alpha · diff_dst. */
export const ALG_ELTWISE_RELU_USE_DST_FOR_BWD = 0x100;

const MAX_DIMS = 12;

function dense(dims: readonly number[]): Md {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return mdStrides(dims, s);
}

/** Rejects oneDNN's reference (scalar, per-element index math) implementations: the JS loops are faster. */
function fast(plan: Plan): Plan | null {
  if (plan.impl.startsWith("ref")) {
    plan.destroy();
    return null;
  }
  return plan;
}

/**
 * out = a (op) b on a collapsed broadcast geometry where only b broadcasts (strides 0); `post` is applied to the
 * result. Returns false when unsupported (nothing written).
 */
export function dnnlBinary(
  alg: number,
  post: PostOp[],
  a: Float32Array<ArrayBuffer>,
  b: Float32Array<ArrayBuffer>,
  out: Float32Array<ArrayBuffer>,
  dims: readonly number[],
  sb: readonly number[],
): boolean {
  if (dims.length > MAX_DIMS) return false;
  const bdims = dims.map((d, i) => (sb[i] === 0 ? 1 : d));
  const key = `binary|${alg}|${dims.join(",")}|${bdims.join(",")}|${postKey(post)}`;
  const plan = cachedPlan(key, () => {
    const s0 = dense(dims), s1 = dense(bdims), d = dense(dims);
    const op = opDesc();
    check(lib().fn.dnnl_binary_desc_init(op, alg, s0, s1, d), "binary_desc_init");
    const pd = createPd(op, makeAttr(post));
    return fast(
      new Plan(pd, [
        { arg: ARG_SRC, user: s0, prim: s0 },
        { arg: ARG_SRC_1, user: s1, prim: s1 },
        { arg: ARG_DST, user: d, prim: d, out: true },
      ]),
    );
  });
  if (plan === null) return false;
  plan.run([a, b, out]);
  return true;
}

/** out = eltwise_alg(alpha, beta)(x) over n elements; false when unsupported. */
export function dnnlEltwise(
  alg: number,
  alpha: number,
  beta: number,
  x: Float32Array<ArrayBuffer>,
  out: Float32Array<ArrayBuffer>,
): boolean {
  const n = x.length;
  const key = `eltwise|${alg}|${alpha}|${beta}|${n}`;
  const plan = cachedPlan(key, () => {
    const md = dense([n]);
    const op = opDesc();
    check(lib().fn.dnnl_eltwise_forward_desc_init(op, PROP_FWD_INFERENCE, alg, md, alpha, beta), "eltwise_desc_init");
    const pd = createPd(op);
    return fast(new Plan(pd, [{ arg: ARG_SRC, user: md, prim: md }, { arg: ARG_DST, user: md, prim: md, out: true }]));
  });
  if (plan === null) return false;
  plan.run([x, out]);
  return true;
}

/**
 * Gradient of an eltwise op from its output: diffSrc = alg'(dst) · diffDst over n elements (a *_use_dst_for_bwd
 * alg); false when unsupported (nothing written).
 */
export function dnnlEltwiseBackwardFromDst(
  alg: number,
  alpha: number,
  beta: number,
  dst: Float32Array<ArrayBuffer>,
  diffDst: Float32Array<ArrayBuffer>,
  diffSrc: Float32Array<ArrayBuffer>,
): boolean {
  const n = dst.length;
  const key = `eltwise_bwd|${alg}|${alpha}|${beta}|${n}`;
  const plan = cachedPlan(key, () => {
    const { fn } = lib();
    const md = dense([n]);
    const fwd = opDesc();
    check(fn.dnnl_eltwise_forward_desc_init(fwd, PROP_FWD_TRAINING, alg, md, alpha, beta), "eltwise_forward_desc_init");
    const hint = createPd(fwd);
    try {
      const op = opDesc();
      check(fn.dnnl_eltwise_backward_desc_init(op, alg, md, md, alpha, beta), "eltwise_backward_desc_init");
      const pd = createPd(op, null, hint);
      return fast(new Plan(pd, [
        { arg: ARG_DST, user: md, prim: md },
        { arg: ARG_DIFF_DST, user: md, prim: md },
        { arg: ARG_DIFF_SRC, user: md, prim: md, out: true },
      ]));
    } finally {
      fn.dnnl_primitive_desc_destroy(hint);
    }
  });
  if (plan === null) return false;
  plan.run([dst, diffDst, diffSrc]);
  return true;
}

/**
 * Batch-norm inference formula with given statistics over x viewed as [rows, c] (channels last):
 * y = (x - mean) / sqrt(variance + eps) * scale + shift. `scale` / `shift` may be null.
 */
export function dnnlBatchNormInference(
  x: Float32Array<ArrayBuffer>,
  out: Float32Array<ArrayBuffer>,
  c: number,
  mean: Float32Array<ArrayBuffer>,
  variance: Float32Array<ArrayBuffer>,
  scale: Float32Array<ArrayBuffer> | null,
  shift: Float32Array<ArrayBuffer> | null,
  eps: number,
): boolean {
  const rows = x.length / c;
  const flags = BN_USE_GLOBAL_STATS | (scale ? BN_USE_SCALE : 0) | (shift ? BN_USE_SHIFT : 0);
  const key = `bnorm_inf|${rows},${c}|${flags}|${eps}`;
  const plan = cachedPlan(key, () => {
    // [rows, c] as a channels-last 4-D tensor (N=1, C=c, H=rows, W=1): oneDNN has a jit kernel for that layout,
    // while 2-D "nc" data gets a scalar C++ implementation (~15x slower here).
    const md = mdTag([1, c, rows, 1], TAG_NHWC), vec = dense([c]);
    const op = opDesc();
    check(
      lib().fn.dnnl_batch_normalization_forward_desc_init(op, PROP_FWD_INFERENCE, md, eps, flags),
      "batch_normalization_forward_desc_init",
    );
    const pd = createPd(op);
    return fast(
      new Plan(pd, [
        { arg: ARG_SRC, user: md, prim: md },
        { arg: ARG_MEAN, user: vec, prim: vec },
        { arg: ARG_VARIANCE, user: vec, prim: vec },
        ...(scale ? [{ arg: ARG_SCALE, user: vec, prim: vec }] : []),
        ...(shift ? [{ arg: ARG_SHIFT, user: vec, prim: vec }] : []),
        { arg: ARG_DST, user: md, prim: md, out: true },
      ]),
    );
  });
  if (plan === null) return false;
  const bufs: Float32Array<ArrayBuffer>[] = [x, mean, variance];
  if (scale) bufs.push(scale);
  if (shift) bufs.push(shift);
  bufs.push(out);
  plan.run(bufs);
  return true;
}

/**
 * Batch-norm forward in training over x viewed as [rows, c] (channels last): the biased batch moments of x
 * (written to `mean` / `variance`) and y = (x - mean) / sqrt(variance + eps) * scale + shift, then max(y, 0)
 * when `relu`, all in one oneDNN primitive (prop_kind forward_training; fuse_norm_relu's workspace, which only
 * oneDNN's own backward would read, goes to a scratch slot). False when oneDNN offers only its reference
 * implementation (nothing written).
 */
export function dnnlBatchNormTraining(
  x: Float32Array<ArrayBuffer>,
  c: number,
  scale: Float32Array<ArrayBuffer>,
  shift: Float32Array<ArrayBuffer>,
  eps: number,
  relu: boolean,
  y: Float32Array<ArrayBuffer>,
  mean: Float32Array<ArrayBuffer>,
  variance: Float32Array<ArrayBuffer>,
): boolean {
  const rows = x.length / c;
  const flags = BN_USE_SCALE | BN_USE_SHIFT | (relu ? BN_FUSE_NORM_RELU : 0);
  const key = `bnorm_train|${rows},${c}|${flags}|${eps}`;
  const plan = cachedPlan(key, () => {
    // the channels-last 4-D view of the inference kernel (jit implementations for nhwc)
    const md = mdTag([1, c, rows, 1], TAG_NHWC), vec = dense([c]);
    const op = opDesc();
    check(
      lib().fn.dnnl_batch_normalization_forward_desc_init(op, PROP_FWD_TRAINING, md, eps, flags),
      "batch_normalization_forward_desc_init",
    );
    const pd = createPd(op);
    const ws = relu ? queryMd(pd, Q_WORKSPACE_MD) : null;
    return fast(
      new Plan(
        pd,
        [
          { arg: ARG_SRC, user: md, prim: md },
          { arg: ARG_SCALE, user: vec, prim: vec },
          { arg: ARG_SHIFT, user: vec, prim: vec },
          { arg: ARG_DST, user: md, prim: md, out: true },
          { arg: ARG_MEAN, user: vec, prim: vec, out: true },
          { arg: ARG_VARIANCE, user: vec, prim: vec, out: true },
        ],
        ws !== null ? [{ arg: ARG_WORKSPACE, md: ws, slot: INTERNAL_SLOT + 2 }] : [],
      ),
    );
  });
  if (plan === null) return false;
  plan.run([x, scale, shift, y, mean, variance]);
  return true;
}

/**
 * Batch-norm backward with batch statistics over x viewed as [rows, c] (channels last): the full gradient of
 * y = (x - mean(x)) / sqrt(var(x) + eps) * scale + shift, where `mean` / `variance` are the (biased) batch moments
 * of x: dx (including the paths through the moments), dscale, dshift. One oneDNN primitive (prop_kind backward,
 * use_scale | use_shift); false when unsupported (nothing written).
 */
export function dnnlBatchNormBackward(
  x: Float32Array<ArrayBuffer>,
  dy: Float32Array<ArrayBuffer>,
  c: number,
  mean: Float32Array<ArrayBuffer>,
  variance: Float32Array<ArrayBuffer>,
  scale: Float32Array<ArrayBuffer>,
  eps: number,
  dx: Float32Array<ArrayBuffer>,
  dscale: Float32Array<ArrayBuffer>,
  dshift: Float32Array<ArrayBuffer>,
): boolean {
  const rows = x.length / c;
  const flags = BN_USE_SCALE | BN_USE_SHIFT;
  const key = `bnorm_bwd|${rows},${c}|${eps}`;
  const plan = cachedPlan(key, () => {
    const { fn } = lib();
    // Same channels-last 4-D view as the inference kernel (jit implementations for nhwc).
    const md = mdTag([1, c, rows, 1], TAG_NHWC), vec = dense([c]);
    const fwd = opDesc();
    check(
      fn.dnnl_batch_normalization_forward_desc_init(fwd, PROP_FWD_TRAINING, md, eps, flags),
      "batch_normalization_forward_desc_init",
    );
    const hint = createPd(fwd);
    try {
      const op = opDesc();
      check(
        fn.dnnl_batch_normalization_backward_desc_init(op, PROP_BACKWARD, md, md, eps, flags),
        "batch_normalization_backward_desc_init",
      );
      const pd = createPd(op, null, hint);
      return fast(
        new Plan(pd, [
          { arg: ARG_SRC, user: md, prim: md },
          { arg: ARG_MEAN, user: vec, prim: vec },
          { arg: ARG_VARIANCE, user: vec, prim: vec },
          { arg: ARG_DIFF_DST, user: md, prim: md },
          { arg: ARG_SCALE, user: vec, prim: vec },
          // not read, but oneDNN checks that every input of its use_shift flag is given
          { arg: ARG_SHIFT, user: vec, prim: vec },
          { arg: ARG_DIFF_SRC, user: md, prim: md, out: true },
          { arg: ARG_DIFF_SCALE, user: vec, prim: vec, out: true },
          { arg: ARG_DIFF_SHIFT, user: vec, prim: vec, out: true },
        ]),
      );
    } finally {
      fn.dnnl_primitive_desc_destroy(hint);
    }
  });
  if (plan === null) return false;
  plan.run([x, mean, variance, dy, scale, zeros(c), dx, dscale, dshift]);
  return true;
}

export type { PostOp };

const zerosCache = new Map<number, Float32Array<ArrayBuffer>>();
function zeros(n: number): Float32Array<ArrayBuffer> {
  let a = zerosCache.get(n);
  if (a === undefined) zerosCache.set(n, a = new Float32Array(n));
  return a;
}

const onesCache = new Map<number, Float32Array<ArrayBuffer>>();
function ones(n: number): Float32Array<ArrayBuffer> {
  let a = onesCache.get(n);
  if (a === undefined) onesCache.set(n, a = new Float32Array(n).fill(1));
  return a;
}

/**
 * out[o, i] = scale * sum_j x[o, j, i] as a oneDNN matmul with a vector of ones (multi-threaded, vectorized;
 * oneDNN's own reduction primitive only has a reference implementation for these shapes in 2.6).
 */
export function dnnlSumByMatmul(
  x: Float32Array<ArrayBuffer>,
  out: Float32Array<ArrayBuffer>,
  outer: number,
  mid: number,
  inner: number,
  scale: number,
): boolean {
  const key = `sum_mm|${outer},${mid},${inner}|${scale}`;
  const post: PostOp[] = scale === 1 ? [] : [{ alg: ALG_ELTWISE_LINEAR, alpha: scale, beta: 0 }];
  const rowsFirst = inner > 1; // ones[1, mid] x X[mid, inner] per outer; else X[outer, mid] x ones[mid, 1]
  const plan = cachedPlan(key, () => {
    let src: Md, wei: Md, dst: Md;
    if (rowsFirst) {
      src = mdStrides([1, 1, mid], [mid, mid, 1]);
      wei = dense([outer, mid, inner]);
      dst = dense([outer, 1, inner]);
    } else {
      src = dense([1, outer, mid]);
      wei = dense([1, mid, 1]);
      dst = dense([1, outer, 1]);
    }
    const op = opDesc();
    check(lib().fn.dnnl_matmul_desc_init(op, src, wei, null, dst), "matmul_desc_init");
    const pd = createPd(op, makeAttr(post));
    return fast(
      new Plan(pd, [
        { arg: ARG_SRC, user: src, prim: src },
        { arg: ARG_WEIGHTS, user: wei, prim: wei },
        { arg: ARG_DST, user: dst, prim: dst, out: true },
      ]),
    );
  });
  if (plan === null) return false;
  plan.run(rowsFirst ? [ones(mid), x, out] : [x, ones(mid), out]);
  return true;
}
