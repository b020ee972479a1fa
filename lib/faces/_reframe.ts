// Re-framing a face found in any photo the way Tiny Portraits are framed (84 wide x 108 high, eyes
// level, head and hair inside the frame), from the eye centres of face-api's 68-point landmarks, or
// from the detection box alone when landmarks are not wanted.

import * as tf from "@tensorflow/tfjs-core";
import type { FaceBox } from "./_detect.ts";
import { resample, type RgbImage, type Similarity } from "./_image.ts";
import { type AnyTensor, faceApi, net } from "./_load.ts";

export const PORTRAIT_WIDTH = 84;
export const PORTRAIT_HEIGHT = 108;

/**
 * Where a face sits in a Tiny Portrait, as fractions of the portrait's width (x, widths, the eye
 * distance) and height (y, heights). Measured with this module's own detectors and landmarks on
 * procedural portraits (lib/data/synthetic, seed 7: 224 faces with the tiny detector, 94 with SSD;
 * medians) by `measureFraming()`. Re-measure on real portraits with the same function and pass the
 * result as `framing` where it is accepted.
 */
export interface PortraitFraming {
  /** Midpoint between the eye centres. */
  eyeX: number;
  eyeY: number;
  /** Distance between the eye centres / portrait width. */
  eyeDistance: number;
  /** Height of the mouth centre (mean of the 20 mouth landmarks). */
  mouthY: number;
  /** Detection box (centre, size), per detector; used when landmarks are not. */
  box: Record<"tiny" | "ssd", { cx: number; cy: number; width: number; height: number }>;
}

export const PORTRAIT_FRAMING: PortraitFraming = {
  eyeX: 0.5,
  eyeY: 0.457,
  eyeDistance: 0.194,
  mouthY: 0.65,
  box: {
    tiny: { cx: 0.477, cy: 0.557, width: 0.575, height: 0.444 },
    ssd: { cx: 0.493, cy: 0.509, width: 0.401, height: 0.435 },
  },
};

/** A square region of a portrait in pixels (top-left corner and side). */
export interface SquareCrop {
  x: number;
  y: number;
  side: number;
}

/**
 * The square face-api crops for its recognition net ("dlib alignment": side = mean eye-to-mouth
 * distance / 0.45, the centroid of the two eyes and the mouth at 50% across and 43% down), placed
 * where the framing puts the eyes and mouth of a Tiny Portrait.
 */
export function alignedCrop(framing: PortraitFraming = PORTRAIT_FRAMING): SquareCrop {
  const eyeY = framing.eyeY * PORTRAIT_HEIGHT, mouthY = framing.mouthY * PORTRAIT_HEIGHT;
  const eyeToMouth = Math.hypot((framing.eyeDistance * PORTRAIT_WIDTH) / 2, mouthY - eyeY);
  const side = eyeToMouth / 0.45;
  const refX = framing.eyeX * PORTRAIT_WIDTH, refY = (2 * eyeY + mouthY) / 3;
  return { x: refX - 0.5 * side, y: refY - 0.43 * side, side };
}

/** The detection box of a Tiny Portrait's face, padded to a square about its centre (as face-api's nets do). */
export function faceBoxCrop(framing: PortraitFraming = PORTRAIT_FRAMING, detector: "tiny" | "ssd" = "ssd"): SquareCrop {
  const b = framing.box[detector];
  const side = Math.max(b.width * PORTRAIT_WIDTH, b.height * PORTRAIT_HEIGHT);
  return { x: b.cx * PORTRAIT_WIDTH - side / 2, y: b.cy * PORTRAIT_HEIGHT - side / 2, side };
}

/** The whole portrait padded to a square about its centre. */
export function portraitCrop(): SquareCrop {
  const side = Math.max(PORTRAIT_WIDTH, PORTRAIT_HEIGHT);
  return { x: (PORTRAIT_WIDTH - side) / 2, y: (PORTRAIT_HEIGHT - side) / 2, side };
}

