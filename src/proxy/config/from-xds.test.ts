import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MeshService } from "../../model/index.js";
import { buildInboundCluster, buildOutboundCluster, buildVirtualInbound } from "../../xds/index.js";
import { clusterFromXds, listenerFromXds } from "./from-xds.js";

const service: MeshService = {
  hostname: "greeter.sample.svc.cluster.local",
  name: "greeter",
  namespace: "sample",
  ports: [
    { name: "grpc", port: 9000, protocol: "GRPC" },
    { name: "http", port: 8080, protocol: "HTTP" },
  ],
  clusterVips: new Map([["cluster1", "10.201.0.30"]]),
  serviceAccounts: ["spiffe://cluster.local/ns/sample/sa/greeter"],
  clusterLocal: false,
};

describe("translation of the generators' HTTP/2 marking", () => {
  it("an outbound cluster of a GRPC port speaks HTTP/2, one of an HTTP port does not", () => {
    const grpc = clusterFromXds(buildOutboundCluster(service, 9000, "sidecar"));
    const http = clusterFromXds(buildOutboundCluster(service, 8080, "sidecar"));
    assert.ok(grpc.ok && http.ok);
    assert.equal(grpc.value.http2, true);
    assert.equal(http.value.http2, false);
  });

  it("the inbound side speaks h2c to the app on a GRPC port and HTTP/1.1 on an HTTP port", () => {
    const targets = new Map<string, { host: string; port: number; http2: boolean }>();
    for (const [port, protocol] of [
      [9000, "GRPC"],
      [8080, "HTTP"],
    ] as const) {
      const c = clusterFromXds(buildInboundCluster(port, protocol));
      assert.ok(c.ok);
      targets.set(c.value.name, { host: "127.0.0.1", port, http2: c.value.http2 === true });
    }
    const listener = buildVirtualInbound([
      { targetPort: 9000, servicePort: 9000, protocol: "GRPC", service },
      { targetPort: 8080, servicePort: 8080, protocol: "HTTP", service },
    ]);
    const part = listenerFromXds(listener, targets);
    assert.ok(part.ok && part.value.kind === "inbound");
    const byPort = new Map(part.value.ports.map((p) => [p.port, p]));
    assert.equal(byPort.get(9000)?.appProtocol, "h2");
    assert.equal(byPort.get(8080)?.appProtocol, "http/1.1");
    assert.equal(byPort.get(9000)?.kind, "http");
  });
});
