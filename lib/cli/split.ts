/**
 * deno task split --dataroot DIR [--tasks gender,haircolor,multitask] [--ratios 0.7,0.15,0.15]
 *                 [--seed N] [--bad FILE] [--out DIR] [--force]
 * Writes stratified splits per task as CSV under assets/splits/<dataset>/,
 * leaving out undecodable images and those in the exploration's
 * bad_images.csv, and prints + writes the split report (table + chart).
 */
import { join } from "node:path";
import pl from "nodejs-polars";
import { parseFlags, runCli, usage } from "../config.ts";
import { openDataset } from "../data/dataset.ts";
import { datasetName } from "../data/layout.ts";
import { loadExclusion } from "../data/bad_images.ts";
import { defaultSplitDir, ensureSplits, SPLIT_TASKS, type SplitTask, splitReport } from "../data/split.ts";
import { splitShareChart } from "../explore/charts.ts";
import { saveChart } from "../viz/vega.ts";
import { writeFileAtomic } from "../util/fs.ts";
import { UserError } from "../util/errors.ts";
import { CACHE_DIR_HELP } from "../data/cache.ts";

const SPEC = {
  "cache-dir": { type: "string", help: CACHE_DIR_HELP },
  dataroot: { type: "string", help: "Tiny Portraits folder" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  tasks: { type: "string", default: SPLIT_TASKS.join(","), help: "tasks to split" },
  ratios: { type: "string", default: "0.7,0.15,0.15", help: "train,val,test shares" },
  seed: { type: "int", nonNegative: true, default: 0, help: "split seed" },
  bad: { type: "string", help: "bad_images.csv to leave out (default reports/explore/<dataset>/bad_images.csv)" },
  out: { type: "string", help: "split folder (default assets/splits/<dataset>)" },
  force: { type: "boolean", default: false, help: "overwrite existing splits" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("split", Deno.args, SPEC);
    if (f.help) return void console.log(usage("split", SPEC));
    if (!f.dataroot) throw new UserError("split: --dataroot DIR is required\n" + usage("split", SPEC));
    const ratios = f.ratios.split(",").map(Number);
    if (ratios.length !== 3 || ratios.some((r) => !Number.isFinite(r) || r < 0)) {
      throw new UserError(`split: expected --ratios to be three non-negative numbers like 0.7,0.15,0.15, got '${f.ratios}'`);
    }
    const tasks = f.tasks.split(",").map((t) => t.trim());
    for (const t of tasks) if (!(SPLIT_TASKS as readonly string[]).includes(t)) throw new UserError(`split: unknown task '${t}'; expected ${SPLIT_TASKS.join(", ")}`);
    const ds = await openDataset({ dataroot: f.dataroot, attributes: f.attributes, cacheDir: f["cache-dir"] });
    const name = datasetName(ds.layout);
    const dir = f.out ?? defaultSplitDir(name);
    const { exclude, note } = await loadExclusion(name, f.bad);
    console.log(note);
    const reports: pl.DataFrame[] = [];
    for (const task of tasks as SplitTask[]) {
      const { splits } = await ensureSplits(ds.attrs, task, ds.goodRows, {
        dir, exclude, force: f.force, seed: f.seed, ratios: ratios as [number, number, number], log: console.log,
      });
      reports.push(splitReport(ds.attrs, task, splits));
    }
    const report = pl.concat(reports);
    await writeFileAtomic(join(dir, "split_report.csv"), report.writeCSV().toString());
    const chart = await saveChart(splitShareChart(report), join(dir, "split_report"));
    console.log(report.toString());
    console.log(`splits in ${dir}; report ${join(dir, "split_report.csv")}, chart ${chart.png}`);
  });
}
