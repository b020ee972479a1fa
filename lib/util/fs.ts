/**
 * File helpers shared by every stage: atomic writes (temp file + rename, so
 * nothing is ever half-written) and small path utilities.
 */
import { dirname } from "node:path";
import { UserError } from "./errors.ts";

let tmpCounter = 0;

function tempPathFor(path: string): string {
  tmpCounter += 1;
  return `${path}.tmp-${Deno.pid}-${tmpCounter}`;
}

/** Writes `data` to `path` atomically: a temp file beside it, then rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Writes JSON (pretty, trailing newline) atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Streams chunks into a temp file and renames it over `path` at the end;
 * for files too large to build in memory twice (the pixel cache).
 */
export async function writeChunksAtomic(
  path: string,
  write: (file: Deno.FsFile) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await write(file);
    file.close();
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/** Writes the whole buffer (Deno's write may be partial). */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/** Fills `buf` completely from `file` or throws naming `path`. */
export async function readFull(file: Deno.FsFile, buf: Uint8Array, path: string): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) throw new Error(`${path}: file ended after ${off} of ${buf.length} expected bytes`);
    off += n;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Runs `fn` over `items` with at most `limit` promises in flight, preserving order of results. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  async function worker() {
    while (true) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Appends text to a log file atomically (the whole new file replaces the old one). */
export async function appendFileAtomic(path: string, text: string): Promise<void> {
  let prev = "";
  try {
    prev = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await writeFileAtomic(path, prev + text);
}

/** Parses a JSON file; an unreadable or malformed file is an error naming the path. */
export async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (err) {
    throw new UserError(`${path}: cannot read JSON (${(err as Error).message})`);
  }
}
