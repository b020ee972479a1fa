/**
 * deno task explore --dataroot DIR [--out DIR] [--screen-share 0.03] [--no-descriptors] [--no-detector]
 * Writes the exploration report (tables, charts, outliers, summary.json) to
 * --out (default reports/explore/<dataset>/). The face detector and descriptors
 * examine only the --screen-share least face-like images (face-space score; 1 =
 * all); they run on the engine lib/engine picks (onednn where libdnnl is present: the detector as fast as on wasm,
 * the descriptors about 5× faster) unless --backend says otherwise.
 */
import { join } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { runExploration } from "../explore/mod.ts";
import { datasetName, resolveLayout } from "../data/layout.ts";
import { initEngine } from "../engine/mod.ts";
import { UserError } from "../util/errors.ts";
import { CACHE_DIR_HELP } from "../data/cache.ts";

const SPEC = {
  dataroot: { type: "string", help: "Tiny Portraits folder" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  out: { type: "string", help: "report folder (default reports/explore/<dataset>)" },
  "cache-dir": { type: "string", help: CACHE_DIR_HELP },
  "no-descriptors": { type: "boolean", default: false, help: "skip face descriptors (no non_face flags)" },
  "no-detector": { type: "boolean", default: false, help: "skip the face detector check" },
  "screen-share": { type: "number", default: 0.03, help: "share of images (least face-like first) the detector and descriptors examine; 1 = all" },
  backend: { type: "string", help: "force a tfjs backend" },
  seed: { type: "int", nonNegative: true, default: 0, help: "seed for sampling" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("explore", Deno.args, SPEC);
    if (f.help) return void console.log(usage("explore", SPEC));
    if (!f.dataroot) throw new UserError("explore: --dataroot DIR is required\n" + usage("explore", SPEC));
    if (!(f["screen-share"] > 0 && f["screen-share"] <= 1)) throw new UserError(`explore: expected --screen-share in (0, 1], got ${f["screen-share"]}`);
    await initEngine(f.backend ? { backend: f.backend, source: "--backend" } : {});
    const layout = await resolveLayout({ dataroot: f.dataroot, attributes: f.attributes });
    const out = f.out ?? join("reports", "explore", datasetName(layout));
    const r = await runExploration({
      dataroot: f.dataroot,
      attributes: f.attributes,
      cacheDir: f["cache-dir"],
      out,
      outliers: { descriptors: !f["no-descriptors"], detector: !f["no-detector"], screenShare: f["screen-share"], seed: f.seed },
    });
    const s = r.summary as { rows: number; badRows: number; imagesFound: number; flagged: number; flaggedByReason: Record<string, number>; timings: Record<string, number> };
    if (s.badRows) {
      console.log(`${s.badRows} CSV row(s) with bad values left out of the exploration (every one in ${r.files.bad_rows}); training refuses the CSV until they are fixed:`);
      for (const p of r.ds.attrs.problems.slice(0, 20)) console.log(`  line ${p.line}: ${p.message}`);
      if (s.badRows > 20) console.log(`  ... and ${s.badRows - 20} more`);
    }
    console.log(`${s.rows} rows, ${s.imagesFound} images found, ${s.flagged} flags: ${JSON.stringify(s.flaggedByReason)}`);
    const t = s.timings;
    console.log(`timings (s): pixel cache ${t.cacheSeconds.toFixed(0)}${t.cacheBuilt ? " (built)" : " (loaded)"}, statistics ${t.statsSeconds.toFixed(0)}, ` +
      `face space ${t.faceSpaceSeconds.toFixed(0)}, descriptors ${t.descriptorSeconds.toFixed(0)}, detector ${t.detectorSeconds.toFixed(0)} ` +
      `(${(r.summary as { nonFaceCandidates: number }).nonFaceCandidates} candidates), total ${t.totalSeconds.toFixed(0)}`);
    console.log(r.description.classCounts.toString());
    if (r.groundTruth) {
      const g = r.groundTruth;
      console.log(`outliers vs planted ground truth: precision ${g.precision.toFixed(3)}, recall ${g.recall.toFixed(3)} ` +
        `(${g.truePositives}/${g.planted} planted found, ${g.flagged} flagged); recall by kind ${JSON.stringify(g.recallByKind)}`);
    }
    console.log(`report in ${out} (${s.timings.totalSeconds.toFixed(1)} s)`);
  });
}
