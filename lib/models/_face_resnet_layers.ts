// Custom tfjs-layers used by the face ResNet (face_resnet.ts), registered for (de)serialisation so that
// model.save / tf.loadLayersModel round-trip. Neither has weights.
//
//   FaceResnetInput  [b,H,W,3] project-normalised portrait → [b,S,S,3] what face-api's recognition net expects
//   ChannelZeroPad   [b,h,w,c] → [b,h,w,c+extra], the extra channels zero (the ResNet's "down" shortcuts)

import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { bilinearAxisMatrix, coverage, resampleRegion } from "../util/bilinear.ts";

type AxisSampling = ReturnType<typeof bilinearAxisMatrix>;

type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;
type Shape = tfl.Shape;

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

function oneShape(shape: Shape | Shape[]): Shape {
  return Array.isArray(shape[0]) ? (shape as Shape[])[0] : (shape as Shape);
}

export interface FaceResnetInputArgs extends LayerArgs {
  /** Per-channel mean / std (0..1 scale) that the incoming batch was normalised with. */
  mean: number[];
  std: number[];
  /**
   * Region of the input image that becomes the net's square input, as tf.image.cropAndResize boxes
   * [y1, x1, y2, x2] (pixel-centre coordinates / (size - 1)); outside the image counts as black.
   */
  box: number[];
  /** Side of the net's square input (150). */
  size: number;
  /** face-api's mean RGB on the 0..255 scale, subtracted before dividing by 255. */
  meanRgb: number[];
}

/**
 * Undoes the project's normalisation, cuts the face square out of the portrait and resizes it
 * (bilinear, tf.image.cropAndResize as lib/faces feeds face-api, or on onednn the same sampling as two
 * matrix products: lib/util/bilinear.ts), then applies face-api's own input normalisation:
 * (pixel − meanRgb) / 255.
 *   [b,H,W,3] (x − mean)/std  →  [b,size,size,3] (pixel − meanRgb)/255
 * Fixed: no weights, nothing to train, no gradient needed (it sits before every weight).
 */
export class FaceResnetInput extends tfl.layers.Layer {
  static className = "TpFaceResnetInput";
  readonly mean: number[];
  readonly std: number[];
  readonly box: number[];
  readonly size: number;
  readonly meanRgb: number[];
  private readonly samplings = new Map<string, { ry: AxisSampling; rx: AxisSampling; offset: Float32Array; scale: Float32Array }>();

  constructor(args: FaceResnetInputArgs) {
    super(args);
    for (const [k, v, n] of [["mean", args.mean, 3], ["std", args.std, 3], ["box", args.box, 4], ["meanRgb", args.meanRgb, 3]] as const) {
      if (!Array.isArray(v) || v.length !== n || !v.every(Number.isFinite)) {
        throw new Error(`FaceResnetInput: expected ${k} to be ${n} finite numbers, got ${JSON.stringify(v)}`);
      }
    }
    if (!(Number.isInteger(args.size) && args.size > 0)) throw new Error(`FaceResnetInput: expected size to be a positive integer, got ${args.size}`);
    this.mean = [...args.mean];
    this.std = [...args.std];
    this.box = [...args.box];
    this.size = args.size;
    this.meanRgb = [...args.meanRgb];
    this.trainable = false;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    return [s[0], this.size, this.size, 3];
  }

  /** The sampling matrices, the constant part of the output and the per-pixel scales for an H × W input (built once per size). */
  private sampling(h: number, w: number) {
    const key = `${h}x${w}`;
    let s = this.samplings.get(key);
    if (!s) {
      const S = this.size, [y1, x1, y2, x2] = this.box;
      const axis = (n: number, lo: number, hi: number) => bilinearAxisMatrix(n, S > 1 ? lo * (n - 1) : 0.5 * (lo + hi) * (n - 1), S > 1 ? (hi - lo) * (n - 1) / (S - 1) : 0, S);
      const ry = axis(h, y1, y2), rx = axis(w, x1, x2);
      // Where the square reads the image (coverage 1) the normalisation's mean comes back as mean·255 pixels;
      // outside it the pixel is black (0); then face-api's (pixel − meanRgb) / 255.
      const cy = coverage(ry), cx = coverage(rx);
      const offset = new Float32Array(S * S * 3);
      for (let i = 0; i < S; i++) {
        for (let j = 0; j < S; j++) for (let c = 0; c < 3; c++) offset[(i * S + j) * 3 + c] = cy[i] * cx[j] * this.mean[c] - this.meanRgb[c] / 255;
      }
      // the normalisation's std per channel, for every output pixel
      const scale = Float32Array.from({ length: S * S * 3 }, (_, i) => this.std[i % 3]);
      s = { ry, rx, offset, scale };
      this.samplings.set(key, s);
    }
    return s;
  }

