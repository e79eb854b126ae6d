/**
 * The original destination of a connection that iptables redirected to the sidecar
 * (SO_ORIGINAL_DST), read through a small native addon (native/original_dst.c, built by
 * `npm ci` via node-gyp) because Node exposes no getsockopt.
 */
import { createRequire } from "node:module";
import type { Socket } from "node:net";

interface Addon {
  getOriginalDst(fd: number): { address: string; port: number } | undefined;
}

let addon: Addon | undefined;
function load(): Addon {
  if (addon === undefined) {
    const require = createRequire(import.meta.url);
    try {
      addon = require("../../../build/Release/original_dst.node") as Addon;
    } catch (err) {
      throw new Error(
        `the native addon for SO_ORIGINAL_DST is not built (${err instanceof Error ? err.message : String(err)}); run \`npm ci\` (or \`npx node-gyp rebuild\`) in the checkout`,
      );
    }
  }
  return addon;
}

/**
 * Where the client meant to connect before iptables redirected it; undefined when the
 * connection was not redirected (then the local address is the destination).
 */
export function originalDestination(socket: Socket): { address: string; port: number } | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== "number" || fd < 0) return undefined;
  return load().getOriginalDst(fd);
}
