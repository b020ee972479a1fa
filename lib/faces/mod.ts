/**
 * Faces: finding faces, re-framing any photo like a Tiny Portrait, and face descriptors, with the
 * pretrained nets of @vladmandic/face-api (MIT; weights read from its package in node_modules, no
 * network), run on the project's tfjs engine (lib/engine; call `initEngine()` first, or the
 * automatic choice is made on first use).
 *
 *   loadFaceModels(["detector", "recognition"])            load nets ahead of time (else lazily)
 *   detectFaces(rgb, w, h, {detector: "tiny"})               face boxes in the image's pixels
 *   portraitFromImage("photo.jpg", {fill: "blur"})          → 108x84 RGB framed like a Tiny Portrait
 *   portraitsFromImages(paths, {detector: "tiny"})          the same for many files, nets in batches
 *   faceDescriptors(cache.pixels, rows, {batchSize: 32})    → rows.length x 128 descriptors
 *   ageGenderPredict(cache.pixels, rows)                    → P(male), age: a no-training baseline
 *
 * Run from the repo root:
 *   deno eval 'import * as f from "./lib/faces/mod.ts"; console.log(await f.portraitFromImage("photo.jpg"))'
 *   deno test -A tests/faces/            (the contracts; ~10 s)
 * Speed on 2 cores, batch 32: faceDescriptors (face-api's own net) 37 img/s on wasm, 99 img/s on onednn (an Intel
 * Xeon with AVX-512, idle); lib/models/descriptors.ts gives the same descriptors faster (46 / 272 img/s) and is what
 * the exploration and the GAN metric use. Age/gender ~50 img/s on wasm. Detection per 108x84
 * portrait: tiny ~0.1 s, ssd ~0.6 s; portraitFromImage on a 1920x1280 photo ~0.4 s (tiny) to ~1 s (ssd).
 * portraitsFromImages on 200x200 face crops (tiny detector, fill "blur"), 2 cores with another job
 * using one: ~20 img/s on onednn, ~15-17 on wasm; per photo ~25 ms detector (288 input), ~10 ms
 * landmarks, ~12 ms re-framing with the blur, ~1.5 ms decoding (overlapped). SSD: ~3 img/s.
 */
import { detectFaces, detectFacesBatch, type DetectOptions, type FaceBox, THUMBNAIL_SIDE } from "./_detect.ts";
import { checkFill, type FillMode, outsideShare, readRgb, resample } from "./_image.ts";
import { loadNets, MODEL_NAMES, type ModelName } from "./_load.ts";
import {
  type Eyes,
  locateEyes,
  locateEyesBatch,
  PORTRAIT_FRAMING,
  PORTRAIT_HEIGHT,
  PORTRAIT_WIDTH,
  type PortraitFraming,
  portraitTransform,
} from "./_reframe.ts";

type DecodedImage = Awaited<ReturnType<typeof readRgb>>;

export {
  type DetectBatchOptions,
  DEFAULT_PAD_FRACTION,
  detectFaces,
  detectFacesBatch,
  type DetectOptions,
  type FaceBox,
  THUMBNAIL_SIDE,
} from "./_detect.ts";
export { BLUR_SIGMA, checkFill, FILL_MODES, type FillMode } from "./_image.ts";
export { ageGenderPredict, type BatchRunOptions, checkRows as checkPortraitRows, CROP_MODES, type CropMode, faceDescriptors } from "./_descriptor.ts";
export { faceApiEngineCheck, MODEL_NAMES, modelDir, type ModelName, readWeightMap, sampleImagesDir } from "./_load.ts";
export {
  alignedCrop,
  type Eyes,
  faceBoxCrop,
  locateEyes,
  locateEyesBatch,
  PORTRAIT_FRAMING,
  PORTRAIT_HEIGHT,
  PORTRAIT_WIDTH,
  portraitCrop,
  type PortraitFraming,
  type SquareCrop,
} from "./_reframe.ts";

