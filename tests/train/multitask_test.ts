import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { maskedSoftmaxCrossEntropy } from "../../lib/train/losses.ts";
import { classificationTask } from "../../lib/train/tasks.ts";
import { HEAD_NAMES, HEADS } from "../../lib/data/schema.ts";
import { TASK_HEADS } from "../../lib/data/split.ts";
import type { Attributes } from "../../lib/data/attributes.ts";

await initEngine({ verbose: false });

Deno.test("a multitask batch with all hair labels missing gives zero hair loss and zero gradient to the hair heads", async () => {
  const { model } = await createClassifier("compact_cnn", ["gender", "hair_color", "hair_type"], { widths: [8, 8, 8, 8], blocksPerStage: 0, dropout: 0 });
  const x = tf.randomNormal([4, 108, 84, 3], 0, 1, "float32", 2);
  const gender = tf.tensor1d([0, 1, 1, 0], "int32"), missing = tf.tensor1d([-1, -1, -1, -1], "int32");
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const hairLoss: number[] = [];
  const { grads } = tf.variableGrads(() => {
    const [g, hc, ht] = model.apply(x, { training: true }) as tf.Tensor2D[];
    const lhc = maskedSoftmaxCrossEntropy(hc, missing), lht = maskedSoftmaxCrossEntropy(ht, missing);
    hairLoss.push(lhc.dataSync()[0], lht.dataSync()[0]);
    return tf.addN([maskedSoftmaxCrossEntropy(g, gender), lhc, lht]) as tf.Scalar;
  }, vars);
  assert.deepEqual(hairLoss, [0, 0]);
  for (const w of model.trainableWeights) {
    const g = await grads[(w.read() as tf.Variable).name].data();
    const nonzero = g.some((v) => v !== 0);
    if (w.name.startsWith("hair_color/") || w.name.startsWith("hair_type/")) assert.ok(!nonzero, `${w.name} got a gradient`);
    if (w.name.startsWith("gender/")) assert.ok(nonzero, `${w.name} got no gradient`);
  }
  tf.dispose([x, gender, missing, ...Object.values(grads)]);
  model.dispose();
});

Deno.test("head names, output names and label vocabularies agree for every task", async () => {
  assert.deepEqual(Object.keys(HEADS), ["gender", "hair_color", "hair_type"]);
  const attrs = { labels: { gender: new Int8Array([0, 1]), hair_color: new Int8Array([2, -1]), hair_type: new Int8Array([-1, 1]) } } as unknown as Attributes;
  for (const task of ["gender", "haircolor", "multitask"] as const) {
    const t = classificationTask(task, attrs, Int32Array.from([0, 1]));
    assert.deepEqual(t.heads.map((h) => h.name), TASK_HEADS[task]);
    for (const h of t.heads) assert.deepEqual(h.labels, HEADS[h.name].labels);
    const { model } = await createClassifier("compact_cnn", TASK_HEADS[task], { widths: [4, 4, 4, 4], blocksPerStage: 0 });
    assert.deepEqual(model.outputNames, TASK_HEADS[task]);
    model.outputNames.forEach((name, i) => assert.equal(model.outputs[i].shape[1], HEADS[name as keyof typeof HEADS].labels.length));
    model.dispose();
  }
  const mt = classificationTask("multitask", attrs, Int32Array.from([0, 1]));
  assert.deepEqual(mt.heads.map((h) => h.lossWeight), [1, 1, 0.5]);
  assert.ok(mt.heads.every((h) => h.classWeights && h.classWeights.length === HEADS[h.name].labels.length));
  assert.ok(HEAD_NAMES.length === 3);
});
