/**
 * Demo stages "gender", "haircolor" and "multitask": train the compact CNN, the
 * pretrained face-api ResNet (short `demo` preset) and the frozen-descriptor
 * baseline (seconds), evaluate them on the
 * held-out test split, and predict on face-api's sample photos (faces found
 * and re-framed first). The gender stage also evaluates face-api's own
 * age/gender net as a no-training baseline.
 */
import { join } from "node:path";
import type { DemoContext } from "./demo.ts";
import { initEngine } from "../engine/mod.ts";
import { COMPARED_MODELS, comparisonConfig, trainFresh } from "../train/compare.ts";
import { evaluateRun, FACEAPI_BASELINE } from "../eval/evaluate.ts";
import { predictFolder } from "../eval/predict.ts";
import { sampleImagesDir } from "../faces/mod.ts";
import { comparisonChart } from "../eval/mod.ts";
import { saveChart } from "../viz/vega.ts";
import type { SplitTask } from "../data/split.ts";
import { TASK_HEADS } from "../data/split.ts";
import { writeCsvAtomic } from "../util/csv.ts";


/** Demo presets → classifier presets (quick and debug both train the classifiers for about a minute each). */
const CLASSIFIER_PRESET_OF: Record<string, string> = { quick: "debug", debug: "debug", demo: "demo", full: "full" };

export async function runClassifyStage(ctx: DemoContext, task: SplitTask): Promise<Record<string, unknown>> {
  await initEngine({ backend: ctx.backend });
  const out = join(ctx.out, task);
  const results: Record<string, unknown> = {};
  const rows: { model: string; head: string; accuracy: number; macro_f1: number; train_img_per_s: number; params: number }[] = [];
  for (const model of COMPARED_MODELS) {
    const cfg = comparisonConfig({ dataroot: ctx.dataroot, attributes: ctx.attributes, task, preset: CLASSIFIER_PRESET_OF[ctx.trainPreset], seed: ctx.seed, checkpointsDir: ctx.checkpoints, splitDir: ctx.splitDir, expPrefix: "demo" }, model);
    // Where the stage's time goes, per model (summary.json): train (incl. calibration), evaluate, predict.
    const seconds: Record<string, number> = {};
    let mark = performance.now();
    const lap = (what: string) => {
      const now = performance.now();
      seconds[what] = Number(((now - mark) / 1000).toFixed(1));
      mark = now;
    };
    const run = await trainFresh(cfg);
    lap("train");
    const trainImgPerSec = run.history.reduce((a, m) => a + m.img_per_s, 0) / run.history.length;
    const ev = await evaluateRun({ runDir: run.runDir, ckpt: "best", split: "test", splitDir: ctx.splitDir, quiet: true });
    lap("evaluate");
    const pred = await predictFolder({ runDir: run.runDir, images: ctx.images ?? sampleImagesDir(), ckpt: "best", quiet: true });
    lap("predict");
    for (const head of TASK_HEADS[task]) {
      const m = ev.metrics[head];
      rows.push({ model, head, accuracy: m.accuracy, macro_f1: m.macro_f1, train_img_per_s: trainImgPerSec, params: run.params });
      console.log(`${task} ${model} ${head}: test accuracy ${m.accuracy.toFixed(3)}, macro-F1 ${m.macro_f1.toFixed(3)} (${run.history.length} epochs, ${trainImgPerSec.toFixed(1)} img/s training)`);
    }
    console.log(`  ${model}: ${Object.entries(seconds).map(([k, v]) => `${k} ${v} s`).join(", ")}`);
    console.log(`  predictions on ${pred.rows.length} outside photos (${pred.rows.filter((r) => r.face_found).length} with a face): ${pred.csvPath}`);
    results[model] = { seconds, runDir: run.runDir, metrics: ev.metrics, ece: ev.ece, trainImgPerSec, evalImgPerSec: ev.imgPerSec, params: run.params, bestEpoch: run.bestEpoch, predictions: pred.csvPath };
  }
  if (task === "gender") {
    const ev = await evaluateRun({ runDir: join(ctx.checkpoints, FACEAPI_BASELINE), ckpt: "best", split: "test", dataroot: ctx.dataroot, splitDir: ctx.splitDir, quiet: true });
    const m = ev.metrics.gender;
    rows.push({ model: FACEAPI_BASELINE, head: "gender", accuracy: m.accuracy, macro_f1: m.macro_f1, train_img_per_s: 0, params: 0 });
    console.log(`gender ${FACEAPI_BASELINE} (no training): test accuracy ${m.accuracy.toFixed(3)}, macro-F1 ${m.macro_f1.toFixed(3)}`);
    results[FACEAPI_BASELINE] = { metrics: ev.metrics };
  }
  await Deno.mkdir(out, { recursive: true });
  await writeCsvAtomic(join(out, "comparison.csv"), rows);
  const chart = await saveChart(comparisonChart(rows, `${task}: models on the test split`), join(out, "comparison"));
  console.log(`comparison: ${chart.png}`);
  return results;
}
