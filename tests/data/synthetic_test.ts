// Contracts of the procedural Tiny Portraits generator (lib/data/synthetic) and its class mosaic.
// Run: deno test -A tests/data/synthetic_test.ts   (about 10-30 s on 2 cores)

import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import {
  ATTRIBUTES_FILE,
  ATTRIBUTES_HEADER,
  generateSynthetic,
  GROUND_TRUTH_FILE,
  imageFileName,
  syntheticRows,
  writeClassMosaic,
} from "../../lib/data/synthetic/mod.ts";
import { mosaic, svgTextRenders } from "../../lib/viz/mosaic.ts";

// @std/assert is not reachable here (no jsr:), so node:assert under the usual names.
function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}
const assertEquals = (a: unknown, b: unknown, msg?: string) =>
  msg === undefined
    ? nodeAssert.deepStrictEqual(a, b)
    : nodeAssert.deepStrictEqual(a, b, msg);
const assertNotEquals = (a: unknown, b: unknown, msg?: string) =>
  msg === undefined
    ? nodeAssert.notDeepStrictEqual(a, b)
    : nodeAssert.notDeepStrictEqual(a, b, msg);
const assertRejects = (fn: () => Promise<unknown>, re: RegExp) =>
  nodeAssert.rejects(fn, re);

const GENDERS = ["female", "male"];
const COLORS = ["black", "brown", "blond", "gray", "bald", "n/a"];
const TYPES = ["straight", "wavy", "bald", "n/a"];

/** Width, height and colour type from a PNG's IHDR chunk. */
function pngHeader(
  b: Uint8Array,
): { width: number; height: number; colorType: number; bitDepth: number } {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  sig.forEach((v, i) => assertEquals(b[i], v, "PNG signature"));
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    width: dv.getUint32(16),
    height: dv.getUint32(20),
    bitDepth: b[24],
    colorType: b[25],
  };
}

async function listPngs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".png")) out.push(e.name);
  }
  return out.sort();
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "synth_test_" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("generateSynthetic() is byte-identical for the same seed, whatever the concurrency, and differs for another seed", async () => {
  await withTempDir(async (root) => {
    const opts = { count: 40, badFraction: 0.1, duplicateFraction: 0.05 };
    const a = join(root, "a"), b = join(root, "b"), c = join(root, "c");
    const sa = await generateSynthetic({
      ...opts,
      out: a,
      seed: 7,
      concurrency: 8,
    });
    await generateSynthetic({ ...opts, out: b, seed: 7, concurrency: 1 });
    await generateSynthetic({ ...opts, out: c, seed: 8 });
    assertEquals(sa.bad, 4);
    assertEquals(sa.duplicates, 2);

    for (const f of [ATTRIBUTES_FILE, GROUND_TRUTH_FILE]) {
      assertEquals(
        await Deno.readTextFile(join(a, f)),
        await Deno.readTextFile(join(b, f)),
        f,
      );
    }
    const files = await listPngs(a);
    assertEquals(files, await listPngs(b));
    assertEquals(files.length, 40);
    for (const f of files) {
      assertEquals(
        await Deno.readFile(join(a, f)),
        await Deno.readFile(join(b, f)),
        f,
      );
    }

    assertNotEquals(
      await Deno.readTextFile(join(a, ATTRIBUTES_FILE)),
      await Deno.readTextFile(join(c, ATTRIBUTES_FILE)),
    );
    const first = imageFileName(0); // index 0 exists for every seed
    assertNotEquals(
      await Deno.readFile(join(a, first)),
      await Deno.readFile(join(c, first)),
    );
  });
});

