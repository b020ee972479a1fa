/**
 * Pixel cache: every portrait decoded once (sharp, in parallel) into one
 * compact binary file beside the data, in CSV row order, so later runs load
 * the whole set in seconds instead of decoding 134,734 PNGs again.
 *
 * Layout on disk (`<cacheDir>/pixels-<key>.bin` + `.json`):
 *   [n status bytes][n × 27,216 pixel bytes, uint8 HWC RGB]
 * The JSON sidecar is written last and is the commit marker; both are written
 * to temp files and renamed. The key hashes the CSV bytes and, for every row,
 * the image's size, modification time, status-change time (whole seconds in
 * Deno's stat) and inode, so
 * adding, removing, replacing (even keeping size and mtime) or touching a
 * file — or editing the CSV — invalidates the cache. The sidecar holds the
 * SHA-256 of the .bin, checked on every load: a damaged cache is rebuilt, not
 * used. Superseded caches in the same folder are deleted, and so are temp
 * files left by a killed build.
 *
 * Memory: one Uint8Array of n × 27,216 bytes (3.67 GB for the full 134,734
 * images; ~82 MB for a 3,000-image demo set) plus n status bytes. Building
 * decodes straight into that buffer and streams it to disk; loading reads the
 * file into it; no second copy is ever held. V8 in Deno allows typed arrays
 * above 4 GB, so the full set fits in one buffer.
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { decodePortrait, type ImageProblem, type ImageProblemKind } from "./images.ts";
import { imagePath, type DatasetLayout } from "./layout.ts";
import { IMAGE_BYTES, IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "./schema.ts";
import type { Attributes } from "./attributes.ts";
import { mapLimit, readFull, writeAll, writeChunksAtomic, writeJsonAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { processAlive } from "../util/run_dir.ts";

export const CACHE_VERSION = 2;
/** Status byte per row. */
export const STATUS_CODES: Record<"ok" | ImageProblemKind, number> = {
  ok: 0,
  missing: 1,
  bad_header: 2,
  corrupt: 3,
  wrong_size: 4,
  wrong_channels: 5,
  not_a_file: 6,
};

export interface RowProblem extends ImageProblem {
  /** Row of the attributes (0-based; its CSV line is attrs.csvLines[row]). */
  row: number;
  index: number;
}

export interface PixelCache {
  /** n × IMAGE_BYTES uint8, row order of the attributes (zeros for bad rows). */
  pixels: Uint8Array;
  /** Per row: 0 = decoded fine, otherwise a STATUS_CODES value. */
  status: Uint8Array;
  problems: RowProblem[];
  key: string;
  binPath: string;
  /** True when this call decoded the images, false when it loaded a cache. */
  built: boolean;
  seconds: number;
}

export interface CacheOptions {
  /** Folder for the cache files; default: see resolveCacheDir. */
  cacheDir?: string;
  /** Images decoded concurrently (sharp runs on libuv's thread pool). */
  concurrency?: number;
  /** Ignore an existing cache. */
  rebuild?: boolean;
  quiet?: boolean;
}

interface CacheMeta {
  version: number;
  key: string;
  rows: number;
  height: number;
  width: number;
  channels: number;
  csvPath: string;
  imagesDir: string;
  problems: RowProblem[];
  /** SHA-256 of the .bin (status bytes then pixels). */
  sha256: string;
  createdAt: string;
}

/** Pixels of row `r` (a view, no copy). */
export function rowPixels(cache: PixelCache, r: number): Uint8Array {
  return cache.pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES);
}

/** Help text of every --cache-dir flag. */
export const CACHE_DIR_HELP = "cache folder (default $TP_CACHE_DIR/<dataset>-<hash>, else ~/.cache/tiny-portraits/<dataset>-<hash>; nothing is written into the dataroot)";

/**
 * Where a dataset's caches go: `explicit` (--cache-dir) when given; else `$TP_CACHE_DIR/<dataset>-<hash of its
 * path>/` when TP_CACHE_DIR is set; else `$XDG_CACHE_HOME/tiny-portraits/<dataset>-<hash>/` (~/.cache/...). Nothing
 * goes into the dataroot unless --cache-dir points there; a `<dataroot>/.tp_cache` left by an earlier version is
 * named once (it is no longer read).
 */
export async function resolveCacheDir(layout: DatasetLayout, explicit?: string, opts: { quiet?: boolean } = {}): Promise<string> {
  if (explicit) return explicit;
  const slot = `${basename(layout.root)}-${createHash("sha256").update(layout.root).digest("hex").slice(0, 8)}`;
  const env = Deno.env.get("TP_CACHE_DIR");
  const home = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? Deno.cwd(), ".cache");
  const out = env ? join(env, slot) : join(home, "tiny-portraits", slot);
  const legacy = join(layout.root, ".tp_cache");
  if (!opts.quiet && legacy !== out && !warnedLegacy.has(legacy) && await isDir(legacy)) {
    warnedLegacy.add(legacy);
    console.error(`pixel cache: ${legacy} (made by an earlier version) is no longer used; caching in ${out}. Delete it, or pass --cache-dir ${legacy} to keep using it`);
  }
  return out;
}

