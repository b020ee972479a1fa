// Rendering and camera-like post-processing: SVG -> pixels (sharp/librsvg), seeded mild blur,
// additive Gaussian noise, a JPEG round trip (quality 35-90) and the final RGB PNG.

import sharp from "sharp";
import { Buffer } from "node:buffer";
import { HEIGHT, WIDTH } from "./_draw.ts";
import type { Source } from "./_bad.ts";
import { Rng } from "../../util/rng.ts";

const RAW = { raw: { width: WIDTH, height: HEIGHT, channels: 3 as const } };

export interface PostOptions {
  /** Range of the per-pixel noise standard deviation (0..255 scale). */
  noise?: [number, number];
  /** Probability of a mild Gaussian blur. */
  blurChance?: number;
  /** Range of the JPEG quality. */
  quality?: [number, number];
}

/** SVG or raw source -> post-processed 84x108 RGB PNG bytes. Deterministic in (source, rng seed). */
export async function postProcess(
  src: Source,
  rng: Rng,
  opts: PostOptions = {},
): Promise<Uint8Array> {
  const blur = rng.chance(opts.blurChance ?? 0.3) ? rng.uniform(0.3, 0.85) : 0;
  const [n0, n1] = opts.noise ?? [1, 6];
  const sd = rng.uniform(n0, n1);
  const [q0, q1] = opts.quality ?? [35, 90];
  const quality = rng.int(q0, q1);
  const chroma = rng.chance(0.7) ? "4:2:0" : "4:4:4";

  let pixels: Uint8Array;
  if ("svg" in src) {
    let p = sharp(Buffer.from(src.svg)).removeAlpha();
    if (blur > 0) p = p.blur(blur);
    pixels = await p.raw().toBuffer();
  } else if (blur > 0) {
    pixels = await sharp(src.raw, RAW).blur(blur).raw().toBuffer();
  } else {
    pixels = src.raw;
  }
  if (pixels.length !== WIDTH * HEIGHT * 3) {
    throw new Error(
      `synthetic: rendered ${pixels.length} bytes, expected ${
        WIDTH * HEIGHT * 3
      }`,
    );
  }
  const noisy = addNoise(pixels, sd, rng);
  return await encode(noisy, quality, chroma);
}

/** 2048 standard-normal values from a fixed seed: table look-ups make per-pixel noise cheap. */
const GAUSS = (() => {
  const r = new Rng(0x6a09e667);
  return Float32Array.from({ length: 2048 }, () => r.normal());
})();

/** Additive Gaussian noise, partly shared across channels (luminance) and partly per channel. */
function addNoise(px: Uint8Array, sd: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(px.length);
  const shared = sd * 0.7, own = sd * 0.5;
  for (let i = 0; i < px.length; i += 3) {
    const u1 = rng.nextU32(), u2 = rng.nextU32();
    const l = shared * GAUSS[u1 & 2047];
    const v0 = px[i] + l + own * GAUSS[(u1 >>> 11) & 2047];
    const v1 = px[i + 1] + l + own * GAUSS[u2 & 2047];
    const v2 = px[i + 2] + l + own * GAUSS[(u2 >>> 11) & 2047];
    out[i] = v0 < 0 ? 0 : v0 > 255 ? 255 : Math.round(v0);
    out[i + 1] = v1 < 0 ? 0 : v1 > 255 ? 255 : Math.round(v1);
    out[i + 2] = v2 < 0 ? 0 : v2 > 255 ? 255 : Math.round(v2);
  }
  return out;
}

/** Raw RGB -> JPEG (artefacts) -> decoded -> RGB PNG. */
async function encode(
  raw: Uint8Array,
  quality: number,
  chroma: string,
): Promise<Uint8Array> {
  const jpeg = await sharp(raw, RAW).jpeg({
    quality,
    chromaSubsampling: chroma,
  }).toBuffer();
  const { data, info } = await sharp(jpeg).removeAlpha().toColourspace("srgb")
    .raw().toBuffer({ resolveWithObject: true });
  if (info.width !== WIDTH || info.height !== HEIGHT || info.channels !== 3) {
    throw new Error(
      `synthetic: decoded ${info.width}x${info.height}x${info.channels}, expected ${WIDTH}x${HEIGHT}x3`,
    );
  }
  return await sharp(data, RAW).png({ compressionLevel: 6 }).toBuffer();
}

/**
 * A near-duplicate of an encoded image: brightness changed by up to +-3% and/or shifted by one
 * pixel (edges replicated), then re-encoded through JPEG at high quality.
 */
export async function nearDuplicate(
  png: Uint8Array,
  rng: Rng,
): Promise<Uint8Array> {
  const px = await sharp(png).removeAlpha().raw().toBuffer();
  const mode = rng.weighted({ brightness: 0.4, shift: 0.4, both: 0.2 });
  let gain = 1;
  if (mode !== "shift") {
    gain = 1 + (rng.chance(0.5) ? 1 : -1) * rng.uniform(0.01, 0.03);
  }
  let dx = 0, dy = 0;
  if (mode !== "brightness") {
    [dx, dy] = rng.choice([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1]]);
  }
  const out = new Uint8Array(px.length);
  for (let y = 0; y < HEIGHT; y++) {
    const sy = Math.min(HEIGHT - 1, Math.max(0, y - dy));
    for (let x = 0; x < WIDTH; x++) {
      const sx = Math.min(WIDTH - 1, Math.max(0, x - dx));
      const o = (y * WIDTH + x) * 3, s = (sy * WIDTH + sx) * 3;
      for (let c = 0; c < 3; c++) {
        out[o + c] = Math.min(255, Math.round(px[s + c] * gain));
      }
    }
  }
  return await encode(out, rng.int(85, 95), "4:2:0");
}
