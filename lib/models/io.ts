/**
 * fileIO(dir): a tfjs IOHandler that saves / loads a model as `dir/model.json` + `dir/weights.bin`
 * (the layout of tfjs's file:// handler, which Deno lacks), for checkpoints of every model:
 *
 *   await model.save(fileIO("checkpoints/exp/models/last"));           // (+ {includeOptimizer: true})
 *   const m = await tfl.loadLayersModel(fileIO("checkpoints/exp/models/last"));
 *
 * Writes are atomic per file (temp file beside it + rename): weights.bin first, then model.json,
 * so a reader never sees a half-written file. model.json also records the byte length and an
 * FNV-1a checksum of weights.bin, so a pair torn by a crash between the two renames (new weights,
 * old model.json) is reported on load instead of silently loading wrong weights. Other files in
 * `dir` (config.json, logs) are left alone. Custom layers must be registered
 * (tf.serialization.registerClass) by importing their module before loading.
 *
 * Tests: deno test -A tests/models/io_test.ts
 */
import * as tf from "@tensorflow/tfjs-core";
import { join } from "node:path";
import { UserError } from "../util/errors.ts";
import { exists } from "../util/fs.ts";

export const MODEL_FILE = "model.json";
export const WEIGHTS_FILE = "weights.bin";

interface WeightsCheck {
  algorithm: "fnv1a32";
  bytes: number;
  value: string;
}

interface StoredModelJSON extends tf.io.ModelJSON {
  weightsCheck?: WeightsCheck;
}

/** FNV-1a 32-bit over the bytes, as 8 hex digits (catches a mismatched pair; not a security hash). */
function fnv1a32(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

let tmpCounter = 0;
function tempPath(path: string): string {
  tmpCounter += 1;
  return `${path}.tmp-${Deno.pid}-${Date.now()}-${tmpCounter}`;
}

function weightBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

async function save(dir: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  const topology = artifacts.modelTopology;
  if (topology == null || topology instanceof ArrayBuffer) {
    throw new Error(`fileIO(${dir}): expected a JSON model topology (a tfjs-layers model), got ${topology == null ? "none" : "a binary GraphDef"}`);
  }
  const weights = weightBytes(artifacts.weightData);
  const json: StoredModelJSON = {
    modelTopology: topology,
    format: artifacts.format ?? "layers-model",
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
    weightsCheck: { algorithm: "fnv1a32", bytes: weights.length, value: fnv1a32(weights) },
  };
  if (artifacts.trainingConfig != null) json.trainingConfig = artifacts.trainingConfig;
  if (artifacts.userDefinedMetadata != null) json.userDefinedMetadata = artifacts.userDefinedMetadata;
  if (artifacts.signature != null) json.signature = artifacts.signature;
  if (artifacts.modelInitializer != null) json.modelInitializer = artifacts.modelInitializer;
  if (artifacts.initializerSignature != null) json.initializerSignature = artifacts.initializerSignature;

  await Deno.mkdir(dir, { recursive: true });
  const binPath = join(dir, WEIGHTS_FILE), jsonPath = join(dir, MODEL_FILE);
  const binTmp = tempPath(binPath), jsonTmp = tempPath(jsonPath);
  try {
    await Deno.writeFile(binTmp, weights);
    await Deno.writeTextFile(jsonTmp, JSON.stringify(json));
    await Deno.rename(binTmp, binPath);
    await Deno.rename(jsonTmp, jsonPath);
  } catch (err) {
    await Deno.remove(binTmp).catch(() => {});
    await Deno.remove(jsonTmp).catch(() => {});
    throw new Error(`fileIO(${dir}): saving failed: ${(err as Error).message}`);
  }
  return {
    modelArtifactsInfo: {
      dateSaved: new Date(),
      modelTopologyType: "JSON",
      modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
      weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
      weightDataBytes: weights.length,
    },
  };
}

async function load(dir: string): Promise<tf.io.ModelArtifacts> {
  const jsonPath = join(dir, MODEL_FILE);
  let json: StoredModelJSON;
  try {
    json = JSON.parse(await Deno.readTextFile(jsonPath));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UserError(`fileIO: no saved model in ${dir} (${MODEL_FILE} is missing)`);
    throw new UserError(`fileIO: cannot read ${jsonPath}: ${(err as Error).message}`);
  }
  if (json.modelTopology == null) throw new UserError(`fileIO: ${jsonPath} has no modelTopology`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of json.weightsManifest ?? []) {
    specs.push(...group.weights);
    for (const p of group.paths) {
      const path = join(dir, p);
      try {
        parts.push(await Deno.readFile(path));
      } catch (err) {
        throw new UserError(`fileIO: cannot read the weights ${path} named in ${jsonPath}: ${(err as Error).message}`);
      }
    }
  }
  const total = parts.reduce((s, p) => s + p.length, 0);
  const weights = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    weights.set(p, off);
    off += p.length;
  }
  const check = json.weightsCheck;
  if (check) {
    if (check.bytes !== total || check.value !== fnv1a32(weights)) {
      throw new Error(
        `fileIO: the weights in ${dir} do not belong to its ${MODEL_FILE} (expected ${check.bytes} bytes, fnv1a32 ${check.value}; ` +
          `found ${total} bytes${check.bytes === total ? `, fnv1a32 ${fnv1a32(weights)}` : ""}); an interrupted save? save again`,
      );
    }
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData: weights.buffer,
  };
  if (json.trainingConfig != null) artifacts.trainingConfig = json.trainingConfig;
  if (json.userDefinedMetadata != null) artifacts.userDefinedMetadata = json.userDefinedMetadata;
  if (json.signature != null) artifacts.signature = json.signature;
  if (json.modelInitializer != null) artifacts.modelInitializer = json.modelInitializer;
  if (json.initializerSignature != null) artifacts.initializerSignature = json.initializerSignature;
  return artifacts;
}

/**
 * An IOHandler over a folder: `model.save(fileIO(dir))` writes dir/model.json + dir/weights.bin
 * atomically (creating dir), `tfl.loadLayersModel(fileIO(dir))` reads them back (checking that the
 * pair belongs together). Works for any tfjs-layers model, with or without optimizer state.
 */
export function fileIO(dir: string): tf.io.IOHandler {
  if (typeof dir !== "string" || dir === "") throw new Error(`fileIO: expected dir to be a folder path, got ${JSON.stringify(dir)}`);
  return {
    save: (artifacts) => save(dir, artifacts),
    load: () => load(dir),
  };
}

/**
 * Finds the usable copy of a checkpoint after a possible kill mid-save:
 * `dir` if complete, else `dir.old` (the previous one). Null if none.
 */
export async function resolveCheckpoint(dir: string): Promise<string | null> {
  for (const d of [dir, `${dir}.old`]) {
    if ((await exists(join(d, "model.json"))) && (await exists(join(d, "config.json")))) return d;
  }
  return null;
}
