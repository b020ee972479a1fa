/**
 * deno task gan:compare --exp-names A,B[,…] [--checkpoints DIR] [--out DIR] [--marks 15,30,45,60]
 * GAN runs side by side on equal training time: FDD against minutes (one line per run, the real-against-real floor
 * dashed) in <out>/fdd_by_minutes.png, and each run's FDD at the marks in <out>/fdd_at_minutes.csv (printed).
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { compareGanRuns } from "../gan/compare.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  "exp-names": { type: "string", help: "comma-separated gan:train run names" },
  checkpoints: { type: "string", default: "checkpoints", help: "folder of the runs" },
  out: { type: "string", default: "reports/gan_compare", help: "output folder" },
  marks: { type: "string", default: "15,30,45,60", help: "training minutes at which to read each run's FDD" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("gan:compare", Deno.args, SPEC);
    if (f.help) return void console.log(usage("gan:compare", SPEC));
    if (!f["exp-names"]) throw new UserError("gan:compare: --exp-names A,B is required\n" + usage("gan:compare", SPEC));
    const marks = f.marks.split(",").map(Number);
    if (!marks.every((m) => Number.isFinite(m) && m > 0)) throw new UserError(`gan:compare: --marks expects positive minutes, got '${f.marks}'`);
    const r = await compareGanRuns({ checkpointsDir: f.checkpoints, expNames: f["exp-names"].split(",").filter(Boolean), out: f.out, marks });
    const fmt = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : v === null ? "—" : String(v));
    const cols = Object.keys(r.table[0]);
    console.log(cols.join("  "));
    for (const row of r.table) console.log(cols.map((c) => fmt(row[c])).join("  "));
    console.log(`chart: ${r.chart}`);
  });
}
