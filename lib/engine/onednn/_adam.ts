// Private: Adam's update of one variable as one kernel, OnednnAdam, run by lib/engine/adam.ts's optimizer where
// the onednn backend is active. tfjs' AdamOptimizer makes 12 element-wise ops per variable, each a pass over the
// variable's size with an output of its own; this kernel makes 4 passes, each one oneDNN binary primitive with
// post-ops on all threads, for large variables, and one JS loop for small ones (below DNNL_MIN_ELEMENTS).
import { f32, output, type Override, postKey } from "./_backend.ts";
import { alloc, free } from "./_memory.ts";
import { ALG_BINARY_DIV, ALG_ELTWISE_LINEAR, ALG_ELTWISE_SQRT } from "./_dnnl_eltwise.ts";
import { DNNL_MIN_ELEMENTS } from "./_elementwise.ts";
import {
  ALG_BINARY_ADD,
  ALG_BINARY_MUL,
  ARG_DST,
  ARG_SRC,
  ARG_SRC_1,
  cachedPlan,
  check,
  createPd,
  DnnlError,
  lib,
  makeAttr,
  type Md,
  mdStrides,
  opDesc,
  Plan,
  type PostOp,
  postOpSrc1,
} from "./_ffi.ts";
import { env } from "./_env.ts";

export const ADAM_UPDATE = "OnednnAdam";

/** Variables updated by the oneDNN passes / by the JS loop (for tests). */
export const adamStats = { dnnl: 0, js: 0 };

/** What OnednnAdam takes besides the four tensors; stepSize and invC2 change every step (runtime operands). */
export interface AdamAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** learning rate / (1 - beta1^t) */
  stepSize: number;
  /** 1 / (1 - beta2^t) */
  invC2: number;
}

/**
 * inputs {x, m, v, g}: a variable, its first and second moments and its gradient, float32, one size; attrs
 * AdamAttrs. Outputs [x', m', v'], new tensors (tfjs data stays immutable):
 *   m' = β1·m + (1−β1)·g,  v' = β2·v + (1−β2)·g²,  x' = x − stepSize · m' / (sqrt(v' · invC2) + ε),
 * which is tfjs' AdamOptimizer update (x − lr · (m'/c1) / (sqrt(v'/c2) + ε)) with its constants gathered.
 * Returns null for other dtypes or mismatched sizes (the optimizer then runs tfjs' own update).
 */
export const adamUpdate: Override = ({ inputs, backend, attrs }) => {
  const { x, m, v, g } = inputs;
  const xv = f32(backend, x), mv = f32(backend, m), vv = f32(backend, v), gv = f32(backend, g);
  if (xv === null || mv === null || vv === null || gv === null) return null;
  const n = xv.length;
  if (mv.length !== n || vv.length !== n || gv.length !== n) return null;
  const a = attrs as unknown as AdamAttrs;
  const xo = alloc(n), mo = alloc(n), vo = alloc(n);
  let done = false;
  if (n >= DNNL_MIN_ELEMENTS) {
    try {
      done = adamDnnl(a, xv, mv, vv, gv, xo, mo, vo);
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (env("ONEDNN_DEBUG")) console.error(`onednn: ${ADAM_UPDATE}: ${e.message}; using JS`);
    }
  }
  if (done) adamStats.dnnl++;
  else {
    adamJs(a, xv, mv, vv, gv, xo, mo, vo);
    adamStats.js++;
  }
  const shape = x.shape.slice();
  return [output(backend, shape, xo), output(backend, shape.slice(), mo), output(backend, shape.slice(), vo)];
};

function adamJs(
  a: AdamAttrs,
  x: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  xo: Float32Array,
  mo: Float32Array,
  vo: Float32Array,
): void {
  const { beta1, beta2, epsilon, stepSize, invC2 } = a;
  const c1 = 1 - beta1, c2 = 1 - beta2;
  for (let i = 0; i < x.length; i++) {
    const gi = g[i];
    const mi = Math.fround(beta1 * m[i] + c1 * gi);
    const vi = Math.fround(beta2 * v[i] + c2 * gi * gi);
    mo[i] = mi;
    vo[i] = vi;
    xo[i] = x[i] - stepSize * mi / (Math.sqrt(vi * invC2) + epsilon);
  }
}

