// Face detection on uint8 RGB images with face-api's TinyFaceDetector or SSD MobileNet v1.
//
// A portrait-sized image whose face fills most of the frame is the case detectors miss most: they were
// trained on faces with context around them. So the image is first padded on every side with its own
// mean colour (not mirrored: a mirror would plant half-faces at the edges), large images are
// box-filtered down to about the detector's input size, and the boxes found are mapped back to the
// pixels of the image given.

import * as tf from "@tensorflow/tfjs-core";
import { type AnyTensor, faceApi, net } from "./_load.ts";

/** A face found in an image, in that image's pixels (x, y = top-left corner). */
export interface FaceBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Detector confidence, 0..1. */
  score: number;
}

export interface DetectOptions {
  /** "tiny" (TinyFaceDetector, fast) or "ssd" (SSD MobileNet v1, finds more small and turned faces). Default "ssd". */
  detector?: "tiny" | "ssd";
  /** Lowest score kept (default 0.5). */
  minScore?: number;
  /**
   * Padding added on every side, as a fraction of the longer image side. Default: 0.5 for
   * thumbnails (longer side up to 256 px); for bigger images none first, then 0.5 only when
   * nothing was found (padding a group photo shrinks its faces below what the detectors see).
   */
  padFraction?: number;
  /**
   * Tiny detector input size, a multiple of 32 from 128 to 608 (SSD always uses 512). Default:
   * 1.5 x the padded image's longer side, within 224..416 (320 for a padded Tiny Portrait).
   */
  inputSize?: number;
}

/** Below this longer side an image counts as a thumbnail whose face may fill the frame. */
export const THUMBNAIL_SIDE = 256;
export const DEFAULT_PAD_FRACTION = 0.5;

interface Resolved {
  detector: "tiny" | "ssd";
  minScore: number;
  padFraction: number | undefined;
  inputSize: number | undefined;
}

function validate(rgb: Uint8Array, width: number, height: number, opts: DetectOptions): Resolved {
  const o: Resolved = {
    detector: opts.detector ?? "tiny",
    minScore: opts.minScore ?? 0.5,
    padFraction: opts.padFraction,
    inputSize: opts.inputSize,
  };
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`detectFaces: expected a positive integer width and height, got ${width}x${height}`);
  }
  if (rgb.length !== width * height * 3) {
    throw new Error(`detectFaces: expected ${width}x${height}x3 = ${width * height * 3} bytes of RGB, got ${rgb.length}`);
  }
  if (o.detector !== "tiny" && o.detector !== "ssd") {
    throw new Error(`detectFaces: expected detector to be 'tiny' or 'ssd', got '${o.detector}'`);
  }
  if (!(o.minScore >= 0 && o.minScore <= 1)) throw new Error(`detectFaces: expected minScore in 0..1, got ${o.minScore}`);
  if (o.padFraction !== undefined && !(o.padFraction >= 0 && o.padFraction <= 2)) {
    throw new Error(`detectFaces: expected padFraction in 0..2, got ${o.padFraction}`);
  }
  const s = o.inputSize;
  if (s !== undefined && !(Number.isInteger(s) && s % 32 === 0 && s >= 128 && s <= 608)) {
    throw new Error(`detectFaces: expected inputSize to be a multiple of 32 in 128..608, got ${s}`);
  }
  return o;
}

/**
 * Finds faces in an image (uint8 RGB, HWC, `width*height*3` bytes). Pads the image first
 * (detectors run naively on thumbnails miss many faces) and maps boxes back to the image's
 * pixels. A box may reach past the image edges when the frame cuts the face; boxes centred in the
 * padding are dropped. Sorted by area, largest first. Default detector "tiny".
 */
export async function detectFaces(rgb: Uint8Array, width: number, height: number, opts: DetectOptions = {}): Promise<FaceBox[]> {
  const o = validate(rgb, width, height, opts);
  if (o.padFraction !== undefined) return await detectOnce(rgb, width, height, o, o.padFraction);
  if (Math.max(width, height) <= THUMBNAIL_SIDE) return await detectOnce(rgb, width, height, o, DEFAULT_PAD_FRACTION);
  const plain = await detectOnce(rgb, width, height, o, 0);
  return plain.length ? plain : await detectOnce(rgb, width, height, o, DEFAULT_PAD_FRACTION);
}

async function detectOnce(rgb: Uint8Array, width: number, height: number, o: Resolved, padFraction: number): Promise<FaceBox[]> {
  const api = await faceApi();
  const pad = Math.round(padFraction * Math.max(width, height));
  const padded = Math.max(width, height) + 2 * pad;
  const inputSize = o.inputSize ?? Math.min(416, Math.max(224, Math.round((1.5 * padded) / 32) * 32));
  const target = o.detector === "tiny" ? inputSize : 512;
  // Box-filter big images down first: the nets resize bilinearly, which aliases badly at large factors.
  const k = Math.max(1, Math.floor(padded / (1.5 * target)));
  const p = Math.round(pad / k);
  const input = tf.tidy(() => {
    let x: tf.Tensor3D = tf.cast(tf.tensor3d(rgb, [height, width, 3], "int32"), "float32");
    if (k > 1) x = tf.avgPool(x, k, k, "valid");
    if (p > 0) {
      const mean = tf.mean(x, [0, 1], true);
      x = tf.add(tf.pad(tf.sub(x, mean), [[p, p], [p, p], [0, 0]]), mean);
    }
    return x;
  });
  let found: { score: number; box: { x: number; y: number; width: number; height: number } }[];
  try {
    found = o.detector === "tiny"
      ? await (await net("detector")).locateFaces(
        input as AnyTensor,
        new api.TinyFaceDetectorOptions({ inputSize, scoreThreshold: o.minScore }),
      )
      : await (await net("ssd")).locateFaces(
        input as AnyTensor,
        new api.SsdMobilenetv1Options({ minConfidence: o.minScore, maxResults: 100 }),
      );
  } finally {
    input.dispose();
  }
  const boxes: FaceBox[] = [];
  for (const d of found) {
    const box = { x: (d.box.x - p) * k, y: (d.box.y - p) * k, width: d.box.width * k, height: d.box.height * k, score: d.score };
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    if (cx < 0 || cy < 0 || cx > width || cy > height) continue; // a "face" in the padding
    boxes.push(box);
  }
  return boxes.sort((a, b) => b.width * b.height - a.width * a.height);
}
