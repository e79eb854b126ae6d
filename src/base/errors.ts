/**
 * Errors with stable codes. Expected outcomes (a NACK, a skipped injection, a failed
 * validation) are values, not exceptions; these classes are for what a caller cannot go on with.
 */

/** Base of every error Isthmus throws on purpose. `code` is stable and safe to match on. */
export class IsthmusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True when `err` is an IsthmusError, optionally with the given code. */
export function isIsthmusError(err: unknown, code?: string): err is IsthmusError {
  return err instanceof IsthmusError && (code === undefined || err.code === code);
}

/** Thrown when configuration (env, flags, files) cannot be used. Lists every problem at once. */
export class ConfigError extends IsthmusError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super("ISTHMUS_ERR_CONFIG", `invalid configuration (${problems.length} problem(s)):\n  ${problems.join("\n  ")}`);
    this.problems = problems;
  }
}

/** A message for any thrown value, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An expected outcome that may fail, with the reasons a user can act on. */
export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reasons: readonly string[] };
