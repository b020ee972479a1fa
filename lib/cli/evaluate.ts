/**
 * deno task evaluate --exp-name NAME [--ckpt best|last] [--split test|val|all] [--dataroot DIR]
 * Evaluates a trained run on its held-out split (or every image of any Tiny
 * Portraits folder with --split all --dataroot DIR): report, confusion matrix,
 * calibration, subgroup accuracy, worst mistakes, test_metrics.json.
 */
import { join } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { initEngine } from "../engine/mod.ts";
import { evaluateRun } from "../eval/evaluate.ts";

const SPEC = {
  "exp-name": { type: "string", help: "run name under checkpoints/" },
  ckpt: { type: "string", choices: ["best", "last"], default: "best", help: "which checkpoint" },
  split: { type: "string", choices: ["test", "val", "all"], default: "test", help: "rows to evaluate" },
  dataroot: { type: "string", help: "another Tiny Portraits folder (default: the run's)" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  checkpoints: { type: "string", default: "checkpoints", help: "checkpoints folder" },
  backend: { type: "string", help: "force a tfjs backend" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("evaluate", Deno.args, SPEC);
    if (f.help) return void console.log(usage("evaluate", SPEC));
    if (!f["exp-name"]) throw new Error("evaluate: --exp-name NAME is required\n" + usage("evaluate", SPEC));
    await initEngine({ backend: f.backend });
    const r = await evaluateRun({
      runDir: join(f.checkpoints, f["exp-name"]),
      ckpt: f.ckpt as "best" | "last",
      split: f.split as "test" | "val" | "all",
      dataroot: f.dataroot,
      attributes: f.attributes,
    });
    console.log(r.text);
    console.log(`\nwritten: ${Object.values(r.files).join(", ")}`);
  });
}
