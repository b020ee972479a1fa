/**
 * One call that opens a Tiny Portraits folder: layout → attributes (polars,
 * validated) → pixel cache (decoded once). Bad images are reported, never
 * fatal; a bad CSV is fatal (AttributesError lists every bad line).
 */
import { type Attributes, readAttributes } from "./attributes.ts";
import { type CacheOptions, loadPixelCache, type PixelCache, type RowProblem } from "./cache.ts";
import { type DatasetLayout, listImageFiles, resolveLayout } from "./layout.ts";
import { writeCsvAtomic } from "../util/csv.ts";

export interface OpenOptions extends CacheOptions {
  dataroot: string;
  /** Attributes CSV outside the dataroot. */
  attributes?: string;
  /** Leave CSV rows with bad values out (listed in `attrs.problems`) instead of stopping (exploration). */
  keepGoing?: boolean;
}

export interface Dataset {
  layout: DatasetLayout;
  attrs: Attributes;
  cache: PixelCache;
  /** Rows in the CSV. */
  rows: number;
  /** Rows whose image decoded fine (0-based row numbers). */
  goodRows: Int32Array;
  /** Every problem with an image named in the CSV. */
  problems: RowProblem[];
  /** Portrait files present in the folder with no CSV row. */
  unlistedFiles: string[];
}

export async function openDataset(opts: OpenOptions): Promise<Dataset> {
  const layout = await resolveLayout(opts);
  const attrs = await readAttributes(layout.csvPath, { keepGoing: opts.keepGoing });
  const cache = await loadPixelCache(layout, attrs, opts);
  const listed = new Set(attrs.index);
  const files = await listImageFiles(layout);
  const unlistedFiles = [...files.entries()].filter(([idx]) => !listed.has(idx)).map(([, e]) => e.name).sort();
  const good: number[] = [];
  for (let r = 0; r < cache.status.length; r++) if (cache.status[r] === 0) good.push(r);
  return {
    layout,
    attrs,
    cache,
    rows: attrs.index.length,
    goodRows: Int32Array.from(good),
    problems: cache.problems,
    unlistedFiles,
  };
}

/** CSV of every problem found (file, line, kind, message), written atomically. */
export async function writeProblemsCsv(ds: Dataset, path: string): Promise<void> {
  const rows = [
    ...ds.problems.map((p) => ({ file: p.file, csv_line: ds.attrs.csvLines[p.row], image_index: p.index, kind: p.kind, message: p.message })),
    ...ds.unlistedFiles.map((f) => ({ file: f, csv_line: null, image_index: null, kind: "unlisted", message: "portrait file has no row in the attributes CSV" })),
  ];
  await writeCsvAtomic(path, rows, ["file", "csv_line", "image_index", "kind", "message"]);
}

/** A short human summary of a dataset's health. */
export function describeProblems(ds: Dataset): string {
  const byKind = new Map<string, number>();
  for (const p of ds.problems) byKind.set(p.kind, (byKind.get(p.kind) ?? 0) + 1);
  const parts = [...byKind.entries()].map(([k, v]) => `${v} ${k}`);
  if (ds.unlistedFiles.length) parts.push(`${ds.unlistedFiles.length} unlisted`);
  return `${ds.rows} rows, ${ds.goodRows.length} images OK` + (parts.length ? `, problems: ${parts.join(", ")}` : ", no problems");
}
