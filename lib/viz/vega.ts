/**
 * Vega-Lite charts: compile a spec with vega-lite, render it headless with
 * vega to SVG, rasterise with sharp to PNG, or show it inline in Jupyter
 * (Deno.jupyter.display with the vega-lite MIME type).
 */
import * as vega from "vega";
import * as vl from "vega-lite";
import sharp from "sharp";
import { writeFileAtomic } from "../util/fs.ts";

// deno-lint-ignore no-explicit-any
export type VegaLiteSpec = Record<string, any>;

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Renders a vega-lite spec to an SVG string (no browser needed). */
export async function chartToSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vl.compile({ $schema: SCHEMA, ...spec } as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG string to PNG bytes (scale 2 for crisp text). */
export async function svgToPng(svg: string, density = 144): Promise<Uint8Array> {
  return await sharp(new TextEncoder().encode(svg), { density }).flatten({ background: "#ffffff" }).png().toBuffer();
}

/**
 * Writes `<base>.svg`, `<base>.png` and `<base>.vl.json` (the spec, with its
 * data inline, so it can be reopened in the vega editor). Returns the paths.
 */
export async function saveChart(spec: VegaLiteSpec, base: string): Promise<{ svg: string; png: string; json: string }> {
  const svg = await chartToSvg(spec);
  const paths = { svg: `${base}.svg`, png: `${base}.png`, json: `${base}.vl.json` };
  await writeFileAtomic(paths.svg, svg);
  await writeFileAtomic(paths.png, await svgToPng(svg));
  await writeFileAtomic(paths.json, JSON.stringify({ $schema: SCHEMA, ...spec }, null, 1));
  return paths;
}

/** True inside a Deno Jupyter kernel. */
export function inJupyter(): boolean {
  // deno-lint-ignore no-explicit-any
  return typeof (Deno as any).jupyter?.display === "function";
}

/**
 * Shows a chart inline in Jupyter (vega-lite MIME bundle plus an SVG
 * fallback for front-ends without the vega renderer). Outside Jupyter it
 * returns the SVG text.
 */
export async function showChart(spec: VegaLiteSpec): Promise<string> {
  const svg = await chartToSvg(spec);
  if (inJupyter()) {
    // deno-lint-ignore no-explicit-any
    await (Deno as any).jupyter.display({
      "application/vnd.vegalite.v5+json": { $schema: "https://vega.github.io/schema/vega-lite/v5.json", ...spec },
      "image/svg+xml": svg,
    }, { raw: true });
  }
  return svg;
}

/** Bar chart of counts per category (with optional colour field). */
export function barChart(values: Record<string, unknown>[], x: string, y: string, opts: { title?: string; color?: string; width?: number } = {}): VegaLiteSpec {
  return {
    title: opts.title,
    width: opts.width ?? 320,
    height: 180,
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: { field: x, type: "nominal", sort: null },
      y: { field: y, type: "quantitative" },
      ...(opts.color ? { color: { field: opts.color, type: "nominal" } } : {}),
    },
  };
}
