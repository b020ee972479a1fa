/**
 * Errors a user can fix (a missing flag, a bad path, a run folder that already holds a run): the CLI
 * prints their message alone — one or two lines ending in what to do — and exits 2. Anything else is
 * a bug and keeps its stack trace. `--debug` or TP_DEBUG=1 prints the stack of every error.
 *
 *   throw new UserError(`evaluate: no gender splits in ${dir}; run deno task split --dataroot ${root}`);
 */
export class UserError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UserError";
  }
}

/** Names of the error classes that mean "bad input", also for errors that crossed a module copy. */
const USER_ERROR_NAMES = new Set(["UserError", "UsageError", "AttributesError"]);

export function isUserError(err: unknown): boolean {
  return err instanceof UserError || (err instanceof Error && USER_ERROR_NAMES.has(err.name));
}
