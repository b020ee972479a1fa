import assert from "node:assert/strict";
import { subgroupAccuracy } from "../../lib/eval/mod.ts";
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
