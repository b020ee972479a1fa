/**
 * Faces: finding faces, re-framing any photo like a Tiny Portrait, and face descriptors, with the
 * pretrained nets of @vladmandic/face-api (MIT; weights read from its package in node_modules, no
 * network), run on the project's tfjs engine (lib/engine; call `initEngine()` first, or the
 * automatic choice is made on first use).
 *
 *   loadFaceModels(["detector", "recognition"])            load nets ahead of time (else lazily)
 *   detectFaces(rgb, w, h, {detector: "tiny"})               face boxes in the image's pixels
 *   portraitFromImage("photo.jpg")                          → 108x84 RGB framed like a Tiny Portrait
 *   faceDescriptors(cache.pixels, rows, {batchSize: 32})    → rows.length x 128 descriptors
 *   ageGenderPredict(cache.pixels, rows)                    → P(male), age: a no-training baseline
 *
 * Run from the repo root:
 *   deno eval 'import * as f from "./lib/faces/mod.ts"; console.log(await f.portraitFromImage("photo.jpg"))'
 *   deno test -A tests/faces/            (the contracts; ~10 s)
 * Speed on 2 shared cores, batch 32: descriptors ~20-23 img/s on wasm (single-threaded here, so the
 * full 134,734 set takes ~1.7 h in one process; two processes on disjoint rows should use both cores, not measured),
 * ~14 img/s on onednn, ~1 img/s on cpu; age/gender ~50 img/s on wasm. Detection per 108x84
 * portrait: tiny ~0.1 s, ssd ~0.6 s; portraitFromImage on a 1920x1280 photo ~0.4 s (tiny) to ~1 s (ssd).
 */
import { detectFaces, type FaceBox } from "./_detect.ts";
import { readRgb, resample } from "./_image.ts";
import { loadNets, MODEL_NAMES, type ModelName } from "./_load.ts";
import { locateEyes, PORTRAIT_FRAMING, PORTRAIT_HEIGHT, PORTRAIT_WIDTH, type PortraitFraming, portraitTransform } from "./_reframe.ts";

export { DEFAULT_PAD_FRACTION, detectFaces, type DetectOptions, type FaceBox, THUMBNAIL_SIDE } from "./_detect.ts";
export { ageGenderPredict, type BatchRunOptions, CROP_MODES, type CropMode, faceDescriptors } from "./_descriptor.ts";
export { faceApiEngineCheck, MODEL_NAMES, modelDir, type ModelName, readWeightMap, sampleImagesDir } from "./_load.ts";
export {
  alignedCrop,
  type Eyes,
  faceBoxCrop,
  locateEyes,
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
}

export interface PortraitResult {
  /** 108 x 84 x 3 bytes, uint8 RGB HWC. */
  pixels: Uint8Array;
  faceFound: boolean;
  /** The face used, in the file's pixels (EXIF orientation applied); null when none was found. */
  box: FaceBox | null;
  sourceWidth: number;
  sourceHeight: number;
}

/**
 * Reads any image file (jpg/png/webp/..., any size, grey or colour) → finds the largest face →
 * re-frames it like a Tiny Portrait (eyes level and where Tiny Portraits have them, head and hair
 * inside 108 high x 84 wide) → RGB uint8 108x84. Without a face: the whole image, centre-cropped to
 * 84:108 and resized, with faceFound false. Throws an error naming the file when it is unreadable.
 */
export async function portraitFromImage(path: string, opts: PortraitOptions = {}): Promise<PortraitResult> {
  const detector = opts.detector ?? "ssd";
  if (detector !== "tiny" && detector !== "ssd") {
    throw new Error(`portraitFromImage: expected detector to be 'tiny' or 'ssd', got '${detector}'`);
  }
  const framing = opts.framing ?? PORTRAIT_FRAMING;
  const img = await readRgb(path);
  const base = { sourceWidth: img.fileWidth, sourceHeight: img.fileHeight };
  const boxes = await detectFaces(img.data, img.width, img.height, { detector, minScore: opts.minScore });
  if (!boxes.length) {
    // Cover the portrait with the whole image, centred.
    const s = Math.min(img.width / PORTRAIT_WIDTH, img.height / PORTRAIT_HEIGHT);
    const t = { cx: img.width / 2, cy: img.height / 2, ox: PORTRAIT_WIDTH / 2, oy: PORTRAIT_HEIGHT / 2, s, angle: 0 };
    return { pixels: resample(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT), faceFound: false, box: null, ...base };
  }
  const face = boxes[0];
  const eyes = (opts.landmarks ?? true) ? await locateEyes(img, face) : null;
  const t = portraitTransform(eyes ? { eyes } : { box: face, detector }, framing);
  const pixels = resample(img, t, PORTRAIT_WIDTH, PORTRAIT_HEIGHT);
  const k = img.scale;
  const box = { x: face.x * k, y: face.y * k, width: face.width * k, height: face.height * k, score: face.score };
  return { pixels, faceFound: true, box, ...base };
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
