// Decision biases (lib/eval/decision.ts): the fit on labelled probabilities, applying them, and a run's
// decision_bias.json through calibrateRun → loadPredictor → evaluateRun on a tiny procedural set.
// Run: deno test -A tests/eval/decision_test.ts   (about 10 s)
import assert from "node:assert/strict";
import { join } from "node:path";
import { initEngine } from "../../lib/engine/mod.ts";
import { calibrateRun, evaluateRun, loadPredictor } from "../../lib/eval/evaluate.ts";
import { applyDecisionBias, crossFitDecisionBias, DECISION_BIAS_FILE, fitDecisionBias, readDecisionBias } from "../../lib/eval/decision.ts";
import { argmaxRows } from "../../lib/eval/mod.ts";
import { Rng } from "../../lib/util/rng.ts";
import { withTempDir } from "../_fixtures.ts";
import { tinyMultitaskRun } from "./_multitask_run.ts";

await initEngine({ verbose: false });

/** n rows of k classes: the true class gets logit 2 + noise, the others noise, then `shift` is added to class `c`. */
function skewed(n: number, k: number, c: number, shift: number, seed = 1): { y: Int32Array; probs: Float32Array } {
  const rng = new Rng(seed);
  const y = Int32Array.from({ length: n }, (_, i) => i % 10 === 0 ? c : i % (k - 1));
  const probs = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    let z = 0;
    for (let j = 0; j < k; j++) z += (probs[i * k + j] = Math.exp((j === y[i] ? 2 : 0) + 0.3 * rng.normal() + (j === c ? shift : 0)));
    for (let j = 0; j < k; j++) probs[i * k + j] /= z;
  }
  return { y, probs };
}

Deno.test("fitDecisionBias() keeps every bias at 0 when the plain arg-max is already right on every row", () => {
  const { y, probs } = skewed(200, 4, 3, 0);
  const fit = fitDecisionBias(y, probs, 4);
  assert.equal(fit.before, 1);
  assert.deepEqual(fit.bias, [0, 0, 0, 0]);
  assert.equal(fit.after, 1);
});

Deno.test("fitDecisionBias() undoes a constant over-prediction of a rare class: macro-F1 from below 0.5 back to 1, the class's bias negative", () => {
  const { y, probs } = skewed(300, 4, 3, 2.5);
  const fit = fitDecisionBias(y, probs, 4);
  assert.ok(fit.before < 0.5, `before ${fit.before}`);
  assert.equal(fit.after, 1);
  assert.ok(fit.bias[3] < 0 || fit.bias.slice(0, 3).every((b) => b > 0), `bias ${fit.bias}`);
  assert.equal(fit.n, 300);
  // The fitted biases give the same macro-F1 through applyDecisionBias + arg-max.
  const pred = argmaxRows(applyDecisionBias(probs, 4, fit.bias), 4);
  assert.ok(pred.every((p, i) => p === y[i]));
});

Deno.test("fitDecisionBias() ignores rows with a missing label (-1) and counts only labelled rows", () => {
  const a = skewed(100, 3, 2, 1.5);
  const y = new Int32Array(150).fill(-1), probs = new Float32Array(150 * 3).fill(1 / 3);
  y.set(a.y), probs.set(a.probs);
  const withMissing = fitDecisionBias(y, probs, 3), plain = fitDecisionBias(a.y, a.probs, 3);
  assert.equal(withMissing.n, 100);
  assert.deepEqual(withMissing, plain);
});

Deno.test("crossFitDecisionBias(): a real over-prediction is undone on held-out halves too (≈ 1 from below 0.5); on label noise the held-out figure stays below the in-sample one (its optimism)", () => {
  const real = skewed(300, 4, 3, 2.5);
  const c = crossFitDecisionBias(real.y, real.probs, 4, { repeats: 3 });
  assert.equal(c.fits, 6);
  assert.ok(c.plain < 0.5 && c.mean > 0.95, `plain ${c.plain}, held out ${c.mean}`);
  // Probabilities unrelated to the labels: the in-sample fit always finds some gain, the held-out halves do not.
  const rng = new Rng(4);
  const y = Int32Array.from({ length: 90 }, () => rng.int(0, 2));
  const probs = Float32Array.from({ length: 270 }, () => 0.2 + rng.next());
  const inSample = fitDecisionBias(y, probs, 3);
  const held = crossFitDecisionBias(y, probs, 3, { repeats: 5 });
  assert.ok(held.mean < inSample.after - 0.03, `in-sample ${inSample.before} → ${inSample.after}, held out ${held.plain} → ${held.mean}`);
  assert.deepEqual(crossFitDecisionBias(y, probs, 3, { repeats: 2, seed: 9 }), crossFitDecisionBias(y, probs, 3, { repeats: 2, seed: 9 }));
});