/**
 * Loads face-api nets from node_modules (all five when `which` is omitted): "detector" (tiny face
 * detector), "ssd" (SSD MobileNet v1), "landmarks" (68 points), "recognition" (128-D descriptors),
 * "ageGender". Idempotent; the other functions load what they need on first use.
 */
export async function loadFaceModels(which: ModelName[] = [...MODEL_NAMES]): Promise<void> {
  await loadNets(which);
}

export interface PortraitOptions {
  /** Detector (default "ssd": a single photo, so accuracy before speed). */
  detector?: "tiny" | "ssd";
  /** Place the face by its eyes from 68-point landmarks, levelling them (default true); else by the box. */
  landmarks?: boolean;
  /** Where the face goes in the portrait (default PORTRAIT_FRAMING). */
  framing?: PortraitFraming;
  /** Lowest detector score accepted as a face (default 0.5). */
  minScore?: number;
  /** What fills the portrait where it reaches past the photo (default DEFAULT_FILL; see `FillMode`). */
  fill?: FillMode;
}

/**
 * Tiny detector input size portraitFromImage uses on thumbnails (see DetectOptions.thumbnailInputSize).
 * Faces found at minScore 0.5 by input size, on utk_outside's 1,000 200x200 tight UTKFace crops:
 * 224: 92%, 288: 95%, 320: 82%, 416 (the default rule): 72% (SSD: 86%); on 300 of them 256: 84%;
 * on 300 real 108x84 Tiny Portraits 224: 91%, 256: 100%, 288: 98%, 320 (the default rule): 99%.
 */
export const THUMBNAIL_INPUT_SIZE = 288;

/** The fill of `portraitFromImage` when none is given. */
export const DEFAULT_FILL: FillMode = "blur";

export interface PortraitResult {
  /** 108 x 84 x 3 bytes, uint8 RGB HWC. */
  pixels: Uint8Array;
  faceFound: boolean;
  /** The face used, in the file's pixels (EXIF orientation applied); null when none was found. */
  box: FaceBox | null;
  sourceWidth: number;
  sourceHeight: number;
  /** Share of the portrait's pixels that lie outside the photo (filled as `fill` says), 0..1. */
  outside: number;
}

interface Resolved {
  detector: "tiny" | "ssd";
  landmarks: boolean;
  framing: PortraitFraming;
  minScore: number | undefined;
  fill: FillMode;
}

function resolve(fn: string, opts: PortraitOptions): Resolved {
  const detector = opts.detector ?? "ssd";
  if (detector !== "tiny" && detector !== "ssd") throw new Error(`${fn}: expected detector to be 'tiny' or 'ssd', got '${detector}'`);
  const fill = opts.fill ?? DEFAULT_FILL;
  checkFill(fn, fill);
  return { detector, landmarks: opts.landmarks ?? true, framing: opts.framing ?? PORTRAIT_FRAMING, minScore: opts.minScore, fill };
}

function detectOptions(o: Resolved): DetectOptions {
  return { detector: o.detector, minScore: o.minScore, thumbnailInputSize: THUMBNAIL_INPUT_SIZE };
}

/** The portrait of a decoded photo, given its largest face (or none) and that face's eyes. */
function reframe(img: DecodedImage, face: FaceBox | undefined, eyes: Eyes | null, o: Resolved): PortraitResult {
  const base = { sourceWidth: img.fileWidth, sourceHeight: img.fileHeight };
  if (!face && Math.max(img.width, img.height) <= THUMBNAIL_SIDE) {
    // A thumbnail without a face found is taken for a tight face crop the detector missed: the whole
    // image goes where a face box goes (utk_outside, 49 such of 1,000 crops: a face_resnet gender
    // model got 48 of them right placed so, 26 as a centre crop; face-api's net 47 against 27).
    const whole = { x: 0, y: 0, width: img.width, height: img.height, score: 0 };
    const t = portraitTransform({ box: whole, detector: "tiny" }, o.framing);
    const pixels = resample(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT, o.fill);
    return { pixels, faceFound: false, box: null, outside: outsideShare(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT), ...base };
  }
  if (!face) {
    // Cover the portrait with the whole image, centred.
    const s = Math.min(img.width / PORTRAIT_WIDTH, img.height / PORTRAIT_HEIGHT);
    const t = { cx: img.width / 2, cy: img.height / 2, ox: PORTRAIT_WIDTH / 2, oy: PORTRAIT_HEIGHT / 2, s, angle: 0 };
    return { pixels: resample(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT, o.fill), faceFound: false, box: null, outside: 0, ...base };
  }
  const t = portraitTransform(eyes ? { eyes } : { box: face, detector: o.detector }, o.framing);
  const pixels = resample(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT, o.fill);
  const k = img.scale;
  const box = { x: face.x * k, y: face.y * k, width: face.width * k, height: face.height * k, score: face.score };
  return { pixels, faceFound: true, box, outside: outsideShare(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT), ...base };
}

