import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { predictFolder, readCsvRows, SHEET_FIRST, SHEET_LEAST_CONFIDENT, sheetRows } from "../../lib/eval/predict.ts";
import { sampleImagesDir } from "../../lib/faces/mod.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { noisePng } from "../_fixtures.ts";

await initEngine({ verbose: false });

/** A gender run with a tiny random compact CNN under `dir`/run. */
async function tinyRun(dir: string): Promise<string> {
  const runDir = join(dir, "run");
  const { model, normalization } = await createClassifier("compact_cnn", ["gender"], { widths: [8, 8, 8, 8], blocksPerStage: 0 });
  await saveCheckpoint(join(runDir, "models", "best"), {
    model,
    config: { model: "compact_cnn", task: "gender", heads: { gender: ["female", "male"] }, normalization: normalization ?? REFERENCE_NORMALIZATION, dataset: { name: "x", root: dir } },
  });
  model.dispose();
  return runDir;
}

/** `n` small seeded noise PNGs named img000.png, img001.png, ... */
async function noiseFolder(dir: string, n: number, size = 40): Promise<string> {
  const images = join(dir, "images");
  await Deno.mkdir(images, { recursive: true });
  for (let i = 0; i < n; i++) await Deno.writeFile(join(images, `img${String(i).padStart(3, "0")}.png`), await noisePng(100 + i, size, size));
  return images;
}

