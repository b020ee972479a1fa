// The fill modes of the re-framing resampler, on a synthetic tight crop: a 40x40 noise "photo" placed
// 1:1 in the middle of a 84x108 portrait, so 82% of the portrait lies outside the photo (as a
// 200x200 face crop re-framed like a Tiny Portrait). No nets, no real images.
import assert from "node:assert/strict";
import { BLUR_SIGMA, FILL_MODES, type FillMode } from "../../lib/faces/mod.ts";
import { outsideShare, resample, type RgbImage, type Similarity } from "../../lib/faces/_image.ts";
import { Rng } from "../../lib/util/rng.ts";

const W = 84, H = 108, SIDE = 40;
const X0 = 22, Y0 = 34; // where the photo lands in the portrait

function noisePhoto(seed: number): RgbImage {
  const rng = new Rng(seed);
  const data = new Uint8Array(SIDE * SIDE * 3);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(0, 255);
  return { data, width: SIDE, height: SIDE };
}

/** Output pixel (u, v) samples photo pixel (u - X0, v - Y0) exactly. */
const PLACE: Similarity = { cx: SIDE / 2, cy: SIDE / 2, ox: X0 + SIDE / 2, oy: Y0 + SIDE / 2, s: 1, angle: 0 };

const px = (img: Uint8Array, u: number, v: number, c: number) => img[(v * W + u) * 3 + c];

/** Over the band of rows [v0, v1) and all columns: variance across columns of the column means, and mean variance within a column. */
function stripeStats(img: Uint8Array, v0: number, v1: number): { across: number; within: number } {
  let across = 0, within = 0;
  for (let c = 0; c < 3; c++) {
    const means: number[] = [];
    for (let u = 0; u < W; u++) {
      let s = 0, s2 = 0;
      for (let v = v0; v < v1; v++) (s += px(img, u, v, c), s2 += px(img, u, v, c) ** 2);
      const m = s / (v1 - v0);
      means.push(m);
      within += s2 / (v1 - v0) - m * m;
    }
    const mm = means.reduce((a, b) => a + b, 0) / W;
    across += means.reduce((a, b) => a + (b - mm) ** 2, 0) / W;
  }
  return { across: across / 3, within: within / (3 * W) };
}

Deno.test("resample() with fill 'edge' smears the photo's top row into vertical stripes above a tight crop; mirror, blur and mean do not", () => {
  const photo = noisePhoto(3);
  const band = [0, Y0 - 2] as const; // the rows above the photo
  const edge = stripeStats(resample(photo, PLACE, W, H, "edge"), ...band);
  assert.ok(edge.within < 1e-9, `edge: every column above the photo is one colour (within-column variance ${edge.within})`);
  assert.ok(edge.across > 1000, `edge: the columns differ as the noise does (${edge.across})`);
  for (const fill of ["mirror", "blur", "mean"] as const) {
    const s = stripeStats(resample(photo, PLACE, W, H, fill), ...band);
    assert.ok(s.across <= 2 * s.within + 1, `${fill}: across-column variance ${s.across.toFixed(1)} vs within-column ${s.within.toFixed(1)} (stripes)`);
  }
});

Deno.test("resample() leaves the photo's own pixels identical in every fill mode, and outsideShare() counts the rest", () => {
  const photo = noisePhoto(5);
  const outs = FILL_MODES.map((f) => resample(photo, PLACE, W, H, f));
  for (let v = Y0; v < Y0 + SIDE; v++) {
    for (let u = X0; u < X0 + SIDE; u++) {
      for (let c = 0; c < 3; c++) {
        const want = photo.data[((v - Y0) * SIDE + (u - X0)) * 3 + c];
        outs.forEach((o, k) => assert.equal(px(o, u, v, c), want, `${FILL_MODES[k]} at (${u}, ${v})`));
      }
    }
  }
  assert.ok(Math.abs(outsideShare(photo, PLACE, W, H) - (1 - (SIDE * SIDE) / (W * H))) < 1e-9);
  assert.equal(outsideShare({ width: W, height: H }, { cx: W / 2, cy: H / 2, ox: W / 2, oy: H / 2, s: 1, angle: 0 }, W, H), 0);
});

Deno.test("resample() fill 'mirror' reflects the photo at its border; 'mean' paints its mean colour; 'blur' is a smoothed mirror", () => {
  const photo = noisePhoto(9);
  const mirror = resample(photo, PLACE, W, H, "mirror");
  // The row just above the photo is its top row, the one above that its second row, and so on.
  for (let k = 0; k < 5; k++) {
    for (let u = X0; u < X0 + SIDE; u++) assert.equal(px(mirror, u, Y0 - 1 - k, 0), photo.data[(k * SIDE + (u - X0)) * 3]);
  }
  const mean = resample(photo, PLACE, W, H, "mean");
  const avg = [0, 1, 2].map((c) => photo.data.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (SIDE * SIDE));
  for (const [u, v] of [[0, 0], [83, 107], [X0 + 5, 3], [2, Y0 + 5]]) {
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(px(mean, u, v, c) - avg[c]) <= 0.5, `mean at (${u}, ${v})`);
  }
  // Total variation of the band above the photo: the blur takes out most of the mirror's noise.
  const blur = resample(photo, PLACE, W, H, "blur");
  const tv = (img: Uint8Array) => {
    let t = 0;
    for (let v = 0; v < Y0 - 3 * BLUR_SIGMA; v++) for (let u = 1; u < W; u++) t += Math.abs(px(img, u, v, 1) - px(img, u - 1, v, 1));
    return t;
  };
  assert.ok(tv(blur) < 0.1 * tv(mirror), `blur TV ${tv(blur)} vs mirror TV ${tv(mirror)}`);
});

Deno.test("resample() fills a tilted portrait reaching many photo widths past the photo with photo colours only (no black gaps) in every mode", () => {
  const rng = new Rng(11);
  const data = new Uint8Array(SIDE * SIDE * 3).map(() => rng.int(100, 200));
  const photo = { data, width: SIDE, height: SIDE };
  const far: Similarity = { cx: SIDE / 2, cy: SIDE / 2, ox: W / 2, oy: H / 2, s: 3, angle: 0.3 };
  for (const fill of FILL_MODES) {
    const out = resample(photo, far, W, H, fill);
    assert.equal(out.length, W * H * 3);
    assert.ok(out.every((x) => x >= 100 && x <= 200), `${fill}: a value outside the photo's 100..200`);
  }
  assert.throws(() => resample(photo, PLACE, W, H, "wrap" as FillMode), /resample: expected fill to be one of edge, mirror, blur, mean, got 'wrap'/);
});
