/**
 * Conv2DBackpropInput (the input gradient, also conv2dTranspose's forward pass) for the webgpu backend, NHWC:
 *   dx[b, ih, iw, ci] = Σ_{kh, kw, co} dy[b, oh, ow, co] · w[kh, kw, ci, co]   where oh·sh = ih + pt − kh
 * With a stride s, only the taps kh ≡ ih + pt (mod s) reach a given row, so the input pixels are split into
 * s_h·s_w phases (ih mod s_h, iw mod s_w) of equal taps, one dispatch each: per phase a matrix product
 * C[pixels, ci] = Σ_{valid taps, co} dy[b, i + dh, j + dw, co] · w[kh, kw, ci, co], in 32×32 tiles (64 threads,
 * 4×4 each), the dy rows gathered on the fly. No product with a zero of the dilated dy is computed (tfjs'
 * matmul version, off by default, computes 4× the products at stride 2), and dy and w are reused through
 * workgroup memory (tfjs' default has each thread, 8 dx values with vec4s, loop over kh·kw·co reading both from
 * global memory). Inputs with few channels (an image) keep tfjs' kernel.
 */
import * as tf from "@tensorflow/tfjs-core";
import { ceilDiv, type ProgramUniform, type WebgpuBackend, type WebgpuProgram, WGSL_TILE_MAC } from "./_program.ts";

