/**
 * Training augmentation with sharp on uint8 HWC portraits: random horizontal flip, small zoom and shift with edge
 * replication, small rotation, brightness/saturation via modulate, contrast via linear. In this thread
 * (`augmentRows`) or in a worker thread (`AugmentWorker`, what training uses), with the same pixels for the same seed.
 * (tf.image.transform was the first choice: its cpu kernel costs ~1.2 s per batch of 32 here and in tfjs 4.22
 * returns zeros for all but the first image.) No tfjs here: the worker loads this module alone.
 */
import sharp from "sharp";
import { mapLimit } from "../util/fs.ts";
import type { Rng } from "../util/rng.ts";
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "./schema.ts";

export interface AugmentOptions {
  /** Probability of a horizontal flip. */
  flip: number;
  /** Max shift as a fraction of width/height. */
  shift: number;
  /** Max relative zoom in or out. */
  scale: number;
  /** Max rotation in degrees. */
  rotate: number;
  /** Max relative brightness change. */
  brightness: number;
  /** Max relative contrast change. */
  contrast: number;
  /** Max relative saturation change. */
  saturation: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { flip: 0.5, shift: 0.06, scale: 0.08, rotate: 6, brightness: 0.12, contrast: 0.15, saturation: 0.15 };

/**
 * Named augmentations for `train --augment`: "full" = DEFAULT_AUGMENT; "geometric" = flip, zoom, shift and rotation
 * only, the colours left as photographed (for labels that are colours: hair colour); "none".
 */
export const AUGMENT_MODES = ["full", "geometric", "none"] as const;
export type AugmentMode = typeof AUGMENT_MODES[number];
export function augmentFor(mode: AugmentMode): AugmentOptions | undefined {
  if (mode === "none") return undefined;
  return mode === "geometric" ? { ...DEFAULT_AUGMENT, brightness: 0, contrast: 0, saturation: 0 } : DEFAULT_AUGMENT;
}

/** The random parameters of one portrait's augmentation. */
export interface AugmentDraw {
  flip: boolean;
  scale: number;
  dx: number;
  dy: number;
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
}

/** Draws the random parameters of one augmentation (in JS, seeded). */
function drawAugment(a: AugmentOptions, rng: Rng): AugmentDraw {
  return {
    flip: rng.next() < a.flip,
    scale: 1 + rng.uniform(-a.scale, a.scale),
    dx: Math.round(rng.uniform(-a.shift, a.shift) * IMAGE_WIDTH),
    dy: Math.round(rng.uniform(-a.shift, a.shift) * IMAGE_HEIGHT),
    angle: rng.uniform(-a.rotate, a.rotate),
    brightness: 1 + rng.uniform(-a.brightness, a.brightness),
    contrast: 1 + rng.uniform(-a.contrast, a.contrast),
    saturation: 1 + rng.uniform(-a.saturation, a.saturation),
  };
}

/** One augmented portrait (uint8 HWC, same size) through sharp. */
async function augmentOne(src: Uint8Array, d: AugmentDraw): Promise<Uint8Array> {
  const raw = { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: IMAGE_CHANNELS as 3 } };
  // Zoom (≥ 1 here; zoom-out is a zoom-in of a border-extended image), rotate, then cut the window.
  const pad = Math.ceil(Math.max(IMAGE_WIDTH, IMAGE_HEIGHT) * (Math.max(0, 1 - d.scale) + 0.12));
  let img = sharp(src, raw);
  if (d.flip) img = img.flop();
  const extended = await img.extend({ top: pad, bottom: pad, left: pad, right: pad, extendWith: "copy" }).raw().toBuffer();
  const W = IMAGE_WIDTH + 2 * pad, H = IMAGE_HEIGHT + 2 * pad;
  const zw = Math.round(W * d.scale), zh = Math.round(H * d.scale);
  const rotated = await sharp(extended, { raw: { width: W, height: H, channels: 3 } })
    .resize(zw, zh, { kernel: "linear" })
    .rotate(d.angle, { background: "#808080" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const left = Math.round((rotated.info.width - IMAGE_WIDTH) / 2) + d.dx, top = Math.round((rotated.info.height - IMAGE_HEIGHT) / 2) + d.dy;
  let cut = sharp(rotated.data, { raw: { width: rotated.info.width, height: rotated.info.height, channels: 3 } })
    .extract({ left: Math.max(0, left), top: Math.max(0, top), width: IMAGE_WIDTH, height: IMAGE_HEIGHT });
  // Colour jitter only when drawn ("geometric" draws 1 for all three: the pixels keep their colours exactly).
  if (d.brightness !== 1 || d.saturation !== 1) cut = cut.modulate({ brightness: d.brightness, saturation: d.saturation });
  if (d.contrast !== 1) cut = cut.linear(d.contrast, 128 * (1 - d.contrast));
  const out = await cut.raw().toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Copies the rows' portraits into one packed [n × IMAGE_BYTES] buffer of its own (transferable to a worker). */
function packRows(pixels: Uint8Array, rows: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(rows.length * IMAGE_BYTES);
  for (let i = 0; i < rows.length; i++) out.set(pixels.subarray(rows[i] * IMAGE_BYTES, (rows[i] + 1) * IMAGE_BYTES), i * IMAGE_BYTES);
  return out;
}

/**
 * Augments packed portraits ([n × IMAGE_BYTES], one draw each) with sharp, all in flight, into a new packed buffer.
 * Each portrait takes three sharp calls, and each call after the first starts only when this thread's event loop is
 * free: in the thread that runs the training step, only between steps (hence AugmentWorker).
 */
export async function augmentPacked(src: Uint8Array, draws: readonly AugmentDraw[]): Promise<Uint8Array<ArrayBuffer>> {
  if (src.length !== draws.length * IMAGE_BYTES) throw new Error(`augmentPacked: expected ${draws.length} portraits of ${IMAGE_BYTES} bytes, got ${src.length} bytes`);
  const out = new Uint8Array(src.length);
  await mapLimit(draws, draws.length, async (d, i) => {
    out.set(await augmentOne(src.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), d), i * IMAGE_BYTES);
  });
  return out;
}

/** One draw per row, in row order, from `rng` (so a seed repeats exactly wherever the pixels are then made). */
const drawRows = (n: number, aug: AugmentOptions, rng: Rng) => Array.from({ length: n }, () => drawAugment(aug, rng));

/**
 * Augments the rows' portraits with sharp in this thread and returns their pixels packed as a new
 * [n × IMAGE_BYTES] uint8 buffer, rows in order. Parameters are drawn from `rng` in row order when called.
 */
export function augmentRows(pixels: Uint8Array, rows: ArrayLike<number>, aug: AugmentOptions, rng: Rng): Promise<Uint8Array> {
  return augmentPacked(packRows(pixels, rows), drawRows(rows.length, aug, rng));
}

interface WorkerReply {
  id: number;
  out?: Uint8Array;
  error?: string;
}

/**
 * The same augmentation in a worker thread (lib/data/augment_worker.ts), so that a portrait's sharp calls follow one
 * another while the training step holds the main thread. `augmentRows` draws the parameters here, when called (the
 * pixels equal those of the in-thread `augmentRows` for the same seed), and sends the rows' portraits over. `close()`
 * ends the worker; calls still waiting then reject.
 */
export class AugmentWorker {
  #worker: Worker;
  #pending = new Map<number, { resolve: (out: Uint8Array) => void; reject: (e: Error) => void }>();
  #next = 0;
  #closed = false;

  constructor() {
    this.#worker = new Worker(new URL("./augment_worker.ts", import.meta.url).href, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const p = this.#pending.get(e.data.id);
      if (!p) return;
      this.#pending.delete(e.data.id);
      if (e.data.out) p.resolve(e.data.out);
      else p.reject(new Error(`augmentation worker: ${e.data.error}`));
    };
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`augmentation worker failed: ${e.message}`));
    };
  }

  augmentRows(pixels: Uint8Array, rows: ArrayLike<number>, aug: AugmentOptions, rng: Rng): Promise<Uint8Array> {
    if (this.#closed) return Promise.reject(new Error("AugmentWorker: used after close()"));
    const draws = drawRows(rows.length, aug, rng);
    const src = packRows(pixels, rows);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, src, draws }, [src.buffer]);
    });
  }

  #fail(e: Error): void {
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
  }

  /** Ends the worker; augmentations still in flight reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
    this.#fail(new Error("AugmentWorker: closed with augmentations in flight"));
  }
}
