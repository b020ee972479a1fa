import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { inverseFrequencyWeights, maskedSoftmaxCrossEntropy } from "../../lib/train/losses.ts";

await tf.setBackend("cpu");

Deno.test("maskedSoftmaxCrossEntropy() equals the mean cross-entropy over rows with a label", () => {
  const logits = tf.tensor2d([[2, 0, -1], [0, 1, 0], [1, 1, 1], [0, 0, 3]]);
  const labels = tf.tensor1d([0, -1, 2, 2], "int32");
  const got = maskedSoftmaxCrossEntropy(logits, labels).dataSync()[0];
  const lse = (r: number[]) => Math.log(r.reduce((a, v) => a + Math.exp(v), 0));
  const expected = ((lse([2, 0, -1]) - 2) + (lse([1, 1, 1]) - 1) + (lse([0, 0, 3]) - 3)) / 3;
  assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
  tf.dispose([logits, labels]);
});

Deno.test("a batch whose labels are all missing gives zero loss and zero gradient", () => {
  const w = tf.variable(tf.tensor2d([[0.5, -0.2, 0.1], [0.3, 0.3, -0.4]]));
  const x = tf.tensor2d([[1, 2], [3, -1]]);
  const labels = tf.tensor1d([-1, -1], "int32");
  const { value, grads } = tf.variableGrads(() => maskedSoftmaxCrossEntropy(tf.matMul(x, w) as tf.Tensor2D, labels));
  assert.equal(value.dataSync()[0], 0);
  const g = grads[w.name].dataSync();
  assert.ok(g.every((v) => v === 0), `gradient ${Array.from(g)}`);
  tf.dispose([w, x, labels, value, ...Object.values(grads)]);
});

Deno.test("class weights scale each row's loss by its class weight", () => {
  const logits = tf.tensor2d([[1, 0], [0, 1]]);
  const labels = tf.tensor1d([0, 0], "int32");
  const plain = maskedSoftmaxCrossEntropy(logits, labels).dataSync()[0];
  const weighted = maskedSoftmaxCrossEntropy(logits, labels, tf.tensor1d([2, 1])).dataSync()[0];
  assert.ok(Math.abs(plain - weighted) < 1e-6, "same class everywhere: a weighted mean equals the plain one");
  const mixed = maskedSoftmaxCrossEntropy(logits, tf.tensor1d([0, 1], "int32"), tf.tensor1d([3, 1])).dataSync()[0];
  const l0 = Math.log(1 + Math.exp(-1));
  assert.ok(Math.abs(mixed - (3 * l0 + l0) / 4) < 1e-6);
});

Deno.test("inverseFrequencyWeights() gives rare classes more weight, mean 1 over labelled rows, 0 for unseen classes", () => {
  const w = inverseFrequencyWeights([0, 0, 0, 1, -1], 3);
  assert.ok(Math.abs(w[0] - 4 / 6) < 1e-6 && Math.abs(w[1] - 2) < 1e-6 && w[2] === 0);
  assert.ok(Math.abs((3 * w[0] + w[1]) / 4 - 1) < 1e-6);
});
