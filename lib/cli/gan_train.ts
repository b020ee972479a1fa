/**
 * deno task gan:train --dataroot DIR --exp-name NAME --kimg N [--resume]
 *   [--preset tiny|demo|full] [--condition none|gender|hair_color] [--batch-size N]
 *   [--lr-g X] [--lr-d X] [--augment color,translation,cutout] [--snapshot-kimg N]
 *   [--max-minutes M] [--metric-images N] [--seed N] [--backend NAME] [--checkpoints DIR]
 * Trains a GAN on 108×84 portraits into checkpoints/<exp>/: run.log, fdd.csv + chart,
 * samples/grid-*.png (fixed latents), snapshots/latest (resumable) and
 * snapshots/network-* (EMA generator per snapshot, for gan:generate). See lib/train/gan.ts.
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { GAN_CONDITIONS, GAN_PRESETS, type GanCondition, ganTrainRun, type GanTrainConfig, resolveGanConfig, resumeGanConfig } from "../train/gan.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  dataroot: { type: "string", help: "Tiny Portraits folder" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  "exp-name": { type: "string", help: "run name: checkpoints/<exp-name>/" },
  kimg: { type: "number", positive: true, help: "thousands of real images to show the discriminator" },
  preset: { type: "string", choices: Object.keys(GAN_PRESETS), help: "named preset (tiny = seconds, demo = minutes)" },
  condition: { type: "string", choices: GAN_CONDITIONS, help: "condition on a label (projection discriminator)" },
  "batch-size": { type: "int", positive: true, help: "batch size" },
  "lr-g": { type: "number", positive: true, help: "generator learning rate (Adam, β1 0.5, β2 0.999)" },
  "lr-d": { type: "number", positive: true, help: "discriminator learning rate" },
  "spectral-norm": { type: "boolean", default: false, help: "spectral normalisation of the discriminator (projection after each step)" },
  beta1: { type: "number", nonNegative: true, help: "Adam β1 of both nets" },
  beta2: { type: "number", positive: true, help: "Adam β2 of both nets" },
  augment: { type: "string", help: "DiffAugment policy: comma-separated of color, translation, cutout; 'none' = off" },
  "snapshot-kimg": { type: "number", positive: true, help: "kimg between snapshots (grid, metric, checkpoint)" },
  "max-minutes": { type: "number", positive: true, help: "stop after this much training time (a CPU budget)" },
  "metric-images": { type: "int", nonNegative: true, help: "images per side for the Fréchet descriptor distance (0 = off)" },
  "ema-kimg": { type: "number", positive: true, help: "half-life of the generator weight average, kimg" },
  seed: { type: "int", nonNegative: true, help: "seed" },
  backend: { type: "string", help: "force a tfjs backend" },
  resume: { type: "boolean", default: false, help: "continue from snapshots/latest" },
  checkpoints: { type: "string", help: "checkpoints folder (default checkpoints)" },
  "cache-dir": { type: "string", help: "cache folder (default $TP_CACHE_DIR/<dataset>-<hash>, else <dataroot>/.tp_cache if writable, else ~/.cache/tiny-portraits/…)" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("gan:train", Deno.args, SPEC);
    if (f.help) return void console.log(usage("gan:train", SPEC));
    if (!f["exp-name"] || (!f.dataroot && !f.resume)) throw new UserError("gan:train: --dataroot DIR and --exp-name NAME are required (--resume needs only --exp-name)\n" + usage("gan:train", SPEC));
    if (f.resume && f.preset) throw new UserError("gan:train: --resume continues the run with its saved settings; drop --preset");
    await initEngine({ backend: f.backend });
    const overrides: Partial<GanTrainConfig> = {
      dataroot: f.dataroot,
      cacheDir: f["cache-dir"],
      attributes: f.attributes,
      kimg: f.kimg,
      condition: f.condition as GanCondition | undefined,
      batchSize: f["batch-size"],
      lrG: f["lr-g"],
      lrD: f["lr-d"],
      spectralNorm: f["spectral-norm"] ? true : undefined,
      beta1: f.beta1,
      beta2: f.beta2,
      augment: f.augment === "none" ? "" : f.augment,
      snapshotKimg: f["snapshot-kimg"],
      maxMinutes: f["max-minutes"],
      metricImages: f["metric-images"],
      emaKimg: f["ema-kimg"],
      seed: f.seed,
      resume: f.resume,
      checkpointsDir: f.checkpoints,
    };
    const cfg = f.resume
      ? await resumeGanConfig({ expName: f["exp-name"], checkpointsDir: f.checkpoints }, overrides)
      : resolveGanConfig({ dataroot: f.dataroot!, expName: f["exp-name"] }, f.preset, overrides);
    const r = await ganTrainRun(cfg);
    const last = r.state.snapshots.at(-1);
    console.log(`${(r.state.imagesShown / 1000).toFixed(2)} kimg in ${(r.state.trainSeconds / 60).toFixed(1)} min` +
      `${last?.fdd != null ? `, FDD ${last.fdd.toFixed(4)}` : ""}; run in ${r.runDir} (latest grid: ${r.runDir}/samples/grid-latest.png)`);
  });
}