  /**
   * How the crop runs: two matrix products on the onednn backend (tfjs' cropAndResize is the cpu backend's
   * JavaScript there; measured 2.3× faster on a batch of 32), tf.image.cropAndResize elsewhere (wasm's own
   * kernel is 3.8× faster than its matrix products of this shape). Tests force either with true / false.
   */
  static matmulCrop: boolean | null = null;

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs) as tf.Tensor4D;
      return (FaceResnetInput.matmulCrop ?? tf.getBackend() === "onednn") ? this.cropByMatmul(x) : this.cropAndResize(x);
    });
  }

  /** std · (Ry · x · Rxᵀ) + offset: the crop is linear in the pixels, so it runs on the normalised input. */
  private cropByMatmul(x: tf.Tensor4D): tf.Tensor {
    const [b, h, w] = x.shape, S = this.size;
    const { ry, rx, offset, scale } = this.sampling(h, w);
    const part = tf.slice(x, [0, ry.from, rx.from, 0], [b, ry.count, rx.count, 3]);
    const face = resampleRegion(part, tf.tensor2d(ry.m, [S, ry.count]), tf.tensor2d(rx.m, [S, rx.count]));
    // per image, one [S·S·3] row times the channel scales tiled and plus the offset: broadcasting a 3-vector over
    // the innermost axis instead ran 5× slower on oneDNN (3.6 ms for a batch of 32)
    const flat = tf.reshape(face, [b, S * S * 3]);
    return tf.reshape(tf.add(tf.mul(flat, tf.tensor1d(scale)), tf.tensor1d(offset)), [b, S, S, 3]);
  }

  /** The same with tf.image.cropAndResize on the pixels (black outside the portrait), then face-api's normalisation. */
  private cropAndResize(x: tf.Tensor4D): tf.Tensor {
    const b = x.shape[0];
    const pixels = tf.add(tf.mul(x, tf.tensor1d(this.std.map((s) => s * 255))), tf.tensor1d(this.mean.map((m) => m * 255))) as tf.Tensor4D;
    const boxes = tf.tile(tf.tensor2d([this.box], [1, 4]), [b, 1]) as tf.Tensor2D;
    const face = tf.image.cropAndResize(pixels, boxes, tf.range(0, b, 1, "int32") as tf.Tensor1D, [this.size, this.size], "bilinear", 0);
    return tf.div(tf.sub(face, tf.tensor1d(this.meanRgb)), 255);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), mean: this.mean, std: this.std, box: this.box, size: this.size, meanRgb: this.meanRgb };
  }
}

export interface ChannelZeroPadArgs extends LayerArgs {
  /** Zero channels appended after the existing ones. */
  extra: number;
}

/** Appends `extra` zero channels: [b,h,w,c] → [b,h,w,c+extra] (face-api's residualDown shortcut). */
export class ChannelZeroPad extends tfl.layers.Layer {
  static className = "TpChannelZeroPad";
  readonly extra: number;

  constructor(args: ChannelZeroPadArgs) {
    super(args);
    if (!(Number.isInteger(args.extra) && args.extra >= 0)) {
      throw new Error(`ChannelZeroPad: expected extra to be a non-negative integer, got ${args.extra}`);
    }
    this.extra = args.extra;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape {
    const s = oneShape(inputShape);
    const c = s[s.length - 1];
    return [...s.slice(0, -1), c == null ? null : c + this.extra];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      if (this.extra === 0) return tf.clone(x);
      const pad = x.shape.map((): [number, number] => [0, 0]);
      pad[pad.length - 1] = [0, this.extra];
      return tf.pad(x, pad);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), extra: this.extra };
  }
}

/** Registers the face ResNet's custom layers for tfjs deserialisation (registerCustomLayers in mod.ts calls it). */
export function registerFaceResnetLayers(): void {
  tf.serialization.registerClass(FaceResnetInput);
  tf.serialization.registerClass(ChannelZeroPad);
}
