// evaluateRun end to end on a tiny procedural set (lib/data/synthetic, 6 of 24 images planted non-faces)
// with an untrained multitask model: intervals, face check, worst subgroup, files.
// Run: deno test -A tests/eval/evaluate_test.ts   (about 10 s)
import assert from "node:assert/strict";
import { join } from "node:path";
import { initEngine } from "../../lib/engine/mod.ts";
import { createClassifier } from "../../lib/models/mod.ts";
import { saveCheckpoint } from "../../lib/train/checkpoint.ts";
import { evaluateRun, FACE_GROUPS } from "../../lib/eval/evaluate.ts";
import { generateSynthetic, GROUND_TRUTH_FILE } from "../../lib/data/synthetic/mod.ts";
import { REFERENCE_NORMALIZATION } from "../../lib/data/batches.ts";
import { HEAD_NAMES, HEADS } from "../../lib/data/schema.ts";
import type { HeadMetrics } from "../../lib/eval/mod.ts";
import { withTempDir } from "../_fixtures.ts";

await initEngine({ verbose: false });

Deno.test("evaluateRun() reports bootstrap intervals, accuracy by face found / not found and the worst subgroup in text, JSON and result", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 24, seed: 3, badFraction: 0.25, duplicateFraction: 0 });
    const runDir = join(dir, "run");
    const { model, normalization } = await createClassifier("compact_cnn", [...HEAD_NAMES], { widths: [8, 8, 8, 8], blocksPerStage: 0 });
    const heads = Object.fromEntries(HEAD_NAMES.map((h) => [h, [...HEADS[h].labels]]));
    await saveCheckpoint(join(runDir, "models", "best"), {
      model,
      config: { model: "compact_cnn", task: "multitask", heads, normalization: normalization ?? REFERENCE_NORMALIZATION, dataset: { name: "synthetic", root: data } },
    });
    model.dispose();
    const r = await evaluateRun({ runDir, ckpt: "best", split: "all", quiet: true, faceCheck: true, worstMinRows: 3, bootstrap: { resamples: 200 } });
    assert.equal(r.rows, 24);

    // Face check: exactly the 6 planted non-faces (landscapes, noise, text) have no face.
    const planted = new Set((await Deno.readTextFile(join(data, GROUND_TRUTH_FILE))).trim().split("\n").slice(1)
      .filter((l) => l.split(",")[2] === "bad").map((l) => Number(l.split(",")[1])));
    assert.equal(planted.size, 6);
    const faceCsv = (await Deno.readTextFile(r.files.face_check)).trim().split("\n");
    assert.equal(faceCsv[0], "index,face_score,face_found");
    assert.equal(faceCsv.length, 25);
    for (const line of faceCsv.slice(1)) {
      const [index, , found] = line.split(",");
      assert.equal(found, String(!planted.has(Number(index))), line);
    }
    for (const head of HEAD_NAMES) {
      const df = r.subgroups[`${head}_by_face`];
      assert.deepEqual(df.getColumn("group").toArray(), [...FACE_GROUPS]);
      const n = df.getColumn("n").toArray().map(Number);
      const correct = df.getColumn("correct").toArray().map(Number);
      const labelled = r.reports[head].n;
      assert.equal(n[0] + n[1], labelled);
      assert.equal(correct[0] + correct[1], Math.round(r.reports[head].accuracy * labelled));
      assert.ok((await Deno.stat(r.files[`subgroups_${head}_by_face`])).size > 0);
    }
    assert.match(r.text, /gender accuracy by face found \(face-api tiny detector\):/);

    // Intervals: in the result, in the JSON beside the unchanged keys, and in the text.
    const json = JSON.parse(await Deno.readTextFile(r.files.metrics)) as Record<string, HeadMetrics>;
    assert.deepEqual(Object.keys(json), [...HEAD_NAMES]);
    for (const head of HEAD_NAMES) {
      const m = json[head], ci = r.intervals[head], rep = r.reports[head];
      assert.equal(m.accuracy, rep.accuracy);
      assert.equal(m.macro_f1, rep.macro.f1);
      assert.deepEqual(m.accuracy_ci, ci.accuracy);
      assert.deepEqual(m.macro_f1_ci, ci.macroF1);
      assert.ok(ci.accuracy[0] <= rep.accuracy && rep.accuracy <= ci.accuracy[1]);
      assert.equal(ci.resamples, 200);
      for (const l of HEADS[head].labels) assert.deepEqual(m.per_class[l].f1_ci, ci.perClassF1[l]);
    }
    const acc = r.reports.gender.accuracy.toFixed(4);
    assert.match(r.text, new RegExp(`\\n {2}accuracy\\s+${acc} \\[\\d\\.\\d{4}, \\d\\.\\d{4}\\]\\n`));
    assert.match(r.text, /\n {2}F1 female\s+\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]\n/);
    assert.match(await Deno.readTextFile(r.files.log), /95% bootstrap intervals \(200 resamples of \d+ rows, seed 1\)/);

    // Worst subgroup: the lowest accuracy among every table's groups with ≥ 3 rows, computed here independently.
    let best: { table: string; group: string; accuracy: number; n: number } | null = null;
    for (const [table, df] of Object.entries(r.subgroups)) {
      const groups = df.getColumn("group").toArray() as string[];
      const ns = df.getColumn("n").toArray().map(Number), cs = df.getColumn("correct").toArray().map(Number);
      groups.forEach((group, i) => {
        const a = cs[i] / ns[i];
        if (ns[i] >= 3 && (!best || a < best.accuracy || (a === best.accuracy && ns[i] > best.n))) best = { table, group, accuracy: a, n: ns[i] };
      });
    }
    assert.ok(best && r.worstSubgroup);
    const w = r.worstSubgroup;
    assert.deepEqual({ table: w.table, group: w.group, accuracy: w.accuracy, n: w.n }, best);
    assert.ok(w.accuracy_ci && w.accuracy_ci[0] <= w.accuracy && w.accuracy <= w.accuracy_ci[1]);
    // Each head's entry names that head's worst subgroup; the overall one is the lowest of them.
    const perHead = HEAD_NAMES.map((h) => json[h].worst_subgroup!);
    perHead.forEach((s, i) => assert.ok(s.table.startsWith(`${HEAD_NAMES[i]}_by_`), s.table));
    assert.equal(Math.min(...perHead.map((s) => s.accuracy)), w.accuracy);
    const [head, by] = w.table.split("_by_");
    const pct = w.accuracy.toFixed(4);
    assert.ok(r.text.includes(`\nsummary:\n`));
    assert.ok(r.text.includes(`  worst subgroup (≥ 3 rows): ${head} accuracy where ${by === "face" ? "face check" : by} = ${w.group}: ${pct} [`), r.text.slice(-600));
  });
});

