// Loading @vladmandic/face-api into Deno on the project's own tfjs engine, and its weights from node_modules.
//
// Which build: `dist/face-api.node-wasm.js` (CommonJS). It only `require`s "@tensorflow/tfjs" and
// "@tensorflow/tfjs-backend-wasm", which Deno resolves to the very same CommonJS module instances the
// project imports (tfjs-core `dist/tf-core.node.js`, tfjs-backend-wasm `dist/tf-backend-wasm.node.js`):
// one tfjs engine, one Tensor class, no kernel registered twice, and face-api's ops run on whichever
// backend lib/engine chose (checked by `faceApiEngineCheck()`). The other builds either bundle a second
// tfjs (`face-api.esm.js`), need tfjs-node (`face-api.node.js`) or import tfjs's ESM files, which would be
// a second copy of the wasm backend (`face-api.esm-nobundle.js`).
//
// Weights: read with Deno from `<package>/model/*-weights_manifest.json` + `.bin`, decoded with
// `tf.io.decodeWeights` and handed to `net.loadFromWeightMap` (no fetch, no canvas, no network).
// Tensors of the weight map that a net does not keep are disposed.

import * as tf from "@tensorflow/tfjs-core";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { engineChoice, initEngine } from "../engine/mod.ts";
import type * as FaceApiNs from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { UserError } from "../util/errors.ts";

export type FaceApi = typeof FaceApiNs;
/** face-api bundles its own copy of the tfjs *types*; at run time its tensors are tfjs-core's. */
// deno-lint-ignore no-explicit-any
export type AnyTensor = any;

/** Nets this module can load, by the names of the public API. */
export const MODEL_NAMES = ["detector", "ssd", "landmarks", "recognition", "ageGender"] as const;
export type ModelName = typeof MODEL_NAMES[number];

/** File stem of each net's weights in face-api's model/ folder. */
const MODEL_FILES: Record<ModelName, string> = {
  detector: "tiny_face_detector_model",
  ssd: "ssd_mobilenetv1_model",
  landmarks: "face_landmark_68_model",
  recognition: "face_recognition_model",
  ageGender: "age_gender_model",
};

export interface LoadedNets {
  detector?: FaceApiNs.TinyFaceDetector;
  ssd?: FaceApiNs.SsdMobilenetv1;
  landmarks?: FaceApiNs.FaceLandmark68Net;
  recognition?: FaceApiNs.FaceRecognitionNet;
  ageGender?: FaceApiNs.AgeGenderNet;
}

const require = createRequire(import.meta.url);
let faceApiPromise: Promise<FaceApi> | null = null;
const nets: LoadedNets = {};
const loading = new Map<ModelName, Promise<void>>();

/**
 * face-api's demo photos (sample1–6.jpg: group photos; plus PNG screenshots
 * without a usable face), shipped in node_modules: images "from other
 * sources" for predict examples and tests. Never copied into the repository.
 */
export function sampleImagesDir(): string {
  return join(dirname(modelDir()), "demo");
}

/** Folder holding face-api's weights inside node_modules. */
export function modelDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve("@vladmandic/face-api/package.json");
  } catch (err) {
    throw new Error(
      `faces: cannot find @vladmandic/face-api in node_modules (${(err as Error).message}); ` +
        `run any deno task once so that Deno installs the npm packages of deno.json`,
    );
  }
  return join(dirname(pkg), "model");
}

/**
 * The face-api module, imported once (lazily: it pulls in the whole of @tensorflow/tfjs, ~0.5 s).
 * Starts the project engine first when nobody has, so face-api never picks a backend by itself.
 */
export function faceApi(): Promise<FaceApi> {
  faceApiPromise ??= (async () => {
    if (!engineChoice()) await initEngine({ verbose: false });
    // The specifier is a literal so that `deno check` and the npm resolver both see it.
    const mod = await import("@vladmandic/face-api/dist/face-api.node-wasm.js");
    return ((mod as unknown as { default?: FaceApi }).default ?? mod) as FaceApi;
  })();
  return faceApiPromise;
}

