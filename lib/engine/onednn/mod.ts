/**
 * oneDNN training backend for tfjs ("onednn").
 *
 * Registers a tfjs backend named "onednn": the tfjs cpu backend (every cpu kernel is registered for it too), with
 * the heavy kernels replaced by oneDNN 2.x primitives called through Deno FFI (`Deno.dlopen("libdnnl.so.2")`) on
 * the tfjs-managed Float32Arrays, or by tight JS loops where oneDNN has no fitting primitive:
 * - convolutions (Conv2D, FusedConv2D with bias + relu/relu6/elu/leakyrelu/sigmoid, the two gradients, depthwise
 *   and its gradients) with oneDNN-chosen blocked layouts, reorders from/to NHWC, cached primitives and cached
 *   reordered inputs; input gradients are computed only if something reads them (the first layer's never is);
 * - BatchMatMul / _FusedMatMul, MaxPool / AvgPool and their gradients;
 * - FusedBatchNorm, Sum / Mean, element-wise binary ops with broadcasting (oneDNN binary above 64K elements),
 *   unary ops (Relu, Step, Square, Sqrt, ...), Tile;
 * - Transform (tf.image.transform, JS): lib/engine/transform.ts, put in place of tfjs' cpu kernel (which transforms
 *   only a batch's first image) before the cpu kernels are copied.
 * Output arrays are recycled through a pool (a fresh 18 MB array costs more in page faults than the op).
 * Training: while "onednn" is the active backend, the gradient tape is made leaner (_tape.ts): the gradient of
 * tfjs-layers' training-mode BatchNormalization (tf.moments + FusedBatchNorm, verified on the tape) is one oneDNN
 * batch_normalization backward primitive (kernel OnednnBatchNormGrad) instead of ~30 element-wise passes; Relu's
 * gradient reads its output (OnednnReluGrad); Add/Sub/Mean no longer keep operands their gradients never read;
 * saved tensors sharing data and shape are one tensor. ~2.3x lower tf.profile peak per step on the reference CNN.
 * The project's BatchNormalization / BatchNormReLU layers (lib/models/fused_bn.ts) go further: the forward pass too
 * is one batch_normalization forward_training primitive, ReLU fused (kernel OnednnBatchNormTrain, whose gradient
 * this module registers). Output arrays freed longest ago leave the pool first when it is full.
 * Cases an override does not handle (other dtypes, prelu, unsupported geometry, a oneDNN error) run the cpu
 * kernel, so results never depend on coverage. See ONEDNN_KERNELS for the list.
 *
 * Usage:
 *   const status = await registerOnednnBackend(); // never throws; {available: false, reason} without libdnnl
 *   if (status.available) await tf.setBackend("onednn");
 *
 * Needs `--allow-ffi` (or -A) and oneDNN 2.x (Debian `libdnnl2`). Environment knobs:
 *   ONEDNN_LIBRARY=path       try this library first
 *   ONEDNN_THREADS=n          oneDNN threads (OMP_NUM_THREADS; default all cores)
 *   OMP_WAIT_POLICY           defaults to passive here (spinning threads were ~2.5x slower on shared cores)
 *   ONEDNN_DEBUG=1            log why a case fell back to cpu; DNNL_VERBOSE=1 for oneDNN's own log
 *   ONEDNN_LAZY=0             compute conv input gradients eagerly
 *   ONEDNN_ELTWISE=js         element-wise ops and sums in JS only
 *   ONEDNN_POOL_MB=1024, ONEDNN_REORDER_CACHE_MB=256   caps of the output pool and of the reordered-input cache
 *   ONEDNN_TAPE=0             keep tfjs' own tape entries and gradients (no _tape.ts rewrites)
 *   ONEDNN_CONV_ACT=nhwc|any  convolution activations in tfjs's NHWC (default) or oneDNN's blocked layouts with
 *                             reorders around each call
 * Tests: `deno test -A tests/engine/onednn_test.ts`; speed: `deno run -A bench/onednn_profile.ts --infer`;
 * rewrites on/off interleaved and peak memory: `deno run -A bench/onednn_profile.ts --ab --memory`.
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { type Backend, escapeInputs, OnednnBackend } from "./_backend.ts";
import { DnnlError, openOnednn } from "./_ffi.ts";
import { type KernelArgs, OVERRIDES } from "./_kernels.ts";
import { registerTransformKernel } from "../transform.ts";
import { registerResizeNearestGradKernel } from "../resize_grad.ts";
import { countFallback, countHit } from "./_stats.ts";
import { env } from "./_env.ts";
import { BATCH_NORM_TRAIN, EXTRA_KERNELS } from "./_grad_kernels.ts";
import { installTapeRewrites, registerBatchNormTrainGradient } from "./_tape.ts";
import { convActivationLayout } from "./_conv.ts";

/**
 * Kernels only this backend registers, by name, for ops that run them where present (lib/models/fused_conv.ts,
 * lib/engine/adam.ts).
 */
export { BATCH_NORM_TRAIN, RELU_GRAD } from "./_grad_kernels.ts";
export { CONV_ADD_RELU } from "./_kernels_conv.ts";
export { ADAM_UPDATE, type AdamAttrs } from "./_adam.ts";

