import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { initEngine } from "../../lib/engine/mod.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { makeBatch, REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { faceDescriptors } from "../../lib/faces/mod.ts";
import {
  buildFaceResnetBackbone,
  createFaceResnetBackbone,
  DEFAULT_FACE_RESNET_CONFIG,
  FACE_RESNET_BLOCKS,
  FACE_API_MEAN_RGB,
  faceResnetConfig,
  faceResnetCropBox,
  loadFaceResnetWeights,
  setTrainableFrom,
} from "../../lib/models/face_resnet.ts";
import { fileIO } from "../../lib/models/io.ts";
import { FaceResnetInput } from "../../lib/models/_face_resnet_layers.ts";
import { portraitDescriptors } from "../../lib/models/descriptors.ts";
import { disposeModel, loadSavedModel } from "../../lib/models/mod.ts";
import { withTempDir } from "../_fixtures.ts";

const BACKEND = Deno.env.get("TP_BACKEND") ?? "wasm";

async function engine(): Promise<void> {
  if (tf.getBackend() !== BACKEND) await initEngine({ backend: BACKEND, verbose: false });
}

/** Pixels of 20 procedural portraits (seed 1) and their good rows, made once. */
let dataPromise: Promise<{ pixels: Uint8Array; rows: number[] }> | null = null;
function data(): Promise<{ pixels: Uint8Array; rows: number[] }> {
  dataPromise ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "tp_face_resnet_" });
    try {
      await generateSynthetic({ out: dir, count: 20, seed: 1 });
      const ds = await openDataset({ dataroot: dir, quiet: true });
      return { pixels: ds.cache.pixels.slice(), rows: Array.from(ds.goodRows) };
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  })();
  return dataPromise;
}

/** One pretrained backbone (default config) shared by the tests, built once. */
let backbonePromise: Promise<tfl.LayersModel> | null = null;
function pretrained(): Promise<tfl.LayersModel> {
  backbonePromise ??= (async () => {
    await engine();
    return await createFaceResnetBackbone(DEFAULT_FACE_RESNET_CONFIG);
  })();
  return backbonePromise;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function values(model: tfl.LayersModel, x: tf.Tensor): Promise<Float32Array> {
  const y = model.predict(x) as tf.Tensor;
  try {
    return await y.data() as Float32Array;
  } finally {
    y.dispose();
  }
}

/** Copies of every weight of the named layer. */
function snapshot(model: tfl.LayersModel, layer: string): Float32Array[] {
  return model.getLayer(layer).getWeights().map((w) => w.dataSync().slice() as Float32Array);
}

function changed(before: Float32Array[], after: Float32Array[]): boolean {
  return before.some((b, i) => maxAbsDiff(b, after[i]) > 0);
}

/** The backbone plus a 2-way softmax head, and one Adam step on it. */
function classifier(backbone: tfl.LayersModel): tfl.LayersModel {
  const head = tfl.layers.dense({ units: 2, activation: "softmax", name: "head" }).apply(backbone.outputs[0]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: backbone.inputs, outputs: head, name: "face_resnet_classifier" });
}

function trainStep(model: tfl.LayersModel, opt: tf.Optimizer, x: tf.Tensor, y: tf.Tensor): number {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars);
  const v = loss!.dataSync()[0];
  loss!.dispose();
  return v;
}

Deno.test("the rebuilt net reproduces face-api's descriptors on portraits within 1e-5 (5e-7 measured on onednn), aligned and portrait crops", async () => {
  await engine();
  const { pixels, rows } = await data();
  const pick = rows.slice(0, 3);
  const x = makeBatch(pixels, pick, { norm: REFERENCE_NORMALIZATION });
  try {
    for (const crop of ["aligned", "portrait"] as const) {
      const model = crop === "aligned" ? await pretrained() : await createFaceResnetBackbone(faceResnetConfig({ crop }));
      const mine = await values(model, x);
      const ref = await faceDescriptors(pixels, pick, { crop });
      const diff = maxAbsDiff(mine, ref);
      assert.ok(diff < 1e-5, `${crop}: max abs difference ${diff}`);
      // Not trivially equal: different portraits get different descriptors.
      assert.ok(maxAbsDiff(ref.subarray(0, 128), ref.subarray(128, 256)) > 0.01);
      if (crop !== "aligned") model.dispose();
    }
  } finally {
    x.dispose();
  }
});

Deno.test("portraitDescriptors (the rebuilt net on raw pixels, batches of 2) gives face-api's faceDescriptors within 1e-5 on 5 portraits, reports progress per batch, and names a row outside the pixels", async () => {
  await engine();
  const { pixels, rows } = await data();
  const pick = rows.slice(0, 5);
  const seen: number[] = [];
  const mine = await portraitDescriptors(pixels, pick, { batchSize: 2, onProgress: (done) => seen.push(done) });
  const ref = await faceDescriptors(pixels, pick);
  assert.ok(maxAbsDiff(mine, ref) < 1e-5, `max abs difference ${maxAbsDiff(mine, ref)}`);
  assert.deepEqual(seen, [2, 4, 5]);
  await assert.rejects(() => portraitDescriptors(pixels, [pixels.length]), /portraitDescriptors: row \d+ \(at position 0\) is outside/);
});

