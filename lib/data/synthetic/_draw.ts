// SVG drawing of one synthetic portrait (84 x 108) from its labels, hidden appearance and a seeded Rng.
//
// The face is drawn in a local frame whose origin is the midpoint between the eyes (x right, y down,
// units = pixels before the pose scale); a group transform places it in the canvas with a small
// rotation, offset and scale. Labels change several things at once, each with overlap between classes:
//   gender     -> jaw width and chin, face length, brow weight and arch, hair length, shoulders,
//                 facial hair (men), make-up and earrings (mostly women)
//   hair colour -> fill and strand colour of hair, eyebrow tint, beard colour; bald -> no hair on top
//   hair type  -> straight (smooth outline, straight strands) vs wavy (sinusoidal outline and strands)

import type { Appearance, DrawColor, Labels } from "./_labels.ts";
import type { Rng } from "../../util/rng.ts";

export const WIDTH = 84;
export const HEIGHT = 108;

type Pt = [number, number];

/** Fixed-precision number for SVG (keeps output byte-stable and short). */
function n(x: number): string {
  return (Math.round(x * 100) / 100).toString();
}

function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** HSL (h in degrees, s and l in 0..1) to #rrggbb. */
export function hsl(h: number, s: number, l: number): string {
  h = ((h % 360) + 360) % 360;
  s = clamp01(s);
  l = clamp01(l);
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const x = c * (1 - Math.abs(((h / 60) % 2) - 1));
  const m = l - c / 2;
  let r = 0, g = 0, b = 0;
  if (h < 60) [r, g, b] = [c, x, 0];
  else if (h < 120) [r, g, b] = [x, c, 0];
  else if (h < 180) [r, g, b] = [0, c, x];
  else if (h < 240) [r, g, b] = [0, x, c];
  else if (h < 300) [r, g, b] = [x, 0, c];
  else [r, g, b] = [c, 0, x];
  const hex = (v: number) =>
    Math.round((v + m) * 255).toString(16).padStart(2, "0");
  return `#${hex(r)}${hex(g)}${hex(b)}`;
}

interface Hsl {
  h: number;
  s: number;
  l: number;
}

function shade(c: Hsl, dl: number, ds = 0, dh = 0): string {
  return hsl(c.h + dh, c.s + ds, c.l + dl);
}

/** Closed or open Catmull-Rom spline through the points, as an SVG path. */
export function smoothPath(pts: Pt[], closed: boolean): string {
  const m = pts.length;
  if (m < 2) return "";
  const at = (i: number): Pt =>
    closed ? pts[((i % m) + m) % m] : pts[Math.max(0, Math.min(m - 1, i))];
  let d = `M${n(pts[0][0])} ${n(pts[0][1])}`;
  const segs = closed ? m : m - 1;
  for (let i = 0; i < segs; i++) {
    const p0 = at(i - 1), p1 = at(i), p2 = at(i + 1), p3 = at(i + 2);
    const c1x = p1[0] + (p2[0] - p0[0]) / 6, c1y = p1[1] + (p2[1] - p0[1]) / 6;
    const c2x = p2[0] - (p3[0] - p1[0]) / 6, c2y = p2[1] - (p3[1] - p1[1]) / 6;
    d += `C${n(c1x)} ${n(c1y)} ${n(c2x)} ${n(c2y)} ${n(p2[0])} ${n(p2[1])}`;
  }
  return closed ? d + "Z" : d;
}

/** Resamples a polyline to roughly `step` spacing (keeps the end points). */
function resample(pts: Pt[], step: number): Pt[] {
  const out: Pt[] = [pts[0]];
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
    const len = Math.hypot(x1 - x0, y1 - y0);
    const k = Math.max(1, Math.round(len / step));
    for (let j = 1; j <= k; j++) {
      out.push([x0 + ((x1 - x0) * j) / k, y0 + ((y1 - y0) * j) / k]);
    }
  }
  return out;
}

/**
 * Pushes the points of an open edge sideways by a sinusoid of the arc length (wavy / curly hair).
 * `sign` chooses the side of the walking direction (+1 = left of travel in SVG's y-down frame).
 */
function waveEdge(
  pts: Pt[],
  amp: number,
  wavelength: number,
  phase: number,
  sign = 1,
  jitter?: () => number,
): Pt[] {
  const out: Pt[] = [];
  let s = 0;
  for (let i = 0; i < pts.length; i++) {
    if (i > 0) {
      s += Math.hypot(pts[i][0] - pts[i - 1][0], pts[i][1] - pts[i - 1][1]);
    }
    const a = pts[Math.max(0, i - 1)], b = pts[Math.min(pts.length - 1, i + 1)];
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const len = Math.hypot(dx, dy) || 1;
    const nx = (dy / len) * sign, ny = (-dx / len) * sign;
    const off = amp * Math.sin((2 * Math.PI * s) / wavelength + phase) +
      (jitter ? jitter() : 0);
    out.push([pts[i][0] + nx * off, pts[i][1] + ny * off]);
  }
  return out;
}

/** Points on the upper half of an ellipse centred at (0, cy), from angle a0 to a1 (radians, 0 = right, -pi/2 = top). */
function arc(
  rx: number,
  ry: number,
  cy: number,
  a0: number,
  a1: number,
  k: number,
): Pt[] {
  const out: Pt[] = [];
  for (let i = 0; i <= k; i++) {
    const a = a0 + ((a1 - a0) * i) / k;
    out.push([rx * Math.cos(a), cy + ry * Math.sin(a)]);
  }
  return out;
}

const mirror = (pts: Pt[]): Pt[] =>
  pts.map(([x, y]) => [-x, y] as Pt).reverse();

// Hair colour palettes: hue (deg), saturation, lightness ranges.
const HAIR: Record<
  DrawColor,
  { h: [number, number]; s: [number, number]; l: [number, number] }
> = {
  black: { h: [15, 35], s: [0.08, 0.25], l: [0.06, 0.14] },
  brown: { h: [18, 32], s: [0.35, 0.55], l: [0.17, 0.32] },
  blond: { h: [36, 48], s: [0.45, 0.72], l: [0.54, 0.74] },
  gray: { h: [25, 45], s: [0.0, 0.08], l: [0.52, 0.8] },
  auburn: { h: [8, 18], s: [0.5, 0.68], l: [0.26, 0.4] },
};

