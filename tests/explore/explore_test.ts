import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import sharp from "sharp";
import { readAttributes } from "../../lib/data/attributes.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { describeAttributes } from "../../lib/explore/describe.ts";
import { alignedDifference, hashDistance, imageStats, nearDuplicatePairs } from "../../lib/explore/image_stats.ts";
import { knnScores, robustZ } from "../../lib/explore/knn.ts";
import { findOutliers } from "../../lib/explore/outliers.ts";
import { scoreGroundTruth } from "../../lib/explore/mod.ts";
import { faceSpaceFeatures, faceSpaceResidual, fitFaceSpace } from "../../lib/explore/face_space.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { IMAGE_BYTES, imageFileName } from "../../lib/data/schema.ts";
import { csvText, makeDataset, withTempDir } from "../_fixtures.ts";
import { Rng } from "../../lib/util/rng.ts";

await tf.setBackend("cpu");

Deno.test("describeAttributes() counts classes, n/a, imbalance and cross tables like a hand count", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "a.csv");
    await Deno.writeTextFile(p, csvText([
      { index: 0, gender: "female", hair_color: "blond", hair_type: "wavy" },
      { index: 1, gender: "female", hair_color: "blond", hair_type: "n/a" },
      { index: 2, gender: "female", hair_color: "n/a", hair_type: "straight" },
      { index: 3, gender: "male", hair_color: "bald", hair_type: "bald" },
      { index: 4, gender: "male", hair_color: "black", hair_type: "straight" },
      { index: 5, gender: "female", hair_color: "black", hair_type: "wavy" },
    ]));
    const d = describeAttributes(await readAttributes(p));
    const counts = d.classCounts.toRecords() as { attribute: string; class: string; count: number; share_labelled: number | null }[];
    const get = (a: string, c: string) => counts.find((r) => r.attribute === a && r.class === c)!;
    assert.equal(Number(get("Gender", "female").count), 4);
    assert.equal(Number(get("Hair_Color", "blond").count), 2);
    assert.equal(Number(get("Hair_Color", "gray").count), 0);
    assert.equal(Number(get("Hair_Color", "n/a").count), 1);
    assert.equal(get("Hair_Color", "blond").share_labelled, 2 / 5);
    const imb = d.imbalance.toRecords() as { attribute: string; imbalance_ratio: number | null; missing: number }[];
    assert.equal(imb.find((r) => r.attribute === "Gender")!.imbalance_ratio, 2);
    assert.equal(imb.find((r) => r.attribute === "Hair_Color")!.imbalance_ratio, null, "a class with no rows makes the ratio undefined");
    assert.equal(Number(imb.find((r) => r.attribute === "Hair_Type")!.missing), 1);
    const cross = d.genderByHairColor.toRecords() as Record<string, unknown>[];
    const female = cross.find((r) => r.Gender === "female")!;
    assert.deepEqual([female.black, female.blond, female.bald, female["n/a"]].map(Number), [1, 2, 0, 1]);
    assert.deepEqual(d.genderByHairColor.columns, ["Gender", "black", "brown", "blond", "gray", "bald", "n/a"]);
  });
});

Deno.test("imageStats() gives zero contrast to a blank image and dHash finds a shifted copy but not a different image", () => {
  const rng = new Rng(1);
  const px = new Uint8Array(4 * IMAGE_BYTES);
  // row 0: smooth gradient + noise; row 1: same shifted by one pixel; row 2: blank; row 3: noise
  for (let y = 0; y < 108; y++) {
    for (let x = 0; x < 84; x++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.round(40 + 150 * Math.sin(x / 13 + c) ** 2 + 40 * (y / 108));
        px[(y * 84 + x) * 3 + c] = v;
        px[IMAGE_BYTES + (y * 84 + Math.min(83, x + 1)) * 3 + c] = v;
        px[2 * IMAGE_BYTES + (y * 84 + x) * 3 + c] = 128;
        px[3 * IMAGE_BYTES + (y * 84 + x) * 3 + c] = rng.int(0, 255);
      }
    }
  }
  const s = imageStats(px, Int32Array.from([0, 1, 2, 3]), { quiet: true });
  assert.equal(s.contrast[2], 0);
  assert.ok(Math.abs(s.brightness[2] - 128 / 255) < 1e-6);
  assert.ok(s.sharpness[3] > 100 * s.sharpness[0], "noise is far sharper than a smooth image");
  assert.ok(hashDistance(s.hash, 0, 1) <= 3);
  assert.ok(hashDistance(s.hash, 0, 3) > 10);
  const pairs = nearDuplicatePairs(s.hash, 3);
  assert.ok(pairs.some((p) => p.i === 0 && p.j === 1));
  assert.ok(!pairs.some((p) => p.j === 3 || p.i === 3));
});

