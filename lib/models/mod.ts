/**
 * The model registry (timm's create_model): names map to a backbone builder,
 * its typed defaults, its preprocessing and an optional pretrained-weight
 * loader. `createClassifier(name, heads, overrides)` returns an uncompiled
 * model with one logits output per head (output names = label names).
 * Overrides that are `undefined` never replace defaults.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import { registerFaceResnetLayers } from "./_face_resnet_layers.ts";
import { registerGanLayers } from "../gan/nets.ts";
import { fileIO } from "./io.ts";
import { buildCompactCnn, type CompactCnnConfig, DEFAULT_COMPACT_CNN_CONFIG } from "./compact_cnn.ts";
import { buildFaceResnetBackbone, DEFAULT_FACE_RESNET_CONFIG, type FaceResnetConfig, loadFaceResnetWeights, setTrainableFrom } from "./face_resnet.ts";
import { attachHeads } from "./heads.ts";
import type { HeadName } from "../data/schema.ts";
import { type Normalization, REFERENCE_NORMALIZATION } from "../data/batches.ts";
import { UserError } from "../util/errors.ts";
import { mergeDefined } from "../util/merge.ts";
import { registerFusedConv2D } from "./fused_conv.ts";
import { registerFusedBatchNorm } from "./fused_bn.ts";
export { mergeDefined };

export interface ModelEntry<C extends object> {
  description: string;
  defaults: C;
  buildBackbone(config: C): tfl.LayersModel;
  /** Loads pretrained weights into a freshly built backbone (from node_modules; no network). */
  loadPretrained?(backbone: tfl.LayersModel, config: C): Promise<void>;
  /** Normalisation the model expects its inputs in. */
  normalization(config: C): Normalization;
  /** Head sizes. */
  headHidden: number;
  headDropout: number;
}

export const MODELS = {
  compact_cnn: {
    description: "compact residual CNN for 108×84, trained from scratch",
    defaults: DEFAULT_COMPACT_CNN_CONFIG,
    buildBackbone: (c: CompactCnnConfig) => buildCompactCnn(c),
    normalization: () => REFERENCE_NORMALIZATION,
    headHidden: 0,
    headDropout: 0,
  } as ModelEntry<CompactCnnConfig>,
  face_resnet: {
    description: "face-api's face-recognition ResNet (pretrained, MIT) fine-tuned end to end",
    defaults: DEFAULT_FACE_RESNET_CONFIG,
    buildBackbone: (c: FaceResnetConfig) => buildFaceResnetBackbone(c),
    loadPretrained: async (b: tfl.LayersModel, c: FaceResnetConfig) => {
      if (c.pretrained) await loadFaceResnetWeights(b);
      setTrainableFrom(b, c.trainableFrom);
    },
    normalization: (c: FaceResnetConfig) => c.normalization,
    headHidden: 0,
    headDropout: 0.2,
  } as ModelEntry<FaceResnetConfig>,
  face_descriptors: {
    description: "frozen face-api descriptors (aligned face + whole portrait, cached once per dataset) + a small head trained on them in seconds (lib/train/descriptor_head.ts)",
    // trainDescriptorHead runs crop "both" unless told otherwise (lib/train/descriptor_head.ts).
    defaults: DEFAULT_FACE_RESNET_CONFIG,
    buildBackbone: (c: FaceResnetConfig) => buildFaceResnetBackbone(c),
    loadPretrained: async (b: tfl.LayersModel, c: FaceResnetConfig) => {
      if (c.pretrained) await loadFaceResnetWeights(b);
      for (const l of b.layers) l.trainable = false; // frozen: only the heads learn
    },
    normalization: (c: FaceResnetConfig) => c.normalization,
    // One hidden layer: on tp_real it beat the linear head on validation for hair colour and multitask, tied on gender.
    headHidden: 256,
    headDropout: 0.3,
  } as ModelEntry<FaceResnetConfig>,
};

export type ModelName = keyof typeof MODELS;
export const MODEL_NAMES = Object.keys(MODELS) as ModelName[];


/** Registers every custom layer of the project's nets with tfjs, so saved models deserialise. Idempotent. */
export function registerCustomLayers(): void {
  registerFusedConv2D();
  registerFusedBatchNorm();
  registerFaceResnetLayers();
  registerGanLayers();
}

/** Loads a model saved with fileIO(dir) (custom layers registered first). */
export async function loadSavedModel(dir: string): Promise<tfl.LayersModel> {
  registerCustomLayers();
  return await tfl.loadLayersModel(fileIO(dir));
}

export function modelEntry(name: string): ModelEntry<object> {
  const e = (MODELS as Record<string, ModelEntry<object>>)[name];
  if (!e) throw new UserError(`unknown model '${name}'; expected one of ${MODEL_NAMES.join(", ")}`);
  return e;
}

export interface CreatedModel {
  model: tfl.LayersModel;
  name: ModelName;
  config: Record<string, unknown>;
  normalization: Normalization;
}

/** Builds backbone + heads, loading pretrained weights where the model has them. */
export async function createClassifier(name: string, heads: HeadName[], overrides: Record<string, unknown> = {}, seed = 1): Promise<CreatedModel> {
  const entry = modelEntry(name);
  const config = mergeDefined(entry.defaults as Record<string, unknown>, overrides);
  const backbone = entry.buildBackbone(config);
  if (entry.loadPretrained) await entry.loadPretrained(backbone, config);
  const model = attachHeads(backbone, { heads, hidden: entry.headHidden, dropout: entry.headDropout, seed });
  return { model, name: name as ModelName, config, normalization: entry.normalization(config) };
}

/**
 * Disposes a model and every weight it holds. A nested model applied more than once (the face
 * ResNet's shared body with crop "both") counts one reference per call, and LayersModel.dispose()
 * releases only one, which would leave its weights behind; such layers are released until free.
 */
export function disposeModel(model: tfl.LayersModel): void {
  const nested = model.layers.filter((l) => Array.isArray((l as unknown as { layers?: unknown }).layers));
  model.dispose();
  for (const layer of nested) {
    const refs = (layer as unknown as { _refCount?: number | null })._refCount;
    for (let i = 0; typeof refs === "number" && i < refs; i++) layer.dispose();
  }
}