function hairHsl(color: DrawColor, rng: Rng): Hsl {
  const p = HAIR[color];
  return {
    h: rng.uniform(...p.h),
    s: rng.uniform(...p.s),
    l: rng.uniform(...p.l),
  };
}

function skinHsl(rng: Rng): Hsl {
  const tone = rng.weighted({ light: 0.55, medium: 0.28, dark: 0.17 });
  const h = rng.clippedNormal(23, 3.5, 12, 34);
  if (tone === "light") {
    return { h, s: rng.uniform(0.42, 0.62), l: rng.uniform(0.7, 0.82) };
  }
  if (tone === "medium") {
    return { h, s: rng.uniform(0.38, 0.55), l: rng.uniform(0.54, 0.68) };
  }
  return { h, s: rng.uniform(0.3, 0.45), l: rng.uniform(0.27, 0.45) };
}

function randomColor(rng: Rng, s: [number, number], l: [number, number]): Hsl {
  return { h: rng.uniform(0, 360), s: rng.uniform(...s), l: rng.uniform(...l) };
}

/** Background layers filling the whole canvas. */
function background(rng: Rng, defs: string[]): string {
  // Most backgrounds are warm or neutral, as in celebrity photos (keeps the pixel mean warm).
  const a = randomColor(rng, [0, 0.55], [0.1, 0.85]);
  if (rng.chance(0.6)) {
    a.h = rng.uniform(10, 45);
    a.s = rng.uniform(0.15, 0.5);
  }
  const kind = rng.weighted({
    solid: 0.3,
    linear: 0.4,
    radial: 0.15,
    clutter: 0.15,
  });
  if (kind === "solid") {
    return `<rect width="${WIDTH}" height="${HEIGHT}" fill="${shade(a, 0)}"/>`;
  }
  const b: Hsl = rng.chance(0.5)
    ? {
      h: a.h + rng.normal(0, 25),
      s: a.s * rng.uniform(0.6, 1.2),
      l: a.l + rng.normal(0, 0.18),
    }
    : randomColor(rng, [0, 0.5], [0.15, 0.9]);
  if (kind === "linear" || kind === "clutter") {
    const ang = rng.uniform(0, 2 * Math.PI);
    defs.push(
      `<linearGradient id="bg" x1="${n(0.5 - 0.5 * Math.cos(ang))}" y1="${
        n(0.5 - 0.5 * Math.sin(ang))
      }" ` +
        `x2="${n(0.5 + 0.5 * Math.cos(ang))}" y2="${
          n(0.5 + 0.5 * Math.sin(ang))
        }">` +
        `<stop offset="0" stop-color="${
          shade(a, 0)
        }"/><stop offset="1" stop-color="${shade(b, 0)}"/></linearGradient>`,
    );
  } else {
    defs.push(
      `<radialGradient id="bg" cx="${n(rng.uniform(0.3, 0.7))}" cy="${
        n(rng.uniform(0.2, 0.6))
      }" r="0.75">` +
        `<stop offset="0" stop-color="${
          shade(a, 0)
        }"/><stop offset="1" stop-color="${shade(b, 0)}"/></radialGradient>`,
    );
  }
  let out = `<rect width="${WIDTH}" height="${HEIGHT}" fill="url(#bg)"/>`;
  if (kind === "clutter") {
    const k = rng.int(2, 5);
    for (let i = 0; i < k; i++) {
      const c = randomColor(rng, [0.1, 0.7], [0.2, 0.9]);
      defs.push(
        `<radialGradient id="cl${i}"><stop offset="0" stop-color="${
          shade(c, 0)
        }" stop-opacity="${
          n(rng.uniform(0.5, 0.9))
        }"/><stop offset="1" stop-color="${
          shade(c, 0)
        }" stop-opacity="0"/></radialGradient>`,
      );
      out += `<ellipse cx="${n(rng.uniform(0, WIDTH))}" cy="${
        n(rng.uniform(0, HEIGHT * 0.8))
      }" rx="${n(rng.uniform(10, 35))}" ry="${
        n(rng.uniform(10, 35))
      }" fill="url(#cl${i})"/>`;
    }
  }
  return out;
}

/**
 * Draws one portrait. Every random choice comes from `rng`, so the same (labels, appearance, rng seed)
 * always gives the same SVG string.
 */
