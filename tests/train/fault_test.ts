// Fault injection: `train` is killed with SIGKILL at seeded random moments (start-up, steps, checkpoint saves),
// resumed after each kill, and the finished run must equal an uninterrupted run with the same seed.
// Run: deno test -A tests/train/fault_test.ts   (about 40 s: ~10 Deno starts)
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { initEngine } from "../../lib/engine/mod.ts";
import { generateSynthetic } from "../../lib/data/synthetic/mod.ts";
import { resolveCheckpoint } from "../../lib/train/checkpoint.ts";
import { Rng } from "../../lib/util/rng.ts";
import { withTempDir } from "../_fixtures.ts";
import { loadSavedModel } from "../../lib/models/mod.ts";

await initEngine({ verbose: false });
const ROOT = resolve(import.meta.dirname!, "../..");

function trainArgs(dir: string, name: string, resume: boolean): string[] {
  return [
    "run", "-A", join(ROOT, "lib/cli/train.ts"), "--dataroot", join(dir, "data"), "--task", "gender", "--model", "compact_cnn",
    "--epochs", "5", "--batch-size", "8", "--steps-per-epoch", "3", "--seed", "3", "--split-dir", join(dir, "splits"),
    "--checkpoints", join(dir, "ck"), "--exp-name", name, ...(resume ? ["--resume"] : []),
  ];
}

async function runToEnd(dir: string, name: string, resume: boolean): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), { args: trainArgs(dir, name, resume), cwd: dir, stdout: "piped", stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr).slice(-2000));
}

/** Starts train and kills it with SIGKILL after `ms` (or lets it finish first). Returns true if it was killed. */
async function runAndKill(dir: string, name: string, resume: boolean, ms: number): Promise<boolean> {
  const child = new Deno.Command(Deno.execPath(), { args: trainArgs(dir, name, resume), cwd: dir, stdout: "null", stderr: "piped" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already finished */ }
  }, ms);
  const status = await child.status;
  clearTimeout(timer);
  const err = new TextDecoder().decode((await new Response(child.stderr).arrayBuffer()));
  if (status.signal === "SIGKILL") return true;
  assert.equal(status.code, 0, err.slice(-2000));
  return false;
}

async function lastWeights(runDir: string): Promise<Float32Array[]> {
  const dir = await resolveCheckpoint(join(runDir, "models", "last"));
  assert.ok(dir, `a last checkpoint in ${runDir}`);
  const model = await loadSavedModel(dir);
  const w = model.getWeights().map((t) => t.dataSync() as Float32Array);
  model.dispose();
  return w;
}

/** metrics.csv without the timing columns. */
async function metrics(runDir: string): Promise<Record<string, number>[]> {
  const [head, ...lines] = (await Deno.readTextFile(join(runDir, "metrics.csv"))).trim().split("\n");
  const cols = head.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [cols[i], Number(v)]).filter(([c]) => !["img_per_s", "data_wait", "seconds"].includes(c as string))));
}

function assertClose(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

Deno.test("train killed with SIGKILL 4 times at random moments and resumed each time ends with the weights and metrics of an uninterrupted run", async () => {
  await withTempDir(async (dir) => {
    await generateSynthetic({ out: join(dir, "data"), count: 48, seed: 3 });
    const t0 = performance.now();
    await runToEnd(dir, "whole", false);
    const wholeMs = performance.now() - t0;
    const rng = new Rng(12);
    let kills = 0, lastKilled = false;
    for (let attempt = 0; attempt < 12 && kills < 4; attempt++) {
      const started = await Deno.stat(join(dir, "ck", "killed", "config.json")).then(() => true, () => false);
      // Kill moments are shares of the uninterrupted run's time (start-up ~1.5 s, each epoch of 3 steps with its
      // validation and two checkpoint saves ~0.5 s on one machine), so the first kill lands on a fast machine too.
      lastKilled = await runAndKill(dir, "killed", started, (0.15 + 0.75 * rng.next()) * wholeMs);
      if (lastKilled) kills++;
      else break; // it finished before the kill
    }
    assert.ok(kills >= 1, "at least one kill landed");
    // A kill can land after the last epoch's metrics, before the run lets go of its lock: resume whenever the last
    // attempt was killed, as a user would.
    if (lastKilled) await runToEnd(dir, "killed", true);

    const a = await metrics(join(dir, "ck", "whole")), b = await metrics(join(dir, "ck", "killed"));
    assert.deepEqual(b.map((m) => m.epoch), [1, 2, 3, 4, 5]);
    a.forEach((m, i) => Object.keys(m).forEach((k) => assertClose(m[k], b[i][k], `epoch ${i + 1} ${k}`)));
    const wa = await lastWeights(join(dir, "ck", "whole")), wb = await lastWeights(join(dir, "ck", "killed"));
    assert.equal(wa.length, wb.length);
    wa.forEach((w, i) => w.forEach((v, j) => assertClose(v, wb[i][j], `weight ${i}[${j}]`)));
    // One writer: no lock and no temp file is left behind.
    const left = [...Deno.readDirSync(join(dir, "ck", "killed"))].map((e) => e.name);
    assert.ok(!left.includes(".lock"), `lock left: ${left}`);
  });
});