Deno.test("knnScores() gives an isolated point a far higher robust z than points inside the cloud", async () => {
  const rng = new Rng(2);
  const n = 300, dim = 16;
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < emb.length; i++) emb[i] = rng.normal(0, 0.1);
  for (let d = 0; d < dim; d++) emb[7 * dim + d] = 3; // item 7 is far away
  const before = tf.memory().numTensors;
  const z = robustZ(await knnScores(emb, dim, { k: 5, refSize: 100, quiet: true }));
  assert.equal(tf.memory().numTensors, before);
  const others = Array.from(z).filter((_, i) => i !== 7);
  assert.ok(z[7] > 10, `z ${z[7]}`);
  assert.ok(Math.max(...others) < 6, `max other z ${Math.max(...others)}`);
});

Deno.test("findOutliers() flags broken, blank, badly exposed and duplicate images with reasons and scores", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 12);
    const f = (i: number) => join(dir, imageFileName(rows[i].index));
    const solid = (v: number) => sharp({ create: { width: 84, height: 108, channels: 3, background: { r: v, g: v, b: v } } }).png().toBuffer();
    await Deno.writeFile(f(2), await solid(120)); // blank
    const dark = new Uint8Array(IMAGE_BYTES).map((_, i) => ((i / 3 | 0) % 10 < 3 ? 45 : 0)); // dark (mean luma 0.053) but not flat
    await Deno.writeFile(f(4), await sharp(dark, { raw: { width: 84, height: 108, channels: 3 } }).png().toBuffer());
    await Deno.copyFile(f(5), f(6)); // exact duplicate
    await Deno.writeTextFile(f(8), "garbage"); // broken
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const stats = imageStats(ds.cache.pixels, ds.goodRows, { quiet: true });
    const { flags } = await findOutliers(ds, stats, { descriptors: false, detector: false, quiet: true });
    const byRow = new Map(flags.map((fl) => [fl.row, fl]));
    assert.equal(byRow.get(2)?.reason, "blank");
    assert.equal(byRow.get(4)?.reason, "exposure");
    assert.equal(byRow.get(6)?.reason, "duplicate");
    assert.match(byRow.get(6)!.detail, new RegExp(`exact duplicate of ${imageFileName(rows[5].index)}`));
    assert.equal(byRow.get(8)?.reason, "broken");
    assert.ok(!byRow.has(5), "the first of a duplicate pair stays");
    assert.equal(flags.length, 4, JSON.stringify(flags));
    for (const fl of flags) assert.ok(fl.score > 0 && fl.score <= 1);
    // With face-api's detector on, the random-noise "portraits" have no face: non_face.
    const withDetector = await findOutliers(ds, stats, { descriptors: false, quiet: true });
    const nonFace = withDetector.flags.filter((fl) => fl.reason === "non_face").map((fl) => fl.row).sort((a, b) => a - b);
    assert.deepEqual(nonFace, [0, 1, 3, 5, 7, 9, 10, 11]);
    assert.match(withDetector.flags.find((fl) => fl.reason === "non_face")!.detail, /no face found \(best detector score/);
  });
});

