/**
 * CSV tables of records, written by nodejs-polars (quoting, number formatting) and atomically.
 *
 *   await writeCsvAtomic("checkpoints/exp/metrics.csv", history);          // columns: the first record's keys
 */
import pl from "nodejs-polars";
import { writeFileAtomic } from "./fs.ts";

/** CSV text of `rows` (columns in the order of `columns`, default the first row's keys); null/undefined → empty field. */
export function csvOfRecords(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const cols = columns ?? (rows.length ? Object.keys(rows[0]) : []);
  if (rows.length === 0) return cols.join(",") + "\n";
  // JS numbers are all doubles: a column of whole numbers is written as integers (1, not 1.0).
  const series = cols.map((c) => {
    const vals = rows.map((r) => r[c] ?? null);
    const whole = vals.every((v) => v === null || (typeof v === "number" && Number.isInteger(v)));
    return whole && vals.some((v) => v !== null) ? pl.Series(c, vals, pl.Int64) : pl.Series(c, vals);
  });
  return pl.DataFrame(series).writeCSV().toString();
}

export async function writeCsvAtomic(path: string, rows: readonly Record<string, unknown>[], columns?: readonly string[]): Promise<void> {
  await writeFileAtomic(path, csvOfRecords(rows, columns));
}
