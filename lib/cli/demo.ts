/**
 * deno task demo [--dataroot DIR] [--count N] [--seed S] [--out DIR] [--stages a,b] [--backend NAME]
 *
 * The product's main job: runs every stage that exists, end to end, on the
 * embedded procedural dataset (generated on first use into data/) or on a
 * real Tiny Portraits folder given with --dataroot, and leaves its reports,
 * charts and checkpoints behind under --out (default reports/demo).
 *
 * Stages so far:
 *   data    generate/open the dataset, validate every image, build the pixel
 *           cache, class mosaic, class-balance chart, normalisation constants,
 *           augmented batch preview
 *   engine  choose the tfjs backend and time one forward/backward step
 *   explore exploration report: tables, charts, pixel statistics, scored
 *           outliers (bad_images.csv), precision/recall vs planted ground truth
 *   split   stratified train/val/test splits per task, bad images left out
 *   gender, haircolor, multitask
 *           train the compact CNN, the pretrained face-api ResNet and the
 *           frozen-descriptor baseline (short `debug` preset by default),
 *           evaluate on the test split, predict on outside photos; gender
 *           also scores face-api's age/gender net as a baseline
 *   gan     a short GAN run (preset from --train-preset: quick→quick,
 *           debug→debug, demo→demo, full→full): sample grids per snapshot, Fréchet descriptor distance
 *           curve, seeds + interpolation strip, and the attributes of generated
 *           portraits vs real ones as judged by the multitask classifier
 */
import { join, resolve } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { runDataStage } from "./_demo_data.ts";
import { runEngineStage } from "./_demo_engine.ts";
import { runExploreStage, runSplitStage } from "./_demo_explore.ts";
import { runClassifyStage } from "./_demo_classify.ts";
import { runGanStage } from "./_demo_gan.ts";
import { writeJsonAtomic } from "../util/fs.ts";
import { formatDuration } from "../util/progress.ts";
import { UserError } from "../util/errors.ts";

export const STAGES = ["data", "engine", "explore", "split", "gender", "haircolor", "multitask", "gan"] as const;
export type StageName = typeof STAGES[number];

const SPEC = {
  dataroot: { type: "string", help: "real Tiny Portraits folder (default: generated procedural set)" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  count: { type: "int", positive: true, default: 600, help: "procedural images to generate" },
  seed: { type: "int", nonNegative: true, default: 1, help: "seed for generation, splits, training" },
  out: { type: "string", default: "reports/demo", help: "where reports and charts go" },
  "data-dir": { type: "string", default: "data", help: "where the procedural set is generated" },
  stages: { type: "string", default: STAGES.join(","), help: "comma-separated stages to run" },
  backend: { type: "string", help: "force a tfjs backend (tensorflow|onednn|wasm|cpu|webgpu)" },
  checkpoints: { type: "string", default: "checkpoints", help: "where training runs go" },
  "train-preset": {
    type: "string",
    choices: ["quick", "debug", "demo", "full"],
    default: "quick",
    help: "quick: classifiers debug + GAN quick (about 5 minutes in all); debug: + GAN debug (tests); demo: both demo (longer); full: the recipes",
  },
  "split-dir": { type: "string", help: "split folder (default assets/splits/<dataset>)" },
  images: { type: "string", help: "outside photos to predict on (default: face-api's sample photos)" },
} as const;

export interface DemoContext {
  dataroot: string;
  attributes?: string;
  synthetic: boolean;
  out: string;
  seed: number;
  count: number;
  backend?: string;
  checkpoints: string;
  trainPreset: string;
  splitDir?: string;
  images?: string;
  /** Filled by stages for the final summary. */
  results: Record<string, unknown>;
}

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("demo", Deno.args, SPEC);
    if (f.help) return void console.log(usage("demo", SPEC));
    const stages = f.stages.split(",").map((s) => s.trim()).filter(Boolean);
    for (const s of stages) {
      if (!(STAGES as readonly string[]).includes(s)) throw new UserError(`demo: unknown stage '${s}'; expected some of ${STAGES.join(",")}`);
    }
    const synthetic = !f.dataroot;
    const ctx: DemoContext = {
      dataroot: resolve(f.dataroot ?? join(f["data-dir"], `synthetic-${f.count}-s${f.seed}`)),
      attributes: f.attributes,
      synthetic,
      out: resolve(f.out),
      seed: f.seed,
      count: f.count,
      backend: f.backend,
      checkpoints: resolve(f.checkpoints),
      trainPreset: f["train-preset"],
      splitDir: f["split-dir"],
      images: f.images,
      results: {},
    };
    const t0 = performance.now();
    const stageSeconds: Record<string, number> = {};
    console.log(`demo: ${synthetic ? `procedural set of ${f.count} portraits (seed ${f.seed})` : `dataroot ${ctx.dataroot}`}, reports in ${ctx.out}`);
    for (const s of stages as StageName[]) {
      const ts = performance.now();
      console.log(`\n== stage ${s} ==`);
      if (s === "data") ctx.results.data = await runDataStage(ctx);
      else if (s === "engine") ctx.results.engine = await runEngineStage(ctx);
      else if (s === "explore") ctx.results.explore = await runExploreStage(ctx);
      else if (s === "split") ctx.results.split = await runSplitStage(ctx);
      else if (s === "gan") ctx.results.gan = await runGanStage(ctx);
      else ctx.results[s] = await runClassifyStage(ctx, s);
      stageSeconds[s] = Number(((performance.now() - ts) / 1000).toFixed(1));
      console.log(`== stage ${s} done in ${formatDuration(stageSeconds[s])} ==`);
    }
    const summary = { dataroot: ctx.dataroot, synthetic, stages, seconds: (performance.now() - t0) / 1000, stage_seconds: stageSeconds, ...ctx.results };
    await writeJsonAtomic(join(ctx.out, "summary.json"), summary);
    console.log(`\ndemo finished in ${formatDuration(summary.seconds)}; summary: ${join(ctx.out, "summary.json")}`);
  });
}
