/**
 * deno task gan:generate --network PATH --seeds 85,265,297,849 [--trunc 1] [--out DIR]
 *   [--class NAME] [--interp-steps 8] [--backend NAME]
 * One PNG per seed (same seed → same image), grid.png and interpolation.png (w-space,
 * first two seeds). PATH: a run folder, its snapshots/latest, or a snapshots/network-* folder.
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { generateImages, parseSeeds } from "../gan/generate.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  network: { type: "string", help: "run folder, snapshot or network folder" },
  seeds: { type: "string", default: "0-7", help: "seeds: 85,265,297 or ranges 0-7" },
  trunc: { type: "number", nonNegative: true, default: 1, help: "truncation ψ (1 = none, 0 = the mean face, above 1 spreads the samples out)" },
  out: { type: "string", help: "output folder (default <network>/generated)" },
  class: { type: "string", help: "class to generate (conditional generators)" },
  "interp-steps": { type: "int", nonNegative: true, default: 8, help: "images in the interpolation strip (0 = none)" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("gan:generate", Deno.args, SPEC);
    if (f.help) return void console.log(usage("gan:generate", SPEC));
    if (!f.network) throw new UserError("gan:generate: --network PATH is required\n" + usage("gan:generate", SPEC));
    await initEngine({ backend: f.backend });
    const r = await generateImages({
      network: f.network,
      seeds: parseSeeds(f.seeds),
      trunc: f.trunc,
      out: f.out ?? `${f.network.replace(/\/+$/, "")}/generated`,
      className: f.class,
      interpSteps: f["interp-steps"],
    });
    console.log(`${r.files.length} images, grid ${r.grid}${r.interpolation ? `, interpolation ${r.interpolation}` : ""}`);
  });
}
