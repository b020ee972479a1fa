/**
 * Heads on a backbone (face-api's AgeGenderNet, timm's forward_head): one
 * dense layer per head, output names equal to the label names (`gender`,
 * `hair_color`, `hair_type`), logits out. Single-task and multitask models
 * share this builder.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { type HeadName, HEADS } from "../data/schema.ts";

export interface HeadsConfig {
  heads: HeadName[];
  /** Hidden units before each head's classifier (0 = linear head). */
  hidden: number;
  dropout: number;
  seed: number;
}

/** Wraps a backbone ([b,D] features) into a model with one logits output per head. */
export function attachHeads(backbone: tfl.LayersModel, config: HeadsConfig): tfl.LayersModel {
  const features = backbone.outputs[0];
  let seed = config.seed * 7919;
  const outputs = config.heads.map((head) => {
    let h = features;
    if (config.hidden > 0) {
      h = tfl.layers.dense({ units: config.hidden, activation: "relu", name: `${head}_hidden`, kernelInitializer: tfl.initializers.heNormal({ seed: seed++ }) }).apply(h) as tfl.SymbolicTensor;
    }
    // Dropout on what the classifier sees: the hidden layer, or the backbone's features for a linear head.
    if (config.dropout > 0) h = tfl.layers.dropout({ rate: config.dropout, seed: seed++, name: `${head}_dropout` }).apply(h) as tfl.SymbolicTensor;
    return tfl.layers.dense({
      units: HEADS[head].labels.length,
      name: head,
      kernelInitializer: tfl.initializers.glorotUniform({ seed: seed++ }),
    }).apply(h) as tfl.SymbolicTensor;
  });
  return tfl.model({ inputs: backbone.inputs, outputs, name: `${backbone.name}_${config.heads.join("_")}` });
}