Deno.test("FaceResnetInput, by two matrix products and by cropAndResize alike, equals tf.image.cropAndResize on the denormalised portraits, then (pixel − meanRgb) / 255, within 1e-4, for the aligned and the portrait crop (black outside the portrait)", () => {
  const norm = DEFAULT_FACE_RESNET_CONFIG.normalization;
  const x = tf.randomNormal([3, 108, 84, 3], 0, 1, "float32", 8) as tf.Tensor4D;
  try {
    for (const matmul of [true, false]) {
      FaceResnetInput.matmulCrop = matmul;
      for (const crop of ["aligned", "portrait"] as const) {
        const box = faceResnetCropBox({ crop, inputHeight: 108, inputWidth: 84 });
        const layer = new FaceResnetInput({ mean: [...norm.mean], std: [...norm.std], box, size: 150, meanRgb: [...FACE_API_MEAN_RGB] });
        const got = layer.apply(x) as tf.Tensor;
        const want = tf.tidy(() => {
          const pixels = tf.add(tf.mul(x, tf.tensor1d(norm.std.map((s) => s * 255))), tf.tensor1d(norm.mean.map((m) => m * 255))) as tf.Tensor4D;
          const face = tf.image.cropAndResize(pixels, tf.tensor2d([box, box, box]), tf.tensor1d([0, 1, 2], "int32"), [150, 150], "bilinear", 0);
          return tf.div(tf.sub(face, tf.tensor1d([...FACE_API_MEAN_RGB])), 255);
        });
        assert.deepEqual(got.shape, [3, 150, 150, 3]);
        const diff = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
        assert.ok(diff < 1e-4, `${matmul ? "matmul" : "cropAndResize"} ${crop}: max difference ${diff}`);
        tf.dispose([got, want]);
      }
    }
  } finally {
    FaceResnetInput.matmulCrop = null;
    x.dispose();
  }
});

Deno.test("the backbone maps [b,108,84,3] to [b,128] with no NaN, pretrained or randomly initialised", async () => {
  const { pixels, rows } = await data();
  const x = makeBatch(pixels, rows.slice(0, 5), { norm: REFERENCE_NORMALIZATION });
  const fresh = buildFaceResnetBackbone(faceResnetConfig({ pretrained: false }));
  try {
    for (const model of [await pretrained(), fresh]) {
      assert.deepEqual(model.inputs[0].shape, [null, 108, 84, 3]);
      assert.deepEqual(model.outputs[0].shape, [null, 128]);
      const y = model.predict(x) as tf.Tensor;
      assert.deepEqual(y.shape, [5, 128]);
      assert.ok((await y.data()).every(Number.isFinite));
      y.dispose();
    }
    assert.equal(fresh.countParams(), 5_607_488);
  } finally {
    x.dispose();
    fresh.dispose();
  }
});

Deno.test("training steps on a small head change the weights of every block and leave tf.memory().numTensors unchanged after the first", async () => {
  const backbone = await pretrained();
  const model = classifier(backbone);
  setTrainableFrom(model, undefined);
  const { pixels, rows } = await data();
  const x = makeBatch(pixels, rows.slice(0, 4), { norm: REFERENCE_NORMALIZATION });
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1], "int32"), 2);
  const opt = tf.train.adam(1e-3);
  try {
    const layerOf = (b: string) => b === "conv32_down" ? "conv32_down.conv" : b === "fc" ? "fc" : `${b}.conv2`;
    const before = new Map([...FACE_RESNET_BLOCKS, "head"].map((b) => [b, snapshot(model, b === "head" ? "head" : layerOf(b))]));
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      assert.ok(Number.isFinite(trainStep(model, opt, x, y)));
      counts.push(tf.memory().numTensors);
    }
    assert.equal(counts[2], counts[1], `tensors after steps: ${counts}`);
    for (const [b, w] of before) assert.ok(changed(w, snapshot(model, b === "head" ? "head" : layerOf(b))), `${b} did not change`);
  } finally {
    tf.dispose([x, y]);
    opt.dispose();
    // The shared backbone got trained: reload the pretrained weights for the tests after this one.
    await loadFaceResnetWeights(backbone);
    model.getLayer("head").dispose();
  }
});

