/**
 * tf.image.transform's kernel ("Transform") for the cpu backend and the onednn backend built on it. tfjs 4.22's cpu
 * kernel returns from inside its batch loop (every image after the first comes back as the fill value) and
 * recomputes each pixel's source position once per channel (~1.2 s for 32 portraits here). This one follows
 * TensorFlow's kernel (tensorflow/core/kernels/image/image_ops.h) for every image: a projective map per image
 * [a0 a1 a2 b0 b1 b2 c0 c1] from output (x, y) to input ((a0·x + a1·y + a2) / k, (b0·x + b1·y + b2) / k),
 * k = c0·x + c1·y + 1; fill modes constant / reflect / wrap / nearest; nearest or bilinear sampling, where a
 * neighbour outside the image reads the fill value. Training augmentation (lib/data/augment.ts) runs on it.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { MathBackendCPU } from "@tensorflow/tfjs-backend-cpu";

type FillMode = "constant" | "reflect" | "wrap" | "nearest";

/** Maps a source coordinate into 0..len−1 by the fill mode (constant leaves it, to be read as the fill value). */
function mapCoord(c: number, len: number, mode: FillMode): number {
  switch (mode) {
    case "reflect": {
      // [abcd] → [dcba|abcd|dcba]
      if (len <= 1) return 0;
      const sz2 = 2 * len;
      if (c < 0) {
        if (c < sz2) c = sz2 * Math.trunc(-c / sz2) + c;
        c = c < -len ? c + sz2 : -c - 1;
      } else if (c > len - 1) {
        c -= sz2 * Math.trunc(c / sz2);
        if (c >= len) c = sz2 - c - 1;
      }
      return Math.min(Math.max(c, 0), len - 1);
    }
    case "wrap": {
      // [abcd] → [abcd|abcd|abcd]
      if (len <= 1) return 0;
      const sz = len - 1;
      if (c < 0) c += len * (Math.trunc(-c / sz) + 1);
      else if (c > len - 1) c -= len * Math.trunc(c / sz);
      return Math.min(Math.max(c, 0), len - 1);
    }
    case "nearest":
      return Math.min(Math.max(c, 0), len - 1);
    default:
      return c;
  }
}

/**
 * The transform of float32 NHWC `image` by per-image (or one shared) 8-parameter maps into `out`
 * ([batch, outH, outW, channels]).
 */
function transformPixels(
  image: Float32Array,
  shape: readonly [number, number, number, number],
  transforms: Float32Array,
  opts: { interpolation: "nearest" | "bilinear"; fillMode: FillMode; fillValue: number; outH: number; outW: number },
  out: Float32Array,
): void {
  const [batch, H, W, C] = shape;
  const { outH, outW, fillValue, fillMode } = opts;
  const bilinear = opts.interpolation === "bilinear";
  if (fillMode === "nearest" && bilinear && C === 3 && transforms.every((v, i) => i % 8 < 6 || v === 0)) {
    affineEdgeBilinear3(image, shape, transforms, out, outH, outW);
    return;
  }
  const shared = transforms.length === 8;
  const rowStride = W * C, imageStride = H * rowStride;
  // The fill value where a position lies outside the image, else the pixel's channel value.
  const read = (base: number, y: number, x: number, ch: number) => (y >= 0 && y < H && x >= 0 && x < W ? image[base + y * rowStride + x * C + ch] : fillValue);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const t = shared ? 0 : b * 8;
    const [a0, a1, a2, b0, b1, b2, c0, c1] = transforms.subarray(t, t + 8);
    const base = b * imageStride;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++, o += C) {
        const k = c0 * x + c1 * y + 1;
        if (k === 0) {
          out.fill(fillValue, o, o + C);
          continue;
        }
        // the source position once per pixel (tfjs' kernel recomputes it per channel)
        const inX = mapCoord((a0 * x + a1 * y + a2) / k, W, fillMode), inY = mapCoord((b0 * x + b1 * y + b2) / k, H, fillMode);
        if (!bilinear) {
          const rx = Math.round(inX), ry = Math.round(inY);
          for (let ch = 0; ch < C; ch++) out[o + ch] = read(base, ry, rx, ch);
          continue;
        }
        const x0 = Math.floor(inX), y0 = Math.floor(inY), fx = inX - x0, fy = inY - y0;
        for (let ch = 0; ch < C; ch++) {
          const top = (1 - fx) * read(base, y0, x0, ch) + fx * read(base, y0, x0 + 1, ch);
          const bottom = (1 - fx) * read(base, y0 + 1, x0, ch) + fx * read(base, y0 + 1, x0 + 1, ch);
          out[o + ch] = (1 - fy) * top + fy * bottom;
        }
      }
    }
  }
}

