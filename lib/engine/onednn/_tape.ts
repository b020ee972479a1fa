// Private: leaner gradient tape entries for training on the "onednn" backend.
//
// tfjs records every kernel run under tf.grads / optimizer.minimize on a tape with the tensors its gradient needs
// ("saved": kept until the backward pass ends), and builds gradients from generic per-kernel formulas. Two
// consequences dominate a training step of a small CNN here:
// - tfjs-layers' BatchNormalization in training computes tf.moments(x) (Mean, Sub, Square, Mean) and then
//   FusedBatchNorm; the tape's gradient of that graph is ~30 full passes over x;
// - the tape keeps inputs no gradient reads: Add/Sub/Mean keep both operands (their gradients use only the
//   shapes), Relu keeps its input although its output determines the gradient, Square keeps (x - mean).
//   For conv -> bias add -> relu (tfjs-layers does not fuse in training) that is 3 copies of every activation.
//
// `installTapeRewrites()` wraps the engine's addTapeNode. While the onednn backend is active (first-order
// gradients only), it edits the tape node just recorded, before anything can read it:
// - FusedBatchNorm whose mean / variance are verified to be the batch moments of its x (the nodes that produced
//   them are on the tape: Mean(x), Mean(Square(Sub(x, Reshape(mean))))): the node's inputs become {x, scale,
//   offset} and its gradient one OnednnBatchNormGrad kernel (oneDNN's batch-norm backward: the total derivative
//   through the moments too). The moment nodes stay on the tape (so any other use of mean / variance still gets
//   exact gradients), but nothing flows through them from this node.
// - Add / Sub: saved operands dropped (shapes captured); Mean: saved input dropped; Relu: saves its output
//   instead of its input, gradient OnednnReluGrad(dy, y); LeakyRelu (alpha ≥ 0) likewise, OnednnLeakyReluGrad; Square of a broadcasting Sub (x - mean): saves the
//   Sub's operands (which share data with live tensors) instead of the difference, recomputed in the gradient.
// Every rewritten gradient computes the same values as tfjs' formula (up to float rounding for BatchNorm).
import * as tf from "@tensorflow/tfjs-core";
import { backend_util, util } from "@tensorflow/tfjs-core";
import { BATCH_NORM_GRAD, BATCH_NORM_TRAIN, LEAKY_RELU_GRAD, RELU_GRAD } from "./_grad_kernels.ts";
import { env } from "./_env.ts";

type Tensor = tf.Tensor;
type GradMap = Record<string, () => Tensor>;

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, Tensor | undefined>;
  outputs: Tensor[];
  saved?: Tensor[];
  gradient?: (dys: (Tensor | null)[]) => GradMap;
}

interface Engine {
  backendName: string;
  state: { activeTape: TapeNode[] | null; gradientDepth: number; kernelDepth: number };
  addTapeNode(
    kernelName: string,
    inputs: Record<string, Tensor>,
    outputs: Tensor[],
    gradientsFunc: unknown,
    saved: Tensor[],
    attrs: Record<string, unknown>,
  ): void;
  clone(x: Tensor): Tensor;
  keep<T extends Tensor>(x: T): T;
  runKernel(name: string, inputs: Record<string, Tensor>, attrs?: Record<string, unknown>): Tensor | Tensor[];
}

/** Nodes rewritten so far, per kind (for tests). */
export const tapeStats = { batchNorm: 0, relu: 0, leakyRelu: 0, shapeOnly: 0, squareOfSub: 0 };

let enabled = env("ONEDNN_TAPE") !== "0";
let installed = false;

