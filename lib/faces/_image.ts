// Pixels in and out: decoding any image file to RGB with sharp, and resampling a region of an RGB
// image through a similarity transform (scale, rotation, shift) with edge replication and box
// supersampling, so that one routine does crops that reach past the borders, tilted crops and
// large down-scalings without aliasing.

import sharp from "sharp";

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
    throw new Error(`portraitFromImage: cannot read '${path}': ${(err as Error).message}`);
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
 * Resamples `src` into an outW x outH RGB image through `t`. Bilinear, with n x n supersampling
 * (n = ceil(s), at most 8) when shrinking; source coordinates outside the image are clamped to the
 * nearest edge pixel.
 */
export function resample(src: RgbImage, t: Similarity, outW: number, outH: number): Uint8Array {
  const { data, width: w, height: h } = src;
  const out = new Uint8Array(outW * outH * 3);
  const n = Math.min(8, Math.max(1, Math.ceil(t.s - 1e-6)));
  const cos = Math.cos(t.angle) * t.s, sin = Math.sin(t.angle) * t.s;
  const inv = 1 / (n * n);
  const acc = [0, 0, 0];
  for (let v = 0; v < outH; v++) {
    for (let u = 0; u < outW; u++) {
      acc[0] = acc[1] = acc[2] = 0;
      for (let j = 0; j < n; j++) {
        const dv = v + (j + 0.5) / n - t.oy;
        for (let i = 0; i < n; i++) {
          const du = u + (i + 0.5) / n - t.ox;
          // Source pixel centres sit at integer + 0.5.
          const x = t.cx + cos * du - sin * dv - 0.5;
          const y = t.cy + sin * du + cos * dv - 0.5;
          const xf = Math.floor(x), yf = Math.floor(y);
          const fx = x - xf, fy = y - yf;
          const x0 = xf < 0 ? 0 : xf >= w ? w - 1 : xf, x1 = xf + 1 < 0 ? 0 : xf + 1 >= w ? w - 1 : xf + 1;
          const y0 = yf < 0 ? 0 : yf >= h ? h - 1 : yf, y1 = yf + 1 < 0 ? 0 : yf + 1 >= h ? h - 1 : yf + 1;
          const p00 = (y0 * w + x0) * 3, p01 = (y0 * w + x1) * 3, p10 = (y1 * w + x0) * 3, p11 = (y1 * w + x1) * 3;
          const w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
          for (let c = 0; c < 3; c++) {
            acc[c] += data[p00 + c] * w00 + data[p01 + c] * w01 + data[p10 + c] * w10 + data[p11 + c] * w11;
          }
        }
      }
      const o = (v * outW + u) * 3;
      for (let c = 0; c < 3; c++) out[o + c] = Math.round(acc[c] * inv);
    }
  }
  return out;
}
