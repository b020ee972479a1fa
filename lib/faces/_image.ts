// Pixels in and out: decoding any image file to RGB with sharp, and resampling a region of an RGB
// image through a similarity transform (scale, rotation, shift) with box supersampling, so that one
// routine does crops that reach past the borders (filled by edge replication, a mirror, a blurred
// mirror or the mean colour: `FillMode`), tilted crops and large down-scalings without aliasing.

import sharp from "sharp";
import { UserError } from "../util/errors.ts";

export interface RgbImage {
  /** uint8 RGB, HWC, width*height*3 bytes. */
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * Reads an image file (jpg / png / webp / gif / tiff / avif, grey or colour, with or without alpha;
 * EXIF orientation applied) into RGB. Images whose longer side exceeds `maxSide` are shrunk to it;
 * `scale` is the factor from the returned pixels back to the file's pixels (1 when not shrunk).
 * Throws an error naming the file when it is missing or cannot be decoded.
 */
export async function readRgb(path: string, maxSide = 2048): Promise<RgbImage & { scale: number; fileWidth: number; fileHeight: number }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new UserError(`portraitFromImage: cannot read '${path}': ${(err as Error).message}`);
  }
  try {
    const img = sharp(bytes, { failOn: "error" }).rotate();
    const meta = await img.metadata();
    // After EXIF rotation by 90/270 degrees width and height swap.
    const turned = (meta.orientation ?? 1) >= 5;
    const fileWidth = (turned ? meta.height : meta.width) ?? 0;
    const fileHeight = (turned ? meta.width : meta.height) ?? 0;
    if (!fileWidth || !fileHeight) throw new Error("no image size in the header");
    let pipeline = img.flatten({ background: "#808080" }).toColourspace("srgb");
    const longest = Math.max(fileWidth, fileHeight);
    if (longest > maxSide) pipeline = pipeline.resize({ width: maxSide, height: maxSide, fit: "inside", kernel: "lanczos3" });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    const rgb = toRgb(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), info.width, info.height, info.channels);
    return { data: rgb, width: info.width, height: info.height, scale: fileWidth / info.width, fileWidth, fileHeight };
  } catch (err) {
    throw new Error(`portraitFromImage: cannot decode '${path}' as an image: ${(err as Error).message}`);
  }
}

/** 1..4 interleaved channels → 3 (grey is repeated, alpha dropped). */
function toRgb(px: Uint8Array, w: number, h: number, channels: number): Uint8Array {
  if (channels === 3) return px;
  const n = w * h, out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (channels >= 3) {
      out[i * 3] = px[i * channels];
      out[i * 3 + 1] = px[i * channels + 1];
      out[i * 3 + 2] = px[i * channels + 2];
    } else {
      const g = px[i * channels];
      out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = g;
    }
  }
  return out;
}

/**
 * Output pixel centre (u+0.5, v+0.5) maps to source point
 *   x = cx + s*(cos a*(u+0.5-ox) - sin a*(v+0.5-oy)),  y = cy + s*(sin a*(u+0.5-ox) + cos a*(v+0.5-oy))
 * i.e. the output point (ox, oy) lands on the source point (cx, cy), `s` source pixels per output
 * pixel, rotated by `angle` radians.
 */
export interface Similarity {
  cx: number;
  cy: number;
  ox: number;
  oy: number;
  s: number;
  angle: number;
}

/**
 * What fills the part of a re-framed portrait that falls outside the photo (a tight crop re-framed
 * like a Tiny Portrait needs hair, background and shoulders that the photo does not have):
 * - "edge": the nearest edge pixel, repeated: smeared stripes above, below and beside the face;
 * - "mirror": the photo reflected at its borders (a mirrored forehead above, a mirrored chin below);
 * - "blur": the mirrored border, Gaussian-blurred (σ = `BLUR_SIGMA` portrait pixels), like an
 *   out-of-focus background; the photo's own pixels stay sharp;
 * - "mean": the photo's mean colour, flat.
 * Pixels inside the photo are the same in every mode; pixels that straddle the border blend the two.
 */
export type FillMode = "edge" | "mirror" | "blur" | "mean";
export const FILL_MODES: readonly FillMode[] = ["edge", "mirror", "blur", "mean"];
/** Blur of the "blur" fill, σ in output pixels (about the width of an eye in a Tiny Portrait). */
export const BLUR_SIGMA = 6;

