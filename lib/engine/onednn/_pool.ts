// Private: 2-D max / average pooling and their gradients on oneDNN (pooling_v2), run directly on tfjs's NHWC
// buffers. MaxPoolGrad recomputes the forward pass with a workspace (tfjs passes input and output, not the
// argmax), then runs oneDNN's backward pass. AvgPoolGrad matches the tfjs cpu kernel, which divides by the full
// window size also at padded borders (oneDNN "include padding"); the forward average excludes padding, as tfjs.
import { backend_util, type TensorInfo } from "@tensorflow/tfjs-core";
import { f32, output, type Override, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import {
  ALG_POOL_AVG_EXCLUDE,
  ALG_POOL_AVG_INCLUDE,
  ALG_POOL_MAX,
  ARG_DIFF_DST,
  ARG_DIFF_SRC,
  ARG_DST,
  ARG_SRC,
  ARG_WORKSPACE,
  cachedPlan,
  check,
  createPd,
  dims64,
  INTERNAL_SLOT,
  lib,
  mdTag,
  opDesc,
  Plan,
  PROP_FWD_INFERENCE,
  PROP_FWD_TRAINING,
  Q_WORKSPACE_MD,
  queryMd,
  TAG_NHWC,
} from "./_ffi.ts";

type PoolInfo = backend_util.Conv2DInfo;

interface PoolGeometry {
  src: number[];
  dst: number[];
  strides: BigInt64Array<ArrayBuffer>;
  kernel: BigInt64Array<ArrayBuffer>;
  dil: BigInt64Array<ArrayBuffer>;
  padL: BigInt64Array<ArrayBuffer>;
  padR: BigInt64Array<ArrayBuffer>;
  key: string;
}

function geometry(info: PoolInfo): PoolGeometry | null {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw, padInfo } = info;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const pt = padInfo.top, pl = padInfo.left;
  const fits = (inS: number, outS: number, s: number, k: number, p0: number, p1: number) =>
    p0 >= 0 && p1 >= 0 && p0 < k && p1 < k && Math.floor((inS + p0 + p1 - k) / s) + 1 === outS;
  const pick = (inS: number, outS: number, s: number, k: number, p0: number, p1: number) => {
    for (const p of [p1, (outS - 1) * s + k - inS - p0, 0]) if (fits(inS, outS, s, k, p0, p)) return p;
    return -1;
  };
  const pb = pick(h, oh, sh, kh, pt, padInfo.bottom);
  const pr = pick(w, ow, sw, kw, pl, padInfo.right);
  if (pb < 0 || pr < 0 || sizeOf([n, c, oh, ow]) === 0) return null;
  return {
    src: [n, c, h, w],
    dst: [n, c, oh, ow],
    strides: dims64([sh, sw]),
    kernel: dims64([kh, kw]),
    dil: dims64([0, 0]),
    padL: dims64([pt, pl]),
    padR: dims64([pb, pr]),
    key: `${n},${c},${h},${w}>${oh},${ow}|k${kh},${kw}|s${sh},${sw}|p${pt},${pl},${pb},${pr}`,
  };
}

function forwardPd(g: PoolGeometry, alg: number, prop: number): Deno.PointerObject {
  const op = opDesc();
  check(
    lib().fn.dnnl_pooling_v2_forward_desc_init(
      op,
      prop,
      alg,
      mdTag(g.src, TAG_NHWC),
      mdTag(g.dst, TAG_NHWC),
      g.strides,
      g.kernel,
      g.dil,
      g.padL,
      g.padR,
    ),
    "pooling_forward_desc_init",
  );
  return createPd(op);
}

function backwardPd(g: PoolGeometry, alg: number, hint: Deno.PointerObject): Deno.PointerObject {
  const op = opDesc();
  check(
    lib().fn.dnnl_pooling_v2_backward_desc_init(
      op,
      alg,
      mdTag(g.src, TAG_NHWC),
      mdTag(g.dst, TAG_NHWC),
      g.strides,
      g.kernel,
      g.dil,
      g.padL,
      g.padR,
    ),
    "pooling_backward_desc_init",
  );
  return createPd(op, null, hint);
}

function poolInfo(x: TensorInfo, attrs: Record<string, unknown>): PoolInfo | null {
  if (x.shape.length !== 4) return null;
  return backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
}

