/**
 * Every tunable is registered once here-style: name, default, a sentence saying what it does,
 * and a parser. Values are read from an EnvSource, so only mains touch process.env.
 */
import { ConfigError } from "./errors.js";

/** Where raw configuration strings come from. Mains pass processEnv; tests pass envFrom({...}). */
export interface EnvSource {
  get(name: string): string | undefined;
}
export const processEnv: EnvSource = { get: (name) => process.env[name] };
export const envFrom = (values: Readonly<Record<string, string>>): EnvSource => ({ get: (n) => values[n] });

/** One tunable. `description` is user-facing text. */
export interface EnvVar<T> {
  readonly name: string;
  readonly description: string;
  readonly defaultValue: T;
  /** Parses a non-empty raw value; throws with a message that says what is expected. */
  readonly parse: (raw: string) => T;
}

const registry: EnvVar<unknown>[] = [];

/** Registers a tunable; returns it for use with readEnv. */
export function defineEnv<T>(v: EnvVar<T>): EnvVar<T> {
  registry.push(v as EnvVar<unknown>);
  return v;
}
export const registeredEnvVars = (): readonly EnvVar<unknown>[] => registry;

/** Reads several variables, collecting every problem before throwing one ConfigError. */
export function readEnv<T extends Record<string, EnvVar<unknown>>>(
  env: EnvSource,
  vars: T,
): { -readonly [K in keyof T]: T[K] extends EnvVar<infer V> ? V : never } {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(vars)) {
    const raw = env.get(v.name);
    if (raw === undefined || raw === "") {
      out[key] = v.defaultValue;
      continue;
    }
    try {
      out[key] = v.parse(raw);
    } catch (err) {
      problems.push(`${v.name}=${JSON.stringify(raw)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as { -readonly [K in keyof T]: T[K] extends EnvVar<infer V> ? V : never };
}

/** Parses Go-style durations ("100ms", "30s", "1m30s", "24h") into milliseconds. */
export function parseDuration(raw: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of raw.matchAll(re)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === "ms" ? n : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : n * 3_600_000;
    consumed += m[0].length;
  }
  if (consumed !== raw.length || consumed === 0) {
    throw new TypeError(`expected a duration such as 100ms, 30s, 5m or 24h`);
  }
  return total;
}

export function parsePort(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new RangeError("expected a port number from 0 to 65535");
  return n;
}

export function parseBool(raw: string): boolean {
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new TypeError("expected true or false");
}