function dense(n: number): Md {
  return mdStrides([n], [1]);
}

/**
 * One binary primitive over n elements: dst = (src0 alg src1) then `post`; src1 and every binary post-op operand
 * are either n elements or 1 (broadcast scalar), as `scalar` says, in that order. Null when oneDNN has only its
 * reference implementation for it.
 */
function chainPlan(name: string, n: number, alg: number, src1Scalar: boolean, post: PostOp[]): Plan | null {
  return cachedPlan(`adam_${name}|${n}|${postKey(post)}`, () => {
    const full = dense(n), one = dense(1);
    const op = opDesc();
    check(lib().fn.dnnl_binary_desc_init(op, alg, full, src1Scalar ? one : full, full), "binary_desc_init");
    const pd = createPd(op, makeAttr(post));
    const specs = [
      { arg: ARG_SRC, user: full, prim: full },
      { arg: ARG_SRC_1, user: src1Scalar ? one : full, prim: src1Scalar ? one : full },
      ...post.flatMap((p, i) => (p.src1 ? [{ arg: postOpSrc1(i), user: p.src1, prim: p.src1 }] : [])),
      { arg: ARG_DST, user: full, prim: full, out: true },
    ];
    const plan = new Plan(pd, specs);
    if (plan.impl.startsWith("ref")) {
      plan.destroy();
      return null;
    }
    return plan;
  });
}

const binary = (alg: number, src1: Md): PostOp => ({ alg, alpha: 0, beta: 0, src1 });

function adamDnnl(
  a: AdamAttrs,
  x: Float32Array<ArrayBuffer>,
  m: Float32Array<ArrayBuffer>,
  v: Float32Array<ArrayBuffer>,
  g: Float32Array<ArrayBuffer>,
  xo: Float32Array<ArrayBuffer>,
  mo: Float32Array<ArrayBuffer>,
  vo: Float32Array<ArrayBuffer>,
): boolean {
  // The chains below divide by β1 and β2: β = 0 (allowed in Adam) goes to the JS loop.
  if (a.beta1 === 0 || a.beta2 === 0) return false;
  const n = x.length, full = dense(n), one = dense(1);
  // m' = (g · (1−β1)/β1 + m) · β1
  const pm = chainPlan("m", n, ALG_BINARY_MUL, true, [binary(ALG_BINARY_ADD, full), binary(ALG_BINARY_MUL, one)]);
  // v' = ((g · g) · (1−β2)/β2 + v) · β2
  const pv = chainPlan("v", n, ALG_BINARY_MUL, false, [
    binary(ALG_BINARY_MUL, one),
    binary(ALG_BINARY_ADD, full),
    binary(ALG_BINARY_MUL, one),
  ]);
  // d = sqrt(v' · invC2) + ε
  const pd = chainPlan("d", n, ALG_BINARY_MUL, true, [
    { alg: ALG_ELTWISE_SQRT, alpha: 0, beta: 0 },
    { alg: ALG_ELTWISE_LINEAR, alpha: 1, beta: a.epsilon },
  ]);
  // x' = (m' / d) · (−stepSize) + x
  const px = chainPlan("x", n, ALG_BINARY_DIV, false, [binary(ALG_BINARY_MUL, one), binary(ALG_BINARY_ADD, full)]);
  if (pm === null || pv === null || pd === null || px === null) return false;
  const s = (value: number) => Float32Array.of(value);
  pm.run([g, s((1 - a.beta1) / a.beta1), m, s(a.beta1), mo]);
  pv.run([g, g, s((1 - a.beta2) / a.beta2), v, s(a.beta2), vo]);
  const d = alloc(n);
  pd.run([vo, s(a.invC2), d]);
  px.run([mo, d, s(-a.stepSize), x, xo]);
  free(d);
  return true;
}
