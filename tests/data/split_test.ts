import assert from "node:assert/strict";
import { join } from "node:path";
import { readAttributes } from "../../lib/data/attributes.ts";
import { makeSplits, readSplits, SPLIT_PARTS, splitReport, stratumOf, taskRows, writeSplits } from "../../lib/data/split.ts";
import { csvText, type FixtureRow, withTempDir } from "../_fixtures.ts";
import { Rng } from "../../lib/util/rng.ts";

/** An attributes file with the real label skew (no images needed for splitting). */
async function skewedAttributes(dir: string, n: number) {
  const rng = new Rng(4);
  const rows: FixtureRow[] = [];
  const pick = (opts: [string, number][]) => {
    let u = rng.next();
    for (const [v, p] of opts) if ((u -= p) < 0) return v;
    return opts[opts.length - 1][0];
  };
  for (let i = 0; i < n; i++) {
    const gender = rng.next() < 0.625 ? "female" : "male";
    const hair_color = pick(gender === "female"
      ? [["n/a", 0.34], ["black", 0.22], ["brown", 0.22], ["blond", 0.21], ["gray", 0.01]]
      : [["n/a", 0.34], ["black", 0.28], ["brown", 0.22], ["blond", 0.02], ["gray", 0.08], ["bald", 0.06]]);
    const hair_type = hair_color === "bald" ? "bald" : pick([["n/a", 0.42], ["wavy", 0.37], ["straight", 0.21]]);
    rows.push({ index: i * 3, gender, hair_color, hair_type });
  }
  const p = join(dir, "attrs.csv");
  await Deno.writeTextFile(p, csvText(rows));
  return await readAttributes(p);
}

Deno.test("split() keeps class shares within 1% in every split and the 70/15/15 sizes", async () => {
  await withTempDir(async (dir) => {
    const attrs = await skewedAttributes(dir, 6000);
    const usable = Int32Array.from({ length: 6000 }, (_, i) => i);
    for (const task of ["gender", "haircolor", "multitask"] as const) {
      const s = makeSplits(attrs, task, usable, { seed: 1 });
      const n = s.train.length + s.val.length + s.test.length;
      assert.equal(n, taskRows(attrs, task, usable).length);
      assert.ok(Math.abs(s.val.length / n - 0.15) < 0.002 && Math.abs(s.test.length / n - 0.15) < 0.002);
      const report = splitReport(attrs, task, s).toRecords() as { label: string; class: string; split: string; share: number }[];
      for (const rec of report.filter((r) => r.split !== "train")) {
        const train = report.find((r) => r.label === rec.label && r.class === rec.class && r.split === "train")!;
        assert.ok(Math.abs(rec.share - train.share) < 0.01, `${task} ${rec.label}=${rec.class} ${rec.split} ${rec.share} vs train ${train.share}`);
      }
      // The joint stratum of multitask is kept too.
      if (task === "multitask") {
        const share = (rows: Int32Array, key: string) => rows.filter((r) => stratumOf(attrs, task, r) === key).length / rows.length;
        assert.ok(Math.abs(share(s.test, "female|blond|wavy") - share(s.train, "female|blond|wavy")) < 0.01);
      }
    }
  });
});

Deno.test("split() drops n/a rows for hair colour, excludes unusable rows, and is repeatable per seed", async () => {
  await withTempDir(async (dir) => {
    const attrs = await skewedAttributes(dir, 1000);
    const usable = Int32Array.from({ length: 1000 }, (_, i) => i).filter((r) => r % 10 !== 0); // 100 "bad" rows
    const a = makeSplits(attrs, "haircolor", usable, { seed: 3 });
    const b = makeSplits(attrs, "haircolor", usable, { seed: 3 });
    const c = makeSplits(attrs, "haircolor", usable, { seed: 4 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.test, c.test);
    for (const part of SPLIT_PARTS) {
      for (const r of a[part]) {
        assert.ok(attrs.labels.hair_color[r] >= 0, "no n/a hair colour");
        assert.ok(r % 10 !== 0, "no unusable row");
      }
    }
    const all = new Set([...a.train, ...a.val, ...a.test]);
    assert.equal(all.size, a.train.length + a.val.length + a.test.length, "parts are disjoint");
  });
});

Deno.test("splits written as CSV read back to the same rows, and a stale split is an error naming the line", async () => {
  await withTempDir(async (dir) => {
    const attrs = await skewedAttributes(dir, 500);
    const s = makeSplits(attrs, "multitask", Int32Array.from({ length: 500 }, (_, i) => i), { seed: 9 });
    const out = join(dir, "splits");
    await writeSplits(out, "multitask", attrs, s);
    const back = await readSplits(out, "multitask", attrs);
    assert.deepEqual(back, s);
    const testCsv = join(out, "multitask_test.csv");
    const lines = (await Deno.readTextFile(testCsv)).split("\n");
    lines[1] = "999999," + lines[1].split(",").slice(1).join(",");
    await Deno.writeTextFile(testCsv, lines.join("\n"));
    await assert.rejects(readSplits(out, "multitask", attrs), /multitask_test.csv: line 2: Image_Index 999999 is not in/);
  });
});

Deno.test("readSplits() refuses splits made from another attributes CSV (by content) and names both", async () => {
  await withTempDir(async (dir) => {
    const attrs = await skewedAttributes(dir, 300);
    const s = makeSplits(attrs, "gender", Int32Array.from({ length: 300 }, (_, i) => i), { seed: 2 });
    const out = join(dir, "splits");
    await writeSplits(out, "gender", attrs, s);
    // Another dataset folder with the same basename: same rows, one label edited (a different CSV).
    const text = await Deno.readTextFile(attrs.csvPath);
    const other = join(dir, "other.csv");
    await Deno.writeTextFile(other, text.replace(/\n0,(female|male)/, (_m, g) => `\n0,${g === "female" ? "male" : "female"}`));
    await assert.rejects(readSplits(out, "gender", await readAttributes(other)), /the gender splits were made from another attributes CSV .*attrs\.csv.*other\.csv.*--force/);
  });
});

Deno.test("readSplits({ usable }) leaves out rows whose images broke after the split, and says how many per part", async () => {
  await withTempDir(async (dir) => {
    const attrs = await skewedAttributes(dir, 300);
    const all = Int32Array.from({ length: 300 }, (_, i) => i);
    const s = makeSplits(attrs, "gender", all, { seed: 2 });
    const out = join(dir, "splits");
    await writeSplits(out, "gender", attrs, s);
    const broken = new Set([...s.train.slice(0, 10), ...s.test.slice(0, 2)]);
    const notes: string[] = [];
    const back = await readSplits(out, "gender", attrs, { usable: all.filter((r) => !broken.has(r)), log: (m) => notes.push(m) });
    assert.deepEqual([back.train.length, back.val.length, back.test.length], [s.train.length - 10, s.val.length, s.test.length - 2]);
    assert.ok([...back.train, ...back.test].every((r) => !broken.has(r)));
    assert.equal(notes.length, 1);
    assert.match(notes[0], /left out 10 of train, 2 of test .*no longer usable/);
  });
});
