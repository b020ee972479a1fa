/** A tiny end-to-end run of `deno task demo` (every stage) on a small procedural set. */
import "../_cache_env.ts";
import assert from "node:assert/strict";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname!, "../..");

const COLUMN: Record<string, number> = { gender: 1, hair_color: 2, hair_type: 3 };

/** Rows of a split CSV whose `head` is labelled (not n/a). */
async function labelledTestRows(csv: string, head: string): Promise<number> {
  return (await Deno.readTextFile(csv)).trim().split("\n").slice(1).filter((l) => l.split(",")[COLUMN[head]] !== "n/a").length;
}

/** A head's test metrics agree with themselves and with the split: supports sum to its labelled rows, accuracy = Σ recall·support / n. */
function assertConsistent(m: { accuracy: number; per_class: Record<string, { recall: number; support: number }> }, rows: number, what: string): void {
  const cls = Object.values(m.per_class);
  const n = cls.reduce((s, c) => s + c.support, 0);
  assert.equal(n, rows, `${what}: supports ${n} vs ${rows} labelled test rows`);
  const correct = cls.reduce((s, c) => s + c.recall * c.support, 0);
  assert.ok(Math.abs(m.accuracy - correct / n) < 1e-9, `${what}: accuracy ${m.accuracy} vs ${correct / n}`);
}

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
        for (const h of heads) assertConsistent(metrics[h], await labelledTestRows(join(splits, `${task}_test.csv`), h), `${task} ${model} ${h}`);
        for (const f of ["metrics.csv", "run.log", "test.log", "pred.log", `predictions_${task}.csv`, "models/best/model.json", "models/last/model.json"]) await Deno.stat(join(run, f));
      }
      await Deno.stat(join(tmp, "reports", task, "comparison.png"));
    }
    assertConsistent(summary.gender.faceapi_agegender.metrics.gender, await labelledTestRows(join(splits, "gender_test.csv"), "gender"), "faceapi_agegender");
    // The procedural genders are learnable: the seconds-fast baseline beats the majority class (62.5 % female).
    const desc = JSON.parse(await Deno.readTextFile(join(tmp, "checkpoints", "demo_gender_face_descriptors", "test_metrics.json")));
    assert.ok(desc.gender.accuracy >= 0.7, `face_descriptors gender accuracy ${desc.gender.accuracy}`);
    // The GAN stage: a tiny run with its metric, samples, interpolation and the attribute check by the multitask model.
    assert.ok(summary.gan.snapshots.length >= 1 && summary.gan.snapshots.every((s: { fdd: number }) => s.fdd > 0));
    for (const f of ["gan/grid.png", "gan/interpolation.png", "gan/attributes.csv", "gan/attributes.png"]) assert.ok((await Deno.stat(join(tmp, "reports", f))).size > 0, f);
    await Deno.stat(join(tmp, "checkpoints", "demo_gan", "fdd.csv"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
