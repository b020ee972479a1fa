/**
 * Finds the parts of a Tiny Portraits folder. Two layouts are accepted as
 * they are: the challenge kit's (CSV at the root, PNGs in
 * `Tiny_Portraits_Images/`) and a flat folder (CSV and PNGs side by side).
 * A CSV kept elsewhere is passed explicitly (`--attributes FILE`).
 */
import { basename, join, resolve } from "node:path";
import { ATTRIBUTES_FILE, imageFileName, IMAGES_SUBDIR, parseImageFileName } from "./schema.ts";
import { exists } from "../util/fs.ts";
import { UserError } from "../util/errors.ts";

export interface DatasetLayout {
  /** The dataroot as given, absolute. */
  root: string;
  /** Folder holding the PNGs. */
  imagesDir: string;
  /** The attributes CSV. */
  csvPath: string;
  /** Which layout was recognised. */
  kind: "kit" | "flat";
}

export interface LayoutOptions {
  dataroot: string;
  /** CSV path when it is not inside the dataroot. */
  attributes?: string;
}

/** Resolves the layout or throws an error saying what was looked for. */
export async function resolveLayout(opts: LayoutOptions): Promise<DatasetLayout> {
  const root = resolve(opts.dataroot);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch {
    throw new UserError(`dataroot ${root} does not exist`);
  }
  if (!info.isDirectory) throw new UserError(`dataroot ${root} is not a folder`);
  const kitDir = join(root, IMAGES_SUBDIR);
  const kind = (await exists(kitDir)) ? "kit" : "flat";
  const imagesDir = kind === "kit" ? kitDir : root;
  const csvPath = opts.attributes ? resolve(opts.attributes) : join(root, ATTRIBUTES_FILE);
  if (!(await exists(csvPath))) {
    throw new UserError(
      opts.attributes
        ? `attributes file ${csvPath} does not exist`
        : `no ${ATTRIBUTES_FILE} in ${root}; expected the kit layout (CSV + ${IMAGES_SUBDIR}/) or a flat folder ` +
          `(CSV beside the PNGs), or pass --attributes FILE`,
    );
  }
  if (!(await Deno.stat(csvPath)).isFile) throw new UserError(`attributes file ${csvPath} is not a file; pass the CSV itself with --attributes FILE`);
  return { root, imagesDir, csvPath, kind };
}

export function imagePath(layout: DatasetLayout, index: number): string {
  return join(layout.imagesDir, imageFileName(index));
}

/** Lists portrait files in the images folder: index → file name (other files ignored). */
export async function listImageFiles(layout: DatasetLayout): Promise<Map<number, Deno.DirEntry>> {
  const out = new Map<number, Deno.DirEntry>();
  for await (const e of Deno.readDir(layout.imagesDir)) {
    if (!e.isFile) continue;
    const idx = parseImageFileName(e.name);
    if (idx !== null) out.set(idx, e);
  }
  return out;
}

/** Short name of a dataset (folder name), used for assets/splits/<name>/ and reports/explore/<name>/. */
export function datasetName(layout: DatasetLayout): string {
  return basename(layout.root).replace(/[^A-Za-z0-9._-]/g, "_") || "dataset";
}
