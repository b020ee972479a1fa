/**
 * deno task explore --dataroot DIR [--out DIR] [--no-descriptors] [--no-detector]
 * Writes the exploration report (tables, charts, outliers, summary.json) to
 * --out (default reports/explore/<dataset>/).
 */
import { join } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { runExploration } from "../explore/mod.ts";
import { datasetName, resolveLayout } from "../data/layout.ts";
import { initEngine } from "../engine/mod.ts";

const SPEC = {
  dataroot: { type: "string", help: "Tiny Portraits folder" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  out: { type: "string", help: "report folder (default reports/explore/<dataset>)" },
  "cache-dir": { type: "string", help: "pixel cache folder" },
  "no-descriptors": { type: "boolean", default: false, help: "skip face descriptors (no non_face flags)" },
  "no-detector": { type: "boolean", default: false, help: "skip the face detector check" },
  backend: { type: "string", help: "force a tfjs backend" },
  seed: { type: "int", nonNegative: true, default: 0, help: "seed for sampling" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("explore", Deno.args, SPEC);
    if (f.help) return void console.log(usage("explore", SPEC));
    if (!f.dataroot) throw new Error("explore: --dataroot DIR is required\n" + usage("explore", SPEC));
    await initEngine({ backend: f.backend });
    const layout = await resolveLayout({ dataroot: f.dataroot, attributes: f.attributes });
    const out = f.out ?? join("reports", "explore", datasetName(layout));
    const r = await runExploration({
      dataroot: f.dataroot,
      attributes: f.attributes,
      cacheDir: f["cache-dir"],
      out,
      outliers: { descriptors: !f["no-descriptors"], detector: !f["no-detector"], seed: f.seed },
    });
    const s = r.summary as { rows: number; imagesFound: number; flagged: number; flaggedByReason: Record<string, number>; timings: Record<string, number> };
    console.log(`${s.rows} rows, ${s.imagesFound} images found, ${s.flagged} flags: ${JSON.stringify(s.flaggedByReason)}`);
    console.log(r.description.classCounts.toString());
    if (r.groundTruth) {
      const g = r.groundTruth;
      console.log(`outliers vs planted ground truth: precision ${g.precision.toFixed(3)}, recall ${g.recall.toFixed(3)} ` +
        `(${g.truePositives}/${g.planted} planted found, ${g.flagged} flagged); recall by kind ${JSON.stringify(g.recallByKind)}`);
    }
    console.log(`report in ${out} (${s.timings.totalSeconds.toFixed(1)} s)`);
  });
}
