/**
 * Decodes one portrait PNG with sharp and checks it is what a Tiny Portrait
 * must be: a PNG, 84 wide × 108 high, 3 channels (RGB). Problems come back
 * as values, not exceptions, so a scan can list every bad file and go on.
 */
import sharp from "sharp";
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "./schema.ts";

export type ImageProblemKind = "missing" | "bad_header" | "corrupt" | "wrong_size" | "wrong_channels" | "not_a_file";

export interface ImageProblem {
  file: string;
  kind: ImageProblemKind;
  message: string;
}

export type DecodeResult = { ok: true; pixels: Uint8Array } | { ok: false; problem: ImageProblem };

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const EXPECTED = `a ${IMAGE_WIDTH}x${IMAGE_HEIGHT} (width x height) RGB PNG`;

/**
 * Reads and decodes `path`. When `into` is given the pixels (uint8, HWC) are
 * written there (it must hold IMAGE_BYTES) and no other copy is kept.
 */
export async function decodePortrait(path: string, into?: Uint8Array): Promise<DecodeResult> {
  let bytes: Uint8Array;
  try {
    // A FIFO or device named like a portrait would block the read forever: only regular files are read.
    const st = await Deno.stat(path);
    if (!st.isFile) {
      const what = st.isDirectory ? "a folder" : st.isFifo ? "a FIFO (named pipe)" : "not a regular file";
      return { ok: false, problem: { file: path, kind: "not_a_file", message: `${what}, skipped; expected ${EXPECTED}` } };
    }
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return { ok: false, problem: { file: path, kind: "missing", message: `file not found; expected ${EXPECTED}` } };
    }
    return { ok: false, problem: { file: path, kind: "corrupt", message: `cannot read: ${(err as Error).message}` } };
  }
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) {
    return {
      ok: false,
      problem: { file: path, kind: "bad_header", message: `not a PNG (bad signature, ${bytes.length} bytes); expected ${EXPECTED}` },
    };
  }
  let data: Uint8Array, info: sharp.OutputInfo;
  try {
    const meta = await sharp(bytes).metadata();
    if (meta.width !== IMAGE_WIDTH || meta.height !== IMAGE_HEIGHT) {
      return {
        ok: false,
        problem: {
          file: path,
          kind: "wrong_size",
          message: `image is ${meta.width}x${meta.height}; expected ${IMAGE_WIDTH}x${IMAGE_HEIGHT} (width x height)`,
        },
      };
    }
    if (meta.channels !== IMAGE_CHANNELS) {
      return {
        ok: false,
        problem: {
          file: path,
          kind: "wrong_channels",
          message: `image has ${meta.channels} channel(s) (${meta.space ?? "?"}${meta.hasAlpha ? "+alpha" : ""}); expected 3 (RGB)`,
        },
      };
    }
    ({ data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true }));
  } catch (err) {
    return {
      ok: false,
      problem: { file: path, kind: "corrupt", message: `PNG cannot be decoded: ${(err as Error).message}` },
    };
  }
  if (data.length !== IMAGE_BYTES || info.channels !== IMAGE_CHANNELS) {
    return {
      ok: false,
      problem: { file: path, kind: "corrupt", message: `decoded to ${data.length} bytes; expected ${IMAGE_BYTES}` },
    };
  }
  if (into) {
    into.set(data);
    return { ok: true, pixels: into };
  }
  return { ok: true, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** Encodes raw RGB (HWC uint8) as PNG. */
export function encodePng(pixels: Uint8Array, width = IMAGE_WIDTH, height = IMAGE_HEIGHT, channels: 1 | 3 | 4 = 3): Promise<Uint8Array> {
  return sharp(pixels, { raw: { width, height, channels } }).png().toBuffer();
}