/**
 * Reads any image file (jpg/png/webp/..., any size, grey or colour) → finds the largest face →
 * re-frames it like a Tiny Portrait (eyes level and where Tiny Portraits have them, head and hair
 * inside 108 high x 84 wide) → RGB uint8 108x84, the part beyond the photo filled as `fill` says.
 * Without a face (faceFound false): a thumbnail (longer side up to THUMBNAIL_SIDE) is taken for a
 * tight face crop and placed where the face box goes; a larger image is centre-cropped to 84:108.
 * Throws an error naming the file when it is unreadable.
 */
export async function portraitFromImage(path: string, opts: PortraitOptions = {}): Promise<PortraitResult> {
  const o = resolve("portraitFromImage", opts);
  const img = await readRgb(path);
  const face = (await detectFaces(img.data, img.width, img.height, detectOptions(o)))[0];
  const eyes = face && o.landmarks ? await locateEyes(img, face) : null;
  return reframe(img, face, eyes, o);
}

/**
 * Photos per detector pass in portraitsFromImages. Measured on 96 of utk_outside's 200x200 crops
 * (tiny detector at 288, 2 cores shared with a training job, noisy): onednn ~29 ms per photo one
 * at a time, ~32 by 4, ~52 by 16; wasm 31-33 ms at any batch size. The landmark net gains from
 * batches (onednn 13-15 ms per face alone, 9-11 by 8 or 16), so it gets the whole batch.
 */
const DETECT_BATCH = 4;

export interface PortraitBatchOptions extends PortraitOptions {
  /** Photos decoded ahead and per pass of the landmark net (default 16; the detector takes them 4 at a time). */
  batchSize?: number;
  /** Called after each batch with the photos done so far (unreadable ones included). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * `portraitFromImage` on many files, with the same result per file: the detector and the landmark
 * net run on batches, and the next batch is decoded (sharp, on its own threads) while they do.
 * Per file, in order: its portrait, or the Error naming it when it cannot be read.
 */
export async function portraitsFromImages(paths: readonly string[], opts: PortraitBatchOptions = {}): Promise<(PortraitResult | Error)[]> {
  const o = resolve("portraitsFromImages", opts);
  const batchSize = opts.batchSize ?? 16;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new Error(`portraitsFromImages: expected batchSize to be a positive integer, got ${batchSize}`);
  }
  const decode = (from: number) =>
    Promise.all(paths.slice(from, from + batchSize).map((p) => readRgb(p).catch((err: Error) => err)));
  const out: (PortraitResult | Error)[] = [];
  let next = paths.length ? decode(0) : null;
  for (let start = 0; start < paths.length; start += batchSize) {
    const decoded = await next!;
    next = start + batchSize < paths.length ? decode(start + batchSize) : null;
    const imgs = decoded.filter((d): d is DecodedImage => !(d instanceof Error));
    const boxes = await detectFacesBatch(imgs, { ...detectOptions(o), batchSize: Math.min(batchSize, DETECT_BATCH) });
    const withFace = imgs.map((img, i) => ({ img, box: boxes[i][0] })).filter((f) => f.box);
    const eyes = o.landmarks ? await locateEyesBatch(withFace) : withFace.map(() => null);
    const faceOf = new Map(imgs.map((img, i) => [img, boxes[i][0]]));
    const eyesOf = new Map(withFace.map((f, i) => [f.img, eyes[i]]));
    for (const d of decoded) out.push(d instanceof Error ? d : reframe(d, faceOf.get(d), eyesOf.get(d) ?? null, o));
    opts.onProgress?.(out.length, paths.length);
  }
  return out;
}

