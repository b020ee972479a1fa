/**
 * Reads and validates `Tiny_Portraits_Attributes.csv` with nodejs-polars.
 * `n/a` is parsed as a missing value (null in the frame, -1 in label codes).
 * Every problem — wrong header, wrong field count, blank line, bad index,
 * duplicate index, unknown label, missing gender — is collected with its line
 * number; the read then stops with one error listing them all (or, with
 * `keepGoing`, leaves those rows out and lists them).
 */
import pl from "nodejs-polars";
import { CSV_HEADER, HEAD_NAMES, type HeadName, HEADS, MISSING, MISSING_CODE } from "./schema.ts";

export interface Attributes {
  csvPath: string;
  /** Columns: Image_Index (i64), Gender, Hair_Color, Hair_Type (str, null = n/a). */
  frame: pl.DataFrame;
  /** Image_Index per row, in file order. */
  index: Int32Array;
  /** Label codes per head (position in HEADS[head].labels, MISSING_CODE for n/a). */
  labels: Record<HeadName, Int8Array>;
  /** Rows left out with `keepGoing` (empty otherwise), by CSV line. */
  problems: AttributeProblem[];
  /** 1-based CSV line of each row (rows can skip lines when bad rows were left out). */
  csvLines: Int32Array;
}

export interface AttributeProblem {
  /** 1-based line in the CSV file (the header is line 1). */
  line: number;
  message: string;
}

export class AttributesError extends Error {
  readonly problems: AttributeProblem[];
  constructor(csvPath: string, problems: AttributeProblem[]) {
    const shown = problems.slice(0, 20).map((p) => `  line ${p.line}: ${p.message}`).join("\n");
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : "";
    super(`${csvPath}: ${problems.length} problem(s) in the attributes file:\n${shown}${more}`);
    this.name = "AttributesError";
    this.problems = problems;
  }
}

const INDEX_RE = /^\d+$/;

export interface ReadAttributesOptions {
  /**
   * Leave every bad row out (listed in `problems`) instead of throwing, so that exploration can look at
   * the rest. A wrong header, an empty file or a file with no usable row still throws.
   */
  keepGoing?: boolean;
}

/** A data line that passed the structural checks: its 1-based line number and its text. */
interface GoodLine {
  line: number;
  text: string;
}

/**
 * Structural checks polars would silently repair (ragged lines, empty fields, blank lines). Returns the
 * normalised header (BOM and spaces around names removed) and the lines that passed; problems are pushed.
 */
function checkStructure(text: string, problems: AttributeProblem[]): { header: string; good: GoodLine[] } | null {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1].trim() === "") lines.pop();
  if (lines.length === 0) {
    problems.push({ line: 1, message: "file is empty; expected header " + CSV_HEADER.join(",") });
    return null;
  }
  const header = lines[0].replace(/^\uFEFF/, "").split(",").map((s) => s.trim());
  if (header.join(",") !== CSV_HEADER.join(",")) {
    problems.push({ line: 1, message: `expected header '${CSV_HEADER.join(",")}', got '${lines[0]}'` });
    return null;
  }
  const good: GoodLine[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === "") {
      problems.push({ line: i + 1, message: "blank line; delete it" });
      continue;
    }
    const fields = lines[i].split(",");
    if (fields.length !== CSV_HEADER.length) {
      problems.push({
        line: i + 1,
        message: `expected ${CSV_HEADER.length} fields (${CSV_HEADER.join(",")}), got ${fields.length}: '${lines[i]}'`,
      });
      continue;
    }
    const empty = fields.map((f, c) => (f.trim() === "" ? c : -1)).filter((c) => c >= 0);
    for (const c of empty) problems.push({ line: i + 1, message: `empty ${CSV_HEADER[c]}; write '${MISSING}' for a missing label` });
    if (empty.length === 0) good.push({ line: i + 1, text: lines[i] });
  }
  if (lines.length === 1) problems.push({ line: 2, message: "no data rows: the file has only its header; expected one row per portrait" });
  return { header: header.join(","), good };
}

