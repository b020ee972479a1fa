/**
 * Feature cache: one feature vector per portrait (float32), computed once by a frozen network over
 * every good row of the pixel cache and kept beside it, so a head trained on the features starts in
 * a second instead of running the network again (lib/train/descriptor_head.ts keeps the face
 * ResNet's 128-D descriptors here).
 *
 *   const cache = await loadFeatureCache(ds.cache, extractor);   // computes once, then loads
 *   cache.features.subarray(r * cache.dim, (r + 1) * cache.dim);  // row r's vector
 *
 * Layout on disk (`<pixel cache folder>/embeddings-<pixel key>.<name>-<extractor id>.bin` + `.json`):
 * [n × dim float32] in CSV row order, zeros for rows whose image did not decode. The name ties the
 * file to the pixel cache's key (images and CSV), the extractor's name (e.g. the crop) and its id (a
 * hash of its weights and preprocessing): changing any of them computes the features again. The bin
 * is written to a temp file and renamed, then the JSON sidecar (the commit marker); loading checks
 * the sidecar's fields and the bin's exact size. Files of the same extractor name with another key or
 * id are deleted once the new one is written (the pixel cache deletes every file of a superseded key).
 *
 * Memory: n × dim × 4 bytes (69 MB for the full 134,734 portraits at 128-D).
 * Tests: deno test -A tests/train/descriptor_head_test.ts
 */
import { dirname, join } from "node:path";
import type { PixelCache } from "./cache.ts";
import { mapLimit, readFull, writeAll, writeChunksAtomic, writeJsonAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";

export const FEATURE_CACHE_VERSION = 1;
const FILE_RE = /^embeddings-([0-9a-f]{20})\.([a-z0-9_]+)-([0-9a-f]+)\.(bin|json)$/;

/** A frozen network that turns portraits into feature vectors. */
export interface FeatureExtractor {
  /** Short name, part of the file name (lowercase letters, digits, _), e.g. the crop: "aligned". */
  name: string;
  /** Identity of the weights and preprocessing (lowercase hex); another id means other features. */
  id: string;
  /** Length of one feature vector. */
  dim: number;
  /** Features of `rows` of `pixels`: rows.length × dim floats, row by row. */
  compute(pixels: Uint8Array, rows: Int32Array): Promise<Float32Array>;
}

export interface FeatureCacheOptions {
  /** Rows per compute call (default 32). */
  batchSize?: number;
  /** Ignore an existing file. */
  rebuild?: boolean;
  quiet?: boolean;
  /** Label of the progress bar (default "features <name>"). */
  label?: string;
}

export interface FeatureCache {
  /** n × dim float32, CSV row order; rows whose image did not decode are zeros. */
  features: Float32Array;
  dim: number;
  /** Rows that were computed (the pixel cache's good rows). */
  rows: Int32Array;
  binPath: string;
  /** True when this call ran the extractor, false when it loaded the file. */
  built: boolean;
  seconds: number;
}

interface FeatureMeta {
  version: number;
  key: string;
  name: string;
  id: string;
  dim: number;
  rows: number;
  goodRows: number;
  createdAt: string;
  computeSeconds: number;
}

function checkExtractor(e: FeatureExtractor): void {
  if (!/^[a-z0-9_]+$/.test(e.name)) throw new Error(`feature cache: expected the extractor name to match [a-z0-9_]+, got '${e.name}'`);
  if (!/^[0-9a-f]+$/.test(e.id)) throw new Error(`feature cache: expected the extractor id to be lowercase hex, got '${e.id}'`);
  if (!(Number.isInteger(e.dim) && e.dim > 0)) throw new Error(`feature cache: expected the extractor dim to be a positive integer, got ${e.dim}`);
}

/** Paths of the cache files for this pixel cache and extractor. */
export function featureCachePaths(pixels: Pick<PixelCache, "key" | "binPath">, e: Pick<FeatureExtractor, "name" | "id">): { bin: string; meta: string } {
  const base = join(dirname(pixels.binPath), `embeddings-${pixels.key}.${e.name}-${e.id}`);
  return { bin: `${base}.bin`, meta: `${base}.json` };
}

async function tryLoad(paths: { bin: string; meta: string }, want: Omit<FeatureMeta, "createdAt" | "computeSeconds" | "goodRows">): Promise<Float32Array | null> {
  let meta: FeatureMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(paths.meta));
  } catch {
    return null;
  }
  for (const k of Object.keys(want) as (keyof typeof want)[]) if (meta[k] !== want[k]) return null;
  const bytes = want.rows * want.dim * 4;
  let file: Deno.FsFile;
  try {
    if ((await Deno.stat(paths.bin)).size !== bytes) return null;
    file = await Deno.open(paths.bin, { read: true });
  } catch {
    return null;
  }
  try {
    const out = new Float32Array(want.rows * want.dim);
    await readFull(file, new Uint8Array(out.buffer), paths.bin);
    return out;
  } finally {
    file.close();
  }
}

