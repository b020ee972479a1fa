/**
 * deno task predict --exp-name NAME --images DIR [--ckpt best|last] [--detector tiny|ssd]
 *                   [--fill edge|mirror|blur|mean] [--truth labels.csv] [--batch-size 16] [--decision-bias auto|none] [--joint auto|bald|none]
 * Predicts on any image files (face found and re-framed first): writes
 * checkpoints/<exp>/predictions_<task>.csv, pred.log and a one-page contact sheet.
 * With --truth (a CSV with filename and one column per head, e.g. filename,gender)
 * it also prints and logs the accuracy per head.
 */
import type { JointMode } from "../eval/joint.ts";
import { runDirPath } from "../util/run_dir.ts";
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { predictFolder } from "../eval/predict.ts";
import type { EnsembleMode } from "../eval/evaluate.ts";
import type { DecisionBiasMode } from "../eval/decision.ts";
import { DEFAULT_FILL, FILL_MODES, type FillMode } from "../faces/mod.ts";
import { UserError } from "../util/errors.ts";
import { PREDICTION_FLAGS, RUN_FLAGS } from "./_run_flags.ts";

const SPEC = {
  ...RUN_FLAGS,
  ...PREDICTION_FLAGS,
  "exp-name": { type: "string", help: "run name under checkpoints/ (faceapi_agegender: face-api's own age/gender net)" },
  images: { type: "string", help: "folder of images (jpg/png/webp/…)" },
  detector: { type: "string", choices: ["tiny", "ssd"], default: "tiny", help: "face detector" },
  fill: {
    type: "string",
    choices: [...FILL_MODES],
    default: DEFAULT_FILL,
    help: "what fills the portrait where it reaches past the photo (tight face crops)",
  },
  truth: { type: "string", help: "CSV with filename and a column per head (e.g. filename,gender): report accuracy" },
  "batch-size": { type: "int", positive: true, default: 16, help: "photos per forward pass of the face nets" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("predict", Deno.args, SPEC);
    if (f.help) return void console.log(usage("predict", SPEC));
    if (!f["exp-name"] || !f.images) throw new UserError("predict: --exp-name NAME and --images DIR are required\n" + usage("predict", SPEC));
    await initEngine({ backend: f.backend });
    const r = await predictFolder({
      runDir: runDirPath(f.checkpoints, f["exp-name"], "predict"),
      images: f.images,
      ckpt: f.ckpt as "best" | "last",
      detector: f.detector as "ssd" | "tiny",
      fill: f.fill as FillMode,
      truth: f.truth,
      batchSize: f["batch-size"],
      decisionBias: f["decision-bias"] as DecisionBiasMode,
      ensemble: f.ensemble as EnsembleMode,
      joint: f.joint as JointMode,
    });
    console.log(`predictions: ${r.csvPath}${r.sheetPath ? `, contact sheet ${r.sheetPath}` : ""}`);
  });
}