Deno.test("generateSynthetic() output on 400 images", async (t) => {
  await withTempDir(async (dir) => {
    const seed = 3;
    const summary = await generateSynthetic({ out: dir, count: 400, seed });
    const csv = (await Deno.readTextFile(join(dir, ATTRIBUTES_FILE))).trimEnd()
      .split("\n");
    const rows = csv.slice(1).map((l) => l.split(","));

    await t.step(
      "the attributes CSV has the exact header, one row per image, and only known label values",
      () => {
        assertEquals(csv[0], ATTRIBUTES_HEADER);
        assertEquals(rows.length, 400);
        for (const r of rows) {
          assertEquals(r.length, 4);
          assert(GENDERS.includes(r[1]), r.join(","));
          assert(COLORS.includes(r[2]), r.join(","));
          assert(TYPES.includes(r[3]), r.join(","));
        }
        assert(
          rows.some((r) => r[2] === "n/a") && rows.some((r) => r[3] === "n/a"),
          "n/a marks missing labels",
        );
      },
    );

    await t.step(
      "image indices start at 0, increase, and have gaps like the real dataset",
      () => {
        const idx = rows.map((r) => Number(r[0]));
        assertEquals(idx[0], 0);
        for (let i = 1; i < idx.length; i++) {
          assert(idx[i] > idx[i - 1] && idx[i] - idx[i - 1] <= 3);
        }
        const meanGap = (idx[idx.length - 1] - idx[0]) / (idx.length - 1);
        assert(meanGap > 1.3 && meanGap < 1.7, `mean gap ${meanGap}`);
      },
    );

    await t.step(
      "the CSV equals syntheticRows() for the same count and seed",
      () => {
        const expected = syntheticRows(400, seed).map((r) =>
          `${r.index},${r.gender},${r.hairColor},${r.hairType}`
        );
        assertEquals(csv.slice(1), expected);
      },
    );

    await t.step(
      "every row has its PNG, 84 wide x 108 high, 8-bit RGB without alpha",
      async () => {
        const files = await listPngs(dir);
        assertEquals(
          files,
          rows.map((r) => imageFileName(Number(r[0]))).sort(),
        );
        for (const f of files) {
          const h = pngHeader(await Deno.readFile(join(dir, f)));
          assertEquals([h.width, h.height, h.bitDepth, h.colorType], [
            84,
            108,
            8,
            2,
          ], f);
        }
        for (const f of files.slice(0, 10)) {
          const m = await sharp(join(dir, f)).metadata();
          assertEquals([m.width, m.height, m.channels, m.hasAlpha], [
            84,
            108,
            3,
            false,
          ], f);
        }
      },
    );

    await t.step("no temporary files are left behind", async () => {
      for await (const e of Deno.readDir(dir)) {
        assert(!e.name.endsWith(".tmp"), e.name);
      }
    });

    await t.step(
      "the ground truth lists every planted bad image and near-duplicate, and they exist with CSV rows",
      async () => {
        const truth = (await Deno.readTextFile(join(dir, GROUND_TRUTH_FILE)))
          .trimEnd().split("\n");
        assertEquals(truth[0], "file,image_index,kind,detail");
        const entries = truth.slice(1).map((l) => l.split(","));
        const bad = entries.filter((e) => e[2] === "bad");
        const dups = entries.filter((e) => e[2] === "near_duplicate");
        assertEquals(bad.length, summary.bad);
        assertEquals(dups.length, summary.duplicates);
        assertEquals(bad.length, 2); // round(400 * 0.005)
        assertEquals(dups.length, 1); // round(400 * 0.002)
        assertEquals(entries.length, bad.length + dups.length);
        const indices = new Set(rows.map((r) => r[0]));
        for (const [file, index, , detail] of bad) {
          assertEquals(file, imageFileName(Number(index)));
          assert(indices.has(index));
          assert(
            ["landscape", "text", "blank", "noise"].includes(detail),
            detail,
          );
          await Deno.stat(join(dir, file));
        }
        for (const [file, index, , original] of dups) {
          assert(indices.has(index));
          const a = await sharp(join(dir, file)).raw().toBuffer();
          const b = await sharp(join(dir, original)).raw().toBuffer();
          assertNotEquals(a, b);
          let diff = 0;
          for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
          assert(
            diff / a.length < 12,
            `near-duplicate ${file} differs from ${original} by ${
              diff / a.length
            } per value`,
          );
          const row = (i: string) => rows.find((r) => r[0] === i)!.slice(1);
          assertEquals(row(index), row(String(Number(original.slice(14, 20)))));
        }
      },
    );

    await t.step(
      "writeClassMosaic() writes one row of tiles per class value",
      async () => {
        const out = join(dir, "classes.png");
        await writeClassMosaic(dir, out, { perClass: 4 });
        const m = await sharp(out).metadata();
        assertEquals(m.channels, 3);
        assert(
          m.height! >= 9 * 108 && m.width! >= 4 * 84,
          `${m.width}x${m.height}`,
        );
        await Deno.remove(out);
      },
    );
  });
});

