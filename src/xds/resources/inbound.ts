/**
 * The ports a sidecar serves inbound: the target ports of the services its pod backs, found from
 * the pod's own endpoints in its own Kubernetes cluster. Shared by CDS (inbound clusters) and LDS
 * (virtualInbound filter chains).
 */
import type { MeshService, ProxyView } from "../../model/index.js";
import type { PushContext } from "./common.js";

/** One port the proxy's workload listens on, with the service port that leads to it. */
export interface InboundPort {
  /** The workload's port (Kubernetes targetPort); inbound cluster names use it, as Istio does. */
  readonly targetPort: number;
  readonly servicePort: number;
  readonly protocol: string;
  readonly service: MeshService;
}

/** Inbound ports of `proxy`, one per target port (the first service by hostname wins), sorted. */
export function inboundPorts(ctx: PushContext, proxy: ProxyView): readonly InboundPort[] {
  const byTarget = new Map<number, InboundPort>();
  const services = [...ctx.view.servicesOfWorkload(proxy.clusterId, proxy.ip)].sort((a, b) =>
    a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0,
  );
  for (const service of services) {
    for (const port of service.ports) {
      const own = ctx.view.endpoints(service.hostname, port.name).get(proxy.clusterId) ?? [];
      const ep = own.find((e) => e.address === proxy.ip);
      const targetPort = ep?.port ?? port.port;
      if (byTarget.has(targetPort)) continue;
      byTarget.set(targetPort, { targetPort, servicePort: port.port, protocol: port.protocol, service });
    }
  }
  return [...byTarget.values()].sort((a, b) => a.targetPort - b.targetPort);
}
