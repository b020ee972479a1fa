/**
 * The bad-image list every later stage leaves out: `bad_images.csv` written by the exploration
 * (`file,image_index,reason,score,detail`). One reader and one default path for split, train, the
 * GAN, the demo and the notebooks.
 *
 *   const { exclude, note } = await loadExclusion(datasetName(layout));     // reports/explore/<dataset>/bad_images.csv
 */
import { join } from "node:path";
import pl from "nodejs-polars";
import { exists } from "../util/fs.ts";
import { UserError } from "../util/errors.ts";

/** reports/explore/<dataset>/bad_images.csv, where `deno task explore` writes it. */
export function defaultBadImagesPath(name: string): string {
  return join("reports", "explore", name, "bad_images.csv");
}

/** Reads a bad-image list written by the exploration: the set of Image_Index values. */
export async function readBadImages(path: string): Promise<Set<number>> {
  const df = pl.readCSV(await Deno.readTextFile(path), { inferSchemaLength: 0 });
  if (!df.columns.includes("image_index")) throw new UserError(`${path}: expected a column image_index (a bad_images.csv from deno task explore)`);
  return new Set((df.getColumn("image_index").toArray() as string[]).map(Number));
}

export interface Exclusion {
  exclude: Set<number>;
  /** The list read, or looked for. */
  path: string;
  /** One line saying what is left out, or that no list was found. */
  note: string;
}

/**
 * The images to leave out: `path` when given (it must exist: a typo is an error), else the
 * exploration's default list for dataset `name` when there is one (none: only undecodable images
 * are left out, and the note says how to get a list). `optional`: a missing `path` is no error either.
 */
export async function loadExclusion(name: string, path?: string, opts: { optional?: boolean } = {}): Promise<Exclusion> {
  const p = path ?? defaultBadImagesPath(name);
  if (await exists(p)) {
    const exclude = await readBadImages(p);
    return { exclude, path: p, note: `leaving out ${exclude.size} flagged images listed in ${p}` };
  }
  if (path && !opts.optional) throw new UserError(`bad-image list ${path} does not exist; run deno task explore first, or leave --bad out`);
  return { exclude: new Set(), path: p, note: `no ${p}; run deno task explore first to drop outliers (undecodable images are always left out)` };
}
