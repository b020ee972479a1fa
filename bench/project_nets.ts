/**
 * The networks bench.ts compares with PyTorch, on tfjs, built and stepped the way training builds and
 * steps them; bench/torch_reference.py --model NAME holds each one's PyTorch twin.
 *
 *   ref          the reference CNN (bench/reference_cnn.ts), Adam 1e-3, cross-entropy
 *   compact_cnn  createClassifier("compact_cnn", ["gender"]) with the gender recipe of lib/train/run.ts: the
 *                Trainer's step (Adam, masked cross-entropy + the kernels' L2 losses), batch 64
 *   gan_step     buildGanNets(DEFAULT_GAN_CONFIG with DEFAULT_GAN_TRAIN.model: packs of two) with DEFAULT_GAN_TRAIN: discriminatorStep + generatorStep (mode-seeking term included)
 *                (env GAN_MODEL: JSON of GanConfig fields over the default, e.g. '{"gWidths":[128,128,64,32]}';
 *                env GAN_TRAIN: JSON of the mode-seeking fields of GanTrainConfig over the default, e.g.
 *                '{"modeSeekingForm":"all","modeSeekingRegion":"face"}')
 *                (hinge loss, DiffAugment) + updateEma, as gan:train runs a step, batch 32; inference = the
 *                generator's forward pass
 *   face_resnet  createClassifier("face_resnet", ["gender"]) (face-api's pretrained weights) with the gender
 *                recipe: heads' Adam at lr, backbone's at lr × 0.1, label smoothing 0.1, batch 32
 *
 * Data costs (augmentation, the pixel cache) are left out on both sides: each step reuses one random batch.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { IMAGE_CHANNELS, IMAGE_HEIGHT, IMAGE_WIDTH } from "../lib/data/schema.ts";
import { createClassifier, disposeModel } from "../lib/models/mod.ts";
import { type Folded, foldBatchNorms } from "../lib/models/fold.ts";
import { maskedSoftmaxCrossEntropy } from "../lib/train/losses.ts";
import { DEFAULT_TRAIN_CONFIG, recipeFor } from "../lib/train/run.ts";
import { mergeDefined } from "../lib/util/merge.ts";
import { DEFAULT_GAN_CONFIG, ganParams, generate } from "../lib/gan/nets.ts";
import { buildGanNets, discriminatorStep, disposeGanNets, generatorStep, latentsForSeeds, MODE_SEEKING_FORMS, SpectralNorm, updateEma } from "../lib/gan/steps.ts";
import { DEFAULT_GAN_TRAIN, modeSeekingOf } from "../lib/gan/train.ts";
import { Rng } from "../lib/util/rng.ts";
import { adam } from "../lib/engine/adam.ts";
import { buildReferenceCnn } from "./reference_cnn.ts";

export const RATIO_MODELS = ["ref", "compact_cnn", "gan_step", "face_resnet"] as const;
export type RatioModel = typeof RATIO_MODELS[number];

/** One network ready to be timed on the current backend. */
export interface NetBench {
  batch: number;
  /** Every weight (tfjs countParams: batch norms' moving statistics included). */
  params: number;
  trainableParams: number;
  /** Parts of the count where the network has several (the GAN's generator and discriminator). */
  paramsDetail?: Record<string, number>;
  /** One training step; resolves once its loss has been read back. */
  train(): Promise<void>;
  /** One forward pass in inference mode over the batch, read back. */
  infer(): Promise<void>;
  /** Classifiers: the same forward pass on the model as trained, batch norms not folded (onednn_profile --ab-fold). */
  inferUnfolded?(): Promise<void>;
  dispose(): void;
}

export interface RatioNet {
  description: string;
  /** The batch training uses. */
  defaultBatch: number;
  build(batch: number): Promise<NetBench>;
}

const HEADS = ["gender"] as const;

function sizeOf(ws: { shape: (number | null)[] }[]): number {
  return ws.reduce((a, w) => a + w.shape.reduce((x: number, y) => x * (y ?? 1), 1), 0);
}

async function readAndDispose(t: tf.Tensor): Promise<void> {
  await t.data(); // async read: webgpu cannot read synchronously
  t.dispose();
}

