/**
 * One sidecar half for the data-path benchmark, as its own process (so its CPU and memory are
 * its own): `client` runs the outbound listener routing to the server sidecar over mutual TLS,
 * `server` runs the inbound listener in front of the app. Configuration is static (what the
 * control plane would send), certificates come from files. Prints "ready <port>" when listening.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { ProxyConfig } from "../../src/proxy/config/types.js";
import { InboundServer } from "../../src/proxy/inbound/listener.js";
import { OutboundServer } from "../../src/proxy/outbound/listener.js";
import { ProxyRuntime } from "../../src/proxy/runtime.js";
import type { WorkloadCertificate } from "../../src/proxy/tls/identity.js";

const [role, portArg, targetArg, certDir] = process.argv.slice(2);
const port = Number(portArg);
const target = Number(targetArg);
const dir = certDir ?? "";
const cert = (name: string): WorkloadCertificate => ({
  certChainPem: readFileSync(`${dir}/${name}.chain.pem`, "utf8"),
  keyPem: readFileSync(`${dir}/${name}.key.pem`, "utf8"),
  rootPem: readFileSync(`${dir}/root.pem`, "utf8"),
  spiffeId: `spiffe://cluster.local/ns/bench/sa/${name}`,
  notAfter: new Date(Date.now() + 3_600_000),
});
const workload = {
  podName: role ?? "",
  namespace: "bench",
  workloadName: role ?? "",
  clusterId: "bench",
  serviceAccount: role ?? "",
  trustDomain: "cluster.local",
};
const cluster = "outbound|8080||app.bench.svc.cluster.local";

const runtime = new ProxyRuntime(workload);
if (role === "client") {
  const rt = runtime;
  rt.connector.setCertificate(cert("client"));
  const config: ProxyConfig = {
    outbound: new Map([
      [
        "0.0.0.0:8080",
        { name: "0.0.0.0_8080", address: "0.0.0.0", port: 8080, action: { kind: "http", routeConfigName: "8080" } },
      ],
    ]),
    routes: new Map([
      [
        "8080",
        {
          name: "8080",
          virtualHosts: [
            {
              name: "app",
              domains: ["*"],
              routes: [{ name: "default", prefix: "/", cluster, timeoutMs: 0, retry: undefined }],
            },
          ],
        },
      ],
    ]),
    clusters: new Map([
      [
        cluster,
        {
          name: cluster,
          type: "EDS",
          edsServiceName: cluster,
          lbPolicy: "LEAST_REQUEST",
          connectTimeoutMs: 10_000,
          tls: { allowedSpiffeIds: ["spiffe://cluster.local/ns/bench/sa/server"], sni: cluster },
          staticEndpoints: [],
          blackHole: false,
        },
      ],
    ]),
    endpoints: new Map([
      [
        cluster,
        [
          {
            address: "127.0.0.1",
            port: target,
            healthy: true,
            weight: 1,
            tlsMode: process.env.BENCH_PLAINTEXT ? "disabled" : "istio",
            clusterId: "bench",
            locality: "",
            workload: "app",
          },
        ],
      ],
    ]),
    inbound: new Map(),
  };
  rt.setConfig(config);
  const out = new OutboundServer({
    runtime: rt,
    host: "127.0.0.1",
    port,
    fixedDestination: { address: "10.201.0.80", port: 8080 },
  });
  await out.start();
} else {
  const rt = runtime;
  rt.setConfig({
    outbound: new Map(),
    routes: new Map(),
    clusters: new Map(),
    endpoints: new Map(),
    inbound: new Map([
      [target, { port: target, kind: "http", targetHost: "127.0.0.1", targetPort: target, mtlsMode: "PERMISSIVE" }],
    ]),
  });
  const inbound = new InboundServer({ runtime: rt, host: "127.0.0.1", port, fixedPort: target });
  inbound.setCertificate(cert("server"));
  await inbound.start();
}
process.stdout.write(`ready ${port}\n`);
// A clean exit on SIGINT, so `node --cpu-prof` writes its profile.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
process.once("SIGINT", () => {
  const elu = performance.eventLoopUtilization();
  process.stderr.write(
    `event loop: utilization ${elu.utilization.toFixed(3)}, delay p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms\n`,
  );
  process.stderr.write(
    runtime.metrics
      .render()
      .split("\n")
      .filter((l) => /_cx_|connections|duration_milliseconds_(sum|count)/.test(l))
      .join("\n"),
  );
  process.exit(0);
});
