/**
 * Stratified train/val/test splits per task, written once as CSV (same
 * header as the attributes file) under assets/splits/<dataset>/ and read
 * back by training — splits are data, never recomputed on the fly.
 *
 * Tasks:
 *   gender     all usable rows, stratified on gender
 *   haircolor  rows with a hair colour (n/a excluded), stratified on it
 *   multitask  all usable rows, stratified on the joint label
 *              gender × hair colour × hair type (n/a kept as its own value,
 *              masked in the loss later)
 * "Usable" = the image decoded fine and is not in the bad-image list.
 *
 * Allocation: rows are ordered by (stratum, seeded random key) and each row
 * goes to the split furthest below its target share so far; every stratum
 * therefore keeps its share in every split to within one row, and the
 * overall sizes match the ratios exactly (±1).
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import pl from "nodejs-polars";
import { type Attributes, readAttributes } from "./attributes.ts";
import { CSV_HEADER, HEAD_NAMES, type HeadName, HEADS, MISSING } from "./schema.ts";
import { labelName } from "./attributes.ts";
import { Rng } from "../util/rng.ts";
import { TASK_NAMES, type TaskName, TASKS } from "./tasks.ts";
import { exists, readJson, writeJsonAtomic } from "../util/fs.ts";
import { writeCsvAtomic } from "../util/csv.ts";
import { UserError } from "../util/errors.ts";

/** The tasks (lib/data/tasks.ts). */
export const SPLIT_TASKS = TASK_NAMES;
export type SplitTask = TaskName;
export const SPLIT_PARTS = ["train", "val", "test"] as const;
export type SplitPart = typeof SPLIT_PARTS[number];

/** Heads each task trains (TASKS[task].heads). */
export const TASK_HEADS = Object.fromEntries(TASK_NAMES.map((t) => [t, [...TASKS[t].heads]])) as Record<SplitTask, HeadName[]>;

export interface SplitOptions {
  /** Shares of train, val, test (normalised). Default 0.70/0.15/0.15. */
  ratios?: [number, number, number];
  seed?: number;
}

export type Splits = Record<SplitPart, Int32Array>;

/** The stratum key of a row for a task. */
export function stratumOf(attrs: Attributes, task: SplitTask, row: number): string {
  return TASKS[task].strata.map((h) => labelName(h, attrs.labels[h][row])).join("|");
}

/** Rows (of `usable`) that take part in a task. */
export function taskRows(attrs: Attributes, task: SplitTask, usable: ArrayLike<number>): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < usable.length; i++) {
    const r = usable[i];
    if (TASKS[task].required.some((h) => attrs.labels[h][r] < 0)) continue;
    out.push(r);
  }
  return Int32Array.from(out);
}

/** Stratified split of `rows` by `strata` (one key per row). */
export function stratifiedSplit(rows: Int32Array, strata: string[], opts: SplitOptions = {}): Splits {
  const ratios = opts.ratios ?? [0.7, 0.15, 0.15];
  if (ratios.length !== 3 || ratios.some((r) => !(r >= 0)) || !(ratios[0] > 0)) {
    throw new Error(`split: ratios must be three non-negative numbers with train > 0, got ${ratios.join("/")}`);
  }
  const total = ratios[0] + ratios[1] + ratios[2];
  const share = ratios.map((r) => r / total);
  const rng = new Rng(opts.seed ?? 0);
  const keys = Float64Array.from(rows, () => rng.next());
  const order = Array.from(rows.keys()).sort((a, b) => (strata[a] < strata[b] ? -1 : strata[a] > strata[b] ? 1 : keys[a] - keys[b]));
  const parts: number[][] = [[], [], []];
  // Deficit allocation over rows ordered by stratum: counters run across
  // strata, so each (contiguous) stratum gets its share to within a row and
  // the rounding left over by small strata carries into the next one.
  const counts = [0, 0, 0];
  for (let k = 0; k < order.length; k++) {
    let best = 0, bestDef = -Infinity;
    for (let s = 0; s < 3; s++) {
      const def = share[s] * (k + 1) - counts[s];
      if (def > bestDef + 1e-12) bestDef = def, best = s;
    }
    counts[best]++;
    parts[best].push(rows[order[k]]);
  }
  const sorted = (a: number[]) => Int32Array.from(a).sort();
  return { train: sorted(parts[0]), val: sorted(parts[1]), test: sorted(parts[2]) };
}