function inputGradProgram(outputShape: number[], dispatch: [number, number, number]): WebgpuProgram {
  return {
    variableNames: ["dy", "w"],
    outputShape,
    shaderKey: "tpConv2DDerInputPhase",
    dispatchLayout: { x: [3], y: [1, 2], z: [0] }, // not flat: main() reads workgroupId itself
    dispatch,
    workgroupSize: [8, 8, 1],
    uniforms: "phase : vec2<i32>, phaseDims : vec2<i32>, taps : vec2<i32>, tapStart : vec2<i32>, offStart : vec2<i32>, " +
      "strides : vec2<i32>, coSteps : i32,",
    getUserCode: () => `
      var<workgroup> tileA : array<array<vec4<f32>, 9>, 32>; // [co][pixel / 4]: dy at the tap (row padded to 9)
      var<workgroup> tileB : array<array<vec4<f32>, 9>, 32>; // [co][ci / 4]: w at the tap
      var<workgroup> pixInfo : array<vec2<i32>, 32>;    // (i, j) of the tile's pixels in the phase grid; i = -1: none

      fn main() {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let lid = i32(localIndex);
        let outH = uniforms.dyShape[1];
        let outW = uniforms.dyShape[2];
        let outC = uniforms.dyShape[3];
        let inH = uniforms.outShape[1];
        let inW = uniforms.outShape[2];
        let inC = uniforms.outShape[3];
        let filterW = uniforms.wShape[1];
        let batch = i32(workgroupId.z);
        let colStart = i32(workgroupId.x) * 32;
        let rowStart = i32(workgroupId.y) * 32;
        let pixels = uniforms.phaseDims[0] * uniforms.phaseDims[1];
        if (lid < 32) {
          let p = rowStart + lid;
          var info = vec2<i32>(-1, 0);
          if (p < pixels) {
            info = vec2<i32>(p / uniforms.phaseDims[1], p % uniforms.phaseDims[1]);
          }
          pixInfo[lid] = info;
        }
        workgroupBarrier();
        // Loads: this thread fills row 'lane' (a channel co) of both tiles, columns firstCol, firstCol + 2, ...
        let lane = lid % 32;
        let firstCol = lid / 32;
        var acc : array<vec4<f32>, 4>;
        let nTaps = uniforms.taps[0] * uniforms.taps[1];
        for (var tap = 0; tap < nTaps; tap++) {
          let th = tap / uniforms.taps[1];
          let tw = tap % uniforms.taps[1];
          let kh = uniforms.tapStart[0] + th * uniforms.strides[0];
          let kw = uniforms.tapStart[1] + tw * uniforms.strides[1];
          let dh = uniforms.offStart[0] - th;
          let dw = uniforms.offStart[1] - tw;
          let wBase = (kh * filterW + kw) * inC;
          for (var cs = 0; cs < uniforms.coSteps; cs++) {
            let co = cs * 32 + lane;
            for (var c = firstCol; c < 32; c = c + 2) {
              let info = pixInfo[c];
              let oh = info.x + dh;
              let ow = info.y + dw;
              var a = 0.0;
              if (info.x >= 0 && co < outC && oh >= 0 && oh < outH && ow >= 0 && ow < outW) {
                a = dy[((batch * outH + oh) * outW + ow) * outC + co];
              }
              tileA[lane][c / 4][c % 4] = a;
              let ci = colStart + c;
              var b = 0.0;
              if (ci < inC && co < outC) {
                b = w[(wBase + ci) * outC + co];
              }
              tileB[lane][c / 4][c % 4] = b;
            }
            workgroupBarrier();
            ${WGSL_TILE_MAC}
            workgroupBarrier();
          }
        }
        for (var i = 0; i < 4; i++) {
          let p = rowStart + ty * 4 + i;
          if (p < pixels) {
            let ih = uniforms.phase[0] + (p / uniforms.phaseDims[1]) * uniforms.strides[0];
            let iw = uniforms.phase[1] + (p % uniforms.phaseDims[1]) * uniforms.strides[1];
            let base = ((batch * inH + ih) * inW + iw) * inC;
            for (var j = 0; j < 4; j++) {
              let ci = colStart + tx * 4 + j;
              if (ci < inC) {
                result[base + ci] = acc[i][j];
              }
            }
          }
        }
      }`,
  };
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * Below this many input channels a 32-wide column tile is mostly padding (the image channels of a first layer:
 * 3 of 32); tfjs' one-thread-per-element kernel is as good there and has B·H·W·C threads to spread.
 */
export const MIN_TILED_IN_CHANNELS = 16;

/**
 * The kernel function; returns null where it does not apply (NCHW, fewer than MIN_TILED_IN_CHANNELS input
 * channels), so the caller uses tfjs' own.
 */
export function conv2DBackpropInputPhased(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo | null {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (a.dataFormat === "NCHW" || dy.dtype !== "float32" || filter.dtype !== "float32") return null;
  if (a.inputShape[3] < MIN_TILED_IN_CHANNELS) return null;
  const backend = args.backend as WebgpuBackend;
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  const [sh, sw] = [info.strideHeight, info.strideWidth];
  const [pt, pl] = [info.padInfo.top, info.padInfo.left];
  const out = backend.makeTensorInfo([...a.inputShape], "float32");
  const coSteps = ceilDiv(info.outChannels, 32);
  for (let ph = 0; ph < sh; ph++) {
    for (let pw = 0; pw < sw; pw++) {
      const rows = ceilDiv(info.inHeight - ph, sh), cols = ceilDiv(info.inWidth - pw, sw);
      if (rows <= 0 || cols <= 0) continue;
      // Taps reaching this phase: kh = kh0, kh0 + sh, … < filterHeight; then oh = i + (ph + pt − kh) / sh.
      const kh0 = mod(ph + pt, sh), kw0 = mod(pw + pl, sw);
      const nTh = kh0 < info.filterHeight ? ceilDiv(info.filterHeight - kh0, sh) : 0;
      const nTw = kw0 < info.filterWidth ? ceilDiv(info.filterWidth - kw0, sw) : 0;
      const uniforms: ProgramUniform = [
        { type: "int32", data: [ph, pw] },
        { type: "int32", data: [rows, cols] },
        { type: "int32", data: [nTh, nTw] },
        { type: "int32", data: [kh0, kw0] },
        { type: "int32", data: [(ph + pt - kh0) / sh, (pw + pl - kw0) / sw] },
        { type: "int32", data: [sh, sw] },
        { type: "int32", data: [coSteps] },
      ];
      const dispatch: [number, number, number] = [ceilDiv(info.inChannels, 32), ceilDiv(rows * cols, 32), info.batchSize];
      backend.runWebGPUProgram(inputGradProgram(out.shape, dispatch), [dy, filter], "float32", uniforms, out);
    }
  }
  return out;
}
