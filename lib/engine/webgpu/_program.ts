/**
 * The few parts of tfjs-webgpu's program machinery our kernels use. tfjs-webgpu exports only its backend
 * class, so a program here is a plain object of the shape its `runWebGPUProgram` expects (WebGPUProgram in
 * tfjs-backend-webgpu/dist/webgpu_program.d.ts): it prepends the uniforms struct (NAN, INFINITY, the shape and
 * strides of every input and of the output, `size` when asked, then `uniforms`), one storage buffer per input
 * named as in `variableNames`, `result` for the output, and calls the user code's `main()` (or
 * `main(index)` when the dispatch layout is flat). Pipelines are cached by `shaderKey` plus ranks and dtypes.
 */
import type * as tf from "@tensorflow/tfjs-core";

export interface WebgpuProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  size?: boolean;
  getUserCode(): string;
}

export type ProgramUniform = { type: "int32" | "uint32" | "float32"; data: number[] }[];

/** The methods of tfjs-webgpu's WebGPUBackend our kernels call. */
export interface WebgpuBackend {
  runWebGPUProgram(program: WebgpuProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType, uniforms?: ProgramUniform, output?: tf.TensorInfo): tf.TensorInfo;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object): boolean;
}

/** Workgroups along each axis of a dispatch layout (tfjs-webgpu's computeDispatch, elements per thread = 1). */
export function computeDispatch(
  layout: { x: number[]; y?: number[]; z?: number[] },
  shape: number[],
  workgroupSize: [number, number, number],
): [number, number, number] {
  const n = (dims?: number[]) => (dims ?? []).reduce((a, d) => a * shape[d], 1);
  return [Math.ceil(n(layout.x) / workgroupSize[0]), Math.ceil(n(layout.y) / workgroupSize[1]), Math.ceil(n(layout.z) / workgroupSize[2])];
}

export const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/**
 * WGSL: the inner product of one 32-deep step of a 4×4-per-thread tiled matrix product, shared by both
 * convolution gradients: `acc[i][j] += tileA[k][ty][i] · tileB[k][tx][j]` for k < 32 (loop variable kTile).
 */
export const WGSL_TILE_MAC = `for (var kTile = 0; kTile < 32; kTile++) {
  let av = tileA[kTile][ty];
  let bv = tileB[kTile][tx];
  acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
  acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
  acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
  acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
}`;
