import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier, MODEL_NAMES, mergeDefined, modelEntry } from "../../lib/models/mod.ts";
import { HEADS } from "../../lib/data/schema.ts";

await initEngine({ verbose: false });

for (const name of MODEL_NAMES) {
  Deno.test(`registered model ${name} builds with one head per label, the right output shapes and no NaN`, async () => {
    const before = tf.memory().numTensors;
    const { model, normalization } = await createClassifier(name, ["gender", "hair_color", "hair_type"]);
    assert.deepEqual(model.outputNames, ["gender", "hair_color", "hair_type"]);
    assert.equal(normalization.mean.length, 3);
    const x = tf.randomNormal([2, 108, 84, 3], 0, 1, "float32", 3);
    const ys = model.predict(x) as tf.Tensor[];
    assert.deepEqual(ys.map((y) => y.shape), [[2, HEADS.gender.labels.length], [2, HEADS.hair_color.labels.length], [2, HEADS.hair_type.labels.length]]);
    for (const y of ys) assert.ok((await y.data()).every(Number.isFinite));
    tf.dispose([x, ...ys]);
    model.dispose();
    assert.equal(tf.memory().numTensors, before, "building and disposing a model leaves no tensor behind");
  });
}

Deno.test("the registry rejects unknown models and never lets undefined overrides replace defaults", () => {
  assert.throws(() => modelEntry("vgg"), /unknown model 'vgg'; expected one of compact_cnn, face_resnet/);
  assert.deepEqual(mergeDefined({ a: 1, b: 2 }, { a: undefined, b: 3 }), { a: 1, b: 3 });
});
