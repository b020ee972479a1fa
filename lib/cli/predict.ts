/**
 * deno task predict --exp-name NAME --images DIR [--ckpt best|last] [--detector ssd|tiny]
 * Predicts on any image files (face found and re-framed first): writes
 * checkpoints/<exp>/predictions_<task>.csv, pred.log and a contact sheet.
 */
import { join } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { predictFolder } from "../eval/predict.ts";

const SPEC = {
  "exp-name": { type: "string", help: "run name under checkpoints/" },
  images: { type: "string", help: "folder of images (jpg/png/webp/…)" },
  ckpt: { type: "string", choices: ["best", "last"], default: "best", help: "which checkpoint" },
  detector: { type: "string", choices: ["ssd", "tiny"], default: "ssd", help: "face detector" },
  checkpoints: { type: "string", default: "checkpoints", help: "checkpoints folder" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("predict", Deno.args, SPEC);
    if (f.help) return void console.log(usage("predict", SPEC));
    if (!f["exp-name"] || !f.images) throw new Error("predict: --exp-name NAME and --images DIR are required\n" + usage("predict", SPEC));
    await initEngine({ backend: f.backend });
    const r = await predictFolder({ runDir: join(f.checkpoints, f["exp-name"]), images: f.images, ckpt: f.ckpt as "best" | "last", detector: f.detector as "ssd" | "tiny" });
    console.log(`predictions: ${r.csvPath}${r.sheetPath ? `, contact sheet ${r.sheetPath}` : ""}`);
  });
}
