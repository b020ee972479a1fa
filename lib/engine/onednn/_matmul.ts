// Private: BatchMatMul and _FusedMatMul (bias + eltwise activation) on oneDNN's matmul primitive, run directly on
// tfjs's row-major buffers (transposes are expressed as strides; batch broadcasting of a single matrix is native).
import { backend_util, type TensorInfo } from "@tensorflow/tfjs-core";
import { type Backend, f32, fusedPostOps, output, type Override, postKey, sizeOf } from "./_backend.ts";
import { alloc } from "./_memory.ts";
import {
  ARG_BIAS,
  ARG_DST,
  ARG_SRC,
  ARG_WEIGHTS,
  cachedPlan,
  check,
  createPd,
  lib,
  makeAttr,
  mdStrides,
  opDesc,
  Plan,
  type PostOp,
} from "./_ffi.ts";

function matmul(
  backend: Backend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias: TensorInfo | null,
  post: PostOp[],
): TensorInfo | null {
  const av = f32(backend, a), bv = f32(backend, b);
  if (av === null || bv === null || a.shape.length < 2 || b.shape.length < 2) return null;
  const ra = a.shape.length, rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const ka = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  if (ka !== kb) return null;
  const k = ka;
  const batchA = sizeOf(a.shape.slice(0, -2)), batchB = sizeOf(b.shape.slice(0, -2));
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return null;
  const batch = Math.max(batchA, batchB);
  if (batch * m * n === 0 || k === 0) return null;
  const outerShape = backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const outShape = outerShape.concat([m, n]);
  if (sizeOf(outShape) !== batch * m * n) return null;
  let biasV: Float32Array<ArrayBuffer> | null = null;
  if (bias !== null) {
    biasV = f32(backend, bias);
    if (
      biasV === null || biasV.length !== n ||
      (bias.shape.length > 1 && bias.shape.some((d, i) => i < bias.shape.length - 1 && d !== 1))
    ) {
      return null;
    }
  }
  const key = `matmul|${batchA},${batchB},${m},${k},${n}|${transposeA ? 1 : 0}${transposeB ? 1 : 0}|` +
    `b${bias ? 1 : 0}|${postKey(post)}`;
  const plan = cachedPlan(key, () => {
    const srcMd = mdStrides([batchA, m, k], transposeA ? [m * k, 1, m] : [m * k, k, 1]);
    const wMd = mdStrides([batchB, k, n], transposeB ? [k * n, 1, k] : [k * n, n, 1]);
    const biasMd = bias ? mdStrides([1, 1, n], [n, n, 1]) : null;
    const dstMd = mdStrides([batch, m, n], [m * n, n, 1]);
    const op = opDesc();
    check(lib().fn.dnnl_matmul_desc_init(op, srcMd, wMd, biasMd, dstMd), "matmul_desc_init");
    const pd = createPd(op, makeAttr(post));
    const specs = [
      { arg: ARG_SRC, user: srcMd, prim: srcMd },
      { arg: ARG_WEIGHTS, user: wMd, prim: wMd },
      ...(biasMd ? [{ arg: ARG_BIAS, user: biasMd, prim: biasMd }] : []),
      { arg: ARG_DST, user: dstMd, prim: dstMd, out: true },
    ];
    return new Plan(pd, specs);
  });
  if (plan === null) return null;
  const out = alloc(batch * m * n);
  plan.run(biasV ? [av, bv, biasV, out] : [av, bv, out]);
  return output(backend, outShape, out);
}

export const batchMatMul: Override = ({ inputs, backend, attrs }) => {
  const at = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
  return matmul(backend, inputs.a, inputs.b, !!at.transposeA, !!at.transposeB, null, []);
};

export const fusedMatMul: Override = ({ inputs, backend, attrs }) => {
  const at = (attrs ?? {}) as {
    transposeA?: boolean;
    transposeB?: boolean;
    activation?: string;
    leakyreluAlpha?: number;
  };
  if (inputs.preluActivationWeights != null) return null;
  const post = fusedPostOps(at.activation, at.leakyreluAlpha);
  if (post === null) return null;
  return matmul(backend, inputs.a, inputs.b, !!at.transposeA, !!at.transposeB, inputs.bias ?? null, post);
};