/** Throws `${fn}: expected fill to be one of ...` unless `fill` is a FillMode. */
export function checkFill(fn: string, fill: unknown): asserts fill is FillMode {
  if (!FILL_MODES.includes(fill as FillMode)) throw new Error(`${fn}: expected fill to be one of ${FILL_MODES.join(", ")}, got '${fill}'`);
}

/** Index i reflected into 0..n-1 (…, 1, 0 | 0, 1, …, n-1 | n-1, …): period 2n, any distance out. */
function reflect(i: number, n: number): number {
  const m = ((i % (2 * n)) + 2 * n) % (2 * n);
  return m < n ? m : 2 * n - 1 - m;
}

/**
 * Resamples `src` into an outW x outH RGB image through `t`. Bilinear, with n x n supersampling
 * (n = ceil(s), at most 8) when shrinking. Source points outside the image are filled as `fill`
 * says (default "edge": clamped to the nearest edge pixel).
 */
export function resample(src: RgbImage, t: Similarity, outW: number, outH: number, fill: FillMode = "edge"): Uint8Array {
  checkFill("resample", fill);
  const { data, width: w, height: h } = src;
  const out = new Uint8Array(outW * outH * 3);
  const n = Math.min(8, Math.max(1, Math.ceil(t.s - 1e-6)));
  const cos = Math.cos(t.angle) * t.s, sin = Math.sin(t.angle) * t.s;
  const inv = 1 / (n * n);
  // Pixels past the border: "edge" clamps; the others reflect, then "mean" replaces them by the
  // mean colour and "blur" blends a blurred version in by their share (after the pass).
  const clamp = fill === "edge";
  const outside = fill === "mean" || fill === "blur" ? new Float32Array(outW * outH) : null;
  const mean = fill === "mean" ? meanColour(src) : null;
  const px = (p: number, inside: boolean, c: number) => (mean && !inside ? mean[c] : data[p + c]);
  const index = (i: number, m: number) => (clamp ? (i < 0 ? 0 : i >= m ? m - 1 : i) : i >= 0 && i < m ? i : reflect(i, m));
  for (let v = 0; v < outH; v++) {
    for (let u = 0; u < outW; u++) {
      let a0 = 0, a1 = 0, a2 = 0, away = 0;
      for (let j = 0; j < n; j++) {
        const dv = v + (j + 0.5) / n - t.oy;
        for (let i = 0; i < n; i++) {
          const du = u + (i + 0.5) / n - t.ox;
          // Source pixel centres sit at integer + 0.5.
          const x = t.cx + cos * du - sin * dv - 0.5;
          const y = t.cy + sin * du + cos * dv - 0.5;
          const xf = Math.floor(x), yf = Math.floor(y);
          const fx = x - xf, fy = y - yf;
          const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
          if (xf >= 0 && yf >= 0 && xf + 1 < w && yf + 1 < h) {
            // All four pixels inside: the common case away from the border.
            const p00 = (yf * w + xf) * 3, p01 = p00 + 3, p10 = p00 + w * 3, p11 = p10 + 3;
            a0 += data[p00] * w00 + data[p01] * w01 + data[p10] * w10 + data[p11] * w11;
            a1 += data[p00 + 1] * w00 + data[p01 + 1] * w01 + data[p10 + 1] * w10 + data[p11 + 1] * w11;
            a2 += data[p00 + 2] * w00 + data[p01 + 2] * w01 + data[p10 + 2] * w10 + data[p11 + 2] * w11;
            continue;
          }
          const x0 = index(xf, w), x1 = index(xf + 1, w), y0 = index(yf, h), y1 = index(yf + 1, h);
          const p00 = (y0 * w + x0) * 3, p01 = (y0 * w + x1) * 3, p10 = (y1 * w + x0) * 3, p11 = (y1 * w + x1) * 3;
          if (!outside) {
            a0 += data[p00] * w00 + data[p01] * w01 + data[p10] * w10 + data[p11] * w11;
            a1 += data[p00 + 1] * w00 + data[p01 + 1] * w01 + data[p10 + 1] * w10 + data[p11 + 1] * w11;
            a2 += data[p00 + 2] * w00 + data[p01 + 2] * w01 + data[p10 + 2] * w10 + data[p11 + 2] * w11;
            continue;
          }
          // Which of the four pixels lie inside the image (the others were reflected).
          const inX0 = xf >= 0 && xf < w, inX1 = xf + 1 >= 0 && xf + 1 < w, inY0 = yf >= 0 && yf < h, inY1 = yf + 1 >= 0 && yf + 1 < h;
          const i00 = inX0 && inY0, i01 = inX1 && inY0, i10 = inX0 && inY1, i11 = inX1 && inY1;
          away += (i00 ? 0 : w00) + (i01 ? 0 : w01) + (i10 ? 0 : w10) + (i11 ? 0 : w11);
          a0 += px(p00, i00, 0) * w00 + px(p01, i01, 0) * w01 + px(p10, i10, 0) * w10 + px(p11, i11, 0) * w11;
          a1 += px(p00, i00, 1) * w00 + px(p01, i01, 1) * w01 + px(p10, i10, 1) * w10 + px(p11, i11, 1) * w11;
          a2 += px(p00, i00, 2) * w00 + px(p01, i01, 2) * w01 + px(p10, i10, 2) * w10 + px(p11, i11, 2) * w11;
        }
      }
      const o = (v * outW + u) * 3;
      out[o] = Math.round(a0 * inv), out[o + 1] = Math.round(a1 * inv), out[o + 2] = Math.round(a2 * inv);
      if (outside) outside[v * outW + u] = away * inv;
    }
  }
  if (fill === "blur") blendBlurred(out, outside!, outW, outH, BLUR_SIGMA);
  return out;
}