export function portraitSvg(
  labels: Labels,
  look: Appearance,
  rng: Rng,
): string {
  const female = labels.gender === "female";
  const defs: string[] = [];
  const parts: string[] = [];
  parts.push(background(rng, defs));

  // ---- geometry (local frame: origin between the eyes) ----
  const fw = rng.clippedNormal(female ? 16.3 : 17.4, 1.0, 14.5, 20); // half face width at cheekbones
  const top = rng.clippedNormal(female ? 26.5 : 27.5, 1.3, 23, 31); // skull top above the eye line
  const chinY = rng.clippedNormal(female ? 26.5 : 28.8, 1.3, 23, 33);
  const jaw = rng.clippedNormal(female ? 0.7 : 0.84, 0.055, 0.55, 0.96);
  const jw = fw * jaw;
  const jy = rng.clippedNormal(17, 1.4, 13, 21);
  const cw = rng.clippedNormal(female ? 3.4 : 5.4, 0.9, 1.8, 8.5); // half chin width
  const yaw = rng.normal(0, 0.06); // head turn: features shift sideways
  const fx = yaw * fw; // feature x offset
  const nw = rng.clippedNormal(female ? 7.6 : 9.6, 0.8, 6, 12); // half neck width

  const skin = skinHsl(rng);
  const skinC = shade(skin, 0);
  const lightSide = rng.chance(0.5) ? 1 : -1;

  // ---- pose ----
  const scale = rng.clippedNormal(1.13, 0.06, 0.98, 1.3);
  const rot = rng.normal(0, 4);
  const cx = WIDTH / 2 + rng.normal(0, 2.3);
  const cy = 50 + rng.normal(0, 2.0);

  // ---- hair decisions ----
  const hair = hairHsl(look.color, rng);
  const wavy = look.texture === "wavy";
  const length = look.bald
    ? "none"
    : female
    ? rng.weighted({ long: 0.7, medium: 0.17, short: 0.13 })
    : rng.weighted({ short: 0.82, medium: 0.1, long: 0.08 });
  const vol = length === "short"
    ? rng.uniform(1.2, female ? 4 : 3.5)
    : rng.uniform(2.5, 5.5); // hair thickness over the skull

  const g: string[] = [];

  // ---- torso and clothes ----
  const shoulderW = rng.clippedNormal(female ? 38 : 45, 3, 30, 54);
  const y0 = chinY + rng.clippedNormal(9.5, 1.8, 6, 14);
  const cloth = randomColor(rng, [0, 0.65], [0.08, 0.75]);
  defs.push(
    `<linearGradient id="cloth" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${
      shade(cloth, 0.06)
    }"/><stop offset="1" stop-color="${
      shade(cloth, -0.08)
    }"/></linearGradient>`,
  );
  g.push(
    `<path d="M${n(-shoulderW - 12)} 90L${n(-shoulderW - 6)} ${n(y0 + 14)}C${
      n(-shoulderW)
    } ${n(y0 + 2)} ${n(-nw - 10)} ${n(y0 - 1)} ${n(-nw - 2)} ${n(y0 - 3)}L${
      n(nw + 2)
    } ${n(y0 - 3)}C${n(nw + 10)} ${n(y0 - 1)} ${n(shoulderW)} ${n(y0 + 2)} ${
      n(shoulderW + 6)
    } ${n(y0 + 14)}L${n(shoulderW + 12)} 90Z" fill="url(#cloth)"/>`,
  );

  // ---- long hair behind the head ----
  const hairFill = shade(hair, 0);
  defs.push(
    `<linearGradient id="hair" x1="0" y1="0" x2="${
      n(0.3 * lightSide)
    }" y2="1"><stop offset="0" stop-color="${
      shade(hair, Math.min(0.12, 0.5 * (1 - hair.l)))
    }"/><stop offset="0.45" stop-color="${hairFill}"/><stop offset="1" stop-color="${
      shade(hair, -Math.min(0.08, hair.l * 0.4))
    }"/></linearGradient>`,
  );
  const waveAmp = wavy ? rng.uniform(1.0, 2.2) : 0;
  const waveLen = wavy ? rng.uniform(5, 9) : 10;
  const jitter = () => (wavy ? rng.normal(0, 0.25) : rng.normal(0, 0.12));

  if (length === "long" || length === "medium") {
    const bottom = length === "long"
      ? rng.clippedNormal(chinY + 24, 9, chinY + 8, 75)
      : rng.clippedNormal(chinY - 2, 4, 8, chinY + 6);
    const flare1 = rng.uniform(2, 6) + (wavy ? 2 : 0);
    const flare2 = rng.uniform(3, 9) + (wavy ? 3 : 0);
    const side: Pt[] = [
      ...arc(fw + vol, top + vol, 0, -Math.PI / 2, 0, 8),
      [fw + vol + flare1 * 0.6, chinY * 0.5],
      [fw + vol + flare1, Math.min(chinY, bottom - 2)],
      [fw + vol + flare2, bottom],
    ];
    let right = resample(side, 2);
    let left = mirror(right);
    if (wavy) {
      right = waveEdge(
        right,
        waveAmp * 1.3,
        waveLen * 1.4,
        rng.uniform(0, 6.3),
        -1,
        jitter,
      );
      left = waveEdge(
        left,
        waveAmp * 1.3,
        waveLen * 1.4,
        rng.uniform(0, 6.3),
        -1,
        jitter,
      );
    }
    // Bottom edge from right to left: cut (straight) or a few tips/curls.
    const bottomPts: Pt[] = [];
    const bw = fw + vol + flare2;
    const k = 6;
    for (let i = 1; i < k; i++) {
      const x = bw - (2 * bw * i) / k;
      const y = bottom - (wavy ? rng.uniform(0, 4) : rng.uniform(0, 1.5)) -
        4 * Math.sin((Math.PI * i) / k) * (length === "long" ? 0.2 : 1);
      bottomPts.push([x, y]);
    }
    // `left` runs bottom->top, `right` top->bottom; the top point is shared.
    const backPath = smoothPath(
      [...left.slice(0, -1), ...right, ...bottomPts],
      true,
    );
    defs.push(`<clipPath id="backclip"><path d="${backPath}"/></clipPath>`);
    g.push(
      `<path d="${backPath}" fill="${
        shade(hair, -Math.min(0.06, hair.l * 0.3))
      }"/>`,
    );
    g.push(
      `<g clip-path="url(#backclip)">${
        strands(
          rng,
          hair,
          wavy,
          -fw - vol - flare2,
          fw + vol + flare2,
          -top,
          bottom,
          10,
          fw * 0.75,
        )
      }</g>`,
    );
  }

  // ---- neck ----
  defs.push(
    `<linearGradient id="neck" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${
      shade(skin, -0.14)
    }"/><stop offset="1" stop-color="${shade(skin, -0.04)}"/></linearGradient>`,
  );
  g.push(
    `<rect x="${n(-nw)}" y="${n(jy - 4)}" width="${n(2 * nw)}" height="${
      n(y0 - jy + 8)
    }" fill="url(#neck)"/>`,
  );
  const neckline = rng.weighted({ round: 0.4, v: 0.3, high: 0.3 });
  if (neckline === "round") {
    g.push(
      `<ellipse cx="0" cy="${n(y0 - 3)}" rx="${
        n(nw + rng.uniform(1, 6))
      }" ry="${n(rng.uniform(3, 8))}" fill="${shade(skin, -0.06)}"/>`,
    );
  } else if (neckline === "v") {
    g.push(
      `<path d="M${n(-nw - 2)} ${n(y0 - 3.2)}L0 ${n(y0 + rng.uniform(5, 16))}L${
        n(nw + 2)
      } ${n(y0 - 3.2)}Z" fill="${shade(skin, -0.06)}"/>`,
    );
  }
  if (!female && neckline !== "round" && rng.chance(0.35)) {
    // shirt collar
    const col = rng.chance(0.6) ? "#eeeeee" : shade(cloth, 0.2);
    g.push(
      `<path d="M${n(-nw - 3)} ${n(y0 - 4)}L${n(-2)} ${n(y0 + 6)}L${
        n(-nw - 6)
      } ${n(y0 + 3)}Z" fill="${col}"/>` +
        `<path d="M${n(nw + 3)} ${n(y0 - 4)}L2 ${n(y0 + 6)}L${n(nw + 6)} ${
          n(y0 + 3)
        }Z" fill="${col}"/>`,
    );
  }

  // ---- ears ----
  const fringeSlot = g.length; // a bald head's side fringe goes behind the ears and face
  const earY = rng.normal(3, 0.8);
  for (const sx of [-1, 1]) {
    g.push(
      `<ellipse cx="${n(sx * (fw - 0.6))}" cy="${n(earY)}" rx="2.8" ry="${
        n(rng.uniform(4.8, 6))
      }" fill="${shade(skin, -0.07)}"/>`,
    );
  }

  // ---- face ----
  const rightFace: Pt[] = [
    [0, -top],
    [fw * 0.6, -top * 0.93],
    [fw * 0.92, -top * 0.62],
    [fw, -top * 0.22],
    [fw * 0.99, 4],
    [fw + (jw - fw) * 0.55, jy * 0.74],
    [jw, jy],
    [jw + (cw - jw) * 0.55, jy + (chinY - jy) * 0.68],
    [cw, chinY - 0.6],
    [0, chinY],
  ];
  const facePts = [...rightFace, ...mirror(rightFace.slice(1, -1))];
  const facePath = smoothPath(facePts, true);
  defs.push(
    `<radialGradient id="face" cx="${
      n(0.5 + 0.12 * lightSide)
    }" cy="0.45" r="0.62"><stop offset="0" stop-color="${
      shade(skin, 0.05)
    }"/><stop offset="0.7" stop-color="${skinC}"/><stop offset="1" stop-color="${
      shade(skin, -0.1)
    }"/></radialGradient>`,
  );
  g.push(`<path d="${facePath}" fill="url(#face)"/>`);
  if (look.bald) {
    g.push(
      `<ellipse cx="${n(lightSide * 4)}" cy="${n(-top * 0.78)}" rx="${
        n(fw * 0.45)
      }" ry="${n(top * 0.16)}" fill="#ffffff" fill-opacity="${
        n(rng.uniform(0.08, 0.22))
      }"/>`,
    );
  }

  // ---- make-up decisions ----
  const makeup = female ? rng.chance(0.62) : rng.chance(0.02);
  const lipstick = makeup && rng.chance(0.85);
  const eyeShadow = makeup && rng.chance(0.6);
  const eyeliner = makeup && rng.chance(0.75);
  const blush = makeup && rng.chance(0.5);

  if (blush) {
    const bc = hsl(rng.uniform(345, 370), 0.6, 0.6);
    for (const sx of [-1, 1]) {
      g.push(
        `<ellipse cx="${
          n(sx * fw * 0.55 + fx)
        }" cy="11" rx="4.5" ry="3" fill="${bc}" fill-opacity="${
          n(rng.uniform(0.12, 0.25))
        }"/>`,
      );
    }
  }

  // ---- nose ----
  const noseY = rng.clippedNormal(11, 0.9, 8.5, 13.5);
  const noseW = rng.clippedNormal(female ? 2.0 : 2.4, 0.3, 1.4, 3.2);
  const nfx = fx * 1.4;
  const shadowSide = -lightSide;
  g.push(
    `<path d="M${n(nfx + shadowSide * 1.2)} 0Q${n(nfx + shadowSide * 2.0)} ${
      n(noseY * 0.6)
    } ${n(nfx + shadowSide * noseW)} ${n(noseY - 0.8)}" stroke="${
      shade(skin, -0.22)
    }" stroke-width="0.9" fill="none" stroke-opacity="0.45"/>`,
  );
  g.push(
    `<path d="M${n(nfx - noseW - 0.6)} ${n(noseY - 0.2)}Q${n(nfx)} ${
      n(noseY + 1.8)
    } ${n(nfx + noseW + 0.6)} ${n(noseY - 0.2)}" stroke="${
      shade(skin, -0.25)
    }" stroke-width="0.8" fill="none" stroke-opacity="0.5"/>`,
  );
  for (const sx of [-1, 1]) {
    g.push(
      `<ellipse cx="${n(nfx + sx * noseW * 0.7)}" cy="${
        n(noseY + 0.2)
      }" rx="0.9" ry="0.5" fill="${shade(skin, -0.35)}" fill-opacity="0.6"/>`,
    );
  }
  g.push(
    `<circle cx="${n(nfx - shadowSide * 0.4)}" cy="${
      n(noseY - 1.8)
    }" r="1.2" fill="#ffffff" fill-opacity="0.12"/>`,
  );

  // ---- facial hair (men) ----
  const mouthY = rng.clippedNormal(noseY + 8.5, 0.8, noseY + 6, chinY - 4);
  const mw = rng.clippedNormal(female ? 5.1 : 5.6, 0.5, 3.8, 7.2);
  const beardKind = female ? "none" : rng.weighted({
    none: 0.5,
    stubble: 0.15,
    beard: 0.17,
    goatee: 0.09,
    moustache: 0.09,
  });
  const beardHsl: Hsl = {
    h: hair.h,
    s: hair.s,
    l: look.color === "blond" ? hair.l - 0.12 : hair.l - 0.03,
  };
  const beardC = shade(beardHsl, 0);
  if (beardKind === "stubble" || beardKind === "beard") {
    const ex = beardKind === "beard" ? rng.uniform(0.8, 3) : 0.2;
    const outer: Pt[] = [
      [fw * 0.98, 2.5],
      [fw * 0.99 + ex * 0.5, 6],
      [fw + (jw - fw) * 0.55 + ex, jy * 0.74],
      [jw + ex, jy + ex * 0.5],
      [jw + (cw - jw) * 0.55 + ex * 0.7, jy + (chinY - jy) * 0.68 + ex],
      [cw + ex * 0.5, chinY - 0.6 + ex * 1.3],
      [0, chinY + ex * 1.5],
    ];
    // inner edge, right to left: cheek line down to the mouth corner, (beard: over the upper lip), back up
    const cheek: Pt[] = [[fw * 0.86, 7.5], [fw * 0.6, 13.5], [
      mw + 1.6,
      mouthY - 1.8,
    ]];
    const lip: Pt[] = beardKind === "beard"
      ? [[mw * 0.6, noseY + 2.6], [0, noseY + 2]]
      : [[0, mouthY - 2.2]];
    // left top -> chin -> right top
    let o = resample([
      ...outer.map(([x, y]) => [-x, y] as Pt),
      ...outer.slice(0, -1).reverse(),
    ], 2);
    if (beardKind === "beard") {
      o = waveEdge(o, wavy ? 0.9 : 0.3, 4, rng.uniform(0, 6.3), -1, jitter);
    }
    const inner = [
      ...cheek,
      ...lip,
      ...mirror(lip.length > 1 ? lip.slice(0, 1) : []),
      ...mirror(cheek),
    ];
    const path = smoothPath([...o, ...inner], true);
    g.push(
      `<path d="${path}" fill="${beardC}" fill-opacity="${
        n(
          beardKind === "beard"
            ? rng.uniform(0.82, 0.96)
            : rng.uniform(0.18, 0.32),
        )
      }"/>`,
    );
  }
  if (beardKind === "goatee") {
    const pts: Pt[] = [
      [fx - mw - 1.5, mouthY - 2],
      [fx - cw - 1.5, chinY - 2],
      [fx, chinY + 1.5],
      [fx + cw + 1.5, chinY - 2],
      [fx + mw + 1.5, mouthY - 2],
      [fx, mouthY + 2.8],
    ];
    g.push(
      `<path d="${smoothPath(pts, true)}" fill="${beardC}" fill-opacity="${
        n(rng.uniform(0.75, 0.95))
      }"/>`,
    );
  }

  // ---- mouth ----
  const smile = rng.normal(0.6, 0.7);
  const mouthKind = rng.weighted({ closed: 0.55, teeth: 0.4, open: 0.05 });
  const lipC = lipstick
    ? rng.choice([
      "#b01f36",
      "#c2456a",
      "#8a1f40",
      "#d0604f",
      "#a8584e",
      "#9c2a2a",
      "#e0707e",
    ])
    : hsl(
      skin.h - rng.uniform(8, 16),
      skin.s + 0.08,
      skin.l - rng.uniform(0.1, 0.2),
    );
  const lipU = rng.uniform(0.6, female ? 1.6 : 1.1);
  const lipL = rng.uniform(0.8, female ? 2.0 : 1.5);
  {
    const x0 = fx - mw, x1 = fx + mw, y = mouthY;
    const cornerY = y - smile;
    const open = mouthKind === "closed"
      ? 0
      : mouthKind === "teeth"
      ? rng.uniform(1.6, 3.2)
      : rng.uniform(2, 4);
    const upper = `M${n(x0)} ${n(cornerY)}Q${n(fx - mw * 0.5)} ${
      n(y - 1.8 - lipU)
    } ${n(fx)} ${n(y - 1.1 - lipU * 0.6)}Q${n(fx + mw * 0.5)} ${
      n(y - 1.8 - lipU)
    } ${n(x1)} ${n(cornerY)}Q${n(fx)} ${n(y + 0.6 - smile * 0.3)} ${n(x0)} ${
      n(cornerY)
    }Z`;
    if (open > 0) {
      const bottomY = y + open * 2;
      g.push(
        `<path d="M${n(x0)} ${n(cornerY)}Q${n(fx)} ${n(y + 0.3)} ${n(x1)} ${
          n(cornerY)
        }Q${n(fx)} ${n(bottomY)} ${n(x0)} ${n(cornerY)}Z" fill="#3a1515"/>`,
      );
      if (mouthKind === "teeth") {
        g.push(
          `<path d="M${n(x0 + 0.8)} ${n(cornerY + 0.2)}Q${n(fx)} ${
            n(y + 0.3)
          } ${n(x1 - 0.8)} ${n(cornerY + 0.2)}Q${n(fx)} ${n(y + open * 1.2)} ${
            n(x0 + 0.8)
          } ${n(cornerY + 0.2)}Z" fill="${
            hsl(40, 0.25, rng.uniform(0.78, 0.9))
          }"/>`,
        );
      }
      g.push(
        `<path d="M${n(x0)} ${n(cornerY)}Q${n(fx)} ${n(bottomY)} ${n(x1)} ${
          n(cornerY)
        }Q${n(fx)} ${n(bottomY + lipL * 2.2)} ${n(x0)} ${
          n(cornerY)
        }Z" fill="${lipC}"/>`,
      );
    } else {
      g.push(
        `<path d="M${n(x0)} ${n(cornerY)}Q${n(fx)} ${
          n(y + 0.6 - smile * 0.3)
        } ${n(x1)} ${n(cornerY)}Q${n(fx)} ${n(y + 0.6 + lipL * 2)} ${n(x0)} ${
          n(cornerY)
        }Z" fill="${lipC}"/>`,
      );
      g.push(
        `<path d="M${n(x0)} ${n(cornerY)}Q${n(fx)} ${
          n(y + 0.6 - smile * 0.3)
        } ${n(x1)} ${n(cornerY)}" stroke="${
          shade(skin, -0.4)
        }" stroke-width="0.6" fill="none" stroke-opacity="0.7"/>`,
      );
    }
    g.push(`<path d="${upper}" fill="${lipC}"/>`);
    g.push(`<path d="${upper}" fill="#000000" fill-opacity="0.12"/>`);
  }
  if (
    beardKind === "moustache" || beardKind === "goatee" ||
    (beardKind === "beard" && rng.chance(0.5))
  ) {
    const lo = mouthY - 1.3 - lipU * 0.5; // just above the upper lip
    const pts: Pt[] = [
      [fx - mw - 1, mouthY - smile * 0.6 + 0.6],
      [fx - mw * 0.7, noseY + 2.9],
      [fx - 1.6, noseY + 1.9],
      [fx + 1.6, noseY + 1.9],
      [fx + mw * 0.7, noseY + 2.9],
      [fx + mw + 1, mouthY - smile * 0.6 + 0.6],
      [fx + mw * 0.5, lo],
      [fx, lo + 0.3],
      [fx - mw * 0.5, lo],
    ];
    g.push(
      `<path d="${smoothPath(pts, true)}" fill="${beardC}" fill-opacity="${
        n(rng.uniform(0.8, 0.96))
      }"/>`,
    );
  }

  // ---- eyes ----
  const eyeDX = fw * rng.clippedNormal(0.43, 0.02, 0.37, 0.5);
  const erx = rng.clippedNormal(female ? 3.5 : 3.3, 0.3, 2.6, 4.4);
  const ery = rng.clippedNormal(female ? 1.8 : 1.6, 0.25, 0.9, 2.4) *
    (smile > 1.4 ? 0.8 : 1);
  const iris = rng.weighted({
    "#3b2414": 0.55,
    "#5a3a1e": 0.2,
    "#4a6f93": 0.11,
    "#4f7048": 0.08,
    "#6b6b6b": 0.06,
  });
  const gaze = rng.normal(0, 0.5);
  const eyeWhite = hsl(35, 0.2, rng.uniform(0.82, 0.93));
  const lidC = eyeliner ? "#141010" : shade(skin, -0.45);
  const shadowC = eyeShadow
    ? rng.choice([
      "#6b4a3a",
      "#5c3d66",
      "#3f4f6e",
      "#8a6a3a",
      "#3a3232",
      "#7a4a55",
    ])
    : shade(skin, -0.18);
  for (const sx of [-1, 1]) {
    const ex = fx + sx * eyeDX;
    g.push(
      `<ellipse cx="${n(ex)}" cy="${n(-ery * 0.9)}" rx="${n(erx * 1.25)}" ry="${
        n(ery * 1.5)
      }" fill="${shadowC}" fill-opacity="${
        n(eyeShadow ? rng.uniform(0.35, 0.6) : 0.3)
      }"/>`,
    );
    g.push(
      `<ellipse cx="${n(ex)}" cy="0" rx="${n(erx)}" ry="${
        n(ery)
      }" fill="${eyeWhite}"/>`,
    );
    const ir = Math.min(ery, 1.75);
    g.push(`<circle cx="${n(ex + gaze)}" cy="0" r="${n(ir)}" fill="${iris}"/>`);
    g.push(
      `<circle cx="${n(ex + gaze)}" cy="0" r="${
        n(ir * 0.45)
      }" fill="#080606"/>`,
    );
    g.push(
      `<circle cx="${
        n(ex + gaze - 0.5 * lightSide * -1)
      }" cy="-0.5" r="0.35" fill="#ffffff" fill-opacity="0.8"/>`,
    );
    const lw = eyeliner ? rng.uniform(0.9, 1.3) : 0.7;
    g.push(
      `<path d="M${n(ex - erx - 0.2)} 0.2Q${n(ex)} ${n(-ery * 2.1)} ${
        n(ex + erx + 0.2)
      } 0.2${
        eyeliner ? `L${n(ex + sx * (erx + 1.3))} ${n(-ery * 0.9)}` : ""
      }" stroke="${lidC}" stroke-width="${
        n(lw)
      }" fill="none" stroke-linecap="round"/>`,
    );
  }

  // ---- brows ----
  const browHsl: Hsl = look.color === "blond" || look.color === "gray"
    ? { h: hair.h, s: hair.s * 0.8, l: hair.l - rng.uniform(0.15, 0.3) }
    : { h: hair.h, s: hair.s, l: hair.l * 0.9 };
  const browC = shade(browHsl, 0);
  const browY = -ery - rng.clippedNormal(female ? 3.6 : 3.0, 0.5, 2.2, 5);
  const arch = rng.clippedNormal(female ? 1.5 : 0.8, 0.4, 0, 2.6);
  const browW = rng.clippedNormal(female ? 1.0 : 1.55, 0.22, 0.6, 2.3);
  for (const sx of [-1, 1]) {
    const xi = fx + sx * (eyeDX - erx * 0.95),
      xo = fx + sx * (eyeDX + erx * 1.25);
    g.push(
      `<path d="M${n(xi)} ${n(browY + 0.3)}Q${
        n(fx + sx * (eyeDX + erx * 0.2))
      } ${n(browY - arch * 1.6)} ${n(xo)} ${
        n(browY + 0.9)
      }" stroke="${browC}" stroke-width="${
        n(browW)
      }" fill="none" stroke-linecap="round" stroke-opacity="0.92"/>`,
    );
  }

  // ---- glasses ----
  if (rng.chance(0.07)) {
    const gc = rng.choice(["#111111", "#3a2a1a", "#777777", "#8a6a30"]);
    const sw = rng.uniform(0.6, 1.1);
    const gx = erx + rng.uniform(1.2, 2.2), gy = ery + rng.uniform(1.6, 2.4);
    for (const sx of [-1, 1]) {
      const ex = fx + sx * eyeDX;
      g.push(
        `<rect x="${n(ex - gx)}" y="${n(-gy)}" width="${n(2 * gx)}" height="${
          n(2 * gy)
        }" rx="${
          n(gy * 0.8)
        }" fill="#ffffff" fill-opacity="0.08" stroke="${gc}" stroke-width="${
          n(sw)
        }"/>`,
      );
      g.push(
        `<path d="M${n(ex + sx * gx)} -0.5L${
          n(sx * fw)
        } -1" stroke="${gc}" stroke-width="${n(sw)}"/>`,
      );
    }
    g.push(
      `<path d="M${n(fx - eyeDX + gx)} -0.5Q${n(fx)} -2 ${
        n(fx + eyeDX - gx)
      } -0.5" stroke="${gc}" stroke-width="${n(sw)}" fill="none"/>`,
    );
  }

  // ---- hair on top / in front ----
  if (!look.bald && length !== "none") {
    g.push(
      frontHair(rng, {
        fw,
        top,
        chinY,
        vol,
        hair,
        wavy,
        waveAmp,
        waveLen,
        length,
        female,
        jitter,
        defs,
      }),
    );
  } else {
    // bald / receding: side fringe around the ears and the back of the head
    if (rng.chance(labels.hairColor === "bald" ? 0.75 : 1)) {
      const fringeTop = rng.uniform(-top * 0.5, -top * 0.25);
      const thick = rng.uniform(1.2, 2.8);
      const op = n(rng.uniform(0.8, 0.97));
      // band around the back of the head, visible only outside the face outline
      const band: Pt[] = [
        [fw + thick, fringeTop + 1],
        [fw + thick + 0.4, earY + 2],
        [fw * 0.7, earY + 7],
        [-fw * 0.7, earY + 7],
        [-fw - thick - 0.4, earY + 2],
        [-fw - thick, fringeTop + 1],
        [0, fringeTop + 4],
      ];
      g.splice(
        fringeSlot,
        0,
        `<path d="${
          smoothPath(band, true)
        }" fill="${hairFill}" fill-opacity="${op}"/>`,
      );
      for (const sx of [-1, 1]) {
        // thin sideburn over the face edge, in front of the ear
        const pts: Pt[] = [
          [sx * (fw - 0.9), fringeTop + 2],
          [sx * (fw + 0.5), fringeTop + 1.5],
          [sx * (fw + 0.3), earY - 1],
          [sx * (fw - 1.3), earY - 2],
        ];
        g.push(
          `<path d="${
            smoothPath(pts, true)
          }" fill="${hairFill}" fill-opacity="${op}"/>`,
        );
      }
    }
    if (labels.hairColor !== "bald" && rng.chance(0.5)) {
      // thinning hair on top
      const thin = arc(
        fw + 0.8,
        top + 0.8,
        0,
        -Math.PI * 0.95,
        -Math.PI * 0.05,
        10,
      );
      g.push(
        `<path d="${
          smoothPath(thin, false)
        }" stroke="${hairFill}" stroke-width="2.2" fill="none" stroke-opacity="0.35"/>`,
      );
    }
  }

  // ---- hat (only behind an n/a hair colour) ----
  if (look.hat) {
    const hc = randomColor(rng, [0.1, 0.7], [0.12, 0.6]);
    const brimY = -top * rng.uniform(0.4, 0.6);
    const pts: Pt[] = [
      ...arc(
        fw + vol + 1,
        top + vol + rng.uniform(1, 4),
        0,
        -Math.PI * 1.0,
        0,
        12,
      ).filter((p) => p[1] <= brimY),
    ];
    pts.push([fw + vol + 1.5, brimY + 2.5], [-fw - vol - 1.5, brimY + 2.5]);
    g.push(`<path d="${smoothPath(pts, true)}" fill="${shade(hc, 0)}"/>`);
    g.push(
      `<rect x="${n(-fw - vol - 1.5)}" y="${n(brimY - 1)}" width="${
        n(2 * (fw + vol + 1.5))
      }" height="3.5" rx="1.5" fill="${shade(hc, -0.1)}"/>`,
    );
  }

  // ---- earrings ----
  if (rng.chance(female ? 0.22 : 0.03)) {
    const ec = rng.choice(["#d4af37", "#c0c0c0", "#e8e0d0"]);
    for (const sx of [-1, 1]) {
      g.push(
        `<circle cx="${n(sx * (fw - 0.2))}" cy="${n(earY + 5.8)}" r="${
          n(rng.uniform(0.6, 1.3))
        }" fill="${ec}"/>`,
      );
    }
  }

  parts.push(
    `<g transform="translate(${n(cx)} ${n(cy)}) rotate(${n(rot)}) scale(${
      n(scale)
    })">${g.join("")}</g>`,
  );

  // ---- lighting and white balance over everything ----
  const ang = rng.uniform(0, 2 * Math.PI);
  defs.push(
    `<linearGradient id="light" x1="${n(0.5 - 0.5 * Math.cos(ang))}" y1="${
      n(0.5 - 0.5 * Math.sin(ang))
    }" x2="${n(0.5 + 0.5 * Math.cos(ang))}" y2="${
      n(0.5 + 0.5 * Math.sin(ang))
    }"><stop offset="0" stop-color="#ffffff" stop-opacity="${
      n(rng.uniform(0, 0.22))
    }"/><stop offset="0.5" stop-color="#808080" stop-opacity="0"/><stop offset="1" stop-color="#000000" stop-opacity="${
      n(rng.uniform(0.04, 0.35))
    }"/></linearGradient>`,
  );
  parts.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="url(#light)"/>`);
  if (rng.chance(0.6)) {
    const tint = rng.chance(0.75)
      ? hsl(rng.uniform(20, 50), 0.8, 0.5)
      : hsl(rng.uniform(190, 230), 0.7, 0.5);
    parts.push(
      `<rect width="${WIDTH}" height="${HEIGHT}" fill="${tint}" fill-opacity="${
        n(rng.uniform(0.02, 0.1))
      }"/>`,
    );
  }

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}"><defs>${
    defs.join("")
  }</defs>${parts.join("")}</svg>`;
}

/** Thin strands inside a hair region (call inside a clip group). */
function strands(
  rng: Rng,
  hair: Hsl,
  wavy: boolean,
  x0: number,
  x1: number,
  y0: number,
  y1: number,
  k: number,
  hidden = 0, // strands are not drawn in |x| < hidden (covered by the face)
): string {
  let out = "";
  for (let i = 0; i < k; i++) {
    let x = x0 + ((x1 - x0) * (i + rng.uniform(0.1, 0.9))) / k;
    if (hidden > 0) {
      x = Math.sign(x || 1) *
        (hidden +
          (Math.abs(x) / Math.max(Math.abs(x0), Math.abs(x1))) *
            (Math.max(Math.abs(x0), Math.abs(x1)) - hidden));
    }
    const light = rng.chance(0.5);
    const c = shade(
      hair,
      light
        ? Math.min(0.14, 0.6 * (1 - hair.l))
        : -Math.min(0.1, hair.l * 0.45),
    );
    const pts: Pt[] = [];
    const amp = wavy ? rng.uniform(0.8, 1.8) : rng.uniform(0, 0.3);
    const wl = wavy ? rng.uniform(5, 9) : 20;
    const lean = (x / Math.max(1, Math.abs(x1 - x0) / 2)) * rng.uniform(0, 3);
    // Wavy strands are sampled only at the crests (the spline rounds them); straight ones every 6 px.
    const step = wavy ? wl / 2 : 6;
    const start = y0 - rng.uniform(0, step);
    for (let j = 0, y = start; y <= y1 + step - 0.1; j++, y += step) {
      const t = Math.max(0, (y - y0) / Math.max(1, y1 - y0));
      const off = wavy ? (j % 2 === 0 ? amp : -amp) : amp * Math.sin(y / 7);
      pts.push([x * (0.55 + 0.45 * Math.min(1, t * 2)) + lean * t + off, y]);
    }
    out += `<path d="${smoothPath(pts, false)}" stroke="${c}" stroke-width="${
      n(rng.uniform(0.5, 1.0))
    }" fill="none" stroke-opacity="${n(rng.uniform(0.3, 0.65))}"/>`;
  }
  return out;
}