/** Splits the usable rows of a dataset for a task. */
export function makeSplits(attrs: Attributes, task: SplitTask, usable: ArrayLike<number>, opts: SplitOptions = {}): Splits {
  const rows = taskRows(attrs, task, usable);
  const strata = Array.from(rows, (r) => stratumOf(attrs, task, r));
  return stratifiedSplit(rows, strata, opts);
}

export function splitPath(dir: string, task: SplitTask, part: SplitPart): string {
  return join(dir, `${task}_${part}.csv`);
}

/** `<dir>/<task>_meta.json`: which attributes CSV (by content) a task's splits were made from. */
export function splitMetaPath(dir: string, task: SplitTask): string {
  return join(dir, `${task}_meta.json`);
}

interface SplitMeta {
  csv: string;
  csv_sha256: string;
  rows: Record<SplitPart, number>;
  createdAt: string;
}

/** SHA-256 of the attributes CSV's bytes: the splits' key to the dataset's content. */
export async function csvSha256(csvPath: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(csvPath)).digest("hex");
}

/** Writes one CSV per part (attributes header) and the meta file keyed to the CSV's content, atomically. */
export async function writeSplits(dir: string, task: SplitTask, attrs: Attributes, splits: Splits): Promise<string[]> {
  const paths: string[] = [];
  for (const part of SPLIT_PARTS) {
    // The attributes CSV's own columns and label names ("n/a" for missing), so a split reads like the dataset's CSV.
    const rows = Array.from(splits[part], (r) => Object.fromEntries([[CSV_HEADER[0], attrs.index[r]], ...HEAD_NAMES.map((h, i) => [CSV_HEADER[i + 1], labelName(h, attrs.labels[h][r])])]));
    const p = splitPath(dir, task, part);
    await writeCsvAtomic(p, rows, CSV_HEADER);
    paths.push(p);
  }
  const meta: SplitMeta = {
    csv: attrs.csvPath,
    csv_sha256: await csvSha256(attrs.csvPath),
    rows: Object.fromEntries(SPLIT_PARTS.map((p) => [p, splits[p].length])) as Record<SplitPart, number>,
    createdAt: new Date().toISOString(),
  };
  await writeJsonAtomic(splitMetaPath(dir, task), meta);
  return paths;
}

export interface ReadSplitsOptions {
  /** Rows whose images are usable now (decoded fine, not excluded): split rows outside it are left out, with a note. */
  usable?: ArrayLike<number>;
  log?: (msg: string) => void;
}

export async function splitsExist(dir: string, task: SplitTask): Promise<boolean> {
  for (const part of SPLIT_PARTS) if (!(await exists(splitPath(dir, task, part)))) return false;
  return true;
}

/**
 * Reads a task's split files back as rows of `attrs` (matched by
 * Image_Index). Splits made from another attributes CSV (by content, the
 * meta file) are refused; a split naming an index the dataset lacks, or whose
 * labels disagree with the dataset, is an error naming the file and line.
 * With `usable`, rows whose images are no longer usable (broken since the
 * split was made, or now in the bad-image list) are left out and counted.
 */
