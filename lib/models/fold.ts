/**
 * An inference copy of a model with its batch norms folded into the convolutions before them (what
 * PyTorch's `fuse_conv_bn_eval` and TensorRT do): a Conv2D whose only consumer is a BatchNormalization gets
 *   kernel · γ/√(σ² + ε)   and   (bias − μ) · γ/√(σ² + ε) + β
 * and the batch norm goes; a ReLU that alone follows that batch norm becomes the convolution's activation (as does
 * the ReLU of a BatchNormReLU layer, lib/models/fused_bn.ts).
 * tfjs then runs the three as one FusedConv2D (bias + relu), which the oneDNN backend executes as one
 * primitive with a post-op instead of three passes over the activations.
 *
 * Then the end of each residual block: a linear Conv2D whose only reader is a two-input Add whose only reader is a
 * ReLU becomes one ConvAddReLU layer (lib/models/fused_conv.ts) reading the conv's input and the Add's other input
 * (the shortcut): on the onednn engine one primitive whose sum post-op adds the shortcut, instead of a convolution,
 * an add and a ReLU, each a pass over the activations (the face ResNet's blocks).
 *
 * Same outputs up to float rounding, in inference mode only (moving statistics; no dropout); never train
 * the copy. Works on the graph's JSON (layers applied once, at the model's top level), so the model's
 * other layers, custom ones included, are rebuilt from their own configs and get their weights copied.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { registerCustomLayers } from "./mod.ts";

type Json = Record<string, unknown>;
interface LayerJson {
  name: string;
  class_name: string;
  config: Json;
  inbound_nodes: [string, number, number, Json][][];
}

/** What foldBatchNorms did: the folded model (or the model itself when nothing folds) and what it folded. */
export interface Folded {
  model: tfl.LayersModel;
  /** conv layer name → the batch norm (and ReLU) folded into it. */
  folds: Map<string, { bn: string; relu: string | null }>;
  /** conv layer name → the Add and ReLU it took over as a ConvAddReLU layer. */
  residuals: Map<string, { add: string; relu: string; shortcut: [string, number, number, Json] }>;
  /** Whether `model` is a new model the caller disposes (false: nothing folded, the input model came back). */
  copy: boolean;
}

/** Every layer name used as an input anywhere (inbound nodes and the model's outputs), with its use count. */
function consumers(layers: LayerJson[], outputs: [string, number, number][]): Map<string, string[]> {
  const uses = new Map<string, string[]>();
  const add = (from: string, by: string) => uses.set(from, [...(uses.get(from) ?? []), by]);
  for (const l of layers) for (const node of l.inbound_nodes) for (const [from] of node) add(from, l.name);
  for (const [from] of outputs) add(from, "<output>");
  return uses;
}

/** The conv → batch norm (→ ReLU) chains that can fold: each link the only consumer of the previous one. */
function findFolds(layers: LayerJson[], outputs: [string, number, number][]): Map<string, { bn: string; relu: string | null }> {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const uses = consumers(layers, outputs);
  const only = (name: string): LayerJson | null => {
    const u = uses.get(name) ?? [];
    return u.length === 1 ? byName.get(u[0]) ?? null : null;
  };
  const folds = new Map<string, { bn: string; relu: string | null }>();
  for (const conv of layers) {
    if (conv.class_name !== "Conv2D" || conv.inbound_nodes.length !== 1 || conv.config.activation !== "linear") continue;
    if (conv.config.data_format !== "channels_last") continue;
    const bn = only(conv.name);
    if (!bn || (bn.class_name !== "BatchNormalization" && bn.class_name !== "TpBatchNormReLU") || bn.inbound_nodes.length !== 1) continue;
    if (bn.config.axis !== -1 && bn.config.axis !== 3) continue;
    // BatchNormReLU (lib/models/fused_bn.ts): a batch norm and its ReLU in one layer
    if (bn.class_name === "TpBatchNormReLU") {
      folds.set(conv.name, { bn: bn.name, relu: bn.name });
      continue;
    }
    const next = only(bn.name);
    const relu = next && next.inbound_nodes.length === 1 &&
        ((next.class_name === "ReLU" && next.config.max_value == null) || (next.class_name === "Activation" && next.config.activation === "relu"))
      ? next.name
      : null;
    folds.set(conv.name, { bn: bn.name, relu });
  }
  return folds;
}

