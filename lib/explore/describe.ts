/**
 * Describes a dataset's labels with nodejs-polars: counts and shares per
 * class, imbalance ratios, missing values per column, and the gender ×
 * hair-colour / × hair-type cross tables. Every table is a polars frame
 * (shown inline in notebooks, written as CSV by the exploration report).
 */
import pl from "nodejs-polars";
import type { Attributes } from "../data/attributes.ts";
import { HEAD_NAMES, HEADS, MISSING } from "../data/schema.ts";

export interface Description {
  rows: number;
  /** attribute, class, count, share (of all rows), share_labelled (of rows with a label). */
  classCounts: pl.DataFrame;
  /** attribute, classes, labelled, missing, missing_share, largest, smallest, imbalance_ratio. */
  imbalance: pl.DataFrame;
  /** column, missing, missing_share. */
  missing: pl.DataFrame;
  /** Gender rows × Hair_Color columns (n/a included). */
  genderByHairColor: pl.DataFrame;
  /** Gender rows × Hair_Type columns (n/a included). */
  genderByHairType: pl.DataFrame;
}

/** Attributes frame with n/a written out (for counting missing as a class). */
function filled(attrs: Attributes): pl.DataFrame {
  return attrs.frame.select(
    pl.col("Image_Index"),
    ...HEAD_NAMES.map((h) => pl.col(HEADS[h].column).fillNull(MISSING)),
  );
}

function crossTable(df: pl.DataFrame, row: string, col: string, order: readonly string[]): pl.DataFrame {
  const counts = df.groupBy([row, col]).agg(pl.len().alias("n"));
  const wide = counts.pivot("n", { index: row, on: col, aggregateFunc: "sum" }).fillNull(0);
  // Every class gets a column, zero where it never occurs.
  return wide.select(pl.col(row), ...order.map((c) => (wide.columns.includes(c) ? pl.col(c) : pl.lit(0)).cast(pl.Int64).alias(c))).sort(row);
}

export function describeAttributes(attrs: Attributes): Description {
  const df = filled(attrs);
  const n = df.height;
  const classFrames: pl.DataFrame[] = [];
  const imbalanceRecs: Record<string, unknown>[] = [];
  const missingRecs: Record<string, unknown>[] = [];
  for (const h of HEAD_NAMES) {
    const col = HEADS[h].column;
    // Counted with polars, then laid out in label order with zero rows kept.
    const vc = df.groupBy(col).agg(pl.len().alias("count")).toRecords() as Record<string, unknown>[];
    const countOf = new Map(vc.map((r) => [String(r[col]), Number(r.count)]));
    const order = [...HEADS[h].labels, ...(h === "gender" ? [] : [MISSING])];
    const missing = countOf.get(MISSING) ?? 0;
    const labelled = n - missing;
    const counts = order.map((c) => countOf.get(c) ?? 0);
    classFrames.push(pl.DataFrame({
      attribute: order.map(() => col),
      class: order,
      count: pl.Series("count", counts, pl.Int64),
      share: counts.map((c) => c / n),
      share_labelled: order.map((c, i) => (c === MISSING ? null : counts[i] / Math.max(labelled, 1))),
    }));
    const labelledCounts = counts.filter((_, i) => order[i] !== MISSING);
    const largest = Math.max(...labelledCounts), smallest = Math.min(...labelledCounts);
    imbalanceRecs.push({
      attribute: col,
      classes: labelledCounts.length,
      labelled,
      missing,
      missing_share: missing / n,
      largest,
      smallest,
      imbalance_ratio: smallest > 0 ? largest / smallest : null,
    });
    missingRecs.push({ column: col, missing, missing_share: missing / n });
  }
  missingRecs.unshift({ column: "Image_Index", missing: 0, missing_share: 0 });
  const asInts = (f: pl.DataFrame, cols: string[]) => f.withColumns(...cols.map((c) => pl.col(c).cast(pl.Int64)));
  return {
    rows: n,
    classCounts: pl.concat(classFrames),
    imbalance: asInts(pl.DataFrame(imbalanceRecs), ["classes", "labelled", "missing", "largest", "smallest"]),
    missing: asInts(pl.DataFrame(missingRecs), ["missing"]),
    genderByHairColor: crossTable(df, "Gender", "Hair_Color", [...HEADS.hair_color.labels, MISSING]),
    genderByHairType: crossTable(df, "Gender", "Hair_Type", [...HEADS.hair_type.labels, MISSING]),
  };
}
