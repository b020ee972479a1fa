/**
 * Conv2DBackpropFilter (the weight gradient) for the webgpu backend, NHWC, dilation 1:
 *   dW[kh, kw, ci, co] = Σ_{b, oh, ow} x[b, oh·sh − pt + kh, ow·sw − pl + kw, ci] · dy[b, oh, ow, co]
 * as a matrix product C[K = kh·kw·ci, co] = Aᵀ·B over M = b·oh·ow rows, with A (im2col of x) gathered on the
 * fly into workgroup memory, never stored. Each workgroup computes a 32×32 tile of C (64 threads, 4×4 each)
 * over one chunk of M; M is split into chunks ("split-K") so that a small C (the first layer's 27×32) still
 * fills a large GPU, and a second pass sums the chunks' partial tiles. tfjs-webgpu's own program uses one
 * thread per weight looping over all of b·oh·ow: for a 3×3×3×32 kernel 864 threads (14 workgroups), each
 * summing 145k products at batch 64.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ceilDiv, computeDispatch, type ProgramUniform, type WebgpuBackend, type WebgpuProgram, WGSL_TILE_MAC } from "./_program.ts";

/** Workgroups a weight gradient aims for before splitting M further (fills a data-centre GPU). */
const TARGET_WORKGROUPS = 1024;
/** Fewest rows of M per chunk (8 steps of 32), so the partial sums stay cheap. */
const MIN_CHUNK = 256;

/** The tiled, split weight-gradient pass: out[z, k, co] (or dW itself when there is one chunk). */
function filterGradProgram(outputShape: number[], dispatch: [number, number, number]): WebgpuProgram {
  return {
    variableNames: ["x", "dy"],
    outputShape,
    shaderKey: "tpConv2DDerFilterTiled",
    dispatchLayout: { x: [0], y: [1], z: [2] }, // not flat: main() reads workgroupId itself
    dispatch,
    workgroupSize: [8, 8, 1],
    uniforms: "pads : vec2<i32>, strides : vec2<i32>, filterW : i32, kDim : i32, mDim : i32, chunk : i32, steps : i32,",
    getUserCode: () => `
      var<workgroup> tileA : array<array<vec4<f32>, 8>, 32>; // [m][k / 4]: im2col of x
      var<workgroup> tileB : array<array<vec4<f32>, 8>, 32>; // [m][co / 4]: dy
      var<workgroup> rowInfo : array<vec3<i32>, 32>;    // per m of the step: batch (-1: past the chunk), top row, left column

      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let lid = i32(localIndex);
        let inH = uniforms.xShape[1];
        let inW = uniforms.xShape[2];
        let inC = uniforms.xShape[3];
        let outH = uniforms.dyShape[1];
        let outW = uniforms.dyShape[2];
        let outC = uniforms.dyShape[3];
        let kDim = uniforms.kDim;
        let colStart = i32(workgroupId.x) * 32;
        let rowStart = i32(workgroupId.y) * 32;
        let split = i32(workgroupId.z);
        let mBegin = split * uniforms.chunk;
        let mEnd = min(mBegin + uniforms.chunk, uniforms.mDim);
        // Loads: this thread fills column 'lane' of both tiles, rows firstRow, firstRow + 2, ...
        let lane = lid % 32;
        let firstRow = lid / 32;
        let k = rowStart + lane;
        let ci = k % inC;
        let fw = (k / inC) % uniforms.filterW;
        let fh = k / (inC * uniforms.filterW);
        let co = colStart + lane;
        var acc : array<vec4<f32>, 4>;
        for (var t = 0; t < uniforms.steps; t++) {
          let m0 = mBegin + t * 32;
          if (lid < 32) {
            let m = m0 + lid;
            var info = vec3<i32>(-1, 0, 0);
            if (m < mEnd) {
              let rest = m / outW;
              info = vec3<i32>(rest / outH, (rest % outH) * uniforms.strides[0] - uniforms.pads[0],
                               (m % outW) * uniforms.strides[1] - uniforms.pads[1]);
            }
            rowInfo[lid] = info;
          }
          workgroupBarrier();
          for (var r = firstRow; r < 32; r = r + 2) {
            let info = rowInfo[r];
            let ih = info.y + fh;
            let iw = info.z + fw;
            var a = 0.0;
            if (info.x >= 0 && k < kDim && ih >= 0 && ih < inH && iw >= 0 && iw < inW) {
              a = x[((info.x * inH + ih) * inW + iw) * inC + ci];
            }
            tileA[r][lane / 4][lane % 4] = a;
            var b = 0.0;
            if (info.x >= 0 && co < outC) {
              b = dy[(m0 + r) * outC + co];
            }
            tileB[r][lane / 4][lane % 4] = b;
          }
          workgroupBarrier();
          ${WGSL_TILE_MAC}
          workgroupBarrier();
        }
        for (var i = 0; i < 4; i++) {
          let kk = rowStart + ty * 4 + i;
          if (kk < kDim) {
            for (var j = 0; j < 4; j++) {
              let c = colStart + tx * 4 + j;
              if (c < outC) {
                result[(split * kDim + kk) * outC + c] = acc[i][j];
              }
            }
          }
        }
      }`,
  };
}

