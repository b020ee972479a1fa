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
  makeBatch,
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

Deno.test("makeBatch() normalises by mean/std and leaks no tensors, with or without augmentation", () => {
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
  const back = denormalize(x, norm);
  assert.equal(back[7], px[3 * IMAGE_BYTES + 7]);
  x.dispose();
  const rng = new Rng(5);
  for (let k = 0; k < 3; k++) makeBatch(px, [0, 1, 2, 3], { norm, augment: DEFAULT_AUGMENT, rng }).dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("augmentation is seeded, changes the pixels, and a flip-only augmentation mirrors the image", () => {
  const px = randomPixels(2);
  const norm = { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
  const augA = makeBatch(px, [0, 1], { norm, augment: DEFAULT_AUGMENT, rng: new Rng(11) });
  const augB = makeBatch(px, [0, 1], { norm, augment: DEFAULT_AUGMENT, rng: new Rng(11) });
  const plain = makeBatch(px, [0, 1], { norm });
  assert.deepEqual(augA.dataSync(), augB.dataSync());
  assert.notDeepEqual(augA.dataSync(), plain.dataSync());
  const flipOnly = { flip: 1, shift: 0, scale: 0, brightness: 0, contrast: 0, saturation: 0 };
  const flipped = makeBatch(px, [0], { norm, augment: flipOnly, rng: new Rng(1) });
  const p = plain.dataSync(), f = flipped.dataSync();
  // pixel (y=10, x=0) of the flipped image equals pixel (y=10, x=83) of the original
  for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(f[(10 * IMAGE_WIDTH + 0) * 3 + c] - p[(10 * IMAGE_WIDTH + 83) * 3 + c]) < 1e-5);
  }
  // Every image of an augmented batch keeps its content (tfjs cpu Transform zeroes all but the first).
  const shiftOnly = { flip: 0, shift: 0.05, scale: 0.05, brightness: 0, contrast: 0, saturation: 0 };
  const shifted = makeBatch(px, [0, 1], { norm, augment: shiftOnly, rng: new Rng(2) });
  const second = Array.from(shifted.dataSync().subarray(IMAGE_BYTES));
  const mean = second.reduce((a: number, v: number) => a + v, 0) / second.length;
  assert.ok(mean > 0.3 && mean < 0.7, `second image mean ${mean}`);
  tf.dispose([augA, augB, plain, flipped, shifted]);
});

Deno.test("labelTensor() keeps label codes and -1 for missing", () => {
  const t = labelTensor(new Int8Array([0, -1, 2, 1]), [3, 1, 2]);
  assert.deepEqual(Array.from(t.dataSync()), [1, -1, 2]);
  t.dispose();
});
