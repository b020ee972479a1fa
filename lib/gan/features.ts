/**
 * Frozen face features for the "projected" discriminator (Projected GAN, Sauer et al. 2021): face-api's
 * age/gender net's feature extractor (TinyXception, 112×112 face crops) rebuilt from its weights with plain
 * tf ops, differentiable from the GAN's image to three feature maps, never trained.
 *
 *   image [b,108,84,3] in [-1, 1]
 *     → pixels 0..255 → the face square of lib/faces (alignedCrop, what ageGenderPredict feeds), bilinear
 *       to 112×112 as tf.image.cropAndResize does it (two fixed interpolation matrices: cropAndResize has
 *       no gradient in tfjs) → (pixel − face-api's mean RGB) / 255 (face-api's TinyXception.forwardInput)
 *     → conv_in 3×3/2 + relu                                        [b,56,56,32]
 *     → entry_flow/reduction_block_0                                [b,28,28,64]   scale "entry"
 *     → entry_flow/reduction_block_1 → middle_flow/main_block_0..1  [b,14,14,128]  scale "middle"
 *     → exit_flow/reduction_block → separable_conv + relu           [b,7,7,512]    scale "exit"
 *
 * The last map is exactly what face-api's `ageGender.faceFeatureExtractor` returns for the same crop
 * (tests/gan/gan_test.ts checks face-api's age/gender head on it against lib/faces ageGenderPredict).
 * Deliberately not the recognition ResNet: the GAN's metric (FDD) lives in that net's descriptor space,
 * and a discriminator on the same features could lower the metric without better faces.
 *
 * Pure tf (no file access): the weights come in as a tensor map; lib/gan/train.ts `loadFaceFeatures`
 * reads face-api's age/gender weights (lib/faces readWeightMap) and builds one per run.
 */
