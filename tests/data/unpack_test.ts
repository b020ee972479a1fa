import assert from "node:assert/strict";
import { join } from "node:path";
import { zipSync } from "fflate";
import { describeUnpack, unpackArchives } from "../../lib/data/unpack.ts";
import { imageFileName } from "../../lib/data/schema.ts";
import { csvText, noisePng, withTempDir } from "../_fixtures.ts";

async function makeZips(dir: string, archives: number, perArchive: number): Promise<number[]> {
  await Deno.mkdir(dir, { recursive: true });
  const indices: number[] = [];
  for (let a = 0; a < archives; a++) {
    const files: Record<string, Uint8Array> = {};
    for (let k = 0; k < perArchive; k++) {
      const idx = a * 10 + k;
      indices.push(idx);
      files[`Tiny_Portraits_Images/${imageFileName(idx)}`] = await noisePng(idx);
    }
    await Deno.writeFile(join(dir, `Tiny_Portraits_Archive_${String(a).padStart(3, "0")}.zip`), zipSync(files));
  }
  return indices;
}

Deno.test("unpackArchives() flattens every archive into one folder and reports completeness", async () => {
  await withTempDir(async (dir) => {
    const indices = await makeZips(join(dir, "zips"), 3, 4);
    const out = join(dir, "out");
    await Deno.mkdir(out);
    await Deno.writeTextFile(
      join(out, "Tiny_Portraits_Attributes.csv"),
      csvText(indices.map((index) => ({ index, gender: "female", hair_color: "n/a", hair_type: "n/a" }))),
    );
    const r = await unpackArchives({ zips: join(dir, "zips"), out, expectArchives: 3, quiet: true });
    assert.equal(r.portraits, 12);
    assert.equal(r.filesWritten, 12);
    assert.equal(r.complete, true, describeUnpack(r));
    // Re-running resumes: nothing written again.
    const again = await unpackArchives({ zips: join(dir, "zips"), out, expectArchives: 3, quiet: true });
    assert.equal(again.filesWritten, 0);
    assert.equal(again.filesSkipped, 12);
  });
});

Deno.test("unpackArchives() names missing and unreadable archives and CSV rows without an image", async () => {
  await withTempDir(async (dir) => {
    const zips = join(dir, "zips");
    const indices = await makeZips(zips, 3, 2);
    await Deno.remove(join(zips, "Tiny_Portraits_Archive_001.zip"));
    await Deno.writeTextFile(join(zips, "Tiny_Portraits_Archive_002.zip"), "garbage");
    const csv = join(dir, "attrs.csv");
    await Deno.writeTextFile(csv, csvText(indices.map((index) => ({ index, gender: "male", hair_color: "bald", hair_type: "bald" }))));
    const r = await unpackArchives({ zips, out: join(dir, "out"), expectArchives: 4, attributes: csv, quiet: true });
    assert.equal(r.complete, false);
    assert.deepEqual(r.archivesMissing, ["Tiny_Portraits_Archive_001.zip", "Tiny_Portraits_Archive_003.zip"]);
    assert.deepEqual(r.archivesUnreadable.map((u) => u.archive), ["Tiny_Portraits_Archive_002.zip"]);
    assert.deepEqual(r.rowsWithoutImage, [10, 11, 20, 21]);
    const text = describeUnpack(r);
    assert.match(text, /MISSING archives \(2\)/);
    assert.match(text, /INCOMPLETE/);
  });
});
