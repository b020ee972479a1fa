/**
 * face-api's 128-D face descriptors of 108×84 portraits (the aligned crop, as lib/faces faceDescriptors
 * computes them with face-api's own net) from the rebuilt recognition ResNet of face_resnet.ts: each
 * conv + scale + ReLU is one FusedConv2D there (face-api runs conv, multiply, add and ReLU apart) and the
 * crop is two matrix products, and each block's second conv, shortcut sum and ReLU are one ConvAddReLU, so it is
 * faster on the same engine. Equal to faceDescriptors within 1e-5
 * (tests/models/face_resnet_test.ts). The exploration, the Fréchet descriptor distance and the GAN's
 * diversity checks use it.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { makeBatch, type Normalization } from "../data/batches.ts";
import { checkPortraitRows } from "../faces/mod.ts";
import { createFaceResnetBackbone, DEFAULT_FACE_RESNET_CONFIG } from "./face_resnet.ts";

/** Raw 0..255 pixels in: the backbone's input layer then sees the pixels themselves ((p/255 − 0)·255). */
const PIXELS: Normalization = { mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255] };

let net: Promise<tfl.LayersModel> | null = null;

/** The pretrained backbone on the aligned crop, built once per process (like face-api's nets in lib/faces). */
function descriptorNet(): Promise<tfl.LayersModel> {
  net ??= createFaceResnetBackbone({ ...DEFAULT_FACE_RESNET_CONFIG, crop: "aligned", dropout: 0, normalization: PIXELS });
  return net;
}

export interface DescriptorOptions {
  /** Portraits per forward pass (default 32). */
  batchSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/** rows.length × 128 descriptors, row by row (distance < ~0.6: the same person, in face-api's convention). */
export async function portraitDescriptors(pixels: Uint8Array, rows: ArrayLike<number>, opts: DescriptorOptions = {}): Promise<Float32Array> {
  checkPortraitRows("portraitDescriptors", pixels, rows);
  const bs = opts.batchSize ?? 32;
  if (!(Number.isInteger(bs) && bs > 0)) throw new Error(`portraitDescriptors: expected batchSize to be a positive integer, got ${bs}`);
  const model = await descriptorNet();
  const out = new Float32Array(rows.length * 128);
  for (let s = 0; s < rows.length; s += bs) {
    const batch = Array.from({ length: Math.min(bs, rows.length - s) }, (_, i) => rows[s + i]);
    const x = makeBatch(pixels, batch, { norm: PIXELS });
    const y = model.predict(x) as tf.Tensor;
    try {
      out.set(await y.data() as Float32Array, s * 128);
    } finally {
      tf.dispose([x, y]);
    }
    opts.onProgress?.(s + batch.length, rows.length);
  }
  return out;
}
