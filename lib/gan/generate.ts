/**
 * Sampling a trained GAN (`deno task gan:generate`): the EMA generator of a run's
 * snapshot, latents from seeds (same seed → same image), the truncation trick in w
 * space (w' = w̄ + ψ·(w − w̄), w̄ the mean of 4,096 mapped latents of the same class),
 * and a latent interpolation strip (linear in w between two seeds).
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../data/schema.ts";
import sharp from "sharp";
import { exists, writeFileAtomic, readJson } from "../util/fs.ts";
import { mosaic } from "../viz/mosaic.ts";
import { classTensor, latentsForSeeds, LATEST, toPixels } from "./train.ts";
import type { GeneratorMeta } from "./train.ts";
import { UserError } from "../util/errors.ts";
import { loadSavedModel } from "../models/mod.ts";

export interface LoadedGenerator {
  mapping: tfl.LayersModel;
  synthesis: tfl.LayersModel;
  meta: GeneratorMeta;
  dir: string;
  dispose(): void;
}

/**
 * Loads the EMA generator from `path`: a generator folder (snapshots/network-*), a full
 * snapshot (snapshots/latest) or a run folder (its latest snapshot).
 */
export async function loadGenerator(path: string): Promise<LoadedGenerator> {
  const candidates = [path, join(path, LATEST), `${join(path, LATEST)}.old`];
  let dir: string | null = null;
  for (const c of candidates) {
    if ((await exists(join(c, "generator.json"))) && (await exists(join(c, "synthesisEma", "model.json")))) {
      dir = c;
      break;
    }
  }
  if (!dir) throw new UserError(`gan:generate: no generator in ${path} (expected generator.json and synthesisEma/ there or under ${LATEST}); train with deno task gan:train first`);
  const meta = await readJson<GeneratorMeta>(join(dir, "generator.json"));
  const mapping = await loadSavedModel(join(dir, "mappingEma"));
  const synthesis = await loadSavedModel(join(dir, "synthesisEma"));
  return { mapping, synthesis, meta, dir, dispose: () => (mapping.dispose(), synthesis.dispose()) };
}

/** Parses "85,265,297" and ranges "0-7" into seeds. */
export function parseSeeds(spec: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new UserError(`--seeds: expected comma-separated integers or ranges like 0-7, got '${part}'`);
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 10000) throw new UserError(`--seeds: bad range '${part}'`);
    for (let s = a; s <= b; s++) out.push(s);
  }
  if (!out.length) throw new UserError("--seeds: no seeds given");
  return out;
}

/** Class code for a class name of a conditional generator (null when unconditional). */
export function classCode(g: LoadedGenerator, name: string | undefined): number | null {
  if (!g.meta.classes.length) {
    if (name !== undefined) throw new UserError(`gan:generate: the generator is unconditional; drop --class`);
    return null;
  }
  if (name === undefined) return null; // caller cycles through classes
  const c = g.meta.classes.indexOf(name);
  if (c < 0) throw new UserError(`gan:generate: unknown --class '${name}'; this generator knows ${g.meta.classes.join(", ")}`);
  return c;
}

/** Mean w of 4,096 fixed latents (per class for a conditional generator). */
export function meanW(g: LoadedGenerator, cls: number | null, n = 4096): tf.Tensor2D {
  return tf.tidy(() => {
    const z = latentsForSeeds(Array.from({ length: n }, (_, i) => 5_000_000 + i), g.meta.model.latentDim);
    const w = g.mapping.predict(cls === null ? z : [z, classTensor(new Array(n).fill(cls))], { batchSize: 1024 }) as tf.Tensor2D;
    return tf.mean(w, 0, true) as tf.Tensor2D;
  });
}

/** Refuses a truncation ψ outside 0..2, naming the command whose --trunc it came from. */
export function checkTrunc(trunc: number, command = "gan:generate"): void {
  if (!(trunc >= 0 && trunc <= 2)) throw new UserError(`${command}: expected --trunc in 0..2, got ${trunc}`);
}

/** w for each seed (class per seed when conditional), truncated towards the class mean by ψ = trunc. */
export function seedsToW(g: LoadedGenerator, seeds: number[], classes: (number | null)[], trunc: number): tf.Tensor2D {
  checkTrunc(trunc);
  return tf.tidy(() => {
    const z = latentsForSeeds(seeds, g.meta.model.latentDim);
    const cond = g.meta.classes.length > 0;
    const w = g.mapping.predict(cond ? [z, classTensor(classes.map((c) => c ?? 0))] : z) as tf.Tensor2D;
    if (trunc === 1) return w;
    const avgs = new Map<number, tf.Tensor2D>();
    const rows = classes.map((c, i) => {
      const key = cond ? c ?? 0 : -1;
      if (!avgs.has(key)) avgs.set(key, meanW(g, cond ? key : null));
      const avg = avgs.get(key)!;
      return tf.add(avg, tf.mul(tf.sub(tf.slice(w, [i, 0], [1, -1]), avg), trunc));
    });
    return tf.concat(rows, 0) as tf.Tensor2D;
  });
}

