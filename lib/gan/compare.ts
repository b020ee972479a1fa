/**
 * GAN runs side by side (`deno task gan:compare`): each run's FDD against its training minutes on one chart, the
 * real-against-real floor as a dashed line, and a table of the FDD each run reached at the same minutes (the
 * last snapshot at or before each mark; none for a run that stopped before it) — variants compared on equal CPU
 * time, not equal kimg. The table also gives each run's diversity at its last snapshot (nearest-neighbour ratio
 * and grid near-duplicates, lib/gan/train.ts; empty for runs made before they were logged).
 *
 *   const r = await compareGanRuns({ checkpointsDir: "checkpoints", expNames: ["gr_image", "gr_projected"], out: "reports/gan_compare" });
 */
import { join } from "node:path";
import pl from "nodejs-polars";
import { exists, readJson } from "../util/fs.ts";
import { writeCsvAtomic } from "../util/csv.ts";
import { runDirPath } from "../util/run_dir.ts";
import { UserError } from "../util/errors.ts";
import { saveChart } from "../viz/vega.ts";
import { withFloor } from "./train.ts";

/** Minutes of slack around a mark (a budget stop overshoots by at most one step). */
const MARK_SLACK = 0.1;

export interface GanCompareOptions {
  checkpointsDir: string;
  expNames: string[];
  /** Output folder: fdd_by_minutes.{png,svg,vl.json}, fdd_by_minutes.csv (the points), fdd_at_minutes.csv (the table). */
  out: string;
  /** Minutes at which the table reads each run's FDD (default 15, 30, 45, 60). */
  marks?: number[];
}

export interface GanCompareRow {
  run: string;
  discriminator: string;
  kimg: number;
  minutes: number;
  fdd: number;
}

export interface GanCompareResult {
  points: GanCompareRow[];
  /** Per run and mark: the FDD of the last snapshot at or before the mark (null if the run stopped before it). */
  table: Record<string, string | number | null>[];
  /** Mean of the runs' real-against-real floors (null when none was measured). */
  floor: number | null;
  chart: string;
}

/** Reads one run's fdd.csv (written by gan:train) and its discriminator kind from config.json. */
async function readRun(checkpointsDir: string, name: string): Promise<{ rows: GanCompareRow[]; floor: number | null; nnRatio: number | null; gridDuplicates: number | null; setDuplicates: number | null }> {
  const dir = runDirPath(checkpointsDir, name, "gan:compare");
  const csv = join(dir, "fdd.csv");
  if (!(await exists(csv))) throw new UserError(`gan:compare: ${csv} not found; is '${name}' a gan:train run with at least one snapshot?`);
  const config = await readJson<{ model?: { discriminator?: string } }>(join(dir, "config.json")).catch(() => ({} as { model?: { discriminator?: string } }));
  const records = pl.readCSV(await Deno.readTextFile(csv), { hasHeader: true }).toRecords() as Record<string, unknown>[];
  const num = (v: unknown) => (v === null || v === undefined || v === "" ? null : Number(v));
  const rows: GanCompareRow[] = [];
  let floor: number | null = null;
  for (const r of records) {
    const fdd = num(r.fdd);
    floor = num(r.fdd_floor) ?? floor;
    if (fdd === null || !Number.isFinite(fdd)) continue;
    rows.push({ run: name, discriminator: config.model?.discriminator ?? "image", kimg: Number(r.kimg), minutes: Number(r.train_seconds) / 60, fdd });
  }
  if (!rows.length) throw new UserError(`gan:compare: ${csv} has no FDD values (trained with --metric-images 0?)`);
  const last = records.at(-1)!;
  // set_duplicates: null for runs made before it was measured.
  return { rows, floor, nnRatio: num(last.nn_ratio), gridDuplicates: num(last.grid_duplicates), setDuplicates: num(last.set_duplicates) };
}

export async function compareGanRuns(o: GanCompareOptions): Promise<GanCompareResult> {
  if (o.expNames.length === 0) throw new UserError("gan:compare: name at least one run (--exp-names a,b)");
  const marks = o.marks ?? [15, 30, 45, 60];
  const runs = await Promise.all(o.expNames.map((n) => readRun(o.checkpointsDir, n)));
  const points = runs.flatMap((r) => r.rows);
  const floors = runs.map((r) => r.floor).filter((f): f is number => f !== null);
  const floor = floors.length ? floors.reduce((a, b) => a + b, 0) / floors.length : null;
  const table = runs.map((r, i) => {
    const row: Record<string, string | number | null> = { run: o.expNames[i], discriminator: r.rows[0].discriminator };
    // A --max-minutes stop lands up to one step past the budget: a snapshot within MARK_SLACK of a mark counts for it;
    // a run that stopped before a mark has no value there.
    const last = r.rows.at(-1)!;
    for (const m of marks) row[`fdd_at_${m}_min`] = last.minutes < m - MARK_SLACK ? null : r.rows.findLast((p) => p.minutes <= m + MARK_SLACK)?.fdd ?? null;
    const best = r.rows.reduce((a, b) => (b.fdd < a.fdd ? b : a));
    Object.assign(row, { best_fdd: best.fdd, best_at_min: Number(best.minutes.toFixed(1)), minutes: Number(last.minutes.toFixed(1)), kimg: last.kimg, fdd_floor: r.floor, nn_ratio: r.nnRatio, grid_duplicates: r.gridDuplicates, set_duplicates: r.setDuplicates });
    return row;
  });
  await Deno.mkdir(o.out, { recursive: true });
  await writeCsvAtomic(join(o.out, "fdd_by_minutes.csv"), points as unknown as Record<string, unknown>[]);
  await writeCsvAtomic(join(o.out, "fdd_at_minutes.csv"), table);
  const line = {
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "minutes", type: "quantitative", title: "training minutes" },
      y: { field: "fdd", type: "quantitative", title: "FDD (lower is better)", scale: { zero: true } },
      color: { field: "run", type: "nominal", title: "run" },
      tooltip: [{ field: "run" }, { field: "minutes", format: ".1f" }, { field: "kimg", format: ".1f" }, { field: "fdd", format: ".4f" }],
    },
  };
  const spec = {
    title: floor === null ? "FDD against training time" : `FDD against training time (dashed: real against real, ${floor.toFixed(4)})`,
    width: 480,
    height: 260,
    data: { values: points },
    layer: withFloor(line, floor),
  };
  const chart = await saveChart(spec, join(o.out, "fdd_by_minutes"));
  return { points, table, floor, chart: chart.png };
}