/** Sums the chunks' partial weight gradients: out[i] = Σ_z partials[z, i]. */
function sumSplitsProgram(outputShape: number[]): WebgpuProgram {
  const dispatchLayout = { x: outputShape.map((_, i) => i) };
  const workgroupSize: [number, number, number] = [64, 1, 1];
  return {
    variableNames: ["partials"],
    outputShape,
    shaderKey: "tpSumSplits",
    dispatchLayout,
    dispatch: computeDispatch(dispatchLayout, outputShape, workgroupSize),
    workgroupSize,
    size: true,
    uniforms: "numSplits : i32,",
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var z = 0; z < uniforms.numSplits; z++) {
            s = s + partials[z * uniforms.size + index];
          }
          setOutputAtIndex(index, s);
        }
      }`,
  };
}

/** How the weight gradient of one convolution is split: chunks of M and rows per chunk (a multiple of 32). */
export function planFilterGrad(m: number, k: number, outC: number): { splits: number; chunk: number } {
  if (m === 0) return { splits: 1, chunk: 0 };
  const tiles = ceilDiv(outC, 32) * ceilDiv(k, 32);
  const wanted = Math.max(1, Math.min(ceilDiv(TARGET_WORKGROUPS, tiles), Math.floor(m / MIN_CHUNK)));
  const chunk = 32 * ceilDiv(ceilDiv(m, wanted), 32);
  return { splits: ceilDiv(m, chunk), chunk };
}

/** The kernel function; returns null where it does not apply (NCHW, not float32), so the caller uses tfjs' own. */
export function conv2DBackpropFilterTiled(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (a.dataFormat === "NCHW" || x.dtype !== "float32" || dy.dtype !== "float32") return null;
  const backend = args.backend as WebgpuBackend;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  const k = info.filterHeight * info.filterWidth * info.inChannels;
  const m = info.batchSize * info.outHeight * info.outWidth;
  const { splits, chunk } = planFilterGrad(m, k, info.outChannels);
  const dispatch: [number, number, number] = [ceilDiv(info.outChannels, 32), ceilDiv(k, 32), splits];
  const uniforms: ProgramUniform = [
    { type: "int32", data: [info.padInfo.top, info.padInfo.left] },
    { type: "int32", data: [info.strideHeight, info.strideWidth] },
    { type: "int32", data: [info.filterWidth] },
    { type: "int32", data: [k] },
    { type: "int32", data: [m] },
    { type: "int32", data: [chunk] },
    { type: "int32", data: [chunk / 32] },
  ];
  const filterShape = [...a.filterShape];
  if (splits === 1) return backend.runWebGPUProgram(filterGradProgram(filterShape, dispatch), [x, dy], "float32", uniforms);
  const partials = backend.runWebGPUProgram(filterGradProgram([splits, k, info.outChannels], dispatch), [x, dy], "float32", uniforms);
  const out = backend.runWebGPUProgram(sumSplitsProgram(filterShape), [partials], "float32", [{ type: "int32", data: [splits] }]);
  backend.disposeData(partials.dataId);
  return out;
}
