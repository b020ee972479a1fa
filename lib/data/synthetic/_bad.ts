// Non-face "bad" images planted in the synthetic dataset, like the ~660 broken or non-face
// thumbnails of the real one: landscapes, text (glyph-like strokes, no fonts needed), blank
// (near-uniform colour) and noise (random pixels).

import { HEIGHT as H, hsl, smoothPath, WIDTH as W } from "./_draw.ts";
import type { Rng } from "../../util/rng.ts";

export type BadKind = "landscape" | "text" | "blank" | "noise";
export const BAD_KINDS: readonly BadKind[] = [
  "landscape",
  "text",
  "blank",
  "noise",
];

/** What `postProcess` renders: an SVG document or raw RGB pixels (W x H x 3). */
export type Source = { svg: string } | { raw: Uint8Array };

export function sampleBadKind(rng: Rng): BadKind {
  return rng.weighted({ landscape: 0.3, text: 0.25, blank: 0.25, noise: 0.2 });
}

const f = (x: number) => (Math.round(x * 100) / 100).toString();
const doc = (defs: string, body: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><defs>${defs}</defs>${body}</svg>`;

function landscape(rng: Rng): Source {
  const sunset = rng.chance(0.3);
  const skyTop = sunset
    ? hsl(rng.uniform(250, 290), 0.4, 0.35)
    : hsl(rng.uniform(195, 220), rng.uniform(0.4, 0.8), rng.uniform(0.4, 0.6));
  const skyLow = sunset
    ? hsl(rng.uniform(15, 40), 0.85, 0.6)
    : hsl(rng.uniform(190, 210), 0.5, rng.uniform(0.75, 0.9));
  const horizon = rng.uniform(0.35, 0.65) * H;
  let body = `<rect width="${W}" height="${H}" fill="url(#sky)"/>`;
  if (rng.chance(0.7)) {
    body += `<circle cx="${f(rng.uniform(8, W - 8))}" cy="${
      f(rng.uniform(8, horizon - 6))
    }" r="${f(rng.uniform(4, 10))}" fill="${sunset ? "#ffd27a" : "#fff6d0"}"/>`;
  }
  const layers = rng.int(2, 4);
  for (let i = 0; i < layers; i++) {
    const base = horizon + (i * (H - horizon)) / (layers + 0.5);
    const amp = rng.uniform(3, 14) / (i + 1);
    const wl = rng.uniform(25, 70);
    const ph = rng.uniform(0, 6.3);
    const pts: [number, number][] = [];
    for (let x = -4; x <= W + 4; x += 4) {
      pts.push([x, base - amp * (1 + Math.sin((2 * Math.PI * x) / wl + ph))]);
    }
    const col = rng.chance(0.7)
      ? hsl(
        rng.uniform(80, 140),
        rng.uniform(0.25, 0.6),
        rng.uniform(0.15, 0.45) - i * 0.04,
      )
      : hsl(
        rng.uniform(20, 45),
        rng.uniform(0.2, 0.45),
        rng.uniform(0.2, 0.5) - i * 0.04,
      );
    body += `<path d="${smoothPath(pts, false)}L${W + 4} ${H + 4}L-4 ${
      H + 4
    }Z" fill="${col}"/>`;
  }
  const trees = rng.int(0, 4);
  for (let i = 0; i < trees; i++) {
    const x = rng.uniform(0, W),
      y = rng.uniform(horizon + 5, H - 5),
      h = rng.uniform(8, 22);
    body += `<path d="M${f(x)} ${f(y - h)}L${f(x + h * 0.3)} ${f(y)}L${
      f(x - h * 0.3)
    } ${f(y)}Z" fill="${
      hsl(rng.uniform(100, 150), 0.45, rng.uniform(0.12, 0.28))
    }"/>`;
  }
  const defs =
    `<linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${skyTop}"/><stop offset="${
      f(horizon / H)
    }" stop-color="${skyLow}"/></linearGradient>`;
  return { svg: doc(defs, body) };
}

