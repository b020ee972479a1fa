import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { AUTO_ORDER, initEngine } from "../../lib/engine/mod.ts";

Deno.test("initEngine() honours a forced backend and reports why", async () => {
  const c = await initEngine({ backend: "cpu", verbose: false });
  assert.equal(c.backend, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.match(c.reason, /forced by --backend/);
});

Deno.test("initEngine() fails clearly for an unknown or unavailable forced backend", async () => {
  await assert.rejects(initEngine({ backend: "tpu", verbose: false }), /unknown backend 'tpu'; expected one of tensorflow, onednn, wasm, cpu, webgpu/);
  await assert.rejects(initEngine({ backend: "tensorflow", verbose: false }), /backend 'tensorflow' was requested but is not/);
});

Deno.test("initEngine() picks the first working backend in order and lists what it skipped", async () => {
  const c = await initEngine({ verbose: false });
  assert.ok(AUTO_ORDER.includes(c.backend));
  assert.equal(tf.getBackend(), c.backend);
  const order = c.attempts.map((a) => AUTO_ORDER.indexOf(a.backend));
  assert.deepEqual(order, [...order].sort());
  assert.equal(c.attempts.at(-1)!.ok, true);
  assert.ok(c.attempts.slice(0, -1).every((a) => !a.ok));
  // tfjs-node cannot be installed offline here: it must be skipped, with a reason.
  assert.equal(c.attempts[0].backend, "tensorflow");
});

Deno.test("TP_BACKEND forces a backend like --backend", async () => {
  Deno.env.set("TP_BACKEND", "cpu");
  try {
    const c = await initEngine({ verbose: false });
    assert.equal(c.backend, "cpu");
    assert.match(c.reason, /TP_BACKEND/);
  } finally {
    Deno.env.delete("TP_BACKEND");
  }
});
