// Face detection on uint8 RGB images with face-api's TinyFaceDetector or SSD MobileNet v1.
//
// A portrait-sized image whose face fills most of the frame is the case detectors miss most: they were
// trained on faces with context around them. So the image is first padded on every side with its own
// mean colour (not mirrored: a mirror would plant half-faces at the edges), large images are
// box-filtered down to about the detector's input size, and the boxes found are mapped back to the
// pixels of the image given.

import * as tf from "@tensorflow/tfjs-core";
import type { RgbImage } from "./_image.ts";
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
  /**
   * Tiny detector input size for thumbnails only (longer side up to THUMBNAIL_SIDE), where it
   * replaces the default rule; `inputSize` still wins. portraitFromImage passes
   * THUMBNAIL_INPUT_SIZE: the default rule gives a 200 px face crop 416, at which the tiny
   * detector finds 72% of UTKFace's tight crops (288: 95%).
   */
  thumbnailInputSize?: number;
}

/** Below this longer side an image counts as a thumbnail whose face may fill the frame. */
export const THUMBNAIL_SIDE = 256;
export const DEFAULT_PAD_FRACTION = 0.5;

interface Resolved {
  detector: "tiny" | "ssd";
  minScore: number;
  padFraction: number | undefined;
  inputSize: number | undefined;
  thumbnailInputSize: number | undefined;
}

function resolveOptions(fn: string, opts: DetectOptions): Resolved {
  const o: Resolved = {
    detector: opts.detector ?? "tiny",
    minScore: opts.minScore ?? 0.5,
    padFraction: opts.padFraction,
    inputSize: opts.inputSize,
    thumbnailInputSize: opts.thumbnailInputSize,
  };
  if (o.detector !== "tiny" && o.detector !== "ssd") {
    throw new Error(`${fn}: expected detector to be 'tiny' or 'ssd', got '${o.detector}'`);
  }
  if (!(o.minScore >= 0 && o.minScore <= 1)) throw new Error(`${fn}: expected minScore in 0..1, got ${o.minScore}`);
  if (o.padFraction !== undefined && !(o.padFraction >= 0 && o.padFraction <= 2)) {
    throw new Error(`${fn}: expected padFraction in 0..2, got ${o.padFraction}`);
  }
  for (const [name, s] of [["inputSize", o.inputSize], ["thumbnailInputSize", o.thumbnailInputSize]] as const) {
    if (s !== undefined && !(Number.isInteger(s) && s % 32 === 0 && s >= 128 && s <= 608)) {
      throw new Error(`${fn}: expected ${name} to be a multiple of 32 in 128..608, got ${s}`);
    }
  }
  return o;
}

