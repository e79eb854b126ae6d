/** Outbound TCP proxying: one upstream connection per downstream connection, bytes both ways. */
import type net from "node:net";
import type { UpstreamCluster } from "../config/types.js";
import type { ProxyRuntime } from "../runtime.js";

/** Joins two sockets until either closes; half-closes are passed on. */
export function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  const destroyBoth = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", destroyBoth);
  b.on("error", destroyBoth);
  a.on("close", () => b.destroy());
  b.on("close", () => a.destroy());
}

/**
 * Proxies `downstream` to an endpoint of `cluster`, trying another endpoint when a connection
 * fails (up to `attempts`). Closes the downstream when every attempt failed.
 */
export async function proxyTcp(
  rt: ProxyRuntime,
  cluster: UpstreamCluster,
  downstream: net.Socket,
  attempts = 3,
): Promise<void> {
  downstream.pause();
  const endpoints = rt.endpointsOf(cluster);
  const balancer = rt.balancer(cluster);
  const tried = new Set<string>();
  for (let i = 0; i < attempts && !cluster.blackHole; i++) {
    const ep = rt.pick(cluster, endpoints, tried);
    if (ep === undefined) break;
    tried.add(`${ep.address}:${ep.port}`);
    const done = balancer.begin(ep);
    try {
      const upstream = await rt.connector.connect(cluster, ep);
      upstream.once("close", done);
      rt.upstreamSucceeded(cluster, ep);
      splice(downstream, upstream);
      downstream.resume();
      return;
    } catch (err) {
      done();
      rt.metrics.inc("envoy_cluster_upstream_cx_connect_fail", { cluster_name: cluster.name });
      rt.upstreamFailed(cluster, ep, err);
    }
  }
  downstream.destroy();
}