interface ClassifierRecipe {
  lr: number;
  backboneLrMult: number;
  labelSmoothing: number;
}

/**
 * lib/train/trainer.ts' step without the data: one Adam, or the heads' and the backbone's apart; loss = masked CE + model.losses.
 * Inference runs `inference`, the batch-norm-folded copy that evaluation and prediction run (lib/models/fold.ts).
 */
function classifierBench(model: tfl.LayersModel, inference: Folded, batch: number, r: ClassifierRecipe, dispose: () => void): NetBench {
  const x = tf.randomNormal([batch, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], 0, 1, "float32", 1);
  const labels = tf.tensor1d(Array.from({ length: batch }, (_, i) => i % 2), "int32");
  const opt = adam(r.lr);
  const backboneOpt = r.backboneLrMult !== 1 ? adam(r.lr * r.backboneLrMult) : null;
  // The Trainer's weight groups: layers named after a head (or <head>_hidden) against the rest.
  const headLayers = new Set(HEADS.flatMap((h) => [h, `${h}_hidden`]));
  const headIds = new Set<number>();
  for (const l of model.layers) if (headLayers.has(l.name)) for (const w of l.trainableWeights) headIds.add(w.id);
  const head: tf.Variable[] = [], backbone: tf.Variable[] = [];
  for (const w of model.trainableWeights) (headIds.has(w.id) ? head : backbone).push(w.read() as tf.Variable);
  const all = [...head, ...backbone];
  const lossFn = () => {
    const out = model.apply(x, { training: true }) as tf.Tensor | tf.Tensor[];
    const logits = (Array.isArray(out) ? out[0] : out) as tf.Tensor2D;
    const reg = model.losses.length ? tf.addN(model.losses.map((f) => f() as tf.Scalar)) : tf.scalar(0);
    return tf.add(maskedSoftmaxCrossEntropy(logits, labels, undefined, r.labelSmoothing), reg) as tf.Scalar;
  };
  return {
    batch,
    params: model.countParams(),
    trainableParams: sizeOf(model.trainableWeights),
    async train() {
      if (!backboneOpt) return await readAndDispose(opt.minimize(lossFn, true, all)!);
      const { value, grads } = tf.variableGrads(lossFn, all);
      const pick = (vars: tf.Variable[]) => vars.map((v) => ({ name: v.name, tensor: grads[v.name] }));
      opt.applyGradients(pick(head));
      backboneOpt.applyGradients(pick(backbone));
      tf.dispose(Object.values(grads));
      await readAndDispose(value);
    },
    infer: () => readAndDispose(inference.model.predict(x) as tf.Tensor),
    inferUnfolded: () => readAndDispose(model.predict(x) as tf.Tensor),
    dispose() {
      tf.dispose([x, labels]);
      opt.dispose();
      backboneOpt?.dispose();
      if (inference.copy) disposeModel(inference.model);
      dispose();
    },
  };
}

/** A registry classifier with its gender recipe, as `deno task train --task gender --model NAME` builds it. */
async function registryClassifier(name: string, batch: number): Promise<NetBench> {
  const cfg = mergeDefined(DEFAULT_TRAIN_CONFIG, recipeFor("gender", name));
  const { model } = await createClassifier(name, [...HEADS], cfg.modelOverrides, cfg.seed + 1);
  return classifierBench(model, await foldBatchNorms(model), batch, cfg, () => disposeModel(model));
}

