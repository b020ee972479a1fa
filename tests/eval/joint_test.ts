// Joint decoding of baldness (lib/eval/joint.ts): the product rule on hand-made rows, and a multitask run's
// predictor, calibration and evaluation with and without it on a tiny procedural set.
// Run: deno test -A tests/eval/joint_test.ts   (about 10 s)
import assert from "node:assert/strict";
import { initEngine } from "../../lib/engine/mod.ts";
import { calibrateRun, evaluateRun, loadPredictor } from "../../lib/eval/evaluate.ts";
import { applyDecisionBias } from "../../lib/eval/decision.ts";
import { jointBald } from "../../lib/eval/joint.ts";
import { HEADS } from "../../lib/data/schema.ts";
import { resolveTrainConfig } from "../../lib/train/run.ts";
import { UserError } from "../../lib/util/errors.ts";
import { withTempDir } from "../_fixtures.ts";
import { tinyMultitaskRun } from "./_multitask_run.ts";

await initEngine({ verbose: false });

const COLOURS = [...HEADS.hair_color.labels], TYPES = [...HEADS.hair_type.labels];

Deno.test("jointBald(): colour × the type head's P(bald) for 'bald', × 1 − P(bald) for the other colours, rows renormalised", () => {
  assert.deepEqual(COLOURS.at(-1), "bald");
  assert.deepEqual(TYPES.at(-1), "bald");
  // Row 1: the colour head hesitates between gray and bald, the type head is sure the hair is not bald → gray.
  // Row 2: the colour head says bald weakly, the type head says bald → bald wins more clearly.
  const colour = Float32Array.from([0, 0, 0, 0.45, 0.55, /**/ 0.3, 0.2, 0.1, 0.1, 0.3]);
  const type = Float32Array.from([0.6, 0.3, 0.1, /**/ 0.05, 0.05, 0.9]);
  const out = jointBald(colour, COLOURS, type, TYPES);
  const row = (r: number, pb: number) => {
    const raw = Array.from(colour.subarray(r * 5, r * 5 + 5), (p, c) => p * (c === 4 ? pb : 1 - pb));
    const z = raw.reduce((a, b) => a + b);
    return raw.map((v) => v / z);
  };
  const want = [...row(0, 0.1), ...row(1, 0.9)];
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `${i}: ${v} vs ${want[i]}`));
  assert.ok(out[3] > out[4], "row 1 should turn gray");
  assert.ok(out[9] > 0.75, `row 2 bald ${out[9]}`);
  assert.throws(() => jointBald(colour, COLOURS, type.subarray(0, 3), TYPES), /not the same rows/);
  assert.throws(() => jointBald(colour, ["a", "b", "c", "d", "e"], type, TYPES), /need a 'bald' class/);
});

Deno.test("joint decoding through a run: the predictor joins hair colour (other heads untouched), calibrate records the joint in decision_bias.json, a mismatching --joint is a one-line error, evaluate records it; train refuses it for one-head tasks", async () => {
  await withTempDir(async (dir) => {
    const { ds, splitDir, runDir } = await tinyMultitaskRun(dir, { joint: "bald" });
    const rows = Int32Array.from({ length: 10 }, (_, i) => ds.goodRows[i]);

    // No decision biases yet: auto = the run's own ("bald"); "none" = each head alone.
    const joint = await loadPredictor(runDir, "best"), plain = await loadPredictor(runDir, "best", { joint: "none" });
    try {
      assert.equal(joint.joint, "bald");
      assert.equal(plain.joint, "none");
      const pj = await joint.predict(ds.cache.pixels, rows), p0 = await plain.predict(ds.cache.pixels, rows);
      assert.deepEqual(Array.from(pj.hair_color), Array.from(jointBald(p0.hair_color, COLOURS, p0.hair_type, TYPES)));
      assert.notDeepEqual(Array.from(pj.hair_color), Array.from(p0.hair_color));
      assert.deepEqual(Array.from(pj.hair_type), Array.from(p0.hair_type));
      assert.deepEqual(Array.from(pj.gender), Array.from(p0.gender));
    } finally {
      joint.dispose();
      plain.dispose();
    }

    // Biases fitted under the joint decoding say so; applied, they act on the joint probabilities.
    const { file, path, text } = await calibrateRun({ runDir, splitDir, quiet: true });
    assert.equal(file.joint, "bald");
    assert.match(text, /hair colour joined with the hair-type head's baldness/);
    file.heads.hair_color.bias = [0, 0, 0, 0, 3];
    await Deno.writeTextFile(path, JSON.stringify(file));
    const biased = await loadPredictor(runDir, "best"), bare = await loadPredictor(runDir, "best", { joint: "none", decisionBias: "none" });
    try {
      const pb = await biased.predict(ds.cache.pixels, rows), p0 = await bare.predict(ds.cache.pixels, rows);
      const want = applyDecisionBias(jointBald(p0.hair_color, COLOURS, p0.hair_type, TYPES), 5, [0, 0, 0, 0, 3]);
      pb.hair_color.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
    } finally {
      biased.dispose();
      bare.dispose();
    }
    await assert.rejects(() => loadPredictor(runDir, "best", { joint: "none" }), (e: Error) =>
      e instanceof UserError && /decision_bias\.json was fitted with joint decoding 'bald', not 'none'; refit it with deno task calibrate --exp-name run --joint none, or pass --decision-bias none$/.test(e.message));

    const r = await evaluateRun({ runDir, ckpt: "best", split: "test", splitDir, quiet: true, bootstrap: { resamples: 20 } });
    const json = JSON.parse(await Deno.readTextFile(r.files.metrics));
    assert.equal(json.hair_color.joint, "bald");
    assert.equal(json.hair_type.joint, undefined);
    assert.match(r.text, /hair_color: 'bald' joined with the hair-type head's baldness/);
  });
  assert.throws(() => resolveTrainConfig({ dataroot: "x", expName: "y" }, undefined, { task: "haircolor", joint: "bald" }),
    (e: Error) => e instanceof UserError && /^train --task haircolor: joint decoding 'bald' needs the hair_color and hair_type heads \(a multitask run\); this run has hair_color; use --joint none$/.test(e.message));
  assert.equal(resolveTrainConfig({ dataroot: "x", expName: "y" }, undefined, { task: "multitask" }).joint, "bald");
});
