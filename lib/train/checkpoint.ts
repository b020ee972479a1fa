/**
 * Checkpoints: a model directory (model.json + weights.bin + config.json,
 * and for `last` also the optimizer's state and the trainer's state) written
 * into a sibling temp folder and swapped in by renames, so a kill at any
 * moment leaves either the old or the new checkpoint, never half of one.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { join } from "node:path";
import { exists, writeFileAtomic, writeJsonAtomic } from "../util/fs.ts";
import { fileIO } from "../models/io.ts";

export interface SaveOptions {
  model: tfl.LayersModel;
  /** Preprocessing, labels, task, model name and config: everything evaluate/predict need. */
  config: Record<string, unknown>;
  optimizer?: tf.Optimizer;
  /** More optimizers by file stem (e.g. the backbone's own Adam), saved as `<stem>.{json,bin}`. */
  extraOptimizers?: Record<string, tf.Optimizer>;
  state?: Record<string, unknown>;
}

export async function saveOptimizer(dir: string, opt: tf.Optimizer, stem = "optimizer"): Promise<void> {
  const weights = await opt.getWeights();
  // getWeights() makes a fresh scalar for the iteration count ("iter"); the rest are the optimizer's own variables.
  const fresh = weights.filter((w) => w.name === "iter").map((w) => w.tensor);
  const specs = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { name, tensor } of weights) {
    const data = await tensor.data();
    const bytes = new Uint8Array(Float32Array.from(data as Float32Array).buffer);
    specs.push({ name, shape: tensor.shape, offset, length: data.length });
    chunks.push(bytes);
    offset += bytes.length;
  }
  const all = new Uint8Array(offset);
  let o = 0;
  for (const c of chunks) all.set(c, o), o += c.length;
  tf.dispose(fresh);
  await writeFileAtomic(join(dir, `${stem}.bin`), all);
  await writeJsonAtomic(join(dir, `${stem}.json`), { className: opt.getClassName(), config: opt.getConfig(), weights: specs });
}

/** Restores an optimizer's state (moments, iteration count) saved by saveCheckpoint. */
export async function loadOptimizerState(dir: string, opt: tf.Optimizer, stem = "optimizer"): Promise<boolean> {
  if (!(await exists(join(dir, `${stem}.json`)))) return false;
  const meta = JSON.parse(await Deno.readTextFile(join(dir, `${stem}.json`))) as { weights: { name: string; shape: number[]; offset: number; length: number }[] };
  const bin = await Deno.readFile(join(dir, `${stem}.bin`));
  const named = meta.weights.map((w) => ({
    name: w.name,
    tensor: tf.tensor(new Float32Array(bin.slice(w.offset, w.offset + w.length * 4).buffer), w.shape),
  }));
  try {
    await opt.setWeights(named);
  } finally {
    // setWeights keeps its own references (variables share the data), so the inputs go.
    tf.dispose(named.map((w) => w.tensor));
  }
  return true;
}

/**
 * Fills a fresh `dir.new` with `fill`, then swaps it in by renames (dir → dir.old,
 * dir.new → dir, dir.old removed last): a kill at any moment leaves a complete copy
 * in `dir` or `dir.old`.
 */
export async function writeDirAtomic(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const fresh = `${dir}.new`, old = `${dir}.old`;
  await Deno.remove(fresh, { recursive: true }).catch(() => {});
  await Deno.mkdir(fresh, { recursive: true });
  await fill(fresh);
  await Deno.remove(old, { recursive: true }).catch(() => {});
  if (await exists(dir)) await Deno.rename(dir, old);
  await Deno.rename(fresh, dir);
  await Deno.remove(old, { recursive: true }).catch(() => {});
}

/** Saves into `dir` atomically (dir.new → dir, the previous copy removed last). */
export async function saveCheckpoint(dir: string, opts: SaveOptions): Promise<void> {
  await writeDirAtomic(dir, async (fresh) => {
    await opts.model.save(fileIO(fresh));
    await writeJsonAtomic(join(fresh, "config.json"), opts.config);
    if (opts.optimizer) await saveOptimizer(fresh, opts.optimizer);
    for (const [stem, opt] of Object.entries(opts.extraOptimizers ?? {})) await saveOptimizer(fresh, opt, stem);
    if (opts.state) await writeJsonAtomic(join(fresh, "state.json"), opts.state);
  });
}

export { resolveCheckpoint } from "../models/io.ts";


