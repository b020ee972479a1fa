// Expected errors of the command-line tasks end in a one- or two-line message that says what to do, with no
// stack trace and exit code 2; the run folder is left as it was. Each case runs the CLI in a subprocess.
// Run: deno test -A tests/cli/errors_test.ts   (about 5 s: one Deno start per case)
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { makeDataset, withTempDir } from "../_fixtures.ts";

const ROOT = resolve(import.meta.dirname!, "../..");

async function cli(script: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; err: string; out: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "lib/cli", script), ...args],
    cwd,
    env: { TP_BACKEND: "cpu", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, err: new TextDecoder().decode(out.stderr), out: new TextDecoder().decode(out.stdout) };
}

/** The error part of stderr: every line but the engine's choice and the usage text. */
function errorLines(err: string): string[] {
  const lines = err.trim().split("\n").filter((l) => l && !l.startsWith("[engine]"));
  const usage = lines.findIndex((l) => l.startsWith("usage: deno task"));
  return usage >= 0 ? lines.slice(0, usage) : lines;
}

function assertUserError(r: { code: number; err: string }, re: RegExp): void {
  assert.equal(r.code, 2, r.err);
  assert.doesNotMatch(r.err, /^\s+at /m, `a stack trace:\n${r.err}`);
  const lines = errorLines(r.err);
  assert.ok(lines.length >= 1 && lines.length <= 2, `expected one or two lines, got:\n${lines.join("\n")}`);
  assert.match(lines.join("\n"), re);
}

Deno.test("user errors of train, evaluate, predict and calibrate print one or two lines without a stack trace and exit 2", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await makeDataset(data, 12);
    const ck = join(dir, "ck");
    const cases: [string, string[], RegExp][] = [
      ["train.ts", [], /^error: train: --dataroot DIR and --exp-name NAME are required/],
      ["train.ts", ["--dataroot", data, "--exp-name", "../../x", "--checkpoints", ck], /--exp-name '\.\.\/\.\.\/x' is not a run name/],
      ["train.ts", ["--dataroot", data, "--exp-name", "/abs/name", "--checkpoints", ck], /--exp-name '\/abs\/name' is not a run name/],
      ["train.ts", ["--dataroot", join(dir, "missing"), "--exp-name", "a", "--checkpoints", ck], /dataroot .*missing does not exist/],
      ["train.ts", ["--dataroot", data, "--attributes", dir, "--exp-name", "a", "--checkpoints", ck], /attributes file .* is not a file; pass the CSV itself/],
      ["train.ts", ["--dataroot", data, "--exp-name", "a", "--backend", "nope", "--checkpoints", ck], /unknown backend 'nope'/],
      ["train.ts", ["--dataroot", data, "--exp-name", "a", "--epochs", "x"], /expected --epochs to be a positive integer, got 'x'/],
      ["train.ts", ["--dataroot", data, "--exp-name", "faceapi_agegender", "--checkpoints", ck], /'faceapi_agegender' is the reserved name of face-api's own age\/gender net/],
      ["evaluate.ts", ["--exp-name", "nope", "--checkpoints", ck], /evaluate: there is no run .*nope; train it first/],
      ["predict.ts", ["--exp-name", "../up", "--images", dir, "--checkpoints", ck], /predict: --exp-name '\.\.\/up' is not a run name/],
      ["calibrate.ts", ["--exp-name", "nope", "--checkpoints", ck], /calibrate: there is no run/],
    ];
    for (const [script, args, re] of cases) assertUserError(await cli(script, args, dir), re);
    // Nothing was written outside the checkpoints folder by the refused names.
    await assert.rejects(Deno.stat(join(dir, "..", "x")), Deno.errors.NotFound);
  });
});

Deno.test("train refuses a folder that holds any run file, and --resume with another --task refuses before config.json is touched", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await makeDataset(data, 12);
    const run = join(dir, "ck", "g1");
    await Deno.mkdir(join(run, "models", "last.old"), { recursive: true });
    const common = ["--dataroot", data, "--checkpoints", join(dir, "ck"), "--exp-name", "g1"];
    assertUserError(await cli("train.ts", common, dir), /train: .*g1 already holds a run \(models\); pass --resume/);
    const saved = { task: "gender", model: "compact_cnn", dataroot: data, expName: "g1", epochs: 2, batchSize: 8, lr: 0.001, seed: 0, modelOverrides: {} };
    await Deno.writeTextFile(join(run, "config.json"), JSON.stringify(saved));
    const before = await Deno.readTextFile(join(run, "config.json"));
    assertUserError(await cli("train.ts", [...common, "--resume", "--task", "haircolor"], dir), /--resume would change task "gender" → "haircolor"/);
    assert.equal(await Deno.readTextFile(join(run, "config.json")), before);
  });
});

Deno.test("--debug (or TP_DEBUG=1) prints the stack trace of a user error too", async () => {
  await withTempDir(async (dir) => {
    const r = await cli("evaluate.ts", ["--exp-name", "nope", "--checkpoints", dir, "--debug"], dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /UserError: evaluate: there is no run/);
    assert.match(r.err, /^\s+at /m);
    const e = await cli("evaluate.ts", ["--exp-name", "nope", "--checkpoints", dir], dir, { TP_DEBUG: "1" });
    assert.match(e.err, /^\s+at /m);
  });
});

Deno.test("validate --cache-dir X writes the pixel cache and problems.csv into X and nothing into the dataroot", async () => {
  await withTempDir(async (dir) => {
    const data = join(dir, "data");
    await makeDataset(data, 6);
    await Deno.writeTextFile(join(data, "Tiny_Portrait_000003.png"), "broken");
    const before = [...Deno.readDirSync(data)].map((e) => e.name).sort();
    const r = await cli("validate.ts", ["--dataroot", data, "--cache-dir", join(dir, "cache")], dir);
    assert.equal(r.code, 1, r.err); // 1: problems were found
    assert.deepEqual([...Deno.readDirSync(data)].map((e) => e.name).sort(), before);
    const problems = await Deno.readTextFile(join(dir, "cache", "problems.csv"));
    assert.match(problems, /Tiny_Portrait_000003\.png,3,3,bad_header/);
  });
});
