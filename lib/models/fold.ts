/**
 * An inference copy of a model with its batch norms folded into the convolutions before them (what
 * PyTorch's `fuse_conv_bn_eval` and TensorRT do): a Conv2D whose only consumer is a BatchNormalization gets
 *   kernel · γ/√(σ² + ε)   and   (bias − μ) · γ/√(σ² + ε) + β
 * and the batch norm goes; a ReLU that alone follows that batch norm becomes the convolution's activation.
 * tfjs then runs the three as one FusedConv2D (bias + relu), which the oneDNN backend executes as one
 * primitive with a post-op instead of three passes over the activations.
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
    if (!bn || bn.class_name !== "BatchNormalization" || bn.inbound_nodes.length !== 1) continue;
    if (bn.config.axis !== -1 && bn.config.axis !== 3) continue;
    const next = only(bn.name);
    const relu = next && next.inbound_nodes.length === 1 &&
        ((next.class_name === "ReLU" && next.config.max_value == null) || (next.class_name === "Activation" && next.config.activation === "relu"))
      ? next.name
      : null;
    folds.set(conv.name, { bn: bn.name, relu });
  }
  return folds;
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
  if (folds.size === 0) return { model, folds, copy: false };
  // Rewire: whatever read the batch norm (or the ReLU after it) now reads the conv.
  const replaced = new Map<string, string>();
  for (const [conv, f] of folds) {
    replaced.set(f.bn, conv);
    if (f.relu) replaced.set(f.relu, conv);
  }
  const kept = layers.filter((l) => !replaced.has(l.name)).map((l) => {
    const copy: LayerJson = { ...l, config: { ...l.config }, inbound_nodes: l.inbound_nodes.map((node) => node.map(([from, n, t, kw]) => [replaced.get(from) ?? from, n, t, kw])) };
    const f = folds.get(l.name);
    if (f) {
      copy.config.use_bias = true;
      copy.config.activation = f.relu ? "relu" : "linear";
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
  return { model: folded, folds, copy: true };
}