export async function readSplits(dir: string, task: SplitTask, attrs: Attributes, opts: ReadSplitsOptions = {}): Promise<Splits> {
  const metaPath = splitMetaPath(dir, task);
  if (await exists(metaPath)) {
    const meta = await readJson<SplitMeta>(metaPath);
    const now = await csvSha256(attrs.csvPath);
    if (meta.csv_sha256 !== now) {
      throw new UserError(`${dir}: the ${task} splits were made from another attributes CSV (${meta.csv}, sha256 ${meta.csv_sha256.slice(0, 12)}…; ${attrs.csvPath} is ${now.slice(0, 12)}…); re-split with deno task split --dataroot DIR --force, or pass another --split-dir`);
    }
  }
  const rowOf = new Map<number, number>();
  attrs.index.forEach((idx, r) => rowOf.set(idx, r));
  const out = {} as Splits;
  for (const part of SPLIT_PARTS) {
    const path = splitPath(dir, task, part);
    const s = await readAttributes(path);
    const rows = new Int32Array(s.index.length);
    for (let i = 0; i < s.index.length; i++) {
      const r = rowOf.get(s.index[i]);
      if (r === undefined) throw new UserError(`${path}: line ${i + 2}: Image_Index ${s.index[i]} is not in ${attrs.csvPath}`);
      for (const h of HEAD_NAMES) {
        if (s.labels[h][i] !== attrs.labels[h][r]) {
          throw new Error(`${path}: line ${i + 2}: ${HEADS[h].column} '${labelName(h, s.labels[h][i])}' differs from the dataset's '${labelName(h, attrs.labels[h][r])}'; regenerate the splits`);
        }
      }
      rows[i] = r;
    }
    out[part] = rows;
  }
  if (opts.usable) {
    const ok = new Set(Array.from(opts.usable));
    const dropped: string[] = [];
    for (const part of SPLIT_PARTS) {
      const kept = out[part].filter((r) => ok.has(r));
      if (kept.length < out[part].length) dropped.push(`${out[part].length - kept.length} of ${part}`);
      out[part] = kept;
    }
    if (dropped.length) {
      (opts.log ?? ((m: string) => console.error(m)))(`split: left out ${dropped.join(", ")} in ${dir} (${task}): their images are no longer usable (broken since the split, or in the bad-image list); deno task split --dataroot DIR --force re-splits`);
    }
  }
  return out;
}

/**
 * Class shares per split for every head a task uses, as a polars frame with
 * columns task, label (the head, e.g. hair_color), class, split, count, share (share within the split).
 */
export function splitReport(attrs: Attributes, task: SplitTask, splits: Splits): pl.DataFrame {
  const recs: { task: string; label: string; class: string; split: string; count: number; share: number }[] = [];
  for (const head of TASK_HEADS[task]) {
    const classes = [...HEADS[head].labels, MISSING];
    for (const part of SPLIT_PARTS) {
      const rows = splits[part];
      const counts = new Map<string, number>();
      for (const r of rows) {
        const c = labelName(head, attrs.labels[head][r]);
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
      for (const c of classes) {
        const n = counts.get(c) ?? 0;
        if (n === 0 && c === MISSING) continue;
        recs.push({ task, label: head, class: c, split: part, count: n, share: rows.length ? n / rows.length : 0 });
      }
    }
  }
  return pl.DataFrame(recs);
}

/** Default split folder: assets/splits/<dataset>/ (the bad-image list's is in bad_images.ts). */
export function defaultSplitDir(name: string): string {
  return join("assets", "splits", name);
}

export interface EnsureSplitsOptions extends SplitOptions {
  /** Folder of the split CSVs. */
  dir: string;
  /** Image_Index values to leave out (bad images); rows whose image failed to decode are always left out. */
  exclude?: Set<number>;
  /** Re-create even if the files exist. */
  force?: boolean;
  log?: (msg: string) => void;
}

/**
 * Reads a task's splits, creating (and saying so) when they do not exist.
 * `usable` = rows whose images decoded fine.
 */
export async function ensureSplits(attrs: Attributes, task: SplitTask, usable: ArrayLike<number>, opts: EnsureSplitsOptions): Promise<{ splits: Splits; created: boolean }> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const keep = Array.from(usable).filter((r) => !opts.exclude?.has(attrs.index[r]));
  if (!opts.force && (await splitsExist(opts.dir, task))) return { splits: await readSplits(opts.dir, task, attrs, { usable: keep, log }), created: false };
  const splits = makeSplits(attrs, task, keep, opts);
  await writeSplits(opts.dir, task, attrs, splits);
  log(`split: created ${task} splits in ${opts.dir} (train ${splits.train.length}, val ${splits.val.length}, test ${splits.test.length}; ` +
    `${usable.length - keep.length} bad images left out)`);
  return { splits, created: true };
}
