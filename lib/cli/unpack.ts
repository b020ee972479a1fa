/**
 * deno task unpack --zips DIR --out DIR [--attributes FILE] [--expect 66]
 * Unpacks the Tiny Portraits archives into one flat folder and checks that
 * nothing is missing. Exit code 1 when the result is incomplete.
 */
import { parseFlags, runCli, usage } from "../config.ts";
import { describeUnpack, EXPECTED_ARCHIVES, unpackArchives } from "../data/unpack.ts";
import { UserError } from "../util/errors.ts";

const SPEC = {
  zips: { type: "string", help: "folder with Tiny_Portraits_Archive_NNN.zip" },
  out: { type: "string", help: "output folder (flat: PNGs + CSV)" },
  attributes: { type: "string", help: "attributes CSV to check completeness against" },
  expect: { type: "int", positive: true, default: EXPECTED_ARCHIVES, help: "number of archives in a full download" },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const f = parseFlags("unpack", Deno.args, SPEC);
    if (f.help) return void console.log(usage("unpack", SPEC));
    if (!f.zips || !f.out) throw new UserError("unpack: --zips DIR and --out DIR are required\n" + usage("unpack", SPEC));
    const report = await unpackArchives({ zips: f.zips, out: f.out, attributes: f.attributes, expectArchives: f.expect });
    console.log(describeUnpack(report));
    return report.complete ? 0 : 1;
  });
}
