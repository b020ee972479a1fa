/**
 * Training kernels for tfjs' webgpu backend (issue 15), registered over tfjs-webgpu's own when
 * lib/engine/mod.ts starts the webgpu backend (the way lib/engine/onednn/ does for the CPU):
 *   Conv2DBackpropFilter  tiled weight gradient, im2col gathered into workgroup memory, M split across
 *                         workgroups and the partial tiles summed (_conv_grad_filter.ts)
 *   Conv2DBackpropInput   input gradient by stride phase, tiled, only the taps that reach each phase
 *                         (_conv_grad_input.ts)
 * tfjs-webgpu's versions give each GPU thread one weight (or up to 8 input values) and a long serial loop over
 * global memory (bench/webgpu_profile.ts shows their share of a training step). NCHW and non-float32 inputs, and
 * input gradients of fewer than 16 channels, go to tfjs' own kernels.
 * It also replaces the gradients of Mean and Sum (global registry; they act on webgpu only) so that a training
 * step uploads no activation-sized array of ones from the CPU (_gradients.ts).
 * explainSyncReads() (called by lib/engine/mod.ts once the backend runs) turns tfjs-webgpu's failure of a synchronous
 * read in Deno (dataSync and friends have no 2d canvas to read through) into a message that names `await data()`
 * (_sync_read.ts).
 *
 * Tested against the cpu backend in tests/engine/webgpu_kernels_test.ts (skipped without a WebGPU adapter).
 */
import * as tf from "@tensorflow/tfjs-core";
import { conv2DBackpropFilterTiled } from "./_conv_grad_filter.ts";
import { conv2DBackpropInputPhased } from "./_conv_grad_input.ts";
import { broadcastingGradient, GRADIENT_NAMES } from "./_gradients.ts";

export { explainSyncReads, SYNC_READ_MESSAGE } from "./_sync_read.ts";

type Impl = (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | null;

const IMPLS: Record<string, Impl> = {
  Conv2DBackpropFilter: conv2DBackpropFilterTiled,
  Conv2DBackpropInput: conv2DBackpropInputPhased,
};

/** Kernel names this module replaces on the webgpu backend. */
export const WEBGPU_KERNEL_NAMES: readonly string[] = Object.keys(IMPLS);

/** Gradients this module replaces (on webgpu only; tfjs' own run on other backends). */
export const WEBGPU_GRADIENT_NAMES: readonly string[] = GRADIENT_NAMES;

/** tfjs-webgpu's own configs and tfjs' own gradients, saved before ours replace them. */
const stock = new Map<string, tf.KernelConfig>();
const stockGradients = new Map<string, tf.GradConfig>();
let ours = false;

function replace(cfg: tf.KernelConfig): void {
  if (tf.getKernel(cfg.kernelName, "webgpu")) tf.unregisterKernel(cfg.kernelName, "webgpu");
  tf.registerKernel(cfg);
}

/**
 * Registers the replacement kernels over tfjs-webgpu's (which must be registered already: import
 * "@tensorflow/tfjs-backend-webgpu" first). Idempotent.
 */
export function registerWebgpuKernels(): void {
  useWebgpuKernels(true);
}

/** Switches between our kernels and gradients (true) and tfjs' own (false), for profiling and A/B tests. */
export function useWebgpuKernels(on: boolean): void {
  if (on === ours) return;
  for (const name of WEBGPU_KERNEL_NAMES) {
    if (!stock.has(name)) {
      const cfg = tf.getKernel(name, "webgpu");
      if (!cfg) throw new Error(`webgpu kernels: tfjs-webgpu's ${name} is not registered (import @tensorflow/tfjs-backend-webgpu first)`);
      stock.set(name, cfg);
    }
  }
  for (const name of GRADIENT_NAMES) {
    if (!stockGradients.has(name)) {
      const grad = tf.getGradient(name);
      if (!grad) throw new Error(`webgpu kernels: no gradient registered for ${name} (import @tensorflow/tfjs first)`);
      stockGradients.set(name, grad);
    }
    const original = stockGradients.get(name)!;
    tf.registerGradient(on ? broadcastingGradient(name, original) : original);
  }
  for (const name of WEBGPU_KERNEL_NAMES) {
    const original = stock.get(name)!;
    if (!on) {
      replace(original);
      continue;
    }
    const impl = IMPLS[name];
    replace({
      kernelName: name,
      backendName: "webgpu",
      kernelFunc: (args) => impl(args) ?? (original.kernelFunc(args) as tf.TensorInfo),
    });
  }
  ours = on;
}

/** Whether our kernels are the registered ones now. */
export function webgpuKernelsActive(): boolean {
  return ours;
}

/** Whether a WebGPU adapter can be had here (a GPU, or a software one such as lavapipe); never throws. */
export async function webgpuAdapterAvailable(): Promise<boolean> {
  try {
    const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    return !!gpu && (await gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}
