/**
 * The Tiny Portraits schema: file names, image size, attribute columns and
 * their label vocabularies. Everything that knows "what a Tiny Portrait is"
 * reads it from here.
 */

export const IMAGE_HEIGHT = 108;
export const IMAGE_WIDTH = 84;
export const IMAGE_CHANNELS = 3;
/** Bytes of one decoded RGB portrait (uint8, HWC). */
export const IMAGE_BYTES = IMAGE_HEIGHT * IMAGE_WIDTH * IMAGE_CHANNELS;

export const ATTRIBUTES_FILE = "Tiny_Portraits_Attributes.csv";
export const IMAGES_SUBDIR = "Tiny_Portraits_Images";
export const CSV_HEADER = ["Image_Index", "Gender", "Hair_Color", "Hair_Type"] as const;
/** The literal that marks a missing label in the CSV. */
export const MISSING = "n/a";
/** Code used in label arrays for a missing value. */
export const MISSING_CODE = -1;

/** File name of the portrait with the given index: `Tiny_Portrait_000004.png`. */
export function imageFileName(index: number): string {
  return `Tiny_Portrait_${String(index).padStart(6, "0")}.png`;
}

const FILE_RE = /^Tiny_Portrait_(\d{6,})\.png$/;
/** Parses an index out of a portrait file name, or null. */
export function parseImageFileName(name: string): number | null {
  const m = FILE_RE.exec(name);
  return m ? Number(m[1]) : null;
}

/** Head name (as used by models) → CSV column and label order. */
export const HEADS = {
  gender: { column: "Gender", labels: ["female", "male"] },
  hair_color: { column: "Hair_Color", labels: ["black", "brown", "blond", "gray", "bald"] },
  hair_type: { column: "Hair_Type", labels: ["straight", "wavy", "bald"] },
} as const;

export type HeadName = keyof typeof HEADS;
export const HEAD_NAMES = Object.keys(HEADS) as HeadName[];
