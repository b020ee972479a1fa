/**
 * Losses with missing labels masked per head: rows whose label is -1 (n/a)
 * contribute nothing — no loss and no gradient — so every row teaches what it
 * knows. Optional per-class weights (inverse frequency) fight imbalance.
 */
import * as tf from "@tensorflow/tfjs-core";

/**
 * Mean softmax cross-entropy over the rows whose label is present.
 * labels: int32 [b] with -1 = missing. Returns 0 when no label is present.
 * `labelSmoothing` ε spreads ε of the target's mass evenly over the k classes
 * (target = (1 − ε)·onehot + ε/k), as PyTorch's CrossEntropyLoss does.
 */
export function maskedSoftmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, classWeights?: tf.Tensor1D, labelSmoothing = 0): tf.Scalar {
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new Error(`maskedSoftmaxCrossEntropy: label smoothing must be in [0, 1), got ${labelSmoothing}`);
  return tf.tidy(() => {
    const k = logits.shape[1];
    const present = tf.cast(tf.greaterEqual(labels, 0), "float32"); // [b]
    const safe = tf.maximum(labels, tf.zerosLike(labels)); // int32, missing → class 0 (masked below)
    let onehot: tf.Tensor = tf.oneHot(safe, k); // [b,k]
    if (labelSmoothing > 0) onehot = tf.add(tf.mul(onehot, 1 - labelSmoothing), labelSmoothing / k);
    const logp = tf.logSoftmax(logits); // [b,k]
    const nll = tf.neg(tf.sum(tf.mul(onehot, logp), 1)); // [b]
    let w = present;
    if (classWeights) w = tf.mul(w, tf.gather(classWeights, safe));
    const denom = tf.maximum(tf.sum(w), 1e-8);
    // When no label is present, sum(w) = 0 and the numerator is exactly 0 too.
    return tf.div(tf.sum(tf.mul(nll, w)), denom) as tf.Scalar;
  });
}

/** Inverse-frequency class weights normalised to mean 1 over present labels (classes never seen get weight 0). */
export function inverseFrequencyWeights(labels: ArrayLike<number>, k: number): Float32Array {
  const counts = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] >= 0) counts[labels[i]]++, total++;
  const w = new Float32Array(k);
  const present = counts.filter((c) => c > 0).length;
  for (let c = 0; c < k; c++) w[c] = counts[c] > 0 ? total / (present * counts[c]) : 0;
  return w;
}