/** Renders w rows to uint8 portraits (108×84×3 each). */
export async function renderW(g: LoadedGenerator, w: tf.Tensor2D): Promise<Uint8Array> {
  const img = g.synthesis.predict(w, { batchSize: 64 }) as tf.Tensor4D;
  try {
    return await toPixels(img);
  } finally {
    img.dispose();
  }
}

/** `steps` images linear in w from seed a to seed b. */
export async function interpolate(g: LoadedGenerator, a: number, b: number, steps: number, cls: number | null, trunc: number): Promise<Uint8Array> {
  if (!(Number.isInteger(steps) && steps >= 2)) throw new UserError(`gan:generate: expected --interp-steps ≥ 2, got ${steps}`);
  const w = tf.tidy(() => {
    const ends = seedsToW(g, [a, b], [cls, cls], trunc);
    const t = tf.tensor2d(Array.from({ length: steps }, (_, i) => i / (steps - 1)), [steps, 1]);
    const wa = tf.slice(ends, [0, 0], [1, -1]), wb = tf.slice(ends, [1, 0], [1, -1]);
    return tf.add(tf.mul(wa, tf.sub(1, t)), tf.mul(wb, t)) as tf.Tensor2D;
  });
  try {
    return await renderW(g, w);
  } finally {
    w.dispose();
  }
}

/** Raw tiles of a pixel buffer, for mosaic(). */
export function tilesOf(pixels: Uint8Array, captions: string[] = []): { image: { raw: Uint8Array; width: number; height: number; channels: 3 }; caption?: string }[] {
  const n = pixels.length / IMAGE_BYTES;
  return Array.from({ length: n }, (_, i) => ({
    image: { raw: pixels.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 as const },
    caption: captions[i],
  }));
}

export interface GenerateOptions {
  network: string;
  seeds: number[];
  trunc: number;
  out: string;
  /** Class name for a conditional generator; without it seeds cycle through the classes. */
  className?: string;
  /** Images in the interpolation strip between the first two seeds (0 = none). */
  interpSteps?: number;
}

export interface GenerateResult {
  files: string[];
  grid: string;
  interpolation: string | null;
  meta: GeneratorMeta;
}

/** Writes one PNG per seed (seedNNNN.png), grid.png and interpolation.png into `out`. */
export async function generateImages(o: GenerateOptions): Promise<GenerateResult> {
  const g = await loadGenerator(o.network);
  try {
    await Deno.mkdir(o.out, { recursive: true });
    const fixed = classCode(g, o.className);
    const cond = g.meta.classes.length > 0;
    const classes = o.seeds.map((_, i) => (cond ? fixed ?? i % g.meta.classes.length : null));
    const w = seedsToW(g, o.seeds, classes, o.trunc);
    const pixels = await renderW(g, w);
    w.dispose();
    const files: string[] = [];
    for (let i = 0; i < o.seeds.length; i++) {
      const png = await sharp(pixels.subarray(i * IMAGE_BYTES, (i + 1) * IMAGE_BYTES), { raw: { width: IMAGE_WIDTH, height: IMAGE_HEIGHT, channels: 3 } }).png().toBuffer();
      const file = join(o.out, `seed${String(o.seeds[i]).padStart(4, "0")}${cond ? `-${g.meta.classes[classes[i]!]}` : ""}.png`);
      await writeFileAtomic(file, new Uint8Array(png));
      files.push(file);
    }
    const captions = o.seeds.map((s, i) => `seed ${s}${cond ? ` ${g.meta.classes[classes[i]!]}` : ""}`);
    const grid = join(o.out, "grid.png");
    await writeFileAtomic(grid, await mosaic(tilesOf(pixels, captions), {
      columns: Math.min(8, o.seeds.length),
      title: `${g.meta.dataset} GAN, ${g.meta.kimg.toFixed(2)} kimg, truncation ψ=${o.trunc}`,
    }));
    let interpolation: string | null = null;
    const steps = o.interpSteps ?? 8;
    if (steps >= 2 && o.seeds.length >= 2) {
      const strip = await interpolate(g, o.seeds[0], o.seeds[1], steps, cond ? classes[0] : null, o.trunc);
      interpolation = join(o.out, "interpolation.png");
      await writeFileAtomic(interpolation, await mosaic(tilesOf(strip), {
        columns: steps,
        title: `w-space interpolation, seed ${o.seeds[0]} → ${o.seeds[1]}`,
      }));
    }
    return { files, grid, interpolation, meta: g.meta };
  } finally {
    g.dispose();
  }
}