Deno.test("predict handles a face photo, a non-face image, a corrupt file and symbolic links (to a file: read; dangling: ignored), and writes CSV, log and contact sheet", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_pred_" });
  try {
    const images = join(dir, "images");
    await Deno.mkdir(images);
    await Deno.copyFile(join(sampleImagesDir(), "sample1.jpg"), join(images, "photo.jpg"));
    await Deno.writeFile(join(images, "noise.png"), await noisePng(7, 300, 200));
    await Deno.writeFile(join(images, "grey.webp"), await sharp({ create: { width: 64, height: 64, channels: 3, background: "#777" } }).webp().toBuffer());
    await Deno.writeTextFile(join(images, "broken.jpg"), "not a jpeg at all");
    await Deno.writeTextFile(join(images, "notes.txt"), "ignored: not an image extension");
    await Deno.symlink(join(images, "noise.png"), join(images, "link.png"));
    await Deno.symlink(join(images, "nowhere.png"), join(images, "dangling.png"));
    const runDir = await tinyRun(dir);
    const r = await predictFolder({ runDir, images, ckpt: "best", quiet: true });
    assert.deepEqual(r.rows.map((x) => x.filename), ["grey.webp", "link.png", "noise.png", "photo.jpg"]);
    assert.deepEqual(r.rows.map((x) => x.face_found), [false, false, false, true]);
    for (const row of r.rows) {
      assert.ok(row.gender === "female" || row.gender === "male");
      assert.ok((row.gender_prob as number) >= 0.5 && (row.gender_prob as number) <= 1);
    }
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0].reason, /broken\.jpg/);
    const csv = (await Deno.readTextFile(r.csvPath)).trim().split("\n");
    assert.equal(csv[0], "filename,face_found,gender,gender_prob");
    assert.equal(csv.length, 5);
    assert.ok((await Deno.stat(r.sheetPath!)).size > 1000);
    assert.match(await Deno.readTextFile(r.logPath), /SKIPPED broken\.jpg/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predict --truth counts right and wrong per head (empty truth not scored), adds <head>_truth to the CSV and the accuracy to pred.log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_pred_" });
  try {
    const images = await noiseFolder(dir, 4);
    const runDir = await tinyRun(dir);
    const first = await predictFolder({ runDir, images, ckpt: "best", quiet: true });
    const other = (g: unknown) => (g === "male" ? "female" : "male");
    // img000 and img001 right, img002 wrong (upper case, still a label), img003 unscored.
    const [a, b, c, d] = first.rows;
    const truth = join(dir, "truth.csv");
    await Deno.writeTextFile(truth, `filename,age,gender\n${a.filename},3,${a.gender}\n"${b.filename}",4,${b.gender}\n${c.filename},5,${String(other(c.gender)).toUpperCase()}\n${d.filename},6,\nextra.png,7,male\n`);
    const r = await predictFolder({ runDir, images, ckpt: "best", quiet: true, truth });
    assert.deepEqual(r.rows.map((x) => x.gender), first.rows.map((x) => x.gender), "same predictions with and without --truth");
    assert.equal(r.scores!.gender.right, 2);
    assert.equal(r.scores!.gender.wrong, 1);
    assert.ok(Math.abs(r.scores!.gender.accuracy - 2 / 3) < 1e-12);
    const csv = (await Deno.readTextFile(r.csvPath)).trim().split("\n");
    assert.equal(csv[0], "filename,face_found,gender,gender_prob,gender_truth");
    assert.equal(csv[3].split(",")[4], other(c.gender));
    assert.equal(csv[4].split(",")[4], "");
    assert.match(await Deno.readTextFile(r.logPath), /accuracy gender against .*truth\.csv: 2\/3 right \(66\.7%\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predict --truth fails before finding faces, naming the CSV and the file, when the CSV lacks a file, a filename column, a head column or a known label", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_pred_" });
  try {
    const images = await noiseFolder(dir, 3);
    const runDir = await tinyRun(dir);
    const truth = join(dir, "truth.csv");
    const run = () => predictFolder({ runDir, images, ckpt: "best", quiet: true, truth });
    await Deno.writeTextFile(truth, "filename,gender\nimg000.png,male\n");
    await assert.rejects(run(), (e: Error) => e.message === `predict: --truth ${truth} has no row for 'img001.png' (and 1 more of the 3 images)`);
    await Deno.writeTextFile(truth, "file,gender\nimg000.png,male\n");
    await assert.rejects(run(), /--truth .*truth\.csv has no 'filename' column \(columns: file, gender\)/);
    await Deno.writeTextFile(truth, "filename,age\nimg000.png,1\nimg001.png,2\nimg002.png,3\n");
    await assert.rejects(run(), /has no column for the model's heads \(gender\)/);
    await Deno.writeTextFile(truth, "filename,gender\nimg000.png,male\nimg001.png,man\nimg002.png,female\n");
    await assert.rejects(run(), /'img001\.png' has gender 'man', expected one of female, male \(or empty\)/);
    await assert.rejects(predictFolder({ runDir, images, ckpt: "best", quiet: true, truth: join(dir, "nope.csv") }), /cannot read --truth .*nope\.csv/);
    await assert.rejects(predictFolder({ runDir, images, ckpt: "best", quiet: true, fill: "smear" as never }), /predict: expected fill to be one of edge, mirror, blur, mean, got 'smear'/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("predict's contact sheet for 200 images is one page: the first 48 and the 24 least confident, pred.log says 72 of 200; CSV and pred.log list all 200", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tp_pred_" });
  try {
    const images = await noiseFolder(dir, 200, 24);
    const runDir = await tinyRun(dir);
    const r = await predictFolder({ runDir, images, ckpt: "best", quiet: true, batchSize: 50 });
    assert.equal(r.rows.length, 200);
    assert.equal((await Deno.readTextFile(r.csvPath)).trim().split("\n").length, 201);
    assert.equal((await Deno.readTextFile(r.logPath)).split("\n").filter((l) => /^ {2}img\d{3}\.png: /.test(l)).length, 200);
    const meta = await sharp(r.sheetPath!).metadata();
    // 72 images, 4 per row (image + crop tiles of 168x216 with a caption line): 18 rows, < 4,500 px.
    assert.ok(meta.height! < 4500, `sheet is ${meta.height} px tall`);
    assert.ok(meta.height! > 18 * 216, `sheet is ${meta.height} px tall`);
    assert.equal(SHEET_FIRST + SHEET_LEAST_CONFIDENT, 72);
    assert.equal(r.sheetShown.length, 72);
    assert.deepEqual(r.sheetShown.slice(0, 48), r.rows.slice(0, 48).map((x) => x.filename));
    const conf = new Map(r.rows.map((x) => [x.filename, x.gender_prob as number]));
    const least = r.rows.slice(48).map((x) => x.gender_prob as number).sort((p, q) => p - q).slice(0, 24);
    assert.deepEqual(r.sheetShown.slice(48).map((f) => conf.get(f)), least);
    assert.match(await Deno.readTextFile(r.logPath), /contact sheet .*predictions_gender\.png: 72 of 200 images: the first 48, then the 24 least confident; all in predictions_gender\.csv/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sheetRows() picks the first 48 rows, then the 24 least confident of the rest, least confident first", () => {
  const conf = Array.from({ length: 100 }, (_, i) => (i < 48 ? 0.5 : 1 - (i % 30) / 100));
  const rows = sheetRows(conf);
  assert.equal(rows.length, 72);
  assert.deepEqual(rows.slice(0, 48), Array.from({ length: 48 }, (_, i) => i));
  const rest = rows.slice(48);
  for (let k = 1; k < rest.length; k++) assert.ok(conf[rest[k - 1]] <= conf[rest[k]]);
  assert.ok(rest.every((i) => i >= 48));
  assert.equal(conf[rest[0]], 0.71);
  assert.deepEqual(sheetRows([0.9, 0.6, 0.7], 1, 5), [0, 1, 2]);
  assert.deepEqual(sheetRows([]), []);
});

Deno.test("readCsvRows() reads quoted fields with commas, doubled quotes and CRLF line ends", () => {
  assert.deepEqual(readCsvRows('filename,gender\r\n"a, b.jpg",male\r\n"say ""hi"".png",female\n\n'), [
    ["filename", "gender"],
    ["a, b.jpg", "male"],
    ['say "hi".png', "female"],
  ]);
});
