// Run folders (lib/util/run_dir.ts): run names, the one-writer lock, the overwrite guard, the resume check.
// Run: deno test -A tests/util/run_dir_test.ts   (about 1 s)
import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireRunLock, assertFreshRunDir, checkResumeConfig, checkRunName, LOCK_FILE, runDirPath } from "../../lib/util/run_dir.ts";
import { isUserError } from "../../lib/util/errors.ts";
import { withTempDir } from "../_fixtures.ts";
import { hostname } from "node:os";

/** Asserts that `fn` throws a UserError whose message matches `re`. */
async function rejectsUser(fn: () => unknown, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.ok(isUserError(err), `expected a UserError, got ${(err as Error).name}: ${(err as Error).message}`);
    assert.match((err as Error).message, re);
    return;
  }
  assert.fail(`expected a UserError matching ${re}`);
}

Deno.test("checkRunName() accepts one safe folder name and rejects '..', '/', absolute paths, spaces and empty names with a UserError", async () => {
  for (const ok of ["gender_r1", "rg.v2", "A-1", "demo_gender_face_resnet"]) assert.equal(checkRunName(ok, "train"), ok);
  for (const bad of ["../../x", "/abs/name", "a/b", "a b", "", "..", ".hidden", "x..y", "-dash"]) {
    await rejectsUser(() => checkRunName(bad, "train"), /train: --exp-name .* is not a run name; use one folder name/);
  }
  assert.equal(runDirPath("checkpoints", "g1", "train"), join("checkpoints", "g1"));
});

Deno.test("acquireRunLock(): a lock held by another live process (pid 1) is a UserError naming its pid and command; this process's own lock nests and is removed by the outermost release", async () => {
  await withTempDir(async (dir) => {
    const run = join(dir, "run");
    const lock = await acquireRunLock(run, "train");
    const info = JSON.parse(await Deno.readTextFile(join(run, LOCK_FILE)));
    assert.equal(info.pid, Deno.pid);
    const inner = await acquireRunLock(run, "calibrate"); // train → calibrate in one process
    await inner.release();
    await Deno.stat(join(run, LOCK_FILE)); // still held by the outer lock
    await lock.release();
    await assert.rejects(Deno.stat(join(run, LOCK_FILE)), Deno.errors.NotFound);
    // Another live process: pid 1, with its real start time.
    const stat = await Deno.readTextFile("/proc/1/stat");
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    await Deno.writeTextFile(join(run, LOCK_FILE), JSON.stringify({ pid: 1, start, host: hostname(), command: "train", since: "now" }));
    await rejectsUser(() => acquireRunLock(run, "evaluate"), /is in use by 'train' \(pid 1 on .*\); wait for it or stop it \(kill 1\)/);
    await Deno.remove(join(run, LOCK_FILE));
    await (await acquireRunLock(run, "evaluate")).release();
  });
});

Deno.test("acquireRunLock() takes over a stale lock: its pid has exited, or the file is half-written", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command("true").spawn();
    await child.status; // the pid is gone now
    const run = join(dir, "run");
    await Deno.mkdir(run);
    await Deno.writeTextFile(join(run, LOCK_FILE), JSON.stringify({ pid: child.pid, start: "1", host: (await import("node:os")).hostname(), command: "train", since: "then" }));
    const lock = await acquireRunLock(run, "train", { quiet: true });
    assert.equal(JSON.parse(await Deno.readTextFile(join(run, LOCK_FILE))).pid, Deno.pid);
    await lock.release();
    await Deno.writeTextFile(join(run, LOCK_FILE), '{"pid": 12');
    await (await acquireRunLock(run, "train", { quiet: true })).release();
  });
});

Deno.test("acquireRunLock({ create: false }) refuses a run folder that does not exist, naming it", async () => {
  await withTempDir(async (dir) => {
    await rejectsUser(() => acquireRunLock(join(dir, "nope"), "evaluate", { create: false }), /evaluate: there is no run .*nope; train it first/);
    await assert.rejects(Deno.stat(join(dir, "nope")), Deno.errors.NotFound);
  });
});

Deno.test("assertFreshRunDir() allows a missing or lock-only folder and refuses any run file, e.g. models/last.old left by a kill between two renames", async () => {
  await withTempDir(async (dir) => {
    const run = join(dir, "run");
    await assertFreshRunDir(run, "train");
    await Deno.mkdir(run);
    await Deno.writeTextFile(join(run, LOCK_FILE), "{}");
    await assertFreshRunDir(run, "train");
    await Deno.mkdir(join(run, "models", "last.old"), { recursive: true });
    await rejectsUser(() => assertFreshRunDir(run, "train"), /train: .*run already holds a run \(models\); pass --resume/);
  });
});

Deno.test("checkResumeConfig() lists every changed fixed setting with old → new, and ignores keys it is not given", async () => {
  const saved = { task: "gender", lr: 0.001, epochs: 8, modelOverrides: { crop: "aligned" } };
  checkResumeConfig("r", saved, { ...saved, epochs: 12 }, ["task", "lr", "modelOverrides"], "train");
  await rejectsUser(
    () => checkResumeConfig("r", saved, { ...saved, task: "haircolor", modelOverrides: { crop: "both" } }, ["task", "lr", "modelOverrides"], "train"),
    /train: --resume would change task "gender" → "haircolor", modelOverrides \{"crop":"aligned"\} → \{"crop":"both"\} of the run in r; a resumed run keeps its settings/,
  );
});
