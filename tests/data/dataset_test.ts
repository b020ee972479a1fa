import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { openDataset, writeProblemsCsv } from "../../lib/data/dataset.ts";
import { decodePortrait } from "../../lib/data/images.ts";
import { resolveLayout } from "../../lib/data/layout.ts";
import { rowPixels } from "../../lib/data/cache.ts";
import { IMAGE_BYTES, imageFileName } from "../../lib/data/schema.ts";
import { makeDataset, noisePng, withTempDir } from "../_fixtures.ts";

Deno.test("openDataset() reports every bad image by file and kind and keeps going", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 10);
    const f = (i: number) => join(dir, imageFileName(rows[i].index));
    await Deno.remove(f(1)); // missing
    await Deno.writeTextFile(f(2), "this is not a png"); // bad header
    const png = await Deno.readFile(f(3));
    await Deno.writeFile(f(3), png.subarray(0, 200)); // truncated = corrupt
    await Deno.writeFile(f(4), await noisePng(9, 85, 108)); // wrong size
    await Deno.writeFile(f(5), await noisePng(9, 84, 108, 4)); // RGBA
    await Deno.writeFile(f(6), await noisePng(9, 84, 108, 1)); // greyscale
    await Deno.writeFile(join(dir, imageFileName(9999)), await noisePng(1)); // unlisted
    const ds = await openDataset({ dataroot: dir, quiet: true });
    const kinds = ds.problems.map((p) => [p.row, p.kind]);
    assert.deepEqual(kinds, [[1, "missing"], [2, "bad_header"], [3, "corrupt"], [4, "wrong_size"], [5, "wrong_channels"], [6, "wrong_channels"]]);
    assert.deepEqual(Array.from(ds.goodRows), [0, 7, 8, 9]);
    assert.deepEqual(ds.unlistedFiles, [imageFileName(9999)]);
    assert.match(ds.problems[3].message, /85x108; expected 84x108/);
    assert.ok(ds.problems.every((p) => p.file.endsWith(imageFileName(p.index))));
    const out = join(dir, "problems.csv");
    await writeProblemsCsv(ds, out);
    const text = await Deno.readTextFile(out);
    assert.equal(text.trim().split("\n").length, 1 + 6 + 1);
  });
});

Deno.test("resolveLayout() accepts the kit layout, the flat layout and a CSV elsewhere", async () => {
  await withTempDir(async (dir) => {
    await makeDataset(join(dir, "kit"), 2, { kit: true });
    await makeDataset(join(dir, "flat"), 2);
    const kit = await resolveLayout({ dataroot: join(dir, "kit") });
    assert.equal(kit.kind, "kit");
    assert.ok(kit.imagesDir.endsWith("Tiny_Portraits_Images"));
    const flat = await resolveLayout({ dataroot: join(dir, "flat") });
    assert.equal(flat.kind, "flat");
    await Deno.rename(join(dir, "flat", "Tiny_Portraits_Attributes.csv"), join(dir, "attrs.csv"));
    await assert.rejects(resolveLayout({ dataroot: join(dir, "flat") }), /no Tiny_Portraits_Attributes.csv in .*--attributes FILE/);
    const other = await resolveLayout({ dataroot: join(dir, "flat"), attributes: join(dir, "attrs.csv") });
    assert.equal(other.csvPath, join(dir, "attrs.csv"));
    await assert.rejects(resolveLayout({ dataroot: join(dir, "nope") }), /does not exist/);
  });
});

Deno.test("pixel cache round-trips the decoded pixels and is reused by the next run", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 6, { kit: true });
    const first = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(first.cache.built, true);
    const second = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(second.cache.built, false);
    assert.equal(second.cache.pixels.length, 6 * IMAGE_BYTES);
    for (let r = 0; r < rows.length; r++) {
      const d = await decodePortrait(join(dir, "Tiny_Portraits_Images", imageFileName(rows[r].index)));
      assert.ok(d.ok);
      assert.deepEqual(rowPixels(second.cache, r), d.pixels);
    }
    const files = [...Deno.readDirSync(dirname(second.cache.binPath))].map((e) => e.name).sort();
    assert.equal(files.length, 2, `one .bin and one .json, got ${files}`);
    assert.ok(!files.some((f) => f.includes(".tmp")), "no temp files left behind");
  });
});

