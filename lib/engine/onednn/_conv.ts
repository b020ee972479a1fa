// Private: 2-D convolutions (forward with bias + eltwise post-ops, backward data, backward weights, depthwise)
// on oneDNN. Descriptors use `format_tag_any` so oneDNN picks its blocked layouts; plans reorder from/to the
// tfjs layouts (NHWC or NCHW activations, HWIO filters) through scratch buffers and are cached by shape.
import type { backend_util, TensorInfo } from "@tensorflow/tfjs-core";
import { type Backend, f32, OnednnBackend, output, postKey, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import {
  ALG_CONV_DIRECT,
  ALG_ELTWISE_RELU,
  ARG_BIAS,
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DIFF_WEIGHTS,
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  cachedPlan,
  check,
  createPd,
  dims64,
  DnnlError,
  hasAvx512Core,
  lib,
  makeAttr,
  type Md,
  mdStrides,
  mdTag,
  opDesc,
  Plan,
  POST_SUM,
  type PostOp,
  PROP_FWD_TRAINING,
  Q_DIFF_DST_MD,
  Q_DIFF_SRC_MD,
  Q_DIFF_WEIGHTS_MD,
  Q_DST_MD,
  Q_SRC_MD,
  Q_WEIGHTS_MD,
  queryMd,
  TAG_A,
  TAG_ABCD,
  TAG_ANY,
  TAG_HWIO,
  TAG_NHWC,
} from "./_ffi.ts";
import { env } from "./_env.ts";

type ConvInfo = backend_util.Conv2DInfo;

/** oneDNN geometry of a tfjs convolution; null when oneDNN cannot express it exactly. */
interface Geometry {
  src: number[]; // N, C, H, W
  dst: number[]; // N, O, OH, OW
  wdims: number[]; // O, I, KH, KW or G, O/G, I/G, KH, KW
  wUser: () => Md; // tfjs filter layout (made when a plan is built)
  actTag: number; // NHWC or NCHW
  actPrim: number; // the activations' layout asked of oneDNN: NHWC or format_tag_any (convActivationLayout)
  strides: BigInt64Array<ArrayBuffer>;
  dil: BigInt64Array<ArrayBuffer>;
  padL: BigInt64Array<ArrayBuffer>;
  padR: BigInt64Array<ArrayBuffer>;
  key: string;
}

function padRight(inSize: number, outSize: number, stride: number, effK: number, padL: number, padR0: number) {
  // oneDNN requires out == floor((in + padL + padR - effK) / stride) + 1.
  const ok = (pr: number) => pr >= 0 && Math.floor((inSize + padL + pr - effK) / stride) + 1 === outSize;
  if (ok(padR0)) return padR0;
  const exact = (outSize - 1) * stride + effK - inSize - padL;
  if (ok(exact)) return exact;
  if (ok(0)) return 0;
  return -1;
}

function geometry(info: ConvInfo, depthwise: boolean): Geometry | null {
  const {
    batchSize: n,
    inHeight: h,
    inWidth: w,
    inChannels: c,
    outHeight: oh,
    outWidth: ow,
    outChannels: o,
    strideHeight: sh,
    strideWidth: sw,
    dilationHeight: dh,
    dilationWidth: dw,
    filterHeight: kh,
    filterWidth: kw,
    effectiveFilterHeight: ekh,
    effectiveFilterWidth: ekw,
    padInfo,
  } = info;
  const pt = padInfo.top, pl = padInfo.left;
  if (pt < 0 || pl < 0) return null;
  const pb = padRight(h, oh, sh, ekh, pt, padInfo.bottom);
  const pr = padRight(w, ow, sw, ekw, pl, padInfo.right);
  if (pb < 0 || pr < 0) return null;
  const actTag = info.dataFormat === "channelsLast" ? TAG_NHWC : TAG_ABCD;
  let wdims: number[];
  let wUser: () => Md;
  if (!depthwise) {
    wdims = [o, c, kh, kw];
    wUser = () => mdTag(wdims, TAG_HWIO);
  } else {
    // tfjs depthwise filter [KH, KW, C, M] -> grouped weights [G=C, M, 1, KH, KW].
    const m = o / c;
    wdims = [c, m, 1, kh, kw];
    wUser = () => mdStrides(wdims, [m, 1, 1, kw * c * m, c * m]);
  }
  const actPrim = actTag === TAG_NHWC && (c > 4 || !avx512()) && convActivationLayout() === "nhwc" ? TAG_NHWC : TAG_ANY;
  const key = `${n},${c},${h},${w}>${o},${oh},${ow}|k${kh},${kw}|s${sh},${sw}|d${dh},${dw}|p${pt},${pl},${pb},${pr}|` +
    `${actTag}>${actPrim}|${depthwise ? "dw" : "c"}`;
  return {
    src: [n, c, h, w],
    dst: [n, o, oh, ow],
    wdims,
    wUser,
    actTag,
    actPrim,
    strides: dims64([sh, sw]),
    dil: dims64([dh - 1, dw - 1]),
    padL: dims64([pt, pl]),
    padR: dims64([pb, pr]),
    key,
  };
}

/**
 * Activation layout of convolutions: "nhwc" asks oneDNN for tfjs's own channels-last layout (no reorder before or
 * after a call), "any" lets it pick its blocked layouts (a reorder from and to NHWC around every call; reorders were
 * 18 % of a GAN step's CPU time). NHWC is the default: with AVX-512 it was faster on every network, training and
 * inference, 1.06–1.19× the img/s of blocked (`deno run -A bench/onednn_profile.ts --model NAME --ab-layout --infer
 * --steps 15`, steps interleaved in one process); with oneDNN capped at AVX2 (DNNL_MAX_CPU_ISA=AVX2; jit:avx2 kernels
 * in NHWC for every pass) 1.03–1.14× training and 1.02–1.37× inference, once the RGB input layer ran in NHWC too.
 * (The first AVX2 machine, under the engine's code of then, got gemm or reference kernels for NHWC: 2–3× slower;
 * not re-measured on an AVX2 CPU.) ONEDNN_CONV_ACT=nhwc|any overrides. Convolutions of ≤ 4 input channels (an RGB input layer) stay blocked
 * with AVX-512, where NHWC trained the reference CNN ~5 % slower (inference 4–11 % faster); with AVX2 they run NHWC.
 */
let convAct: "nhwc" | "any" | null = null;
let hasAvx512: boolean | null = null;
const avx512 = () => (hasAvx512 ??= hasAvx512Core());
/** Sets the layout for the convolutions that follow (plans are keyed by it); for bench/onednn_profile.ts --ab-layout. */
export function setConvActivationLayout(layout: "nhwc" | "any"): void {
  convAct = layout;
}
export function convActivationLayout(): "nhwc" | "any" {
  if (convAct === null) {
    const set = env("ONEDNN_CONV_ACT");
    if (set !== undefined && set !== "nhwc" && set !== "any") throw new DnnlError(`onednn: expected ONEDNN_CONV_ACT to be nhwc or any, got '${set}'`);
    convAct = set ?? "nhwc";
  }
  return convAct;
}

/**
 * Descriptors: weights with `format_tag_any` (reordered once per weight version, cached); activations in the layout
 * geometry() chose (`actPrim`): NHWC as tfjs holds them, or `format_tag_any` (oneDNN's blocked nChw8c / 16c, and
 * plans reorder from/to tfjs's layouts).
 */
function anyMds(g: Geometry, bias: boolean) {
  return {
    src: mdTag(g.src, g.actPrim),
    w: mdTag(g.wdims, TAG_ANY),
    b: bias ? mdTag([g.dst[1]], TAG_ANY) : null,
    dst: mdTag(g.dst, g.actPrim),
  };
}

function forwardPd(g: Geometry, bias: boolean, post: PostOp[]): Deno.PointerObject {
  const m = anyMds(g, bias);
  const op = opDesc();
  check(
    lib().fn.dnnl_dilated_convolution_forward_desc_init(
      op,
      PROP_FWD_TRAINING,
      ALG_CONV_DIRECT,
      m.src,
      m.w,
      m.b,
      m.dst,
      g.strides,
      g.dil,
      g.padL,
      g.padR,
    ),
    "convolution_forward_desc_init",
  );
  return createPd(op, makeAttr(post));
}

function q(pd: Deno.PointerObject, what: number, index = 0): Md {
  const md = queryMd(pd, what, index);
  if (md === null) throw new DnnlError(`onednn: no memory descriptor for query ${what}`);
  return md;
}

/** The cached forward plan of a geometry, bias or not, post-ops; null when oneDNN cannot make it. */
function forwardPlan(g: Geometry, bias: boolean, post: PostOp[]): Plan | null {
  const key = `conv_fwd|${g.key}|b${bias ? 1 : 0}|${postKey(post)}`;
  return cachedPlan(key, () => {
    const pd = forwardPd(g, bias, post);
    const specs = [
      { arg: ARG_SRC, user: mdTag(g.src, g.actTag), prim: q(pd, Q_SRC_MD), cache: true },
      { arg: ARG_WEIGHTS, user: g.wUser(), prim: q(pd, Q_WEIGHTS_MD), cache: true },
      ...(bias ? [{ arg: ARG_BIAS, user: mdTag([g.dst[1]], TAG_A), prim: q(pd, Q_WEIGHTS_MD, 1) }] : []),
      { arg: ARG_DST, user: mdTag(g.dst, g.actTag), prim: q(pd, Q_DST_MD), out: true },
    ];
    return new Plan(pd, specs);
  });
}

/** Forward convolution (+ bias + post-ops); null when unsupported (the caller falls back to cpu). */
export function convForward(
  backend: Backend,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | null,
  info: ConvInfo,
  post: PostOp[],
  depthwise = false,
): TensorInfo | null {
  const xv = f32(backend, x), wv = f32(backend, filter);
  const bv = bias ? f32(backend, bias) : null;
  if (xv === null || wv === null || (bias && (bv === null || bv.length !== info.outChannels))) return null;
  if (sizeOf(info.outShape) === 0) return null;
  const g = geometry(info, depthwise);
  if (g === null) return null;
  const plan = forwardPlan(g, bias !== null, post);
  if (plan === null) return null;
  const out = alloc(sizeOf(info.outShape));
  plan.run(bias ? [xv, wv, bv!, out] : [xv, wv, out]);
  return output(backend, info.outShape.slice(), out);
}

/**
 * relu(conv(x) + bias + residual) (`relu` false: without the ReLU), residual shaped like the output: one primitive
 * whose sum post-op adds the residual, copied into the output buffer first, where the output needs no reorder (NHWC
 * activations); else the convolution, then one JS pass adding the residual (and the ReLU). Null when unsupported.
 */
export function convForwardAdd(
  backend: Backend,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | null,
  residual: TensorInfo,
  info: ConvInfo,
  relu: boolean,
): TensorInfo | null {
  const xv = f32(backend, x), wv = f32(backend, filter), rv = f32(backend, residual);
  const bv = bias ? f32(backend, bias) : null;
  const n = sizeOf(info.outShape);
  if (xv === null || wv === null || rv === null || (bias && (bv === null || bv.length !== info.outChannels))) return null;
  if (n === 0 || rv.length !== n || residual.shape.join() !== info.outShape.join()) return null;
  const g = geometry(info, false);
  if (g === null) return null;
  const act: PostOp[] = relu ? [{ alg: ALG_ELTWISE_RELU, alpha: 0, beta: 0 }] : [];
  const fused = forwardPlan(g, bias !== null, [{ alg: POST_SUM, alpha: 1, beta: 0 }, ...act]);
  const out = alloc(n);
  const bufs = (o: Float32Array) => (bias ? [xv, wv, bv!, o] : [xv, wv, o]);
  if (fused !== null && !fused.outputReordered()) {
    out.set(rv);
    fused.run(bufs(out));
  } else {
    const plain = forwardPlan(g, bias !== null, []);
    if (plain === null) return null;
    plain.run(bufs(out));
    if (relu) for (let i = 0; i < n; i++) out[i] = Math.max(0, out[i] + rv[i]);
    else for (let i = 0; i < n; i++) out[i] += rv[i];
  }
  return output(backend, info.outShape.slice(), out);
}

/** Gradient with respect to the input: dx = conv_bwd_data(dy, filter). */
export function convBackwardData(
  backend: Backend,
  dy: TensorInfo,
  filter: TensorInfo,
  info: ConvInfo,
  depthwise = false,
): TensorInfo | null {
  const dyv = f32(backend, dy), wv = f32(backend, filter);
  if (dyv === null || wv === null) return null;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null; // (tfjs has no dilated conv gradients)
  if (sizeOf(info.inShape) === 0) return null;
  if (sizeOf(info.outShape) === 0) return null;
  const g = geometry(info, depthwise);
  if (g === null) return null;
  const key = `conv_bwd_data|${g.key}`;
  const make = () => {
    const hint = forwardPd(g, false, []);
    try {
      const m = anyMds(g, false);
      const op = opDesc();
      check(
        lib().fn.dnnl_convolution_backward_data_desc_init(
          op,
          ALG_CONV_DIRECT,
          m.src,
          m.w,
          m.dst,
          g.strides,
          g.padL,
          g.padR,
        ),
        "convolution_backward_data_desc_init",
      );
      const pd = createPd(op, null, hint);
      const specs = [
        { arg: ARG_DIFF_DST, user: mdTag(g.dst, g.actTag), prim: q(pd, Q_DIFF_DST_MD), cache: true },
        { arg: ARG_WEIGHTS, user: g.wUser(), prim: q(pd, Q_WEIGHTS_MD), cache: true },
        { arg: ARG_DIFF_SRC, user: mdTag(g.src, g.actTag), prim: q(pd, Q_DIFF_SRC_MD), out: true },
      ];
      return new Plan(pd, specs);
    } finally {
      lib().fn.dnnl_primitive_desc_destroy(hint);
    }
  };
  if (cachedPlan(key, make) === null) return null;
  const compute = () => {
    // Look the plan up again: it may have been evicted (and destroyed) from the cache in the meantime.
    const plan = cachedPlan(key, make);
    if (plan === null) throw new Error(`onednn: ${key} became unavailable`);
    const out = alloc(sizeOf(info.inShape));
    plan.run([f32(backend, dy)!, f32(backend, filter)!, out]);
    return out;
  };
  if (LAZY_INPUT_GRADIENTS && backend instanceof OnednnBackend) {
    return backend.makeLazyOutput(info.inShape.slice(), [dy, filter], compute);
  }
  return output(backend, info.inShape.slice(), compute());
}

/** Conv input gradients are computed on first read (see OnednnBackend.makeLazyOutput); ONEDNN_LAZY=0 disables. */
const LAZY_INPUT_GRADIENTS = env("ONEDNN_LAZY") !== "0";

/** Gradient with respect to the filter: dw = conv_bwd_weights(x, dy), in tfjs's filter layout. */
export function convBackwardWeights(
  backend: Backend,
  x: TensorInfo,
  dy: TensorInfo,
  info: ConvInfo,
  depthwise = false,
): TensorInfo | null {
  const xv = f32(backend, x), dyv = f32(backend, dy);
  if (xv === null || dyv === null) return null;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  if (sizeOf(info.filterShape) === 0) return null;
  const g = geometry(info, depthwise);
  if (g === null) return null;
  const key = `conv_bwd_weights|${g.key}`;
  const plan = cachedPlan(key, () => {
    const hint = forwardPd(g, false, []);
    try {
      const m = anyMds(g, false);
      const op = opDesc();
      check(
        lib().fn.dnnl_convolution_backward_weights_desc_init(
          op,
          ALG_CONV_DIRECT,
          m.src,
          m.w,
          null,
          m.dst,
          g.strides,
          g.padL,
          g.padR,
        ),
        "convolution_backward_weights_desc_init",
      );
      const pd = createPd(op, null, hint);
      const specs = [
        { arg: ARG_SRC, user: mdTag(g.src, g.actTag), prim: q(pd, Q_SRC_MD), cache: true },
        { arg: ARG_DIFF_DST, user: mdTag(g.dst, g.actTag), prim: q(pd, Q_DIFF_DST_MD), cache: true },
        { arg: ARG_DIFF_WEIGHTS, user: g.wUser(), prim: q(pd, Q_DIFF_WEIGHTS_MD), out: true },
      ];
      return new Plan(pd, specs);
    } finally {
      lib().fn.dnnl_primitive_desc_destroy(hint);
    }
  });
  if (plan === null) return null;
  const out = alloc(sizeOf(info.filterShape));
  plan.run([xv, dyv, out]);
  return output(backend, info.filterShape.slice(), out);
}
