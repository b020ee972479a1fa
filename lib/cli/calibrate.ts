/**
 * deno task calibrate --exp-name NAME [--ckpt best|last] [--dataroot DIR] [--heads hair_color,hair_type] [--joint auto|bald|none]
 * Fits the run's decision biases on its validation split (one offset per class on log p, chosen to
 * maximise macro-F1: lib/eval/decision.ts) and writes checkpoints/<exp>/decision_bias.json, which
 * evaluate and predict apply from then on (--decision-bias none turns them off). `train` does this
 * itself at the end of a run whose recipe asks for it (--decision-bias fit).
 */
import { runDirPath } from "../util/run_dir.ts";
import { JOINT_FLAG, RUN_DATA_FLAGS, RUN_FLAGS } from "./_run_flags.ts";
import type { JointMode } from "../eval/joint.ts";
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { calibrateRun } from "../eval/evaluate.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  ...RUN_FLAGS,
  ...RUN_DATA_FLAGS,
  heads: { type: "string", help: "comma-separated heads to fit (default: every head with more than two classes)" },
  joint: { ...JOINT_FLAG, help: "fit under this joint decoding: bald (multitask: hair colour joined with the hair-type head's baldness), none, or auto = the run's recipe" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("calibrate", Deno.args, SPEC);
    if (f.help) return void console.log(usage("calibrate", SPEC));
    if (!f["exp-name"]) throw new UserError("calibrate: --exp-name NAME is required\n" + usage("calibrate", SPEC));
    await initEngine({ backend: f.backend });
    const r = await calibrateRun({ runDir: runDirPath(f.checkpoints, f["exp-name"], "calibrate"), ckpt: f.ckpt as "best" | "last", dataroot: f.dataroot, attributes: f.attributes, splitDir: f["split-dir"], cacheDir: f["cache-dir"], heads: f.heads?.split(",").map((h) => h.trim()), joint: f.joint as JointMode });
    console.log(r.text);
  });
}
