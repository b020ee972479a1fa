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
  augmentBatch,
  augmentFor,
  type AugmentOptions,
  drawAugments,
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
  for (let k = 0; k < 3; k++) makeTrainBatch(px, [0, 1, 2, 3], { norm, augment: DEFAULT_AUGMENT, rng }).dispose();
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

/** The rows' portraits augmented with draws from `rng`, as 0..1 values. */
function augmentRows(px: Uint8Array, rows: number[], aug: AugmentOptions, rng: Rng): Float32Array {
  const x = tf.tensor4d(gatherPixels(px, rows), [rows.length, IMAGE_HEIGHT, IMAGE_WIDTH, 3]);
  const y = augmentBatch(x, drawAugments(rows.length, aug, rng));
  const out = y.dataSync() as Float32Array;
  tf.dispose([x, y]);
  return out;
}

const NO_AUGMENT: AugmentOptions = { flip: 0, shift: 0, scale: 0, rotate: 0, brightness: 0, contrast: 0, saturation: 0 };

Deno.test("augmentation is seeded, changes every image, keeps its content on the 0..1 scale, and leaks no tensors", () => {
  const px = smoothPixels(3);
  const before = tf.memory().numTensors;
  const a = augmentRows(px, [0, 1, 2], DEFAULT_AUGMENT, new Rng(11));
  const b = augmentRows(px, [0, 1, 2], DEFAULT_AUGMENT, new Rng(11));
  assert.equal(tf.memory().numTensors, before);
  assert.equal(a.length, 3 * IMAGE_BYTES);
  assert.deepEqual(a, b);
  assert.ok(a.every((v) => v >= 0 && v <= 1), "clipped to 0..1");
  for (let k = 0; k < 3; k++) {
    const src = px.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES), dst = a.subarray(k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES);
    let diff = 0, sum = 0;
    for (let i = 0; i < IMAGE_BYTES; i++) diff += Math.abs(src[i] / 255 - dst[i]), sum += dst[i];
    assert.ok(diff / IMAGE_BYTES > 1 / 255, `image ${k} changed`);
    assert.ok(sum / IMAGE_BYTES > 40 / 255, `image ${k} kept its content (mean ${sum / IMAGE_BYTES})`);
  }
});

Deno.test("a flip-only augmentation mirrors every image of the batch, and no augmentation leaves it as it was", () => {
  const px = smoothPixels(3);
  const f = augmentRows(px, [0, 1, 2], { ...NO_AUGMENT, flip: 1 }, new Rng(1));
  const same = augmentRows(px, [0, 1, 2], NO_AUGMENT, new Rng(1));
  for (let k = 0; k < 3; k++) {
    for (const y of [0, 50, 107]) {
      for (const x of [0, 20, 83]) {
        for (let c = 0; c < 3; c++) {
          const at = k * IMAGE_BYTES + (y * IMAGE_WIDTH + x) * 3 + c;
          assert.ok(Math.abs(f[at] - px[k * IMAGE_BYTES + (y * IMAGE_WIDTH + (IMAGE_WIDTH - 1 - x)) * 3 + c] / 255) < 1e-6, `image ${k} (${x}, ${y}) mirrored`);
          assert.ok(Math.abs(same[at] - px[at] / 255) < 1e-6, `image ${k} (${x}, ${y}) unchanged`);
        }
      }
    }
  }
});

Deno.test("a drawn shift of (dx, dy) pixels moves the content right by dx and down by dy, edges replicated", () => {
  const px = smoothPixels(1);
  const draw = { flip: false, scale: 1, dx: 5, dy: -3, angle: 0, brightness: 1, contrast: 1, saturation: 1 };
  const x = tf.tensor4d(gatherPixels(px, [0]), [1, IMAGE_HEIGHT, IMAGE_WIDTH, 3]);
  const y = augmentBatch(x, [draw]);
  const v = y.dataSync();
  const src = (yy: number, xx: number, c: number) => px[(Math.min(Math.max(yy, 0), IMAGE_HEIGHT - 1) * IMAGE_WIDTH + Math.min(Math.max(xx, 0), IMAGE_WIDTH - 1)) * 3 + c] / 255;
  for (const [yy, xx] of [[10, 10], [50, 40], [107, 83], [0, 0], [104, 2]]) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(v[(yy * IMAGE_WIDTH + xx) * 3 + c] - src(yy + 3, xx - 5, c)) < 1e-5, `(${xx}, ${yy}) channel ${c}`);
  }
  tf.dispose([x, y]);
});

