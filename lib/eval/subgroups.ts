/**
 * Accuracy per subgroup, e.g. gender accuracy by hair colour: a model that
 * is right 95% of the time overall but 70% on grey-haired women shows it here.
 */
import pl from "nodejs-polars";
import { MISSING_CODE } from "../data/schema.ts";

/**
 * Accuracy of `pred` against `yTrue` within each group. Rows with a missing label (-1) are ignored.
 * Group index -1 is reported as "n/a" (last, and only when such rows exist); every other group is
 * listed in `groupLabels` order, also when empty (n 0, accuracy null).
 * Columns: `group` (string), `n` (labelled rows), `accuracy` (correct / n), `correct`.
 */
export function subgroupAccuracy(
  yTrue: ArrayLike<number>,
  pred: ArrayLike<number>,
  groups: ArrayLike<number>,
  groupLabels: readonly string[],
): pl.DataFrame {
  if (pred.length !== yTrue.length || groups.length !== yTrue.length) {
    throw new Error(`subgroupAccuracy: expected yTrue, pred and groups of one length, got ${yTrue.length}, ${pred.length}, ${groups.length}`);
  }
  const g = groupLabels.length;
  const n = new Array<number>(g + 1).fill(0); // slot g = n/a
  const correct = new Array<number>(g + 1).fill(0);
  for (let i = 0; i < yTrue.length; i++) {
    if (yTrue[i] === MISSING_CODE) continue;
    const gi = groups[i];
    let slot: number;
    if (gi === MISSING_CODE) slot = g;
    else if (Number.isInteger(gi) && gi >= 0 && gi < g) slot = gi;
    else throw new Error(`subgroupAccuracy: expected a group in 0..${g - 1} or -1 at row ${i}, got ${gi}`);
    n[slot] += 1;
    if (pred[i] === yTrue[i]) correct[slot] += 1;
  }
  const slots = [...groupLabels.keys(), ...(n[g] > 0 ? [g] : [])];
  return pl.DataFrame([
    pl.Series("group", slots.map((s) => (s === g ? "n/a" : groupLabels[s])), pl.Utf8),
    pl.Series("n", slots.map((s) => n[s]), pl.Int64),
    pl.Series("accuracy", slots.map((s) => (n[s] ? correct[s] / n[s] : null)), pl.Float64),
    pl.Series("correct", slots.map((s) => correct[s]), pl.Int64),
  ]);
}

/** The subgroup with the lowest accuracy across subgroup tables (see `worstSubgroup`). */
export interface WorstSubgroup {
  /** Key of the table it came from, e.g. `gender_by_hair_color`. */
  table: string;
  /** Group name within that table, e.g. `gray`. */
  group: string;
  n: number;
  correct: number;
  accuracy: number;
  /** Bootstrap interval of `accuracy`, when the caller adds one. */
  accuracy_ci?: [number, number];
}

/** Default smallest subgroup that `worstSubgroup` considers: below it one face moves accuracy by more than 10 points. */
export const WORST_SUBGROUP_MIN_ROWS = 10;

/**
 * The subgroup with the lowest accuracy among all groups with at least `minRows` labelled rows,
 * across every table of `tables` (frames of `subgroupAccuracy`, keyed by table name). Every group
 * counts, "n/a" included. Ties: the larger group, then the earlier table and row. Null when no
 * group is large enough.
 */
export function worstSubgroup(tables: Record<string, pl.DataFrame>, minRows = WORST_SUBGROUP_MIN_ROWS): WorstSubgroup | null {
  if (!(Number.isInteger(minRows) && minRows >= 1)) throw new Error(`worstSubgroup: expected minRows to be a positive integer, got ${minRows}`);
  let worst: WorstSubgroup | null = null;
  for (const [table, df] of Object.entries(tables)) {
    for (const col of ["group", "n", "correct"]) {
      if (!df.columns.includes(col)) throw new Error(`worstSubgroup: table '${table}' has no '${col}' column (expected a subgroupAccuracy frame)`);
    }
    const groups = df.getColumn("group").toArray() as string[];
    const ns = df.getColumn("n").toArray().map(Number);
    const cs = df.getColumn("correct").toArray().map(Number);
    for (let i = 0; i < groups.length; i++) {
      const n = ns[i], correct = cs[i];
      if (n < minRows) continue;
      const accuracy = correct / n;
      if (!worst || accuracy < worst.accuracy || (accuracy === worst.accuracy && n > worst.n)) worst = { table, group: groups[i], n, correct, accuracy };
    }
  }
  return worst;
}
