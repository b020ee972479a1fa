import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { predictFolder } from "../../lib/eval/predict.ts";
import { sampleImagesDir } from "../../lib/faces/mod.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { noisePng } from "../_fixtures.ts";

await initEngine({ verbose: false });

Deno.test("predict handles a face photo, a non-face image and a corrupt file, and writes CSV, log and contact sheet", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_pred_" });
  try {
    const images = join(dir, "images");
    await Deno.mkdir(images);
    await Deno.copyFile(join(sampleImagesDir(), "sample1.jpg"), join(images, "photo.jpg"));
    await Deno.writeFile(join(images, "noise.png"), await noisePng(7, 300, 200));
    await Deno.writeFile(join(images, "grey.webp"), await sharp({ create: { width: 64, height: 64, channels: 3, background: "#777" } }).webp().toBuffer());
    await Deno.writeTextFile(join(images, "broken.jpg"), "not a jpeg at all");
    await Deno.writeTextFile(join(images, "notes.txt"), "ignored: not an image extension");
    const runDir = join(dir, "run");
    const { model, normalization } = await createClassifier("compact_cnn", ["gender"], { widths: [8, 8, 8, 8], blocksPerStage: 0 });
    await saveCheckpoint(join(runDir, "models", "best"), {
      model,
      config: { model: "compact_cnn", task: "gender", heads: { gender: ["female", "male"] }, normalization: normalization ?? REFERENCE_NORMALIZATION, dataset: { name: "x", root: dir } },
    });
    model.dispose();
    const r = await predictFolder({ runDir, images, ckpt: "best", quiet: true });
    assert.deepEqual(r.rows.map((x) => x.filename), ["grey.webp", "noise.png", "photo.jpg"]);
    assert.deepEqual(r.rows.map((x) => x.face_found), [false, false, true]);
    for (const row of r.rows) {
      assert.ok(row.gender === "female" || row.gender === "male");
      assert.ok((row.gender_prob as number) >= 0.5 && (row.gender_prob as number) <= 1);
    }
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0].reason, /broken\.jpg/);
    const csv = (await Deno.readTextFile(r.csvPath)).trim().split("\n");
    assert.equal(csv[0], "filename,face_found,gender,gender_prob");
    assert.equal(csv.length, 4);
    assert.ok((await Deno.stat(r.sheetPath!)).size > 1000);
    assert.match(await Deno.readTextFile(r.logPath), /SKIPPED broken\.jpg/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