/** A glyph made of 1-3 strokes inside a w x h box at (x, y). */
function glyph(rng: Rng, x: number, y: number, w: number, h: number): string {
  let d = "";
  const k = rng.int(1, 3);
  for (let i = 0; i < k; i++) {
    const t = rng.int(0, 4);
    if (t === 0) d += `M${f(x + rng.uniform(0, w))} ${f(y)}V${f(y + h)}`; // vertical
    else if (t === 1) {
      const yy = y + rng.choice([0, 0.5, 1]) * h;
      d += `M${f(x)} ${f(yy)}H${f(x + w)}`; // horizontal
    } else if (t === 2) d += `M${f(x)} ${f(y + h)}L${f(x + w)} ${f(y)}`; // diagonal
    else if (t === 3) {
      d += `M${f(x + w)} ${f(y + h * 0.2)}Q${f(x - w * 0.4)} ${
        f(y + h * 0.5)
      } ${f(x + w)} ${f(y + h * 0.8)}`; // bowl
    } else {d += `M${f(x)} ${f(y + h)}Q${f(x + w / 2)} ${f(y - h * 0.3)} ${
        f(x + w)
      } ${f(y + h)}`; // arch
    }
  }
  return d;
}

function text(rng: Rng): Source {
  const dark = rng.chance(0.75);
  const bg = dark
    ? hsl(rng.uniform(30, 60), rng.uniform(0, 0.3), rng.uniform(0.82, 0.97))
    : hsl(rng.uniform(0, 360), rng.uniform(0, 0.5), rng.uniform(0.05, 0.3));
  const ink = dark
    ? hsl(rng.uniform(0, 360), rng.uniform(0, 0.4), rng.uniform(0.02, 0.25))
    : hsl(rng.uniform(0, 360), rng.uniform(0, 0.4), rng.uniform(0.8, 0.98));
  let d = "";
  let y = rng.uniform(3, 10);
  const lineH = rng.uniform(7, 13);
  const gh = lineH * rng.uniform(0.5, 0.7);
  while (y + gh < H - 3) {
    let x = rng.uniform(2, 8);
    const end = W - rng.uniform(2, 20);
    while (x < end) {
      const gw = gh * rng.uniform(0.4, 0.8);
      d += glyph(rng, x, y, gw, gh);
      x += gw + rng.uniform(1, 2.5);
      if (rng.chance(0.18)) x += gw; // word gap
    }
    y += lineH;
  }
  const rot = rng.normal(0, 3);
  const body =
    `<rect width="${W}" height="${H}" fill="${bg}"/><g transform="rotate(${
      f(rot)
    } ${W / 2} ${H / 2})"><path d="${d}" stroke="${ink}" stroke-width="${
      f(rng.uniform(0.7, 1.4))
    }" fill="none" stroke-linecap="round"/></g>`;
  return { svg: doc("", body) };
}

function blank(rng: Rng): Source {
  const c = hsl(
    rng.uniform(0, 360),
    rng.uniform(0, 0.4),
    rng.chance(0.3) ? rng.choice([0.02, 0.98]) : rng.uniform(0.1, 0.9),
  );
  const body = rng.chance(0.6)
    ? `<rect width="${W}" height="${H}" fill="${c}"/>`
    : `<rect width="${W}" height="${H}" fill="url(#g)"/>`;
  const defs =
    `<linearGradient id="g" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${c}"/><stop offset="1" stop-color="${c}" stop-opacity="0.9"/></linearGradient>`;
  return {
    svg: doc(defs, `<rect width="${W}" height="${H}" fill="#000000"/>` + body),
  };
}

function noise(rng: Rng): Source {
  const raw = new Uint8Array(W * H * 3);
  const block = rng.choice([1, 1, 2, 3, 4]);
  const gray = rng.chance(0.3);
  for (let by = 0; by < H; by += block) {
    for (let bx = 0; bx < W; bx += block) {
      const r = rng.int(0, 255),
        g = gray ? r : rng.int(0, 255),
        b = gray ? r : rng.int(0, 255);
      for (let y = by; y < Math.min(H, by + block); y++) {
        for (let x = bx; x < Math.min(W, bx + block); x++) {
          const o = (y * W + x) * 3;
          raw[o] = r;
          raw[o + 1] = g;
          raw[o + 2] = b;
        }
      }
    }
  }
  return { raw };
}

/** The source image of one planted bad image. */
export function badSource(kind: BadKind, rng: Rng): Source {
  switch (kind) {
    case "landscape":
      return landscape(rng);
    case "text":
      return text(rng);
    case "blank":
      return blank(rng);
    case "noise":
      return noise(rng);
  }
}