import * as tf from "@tensorflow/tfjs-core";
import { IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import { bilinearAxisMatrix, resampleRegion } from "../util/bilinear.ts";

/** Side of the face square the net sees (face-api's TinyXception input). */
export const FACE_FEATURE_INPUT = 112;
/** face-api's mean RGB (0..255) for TinyXception, subtracted before dividing by 255. */
export const FACE_FEATURE_MEAN_RGB: readonly [number, number, number] = [122.782, 117.001, 104.298];

/** The feature maps handed to the projected discriminator's heads, in order. */
export const FACE_FEATURE_SCALES = [
  { name: "entry", size: 28, channels: 64 },
  { name: "middle", size: 14, channels: 128 },
  { name: "exit", size: 7, channels: 512 },
] as const;

/** A square of the portrait in pixels (lib/faces SquareCrop). */
export interface FaceSquare {
  x: number;
  y: number;
  side: number;
}

/** The whole 108×84 portrait centred in a 108-pixel square (the sides outside it read as black). */
export const PORTRAIT_SQUARE: FaceSquare = { x: (IMAGE_WIDTH - IMAGE_HEIGHT) / 2, y: 0, side: IMAGE_HEIGHT };

/**
 * The [out, in] matrix of tf.image.cropAndResize's bilinear sampling along one axis, for the square
 * `start`..`start + side` of an axis of `inSize` pixels resized to `out` (lib/faces samples pixel centres:
 * position i reads start + (i + 0.5)·side/out − 0.5). Outside the image the row is zero (black, as
 * cropAndResize's extrapolation value 0). Returns the matrix restricted to the input range it reads.
 */
export function cropMatrix(inSize: number, start: number, side: number, out: number): { m: Float32Array; from: number; count: number } {
  return bilinearAxisMatrix(inSize, start + 0.5 * side / out - 0.5, side / out, out);
}

type Params = Record<string, tf.Tensor>;

/** The weight names the extractor reads (face-api's, without the fc/ head). */
function paramNames(): string[] {
  const sep = (p: string) => [`${p}/depthwise_filter`, `${p}/pointwise_filter`, `${p}/bias`];
  const red = (p: string) => [...sep(`${p}/separable_conv0`), ...sep(`${p}/separable_conv1`), `${p}/expansion_conv/filters`, `${p}/expansion_conv/bias`];
  return [
    "entry_flow/conv_in/filters",
    "entry_flow/conv_in/bias",
    ...red("entry_flow/reduction_block_0"),
    ...red("entry_flow/reduction_block_1"),
    ...[0, 1].flatMap((i) => ["separable_conv0", "separable_conv1", "separable_conv2"].flatMap((c) => sep(`middle_flow/main_block_${i}/${c}`))),
    ...red("exit_flow/reduction_block"),
    ...sep("exit_flow/separable_conv"),
  ];
}

/**
 * face-api's age/gender feature extractor as fixed tensors plus the crop: `forward` maps GAN images to the
 * three FACE_FEATURE_SCALES maps, differentiably in the image. Owns its tensors (dispose() frees them).
 */
export class FaceFeatures {
  private readonly p: Params;
  private readonly views: { ry: tf.Tensor2D; rx: tf.Tensor2D; rows: [number, number]; cols: [number, number] }[];
  private readonly offset: tf.Tensor1D;

  /**
   * Takes the tensors it uses out of `weights` (face-api's age/gender weight map; the caller disposes
   * the rest) and the squares of a 108×84 portrait the net looks at (views: e.g. the face square, and the
   * whole portrait letterboxed in a 108-pixel square, PORTRAIT_SQUARE).
   */
  constructor(weights: tf.NamedTensorMap, squares: readonly FaceSquare[]) {
    if (squares.length === 0) throw new Error("FaceFeatures: expected at least one square to look at");
    const p: Params = {};
    for (const name of paramNames()) {
      const t = weights[name];
      if (!t) throw new Error(`FaceFeatures: the age/gender weights lack '${name}'`);
      p[name] = t;
    }
    this.p = p;
    this.views = squares.map((crop) => {
      const y = cropMatrix(IMAGE_HEIGHT, crop.y, crop.side, FACE_FEATURE_INPUT);
      const x = cropMatrix(IMAGE_WIDTH, crop.x, crop.side, FACE_FEATURE_INPUT);
      return {
        ry: tf.tensor2d(y.m, [FACE_FEATURE_INPUT, y.count]),
        rx: tf.tensor2d(x.m, [FACE_FEATURE_INPUT, x.count]),
        rows: [y.from, y.count] as [number, number],
        cols: [x.from, x.count] as [number, number],
      };
    });
    this.offset = tf.tensor1d(FACE_FEATURE_MEAN_RGB.map((m) => m / 255));
  }

  /** Number of views (squares); forward returns FACE_FEATURE_SCALES.length maps per view. */
  get viewCount(): number {
    return this.views.length;
  }

  /** The tensors this object holds (the frozen weights and the crop matrices). */
  tensors(): tf.Tensor[] {
    return [...Object.values(this.p), ...this.views.flatMap((v) => [v.ry, v.rx]), this.offset];
  }

  /** Number of frozen weights. */
  countParams(): number {
    return Object.values(this.p).reduce((s, t) => s + t.size, 0);
  }

  /**
   * [b,108,84,3] GAN images in [-1, 1] → face-api's normalised [b,112,112,3] face square:
   * (cropAndResize(pixels) − mean RGB) / 255, pixels = (x + 1)·127.5.
   */
  faceInput(x: tf.Tensor4D, view = 0): tf.Tensor4D {
    return tf.tidy(() => {
      const b = x.shape[0];
      const { ry, rx, rows: [y0, h], cols: [x0, w] } = this.views[view];
      // Only the rows and columns the square reads; (x+1)·127.5/255 = (x+1)/2 is the pixel over 255.
      const px = tf.mul(tf.add(tf.slice(x, [0, y0, x0, 0], [b, h, w, 3]), 1), 0.5) as tf.Tensor4D;
      return tf.sub(resampleRegion(px, ry, rx), this.offset) as tf.Tensor4D;
    });
  }

  /**
   * The FACE_FEATURE_SCALES maps of GAN images ([-1, 1]) for each view in turn (view 0's three maps, then view
   * 1's, ...); one pass of the net over the views stacked along the batch; differentiable in `x`.
   */
  forward(x: tf.Tensor4D): tf.Tensor4D[] {
    return tf.tidy(() => {
      const v = this.views.length;
      const input = v === 1 ? this.faceInput(x) : tf.concat(this.views.map((_, i) => this.faceInput(x, i)), 0);
      const maps = this.fromFaceInput(input);
      return v === 1 ? maps : this.views.flatMap((_, i) => maps.map((m) => tf.slice(m, [i * x.shape[0], 0, 0, 0], [x.shape[0], -1, -1, -1])));
    });
  }

  /** The three maps from face-api's normalised 112×112 input (what TinyXception.forwardInput computes). */
  fromFaceInput(input: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] {
    const p = this.p;
    // face-api's convLayer (conv + bias), depthwiseSeparableConv (+ bias), reductionBlock and mainBlock.
    const conv = (x: tf.Tensor4D, name: string, stride: number) => tf.add(tf.conv2d(x, p[`${name}/filters`] as tf.Tensor4D, stride, "same"), p[`${name}/bias`]) as tf.Tensor4D;
    const sep = (x: tf.Tensor4D, name: string) =>
      tf.add(tf.separableConv2d(x, p[`${name}/depthwise_filter`] as tf.Tensor4D, p[`${name}/pointwise_filter`] as tf.Tensor4D, 1, "same"), p[`${name}/bias`]) as tf.Tensor4D;
    const reduction = (x: tf.Tensor4D, name: string, activateInput: boolean) => {
      let r = sep(activateInput ? tf.relu(x) : x, `${name}/separable_conv0`);
      r = sep(tf.relu(r), `${name}/separable_conv1`);
      r = tf.maxPool(r, 3, 2, "same");
      return tf.add(r, conv(x, `${name}/expansion_conv`, 2)) as tf.Tensor4D;
    };
    const main = (x: tf.Tensor4D, name: string) => {
      let r = sep(tf.relu(x), `${name}/separable_conv0`);
      r = sep(tf.relu(r), `${name}/separable_conv1`);
      r = sep(tf.relu(r), `${name}/separable_conv2`);
      return tf.add(r, x) as tf.Tensor4D;
    };
    return tf.tidy(() => {
      let h = tf.relu(conv(input, "entry_flow/conv_in", 2)); // [b,56,56,32]
      const entry = reduction(h, "entry_flow/reduction_block_0", false); // [b,28,28,64]
      h = reduction(entry, "entry_flow/reduction_block_1", true); // [b,14,14,128]
      h = main(h, "middle_flow/main_block_0");
      const middle = main(h, "middle_flow/main_block_1"); // [b,14,14,128]
      h = reduction(middle, "exit_flow/reduction_block", true); // [b,7,7,256]
      const exit = tf.relu(sep(h, "exit_flow/separable_conv")); // [b,7,7,512]
      return [entry, middle, exit] as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    });
  }

  dispose(): void {
    tf.dispose(this.tensors());
  }
}
