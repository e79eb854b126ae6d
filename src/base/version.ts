import { readFileSync } from "node:fs";

/**
 * This checkout's version (package.json's): the CLI's version, the default image tag, and the
 * ISTIO_VERSION a sidecar reports in its node metadata (what `proxy-status` shows as VERSION).
 */
export function isthmusVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "0.0.0";
}