/** Mean colour of an image (per channel, 0..255). */
export function meanColour(img: RgbImage): [number, number, number] {
  const sum = [0, 0, 0], n = img.width * img.height;
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) sum[c] += img.data[i * 3 + c];
  return [sum[0] / Math.max(n, 1), sum[1] / Math.max(n, 1), sum[2] / Math.max(n, 1)];
}

/**
 * In place: each pixel becomes (1 - a) * itself + a * its blur, a = `share[pixel]`; pixels with
 * a = 0 (inside the photo) are left untouched. The blur is three box blurs of radius r along rows
 * and three along columns (borders reflected), ≈ a Gaussian of σ = √(r(r+1)), r chosen for `sigma`;
 * its cost does not grow with σ.
 */
function blendBlurred(px: Uint8Array, share: Float32Array, w: number, h: number, sigma: number): void {
  if (!share.some((a) => a > 0)) return;
  const r = Math.max(1, Math.round(Math.sqrt(sigma * sigma + 0.25) - 0.5));
  let a = Float32Array.from(px), b = new Float32Array(px.length);
  // Rows (len w, step 3, one line per y and channel), then columns (len h, step 3w).
  for (const [len, step, lines] of [[w, 3, h], [h, 3 * w, w]] as const) {
    for (let pass = 0; pass < 3; pass++) {
      for (let l = 0; l < lines; l++) {
        for (let c = 0; c < 3; c++) {
          const base = (step === 3 ? l * w * 3 : l * 3) + c;
          boxLine(a, b, base, step, len, r);
        }
      }
      [a, b] = [b, a];
    }
  }
  for (let p = 0; p < w * h; p++) {
    const t = share[p];
    if (t <= 0) continue;
    for (let c = 0; c < 3; c++) px[p * 3 + c] = Math.round((1 - t) * px[p * 3 + c] + t * a[p * 3 + c]);
  }
}

/** One box blur (width 2r+1, reflected ends) of the `len` values src[base + i*step] into dst, by a running sum. */
function boxLine(src: Float32Array, dst: Float32Array, base: number, step: number, len: number, r: number): void {
  const inv = 1 / (2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += src[base + reflect(i, len) * step];
  for (let i = 0; i < len; i++) {
    dst[base + i * step] = sum * inv;
    sum += src[base + reflect(i + r + 1, len) * step] - src[base + reflect(i - r, len) * step];
  }
}

/** Share of the outW x outH output of `t` whose pixel centres fall outside `src` (0..1). */
export function outsideShare(src: { width: number; height: number }, t: Similarity, outW: number, outH: number): number {
  const cos = Math.cos(t.angle) * t.s, sin = Math.sin(t.angle) * t.s;
  let away = 0;
  for (let v = 0; v < outH; v++) {
    for (let u = 0; u < outW; u++) {
      const du = u + 0.5 - t.ox, dv = v + 0.5 - t.oy;
      const x = t.cx + cos * du - sin * dv, y = t.cy + sin * du + cos * dv;
      if (x < 0 || y < 0 || x > src.width || y > src.height) away++;
    }
  }
  return away / (outW * outH);
}
