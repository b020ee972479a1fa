/**
 * Mosaics / contact sheets: lay images out in a grid with optional captions, row labels and a
 * title, and return one PNG. Built on sharp; used for class sheets, outlier mosaics, GAN samples.
 *
 *   import { mosaic } from "./lib/viz/mosaic.ts";
 *   const png = await mosaic(
 *     [{ image: await Deno.readFile("a.png"), caption: "a" }, { image: { raw, width: 84, height: 108, channels: 3 } }],
 *     { columns: 8, title: "Most unusual images" },
 *   );
 *   await Deno.writeFile("sheet.png", png);
 *
 * Text (captions, labels, title) is drawn as SVG <text> through librsvg, which needs a font
 * (fontconfig). Where no font is installed the text may come out empty or as boxes; the mosaic
 * is still produced. `svgTextRenders()` tells whether text is visible on this machine.
 */

import sharp from "sharp";
import { Buffer } from "node:buffer";

/** An encoded image (PNG, JPEG, ... anything sharp reads) or raw interleaved pixels. */
export type MosaicImage =
  | Uint8Array
  | { raw: Uint8Array; width: number; height: number; channels: 1 | 2 | 3 | 4 };

export interface MosaicTile {
  image: MosaicImage;
  /** Short text under the tile (truncated with an ellipsis to the tile width). */
  caption?: string;
}

export type Rgb = { r: number; g: number; b: number };

export interface MosaicOptions {
  /** Tiles per row. */
  columns: number;
  /** Tile size in pixels; defaults to the first tile's size. Tiles of another size are resized (see `fit`). */
  tileWidth?: number;
  tileHeight?: number;
  /** How tiles of another aspect are resized (default "contain", letterboxed with `background`). */
  fit?: "contain" | "cover" | "fill";
  /** Text above the grid. */
  title?: string;
  /** One label per grid row, drawn in a column at the left. */
  rowLabels?: string[];
  /** Canvas colour: CSS colour string or {r, g, b} (default white). */
  background?: string | Rgb;
  /** Text colour (default black or white, whichever contrasts with the background). */
  textColor?: string;
  /** Pixels between tiles and around the grid (default 2). */
  gap?: number;
  /** Caption font size in pixels (default 9; the title is 1.4x). */
  fontSize?: number;
}

const FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif";

function escapeXml(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) =>
      ({
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "'": "&apos;",
        '"': "&quot;",
      })[c]!,
  );
}

function truncate(s: string, maxChars: number): string {
  if (s.length <= maxChars) return s;
  return maxChars <= 1
    ? s.slice(0, Math.max(0, maxChars))
    : s.slice(0, maxChars - 1) + "…";
}

function toRgb(bg: string | Rgb): Rgb {
  if (typeof bg !== "string") return bg;
  const m = /^#?([0-9a-f]{6})$/i.exec(bg.trim());
  if (m) {
    const v = parseInt(m[1], 16);
    return { r: v >> 16, g: (v >> 8) & 255, b: v & 255 };
  }
  const named: Record<string, Rgb> = {
    white: { r: 255, g: 255, b: 255 },
    black: { r: 0, g: 0, b: 0 },
  };
  return named[bg.trim().toLowerCase()] ?? { r: 255, g: 255, b: 255 };
}

/** Approximate text width for the sans-serif fonts used (average glyph ~0.58 em). */
const textWidth = (s: string, size: number) => s.length * size * 0.58;

function input(img: MosaicImage): sharp.Sharp {
  if (img instanceof Uint8Array) return sharp(img);
  const { raw, width, height, channels } = img;
  if (raw.length !== width * height * channels) {
    throw new Error(
      `mosaic: raw tile has ${raw.length} bytes, expected ${width}x${height}x${channels}`,
    );
  }
  return sharp(raw, { raw: { width, height, channels } });
}

async function size(
  img: MosaicImage,
): Promise<{ width: number; height: number }> {
  if (!(img instanceof Uint8Array)) {
    return { width: img.width, height: img.height };
  }
  const m = await sharp(img).metadata();
  if (!m.width || !m.height) {
    throw new Error("mosaic: could not read the first tile's size");
  }
  return { width: m.width, height: m.height };
}

/**
 * Lays tiles out row by row, `columns` per row, and returns the sheet as an RGB PNG.
 * Empty `tiles` gives a small sheet with just the title (if any).
 */
