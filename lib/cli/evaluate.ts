/**
 * deno task evaluate --exp-name NAME [--ckpt best|last] [--split test|val|all] [--dataroot DIR] [--face-check]
 *                    [--tta none|flip] [--decision-bias auto|none] [--joint auto|bald|none]
 * Evaluates a trained run on its held-out split (or every image of any Tiny
 * Portraits folder with --split all --dataroot DIR): report with 95% bootstrap
 * intervals, confusion matrix, calibration, subgroup accuracy (and by face
 * found / not found with --face-check, ~0.1 s per image), the worst subgroup,
 * worst mistakes, test_metrics.json.
 */
import type { JointMode } from "../eval/joint.ts";
import { runDirPath } from "../util/run_dir.ts";
import { parseFlags, runCli, usage, UsageError } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { type EnsembleMode, evaluateRun } from "../eval/evaluate.ts";
import type { DecisionBiasMode } from "../eval/decision.ts";
import { TTA_MODES, type TtaMode } from "../models/inference.ts";
import { UserError } from "../util/errors.ts";
import { PREDICTION_FLAGS, RUN_DATA_FLAGS, RUN_FLAGS } from "./_run_flags.ts";

const SPEC = {
  ...RUN_FLAGS,
  ...RUN_DATA_FLAGS,
  ...PREDICTION_FLAGS,
  split: { type: "string", choices: ["test", "val", "all"], default: "test", help: "rows to evaluate" },
  "face-check": { type: "boolean", default: false, help: "run face-api's tiny detector on every image; accuracy by face found / not found (~0.1 s per image)" },
  "face-min-score": { type: "number", default: 0.5, positive: true, help: "detector score that counts as a face found (with --face-check)" },
  resamples: { type: "int", default: 1000, positive: true, help: "bootstrap resamples for the 95% intervals" },
  tta: { type: "string", choices: TTA_MODES, help: "test-time augmentation (default: the run's own, config.json)" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("evaluate", Deno.args, SPEC);
    if (f.help) return void console.log(usage("evaluate", SPEC));
    if (!f["exp-name"]) throw new UserError("evaluate: --exp-name NAME is required\n" + usage("evaluate", SPEC));
    if (f["face-min-score"] > 1) throw new UsageError(`evaluate: expected --face-min-score in (0, 1], got ${f["face-min-score"]}`);
    await initEngine({ backend: f.backend });
    const r = await evaluateRun({
      runDir: runDirPath(f.checkpoints, f["exp-name"], "evaluate"),
      ckpt: f.ckpt as "best" | "last",
      split: f.split as "test" | "val" | "all",
      dataroot: f.dataroot,
      attributes: f.attributes,
      splitDir: f["split-dir"],
      cacheDir: f["cache-dir"],
      faceCheck: f["face-check"],
      tta: f.tta as TtaMode | undefined,
      decisionBias: f["decision-bias"] as DecisionBiasMode,
      ensemble: f.ensemble as EnsembleMode,
      joint: f.joint as JointMode,
      faceMinScore: f["face-min-score"],
      bootstrap: { resamples: f.resamples },
    });
    console.log(r.text);
    console.log(`\nwritten: ${Object.values(r.files).join(", ")}`);
  });
}
