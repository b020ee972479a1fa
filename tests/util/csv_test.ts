// CSV tables of records (lib/util/csv.ts), written by nodejs-polars.
import assert from "node:assert/strict";
import { csvOfRecords } from "../../lib/util/csv.ts";

Deno.test("csvOfRecords() keeps column order, writes whole-number columns as integers, quotes commas and leaves null empty", () => {
  assert.equal(
    csvOfRecords([{ epoch: 1, lr: 0.0005, note: "a,b" }, { epoch: 2, lr: 0.001, note: null }]),
    'epoch,lr,note\n1,0.0005,"a,b"\n2,0.001,\n',
  );
  assert.equal(csvOfRecords([{ b: 1, a: 2 }], ["a", "b"]), "a,b\n2,1\n");
  assert.equal(csvOfRecords([], ["x", "y"]), "x,y\n");
});
