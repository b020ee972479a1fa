import assert from "node:assert/strict";
import pl from "nodejs-polars";
import { subgroupAccuracy, WORST_SUBGROUP_MIN_ROWS, worstSubgroup } from "../../lib/eval/mod.ts";
import { HEADS } from "../../lib/data/schema.ts";

Deno.test("subgroupAccuracy() counts right and wrong per group, n/a last, missing labels ignored", () => {
  // Gender accuracy by hair colour.
  const y = [0, 1, 0, 1, 0, -1, 1];
  const pred = [0, 1, 1, 1, 0, 0, 0];
  const groups = [0, 0, 1, 1, -1, 0, 2]; // black, black, brown, brown, n/a, (missing label), blond
  const df = subgroupAccuracy(y, pred, groups, HEADS.hair_color.labels);
  assert.deepEqual(df.columns, ["group", "n", "accuracy", "correct"]);
  const recs = (df.toRecords() as { group: string; n: number; accuracy: number | null; correct: number }[])
    .map((r) => ({ ...r, n: Number(r.n), correct: Number(r.correct) }));
  assert.deepEqual(recs, [
    { group: "black", n: 2, accuracy: 1, correct: 2 }, // rows 0, 1 right; row 5 has no label
    { group: "brown", n: 2, accuracy: 0.5, correct: 1 }, // row 2 wrong, row 3 right
    { group: "blond", n: 1, accuracy: 0, correct: 0 }, // row 6 wrong
    { group: "gray", n: 0, accuracy: null, correct: 0 },
    { group: "bald", n: 0, accuracy: null, correct: 0 },
    { group: "n/a", n: 1, accuracy: 1, correct: 1 }, // row 4
  ]);
});

Deno.test("subgroupAccuracy() leaves out n/a when no row lacks a group and rejects bad input", () => {
  const df = subgroupAccuracy([0, 1], [0, 0], [0, 1], ["a", "b"]);
  assert.deepEqual(df.getColumn("group").toArray(), ["a", "b"]);
  assert.throws(() => subgroupAccuracy([0], [0, 1], [0], ["a"]), /one length/);
  assert.throws(() => subgroupAccuracy([0], [0], [3], ["a"]), /group in 0\.\.0/);
});

/** A subgroupAccuracy frame from [group, n, correct] rows. */
function table(rows: [string, number, number][]) {
  const y: number[] = [], pred: number[] = [], groups: number[] = [];
  rows.forEach(([, n, correct], g) => {
    for (let i = 0; i < n; i++) {
      y.push(0);
      pred.push(i < correct ? 0 : 1);
      groups.push(g);
    }
  });
  return subgroupAccuracy(y, pred, groups, rows.map(([name]) => name));
}

Deno.test("worst subgroup is the one with the lowest accuracy among groups with ≥ 10 rows", () => {
  const tables = {
    gender_by_hair_color: table([["black", 40, 38], ["gray", 12, 9], ["bald", 5, 1]]), // bald: 20% but only 5 rows
    gender_by_hair_type: table([["straight", 30, 27], ["wavy", 10, 8]]),
  };
  assert.deepEqual(worstSubgroup(tables), { table: "gender_by_hair_color", group: "gray", n: 12, correct: 9, accuracy: 0.75 });
  // With the bar at 5 rows the small group counts.
  assert.equal(worstSubgroup(tables, 5)?.group, "bald");
  assert.equal(WORST_SUBGROUP_MIN_ROWS, 10);
});

Deno.test("worstSubgroup() breaks accuracy ties by the larger group, returns null when no group is large enough, and rejects bad input", () => {
  const tables = { a_by_b: table([["x", 10, 5], ["y", 20, 10]]), a_by_c: table([["z", 40, 20]]) };
  assert.equal(worstSubgroup(tables)?.group, "z");
  assert.equal(worstSubgroup({ a_by_b: table([["x", 9, 0]]) }), null);
  assert.equal(worstSubgroup({}), null);
  // Empty groups (n 0, accuracy null) are skipped, not counted as 0.
  assert.equal(worstSubgroup({ a_by_b: table([["x", 0, 0], ["y", 10, 9]]) })?.group, "y");
  assert.throws(() => worstSubgroup(tables, 0), /expected minRows to be a positive integer, got 0/);
  assert.throws(() => worstSubgroup({ t: pl.DataFrame({ group: ["x"] }) }), /table 't' has no 'n' column/);
});
