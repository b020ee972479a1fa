/**
 * deno task gan:copies --network PATH --dataroot DIR [--images 500] [--real-images 10000] [--json FILE]
 *   [--real-controls scale:0.5,blur:1.5] [--trunc ψ] [--backend NAME]
 * Does the generator copy its training portraits? Nearest-neighbour descriptor distances of generated portraits to
 * the training set, beside the training set's own; and do its samples repeat one another? Near-duplicates per set
 * of 64 generated portraits, beside the same count on sets of 64 training portraits (lib/gan/copies.ts), and with
 * --real-controls on training portraits softened (shrunk and scaled back, or blurred), the count's scale of detail;
 * with --trunc, all of it for portraits drawn at that truncation ψ, with their Fréchet descriptor distance. Then the
 * samples as pictures, by the exploration's rules for bad images: blank, badly exposed and noise samples, and pixel
 * duplicates per set of 64, each beside the same on training portraits.
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { copyCheck, formatCopyCheck, parseRealControls } from "../gan/copies.ts";
import { UserError } from "../util/errors.ts";
import { writeJsonAtomic } from "../util/fs.ts";

const SPEC = {
  network: { type: "string", help: "run folder, snapshot or network folder" },
  dataroot: { type: "string", help: "the dataset the generator was trained on" },
  images: { type: "int", positive: true, default: 500, help: "generated portraits to check" },
  "real-images": { type: "int", positive: true, default: 10000, help: "real portraits in the reference (a seeded sample, or all)" },
  "real-controls": { type: "string", help: "also count near-duplicates on as many training portraits softened: scale:F (shrunk by F, scaled back), blur:S (Gaussian, σ pixels); comma-separated" },
  trunc: { type: "number", nonNegative: true, default: 1, help: "truncation ψ of the generated portraits, as gan:generate's (1 = none; above 1 spreads them out)" },
  json: { type: "string", help: "also write the figures to this JSON file" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("gan:copies", Deno.args, SPEC);
    if (f.help) return void console.log(usage("gan:copies", SPEC));
    if (!f.network || !f.dataroot) throw new UserError("gan:copies: --network PATH and --dataroot DIR are required\n" + usage("gan:copies", SPEC));
    const controls = f["real-controls"] === undefined ? [] : parseRealControls(f["real-controls"]);
    await initEngine({ backend: f.backend });
    const c = await copyCheck({ network: f.network, dataroot: f.dataroot, images: f.images, realImages: f["real-images"], controls, trunc: f.trunc });
    console.log(formatCopyCheck(c));
    if (f.json) await writeJsonAtomic(f.json, c);
  });
}