/**
 * Loads the features of every good row of `pixels` for `extractor`, computing them first (batched,
 * with a progress bar: count, rate, ETA) when the file is missing, stale or of the wrong size.
 */
export async function loadFeatureCache(pixels: PixelCache, extractor: FeatureExtractor, opts: FeatureCacheOptions = {}): Promise<FeatureCache> {
  checkExtractor(extractor);
  const batchSize = opts.batchSize ?? 32;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new Error(`feature cache: expected batchSize to be a positive integer, got ${batchSize}`);
  const start = performance.now();
  const n = pixels.status.length, dim = extractor.dim;
  const good: number[] = [];
  for (let r = 0; r < n; r++) if (pixels.status[r] === 0) good.push(r);
  const rows = Int32Array.from(good);
  const paths = featureCachePaths(pixels, extractor);
  const want = { version: FEATURE_CACHE_VERSION, key: pixels.key, name: extractor.name, id: extractor.id, dim, rows: n };
  if (!opts.rebuild) {
    const features = await tryLoad(paths, want);
    if (features) return { features, dim, rows, binPath: paths.bin, built: false, seconds: (performance.now() - start) / 1000 };
  }
  const features = new Float32Array(n * dim);
  const progress = new Progress(opts.label ?? `features ${extractor.name}`, rows.length, { unit: "img", quiet: opts.quiet });
  for (let s = 0; s < rows.length; s += batchSize) {
    const batch = rows.subarray(s, Math.min(s + batchSize, rows.length));
    const out = await extractor.compute(pixels.pixels, batch);
    if (out.length !== batch.length * dim) {
      throw new Error(`feature cache: extractor '${extractor.name}' returned ${out.length} values for ${batch.length} rows of ${dim}`);
    }
    for (let i = 0; i < batch.length; i++) features.set(out.subarray(i * dim, (i + 1) * dim), batch[i] * dim);
    progress.tick(batch.length);
  }
  progress.finish();
  const computeSeconds = (performance.now() - start) / 1000;
  await writeChunksAtomic(paths.bin, (file) => writeAll(file, new Uint8Array(features.buffer)));
  const meta: FeatureMeta = { ...want, goodRows: rows.length, createdAt: new Date().toISOString(), computeSeconds };
  await writeJsonAtomic(paths.meta, meta);
  await removeSuperseded(dirname(paths.bin), pixels.key, extractor);
  return { features, dim, rows, binPath: paths.bin, built: true, seconds: (performance.now() - start) / 1000 };
}

/** Deletes this extractor name's files of another pixel key or extractor id. */
async function removeSuperseded(dir: string, key: string, e: FeatureExtractor): Promise<void> {
  const stale: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const m = FILE_RE.exec(entry.name);
    if (m && m[2] === e.name && (m[1] !== key || m[3] !== e.id)) stale.push(join(dir, entry.name));
  }
  await mapLimit(stale, 4, (p) => Deno.remove(p).catch(() => {}));
}
