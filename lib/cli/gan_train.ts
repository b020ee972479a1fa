/**
 * deno task gan:train --dataroot DIR --exp-name NAME --kimg N [--resume]
 *   [--preset debug|quick|demo|full] [--condition none|gender|hair_color] [--discriminator image|projected] [--projected-view face|portrait|both] [--batch-size N]
 *   [--g-widths 128,64,32,16] [--d-widths 16,32,64,128,256] [--mbstd-group N] [--pack N]
 *   [--lr-g X] [--lr-d X] [--lr-rampdown F] [--augment color,translation,cutout] [--mode-seeking λ] [--mode-seeking-form all|pairs|batch] [--mode-seeking-region face|image|face-features] [--mode-seeking-pool N] [--snapshot-kimg N]
 *   [--max-minutes M] [--metric-images N] [--seed N] [--backend NAME] [--checkpoints DIR]
 * Trains a GAN on 108×84 portraits into checkpoints/<exp>/: run.log, fdd.csv + chart,
 * samples/grid-*.png (fixed latents), snapshots/latest (resumable) and
 * snapshots/network-* (EMA generator per snapshot, for gan:generate). See lib/gan/train.ts.
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { GAN_FIELDS, GAN_MODEL_FIELDS, GAN_PRESETS, ganTrainRun, type GanTrainConfig, resolveGanConfig, resumeGanConfig } from "../gan/train.ts";
import { UserError } from "../util/errors.ts";

/** Flags of the config and model fields (lib/gan/train.ts GAN_FIELDS, GAN_MODEL_FIELDS) plus those of the command itself. */
const SPEC = {
  ...(Object.fromEntries(Object.values(GAN_FIELDS).map(({ flag, ...spec }) => [flag, spec])) as { [K in keyof typeof GAN_FIELDS as typeof GAN_FIELDS[K]["flag"]]: Omit<typeof GAN_FIELDS[K], "flag"> }),
  ...(Object.fromEntries(Object.values(GAN_MODEL_FIELDS).map(({ flag, ...spec }) => [flag, spec])) as {
    [K in keyof typeof GAN_MODEL_FIELDS as typeof GAN_MODEL_FIELDS[K]["flag"]]: Omit<typeof GAN_MODEL_FIELDS[K], "flag">;
  }),
  "exp-name": { type: "string", help: "run name: checkpoints/<exp-name>/" },
  preset: { type: "string", choices: Object.keys(GAN_PRESETS), help: "named preset (debug = seconds, quick = about a minute, demo = minutes)" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("gan:train", Deno.args, SPEC);
    if (f.help) return void console.log(usage("gan:train", SPEC));
    if (!f["exp-name"] || (!f.dataroot && !f.resume)) throw new UserError("gan:train: --dataroot DIR and --exp-name NAME are required (--resume needs only --exp-name)\n" + usage("gan:train", SPEC));
    if (f.resume && f.preset) throw new UserError("gan:train: --resume continues the run with its saved settings; drop --preset");
    await initEngine({ backend: f.backend });
    // Every schema field from its flag (undefined when not given: the layers below keep their value).
    const overrides = Object.fromEntries(Object.entries(GAN_FIELDS).map(([key, spec]) => [key, (f as Record<string, unknown>)[spec.flag]])) as Partial<GanTrainConfig>;
    if (!f.resume) delete overrides.resume;
    const model = Object.fromEntries(Object.entries(GAN_MODEL_FIELDS).map(([key, spec]) => [key, (f as Record<string, unknown>)[spec.flag]]).filter(([, v]) => v !== undefined));
    if (Object.keys(model).length) overrides.model = model as GanTrainConfig["model"];
    if (overrides.augment === "none") overrides.augment = "";
    const cfg = f.resume
      ? await resumeGanConfig({ expName: f["exp-name"], checkpointsDir: f.checkpoints }, overrides)
      : resolveGanConfig({ dataroot: f.dataroot!, expName: f["exp-name"] }, f.preset, overrides);
    const r = await ganTrainRun(cfg);
    const last = r.state.snapshots.at(-1);
    console.log(`${(r.state.imagesShown / 1000).toFixed(2)} kimg in ${(r.state.trainSeconds / 60).toFixed(1)} min` +
      `${last?.fdd != null ? `, FDD ${last.fdd.toFixed(4)}` : ""}; run in ${r.runDir} (latest grid: ${r.runDir}/samples/grid-latest.png)`);
  });
}
