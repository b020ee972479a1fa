import assert from "node:assert/strict";
import { join } from "node:path";
import { AttributesError, labelName, readAttributes } from "../../lib/data/attributes.ts";
import { MISSING_CODE } from "../../lib/data/schema.ts";
import { withTempDir } from "../_fixtures.ts";

async function readText(csv: string) {
  let result: Awaited<ReturnType<typeof readAttributes>> | undefined;
  let error: unknown;
  await withTempDir(async (dir) => {
    const p = join(dir, "a.csv");
    await Deno.writeTextFile(p, csv);
    try {
      result = await readAttributes(p);
    } catch (e) {
      error = e;
    }
  });
  return { result, error };
}

Deno.test("readAttributes() parses n/a as a missing label, not as text", async () => {
  const { result, error } = await readText(
    "Image_Index,Gender,Hair_Color,Hair_Type\n0,female,n/a,wavy\n4,male,bald,n/a\n7,female,blond,straight\n",
  );
  assert.equal(error, undefined);
  const a = result!;
  assert.deepEqual(Array.from(a.index), [0, 4, 7]);
  assert.deepEqual(Array.from(a.labels.gender), [0, 1, 0]);
  assert.deepEqual(Array.from(a.labels.hair_color), [MISSING_CODE, 4, 2]);
  assert.deepEqual(Array.from(a.labels.hair_type), [1, MISSING_CODE, 0]);
  assert.equal(a.frame.getColumn("Hair_Color").nullCount(), 1);
  assert.equal(a.frame.getColumn("Hair_Color").toArray()[0], null);
  assert.equal(labelName("hair_color", MISSING_CODE), "n/a");
});

Deno.test("readAttributes() stops on a wrong header and names line 1 and the expected header", async () => {
  const { error } = await readText("index,gender,hair,type\n0,female,black,wavy\n");
  assert.ok(error instanceof AttributesError);
  assert.match(error.message, /line 1: expected header 'Image_Index,Gender,Hair_Color,Hair_Type'/);
});

Deno.test("readAttributes() lists every bad row with its line number", async () => {
  const { error } = await readText(
    [
      "Image_Index,Gender,Hair_Color,Hair_Type",
      "0,female,black,wavy", // line 2 fine
      "1,female,purple,wavy", // line 3 unknown colour
      "x,male,black,wavy", // line 4 bad index
      "0,male,black,wavy", // line 5 duplicate of line 2
      "5,n/a,black,wavy", // line 6 missing gender
      "6,male,black,curly", // line 7 unknown type
      "",
    ].join("\n"),
  );
  assert.ok(error instanceof AttributesError);
  const lines = error.problems.map((p) => p.line);
  assert.deepEqual(lines, [3, 4, 5, 6, 7]);
  assert.match(error.message, /line 3: unknown Hair_Color 'purple'; expected one of black, brown, blond, gray, bald, n\/a/);
  assert.match(error.message, /line 5: duplicate Image_Index 0 \(first on line 2\)/);
});

Deno.test("readAttributes() rejects ragged lines and empty fields that polars would silently fill", async () => {
  const { error } = await readText("Image_Index,Gender,Hair_Color,Hair_Type\n0,female,black\n1,male,,wavy\n");
  assert.ok(error instanceof AttributesError);
  assert.match(error.message, /line 2: expected 4 fields/);
  assert.match(error.message, /line 3: empty Hair_Color; write 'n\/a'/);
});

async function readKeepGoing(csv: string) {
  let result: Awaited<ReturnType<typeof readAttributes>> | undefined;
  await withTempDir(async (dir) => {
    const p = join(dir, "a.csv");
    await Deno.writeTextFile(p, csv);
    result = await readAttributes(p, { keepGoing: true });
  });
  return result!;
}

const HEADER = "Image_Index,Gender,Hair_Color,Hair_Type";

Deno.test("readAttributes() ignores trailing blank or whitespace-only lines, and reads a header with spaces around its names", async () => {
  const a = await readText(`${HEADER}\n0,female,black,wavy\n1,male,n/a,straight\n\n  \n\r\n`);
  assert.equal(a.error, undefined);
  assert.deepEqual(Array.from(a.result!.index), [0, 1]);
  const b = await readText("Image_Index, Gender , Hair_Color,Hair_Type\n0,female,black,wavy\n");
  assert.equal(b.error, undefined);
  assert.deepEqual(Array.from(b.result!.labels.gender), [0]);
});

Deno.test("readAttributes() lists structural and value problems of different lines together, including a blank line in the middle", async () => {
  const { error } = await readText(`${HEADER}\n0,female,black\n\n2,female,purple,wavy\n3,male,black,wavy\n`);
  assert.ok(error instanceof AttributesError);
  assert.deepEqual(error.problems.map((p) => p.line), [2, 3, 4]);
  assert.match(error.message, /line 2: expected 4 fields/);
  assert.match(error.message, /line 3: blank line; delete it/);
  assert.match(error.message, /line 4: unknown Hair_Color 'purple'/);
});

Deno.test("readAttributes() refuses a header-only CSV: no data rows", async () => {
  const { error } = await readText(`${HEADER}\n`);
  assert.ok(error instanceof AttributesError);
  assert.match(error.message, /line 2: no data rows: the file has only its header/);
});

Deno.test("readAttributes({ keepGoing }) leaves every bad row out, lists them, and keeps each remaining row's CSV line", async () => {
  const a = await readKeepGoing(`${HEADER}\n0,female,black,wavy\n1,female,purple,wavy\n2,male\n3,male,gray,straight\n`);
  assert.deepEqual(Array.from(a.index), [0, 3]);
  assert.deepEqual(Array.from(a.csvLines), [2, 5]);
  assert.deepEqual(a.problems.map((p) => p.line), [3, 4]);
  assert.equal(a.frame.height, 2);
  assert.deepEqual(Array.from(a.labels.hair_color), [0, 3]);
});