Deno.test("fitFaceSpace() recovers a low-rank set's subspace and gives an off-subspace row the largest residual", async () => {
  const rng = new Rng(5);
  const dim = faceSpaceFeatures(new Uint8Array(IMAGE_BYTES), [0]).length; // 14×18×3 at the default block
  const dirs = Array.from({ length: 5 }, () => Float32Array.from({ length: dim }, () => rng.normal()));
  const n = 300;
  const feats = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const row = feats.subarray(i * dim, (i + 1) * dim);
    for (const d of dirs) {
      const a = rng.normal();
      for (let q = 0; q < dim; q++) row[q] += a * d[q];
    }
    for (let q = 0; q < dim; q++) row[q] += 0.01 * rng.normal();
  }
  const odd = 123;
  for (let q = 0; q < dim; q++) feats[odd * dim + q] = rng.normal(); // not in the span
  for (let i = 0; i < n; i++) { // unit length, like faceSpaceFeatures
    const row = feats.subarray(i * dim, (i + 1) * dim);
    const norm = Math.hypot(...row);
    for (let q = 0; q < dim; q++) row[q] /= norm;
  }
  // 300 rows allow 15 components (20 rows each); ask for more and get 15.
  const space = await fitFaceSpace(feats, { components: 64, sample: n });
  assert.equal(space.basis.length, 15 * dim);
  for (let a = 0; a < 8; a++) {
    for (let b = 0; b < 8; b++) {
      let dot = 0;
      for (let q = 0; q < dim; q++) dot += space.basis[a * dim + q] * space.basis[b * dim + q];
      assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-3, `basis ${a}·${b} = ${dot}`);
    }
  }
  for (let c = 1; c < 15; c++) assert.ok(space.explained[c] <= space.explained[c - 1] + 1e-6);
  assert.ok(space.explained.subarray(0, 5).reduce((s, v) => s + v, 0) > 0.9, `top 5 explain ${space.explained.subarray(0, 5)}`);
  // The odd row holds 1/300 of the energy, more than any noise direction: with 15
  // components it earns one of them. Five components span the set; then it stands out.
  const res = await faceSpaceResidual(await fitFaceSpace(feats, { components: 5, sample: n }), feats, { quiet: true });
  const z = robustZ(res);
  const others = Array.from(z).filter((_, i) => i !== odd);
  assert.ok(z[odd] > Math.max(...others) + 3, `odd z ${z[odd]} vs max other ${Math.max(...others)}`);
  assert.throws(() => faceSpaceFeatures(new Uint8Array(IMAGE_BYTES), [0], 0), /block to be an integer/);
});

Deno.test("findOutliers() screens by face space: only the least face-like images reach the detector, and a striped non-face is flagged", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 60, seed: 11 });
    const ds0 = await openDataset({ dataroot: dir, quiet: true });
    const target = 10;
    const stripes = new Uint8Array(IMAGE_BYTES).map((_, i) => (((i / 3 | 0) % 84) % 12 < 6 ? 40 : 200));
    await Deno.writeFile(join(dir, imageFileName(ds0.attrs.index[target])), await sharp(stripes, { raw: { width: 84, height: 108, channels: 3 } }).png().toBuffer());
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const stats = imageStats(ds.cache.pixels, ds.goodRows, { quiet: true });
    const r = await findOutliers(ds, stats, { descriptors: false, screenShare: 0.01, screenMin: 6, screenZ: 1e9, quiet: true });
    assert.equal(r.candidates, 6);
    assert.equal(Array.from(r.faceScore).filter(Number.isFinite).length, 6, "the detector ran on the candidates only");
    const pos = Array.from(stats.rows).indexOf(target);
    assert.ok(Number.isFinite(r.faceScore[pos]), "the stripes are a candidate");
    assert.equal(Math.max(...Array.from(r.faceSpaceZ).filter(Number.isFinite)), r.faceSpaceZ[pos], "the stripes are the least face-like");
    assert.ok(r.flags.some((f) => f.row === target && f.reason === "non_face"), JSON.stringify(r.flags));
  });
});

