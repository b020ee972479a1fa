// Custom tfjs-layers used by the face ResNet (face_resnet.ts), registered for (de)serialisation so that
// model.save / tf.loadLayersModel round-trip. Neither has weights.
//
//   FaceResnetInput  [b,H,W,3] project-normalised portrait → [b,S,S,3] what face-api's recognition net expects
//   ChannelZeroPad   [b,h,w,c] → [b,h,w,c+extra], the extra channels zero (the ResNet's "down" shortcuts)

import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";

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
 * (bilinear, one cropAndResize for the whole batch, exactly as lib/faces feeds face-api), then
 * applies face-api's own input normalisation: (pixel − meanRgb) / 255.
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

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs) as tf.Tensor4D;
      const b = x.shape[0];
      // Back to 0..255 pixels first: the crop's outside must be black pixels, as in lib/faces.
      const pixels = tf.add(tf.mul(x, tf.tensor1d(this.std.map((s) => s * 255))), tf.tensor1d(this.mean.map((m) => m * 255))) as tf.Tensor4D;
      const boxes = tf.tile(tf.tensor2d([this.box], [1, 4]), [b, 1]) as tf.Tensor2D;
      const ind = tf.range(0, b, 1, "int32") as tf.Tensor1D;
      const face = tf.image.cropAndResize(pixels, boxes, ind, [this.size, this.size], "bilinear", 0);
      return tf.div(tf.sub(face, tf.tensor1d(this.meanRgb)), 255);
    });
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
