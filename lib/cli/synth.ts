/**
 * synth: write a procedural Tiny Portraits dataset (CSV + PNGs in one flat folder).
 *
 *   deno run -A lib/cli/synth.ts --out DIR --count N --seed S [--mosaic FILE] [--concurrency K]
 *
 * Progress (images done, images/s, ETA) goes to stderr; `--mosaic FILE` also writes a PNG with one
 * row of examples per class. See lib/data/synthetic/mod.ts.
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { generateSynthetic, writeClassMosaic } from "../data/synthetic/mod.ts";

const USAGE =
  "usage: deno run -A lib/cli/synth.ts --out DIR --count N --seed S [--mosaic FILE] [--concurrency K]";

function die(msg: string): never {
  console.error(`synth: ${msg}\n${USAGE}`);
  Deno.exit(2);
}

function int(
  name: string,
  v: string | undefined,
  min: number,
  what: string,
): number {
  if (v === undefined) die(`missing --${name}`);
  const x = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < min) {
    die(`expected --${name} to be ${what}, got '${v}'`);
  }
  return x;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: false,
      options: {
        out: { type: "string" },
        count: { type: "string" },
        seed: { type: "string" },
        mosaic: { type: "string" },
        concurrency: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    die(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (!values.out) die("missing --out");
  const count = int("count", values.count, 1, "a positive integer");
  const seed = int("seed", values.seed, 0, "a non-negative integer");
  const concurrency = values.concurrency === undefined
    ? undefined
    : int("concurrency", values.concurrency, 1, "a positive integer");

  const t0 = performance.now();
  let last = 0;
  const tty = Deno.stderr.isTerminal();
  const summary = await generateSynthetic({
    out: values.out,
    count,
    seed,
    concurrency,
    onProgress: (done, total) => {
      const now = performance.now();
      if (done < total && now - last < (tty ? 250 : 2000)) return;
      last = now;
      const s = (now - t0) / 1000;
      const rate = done / s;
      const eta = (total - done) / rate;
      const line = `synth: ${done}/${total} images, ${
        rate.toFixed(0)
      } img/s, ETA ${eta.toFixed(0)} s`;
      if (tty) {
        process.stderr.write(`\r${line}   ${done === total ? "\n" : ""}`);
      } else console.error(line);
    },
  });
  console.error(
    `synth: wrote ${summary.count} images to ${values.out} in ${
      summary.seconds.toFixed(1)
    } s ` +
      `(${
        summary.imagesPerSecond.toFixed(0)
      } img/s); planted ${summary.bad} bad images and ${summary.duplicates} near-duplicates ` +
      `(${summary.groundTruthPath})`,
  );
  if (values.mosaic) {
    await writeClassMosaic(values.out, values.mosaic);
    console.error(`synth: class mosaic written to ${values.mosaic}`);
  }
}

if (import.meta.main) await main();
