/**
 * Run folders (`checkpoints/<exp>/`): safe run names, one writer per folder, and no silent overwrite.
 *
 *   const dir = runDirPath("checkpoints", name, "train");          // UserError for "../x", "/abs", "a b"
 *   const lock = await acquireRunLock(dir, "train");               // UserError while another live process holds it
 *   try { ... } finally { await lock.release(); }
 *
 * The lock is `<dir>/.lock`, created with O_EXCL and holding the owner's pid, its start time
 * (/proc/<pid>/stat, so a reused pid is not mistaken for the owner), host and command. A lock whose
 * owner is gone (killed with -9, machine restarted) is stale and taken over with a note.
 */
import { join, resolve } from "node:path";
import { hostname } from "node:os";
import { UserError } from "./errors.ts";
import { exists, readJson } from "./fs.ts";

/** One path segment of letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Checks a run name (--exp-name): one safe path segment. Returns it. */
export function checkRunName(name: string, command: string): string {
  if (!RUN_NAME.test(name) || name.includes("..")) {
    throw new UserError(`${command}: --exp-name '${name}' is not a run name; use one folder name of letters, digits, '.', '_' and '-' (e.g. gender_r1), no '/' or '..'`);
  }
  return name;
}

/** `<checkpoints>/<name>` after checking the name. */
export function runDirPath(checkpoints: string, name: string, command: string): string {
  return join(checkpoints, checkRunName(name, command));
}

export const LOCK_FILE = ".lock";

interface LockInfo {
  pid: number;
  start: string | null;
  host: string;
  command: string;
  since: string;
}

/** The start time of a live process (field 22 of /proc/<pid>/stat), null when it does not exist; "" when /proc is absent. */
async function processStart(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      try {
        await Deno.stat("/proc/self");
        return null; // /proc works, the process does not exist
      } catch {
        return ""; // no /proc: cannot tell, assume alive
      }
    }
    return "";
  }
}

/** False only when /proc shows that no process `pid` exists on this machine. */
export async function processAlive(pid: number): Promise<boolean> {
  return (await processStart(pid)) !== null;
}

/** True when the lock's owner is this host's live process that wrote it. */
async function ownerAlive(info: LockInfo): Promise<boolean> {
  if (info.host !== hostname()) return true; // another machine on a shared disk: cannot tell
  const start = await processStart(info.pid);
  if (start === null) return false;
  return start === "" || info.start === null || info.start === start;
}

export interface LockOptions {
  quiet?: boolean;
  /** false: the folder must exist already (evaluate, predict, calibrate); default true. */
  create?: boolean;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

export interface RunLock {
  path: string;
  /** Removes the lock if this process still owns it. */
  release(): Promise<void>;
}

/** Locks this process holds, with their nesting depth (train → calibrate in one process is one writer). */
const held = new Map<string, number>();

/**
 * Takes `<dir>/.lock` for this process (creating `dir`), or throws a UserError naming the live owner.
 * A stale lock (owner gone) is replaced, with a line on stderr. Taking a lock this process already
 * holds nests (released when the outermost holder releases it).
 */
export async function acquireRunLock(dir: string, command: string, opts: LockOptions = {}): Promise<RunLock> {
  if (opts.create === false && !(await isDirectory(dir))) throw new UserError(`${command}: there is no run ${dir}; train it first (deno task train --exp-name ...) or check --exp-name and --checkpoints`);
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const key = resolve(path);
  const depth = held.get(key);
  if (depth !== undefined) {
    held.set(key, depth + 1);
    let done = false;
    return { path, release: () => (done || (done = true, held.set(key, held.get(key)! - 1)), Promise.resolve()) };
  }
  const mine: LockInfo = { pid: Deno.pid, start: await processStart(Deno.pid) || null, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(JSON.stringify(mine) + "\n"));
      } finally {
        f.close();
      }
      let released = false;
      held.set(key, 0);
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          held.delete(key);
          try {
            const now = JSON.parse(await Deno.readTextFile(path)) as LockInfo;
            if (now.pid === mine.pid && now.host === mine.host) await Deno.remove(path);
          } catch { /* already gone */ }
        },
      };
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    let info: LockInfo | null = null;
    try {
      info = JSON.parse(await Deno.readTextFile(path)) as LockInfo;
    } catch { /* half-written by a process killed while writing it, or removed meanwhile */ }
    if (info && (await ownerAlive(info))) {
      throw new UserError(`${command}: ${dir} is in use by '${info.command}' (pid ${info.pid} on ${info.host}, since ${info.since}); wait for it or stop it (kill ${info.pid}), or pick another --exp-name`);
    }
    if (!opts.quiet) console.error(`${command}: taking over the stale lock of ${dir}${info ? ` (pid ${info.pid}, '${info.command}', is gone)` : ""}`);
    await Deno.remove(path).catch(() => {});
  }
  throw new UserError(`${command}: cannot lock ${dir}; another process keeps taking it — retry, or remove ${path} if no run is active`);
}