Deno.test("pixel cache is invalidated when an image or the CSV changes, and the stale one is removed", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 4);
    const a = await openDataset({ dataroot: dir, quiet: true });
    // Replace one image with different pixels.
    const img = join(dir, imageFileName(rows[2].index));
    const replacement = await sharp({ create: { width: 84, height: 108, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer();
    await Deno.writeFile(img, replacement);
    const b = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(b.cache.built, true);
    assert.notEqual(a.cache.key, b.cache.key);
    assert.deepEqual(Array.from(rowPixels(b.cache, 2).subarray(0, 3)), [200, 10, 10]);
    // Edit the CSV (drop the last row).
    const csv = join(dir, "Tiny_Portraits_Attributes.csv");
    const lines = (await Deno.readTextFile(csv)).trim().split("\n");
    await Deno.writeTextFile(csv, lines.slice(0, -1).join("\n") + "\n");
    const c = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(c.cache.built, true);
    assert.equal(c.rows, 3);
    const bins = [...Deno.readDirSync(dirname(c.cache.binPath))].filter((e) => e.name.endsWith(".bin"));
    assert.equal(bins.length, 1);
  });
});

Deno.test("pixel cache: a same-size corruption of the .bin fails its checksum and the images are decoded again", async () => {
  await withTempDir(async (dir) => {
    await makeDataset(dir, 5);
    const a = await openDataset({ dataroot: dir, quiet: true });
    const good = a.cache.pixels.slice();
    // Zero 3 images' worth of pixels in place: same size, same name.
    const f = await Deno.open(a.cache.binPath, { write: true });
    await f.seek(5 + IMAGE_BYTES, Deno.SeekMode.Start);
    await f.write(new Uint8Array(3 * IMAGE_BYTES));
    f.close();
    const b = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(b.cache.built, true, "a damaged cache is rebuilt, not loaded");
    assert.deepEqual(b.cache.pixels, good);
    const c = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(c.cache.built, false, "the rebuilt cache loads");
  });
});

Deno.test("pixel cache: an image replaced by one of the same size with its old mtime restored still invalidates the cache (ctime, inode)", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 4);
    const img = join(dir, imageFileName(rows[1].index));
    const old = await Deno.stat(img);
    const a = await openDataset({ dataroot: dir, quiet: true });
    // Deno reports ctime in whole seconds: replace the file in a later second than the cache was keyed in.
    await new Promise((r) => setTimeout(r, 1100));
    // Same size, different content: one byte in the middle of the file changed.
    const same = await Deno.readFile(img);
    same[same.length >> 1] ^= 0xff;
    await Deno.remove(img);
    await Deno.writeFile(img, same);
    await Deno.utime(img, old.atime!, old.mtime!);
    const st = await Deno.stat(img);
    assert.equal(st.size, old.size);
    assert.equal(st.mtime!.getTime(), old.mtime!.getTime());
    const b = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(b.cache.built, true);
    assert.notEqual(b.cache.key, a.cache.key);
  });
});

Deno.test("pixel cache: temp files left by a killed build (dead pid) are removed by the next build; a live process's are kept", async () => {
  await withTempDir(async (dir) => {
    await makeDataset(dir, 3);
    const cacheDir = join(dir, "cache");
    await Deno.mkdir(cacheDir);
    const child = new Deno.Command("true").spawn();
    await child.status;
    const dead = join(cacheDir, `pixels-0123456789abcdef0123.bin.tmp-${child.pid}-1`);
    const live = join(cacheDir, `pixels-0123456789abcdef0123.bin.tmp-1-1`); // pid 1 is always alive
    await Deno.writeFile(dead, new Uint8Array(10));
    await Deno.writeFile(live, new Uint8Array(10));
    await openDataset({ dataroot: dir, cacheDir, quiet: true });
    const names = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
    assert.ok(!names.includes(dead.split("/").pop()!), `dead pid's temp file removed: ${names}`);
    assert.ok(names.includes(live.split("/").pop()!), `live pid's temp file kept: ${names}`);
  });
});