Deno.test("a run whose config asks for ensemble 'faceapi' gives the mean of its gender probabilities and face-api's age/gender net's; 'none' turns it off, 'faceapi' forces it", async () => {
  const { loadPredictor } = await import("../../lib/eval/evaluate.ts");
  const { ageGenderPredict } = await import("../../lib/faces/mod.ts");
  const { openDataset } = await import("../../lib/data/dataset.ts");
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await generateSynthetic({ out: data, count: 8, seed: 4, badFraction: 0, duplicateFraction: 0 });
    const ds = await openDataset({ dataroot: data, quiet: true });
    const { model, normalization } = await createClassifier("compact_cnn", ["gender"], { widths: [8, 8, 8, 8], blocksPerStage: 0 });
    const config = { model: "compact_cnn", task: "gender", heads: { gender: [...HEADS.gender.labels] }, normalization: normalization ?? REFERENCE_NORMALIZATION, dataset: { name: "synthetic", root: data } };
    await saveCheckpoint(join(dir, "plain", "models", "best"), { model, config });
    await saveCheckpoint(join(dir, "ens", "models", "best"), { model, config: { ...config, ensemble: "faceapi" } });
    model.dispose();
    const rows = ds.goodRows;
    const { male } = await ageGenderPredict(ds.cache.pixels, rows);
    const get = async (run: string, ensemble?: "auto" | "faceapi" | "none") => {
      const p = await loadPredictor(join(dir, run), "best", { ensemble });
      try {
        return { probs: (await p.predict(ds.cache.pixels, rows)).gender, ensemble: p.ensemble };
      } finally {
        p.dispose();
      }
    };
    const plain = await get("plain"), ens = await get("ens"), off = await get("ens", "none"), forced = await get("plain", "faceapi");
    assert.deepEqual([plain.ensemble, ens.ensemble, off.ensemble, forced.ensemble], ["none", "faceapi", "none", "faceapi"]);
    assert.deepEqual(Array.from(off.probs), Array.from(plain.probs));
    for (let i = 0; i < rows.length; i++) {
      const want = 0.5 * plain.probs[2 * i + 1] + 0.5 * male[i];
      assert.ok(Math.abs(ens.probs[2 * i + 1] - want) < 1e-6, `row ${i}: ${ens.probs[2 * i + 1]} vs ${want}`);
      assert.ok(Math.abs(ens.probs[2 * i] + ens.probs[2 * i + 1] - 1) < 1e-6);
      assert.ok(Math.abs(forced.probs[2 * i + 1] - want) < 1e-6);
    }
  });
});
