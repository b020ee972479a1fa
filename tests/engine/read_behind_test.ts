import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { ReadBehind } from "../../lib/engine/read_behind.ts";

Deno.test("ReadBehind hands each pushed tensor's values over at the next push (with its meta), the last at flush, and disposes every pushed tensor", async () => {
  await tf.setBackend("cpu");
  const got: [number[], string][] = [];
  const behind = new ReadBehind<string>((values, meta) => got.push([Array.from(values), meta]));
  const before = tf.memory().numTensors;
  await behind.push(tf.tensor1d([1, 2]), "a");
  assert.deepEqual(got, []);
  await behind.push(tf.tensor1d([3, 4]), "b");
  assert.deepEqual(got, [[[1, 2], "a"]]);
  await behind.flush();
  assert.deepEqual(got, [[[1, 2], "a"], [[3, 4], "b"]]);
  await behind.flush();
  assert.equal(got.length, 2);
  assert.equal(tf.memory().numTensors, before);
  // An error thrown by `use` reaches the caller of the push that hands the values over.
  const failing = new ReadBehind<null>(() => {
    throw new Error("diverged");
  });
  await failing.push(tf.scalar(1), null);
  await assert.rejects(() => failing.push(tf.scalar(2), null), /diverged/);
});
