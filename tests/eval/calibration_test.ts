import assert from "node:assert/strict";
import { calibration } from "../../lib/eval/mod.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("calibration() matches a hand-computed ECE over 4 bins", () => {
  // k = 2, 4 bins: (0, .25] (.25, .5] (.5, .75] (.75, 1]. All values exact in float32.
  const probs = new Float32Array([
    0.75, 0.25, // y 0: conf .75 right → bin 2
    0.625, 0.375, // y 1: conf .625 wrong → bin 2
    0.125, 0.875, // y 1: conf .875 right → bin 3
    1.0, 0.0, // y 1: conf 1 wrong → bin 3
    0.5, 0.5, // y 0: tie → class 0, conf .5 right → bin 1
    0.9, 0.1, // missing label → ignored
  ]);
  const c = calibration([0, 1, 1, 1, 0, -1], probs, 2, 4);
  assert.deepEqual(c.bins, [
    { lo: 0, hi: 0.25, count: 0, confidence: 0, accuracy: 0 },
    { lo: 0.25, hi: 0.5, count: 1, confidence: 0.5, accuracy: 1 },
    { lo: 0.5, hi: 0.75, count: 2, confidence: 0.6875, accuracy: 0.5 }, // (.75 + .625) / 2
    { lo: 0.75, hi: 1, count: 2, confidence: 0.9375, accuracy: 0.5 }, // (.875 + 1) / 2
  ]);
  // ECE = (1·|1 − .5| + 2·|.5 − .6875| + 2·|.5 − .9375|) / 5 = (.5 + .375 + .875) / 5 = 0.35
  assert.ok(Math.abs(c.ece - 0.35) < 1e-12, `ece ${c.ece}`);
});

/** k = 2 probabilities whose top-1 confidence is `conf(rng)`; the label agrees with the arg-max with probability `hit(conf)`. */
function synthetic(n: number, seed: number, conf: (rng: Rng) => number, hit: (c: number) => number) {
  const rng = new Rng(seed);
  const probs = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = conf(rng);
    const pred = rng.chance(0.5) ? 1 : 0;
    probs[i * 2 + pred] = c;
    probs[i * 2 + 1 - pred] = 1 - c;
    y[i] = rng.chance(hit(c)) ? pred : 1 - pred;
  }
  return { probs, y };
}

Deno.test("ECE is about 0 for perfectly calibrated data and large for an over-confident model", () => {
  const good = synthetic(20000, 1, (r) => r.uniform(0.5, 1), (c) => c);
  const eGood = calibration(good.y, good.probs, 2).ece;
  assert.ok(eGood < 0.02, `calibrated ECE ${eGood}`);
  // Claims 90–100% confidence, is right 60% of the time: ECE ≈ 0.95 − 0.6 = 0.35.
  const over = synthetic(20000, 2, (r) => r.uniform(0.9, 1), () => 0.6);
  const eOver = calibration(over.y, over.probs, 2).ece;
  assert.ok(eOver > 0.3 && eOver < 0.4, `over-confident ECE ${eOver}`);
});

Deno.test("calibration() uses 15 equal-width bins by default and ignores missing labels", () => {
  const c = calibration([-1, -1], new Float32Array([0.3, 0.7, 0.6, 0.4]), 2);
  assert.equal(c.bins.length, 15);
  assert.equal(c.ece, 0);
  assert.ok(c.bins.every((b) => b.count === 0));
  assert.ok(Math.abs(c.bins[14].lo - 14 / 15) < 1e-12 && c.bins[14].hi === 1);
});
