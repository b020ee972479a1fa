/**
 * Face descriptors (lib/models/descriptors.ts) are a slow part of the exploration (~22 ms per image on wasm, ~4 ms on
 * onednn, 2 cores), so they are kept beside the pixel cache, keyed by its key:
 * `descriptors-<key>.bin` (float32, 128 per row listed in the `.json`).
 * A later run (the notebook after the CLI, say) computes only what is new.
 */
import { dirname, join } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import { portraitDescriptors } from "../models/descriptors.ts";
import { writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";

const DIM = 128;

export async function cachedDescriptors(
  ds: Dataset,
  rows: ArrayLike<number>,
  opts: { onProgress?: (done: number, total: number) => void } = {},
): Promise<Float32Array> {
  const dir = dirname(ds.cache.binPath);
  const base = join(dir, `descriptors-${ds.cache.key}`);
  const have = new Map<number, Float32Array>();
  try {
    const meta = JSON.parse(await Deno.readTextFile(`${base}.json`)) as { rows: number[] };
    const bytes = await Deno.readFile(`${base}.bin`);
    if (bytes.length === meta.rows.length * DIM * 4) {
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      meta.rows.forEach((r, i) => have.set(r, all.subarray(i * DIM, (i + 1) * DIM)));
    }
  } catch { /* no cache yet */ }
  const missing = Array.from(rows).filter((r) => !have.has(r));
  if (missing.length) {
    const fresh = await portraitDescriptors(ds.cache.pixels, missing, { onProgress: opts.onProgress });
    missing.forEach((r, i) => have.set(r, fresh.subarray(i * DIM, (i + 1) * DIM)));
    const allRows = [...have.keys()].sort((a, b) => a - b);
    const data = new Float32Array(allRows.length * DIM);
    allRows.forEach((r, i) => data.set(have.get(r)!, i * DIM));
    await writeFileAtomic(`${base}.bin`, new Uint8Array(data.buffer));
    await writeJsonAtomic(`${base}.json`, { rows: allRows });
  } else opts.onProgress?.(rows.length, rows.length);
  const out = new Float32Array(rows.length * DIM);
  for (let i = 0; i < rows.length; i++) out.set(have.get(rows[i])!, i * DIM);
  return out;
}
