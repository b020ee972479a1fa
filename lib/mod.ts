/**
 * Tiny Portraits Lab — what notebooks and scripts import.
 *   import * as tp from "../lib/mod.ts";
 */
export * from "./data/mod.ts";
export * from "./engine/mod.ts";
export * from "./viz/vega.ts";
export * from "./viz/mosaic.ts";
export * from "./viz/display.ts";
export * from "./explore/mod.ts";
export * from "./util/progress.ts";
export { Rng } from "./util/rng.ts";
export { default as pl } from "nodejs-polars";
export * from "./models/mod.ts";
export * from "./train/run.ts";
export * from "./train/compare.ts";
export * from "./eval/mod.ts";
export * from "./eval/evaluate.ts";
export * from "./eval/predict.ts";
export { detectFaces, faceDescriptors, portraitFromImage, sampleImagesDir } from "./faces/mod.ts";
export { writeFileAtomic, writeJsonAtomic } from "./util/fs.ts";
export { buildGan, DEFAULT_GAN_CONFIG, type GanConfig, ganParams } from "./gan/nets.ts";
export { GAN_PRESETS, ganTrainRun, type GanTrainConfig, resolveGanConfig } from "./gan/train.ts";
export { generateImages, loadGenerator, parseSeeds } from "./gan/generate.ts";
export { copyCheck, formatCopyCheck } from "./gan/copies.ts";
export { descriptorStats, frechetDistance, gaussianStats } from "./eval/frechet.ts";
export { judgeGenerated } from "./gan/judge.ts";
export { type FeatureCache, type FeatureExtractor, loadFeatureCache } from "./data/feature_cache.ts";
export { buildDescriptorNet, DESCRIPTOR_MODEL, descriptorFeatures, headModelFrom, headProbabilities, trainDescriptorHead, trainDescriptorHeads } from "./train/descriptor_head.ts";
