import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { initEngine } from "../../lib/engine/mod.ts";
import { fileIO, MODEL_FILE, WEIGHTS_FILE } from "../../lib/models/io.ts";
import { withTempDir } from "../_fixtures.ts";
import { loadSavedModel } from "../../lib/models/mod.ts";

const BACKEND = Deno.env.get("TP_BACKEND") ?? "wasm";

async function engine(): Promise<void> {
  if (tf.getBackend() !== BACKEND) await initEngine({ backend: BACKEND, verbose: false });
}

/** A small conv net [b,12,10,3] → [b,3], randomly initialised. */
function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [12, 10, 3] });
  let x = tfl.layers.conv2d({ filters: 4, kernelSize: 3, activation: "relu" }).apply(input) as tfl.SymbolicTensor;
  x = tfl.layers.flatten().apply(x) as tfl.SymbolicTensor;
  x = tfl.layers.dense({ units: 3, activation: "softmax" }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: x });
}

async function out(model: tfl.LayersModel, x: tf.Tensor): Promise<number[]> {
  const y = model.predict(x) as tf.Tensor;
  const v = Array.from(await y.data());
  y.dispose();
  return v;
}

Deno.test("fileIO saves model.json and weights.bin and loads a model with identical outputs", async () => {
  await engine();
  await withTempDir(async (dir) => {
    const model = smallModel();
    const x = tf.randomUniform([2, 12, 10, 3], 0, 1, "float32", 7);
    const target = join(dir, "models", "last");
    const res = await model.save(fileIO(target));
    assert.ok((res.modelArtifactsInfo.weightDataBytes ?? 0) > 0);
    assert.deepEqual([...Deno.readDirSync(target)].map((e) => e.name).sort(), [MODEL_FILE, WEIGHTS_FILE]);
    const json = JSON.parse(await Deno.readTextFile(join(target, MODEL_FILE)));
    assert.equal(json.format, "layers-model");
    assert.deepEqual(json.weightsManifest[0].paths, [`./${WEIGHTS_FILE}`]);
    const loaded = await loadSavedModel(target);
    assert.deepEqual(await out(loaded, x), await out(model, x));
    tf.dispose(x);
    model.dispose();
    loaded.dispose();
  });
});

Deno.test("fileIO keeps the optimizer state with includeOptimizer", async () => {
  await engine();
  await withTempDir(async (dir) => {
    const model = smallModel();
    model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
    const x = tf.randomUniform([4, 12, 10, 3], 0, 1, "float32", 3);
    const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0], "int32"), 3);
    await model.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
    await model.save(fileIO(dir), { includeOptimizer: true });
    const loaded = await loadSavedModel(dir);
    const before = await model.optimizer.getWeights(), after = await loaded.optimizer.getWeights();
    assert.equal(after.length, before.length);
    assert.ok(after.length > 1);
    for (let i = 0; i < before.length; i++) assert.deepEqual(Array.from(after[i].tensor.dataSync()), Array.from(before[i].tensor.dataSync()));
    tf.dispose([x, y]);
    model.dispose();
    loaded.dispose();
  });
});

Deno.test("fileIO overwrites an earlier save in place, leaves other files and no temp files", async () => {
  await engine();
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "config.json"), "{}\n");
    const a = smallModel(), b = smallModel();
    const x = tf.randomUniform([1, 12, 10, 3], 0, 1, "float32", 1);
    await a.save(fileIO(dir));
    await b.save(fileIO(dir));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["config.json", MODEL_FILE, WEIGHTS_FILE]);
    const loaded = await loadSavedModel(dir);
    assert.deepEqual(await out(loaded, x), await out(b, x));
    tf.dispose(x);
    [a, b, loaded].forEach((m) => m.dispose());
  });
});

Deno.test("fileIO refuses weights.bin that does not belong to model.json (a torn save)", async () => {
  await engine();
  await withTempDir(async (dir) => {
    const a = smallModel(), b = smallModel();
    await a.save(fileIO(join(dir, "a")));
    await b.save(fileIO(join(dir, "b")));
    // Same architecture, same size, other values: what a crash between the two renames would leave.
    await Deno.copyFile(join(dir, "b", WEIGHTS_FILE), join(dir, "a", WEIGHTS_FILE));
    await assert.rejects(loadSavedModel(join(dir, "a")), /do not belong to its model\.json/);
    await Deno.writeFile(join(dir, "b", WEIGHTS_FILE), new Uint8Array(10));
    await assert.rejects(loadSavedModel(join(dir, "b")), /found 10 bytes/);
    a.dispose();
    b.dispose();
  });
});

Deno.test("fileIO names the folder when no model was saved there", async () => {
  await engine();
  await withTempDir(async (dir) => {
    await assert.rejects(loadSavedModel(join(dir, "nothing")), /no saved model in .*nothing \(model\.json is missing\)/);
  });
  assert.throws(() => fileIO(""), /expected dir to be a folder path/);
});
