/**
 * The data layer: Tiny Portraits layout and schema, validated attributes
 * (nodejs-polars), PNG decoding and validation (sharp), the pixel cache,
 * seeded batches with augmentation, archive unpacking and the procedural
 * portrait generator.
 */
export * from "./schema.ts";
export * from "./layout.ts";
export * from "./attributes.ts";
export * from "./images.ts";
export * from "./cache.ts";
export * from "./dataset.ts";
export * from "./batches.ts";
export * from "./unpack.ts";
export * from "./split.ts";
export * from "./tasks.ts";
export * from "./bad_images.ts";
export * from "./synthetic/mod.ts";