export interface Eyes {
  /** Centre of the eye on the image's left (the subject's right eye), in image pixels. */
  left: [number, number];
  right: [number, number];
  /** Centre of the mouth (mean of landmarks 48-67). */
  mouth: [number, number];
}

const LANDMARK_INPUT = 112;

/**
 * Eye centres of the face in `box` (68-point landmarks on a square crop around the box; points
 * 36-41 and 42-47 are the two eyes). Returns null when the eyes come out implausible.
 */
export async function locateEyes(img: RgbImage, box: FaceBox): Promise<Eyes | null> {
  return (await locateEyesBatch([{ img, box }]))[0];
}

/** `locateEyes` for many faces, one forward pass of the landmark net for all (batch them by the caller). */
export async function locateEyesBatch(faces: readonly { img: RgbImage; box: FaceBox }[]): Promise<(Eyes | null)[]> {
  if (!faces.length) return [];
  const api = await faceApi();
  const landmarks = await net("landmarks");
  const crops = faces.map(({ img, box }) => {
    const side = Math.max(box.width, box.height);
    const s = side / LANDMARK_INPUT;
    const t = { cx: box.x + box.width / 2, cy: box.y + box.height / 2, ox: LANDMARK_INPUT / 2, oy: LANDMARK_INPUT / 2, s, angle: 0 };
    return tf.tensor3d(resample(img, t, LANDMARK_INPUT, LANDMARK_INPUT), [LANDMARK_INPUT, LANDMARK_INPUT, 3], "int32");
  });
  let rel: Float32Array;
  try {
    const out = landmarks.forwardInput(new api.NetInput(crops as AnyTensor[])) as unknown as tf.Tensor;
    rel = await out.data() as Float32Array;
    out.dispose();
  } finally {
    tf.dispose(crops);
  }
  // rel: per face, 68 (x, y) pairs relative to its crop (0..1).
  return faces.map(({ box }, f) => {
    const side = Math.max(box.width, box.height);
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    const mean = (from: number, to: number): [number, number] => {
      let x = 0, y = 0;
      for (let i = from; i < to; i++) {
        x += rel[f * 136 + 2 * i];
        y += rel[f * 136 + 2 * i + 1];
      }
      return [cx + (x / (to - from) - 0.5) * side, cy + (y / (to - from) - 0.5) * side];
    };
    const a = mean(36, 42), b = mean(42, 48), mouth = mean(48, 68);
    const [left, right] = a[0] <= b[0] ? [a, b] : [b, a];
    const dist = Math.hypot(right[0] - left[0], right[1] - left[1]);
    if (!(dist > 0.15 * side && dist < 0.75 * side)) return null;
    return { left, right, mouth };
  });
}

/** The transform that puts the face where a Tiny Portrait has it. */
export function portraitTransform(
  face: { eyes: Eyes } | { box: FaceBox; detector: "tiny" | "ssd" },
  framing: PortraitFraming = PORTRAIT_FRAMING,
): Similarity {
  if ("eyes" in face) {
    const { left, right } = face.eyes;
    const dx = right[0] - left[0], dy = right[1] - left[1];
    const angle = Math.atan2(dy, dx);
    return {
      cx: (left[0] + right[0]) / 2,
      cy: (left[1] + right[1]) / 2,
      ox: framing.eyeX * PORTRAIT_WIDTH,
      oy: framing.eyeY * PORTRAIT_HEIGHT,
      s: Math.hypot(dx, dy) / (framing.eyeDistance * PORTRAIT_WIDTH),
      angle,
    };
  }
  const f = framing.box[face.detector];
  const b = face.box;
  return {
    cx: b.x + b.width / 2,
    cy: b.y + b.height / 2,
    ox: f.cx * PORTRAIT_WIDTH,
    oy: f.cy * PORTRAIT_HEIGHT,
    s: b.width / (f.width * PORTRAIT_WIDTH),
    angle: 0,
  };
}
