/**
 * Unpacks the Tiny Portraits zip archives (`Tiny_Portraits_Archive_000.zip`
 * … `_065.zip`) into one flat folder, with progress and a completeness check:
 * missing archives, unreadable archives and CSV rows without an image are all
 * reported. Files are written atomically; re-running skips files already
 * unpacked with the right size, so an interrupted unpack resumes.
 */
import { unzipSync } from "fflate";
import { basename, join } from "node:path";
import { ATTRIBUTES_FILE, imageFileName, parseImageFileName } from "./schema.ts";
import { exists, writeFileAtomic } from "../util/fs.ts";
import { Progress } from "../util/progress.ts";
import { readAttributes } from "./attributes.ts";
import { UserError } from "../util/errors.ts";

export const ARCHIVE_RE = /^Tiny_Portraits_Archive_(\d{3})\.zip$/;
export const EXPECTED_ARCHIVES = 66;

export interface UnpackOptions {
  zips: string;
  out: string;
  /** How many archives a complete download has (000 … N-1). */
  expectArchives?: number;
  /** Attributes CSV to check completeness against (default: <out>/CSV if present). */
  attributes?: string;
  quiet?: boolean;
}

export interface UnpackReport {
  archivesFound: string[];
  archivesMissing: string[];
  archivesUnreadable: { archive: string; message: string }[];
  filesWritten: number;
  filesSkipped: number;
  portraits: number;
  /** CSV rows whose image is not in `out` (when a CSV was available). */
  rowsWithoutImage: number[];
  csvPath: string | null;
  complete: boolean;
  seconds: number;
}

export async function unpackArchives(opts: UnpackOptions): Promise<UnpackReport> {
  const start = performance.now();
  const expect = opts.expectArchives ?? EXPECTED_ARCHIVES;
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(opts.zips)) if (e.isFile && ARCHIVE_RE.test(e.name)) names.push(e.name);
  } catch {
    throw new UserError(`unpack: zip folder ${opts.zips} cannot be read`);
  }
  names.sort();
  if (names.length === 0) throw new Error(`unpack: no Tiny_Portraits_Archive_NNN.zip files in ${opts.zips}`);
  const present = new Set(names.map((n) => Number(ARCHIVE_RE.exec(n)![1])));
  const missing: string[] = [];
  for (let i = 0; i < expect; i++) if (!present.has(i)) missing.push(`Tiny_Portraits_Archive_${String(i).padStart(3, "0")}.zip`);

  await Deno.mkdir(opts.out, { recursive: true });
  const progress = new Progress("unpack", names.length, { unit: "archives", quiet: opts.quiet });
  const unreadable: { archive: string; message: string }[] = [];
  let written = 0, skipped = 0;
  for (const name of names) {
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(await Deno.readFile(join(opts.zips, name)));
    } catch (err) {
      unreadable.push({ archive: name, message: (err as Error).message });
      progress.tick();
      continue;
    }
    for (const [path, data] of Object.entries(entries)) {
      const file = basename(path);
      if (path.endsWith("/") || !(parseImageFileName(file) !== null || file === ATTRIBUTES_FILE)) continue;
      const dest = join(opts.out, file);
      try {
        if ((await Deno.stat(dest)).size === data.length) {
          skipped++;
          continue;
        }
      } catch { /* not there yet */ }
      await writeFileAtomic(dest, data);
      written++;
    }
    progress.tick(1, `${written} files written`);
  }
  progress.finish(`${written} written, ${skipped} already there`);

  let portraits = 0;
  const have = new Set<number>();
  for await (const e of Deno.readDir(opts.out)) {
    const idx = e.isFile ? parseImageFileName(e.name) : null;
    if (idx !== null) {
      portraits++;
      have.add(idx);
    }
  }
  const csvPath = opts.attributes ?? join(opts.out, ATTRIBUTES_FILE);
  const rowsWithoutImage: number[] = [];
  let csvUsed: string | null = null;
  if (await exists(csvPath)) {
    csvUsed = csvPath;
    const attrs = await readAttributes(csvPath);
    for (const idx of attrs.index) if (!have.has(idx)) rowsWithoutImage.push(idx);
  }
  return {
    archivesFound: names,
    archivesMissing: missing,
    archivesUnreadable: unreadable,
    filesWritten: written,
    filesSkipped: skipped,
    portraits,
    rowsWithoutImage,
    csvPath: csvUsed,
    complete: missing.length === 0 && unreadable.length === 0 && rowsWithoutImage.length === 0,
    seconds: (performance.now() - start) / 1000,
  };
}

/** Human-readable completeness summary. */
export function describeUnpack(r: UnpackReport): string {
  const lines = [
    `${r.archivesFound.length} archive(s) read, ${r.portraits} portraits in the output folder ` +
    `(${r.filesWritten} written, ${r.filesSkipped} already there) in ${r.seconds.toFixed(1)} s`,
  ];
  if (r.archivesMissing.length) lines.push(`MISSING archives (${r.archivesMissing.length}): ${r.archivesMissing.join(", ")}`);
  for (const u of r.archivesUnreadable) lines.push(`UNREADABLE archive ${u.archive}: ${u.message}`);
  if (r.csvPath) {
    lines.push(
      r.rowsWithoutImage.length
        ? `${r.rowsWithoutImage.length} CSV row(s) have no image, e.g. ${r.rowsWithoutImage.slice(0, 5).map(imageFileName).join(", ")}`
        : `every row of ${r.csvPath} has its image`,
    );
  } else lines.push(`no ${ATTRIBUTES_FILE} found to check against; pass --attributes FILE`);
  lines.push(r.complete ? "complete" : "INCOMPLETE");
  return lines.join("\n");
}