Deno.test("applyDecisionBias() returns rows that sum to 1, the same probabilities for zero biases, and rejects a wrong bias count", () => {
  const { probs } = skewed(50, 5, 4, 1);
  const same = applyDecisionBias(probs, 5, [0, 0, 0, 0, 0]);
  for (let i = 0; i < probs.length; i++) assert.ok(Math.abs(same[i] - probs[i]) < 1e-6);
  const moved = applyDecisionBias(probs, 5, [0.5, -1, 0, 2, 0]);
  for (let i = 0; i < 50; i++) assert.ok(Math.abs(moved.subarray(i * 5, i * 5 + 5).reduce((s, v) => s + v, 0) - 1) < 1e-5);
  assert.throws(() => applyDecisionBias(probs, 5, [0, 0]), /expected 5 biases, got 2/);
});

Deno.test("calibrateRun() writes decision_bias.json for the multi-class heads only; loadPredictor applies its non-zero heads unless decisionBias 'none'; evaluateRun records it in test_metrics.json", async () => {
  await withTempDir(async (dir) => {
    const { ds, splitDir, runDir, heads } = await tinyMultitaskRun(dir);

    const { file, path, text } = await calibrateRun({ runDir, splitDir, quiet: true });
    assert.equal(path, join(runDir, DECISION_BIAS_FILE));
    assert.deepEqual(Object.keys(file.heads), ["hair_color", "hair_type"]);
    for (const [head, h] of Object.entries(file.heads)) {
      assert.deepEqual(h.labels, heads[head]);
      assert.ok(h.val_macro_f1_after >= h.val_macro_f1_before);
      assert.match(text, new RegExp(`${head}: .*validation macro-F1 .*; held out \\(fitted on one half, scored on the other, 20 fits\\): `));
      assert.ok(h.val_macro_f1_crossfit!.mean >= 0 && h.val_macro_f1_crossfit!.mean <= 1);
    }
    assert.deepEqual(await readDecisionBias(runDir), file);

    // Force a visible bias so that the predictor's output must change.
    file.heads.hair_color.bias = [0, 0, 0, 0, 5];
    file.heads.hair_type.bias = [0, 0, 0];
    await Deno.writeTextFile(path, JSON.stringify(file));
    const plain = await loadPredictor(runDir, "best", { decisionBias: "none" });
    const biased = await loadPredictor(runDir, "best");
    try {
      const rows = Int32Array.from({ length: 10 }, (_, i) => ds.goodRows[i]);
      const p0 = await plain.predict(ds.cache.pixels, rows), p1 = await biased.predict(ds.cache.pixels, rows);
      assert.deepEqual(plain.decisionBias, {});
      assert.deepEqual(biased.decisionBias, { hair_color: [0, 0, 0, 0, 5] });
      assert.deepEqual(Array.from(p1.hair_color), Array.from(applyDecisionBias(p0.hair_color, 5, [0, 0, 0, 0, 5])));
      assert.deepEqual(Array.from(p1.gender), Array.from(p0.gender));
    } finally {
      plain.dispose();
      biased.dispose();
    }
    const r = await evaluateRun({ runDir, ckpt: "best", split: "test", splitDir, quiet: true, bootstrap: { resamples: 50 } });
    const json = JSON.parse(await Deno.readTextFile(r.files.metrics));
    assert.deepEqual(json.hair_color.decision_bias, [0, 0, 0, 0, 5]);
    assert.equal(json.gender.decision_bias, undefined);
    assert.equal(json.hair_type.decision_bias, undefined);
    assert.match(r.text, /decision biases \(decision_bias\.json.*hair_color \[0\.0, 0\.0, 0\.0, 0\.0, 5\.0\]/);
  });
});
