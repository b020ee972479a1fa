/**
 * Reads and validates `Tiny_Portraits_Attributes.csv` with nodejs-polars.
 * `n/a` is parsed as a missing value (null in the frame, -1 in label codes).
 * Every problem — wrong header, wrong field count, bad index, duplicate index,
 * unknown label, missing gender — is collected with its line number; the
 * read then stops with one error listing them all.
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

/** Structural checks polars would silently repair (ragged lines, empty fields). */
function checkStructure(text: string, problems: AttributeProblem[]): void {
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length === 0) {
    problems.push({ line: 1, message: "file is empty; expected header " + CSV_HEADER.join(",") });
    return;
  }
  const header = lines[0].replace(/^\uFEFF/, "").split(",").map((s) => s.trim());
  if (header.join(",") !== CSV_HEADER.join(",")) {
    problems.push({ line: 1, message: `expected header '${CSV_HEADER.join(",")}', got '${lines[0]}'` });
    return;
  }
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i].split(",");
    if (fields.length !== CSV_HEADER.length) {
      problems.push({
        line: i + 1,
        message: `expected ${CSV_HEADER.length} fields (${CSV_HEADER.join(",")}), got ${fields.length}: '${lines[i]}'`,
      });
      continue;
    }
    fields.forEach((f, c) => {
      if (f.trim() === "") {
        problems.push({ line: i + 1, message: `empty ${CSV_HEADER[c]}; write '${MISSING}' for a missing label` });
      }
    });
  }
}

/** Reads, validates and encodes the attributes CSV. Throws AttributesError listing every problem. */
export async function readAttributes(csvPath: string): Promise<Attributes> {
  const text = await Deno.readTextFile(csvPath);
  const problems: AttributeProblem[] = [];
  checkStructure(text, problems);
  if (problems.length > 0) throw new AttributesError(csvPath, problems);

  let raw: pl.DataFrame;
  try {
    // All columns as strings first; values are checked below before casting.
    raw = pl.readCSV(text, { inferSchemaLength: 0, nullValues: MISSING, hasHeader: true });
  } catch (err) {
    throw new Error(`${csvPath}: could not be parsed as CSV: ${err instanceof Error ? err.message : err}`);
  }
  const n = raw.height;
  const idxCol = raw.getColumn("Image_Index").toArray() as (string | null)[];
  const index = new Int32Array(n);
  const seen = new Map<number, number>();
  for (let r = 0; r < n; r++) {
    const v = (idxCol[r] ?? "").trim();
    if (!INDEX_RE.test(v) || Number(v) > 2 ** 31 - 1) {
      problems.push({ line: r + 2, message: `Image_Index must be a non-negative integer, got '${idxCol[r] ?? MISSING}'` });
      continue;
    }
    const idx = Number(v);
    index[r] = idx;
    const prev = seen.get(idx);
    if (prev !== undefined) problems.push({ line: r + 2, message: `duplicate Image_Index ${idx} (first on line ${prev + 2})` });
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
        if (head === "gender") problems.push({ line: r + 2, message: `Gender is '${MISSING}'; every row needs female or male` });
        codes[r] = MISSING_CODE;
        continue;
      }
      const code = lookup.get(v.trim());
      if (code === undefined) {
        problems.push({
          line: r + 2,
          message: `unknown ${column} '${v}'; expected one of ${[...vocab, ...(head === "gender" ? [] : [MISSING])].join(", ")}`,
        });
        codes[r] = MISSING_CODE;
      } else codes[r] = code;
    }
    labels[head] = codes;
  }
  if (problems.length > 0) {
    problems.sort((a, b) => a.line - b.line);
    throw new AttributesError(csvPath, problems);
  }
  const frame = raw.withColumns(pl.col("Image_Index").cast(pl.Int64));
  return { csvPath, frame, index, labels };
}

/** Decodes a label code back to its text (`n/a` for missing). */
export function labelName(head: HeadName, code: number): string {
  return code === MISSING_CODE ? MISSING : HEADS[head].labels[code];
}