/**
 * The common case of augmentation, apart: affine maps (no projective terms), edges replicated ("nearest" fill),
 * bilinear, 3 channels. Clamped coordinates are never negative, so truncation is the floor, and the right and lower
 * neighbours are clamped to the image (their weight is 0 exactly where the generic path reads the fill value).
 */
function affineEdgeBilinear3(image: Float32Array, shape: readonly [number, number, number, number], transforms: Float32Array, out: Float32Array, outH: number, outW: number): void {
  const [batch, H, W] = shape;
  const rowStride = W * 3, imageStride = H * rowStride, maxX = W - 1, maxY = H - 1;
  const shared = transforms.length === 8;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const t = shared ? 0 : b * 8;
    const a0 = transforms[t], a1 = transforms[t + 1], a2 = transforms[t + 2], b0 = transforms[t + 3], b1 = transforms[t + 4], b2 = transforms[t + 5];
    const base = b * imageStride;
    for (let y = 0; y < outH; y++) {
      let sx = a1 * y + a2, sy = b1 * y + b2;
      for (let x = 0; x < outW; x++, o += 3, sx += a0, sy += b0) {
        const inX = sx < 0 ? 0 : sx > maxX ? maxX : sx, inY = sy < 0 ? 0 : sy > maxY ? maxY : sy;
        const x0 = inX | 0, y0 = inY | 0, fx = inX - x0, fy = inY - y0;
        const dx = x0 < maxX ? 3 : 0, dy = y0 < maxY ? rowStride : 0;
        const p = base + y0 * rowStride + x0 * 3, q = p + dy;
        const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
        out[o] = w00 * image[p] + w01 * image[p + dx] + w10 * image[q] + w11 * image[q + dx];
        out[o + 1] = w00 * image[p + 1] + w01 * image[p + dx + 1] + w10 * image[q + 1] + w11 * image[q + dx + 1];
        out[o + 2] = w00 * image[p + 2] + w01 * image[p + dx + 2] + w10 * image[q + 2] + w11 * image[q + dx + 2];
      }
    }
  }
}

/** The "Transform" kernel function for MathBackendCPU and backends built on it (onednn). */
export const transformKernel: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const { image, transforms } = inputs as { image: tf.TensorInfo; transforms: tf.TensorInfo };
  const { interpolation, fillMode, fillValue, outputShape } = attrs as unknown as {
    interpolation: "nearest" | "bilinear";
    fillMode: FillMode;
    fillValue: number;
    outputShape?: [number, number];
  };
  if (interpolation !== "nearest" && interpolation !== "bilinear") throw new Error(`Transform: expected interpolation 'nearest' or 'bilinear', got '${interpolation}'`);
  const cpu = backend as MathBackendCPU;
  const shape = image.shape as [number, number, number, number];
  const [outH, outW] = outputShape ?? [shape[1], shape[2]];
  const out = new Float32Array(shape[0] * outH * outW * shape[3]);
  const px = cpu.data.get(image.dataId).values as Float32Array;
  // tf.image.transform has made both inputs float32
  const maps = cpu.data.get(transforms.dataId).values as Float32Array;
  transformPixels(px, shape, maps, { interpolation, fillMode, fillValue, outH, outW }, out);
  return cpu.makeTensorInfo([shape[0], outH, outW, shape[3]], "float32", out);
};

/**
 * Puts transformKernel in place of the cpu backend's "Transform" (so onednn, which copies the cpu kernels when it
 * registers, gets it too). Idempotent.
 */
export function registerTransformKernel(): void {
  if (tf.getKernel("Transform", "cpu")?.kernelFunc === transformKernel) return;
  if (tf.getKernel("Transform", "cpu")) tf.unregisterKernel("Transform", "cpu");
  tf.registerKernel({ kernelName: "Transform", backendName: "cpu", kernelFunc: transformKernel });
}