Deno.test("duplicates: re-encoded, shifted or brightened copies are found after alignment; look-alike portraits are not", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: dir, count: 80, seed: 21, duplicateFraction: 0.1, badFraction: 0 });
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const stats = imageStats(ds.cache.pixels, ds.goodRows, { quiet: true });
    const gt = (await Deno.readTextFile(join(dir, "synthetic_ground_truth.csv"))).trim().split("\n").slice(1).map((l) => l.split(","));
    const rowOf = new Map(Array.from(ds.attrs.index, (idx, r) => [idx, r]));
    const planted = gt.filter((f) => f[2] === "near_duplicate").map((f) => ({ copy: rowOf.get(Number(f[1]))!, original: rowOf.get(Number(/(\d+)/.exec(f[3])![1]))! }));
    assert.ok(planted.length >= 6);
    const img = (r: number) => ds.cache.pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES);
    for (const p of planted) assert.ok(alignedDifference(img(p.copy), img(p.original)) < 5, `planted pair ${p.copy}/${p.original}`);
    // Distinct portraits of the set: far apart after alignment.
    const plantedRows = new Set(planted.flatMap((p) => [p.copy, p.original]));
    const others = Array.from(ds.goodRows).filter((r) => !plantedRows.has(r)).slice(0, 10);
    for (let k = 1; k < others.length; k++) assert.ok(alignedDifference(img(others[0]), img(others[k])) > 8);
    const { flags } = await findOutliers(ds, stats, { descriptors: false, detector: false, faceSpace: false, quiet: true });
    const dupRows = new Set(flags.filter((f) => f.reason === "duplicate").map((f) => f.row));
    const pos = new Map(Array.from(stats.rows, (r, i) => [r, i]));
    for (const p of planted) {
      const bits = hashDistance(stats.hash, pos.get(p.copy)!, pos.get(p.original)!);
      if (bits <= 3) assert.ok(dupRows.has(Math.max(p.copy, p.original)), `planted pair within ${bits} bits not flagged`);
    }
    for (const r of dupRows) assert.ok(plantedRows.has(r), `row ${r} flagged as a duplicate but nothing was planted`);
  });
});

Deno.test("scoreGroundTruth() counts a planted near-duplicate as found when either image of the pair is flagged", async () => {
  await withTempDir(async (dir) => {
    const p = join(dir, "gt.csv");
    await Deno.writeTextFile(p, "file,image_index,kind,detail\nTiny_Portrait_000005.png,5,near_duplicate,Tiny_Portrait_000003.png\nTiny_Portrait_000007.png,7,bad,text\n");
    const flag = (index: number, reason: "duplicate" | "non_face") => ({ row: index, index, file: imageFileName(index), reason, score: 1, detail: "" });
    const s = await scoreGroundTruth(p, [flag(3, "duplicate"), flag(7, "non_face"), flag(9, "non_face")]);
    assert.equal(s.truePositives, 2);
    assert.equal(s.recall, 1);
    assert.ok(Math.abs(s.precision - 2 / 3) < 1e-9);
    assert.deepEqual(s.recallByKind, { near_duplicate: 1, text: 1 });
    const none = await scoreGroundTruth(p, [flag(9, "non_face")]);
    assert.equal(none.recall, 0);
    assert.equal(none.precision, 0);
  });
});

Deno.test("runExploration() with an unknown label and a broken image lists the bad row (bad_rows.csv) and the bad file together and explores the rest", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 12);
    rows[3].hair_color = "purple";
    await Deno.writeTextFile(join(dir, "Tiny_Portraits_Attributes.csv"), csvText(rows));
    await Deno.writeTextFile(join(dir, imageFileName(rows[5].index)), "not a png");
    const { runExploration } = await import("../../lib/explore/mod.ts");
    const r = await runExploration({ dataroot: dir, out: join(dir, "report"), quiet: true, outliers: { descriptors: false, detector: false } });
    assert.equal(r.summary.rows, 11, "the purple row is left out");
    assert.equal(r.summary.badRows, 1);
    assert.equal(await Deno.readTextFile(r.files.bad_rows), `csv_line,message\n5,"unknown Hair_Color 'purple'; expected one of black, brown, blond, gray, bald, n/a"\n`);
    assert.ok(r.flags.some((f) => f.index === rows[5].index && f.reason === "broken"), "the broken file is flagged");
    // Training still refuses the CSV, with the same line.
    await assert.rejects(readAttributes(join(dir, "Tiny_Portraits_Attributes.csv")), /line 5: unknown Hair_Color 'purple'/);
  });
});
