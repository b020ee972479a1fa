/**
 * Command-line flags for every task: a typed spec per command, parsed with
 * node:util parseArgs (strict: unknown flags are errors), values checked in
 * one place with messages such as
 *   "train: expected --epochs to be a positive integer, got 'x'".
 * Presets are applied between typed defaults and explicit flags by callers.
 */
import { parseArgs } from "node:util";
import { isUserError, UserError } from "./util/errors.ts";

export type FlagType = "string" | "int" | "number" | "boolean";

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean;
  /** For int/number: must be > 0 (int: ≥ 1). */
  positive?: boolean;
  /** For int/number: must be ≥ 0. */
  nonNegative?: boolean;
  /** For string: allowed values. */
  choices?: readonly string[];
  /** For number: must be < this. */
  below?: number;
}

/**
 * Checks one value against its flag spec — a string from the command line or a typed value from code
 * (notebooks, the demo) — and returns it typed. Throws UsageError with the flag's name, e.g.
 * "train: expected --epochs to be a positive integer, got 'x'".
 */
export function checkValue(command: string, name: string, f: FlagSpec, raw: unknown): string | number | boolean {
  if (f.type === "boolean") {
    if (typeof raw !== "boolean") throw new UsageError(`${command}: expected --${name} to be true or false, got '${raw}'`);
    return raw;
  }
  const s = String(raw);
  if (f.type === "int" || f.type === "number") {
    const v = typeof raw === "number" ? raw : Number(s);
    const isInt = f.type === "int";
    const ok = (typeof raw === "number" || s.trim() !== "") && Number.isFinite(v) && (!isInt || Number.isInteger(v)) &&
      (!f.positive || (isInt ? v >= 1 : v > 0)) && (!f.nonNegative || v >= 0) && (f.below === undefined || v < f.below);
    if (!ok) {
      const what = `${f.positive ? "a positive " : f.nonNegative ? "a non-negative " : isInt ? "an " : "a "}${isInt ? "integer" : "number"}${f.below !== undefined ? ` below ${f.below}` : ""}`;
      throw new UsageError(`${command}: expected --${name} to be ${what}, got '${s}'`);
    }
    return v;
  }
  if (typeof raw !== "string") throw new UsageError(`${command}: expected --${name} to be text, got '${s}'`);
  if (f.choices && !f.choices.includes(s)) throw new UsageError(`${command}: expected --${name} to be one of ${f.choices.join(", ")}, got '${s}'`);
  return s;
}

type ValueOf<F extends FlagSpec> = F["type"] extends "boolean" ? boolean
  : F["type"] extends "int" | "number" ? number
  : string;

export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]["default"] extends undefined ? ValueOf<S[K]> | undefined : ValueOf<S[K]>;
};

export class UsageError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One-line-per-flag help text. */
export function usage(command: string, spec: Record<string, FlagSpec>): string {
  const lines = Object.entries(spec).map(([name, f]) => {
    const arg = f.type === "boolean" ? "" : ` ${f.type === "string" ? (f.choices ? f.choices.join("|") : "VALUE") : f.type.toUpperCase()}`;
    const def = f.default !== undefined ? ` (default ${f.default})` : "";
    return `  --${name}${arg}  `.padEnd(34) + f.help + def;
  });
  return `usage: deno task ${command} [flags]\n${lines.join("\n")}\n  --help                          show this help\n  --debug                         print the stack trace of any error (also TP_DEBUG=1)`;
}

/** Parses and validates `args` against `spec`. Throws UsageError with a clear message. */
export function parseFlags<S extends Record<string, FlagSpec>>(command: string, args: string[], spec: S): Flags<S> & { help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" }, debug: { type: "boolean" } };
  for (const [name, f] of Object.entries(spec)) options[name] = { type: f.type === "boolean" ? "boolean" : "string" };
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    // parseArgs reads "--lr -1" as two flags; glue negative numbers to their flag.
    const glued: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i], next = args[i + 1];
      if (a.startsWith("--") && !a.includes("=") && next !== undefined && /^-\d|^-\.\d/.test(next)) {
        glued.push(`${a}=${next}`);
        i++;
      } else glued.push(a);
    }
    parsed = parseArgs({ args: glued, options, strict: true, allowPositionals: false }) as typeof parsed;
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify.*$/s, "");
    throw new UsageError(`${command}: ${msg}\n${usage(command, spec)}`);
  }
  const out: Record<string, unknown> = { help: parsed.values.help ?? false };
  for (const [name, f] of Object.entries(spec)) {
    const raw = parsed.values[name];
    if (raw === undefined) {
      out[name] = f.default;
      continue;
    }
    out[name] = checkValue(command, name, f, f.type === "boolean" ? raw : String(raw));
  }
  return out as Flags<S> & { help: boolean };
}

/** True when stack traces are wanted for every error: `--debug` on the command line or TP_DEBUG=1. */
export function debugWanted(args: readonly string[] = Deno.args): boolean {
  return args.includes("--debug") || ["1", "true", "yes"].includes((Deno.env.get("TP_DEBUG") ?? "").toLowerCase());
}

/**
 * Runs a CLI main and sets the exit code: a user error (UserError, UsageError, AttributesError) prints
 * its message alone and exits 2; any other error is a bug and prints its stack (exit 2); `--debug` or
 * TP_DEBUG=1 prints the stack of every error.
 */
export async function runCli(main: () => Promise<void | number>): Promise<void> {
  try {
    const code = await main();
    if (typeof code === "number" && code !== 0) Deno.exit(code);
  } catch (err) {
    const e = err as Error;
    const expected = isUserError(e) && !debugWanted();
    console.error(expected ? `error: ${e.message}` : `${e?.stack ?? String(e)}\n(an unexpected error: please report it with the command that caused it)`);
    Deno.exit(2);
  }
}