function poolForward(alg: number): Override {
  return ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xv = f32(backend, x);
    const info = poolInfo(x, attrs ?? {});
    if (xv === null || info === null) return null;
    const g = geometry(info);
    if (g === null) return null;
    const plan = cachedPlan(`pool_fwd|${alg}|${g.key}`, () => {
      const pd = forwardPd(g, alg, PROP_FWD_INFERENCE);
      const src = mdTag(g.src, TAG_NHWC), dst = mdTag(g.dst, TAG_NHWC);
      return new Plan(pd, [{ arg: ARG_SRC, user: src, prim: src }, { arg: ARG_DST, user: dst, prim: dst, out: true }]);
    });
    if (plan === null) return null;
    const out = alloc(sizeOf(info.outShape));
    plan.run([xv, out]);
    return output(backend, info.outShape.slice(), out);
  };
}

export const maxPool: Override = poolForward(ALG_POOL_MAX);
export const avgPool: Override = poolForward(ALG_POOL_AVG_EXCLUDE);

export const maxPoolGrad: Override = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs;
  const dyv = f32(backend, dy), xv = f32(backend, input);
  const info = poolInfo(input, attrs ?? {});
  if (dyv === null || xv === null || info === null) return null;
  const g = geometry(info);
  if (g === null || sizeOf(dy.shape) !== sizeOf(g.dst)) return null;
  // Plan 1: forward training pass writing the argmax workspace into a scratch slot (the output is discarded).
  const fwd = cachedPlan(`maxpool_ws_fwd|${g.key}`, () => {
    const pd = forwardPd(g, ALG_POOL_MAX, PROP_FWD_TRAINING);
    const ws = queryMd(pd, Q_WORKSPACE_MD);
    const src = mdTag(g.src, TAG_NHWC), dst = mdTag(g.dst, TAG_NHWC);
    const internal = [{ arg: ARG_DST, md: dst, slot: INTERNAL_SLOT }];
    if (ws !== null) internal.push({ arg: ARG_WORKSPACE, md: ws, slot: INTERNAL_SLOT + 1 });
    return new Plan(pd, [{ arg: ARG_SRC, user: src, prim: src }], internal);
  });
  // Plan 2: backward pass reading the workspace from the same slot.
  const bwd = cachedPlan(`maxpool_bwd|${g.key}`, () => {
    const hint = forwardPd(g, ALG_POOL_MAX, PROP_FWD_TRAINING);
    try {
      const ws = queryMd(hint, Q_WORKSPACE_MD);
      const pd = backwardPd(g, ALG_POOL_MAX, hint);
      const src = mdTag(g.src, TAG_NHWC), dst = mdTag(g.dst, TAG_NHWC);
      const internal = ws !== null ? [{ arg: ARG_WORKSPACE, md: ws, slot: INTERNAL_SLOT + 1 }] : [];
      return new Plan(pd, [
        { arg: ARG_DIFF_DST, user: dst, prim: dst },
        { arg: ARG_DIFF_SRC, user: src, prim: src, out: true },
      ], internal);
    } finally {
      lib().fn.dnnl_primitive_desc_destroy(hint);
    }
  });
  if (fwd === null || bwd === null) return null;
  fwd.run([xv]);
  const out = alloc(sizeOf(input.shape));
  bwd.run([dyv, out]);
  return output(backend, input.shape.slice(), out);
};

export const avgPoolGrad: Override = ({ inputs, backend, attrs }) => {
  const { dy, input } = inputs;
  const dyv = f32(backend, dy);
  const info = poolInfo(input, attrs ?? {});
  if (dyv === null || info === null) return null;
  const g = geometry(info);
  if (g === null || sizeOf(dy.shape) !== sizeOf(g.dst)) return null;
  const plan = cachedPlan(`avgpool_bwd|${g.key}`, () => {
    const hint = forwardPd(g, ALG_POOL_AVG_INCLUDE, PROP_FWD_TRAINING);
    try {
      const pd = backwardPd(g, ALG_POOL_AVG_INCLUDE, hint);
      const src = mdTag(g.src, TAG_NHWC), dst = mdTag(g.dst, TAG_NHWC);
      return new Plan(pd, [
        { arg: ARG_DIFF_DST, user: dst, prim: dst },
        { arg: ARG_DIFF_SRC, user: src, prim: src, out: true },
      ]);
    } finally {
      lib().fn.dnnl_primitive_desc_destroy(hint);
    }
  });
  if (plan === null) return null;
  const out = alloc(sizeOf(input.shape));
  plan.run([dyv, out]);
  return output(backend, input.shape.slice(), out);
};