/** Turns the rewrites on or off (ONEDNN_TAPE=0 starts with them off); returns the previous setting. For A/B runs. */
export function setTapeRewrites(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Wraps the engine's addTapeNode (once). Rewrites apply only while `backendName` is the active backend. */
export function installTapeRewrites(backendName: string): void {
  if (installed) return;
  const engine = tf.engine() as unknown as Engine;
  const original = engine.addTapeNode;
  if (typeof original !== "function" || engine.state == null) return;
  installed = true;
  let busy = false;
  engine.addTapeNode = function (this: Engine, kernelName, inputs, outputs, gradientsFunc, saved, attrs) {
    original.call(this, kernelName, inputs, outputs, gradientsFunc, saved, attrs);
    if (busy || !enabled || this.backendName !== backendName || this.state.gradientDepth !== 1) return;
    const tape = this.state.activeTape;
    if (tape == null || tape.length === 0) return;
    const node = tape[tape.length - 1];
    if (node.outputs !== outputs || node.gradient == null) return;
    busy = true;
    // Stop the clones made here from being recorded themselves (as when the engine saves tensors).
    this.state.kernelDepth++;
    try {
      rewrite(this, tape, node, attrs ?? {});
      dedupe(tape, node);
    } finally {
      this.state.kernelDepth--;
      busy = false;
    }
  };
}

function rewrite(engine: Engine, tape: TapeNode[], node: TapeNode, attrs: Record<string, unknown>): void {
  switch (node.kernelName) {
    case "FusedBatchNorm":
      return batchNorm(engine, tape, node, attrs);
    case "Relu":
      return relu(engine, node);
    case "LeakyRelu":
      return leakyRelu(engine, node, attrs);
    case "Add":
    case "Sub":
      return addSub(node);
    case "Mean":
      if (node.inputs.x != null) MEAN_AXES.set(node, util.parseAxisParam(attrs.axis as number[], node.inputs.x.shape));
      return mean(node, attrs);
    case "Square":
      return squareOfSub(engine, tape, node);
  }
}

// ---- helpers ----

const isF32 = (t: Tensor | undefined): t is Tensor => t != null && t.dtype === "float32";

/** The tape node (among the last `limit`) that produced tensor `t`. */
function producer(tape: TapeNode[], t: Tensor, limit = 64): TapeNode | null {
  for (let i = tape.length - 1, stop = Math.max(0, tape.length - limit); i >= stop; i--) {
    const n = tape[i];
    for (const o of n.outputs) if (o.id === t.id) return n;
  }
  return null;
}

function keepClone(engine: Engine, t: Tensor): Tensor {
  return engine.keep(engine.clone(t));
}

/** Replaces the node's saved tensors (disposing the old ones; shared data stays alive while others hold it). */
function resave(node: TapeNode, saved: Tensor[]): void {
  const old = node.saved ?? [];
  node.saved = saved;
  for (const t of old) t.dispose();
}

function onBackend(engine: Engine): boolean {
  return engine.backendName === "onednn";
}

/** The sum of dy over the axes broadcast in `shape` (against dy's shape), reshaped to `shape`; as tfjs' Add grad. */
function reduceTo(dy: Tensor, shape: number[]): Tensor {
  let res = dy;
  const axes = backend_util.getReductionAxes(shape, dy.shape);
  if (axes.length > 0) res = tf.sum(res, axes);
  return tf.reshape(res, shape);
}

/**
 * Saved tensors of one tape that share data and shape (a relu output saved by its Relu node and by the next
 * convolution, a conv output saved by BatchNorm and by the moments' Square) become one saved tensor object:
 * the data is the same, but tfjs counts the bytes of every tensor object (tf.memory, tf.profile). The node's
 * saved array is edited in place (tfjs' gradient closures hold that array); duplicates are disposed here, the
 * shared ones at the end of backprop like every saved tensor (disposing twice is a no-op).
 */
const SHARED = new WeakMap<TapeNode[], Map<object, Tensor>>();

function dedupe(tape: TapeNode[], node: TapeNode): void {
  const saved = node.saved;
  if (saved == null || saved.length === 0) return;
  let shared = SHARED.get(tape);
  if (shared === undefined) SHARED.set(tape, shared = new Map());
  for (let i = 0; i < saved.length; i++) {
    const t = saved[i];
    if (t == null || t.isDisposed) continue;
    const prev = shared.get(t.dataId);
    if (prev === undefined || prev.isDisposed) {
      shared.set(t.dataId, t);
    } else if (prev !== t && prev.dtype === t.dtype && util.arraysEqual(prev.shape, t.shape)) {
      saved[i] = prev;
      t.dispose();
    }
  }
}

// ---- Add / Sub / Mean: gradients that read shapes only ----

function addSub(node: TapeNode): void {
  const { a, b } = node.inputs;
  const saved = node.saved ?? [];
  if (a == null || b == null || saved.length !== 2) return;
  const aShape = a.shape.slice(), bShape = b.shape.slice();
  const sub = node.kernelName === "Sub";
  node.gradient = (dys) => {
    const dy = dys[0]!;
    return {
      a: () => reduceTo(dy, aShape),
      b: () => {
        // tfjs: Sub's b gradient is reshape(neg(sum(dy))), Add's reshape(sum(dy))
        if (!sub) return reduceTo(dy, bShape);
        let res = dy;
        const axes = backend_util.getReductionAxes(bShape, dy.shape);
        if (axes.length > 0) res = tf.sum(res, axes);
        return tf.reshape(tf.neg(res), bShape);
      },
    };
  };
  resave(node, []);
  tapeStats.shapeOnly++;
}

function mean(node: TapeNode, attrs: Record<string, unknown>): void {
  const x = node.inputs.x;
  if (x == null || (node.saved ?? []).length !== 1) return;
  const xShape = x.shape.slice();
  const axes = util.parseAxisParam(attrs.axis as number | number[], xShape);
  const reduceSize = util.sizeFromShape(backend_util.computeOutAndReduceShapes(xShape, axes)[1]);
  node.gradient = (dys) => {
    const dy = dys[0]!;
    return {
      x: () => {
        // as tfjs' Mean grad
        const expanded = xShape.slice();
        for (const ax of axes) expanded[ax] = 1;
        return tf.div(tf.mul(tf.reshape(dy, expanded), tf.ones(xShape, "float32")), reduceSize);
      },
    };
  };
  resave(node, []);
  tapeStats.shapeOnly++;
}

// ---- Relu and LeakyRelu: gradient from the output ----

/**
 * Makes the node's gradient read its output y instead of its input (y > 0 exactly where x > 0: relu, and leakyRelu
 * with alpha ≥ 0): on onednn one `kernel(dy, y)` pass, elsewhere `fallback(dy, y)`.
 */
function gradientFromOutput(
  engine: Engine,
  node: TapeNode,
  kernel: string,
  attrs: Record<string, unknown>,
  fallback: (dy: Tensor, y: Tensor) => Tensor,
): boolean {
  const x = node.inputs.x, y = node.outputs[0];
  if (!isF32(x) || !isF32(y) || node.outputs.length !== 1 || (node.saved ?? []).length !== 1) return false;
  const ySaved = keepClone(engine, y);
  node.gradient = (dys) => {
    const dy = dys[0]!;
    const [ySaved] = node.saved!; // read at gradient time: dedupe() may have swapped in an equal saved tensor
    return { x: () => (onBackend(engine) ? engine.runKernel(kernel, { dy, y: ySaved }, attrs) as Tensor : fallback(dy, ySaved)) };
  };
  resave(node, [ySaved]);
  return true;
}

function relu(engine: Engine, node: TapeNode): void {
  if (gradientFromOutput(engine, node, RELU_GRAD, {}, (dy, y) => tf.mul(dy, tf.step(y)))) tapeStats.relu++;
}

function leakyRelu(engine: Engine, node: TapeNode, attrs: Record<string, unknown>): void {
  const alpha = attrs.alpha as number;
  if (!(alpha >= 0)) return;
  if (gradientFromOutput(engine, node, LEAKY_RELU_GRAD, { alpha }, (dy, y) => tf.where(tf.greater(y, 0), dy, tf.mul(dy, alpha)))) tapeStats.leakyRelu++;
}

// ---- Square of (a - b) with b broadcast: recompute the difference ----

function squareOfSub(engine: Engine, tape: TapeNode[], node: TapeNode): void {
  const d = node.inputs.x;
  if (!isF32(d) || (node.saved ?? []).length !== 1) return;
  const sub = producer(tape, d, 4);
  if (sub === null || sub.kernelName !== "Sub" || sub.outputs.length !== 1) return;
  const { a, b } = sub.inputs;
  if (!isF32(a) || !isF32(b) || !util.arraysEqual(a.shape, d.shape) || b.size * 4 > a.size) return;
  const aSaved = keepClone(engine, a), bSaved = keepClone(engine, b);
  node.gradient = (dys) => {
    const dy = dys[0]!;
    const [aSaved, bSaved] = node.saved!;
    // as tfjs' Square grad: dy * (2 * x), with x = a - b recomputed by the same kernel
    return { x: () => tf.mul(dy, tf.mul(tf.sub(aSaved, bSaved), 2)) };
  };
  resave(node, [aSaved, bSaved]);
  tapeStats.squareOfSub++;
}

// ---- FusedBatchNorm with batch statistics ----

/** True when `m` is Mean(t) over all axes but the last (keepDims false) for a t with x's data and size. */
function isChannelMean(tape: TapeNode[], m: Tensor, sameAs: (t: Tensor) => boolean, c: number): TapeNode | null {
  const n = producer(tape, m);
  if (n === null || n.kernelName !== "Mean" || n.outputs.length !== 1) return null;
  const t = n.inputs.x;
  if (!isF32(t) || t.rank < 1 || t.shape[t.rank - 1] !== c || !sameAs(t)) return null;
  if (!util.arraysEqual(m.shape, [c])) return null;
  return n;
}

function batchNorm(engine: Engine, tape: TapeNode[], node: TapeNode, attrs: Record<string, unknown>): void {
  const { x, mean: m, variance: v, scale, offset } = node.inputs;
  const saved = node.saved ?? [];
  if (!isF32(x) || !isF32(m) || !isF32(v) || x.rank !== 4 || saved.length !== 4 || saved[0] == null) return;
  const c = x.shape[3] as number;
  if (!util.arraysEqual(m.shape, [c]) || !util.arraysEqual(v.shape, [c])) return;
  if (scale != null && (!isF32(scale) || !util.arraysEqual(scale.shape, [c]))) return;
  if (offset != null && (!isF32(offset) || !util.arraysEqual(offset.shape, [c]))) return;
  const eps = attrs.varianceEpsilon as number;
  if (typeof eps !== "number") return;
  // x's data (x itself, or a reshape / cast of the same float32 data and size)
  const sameAsX = (t: Tensor) => t.dataId === x.dataId && t.size === x.size;
  // mean = Mean(x), all axes but the last
  const meanNode = isChannelMean(tape, m, sameAsX, c);
  if (meanNode === null || !reducesAllButLast(meanNode)) return;
  // variance = Mean(Square(Sub(x, Reshape(mean))))
  const varNode = isChannelMean(tape, v, () => true, c);
  if (varNode === null || !reducesAllButLast(varNode)) return;
  const sq = producer(tape, varNode.inputs.x!);
  if (sq === null || sq.kernelName !== "Square") return;
  const sub = producer(tape, sq.inputs.x!);
  if (sub === null || sub.kernelName !== "Sub") return;
  const { a, b } = sub.inputs;
  if (a == null || b == null || !sameAsX(a) || b.dataId !== m.dataId || b.size !== c) return;
  if (!util.arraysEqual(a.shape, sub.outputs[0].shape)) return;
  if (b.shape[b.rank - 1] !== c) return;
  // Passed: the node's mean / variance are the biased batch moments of x.
  const inputs: Record<string, Tensor> = { x };
  if (scale != null) inputs.scale = scale;
  if (offset != null) inputs.offset = offset;
  node.inputs = inputs;
  node.gradient = (dys) => {
    const dy = dys[0]!;
    const [xs, ms, vs, ss] = node.saved!;
    const names = ["x", scale != null ? "scale" : null, offset != null ? "offset" : null];
    return lazyGradients(engine, names, () =>
      onBackend(engine)
        ? engine.runKernel(
          BATCH_NORM_GRAD,
          ss != null ? { x: xs, mean: ms, variance: vs, scale: ss, dy } : { x: xs, mean: ms, variance: vs, dy },
          { varianceEpsilon: eps },
        ) as Tensor[]
        : batchNormGradOps(xs, ms, vs, ss ?? null, dy, eps));
  };
  tapeStats.batchNorm++;
}

/**
 * A gradient map whose entries share one computation: `compute()` runs when the first entry is asked for (each
 * entry runs in its own tidy), the outputs of the other named entries are kept for theirs, the unnamed (null)
 * ones disposed at once.
 */
function lazyGradients(engine: Engine, names: (string | null)[], compute: () => Tensor[]): GradMap {
  let outs: Tensor[] | null = null;
  const take = (i: number): Tensor => {
    if (outs === null) {
      outs = compute();
      for (let j = 0; j < outs.length; j++) if (names[j] === null) outs[j].dispose();
      // Each input's gradient runs in its own tidy: keep the others until taken (as clones: a kept tensor
      // returned from a tidy would never be disposed).
      for (let j = 0; j < outs.length; j++) if (j !== i && !outs[j].isDisposed) engine.keep(outs[j]);
      return outs[i];
    }
    const t = outs[i];
    const r = t.clone();
    t.dispose();
    return r;
  };
  const g: GradMap = {};
  names.forEach((name, i) => {
    if (name !== null) g[name] = () => take(i);
  });
  return g;
}

/**
 * The gradient of OnednnBatchNormTrain (inputs x, scale, offset; outputs y, mean, variance; attrs
 * varianceEpsilon, relu): dy masked by the output's sign when the ReLU was fused (OnednnReluGrad), then
 * OnednnBatchNormGrad, the total derivative through the batch moments (tf ops when the backend changed since).
 * The moments' own gradients (their dys) are ignored: they are outputs for the moving averages, which do not
 * lead to a loss.
 */
export function registerBatchNormTrainGradient(): void {
  tf.registerGradient({
    kernelName: BATCH_NORM_TRAIN,
    inputsToSave: ["x", "scale"],
    outputsToSave: [true, true, true],
    gradFunc: (dys, saved, attrs) => {
      const engine = tf.engine() as unknown as Engine;
      const dy = (Array.isArray(dys) ? dys[0] : dys) as Tensor;
      const [x, scale, y, mean, variance] = saved;
      const { varianceEpsilon: eps, relu } = attrs as unknown as { varianceEpsilon: number; relu: boolean };
      const on = onBackend(engine);
      return lazyGradients(engine, ["x", "scale", "offset"], () => {
        const dz = !relu ? dy : on ? engine.runKernel(RELU_GRAD, { dy, y }) as Tensor : tf.mul(dy, tf.step(y));
        return on
          ? engine.runKernel(BATCH_NORM_GRAD, { x, mean, variance, scale, dy: dz }, { varianceEpsilon: eps }) as Tensor[]
          : batchNormGradOps(x, mean, variance, scale, dz, eps);
      });
    },
  });
}

function reducesAllButLast(n: TapeNode): boolean {
  const t = n.inputs.x!;
  const axes = MEAN_AXES.get(n);
  if (axes === undefined) return false;
  const want = Array.from({ length: t.rank - 1 }, (_, i) => i);
  return util.arraysEqual(axes.slice().sort((p, q) => p - q), want);
}

/** Reduced axes of the Mean nodes seen (attrs are not stored on tape nodes). */
const MEAN_AXES = new WeakMap<TapeNode, number[]>();

/** The same gradient with tf ops (when the backend changed between forward and backward). */
function batchNormGradOps(x: Tensor, m: Tensor, v: Tensor, s: Tensor | null, dy: Tensor, eps: number): Tensor[] {
  return tf.tidy(() => {
    const axes = Array.from({ length: x.rank - 1 }, (_, i) => i);
    const n = x.size / x.shape[x.rank - 1];
    const rstd = tf.rsqrt(tf.add(v, eps));
    const xhat = tf.mul(tf.sub(x, m), rstd);
    const dshift = tf.sum(dy, axes);
    const dscale = tf.sum(tf.mul(dy, xhat), axes);
    const inner = tf.sub(tf.sub(dy, tf.div(dshift, n)), tf.mul(xhat, tf.div(dscale, n)));
    const dx = tf.mul(inner, s === null ? rstd : tf.mul(s, rstd));
    return [dx, dscale, dshift];
  });
}
