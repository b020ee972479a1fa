/** Demo stage "gan": a short GAN run on the dataset, samples, interpolation, metric curve, attribute check. */
import { join } from "node:path";
import type { DemoContext } from "./demo.ts";
import { initEngine } from "../engine/mod.ts";
import { ganTrainRun, resolveGanConfig } from "../gan/train.ts";
import { generateImages } from "../gan/generate.ts";
import { judgeGenerated } from "../gan/judge.ts";
import { saveChart } from "../viz/vega.ts";
import { exists, writeFileAtomic } from "../util/fs.ts";
import { UserError } from "../util/errors.ts";

/** Demo presets → GAN presets. */
const PRESET_OF: Record<string, string> = { quick: "quick", debug: "debug", demo: "demo", full: "full" };

export async function runGanStage(ctx: DemoContext): Promise<Record<string, unknown>> {
  await initEngine({ backend: ctx.backend });
  const expName = "demo_gan";
  const preset = PRESET_OF[ctx.trainPreset];
  if (!preset) throw new UserError(`demo: unknown --train-preset '${ctx.trainPreset}'; expected one of ${Object.keys(PRESET_OF).join(", ")}`);
  const cfg = resolveGanConfig({ dataroot: ctx.dataroot, expName }, preset, {
    attributes: ctx.attributes,
    seed: ctx.seed,
    checkpointsDir: ctx.checkpoints,
    badImages: (await exists(join(ctx.out, "explore", "bad_images.csv"))) ? join(ctx.out, "explore", "bad_images.csv") : undefined,
    quiet: true,
  });
  await Deno.remove(join(ctx.checkpoints, expName), { recursive: true }).catch(() => {});
  const run = await ganTrainRun(cfg);
  const out = join(ctx.out, "gan");
  const gen = await generateImages({ network: run.runDir, seeds: [85, 265, 297, 849, 1, 2, 3, 4], trunc: 0.7, out, interpSteps: 8 });
  const last = run.state.snapshots.at(-1)!;
  console.log(`GAN (${preset}): ${(run.state.imagesShown / 1000).toFixed(2)} kimg in ${(run.state.trainSeconds / 60).toFixed(1)} min, ` +
    `${last.img_per_s.toFixed(1)} img/s, FDD ${run.state.snapshots.map((s) => s.fdd?.toFixed(3)).join(" → ")}`);
  console.log(`  samples: ${gen.grid}, interpolation: ${gen.interpolation}, training grids: ${join(run.runDir, "samples")}`);
  const result: Record<string, unknown> = { runDir: run.runDir, params: run.params, snapshots: run.state.snapshots, grid: gen.grid, interpolation: gen.interpolation };
  const judgeRun = join(ctx.checkpoints, "demo_multitask_face_resnet");
  if (await exists(join(judgeRun, "models", "best"))) {
    const j = await judgeGenerated({ network: run.runDir, judgeRun, dataroot: ctx.dataroot, count: 256, seed: ctx.seed });
    await writeFileAtomic(join(out, "attributes.csv"), j.table.writeCSV().toString());
    await saveChart(j.chart, join(out, "attributes"));
    console.log(`  attributes of generated vs real (judged by ${judgeRun}):\n${j.table.toString()}`);
    result.attributes = j.table.toRecords();
  } else console.log(`  (no ${judgeRun} to judge generated attributes with; run the multitask stage first)`);
  return result;
}
