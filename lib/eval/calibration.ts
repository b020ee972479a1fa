/**
 * Calibration of top-1 confidence: expected calibration error (ECE) over
 * equal-width confidence bins, as in Guo et al. 2017 ("On Calibration of
 * Modern Neural Networks"). ECE = Σ_b (n_b / n) · |accuracy_b − confidence_b|.
 */
import { MISSING_CODE } from "../data/schema.ts";
import { argmaxRows, checkShape } from "./report.ts";

/** One equal-width bin; an empty bin has count 0 and confidence = accuracy = 0. */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean top-1 probability of the rows in the bin. */
  confidence: number;
  /** Share of the rows in the bin whose arg-max is the true label. */
  accuracy: number;
}

export interface Calibration {
  ece: number;
  bins: CalibrationBin[];
}

/**
 * Top-1 confidence calibration. Bins are (lo, hi] over [0, 1] (the first also takes 0), `nBins`
 * of them (default 15). Rows with a missing label (-1) are ignored; with no labelled rows ECE is 0.
 */
export function calibration(yTrue: ArrayLike<number>, probs: Float32Array, k: number, nBins = 15): Calibration {
  const n = checkShape("calibration", yTrue, probs, k);
  if (!(Number.isInteger(nBins) && nBins >= 1)) throw new Error(`calibration: expected nBins to be a positive integer, got ${nBins}`);
  const pred = argmaxRows(probs, k);
  const count = new Array<number>(nBins).fill(0);
  const confSum = new Array<number>(nBins).fill(0);
  const correct = new Array<number>(nBins).fill(0);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const y = yTrue[i];
    if (y === MISSING_CODE) continue;
    if (!(Number.isInteger(y) && y >= 0 && y < k)) throw new Error(`calibration: expected a label in 0..${k - 1} or -1 at row ${i}, got ${y}`);
    const conf = probs[i * k + pred[i]];
    const b = Math.min(nBins - 1, Math.max(0, Math.ceil(conf * nBins) - 1));
    count[b] += 1;
    confSum[b] += conf;
    if (pred[i] === y) correct[b] += 1;
    total += 1;
  }
  let ece = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < nBins; b++) {
    const c = count[b];
    const confidence = c ? confSum[b] / c : 0;
    const accuracy = c ? correct[b] / c : 0;
    if (c) ece += (c / total) * Math.abs(accuracy - confidence);
    bins.push({ lo: b / nBins, hi: (b + 1) / nBins, count: c, confidence, accuracy });
  }
  return { ece, bins };
}
