import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import {
  channelStats,
  classBalanceWeights,
  DEFAULT_AUGMENT,
  denormalize,
  gatherPixels,
  labelTensor,
  augmentFor,
  augmentRows,
  AugmentWorker,
  makeBatch,
  makeTrainBatch,
  planEpoch,
} from "../../lib/data/batches.ts";
import { IMAGE_BYTES, IMAGE_HEIGHT, IMAGE_WIDTH } from "../../lib/data/schema.ts";
import { Rng } from "../../lib/util/rng.ts";

await tf.setBackend("cpu");

function randomPixels(n: number, seed = 3): Uint8Array {
  const rng = new Rng(seed);
  const px = new Uint8Array(n * IMAGE_BYTES);
  for (let i = 0; i < px.length; i++) px[i] = rng.int(0, 255);
  return px;
}

Deno.test("planEpoch() is repeatable for a seed, differs between epochs, and covers every row once", () => {
  const rows = Int32Array.from({ length: 103 }, (_, i) => i * 2);
  const a = planEpoch(rows, { batchSize: 10, seed: 7, epoch: 0 });
  const b = planEpoch(rows, { batchSize: 10, seed: 7, epoch: 0 });
  const c = planEpoch(rows, { batchSize: 10, seed: 7, epoch: 1 });
  assert.deepEqual(a.map((x) => Array.from(x)), b.map((x) => Array.from(x)));
  assert.notDeepEqual(a.map((x) => Array.from(x)), c.map((x) => Array.from(x)));
  assert.equal(a.length, 11);
  assert.equal(a[10].length, 3);
  const all = a.flatMap((x) => Array.from(x)).sort((p, q) => p - q);
  assert.deepEqual(all, Array.from(rows));
  assert.equal(planEpoch(rows, { batchSize: 10, seed: 7, epoch: 0, dropLast: true }).length, 10);
  assert.deepEqual(Array.from(planEpoch(rows, { batchSize: 200, seed: 1, epoch: 0, shuffle: false })[0]), Array.from(rows));
});

Deno.test("class-weighted sampling draws each class about equally, however imbalanced the rows", () => {
  // 90% class 0, 9% class 1, 1% class 2, a few missing labels.
  const n = 5000;
  const labels = new Int8Array(n).map((_, i) => (i % 100 === 0 ? 2 : i % 100 < 10 ? 1 : 0));
  labels[5] = -1;
  const rows = Int32Array.from({ length: n }, (_, i) => i);
  const w = classBalanceWeights(labels, rows);
  assert.equal(w[5], 0);
  const batches = planEpoch(rows, { batchSize: 100, seed: 1, epoch: 0, weights: w, samples: 30000 });
  const counts = [0, 0, 0];
  for (const b of batches) for (const r of b) counts[labels[r]]++;
  for (const c of counts) assert.ok(Math.abs(c / 30000 - 1 / 3) < 0.02, `class share ${c / 30000}`);
});

Deno.test("sqrt sampling (power 0.5) draws each class in proportion to the square root of its count", () => {
  // Counts 3600 : 900 : 100 → square roots 60 : 30 : 10 → shares 0.6, 0.3, 0.1.
  const labels = new Int8Array(4600).map((_, i) => (i < 3600 ? 0 : i < 4500 ? 1 : 2));
  const rows = Int32Array.from({ length: labels.length }, (_, i) => i);
  const batches = planEpoch(rows, { batchSize: 100, seed: 2, epoch: 0, weights: classBalanceWeights(labels, rows, 0.5), samples: 40000 });
  const counts = [0, 0, 0];
  for (const b of batches) for (const r of b) counts[labels[r]]++;
  [0.6, 0.3, 0.1].forEach((share, c) => assert.ok(Math.abs(counts[c] / 40000 - share) < 0.015, `class ${c} share ${counts[c] / 40000}, expected ${share}`));
});

Deno.test("channelStats() matches a direct computation", () => {
  const px = randomPixels(4);
  const s = channelStats(px, [0, 1, 2, 3]);
  let sum = 0, sq = 0, count = 0;
  for (let i = 1; i < px.length; i += 3) {
    sum += px[i] / 255;
    sq += (px[i] / 255) ** 2;
    count++;
  }
  assert.ok(Math.abs(s.mean[1] - sum / count) < 1e-9);
  assert.ok(Math.abs(s.std[1] - Math.sqrt(sq / count - (sum / count) ** 2)) < 1e-9);
});

Deno.test("makeBatch() normalises by mean/std and leaks no tensors, with or without augmentation", async () => {
  const px = randomPixels(8);
  const norm = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.25, 0.2, 0.1] as [number, number, number] };
  const before = tf.memory().numTensors;
  const x = makeBatch(px, [3, 1], { norm });
  assert.deepEqual(x.shape, [2, IMAGE_HEIGHT, IMAGE_WIDTH, 3]);
  const v = x.dataSync();
  const raw = gatherPixels(px, [3, 1]);
  for (const i of [0, 1, 2, 1000, IMAGE_BYTES + 5]) {
    const c = i % 3;
    assert.ok(Math.abs(v[i] - (raw[i] - norm.mean[c]) / norm.std[c]) < 1e-5);
  }
  const back = await denormalize(x, norm);
  assert.equal(back[7], px[3 * IMAGE_BYTES + 7]);
  x.dispose();
  const rng = new Rng(5);
  for (let k = 0; k < 3; k++) (await makeTrainBatch(px, [0, 1, 2, 3], { norm, augment: DEFAULT_AUGMENT, rng })).dispose();
  assert.equal(tf.memory().numTensors, before);
});

