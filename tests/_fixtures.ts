/** Small on-disk datasets for tests, made with sharp (no real data needed). */
import "./_cache_env.ts";
import sharp from "sharp";
import { join } from "node:path";
import { ATTRIBUTES_FILE, IMAGE_HEIGHT, IMAGE_WIDTH, imageFileName } from "../lib/data/schema.ts";
import { Rng } from "../lib/util/rng.ts";

export interface FixtureRow {
  index: number;
  gender: string;
  hair_color: string;
  hair_type: string;
}

/** Random-noise RGB portrait-sized PNG, seeded. */
export async function noisePng(seed: number, width = IMAGE_WIDTH, height = IMAGE_HEIGHT, channels: 1 | 3 | 4 = 3): Promise<Uint8Array> {
  const rng = new Rng(seed);
  const px = new Uint8Array(width * height * channels);
  for (let i = 0; i < px.length; i++) px[i] = rng.int(0, 255);
  const img = sharp(px, { raw: { width, height, channels } });
  return await (channels === 1 ? img.toColourspace("b-w") : img).png().toBuffer();
}

export function csvText(rows: FixtureRow[]): string {
  return "Image_Index,Gender,Hair_Color,Hair_Type\n" +
    rows.map((r) => `${r.index},${r.gender},${r.hair_color},${r.hair_type}`).join("\n") + "\n";
}

const GENDERS = ["female", "male"], COLORS = ["black", "brown", "blond", "gray", "bald", "n/a"], TYPES = ["straight", "wavy", "bald", "n/a"];

/** Writes `n` noise portraits + CSV into `dir` (flat layout, or kit layout with `kit`). */
export async function makeDataset(dir: string, n: number, opts: { kit?: boolean; seed?: number } = {}): Promise<FixtureRow[]> {
  const imgDir = opts.kit ? join(dir, "Tiny_Portraits_Images") : dir;
  await Deno.mkdir(imgDir, { recursive: true });
  const rng = new Rng(opts.seed ?? 1);
  const rows: FixtureRow[] = [];
  for (let i = 0; i < n; i++) {
    const index = i * 2 + 1; // gaps, like the real indices
    rows.push({ index, gender: GENDERS[i % 2], hair_color: rng.choice(COLORS), hair_type: rng.choice(TYPES) });
    await Deno.writeFile(join(imgDir, imageFileName(index)), await noisePng((opts.seed ?? 1) * 1000 + i));
  }
  await Deno.writeTextFile(join(dir, ATTRIBUTES_FILE), csvText(rows));
  return rows;
}

export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "tp_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
