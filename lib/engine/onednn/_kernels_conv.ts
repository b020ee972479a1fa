// Private: tfjs kernel functions for the convolution family on oneDNN. Each returns null when the case is not
// supported (the registration wrapper then runs the cpu kernel).
import { backend_util, type TensorInfo } from "@tensorflow/tfjs-core";
import { fusedPostOps, type KernelArgs, type Override } from "./_backend.ts";
import { convBackwardData, convBackwardWeights, convForward, convForwardAdd } from "./_conv.ts";
import type { PostOp } from "./_ffi.ts";

// deno-lint-ignore no-explicit-any
type Attrs = Record<string, any>;

function conv2dImpl(args: KernelArgs, fused: boolean, depthwise: boolean): TensorInfo | null {
  const { inputs, backend } = args;
  const a = (args.attrs ?? {}) as Attrs;
  const x = inputs.x, filter = inputs.filter;
  if (x.shape.length !== 4 || filter.shape.length !== 4) return null;
  let post: PostOp[] = [];
  let bias: TensorInfo | null = null;
  if (fused) {
    if (inputs.preluActivationWeights != null) return null;
    const p = fusedPostOps(a.activation, a.leakyreluAlpha);
    if (p === null) return null;
    post = p;
    bias = inputs.bias ?? null;
  }
  const dataFormat = depthwise ? "channelsLast" : backend_util.convertConv2DDataFormat(a.dataFormat ?? "NHWC");
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations ?? [1, 1],
    a.pad,
    a.dimRoundingMode,
    depthwise,
    dataFormat,
  );
  if (bias !== null && (bias.shape.length > 1 || bias.shape[0] !== info.outChannels)) return null;
  return convForward(backend, x, filter, bias, info, post, depthwise);
}

export const conv2D: Override = (args) => conv2dImpl(args, false, false);
export const fusedConv2D: Override = (args) => conv2dImpl(args, true, false);
export const depthwiseConv2dNative: Override = (args) => conv2dImpl(args, false, true);
export const fusedDepthwiseConv2D: Override = (args) => conv2dImpl(args, true, true);

/** Kernel OnednnConvAddRelu (no tfjs counterpart; lib/models/fused_conv.ts convAddRelu runs it). */
export const CONV_ADD_RELU = "OnednnConvAddRelu";

/**
 * inputs {x, filter, bias?, residual} (NHWC; residual shaped like the output), attrs {strides, pad, dimRoundingMode?,
 * activation: "relu" | "linear"}: activation(conv2d(x, filter) + bias + residual), a residual block's second
 * convolution, its shortcut sum and its ReLU in one primitive (convForwardAdd). Null for other cases.
 */
export const convAddRelu: Override = ({ inputs, backend, attrs }) => {
  const a = (attrs ?? {}) as Attrs;
  const { x, filter, residual } = inputs;
  if (x.shape.length !== 4 || filter.shape.length !== 4 || residual == null) return null;
  if (a.activation !== "relu" && a.activation !== "linear") return null;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  const bias = inputs.bias ?? null;
  if (bias !== null && (bias.shape.length !== 1 || bias.shape[0] !== info.outChannels)) return null;
  return convForwardAdd(backend, x, filter, bias, residual, info, a.activation === "relu");
};

export const conv2DBackpropInput: Override = ({ inputs, backend, attrs }) => {
  const a = (attrs ?? {}) as Attrs;
  const { dy, filter } = inputs;
  const info = backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(a.dataFormat ?? "NHWC"),
  );
  if (!sameShape(dy.shape, info.outShape)) return null;
  return convBackwardData(backend, dy, filter, info);
};

export const conv2DBackpropFilter: Override = ({ inputs, backend, attrs }) => {
  const a = (attrs ?? {}) as Attrs;
  const { x, dy } = inputs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(a.dataFormat ?? "NHWC"),
  );
  if (!sameShape(dy.shape, info.outShape)) return null;
  return convBackwardWeights(backend, x, dy, info);
};

export const depthwiseConv2dNativeBackpropInput: Override = ({ inputs, backend, attrs }) => {
  const a = (attrs ?? {}) as Attrs;
  const { dy, filter } = inputs;
  const info = backend_util.computeConv2DInfo(
    a.inputShape,
    filter.shape as [number, number, number, number],
    a.strides,
    a.dilations ?? [1, 1],
    a.pad,
    a.dimRoundingMode,
    true,
  );
  if (!sameShape(dy.shape, info.outShape)) return null;
  return convBackwardData(backend, dy, filter, info, true);
};

export const depthwiseConv2dNativeBackpropFilter: Override = ({ inputs, backend, attrs }) => {
  const a = (attrs ?? {}) as Attrs;
  const { x, dy } = inputs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    a.filterShape,
    a.strides,
    a.dilations ?? [1, 1],
    a.pad,
    a.dimRoundingMode,
    true,
  );
  if (!sameShape(dy.shape, info.outShape)) return null;
  return convBackwardWeights(backend, x, dy, info, true);
};

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
