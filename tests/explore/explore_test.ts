import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import sharp from "sharp";
import { readAttributes } from "../../lib/data/attributes.ts";
import { openDataset } from "../../lib/data/dataset.ts";
import { describeAttributes } from "../../lib/explore/describe.ts";
import { hashDistance, imageStats, nearDuplicatePairs } from "../../lib/explore/image_stats.ts";
import { knnScores, robustZ } from "../../lib/explore/knn.ts";
import { findOutliers } from "../../lib/explore/outliers.ts";
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

Deno.test("knnScores() gives an isolated point a far higher robust z than points inside the cloud", () => {
  const rng = new Rng(2);
  const n = 300, dim = 16;
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < emb.length; i++) emb[i] = rng.normal(0, 0.1);
  for (let d = 0; d < dim; d++) emb[7 * dim + d] = 3; // item 7 is far away
  const before = tf.memory().numTensors;
  const z = robustZ(knnScores(emb, dim, { k: 5, refSize: 100, quiet: true }));
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
