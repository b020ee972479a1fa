// Batched face-api nets on rows of 108x84 portraits, with no detection: each portrait is cut to a
// fixed square (the face region where Tiny Portraits put the face, see _reframe.ts) and resized to
// the net's input by one cropAndResize over the whole batch. face-api's own NetInput would pad and
// resize each image separately; `BatchInput` hands the nets the ready batch instead (their
// `forwardInput` only calls `input.toBatchTensor(size)`, inside their own tidy).

import * as tf from "@tensorflow/tfjs-core";
import { type AnyTensor, type FaceApi, faceApi, net } from "./_load.ts";
import {
  alignedCrop,
  faceBoxCrop,
  PORTRAIT_FRAMING,
  PORTRAIT_HEIGHT,
  PORTRAIT_WIDTH,
  portraitCrop,
  type PortraitFraming,
  type SquareCrop,
} from "./_reframe.ts";

const ROW_BYTES = PORTRAIT_HEIGHT * PORTRAIT_WIDTH * 3;

/**
 * Which square of the portrait a net sees:
 * - "aligned" (default): face-api's dlib-style crop from eyes and mouth, what its recognition net is
 *   fed after detection + landmarks (a ~50 px square from (17, 35) in a Tiny Portrait);
 * - "face": the SSD detection box padded to a square (what face-api feeds without landmarks);
 * - "portrait": the whole 108x84 portrait padded to 108x108 with black, hair and shoulders included.
 * Measured on 23 faces of face-api's demo photos re-framed to 108x84: "aligned" descriptors lie a
 * median 0.31 from face-api's own full-resolution descriptor of the same face (different people:
 * 0.75), "face" 0.51, "portrait" 0.77 (worse than a different person). Age/gender calls 22 of 22
 * young women female with "aligned" or "face", 10 of 22 with "portrait".
 */
export type CropMode = "aligned" | "face" | "portrait";
export const CROP_MODES: readonly CropMode[] = ["aligned", "face", "portrait"];

export interface BatchRunOptions {
  /** Portraits per forward pass (default 32). */
  batchSize?: number;
  /** Region of the portrait fed to the net (default "aligned"). */
  crop?: CropMode;
  /** Where the face sits in a portrait (default PORTRAIT_FRAMING, measured on procedural portraits). */
  framing?: PortraitFraming;
  /** Called after each batch. */
  onProgress?: (done: number, total: number) => void;
}

function cropFor(mode: CropMode, framing: PortraitFraming): SquareCrop {
  switch (mode) {
    case "aligned":
      return alignedCrop(framing);
    case "face":
      return faceBoxCrop(framing, "ssd");
    case "portrait":
      return portraitCrop();
  }
}

/** Subclass of face-api's NetInput whose batch tensor is made from raw portrait bytes in one op. */
function batchInputClass(api: FaceApi) {
  return class BatchInput extends api.NetInput {
    constructor(private readonly bytes: Uint8Array, private readonly count: number, private readonly crop: SquareCrop) {
      super([], true);
    }
    override get batchSize(): number {
      return this.count;
    }
    override toBatchTensor(inputSize: number): AnyTensor {
      const { bytes, count, crop } = this;
      return tf.tidy(() => {
        const x = tf.cast(tf.tensor4d(bytes, [count, PORTRAIT_HEIGHT, PORTRAIT_WIDTH, 3], "int32"), "float32");
        // cropAndResize samples pixel centres at y1*(H-1) .. y2*(H-1); map the square's edges to centres.
        const y1 = (crop.y + 0.5 * crop.side / inputSize - 0.5) / (PORTRAIT_HEIGHT - 1);
        const y2 = (crop.y + crop.side - 0.5 * crop.side / inputSize - 0.5) / (PORTRAIT_HEIGHT - 1);
        const x1 = (crop.x + 0.5 * crop.side / inputSize - 0.5) / (PORTRAIT_WIDTH - 1);
        const x2 = (crop.x + crop.side - 0.5 * crop.side / inputSize - 0.5) / (PORTRAIT_WIDTH - 1);
        const boxes = tf.tensor2d(Array.from({ length: count }, () => [y1, x1, y2, x2]), [count, 4]);
        const ind = tf.range(0, count, 1, "int32") as tf.Tensor1D;
        return tf.image.cropAndResize(x, boxes, ind, [inputSize, inputSize], "bilinear", 0);
      });
    }
  };
}