/** A smooth test portrait (gradients), where augmentation effects are measurable. */
function smoothPixels(n: number): Uint8Array {
  const px = new Uint8Array(n * IMAGE_BYTES);
  for (let k = 0; k < n; k++) {
    for (let y = 0; y < IMAGE_HEIGHT; y++) {
      for (let x = 0; x < IMAGE_WIDTH; x++) {
        const o = k * IMAGE_BYTES + (y * IMAGE_WIDTH + x) * 3;
        px[o] = (x * 3 + k * 20) % 256;
        px[o + 1] = y * 2;
        px[o + 2] = 128;
      }
    }
  }
  return px;
}

Deno.test("augmentation is seeded, changes every image, keeps the size, and a flip-only augmentation mirrors the image", async () => {
  const px = smoothPixels(3);
  const a = await augmentRows(px, [0, 1, 2], DEFAULT_AUGMENT, new Rng(11));
  const b = await augmentRows(px, [0, 1, 2], DEFAULT_AUGMENT, new Rng(11));
  assert.equal(a.length, 3 * IMAGE_BYTES);
  assert.deepEqual(a, b);
  for (let k = 0; k < 3; k++) {
    const src = px.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES), dst = a.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES);
    let diff = 0, sum = 0;
    for (let i = 0; i < IMAGE_BYTES; i++) diff += Math.abs(src[i] - dst[i]), sum += dst[i];
    assert.ok(diff / IMAGE_BYTES > 1, `image ${k} changed`);
    assert.ok(sum / IMAGE_BYTES > 40, `image ${k} kept its content (mean ${sum / IMAGE_BYTES})`);
  }
  const flipOnly = { flip: 1, shift: 0, scale: 0, rotate: 0, brightness: 0, contrast: 0, saturation: 0 };
  const f = await augmentRows(px, [0], flipOnly, new Rng(1));
  for (const y of [0, 50, 107]) {
    for (let c = 0; c < 3; c++) assert.equal(f[(y * IMAGE_WIDTH + 0) * 3 + c], px[(y * IMAGE_WIDTH + 83) * 3 + c]);
  }
});

Deno.test("--augment geometric leaves a one-colour portrait's every pixel at its colour (no jitter), --augment full changes it, --augment none is no augmentation", async () => {
  const px = new Uint8Array(4 * IMAGE_BYTES);
  for (let i = 0; i < px.length; i += 3) px.set([200, 120, 40], i);
  const geo = await augmentRows(px, [0, 1, 2, 3], augmentFor("geometric")!, new Rng(3));
  assert.ok(geo.every((v, i) => v === [200, 120, 40][i % 3]), "geometric keeps the colour");
  const full = await augmentRows(px, [0, 1, 2, 3], augmentFor("full")!, new Rng(3));
  for (let r = 0; r < 4; r++) assert.ok(full.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES).some((v, i) => v !== [200, 120, 40][i % 3]), `full jitters row ${r}`);
  assert.equal(augmentFor("none"), undefined);
});

Deno.test("AugmentWorker makes the same pixels as augmentRows() in this thread for the same seed and rows, and training batches from it equal the in-thread ones", async () => {
  const px = smoothPixels(5);
  const worker = new AugmentWorker();
  try {
    const rows = [4, 0, 2, 2];
    const here = await augmentRows(px, rows, DEFAULT_AUGMENT, new Rng(21));
    const rng = new Rng(21);
    const [there, second] = await Promise.all([worker.augmentRows(px, rows, DEFAULT_AUGMENT, rng), worker.augmentRows(px, [1], DEFAULT_AUGMENT, rng)]);
    assert.deepEqual(there, here);
    // The second call drew after the first, as one in-thread stream would.
    const stream = new Rng(21);
    await augmentRows(px, rows, DEFAULT_AUGMENT, stream);
    assert.deepEqual(second, await augmentRows(px, [1], DEFAULT_AUGMENT, stream));
    const norm = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.25, 0.25, 0.25] as [number, number, number] };
    const a = await makeTrainBatch(px, rows, { norm, augment: DEFAULT_AUGMENT, rng: new Rng(5), worker });
    const b = await makeTrainBatch(px, rows, { norm, augment: DEFAULT_AUGMENT, rng: new Rng(5) });
    assert.deepEqual(a.dataSync(), b.dataSync());
    tf.dispose([a, b]);
  } finally {
    worker.close();
  }
});

Deno.test("AugmentWorker.close() rejects an augmentation still in flight and any call after it", async () => {
  const px = smoothPixels(2);
  const worker = new AugmentWorker();
  const inFlight = worker.augmentRows(px, [0, 1], DEFAULT_AUGMENT, new Rng(1));
  worker.close();
  await assert.rejects(inFlight, /closed with augmentations in flight/);
  await assert.rejects(worker.augmentRows(px, [0], DEFAULT_AUGMENT, new Rng(1)), /used after close/);
});

Deno.test("labelTensor() keeps label codes and -1 for missing", () => {
  const t = labelTensor(new Int8Array([0, -1, 2, 1]), [3, 1, 2]);
  assert.deepEqual(Array.from(t.dataSync()), [1, -1, 2]);
  t.dispose();
});
