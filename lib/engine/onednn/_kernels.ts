// Private: the table of overridden tfjs kernels (kernel name -> override returning null to fall back to cpu).
import * as conv from "./_kernels_conv.ts";
import type { KernelArgs, Override } from "./_backend.ts";
import * as mm from "./_matmul.ts";
import * as pool from "./_pool.ts";
import * as ew from "./_elementwise.ts";
import * as red from "./_reduce.ts";
import * as shape from "./_shape_ops.ts";

export type { KernelArgs, Override };

export const OVERRIDES: Record<string, Override> = {
  Conv2D: conv.conv2D,
  FusedConv2D: conv.fusedConv2D,
  Conv2DBackpropInput: conv.conv2DBackpropInput,
  Conv2DBackpropFilter: conv.conv2DBackpropFilter,
  DepthwiseConv2dNative: conv.depthwiseConv2dNative,
  FusedDepthwiseConv2D: conv.fusedDepthwiseConv2D,
  DepthwiseConv2dNativeBackpropInput: conv.depthwiseConv2dNativeBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: conv.depthwiseConv2dNativeBackpropFilter,
  BatchMatMul: mm.batchMatMul,
  _FusedMatMul: mm.fusedMatMul,
  MaxPool: pool.maxPool,
  MaxPoolGrad: pool.maxPoolGrad,
  AvgPool: pool.avgPool,
  AvgPoolGrad: pool.avgPoolGrad,
  FusedBatchNorm: red.fusedBatchNorm,
  Sum: red.sum,
  Mean: red.mean,
  Add: ew.add,
  Sub: ew.sub,
  Multiply: ew.multiply,
  RealDiv: ew.realDiv,
  SquaredDifference: ew.squaredDifference,
  Maximum: ew.maximum,
  Minimum: ew.minimum,
  Relu: ew.relu,
  Relu6: ew.relu6,
  Step: ew.step,
  Square: ew.square,
  Sqrt: ew.sqrt,
  Rsqrt: ew.rsqrt,
  Neg: ew.neg,
  Exp: ew.exp,
  Log: ew.log,
  Abs: ew.abs,
  Sigmoid: ew.sigmoid,
  Tanh: ew.tanh,
  Reciprocal: ew.reciprocal,
  Tile: ew.tile,
  Slice: shape.slice,
  PadV2: shape.padV2,
  SplitV: shape.splitV,
  Concat: shape.concat,
  LeakyRelu: shape.leakyRelu,
};