/** GAN_TRAIN's JSON: mode-seeking fields of GanTrainConfig only (face-features needs the face nets: not here). */
function ganTrainVariant(json: string | undefined): Partial<typeof DEFAULT_GAN_TRAIN> {
  if (!json) return {};
  const v = JSON.parse(json) as Record<string, unknown>;
  const allowed = ["modeSeeking", "modeSeekingForm", "modeSeekingRegion", "modeSeekingPool"];
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw new Error(`GAN_TRAIN: field ${k} is not one of ${allowed.join(", ")}`);
  if (v.modeSeekingForm !== undefined && !(MODE_SEEKING_FORMS as readonly unknown[]).includes(v.modeSeekingForm)) throw new Error(`GAN_TRAIN: modeSeekingForm ${v.modeSeekingForm} is not one of ${MODE_SEEKING_FORMS.join(", ")}`);
  if (v.modeSeekingRegion !== undefined && v.modeSeekingRegion !== "image" && v.modeSeekingRegion !== "face") throw new Error(`GAN_TRAIN: modeSeekingRegion ${v.modeSeekingRegion} is not image or face`);
  if (v.modeSeekingPool !== undefined && !(Number.isInteger(v.modeSeekingPool) && (v.modeSeekingPool as number) >= 1)) throw new Error(`GAN_TRAIN: modeSeekingPool ${JSON.stringify(v.modeSeekingPool)} is not a whole number ≥ 1`);
  if (v.modeSeeking !== undefined && !(typeof v.modeSeeking === "number" && v.modeSeeking >= 0)) throw new Error(`GAN_TRAIN: modeSeeking ${JSON.stringify(v.modeSeeking)} is not a number ≥ 0`);
  return v as Partial<typeof DEFAULT_GAN_TRAIN>;
}

const recipeBatch = (name: string) => mergeDefined(DEFAULT_TRAIN_CONFIG, recipeFor("gender", name)).batchSize;

export const RATIO_NETS: Record<RatioModel, RatioNet> = {
  ref: {
    description: "reference CNN of FACTS.md",
    defaultBatch: 64,
    async build(batch) {
      const model = buildReferenceCnn();
      return classifierBench(model, await foldBatchNorms(model), batch, { lr: 1e-3, backboneLrMult: 1, labelSmoothing: 0 }, () => model.dispose());
    },
  },
  compact_cnn: {
    description: "compact_cnn + gender head, gender recipe",
    defaultBatch: recipeBatch("compact_cnn"),
    build: (batch) => registryClassifier("compact_cnn", batch),
  },
  face_resnet: {
    description: "face_resnet (pretrained) + gender head, gender recipe",
    defaultBatch: recipeBatch("face_resnet"),
    build: (batch) => registryClassifier("face_resnet", batch),
  },
  gan_step: {
    description: "GAN discriminator + generator step + weight average, default config",
    defaultBatch: DEFAULT_GAN_TRAIN.batchSize,
    build(batch) {
      // GAN_MODEL='{"pack":2}' profiles a variant (GanConfig fields over the default); GAN_TRAIN one of the term.
      const t = { ...DEFAULT_GAN_TRAIN, ...ganTrainVariant(Deno.env.get("GAN_TRAIN")) };
      const variant = Deno.env.get("GAN_MODEL");
      const config = { ...DEFAULT_GAN_CONFIG, ...t.model, ...(variant ? JSON.parse(variant) : {}), seed: t.seed + 1 };
      const nets = buildGanNets(config);
      const optG = adam(t.lrG, t.beta1, t.beta2, 1e-8);
      const optD = adam(t.lrD, t.beta1, t.beta2, 1e-8);
      const sn = new SpectralNorm(nets.discriminator, t.seed);
      const real = tf.randomUniform([batch, IMAGE_HEIGHT, IMAGE_WIDTH, IMAGE_CHANNELS], -1, 1, "float32", 1) as tf.Tensor4D;
      const z = latentsForSeeds(Array.from({ length: batch }, (_, i) => i), config.latentDim);
      const rng = new Rng(1);
      const beta = Math.pow(0.5, batch / Math.max(1e-9, t.emaKimg * 1000));
      const p = ganParams(nets);
      return Promise.resolve({
        batch,
        params: p.mapping + p.synthesis + p.discriminator,
        trainableParams: sizeOf([...nets.mapping.trainableWeights, ...nets.synthesis.trainableWeights, ...nets.discriminator.trainableWeights]),
        paramsDetail: { generator: p.mapping + p.synthesis, discriminator: p.discriminator },
        async train() {
          await discriminatorStep(nets, optD, { real, z }, t.augment, rng);
          if (t.spectralNorm) await sn.project();
          await generatorStep(nets, optG, { z }, t.augment, rng, modeSeekingOf(t));
          updateEma(nets, beta);
        },
        infer: () => readAndDispose(generate(nets, z, undefined, false)),
        dispose() {
          tf.dispose([real, z]);
          optG.dispose();
          optD.dispose();
          sn.dispose();
          disposeGanNets(nets);
        },
      });
    },
  },
};