export async function mosaic(
  tiles: MosaicTile[],
  opts: MosaicOptions,
): Promise<Uint8Array> {
  if (!Number.isInteger(opts.columns) || opts.columns < 1) {
    throw new Error(
      `mosaic: expected columns to be a positive integer, got '${opts.columns}'`,
    );
  }
  const first = tiles.length > 0
    ? await size(tiles[0].image)
    : { width: 84, height: 108 };
  const tw = opts.tileWidth ?? first.width;
  const th = opts.tileHeight ?? first.height;
  const gap = opts.gap ?? 2;
  const fs = opts.fontSize ?? 9;
  const bg = toRgb(opts.background ?? { r: 255, g: 255, b: 255 });
  const lum = 0.299 * bg.r + 0.587 * bg.g + 0.114 * bg.b;
  const ink = opts.textColor ?? (lum > 128 ? "#000000" : "#ffffff");
  const cols = opts.columns;
  const nRows = Math.max(
    Math.ceil(tiles.length / cols),
    opts.rowLabels?.length ?? 0,
  );

  const hasCaptions = tiles.some((t) =>
    t.caption !== undefined && t.caption !== ""
  );
  const capH = hasCaptions ? Math.ceil(fs * 1.3) + 1 : 0;
  const titleFs = Math.round(fs * 1.4);
  const titleH = opts.title ? Math.ceil(titleFs * 1.5) + gap : 0;
  const labelW = opts.rowLabels?.length
    ? Math.ceil(Math.max(...opts.rowLabels.map((s) => textWidth(s, fs)))) +
      2 * gap + 4
    : 0;
  const cellW = tw + gap, cellH = th + capH + gap;
  const width = Math.max(
    gap + labelW + cols * cellW,
    opts.title ? Math.ceil(textWidth(opts.title, titleFs)) + 2 * gap : 1,
  );
  const height = Math.max(1, gap + titleH + nRows * cellH);

  const layers: sharp.OverlayOptions[] = [];
  for (let i = 0; i < tiles.length; i++) {
    const png = await input(tiles[i].image)
      .resize(tw, th, { fit: opts.fit ?? "contain", background: bg })
      .flatten({ background: bg })
      .toColourspace("srgb")
      .png({ compressionLevel: 1 })
      .toBuffer();
    layers.push({
      input: png,
      left: gap + labelW + (i % cols) * cellW,
      top: gap + titleH + Math.floor(i / cols) * cellH,
    });
  }

  const texts: string[] = [];
  const maxChars = Math.max(1, Math.floor(tw / (fs * 0.58)));
  tiles.forEach((t, i) => {
    if (!t.caption) return;
    const x = gap + labelW + (i % cols) * cellW + tw / 2;
    const y = gap + titleH + Math.floor(i / cols) * cellH + th + fs;
    texts.push(
      `<text x="${x}" y="${y}" text-anchor="middle">${
        escapeXml(truncate(t.caption, maxChars))
      }</text>`,
    );
  });
  opts.rowLabels?.forEach((s, r) => {
    const y = gap + titleH + r * cellH + th / 2 + fs / 3;
    texts.push(`<text x="${gap + 2}" y="${y}">${escapeXml(s)}</text>`);
  });
  if (opts.title) {
    texts.push(
      `<text x="${gap + 2}" y="${
        gap + titleFs
      }" font-size="${titleFs}" font-weight="bold">${
        escapeXml(opts.title)
      }</text>`,
    );
  }
  if (texts.length > 0) {
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<g font-family="${FONT}" font-size="${fs}" fill="${ink}">${
        texts.join("")
      }</g></svg>`;
    try {
      // Rendering fails only if librsvg itself fails; missing fonts give empty text, not an error.
      const overlay = await sharp(Buffer.from(svg)).png().toBuffer();
      layers.push({ input: overlay, left: 0, top: 0 });
    } catch (e) {
      console.warn(
        `mosaic: text not drawn (${e instanceof Error ? e.message : e})`,
      );
    }
  }

  const out = await sharp({
    create: { width, height, channels: 3, background: bg },
  })
    .composite(layers)
    .removeAlpha()
    .png()
    .toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

let textProbe: Promise<boolean> | undefined;

/** True when SVG <text> produces visible pixels here (i.e. librsvg found a font). Cached. */
export function svgTextRenders(): Promise<boolean> {
  textProbe ??= (async () => {
    const svg =
      `<svg xmlns="http://www.w3.org/2000/svg" width="60" height="20"><rect width="60" height="20" fill="#fff"/>` +
      `<text x="2" y="15" font-family="${FONT}" font-size="14" fill="#000">Abc 12</text></svg>`;
    try {
      const px = await sharp(Buffer.from(svg)).removeAlpha().greyscale().raw()
        .toBuffer();
      let dark = 0;
      for (const v of px) if (v < 128) dark++;
      return dark > 10;
    } catch {
      return false;
    }
  })();
  return textProbe;
}