Deno.test("setTrainableFrom freezes the blocks before the named one: their weights do not change in a step", async () => {
  const backbone = await pretrained();
  const model = classifier(backbone);
  const { pixels, rows } = await data();
  const x = makeBatch(pixels, rows.slice(0, 4), { norm: REFERENCE_NORMALIZATION });
  const y = tf.oneHot(tf.tensor1d([1, 0, 1, 0], "int32"), 2);
  const opt = tf.train.sgd(0.01);
  try {
    setTrainableFrom(model, "conv256_1");
    // conv256_1 .. conv256_down_out: 3 blocks × 2 convs × (kernel, bias); fc; head kernel + bias.
    assert.equal(model.trainableWeights.length, 3 * 2 * 2 + 1 + 2);
    const frozen = snapshot(model, "conv256_down.conv2"), early = snapshot(model, "conv32_1.conv1");
    const thawed = snapshot(model, "conv256_1.conv1"), head = snapshot(model, "head");
    trainStep(model, opt, x, y);
    assert.ok(!changed(frozen, snapshot(model, "conv256_down.conv2")), "a frozen block changed");
    assert.ok(!changed(early, snapshot(model, "conv32_1.conv1")), "a frozen block changed");
    assert.ok(changed(thawed, snapshot(model, "conv256_1.conv1")), "the first trainable block did not change");
    assert.ok(changed(head, snapshot(model, "head")), "the head did not change");
    assert.throws(() => setTrainableFrom(model, "conv999"), /expected a block name, one of conv32_down, .*; got 'conv999'/);
    setTrainableFrom(model, undefined);
    assert.equal(model.trainableWeights.length, (FACE_RESNET_BLOCKS.length - 2) * 4 + 2 + 1 + 2);
  } finally {
    tf.dispose([x, y]);
    opt.dispose();
    await loadFaceResnetWeights(backbone);
    model.getLayer("head").dispose();
  }
});

Deno.test("save and load through fileIO give a model with identical outputs and the same frozen blocks", async () => {
  const { pixels, rows } = await data();
  const x = makeBatch(pixels, rows.slice(0, 3), { norm: REFERENCE_NORMALIZATION });
  const model = await createFaceResnetBackbone(faceResnetConfig({ crop: "portrait", trainableFrom: "conv128_down" }));
  try {
    await withTempDir(async (dir) => {
      await model.save(fileIO(dir));
      const loaded = await loadSavedModel(dir);
      try {
        assert.deepEqual(await values(loaded, x), await values(model, x));
        assert.equal(loaded.trainableWeights.length, model.trainableWeights.length);
        assert.equal(loaded.getLayer("conv64_3.conv1").trainable, false);
        assert.equal(loaded.getLayer("conv128_down.conv1").trainable, true);
      } finally {
        loaded.dispose();
      }
    });
  } finally {
    x.dispose();
    model.dispose();
  }
});

Deno.test("crop 'both' outputs the aligned and the portrait embeddings of one shared net, concatenated, survives save/load, and disposeModel frees all its tensors", async () => {
  await engine();
  const { pixels, rows } = await data();
  const x = makeBatch(pixels, rows.slice(0, 3), { norm: REFERENCE_NORMALIZATION });
  const aligned = await pretrained();
  const portrait = await createFaceResnetBackbone(faceResnetConfig({ crop: "portrait" }));
  const n0 = tf.memory().numTensors;
  const both = await createFaceResnetBackbone(faceResnetConfig({ crop: "both" }));
  try {
    assert.deepEqual(both.outputs[0].shape, [null, 256]);
    assert.equal(both.countParams(), aligned.countParams()); // shared: no extra weights
    const [b, a, p] = [await values(both, x), await values(aligned, x), await values(portrait, x)];
    const halves = (v: Float32Array, from: number) => Array.from({ length: 3 }, (_, i) => Array.from(v.subarray(i * 256 + from, i * 256 + from + 128))).flat();
    assert.ok(maxAbsDiff(halves(b, 0), a) < 1e-5, "first half = aligned view");
    assert.ok(maxAbsDiff(halves(b, 128), p) < 1e-5, "second half = portrait view");
    setTrainableFrom(both, "conv256_down");
    await withTempDir(async (dir) => {
      await both.save(fileIO(dir));
      const loaded = await loadSavedModel(dir);
      try {
        assert.deepEqual(await values(loaded, x), b);
        assert.equal(loaded.trainableWeights.length, both.trainableWeights.length);
      } finally {
        disposeModel(loaded);
      }
    });
  } finally {
    disposeModel(both);
    assert.equal(tf.memory().numTensors, n0, "every weight of the two-view net is freed");
    x.dispose();
    portrait.dispose();
  }
});

Deno.test("faceResnetConfig keeps defaults for undefined overrides and names the bad field", () => {
  assert.deepEqual(faceResnetConfig({ crop: undefined, dropout: undefined }), DEFAULT_FACE_RESNET_CONFIG);
  assert.throws(() => faceResnetConfig({ crop: "face" as "aligned" }), /face_resnet: expected crop to be 'aligned' or 'portrait' or 'both', got 'face'/);
  assert.throws(() => faceResnetConfig({ dropout: 1 }), /expected dropout to be a number in \[0, 1\), got 1/);
  assert.throws(() => faceResnetConfig({ embeddingDim: 64 }), /expected embeddingDim to be 128 with pretrained weights, got 64/);
  assert.throws(() => faceResnetConfig({ trainableFrom: "conv7" }), /expected trainableFrom to be one of conv32_down/);
  const small = buildFaceResnetBackbone(faceResnetConfig({ pretrained: false, embeddingDim: 64, dropout: 0 }));
  assert.equal(small.outputs[0].shape[1], 64);
  small.dispose();
});