/**
 * Says whether face-api shares the project's tfjs engine: same engine object, same Tensor class,
 * and the backend face-api sees is the one lib/engine set.
 */
export async function faceApiEngineCheck(): Promise<
  { sameEngine: boolean; sameTensorClass: boolean; backend: string; faceApiBackend: string }
> {
  const api = await faceApi();
  // deno-lint-ignore no-explicit-any
  const ftf = api.tf as any;
  return {
    sameEngine: ftf.engine() === tf.engine(),
    sameTensorClass: ftf.Tensor === tf.Tensor,
    backend: tf.getBackend(),
    faceApiBackend: ftf.getBackend(),
  };
}

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

/** Reads one of face-api's weight manifests (by file stem) + its .bin shards into a named tensor map. */
export async function readWeightMap(stem: string): Promise<tf.NamedTensorMap> {
  const dir = modelDir();
  const manifestPath = join(dir, `${stem}-weights_manifest.json`);
  let manifest: ManifestGroup[];
  try {
    manifest = JSON.parse(await Deno.readTextFile(manifestPath));
  } catch (err) {
    throw new UserError(`faces: cannot read the weights manifest ${manifestPath}: ${(err as Error).message}`);
  }
  const map: tf.NamedTensorMap = {};
  for (const group of manifest) {
    const parts = await Promise.all(group.paths.map((p) => Deno.readFile(join(dir, p))));
    const total = parts.reduce((s, p) => s + p.length, 0);
    const buf = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      buf.set(p, off);
      off += p.length;
    }
    Object.assign(map, tf.io.decodeWeights(buf.buffer, group.weights));
  }
  return map;
}

function createNet(api: FaceApi, name: ModelName) {
  switch (name) {
    case "detector":
      return new api.TinyFaceDetector();
    case "ssd":
      return new api.SsdMobilenetv1();
    case "landmarks":
      return new api.FaceLandmark68Net();
    case "recognition":
      return new api.FaceRecognitionNet();
    case "ageGender":
      return new api.AgeGenderNet();
  }
}

/** All tensors a net holds (age/gender keeps its feature extractor separately). */
function heldTensors(net: FaceApiNs.NeuralNetwork<unknown>): Set<unknown> {
  const held = new Set<unknown>(net.getParamList().map((p) => p.tensor));
  const extractor = (net as unknown as { faceFeatureExtractor?: FaceApiNs.NeuralNetwork<unknown> }).faceFeatureExtractor;
  if (extractor) { for (const p of extractor.getParamList()) held.add(p.tensor); }
  return held;
}

async function loadOne(name: ModelName): Promise<void> {
  if (nets[name]) return;
  const api = await faceApi();
  const map = await readWeightMap(MODEL_FILES[name]);
  const net = createNet(api, name);
  net.loadFromWeightMap(map as AnyTensor);
  const held = heldTensors(net as FaceApiNs.NeuralNetwork<unknown>);
  for (const t of Object.values(map)) if (!held.has(t)) t.dispose();
  // deno-lint-ignore no-explicit-any
  (nets as any)[name] = net;
}

/** Loads the named nets (all when omitted); concurrent and repeated calls load each net once. */
export async function loadNets(which: readonly ModelName[] = MODEL_NAMES): Promise<void> {
  for (const name of which) {
    if (!(MODEL_NAMES as readonly string[]).includes(name)) {
      throw new Error(`faces: unknown model '${name}'; expected one of ${MODEL_NAMES.join(", ")}`);
    }
  }
  await Promise.all(which.map((name) => {
    let p = loading.get(name);
    if (!p) {
      p = loadOne(name).catch((err) => {
        loading.delete(name);
        throw err;
      });
      loading.set(name, p);
    }
    return p;
  }));
}

/** A loaded net (loading it first when needed). */
export async function net<K extends ModelName>(name: K): Promise<NonNullable<LoadedNets[K]>> {
  await loadNets([name]);
  return nets[name] as NonNullable<LoadedNets[K]>;
}