/** The residual ends that fuse: linear Conv2D → (only reader) Add of two inputs → (only reader) ReLU. */
function findResiduals(layers: LayerJson[], outputs: [string, number, number][]): Folded["residuals"] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  const uses = consumers(layers, outputs);
  const only = (name: string): LayerJson | null => {
    const u = uses.get(name) ?? [];
    return u.length === 1 ? byName.get(u[0]) ?? null : null;
  };
  const isRelu = (l: LayerJson) => (l.class_name === "ReLU" && l.config.max_value == null && !l.config.negative_slope && !l.config.threshold) ||
    (l.class_name === "Activation" && l.config.activation === "relu");
  const out: Folded["residuals"] = new Map();
  for (const conv of layers) {
    if (conv.class_name !== "Conv2D" || conv.inbound_nodes.length !== 1 || conv.config.activation !== "linear") continue;
    if (conv.config.data_format !== "channels_last" || [conv.config.dilation_rate].flat().some((d) => d !== 1)) continue;
    const add = only(conv.name);
    if (!add || add.class_name !== "Add" || add.inbound_nodes.length !== 1 || add.inbound_nodes[0].length !== 2) continue;
    const others = add.inbound_nodes[0].filter(([from]) => from !== conv.name);
    const relu = only(add.name);
    if (others.length !== 1 || !relu || relu.inbound_nodes.length !== 1 || !isRelu(relu)) continue;
    out.set(conv.name, { add: add.name, relu: relu.name, shortcut: others[0] });
  }
  return out;
}

/** The folded conv's kernel and bias from the conv's and the batch norm's weights. */
function foldedWeights(conv: tfl.layers.Layer, bn: tfl.layers.Layer): tf.Tensor[] {
  return tf.tidy(() => {
    const named = (l: tfl.layers.Layer, suffix: string) => l.weights.find((w) => w.originalName.endsWith(`/${suffix}`))?.read() ?? null;
    const kernel = named(conv, "kernel")!;
    const cout = kernel.shape[3]!;
    const gamma = named(bn, "gamma") ?? tf.ones([cout]), beta = named(bn, "beta") ?? tf.zeros([cout]);
    const mean = named(bn, "moving_mean")!, variance = named(bn, "moving_variance")!;
    const eps = (bn.getConfig().epsilon as number | undefined) ?? 1e-3;
    const scale = tf.div(gamma, tf.sqrt(tf.add(variance, eps)));
    const bias = named(conv, "bias") ?? tf.zeros([cout]);
    return [tf.mul(kernel, scale), tf.add(tf.mul(tf.sub(bias, mean), scale), beta)];
  });
}

/**
 * The inference copy of `model` with its conv → batch norm (→ ReLU) chains folded (see the header). When
 * nothing folds, returns the model itself (`copy` false). The copy's weights are new tensors: dispose it
 * (disposeModel) when done.
 */
export async function foldBatchNorms(model: tfl.LayersModel): Promise<Folded> {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: { layers: LayerJson[]; output_layers: [string, number, number][] } };
  const { layers, output_layers: outputs } = json.config;
  const folds = findFolds(layers, outputs);
  // Rewire: whatever read the batch norm (or the ReLU after it) now reads the conv.
  const replaced = new Map<string, string>();
  for (const [conv, f] of folds) {
    replaced.set(f.bn, conv);
    if (f.relu) replaced.set(f.relu, conv);
  }
  const rewire = (l: LayerJson): LayerJson => ({ ...l, config: { ...l.config }, inbound_nodes: l.inbound_nodes.map((node) => node.map(([from, n, t, kw]) => [replaced.get(from) ?? from, n, t, kw])) });
  let kept = layers.filter((l) => !replaced.has(l.name)).map((l) => {
    const copy = rewire(l);
    const f = folds.get(l.name);
    if (f) {
      copy.config.use_bias = true;
      copy.config.activation = f.relu ? "relu" : "linear";
    }
    return copy;
  });
  // Then the residual ends, on the graph with the batch norms gone: the conv takes [its input, the shortcut].
  const residuals = findResiduals(kept, outputs.map(([from, n, t]) => [replaced.get(from) ?? from, n, t]));
  if (folds.size === 0 && residuals.size === 0) return { model, folds, residuals, copy: false };
  for (const [conv, r] of residuals) replaced.set(r.add, conv), replaced.set(r.relu, conv);
  kept = kept.filter((l) => !replaced.has(l.name)).map((l) => {
    const copy = rewire(l);
    const r = residuals.get(l.name);
    if (r) {
      copy.class_name = "ConvAddReLU";
      copy.inbound_nodes = [[copy.inbound_nodes[0][0], [replaced.get(r.shortcut[0]) ?? r.shortcut[0], r.shortcut[1], r.shortcut[2], r.shortcut[3]]]];
    }
    return copy;
  });
  const topology = { ...json, config: { ...json.config, layers: kept, output_layers: outputs.map(([from, n, t]) => [replaced.get(from) ?? from, n, t]) } };
  registerCustomLayers();
  const folded = await tfl.models.modelFromJSON({ modelTopology: topology } as unknown as Parameters<typeof tfl.models.modelFromJSON>[0]);
  try {
    for (const layer of folded.layers) {
      const f = folds.get(layer.name);
      const weights = f ? foldedWeights(model.getLayer(layer.name), model.getLayer(f.bn)) : model.getLayer(layer.name).getWeights();
      layer.setWeights(weights);
      if (f) tf.dispose(weights);
    }
  } catch (e) {
    folded.dispose();
    throw e;
  }
  return { model: folded, folds, residuals, copy: true };
}