Deno.test("TP_CACHE_DIR puts the caches in <TP_CACHE_DIR>/<dataset>-<hash>/ and nothing is written into the dataroot", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await makeDataset(data, 3);
    const before = [...Deno.readDirSync(data)].map((e) => e.name).sort();
    const old = Deno.env.get("TP_CACHE_DIR");
    Deno.env.set("TP_CACHE_DIR", join(dir, "caches"));
    try {
      const ds = await openDataset({ dataroot: data, quiet: true });
      assert.match(ds.cache.binPath, new RegExp(`^${join(dir, "caches")}/data-[0-9a-f]{8}/pixels-[0-9a-f]{20}\\.bin$`));
      assert.deepEqual([...Deno.readDirSync(data)].map((e) => e.name).sort(), before);
      assert.equal((await openDataset({ dataroot: data, quiet: true })).cache.built, false);
    } finally {
      old === undefined ? Deno.env.delete("TP_CACHE_DIR") : Deno.env.set("TP_CACHE_DIR", old);
    }
  });
});

Deno.test("without --cache-dir or TP_CACHE_DIR the caches go to $XDG_CACHE_HOME/tiny-portraits/<dataset>-<hash>/; the dataroot is left as it was, and an old <dataroot>/.tp_cache is named but not read", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await makeDataset(data, 3);
    await Deno.mkdir(join(data, ".tp_cache"));
    const before = [...Deno.readDirSync(data)].map((e) => e.name).sort();
    const old = { tp: Deno.env.get("TP_CACHE_DIR"), xdg: Deno.env.get("XDG_CACHE_HOME") };
    Deno.env.delete("TP_CACHE_DIR");
    Deno.env.set("XDG_CACHE_HOME", join(dir, "xdg"));
    const said: string[] = [];
    const error = console.error;
    console.error = (...a: unknown[]) => said.push(a.join(" "));
    try {
      const ds = await openDataset({ dataroot: data });
      assert.match(ds.cache.binPath, new RegExp(`^${join(dir, "xdg")}/tiny-portraits/data-[0-9a-f]{8}/pixels-[0-9a-f]{20}\\.bin$`));
      assert.deepEqual([...Deno.readDirSync(data)].map((e) => e.name).sort(), before);
      assert.deepEqual([...Deno.readDirSync(join(data, ".tp_cache"))], []);
      assert.equal(said.filter((l) => l.includes(`${join(data, ".tp_cache")} (made by an earlier version) is no longer used`)).length, 1);
    } finally {
      console.error = error;
      old.tp === undefined ? Deno.env.delete("TP_CACHE_DIR") : Deno.env.set("TP_CACHE_DIR", old.tp);
      old.xdg === undefined ? Deno.env.delete("XDG_CACHE_HOME") : Deno.env.set("XDG_CACHE_HOME", old.xdg);
    }
  });
});

Deno.test("a FIFO named like a portrait is reported as not a file and skipped instead of blocking the decode", async () => {
  await withTempDir(async (dir) => {
    const rows = await makeDataset(dir, 3);
    const fifo = join(dir, imageFileName(rows[1].index));
    await Deno.remove(fifo);
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(mk.code, 0, "mkfifo");
    const ds = await openDataset({ dataroot: dir, quiet: true });
    assert.equal(ds.goodRows.length, 2);
    assert.deepEqual(ds.problems.map((p) => [p.index, p.kind]), [[rows[1].index, "not_a_file"]]);
    assert.match(ds.problems[0].message, /a FIFO \(named pipe\), skipped/);
  });
});