Deno.test("syntheticRows() label shares over 2,000 rows match the real dataset's within sampling tolerance", () => {
  const rows = syntheticRows(2000, 11);
  const n = rows.length;
  const share = (pred: (r: (typeof rows)[number]) => boolean) =>
    rows.filter(pred).length / n;
  // FACTS.md counts over 134,734 rows.
  const T = 134_734;
  const targets: [string, number, number][] = [
    ["female", share((r) => r.gender === "female"), 84_232 / T],
    ["color n/a", share((r) => r.hairColor === "n/a"), 45_596 / T],
    ["black", share((r) => r.hairColor === "black"), 32_577 / T],
    ["brown", share((r) => r.hairColor === "brown"), 29_526 / T],
    ["blond", share((r) => r.hairColor === "blond"), 20_530 / T],
    ["gray", share((r) => r.hairColor === "gray"), 4_680 / T],
    ["bald colour", share((r) => r.hairColor === "bald"), 1_825 / T],
    ["type n/a", share((r) => r.hairType === "n/a"), 56_766 / T],
    ["wavy", share((r) => r.hairType === "wavy"), 48_205 / T],
    ["straight", share((r) => r.hairType === "straight"), 27_373 / T],
    ["bald type", share((r) => r.hairType === "bald"), 2_390 / T],
  ];
  for (const [name, got, want] of targets) {
    const tol = 4 * Math.sqrt((want * (1 - want)) / n) + 0.003;
    assert(
      Math.abs(got - want) <= tol,
      `${name}: ${got.toFixed(4)} vs ${want.toFixed(4)} (tolerance ${
        tol.toFixed(4)
      })`,
    );
  }
  // The gender x hair colour skew.
  const maleShare = (c: string) =>
    rows.filter((r) => r.hairColor === c && r.gender === "male").length /
    rows.filter((r) => r.hairColor === c).length;
  assert(maleShare("blond") < 0.12, `blond male share ${maleShare("blond")}`); // real 0.045
  assert(maleShare("bald") > 0.9, `bald male share ${maleShare("bald")}`); // real 0.996
  assert(maleShare("gray") > 0.65, `gray male share ${maleShare("gray")}`); // real 0.823
  // Hair_Type bald goes with Hair_Color bald.
  const baldColor = rows.filter((r) => r.hairColor === "bald");
  assert(
    baldColor.filter((r) => r.hairType === "bald").length / baldColor.length >
      0.85,
  );
});

Deno.test("generateSynthetic() rejects bad options with a message naming the option", async () => {
  await assertRejects(
    () => generateSynthetic({ out: "/nonexistent", count: 1.5, seed: 1 }),
    /expected count to be a positive integer, got '1.5'/,
  );
  await assertRejects(
    () =>
      generateSynthetic({
        out: "/nonexistent",
        count: 10,
        seed: 1,
        badFraction: 2,
      }),
    /expected badFraction/,
  );
});

Deno.test("mosaic() lays tiles out in a grid of the requested columns and returns an RGB PNG", async () => {
  const tile = (v: number) => ({
    raw: new Uint8Array(10 * 12 * 3).fill(v),
    width: 10,
    height: 12,
    channels: 3 as const,
  });
  const png = await mosaic(
    [{ image: tile(0), caption: "a" }, { image: tile(128) }, {
      image: tile(255),
      caption: "c",
    }],
    { columns: 2, gap: 2, background: "#ffffff" },
  );
  const m = await sharp(png).metadata();
  assertEquals(m.channels, 3);
  assertEquals(m.width, 2 + 2 * (10 + 2)); // gap + columns x (tile + gap)
  assertEquals(m.height! > 2 * 12, true);
  // The first tile's top-left pixel is black (tile 0), the canvas corner is the white background.
  const px = await sharp(png).raw().toBuffer();
  assertEquals([px[0], px[1], px[2]], [255, 255, 255]);
  const o = (2 * m.width! + 2) * 3;
  assertEquals([px[o], px[o + 1], px[o + 2]], [0, 0, 0]);
  assertEquals(typeof (await svgTextRenders()), "boolean");
});
