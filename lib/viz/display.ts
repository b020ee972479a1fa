/**
 * Inline display in Deno Jupyter notebooks: polars frames as HTML tables,
 * PNG bytes as images. Outside Jupyter these print a text form instead, so
 * the same notebook code runs in scripts.
 */
import type pl from "nodejs-polars";
import { inJupyter } from "./vega.ts";
import { Buffer } from "node:buffer";

function esc(s: unknown): string {
  return String(s ?? "").replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]!);
}

function fmt(v: unknown): string {
  if (typeof v === "number" && !Number.isInteger(v)) return v.toPrecision(4);
  if (typeof v === "bigint") return v.toString();
  return v === null || v === undefined ? "null" : String(v);
}

/** Shows a polars frame as a table (first `maxRows` rows). Returns its text form. */
export async function showTable(df: pl.DataFrame, opts: { title?: string; maxRows?: number } = {}): Promise<string> {
  const maxRows = opts.maxRows ?? 30;
  const text = df.head(maxRows).toString();
  if (!inJupyter()) return text;
  const rows = df.head(maxRows).toRecords() as Record<string, unknown>[];
  const head = df.columns.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${df.columns.map((c) => `<td>${esc(fmt(r[c]))}</td>`).join("")}</tr>`).join("");
  const more = df.height > maxRows ? `<p>… ${df.height - maxRows} more rows</p>` : "";
  const title = opts.title ? `<h4>${esc(opts.title)}</h4>` : "";
  // deno-lint-ignore no-explicit-any
  await (Deno as any).jupyter.display({
    "text/html": `${title}<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>${more}`,
    "text/plain": text,
  }, { raw: true });
  return text;
}

/** Shows PNG bytes inline (or a file path's PNG). */
export async function showImage(png: Uint8Array | string): Promise<void> {
  const bytes = typeof png === "string" ? await Deno.readFile(png) : png;
  if (!inJupyter()) return;
  // deno-lint-ignore no-explicit-any
  await (Deno as any).jupyter.display({ "image/png": Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64") }, { raw: true });
}
