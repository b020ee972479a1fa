/**
 * The cpu backend's "ResizeNearestNeighborGrad" (the gradient of tf.image.resizeNearestNeighbor and of
 * tf.layers.upSampling2d's nearest mode) for batches: tfjs 4.22's kernel reads dy at the image's batch offset in the
 * *input's* strides, so every image after the first sums the wrong part of dy. This one runs tfjs' own kernel on one
 * image at a time, where the offsets agree, and stacks the results. The onednn backend copies the cpu kernels when it
 * registers, so it gets this one too (no oneDNN kernel replaces it: oneDNN 2.6.3's resampling primitive crashed on
 * NHWC tensors of the GAN's sizes, e.g. a batch of 32 at 14×11×32, also called from C).
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

const NAME = "ResizeNearestNeighborGrad";
let original: tf.KernelFunc | null = null;

const batchedKernel: tf.KernelFunc = (args) => {
  const { images, dy } = args.inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
  const cpu = args.backend as MathBackendCPU;
  const n = images.shape[0];
  if (n <= 1) return original!(args);
  const [, h, w, c] = images.shape;
  const [, oh, ow] = dy.shape;
  const dyv = cpu.data.get(dy.dataId).values as Float32Array;
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    const one = cpu.makeTensorInfo([1, h, w, c], "float32", new Float32Array(0)); // the kernel reads only its shape
    const dyOne = cpu.makeTensorInfo([1, oh, ow, c], "float32", dyv.slice(b * oh * ow * c, (b + 1) * oh * ow * c));
    const g = original!({ ...args, inputs: { images: one, dy: dyOne } }) as tf.TensorInfo;
    out.set(cpu.data.get(g.dataId).values as Float32Array, b * h * w * c);
    for (const t of [one, dyOne, g]) cpu.disposeData(t.dataId);
  }
  return cpu.makeTensorInfo(images.shape.slice(), "float32", out);
};

/** Puts batchedKernel in place of the cpu backend's ResizeNearestNeighborGrad (onednn copies it). Idempotent. */
export function registerResizeNearestGradKernel(): void {
  const cfg = tf.getKernel(NAME, "cpu");
  if (cfg === undefined || cfg.kernelFunc === batchedKernel) return;
  original = cfg.kernelFunc;
  tf.unregisterKernel(NAME, "cpu");
  tf.registerKernel({ ...cfg, kernelFunc: batchedKernel });
}