/** Throws a one-line error when `pixels` does not hold whole portraits or a row is outside them. */
export function checkRows(fn: string, pixels: Uint8Array, rows: ArrayLike<number>): void {
  const n = Math.floor(pixels.length / ROW_BYTES);
  if (pixels.length % ROW_BYTES !== 0) {
    throw new Error(`${fn}: expected pixels to hold whole 108x84x3 portraits (${ROW_BYTES} bytes each), got ${pixels.length} bytes`);
  }
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!Number.isInteger(r) || r < 0 || r >= n) throw new Error(`${fn}: row ${r} (at position ${i}) is outside 0..${n - 1}`);
  }
}

function checkOptions(fn: string, opts: BatchRunOptions): void {
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize > 0)) {
    throw new Error(`${fn}: expected batchSize to be a positive integer, got ${opts.batchSize}`);
  }
  if (opts.crop !== undefined && !CROP_MODES.includes(opts.crop)) {
    throw new Error(`${fn}: expected crop to be one of ${CROP_MODES.join(", ")}, got '${opts.crop}'`);
  }
}

/** Runs `step` on batches of rows; `step` returns the per-row output values (length batch*width). */
async function runBatches(
  pixels: Uint8Array,
  rows: ArrayLike<number>,
  batchSize: number,
  step: (bytes: Uint8Array, count: number) => Promise<Float32Array[]>,
  outs: Float32Array[],
  onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const total = rows.length;
  const buf = new Uint8Array(Math.min(batchSize, Math.max(total, 1)) * ROW_BYTES);
  for (let start = 0; start < total; start += batchSize) {
    const count = Math.min(batchSize, total - start);
    for (let i = 0; i < count; i++) {
      const r = rows[start + i];
      buf.set(pixels.subarray(r * ROW_BYTES, (r + 1) * ROW_BYTES), i * ROW_BYTES);
    }
    const results = await step(buf.subarray(0, count * ROW_BYTES), count);
    results.forEach((res, k) => outs[k].set(res, start * (res.length / count)));
    onProgress?.(start + count, total);
  }
}

/**
 * 128-D face-recognition descriptors (face-api's ResNet-34-like net, dlib's weights) for rows of
 * 108x84 portraits, without detection. Returns rows.length*128 floats, row by row. Euclidean
 * distance < ~0.6 means "same person" in face-api's convention.
 */
export async function faceDescriptors(pixels: Uint8Array, rows: ArrayLike<number>, opts: BatchRunOptions = {}): Promise<Float32Array> {
  checkOptions("faceDescriptors", opts);
  checkRows("faceDescriptors", pixels, rows);
  const api = await faceApi();
  const recognition = await net("recognition");
  const BatchInput = batchInputClass(api);
  const crop = cropFor(opts.crop ?? "aligned", opts.framing ?? PORTRAIT_FRAMING);
  const out = new Float32Array(rows.length * 128);
  await runBatches(
    pixels,
    rows,
    opts.batchSize ?? 32,
    async (bytes, count) => {
      const t = recognition.forwardInput(new BatchInput(bytes, count, crop)) as unknown as tf.Tensor;
      try {
        return [await t.data() as Float32Array];
      } finally {
        t.dispose();
      }
    },
    [out],
    opts.onProgress,
  );
  return out;
}

/**
 * face-api's age/gender net (TinyXception) on rows of 108x84 portraits, without detection:
 * probability of "male" and the age estimate in years, per row.
 */
export async function ageGenderPredict(
  pixels: Uint8Array,
  rows: ArrayLike<number>,
  opts: BatchRunOptions = {},
): Promise<{ male: Float32Array; age: Float32Array }> {
  checkOptions("ageGenderPredict", opts);
  checkRows("ageGenderPredict", pixels, rows);
  const api = await faceApi();
  const ageGender = await net("ageGender");
  const BatchInput = batchInputClass(api);
  const crop = cropFor(opts.crop ?? "aligned", opts.framing ?? PORTRAIT_FRAMING);
  const male = new Float32Array(rows.length), age = new Float32Array(rows.length);
  await runBatches(
    pixels,
    rows,
    opts.batchSize ?? 32,
    async (bytes, count) => {
      const { maleT, ageT } = tf.tidy(() => {
        const features = ageGender.faceFeatureExtractor.forwardInput(new BatchInput(bytes, count, crop));
        const o = ageGender.forwardInput(features) as unknown as { age: tf.Tensor1D; gender: tf.Tensor2D };
        // face-api's gender softmax is [male, female].
        return { maleT: tf.reshape(tf.slice(o.gender, [0, 0], [count, 1]), [count]), ageT: o.age };
      });
      try {
        return [await maleT.data() as Float32Array, await ageT.data() as Float32Array];
      } finally {
        maleT.dispose();
        ageT.dispose();
      }
    },
    [male, age],
    opts.onProgress,
  );
  return { male, age };
}