const warnedLegacy = new Set<string>();

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Computes the cache key: CSV bytes + (size, mtime, ctime, inode) of each row's image. */
export async function cacheKey(layout: DatasetLayout, attrs: Attributes): Promise<string> {
  const h = createHash("sha256");
  h.update(`v${CACHE_VERSION}|${IMAGE_WIDTH}x${IMAGE_HEIGHT}x${IMAGE_CHANNELS}|`);
  h.update(await Deno.readFile(attrs.csvPath));
  const stats = await mapLimit(Array.from(attrs.index), 32, async (idx) => {
    try {
      const s = await Deno.stat(imagePath(layout, idx));
      return `${idx}:${s.size}:${s.mtime?.getTime() ?? 0}:${s.ctime?.getTime() ?? 0}:${s.ino ?? 0}`;
    } catch {
      return `${idx}:missing`;
    }
  });
  h.update(stats.join("\n"));
  return h.digest("hex").slice(0, 20);
}

/** Why a cache was not loaded (null when it was). */
type LoadMiss = "absent" | "stale" | "damaged";

async function tryLoad(binPath: string, metaPath: string, key: string, n: number): Promise<PixelCache | LoadMiss> {
  let meta: CacheMeta;
  try {
    meta = JSON.parse(await Deno.readTextFile(metaPath));
  } catch {
    return "absent";
  }
  if (meta.version !== CACHE_VERSION || meta.key !== key || meta.rows !== n || !meta.sha256) return "stale";
  const expected = n + n * IMAGE_BYTES;
  let file: Deno.FsFile;
  try {
    const st = await Deno.stat(binPath);
    if (st.size !== expected) return "damaged";
    file = await Deno.open(binPath, { read: true });
  } catch {
    return "absent";
  }
  const start = performance.now();
  try {
    const status = new Uint8Array(n);
    await readFull(file, status, binPath);
    const h = createHash("sha256").update(status);
    const pixels = new Uint8Array(n * IMAGE_BYTES);
    // Read in 64 MB slices straight into the final buffer.
    const slice = 64 << 20;
    for (let off = 0; off < pixels.length; off += slice) {
      const part = pixels.subarray(off, Math.min(off + slice, pixels.length));
      await readFull(file, part, binPath);
      h.update(part);
    }
    if (h.digest("hex") !== meta.sha256) return "damaged";
    return {
      pixels,
      status,
      problems: meta.problems,
      key,
      binPath,
      built: false,
      seconds: (performance.now() - start) / 1000,
    };
  } finally {
    file.close();
  }
}

/**
 * Loads the pixel cache for this dataset, building it first when it is
 * missing or stale. Bad images do not stop the build: they are recorded in
 * `problems` (all of them) and their rows get a non-zero status.
 */
export async function loadPixelCache(layout: DatasetLayout, attrs: Attributes, opts: CacheOptions = {}): Promise<PixelCache> {
  const dir = await resolveCacheDir(layout, opts.cacheDir, opts);
  const n = attrs.index.length;
  const key = await cacheKey(layout, attrs);
  const binPath = join(dir, `pixels-${key}.bin`);
  const metaPath = join(dir, `pixels-${key}.json`);
  if (!opts.rebuild) {
    const loaded = await tryLoad(binPath, metaPath, key, n);
    if (typeof loaded !== "string") return loaded;
    if (loaded === "damaged" && !opts.quiet) console.error(`pixel cache ${binPath} is damaged (its checksum or size does not match); decoding the images again`);
  }
  const start = performance.now();
  const pixels = new Uint8Array(n * IMAGE_BYTES);
  const status = new Uint8Array(n);
  const problems: RowProblem[] = [];
  const progress = new Progress("decode images", n, { unit: "img", quiet: opts.quiet });
  const rows = Array.from({ length: n }, (_, r) => r);
  await mapLimit(rows, opts.concurrency ?? 8, async (r) => {
    const idx = attrs.index[r];
    const res = await decodePortrait(imagePath(layout, idx), pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES));
    if (!res.ok) {
      status[r] = STATUS_CODES[res.problem.kind];
      problems.push({ ...res.problem, row: r, index: idx });
    }
    progress.tick();
  });
  progress.finish(problems.length ? `(${problems.length} bad)` : "");
  problems.sort((a, b) => a.row - b.row);
  const h = createHash("sha256");
  await writeChunksAtomic(binPath, async (file) => {
    await writeAll(file, status);
    h.update(status);
    const slice = 64 << 20;
    for (let off = 0; off < pixels.length; off += slice) {
      const part = pixels.subarray(off, Math.min(off + slice, pixels.length));
      await writeAll(file, part);
      h.update(part);
    }
  });
  const meta: CacheMeta = {
    version: CACHE_VERSION,
    key,
    rows: n,
    height: IMAGE_HEIGHT,
    width: IMAGE_WIDTH,
    channels: IMAGE_CHANNELS,
    csvPath: attrs.csvPath,
    imagesDir: layout.imagesDir,
    problems,
    sha256: h.digest("hex"),
    createdAt: new Date().toISOString(),
  };
  await writeJsonAtomic(metaPath, meta);
  // Drop superseded caches of this folder.
  for await (const e of Deno.readDir(dir)) {
    // Anything derived from a superseded cache (pixels-*, descriptors-*, …) goes too.
    // Temp files of a build killed before its rename (writeFileAtomic names them <file>.tmp-<pid>-<n>); a live
    // process's are its work in progress.
    const t = /\.tmp-(\d+)-\d+$/.exec(e.name);
    if (t) {
      if (Number(t[1]) !== Deno.pid && !(await processAlive(Number(t[1])))) await Deno.remove(join(dir, e.name)).catch(() => {});
      continue;
    }
    const m = /^[a-z]+-([0-9a-f]{20})\./.exec(e.name);
    if (m && m[1] !== key) await Deno.remove(join(dir, e.name)).catch(() => {});
  }
  return { pixels, status, problems, key, binPath, built: true, seconds: (performance.now() - start) / 1000 };
}