interface FrontHairOpts {
  fw: number;
  top: number;
  chinY: number;
  vol: number;
  hair: Hsl;
  wavy: boolean;
  waveAmp: number;
  waveLen: number;
  length: string;
  female: boolean;
  jitter: () => number;
  defs: string[];
}

/** The hair cap over the skull with the hairline / fringe, and face-framing locks for longer hair. */
function frontHair(rng: Rng, o: FrontHairOpts): string {
  const { fw, top, chinY, vol, hair, wavy, length, female } = o;
  const longish = length !== "short";
  // Outer edge from the left side (bottom) over the top to the right side.
  const sideBottom = longish ? rng.uniform(2, chinY - 4) : rng.uniform(-4, 5);
  const outerRight: Pt[] = [
    ...arc(fw + vol, top + vol, 0, -Math.PI / 2, 0, 8),
    [fw + vol * 0.7, sideBottom],
  ];
  const outerLeft = mirror(outerRight);
  let outer = resample([...outerLeft.slice(0, -1), ...outerRight], 2);
  if (wavy) {
    outer = waveEdge(
      outer,
      o.waveAmp * (longish ? 1 : 0.7),
      o.waveLen * (longish ? 1 : 0.6),
      rng.uniform(0, 6.3),
      -1,
      o.jitter,
    );
  } else {outer = outer.map(([x, y]) =>
      [x + o.jitter() * 0.5, y + o.jitter() * 0.5] as Pt
    );}

  // Hairline (inner edge), right to left.
  const style = female
    ? rng.weighted({ middle: 0.45, side: 0.3, bangs: 0.25 })
    : rng.weighted({ side: 0.5, back: 0.3, bangs: 0.12, middle: 0.08 });
  const inset = longish ? rng.uniform(0.5, 3.8) : 0.4;
  const hl = -top * rng.uniform(0.5, 0.64); // natural hairline height
  let hairline: Pt[];
  switch (style) {
    case "middle": {
      const part = -top * rng.uniform(0.72, 0.88);
      hairline = [
        [fw - inset, longish ? sideBottom - 1 : sideBottom],
        [fw - inset - 0.5, -6],
        [fw * 0.6, hl + 3],
        [fw * 0.2, part + 3],
        [0, part],
        [-fw * 0.2, part + 3],
        [-fw * 0.6, hl + 3],
        [-fw + inset + 0.5, -6],
        [-fw + inset, longish ? sideBottom - 1 : sideBottom],
      ];
      break;
    }
    case "bangs": {
      const by = -rng.uniform(5.5, 9.5);
      hairline = [
        [fw - inset, longish ? sideBottom - 1 : sideBottom],
        [fw - inset - 0.5, by],
        ...resample([[fw * 0.7, by - 0.5], [-fw * 0.7, by - 0.5]], 2).map((
          [x, y],
        ) =>
          [
            x,
            y + (wavy ? 1.0 * Math.sin(x * 1.3) : 0) +
            rng.normal(0, wavy ? 0.35 : 0.15),
          ] as Pt
        ),
        [-fw + inset + 0.5, by],
        [-fw + inset, longish ? sideBottom - 1 : sideBottom],
      ];
      break;
    }
    case "back": {
      hairline = [
        [fw - 0.5, sideBottom],
        [fw - 0.8, -8],
        [fw * 0.55, hl - 1.5],
        [0, hl - 2.5],
        [-fw * 0.55, hl - 1.5],
        [-fw + 0.8, -8],
        [-fw + 0.5, sideBottom],
      ];
      break;
    }
    default: {
      // side part with a swept fringe
      const s = rng.chance(0.5) ? 1 : -1;
      const low = -rng.uniform(7, 13);
      hairline = [
        [fw - inset, longish ? sideBottom - 1 : sideBottom],
        [fw - inset - 0.5, -6],
        [s * fw * 0.55, s > 0 ? low : hl],
        [s * fw * 0.05, (low + hl) / 2 - 1],
        [-s * fw * 0.45, s > 0 ? hl - 1 : low],
        [-fw + inset + 0.5, -6],
        [-fw + inset, longish ? sideBottom - 1 : sideBottom],
      ];
      if (s < 0) {
        // keep the right-to-left order of the points
        hairline = [
          hairline[0],
          hairline[1],
          [fw * 0.45, low],
          [-fw * 0.05, (low + hl) / 2 - 1],
          [-fw * 0.55, hl],
          hairline[5],
          hairline[6],
        ];
      }
    }
  }
  const shapePath = smoothPath([...outer, ...hairline], true);
  o.defs.push(`<clipPath id="frontclip"><path d="${shapePath}"/></clipPath>`);
  let out = `<path d="${shapePath}" fill="url(#hair)"/>`;
  out += `<g clip-path="url(#frontclip)">${
    strands(
      rng,
      hair,
      wavy,
      -fw - vol,
      fw + vol,
      -top - vol,
      longish ? chinY : sideBottom + 2,
      longish ? 11 : 9,
    )
  }</g>`;
  // a soft shadow line under the hairline
  out += `<path d="${
    smoothPath(hairline, false)
  }" stroke="#000000" stroke-width="1" fill="none" stroke-opacity="0.12"/>`;
  return out;
}