/** Medians of where faces sit in a set of portraits; the input for a `PortraitFraming`. */
export interface FramingMeasurement {
  /** Portraits measured, portraits with a face, with usable landmarks. */
  count: number;
  withFace: number;
  withEyes: number;
  framing: PortraitFraming;
}

/**
 * Measures the framing of 108x84 portraits (rows of `pixels`, as `faceDescriptors` takes them):
 * median eye midpoint, eye distance and mouth height from landmarks, and the median detection box of
 * both detectors. About 0.2 s (tiny) + 0.6 s (ssd) per portrait on wasm: a few hundred rows suffice.
 */
export async function measureFraming(pixels: Uint8Array, rows: ArrayLike<number>): Promise<FramingMeasurement> {
  const bytes = PORTRAIT_WIDTH * PORTRAIT_HEIGHT * 3;
  const cols: Record<string, number[]> = {};
  const push = (k: string, v: number) => (cols[k] ??= []).push(v);
  let withFace = 0, withEyes = 0;
  for (let i = 0; i < rows.length; i++) {
    const data = pixels.subarray(rows[i] * bytes, (rows[i] + 1) * bytes);
    const img = { data, width: PORTRAIT_WIDTH, height: PORTRAIT_HEIGHT };
    const tiny = await detectFaces(data, PORTRAIT_WIDTH, PORTRAIT_HEIGHT, { detector: "tiny", minScore: 0.3 });
    const ssd = await detectFaces(data, PORTRAIT_WIDTH, PORTRAIT_HEIGHT, { detector: "ssd", minScore: 0.3 });
    for (const [name, b] of [["tiny", tiny[0]], ["ssd", ssd[0]]] as const) {
      if (!b) continue;
      push(`${name}.cx`, (b.x + b.width / 2) / PORTRAIT_WIDTH);
      push(`${name}.cy`, (b.y + b.height / 2) / PORTRAIT_HEIGHT);
      push(`${name}.width`, b.width / PORTRAIT_WIDTH);
      push(`${name}.height`, b.height / PORTRAIT_HEIGHT);
    }
    const box = tiny[0] ?? ssd[0];
    if (!box) continue;
    withFace++;
    const eyes = await locateEyes(img, box);
    if (!eyes) continue;
    withEyes++;
    push("eyeX", (eyes.left[0] + eyes.right[0]) / 2 / PORTRAIT_WIDTH);
    push("eyeY", (eyes.left[1] + eyes.right[1]) / 2 / PORTRAIT_HEIGHT);
    push("eyeDistance", Math.hypot(eyes.right[0] - eyes.left[0], eyes.right[1] - eyes.left[1]) / PORTRAIT_WIDTH);
    push("mouthY", eyes.mouth[1] / PORTRAIT_HEIGHT);
  }
  const med = (k: string, fallback: number) => {
    const a = (cols[k] ?? []).slice().sort((x, y) => x - y);
    return a.length ? Math.round(a[a.length >> 1] * 1000) / 1000 : fallback;
  };
  const F = PORTRAIT_FRAMING;
  const box = (d: "tiny" | "ssd") => ({
    cx: med(`${d}.cx`, F.box[d].cx),
    cy: med(`${d}.cy`, F.box[d].cy),
    width: med(`${d}.width`, F.box[d].width),
    height: med(`${d}.height`, F.box[d].height),
  });
  return {
    count: rows.length,
    withFace,
    withEyes,
    framing: {
      eyeX: med("eyeX", F.eyeX),
      eyeY: med("eyeY", F.eyeY),
      eyeDistance: med("eyeDistance", F.eyeDistance),
      mouthY: med("mouthY", F.mouthY),
      box: { tiny: box("tiny"), ssd: box("ssd") },
    },
  };
}
