// BatchMatMul with transposed operands for wasm. Only untransposed, unbatched products reach XNNPACK in the
// wasm kernel; any transpose flag falls to a scalar triple loop (60-80 ms for one gradient product of a
// 8320x128 dense layer at batch 32). Dense-layer gradients always set one flag, so operands are transposed
// explicitly (cheap copies) and the product runs on XNNPACK. XNNPACK re-packs its right operand whenever
// that tensor is new, so with transposeB the product is done the other way round, C^T = B * op(A)^T, which
// uses the (large) b as stored and only packs the small op(A)^T; C^T is then transposed back.

import * as tf from "@tensorflow/tfjs-core";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";
import { type Info, type KernelArgs, runKernel, type Scratch, withScratch } from "./_kernel_call.ts";

/** [rows, cols] of the last two axes. */
function matrixShape(x: Info): [number, number] {
  const r = x.shape.length;
  return [x.shape[r - 2], x.shape[r - 1]];
}

function transposed2d(s: Scratch, x: Info): Info {
  const [rows, cols] = matrixShape(x);
  return s.reshape(s.transpose(s.reshape(x, [rows, cols]), [1, 0]), [1, cols, rows]);
}

/** BatchMatMul kernel for wasm: transposes operands itself when both batches are 1. */
export function batchMatMul({ inputs, backend, attrs }: KernelArgs): Info {
  const wasm = backend as BackendWasm;
  const { a, b } = inputs;
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const batchOf = (x: Info) => tf.util.sizeFromShape(x.shape.slice(0, -2));
  if (
    (!transposeA && !transposeB) || a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 ||
    b.shape.length < 2 || batchOf(a) !== 1 || batchOf(b) !== 1
  ) {
    return runKernel(wasm, tf.BatchMatMul, inputs, attrs, true);
  }
  const outRank = Math.max(a.shape.length, b.shape.length);
  return withScratch(wasm, (s) => {
    const product = (left: Info, right: Info) =>
      s.track(runKernel(wasm, tf.BatchMatMul, { a: left, b: right }, { transposeA: false, transposeB: false }, true));
    let out: Info;
    if (transposeB) {
      // C^T [N, M] = b [N, K] x op(a)^T [K, M]
      const aT = transposeA ? s.reshape(a, [1, ...matrixShape(a)]) : transposed2d(s, a);
      const ct = product(s.reshape(b, [1, ...matrixShape(b)]), aT);
      out = transposed2d(s, ct);
    } else {
      out = product(transposed2d(s, a), s.reshape(b, [1, ...matrixShape(b)]));
    }
    const [m, n] = matrixShape(out);
    return s.reshape(out, [...new Array<number>(outRank - 2).fill(1), m, n]);
  });
}