Deno.test("--augment geometric leaves a one-colour portrait's every pixel at its colour (no jitter), --augment full changes it, --augment none is no augmentation", () => {
  const px = new Uint8Array(4 * IMAGE_BYTES);
  for (let i = 0; i < px.length; i += 3) px.set([200, 120, 40], i);
  const geo = augmentRows(px, [0, 1, 2, 3], augmentFor("geometric")!, new Rng(3));
  assert.ok(geo.every((v, i) => Math.abs(v - [200, 120, 40][i % 3] / 255) < 1e-6), "geometric keeps the colour");
  const full = augmentRows(px, [0, 1, 2, 3], augmentFor("full")!, new Rng(3));
  for (let r = 0; r < 4; r++) assert.ok(full.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES).some((v, i) => Math.abs(v - [200, 120, 40][i % 3] / 255) > 1 / 255), `full jitters row ${r}`);
  assert.equal(augmentFor("none"), undefined);
});

Deno.test("the colour jitter is brightness ×b, then a blend with the luma grey by s, then a blend with mid-grey by c, clipped to 0..1, on the 0..1 scale and on a normalised batch alike", () => {
  const colours = [[200, 120, 40], [250, 250, 240], [10, 60, 30]];
  const px = new Uint8Array(colours.length * IMAGE_BYTES);
  colours.forEach((rgb, k) => { for (let i = 0; i < IMAGE_BYTES; i += 3) px.set(rgb, k * IMAGE_BYTES + i); });
  const rows = colours.map((_, k) => k);
  const draws = [1.1, 1.12, 0.9].map((b, k) => ({ flip: false, scale: 1, dx: 0, dy: 0, angle: 0, brightness: b, saturation: [0.9, 1.15, 1][k], contrast: [1.15, 1.1, 0.85][k] }));
  const expected = colours.map((rgb, k) => {
    const d = draws[k], v = rgb.map((c) => (c / 255) * d.brightness);
    const grey = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
    return v.map((c) => Math.min(1, Math.max(0, d.contrast * (grey + d.saturation * (c - grey) - 0.5) + 0.5)));
  });
  assert.ok(expected[1].some((v) => v === 1), "the second colour is clipped");
  const norm = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.25, 0.2, 0.1] as [number, number, number] };
  const unit = tf.tensor4d(gatherPixels(px, rows), [3, IMAGE_HEIGHT, IMAGE_WIDTH, 3]), normalised = makeBatch(px, rows, { norm });
  const a = augmentBatch(unit, draws), b = augmentBatch(normalised, draws, norm);
  const av = a.dataSync(), bv = b.dataSync();
  for (let k = 0; k < 3; k++) {
    for (const p of [0, 4000, IMAGE_HEIGHT * IMAGE_WIDTH - 1]) {
      for (let c = 0; c < 3; c++) {
        const at = k * IMAGE_BYTES + p * 3 + c;
        assert.ok(Math.abs(av[at] - expected[k][c]) < 1e-5, `colour ${k} channel ${c}: ${av[at]} vs ${expected[k][c]}`);
        assert.ok(Math.abs(bv[at] * norm.std[c] + norm.mean[c] - expected[k][c]) < 1e-5, `normalised, colour ${k} channel ${c}`);
      }
    }
  }
  tf.dispose([unit, normalised, a, b]);
});

Deno.test("makeTrainBatch() with augmentation is the augmented pixels normalised, from the same draws in row order", () => {
  const px = smoothPixels(5);
  const rows = [4, 0, 2, 2];
  const norm = { mean: [0.5, 0.4, 0.3] as [number, number, number], std: [0.25, 0.2, 0.1] as [number, number, number] };
  const batch = makeTrainBatch(px, rows, { norm, augment: DEFAULT_AUGMENT, rng: new Rng(5) });
  const v = batch.dataSync();
  const aug = augmentRows(px, rows, DEFAULT_AUGMENT, new Rng(5));
  for (let i = 0; i < aug.length; i += 997) assert.ok(Math.abs(v[i] - (aug[i] - norm.mean[i % 3]) / norm.std[i % 3]) < 1e-5, `value ${i}`);
  batch.dispose();
});

Deno.test("labelTensor() keeps label codes and -1 for missing", () => {
  const t = labelTensor(new Int8Array([0, -1, 2, 1]), [3, 1, 2]);
  assert.deepEqual(Array.from(t.dataSync()), [1, -1, 2]);
  t.dispose();
});