/** Value checks of the structurally good lines; returns the line numbers of rows with a bad value. */
function checkValues(raw: pl.DataFrame, good: GoodLine[], problems: AttributeProblem[]): { index: Int32Array; labels: Record<HeadName, Int8Array>; bad: Set<number> } {
  const n = raw.height;
  const bad = new Set<number>();
  const flag = (r: number, message: string) => (problems.push({ line: good[r].line, message }), bad.add(good[r].line));
  const idxCol = raw.getColumn("Image_Index").toArray() as (string | null)[];
  const index = new Int32Array(n);
  const seen = new Map<number, number>();
  for (let r = 0; r < n; r++) {
    const v = (idxCol[r] ?? "").trim();
    if (!INDEX_RE.test(v) || Number(v) > 2 ** 31 - 1) {
      flag(r, `Image_Index must be a non-negative integer, got '${idxCol[r] ?? MISSING}'`);
      continue;
    }
    const idx = Number(v);
    index[r] = idx;
    const prev = seen.get(idx);
    if (prev !== undefined) flag(r, `duplicate Image_Index ${idx} (first on line ${good[prev].line})`);
    else seen.set(idx, r);
  }
  const labels = {} as Record<HeadName, Int8Array>;
  for (const head of HEAD_NAMES) {
    const { column, labels: vocab } = HEADS[head];
    const values = raw.getColumn(column).toArray() as (string | null)[];
    const codes = new Int8Array(n);
    const lookup = new Map<string, number>(vocab.map((v, i) => [v, i]));
    for (let r = 0; r < n; r++) {
      const v = values[r];
      if (v === null) {
        if (head === "gender") flag(r, `Gender is '${MISSING}'; every row needs female or male`);
        codes[r] = MISSING_CODE;
        continue;
      }
      const code = lookup.get(v.trim());
      if (code === undefined) {
        flag(r, `unknown ${column} '${v}'; expected one of ${[...vocab, ...(head === "gender" ? [] : [MISSING])].join(", ")}`);
        codes[r] = MISSING_CODE;
      } else codes[r] = code;
    }
    labels[head] = codes;
  }
  return { index, labels, bad };
}

function parse(csvPath: string, header: string, good: GoodLine[]): pl.DataFrame {
  try {
    // All columns as strings first; values are checked before casting.
    return pl.readCSV([header, ...good.map((g) => g.text)].join("\n") + "\n", { inferSchemaLength: 0, nullValues: MISSING, hasHeader: true });
  } catch (err) {
    throw new Error(`${csvPath}: could not be parsed as CSV: ${err instanceof Error ? err.message : err}`);
  }
}

/**
 * Reads, validates and encodes the attributes CSV. Every problem of every line (structure and values
 * together) is collected; then it throws AttributesError listing them all, or with `keepGoing` leaves
 * those rows out and returns them in `problems`.
 */
export async function readAttributes(csvPath: string, opts: ReadAttributesOptions = {}): Promise<Attributes> {
  const text = await Deno.readTextFile(csvPath);
  const problems: AttributeProblem[] = [];
  const structure = checkStructure(text, problems);
  if (!structure) throw new AttributesError(csvPath, problems);
  let good = structure.good;
  let raw = parse(csvPath, structure.header, good);
  let checked = checkValues(raw, good, problems);
  problems.sort((a, b) => a.line - b.line);
  if (problems.length > 0 && !opts.keepGoing) throw new AttributesError(csvPath, problems);
  if (checked.bad.size > 0) {
    good = good.filter((g) => !checked.bad.has(g.line));
    raw = parse(csvPath, structure.header, good);
    checked = checkValues(raw, good, []);
  }
  if (good.length === 0) throw new AttributesError(csvPath, problems.length ? problems : [{ line: 2, message: "no usable rows" }]);
  const frame = raw.withColumns(pl.col("Image_Index").cast(pl.Int64));
  return { csvPath, frame, index: checked.index, labels: checked.labels, problems, csvLines: Int32Array.from(good, (g) => g.line) };
}

/** Decodes a label code back to its text (`n/a` for missing). */
export function labelName(head: HeadName, code: number): string {
  return code === MISSING_CODE ? MISSING : HEADS[head].labels[code];
}
