// wasm_train: lets tfjs's "wasm" backend train convolutional networks, fast, with no system libraries.
//
// tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel (training a conv net throws) and a scalar-loop
// Conv2DBackpropInput (~0.8 s per layer of the reference CNN). registerWasmTrainingKernels() registers, for
// "wasm" only:
//   Conv2DBackpropFilter, Conv2DBackpropInput  im2col / col2im around XNNPACK matrix products (_conv_grad.ts)
//   MaxPoolGrad, AvgPoolGrad                   one pass over the windows in JS (wasm's: 0.3 s per layer)
//   BatchMatMul                                transposed operands made explicit so XNNPACK runs them
//   Identity, Cast                             no copy when the dtype stays; fixes wasm's cast to bool
//   Sum, Mean                                  leading-axis reductions without wasm's transpose
//   Slice, Tile, Transpose                     the slow cases of wasm's data-movement kernels
// Everything else (and any case a replacement does not handle) stays with wasm's own kernels. Reference CNN,
// batch 64, Adam, on 2 shared cores: ~40-55 img/s training (inference ~220 img/s).
//
// Usage:
//   import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
//   import { registerWasmTrainingKernels } from "./lib/engine/wasm_train/mod.ts";
//   setWasmPaths(...);
//   registerWasmTrainingKernels();        // before or after tf.setBackend("wasm")
//   await tf.setBackend("wasm");
//
// Tests: deno test -A tests/engine/wasm_train_test.ts

import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { ORIGINAL_KERNELS } from "./_kernel_call.ts";
import { conv2DBackpropFilter, conv2DBackpropInput } from "./_conv_grad.ts";
import { cast, identity } from "./_copy_free.ts";
import { batchMatMul } from "./_matmul.ts";
import { avgPoolGrad, maxPoolGrad } from "./_pool_grad.ts";
import { mean, sum } from "./_reduce.ts";
import { slice } from "./_slice.ts";
import { tile } from "./_tile.ts";
import { transpose } from "./_transpose.ts";

interface Replacement {
  kernelName: string;
  kernelFunc: tf.KernelFunc;
}

const REPLACEMENTS: readonly Replacement[] = [
  { kernelName: tf.Conv2DBackpropFilter, kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc },
  { kernelName: tf.Conv2DBackpropInput, kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc },
  { kernelName: tf.MaxPoolGrad, kernelFunc: maxPoolGrad as unknown as tf.KernelFunc },
  { kernelName: tf.AvgPoolGrad, kernelFunc: avgPoolGrad as unknown as tf.KernelFunc },
  { kernelName: tf.BatchMatMul, kernelFunc: batchMatMul as unknown as tf.KernelFunc },
  { kernelName: tf.Identity, kernelFunc: identity as unknown as tf.KernelFunc },
  { kernelName: tf.Cast, kernelFunc: cast as unknown as tf.KernelFunc },
  { kernelName: tf.Sum, kernelFunc: sum as unknown as tf.KernelFunc },
  { kernelName: tf.Mean, kernelFunc: mean as unknown as tf.KernelFunc },
  { kernelName: tf.Slice, kernelFunc: slice as unknown as tf.KernelFunc },
  { kernelName: tf.Tile, kernelFunc: tile as unknown as tf.KernelFunc },
  { kernelName: tf.Transpose, kernelFunc: transpose as unknown as tf.KernelFunc },
];

/** Names of the wasm kernels this module registers or replaces. */
export const WASM_TRAINING_KERNELS: readonly string[] = REPLACEMENTS.map((r) => r.kernelName);

/** Marks our kernel configs in tfjs's global registry, so a second module instance leaves them alone. */
const MARK = Symbol.for("tiny-portraits/wasm_train");

/**
 * Registers training kernels for the "wasm" backend (idempotent). Call after setWasmPaths and before or after
 * setBackend("wasm").
 */
export function registerWasmTrainingKernels(): void {
  for (const { kernelName, kernelFunc } of REPLACEMENTS) {
    const original = tf.getKernel(kernelName, "wasm");
    if (original !== undefined && MARK in original) continue; // already registered
    if (original !== undefined) {
      ORIGINAL_KERNELS.set(kernelName, original);
      tf.unregisterKernel(kernelName, "wasm");
    }
    const config: tf.KernelConfig & { [MARK]: true } = {
      kernelName,
      backendName: "wasm",
      kernelFunc,
      // keep the original's set-up (its cwrap bindings) for fallbacks, as the engine now only calls ours
      setupFunc: original?.setupFunc,
      disposeFunc: original?.disposeFunc,
      [MARK]: true,
    };
    tf.registerKernel(config);
  }
}
