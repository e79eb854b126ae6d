/**
 * The seam between the control plane's assembly and the xDS server (src/xds): what the
 * assembly needs from it, so either side can be built and tested alone.
 */
import type { Server } from "@grpc/grpc-js";
import type { Logger } from "../base/index.js";
import type { ClusterId, NetworkId, ServiceView } from "../model/index.js";
import type { RegistryChange } from "../registry/index.js";
import type { XdsMetricsSnapshot } from "../xds/push/metrics.js";
import { XdsServer } from "../xds/server/server.js";

/** What the xDS server is given. */
export interface XdsBackendContext {
  /** The current merged registry view (an immutable snapshot). */
  readonly view: () => ServiceView;
  readonly clusterId: ClusterId;
  readonly network: NetworkId;
  readonly meshId: string;
  readonly trustDomain: string;
  readonly debounceAfterMs: number;
  readonly debounceMaxMs: number;
  /** PILOT_PUSH_THROTTLE; the server's default when absent. */
  readonly pushThrottle?: number;
  readonly log: Logger;
}

/** An xDS server as the control plane drives it. */
export interface XdsBackend {
  /** The registry changed: push (debounced by the backend) to the proxies it affects. */
  onRegistryChange(change: RegistryChange): void;
  /** Registers ADS on a gRPC server; called for the plaintext and the TLS server. */
  addTo(server: Server): void;
  /** Per-proxy sync state for `/debug/syncz` (JSON-serialisable). */
  syncz(): unknown;
  /** A proxy's config dump for `/debug/config_dump?proxyID=`, or undefined when it is not connected. */
  configDump(proxyId: string): unknown;
  /** Counters for `/metrics`. */
  metrics(): XdsMetricsSnapshot;
  /** Ends every stream and stops pushing. */
  close(): Promise<void>;
}

export type XdsBackendFactory = (ctx: XdsBackendContext) => XdsBackend;

/** The xDS server of src/xds behind the seam. */
export const defaultXdsBackend: XdsBackendFactory = (ctx) => {
  const server = new XdsServer({
    view: ctx.view,
    clusterId: ctx.clusterId,
    network: ctx.network,
    meshId: ctx.meshId,
    mesh: { trustDomain: ctx.trustDomain, dnsDomain: "cluster.local" },
    debounceAfterMs: ctx.debounceAfterMs,
    debounceMaxMs: ctx.debounceMaxMs,
    ...(ctx.pushThrottle !== undefined ? { concurrentSends: ctx.pushThrottle } : {}),
    log: ctx.log,
  });
  return {
    onRegistryChange: (c) =>
      server.pushRequest({ full: c.full, edsHostnames: c.edsHostnames, reason: c.reasons.join("; ") }),
    addTo: (s) => server.register(s),
    syncz: () => server.connections(),
    configDump: (id) => server.configDump(id),
    metrics: () => server.metrics.snapshot(),
    close: () => server.close(0),
  };
};
