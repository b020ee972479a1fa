/**
 * deno task validate --dataroot DIR [--attributes FILE] [--out FILE] [--rebuild]
 * Opens a Tiny Portraits folder: checks the CSV, decodes every image into the
 * pixel cache and lists every bad file (missing, not a PNG, corrupt, wrong
 * size or channels, unlisted). Writes the list as CSV. Exit code 1 when any
 * image problem was found.
 */
import { dirname, join } from "node:path";
import { parseFlags, runCli, usage } from "../config.ts";
import { describeProblems, openDataset, writeProblemsCsv } from "../data/dataset.ts";
import { UserError } from "../util/errors.ts";
import { CACHE_DIR_HELP } from "../data/cache.ts";

const SPEC = {
  dataroot: { type: "string", help: "Tiny Portraits folder (kit or flat layout)" },
  attributes: { type: "string", help: "attributes CSV outside the dataroot" },
  out: { type: "string", help: "problems CSV (default: problems.csv in the cache folder)" },
  "cache-dir": { type: "string", help: CACHE_DIR_HELP },
  rebuild: { type: "boolean", default: false, help: "decode every image again" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("validate", Deno.args, SPEC);
    if (f.help) return void console.log(usage("validate", SPEC));
    if (!f.dataroot) throw new UserError("validate: --dataroot DIR is required\n" + usage("validate", SPEC));
    const ds = await openDataset({ dataroot: f.dataroot, attributes: f.attributes, cacheDir: f["cache-dir"], rebuild: f.rebuild });
    console.log(`${ds.cache.built ? "built" : "loaded"} pixel cache ${ds.cache.binPath} in ${ds.cache.seconds.toFixed(1)} s`);
    console.log(describeProblems(ds));
    for (const p of ds.problems.slice(0, 50)) console.log(`  ${p.file} (CSV line ${ds.attrs.csvLines[p.row]}): ${p.kind}: ${p.message}`);
    if (ds.problems.length > 50) console.log(`  ... and ${ds.problems.length - 50} more`);
    const out = f.out ?? join(dirname(ds.cache.binPath), "problems.csv");
    await writeProblemsCsv(ds, out);
    console.log(`problem list: ${out}`);
    return ds.problems.length ? 1 : 0;
  });
}