/** Runs `fn` holding the run folder's lock. */
export async function withRunLock<T>(dir: string, command: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const lock = await acquireRunLock(dir, command, opts);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Names of the entries of `dir` other than the lock (empty when `dir` does not exist). */
export async function runFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.name !== LOCK_FILE) out.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort();
}

/** Refuses a fresh run in a folder that holds any file of an earlier run. */
export async function assertFreshRunDir(dir: string, command: string): Promise<void> {
  const files = await runFiles(dir);
  if (files.length) {
    throw new UserError(`${command}: ${dir} already holds a run (${files.slice(0, 4).join(", ")}${files.length > 4 ? ", …" : ""}); pass --resume to continue it, pick another --exp-name, or delete the folder`);
  }
}

/**
 * Checks that resuming with `cfg` keeps every setting of the saved run that `keys` names (compared as
 * JSON), before anything is written; the error lists each change and what to do.
 */
export function checkResumeConfig(dir: string, saved: Record<string, unknown>, cfg: Record<string, unknown>, keys: readonly string[], command: string): void {
  const show = (v: unknown) => (v === undefined ? "unset" : JSON.stringify(v));
  const changes = keys.filter((k) => show(saved[k]) !== show(cfg[k])).map((k) => `${k} ${show(saved[k])} → ${show(cfg[k])}`);
  if (changes.length) {
    throw new UserError(`${command}: --resume would change ${changes.join(", ")} of the run in ${dir}; a resumed run keeps its settings: drop those flags, or start a new --exp-name`);
  }
}

/** A run's saved config.json with only `keys` kept: what a resume starts from. A UserError when the run has none. */
export async function savedRunConfig(runDir: string, command: string, keys: readonly string[]): Promise<Record<string, unknown>> {
  const path = join(runDir, "config.json");
  if (!(await exists(path))) throw new UserError(`${command}: --resume but ${runDir} holds no run (no config.json); train without --resume first`);
  const saved = await readJson<Record<string, unknown>>(path);
  return Object.fromEntries(keys.filter((k) => saved[k] !== undefined).map((k) => [k, saved[k]]));
}

/**
 * Runs `fn` as the one writer of a run folder: takes its lock, then refuses a fresh run in a folder that
 * holds any run file, or a resume that would change one of `fixedKeys` of the saved config — all before
 * `fn` writes anything. `savedBefore`: settings added after older runs were saved, with the value that
 * reproduces such a run (what its config.json lacks counts as that).
 */
export async function withRunFolder<T>(
  runDir: string,
  command: string,
  o: { resume: boolean; cfg: object; fixedKeys: readonly string[]; quiet?: boolean; savedBefore?: Record<string, unknown> },
  fn: () => Promise<T>,
): Promise<T> {
  return await withRunLock(runDir, command, async () => {
    if (!o.resume) await assertFreshRunDir(runDir, command);
    else checkResumeConfig(runDir, { ...o.savedBefore, ...await savedRunConfig(runDir, command, o.fixedKeys) }, o.cfg as Record<string, unknown>, o.fixedKeys, command);
    return await fn();
  }, { quiet: o.quiet });
}