/** Outcome of `registerOnednnBackend()`. */
export interface OnednnStatus {
  available: boolean;
  reason: string;
  version?: string;
  library?: string;
  /** Layout of convolution activations (convActivationLayout in _conv.ts). */
  convActivations?: "nhwc" | "any";
}

/** Names of the tfjs kernels the "onednn" backend overrides (all other kernels are the cpu backend's). */
export const ONEDNN_KERNELS: readonly string[] = Object.freeze(Object.keys(OVERRIDES));

const BACKEND = "onednn";
let registered: Promise<OnednnStatus> | null = null;

/** Loads libdnnl and registers the "onednn" tfjs backend (cpu kernels + oneDNN overrides). Idempotent. Never throws. */
export function registerOnednnBackend(): Promise<OnednnStatus> {
  registered ??= Promise.resolve().then(register).catch((e: unknown) => ({
    available: false,
    reason: `onednn: registration failed: ${(e as Error)?.message ?? String(e)}`,
  }));
  return registered;
}

function register(): OnednnStatus {
  const opened = openOnednn();
  if (!opened.ok) return { available: false, reason: opened.reason };
  const { version, library } = opened.dnnl;
  let convActivations: "nhwc" | "any";
  try {
    convActivations = convActivationLayout();
  } catch (e) {
    return { available: false, reason: (e as Error).message };
  }
  if (tf.findBackendFactory(BACKEND) == null) {
    // Priority 0: never picked as the default backend implicitly; callers opt in with tf.setBackend("onednn").
    tf.registerBackend(BACKEND, () => new OnednnBackend(), 0);
  }
  registerTransformKernel(); // tfjs' cpu "Transform" transforms only the first image; the copy below takes ours
  registerResizeNearestGradKernel(); // tfjs' cpu kernel reads the wrong dy rows after the first image; ours
  const cpuKernels = tf.getKernelsForBackend("cpu");
  if (cpuKernels.length === 0) return { available: false, reason: "onednn: the tfjs cpu backend has no kernels" };
  const have = new Set(tf.getKernelsForBackend(BACKEND).map((k) => k.kernelName));
  for (const cfg of cpuKernels) {
    if (have.has(cfg.kernelName)) continue;
    const override = OVERRIDES[cfg.kernelName];
    const kernelFunc = override
      ? wrap(cfg.kernelName, override, cfg.kernelFunc)
      : SHARES_NO_VALUES.has(cfg.kernelName)
      ? cfg.kernelFunc
      : escaping(cfg.kernelFunc);
    tf.registerKernel({ ...cfg, backendName: BACKEND, kernelFunc });
    have.add(cfg.kernelName);
  }
  // Kernels the cpu backend lacks but we provide: the gradient kernels of _tape.ts.
  for (const [name, override] of [...Object.entries(OVERRIDES), ...Object.entries(EXTRA_KERNELS)]) {
    if (have.has(name)) continue;
    tf.registerKernel({
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: (args) => {
        const r = override(args as unknown as KernelArgs);
        if (r === null) throw new Error(`onednn: ${name} is not supported for these inputs`);
        countHit(name);
        return r;
      },
    });
  }
  // OnednnBatchNormTrain's gradient (tfjs keeps gradients by kernel name, for every backend).
  if (tf.getGradient(BATCH_NORM_TRAIN) === undefined) registerBatchNormTrainGradient();
  // Leaner tape entries (BatchNorm gradient in one oneDNN primitive, fewer saved tensors) while onednn is active.
  try {
    installTapeRewrites(BACKEND);
  } catch (e) {
    if (env("ONEDNN_DEBUG")) console.error(`onednn: tape rewrites not installed: ${(e as Error)?.message}`);
  }
  return { available: true, reason: "ok", version, library, convActivations };
}

/**
 * cpu kernels known not to keep references to their inputs' arrays (they copy, or share the dataId with
 * reference counting). Every other cpu kernel marks its inputs' arrays as escaped (never recycled).
 */
const SHARES_NO_VALUES = new Set(["Reshape", "Identity", "Cast", "ExpandDims", "Transform"]);

function escaping(cpu: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    escapeInputs(args.backend as Backend, args.inputs as Record<string, tf.TensorInfo>);
    return cpu(args);
  };
}

function wrap(name: string, override: (a: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null, cpu: tf.KernelFunc) {
  const debug = !!env("ONEDNN_DEBUG");
  const kernelFunc: tf.KernelFunc = (args) => {
    let r: tf.TensorInfo | tf.TensorInfo[] | null = null;
    try {
      r = override(args as unknown as KernelArgs);
    } catch (e) {
      if (!(e instanceof DnnlError)) throw e;
      if (debug) console.error(`onednn: ${name}: ${e.message}; using cpu`);
    }
    if (r !== null) {
      countHit(name);
      return r;
    }
    countFallback(name);
    escapeInputs(args.backend as Backend, args.inputs as Record<string, tf.TensorInfo>);
    return cpu(args);
  };
  return kernelFunc;
}