function checkImage(fn: string, { data, width, height }: RgbImage): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`${fn}: expected a positive integer width and height, got ${width}x${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new Error(`${fn}: expected ${width}x${height}x3 = ${width * height * 3} bytes of RGB, got ${data.length}`);
  }
}

/**
 * Finds faces in an image (uint8 RGB, HWC, `width*height*3` bytes). Pads the image first
 * (detectors run naively on thumbnails miss many faces) and maps boxes back to the image's
 * pixels. A box may reach past the image edges when the frame cuts the face; boxes centred in the
 * padding are dropped. Sorted by area, largest first. Default detector "tiny".
 */
export async function detectFaces(rgb: Uint8Array, width: number, height: number, opts: DetectOptions = {}): Promise<FaceBox[]> {
  const image = { data: rgb, width, height };
  checkImage("detectFaces", image);
  return (await detectAll([image], resolveOptions("detectFaces", opts), 1))[0];
}

export interface DetectBatchOptions extends DetectOptions {
  /** Images per forward pass (default 4; images whose detector input sizes differ never share one). */
  batchSize?: number;
}

/**
 * `detectFaces` on many images, `batchSize` per forward pass of the detector: the same boxes as one
 * call per image (the nets see the same padded, resized inputs). Batches of 4 gain little on the
 * detector itself (see lib/faces/mod.ts DETECT_BATCH); they matter for callers that batch the rest.
 */
export async function detectFacesBatch(images: readonly RgbImage[], opts: DetectBatchOptions = {}): Promise<FaceBox[][]> {
  const o = resolveOptions("detectFacesBatch", opts);
  images.forEach((im, i) => checkImage(`detectFacesBatch: image ${i}`, im));
  const batchSize = opts.batchSize ?? 4;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new Error(`detectFacesBatch: expected batchSize to be a positive integer, got ${batchSize}`);
  }
  return await detectAll(images, o, batchSize);
}

async function detectAll(images: readonly RgbImage[], o: Resolved, batchSize: number): Promise<FaceBox[][]> {
  const thumb = (im: RgbImage) => Math.max(im.width, im.height) <= THUMBNAIL_SIDE;
  const first = images.map((im) => o.padFraction ?? (thumb(im) ? DEFAULT_PAD_FRACTION : 0));
  const out = await detectPass(images, first, o, batchSize);
  // Big images with nothing found unpadded: again, padded (a face filling the frame).
  const again = images.map((_, i) => i).filter((i) => o.padFraction === undefined && first[i] === 0 && !out[i].length);
  if (again.length) {
    const more = await detectPass(again.map((i) => images[i]), again.map(() => DEFAULT_PAD_FRACTION), o, batchSize);
    again.forEach((i, j) => (out[i] = more[j]));
  }
  return out;
}

/** How an image is prepared for the detector: box-filter factor k, padding p (after filtering), net input size. */
function plan(im: RgbImage, o: Resolved, padFraction: number): { k: number; p: number; inputSize: number } {
  const pad = Math.round(padFraction * Math.max(im.width, im.height));
  const padded = Math.max(im.width, im.height) + 2 * pad;
  const thumbnail = Math.max(im.width, im.height) <= THUMBNAIL_SIDE ? o.thumbnailInputSize : undefined;
  const inputSize = o.detector === "tiny" ? (o.inputSize ?? thumbnail ?? Math.min(416, Math.max(224, Math.round((1.5 * padded) / 32) * 32))) : 512;
  // Box-filter big images down first: the nets resize bilinearly, which aliases badly at large factors.
  const k = Math.max(1, Math.floor(padded / (1.5 * inputSize)));
  return { k, p: Math.round(pad / k), inputSize };
}

/** A face in the padded, filtered detector input, in that input's pixels. */
interface RawDetection {
  x: number;
  y: number;
  width: number;
  height: number;
  score: number;
}

async function detectPass(images: readonly RgbImage[], pads: number[], o: Resolved, batchSize: number): Promise<FaceBox[][]> {
  const plans = images.map((im, i) => plan(im, o, pads[i]));
  const out: FaceBox[][] = images.map(() => []);
  // Batches of images with the same net input size, in order.
  const bySize = new Map<number, number[]>();
  plans.forEach((pl, i) => {
    const same = bySize.get(pl.inputSize);
    if (same) same.push(i);
    else bySize.set(pl.inputSize, [i]);
  });
  for (const [inputSize, idx] of bySize) {
    for (let start = 0; start < idx.length; start += batchSize) {
      const chunk = idx.slice(start, start + batchSize);
      const inputs = chunk.map((i) => {
        const x = detectorInput(images[i], plans[i].k, plans[i].p);
        return tf.tensor3d(x.data, [x.height, x.width, 3], "float32");
      });
      let found: RawDetection[][];
      try {
        found = o.detector === "tiny" ? await runTiny(inputs, inputSize, o.minScore) : await runSsd(inputs, o.minScore);
      } finally {
        tf.dispose(inputs);
      }
      chunk.forEach((i, j) => (out[i] = toImageBoxes(found[j], images[i], plans[i])));
    }
  }
  return out;
}

/**
 * The detector's input, made in JavaScript (the same few tensor ops took ~27 ms per 200x200 photo on
 * the onednn backend, against ~20 ms for the tiny detector itself): the image box-filtered by k x k
 * blocks (k = 1: as is), then padded by p on every side with its mean colour.
 */
function detectorInput(im: RgbImage, k: number, p: number): { data: Float32Array; width: number; height: number } {
  const w = Math.floor(im.width / k), h = Math.floor(im.height / k);
  const W = w + 2 * p, H = h + 2 * p;
  const out = new Float32Array(W * H * 3);
  const sum = [0, 0, 0], inv = 1 / (k * k);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = ((y + p) * W + x + p) * 3;
      for (let c = 0; c < 3; c++) {
        let v = 0;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) v += im.data[((y * k + dy) * im.width + x * k + dx) * 3 + c];
        v *= inv;
        out[o + c] = v;
        sum[c] += v;
      }
    }
  }
  if (p > 0) {
    const mean = sum.map((v) => v / (w * h));
    for (let y = 0; y < H; y++) {
      const inside = y >= p && y < p + h;
      for (let x = 0; x < W; x++) {
        if (inside && x >= p && x < p + w) continue;
        const o = (y * W + x) * 3;
        out[o] = mean[0], out[o + 1] = mean[1], out[o + 2] = mean[2];
      }
    }
  }
  return { data: out, width: W, height: H };
}

/** Boxes in the detector input → boxes in the image's pixels, without those centred in the padding, largest first. */
function toImageBoxes(found: RawDetection[], im: RgbImage, pl: { k: number; p: number }): FaceBox[] {
  const { k, p } = pl;
  const boxes: FaceBox[] = [];
  for (const d of found) {
    const box = { x: (d.x - p) * k, y: (d.y - p) * k, width: d.width * k, height: d.height * k, score: d.score };
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    if (cx < 0 || cy < 0 || cx > im.width || cy > im.height) continue; // a "face" in the padding
    boxes.push(box);
  }
  return boxes.sort((a, b) => b.width * b.height - a.width * a.height);
}

/** face-api's `computeReshapedDimensions`: the input scaled so that its longer side is `inputSize`. */
function reshaped(t: tf.Tensor3D, inputSize: number): { width: number; height: number } {
  const [height, width] = t.shape;
  const scale = inputSize / Math.max(width, height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

/**
 * SSD MobileNet v1 on a batch, decoded as face-api's `SsdMobilenetv1.locateFaces` does for one
 * image (IoU 0.5 suppression, scores above `minScore`, at most 100 faces), per image.
 */
async function runSsd(inputs: tf.Tensor3D[], minScore: number): Promise<RawDetection[][]> {
  const api = await faceApi();
  const ssd = await net("ssd");
  const netInput = new api.NetInput(inputs as AnyTensor[]);
  const { boxes, scores } = ssd.forwardInput(netInput) as unknown as { boxes: tf.Tensor2D[]; scores: tf.Tensor1D[] };
  try {
    const out: RawDetection[][] = [];
    for (let b = 0; b < inputs.length; b++) {
      const bx = await boxes[b].data(), sc = await scores[b].data();
      const [height, width] = inputs[b].shape;
      const r = reshaped(inputs[b], 512);
      const padX = 512 / r.width, padY = 512 / r.height;
      const rect = (i: number) => ({
        top: Math.min(bx[4 * i], bx[4 * i + 2]),
        left: Math.min(bx[4 * i + 1], bx[4 * i + 3]),
        bottom: Math.max(bx[4 * i], bx[4 * i + 2]),
        right: Math.max(bx[4 * i + 1], bx[4 * i + 3]),
      });
      const keep = suppress(Array.from(sc), rect, 0.5, minScore, 100);
      out.push(keep.map((i) => {
        const top = Math.max(0, bx[4 * i]) * padY, bottom = Math.min(1, bx[4 * i + 2]) * padY;
        const left = Math.max(0, bx[4 * i + 1]) * padX, right = Math.min(1, bx[4 * i + 3]) * padX;
        return { x: left * width, y: top * height, width: (right - left) * width, height: (bottom - top) * height, score: sc[i] };
      }));
    }
    return out;
  } finally {
    tf.dispose([...boxes, ...scores]);
  }
}

/**
 * Tiny face detector (tiny YOLO v2: a grid of cells x 5 anchors, each [tx, ty, tw, th, score]) on a
 * batch, decoded as face-api's `TinyYolov2Base.detect` does for one image (sigmoid scores above
 * `minScore`, IoU suppression at the net's threshold, 0.4), per image.
 */
async function runTiny(inputs: tf.Tensor3D[], inputSize: number, minScore: number): Promise<RawDetection[][]> {
  const api = await faceApi();
  const tiny = await net("detector");
  const anchors = tiny.anchors, iouThreshold = tiny.config.iouThreshold;
  const t = tiny.forwardInput(new api.NetInput(inputs as AnyTensor[]), inputSize) as unknown as tf.Tensor4D;
  let raw: Float32Array;
  try {
    raw = await t.data() as Float32Array;
  } finally {
    t.dispose();
  }
  const cells = t.shape[1], na = anchors.length, per = cells * cells * na * 5;
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  return inputs.map((input, b) => {
    const [height, width] = input.shape;
    const r = reshaped(input, inputSize);
    const cfX = inputSize / r.width, cfY = inputSize / r.height;
    const cand: { left: number; top: number; right: number; bottom: number; score: number }[] = [];
    for (let row = 0; row < cells; row++) {
      for (let col = 0; col < cells; col++) {
        for (let a = 0; a < na; a++) {
          const o = b * per + ((row * cells + col) * na + a) * 5;
          const score = sigmoid(raw[o + 4]);
          if (minScore && !(score > minScore)) continue;
          const ctX = ((col + sigmoid(raw[o])) / cells) * cfX, ctY = ((row + sigmoid(raw[o + 1])) / cells) * cfY;
          const w = ((Math.exp(raw[o + 2]) * anchors[a].x) / cells) * cfX, h = ((Math.exp(raw[o + 3]) * anchors[a].y) / cells) * cfY;
          cand.push({ left: ctX - w / 2, top: ctY - h / 2, right: ctX + w / 2, bottom: ctY + h / 2, score });
        }
      }
    }
    const keep = pickByScore(cand, iouThreshold);
    return keep.map((i) => {
      const c = cand[i];
      return { x: c.left * width, y: c.top * height, width: (c.right - c.left) * width, height: (c.bottom - c.top) * height, score: c.score };
    });
  });
}

interface Rect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

function iou(a: Rect, b: Rect): number {
  const w = Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left));
  const h = Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  const inter = w * h, areaA = (a.right - a.left) * (a.bottom - a.top), areaB = (b.right - b.left) * (b.bottom - b.top);
  if (areaA <= 0 || areaB <= 0) return 0;
  return inter / (areaA + areaB - inter);
}

/** Greedy suppression as face-api's SSD does it: scores > minScore, best first, IoU > threshold with a kept box drops. */
function suppress(scores: number[], rect: (i: number) => Rect, threshold: number, minScore: number, maxResults: number): number[] {
  const order = scores.map((s, i) => ({ s, i })).filter((c) => c.s > minScore).sort((a, b) => b.s - a.s);
  const kept: number[] = [];
  for (const { i } of order) {
    if (kept.length >= Math.min(maxResults, scores.length)) break;
    const r = rect(i);
    if (kept.every((j) => iou(r, rect(j)) <= threshold)) kept.push(i);
  }
  return kept;
}

/** Greedy suppression as face-api's tiny YOLO does it (ops/nonMaxSuppression: highest score first, ties to the later box). */
function pickByScore(cand: (Rect & { score: number })[], threshold: number): number[] {
  let order = cand.map((c, i) => ({ s: c.score, i })).sort((a, b) => a.s - b.s).map((c) => c.i);
  const pick: number[] = [];
  while (order.length) {
    const cur = order.pop()!;
    pick.push(cur);
    order = order.filter((j) => iou(cand[cur], cand[j]) <= threshold);
  }
  return pick;
}
