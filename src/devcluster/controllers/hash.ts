/**
 * Naming helpers that make local-cluster objects look like Kubernetes': the pod-template-hash
 * (FNV-32a of the pod template, written in Kubernetes' "safe" alphabet, so names never spell
 * words) and random name suffixes.
 */
import { randomInt } from "node:crypto";

/** The alphabet Kubernetes uses for generated name parts: no vowels, no 0/1/3 (look like letters). */
export const safeAlphabet = "bcdfghjklmnpqrstvwxz2456789";

/** FNV-1a, 32 bits, over the UTF-8 bytes of `text`. */
export function fnv32a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Maps each character of `s` into safeAlphabet by its code, as Kubernetes encodes hashes. */
export function safeEncode(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) out += safeAlphabet[s.charCodeAt(i) % safeAlphabet.length];
  return out;
}

/** JSON with object keys sorted at every level, so equal values give equal text. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(",")}}`;
}

/**
 * The `pod-template-hash` of a pod template: FNV-32a over its canonical JSON (plus the
 * Deployment's collisionCount when set), its decimal form safe-encoded (up to 10 characters).
 * Pure: the same template always gives the same hash.
 */
// Kubernetes hashes Go's printed form of its typed structs, which JSON cannot reproduce, so a
// template hashes differently here than on a real cluster; only the shape and the stability of
// names matter to clients (they find a Deployment's ReplicaSet by template, not by hash).
export function podTemplateHash(template: unknown, collisionCount?: number): string {
  let text = stableStringify(template);
  if (collisionCount !== undefined && collisionCount > 0) text += `#${collisionCount}`;
  return safeEncode(String(fnv32a(text)));
}

/** `n` random characters of safeAlphabet (5 for pod and EndpointSlice names, as Kubernetes does). */
export function randomSuffix(n = 5): string {
  let out = "";
  for (let i = 0; i < n; i++) out += safeAlphabet[randomInt(safeAlphabet.length)];
  return out;
}
