import "../_cache_env.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { makeSplits } from "../../lib/data/split.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { createClassifier, loadSavedModel } from "../../lib/models/mod.ts";
import { classificationTask } from "../../lib/train/tasks.ts";
import { learningRate, Trainer, type TrainerOptions } from "../../lib/train/trainer.ts";
import { fileIO } from "../../lib/models/io.ts";
import { predictHeads } from "../../lib/models/inference.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";

await initEngine({ verbose: false });
const TINY = { widths: [8, 16, 16, 32], blocksPerStage: 0, dropout: 0 };

async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "tp_train_" });
  await generateSynthetic({ out: join(dir, "data"), count: 80, seed: 5 });
  const ds = await openDataset({ dataroot: join(dir, "data"), quiet: true });
  const splits = makeSplits(ds.attrs, "multitask", ds.goodRows, { seed: 1 });
  return { dir, ds, splits };
}

function options(runDir: string, over: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    runDir, epochs: 1, batchSize: 8, lr: 1e-3, warmupEpochs: 0, minLrFraction: 0.1, patience: 5, seed: 1,
    norm: REFERENCE_NORMALIZATION, sampling: "shuffle", stepsPerEpoch: 3, evalBatchSize: 16, resume: false,
    modelConfig: { model: "compact_cnn" }, quiet: true, ...over,
  };
}

Deno.test("learningRate() warms up linearly then decays by a cosine to the floor", () => {
  const o = { lr: 1, epochs: 10, warmupEpochs: 1, minLrFraction: 0.1 };
  assert.equal(learningRate(o, 0), 0.5);
  assert.equal(learningRate(o, 1), 1);
  assert.ok(learningRate(o, 5) < 1 && learningRate(o, 5) > 0.1);
  assert.ok(Math.abs(learningRate(o, 10) - 0.1) < 1e-9);
});

Deno.test("each epoch's progress lines carry a finite loss from the first line on (one per batch with logIntervalMs 0), and the epoch's last line the train loss that the history records", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender", "hair_color", "hair_type"], TINY);
    const task = classificationTask("multitask", ds.attrs, splits.train);
    const lines: string[] = [];
    const progress = { sink: (line: string) => void lines.push(line), logIntervalMs: 0 };
    const r = await new Trainer(model, task, ds.cache.pixels, options(join(dir, "run"), { quiet: false, progress })).fit(splits.train, splits.val);
    const losses = lines.map((l) => Number(/ loss (\S+)$/.exec(l)?.[1]));
    assert.equal(lines.length, 3, `two running lines (after batches 1 and 2 of 3) and the epoch's last: ${lines.join(" | ")}`);
    assert.ok(losses.every((v) => Number.isFinite(v) && v > 0 && v < 10), `finite losses: ${losses}`);
    assert.equal(losses[2].toFixed(4), r.history[0].train_loss.toFixed(4));
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one multitask training epoch changes the weights, leaves tf.memory().numTensors exactly unchanged after a burn-in epoch, and writes metrics, log and checkpoints", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender", "hair_color", "hair_type"], TINY);
    const before = model.getWeights().map((w) => w.dataSync().slice());
    const task = classificationTask("multitask", ds.attrs, splits.train);
    const trainer = new Trainer(model, task, ds.cache.pixels, options(join(dir, "run")));
    const r = await trainer.fit(splits.train, splits.val); // burn-in: Adam creates its slots
    const after = model.getWeights().map((w) => w.dataSync());
    assert.ok(after.some((w, i) => w.some((v, j) => v !== before[i][j])), "weights changed");
    const n1 = tf.memory().numTensors;
    await trainer.fit(splits.train, splits.val);
    assert.equal(tf.memory().numTensors, n1, "a second epoch leaves no tensor behind");
    assert.equal(r.history.length, 1);
    for (const k of ["val_gender_macro_f1", "val_hair_color_macro_f1", "val_hair_type_macro_f1", "img_per_s"]) assert.ok(Number.isFinite(r.history[0][k]), k);
    assert.ok(r.history[0].data_wait >= 0 && r.history[0].data_wait < 1, `data_wait is a share of the epoch: ${r.history[0].data_wait}`);
    for (const f of ["metrics.csv", "run.log", "learning_curve.png", "models/best/model.json", "models/last/optimizer.json", "models/last/state.json"]) {
      await Deno.stat(join(dir, "run", f));
    }
    trainer.dispose();
    model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--resume loads the saved weights exactly, continues at the next epoch, and Adam's step counter continues from the saved state", async () => {
  const { dir, ds, splits } = await fixture();
  try {
    const task = classificationTask("gender", ds.attrs, splits.train);
    const a = await createClassifier("compact_cnn", ["gender"], TINY);
    const t1 = new Trainer(a.model, task, ds.cache.pixels, options(join(dir, "run"), { epochs: 3 }));
    // "Kill" after the first epoch: train a run of 1 epoch into the same folder.
    (t1.opts as TrainerOptions).epochs = 1;
    await t1.fit(splits.train, splits.val);
    const savedWeights = a.model.getWeights().map((w) => w.dataSync().slice());
    t1.dispose();
    a.model.dispose();
    // A resume with nothing left to train only loads: the fresh model (another seed) now holds the saved weights.
    const c = await createClassifier("compact_cnn", ["gender"], { ...TINY, seed: 98 });
    const t0 = new Trainer(c.model, task, ds.cache.pixels, options(join(dir, "run"), { epochs: 1, resume: true }));
    await t0.fit(splits.train, splits.val);
    c.model.getWeights().forEach((w, i) => assert.deepEqual(w.dataSync(), savedWeights[i], `weight ${i} loaded`));
    t0.dispose();
    c.model.dispose();
    const b = await createClassifier("compact_cnn", ["gender"], { ...TINY, seed: 99 });
    const t2 = new Trainer(b.model, task, ds.cache.pixels, options(join(dir, "run"), { epochs: 3, resume: true }));
    const r = await t2.fit(splits.train, splits.val);
    assert.equal(r.resumedFrom, 1);
    assert.deepEqual(r.history.map((m) => m.epoch), [1, 2, 3]);
    const it = (await t2.optimizer.getWeights())[0].tensor.dataSync()[0];
    assert.equal(it, 3 * 3, "Adam's step counter continued from the saved state");
    t2.dispose();
    b.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a saved model loads back and gives the same predictions", async () => {
  const { dir, ds } = await fixture();
  try {
    const { model } = await createClassifier("compact_cnn", ["gender", "hair_color"], { ...TINY, dropout: 0.3 });
    await model.save(fileIO(join(dir, "m")));
    const back = await loadSavedModel(join(dir, "m"));
    const rows = Array.from({ length: 10 }, (_, i) => i);
    const p1 = await predictHeads(model, ds.cache.pixels, rows, { norm: REFERENCE_NORMALIZATION });
    const p2 = await predictHeads(back, ds.cache.pixels, rows, { norm: REFERENCE_NORMALIZATION });
    assert.deepEqual(back.outputNames, ["gender", "hair_color"]);
    for (const h of ["gender", "hair_color"]) for (let i = 0; i < p1[h].length; i++) assert.ok(Math.abs(p1[h][i] - p2[h][i]) < 1e-6);
    model.dispose();
    back.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
