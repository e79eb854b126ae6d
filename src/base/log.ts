/**
 * A small scoped logger: one line per entry on stderr, `time level scope message key=value`.
 * Never pass tokens, keys or certificates as fields: logs are read by people who must not see them.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `scope` (joined with "/" to the parent's). */
  child(scope: string): Logger;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly scope?: string;
  /** Where lines go; default stderr. Tests pass an array's push. */
  readonly write?: (line: string) => void;
}

function formatValue(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "string") return /^[\w./:@-]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** Creates a logger. Level defaults to ISTHMUS_LOG_LEVEL's value passed in by the main, else info. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = order[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const make = (scope: string | undefined): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (order[level] < min) return;
      const kv = fields
        ? Object.entries(fields)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${formatValue(v)}`)
            .join(" ")
        : "";
      write(`${new Date().toISOString()} ${level}${scope ? ` ${scope}` : ""} ${msg}${kv ? ` ${kv}` : ""}`);
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (s) => make(scope ? `${scope}/${s}` : s),
    };
  };
  return make(opts.scope);
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ level: "error", write: () => {} });
