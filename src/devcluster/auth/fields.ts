/**
 * Narrowing of untyped JSON fields (objects arrive as KubeObject with unknown members). Each
 * helper returns an empty value for anything of the wrong type, so callers validate once.
 */

/** `v` if it is a plain object, else {}. */
export function rec(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** `v` if it is a string, else "". */
export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** The string members of `v` if it is an array, else []. */
export function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];
}
