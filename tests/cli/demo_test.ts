/** A tiny end-to-end run of `deno task demo` (every stage) on a small procedural set. */
import assert from "node:assert/strict";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "../..");

Deno.test("deno task demo runs every stage end to end and leaves its reports behind", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tp_demo_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run", "-A", join(ROOT, "lib/cli/demo.ts"), "--count", "160", "--seed", "2", "--out", join(tmp, "reports"), "--data-dir", join(tmp, "data"),
        "--checkpoints", join(tmp, "checkpoints"), "--train-preset", "debug",
      ],
      cwd: tmp,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text.slice(-3000));
    const summary = JSON.parse(await Deno.readTextFile(join(tmp, "reports", "summary.json")));
    assert.deepEqual(summary.stages, ["data", "engine", "explore", "split", "gender", "haircolor", "multitask", "gan"]);
    assert.equal(summary.data.rows, 160);
    assert.equal(summary.data.imagesOk, 160);
    assert.ok(summary.engine.backend);
    assert.equal(summary.explore.rows, 160);
    assert.ok(summary.explore.groundTruth.planted >= 1);
    for (const f of ["data/class_balance.png", "data/class_mosaic.png", "data/augment_preview.png", "explore/bad_images.csv", "explore/class_counts.csv",
      "explore/gender_x_hair_color.png", "explore/summary.json", "split/split_report.png"]) {
      const st = await Deno.stat(join(tmp, "reports", f));
      assert.ok(st.size > 0, f);
    }
    const splits = join(tmp, "assets", "splits", "synthetic-160-s2");
    for (const t of ["gender", "haircolor", "multitask"]) for (const p of ["train", "val", "test"]) await Deno.stat(join(splits, `${t}_${p}.csv`));
    assert.match(text, /\[engine\] backend \w+/);
    // Every classifier stage trained the three models, evaluated them on the test split and predicted on outside photos.
    for (const task of ["gender", "haircolor", "multitask"]) {
      for (const model of ["compact_cnn", "face_resnet", "face_descriptors"]) {
        const run = join(tmp, "checkpoints", `demo_${task}_${model}`);
        const metrics = JSON.parse(await Deno.readTextFile(join(run, "test_metrics.json")));
        const heads = task === "multitask" ? ["gender", "hair_color", "hair_type"] : [task === "gender" ? "gender" : "hair_color"];
        assert.deepEqual(Object.keys(metrics), heads);
        for (const h of heads) assert.ok(metrics[h].accuracy >= 0 && metrics[h].accuracy <= 1);
        for (const f of ["metrics.csv", "run.log", "test.log", "pred.log", `predictions_${task}.csv`, "models/best/model.json", "models/last/model.json"]) await Deno.stat(join(run, f));
      }
      await Deno.stat(join(tmp, "reports", task, "comparison.png"));
    }
    assert.ok(summary.gender.faceapi_agegender.metrics.gender.accuracy >= 0);
    // The GAN stage: a tiny run with its metric, samples, interpolation and the attribute check by the multitask model.
    assert.ok(summary.gan.snapshots.length >= 1 && summary.gan.snapshots.every((s: { fdd: number }) => s.fdd > 0));
    for (const f of ["gan/grid.png", "gan/interpolation.png", "gan/attributes.csv", "gan/attributes.png"]) assert.ok((await Deno.stat(join(tmp, "reports", f))).size > 0, f);
    await Deno.stat(join(tmp, "checkpoints", "demo_gan", "fdd.csv"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
